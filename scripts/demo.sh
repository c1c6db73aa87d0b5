#!/bin/sh
# make demo: check the example homelab fleet, then show where each workload
# would run: on the homelab server it was written for, on a small board
# without virtualisation, and on this machine as probed.
set -u
DUET=${1:-build/duet}
cd "$(dirname "$0")/.."

if [ -t 1 ]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi

say "duet validate manifests/examples"
"$DUET" validate manifests/examples || exit 1

say "duet plan for the homelab server (manifests/hosts/homelab.yaml)"
"$DUET" plan -f manifests/examples -f manifests/hosts/homelab.yaml || exit 1

say "duet plan for a 4 GiB board without VMs (manifests/hosts/small-arm.yaml)"
echo "(exit status 1 is the answer here: some workloads need a VM)"
"$DUET" plan -f manifests/examples -f manifests/hosts/small-arm.yaml
[ $? -eq 1 ] || { echo "demo: expected duet plan to report unplaceable workloads" >&2; exit 1; }

say "duet plan for this machine, as probed"
"$DUET" plan -f manifests/examples
rc=$?
case $rc in
0) echo "every workload fits on this machine" ;;
1) echo "(some workloads cannot run here yet; the reasons above say what is missing)" ;;
*) exit $rc ;;
esac

say "the same plan as JSON, for programs (first lines)"
"$DUET" plan -f manifests/examples -f manifests/hosts/homelab.yaml -o json | head -n 20
exit 0
