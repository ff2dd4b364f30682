#!/usr/bin/env python3
"""A stand-in `rbd` for the inventory benchmark: answers `du` and `ls -l` for one pool holding
FAKE_RBD_GOLDENS goldens (g0..) with a snapshot each and FAKE_RBD_IMAGES clones (vm-0..), in the
JSON shapes Ceph Pacific prints (tests/fixtures/ceph). Anything else exits 1."""

import json
import os
import sys

n = int(os.environ.get("FAKE_RBD_IMAGES", "10000"))
g = int(os.environ.get("FAKE_RBD_GOLDENS", "100"))
size = 20 * 2**30
args = sys.argv[1:]
if "du" in args:
    rows = []
    for i in range(g):
        rows.append({"name": f"g{i}", "id": f"{i:x}", "snapshot": "base", "snapshot_id": 4,
                     "provisioned_size": size, "used_size": size})
        rows.append({"name": f"g{i}", "id": f"{i:x}", "provisioned_size": size, "used_size": 0})
    rows += [{"name": f"vm-{i}", "id": f"a{i:x}", "provisioned_size": size, "used_size": (i % 50) * 4 * 2**20}
             for i in range(n)]
    json.dump({"images": rows, "total_provisioned_size": 0, "total_used_size": 0}, sys.stdout)
elif "ls" in args:
    rows = []
    for i in range(g):
        rows.append({"image": f"g{i}", "id": f"{i:x}", "size": size, "format": 2})
        rows.append({"image": f"g{i}", "id": f"{i:x}", "snapshot": "base", "snapshot_id": 4, "size": size,
                     "format": 2, "protected": "true"})
    rows += [{"image": f"vm-{i}", "id": f"a{i:x}", "size": size, "format": 2,
              "parent": {"pool": "p", "pool_namespace": "", "image": f"g{i % g}", "snapshot": "base"}}
             for i in range(n)]
    json.dump(rows, sys.stdout)
else:
    sys.exit(1)
