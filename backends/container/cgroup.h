/*
 * cgroup.h - limits and accounting for containers, on cgroup v2 or v1.
 *
 * Hosts come in three layouts: unified (cgroup v2 at /sys/fs/cgroup, most
 * modern distributions), legacy (v1 controllers each mounted under
 * /sys/fs/cgroup/NAME) and hybrid (v1 controllers plus an empty v2 tree at
 * /sys/fs/cgroup/unified).  Hybrid hosts keep their controllers on v1, so
 * duet drives them as v1.  cgroup_layout_detect() finds out at run time;
 * the rest of the runtime calls cgroup_*() and never asks which version.
 *
 * A container's cgroup is "PARENT/NAME" below each hierarchy's root; each
 * runtime (state directory) has its own PARENT, so two daemons never share
 * a group.  Functions below take that relative path as `name`.
 */
#ifndef DUET_CGROUP_H
#define DUET_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct cgroup_layout {
    int version;             /* 1 or 2 */
    bool hybrid;             /* v1 with an (unused) v2 tree beside it */
    bool memory, cpu, pids;  /* controllers duet needs, present and usable */
    char root[64];           /* /sys/fs/cgroup */
};

struct cgroup_limits {
    uint64_t memory;         /* bytes; 0: none */
    double cpus;             /* CPUs of quota; 0: none */
    uint64_t pids;           /* 0: none */
};

struct cgroup_stats {
    uint64_t cpu_ns;
    uint64_t memory;         /* bytes in use, page cache and kernel memory included */
    uint64_t memory_limit;
    /* Of those, what its processes hold (anonymous memory) and the page
     * cache charged to it: memory.stat's rss and cache (v1, the group's
     * tree), anon and file (v2).  has_mem_split: memory.stat was read. */
    bool has_mem_split;
    uint64_t memory_anon, memory_cache;
    uint64_t pids;
    /* Bytes read from and written to block devices by the group (the
     * writable layer's loop device and any other), where the host's
     * blkio (v1) or io (v2) controller counts them: has_blk. */
    bool has_blk;
    uint64_t blk_read, blk_write;
};

/* root is normally "/sys/fs/cgroup"; tests point it elsewhere. */
int cgroup_layout_detect(const char *root, struct cgroup_layout *out, struct duet_err *err);

/* Creates PARENT/NAME with the limits but the CPU quota (see below).  Fails with the reason (a limit the
 * kernel refuses is named with the value it refused); a group that already
 * exists is an error and is left as it is. */
int cgroup_create(const struct cgroup_layout *l, const char *name, const struct cgroup_limits *lim,
                  struct duet_err *err);
/* The CPU quota is the last limit set, by the container's setup process
 * just before the workload's first instruction: mounts, the seccomp
 * filter and the exec of duet-init are duet's work, and under a quota of
 * 0.01 CPUs they took half a second.  Opens the file that holds the quota of
 * PARENT/NAME for writing (O_CLOEXEC) and puts what to write into it for
 * `cpus` in val; the fd, or -1. */
int cgroup_cpu_quota_open(const struct cgroup_layout *l, const char *name, double cpus, char *val, size_t len,
                          struct duet_err *err);
/* Moves pid into duet/NAME (every hierarchy). */
int cgroup_attach(const struct cgroup_layout *l, const char *name, pid_t pid, struct duet_err *err);
/* A group's figure files, kept open by its reader so that each later
 * read is one pread per file: a scrape of hundreds of groups then costs
 * no open, path walk or close per file (cgroup files are read again
 * from offset 0).  cgroup_files_init before first use; -1: not open. */
#define CGROUP_STAT_FILES 6
struct cgroup_files {
    int fd[CGROUP_STAT_FILES];
};
void cgroup_files_init(struct cgroup_files *f);
void cgroup_files_close(struct cgroup_files *f);
/* The group's figures (no oom_kills: cgroup_oom_kills); files may be
 * NULL (every file opened and closed again). */
int cgroup_stats_read(const struct cgroup_layout *l, const char *name, struct cgroup_files *files,
                      struct cgroup_stats *st, struct duet_err *err);
