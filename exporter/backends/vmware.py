"""VMware vSphere linked clones (outside Kubernetes), through pyvmomi.

A linked clone's disk is a delta layer on top of a layer of its source VM that a snapshot froze;
the source's own writes go to a delta of its own. Every layer is a volume here: parent = the
layer below it in the disk's backing chain (`layoutEx.disk[].chain`, base first), own bytes =
the sizes of that layer's files (`layoutEx.file[].size`), provisioned = the disk's capacity.
Layers are named after who owns them: `<vcenter>/<vm>` for a VM's current top layer,
`<vcenter>/<vm>@<snapshot>` for the layer a snapshot froze (what linked clones hang from), so a
family's source reads as "template@snapshot". A VM with several disks gets `/<disk key>`.

Per vCenter and refresh: one login, one PropertyCollector RetrieveContents over a container view
of the VMs (never one call per VM), one logout. pyvmomi blocks, so it runs in a thread under
a deadline.
"""

import asyncio
import http.client
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.settings import option
from .base import BackendError, BackendSpec, Core, TargetState, Volume, VolumeRef, load_named, read_secret, record
from .transport import host_port, tls_context

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


@dataclass(frozen=True)
class VmwareSettings:
    vcenters: tuple[VCenterAccess, ...] = ()
    timeout_seconds: float = 60.0
    refresh_interval_seconds: float = 300.0


def load_vcenter(name: str, directory: Path, insecure: bool = False, folders: tuple[str, ...] = ()) -> VCenterAccess:
    """A vCenter from a directory holding a mounted Secret: address, username, password, [ca.crt]."""
    try:
        address = (directory / "address").read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {directory / 'address'}: {exc.strerror or exc}") from None
    if not address:
        raise ValueError(f"{directory / 'address'} is empty")
    ca = directory / "ca.crt"
    return VCenterAccess(name, address, directory / "username", directory / "password",
                         ca if ca.exists() else None, insecure, folders)

# -- the facts we read, in the vSphere API's own field names (so fixtures can be recorded) -------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute of a pyvmomi object or key of a dict (fixtures): same field names either way."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _moid(ref: Any) -> str:
    return ref if isinstance(ref, str) else str(getattr(ref, "_moId", ""))


def _snapshots(tree: Any) -> Iterable[dict[str, Any]]:
    for node in tree or ():
        yield {"moid": _moid(_get(node, "snapshot")), "name": str(_get(node, "name", ""))}
        yield from _snapshots(_get(node, "childSnapshotList"))


def vm_facts(moid: str, props: dict[str, Any]) -> dict[str, Any]:
    """The properties of one VM from RetrieveContents, as plain data."""
    layout = props.get("layoutEx")
    snap = props.get("snapshot")
    disks = []
    for dev in props.get("config.hardware.device") or ():
        capacity = _get(dev, "capacityInBytes")
        if capacity is None and _get(dev, "capacityInKB") is not None:
            capacity = _get(dev, "capacityInKB") * 1024       # older servers fill only this one
        if capacity is not None:                               # a VirtualDisk
            disks.append({"key": _get(dev, "key"), "capacityInBytes": capacity,
                          "fileName": str(_get(_get(dev, "backing"), "fileName", "") or "")})
    return {
        "moid": moid, "name": props.get("name", moid), "template": bool(props.get("config.template")),
        "devices": disks,
        "file": [{"key": _get(f, "key"), "name": _get(f, "name"), "type": _get(f, "type"), "size": _get(f, "size")}
                 for f in (_get(layout, "file") or ())],
        "disk": [{"key": _get(d, "key"), "chain": [{"fileKey": list(_get(c, "fileKey") or ())}
                                                     for c in (_get(d, "chain") or ())]}
                 for d in (_get(layout, "disk") or ())],
        "snapshotLayout": [{"key": _moid(_get(s, "key")),
                            "disk": [{"key": _get(d, "key"), "chain": [{"fileKey": list(_get(c, "fileKey") or ())}
                                                                         for c in (_get(d, "chain") or ())]}
                                     for d in (_get(s, "disk") or ())]}
                           for s in (_get(layout, "snapshot") or ())],
        "snapshots": list(_snapshots(_get(snap, "rootSnapshotList"))),
    }


@dataclass
class _Layer:
    key: str              # its descriptor file's datastore path: the same layer seen from any VM
    size: int | None
    capacity: int
    parent: str = ""
    name: str = ""
    parent_problem: str = ""


def _top_first(vm: dict[str, Any]) -> bool:
    """Whether this VM's chains list the running layer first. vCenter lists a chain base first; the
    govmomi simulator (0.24) walks the backing's parents, top first. The disk device's own backing
    file is the top layer, so it decides where a server says it (recorded shapes without it: base first)."""
    names = {f["key"]: f["name"] for f in vm["file"]}
    top = {d["key"]: d.get("fileName", "") for d in vm["devices"]}
    for disk in vm["disk"]:
        chain = disk["chain"]
        if len(chain) > 1 and top.get(disk["key"]):
            return top[disk["key"]] in {names.get(k) for k in chain[0]["fileKey"]}
    return False


