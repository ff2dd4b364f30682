"""The array's replies to `lsvdisk`, `lssevdiskcopy`, `lsfcmap` and `lsvdisk <id>`, parsed.

Every value the array sends is a string; a reply that is not what IBM documents is a
BackendError naming the command and the field, never an exception from deeper down.
"""

from dataclasses import dataclass
from typing import Any

from ...kube.objects import text
from ..base import BackendError

_RESTORE = "yes"       # lsfcmap `restoring`: the mapping copies back onto its source, not a clone


def _rows(doc: Any, command: str) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise BackendError(f"{command}: reply is not a list of objects")
    return doc


def _count_or_blank(row: dict[str, Any], key: str, command: str) -> int | None:
    """A count the array may leave blank (used capacity in data reduction pools)."""
    return None if row.get(key) in ("", None) else _count(row, key, command)


def _count(row: dict[str, Any], key: str, command: str) -> int:
    value = row.get(key)
    if not isinstance(value, str) or not digits(value):
        raise BackendError(f"{command}: field {key}={value!r} is not a byte count / number "
                           f"(row id {str(row.get('id', row.get('vdisk_id')))[:40]!r})")
    return int(value)


def _field(row: dict[str, Any], key: str, command: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise BackendError(f"{command}: row without {key}: {str(row)[:200]}")
    return value


@dataclass(frozen=True)
class VDisk:
    id: str
    name: str
    uid: str
    capacity: int
    copies: int


@dataclass(frozen=True)
class FcMap:
    id: str
    name: str
    source: str        # vdisk id
    target: str
    status: str
    progress: int      # percent
    copy_rate: int
    restoring: bool


def parse_vdisks(doc: Any) -> dict[str, VDisk]:
    out = {}
    for row in _rows(doc, "lsvdisk"):
        vid = _field(row, "id", "lsvdisk")
        copies = row.get("copy_count", "1")
        out[vid] = VDisk(id=vid, name=text(row.get("name")), uid=_field(row, "vdisk_UID", "lsvdisk").upper(),
                         capacity=_count(row, "capacity", "lsvdisk"),
                         copies=int(copies) if isinstance(copies, str) and digits(copies) else 1)
    return out


def parse_se_copies(doc: Any) -> dict[str, list[int | None]]:
    """vdisk id -> used capacity of each thin/compressed copy (None: blank, a data reduction pool)."""
    out: dict[str, list[int | None]] = {}
    for row in _rows(doc, "lssevdiskcopy"):
        out.setdefault(_field(row, "vdisk_id", "lssevdiskcopy"), []).append(
            _count_or_blank(row, "used_capacity", "lssevdiskcopy"))
    return out


def parse_fcmaps(doc: Any) -> list[FcMap]:
    out = []
    for row in _rows(doc, "lsfcmap"):
        progress = _count(row, "progress", "lsfcmap")
        if progress > 100:
            raise BackendError(f"lsfcmap: progress {progress} is above 100 (mapping {row.get('id')!r})")
        out.append(FcMap(id=_field(row, "id", "lsfcmap"), name=text(row.get("name")),
                         source=_field(row, "source_vdisk_id", "lsfcmap"),
                         target=_field(row, "target_vdisk_id", "lsfcmap"),
                         status=_field(row, "status", "lsfcmap"), progress=progress,
                         copy_rate=_count(row, "copy_rate", "lsfcmap"),
                         restoring=row.get("restoring") == _RESTORE))
    return out


def parse_detail_used(doc: Any) -> int | None:
    """Used bytes of all copies from a detailed `lsvdisk <id>` ([vdisk, copy, copy, ...]).
    In a data reduction pool the array leaves used_capacity blank and gives the data written
    before deduplication and compression: we take that, the volume's own share of the pool."""
    rows = _rows(doc, "lsvdisk <id>")
    copies = [r for r in rows if "copy_id" in r]
    if not copies:
        raise BackendError("lsvdisk <id>: detailed view without copies")
    total = 0
    for row in copies:
        used = _count_or_blank(row, "used_capacity", "lsvdisk <id>")
        if used is None:
            used = _count_or_blank(row, "used_capacity_before_reduction", "lsvdisk <id>")
        if used is None:
            return None
        total += used
    return total


def digits(value: str) -> bool:
    return value.isascii() and value.isdigit()      # "²".isdigit() is True, int("²") is not
