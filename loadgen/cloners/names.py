"""Our mark and our names: the owner value every record and label of ours carries, and clone names
(cwlg-<scenario>-<group>-<seq>) that say which scenario and group a clone belongs to."""

OWNER = "clonewatch-loadgen"
PREFIX = "cwlg"


def volume_name(scenario: str, group: str, seq: int) -> str:
    return f"{PREFIX}-{scenario}-{group}-{seq:05d}"


def parse_name(scenario: str, name: str) -> tuple[str, int] | None:
    """(group, seq) of one of our names for this scenario, else None."""
    prefix = f"{PREFIX}-{scenario}-"
    if not name.startswith(prefix):
        return None
    group, _, seq = name[len(prefix):].rpartition("-")
    return (group, int(seq)) if group and seq.isdigit() else None
