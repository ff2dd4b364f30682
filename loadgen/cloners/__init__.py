"""Cloners: the verbs loadgen needs (golden, clone, full copy, drift, delete, adopt) per platform."""

OWNER = "clonewatch-loadgen"
PREFIX = "cwlg"


class NotOwned(Exception):
    """A resource without our ownership mark: loadgen never touches it."""


class CloneFailed(Exception):
    """A clone, copy or drift operation failed; counted and reported, the cycle goes on."""


def volume_name(scenario: str, group: str, seq: int) -> str:
    return f"{PREFIX}-{scenario}-{group}-{seq:05d}"


def parse_name(scenario: str, name: str) -> tuple[str, int] | None:
    """(group, seq) of one of our names for this scenario, else None."""
    prefix = f"{PREFIX}-{scenario}-"
    if not name.startswith(prefix):
        return None
    group, _, seq = name[len(prefix):].rpartition("-")
    return (group, int(seq)) if group and seq.isdigit() else None
