"""Native cloners: qcow2 files (qemu-img / qemu-io) and Ceph RBD images (rbd CLI).

Ownership marks:
- qcow2: `.clonewatch-loadgen.json` in the directory lists every file loadgen created, with the
  scenario and run. A file not listed there is never modified or deleted.
- RBD: image metadata `clonewatch.loadgen.scenario` / `.run` / `.group` / `.created`, set right
  after creation and checked before any drift or delete.
"""

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from exporter.backends.base import Volume
from exporter.backends.qcow2 import scan_dir
from exporter.backends.rbd import build_volumes, parse_du, parse_ls, volume_id

from ..drift import compressible, plan
from ..scenario import Scenario
from . import OWNER, CloneFailed, NotOwned, parse_name

STATE_FILE = ".clonewatch-loadgen.json"
META = "clonewatch.loadgen."


@dataclass
class Owned:
    name: str
    group: str
    method: str
    created: float
    run: str
    drift_bytes: int = 0


def _run(argv: list[str], *, input_text: str | None = None, timeout: float = 600, env: dict | None = None,
         cwd: str | None = None) -> str:
    try:
        proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=cwd)
    except FileNotFoundError:
        raise CloneFailed(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CloneFailed(f"{' '.join(argv[:3])} did not finish within {timeout:g}s") from None
    if proc.returncode != 0:
        raise CloneFailed(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc.stdout


class Qcow2Cloner:
    backend = "qcow2"

    def __init__(self, scenario: Scenario, run: str) -> None:
        self.sc, self.run = scenario, run
        self.dir = Path(scenario.qcow2_dir)
        self.golden_file = f"{scenario.golden_name}.qcow2"
        self._pattern_file = None
        self._lock = threading.Lock()      # the state file is read-modified-written by worker threads

    # -- ownership ----------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            doc = json.loads((self.dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return {"owner": OWNER, "volumes": {}}
        except ValueError as exc:
            raise CloneFailed(f"{self.dir / STATE_FILE} is damaged ({exc}); not touching anything") from None
        if not isinstance(doc, dict) or doc.get("owner") != OWNER or not isinstance(doc.get("volumes"), dict):
            raise CloneFailed(f"{self.dir / STATE_FILE} is not ours; not touching anything")
        return doc

    def _save(self, doc: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".cwlg-state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.dir / STATE_FILE)

    def _update(self, change) -> None:
        with self._lock:
            doc = self._state()
            change(doc["volumes"])
            self._save(doc)

    def _mark(self, file: str, **record) -> None:
        self._update(lambda vols: vols.__setitem__(file, {"scenario": self.sc.name, "run": self.run, **record}))

    def _unmark(self, file: str) -> None:
        self._update(lambda vols: vols.pop(file, None))

    def _is_ours(self, file: str) -> bool:
        with self._lock:
            rec = self._state()["volumes"].get(file)
        return isinstance(rec, dict) and rec.get("scenario") == self.sc.name

    def owned(self) -> list[Owned]:
        out = []
        for file, rec in self._state()["volumes"].items():
            if not isinstance(rec, dict) or rec.get("scenario") != self.sc.name or rec.get("role") != "clone":
                continue
            name = file.removesuffix(".qcow2")
            if parse_name(self.sc.name, name) is None or not (self.dir / file).exists():
                continue
            out.append(Owned(name, rec.get("group", ""), rec.get("method", ""), float(rec.get("created", 0)),
                             rec.get("run", ""), int(rec.get("drift_bytes", 0))))
        return sorted(out, key=lambda o: o.name)

    # -- verbs --------------------------------------------------------------------------------
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
        _run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(self.sc.golden_size)])
        self._mark(self.golden_file, role="golden", created=time.time())
        if self.sc.golden_fill:
            self._write(str(path), plan(self.sc.golden_size, 0, self.sc.golden_fill, "sequential", 0), 0.0, "0x5a")
        return True

    def remove_golden(self) -> None:
        rec = self._state()["volumes"].get(self.golden_file, {})
        if rec.get("role") != "golden" or rec.get("scenario") != self.sc.name:
            raise NotOwned(f"{self.golden_file} was not created by this scenario")
        (self.dir / self.golden_file).unlink(missing_ok=True)
        self._unmark(self.golden_file)

    def create(self, name: str, group: str, method: str) -> None:
        file = f"{name}.qcow2"
        if (self.dir / file).exists():
            raise CloneFailed(f"{file} exists already")
        # Mark first: a crash between the two leaves a record of a file that may exist, never an
        # unmarked file of ours.
        self._mark(file, role="clone", group=group, method=method, created=time.time())
        try:
            if method == "clone":
                _run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.golden_file, "-F", "qcow2", file],
                     cwd=str(self.dir))
            else:
                _run(["qemu-img", "convert", "-O", "qcow2", self.golden_file, file], cwd=str(self.dir))
        except CloneFailed:
            (self.dir / file).unlink(missing_ok=True)
            self._unmark(file)
            raise

    def drift(self, name: str, start: int, end: int) -> int:
        file = f"{name}.qcow2"
        if not self._is_ours(file):
            raise NotOwned(f"{file} is not ours")
        writes = plan(self.sc.golden_size, start, end, self.sc.drift_pattern, self.sc.drift_seed)
        self._write(str(self.dir / file), writes, self.sc.drift_compressible, "0xab")
        return sum(length for _, length in writes)

    def _write(self, path: str, writes: list[tuple[int, int]], fraction: float, pattern: str) -> None:
        if not writes:
            return
        if self._pattern_file is None and fraction < 1.0:
            fd, self._pattern_file = tempfile.mkstemp(prefix="cwlg-pattern-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(65536))
        cmds = []
        for i, (off, length) in enumerate(writes):
            fill = f"-P {pattern}" if compressible(i, len(writes), fraction) else f"-s {self._pattern_file}"
            cmds.append(f"write -q {fill} {off} {length}")
        _run(["qemu-io", "-f", "qcow2", path], input_text="\n".join(cmds) + "\n")

    def delete(self, name: str) -> None:
        file = f"{name}.qcow2"
        if parse_name(self.sc.name, name) is None or not self._is_ours(file):
            raise NotOwned(f"{file} is not ours")
        (self.dir / file).unlink(missing_ok=True)
        self._unmark(file)

    def record_drift(self, name: str, total: int) -> None:
        def change(vols: dict) -> None:
            if isinstance(vols.get(f"{name}.qcow2"), dict):
                vols[f"{name}.qcow2"]["drift_bytes"] = total
        self._update(change)

    # -- measuring ------------------------------------------------------------------------------
    def volume_id(self, name: str) -> str:
        return str((self.dir / f"{name}.qcow2").resolve())

    def golden_id(self) -> str:
        return self.volume_id(self.sc.golden_name)

    def measure(self) -> dict[str, Volume]:
        return scan_dir(str(self.dir), (".qcow2",))


class RbdCloner:
    backend = "rbd"

    def __init__(self, scenario: Scenario, run: str) -> None:
        self.sc, self.run = scenario, run
        self.pool = scenario.rbd_pool
        self.snap = scenario.golden_snapshot

    def _rbd(self, *args: str, timeout: float = 600) -> str:
        argv = ["rbd"]
        if self.sc.rbd_ceph_conf:
            argv += ["--conf", self.sc.rbd_ceph_conf]
        if self.sc.rbd_ceph_id:
            argv += ["--id", self.sc.rbd_ceph_id]
        return _run(argv + list(args), timeout=timeout)

    def spec(self, image: str) -> str:
        return f"{self.pool}/{image}"

    def _meta(self, image: str) -> dict[str, str]:
        try:
            doc = json.loads(self._rbd("image-meta", "list", self.spec(image), "--format", "json") or "{}")
        except (CloneFailed, ValueError):
            return {}
        return {k[len(META):]: v for k, v in doc.items() if isinstance(k, str) and k.startswith(META)} \
            if isinstance(doc, dict) else {}

    def _set_meta(self, image: str, **values: str) -> None:
        for key, value in values.items():
            self._rbd("image-meta", "set", self.spec(image), META + key, str(value))

    def _is_ours(self, image: str) -> bool:
        return self._meta(image).get("scenario") == self.sc.name

    def owned(self) -> list[Owned]:
        names = json.loads(self._rbd("ls", "-p", self.pool, "--format", "json") or "[]")
        out = []
        for name in names:
            if parse_name(self.sc.name, name) is None:
                continue
            meta = self._meta(name)
            if meta.get("scenario") != self.sc.name or meta.get("role") != "clone":
                continue
            out.append(Owned(name, meta.get("group", ""), meta.get("method", ""), float(meta.get("created", 0)),
                             meta.get("run", ""), int(meta.get("drift_bytes", 0) or 0)))
        return sorted(out, key=lambda o: o.name)

    def golden_exists(self) -> bool:
        return self.sc.golden_name in json.loads(self._rbd("ls", "-p", self.pool, "--format", "json") or "[]")

    def ensure_golden(self) -> bool:
        name = self.sc.golden_name
        if self.golden_exists():
            snaps = json.loads(self._rbd("snap", "ls", self.spec(name), "--format", "json") or "[]")
            if not any(s.get("name") == self.snap for s in snaps if isinstance(s, dict)):
                raise CloneFailed(f"golden {self.spec(name)} has no snapshot {self.snap!r}")
            return False
        if not self.sc.golden_create:
            raise CloneFailed(f"golden {self.spec(name)} does not exist and golden.create is false")
        self._rbd("create", "--size", f"{self.sc.golden_size // 2**20}M", self.spec(name))
        self._set_meta(name, scenario=self.sc.name, run=self.run, role="golden", created=f"{time.time():.3f}")
        if self.sc.golden_fill:
            self._bench(name, self.sc.golden_fill, "sequential")
        self._rbd("snap", "create", "--no-progress", f"{self.spec(name)}@{self.snap}")
        self._rbd("snap", "protect", f"{self.spec(name)}@{self.snap}")
        return True

    def remove_golden(self) -> None:
        name = self.sc.golden_name
        meta = self._meta(name)
        if meta.get("scenario") != self.sc.name or meta.get("role") != "golden":
            raise NotOwned(f"{self.spec(name)} was not created by this scenario")
        self._rbd("snap", "unprotect", f"{self.spec(name)}@{self.snap}")
        self._rbd("snap", "purge", "--no-progress", self.spec(name))
        self._rbd("rm", "--no-progress", self.spec(name))

    def create(self, name: str, group: str, method: str) -> None:
        source = f"{self.spec(self.sc.golden_name)}@{self.snap}"
        if method == "clone":
            self._rbd("clone", source, self.spec(name))
        else:
            self._rbd("cp", "--no-progress", source, self.spec(name))
        try:
            self._set_meta(name, scenario=self.sc.name, run=self.run, role="clone", group=group, method=method,
                           created=f"{time.time():.3f}")
        except CloneFailed:
            self._rbd("rm", "--no-progress", self.spec(name))   # just created by us: never left unmarked
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

    def record_drift(self, name: str, total: int) -> None:
        self._set_meta(name, drift_bytes=str(total))

    def delete(self, name: str) -> None:
        if parse_name(self.sc.name, name) is None or not self._is_ours(name):
            raise NotOwned(f"{self.spec(name)} is not ours")
        self._rbd("rm", "--no-progress", self.spec(name))

    def volume_id(self, name: str) -> str:
        return volume_id(self.pool, "", name)

    def golden_id(self) -> str:
        return self.volume_id(self.sc.golden_name)

    def measure(self) -> dict[str, Volume]:
        du = json.loads(self._rbd("du", "-p", self.pool, "--format", "json"))
        ls = json.loads(self._rbd("ls", "-l", "-p", self.pool, "--format", "json"))
        return build_volumes(self.pool, parse_du(du), parse_ls(ls))


def make_cloner(scenario: Scenario, run: str):
    if scenario.backend == "kubernetes":
        from .kube import KubeCloner
        return KubeCloner(scenario, run)
    return Qcow2Cloner(scenario, run) if scenario.backend == "qcow2" else RbdCloner(scenario, run)
