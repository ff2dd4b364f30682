"""The librbd refresh reads again only what changed (fingerprint = header omap + object map), and
what it reuses is what a full read would give: after every step, a fresh Reader's full read of the
pool is compared with the incremental one, image by image."""

import pytest

from exporter.backends.rbd.librbd import FULL_READ_EVERY, Reader, available
from tests.support.cephcsi import CephCsi

MiB = 2**20
pytestmark = pytest.mark.skipif(not available(), reason="python3-rbd is installed by scripts/setup.sh")


def by_id(images):
    return {i.image_id: i for i in images}


def test_unchanged_images_are_reused_and_changes_are_seen(pool):
    csi = CephCsi(pool)
    golden = csi.create_volume(16)
    clones = [csi.clone_volume(golden, 4) for _ in range(3)]
    snap = csi.create_snapshot(golden)
    reader = Reader(pool.conf, "", "", "", 30, 4)

    def step():
        before = reader.reused
        incremental = by_id(reader.read(pool.name, ""))
        fresh = Reader(pool.conf, "", "", "", 30, 4)
        try:
            full = by_id(fresh.read(pool.name, ""))
        finally:
            fresh.close()
        assert incremental == full, "what is reused equals a full read"
        return incremental, reader.reused - before

    try:
        first, reused = step()
        assert reused == 0 and len(first) == 8          # golden, 3 x (temp + clone), the csi-snap image
        _, reused = step()
        assert reused == len(first), "nothing changed: nothing opened"
        pool.write(clones[0], 8)                          # drift: the object map changes
        images, reused = step()
        assert reused == len(first) - 1
        assert next(i for i in images.values() if i.name == clones[0]).own_bytes == 8 * MiB
        pool.rbd("snap", "create", pool.spec(f"{clones[1]}@user"))        # a snapshot: the header changes
        _, reused = step()
        assert reused == len(first) - 1
        pool.rbd("flatten", "--no-progress", pool.spec(clones[2]))       # the parent link goes
        images, reused = step()
        assert next(i for i in images.values() if i.name == clones[2]).parent is None
        csi.delete_volume(clones[0])                                      # to the trash: same header, new state
        images, _ = step()
        assert next(i for i in images.values() if i.name == clones[0]).trashed
        csi.delete_snapshot(snap)
        for _ in range(FULL_READ_EVERY):                                  # past a periodic full read
            step()
    finally:
        reader.close()
