/*
 * cgroup.c - the version-independent half: detection, dispatch, file I/O.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"

static const struct cgroup_ops *ops(const struct cgroup_layout *l)
{
    return l->version == 2 ? &cgroup_v2_ops : &cgroup_v1_ops;
}

int cgroup_create(const struct cgroup_layout *l, const char *name, const struct cgroup_limits *lim,
                  struct duet_err *err)
{
    return ops(l)->create(l, name, lim, err);
}

int cgroup_attach(const struct cgroup_layout *l, const char *name, pid_t pid, struct duet_err *err)
{
    return ops(l)->attach(l, name, pid, err);
}

int cgroup_cpu_quota_open(const struct cgroup_layout *l, const char *name, double cpus, char *val, size_t len,
                          struct duet_err *err)
{
    return ops(l)->cpu_quota_open(l, name, cpus, val, len, err);
}

int cgroup_stats_read(const struct cgroup_layout *l, const char *name, struct cgroup_files *files,
                      struct cgroup_stats *st, struct duet_err *err)
{
    memset(st, 0, sizeof(*st));
    return ops(l)->stats(l, name, files, st, err);
}

int cgroup_oom_kills(const struct cgroup_layout *l, const char *name, uint64_t *n)
{
    *n = 0;
    return ops(l)->oom_kills(l, name, n);
}

void cgroup_files_init(struct cgroup_files *f)
{
    for (int i = 0; i < CGROUP_STAT_FILES; i++)
        f->fd[i] = -1;
}

void cgroup_files_close(struct cgroup_files *f)
{
    for (int i = 0; i < CGROUP_STAT_FILES; i++)
        if (f->fd[i] >= 0) {
            close(f->fd[i]);
            f->fd[i] = -1;
        }
}

int cgroup_destroy(const struct cgroup_layout *l, const char *name, struct duet_err *err)
{
    return ops(l)->destroy(l, name, err);
}

bool cgroup_exists(const struct cgroup_layout *l, const char *name)
{
    return ops(l)->exists(l, name);
}

int cgroup_freeze(const struct cgroup_layout *l, const char *name, bool frozen, struct duet_err *err)
{
    return ops(l)->freeze(l, name, frozen, err);
}

int cgroup_wait_line(const char *dir, const char *file, const char *want, unsigned timeout_ms, struct duet_err *err)
{
    char path[600], line[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    for (unsigned waited = 0;; waited += 5) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
            return duet_err_sys(err, "cannot read %s", path);
        /* cgroup.events: "populated N" then "frozen N"; freezer.state: one word */
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, want, strlen(want)) == 0)
                return 0;
        if (waited >= timeout_ms)
            return duet_err_set(err, ETIMEDOUT, "%s did not say \"%s\" within %u ms", path, want, timeout_ms);
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void cgroup_remove_parent(const struct cgroup_layout *l, const char *parent)
{
    ops(l)->remove_parent(l, parent);
}

bool cgroup_v2_offers(const char *dir, const char *controller)
{
    char path[600], line[512];
    snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f || !fgets(line, sizeof(line), f))
        return false;
    for (char *save, *tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        if (strcmp(tok, controller) == 0)
            return true;
    return false;
}

long long cgroup_cpu_quota_us(double cpus)
{
    long long quota = (long long)(cpus * 100000.0 + 0.5);
    return quota < 1000 ? 1000 : quota;
}

int cgroup_write_file(const char *dir, const char *file, const char *value, struct duet_err *err)
{
    _cleanup_close_ int fd = cgroup_open_file(dir, file, err);
    if (fd < 0)
        return -1;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    if (n < 0 || (size_t)n != len)
        return duet_err_sys(err, "cannot write \"%s\" to %s/%s", value, dir, file);
    return 0;
}

int cgroup_open_file(const char *dir, const char *file, struct duet_err *err)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return duet_err_sys(err, "cannot open %s", path);
    return fd;
}

/* DIR/FILE's text into buf; with keep, through the fd it holds (opened
 * now when it holds none), read again from its start. */
