"""The Kubernetes resources clonewatch watches, as data."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    name: str           # our short key, also the `resource` label value
    group: str          # "" for the core group
    version: str
    plural: str
    namespaced: bool
    optional: bool      # a CRD that may not be installed: 404 means "absent, look again later"
    # Older versions to try, in order, when the API does not serve `version` (KubeVirt served its
    # snapshot and clone kinds as v1alpha1 only before 1.3 and 1.5; the shapes we read are the same).
    fallbacks: tuple[str, ...] = ()

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.version, *self.fallbacks)

    def path(self, namespace: str | None, version: str = "") -> str:
        version = version or self.version
        base = f"/api/{version}" if not self.group else f"/apis/{self.group}/{version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


PVC = Resource("persistentvolumeclaims", "", "v1", "persistentvolumeclaims", True, False)
PV = Resource("persistentvolumes", "", "v1", "persistentvolumes", False, False)
STORAGECLASS = Resource("storageclasses", "storage.k8s.io", "v1", "storageclasses", False, False)
DATAVOLUME = Resource("datavolumes", "cdi.kubevirt.io", "v1beta1", "datavolumes", True, True)
STORAGEPROFILE = Resource("storageprofiles", "cdi.kubevirt.io", "v1beta1", "storageprofiles", False, True)
DATASOURCE = Resource("datasources", "cdi.kubevirt.io", "v1beta1", "datasources", True, True)
VOLUMECLONESOURCE = Resource("volumeclonesources", "cdi.kubevirt.io", "v1beta1", "volumeclonesources",
                             True, True)
VOLUMESNAPSHOT = Resource("volumesnapshots", "snapshot.storage.k8s.io", "v1", "volumesnapshots", True, True)
VOLUMESNAPSHOTCONTENT = Resource("volumesnapshotcontents", "snapshot.storage.k8s.io", "v1",
                                 "volumesnapshotcontents", False, True)
CDI = Resource("cdis", "cdi.kubevirt.io", "v1beta1", "cdis", False, True)   # CDI's own config: the override
# KubeVirt (docs/field-facts.md): VMs and their disks, and how a VM is cloned (snapshot, restore).
VIRTUALMACHINE = Resource("virtualmachines", "kubevirt.io", "v1", "virtualmachines", True, True)
VMCLONE = Resource("virtualmachineclones", "clone.kubevirt.io", "v1beta1", "virtualmachineclones", True, True,
                   ("v1alpha1",))
VMSNAPSHOT = Resource("virtualmachinesnapshots", "snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots",
                      True, True, ("v1alpha1",))
VMSNAPSHOTCONTENT = Resource("virtualmachinesnapshotcontents", "snapshot.kubevirt.io", "v1beta1",
                             "virtualmachinesnapshotcontents", True, True, ("v1alpha1",))
VMRESTORE = Resource("virtualmachinerestores", "snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores",
                     True, True, ("v1alpha1",))

ALL = (PVC, PV, STORAGECLASS, DATAVOLUME, STORAGEPROFILE, DATASOURCE, VOLUMECLONESOURCE,
       VOLUMESNAPSHOT, VOLUMESNAPSHOTCONTENT, CDI, VIRTUALMACHINE, VMCLONE, VMSNAPSHOT, VMSNAPSHOTCONTENT, VMRESTORE)
