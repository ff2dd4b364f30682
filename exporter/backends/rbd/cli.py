"""Ceph RBD through the rbd command (`--rbd.client cli`): per refresh of a target exactly one
`rbd du` and one `rbd ls -l`, both JSON, run concurrently (never one process per image); neither
command sees the RBD trash.

`rbd du` charges a golden image's data to its snapshot row (`golden@base`) and shows the head
at 0, so an image's own bytes are its head row plus all of its snapshot rows. Sizes are whole
RADOS objects (4 MiB by default) that the image itself holds: a CoW clone's unwritten objects
stay in its parent and are not counted.
"""

import asyncio
import itertools
import json
import os
import re
import signal
from typing import Any, TypeGuard

import structlog

from ...kube.objects import text
from ..base import BackendError, Volume
from .naming import is_link, is_temp, split_cluster, split_target, volume_id
from .reader import CephCluster

log = structlog.get_logger("clonewatch.rbd")


def parse_du(doc: Any) -> dict[str, tuple[int, int]]:
    """image -> (own bytes: head + snapshots, provisioned bytes of the head)."""
    rows = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise BackendError("rbd du: no 'images' list in its output")
    out: dict[str, list[int]] = {}
    for row in rows:
        name = row.get("name") if isinstance(row, dict) else None
        used, prov = (row.get("used_size"), row.get("provisioned_size")) if isinstance(row, dict) else (None, None)
        if not isinstance(name, str) or not name or not _is_count(used) or not _is_count(prov):
            raise BackendError(f"rbd du: malformed row {str(row)[:200]}")
        entry = out.setdefault(name, [0, 0])
        entry[0] += used
        if "snapshot" not in row:
            entry[1] = prov
    return {name: (own, prov) for name, (own, prov) in out.items()}


def parse_ls(doc: Any) -> dict[str, dict[str, Any] | None]:
    """image -> its parent {pool, pool_namespace, image, snapshot} or None."""
    if not isinstance(doc, list):
        raise BackendError("rbd ls -l: output is not a list")
    out: dict[str, dict[str, Any] | None] = {}
    for row in doc:
        name = row.get("image") if isinstance(row, dict) else None
        if not isinstance(name, str) or not name:
            raise BackendError(f"rbd ls -l: malformed row {str(row)[:200]}")
        if "snapshot" in row:
            continue
        parent = row.get("parent")
        if parent is not None and not (isinstance(parent, dict) and text(parent.get("pool"))
                                       and text(parent.get("image"))):
            raise BackendError(f"rbd ls -l: malformed parent {str(parent)[:200]}")
        out[name] = parent
    return out


