/*
 * container.h - duet's own container runtime (namespaces, pivot_root,
 * cgroups, seccomp) behind backends/driver.h.
 */
#ifndef DUET_CONTAINER_H
#define DUET_CONTAINER_H

#include "driver.h"

/* Fills caps for this host; cgroup_root is normally "/sys/fs/cgroup". */
int container_backend_probe(const char *cgroup_root, struct driver_caps *caps, struct duet_err *err);

#endif
