/*
 * hostprobe.h - this machine as a `struct host_info`: CPUs, memory and what
 * each backend's probe reports.  Used by `duet plan` without a Host document.
 */
#ifndef DUET_HOSTPROBE_H
#define DUET_HOSTPROBE_H

#include "common/err.h"
#include "host.h"

struct host_probe_opts {
    const char *libvirt_uri;     /* NULL: qemu:///system */
    const char *guest_kernel;    /* NULL: search the usual places */
    const char *cgroup_root;     /* NULL: /sys/fs/cgroup */
};

int host_probe(struct host_info *h, const struct host_probe_opts *opts, struct duet_err *err);

#endif
