/*
 * runtime.h - duet's container runtime: one container's life.
 *
 *   container_prepare  state dir, writable layer, log, cgroup with limits;
 *                      checks a user can get wrong (rootfs, command, user)
 *   container_start    clone into new namespaces, build the filesystem,
 *                      drop privileges, exec duet-init as pid 1
 *   container_wait     the exit status, from duet-init's exit file
 *   container_stop     SIGTERM (forwarded to the workload), SIGKILL later
 *   container_destroy  nothing left: processes, cgroup, state dir
 *   container_recover  re-attach from the state dir after a daemon restart
 *   container_exec     run a command inside a running container
 *
 * These calls block (start waits for the child's setup, stop for the grace
 * period); the driver (driver.c) runs them off the event loop.
 *
 * On disk, under STATE/NAME/: disk.img (the container's writable layer,
 * layer.h), layer/ and rootfs/ (where that layer and the overlay are
 * mounted, only inside the container's mount namespace, so nothing is ever
 * mounted on the host), log (stdout and stderr, at most rt->log_max),
 * log.1 (the generation before), exit (written by duet-init), state (pid,
 * start time, user, groups, working dir: what recover and exec need), env
 * (the workload's environment, NUL-separated, for exec).  STATE/.layers
 * keeps the formatted templates of writable layers, one per size.
 */
#ifndef DUET_RUNTIME_H
#define DUET_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "layer.h"
#include "backends/driver.h"
#include "common/err.h"
#include "manifests/manifest.h"
#include "syscall_filter.h"

/* Setup steps, in order.  Errors name the step; tests inject a failure at
 * each one (container_config.fail_at) to prove nothing is left behind. */
enum container_step {
    STEP_NONE,
    STEP_STATE_DIR,
    STEP_CGROUP,
    STEP_CLONE,
    STEP_ATTACH,
    STEP_HOSTNAME,
    STEP_MOUNT_PRIVATE,
    STEP_OVERLAY,
    STEP_PROC_DEV_SYS,
    STEP_MASK,
    STEP_VOLUMES,
    STEP_PIVOT,
    STEP_SYNC,
    STEP_NETWORK,
    STEP_CGROUPNS,
    STEP_CAPS,
    STEP_SECCOMP,
    STEP_EXEC,
    STEP_COUNT
};

const char *container_step_name(enum container_step s);

/* A container's log holds at most this much; then it becomes log.1 (the
 * one generation kept) and starts again (duet-init does it). */
#define CONTAINER_LOG_MAX (UINT64_C(8) << 20)

/* What the runtime shares between containers: built once. */
struct container_spawner;

struct container_runtime {
    char state_dir[256];            /* STATE: containers live in STATE/NAME */
    char cgroup_parent[32];         /* "duet-" + a hash of STATE: one per runtime */
    int init_fd;                    /* duet-init, a sealed copy, executed per container */
    uint64_t log_max;               /* CONTAINER_LOG_MAX; tests set less */
    struct cgroup_layout cgroup;
    struct seccomp_prog filter;
    uint64_t caps;
    int last_cap;
    /* User namespaces (container_runtime_set_userns): container uid/gid 0..
     * size-1 are host base..base+size-1. */
    bool userns;
    uint32_t userns_base, userns_size;
    /* Host paths no volume may lead to without spec.hostAccess, beside
     * the system's (hostpath.h): the daemon's state and socket dirs. */
    char *protected_paths[4];
    struct layer_pool *layers;      /* writable layers made ahead (layer.h) */
    struct container_spawner *spawner;   /* clones setup processes (spawner.h) */
};

/* Adds path to rt's protected paths (copied; at most 3). */
void container_runtime_protect(struct container_runtime *rt, const char *path);

/* Runs containers in user namespaces from now on: root in a container is
 * host uid/gid `base`, unprivileged on the host.  The image is seen through
 * an idmapped mount, so it needs no chown. */
int container_runtime_set_userns(struct container_runtime *rt, uint32_t base, uint32_t size, struct duet_err *err);

int container_runtime_init(struct container_runtime *rt, const char *state_dir, const char *init_path,
                           const char *cgroup_root, struct duet_err *err);
void container_runtime_fini(struct container_runtime *rt);

/* An attached run's ends (driver.h, attach), relayed by duet-init
 * (init_attach.h). */
struct container_attach {
    int fds[4];                         /* in, out, err, ctl */
    bool tty;
};

struct container_config {
    const struct workload_spec *spec;   /* name, image.rootfs, command, env, user, resources, volumes */
    const struct container_attach *attach;   /* start: or NULL */
    enum container_step fail_at;        /* tests: fail at this step (EIO); STEP_NONE in production */
    const struct net_attachment *net;       /* the fleet network, or NULL: loopback only */
};

struct container_exit {
    bool exited;
    int code;          /* exit status when the workload exited */
    int signal;        /* signal that killed it, or 0 */
};

