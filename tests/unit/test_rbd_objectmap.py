"""The fast RBD path's decoders and arithmetic against bytes a real Ceph 16.2.15 cluster wrote, with
the rows its `rbd du` printed for the same images (tests/fixtures/ceph/rbd-objectmap.json, made by
tests/support/record_rbd_objects.py); the per-image steps against a stand-in ioctx serving them."""

import errno
import json
from pathlib import Path

import pytest

from exporter.backends.base import BackendError, TargetState
from exporter.backends.rbd.encoding import CEPH_NOSNAP, DecodeError, crc32c
from exporter.backends.rbd.fast_path import Job, Listing, PoolScan, data_objects
from exporter.backends.rbd.header import NO_OBJECT_MAP, TRASH, USER, decode_header, decode_snapshot, why_not_fast
from exporter.backends.rbd.objectmap import decode_bit_vector, num_objects, object_lengths, states
from exporter.backends.rbd.rados_reader import AioBatch
from exporter.backends.rbd.state import RbdTargetState
from exporter.backends.rbd.usage import own_bytes, versions
from exporter.collectors.rbd_reads import RbdReadsCollector

FIX = json.loads((Path(__file__).parents[1] / "fixtures" / "ceph" / "rbd-objectmap.json").read_text())
IMAGES = FIX["images"]
MiB = 2**20


def omap(name: str) -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in IMAGES[name]["header"].items()}


def du(name: str) -> int:
    return sum(row["used_size"] for row in IMAGES[name]["rbd_du"])


def maps(name: str) -> dict[int, bytes]:
    """version -> states, from the raw objects (CRCs checked)."""
    h = decode_header(omap(name))
    out = {}
    for key, m in IMAGES[name]["object_maps"].items():
        snap = CEPH_NOSNAP if key == "head" else int(key.split("_")[1], 16)
        _count, data = decode_bit_vector(bytes.fromhex(m["raw"]))
        size = h.version(snap)[0]
        out[snap] = states(data, num_objects(size, h.object_size, h.stripe_unit, h.stripe_count))
    return out


@pytest.mark.parametrize("name", ["gen", "child", "resize", "striped"])
def test_own_bytes_from_recorded_maps_are_rbd_dus(name):
    h = decode_header(omap(name))
    assert why_not_fast(h) is None
    assert versions(h) <= set(maps(name))
    assert own_bytes(h, maps(name)) == du(name)


def test_raw_maps_and_object_map_load_decode_alike_and_crcs_are_checked():
    for image in IMAGES.values():
        for m in image["object_maps"].values():
            raw, loaded = bytes.fromhex(m["raw"]), bytes.fromhex(m["loaded"])
            assert raw != loaded and decode_bit_vector(raw) == decode_bit_vector(loaded)
    raw = bytearray.fromhex(IMAGES["gen"]["object_maps"]["head"]["raw"])
    raw[18] ^= 0x40                     # the first data byte: object 0's state
    with pytest.raises(DecodeError, match="data CRC"):
        decode_bit_vector(bytes(raw))
    assert crc32c(b"123456789", 0xFFFFFFFF) ^ 0xFFFFFFFF == 0xE3069283     # the standard CRC-32C check value


def test_header_facts_snapshot_namespaces_and_parent():
    gen = decode_header(omap("gen"))
    assert (gen.size, gen.order, gen.parent) == (32 * MiB, 22, None)
    assert [s.namespace for s in gen.snapshots] == [USER, TRASH, USER]
    assert [s.name for s in gen.snapshots][::2] == ["s1", "s2"]
    child = decode_header(omap("child"))
    assert child.parent is not None and child.parent.snap_id == gen.snapshots[1].snap_id
    striped = decode_header(omap("striped"))
    assert (striped.object_size, striped.stripe_unit, striped.stripe_count) == (MiB, 64 * 1024, 4)


def test_an_invalidated_map_and_unknown_versions_are_refused():
    assert why_not_fast(decode_header(omap("invalid"))) == "object map invalid"
    record = bytearray(omap("gen")["snapshot_0000000000000004"])
    record[0] = 9                                   # a snapshot record of a version after v8
    with pytest.raises(DecodeError, match="version 9"):
        decode_snapshot(bytes(record))
    head = bytearray.fromhex(IMAGES["gen"]["object_maps"]["head"]["loaded"])
    head[4] = 2                                     # a BitVector of version 2
    with pytest.raises(DecodeError):
        decode_bit_vector(bytes(head))
    features = omap("gen")
    features["features"] = (int.from_bytes(features["features"], "little") | 1 << 11).to_bytes(8, "little")
    assert why_not_fast(decode_header(features)) == "unknown features"


@pytest.mark.parametrize("size,order,su,sc", [(20 * MiB + 5000, 20, 65536, 4), (10 * MiB + 123456, 22, 4 * MiB, 1),
                                              (3 * 65536 + 1, 20, 65536, 8), (0, 22, 4 * MiB, 1), (8 * MiB, 20, 4096, 3)])
