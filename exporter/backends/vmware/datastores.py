"""Virtual disk files in the datastores that no VM or template names (space nothing owns, "zombie
VMDKs"), as volumes.

Each datastore is searched (HostDatastoreBrowser.SearchDatastoreSubFolders_Task, `*.vmdk` with
sizes), a disk's files (descriptor and extents) are grouped by the descriptor's name, and a disk
none of whose files any VM's `layoutEx.file` names is `<vcenter>/[datastore] path.vmdk`, its bytes
the sizes of its files, `unreferenced` "unreferenced-disk". The browser says nothing of who made a
file or when (only when it was last modified), nor its capacity: `created` and provisioned stay 0.
Not searched, so never called unreferenced: folders vSphere keeps for itself (a leading ".", `fcd`
for First Class Disks, which CNS and the vSphere CSI driver own; `contentlib-*` for content
libraries), and every datastore of a refresh where some VM's layout is unknown or two datastores
share a name (either could make a used disk look unreferenced).
"""

import re
from collections.abc import Iterable
from typing import Any

import structlog

from ..base import Volume

UNREFERENCED = "unreferenced-disk"
# A datastore path as vCenter writes it, "[ds] dir/file.vmdk" (vcsim writes folders as "[ds]/dir").
_DS_PATH = re.compile(r"\[(?P<ds>[^\]]+)\]\s*/?(?P<path>.*)", re.S)
# A disk's other files, named after its descriptor: flat/delta/sparse extents, 2 GB split extents,
# raw device mappings, the change-tracking file.
_EXTENT = re.compile(r"-(?:flat|delta|sesparse|ctk|rdm|rdmp|s\d{3}|f\d{3})\.vmdk$")
_SKIPPED_FOLDERS = re.compile(r"\.|fcd(?:/|$)|contentlib-")
log = structlog.get_logger("clonewatch.vmware")


def datastore_path(name: Any) -> tuple[str, str] | None:
    """(datastore, path inside it) of "[ds] dir/file", None for anything else."""
    m = _DS_PATH.fullmatch(name.strip()) if isinstance(name, str) else None
    return (m["ds"], m["path"].strip("/")) if m else None


def _descriptor(path: str) -> str:
    return _EXTENT.sub(".vmdk", path)


def _byte_count(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def unreferenced_disks(vcenter: str, found: list[dict[str, Any]], vms: list[dict[str, Any]],
                       skipped: Iterable[str] = ()) -> dict[str, Volume]:
    """Disks in `found` (the search's {"folderPath", "file": [{"path", "fileSize"}]} results) no
    VM's layout names a file of. Nothing when some VM's layout is unknown; nothing from the
    datastores in `skipped`, nor from the folders vSphere keeps for itself."""
    if any(not vm.get("layout_known", True) for vm in vms):
        return {}
    skip = set(skipped)
    referenced = set()
    for vm in vms:
        for f in vm["file"]:
            where = datastore_path(f.get("name"))
            if where:
                referenced.add((where[0], _descriptor(where[1])))
    disks: dict[tuple[str, str], list[Any]] = {}
    for result in found:
        folder = datastore_path(result.get("folderPath"))
        if folder is None or folder[0] in skip or _SKIPPED_FOLDERS.match(folder[1]):
            continue
        for f in result.get("file") or ():
            name = f.get("path")
            if not isinstance(name, str) or not name.endswith(".vmdk") or "/" in name:
                continue
            path = f"{folder[1]}/{name}" if folder[1] else name
            disks.setdefault((folder[0], _descriptor(path)), []).append(f.get("fileSize"))
    volumes = {}
    for (ds, path), sizes in disks.items():
        if (ds, path) in referenced or not all(_byte_count(n) for n in sizes):
            continue        # named by a VM, or a size the server did not give: absent, not invented
        vid = f"{vcenter}/[{ds}] {path}"
        volumes[vid] = Volume(volume=vid, target=vcenter, consumed_bytes=sum(sizes), provisioned_bytes=0,
                              unreferenced=UNREFERENCED)
    return volumes


def search_disk_files(content: Any, vcenter: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every `*.vmdk` file of every accessible datastore with its size, and the datastores not to
    judge (a name two datastores share, one whose search failed)."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim, vmodl
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    try:
        stores = list(view.view)
    finally:
        view.Destroy()
    names = [ds.name for ds in stores]
    skipped = sorted({n for n in names if names.count(n) > 1})
    browser = vim.host.DatastoreBrowser
    spec = browser.SearchSpec(query=[browser.Query()], matchPattern=["*.vmdk"],
                              details=browser.FileInfo.Details(fileSize=True, fileType=True, modification=True))
    found = []
    for ds, name in zip(stores, names, strict=True):
        if name in skipped or not ds.summary.accessible:
            continue
        try:
            task = ds.browser.SearchDatastoreSubFolders_Task(datastorePath=f"[{name}]", searchSpec=spec)
            WaitForTask(task)
        except (vmodl.MethodFault, vim.fault.VimFault) as exc:
            # Not seeing its files means not judging them: no unreferenced disk from it this time.
            log.warning("vmware_datastore_search_failed", vcenter=vcenter, datastore=name,
                        error=f"{type(exc).__name__}: {str(getattr(exc, 'msg', exc))[:200]}")
            skipped.append(name)
            continue
        for result in task.info.result or ():
            found.append({"folderPath": result.folderPath,
                          "file": [{"path": f.path, "fileSize": f.fileSize} for f in result.file or ()]})
    return found, skipped
