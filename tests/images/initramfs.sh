#!/bin/sh
# Builds a gzip'd cpio initramfs from Debian's busybox-static whose /init
# mounts /proc, /sys and /dev, says "duet-guest: up" on the console, runs
# the script given (or a shell loop that keeps the guest up), and powers the
# guest off when that script ends, printing its exit status first.
# Usage: initramfs.sh OUT.cpio.gz [SCRIPT]
set -eu
out=$1
script=${2:-}
bb=$(command -v busybox)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/etc"
cp "$bb" "$tmp/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
if [ -n "$script" ]; then cp "$script" "$tmp/etc/duet-run"; chmod 755 "$tmp/etc/duet-run"; fi
cat > "$tmp/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "duet-guest: up"
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
