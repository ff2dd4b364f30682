"""Native cloners: qcow2 files (qemu-img / qemu-io) and Ceph RBD images (rbd CLI).

Ownership lives in a manifest (loadgen/cloners/manifest.py): `.clonewatch-loadgen.json` in the
qcow2 directory, the RADOS object `clonewatch-loadgen.<scenario>` in the RBD pool. A volume not
listed there is never modified or deleted, even if it is named like ours.
"""

import json
import os
import tempfile
import time
from abc import abstractmethod
from pathlib import Path

from exporter.public import Volume, parse_rbd_du, parse_rbd_ls, rbd_volume_id, rbd_volumes, scan_dir

from ..drift import compressible, plan
from ..scenario import Scenario
from .base import CloneFailed, Cloner, NotOwned, Owned
from .manifest import FileManifest, Manifest, RadosManifest
from .names import parse_name
from .native_run import run as _run


class _Native(Cloner):
    """What both native cloners share: the manifest and the verbs built on it."""

    backend = ""
    manifest: Manifest

    # -- what each medium provides ------------------------------------------------------------
    @abstractmethod
    def _existing(self) -> set[str]:
        """Names of the clones present on the medium now (ours or not)."""

    @abstractmethod
    def _remove(self, name: str) -> None: ...

    @abstractmethod
    def _remove_golden(self) -> None: ...

    def __init__(self, scenario: Scenario, run: str) -> None:
        self.sc, self.run = scenario, run
        self._reserved: set[str] = set()

    def _key(self, name: str) -> str:
        return name

    def _is_ours(self, name: str, role: str = "clone") -> bool:
        rec = self.manifest.get(self._key(name))
        return rec is not None and rec.get("role") == role

    def reserve(self, jobs: list[tuple[str, str, str]]) -> None:
        """Record a batch of clones about to be created, in one manifest write. A name that
        exists already is never recorded: it is not ours, and create() will refuse it."""
        existing = self._existing()
        jobs = [j for j in jobs if j[0] not in existing]
        if not jobs:
            return
        now = time.time()
        self.manifest.mark({self._key(n): {"role": "clone", "group": g, "method": m, "created": now}
                            for n, g, m in jobs})
        self._reserved.update(n for n, _, _ in jobs)

    def _ensure_marked(self, name: str, group: str, method: str) -> None:
        if name not in self._reserved:
            self.reserve([(name, group, method)])
        self._reserved.discard(name)

    def owned(self) -> list[Owned]:
        out = []
        existing = self._existing()
        for key, rec in self.manifest.records().items():
            name = self._name(key)
            if rec.get("role") != "clone" or parse_name(self.sc.name, name) is None or name not in existing:
                continue
            out.append(Owned(name, rec.get("group", ""), rec.get("method", ""), float(rec.get("created", 0)),
                             rec.get("run", ""), int(rec.get("drift_bytes", 0))))
        return sorted(out, key=lambda o: o.name)

    def _name(self, key: str) -> str:
        return key

    def record_drift(self, name: str, total: int) -> None:
        self.manifest.set_field(self._key(name), "drift_bytes", total)

    def delete(self, name: str) -> None:
        if parse_name(self.sc.name, name) is None or not self._is_ours(name):
            raise NotOwned(f"{name} is not ours")
        self._remove(name)
        self.manifest.unmark(self._key(name))

    def remove_golden(self) -> None:
        if not self._is_ours(self.sc.golden_name, role="golden"):
            raise NotOwned(f"{self.sc.golden_name} was not created by this scenario")
        self._remove_golden()
        self.manifest.unmark(self._key(self.sc.golden_name))

    def golden_id(self) -> str:
        return self.volume_id(self.sc.golden_name)


