/*
 * cgroup_v1.c - one directory per controller: memory, cpu, cpuacct, pids,
 * and where they are mounted freezer (a backup's pause) and blkio (the
 * block I/O stats report).
 *
 * cpu and cpuacct are often co-mounted ("cpu,cpuacct" with two symlinks);
 * on some hosts they are separate hierarchies.  Writing the same group to
 * both paths is harmless when they are the same directory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

static const char *const controllers[] = {"memory", "cpu", "cpuacct", "pids", "freezer", "blkio"};
#define N_CTRL (sizeof(controllers) / sizeof(controllers[0]))

/* name is "PARENT/LEAF" (runtime.c); the parent is shared, the leaf is one
 * container's. */
static void dir_of(const struct cgroup_layout *l, const char *ctrl, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s/%s", l->root, ctrl, name);
}

static void parent_of(const struct cgroup_layout *l, const char *ctrl, const char *name, char *out, size_t len)
{
    const char *slash = strrchr(name, '/');
    snprintf(out, len, "%s/%s/%.*s", l->root, ctrl, slash ? (int)(slash - name) : 0, name);
}

static bool present(const struct cgroup_layout *l, const char *ctrl)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", l->root, ctrl);
    return access(path, F_OK) == 0;
}

static int v1_destroy(const struct cgroup_layout *l, const char *name, struct duet_err *err)
{
    int rc = 0;
    /* A frozen task takes no signal, SIGKILL included, until thawed. */
    char fz[512];
    dir_of(l, "freezer", name, fz, sizeof(fz));
    if (access(fz, F_OK) == 0)
        cgroup_write_file(fz, "freezer.state", "THAWED", NULL);
    for (size_t i = 0; i < N_CTRL; i++) {
        char dir[512];
        dir_of(l, controllers[i], name, dir, sizeof(dir));
        struct duet_err e;
        if (cgroup_kill_and_remove(dir, &e) < 0 && rc == 0) {
            if (err)
                *err = e;
            rc = -1;
        }
    }
    return rc;
}

static int v1_create(const struct cgroup_layout *l, const char *name, const struct cgroup_limits *lim,
                     struct duet_err *err)
{
    for (size_t i = 0; i < N_CTRL; i++) {
        if (!present(l, controllers[i]))
            continue;
        char dir[512];
        parent_of(l, controllers[i], name, dir, sizeof(dir));
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return duet_err_sys(err, "cannot create cgroup %s", dir);
        dir_of(l, controllers[i], name, dir, sizeof(dir));
        if (mkdir(dir, 0755) < 0) {
            int e = errno;
            duet_err_sys(err, "cannot create cgroup %s", dir);
            /* An existing group is someone's: never clean it up, only
             * what this call made. */
            for (size_t j = 0; j < i; j++) {
                char made[512];
                dir_of(l, controllers[j], name, made, sizeof(made));
                rmdir(made);
            }
            errno = e;
            return -1;
        }
    }
    char dir[512], val[64];
    if (lim->memory) {
        dir_of(l, "memory", name, dir, sizeof(dir));
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory);
        if (cgroup_write_file(dir, "memory.limit_in_bytes", val, err) < 0)
            goto fail;
        /* No swap beyond the limit where the kernel accounts swap. */
        char sw[600];
        snprintf(sw, sizeof(sw), "%s/memory.memsw.limit_in_bytes", dir);
        if (access(sw, F_OK) == 0 && cgroup_write_file(dir, "memory.memsw.limit_in_bytes", val, err) < 0)
            goto fail;
    }
    if (lim->cpus > 0) {
        /* the period now, the quota by cgroup_cpu_quota_open's caller */
        dir_of(l, "cpu", name, dir, sizeof(dir));
        if (cgroup_write_file(dir, "cpu.cfs_period_us", "100000", err) < 0)
            goto fail;
    }
    if (lim->pids) {
        dir_of(l, "pids", name, dir, sizeof(dir));
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->pids);
        if (cgroup_write_file(dir, "pids.max", val, err) < 0)
            goto fail;
    }
    return 0;
fail:
    v1_destroy(l, name, NULL);
    return -1;
}

