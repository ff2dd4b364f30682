"""Records what tests/fixtures/ceph/rbd-objectmap.json holds: a few images' RADOS objects as a real
cluster wrote them (header omap values, each object map raw with its CRCs and as cls_rbd's
object_map_load returns it) and the rows `rbd du --format json` printed for them, so the unit tests
check the decoders and the arithmetic against Ceph's own bytes without a cluster.

    CEPH_CONF=/tmp/c/ceph.conf .venv/bin/python -m tests.support.record_rbd_objects
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

MiB = 2**20
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "ceph" / "rbd-objectmap.json"


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def build(pool: str, ioctx) -> None:
    """Snapshots over generations with a trash-namespace snapshot between them, a discard, a resize both
    ways, striping, a clone v2 whose copyups fill its snapshot's map, and an invalidated map."""
    import rbd

    def write(name: str, *extents: tuple[int, int]) -> None:
        with rbd.Image(ioctx, name) as img:
            for offset, length in extents:
                img.write(b"w" * length, offset)
    spec = lambda name: f"{pool}/{name}"        # noqa: E731
    sh("rbd", "create", "--size", "32M", spec("gen"))
    write("gen", (0, 8 * MiB))
    sh("rbd", "snap", "create", spec("gen@s1"))
    write("gen", (4 * MiB, 4096), (12 * MiB, 4096))
    sh("rbd", "snap", "create", spec("gen@pin"))
    sh("rbd", "clone", "--rbd-default-clone-format", "2", spec("gen@pin"), spec("child"))
    sh("rbd", "snap", "rm", spec("gen@pin"))               # a clone hangs from it: trash namespace
    write("gen", (16 * MiB, 10))
    sh("rbd", "snap", "create", spec("gen@s2"))
    with rbd.Image(ioctx, "gen") as img:
        img.discard(0, 4 * MiB)
    write("gen", (20 * MiB, 10))
    write("child", (4 * MiB, 10))
    sh("rbd", "snap", "create", spec("child@u1"))
    write("child", (8 * MiB, 10), (0, 10))                # copyups after u1
    sh("rbd", "create", "--size", "32M", spec("resize"))
    write("resize", (0, 32 * MiB))
    sh("rbd", "snap", "create", spec("resize@s1"))
    sh("rbd", "resize", "--allow-shrink", "--no-progress", "--size", "10M", spec("resize"))
    sh("rbd", "snap", "create", spec("resize@s2"))
    sh("rbd", "resize", "--no-progress", "--size", "40M", spec("resize"))
    write("resize", (36 * MiB, 4096))
    sh("rbd", "create", "--size", f"{20 * MiB + 5000}B", "--object-size", "1M", "--stripe-unit", "64K",
       "--stripe-count", "4", spec("striped"))
    write("striped", (0, 70000), (5 * MiB, 300000), (20 * MiB, 5000))
    sh("rbd", "create", "--size", "16M", spec("invalid"))
    write("invalid", (0, 10))
    sh("rbd", "feature", "disable", spec("invalid"), "fast-diff,object-map")
    sh("rbd", "feature", "enable", spec("invalid"), "object-map,fast-diff")


def record(ioctx, image_id: str) -> dict:
    import rados
    with rados.ReadOpCtx() as op:
        values, _ = ioctx.get_omap_vals(op, "", "", 10000)
        ioctx.operate_read_op(op, f"rbd_header.{image_id}")
        omap = {k: (v or b"").hex() for k, v in values if not k.startswith("snap_children_")}
    maps = {}
    for key in [k for k in omap if k.startswith("snapshot_")] + [""]:
        oid = f"rbd_object_map.{image_id}" + (f".{key[len('snapshot_'):]}" if key else "")
        try:
            raw = ioctx.read(oid, 1 << 20)
            _, loaded = ioctx.execute(oid, "rbd", "object_map_load", b"", 1 << 20)
        except rados.ObjectNotFound:
            continue
        maps[key or "head"] = {"raw": raw.hex(), "loaded": loaded.hex()}
    return {"header": omap, "object_maps": maps}


def main() -> None:
    import rados
    import rbd
    pool = f"rec-{uuid.uuid4().hex[:6]}"
    sh("ceph", "osd", "set-require-min-compat-client", "mimic")
    sh("ceph", "osd", "pool", "create", pool, "8", "8")
    sh("rbd", "pool", "init", pool)
    cluster = rados.Rados(conffile=os.environ["CEPH_CONF"])
    cluster.connect()
    try:
        with cluster.open_ioctx(pool) as ioctx:
            build(pool, ioctx)
            ids = {e["name"]: e["id"] for e in rbd.RBD().list2(ioctx)}
            images = {name: record(ioctx, image_id) for name, image_id in sorted(ids.items())}
        rows: dict[str, list] = {}
        for row in json.loads(sh("rbd", "du", "-p", pool, "--format", "json"))["images"]:
            rows.setdefault(row["name"], []).append(row)
        for name, image in images.items():
            image["rbd_du"] = rows[name]
        version = sh("ceph", "--version").strip()
        OUT.write_text(json.dumps({"made_by": "tests/support/record_rbd_objects.py", "ceph": version,
                                   "images": images}, indent=1) + "\n")
    finally:
        cluster.shutdown()
        subprocess.run(["ceph", "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it"], capture_output=True)


if __name__ == "__main__":
    main()
