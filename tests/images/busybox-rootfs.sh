#!/bin/sh
# Builds a minimal rootfs from Debian's busybox-static: /bin/busybox with a
# link per applet, /etc/passwd and /etc/group with root, a user 1000 and
# nobody, and the usual empty directories.  No download: the binary comes
# from the installed package.  Usage: busybox-rootfs.sh DIR [EXTRA-BINARY...]
set -eu
dir=$1
shift
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "busybox-rootfs: busybox is not installed (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q "statically linked" || [ -x /bin/busybox ] || true
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/etc" "$tmp/tmp" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/root" "$tmp/home/user"
chmod 1777 "$tmp/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$tmp/bin/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
wheel:x:10:user
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$tmp/home/user"
for extra in "$@"; do
    cp "$extra" "$tmp/bin/"
done
rm -rf "$dir"
mv "$tmp" "$dir"
