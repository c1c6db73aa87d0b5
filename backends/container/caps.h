/*
 * caps.h - the capabilities a container keeps.
 *
 * Docker's default set less NET_RAW (raw sockets reach the host's network
 * stack) and MKNOD (device nodes: duet's /dev is fixed, and without a
 * device cgroup on every host a block device node would be a way out):
 * CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETFCAP, SETPCAP,
 * NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
 */
#ifndef DUET_CAPS_H
#define DUET_CAPS_H

#include <stdint.h>

/* Bit mask of the kept capabilities. */
uint64_t container_caps_default(void);

/* Cuts the bounding set to `keep` (caps up to last_cap), sets permitted and
 * effective to `keep` (less any this process lacks), inheritable to none,
 * and clears the ambient set.
 * Async-signal-safe: prctl and capset only.  Returns -1 with errno. */
int container_caps_apply(uint64_t keep, int last_cap);

/* /proc/sys/kernel/cap_last_cap, read before clone. */
int container_caps_last(void);

#endif
