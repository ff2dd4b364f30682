"""What one process has sent another over TCP and the other has not read yet, from /proc: how a test
sees that a request is waiting at a stopped daemon (a paused OSD) instead of sleeping and hoping."""

import os
from pathlib import Path


def _inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:          # closed meanwhile
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def _connections() -> list[tuple[str, str, str, int, str]]:
    """(local, remote, state, bytes received and not read, inode) per TCP socket in this network namespace."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            rows.append((f[1], f[2], f[3], int(f[4].split(":")[1], 16), f[9]))
    return rows


LISTEN = "0A"


def unread(reader: int, writer: int) -> int:
    """Bytes process `writer` has sent to process `reader` that `reader` has not read, counting
    connections `reader` has not even accepted yet (they have no file descriptor, so no inode)."""
    ours, theirs = _inodes(reader), _inodes(writer)
    rows = _connections()
    listening = {local for local, _, state, _, inode in rows if state == LISTEN and inode in ours}
    sent_from = {(local, remote) for local, remote, _, _, inode in rows if inode in theirs}
    return sum(queued for local, remote, state, queued, inode in rows
               if state != LISTEN and (inode in ours or local in listening) and (remote, local) in sent_from)
