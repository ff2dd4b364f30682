"""The govmomi vCenter simulator (vcsim), built from Debian's golang-github-vmware-govmomi-dev by
tests/support/vcsim/main.go, started per test on 127.0.0.1 with our certificate and a real login check.

What vcsim (govmomi 0.24) does and does not model: the inventory, logins, TLS, the
PropertyCollector, snapshots and CloneVM_Task work; each layoutEx file's size is its stat() under
the datastore directory (0 for the files of its default VMs, which it never writes) and a disk's
chain follows its backing's `parent`, top first. CloneVM_Task ignores diskMoveType, so linked
clones are built with LinkedCloneEstate below. SearchDatastoreSubFolders_Task walks the datastore's
directory: a file is listed only if it matches one of the spec's matchPattern, its fileSize is its
stat() size, a subfolder's folderPath is written "[ds]/dir" (vCenter writes "[ds] dir"), and
UnregisterVM leaves a VM's files where they are (a zombie disk); Destroy_Task deletes the VM's
config.files.logDirectory, which is not always the directory LinkedCloneEstate wrote its disks to."""

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

SOURCE = Path(__file__).parent / "vcsim"
GOPATH = "/usr/share/gocode"


def binary() -> Path:
    """Build once per source version; cached under ~/.cache/clonewatch."""
    digest = hashlib.sha256((SOURCE / "main.go").read_bytes()).hexdigest()[:12]
    out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clonewatch" / f"vcsim-{digest}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOPATH": GOPATH, "GO111MODULE": "off", "GOCACHE": str(out.parent / "go-build")}
        tmp = out.with_suffix(".tmp")
        subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=SOURCE, env=env, check=True,
                       capture_output=True, timeout=600)
        tmp.rename(out)
    return out


