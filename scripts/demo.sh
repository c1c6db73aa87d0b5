#!/bin/bash
# make demo: the example homelab fleet, for real.
#
#   1. the plan: where each workload would run, and why (no daemon needed);
#   2. duetd started on a private socket and state dir (build/demo);
#   3. duet apply -f manifests/examples --wait: the infrastructure VMs boot
#      (QEMU, under emulation when there is no usable KVM: then only those
#      that need a VM's isolation are VMs, see docs/placement.md), the
#      application containers start once what they depend on is up;
#   4. duet get, the web dashboard's address (duetd --web; DUET_DEMO_WEB
#      gives another ADDRESS:PORT than 127.0.0.1:9480), describe, logs,
#      the fleet network (names, a published
#      port), duet compare of web (measured as a container and as a VM),
#      duet top and the metrics, events;
#   5. everything deleted and duetd stopped, at the end or on Ctrl-C.
#
# libvirt: duetd uses the system's libvirtd when one answers, otherwise
# libvirt's embedded QEMU driver inside duetd itself; nothing else is started.
# KVM: some nested hosts offer /dev/kvm yet hang real guests, so the demo
# runs duetd where /dev/kvm is hidden (a private mount namespace) and the
# VMs run under emulation; DUET_DEMO_KVM=1 keeps /dev/kvm.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
DUET=$BUILD/duet
DUETD=$BUILD/duetd
DIR=$PWD/$BUILD/demo
export DUET_SOCKET=$DIR/duet.sock
# The demo daemon is configured by its options alone, not by a config file
# this host may have (/etc/duet/duetd.yaml).
export DUET_CONFIG=none

if [ -t 1 ]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi

[ "$(id -u)" = 0 ] || { echo "demo: duetd needs root (namespaces, cgroups, libvirt)" >&2; exit 1; }

daemon_pid=""
teardown() {
    trap - INT TERM EXIT
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        say "duet delete -f manifests/examples --wait (and stop duetd)"
        "$DUET" delete -f manifests/examples --wait
        kill "$daemon_pid"
        for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap 'teardown; exit 130' INT TERM
trap teardown EXIT

say "duet plan -f manifests/examples (this machine, as probed; no daemon needed)"
"$DUET" plan -f manifests/examples --guest-kernel "$BUILD/images/kernel/vmlinuz"
[ $? -le 1 ] || exit 1

say "duetd --state-dir $BUILD/demo/state --socket $BUILD/demo/duet.sock"
mkdir -p "$DIR" "$BUILD/backup" "$BUILD/www"
if [ -e "$DIR/state/duetd.pid" ] && kill -0 "$(cat "$DIR/state/duetd.pid")" 2>/dev/null; then
    echo "demo: a duetd from an earlier demo still runs (pid $(cat "$DIR/state/duetd.pid")); stop it first" >&2
    exit 1
fi
# A bridge and subnet of the demo's own, beside any duetd of the host's.
args=(--state-dir "$DIR/state" --socket "$DUET_SOCKET" --guest-kernel "$BUILD/images/kernel/vmlinuz"
      --bridge duetdemo0 --subnet 10.89.0.0/24 --web "${DUET_DEMO_WEB:-127.0.0.1:9480}")
if [ -e /dev/kvm ] && [ "${DUET_DEMO_KVM:-0}" != 1 ]; then
    echo "(/dev/kvm hidden from duetd: the VMs run under emulation; DUET_DEMO_KVM=1 keeps it)"
    unshare --mount --propagation private \
        sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "$DUETD" "${args[@]}" || exit 1
else
    "$DUETD" "${args[@]}" || exit 1
fi
daemon_pid=$(cat "$DIR/state/duetd.pid")
echo "duetd running, pid $daemon_pid, log in $BUILD/demo/state/duetd.log"

say "duet apply -f manifests/examples --wait"
start=$(date +%s%N)
"$DUET" apply -f manifests/examples --wait --timeout 300 || { "$DUET" get; exit 1; }
echo "the whole fleet is up (or done) in $(( ($(date +%s%N) - start) / 1000000 )) ms"

say "duet get"
"$DUET" get

say "duet dashboard (the web dashboard, docs/dashboard.md: open it while the demo runs)"
"$DUET" dashboard

say "duet describe web"
"$DUET" describe web | sed -n '1,/^Spec:/p' | head -n -1

say "duet logs worker (a container from an OCI image: its Env, WorkingDir and User)"
"$DUET" logs --tail 3 worker

say "duet image ls (imported by apply, shared by every workload that names it)"
"$DUET" image ls

say "duet exec vpn -- uname -sr (into a VM, through duet-vminit's agent: the guest's own kernel)"
"$DUET" exec vpn -- uname -sr

say "duet exec web -- wget -q -O - http://127.0.0.1/"
"$DUET" exec web -- wget -q -O - http://127.0.0.1/

say "the fleet network: a container reaches the db VM by name"
echo "\$ duet exec web -- sh -c 'echo hello db | nc -w 3 db 5432'    (db's guest echoes)"
for _ in 1 2 3 4 5; do
    out=$("$DUET" exec web -- sh -c 'echo hello db | nc -w 3 db 5432') && [ -n "$out" ] && break
    sleep 1
done
echo "$out"

say "the published port: the host's 8080 is web's 80"
echo "\$ curl -s http://127.0.0.1:8080/"
curl -s --max-time 5 http://127.0.0.1:8080/

say "a VM reaches a container by name (vpn's console)"
for _ in $(seq 30); do "$DUET" logs vpn | grep -q "vpn sees web" && break; sleep 1; done
"$DUET" logs vpn | grep -m 1 "vpn sees web" || echo "(vpn has not reached web yet)"

say "duet compare web --http / --runs 1 --idle 3s --duration 2s (web once as a container and once as a VM, beside the live one)"
"$DUET" compare web --http / --runs 1 --idle 3s --duration 2s

say "duet top -n 1 (CPU, memory and I/O per workload, containers and VMs alike)"
"$DUET" top -n 1 --interval 1s

say "GET /metrics (Prometheus; duetd --metrics-listen serves it on TCP too): memory in use, one meaning for both"
echo "\$ curl -s --unix-socket $DUET_SOCKET http://duet/metrics | grep ^duet_workload_memory_bytes"
curl -s --unix-socket "$DUET_SOCKET" http://duet/metrics | grep '^duet_workload_memory_bytes'

say "duet apply -f manifests/examples (again: nothing changes)"
"$DUET" apply -f manifests/examples

say "duet events (last 12)"
"$DUET" events | tail -n 12
exit 0
