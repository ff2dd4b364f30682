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

    def path(self, namespace: str | None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
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

ALL = (PVC, PV, STORAGECLASS, DATAVOLUME, STORAGEPROFILE, DATASOURCE, VOLUMECLONESOURCE,
       VOLUMESNAPSHOT, VOLUMESNAPSHOTCONTENT, CDI)
