"""Scenario files (YAML): what to clone, how, how much drift, how often, and the safety caps.

Every key is checked; a wrong one raises ScenarioError naming it (the CLI exits 2).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.public import ConfigError, parse_bytes

BACKENDS = ("qcow2", "rbd", "kubernetes")
METHODS = ("clone", "full-copy")
KUBE_METHODS = ("datavolume", "pvc", "vmclone")
VOLUME_MODES = ("Block", "Filesystem")
PATTERNS = ("sequential", "random-4k")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")


class ScenarioError(ConfigError):
    """A bad scenario file; `key` names the entry (e.g. drift.levels[1])."""


@dataclass(frozen=True)
class Group:
    name: str
    method: str          # clone | full-copy (native); datavolume | pvc | vmclone (kubernetes)
    count: int
    storage_class: str = ""   # kubernetes: overrides kubernetes.storage_class for this group


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: str
    golden_name: str
    golden_size: int
    golden_fill: int
    golden_create: bool
    golden_snapshot: str
    groups: tuple[Group, ...]
    drift_levels: tuple[int, ...]          # cumulative bytes per clone
    drift_labels: tuple[str, ...]          # as written in the file, for reports
    drift_pattern: str
    drift_compressible: float
    drift_seed: int
    batch_size: int
    concurrency: int
    interval_seconds: float                # 0: one-shot
    retention_max_clones: int
    retention_max_age_seconds: float       # 0: no age limit
    limit_max_clones: int
    limit_max_bytes: int
    drift_rate: int = 0                    # daemon: bytes more per clone each cycle, after the levels
    drift_cap: int = 0                     # daemon: no clone drifts past this (0: the top level)
    qcow2_dir: str = ""
    rbd_pool: str = ""
    rbd_ceph_conf: str = ""
    rbd_ceph_id: str = ""
    source_path: str = ""
    kube: "KubeSettings | None" = None

    @property
    def clone_count(self) -> int:
        return sum(g.count for g in self.groups)


@dataclass(frozen=True)
class KubeSettings:
    namespace: str                 # where clones, Jobs go
    golden_namespace: str
    golden_name: str
    storage_class: str             # "" = the golden's
    volume_mode: str
    size: str                      # "" = the golden's request
    drift_image: str
    exporter_url: str
    kubeconfig: str = ""
    timeout_seconds: float = 600.0
    poll_seconds: float = 0.5
    source_vm: str = ""            # vmclone: the VirtualMachine cloned, in `namespace` (KubeVirt clones within one)
    source_vm_disk: str = ""       # vmclone: the volume drifted and measured ("" = its first PVC disk)


def parse_size(key: str, value: Any, of: int | None = None) -> int:
    """Bytes from 1GiB, 512Mi, 1e9, 200MiB, or a percentage of `of`."""
    if isinstance(value, str) and value.strip().endswith("%"):
        if of is None:
            raise ScenarioError(key, "a percentage is only allowed where there is a disk size to take it of")
        try:
            pct = float(value.strip()[:-1])
        except ValueError:
            raise ScenarioError(key, f"not a percentage: {value!r}") from None
        if not 0 <= pct <= 100:
            raise ScenarioError(key, f"percentage out of 0-100: {value!r}")
        return int(of * pct / 100)
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.endswith("B"):
        text = text[:-1]                    # 1GiB -> 1Gi, 1GB -> 1G, 100B -> 100
    parsed = parse_bytes(text)
    if parsed is None:
        raise ScenarioError(key, f"not a size: {value!r} (use e.g. 1GiB, 200MiB, 5%)")
    return parsed


def parse_duration(key: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    m = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ScenarioError(key, f"not a duration: {value!r} (use e.g. 30s, 10m, 1h, or seconds)")
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(m.group(1)) * unit


class _Reader:
    """Typed access to a mapping, remembering which keys were read so leftovers are errors."""

    def __init__(self, doc: Any, prefix: str) -> None:
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ScenarioError(prefix.rstrip(".") or "scenario", "must be a mapping")
        self.doc, self.prefix = doc, prefix
        self.seen: set[str] = set()

    def key(self, k: str) -> str:
        return self.prefix + k

    def raw(self, k: str, default: Any = None) -> Any:
        self.seen.add(k)
        return self.doc.get(k, default)

    def text(self, k: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        v = self.raw(k, default)
        if v is None:
            raise ScenarioError(self.key(k), "is required")
        if not isinstance(v, str):
            raise ScenarioError(self.key(k), f"must be a string, got {v!r}")
        if choices and v not in choices:
            raise ScenarioError(self.key(k), f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def whole(self, k: str, default: int, minimum: int = 0) -> int:
        v = self.raw(k, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ScenarioError(self.key(k), f"must be a whole number >= {minimum}, got {v!r}")
        return v

    def number(self, k: str, default: float, lo: float, hi: float) -> float:
        v = self.raw(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ScenarioError(self.key(k), f"must be a number in [{lo}, {hi}], got {v!r}")
        return float(v)

    def flag(self, k: str, default: bool) -> bool:
        v = self.raw(k, default)
        if not isinstance(v, bool):
            raise ScenarioError(self.key(k), f"must be true or false, got {v!r}")
        return v

    def sub(self, k: str) -> "_Reader":
        return _Reader(self.raw(k), self.key(k) + ".")

    def done(self) -> None:
        extra = sorted(str(k) for k in self.doc if k not in self.seen)
        if extra:
            raise ScenarioError(self.key(extra[0]), "unknown key")


def parse(doc: Any, base_dir: Path | None = None) -> Scenario:
    """The Scenario in a loaded YAML document, read a section at a time in a fixed order: the first
    bad entry met is the one reported."""
    top = _Reader(doc, "")
    name = top.text("name", "scenario")
    if not _NAME.match(name):
        raise ScenarioError("name", "lower-case letters, digits and '-', at most 32 characters")
    backend = top.text("backend", choices=BACKENDS)
    qcow2 = _qcow2(top.sub("qcow2"), backend, base_dir)
    rbd = _rbd(top.sub("rbd"), backend)
    kube = _kubernetes(top.sub("kubernetes"), backend)
    golden = _golden(top.sub("golden"))
    groups = _groups(top, backend)
    drift = _drift(top.sub("drift"), golden["golden_size"])
    batch_size = top.whole("batch_size", 10, minimum=1)
    concurrency = top.whole("concurrency", 4, minimum=1)
    interval = _schedule(top.sub("schedule"))
    retention = _retention(top.sub("retention"), groups)
    limits = _limits(top.sub("limits"))
    top.done()

    if any(gp.method == "vmclone" for gp in groups) and not (kube and kube.source_vm):
        raise ScenarioError("kubernetes.source_vm", "is required for a vmclone group (the VM it clones)")
    total, cap = sum(gp.count for gp in groups), limits["limit_max_clones"]
    if total > cap:
        raise ScenarioError("limits.max_clones", f"the groups ask for {total} clones, over the cap of {cap}")
    return Scenario(name=name, backend=backend, groups=groups, batch_size=batch_size, concurrency=concurrency,
                    interval_seconds=interval, kube=kube, **qcow2, **rbd, **golden, **drift, **retention, **limits)


# One function per section of the file. Each reads its section through its _Reader (done() at the end,
# so a stray key is an error) and returns the Scenario fields it sets.

def _qcow2(q: _Reader, backend: str, base_dir: Path | None) -> dict[str, Any]:
    qdir = q.text("dir", "")
    q.done()
    if backend == "qcow2" and not qdir:
        raise ScenarioError("qcow2.dir", "is required for backend qcow2")
    if qdir and base_dir is not None and not Path(qdir).is_absolute():
        qdir = str((base_dir / qdir).resolve())
    return {"qcow2_dir": qdir}


def _rbd(r: _Reader, backend: str) -> dict[str, Any]:
    pool, conf, cid = r.text("pool", ""), r.text("ceph_conf", ""), r.text("ceph_id", "")
    r.done()
    if backend == "rbd" and not pool:
        raise ScenarioError("rbd.pool", "is required for backend rbd")
    return {"rbd_pool": pool, "rbd_ceph_conf": conf, "rbd_ceph_id": cid}


def _kubernetes(k: _Reader, backend: str) -> KubeSettings | None:
    """The kubernetes section, None for the native backends (where any key in it is unknown)."""
    kube = None
    if backend == "kubernetes":
        kg = k.sub("golden")
        kube = KubeSettings(
            namespace=k.text("namespace"), golden_namespace=kg.text("namespace"), golden_name=kg.text("name"),
            storage_class=k.text("storage_class", ""), volume_mode=k.text("volume_mode", "Block", choices=VOLUME_MODES),
            size=k.text("size", ""), drift_image=k.text("drift_image", "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"),
            exporter_url=k.text("exporter_url"), kubeconfig=k.text("kubeconfig", ""),
            timeout_seconds=parse_duration("kubernetes.timeout", k.raw("timeout", "10m")),
            poll_seconds=parse_duration("kubernetes.poll", k.raw("poll", "0.5s")),
            **_source_vm(k.sub("source_vm")))
        kg.done()
        if kube.size and parse_bytes(kube.size) is None:
            raise ScenarioError("kubernetes.size", f"not a Kubernetes quantity: {kube.size!r}")
    k.done()
    return kube


def _source_vm(v: _Reader) -> dict[str, Any]:
    """kubernetes.source_vm: the VM the vmclone groups clone, and which of its disks is drifted and measured."""
    if not v.doc:
        v.done()
        return {}
    name, disk = v.text("name"), v.text("disk", "")
    v.done()
    return {"source_vm": name, "source_vm_disk": disk}


def _golden(g: _Reader) -> dict[str, Any]:
    golden_name = g.text("name", "golden")
    if not _NAME.match(golden_name):
        raise ScenarioError("golden.name", "lower-case letters, digits and '-', at most 32 characters")
    size = parse_size("golden.size", g.raw("size", "1GiB"))
    if size <= 0:
        raise ScenarioError("golden.size", "must be more than 0")
    fill = parse_size("golden.fill", g.raw("fill", "100%"), of=size)
    if fill > size:
        raise ScenarioError("golden.fill", "cannot be more than golden.size")
    create, snapshot = g.flag("create", True), g.text("snapshot", "base")
    g.done()
    return {"golden_name": golden_name, "golden_size": size, "golden_fill": fill, "golden_create": create,
            "golden_snapshot": snapshot}


def _groups(top: _Reader, backend: str) -> tuple[Group, ...]:
    """The groups list (read from the top reader: it is a list, each item a mapping of its own)."""
    raw_groups = top.raw("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ScenarioError("groups", "must be a non-empty list of {name, method, count}")
    groups, names = [], set()
    for i, item in enumerate(raw_groups):
        gr = _Reader(item, f"groups[{i}].")
        gname = gr.text("name")
        if not _NAME.match(gname) or gname in names:
            raise ScenarioError(f"groups[{i}].name", f"must be a unique short name, got {gname!r}")
        names.add(gname)
        methods = KUBE_METHODS if backend == "kubernetes" else METHODS
        groups.append(Group(gname, gr.text("method", choices=methods), gr.whole("count", 1, minimum=1),
                            gr.text("storage_class", "") if backend == "kubernetes" else ""))
        gr.done()
        if groups[-1].method == "vmclone" and groups[-1].storage_class:
            raise ScenarioError(f"groups[{i}].storage_class", "a vmclone's disks keep its source VM's storage classes")
    return tuple(groups)


def _drift(d: _Reader, size: int) -> dict[str, Any]:
    """Drift levels and how they are written; percentages are of the golden's size."""
    raw_levels = d.raw("levels", [])
    if not isinstance(raw_levels, list):
        raise ScenarioError("drift.levels", "must be a list of sizes or percentages")
    levels = tuple(parse_size(f"drift.levels[{i}]", v, of=size) for i, v in enumerate(raw_levels))
    if list(levels) != sorted(levels) or any(v > size for v in levels):
        raise ScenarioError("drift.levels", "must be cumulative (increasing) and at most the disk size")
    pattern = d.text("pattern", "sequential", choices=PATTERNS)
    compressible = d.number("compressible", 0.0, 0.0, 1.0)
    seed = d.whole("seed", 42)
    # Drift that keeps coming (the daemon): `rate` more bytes per clone every cycle, up to `cap`.
    rate = parse_size("drift.rate", d.raw("rate", 0), of=size)
    cap = parse_size("drift.cap", d.raw("cap", "50%" if rate else 0), of=size)
    if rate and not cap:
        raise ScenarioError("drift.cap", "must be above 0 with drift.rate: drift stops there")
    if cap > size:
        raise ScenarioError("drift.cap", "must be at most the disk size")
    d.done()
    return {"drift_levels": levels, "drift_labels": tuple(str(v) for v in raw_levels), "drift_pattern": pattern,
            "drift_compressible": compressible, "drift_seed": seed, "drift_rate": rate, "drift_cap": cap}


def _schedule(s: _Reader) -> float:
    interval = parse_duration("schedule.interval", s.raw("interval", 0))
    s.done()
    return interval


def _retention(ret: _Reader, groups: tuple[Group, ...]) -> dict[str, Any]:
    max_alive = ret.whole("max_clones", sum(gp.count for gp in groups), minimum=1)
    max_age = parse_duration("retention.max_age", ret.raw("max_age", 0))
    ret.done()
    return {"retention_max_clones": max_alive, "retention_max_age_seconds": max_age}


def _limits(lim: _Reader) -> dict[str, Any]:
    limit_clones = lim.whole("max_clones", 1000, minimum=1)
    limit_bytes = parse_size("limits.max_bytes", lim.raw("max_bytes", "100GiB"))
    lim.done()
    return {"limit_max_clones": limit_clones, "limit_max_bytes": limit_bytes}


def load(path: str) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("scenario", f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError("scenario", f"{path} is not valid YAML: {exc}") from None
    sc = parse(doc, base_dir=Path(path).resolve().parent)
    return Scenario(**{**sc.__dict__, "source_path": str(Path(path).resolve())})
