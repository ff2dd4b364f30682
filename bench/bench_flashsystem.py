"""FlashSystem refresh against the REST double, side by side in one run: the backend's three bulk
commands (lsvdisk, lssevdiskcopy, lsfcmap) vs asking for each vdisk's detailed view (the obvious
per-volume design), for a golden and N-1 FlashCopy clones. Same client, same HTTPS double.

    .venv/bin/python bench/bench_flashsystem.py [--vdisks 2000] [--repeat 5]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.backends.flashsystem.backend import FlashSystemBackend, FlashSystemSettings, load_array
from tests.support.flashsystem import FlashSystemDouble

MiB = 2**20


async def timed(coro_fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await coro_fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def run(args) -> None:
    d = Path(tempfile.mkdtemp())
    fs = FlashSystemDouble(d)
    fs.create_vdisk("golden", 64 * MiB)
    fs.write("golden", 40 * MiB)
    for i in range(args.vdisks - 1):
        fs.clone_like_csi("golden", f"c{i}")
    b = FlashSystemBackend(FlashSystemSettings(arrays=(load_array("fs1", fs.write_secret_dir(d / "s")),),
                                               concurrency=2))
    client = b._clients["fs1"]
    ids = list(fs.vdisks)

    async def bulk():
        await b.refresh()
        assert b.states()["fs1"].up and len(b.states()["fs1"].volumes) == args.vdisks

    async def per_volume():
        await asyncio.gather(*(client.command("lsvdisk", {"bytes": True}, vid) for vid in ids))
        await client.command("lsfcmap")

    fs.requests.clear()
    await bulk()
    bulk_requests = len(fs.requests)
    fs.requests.clear()
    await per_volume()
    per_requests = len(fs.requests)
    t_bulk = await timed(bulk, args.repeat)
    t_per = await timed(per_volume, args.repeat)
    await b.close()
    fs.close()
    print(f"{args.vdisks} vdisks ({args.vdisks - 1} FlashCopy clones), median of {args.repeat}:")
    print(f"  backend refresh (bulk):   {t_bulk * 1000:8.1f} ms  {bulk_requests:5d} requests")
    print(f"  detailed view per vdisk:  {t_per * 1000:8.1f} ms  {per_requests:5d} requests")
    print(f"  ratio per-vdisk / bulk:   {t_per / t_bulk:8.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vdisks", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
