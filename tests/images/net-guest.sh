#!/bin/sh
# The network tests' guest: an echo service on TCP 5432 (as the db guest),
# and, with duet.peer=NAME:PORT on the kernel command line, a client that
# asks that peer for its page every second and prints the answer's last
# line on the console, where the tests read it.
peer=$(sed -n 's/.*duet\.peer=\([^ ]*\).*/\1/p' /proc/cmdline)
(while :; do nc -l -p 5432 -e /bin/cat; done) &
while :; do
    if [ -n "$peer" ]; then
        out=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "${peer%:*}" "${peer#*:}" 2>&1 | tail -n 1)
        echo "peer $peer says: $out"
    fi
    sleep 1
done