/* How many times the kernel's OOM killer acted in the group. */
int cgroup_oom_kills(const struct cgroup_layout *l, const char *name, uint64_t *n);
/* Freezes (frozen true) every process of PARENT/NAME, or thaws them;
 * returns once the kernel says they all are (a frozen process runs no
 * instruction and changes no file until thawed).  ENOENT when the group
 * has no freezer (a container started before duet froze any). */
int cgroup_freeze(const struct cgroup_layout *l, const char *name, bool frozen, struct duet_err *err);
/* Kills what is left inside and removes duet/NAME; absent is not an error. */
int cgroup_destroy(const struct cgroup_layout *l, const char *name, struct duet_err *err);
/* True when the group exists in any hierarchy (for tests of cleanup). */
bool cgroup_exists(const struct cgroup_layout *l, const char *name);
/* Removes PARENT when no group is left in it. */
void cgroup_remove_parent(const struct cgroup_layout *l, const char *parent);

/* One implementation per version, behind the functions above. */
struct cgroup_ops {
    void (*remove_parent)(const struct cgroup_layout *l, const char *parent);
    int (*create)(const struct cgroup_layout *l, const char *name, const struct cgroup_limits *lim,
                  struct duet_err *err);
    int (*attach)(const struct cgroup_layout *l, const char *name, pid_t pid, struct duet_err *err);
    int (*stats)(const struct cgroup_layout *l, const char *name, struct cgroup_files *files, struct cgroup_stats *st,
                 struct duet_err *err);
    int (*oom_kills)(const struct cgroup_layout *l, const char *name, uint64_t *n);
    int (*destroy)(const struct cgroup_layout *l, const char *name, struct duet_err *err);
    bool (*exists)(const struct cgroup_layout *l, const char *name);
    int (*freeze)(const struct cgroup_layout *l, const char *name, bool frozen, struct duet_err *err);
    int (*cpu_quota_open)(const struct cgroup_layout *l, const char *name, double cpus, char *val, size_t len,
                          struct duet_err *err);
};

extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* Helpers shared by both versions (cgroup.c). */
/* Sums, over devices, the bytes read and written in a v1
 * blkio.throttle.io_service_bytes ("MAJ:MIN Read N" lines) or a v2 io.stat
 * ("MAJ:MIN rbytes=N wbytes=N ..." lines); false when the file is absent. */
bool cgroup_read_blk(const char *dir, const char *file, uint64_t *read, uint64_t *written);
/* Is `controller` listed in dir/cgroup.controllers (cgroup v2)? */
bool cgroup_v2_offers(const char *dir, const char *controller);
/* CFS quota in microseconds per 100 ms period for `cpus` CPUs (at least
 * the kernel's floor of 1 ms). */
long long cgroup_cpu_quota_us(double cpus);
int cgroup_write_file(const char *dir, const char *file, const char *value, struct duet_err *err);
/* DIR/FILE opened for writing (O_CLOEXEC); -1 with the reason. */
int cgroup_open_file(const char *dir, const char *file, struct duet_err *err);
int cgroup_read_u64(const char *dir, const char *file, uint64_t *v);
/* The readers below with a kept file: *keep is DIR/FILE's fd, opened on
 * first use (keep NULL: opened and closed here). */
int cgroup_read_u64_kept(int *keep, const char *dir, const char *file, uint64_t *v);
int cgroup_read_keys_kept(int *keep, const char *dir, const char *file, const char *const *keys, uint64_t *vals,
                          size_t n);
bool cgroup_read_blk_kept(int *keep, const char *dir, const char *file, uint64_t *read, uint64_t *written);
/* Value of "KEY N" in a flat-keyed file (memory.events, cpu.stat). */
int cgroup_read_key(const char *dir, const char *file, const char *key, uint64_t *v);
/* The values of several keys (at most 64) of such a file, read once: how
 * many were found (the first line of each), -1 when it cannot be read. */
int cgroup_read_keys(const char *dir, const char *file, const char *const *keys, uint64_t *vals, size_t n);
/* Waits up to timeout_ms for the first line of DIR/FILE to begin with
 * want (0), or -1 (ETIMEDOUT, or the file's error). */
int cgroup_wait_line(const char *dir, const char *file, const char *want, unsigned timeout_ms, struct duet_err *err);
/* SIGKILLs every process listed in DIR/cgroup.procs, then waits for the
 * directory to empty and removes it. */
int cgroup_kill_and_remove(const char *dir, struct duet_err *err);

#endif