class Qcow2Cloner(_Native):
    backend = "qcow2"

    def __init__(self, scenario: Scenario, run: str) -> None:
        super().__init__(scenario, run)
        self.dir = Path(scenario.qcow2_dir)
        self.golden_file = f"{scenario.golden_name}.qcow2"
        self.manifest = FileManifest(self.dir, scenario.name, run)

    def _key(self, name: str) -> str:
        return f"{name}.qcow2"

    def _name(self, key: str) -> str:
        return key.removesuffix(".qcow2")

    def _existing(self) -> set[str]:
        return {p.name.removesuffix(".qcow2") for p in self.dir.glob("*.qcow2")} if self.dir.exists() else set()

    def golden_exists(self) -> bool:
        return (self.dir / self.golden_file).exists()

    def ensure_golden(self) -> bool:
        """Create and fill the golden if it is missing (and the scenario allows). True if created."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / self.golden_file
        if path.exists():
            return False
        if not self.sc.golden_create:
            raise CloneFailed(f"golden image {path} does not exist and golden.create is false")
        self.manifest.mark({self.golden_file: {"role": "golden", "created": time.time()}})
        _run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(self.sc.golden_size)])
        if self.sc.golden_fill:
            self._write(str(path), plan(self.sc.golden_size, 0, self.sc.golden_fill, "sequential", 0), 0.0, "0x5a")
        return True

    def _remove_golden(self) -> None:
        (self.dir / self.golden_file).unlink(missing_ok=True)

    def create(self, name: str, group: str, method: str) -> None:
        file = f"{name}.qcow2"
        if (self.dir / file).exists():
            raise CloneFailed(f"{file} exists already; not overwriting it")
        self._ensure_marked(name, group, method)
        try:
            if method == "clone":
                _run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.golden_file, "-F", "qcow2", file],
                     cwd=str(self.dir))
            else:
                _run(["qemu-img", "convert", "-O", "qcow2", self.golden_file, file], cwd=str(self.dir))
        except CloneFailed:
            (self.dir / file).unlink(missing_ok=True)
            self.manifest.unmark(file)
            raise

    def drift(self, name: str, start: int, end: int) -> int:
        if not self._is_ours(name):
            raise NotOwned(f"{name}.qcow2 is not ours")
        writes = plan(self.sc.golden_size, start, end, self.sc.drift_pattern, self.sc.drift_seed)
        self._write(str(self.dir / f"{name}.qcow2"), writes, self.sc.drift_compressible, "0xab")
        return sum(length for _, length in writes)

    def _write(self, path: str, writes: list[tuple[int, int]], fraction: float, pattern: str) -> None:
        if not writes:
            return
        # Incompressible writes repeat 64 KiB of random bytes; the file lives only for this call, so
        # a daemon that runs for weeks leaves nothing behind in /tmp.
        with tempfile.NamedTemporaryFile(prefix="cwlg-pattern-") as noise:
            noise.write(os.urandom(65536))
            noise.flush()
            cmds = []
            for i, (off, length) in enumerate(writes):
                fill = f"-P {pattern}" if compressible(i, len(writes), fraction) else f"-s {noise.name}"
                cmds.append(f"write -q {fill} {off} {length}")
            _run(["qemu-io", "-f", "qcow2", path], input_text="\n".join(cmds) + "\n")

    def _remove(self, name: str) -> None:
        (self.dir / f"{name}.qcow2").unlink(missing_ok=True)

    def volume_id(self, name: str) -> str:
        return str((self.dir / f"{name}.qcow2").resolve())

    def measure(self) -> dict[str, Volume]:
        return scan_dir(str(self.dir), (".qcow2",))


class RbdCloner(_Native):
    backend = "rbd"

    def __init__(self, scenario: Scenario, run: str) -> None:
        super().__init__(scenario, run)
        self.pool = scenario.rbd_pool
        self.snap = scenario.golden_snapshot
        base = []
        if scenario.rbd_ceph_conf:
            base += ["--conf", scenario.rbd_ceph_conf]
        if scenario.rbd_ceph_id:
            base += ["--id", scenario.rbd_ceph_id]
        self._base = base
        self.manifest = RadosManifest(["rados", *base], self.pool, scenario.name, run)

    def _rbd(self, *args: str, timeout: float = 600) -> str:
        return _run(["rbd", *self._base, *args], timeout=timeout)

    def spec(self, image: str) -> str:
        return f"{self.pool}/{image}"

    def _existing(self) -> set[str]:
        return set(json.loads(self._rbd("ls", "-p", self.pool, "--format", "json") or "[]"))

    def golden_exists(self) -> bool:
        return self.sc.golden_name in self._existing()

    def ensure_golden(self) -> bool:
        name = self.sc.golden_name
        if self.golden_exists():
            snaps = json.loads(self._rbd("snap", "ls", self.spec(name), "--format", "json") or "[]")
            if not any(s.get("name") == self.snap for s in snaps if isinstance(s, dict)):
                raise CloneFailed(f"golden {self.spec(name)} has no snapshot {self.snap!r}")
            return False
        if not self.sc.golden_create:
            raise CloneFailed(f"golden {self.spec(name)} does not exist and golden.create is false")
        self.manifest.mark({name: {"role": "golden", "created": time.time()}})
        self._rbd("create", "--size", f"{self.sc.golden_size // 2**20}M", self.spec(name))
        if self.sc.golden_fill:
            self._bench(name, self.sc.golden_fill, "sequential")
        self._rbd("snap", "create", "--no-progress", f"{self.spec(name)}@{self.snap}")
        self._rbd("snap", "protect", f"{self.spec(name)}@{self.snap}")
        return True

    def _remove_golden(self) -> None:
        name = self.sc.golden_name
        self._rbd("snap", "unprotect", f"{self.spec(name)}@{self.snap}")
        self._rbd("snap", "purge", "--no-progress", self.spec(name))
        self._rbd("rm", "--no-progress", self.spec(name))

    def create(self, name: str, group: str, method: str) -> None:
        if name not in self._reserved and name in self._existing():
            raise CloneFailed(f"{self.spec(name)} exists already; not touching it")
        self._ensure_marked(name, group, method)
        source = f"{self.spec(self.sc.golden_name)}@{self.snap}"
        try:
            if method == "clone":
                self._rbd("clone", source, self.spec(name))
            else:
                self._rbd("cp", "--no-progress", source, self.spec(name))
        except CloneFailed:
            self.manifest.unmark(name)
            raise

    def _bench(self, image: str, total: int, pattern: str) -> None:
        size = "4M" if pattern == "sequential" else "4K"
        self._rbd("bench", "--io-type", "write", "--io-size", size, "--io-total", str(total),
                  "--io-pattern", "seq" if pattern == "sequential" else "rand", "--io-threads", "1",
                  self.spec(image))

    def drift(self, name: str, start: int, end: int) -> int:
        """rbd bench writes from offset 0 (sequential) or at random 4 KiB offsets: to reach a
        cumulative level we write the whole level again, which adds exactly end - start new
        bytes for sequential drift."""
        if not self._is_ours(name):
            raise NotOwned(f"{self.spec(name)} is not ours")
        if end <= start:
            return 0
        if self.sc.drift_pattern == "sequential":
            self._bench(name, end, "sequential")
        else:
            self._bench(name, end - start, "random-4k")
        return end - start

    def _remove(self, name: str) -> None:
        self._rbd("rm", "--no-progress", self.spec(name))

    def volume_id(self, name: str) -> str:
        return rbd_volume_id(self.pool, "", name)

    def measure(self) -> dict[str, Volume]:
        du = json.loads(self._rbd("du", "-p", self.pool, "--format", "json"))
        ls = json.loads(self._rbd("ls", "-l", "-p", self.pool, "--format", "json"))
        return rbd_volumes(self.pool, parse_rbd_du(du), parse_rbd_ls(ls))
