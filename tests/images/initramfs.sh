#!/bin/sh
# Builds a gzip'd cpio initramfs from Debian's busybox-static whose /init
# mounts /proc, /sys and /dev, says "duet-guest: up" on the console, runs
# the script given (or a shell loop that keeps the guest up), and powers the
# guest off when that script ends, printing its exit status first.
# With KERNEL_DIR (a tree from guest-kernel.sh) it also carries that
# kernel's virtio network driver and joins the network the host describes
# with ip=CLIENT::GATEWAY:NETMASK:NAME:DEVICE:off:DNS on the kernel command
# line (duet's fleet network), name server included; without ip= (a disk
# that boots itself) it asks DHCP (busybox udhcpc) instead.
# Usage: initramfs.sh OUT.cpio.gz [SCRIPT [KERNEL_DIR]]
set -eu
out=$1
script=${2:-}
kdir=${3:-}
bb=$(command -v busybox)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/etc"
cp "$bb" "$tmp/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
if [ -n "$script" ]; then cp "$script" "$tmp/etc/duet-run"; chmod 755 "$tmp/etc/duet-run"; fi
if [ -n "$kdir" ]; then
    # The virtio network driver and what it needs, in load order, read
    # from each module's own "depends=" (an unpacked kernel has no
    # modules.dep).  Built-in ones have no file and need no loading.
    ver=$(cat "$kdir/version")
    mods="$kdir/lib/modules/$ver"
    mkdir -p "$tmp/lib/net"
    : > "$tmp/lib/net/order"
    add_module() {
        grep -qx "$1" "$tmp/lib/net/order" && return 0
        f=$(find "$mods" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -n 1)
        [ -n "$f" ] || return 0
        case "$f" in
            *.xz) xz -dc "$f" > "$tmp/lib/net/$1.ko" ;;
            *.zst) zstd -qdc "$f" > "$tmp/lib/net/$1.ko" ;;
            *) cp "$f" "$tmp/lib/net/$1.ko" ;;
        esac
        deps=$(tr '\0' '\n' < "$tmp/lib/net/$1.ko" | sed -n 's/^depends=//p' | head -n 1 | tr , ' ')
        for d in $deps; do add_module "$d"; done
        echo "$1" >> "$tmp/lib/net/order"
    }
    for m in virtio_pci virtio_net; do add_module "$m"; done
    cat > "$tmp/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# udhcpc's hook: the lease's address, route and name server.
case "$1" in
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "duet-guest: $interface $ip/${mask:-24} (dhcp)" > /dev/console
    ;;
esac
SCRIPT
    chmod 755 "$tmp/etc/udhcpc.script"
    grep -qx virtio_net "$tmp/lib/net/order" || grep -q "virtio_net" "$mods/modules.builtin" ||
        { echo "initramfs: no virtio_net in $mods" >&2; exit 1; }
fi
cat > "$tmp/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "duet-guest: up"
ip link set lo up
if [ -f /lib/net/order ]; then
    for m in $(cat /lib/net/order); do insmod "/lib/net/$m.ko" 2>/dev/null; done
fi
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    ip=*)
        v=${arg#ip=}
        addr=${v%%:*}; v=${v#*:}; v=${v#*:}
        gw=${v%%:*}; v=${v#*:}
        mask=${v%%:*}; v=${v#*:}; v=${v#*:}
        dev=${v%%:*}; v=${v#*:}; v=${v#*:}
        dns=$v
        prefix=0
        for o in $(echo "$mask" | tr . ' '); do
            while [ "$o" -gt 0 ]; do prefix=$((prefix + (o & 1))); o=$((o >> 1)); done
        done
        i=0
        while [ ! -e "/sys/class/net/$dev" ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done
        if ip addr add "$addr/$prefix" dev "$dev" && ip link set "$dev" up &&
            { [ -z "$gw" ] || ip route add default via "$gw"; }; then
            echo "duet-guest: $dev $addr/$prefix"
        else
            echo "duet-guest: network setup failed"
        fi
        [ -z "$dns" ] || echo "nameserver $dns" > /etc/resolv.conf
        configured=1
        ;;
    esac
done
# insmod probes the NICs present before it returns: no eth0 now, no NIC.
if [ -z "${configured:-}" ] && [ -x /etc/udhcpc.script ]; then
    if [ -e /sys/class/net/eth0 ]; then
        ip link set eth0 up
        udhcpc -i eth0 -q -n -t 10 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1 || echo "duet-guest: no DHCP answer"
    fi
fi
if [ -x /etc/duet-run ]; then
    /etc/duet-run
    echo "duet-guest: exit $?"
else
    while :; do sleep 3600; done
fi
poweroff -f
INIT
chmod 755 "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
