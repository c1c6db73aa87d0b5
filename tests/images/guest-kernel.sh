#!/bin/sh
# Fetches Debian's current amd64 kernel package and unpacks it without
# installing it (no initramfs hooks, nothing changes on this host), laid out
# as an installed kernel is, so duet finds its modules the same way:
#   DIR/boot/vmlinuz-VERSION   the kernel, as shipped
#   DIR/lib/modules/VERSION/   its modules (virtio, ext4, ...)
#   DIR/vmlinuz                a link to the kernel
#   DIR/version                VERSION
# Usage: guest-kernel.sh DIR
set -eu
dir=$1
[ -e "$dir/vmlinuz" ] && [ -d "$dir/lib/modules" ] && exit 0
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
ver=$(ls "$tmp/x/lib/modules")
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/boot" "$dir.tmp/lib/modules"
cp "$tmp/x/boot/vmlinuz-$ver" "$dir.tmp/boot/"
cp -a "$tmp/x/lib/modules/$ver" "$dir.tmp/lib/modules/"
ln -s "boot/vmlinuz-$ver" "$dir.tmp/vmlinuz"
echo "$ver" > "$dir.tmp/version"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
