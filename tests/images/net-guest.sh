#!/bin/sh
# The network tests' guest: an echo service on TCP 5432 (as the db guest),
# and, with duet.peer=NAME:PORT on the kernel command line, a client that
# asks that peer for its page every second and prints the answer's last
# line on the console, where the tests read it.
#
# With duet.localnet=PORT it also attacks the host as a guest's root can
# (the CVE-2020-8558 pattern): it routes 127.0.0.0/8 out of eth0 to its
# gateway, the host's bridge, and tries 127.0.0.1:PORT every second,
# printing what it got ("localnet PORT: [answer]").
peer=$(sed -n 's/.*duet\.peer=\([^ ]*\).*/\1/p' /proc/cmdline)
localnet=$(sed -n 's/.*duet\.localnet=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$localnet" ]; then
    gw=$(ip route | sed -n 's/^default via \([^ ]*\).*/\1/p')
    for c in all eth0; do echo 1 > /proc/sys/net/ipv4/conf/$c/route_localnet; done
    # 127.0.0.1 must not be an address of its own either, or the host's
    # answers (from 127.0.0.1) would be dropped here as coming from itself.
    ip addr del 127.0.0.1/8 dev lo
    ip route del local 127.0.0.1 dev lo table local 2>/dev/null
    ip route del local 127.0.0.0/8 dev lo table local 2>/dev/null
    ip route add 127.0.0.0/8 via "$gw" dev eth0
    echo "localnet: 127.0.0.0/8 routed to $gw"
fi
(while :; do nc -l -p 5432 -e /bin/cat; done) &
while :; do
    if [ -n "$peer" ]; then
        out=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "${peer%:*}" "${peer#*:}" 2>&1 | tail -n 1)
        echo "peer $peer says: $out"
    fi
    if [ -n "$localnet" ]; then
        out=$(echo probe | nc -w 2 127.0.0.1 "$localnet" 2>&1 | tail -n 1)
        echo "localnet $localnet: [$out]"
    fi
    sleep 1
done
