#!/usr/bin/env bash
# The embedded local default, no cluster needed: real qcow2 linked clones and full copies of a
# 1 GiB golden (examples/local-qcow2.yaml) made, drifted and measured by the loadgen harness while
# the exporter watches the same directory. Prints the harness table and the exporter's own view,
# leaves the HTML report in a fresh directory per run, and removes the images.
# ~30 s once set up (a fresh clone: ~60 s, half of it creating the virtualenv); ~7 GiB of temporary disk.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

scenario=${1:-examples/local-qcow2.yaml}
run=$(mktemp -d /tmp/clonewatch-local.XXXXXX)
out=${CLONEWATCH_REPORT_DIR:-$run/report}
port=${CLONEWATCH_PORT:-9753}
# A scenario's image directory is fixed in its file; each run gets its own, inside the run directory.
sed "s#^\(  dir:\).*#\1 $run/images#" "$scenario" > "$run/scenario.yaml"
scenario=$run/scenario.yaml
images=$(.venv/bin/python -c "import sys; from loadgen.scenario import load; print(load(sys.argv[1]).qcow2_dir)" "$scenario")
mkdir -p "$images" "$out"

.venv/bin/python -m exporter --no-kubernetes.enabled --no-rbd.enabled --qcow2.dirs="$images" \
  --qcow2.refresh-interval=1 --web.listen-address="127.0.0.1:$port" --log.format=console \
  2>"$out/exporter.log" &
exporter=$!
trap 'kill $exporter 2>/dev/null || true; wait $exporter 2>/dev/null || true' EXIT INT TERM
ready() { .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" 2>/dev/null; }
for _ in $(seq 1 100); do ready && break; kill -0 $exporter 2>/dev/null || { cat "$out/exporter.log" >&2; exit 1; }; sleep 0.2; done

echo "local default: images in $images, exporter on http://127.0.0.1:$port/metrics"
.venv/bin/python -m loadgen harness --scenario "$scenario" --out "$out" --keep | grep -v '^report: ' | cat -s
sleep 2.5     # one more exporter refresh of the directory
echo "The exporter's view of the same directory:"
.venv/bin/python -m exporter.summary "http://127.0.0.1:$port/metrics" | awk 'NF == 0 { exit } { print }'
.venv/bin/python -m loadgen --log.level warning cleanup --scenario "$scenario" --golden >/dev/null
echo
echo "report: $out/report.html  (summary.csv and points/*.json beside it; images removed)"