def build_volumes(target: str, du: dict[str, tuple[int, int]], ls: dict[str, dict[str, Any] | None]) -> dict[str, Volume]:
    cluster = split_cluster(target)[0]
    pool, namespace = split_target(target)
    volumes: dict[str, Volume] = {}
    for image, (own, prov) in du.items():
        if image not in ls:
            continue        # created or removed between the two commands: next refresh sees it
        parent = ls[image]
        parent_id = volume_id(parent["pool"], text(parent.get("pool_namespace")), parent["image"], cluster) \
            if parent else ""
        vid = volume_id(pool, namespace, image, cluster)
        volumes[vid] = Volume(volume=vid, target=target, consumed_bytes=own, provisioned_bytes=prov,
                              parent=parent_id, parent_snapshot=text(parent.get("snapshot")) if parent else "",
                              link=is_link(image), csi_kind="temp" if is_temp(image) else "")
    return volumes


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class CliClient:
    """Reads targets with the rbd command; holds nothing between refreshes."""

    def __init__(self, binary: str, timeout_seconds: float) -> None:
        self.binary = binary
        self.timeout_seconds = timeout_seconds

    async def read(self, cluster: CephCluster, target: str) -> dict[str, Volume]:
        pool, namespace = split_target(target)
        scope = ["--pool", pool] + (["--namespace", namespace] if namespace else [])
        du_doc, ls_doc = await self._du_and_ls(cluster, scope)
        return build_volumes(target, parse_du(du_doc), parse_ls(ls_doc))

    def images_read(self, cluster: str, target: str) -> dict[str, int]:
        return {}       # `rbd du` reads every image alike, and says nothing of how

    async def close(self) -> None:
        pass

    async def _du_and_ls(self, cluster: CephCluster, scope: list[str]) -> tuple[Any, Any]:
        """Both commands at once; the first failure is the one reported."""
        try:
            async with asyncio.TaskGroup() as tg:
                du = tg.create_task(self._run_json(cluster, ["du", *scope, "--format", "json"]))
                ls = tg.create_task(self._run_json(cluster, ["ls", "-l", *scope, "--format", "json"]))
        except BaseExceptionGroup as group:
            failures = [e for e in group.exceptions if isinstance(e, BackendError)]
            if failures and len(failures) == len(group.exceptions):
                raise failures[0] from None
            raise
        return du.result(), ls.result()

    def _base_args(self, c: CephCluster) -> list[str]:
        args = [self.binary]
        if c.conf:
            args += ["--conf", c.conf]
        if c.client_id:
            args += ["--id", c.client_id]
        if c.keyring:
            args += ["--keyring", c.keyring]
        if c.mon_host:
            args += ["--mon-host", c.mon_host]
        return args

    async def _run_json(self, cluster: CephCluster, args: list[str]) -> Any:
        """One rbd command's JSON. A command that dies of a signal (an assertion in librbd aborts
        the CLI now and then) is run once more before the refresh is called failed."""
        what = " ".join(["rbd", *itertools.takewhile(lambda a: not a.startswith("--"), args)])   # rbd ls -l
        for attempt in range(1, CRASH_ATTEMPTS + 1):
            code, out, err = await self._run(cluster, args, what)
            if code >= 0 or attempt == CRASH_ATTEMPTS:
                break
            log.warning("rbd_cli_crashed", command=what, signal=signal_name(code), attempt=attempt,
                        reason=crash_reason(err), note="running it again")
        if code < 0:
            raise BackendError(f"{what}: killed by {signal_name(code)}: {crash_reason(err)}")
        if code != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise BackendError(f"{what}: exit {code}: {last[0][:300]}")
        try:
            return json.loads(out)
        except ValueError as exc:
            raise BackendError(f"{what}: output is not JSON ({exc})") from None

    async def _run(self, cluster: CephCluster, args: list[str], what: str) -> tuple[int, bytes, bytes]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._base_args(cluster), *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=os.environ.copy())
        except OSError as exc:
            raise BackendError(f"{what}: cannot start {self.binary!r}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout_seconds)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BackendError(f"{what}: no answer within {self.timeout_seconds:g}s, killed") from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err


CRASH_ATTEMPTS = 2
# What Ceph prints when it aborts: the assertion, then a dump of its recent log events that can run
# to thousands of lines and always ends with the same marker; the assertion is the news.
_CRASH_LINE = re.compile(r"FAILED ceph_assert|ceph_abort|Caught signal|terminate called|what\(\)")
_DUMP_BEGIN, _DUMP_END = "--- begin dump of recent events ---", "--- end dump of recent events ---"


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def crash_reason(stderr: bytes) -> str:
    """The line that says why a Ceph command aborted, not the last line of its event dump."""
    lines, in_dump = [], False
    for line in stderr.decode("utf-8", "replace").splitlines():
        if _DUMP_BEGIN in line:
            in_dump = True
        elif _DUMP_END in line:
            in_dump = False
        elif not in_dump and line.strip():
            lines.append(line.strip())
    marked = [line for line in lines if _CRASH_LINE.search(line)]
    return (marked or lines[-1:] or ["no message"])[0][:300]