def test_striper_against_a_block_by_block_walk(size, order, su, sc):
    osz = 1 << order
    walk: dict[int, int] = {}
    for offset in range(0, size, su):
        block = offset // su
        stripe, pos = divmod(block, sc)
        obj = stripe // (osz // su) * sc + pos
        walk[obj] = walk.get(obj, 0) + min(su, size - offset)
    lengths = object_lengths(size, osz, su, sc)
    assert num_objects(size, osz, su, sc) == len(lengths) == (max(walk) + 1 if walk else 0)
    assert {i: n for i, n in enumerate(lengths) if n} == walk


class FakeIoctx:
    """librados' asynchronous calls over recorded objects; completions run at once."""

    def __init__(self, objects: dict[str, dict | bytes], error: dict[str, int] | None = None) -> None:
        self.objects, self.error, self.calls, self.in_flight, self.most = objects, error or {}, [], 0, 0

    class Completion:
        def __init__(self, rv):
            self.rv = rv

        def get_return_value(self):
            return self.rv

    def create_read_op(self):
        return {}

    def release_read_op(self, op):
        op["released"] = True

    def get_omap_vals_by_keys(self, op, keys):
        op["keys"] = keys
        return op.setdefault("fixed", []), 0

    def get_omap_vals(self, op, start, prefix, limit):
        op["prefix"] = prefix
        return op.setdefault("listed", []), 0

    def operate_aio_read_op(self, op, oid, oncomplete):
        self.calls.append(oid)
        rv = self.error.get(oid, 0 if oid in self.objects else -errno.ENOENT)
        if rv == 0:
            values = self.objects[oid]
            op["fixed"].extend((k, v) for k, v in values.items() if k in op["keys"])
            op["listed"].extend((k, v) for k, v in values.items() if k.startswith(op["prefix"]))
        oncomplete(self.Completion(rv))

    def aio_stat(self, oid, oncomplete):
        self.calls.append(oid)
        size = self.objects.get(oid)
        rv = self.error.get(oid, 0 if size is not None else -errno.ENOENT)
        oncomplete(self.Completion(rv), size if rv == 0 else None, None)

    def aio_execute(self, oid, cls, method, data, length, oncomplete):
        self.calls.append(oid)
        assert (cls, method) == ("rbd", "object_map_load")
        out = self.objects.get(oid)
        rv = self.error.get(oid, len(out) if out is not None else -errno.ENOENT)
        oncomplete(self.Completion(rv), None if rv < 0 else (out + bytes(length))[:length])


def served(*names: str) -> dict:
    objects: dict = {}
    for n in names:
        objects[f"rbd_header.{n}"] = omap(n)
        for key, m in IMAGES[n]["object_maps"].items():
            oid = f"rbd_object_map.{n}" + ("" if key == "head" else "." + key.split("_")[1])
            objects[oid] = bytes.fromhex(m["loaded"])
    return objects


def scan(ioctx, names, last=None, limit=2, listing=None):
    fell: dict[str, str] = {}
    s = PoolScan(AioBatch(ioctx, limit, 1), last or {}, False, lambda job, why: fell.__setitem__(job.name, why),
                 listing)
    s.run([Job(n, n, False) for n in names])
    return s, fell


def test_the_scan_measures_falls_back_and_reuses():
    names = ["gen", "child", "resize", "striped", "invalid", "gone"]
    objects = served(*names[:-1])
    del objects["rbd_object_map.resize.0000000000000009"]
    ioctx = FakeIoctx(objects)
    s, fell = scan(ioctx, names)
    assert {n: m.own_bytes for n, m in s.measured.items()} == {n: du(n) for n in ("gen", "child", "striped")}
    assert fell == {"invalid": "object map invalid", "resize": "a snapshot's map is missing"}
    assert s.gone == {"gone"} and set(s.headers) == set(names) - {"gone"}
    again, _ = scan(FakeIoctx(objects), ["gen"], last={"gen": (s.measured["gen"].stamp, 7)})
    assert again.measured["gen"].reused and again.measured["gen"].own_bytes == 7


def test_a_header_that_changes_while_the_maps_are_read_is_read_again_then_left_to_librbd():
    objects = served("gen")
    ioctx = FakeIoctx(objects)
    reads = []
    real = ioctx.operate_aio_read_op

    def changing(op, oid, oncomplete):
        reads.append(oid)
        objects["rbd_header.gen"] = {**omap("gen"), "snap_seq": len(reads).to_bytes(8, "little")}
        real(op, oid, oncomplete)
    ioctx.operate_aio_read_op = changing
    s, fell = scan(ioctx, ["gen"])
    assert fell == {"gen": "the header kept changing"} and len(reads) == 4 and not s.measured


def without_object_map(snapshots: tuple[str, ...] = ()) -> tuple[dict, str]:
    """gen's header as a 32 MiB image with layering only and the given of its snapshots; its data prefix."""
    header = {k: v for k, v in omap("gen").items() if not k.startswith("snapshot_") or k in snapshots}
    header["features"] = (1).to_bytes(8, "little")
    return {"rbd_header.gen": header}, decode_header(header).object_prefix


