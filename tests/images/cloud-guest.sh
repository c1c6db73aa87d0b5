#!/bin/sh
# A Debian 12 cloud disk image of the kind the cloud vendors ship: it boots
# by itself from its own disk (SYSLINUX on a small FAT partition loads the
# image's own kernel and initramfs), its root is ext4 on the second
# partition, and Debian's cloud-init sets it up at first boot from a
# NoCloud seed.  It holds no user, no password and no network
# configuration of its own: all of that comes from the seed.
#
# Built from Debian's packages with mmdebstrap and assembled without
# mounting anything (mkfs.ext4 -d, mtools, syslinux --offset), so it needs
# no loop device.  qemu-guest-agent answers duet exec (backends/vm/qga.h).
# Usage: cloud-guest.sh OUT
set -eu
out=$1
work="$out.work"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
root="$work/root"

# NoCloud only: the guest has no cloud metadata service to probe, and under
# emulation every datasource probed costs seconds at boot.
mmdebstrap --quiet --variant=minbase --mode=root \
    --include=systemd-sysv,udev,linux-image-cloud-amd64,initramfs-tools,cloud-init,ifupdown,iproute2,netbase,python3,qemu-guest-agent \
    --customize-hook='printf "datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n" > "$1/etc/cloud/cloud.cfg.d/90-duet-nocloud.cfg"' \
    --customize-hook='printf "LABEL=cloudroot / ext4 rw,errors=remount-ro 0 1\n" > "$1/etc/fstab"' \
    --customize-hook='rm -f "$1/etc/hostname" "$1/etc/machine-id"; : > "$1/etc/machine-id"' \
    bookworm "$root" http://deb.debian.org/debian

kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | head -n 1)
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "cloud-guest: no kernel or initramfs in the image" >&2; exit 1; }

# Partition 1: FAT, 64 MiB, SYSLINUX with the image's own kernel.
boot="$work/boot.img"
truncate -s 64M "$boot"
mkfs.fat -n CLOUDBOOT "$boot" >/dev/null
cfg="$work/syslinux.cfg"
printf 'DEFAULT debian\nPROMPT 0\nLABEL debian\n  KERNEL vmlinuz\n  APPEND initrd=initrd root=LABEL=cloudroot ro console=ttyS0\n' > "$cfg"
mcopy -i "$boot" "$kernel" ::vmlinuz
mcopy -i "$boot" "$initrd" ::initrd
mcopy -i "$boot" "$cfg" ::syslinux.cfg

# Partition 2: ext4 with the root, 1.5 GiB of which about a third is used.
rootimg="$work/root.img"
mkfs.ext4 -q -L cloudroot -d "$root" "$rootimg" 1536M >/dev/null

# The disk: an MBR with SYSLINUX's boot code, the partitions at 1 MiB and
# 65 MiB.
img="$work/disk.img"
truncate -s $((1 + 64 + 1536))M "$img"
printf 'label: dos\nstart=2048, size=131072, type=c, bootable\nstart=133120, type=83\n' | sfdisk -q "$img"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
dd if="$boot" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$rootimg" of="$img" bs=1M seek=65 conv=notrunc,sparse status=none
syslinux --install --offset $((2048 * 512)) "$img"
qemu-img convert -O qcow2 "$img" "$out.tmp"
mv "$out.tmp" "$out"
