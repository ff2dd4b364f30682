"""VMware vSphere linked clones (outside Kubernetes), through pyvmomi: the backend.

Every disk layer of the VMs is a volume (layout.py); so is every disk file in the datastores that
no VM or template names (datastores.py). Per vCenter and refresh: one login, one PropertyCollector
RetrieveContents over a container view of the VMs (never one call per VM; a second one over the
whole inventory for the file names when `folders` narrows the first), one search per datastore,
one logout. pyvmomi blocks, so it runs in a thread under a deadline.
"""

import asyncio
import http.client
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config.settings import option
from ..base import BackendError, BackendSpec, Core, TargetState, Volume, VolumeRef, load_named, read_secret, record
from ..transport import host_port, tls_context
from .datastores import search_disk_files, unreferenced_disks
from .layout import build_volumes, vm_facts

NAME = "vmware"
PROPERTIES = ["name", "config.template", "config.hardware.device", "layoutEx", "snapshot"]


@dataclass(frozen=True)
class VCenterAccess:
    name: str
    address: str                    # host or host:port
    username_file: Path
    password_file: Path
    ca_file: Path | None = None
    insecure: bool = False
    folders: tuple[str, ...] = ()   # inventory paths to look in, e.g. "DC0/vm/golden"; () = everything
    search_datastores: bool = True  # look for disk files no VM names (one datastore search each)


@dataclass(frozen=True)
class VmwareSettings:
    vcenters: tuple[VCenterAccess, ...] = ()
    timeout_seconds: float = 60.0
    refresh_interval_seconds: float = 300.0


def load_vcenter(name: str, directory: Path, insecure: bool = False, folders: tuple[str, ...] = (),
                 search_datastores: bool = True) -> VCenterAccess:
    """A vCenter from a directory holding a mounted Secret: address, username, password, [ca.crt]."""
    try:
        address = (directory / "address").read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {directory / 'address'}: {exc.strerror or exc}") from None
    if not address:
        raise ValueError(f"{directory / 'address'} is empty")
    ca = directory / "ca.crt"
    return VCenterAccess(name, address, directory / "username", directory / "password",
                         ca if ca.exists() else None, insecure, folders, search_datastores)


@dataclass
class Collected:
    vms: list[dict[str, Any]]                                       # the VMs in scope (vm_facts)
    everyone: list[dict[str, Any]]                                   # every VM, for the files they name
    found: list[dict[str, Any]] = field(default_factory=list)        # datastore search results
    skipped: list[str] = field(default_factory=list)                 # datastores not to judge


# -- talking to vCenter (blocking; run in a thread) ---------------------------------------------


def _retrieve(content: Any, root: Any, paths: list[str], seen: set[str]) -> list[dict[str, Any]]:
    """vm_facts of every VM under `root` not in `seen`, in one RetrieveContents."""
    from pyVmomi import vim, vmodl
    view = content.viewManager.CreateContainerView(root, [vim.VirtualMachine], True)
    try:
        pc = vmodl.query.PropertyCollector
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                pc.TraversalSpec(name="vms", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])
        facts = []
        for oc in content.propertyCollector.RetrieveContents([spec]) or ():
            if oc.obj._moId not in seen:
                seen.add(oc.obj._moId)
                facts.append(vm_facts(oc.obj._moId, {p.name: p.val for p in oc.propSet}))
        return facts
    finally:
        view.Destroy()