class VCSim:
    def __init__(self, cert: Path, key: Path, username: str, password: str, retrieve_delay_ms: int = 0) -> None:
        self.username, self.password = username, password
        self.proc = subprocess.Popen([str(binary()), "-cert", str(cert), "-key", str(key),
                                      "-username", username, "-password", password,
                                      "-retrieve-delay-ms", str(retrieve_delay_ms)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = urlparse(self.proc.stdout.readline().strip())
        if not url.port:
            self.stop()
            raise RuntimeError("vcsim did not start")
        self.address = f"127.0.0.1:{url.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def write_secret_dir(self, directory: Path, ca: Path | None, password: str | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "address").write_text(self.address)
        (directory / "username").write_text(self.username)
        (directory / "password").write_text(password if password is not None else self.password)
        if ca is not None:
            (directory / "ca.crt").write_bytes(ca.read_bytes())
        else:
            (directory / "ca.crt").unlink(missing_ok=True)
        return directory

    def connect(self, ca: Path):
        import ssl

        from pyVim.connect import SmartConnect
        host, port = self.address.split(":")
        return SmartConnect(host=host, port=int(port), user=self.username, pwd=self.password,
                            sslContext=ssl.create_default_context(cafile=str(ca)))


MiB = 2**20
DESCRIPTOR = """# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID={parent_cid}
createType="{create_type}"
{parent_hint}
# Extent description
RW {sectors} {extent_kind} "{extent}" 0

# The Disk Data Base
ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "19"
"""


class LinkedCloneEstate:
    """A linked-clone estate built in vcsim the way vSphere lays one out, with real files in the
    datastore's directory (vcsim sizes each layoutEx file by stat()ing it):

    - golden: a thin base disk `golden/golden.vmdk` holding `golden_mib` of data, frozen by snapshot
      `base`; after the snapshot the golden VM runs on its own delta `golden/golden-000001.vmdk`;
    - each linked clone: a delta `<vm>/<vm>-000001.vmdk` whose backing parent is the golden's base disk
      (what createNewChildDiskBacking makes; vcsim's CloneVM_Task ignores diskMoveType, so the VM is
      created with that backing directly);
    - a full clone: a thick copy, whose file is sparse here but, as vSphere reports a thick disk,
      counts its whole capacity.

    Sizes model what vSphere reports: a thin disk's and a delta's file size is what they hold (a
    SEsparse delta grows by the grains written), so those files are written densely; a thick disk's
    is its capacity. vcsim (govmomi 0.24) keeps the first size it saw per file name, so a drift step
    re-registers the VM over the same files (UnregisterVM + CreateVM), where vCenter would refresh
    its layout by itself."""

    def __init__(self, si, golden_mib: int, capacity_mib: int) -> None:
        from pyVmomi import vim
        self.vim, self.si = vim, si
        content = si.RetrieveContent()
        self.dc = content.rootFolder.childEntity[0]
        self.ds = next(d for d in self.dc.datastore if d.name == "LocalDS_0")
        self.root = Path(self.ds.info.url)
        self.pool = self.dc.hostFolder.childEntity[0].resourcePool
        self.capacity_mib = capacity_mib
        self.vms: dict[str, object] = {}
        self.parents: dict[str, str] = {}
        self._write("golden/golden.vmdk", golden_mib, "monolithicFlat")
        self.vms["golden"] = self._create("golden", "golden/golden.vmdk")
        self._wait(self.vms["golden"].CreateSnapshot_Task(name="base", description="", memory=False, quiesce=False))
        # After the snapshot the golden writes to a delta of its own, as vSphere does.
        self._write("golden/golden-000001.vmdk", 0, "seSparse", parent="golden/golden.vmdk")
        self._swap_disk("golden", "golden/golden-000001.vmdk", "golden/golden.vmdk")

    # -- files -------------------------------------------------------------------------------
    def _write(self, name: str, mib: int, kind: str, parent: str = "", apparent_mib: int = 0) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        extent = path.with_name(path.name.replace(".vmdk", "-flat.vmdk"))      # vcsim's extent naming
        hint = f'parentFileNameHint="{Path(parent).name}"' if parent else ""
        path.write_text(DESCRIPTOR.format(parent_cid="fffffffe" if parent else "ffffffff", create_type=kind,
                                          parent_hint=hint, sectors=self.capacity_mib * 2048,
                                          extent_kind="SESPARSE" if parent else "FLAT", extent=extent.name))
        with open(extent, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(MiB))
            if apparent_mib:
                f.truncate(apparent_mib * MiB)
        if parent:
            self.parents[name] = parent

    def grow(self, vm: str, mib: int) -> None:
        """More drift in a VM's delta, then a layout refresh (re-registering the VM)."""
        disk = f"{vm}/{vm}-000001.vmdk"
        with open((self.root / disk).with_name(f"{vm}-000001-flat.vmdk"), "ab") as f:
            for _ in range(mib):
                f.write(os.urandom(MiB))
        self.vms[vm].UnregisterVM()
        for leftover in (self.root / vm).iterdir():
            if not leftover.name.endswith(".vmdk"):
                leftover.unlink()
        self.vms[vm] = self._create(vm, disk, self.parents.get(disk, ""))

    def disk_bytes(self, *names: str) -> int:
        """What the files of these disks (descriptor + extent) occupy by their size on disk."""
        total = 0
        for name in names:
            path = self.root / name
            total += path.stat().st_size + path.with_name(path.name.replace(".vmdk", "-flat.vmdk")).stat().st_size
        return total

    # -- VMs -------------------------------------------------------------------------------
    def _backing(self, name: str, parent: str):
        vim = self.vim
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=f"[LocalDS_0] {name}", diskMode="persistent",
                                                                 thinProvisioned=True)
        if parent:
            backing.parent = self._backing(parent, self.parents.get(parent, ""))
            backing.deltaDiskFormat = "seSparseFormat"
        return backing

    def _disk(self, name: str, parent: str, operation: str = "add"):
        vim = self.vim
        disk = vim.vm.device.VirtualDisk(key=2000, controllerKey=1000, unitNumber=0,
                                         capacityInKB=self.capacity_mib * 1024, backing=self._backing(name, parent))
        return vim.vm.device.VirtualDeviceSpec(operation=operation, device=disk)

    def _create(self, vm: str, disk: str, parent: str = ""):
        vim = self.vim
        ctrl = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualLsiLogicController(
            key=1000, busNumber=0, sharedBus="noSharing"))
        spec = vim.vm.ConfigSpec(name=vm, files=vim.vm.FileInfo(vmPathName=f"[LocalDS_0] {vm}"), numCPUs=1,
                                 memoryMB=128, deviceChange=[ctrl, self._disk(disk, parent)])
        return self._wait(self.dc.vmFolder.CreateVM_Task(config=spec, pool=self.pool))

    def _swap_disk(self, vm: str, disk: str, parent: str) -> None:
        obj = self.vms[vm]
        current = next(d for d in obj.config.hardware.device if isinstance(d, self.vim.vm.device.VirtualDisk))
        remove = self.vim.vm.device.VirtualDeviceSpec(operation="remove", device=current)
        self._wait(obj.ReconfigVM_Task(spec=self.vim.vm.ConfigSpec(deviceChange=[remove, self._disk(disk, parent)])))

    def linked_clone(self, vm: str, drift_mib: int) -> None:
        disk = f"{vm}/{vm}-000001.vmdk"
        self._write(disk, drift_mib, "seSparse", parent="golden/golden.vmdk")
        self.vms[vm] = self._create(vm, disk, "golden/golden.vmdk")

    def full_clone(self, vm: str, written_mib: int) -> None:
        self._write(f"{vm}/{vm}.vmdk", written_mib, "monolithicFlat", apparent_mib=self.capacity_mib)
        self.vms[vm] = self._create(vm, f"{vm}/{vm}.vmdk")

    def destroy(self, vm: str) -> None:
        self._wait(self.vms.pop(vm).Destroy_Task())

    def _wait(self, task):
        from pyVim.task import WaitForTask
        WaitForTask(task)
        return task.info.result
