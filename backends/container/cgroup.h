/*
 * cgroup.h - which cgroup hierarchy this host runs, found at run time.
 *
 * Hosts come in three layouts: unified (cgroup v2 at /sys/fs/cgroup, most
 * modern distributions), legacy (v1 controllers each mounted under
 * /sys/fs/cgroup/NAME) and hybrid (v1 controllers plus an empty v2 tree at
 * /sys/fs/cgroup/unified).  Hybrid hosts keep their controllers on v1, so
 * duet drives them as v1.
 */
#ifndef DUET_CGROUP_H
#define DUET_CGROUP_H

#include <stdbool.h>

#include "err.h"

struct cgroup_layout {
    int version;           /* 1 or 2 */
    bool hybrid;           /* v1 with an (unused) v2 tree beside it */
    bool memory, cpu, pids;  /* controllers duet needs, present and usable */
    char root[64];         /* /sys/fs/cgroup */
};

/* root is normally "/sys/fs/cgroup"; tests point it elsewhere. */
int cgroup_layout_detect(const char *root, struct cgroup_layout *out, struct duet_err *err);

#endif