def collect(access: VCenterAccess, timeout: float) -> Collected:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    host, port = host_port(access.address, 443)
    context = tls_context(access.ca_file, access.insecure)
    try:
        si = SmartConnect(host=host, port=port,
                          user=read_secret(access.username_file, "username"), pwd=read_secret(access.password_file, "password"),
                          sslContext=context, httpConnectionTimeout=timeout, connectionPoolTimeout=-1)
    except vim.fault.InvalidLogin:
        raise BackendError(f"{access.address}: login refused (InvalidLogin)") from None
    except ssl.SSLCertVerificationError as exc:
        raise BackendError(f"{access.address}: TLS certificate not trusted ({exc.verify_message}); "
                           "give the vCenter's CA bundle") from None
    except (OSError, http.client.HTTPException, vmodl.MethodFault) as exc:
        raise BackendError(f"{access.address}: cannot connect: {type(exc).__name__}: {str(exc)[:200]}") from None
    try:
        content = si.RetrieveContent()
        roots = []
        for path in access.folders or ("",):
            root = content.searchIndex.FindByInventoryPath(path) if path else content.rootFolder
            if root is None:
                raise BackendError(f"{access.address}: no inventory path {path!r}")
            if not isinstance(root, (vim.Folder, vim.Datacenter, vim.ComputeResource, vim.ResourcePool,
                                     vim.HostSystem)):
                raise BackendError(f"{access.address}: inventory path {path!r} is a "
                                   f"{type(root).__name__.rpartition('.')[2]}, not a folder")
            roots.append(root)
        facts: list[dict[str, Any]] = []
        seen: set[str] = set()
        for root in roots:
            facts += _retrieve(content, root, PROPERTIES, seen)
        if not access.search_datastores:
            return Collected(facts, facts)
        # A disk is judged against every VM of the vCenter, not only those in scope.
        everyone = facts + (_retrieve(content, content.rootFolder, ["name", "layoutEx.file"], seen)
                            if access.folders else [])
        found, skipped = search_disk_files(content, access.name)
        return Collected(facts, everyone, found, skipped)
    except vmodl.MethodFault as exc:
        raise BackendError(f"{access.address}: {type(exc).__name__}: {str(getattr(exc, 'msg', exc))[:200]}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise BackendError(f"{access.address}: {type(exc).__name__}: {exc}") from None
    finally:
        try:
            Disconnect(si)
        except Exception:       # the session is gone with the connection anyway
            pass


class VmwareBackend:
    name = NAME
    unshared_reason = "full-clone"     # a disk without a parent layer is a full clone
    pv_owned = False    # its volumes are VMs' disk layers, no PV's: only unreferenced disks are space no one owns

    def __init__(self, settings: VmwareSettings) -> None:
        self.settings = settings
        self.refresh_interval = settings.refresh_interval_seconds
        self._states = {v.name: TargetState(v.name) for v in settings.vcenters}

    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        return None            # VMs outside Kubernetes

    def serves_provisioner(self, provisioner: str) -> bool:
        return False

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        return None

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
        pass                   # what to measure comes from vCenter, not from PVs

    def states(self) -> dict[str, TargetState]:
        return self._states

    async def refresh(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for vc in self.settings.vcenters:
                tg.create_task(self._refresh_one(vc))

    async def _refresh_one(self, vc: VCenterAccess) -> None:
        await record(NAME, self._states[vc.name], self._measure(vc))

    async def _measure(self, vc: VCenterAccess) -> dict[str, Volume]:
        timeout = self.settings.timeout_seconds
        try:
            got = await asyncio.wait_for(asyncio.to_thread(collect, vc, timeout), timeout)
        except TimeoutError:
            # The thread ends on its own at the socket timeout; the refresh does not wait for it.
            raise BackendError(f"{vc.address}: no answer within {timeout:g}s") from None
        volumes = unreferenced_disks(vc.name, got.found, got.everyone, got.skipped)
        volumes.update(build_volumes(vc.name, got.vms))        # a VM's layer wins over a name clash
        return volumes


# -- registration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VmwareOptions:
    vcenters: tuple[str, ...] = option("vmware.vcenters", (), "vCenters as NAME=DIR, DIR holding address, username, "
                                       "password (and optionally ca.crt): linked clones outside Kubernetes")
    folders: tuple[str, ...] = option("vmware.folders", (), "inventory paths to look in, e.g. DC0/vm/golden "
                                      "(default: every VM)")
    insecure_skip_verify: bool = option("vmware.insecure-skip-verify", False,
                                        "labs only: do not check the vCenters' TLS certificates")
    timeout: float = option("vmware.timeout", 60.0, "seconds before a vCenter refresh is given up",
                            positive=True, unit="seconds")
    refresh_interval: float = option("vmware.refresh-interval", 300.0, "seconds between vCenter refreshes",
                                     positive=True, unit="seconds")
    unreferenced_disks: bool = option("vmware.unreferenced-disks", True, "search every datastore for disk files "
                                      "no VM or template names (one datastore browser search per datastore and "
                                      "refresh, within --vmware.timeout); off where that search is too slow")


def vcenters_from(o: VmwareOptions) -> tuple[VCenterAccess, ...]:
    """The configured vCenters, each read from its Secret directory (ConfigError naming the key)."""
    return load_named("vmware.vcenters", o.vcenters, "vCenter",
                      lambda name, directory: load_vcenter(name, directory, o.insecure_skip_verify, o.folders,
                                                           o.unreferenced_disks))


def _build(o: VmwareOptions, core: Core) -> VmwareBackend | None:
    if not o.vcenters:
        return None
    return VmwareBackend(VmwareSettings(vcenters=vcenters_from(o), timeout_seconds=o.timeout,
                                        refresh_interval_seconds=o.refresh_interval))


SPEC = BackendSpec(NAME, 50, VmwareOptions, _build, vcenters_from)