static int read_kept(int *keep, const char *dir, const char *file, char *buf, size_t len)
{
    int fd = keep ? *keep : -1;
    if (fd < 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        if (keep)
            *keep = fd = duet_fd_keep_high(fd);
    }
    ssize_t n = pread(fd, buf, len - 1, 0);
    if (!keep)
        close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}


int cgroup_read_u64(const char *dir, const char *file, uint64_t *v)
{
    return cgroup_read_u64_kept(NULL, dir, file, v);
}

int cgroup_read_u64_kept(int *keep, const char *dir, const char *file, uint64_t *v)
{
    char buf[64];
    if (read_kept(keep, dir, file, buf, sizeof(buf)) < 0)
        return -1;
    if (strncmp(buf, "max", 3) == 0) {
        *v = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return -1;
    *v = x;
    return 0;
}

bool cgroup_read_blk(const char *dir, const char *file, uint64_t *rd, uint64_t *wr)
{
    return cgroup_read_blk_kept(NULL, dir, file, rd, wr);
}

bool cgroup_read_blk_kept(int *keep, const char *dir, const char *file, uint64_t *rd, uint64_t *wr)
{
    char buf[8192];
    if (read_kept(keep, dir, file, buf, sizeof(buf)) < 0)
        return false;
    *rd = *wr = 0;
    for (char *save, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        const char *rest = sp + 1;
        if (strncmp(rest, "Read ", 5) == 0) {
            *rd += strtoull(rest + 5, NULL, 10);
        } else if (strncmp(rest, "Write ", 6) == 0) {
            *wr += strtoull(rest + 6, NULL, 10);
        } else {
            const char *r = strstr(rest, "rbytes="), *w = strstr(rest, "wbytes=");
            if (r)
                *rd += strtoull(r + 7, NULL, 10);
            if (w)
                *wr += strtoull(w + 7, NULL, 10);
        }
    }
    return true;
}

int cgroup_read_key(const char *dir, const char *file, const char *key, uint64_t *v)
{
    return cgroup_read_keys(dir, file, &key, v, 1) == 1 ? 0 : -1;
}

int cgroup_read_keys(const char *dir, const char *file, const char *const *keys, uint64_t *vals, size_t n)
{
    return cgroup_read_keys_kept(NULL, dir, file, keys, vals, n);
}

int cgroup_read_keys_kept(int *keep, const char *dir, const char *file, const char *const *keys, uint64_t *vals,
                          size_t n)
{
    /* memory.stat is the largest of these files: about 1.5 KiB on v2. */
    char buf[8192];
    if (read_kept(keep, dir, file, buf, sizeof(buf)) < 0)
        return -1;
    size_t found = 0;
    uint64_t seen = 0;   /* the first line of a key counts */
    if (n > 64)
        n = 64;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        for (size_t i = 0; i < n; i++) {
            size_t klen = strlen(keys[i]);
            if (!(seen & (UINT64_C(1) << i)) && strncmp(line, keys[i], klen) == 0 && line[klen] == ' ') {
                vals[i] = strtoull(line + klen + 1, NULL, 10);
                seen |= UINT64_C(1) << i;
                found++;
                break;
            }
        }
    }
    return (int)found;
}

int cgroup_kill_and_remove(const char *dir, struct duet_err *err)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return errno == ENOENT ? 0 : duet_err_sys(err, "cannot stat %s", dir);
    /* Usually the group is already empty (the container has exited). */
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    /* Processes can still be forking while we kill: repeat until the group
     * is empty, for at most two seconds. */
    for (int round = 0; round < 200; round++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        FILE *f = fopen(path, "re");
        bool any = false;
        if (f) {
            long pid;
            while (fscanf(f, "%ld", &pid) == 1) {
                any = true;
                kill((pid_t)pid, SIGKILL);
            }
            fclose(f);
        }
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return duet_err_sys(err, "cannot remove cgroup %s", dir);
        (void)any;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return duet_err_set(err, EBUSY, "cgroup %s still has processes after SIGKILL", dir);
}
