"""The real local Ceph cluster (started by scripts/test.sh via scripts/ceph-cluster.sh)."""

import json
import os
import subprocess
import uuid

import pytest

MiB = 2**20
OBJECT = 4 * MiB      # RBD default object size (order 22)


def ceph_conf() -> str:
    conf = os.environ.get("CLONEWATCH_TEST_CEPH_CONF", "")
    if not conf or not os.path.exists(conf):
        pytest.fail("these tests need the local Ceph cluster: run them through scripts/test.sh, or start one with "
                    "scripts/ceph-cluster.sh up DIR and set CLONEWATCH_TEST_CEPH_CONF=DIR/ceph.conf")
    return conf


class Pool:
    """A fresh pool per test module, removed afterwards."""

    def __init__(self, conf: str, prefix: str = "t", name: str = "") -> None:
        self.conf = conf
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.ceph("osd", "pool", "create", self.name, "8", "8")
        self.rbd("pool", "init", self.name)

    def _run(self, argv: list[str], timeout: float = 120) -> str:
        env = dict(os.environ, CEPH_CONF=self.conf)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def ceph(self, *args: str) -> str:
        return self._run(["ceph", *args])

    def rbd(self, *args: str) -> str:
        return self._run(["rbd", *args])

    def rados(self, *args: str) -> str:
        return self._run(["rados", "-p", self.name, *args])

    def id(self) -> int:
        """The pool's id, as ceph-csi writes it into volume handles and its journal (%016x)."""
        (found,) = [p["pool_id"] for p in json.loads(self.ceph("osd", "pool", "ls", "detail", "--format", "json"))
                    if p["pool_name"] == self.name]
        return found

    def spec(self, image: str) -> str:
        return f"{self.name}/{image}"

    def create(self, image: str, size_mib: int) -> None:
        self.rbd("create", "--size", f"{size_mib}M", self.spec(image))

    def write(self, image: str, mib: int) -> None:
        """Write the first `mib` MiB in whole 4 MiB objects (so used bytes are exactly `mib`)."""
        assert mib * MiB % OBJECT == 0
        if mib:
            self.rbd("bench", "--io-type", "write", "--io-size", "4M", "--io-total", f"{mib}M",
                     "--io-pattern", "seq", "--io-threads", "1", self.spec(image))

    def golden(self, image: str, size_mib: int, snap: str = "base") -> None:
        self.create(image, size_mib)
        self.write(image, size_mib)
        self.rbd("snap", "create", "--no-progress", f"{self.spec(image)}@{snap}")
        self.rbd("snap", "protect", f"{self.spec(image)}@{snap}")

    def clone(self, golden: str, image: str, snap: str = "base") -> None:
        self.rbd("clone", f"{self.spec(golden)}@{snap}", self.spec(image))

    def full_copy(self, golden: str, image: str, snap: str = "base") -> None:
        self.rbd("cp", "--no-progress", f"{self.spec(golden)}@{snap}", self.spec(image))

    def du(self) -> dict:
        return json.loads(self.rbd("du", "-p", self.name, "--format", "json"))

    def remove(self) -> None:
        try:
            self.ceph("osd", "pool", "rm", self.name, self.name, "--yes-i-really-really-mean-it")
        except RuntimeError:
            pass