def test_an_image_without_fast_diff_is_measured_object_by_object():
    objects, prefix = without_object_map()
    objects |= {f"{prefix}.{0:016x}": 4 * MiB, f"{prefix}.{3:016x}": 0, f"{prefix}.{7:016x}": 100}
    ioctx = FakeIoctx(objects)
    s, fell = scan(ioctx, ["gen"], limit=4)
    # every object looked up; the zero-length one (no snapshot could hold its data) is not counted
    assert fell == {} and s.measured["gen"].by_objects and s.measured["gen"].own_bytes == 8 * MiB
    assert sorted(c for c in ioctx.calls if c.startswith(prefix)) == [f"{prefix}.{i:016x}" for i in range(8)]
    assert not s.listed


def test_a_listing_of_the_namespace_replaces_the_lookups_when_the_pool_holds_fewer_objects():
    objects, prefix = without_object_map()
    objects |= {f"{prefix}.{0:016x}": 4 * MiB}
    asked = []
    listing = Listing(lambda: 3, lambda wanted: asked.append(wanted) or {prefix: [0, 5]})    # 5: only a snapshot's
    ioctx = FakeIoctx(objects)
    s, fell = scan(ioctx, ["gen"], listing=listing)
    assert fell == {} and s.listed and asked == [{prefix: 8}] and s.measured["gen"].own_bytes == 4 * MiB
    assert sorted(c for c in ioctx.calls if c.startswith(prefix)) == [f"{prefix}.{i:016x}" for i in (0, 5)]
    many = Listing(lambda: 10**6, lambda wanted: pytest.fail("listed a pool of a million objects"))
    s, _ = scan(FakeIoctx(objects), ["gen"], listing=many)
    assert not s.listed and s.measured["gen"].own_bytes == 4 * MiB
    failed = Listing(lambda: 3, lambda wanted: None)                # the listing failed: each object looked up
    s, _ = scan(FakeIoctx(objects), ["gen"], listing=failed)
    assert not s.listed and s.measured["gen"].own_bytes == 4 * MiB


def test_without_fast_diff_user_snapshots_and_zero_length_objects_over_a_snapshot_go_to_librbd():
    objects, prefix = without_object_map(("snapshot_0000000000000004",))          # s1, a user snapshot
    _, fell = scan(FakeIoctx(objects), ["gen"])
    assert fell == {"gen": NO_OBJECT_MAP}
    objects, prefix = without_object_map(("snapshot_0000000000000005",))          # a trash-namespace one
    objects |= {f"{prefix}.{2:016x}": 0}
    s, fell = scan(FakeIoctx(objects), ["gen"])
    assert fell == {"gen": "a zero-length object over a snapshot"} and not s.measured
    objects[f"{prefix}.{2:016x}"] = 10
    s, fell = scan(FakeIoctx(objects), ["gen"])
    assert fell == {} and s.measured["gen"].own_bytes == 4 * MiB


def test_data_objects_keeps_the_wanted_prefixes_below_their_counts():
    names = ["rbd_data.a.0000000000000002", "rbd_data.a.0000000000000009", "rbd_data.b.0000000000000000",
             "rbd_header.a", "rbd_data.a.zz", "rbd_object_map.a", "rbd_data.1.a.0000000000000001"]
    assert data_objects(names, {"rbd_data.a": 8, "rbd_data.c": 4}) == {"rbd_data.a": [2], "rbd_data.c": []}


def test_a_timeout_fails_the_read_once_everything_in_flight_came_back():
    ioctx = FakeIoctx(served("gen", "child"), error={"rbd_object_map.child": -errno.ETIMEDOUT})
    with pytest.raises(BackendError, match="ETIMEDOUT"):
        scan(ioctx, ["gen", "child"], limit=8)


def test_a_map_longer_than_asked_for_is_asked_for_again_with_room():
    ioctx = FakeIoctx({"m": bytes(range(100))})
    got = []
    batch = AioBatch(ioctx, 4, 1)
    batch.call("m", "rbd", "object_map_load", 10, lambda rv, data: got.append((rv, data)))
    batch.run()
    assert got == [(100, bytes(range(100)))] and ioctx.calls == ["m", "m"]


def test_the_collector_counts_each_rbd_target_by_method():
    states = [("rbd", RbdTargetState("pool", images_read={"objectmap": 5, "librbd": 2})),
              ("vpc", TargetState("zone")), ("rbd", RbdTargetState("empty"))]
    families = list(RbdReadsCollector(lambda: states).collect())
    assert [(s.name, s.labels, s.value) for f in families for s in f.samples] == [
        ("clonewatch_rbd_images_read_total", {"target": "pool", "method": "librbd"}, 2),
        ("clonewatch_rbd_images_read_total", {"target": "pool", "method": "objectmap"}, 5)]
    assert list(RbdReadsCollector(lambda: states[1:]).collect()) == []