static int v1_attach(const struct cgroup_layout *l, const char *name, pid_t pid, struct duet_err *err)
{
    char val[32];
    snprintf(val, sizeof(val), "%d", (int)pid);
    for (size_t i = 0; i < N_CTRL; i++) {
        if (!present(l, controllers[i]))
            continue;
        char dir[512];
        dir_of(l, controllers[i], name, dir, sizeof(dir));
        if (cgroup_write_file(dir, "cgroup.procs", val, err) < 0)
            return -1;
    }
    return 0;
}

/* Four files, each kept open by the caller: memory.stat says what the
 * group holds (usage_in_bytes is the same rss + cache, counted in one
 * more file) and its limit, then CPU, processes and block I/O. */
static int v1_stats(const struct cgroup_layout *l, const char *name, struct cgroup_files *files,
                    struct cgroup_stats *st, struct duet_err *err)
{
    int *keep[4] = {NULL, NULL, NULL, NULL};
    if (files)
        for (int i = 0; i < 4; i++)
            keep[i] = &files->fd[i];
    char dir[512];
    dir_of(l, "memory", name, dir, sizeof(dir));
    static const char *const mem_keys[] = {"total_rss", "total_cache", "hierarchical_memory_limit"};
    uint64_t mem[3] = {0, 0, 0};
    int found = cgroup_read_keys_kept(keep[0], dir, "memory.stat", mem_keys, mem, 3);
    if (found < 0)
        return duet_err_sys(err, "cannot read %s/memory.stat", dir);
    st->has_mem_split = found == 3;
    st->memory_anon = mem[0];
    st->memory_cache = mem[1];
    st->memory = mem[0] + mem[1];
    st->memory_limit = mem[2];
    dir_of(l, "cpuacct", name, dir, sizeof(dir));
    cgroup_read_u64_kept(keep[1], dir, "cpuacct.usage", &st->cpu_ns);
    dir_of(l, "pids", name, dir, sizeof(dir));
    cgroup_read_u64_kept(keep[2], dir, "pids.current", &st->pids);
    dir_of(l, "blkio", name, dir, sizeof(dir));
    st->has_blk = cgroup_read_blk_kept(keep[3], dir, "blkio.throttle.io_service_bytes_recursive", &st->blk_read,
                                       &st->blk_write);
    return 0;
}

static int v1_oom_kills(const struct cgroup_layout *l, const char *name, uint64_t *n)
{
    char dir[512];
    dir_of(l, "memory", name, dir, sizeof(dir));
    return cgroup_read_key(dir, "memory.oom_control", "oom_kill", n);
}

static bool v1_exists(const struct cgroup_layout *l, const char *name)
{
    for (size_t i = 0; i < N_CTRL; i++) {
        char dir[512];
        dir_of(l, controllers[i], name, dir, sizeof(dir));
        if (access(dir, F_OK) == 0)
            return true;
    }
    return false;
}

static int v1_freeze(const struct cgroup_layout *l, const char *name, bool frozen, struct duet_err *err)
{
    char dir[512];
    dir_of(l, "freezer", name, dir, sizeof(dir));
    if (access(dir, F_OK) < 0)
        return duet_err_set(err, ENOENT, "cgroup %s has no freezer (its container was started without one)", name);
    const char *state = frozen ? "FROZEN" : "THAWED";
    if (cgroup_write_file(dir, "freezer.state", state, err) < 0)
        return -1;
    return cgroup_wait_line(dir, "freezer.state", state, 10000, err);
}

static void v1_remove_parent(const struct cgroup_layout *l, const char *parent)
{
    for (size_t i = 0; i < N_CTRL; i++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/%s/%s", l->root, controllers[i], parent);
        rmdir(dir);   /* only when empty: other containers may still be in it */
    }
}

static int v1_cpu_quota_open(const struct cgroup_layout *l, const char *name, double cpus, char *val, size_t len,
                             struct duet_err *err)
{
    char dir[512];
    dir_of(l, "cpu", name, dir, sizeof(dir));
    snprintf(val, len, "%lld", cgroup_cpu_quota_us(cpus));
    return cgroup_open_file(dir, "cpu.cfs_quota_us", err);
}

const struct cgroup_ops cgroup_v1_ops = {
    .cpu_quota_open = v1_cpu_quota_open,
    .remove_parent = v1_remove_parent,
    .create = v1_create, .attach = v1_attach, .stats = v1_stats,
    .oom_kills = v1_oom_kills, .destroy = v1_destroy, .exists = v1_exists,
    .freeze = v1_freeze,
};
