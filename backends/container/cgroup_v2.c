/*
 * cgroup_v2.c - the unified hierarchy: one directory, controllers enabled
 * down the tree through cgroup.subtree_control.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

/* name is "PARENT/LEAF" (runtime.c). */
static void dir_of(const struct cgroup_layout *l, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", l->root, name);
}

/* Enables memory, cpu and pids for the children of dir.  A controller
 * already enabled is fine; one the parent lacks is an error with the fix. */
static int enable_controllers(const char *dir, struct duet_err *err)
{
    static const char *const want[] = {"+memory", "+cpu", "+pids"};
    for (size_t i = 0; i < 3; i++)
        if (cgroup_write_file(dir, "cgroup.subtree_control", want[i], err) < 0)
            return duet_err_prefix(err, "enabling the %s controller (is it listed in %s/cgroup.controllers?)",
                                   want[i] + 1, dir);
    return 0;
}

static int v2_destroy(const struct cgroup_layout *l, const char *name, struct duet_err *err)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    /* cgroup.kill (Linux 5.14) kills the whole group at once, forks included. */
    if (access(dir, F_OK) == 0) {
        char kill_path[600];
        snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir);
        if (access(kill_path, F_OK) == 0)
            cgroup_write_file(dir, "cgroup.kill", "1", NULL);
    }
    return cgroup_kill_and_remove(dir, err);
}

static int v2_create(const struct cgroup_layout *l, const char *name, const struct cgroup_limits *lim,
                     struct duet_err *err)
{
    char dir[512], val[64];
    const char *slash = strrchr(name, '/');
    snprintf(dir, sizeof(dir), "%s/%.*s", l->root, slash ? (int)(slash - name) : 0, name);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create cgroup %s", dir);
    if (enable_controllers(l->root, err) < 0 || enable_controllers(dir, err) < 0)
        return -1;
    dir_of(l, name, dir, sizeof(dir));
    if (mkdir(dir, 0755) < 0)
        return duet_err_sys(err, "cannot create cgroup %s", dir);
    if (lim->memory) {
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory);
        if (cgroup_write_file(dir, "memory.max", val, err) < 0)
            goto fail;
        char sw[600];
        snprintf(sw, sizeof(sw), "%s/memory.swap.max", dir);
        if (access(sw, F_OK) == 0 && cgroup_write_file(dir, "memory.swap.max", "0", err) < 0)
            goto fail;
    }
    if (lim->cpus > 0) {
        snprintf(val, sizeof(val), "%lld 100000", cgroup_cpu_quota_us(lim->cpus));
        if (cgroup_write_file(dir, "cpu.max", val, err) < 0)
            goto fail;
    }
    if (lim->pids) {
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->pids);
        if (cgroup_write_file(dir, "pids.max", val, err) < 0)
            goto fail;
    }
    return 0;
fail:
    v2_destroy(l, name, NULL);
    return -1;
}

static int v2_attach(const struct cgroup_layout *l, const char *name, pid_t pid, struct duet_err *err)
{
    char dir[512], val[32];
    dir_of(l, name, dir, sizeof(dir));
    snprintf(val, sizeof(val), "%d", (int)pid);
    return cgroup_write_file(dir, "cgroup.procs", val, err);
}

static int v2_stats(const struct cgroup_layout *l, const char *name, struct cgroup_stats *st, struct duet_err *err)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    if (cgroup_read_u64(dir, "memory.current", &st->memory) < 0)
        return duet_err_sys(err, "cannot read %s/memory.current", dir);
    cgroup_read_u64(dir, "memory.max", &st->memory_limit);
    cgroup_read_key(dir, "memory.events", "oom_kill", &st->oom_kills);
    uint64_t usec = 0;
    if (cgroup_read_key(dir, "cpu.stat", "usage_usec", &usec) == 0)
        st->cpu_ns = usec * 1000;
    cgroup_read_u64(dir, "pids.current", &st->pids);
    return 0;
}

static bool v2_exists(const struct cgroup_layout *l, const char *name)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    return access(dir, F_OK) == 0;
}

static void v2_remove_parent(const struct cgroup_layout *l, const char *parent)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", l->root, parent);
    rmdir(dir);
}

const struct cgroup_ops cgroup_v2_ops = {
    .remove_parent = v2_remove_parent,
    .create = v2_create, .attach = v2_attach, .stats = v2_stats, .destroy = v2_destroy, .exists = v2_exists,
};
