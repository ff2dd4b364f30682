#!/usr/bin/env bash
# Everything clonewatch needs on a fresh Debian machine: system packages (Ceph CLI and daemons for
# the local test cluster, promtool, qemu-utils, Chromium to render reports in tests, Go and govmomi's
# source to build the vCenter simulator the VMware tests run against, Node.js and npm), a virtualenv in
# .venv with the project and its test dependencies, and Perses' npm packages in tests/perses. Safe to
# run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph:ceph-common rbd:ceph-common promtool:prometheus \
            qemu-img:qemu-utils uuidgen:uuid-runtime chromium:chromium go:golang-go node:nodejs npm:npm; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair##*:}")
done
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || need_apt+=(golang-github-vmware-govmomi-dev)
# Ceph's own Python bindings (librbd, librados) for the RBD backend: Debian's, of the same release as ceph-common.
ls /usr/lib/python3/dist-packages/rbd.cpython-*.so >/dev/null 2>&1 || need_apt+=(python3-rbd)
ls /usr/lib/python3/dist-packages/rados.cpython-*.so >/dev/null 2>&1 || need_apt+=(python3-rados)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: $(printf '%s\n' "${need_apt[@]}" | sort -u | tr '\n' ' ')" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${need_apt[@]}" | sort -u) >/dev/null
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: clonewatch needs Python >= 3.11 ($python is $("$python" -V 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the virtualenv in .venv" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.clonewatch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing clonewatch and its Python dependencies into .venv (about a minute the first time)" >&2
  start=$(date +%s)
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # setuptools' notes about editable installs are not for our users: keep the output to what matters.
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
  echo "setup: Python dependencies ready in $(( $(date +%s) - start ))s" >&2
fi
# Make Debian's rados/rbd modules (and only those) importable in .venv: a directory of links to them
# and a .pth naming it. They are CPython extensions; they load when .venv's Python has the same
# minor version as Debian's python3 (else the exporter falls back to the rbd command).
bindings="$PWD/.venv/ceph-bindings"
mkdir -p "$bindings"
for so in /usr/lib/python3/dist-packages/rados.cpython-*.so /usr/lib/python3/dist-packages/rbd.cpython-*.so; do
  [ -e "$so" ] && ln -sf "$so" "$bindings/"
done
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$bindings" > "$site/ceph-bindings.pth"
# Perses' own packages, at the versions tests/perses/package-lock.json pins, to check the generated
# Perses dashboards with (tests/deploy/test_perses.py); again only when the lock file changed.
npm_stamp=tests/perses/node_modules/.clonewatch-installed
if [ ! -f "$npm_stamp" ] || [ tests/perses/package-lock.json -nt "$npm_stamp" ]; then
  echo "setup: installing Perses' npm packages into tests/perses/node_modules (about a minute the first time)" >&2
  start=$(date +%s)
  (cd tests/perses && npm ci --no-audit --no-fund --loglevel=error) >&2
  touch "$npm_stamp"
  echo "setup: npm packages ready in $(( $(date +%s) - start ))s" >&2
fi
