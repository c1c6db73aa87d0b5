#!/bin/sh
# Builds an OCI image layout from a rootfs directory with umoci, no
# download: a base layer (the rootfs), then a second layer that adds
# /srv/hello.txt and removes /bin/vi (a whiteout), so that an image of two
# layers, its whiteouts and its config are all exercised.  The config:
# Entrypoint /bin/sh -c, Cmd printing where and as whom it runs, Env
# GREETING=hello-from-oci, WorkingDir /srv, User 1000:1000, port 8080.
# Tagged "base" (one layer) and "latest" (two); "stop" is latest with
# StopSignal SIGUSR1.
# Usage: oci-layout.sh DIR ROOTFS
set -eu
dir=$1
rootfs=$2
command -v umoci >/dev/null || { echo "oci-layout: umoci is not installed (apt-get install umoci)" >&2; exit 1; }
tmp="$dir.tmp.$$"
bundle="$dir.bundle.$$"
rm -rf "$tmp" "$bundle"
trap 'rm -rf "$tmp" "$bundle"' EXIT
umoci init --layout "$tmp"
umoci new --image "$tmp:base"
# unpack/repack, not insert: umoci 0.4.7's insert writes small layers cut short
umoci unpack --image "$tmp:base" "$bundle" >/dev/null
cp -a "$rootfs/." "$bundle/rootfs/"
umoci repack --image "$tmp:base" "$bundle"
umoci config --image "$tmp:base" --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo "$GREETING from $(pwd) as $(id -u)"' --config.env GREETING=hello-from-oci \
    --config.workingdir /srv --config.user 1000:1000 --config.exposedports 8080/tcp
rm -rf "$bundle"
umoci unpack --image "$tmp:base" "$bundle" >/dev/null
mkdir -p "$bundle/rootfs/srv"
echo "the second layer" > "$bundle/rootfs/srv/hello.txt"
rm -f "$bundle/rootfs/bin/vi"
umoci repack --image "$tmp:latest" "$bundle"
umoci config --image "$tmp:latest" --tag stop --config.stopsignal SIGUSR1
umoci gc --layout "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
