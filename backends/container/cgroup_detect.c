#include "cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static bool is_fs(const char *path, long magic)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

int cgroup_layout_detect(const char *root, struct cgroup_layout *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->root, sizeof(out->root), "%s", root);
    if (is_fs(root, CGROUP2_SUPER_MAGIC)) {
        out->version = 2;
        out->memory = cgroup_v2_offers(root, "memory");
        out->cpu = cgroup_v2_offers(root, "cpu");
        out->pids = cgroup_v2_offers(root, "pids");
        return 0;
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/memory", root);
    bool v1_memory = is_fs(path, CGROUP_SUPER_MAGIC);
    snprintf(path, sizeof(path), "%s/cpu", root);
    bool v1_cpu = is_fs(path, CGROUP_SUPER_MAGIC);
    snprintf(path, sizeof(path), "%s/pids", root);
    bool v1_pids = is_fs(path, CGROUP_SUPER_MAGIC);
    if (v1_memory || v1_cpu || v1_pids) {
        out->version = 1;
        out->memory = v1_memory;
        out->cpu = v1_cpu;
        out->pids = v1_pids;
        snprintf(path, sizeof(path), "%s/unified", root);
        out->hybrid = is_fs(path, CGROUP2_SUPER_MAGIC);
        return 0;
    }
    return duet_err_set(err, ENOENT,
                        "no cgroup hierarchy at %s: mount cgroup2 there (mount -t cgroup2 none %s) or the v1 "
                        "controllers memory, cpu and pids",
                        root, root);
}