struct container {
    struct container_runtime *rt;       /* borrowed */
    char name[64];
    char dir[320];                      /* STATE/NAME */
    char cgroup[100];                   /* PARENT/NAME */
    pid_t pid;                          /* duet-init, in the host's pid namespace */
    uint64_t starttime;                 /* /proc/PID/stat field 22: proves the pid is ours */
    int pidfd;                          /* readable when duet-init has exited */
    bool child;                         /* this process is its parent (can reap it) */
    uid_t uid;
    gid_t gid;                          /* the workload's user, for exec */
    gid_t groups[32];                   /* its supplementary groups (from the image's /etc/group) */
    int n_groups;
    bool userns;                        /* runs in its own user namespace */
    char workdir[256];
    struct cgroup_files files;          /* its figures' files, kept open by container_stats */
    int root_fd;                        /* its root, kept open by container_disk_usage; -1: not yet */
    uint64_t disk_limit;                /* its writable layer's image's size, once asked (fixed) */
};

int container_prepare(struct container_runtime *rt, const struct container_config *cfg, struct container **out,
                      struct duet_err *err);
int container_start(struct container *c, const struct container_config *cfg, struct duet_err *err);
/* timeout_ms < 0: wait forever.  Returns 1 when it exited (st filled),
 * 0 on timeout, -1 on error. */
int container_wait(struct container *c, int timeout_ms, struct container_exit *st, struct duet_err *err);
int container_stop(struct container *c, unsigned grace_ms, struct duet_err *err);
/* Kills what runs, removes the cgroup and the state dir, frees c. */
int container_destroy(struct container *c, struct duet_err *err);
/* Frees c, leaving the container running (for daemon shutdown). */
void container_release(struct container *c);
int container_recover(struct container_runtime *rt, const char *name, struct container **out, struct duet_err *err);
/* Its cgroup's figures; the files stay open until it is destroyed or
 * released (a caller on one thread at a time). */
int container_stats(struct container *c, struct cgroup_stats *st, struct duet_err *err);
/* The kernel's OOM killer acted in its cgroup. */
bool container_oom_killed(const struct container *c);
/* Freezes (or thaws) every process of the container (cgroup_freeze). */
int container_freeze(struct container *c, bool frozen, struct duet_err *err);
/* What its writable layer holds (its filesystem's used blocks while it
 * runs, else what the image takes on the host), and its bound. */
int container_disk_usage(struct container *c, uint64_t *used, uint64_t *limit, struct duet_err *err);
/* A command started in a container: the helper outside it, our child. */
struct container_exec_proc {
    pid_t pid;
    int pidfd;                          /* readable when it has ended */
};
/* Starts argv inside the container with the workload's user, cgroup,
 * namespaces, capabilities and filter, through duet-init --exec; nothing
 * of the caller's (descriptors, image, memory) is reachable from inside.
 * timeout_ms > 0: at the timeout the command and everything it started
 * are killed (within EXEC_KILL_GRACE_MS more), by the helper itself. */
int container_exec_start(struct container *c, const char *const *argv, int out_fd, int err_fd, int timeout_ms,
                         struct container_exec_proc *proc, struct duet_err *err);
/* The same with the caller's stdin (in_fd; -1: /dev/null) and, when tty,
 * a terminal made in the container's own devpts: *master gets its master
 * (the caller's to read, write, resize and close), and the command runs as
 * the leader of a session whose controlling terminal it is; out_fd and
 * err_fd are then unused.  ctl_fd (-1: none): a pipe's read end; when its
 * writer closes, the helper ends the command as at a timeout (the helper
 * itself must never be killed first: see runtime.c). */
int container_exec_start_io(struct container *c, const char *const *argv, int in_fd, int out_fd, int err_fd,
                            int ctl_fd, bool tty, unsigned short rows, unsigned short cols, int *master,
                            int timeout_ms, struct container_exec_proc *proc, struct duet_err *err);
/* Kills the helper (any thread): for a caller that cannot wait for it. */
void container_exec_kill(struct container_exec_proc *proc);
/* Waits for the helper (blocks until it ends); *status: the command's exit
 * status, 128+N for signal N, 125 when it could not enter the container;
 * *timed_out when the timeout ended it (status 137). */
int container_exec_reap(struct container_exec_proc *proc, int *status, bool *timed_out);
/* Start and reap: timeout_ms <= 0 waits for ever; at the timeout the
 * command's whole tree is killed and -1 returned with ETIMEDOUT. */
int container_exec(struct container *c, const char *const *argv, int out_fd, int err_fd, int timeout_ms,
                   int *status, struct duet_err *err);
/* "PARENT/NAME": the container's cgroup, relative to each hierarchy. */
const char *container_cgroup_name(const struct container_runtime *rt, const char *name, char *buf, size_t len);
/* Where the runtime keeps what outlives a container (backends/kept.h):
 * STATE/.kept, beside the containers, whose names never start with a dot. */
const char *container_kept_dir(const struct container_runtime *rt, char *buf, size_t len);

/* Path of the container's log file. */
const char *container_log_path(const struct container *c, char *buf, size_t len);

#endif
