"""Turn a list of objects into the watch cache's shape, the way the store would."""

from exporter.kube.store import key_of, slim

RESOURCE_OF_KIND = {
    "PersistentVolumeClaim": "persistentvolumeclaims", "PersistentVolume": "persistentvolumes",
    "StorageClass": "storageclasses", "DataVolume": "datavolumes", "StorageProfile": "storageprofiles",
    "DataSource": "datasources", "VolumeCloneSource": "volumeclonesources",
    "VolumeSnapshot": "volumesnapshots", "VolumeSnapshotContent": "volumesnapshotcontents", "CDI": "cdis",
    "VirtualMachine": "virtualmachines", "VirtualMachineClone": "virtualmachineclones",
    "VirtualMachineSnapshot": "virtualmachinesnapshots", "VirtualMachineSnapshotContent": "virtualmachinesnapshotcontents",
    "VirtualMachineRestore": "virtualmachinerestores",
}


def objects(*items: dict) -> dict:
    out: dict = {r: {} for r in RESOURCE_OF_KIND.values()}
    for item in items:
        resource = RESOURCE_OF_KIND[item["kind"]]
        obj = slim(item, resource)
        out[resource][key_of(obj)] = obj
    return out