def build_volumes(vcenter: str, vms: list[dict[str, Any]]) -> dict[str, Volume]:
    layers: dict[str, _Layer] = {}
    named: dict[str, str] = {}       # layer key -> owner name (first claim wins: VM tops, then snapshots)

    def layer_keys(vm: dict[str, Any], chain: list[dict[str, Any]], capacity: int) -> list[str]:
        files = {f["key"]: f for f in vm["file"]}
        keys, parent, problem = [], "", ""
        for link in chain:
            members = [files[k] for k in link["fileKey"] if k in files]
            if not members:
                # A link whose files the layout does not list (deleted or unreadable delta/base):
                # the layer above hangs from something we cannot see. Keep the rest of the VM.
                parent = f"<missing file keys {','.join(str(k) for k in link['fileKey'])}>"
                problem = "parent-file-missing"
                continue
            desc = [f for f in members if f["type"] == "diskDescriptor"] or members
            key = str(desc[0]["name"])
            sizes = [f["size"] for f in members]
            size = sum(sizes) if all(isinstance(s, int) and s >= 0 for s in sizes) else None
            layer = layers.setdefault(key, _Layer(key, size, capacity, parent, parent_problem=problem))
            if parent and not layer.parent:
                layer.parent, layer.parent_problem = parent, problem
            keys.append(key)
            parent, problem = key, ""
        return keys

    for vm in vms:
        capacity = {d["key"]: d["capacityInBytes"] for d in vm["devices"]}
        several = len(vm["disk"]) > 1
        flip = _top_first(vm)
        for disk in vm["disk"]:
            chain = disk["chain"][::-1] if flip else disk["chain"]
            keys = layer_keys(vm, chain, int(capacity.get(disk["key"]) or 0))
            if keys:
                named.setdefault(keys[-1], vm["name"] + (f"/{disk['key']}" if several else ""))
        snap_names = {s["moid"]: s["name"] for s in vm["snapshots"]}
        for snap in vm["snapshotLayout"]:
            for disk in snap["disk"]:
                chain = disk["chain"][::-1] if flip else disk["chain"]
                keys = layer_keys(vm, chain, int(capacity.get(disk["key"]) or 0))
                if keys:
                    label = f"{vm['name']}@{snap_names.get(snap['key'], snap['key'])}"
                    named.setdefault(keys[-1], label + (f"/{disk['key']}" if several else ""))

    def vid(key: str) -> str:
        return f"{vcenter}/{named.get(key, key)}"

    volumes = {}
    for key, layer in layers.items():
        if layer.size is None:
            continue          # the server did not say: absent, not invented
        parent_name = named.get(layer.parent, "") if layer.parent else ""
        volumes[vid(key)] = Volume(volume=vid(key), target=vcenter, consumed_bytes=layer.size,
                                   provisioned_bytes=layer.capacity,
                                   parent=vid(layer.parent) if layer.parent else "",
                                   parent_snapshot=parent_name.partition("@")[2],
                                   parent_problem=layer.parent_problem)
    return volumes

# -- talking to vCenter (blocking; run in a thread) ---------------------------------------------


def collect(access: VCenterAccess, timeout: float) -> list[dict[str, Any]]:
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
        facts, seen = [], set()
        for root in roots:
            view = content.viewManager.CreateContainerView(root, [vim.VirtualMachine], True)
            try:
                pc = vmodl.query.PropertyCollector
                spec = pc.FilterSpec(
                    objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                        pc.TraversalSpec(name="vms", path="view", skip=False, type=vim.view.ContainerView)])],
                    propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=PROPERTIES)])
                for oc in content.propertyCollector.RetrieveContents([spec]) or ():
                    if oc.obj._moId not in seen:
                        seen.add(oc.obj._moId)
                        facts.append(vm_facts(oc.obj._moId, {p.name: p.val for p in oc.propSet}))
            finally:
                view.Destroy()
        return facts
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
            facts = await asyncio.wait_for(asyncio.to_thread(collect, vc, timeout), timeout)
        except TimeoutError:
            # The thread ends on its own at the socket timeout; the refresh does not wait for it.
            raise BackendError(f"{vc.address}: no answer within {timeout:g}s") from None
        return build_volumes(vc.name, facts)


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


def vcenters_from(o: VmwareOptions) -> tuple[VCenterAccess, ...]:
    """The configured vCenters, each read from its Secret directory (ConfigError naming the key)."""
    return load_named("vmware.vcenters", o.vcenters, "vCenter",
                      lambda name, directory: load_vcenter(name, directory, o.insecure_skip_verify, o.folders))


def _build(o: VmwareOptions, core: Core) -> VmwareBackend | None:
    if not o.vcenters:
        return None
    return VmwareBackend(VmwareSettings(vcenters=vcenters_from(o), timeout_seconds=o.timeout,
                                        refresh_interval_seconds=o.refresh_interval))


SPEC = BackendSpec(NAME, 50, VmwareOptions, _build, vcenters_from)
