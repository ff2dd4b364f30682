#!/usr/bin/env bash
# Watch clonewatch live on this machine, no cluster needed: the exporter on a qcow2 directory, the
# loadgen daemon keeping a fleet of clones alive in it (clones drift, age and are replaced), and a
# real Prometheus with the project's rules; prints Prometheus links, runs until Ctrl-C (or for
# LIVE_SECONDS without a terminal), then shows each family's efficiency over time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/live.py "$@"
