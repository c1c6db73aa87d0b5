/*
 * container.h - duet's own container runtime (namespaces, pivot_root,
 * cgroups, seccomp) behind backends/driver.h.
 */
#ifndef DUET_CONTAINER_H
#define DUET_CONTAINER_H

#include "backends/driver.h"

/* The container backend's driver table.  init_path: the duet-init binary;
 * cgroup_root: NULL for /sys/fs/cgroup.  Freed with container_driver_free
 * (which closes it). */
struct driver *container_driver_new(const char *init_path, const char *cgroup_root);
void container_driver_free(struct driver *drv);
/* Where this driver's containers' cgroups are, as a path under the pids
 * controller (v1) or the unified tree (v2); empty before open. */
const char *container_driver_cgroup_dir(struct driver *drv, char *buf, size_t len);
/* Before open: run containers in user namespaces, container root = host
 * uid/gid base (size ids mapped). */
void container_driver_set_userns(struct driver *drv, uint32_t base, uint32_t size);
/* A host path no volume may lead to without spec.hostAccess (the
 * daemon's state and socket dirs); before open; at most 3. */
void container_driver_protect_path(struct driver *drv, const char *path);
/* A container's log is capped at this (then rotated into log.1); before
 * open. */
void container_driver_set_log_max(struct driver *drv, uint64_t bytes);

/* Fills caps for this host; cgroup_root is normally "/sys/fs/cgroup". */
int container_backend_probe(const char *cgroup_root, struct driver_caps *caps, struct duet_err *err);

#endif
