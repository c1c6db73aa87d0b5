#!/bin/sh
# A raw disk that a PC BIOS boots by itself: a FAT filesystem with
# SYSLINUX in its boot sector, loading KERNEL and INITRD with a serial
# console.  Built without mounting anything (mtools, syslinux's mtools
# installer), so it needs no loop device.
# Usage: bootable-disk.sh OUT KERNEL INITRD [EXTRA-KERNEL-ARGUMENTS]
set -eu
out=$1 kernel=$2 initrd=$3 extra=${4:-}
tmp="$out.tmp"
rm -f "$tmp"
truncate -s 48M "$tmp"
mkfs.fat -n DUETBOOT "$tmp" >/dev/null
syslinux --install "$tmp"
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
printf 'DEFAULT duet\nPROMPT 0\nLABEL duet\n  KERNEL vmlinuz\n  APPEND initrd=initrd console=ttyS0 quiet %s\n' "$extra" > "$cfg"
mcopy -i "$tmp" "$kernel" ::vmlinuz
mcopy -i "$tmp" "$initrd" ::initrd
mcopy -i "$tmp" "$cfg" ::syslinux.cfg
mv "$tmp" "$out"
