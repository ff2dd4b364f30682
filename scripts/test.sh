#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), starts a throwaway one-node Ceph
# cluster on 127.0.0.1, runs the whole test suite against it, and tears the cluster down.
# Extra arguments go to pytest (e.g. scripts/test.sh -k classify, scripts/test.sh --update-golden).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cluster=$(mktemp -d /tmp/cw-test.XXXXXX)
cleanup() { scripts/ceph-cluster.sh down "$cluster" || true; }
trap cleanup EXIT INT TERM
echo "test: starting a local Ceph cluster in $cluster" >&2
start=$(date +%s)
conf=$(scripts/ceph-cluster.sh up "$cluster" rbd)
echo "test: Ceph ready in $(( $(date +%s) - start ))s" >&2

export CLONEWATCH_TEST_CEPH_CONF="$conf"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
set +e
.venv/bin/python -m pytest -p no:cacheprovider -q -ra "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
[ "$rc" -eq 5 ] && { echo "test: no tests ran" >&2; exit 1; }
exit "$rc"
