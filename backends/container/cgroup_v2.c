/*
 * cgroup_v2.c - the unified hierarchy: one directory, controllers enabled
 * down the tree through cgroup.subtree_control.
 */
#include <errno.h>
#include <stdbool.h>
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

/* Enables, for the children of dir, each of memory, cpu, pids and io that
 * the hierarchy offers: stats want them even without limits.  A limit whose
 * controller is not offered is an error with the fix; a controller that is
 * merely absent (a host that delegates only some) is not. */
static int enable_controllers(const struct cgroup_layout *l, const char *dir, const struct cgroup_limits *lim,
                              struct duet_err *err)
{
    static const char *const names[] = {"memory", "cpu", "pids", "io"};
    const bool wanted[] = {lim->memory != 0, lim->cpus > 0, lim->pids != 0, false};
    for (size_t i = 0; i < 4; i++) {
        if (!cgroup_v2_offers(dir, names[i])) {
            if (wanted[i])
                return duet_err_set(err, ENOTSUP,
                                    "the %s controller is not available in %s/cgroup.controllers, so the %s limit "
                                    "cannot be applied; enable it for %s",
                                    names[i], dir, names[i], l->root);
            continue;
        }
        char plus[16];
        snprintf(plus, sizeof(plus), "+%s", names[i]);
        if (cgroup_write_file(dir, "cgroup.subtree_control", plus, err) < 0)
            return duet_err_prefix(err, "enabling the %s controller", names[i]);
    }
    return 0;
}

static int v2_destroy(const struct cgroup_layout *l, const char *name, struct duet_err *err)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    char fz[600];
    snprintf(fz, sizeof(fz), "%s/cgroup.freeze", dir);
    if (access(fz, F_OK) == 0)
        cgroup_write_file(dir, "cgroup.freeze", "0", NULL);
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
    if (enable_controllers(l, l->root, lim, err) < 0 || enable_controllers(l, dir, lim, err) < 0)
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
    /* cpu.max: by cgroup_cpu_quota_open's caller */
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

/* Six files, each kept open by the caller: what the group holds
 * (memory.current counts kernel memory memory.stat's anon and file do
 * not), its limit, CPU, processes and I/O. */
static int v2_stats(const struct cgroup_layout *l, const char *name, struct cgroup_files *files,
                    struct cgroup_stats *st, struct duet_err *err)
{
    int *keep[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (files)
        for (int i = 0; i < 6; i++)
            keep[i] = &files->fd[i];
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    /* Files of a controller the host does not offer are absent: 0; a
     * group that is not there is an error. */
    if (cgroup_read_u64_kept(keep[0], dir, "memory.current", &st->memory) < 0) {
        char procs[600];
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        if (access(procs, F_OK) < 0)
            return duet_err_sys(err, "cannot read cgroup %s", dir);
    }
    cgroup_read_u64_kept(keep[1], dir, "memory.max", &st->memory_limit);
    static const char *const mem_keys[] = {"anon", "file"};
    uint64_t mem[2] = {0, 0};
    st->has_mem_split = cgroup_read_keys_kept(keep[2], dir, "memory.stat", mem_keys, mem, 2) == 2;
    st->memory_anon = mem[0];
    st->memory_cache = mem[1];
    static const char *const cpu_keys[] = {"usage_usec"};
    uint64_t usec = 0;
    if (cgroup_read_keys_kept(keep[3], dir, "cpu.stat", cpu_keys, &usec, 1) == 1)
        st->cpu_ns = usec * 1000;
    cgroup_read_u64_kept(keep[4], dir, "pids.current", &st->pids);
    st->has_blk = cgroup_read_blk_kept(keep[5], dir, "io.stat", &st->blk_read, &st->blk_write);
    return 0;
}

static int v2_oom_kills(const struct cgroup_layout *l, const char *name, uint64_t *n)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    return cgroup_read_key(dir, "memory.events", "oom_kill", n);
}

static bool v2_exists(const struct cgroup_layout *l, const char *name)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    return access(dir, F_OK) == 0;
}

static int v2_freeze(const struct cgroup_layout *l, const char *name, bool frozen, struct duet_err *err)
{
    char dir[512], fz[600];
    dir_of(l, name, dir, sizeof(dir));
    snprintf(fz, sizeof(fz), "%s/cgroup.freeze", dir);
    if (access(fz, F_OK) < 0)
        return duet_err_set(err, ENOENT, "cgroup %s cannot be frozen (cgroup.freeze needs Linux 5.2)", name);
    if (cgroup_write_file(dir, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
        return -1;
    return cgroup_wait_line(dir, "cgroup.events", frozen ? "frozen 1" : "frozen 0", 10000, err);
}

static void v2_remove_parent(const struct cgroup_layout *l, const char *parent)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", l->root, parent);
    rmdir(dir);
}

static int v2_cpu_quota_open(const struct cgroup_layout *l, const char *name, double cpus, char *val, size_t len,
                             struct duet_err *err)
{
    char dir[512];
    dir_of(l, name, dir, sizeof(dir));
    snprintf(val, len, "%lld 100000", cgroup_cpu_quota_us(cpus));
    return cgroup_open_file(dir, "cpu.max", err);
}

const struct cgroup_ops cgroup_v2_ops = {
    .cpu_quota_open = v2_cpu_quota_open,
    .remove_parent = v2_remove_parent,
    .create = v2_create, .attach = v2_attach, .stats = v2_stats,
    .oom_kills = v2_oom_kills, .destroy = v2_destroy, .exists = v2_exists,
    .freeze = v2_freeze,
};
