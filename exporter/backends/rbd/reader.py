"""What the RBD backend asks of a way to read Ceph (`--rbd.client`): one target's volumes.

Two clients answer it: the rbd command (cli.py) and librbd in-process (librbd.py). The backend
picks one when it is built and asks it the same question for every target.
"""

from dataclasses import dataclass
from typing import Protocol

from ..base import Volume


@dataclass(frozen=True)
class CephCluster:
    """How to reach one Ceph cluster; name "" is the default cluster."""
    name: str = ""
    conf: str = ""
    client_id: str = ""
    keyring: str = ""
    mon_host: str = ""


class PoolReader(Protocol):
    async def read(self, cluster: CephCluster, target: str) -> dict[str, Volume]:
        """Every volume of one target (pool or pool/namespace) of the cluster; BackendError on failure."""
        ...

    def images_read(self, cluster: str, target: str) -> dict[str, int]:
        """How many images of the target were read which way since start (empty: it does not count)."""
        ...

    async def close(self) -> None:
        """Let go of what the client holds (connections, threads)."""
        ...
