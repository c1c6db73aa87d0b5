#!/bin/sh
# Fetches Debian's current amd64 kernel package and unpacks it without
# installing it (no initramfs hooks, nothing changes on this host):
#   DIR/vmlinuz        the kernel, as shipped
#   DIR/modules/       its modules (virtio, ext4) for guests that need them
#   DIR/version        the kernel release
# Usage: guest-kernel.sh DIR
set -eu
dir=$1
[ -s "$dir/vmlinuz" ] && exit 0
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
    echo "guest-kernel: apt knows no linux-image-amd64; run apt-get update" >&2
    exit 1
fi
tmp=$(mktemp -d)
chown _apt "$tmp" 2>/dev/null || chmod 755 "$tmp"   # apt-get download drops to the _apt user
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "$pkg" >/dev/null)
dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/x"
mkdir -p "$dir.tmp"
cp "$tmp"/x/boot/vmlinuz-* "$dir.tmp/vmlinuz"
ver=$(ls "$tmp/x/lib/modules")
echo "$ver" > "$dir.tmp/version"
mkdir -p "$dir.tmp/modules"
cp -a "$tmp/x/lib/modules/$ver/." "$dir.tmp/modules/"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
