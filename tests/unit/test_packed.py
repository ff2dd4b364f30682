"""Objects kept packed: reads give equal, independent copies; a change is judged by content."""

import json
import sys

from exporter.kube.packed import PackedBucket, pack, same, unpack
from exporter.kube.store import Store, slim
from tests.support.objects import ODF_RBD, clone_annotations, pv_rbd, pvc, storageclass


def deep_size(value, seen=None):
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, str):
        return 0        # strings are interned and shared; count the containers
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(v, seen) for v in value.values())
    elif isinstance(value, list):
        size += sum(deep_size(v, seen) for v in value)
    return size


def test_equal_content_packed_differently_is_the_same_object():
    # marshal marks a string shared depending on its reference count at packing time:
    one = pack({"a": "".join(["ab", "cd"])})
    held = "".join(["ab", "cd"])
    two = pack({"a": held})
    assert one != two, "the premise: the bytes differ"
    assert same(one, two) and not same(one, pack({"a": "abce"})) and not same(None, one)


def test_a_replayed_event_packed_differently_or_with_keys_reordered_is_not_a_change():
    s = Store()
    obj = pvc("vms", "a", "sc", volume="pv-a", annotations=clone_annotations("csi-clone"))
    s.replace("persistentvolumeclaims", None, [obj])       # listed once: both resources are synced
    sc = {**storageclass("rbd", ODF_RBD), "parameters": {"clusterID": "openshift-storage", "pool": "vms", "imageFeatures": "layering"}}
    s.replace("storageclasses", None, [sc])
    s.take_changes()
    g = s.generation
    replayed = json.loads(json.dumps(obj))       # parsed again: fresh strings, other reference counts
    reordered = {**sc, "parameters": dict(reversed(list(sc["parameters"].items())))}
    assert pack(slim(reordered, "storageclasses")) != s.objects["storageclasses"].raw[("", "rbd")]
    s.apply("persistentvolumeclaims", [("MODIFIED", replayed)])
    s.apply("storageclasses", [("MODIFIED", reordered)])
    s.replace("persistentvolumeclaims", None, [replayed])
    s.replace("storageclasses", None, [reordered])
    assert s.generation == g and s.take_changes() == {}
    s.apply("persistentvolumeclaims", [("MODIFIED", pvc("vms", "a", "sc", volume="pv-b"))])
    changes = s.take_changes()
    assert list(changes) == [("persistentvolumeclaims", ("vms", "a"))]
    assert unpack(changes[("persistentvolumeclaims", ("vms", "a"))])["spec"]["volumeName"] == "pv-b"


def test_reads_are_independent_copies_with_shared_strings():
    s = Store()
    s.replace("persistentvolumes", None, [pv_rbd("pv-a", "pool", "csi-vol-1", storageclass_name="rbd")])
    first = s.get("persistentvolumes", "", "pv-a")
    first["spec"]["csi"]["volumeHandle"] = "mangled"
    second = s.get("persistentvolumes", "", "pv-a")
    assert second["spec"]["csi"]["volumeHandle"] != "mangled", "a reader's edit does not reach the cache"
    # Strings come back interned: what records keep of many objects is one copy.
    again = s.get("persistentvolumes", "", "pv-a")
    assert second["spec"]["csi"]["driver"] is again["spec"]["csi"]["driver"]


def test_a_packed_object_is_a_fraction_of_its_dict_tree():
    obj = slim(pvc("vms", "vm-1", "rbd", volume="pv-1", owner_dv="vm-1", annotations=clone_annotations("csi-clone")),
               "persistentvolumeclaims")
    packed = pack(obj)
    assert unpack(packed) == obj
    assert sys.getsizeof(packed) * 3 < deep_size(obj), (sys.getsizeof(packed), deep_size(obj))


def test_bucket_is_a_read_only_mapping_over_packed_objects():
    b = PackedBucket({("ns", "a"): pack({"x": 1}), ("ns", "b"): pack({"x": 2})})
    assert len(b) == 2 and ("ns", "a") in b and ("ns", "c") not in b
    assert b[("ns", "b")] == {"x": 2} and b.get(("ns", "c"), "none") == "none"
    assert dict(b.items()) == {("ns", "a"): {"x": 1}, ("ns", "b"): {"x": 2}}
    assert b == PackedBucket({("ns", "b"): pack({"x": 2}), ("ns", "a"): pack({"x": 1})})
    assert b != PackedBucket({("ns", "a"): pack({"x": 1})})
