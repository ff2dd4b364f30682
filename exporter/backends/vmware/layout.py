"""A VM's disk layers as volumes, from the properties vCenter gives (in the vSphere API's own field
names, so fixtures can be recorded).

A linked clone's disk is a delta layer on top of a layer of its source VM that a snapshot froze;
the source's own writes go to a delta of its own. Every layer is a volume here: parent = the
layer below it in the disk's backing chain (`layoutEx.disk[].chain`, base first), own bytes =
the sizes of that layer's files (`layoutEx.file[].size`), provisioned = the disk's capacity.
Layers are named after who owns them: `<vcenter>/<vm>` for a VM's current top layer,
`<vcenter>/<vm>@<snapshot>` for the layer a snapshot froze (what linked clones hang from), so a
family's source reads as "template@snapshot". A VM with several disks gets `/<disk key>`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..base import Volume


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
    if layout is None and "layoutEx.file" in props:
        layout = {"file": props["layoutEx.file"]}      # the whole-inventory retrieval of file names only
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
        "layout_known": layout is not None,
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
