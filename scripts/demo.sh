#!/usr/bin/env bash
# The local default, no Kubernetes needed: a throwaway one-node Ceph cluster on 127.0.0.1 with a
# golden image, CoW clones with known drift and full copies, the exporter measuring that pool in
# native mode, and the result printed as tables. On a terminal it keeps serving
# http://127.0.0.1:9753/metrics until Ctrl-C; otherwise it stops after printing.
#   DEMO_CLONES=10 DEMO_COPIES=3 DEMO_GOLDEN_MIB=256 DEMO_DRIFT_MIB=16 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  cat <<EOF
usage: scripts/demo.sh
A throwaway one-node Ceph cluster with a golden image, CoW clones and full copies, measured by the
exporter in native mode. Sizes: DEMO_CLONES (10), DEMO_COPIES (3), DEMO_GOLDEN_MIB (256),
DEMO_DRIFT_MIB (16); DEMO_PORT (9753) for /metrics.
EOF
  exit 0
fi
scripts/setup.sh

clones=${DEMO_CLONES:-10}; copies=${DEMO_COPIES:-3}
golden_mib=${DEMO_GOLDEN_MIB:-256}; drift_mib=${DEMO_DRIFT_MIB:-16}
port=${DEMO_PORT:-9753}
cluster=$(mktemp -d /tmp/cw-demo.XXXXXX)
exporter_pid=""
cleanup() {
  [ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null || true
  scripts/ceph-cluster.sh down "$cluster" || true
}
trap cleanup EXIT INT TERM

echo "demo: starting a local Ceph cluster in $cluster ..."
export CEPH_CONF; CEPH_CONF=$(scripts/ceph-cluster.sh up "$cluster" demo)
rbd create --size "${golden_mib}M" demo/golden
rbd bench --io-type write --io-size 4M --io-total "${golden_mib}M" --io-pattern seq --io-threads 1 demo/golden >/dev/null
rbd snap create --no-progress demo/golden@base && rbd snap protect demo/golden@base
echo "demo: golden image demo/golden: ${golden_mib} MiB written, snapshot base"
for i in $(seq -w 1 "$clones"); do
  rbd clone demo/golden@base "demo/vm-$i"
  rbd bench --io-type write --io-size 4M --io-total "${drift_mib}M" --io-pattern seq --io-threads 1 "demo/vm-$i" >/dev/null
done
echo "demo: $clones CoW clones (rbd clone), ${drift_mib} MiB of drift written into each"
rbd create --size "${golden_mib}M" demo/golden2
rbd bench --io-type write --io-size 4M --io-total "${golden_mib}M" --io-pattern seq --io-threads 1 demo/golden2 >/dev/null
for i in $(seq -w 1 "$copies"); do rbd cp --no-progress demo/golden2 "demo/copy-$i"; done
echo "demo: $copies full copies (rbd cp) of a second golden, demo/golden2"

.venv/bin/python -m exporter --no-kubernetes.enabled --rbd.pools=demo --ceph.conf="$CEPH_CONF" \
  --rbd.refresh-interval=10 --web.listen-address="127.0.0.1:$port" --log.format=console \
  2>"$cluster/exporter.log" &
exporter_pid=$!
for _ in $(seq 1 100); do
  .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" \
    >/dev/null 2>&1 && break
  kill -0 "$exporter_pid" 2>/dev/null || { cat "$cluster/exporter.log" >&2; exit 1; }
  sleep 0.2
done
echo
echo "What clonewatch measured (http://127.0.0.1:$port/metrics):"
echo
.venv/bin/python -m exporter.summary "http://127.0.0.1:$port/metrics"
echo
if [ -t 0 ] && [ -t 1 ]; then
  echo "The exporter keeps serving http://127.0.0.1:$port/metrics — Ctrl-C stops it and removes the cluster."
  wait "$exporter_pid"
fi
