#!/bin/sh
# The VM tests' kernel+initramfs guest: prints its kernel command line (the
# tests pass hostile text through it) and powers off.
echo "test-guest: hello"
echo "cmdline: $(cat /proc/cmdline)"
