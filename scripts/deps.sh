#!/bin/sh
# Installs the Debian packages named on the command line that are missing.
# Idempotent: with everything present it runs no apt-get at all.
set -eu
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# libvirt's QEMU driver looks up the users and groups that the
# libvirt-daemon-system package would create, even when duet runs it
# embedded with QEMU as root; create them as that package does.
vm_accounts() {
    [ "$(id -u)" -eq 0 ] || return 0
    getent group kvm >/dev/null || groupadd -r kvm
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin -c "Libvirt Qemu" libvirt-qemu
}
if [ -z "$missing" ]; then
    vm_accounts
    exit 0
fi
echo "duet: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "duet: missing packages:$missing; install them as root: apt-get install$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once, then install.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
vm_accounts
