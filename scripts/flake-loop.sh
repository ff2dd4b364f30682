#!/usr/bin/env bash
# Runs the integration and e2e tests N times against one throwaway Ceph cluster and prints, per
# module, how many runs had a failure. For hunting flakes by hand; not part of CI.
#   scripts/flake-loop.sh [N] [pytest paths...]     (default: 20 runs of tests/integration tests/e2e)
# It runs from a clone of HEAD in its own directory, so edits made meanwhile do not leak into it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/cw-flake.XXXXXX)
git clone -q . "$work/src"
cd "$work/src"
runs=${1:-20}; shift || true
paths=("$@"); [ ${#paths[@]} -gt 0 ] || paths=(tests/integration tests/e2e)
scripts/setup.sh >/dev/null
out=$work
cluster="$out/ceph"
trap 'scripts/ceph-cluster.sh down "$cluster" || true' EXIT
trap 'exit 143' INT TERM        # stop the loop itself, not just the run in progress
export CLONEWATCH_TEST_CEPH_CONF=$(scripts/ceph-cluster.sh up "$cluster" rbd)
echo "flake-loop: $runs runs of ${paths[*]}; results in $out" >&2
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  .venv/bin/python -m pytest -p no:cacheprovider -q --junitxml="$out/run-$i.xml" "${paths[@]}" >"$out/run-$i.log" 2>&1 && rc=0 || rc=$?
  echo "flake-loop: run $i rc=$rc in $(( $(date +%s) - start ))s" >&2
done
.venv/bin/python - "$out" <<'PY'
import collections, glob, sys, xml.etree.ElementTree as ET
runs = collections.Counter(); failed = collections.Counter(); names = collections.defaultdict(set)
for path in sorted(glob.glob(f"{sys.argv[1]}/run-*.xml")):
    bad = set(); seen = set()
    for case in ET.parse(path).iter("testcase"):
        parts = case.get("classname", "").split(".")
        cut = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        module = ".".join(parts[: cut + 1])
        seen.add(module)
        if case.find("failure") is not None or case.find("error") is not None:
            bad.add(module); names[module].add(case.get("name"))
    for m in seen: runs[m] += 1
    for m in bad: failed[m] += 1
for m in sorted(runs):
    print(f"{m:55} {failed[m]:2d}/{runs[m]:2d} failed  {' '.join(sorted(names[m]))}")
PY
