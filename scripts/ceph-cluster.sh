#!/usr/bin/env bash
# A throwaway one-node Ceph cluster (mon + osd, no auth) bound to 127.0.0.1, for tests and demos.
#   scripts/ceph-cluster.sh up DIR [POOL]   -> prints the path of DIR/ceph.conf once the pool is usable
#   scripts/ceph-cluster.sh down DIR        -> stops the daemons started from DIR and deletes DIR
# CEPH_AUTH=cephx turns authentication on: DIR/keyring then holds client.admin (ceph.conf points at
# it) and mon.; the OSD has its own key. Default: no authentication.
# Needs Debian's ceph-mon, ceph-osd and ceph-common. Keep DIR short (unix socket paths <= 107 chars).
set -euo pipefail

cmd=${1:-}; dir=${2:-}; pool=${3:-rbd}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 up|down DIR [POOL]" >&2; exit 2; }

stop_daemons() {
  local d=$1 pidfile pid
  [ -d "$d/run" ] || return 0
  # OSD first, then mon: the OSD wants to tell the mon it is going down.
  for pidfile in "$d"/run/osd.*.pid "$d"/run/mon.*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # Only kill what was started with this cluster's conf (pids get reused).
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$d/ceph.conf"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

case "$cmd" in
down)
  stop_daemons "$dir"
  rm -rf "$dir"
  ;;
up)
  for b in ceph-mon ceph-osd ceph rbd monmaptool uuidgen; do
    command -v "$b" >/dev/null || { echo "missing $b: apt-get install ceph-mon ceph-osd ceph-common uuid-runtime" >&2; exit 1; }
  done
  stop_daemons "$dir"; rm -rf "$dir"
  mkdir -p "$dir"/{mon,osd,run,log,crash}
  dir=$(cd "$dir" && pwd)
  fsid=$(uuidgen)
  conf="$dir/ceph.conf"
  # Free monitor ports unless given: a second cluster (a developer's, another run) must not collide.
  if [ -z "${CEPH_MON_PORTS:-}" ]; then
    CEPH_MON_PORTS=$(python3 -c 'import socket
ports = []
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s); ports.append(s.getsockname()[1])
print(*ports)')
  fi
  read -r v2port v1port <<<"$CEPH_MON_PORTS"
  auth=${CEPH_AUTH:-none}
  case "$auth" in none|cephx) ;; *) echo "CEPH_AUTH: expected none or cephx, got $auth" >&2; exit 2 ;; esac
  monaddr="[v2:127.0.0.1:$v2port,v1:127.0.0.1:$v1port]"
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = $monaddr
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = $auth
auth service required = $auth
auth client required = $auth
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
crash dir = $dir/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
osd mon report interval = 1
[client]
admin socket =
log file =
[mon]
mon data = $dir/mon/\$cluster-\$id
[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/osd/\$cluster-\$id/keyring
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
osd memory target = 1073741824
CONF
  monmaptool --create --fsid "$fsid" --addv a "$monaddr" "$dir/monmap" >/dev/null
  mkfs_keyring=()
  if [ "$auth" = cephx ]; then
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
      --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    chmod 600 "$dir/keyring"
    mkfs_keyring=(--keyring "$dir/keyring")
  fi
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" "${mkfs_keyring[@]}" >/dev/null
  ceph-mon -c "$conf" -i a 2>>"$dir/log/mon-start.err"
  export CEPH_CONF="$conf"
  osd_uuid=$(uuidgen)
  mkdir -p "$dir/osd/ceph-0"
  if [ "$auth" = cephx ]; then
    osd_key=$(ceph-authtool --gen-print-key)
    printf '{"cephx_secret": "%s"}' "$osd_key" | timeout 60 ceph osd new "$osd_uuid" 0 -i - >/dev/null
    ceph-authtool --create-keyring "$dir/osd/ceph-0/keyring" --name osd.0 --add-key "$osd_key" >/dev/null
  else
    timeout 60 ceph osd new "$osd_uuid" 0 >/dev/null
  fi
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1 \
    || { cat "$dir/log/osd-mkfs.out" >&2; exit 1; }
  ceph-osd -c "$conf" -i 0 2>>"$dir/log/osd-start.err"
  for _ in $(seq 1 120); do
    timeout 10 ceph osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break
    sleep 0.5
  done
  timeout 60 ceph osd pool create "$pool" 16 16 >/dev/null 2>&1
  timeout 60 rbd pool init "$pool"
  # Ready means a real object write and delete go through, not just a green status.
  for _ in $(seq 1 120); do
    if echo probe | timeout 10 rados -p "$pool" put clonewatch-probe - 2>/dev/null \
       && timeout 10 rados -p "$pool" rm clonewatch-probe 2>/dev/null; then
      echo "$conf"; exit 0
    fi
    sleep 0.5
  done
  echo "ceph cluster in $dir did not become ready; logs in $dir/log" >&2
  exit 1
  ;;
*) echo "usage: $0 up|down DIR [POOL]" >&2; exit 2 ;;
esac
