#!/bin/sh
# The example fleet's "db" guest: answers on TCP 5432 (an echo service
# standing in for a database), forever.  Runs as the initramfs's
# /etc/duet-run.
while :; do
    nc -l -p 5432 -e /bin/cat
done
