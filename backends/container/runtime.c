/*
 * runtime.c - one container's life: prepare, start, wait, stop, destroy,
 * recover, stats, exec.  See runtime.h for the files it keeps.
 *
 * The start path is the delicate one.  The parent (possibly a daemon with
 * several threads) has the spawner (spawner.h, a small single-threaded
 * process) clone a child, as the parent's own, into new pid, mount, uts,
 * ipc and net namespaces.  The child (container_setup_main) builds its
 * filesystem while the parent moves it into its cgroup (on cgroup v1 a
 * migration waits for an RCU grace period, the slowest part of a start),
 * then waits for the parent's go-ahead, enters its cgroup namespace, drops
 * privileges and execs duet-init.  Until that exec it runs on a copy of
 * the spawner's memory and must not call malloc: everything it needs
 * (overlay options, the seccomp program, fds) is prepared beforehand and
 * carried in struct child_args (setup.h).  A setup failure travels back on
 * a close-on-exec pipe as {step, errno, what}; end-of-file on that pipe
 * means exec worked.
 */
#include "backends/exit_status.h"
#include "manifests/hostpath.h"
#include "network/ipam.h"
#include "layer.h"
#include "network/netlink.h"
#include "common/fsutil.h"
#include "common/fdio.h"
#include "backends/kept.h"
#include "backends/rootfs.h"
#include "runtime.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "setup.h"
#include "spawner.h"
#include "common/cleanup.h"
#include "mounts.h"


static const char *const step_names[STEP_COUNT] = {
    [STEP_NONE] = "none",
    [STEP_STATE_DIR] = "creating the state directory",
    [STEP_CGROUP] = "creating the cgroup",
    [STEP_CLONE] = "creating the namespaces",
    [STEP_ATTACH] = "moving the container into its cgroup",
    [STEP_SYNC] = "waiting for the parent",
    [STEP_NETWORK] = "configuring eth0",
    [STEP_CGROUPNS] = "creating the cgroup namespace",
    [STEP_HOSTNAME] = "setting the hostname and bringing up loopback",
    [STEP_MOUNT_PRIVATE] = "making mounts private",
    [STEP_OVERLAY] = "mounting the root",
    [STEP_PROC_DEV_SYS] = "mounting /proc, /dev and /sys",
    [STEP_MASK] = "masking kernel paths",
    [STEP_VOLUMES] = "mounting volumes",
    [STEP_PIVOT] = "entering the root",
    [STEP_CAPS] = "dropping capabilities",
    [STEP_SECCOMP] = "installing the syscall filter",
    [STEP_EXEC] = "starting duet-init",
};

const char *container_step_name(enum container_step s)
{
    return s < STEP_COUNT ? step_names[s] : "?";
}

/* The error of a failed setup step, from the setup process's report: it
 * comes from inside the new namespaces, so its text is bounded here and
 * its step checked; an empty `what` means the step's own name. */
static void setup_report_err(const struct container *c, struct setup_report *r, struct duet_err *err)
{
    r->what[sizeof(r->what) - 1] = '\0';
    const char *step = container_step_name((enum container_step)r->step);
    errno = r->err;
    duet_err_sys(err, "container %s: %s: %s", c->name, step, r->what[0] ? r->what : step);
}

/* ---- runtime --------------------------------------------------------- */

int container_runtime_init(struct container_runtime *rt, const char *state_dir, const char *init_path,
                           const char *cgroup_root, struct duet_err *err)
{
    memset(rt, 0, sizeof(*rt));
    rt->init_fd = -1;
    if (strlen(state_dir) >= sizeof(rt->state_dir) - 80)
        return duet_err_set(err, ENAMETOOLONG, "state directory path %s is too long", state_dir);
    snprintf(rt->state_dir, sizeof(rt->state_dir), "%s", state_dir);
    uint32_t h = 2166136261u;   /* FNV-1a of the state dir: the cgroup parent */
    for (const char *q = state_dir; *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    snprintf(rt->cgroup_parent, sizeof(rt->cgroup_parent), "duet-%08x", h);
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create the state directory %s", state_dir);
    /* Containers run duet-init from a sealed in-memory copy: the file on
     * the host is never what a container's /proc/PID/exe leads to. */
    _cleanup_close_ int file = open(init_path, O_RDONLY | O_CLOEXEC);
    if (file < 0)
        return duet_err_sys(err, "cannot open duet-init at %s (build it with make)", init_path);
    rt->init_fd = duet_sealed_copy(file, init_path, "duet-init", err);
    if (rt->init_fd < 0)
        return -1;
    if (cgroup_layout_detect(cgroup_root ? cgroup_root : "/sys/fs/cgroup", &rt->cgroup, err) < 0)
        goto fail;
    if (container_seccomp_build(&rt->filter, err) < 0)
        goto fail;
    rt->caps = container_caps_default();
    rt->log_max = CONTAINER_LOG_MAX;
    rt->last_cap = container_caps_last();
    char templates[300];
    snprintf(templates, sizeof(templates), "%s/.layers", state_dir);
    rt->layers = container_layer_pool_new(templates, err);
    if (!rt->layers)
        goto fail;
    rt->spawner = container_spawner_new();
    return 0;
fail:
    container_seccomp_free(&rt->filter);
    close(rt->init_fd);
    rt->init_fd = -1;
    return -1;
}

int container_runtime_set_userns(struct container_runtime *rt, uint32_t base, uint32_t size, struct duet_err *err)
{
    if (base == 0 || size < 65536 || (uint64_t)base + size > UINT32_MAX)
        return duet_err_set(err, EINVAL,
                            "user namespace range %u+%u is not usable: give a base above 0 and at least 65536 ids",
                            base, size);
    if (access("/proc/self/ns/user", F_OK) < 0)
        return duet_err_sys(err, "this kernel has no user namespaces");
    /* The container's root (host uid base) must traverse the state dir. */
    if (chmod(rt->state_dir, 0711) < 0)
        return duet_err_sys(err, "cannot open %s to user namespaces", rt->state_dir);
    rt->userns = true;
    rt->userns_base = base;
    rt->userns_size = size;
    return 0;
}

const char *container_cgroup_name(const struct container_runtime *rt, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", rt->cgroup_parent, name);
    return buf;
}

void container_runtime_protect(struct container_runtime *rt, const char *path)
{
    for (size_t i = 0; i + 1 < sizeof(rt->protected_paths) / sizeof(rt->protected_paths[0]); i++)
        if (!rt->protected_paths[i]) {
            rt->protected_paths[i] = strdup(path);
            if (!rt->protected_paths[i])
                abort();
            return;
        }
}

void container_runtime_fini(struct container_runtime *rt)
{
    /* First: the spawner holds duet-init's fd and a copy of the filter. */
    container_spawner_free(rt->spawner);
    rt->spawner = NULL;
    for (size_t i = 0; i < sizeof(rt->protected_paths) / sizeof(rt->protected_paths[0]); i++) {
        free(rt->protected_paths[i]);
        rt->protected_paths[i] = NULL;
    }
    if (rt->cgroup_parent[0])
        cgroup_remove_parent(&rt->cgroup, rt->cgroup_parent);
    if (rt->init_fd >= 0)
        close(rt->init_fd);
    rt->init_fd = -1;
    container_seccomp_free(&rt->filter);
    container_layer_pool_free(rt->layers);
    rt->layers = NULL;
}

/* ---- small helpers ---------------------------------------------------- */

static int read_starttime(pid_t pid, uint64_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name may hold spaces and ')': fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* p is at the space before field 3; step to the one before field 22. */
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return -1;
    *out = strtoull(p + 1, NULL, 10);
    return 0;
}

static int pidfd_open_(pid_t pid)
{
    return duet_fd_keep_high((int)syscall(SYS_pidfd_open, pid, 0));
}

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* user: resolved as docs/manifest.md says (rootfs.c); kept in c for exec
 * and recovery. */
static int resolve_user(struct container *c, const char *rootfs, const char *user, struct duet_err *err)
{
    struct rootfs_user u;
    char what[96];
    snprintf(what, sizeof(what), "container %s", c->name);
    if (rootfs_user_resolve(rootfs, user, what, &u, err) < 0)
        return -1;
    c->uid = u.uid;
    c->gid = u.gid;
    c->n_groups = u.n_groups;
    for (int i = 0; i < u.n_groups; i++)
        c->groups[i] = u.groups[i];
    return 0;
}

const char *container_kept_dir(const struct container_runtime *rt, char *buf, size_t len)
{
    snprintf(buf, len, "%s/.kept", rt->state_dir);
    return buf;
}

const char *container_log_path(const struct container *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/log", c->dir);
    return buf;
}

static int write_state(const struct container *c, struct duet_err *err)
{
    char path[400], tmp[410];
    snprintf(path, sizeof(path), "%s/state", c->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return duet_err_sys(err, "cannot write %s", tmp);
    fprintf(f, "%d %llu %u %u %d\n%s\n", (int)c->pid, (unsigned long long)c->starttime, (unsigned)c->uid,
            (unsigned)c->gid, c->userns ? 1 : 0, c->workdir);
    for (int i = 0; i < c->n_groups; i++)
        fprintf(f, "%s%u", i ? " " : "", (unsigned)c->groups[i]);
    fputc('\n', f);
    /* Renamed into place: a crash leaves the old file or the new one.  No
     * fsync: it must survive the daemon, not the host, whose crash ends
     * the container as well. */
    if (fflush(f) != 0) {
        fclose(f);
        return duet_err_sys(err, "cannot write %s", tmp);
    }
    fclose(f);
    if (rename(tmp, path) < 0)
        return duet_err_sys(err, "cannot rename %s", tmp);
    return 0;
}

/* ---- prepare ---------------------------------------------------------- */

/* What a daemon killed during a create or a start left under this name:
 * a container whose process still runs is refused, anything else is
 * removed, so a create after a crash starts clean. */
static int clear_stale(struct container_runtime *rt, const char *name, const char *dir, const char *cgroup,
                       struct duet_err *err)
{
    struct container *old = NULL;
    struct duet_err ignored = {0};
    if (container_recover(rt, name, &old, &ignored) == 0) {
        if (old->pidfd >= 0) {
            container_release(old);
            return duet_err_set(err, EEXIST, "container %s is already running (state in %s); delete it first", name,
                                dir);
        }
        return container_destroy(old, err);
    }
    if (cgroup_destroy(&rt->cgroup, cgroup, err) < 0)
        return -1;
    return duet_remove_tree(dir, err);
}

int container_prepare(struct container_runtime *rt, const struct container_config *cfg, struct container **out,
                      struct duet_err *err)
{
    const struct workload_spec *w = cfg->spec;
    *out = NULL;
    if (!w->name || !manifest_name_valid(w->name, strlen(w->name)))
        return duet_err_set(err, EINVAL, "container name \"%s\" is not a valid workload name",
                            w->name ? w->name : "");
    const char *rootfs = w->image.rootfs;
    struct stat st;
    if (!rootfs)
        return duet_err_set(err, EINVAL, "container %s: image.rootfs is required to run as a container", w->name);
    char what[96];
    snprintf(what, sizeof(what), "container %s", w->name);
    if (rootfs_check_dir(rootfs, what, err) < 0)
        return -1;
    if (strpbrk(rootfs, ",:\\"))
        return duet_err_set(err, EINVAL,
                            "container %s: image.rootfs %s contains ',', ':' or '\\', which overlayfs cannot take; "
                            "move or link the image to a plain path",
                            w->name, rootfs);
    if (!w->command || !w->command[0])
        return duet_err_set(err, EINVAL, "container %s: spec.command is required", w->name);
    const char *path = wl_env_get(w, "PATH");
    if (!rootfs_command_exists(rootfs, w->command[0], path ? path : ROOTFS_DEFAULT_PATH))
        return duet_err_set(err, ENOENT,
                            "container %s: command \"%s\" is not an executable file in the rootfs %s (searched %s)",
                            w->name, w->command[0], rootfs, strchr(w->command[0], '/') ? "as given" : (path ? path : ROOTFS_DEFAULT_PATH));
    if (w->resources.pids && w->resources.pids < 2)
        return duet_err_set(err, EINVAL,
                            "container %s: resources.pids %llu is too low: a container needs 2 (duet-init and "
                            "the workload)",
                            w->name, (unsigned long long)w->resources.pids);
    for (size_t i = 0; i < w->n_volumes; i++)
        if (stat(w->volumes[i].source, &st) < 0)
            return duet_err_sys(err, "container %s: volume source %s (for %s) cannot be used; create it or fix the path",
                                w->name, w->volumes[i].source, w->volumes[i].target);
    if (w->resources.memory && w->resources.memory < (UINT64_C(4) << 20))
        return duet_err_set(err, EINVAL, "container %s: resources.memory is below 4Mi, which nothing can start in",
                            w->name);

    struct container *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    cgroup_files_init(&c->files);
    c->root_fd = -1;
    c->rt = rt;
    c->pid = -1;
    c->pidfd = -1;
    snprintf(c->name, sizeof(c->name), "%s", w->name);
    snprintf(c->dir, sizeof(c->dir), "%s/%s", rt->state_dir, w->name);
    container_cgroup_name(rt, w->name, c->cgroup, sizeof(c->cgroup));
    snprintf(c->workdir, sizeof(c->workdir), "%s", w->working_dir ? w->working_dir : "/");
    if (resolve_user(c, rootfs, w->user, err) < 0) {
        free(c);
        return -1;
    }

    if (cfg->fail_at == STEP_STATE_DIR) {
        free(c);
        return duet_err_set(err, EIO, "container %s: %s: injected failure", w->name, step_names[STEP_STATE_DIR]);
    }
    int mk = mkdir(c->dir, 0700);
    if (mk < 0 && errno == EEXIST) {
        if (clear_stale(rt, w->name, c->dir, c->cgroup, err) < 0) {
            free(c);
            return -1;
        }
        mk = mkdir(c->dir, 0700);
    }
    if (mk < 0) {
        int e = errno;
        free(c);
        errno = e;
        return duet_err_sys(err, "container %s: cannot create %s/%s", w->name, rt->state_dir, w->name);
    }
    /* layer/ is where the writable layer is mounted, rootfs/ the overlay,
     * both only inside the container's mount namespace. */
    static const char *const subdirs[] = {"layer", "rootfs", "lower"};
    c->userns = rt->userns;
    for (size_t i = 0; i < 3; i++) {
        char p[400];
        snprintf(p, sizeof(p), "%s/%s", c->dir, subdirs[i]);
        if (mkdir(p, 0755) < 0) {
            duet_err_sys(err, "container %s: cannot create %s", w->name, p);
            goto fail_dir;
        }
    }
    /* The layer itself is made (or a spare taken) at start. */
    if (container_layer_pool_want(rt->layers, wl_disk_bytes(w), err) < 0) {
        duet_err_prefix(err, "container %s: its writable layer (resources.disk)", w->name);
        goto fail_dir;
    }
    if (c->userns) {
        /* The container's root (gid base on the host) may pass through to
         * its layers; other host users may not reach them at all. */
        if (chown(c->dir, 0, rt->userns_base) < 0 || chmod(c->dir, 0710) < 0) {
            duet_err_sys(err, "container %s: cannot open %s to the user namespace", w->name, c->dir);
            goto fail_dir;
        }
    }
    static const char *const files[] = {"log", "exit", "log.1"};
    for (size_t i = 0; i < 3; i++) {
        char p[400];
        snprintf(p, sizeof(p), "%s/%s", c->dir, files[i]);
        int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
        if (fd < 0) {
            duet_err_sys(err, "container %s: cannot create %s", w->name, p);
            goto fail_dir;
        }
        close(fd);
    }
    if (cfg->fail_at == STEP_CGROUP) {
        duet_err_set(err, EIO, "container %s: %s: injected failure", w->name, step_names[STEP_CGROUP]);
        goto fail_dir;
    }
    struct cgroup_limits lim = {.memory = w->resources.memory, .cpus = w->resources.cpus, .pids = w->resources.pids};
    int cg = cgroup_create(&rt->cgroup, c->cgroup, &lim, err);
    if (cg < 0 && err->code == EEXIST) {
        /* Ours by its name (the parent is this state dir's), yet no state
         * directory knew it: left by a runtime whose state was removed.
         * Whatever still runs in it is an orphan of ours. */
        struct duet_err ignored = {0};
        if (cgroup_destroy(&rt->cgroup, c->cgroup, &ignored) == 0)
            cg = cgroup_create(&rt->cgroup, c->cgroup, &lim, err);
    }
    if (cg < 0) {
        duet_err_prefix(err, "container %s: %s", w->name, step_names[STEP_CGROUP]);
        goto fail_dir;
    }
    *out = c;
    return 0;
fail_dir:
    duet_remove_tree(c->dir, NULL);
    free(c);
    return -1;
}

/* ---- start ------------------------------------------------------------ */

/* Opens every volume's source here, on the host side, and mounts what was
 * opened (as a detached tree): the path is resolved once, so a link swapped in later (by
 * another workload that can write next to it) changes nothing.  What it
 * resolved to must not be the host's own tree (hostpath.h) nor the
 * daemon's, unless the spec says hostAccess. */
static int open_volumes(const struct container *c, const struct workload_spec *w, int *fds, struct duet_err *err)
{
    for (size_t i = 0; i < w->n_volumes; i++) {
        const struct wl_volume *v = &w->volumes[i];
        fds[i] = open(v->source, O_PATH | O_CLOEXEC);
        if (fds[i] < 0)
            return duet_err_sys(err, "container %s: volume source %s (for %s) cannot be used; create it or fix the path",
                                c->name, v->source, v->target);
        char link[64], resolved[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
        ssize_t n = readlink(link, resolved, sizeof(resolved) - 1);
        if (n <= 0)
            return duet_err_sys(err, "container %s: cannot tell where volume source %s leads", c->name, v->source);
        resolved[n] = '\0';
        /* A named volume's directory is the daemon's own (managed): it
         * lies in the daemon's state directory by design. */
        const char *hit = v->managed ? NULL
                                     : hostpath_protected_resolved(resolved, (const char *const *)c->rt->protected_paths);
        /* The runtime's own state (the containers' layers) is protected too. */
        const char *const mine[] = {c->rt->state_dir, NULL};
        if (!hit)
            hit = hostpath_protected_resolved(resolved, mine);
        if (hit && !w->host_access)
            return duet_err_set(err, EPERM,
                                "container %s: volume source %s leads to %s, which is or holds the host's %s: a "
                                "workload given it can change the host; name a directory of its own, or set "
                                "spec.hostAccess: true to give it the host knowingly",
                                c->name, v->source, resolved, hit);
        /* What was checked is what gets mounted: a copy of its tree, made
         * here in the host's mount namespace (a clone can only be taken
         * there), moved into place by the child. */
        int tree = mounts_clone_tree(fds[i], "", v->read_only);
        if (tree < 0)
            return duet_err_sys(err, "container %s: cannot take volume source %s", c->name, v->source);
        close(fds[i]);
        fds[i] = tree;
    }
    return 0;
}

/* The secrets given as files (spec.secrets): a tmpfs of their own, so no
 * value is ever on a disk, made here as a detached mount (nothing on the
 * host sees it), filled, sealed read-only, and moved to /run/secrets by
 * the child like a volume.  Each file is the workload user's, 0400; the
 * directory is root's, 0755.  In a user namespace the ids are the host's
 * that map to them.  The mount's fd, or -1 with err. */
static int secrets_mount(const struct container *c, const struct workload_spec *w, struct duet_err *err)
{
    uid_t base = c->userns ? c->rt->userns_base : 0;
    size_t bytes = 0;
    for (size_t i = 0; i < w->n_secrets; i++)
        if (!w->secrets[i].env)
            bytes += (w->secrets[i].len + 4095) / 4096 * 4096;
    char size[32], ids[16];
    snprintf(size, sizeof(size), "%zu", bytes + 4096);
    snprintf(ids, sizeof(ids), "%u", (unsigned)base);
    _cleanup_close_ int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", "secrets", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "uid", ids, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "gid", ids, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        return duet_err_sys(err, "container %s: cannot make the tmpfs for " WL_SECRETS_DIR, c->name);
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (mnt < 0)
        return duet_err_sys(err, "container %s: cannot mount the tmpfs for " WL_SECRETS_DIR, c->name);
    for (size_t i = 0; i < w->n_secrets; i++) {
        const struct wl_secret *x = &w->secrets[i];
        if (x->env)
            continue;
        _cleanup_close_ int fd = openat(mnt, x->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
        if (fd < 0 || fchown(fd, base + c->uid, base + c->gid) < 0 || !duet_write_full(fd, x->value, x->len)) {
            duet_err_sys(err, "container %s: cannot write " WL_SECRETS_DIR "/%s", c->name, x->name);
            close(mnt);
            return -1;
        }
    }
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, mnt, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0) {
        duet_err_sys(err, "container %s: cannot make " WL_SECRETS_DIR " read-only", c->name);
        close(mnt);
        return -1;
    }
    return mnt;
}

static bool has_secret_files(const struct workload_spec *w)
{
    for (size_t i = 0; i < w->n_secrets; i++)
        if (!w->secrets[i].env)
            return true;
    return false;
}

/* STATE/NAME/env: the workload's environment, NUL-separated, for exec.
 * 0600: secret variables are in it. */
static int write_env_file(const struct container *c, const char *const *envp, size_t envc, struct duet_err *err)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/env", c->dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "we") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return duet_err_sys(err, "container %s: cannot write %s", c->name, p);
    }
    bool ok = true;
    for (size_t i = 0; i < envc; i++)
        ok = ok && fwrite(envp[i], 1, strlen(envp[i]) + 1, f) == strlen(envp[i]) + 1;
    if (fclose(f) != 0 || !ok)
        return duet_err_sys(err, "container %s: cannot write %s", c->name, p);
    return 0;
}

static int write_proc_file(pid_t pid, const char *file, const char *value, struct duet_err *err)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, file);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(value);
    if (fd < 0 || write(fd, value, len) != (ssize_t)len)
        return duet_err_sys(err, "cannot write %s", p);
    return 0;
}

/* With a user namespace: writes the child's id maps and returns the image
 * as a detached mount idmapped into that namespace (host root's files are
 * the container root's), for the child to use as its lower layer. */
static int userns_prepare(struct container *c, pid_t pid, const char *rootfs, struct duet_err *err)
{
    const struct container_runtime *rt = c->rt;
    char map[64];
    snprintf(map, sizeof(map), "0 %u %u\n", rt->userns_base, rt->userns_size);
    if (write_proc_file(pid, "uid_map", map, err) < 0 || write_proc_file(pid, "gid_map", map, err) < 0)
        return duet_err_prefix(err, "container %s: writing its user namespace's id maps", c->name);
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
    _cleanup_close_ int ns = open(p, O_RDONLY | O_CLOEXEC);
    if (ns < 0)
        return duet_err_sys(err, "container %s: cannot open %s", c->name, p);
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0)
        return duet_err_sys(err, "container %s: cannot clone the mount of %s", c->name, rootfs);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        duet_err_sys(err, "container %s: the filesystem of %s does not support idmapped mounts, which user "
                          "namespaces need (use ext4, xfs, btrfs or tmpfs)",
                     c->name, rootfs);
        close(tree);
        return -1;
    }
    return tree;
}

/* The go-ahead: one byte, with the idmapped image's fd when there is one. */
static int send_go(int sock, int tree)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (tree >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &tree, sizeof(int));
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The files that point the workload at the fleet's name server, written
 * into the container's own layer (upper/etc), never into the image,
 * which other containers share. */
static int write_net_files(const struct container *c, int layer, const struct net_attachment *net, struct duet_err *err)
{
    char p[64], gw[16], addr[16], buf[512];
    /* The layer was made a moment ago by us: nothing in it is the
     * workload's yet. */
    if (mkdirat(layer, "upper/etc", 0755) < 0 && errno != EEXIST)
        return duet_err_sys(err, "container %s: cannot create /etc in its writable layer", c->name);
    if (c->userns && fchownat(layer, "upper/etc", c->rt->userns_base, c->rt->userns_base, AT_SYMLINK_NOFOLLOW) < 0)
        return duet_err_sys(err, "container %s: cannot give /etc to the user namespace's root", c->name);
    ipam_format(net->dns, gw);
    ipam_format(net->addr, addr);
    static const char *const files[] = {"resolv.conf", "hosts"};
    for (int i = 0; i < 2; i++) {
        int n = i == 0 ? snprintf(buf, sizeof(buf), "# the duet fleet's name server: workloads by name\nnameserver %s\n", gw)
                       : snprintf(buf, sizeof(buf), "127.0.0.1\tlocalhost\n::1\tlocalhost\n%s\t%s\n", addr, c->name);
        snprintf(p, sizeof(p), "upper/etc/%s", files[i]);
        _cleanup_close_ int fd = openat(layer, p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, (size_t)n) != n)
            return duet_err_sys(err, "container %s: cannot write /etc/%s in its writable layer", c->name, files[i]);
    }
    return 0;
}

/* The host's end of the veth pair, a port of the bridge, and eth0 inside
 * the network namespace of pid, where the child configures it. */
static int veth_create(const struct container *c, const struct net_attachment *net, pid_t pid, struct duet_err *err)
{
    struct nl nl;
    if (nl_open(&nl, err) < 0)
        return -1;
    int rc = nl_veth_add(&nl, net->host_if, net->bridge_index, "eth0", net->mac, pid, err);
    if (rc < 0 && err && err->code == EEXIST) {
        /* Left by a create cut off by a crash (its namespace still alive):
         * the name is this workload's, so it is ours to replace. */
        nl_link_del(&nl, net->host_if, NULL);
        rc = nl_veth_add(&nl, net->host_if, net->bridge_index, "eth0", net->mac, pid, err);
    }
    nl_close(&nl);
    if (rc < 0)
        return duet_err_prefix(err, "container %s: joining bridge %s", c->name, net->bridge);
    return 0;
}

/* duet-init's identity options for c, the same for its pid 1 and for
 * exec: formatted into ids (which must outlive argv) and appended to argv
 * at *k, 8 entries at most. */
struct init_ids {
    char uid[16], gid[16], groups[32 * 11 + 1];
};

static void init_ids_append(const struct container *c, struct init_ids *ids, const char **argv, size_t *k)
{
    snprintf(ids->uid, sizeof(ids->uid), "%u", (unsigned)c->uid);
    snprintf(ids->gid, sizeof(ids->gid), "%u", (unsigned)c->gid);
    ids->groups[0] = '\0';
    for (int i = 0, o = 0; i < c->n_groups && o < (int)sizeof(ids->groups) - 12; i++)
        o += snprintf(ids->groups + o, sizeof(ids->groups) - (size_t)o, "%s%u", i ? "," : "",
                      (unsigned)c->groups[i]);
    argv[(*k)++] = "--uid";
    argv[(*k)++] = ids->uid;
    argv[(*k)++] = "--gid";
    argv[(*k)++] = ids->gid;
    if (ids->groups[0]) {
        argv[(*k)++] = "--groups";
        argv[(*k)++] = ids->groups;
    }
    argv[(*k)++] = "--cwd";
    argv[(*k)++] = c->workdir;
}

int container_start(struct container *c, const struct container_config *cfg, struct duet_err *err)
{
    const struct workload_spec *w = cfg->spec;
    const struct container_runtime *rt = c->rt;
    char merged[400], lower[400], layer_dir[400], opts[1400], p[400];
    snprintf(merged, sizeof(merged), "%s/rootfs", c->dir);
    snprintf(lower, sizeof(lower), "%s/lower", c->dir);
    snprintf(layer_dir, sizeof(layer_dir), "%s/layer", c->dir);
    /* In a user namespace overlayfs keeps its metadata in user.* xattrs:
     * trusted.* belongs to the host's root. */
    int n = snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s/layer/upper,workdir=%s/layer/work%s",
                     c->userns ? lower : w->image.rootfs, c->dir, c->dir, c->userns ? ",userxattr" : "");
    if (n < 0 || (size_t)n >= sizeof(opts))
        return duet_err_set(err, ENAMETOOLONG, "container %s: paths too long for overlayfs", c->name);

    /* duet-init's command line and the workload's environment, built here
     * because the child may not allocate. */
    struct init_ids ids;
    size_t argc = 0;
    const char **argv = calloc(w->n_command + 20, sizeof(*argv));
    const char **envp = calloc(w->n_env + 4, sizeof(*envp));
    char **envbuf = calloc(w->n_env + 4, sizeof(*envbuf));
    if (!argv || !envp || !envbuf)
        abort();
    argv[argc++] = "duet-init";
    /* argv: duet-init, 16 options and their values, "--", the command, NULL
     * (--cpu-max is put in before "--" once the quota file is open) */
    init_ids_append(c, &ids, argv, &argc);
    char logmax[24];
    snprintf(logmax, sizeof(logmax), "%llu", (unsigned long long)rt->log_max);
    argv[argc++] = "--log-max";
    argv[argc++] = logmax;
    char stopsig[16];
    if (w->stop_signal && w->stop_signal != SIGTERM) {
        snprintf(stopsig, sizeof(stopsig), "%d", w->stop_signal);
        argv[argc++] = "--stop-signal";
        argv[argc++] = stopsig;
    }
    if (cfg->attach) {
        argv[argc++] = "--attach";
        if (cfg->attach->tty)
            argv[argc++] = "--tty";
    }
    size_t dashdash = argc;
    argv[argc++] = "--";
    for (size_t i = 0; i < w->n_command; i++)
        argv[argc++] = w->command[i];
    size_t envc = 0;
    bool has_path = false, has_home = false;
    for (size_t i = 0; i < w->n_env; i++) {
        if (asprintf(&envbuf[envc], "%s=%s", w->env[i].key, w->env[i].value) < 0)
            abort();
        has_path = has_path || strcmp(w->env[i].key, "PATH") == 0;
        has_home = has_home || strcmp(w->env[i].key, "HOME") == 0;
        envp[envc] = envbuf[envc];
        envc++;
    }
    if (!has_path)
        envp[envc++] = "PATH=" ROOTFS_DEFAULT_PATH;
    if (!has_home)
        envp[envc++] = "HOME=/";
    char hostbuf[80];
    snprintf(hostbuf, sizeof(hostbuf), "HOSTNAME=%s", c->name);
    envp[envc++] = hostbuf;
    /* The same environment for exec, now and after a daemon restart. */
    if (write_env_file(c, envp, envc, err) < 0) {
        for (size_t i = 0; i < w->n_env; i++)
            free(envbuf[i]);
        free(envbuf);
        free(envp);
        free(argv);
        return -1;
    }

    int sync[2] = {-1, -1}, report[2] = {-1, -1}, log_fd = -1, exit_fd = -1, null_fd = -1, prev_log_fd = -1,
        tree = -1, layer = -1, quota_fd = -1, rc = -1;
    char quota[64] = "";
    pid_t pid = -1;
    /* The volumes, and the secrets' tmpfs as one more at the end. */
    size_t n_vols = w->n_volumes + has_secret_files(w);
    int *vol_fds = calloc(n_vols + 1, sizeof(int));
    struct wl_volume *vols = calloc(n_vols + 1, sizeof(*vols));
    if (!vol_fds || !vols)
        abort();
    for (size_t i = 0; i < n_vols; i++)
        vol_fds[i] = -1;
    if (w->n_volumes)
        memcpy(vols, w->volumes, w->n_volumes * sizeof(*vols));
    if (open_volumes(c, w, vol_fds, err) < 0)
        goto out;
    if (n_vols > w->n_volumes) {
        vols[w->n_volumes] = (struct wl_volume){.target = WL_SECRETS_DIR, .read_only = true};
        if ((vol_fds[w->n_volumes] = secrets_mount(c, w, err)) < 0)
            goto out;
    }
    snprintf(p, sizeof(p), "%s/disk.img", c->dir);
    layer = container_layer_take(rt->layers, p, wl_disk_bytes(w),
                                 c->userns ? rt->userns_base : 0, c->name, err);
    if (layer < 0)
        goto out;
    if (cfg->net && write_net_files(c, layer, cfg->net, err) < 0)
        goto out;
    snprintf(p, sizeof(p), "%s/log", c->dir);
    /* Read too: duet-init copies it into log.1 when it rotates. */
    log_fd = open(p, O_RDWR | O_APPEND | O_CLOEXEC);
    snprintf(p, sizeof(p), "%s/exit", c->dir);
    exit_fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    snprintf(p, sizeof(p), "%s/log.1", c->dir);
    prev_log_fd = open(p, O_RDWR | O_CLOEXEC);
    /* sync is a socket pair so that a child that died early gives EPIPE, not
     * a SIGPIPE that would kill the caller. */
    if (log_fd < 0 || exit_fd < 0 || null_fd < 0 || prev_log_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0 ||
        pipe2(report, O_CLOEXEC) < 0) {
        duet_err_sys(err, "container %s: cannot open its files", c->name);
        goto out;
    }
    if (w->resources.cpus > 0) {
        if ((quota_fd = cgroup_cpu_quota_open(&rt->cgroup, c->cgroup, w->resources.cpus, quota, sizeof(quota), err)) < 0) {
            duet_err_prefix(err, "container %s: %s", c->name, step_names[STEP_CGROUP]);
            goto out;
        }
        /* duet-init sets it (see container_setup_main) */
        memmove(argv + dashdash + 2, argv + dashdash, (argc - dashdash + 1) * sizeof(*argv));
        argv[dashdash] = "--cpu-max";
        argv[dashdash + 1] = quota;
        argc += 2;
    }
    /* The spawner gives the child the fds named here and no others. */
    struct child_args args = {
        .rt = rt,
        .hostname = w->name,
        .fail_at = cfg->fail_at,
        .userns = c->userns,
        .lower = lower,
        .layer = layer_dir,
        .layer_fd = layer,
        .plan = {.merged = merged, .overlay_opts = opts, .volumes = vols, .volume_fds = vol_fds,
                 .n_volumes = n_vols},
        .sync_fd = sync[0],
        .report_fd = report[1],
        .log_fd = log_fd,
        .exit_fd = exit_fd,
        .null_fd = null_fd,
        .prev_log_fd = prev_log_fd,
        .init_argv = (char *const *)argv,
        .envp = (char *const *)envp,
        .net = cfg->net,
        .quota_fd = quota_fd,
        .attach = cfg->attach != NULL,
    };
    if (cfg->attach)
        memcpy(args.attach_fds, cfg->attach->fds, sizeof(args.attach_fds));
    if (cfg->fail_at == STEP_CLONE) {
        duet_err_set(err, EIO, "container %s: %s: injected failure", c->name, step_names[STEP_CLONE]);
        goto out;
    }
    /* Cloned by the spawner (spawner.h), as our child. */
    pid = container_spawner_clone(rt->spawner, &args, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                                          CLONE_NEWNET | (c->userns ? CLONE_NEWUSER : 0),
                                  err);
    if (pid < 0) {
        duet_err_prefix(err, "container %s: %s", c->name, step_names[STEP_CLONE]);
        goto out;
    }
    close(sync[0]);
    sync[0] = -1;
    close(report[1]);
    report[1] = -1;
    if (cfg->fail_at == STEP_ATTACH) {
        duet_err_set(err, EIO, "container %s: %s: injected failure", c->name, step_names[STEP_ATTACH]);
        goto out_kill;
    }
    if (c->userns && (tree = userns_prepare(c, pid, w->image.rootfs, err)) < 0)
        goto out_kill;
    if (cgroup_attach(&rt->cgroup, c->cgroup, pid, err) < 0) {
        /* A child that failed its own setup meanwhile is gone (ESRCH): its
         * report is the error worth showing. */
        struct setup_report early;
        close(sync[1]);
        sync[1] = -1;
        if (read(report[0], &early, sizeof(early)) == (ssize_t)sizeof(early)) {
            setup_report_err(c, &early, err);
        } else {
            duet_err_prefix(err, "container %s: %s", c->name, step_names[STEP_ATTACH]);
        }
        goto out_kill;
    }
    if (cfg->net && veth_create(c, cfg->net, pid, err) < 0)
        goto out_kill;
    if (send_go(sync[1], tree) < 0 && errno != EPIPE) {
        duet_err_sys(err, "container %s: the setup process went away", c->name);
        goto out_kill;
    }
    /* EPIPE: the child already failed; its report says why. */
    struct setup_report r;
    ssize_t got;
    do
        got = read(report[0], &r, sizeof(r));
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof(r)) {
        setup_report_err(c, &r, err);
        goto out_kill;
    }
    if (got != 0) {
        duet_err_set(err, EIO, "container %s: setup ended without a report", c->name);
        goto out_kill;
    }
    /* End of file: duet-init is running. */
    c->pid = pid;
    c->child = true;
    if (read_starttime(pid, &c->starttime) < 0 || (c->pidfd = pidfd_open_(pid)) < 0) {
        duet_err_sys(err, "container %s: duet-init (pid %d) vanished at start", c->name, (int)pid);
        goto out_kill;
    }
    if (write_state(c, err) < 0)
        goto out_kill;
    rc = 0;
    goto out;
out_kill:
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    c->pid = -1;
    c->child = false;
out:
    for (int i = 0; i < 2; i++) {
        if (sync[i] >= 0)
            close(sync[i]);
        if (report[i] >= 0)
            close(report[i]);
    }
    if (tree >= 0)
        close(tree);
    if (layer >= 0)
        close(layer);
    if (quota_fd >= 0)
        close(quota_fd);
    if (log_fd >= 0)
        close(log_fd);
    if (exit_fd >= 0)
        close(exit_fd);
    if (null_fd >= 0)
        close(null_fd);
    if (prev_log_fd >= 0)
        close(prev_log_fd);
    for (size_t i = 0; i < n_vols; i++)
        if (vol_fds[i] >= 0)
            close(vol_fds[i]);
    free(vol_fds);
    free(vols);
    for (size_t i = 0; i < w->n_env; i++)
        free(envbuf[i]);
    free(envbuf);
    free(envp);
    free(argv);
    return rc;
}

/* ---- wait, stop ------------------------------------------------------- */

/* The exit file: "exit N" or "signal N", written by duet-init. */
static bool read_exit_file(const struct container *c, struct container_exit *st)
{
    char p[400], buf[64];
    snprintf(p, sizeof(p), "%s/exit", c->dir);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    int code, sig;
    if (!exit_status_parse(buf, &code, &sig))
        return false;
    *st = (struct container_exit){.exited = true, .code = code, .signal = sig};
    return true;
}

int container_wait(struct container *c, int timeout_ms, struct container_exit *st, struct duet_err *err)
{
    if (c->pidfd >= 0) {
        struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
        int r;
        do
            r = poll(&pfd, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            return duet_err_sys(err, "container %s: waiting for it", c->name);
        if (r == 0)
            return 0;
    }
    int wstatus = 0;
    bool reaped = false;
    if (c->child && c->pid > 0) {
        reaped = waitpid(c->pid, &wstatus, 0) == c->pid;
        c->child = false;
    }
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->root_fd >= 0) {
        close(c->root_fd);
        c->root_fd = -1;
    }
    if (!read_exit_file(c, st)) {
        /* duet-init itself was killed before the workload ended (stop's
         * SIGKILL): its own status is the answer when we reaped it. */
        if (reaped && WIFSIGNALED(wstatus))
            *st = (struct container_exit){.exited = true, .code = -1, .signal = WTERMSIG(wstatus)};
        else if (reaped && WIFEXITED(wstatus))
            *st = (struct container_exit){.exited = true, .code = WEXITSTATUS(wstatus)};
        else
            *st = (struct container_exit){.exited = true, .code = -1, .signal = SIGKILL};
    }
    return 1;
}

int container_stop(struct container *c, unsigned grace_ms, struct duet_err *err)
{
    if (c->pidfd < 0)
        return 0;
    /* duet-init forwards SIGTERM to the workload and exits after it. */
    if (pidfd_signal(c->pidfd, SIGTERM) < 0 && errno != ESRCH)
        return duet_err_sys(err, "container %s: cannot signal it", c->name);
    struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
    int r;
    do
        r = poll(&pfd, 1, (int)grace_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0 && pidfd_signal(c->pidfd, SIGKILL) < 0 && errno != ESRCH)
        return duet_err_sys(err, "container %s: cannot kill it", c->name);
    return 0;
}

/* ---- destroy, release, recover ---------------------------------------- */

/* What container_stats and container_disk_usage keep open: the root
 * pins the container's mounts, so it goes before they are taken down. */
static void kept_files_close(struct container *c)
{
    cgroup_files_close(&c->files);
    if (c->root_fd >= 0) {
        close(c->root_fd);
        c->root_fd = -1;
    }
}

int container_destroy(struct container *c, struct duet_err *err)
{
    int rc = 0;
    kept_files_close(c);
    if (c->pidfd >= 0) {
        pidfd_signal(c->pidfd, SIGKILL);
        struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
        poll(&pfd, 1, 5000);
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->child && c->pid > 0)
        waitpid(c->pid, NULL, 0);
    if (cgroup_destroy(&c->rt->cgroup, c->cgroup, err) < 0)
        rc = -1;
    /* Nothing writes the log now: it outlives the container as the
     * last instance's (duet logs --previous). */
    char kept[300], log[400], log1[400];
    snprintf(log1, sizeof(log1), "%s/log.1", c->dir);
    kept_logs_save(container_kept_dir(c->rt, kept, sizeof(kept)), c->name, container_log_path(c, log, sizeof(log)),
                   log1);
    if (duet_remove_tree(c->dir, rc < 0 ? NULL : err) < 0)
        rc = -1;
    free(c);
    return rc;
}

void container_release(struct container *c)
{
    if (c->pidfd >= 0)
        close(c->pidfd);
    kept_files_close(c);
    free(c);
}

int container_recover(struct container_runtime *rt, const char *name, struct container **out, struct duet_err *err)
{
    *out = NULL;
    if (!manifest_name_valid(name, strlen(name)))
        return duet_err_set(err, EINVAL, "container name \"%s\" is not a valid workload name", name);
    struct container *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    cgroup_files_init(&c->files);
    c->root_fd = -1;
    c->rt = rt;
    c->pidfd = -1;
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->dir, sizeof(c->dir), "%s/%s", rt->state_dir, name);
    container_cgroup_name(rt, name, c->cgroup, sizeof(c->cgroup));
    char p[400];
    snprintf(p, sizeof(p), "%s/state", c->dir);
    FILE *f = fopen(p, "re");
    int pid, userns = 0;
    unsigned long long start;
    unsigned uid, gid;
    if (!f || fscanf(f, "%d %llu %u %u %d\n", &pid, &start, &uid, &gid, &userns) != 5 ||
        !fgets(c->workdir, sizeof(c->workdir), f)) {
        if (f)
            fclose(f);
        free(c);
        return duet_err_set(err, ENOENT, "container %s: no usable state in %s", name, p);
    }
    char groups[512] = "";
    c->n_groups = 0;
    if (fgets(groups, sizeof(groups), f))
        for (char *save, *g = strtok_r(groups, " \n", &save); g && c->n_groups < 32; g = strtok_r(NULL, " \n", &save))
            c->groups[c->n_groups++] = (gid_t)strtoul(g, NULL, 10);
    if (c->n_groups == 0)
        c->groups[c->n_groups++] = (gid_t)gid;
    fclose(f);
    c->workdir[strcspn(c->workdir, "\n")] = '\0';
    c->pid = pid;
    c->starttime = start;
    c->uid = uid;
    c->gid = gid;
    c->userns = userns != 0;
    /* Same pid and same start time: the same process, not a reused pid. */
    uint64_t now;
    if (read_starttime(pid, &now) == 0 && now == start) {
        c->pidfd = pidfd_open_(pid);
        /* Between the check and pidfd_open the pid could be reused: check again. */
        if (c->pidfd >= 0 && (read_starttime(pid, &now) < 0 || now != start)) {
            close(c->pidfd);
            c->pidfd = -1;
        }
    }
    *out = c;
    return 0;
}

int container_stats(struct container *c, struct cgroup_stats *st, struct duet_err *err)
{
    return cgroup_stats_read(&c->rt->cgroup, c->cgroup, &c->files, st, err);
}

bool container_oom_killed(const struct container *c)
{
    uint64_t n = 0;
    return cgroup_oom_kills(&c->rt->cgroup, c->cgroup, &n) == 0 && n > 0;
}

int container_freeze(struct container *c, bool frozen, struct duet_err *err)
{
    if (cgroup_freeze(&c->rt->cgroup, c->cgroup, frozen, err) < 0)
        return duet_err_prefix(err, "workload %s: cannot %s it", c->name, frozen ? "pause" : "resume");
    return 0;
}

int container_disk_usage(struct container *c, uint64_t *used, uint64_t *limit, struct duet_err *err)
{
    /* While it runs, its root (an overlay, whose statfs is its upper
     * layer's) says what the layer holds now.  Its root is opened once,
     * while the pidfd proves the pid is still duet-init's, and kept: a
     * scrape of hundreds walks no path.  It pins the container's mounts,
     * so container_wait lets it go at the end, and destroy before it
     * unmounts anything. */
    if (c->root_fd < 0 && c->pidfd >= 0 && c->pid > 0) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/root", (int)c->pid);
        int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
        if (fd >= 0 && poll(&pfd, 1, 0) == 0)
            c->root_fd = duet_fd_keep_high(fd);
        else if (fd >= 0)
            close(fd);
    }
    struct statfs sf;
    if (c->root_fd >= 0 && c->disk_limit && fstatfs(c->root_fd, &sf) == 0) {
        *used = (uint64_t)(sf.f_blocks - sf.f_bfree) * (uint64_t)sf.f_bsize;
        *limit = c->disk_limit;   /* the image's size, fixed at prepare */
        return 0;
    }
    /* Not running (or the first time): what the image takes on the host. */
    char p[400];
    snprintf(p, sizeof(p), "%s/disk.img", c->dir);
    if (container_layer_usage(p, used, limit, err) < 0)
        return duet_err_prefix(err, "container %s: its writable layer", c->name);
    c->disk_limit = *limit;
    if (c->root_fd >= 0 && fstatfs(c->root_fd, &sf) == 0)
        *used = (uint64_t)(sf.f_blocks - sf.f_bfree) * (uint64_t)sf.f_bsize;
    return 0;
}

/* ---- exec ------------------------------------------------------------- */

/* The workload's environment, kept by start in STATE/NAME/env, as an
 * array into *data (both malloc'd). */
static char **exec_env(const struct container *c, char **data)
{
    char envpath[400];
    snprintf(envpath, sizeof(envpath), "%s/env", c->dir);
    char *envdata = NULL;
    size_t len = 0, cap = 0;
    _cleanup_fclose_ FILE *ef = fopen(envpath, "re");
    if (ef) {
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof(chunk), ef)) > 0) {
            if (len + got + 1 > cap) {
                cap = (len + got + 1) * 2;
                char *nd = realloc(envdata, cap);
                if (!nd)
                    abort();
                envdata = nd;
            }
            memcpy(envdata + len, chunk, got);
            len += got;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += envdata[i] == '\0';
    char **envp = calloc(n + 3, sizeof(*envp));
    if (!envp)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(envdata + i) + 1)
        envp[k++] = envdata + i;
    if (k == 0) {
        envp[k++] = (char *)"PATH=" ROOTFS_DEFAULT_PATH;
        envp[k++] = (char *)"HOME=/";
    }
    *data = envdata;
    return envp;
}

/*
 * The helper is a fork of this process and so holds a copy of everything
 * it has: memory, descriptors (a daemon's store among them), its image as
 * /proc/self/exe.  Before it comes near the container it closes every
 * descriptor but the namespaces it joins and duet-init's sealed copy, and
 * makes itself non-dumpable, so the container's root can neither ptrace it
 * nor open anything through /proc/PID/{fd,exe,mem}.  It stays outside the
 * container's pid namespace (invisible there); only its child, which
 * executes duet-init at once, is inside.
 *
 * The helper keeps the timeout: it asks duet-init to end the command's
 * tree (SIGTERM; duet-init is the tree's subreaper), and if that does not
 * happen within EXEC_KILL_GRACE_MS (the container may have stopped
 * duet-init) kills duet-init itself, whose orphans then fall to the
 * container's pid 1.  It always reaps its child before it ends: a child
 * orphaned outside the container would go to the nearest subreaper there
 * (duetd is one, for embedded QEMU) and, unreaped, keep the container's
 * pid namespace, and so its stop, from ever finishing.
 */
#define EXEC_KILL_GRACE_MS 2000

/* The helper's wait for its child; never returns.  cancel: a pipe's read
 * end whose writer closing (the caller has gone) ends the command as the
 * timeout does; -1: none. */
static _Noreturn void exec_helper_wait(pid_t inner, int timeout_ms, int cancel)
{
    int pfd = (int)syscall(SYS_pidfd_open, inner, 0);
    bool timed_out = false;
    if ((timeout_ms > 0 || cancel >= 0) && pfd >= 0) {
        /* events 0: the pipe's hang-up alone, not the records in it */
        struct pollfd p[2] = {{.fd = pfd, .events = POLLIN}, {.fd = cancel, .events = 0}};
        int rc;
        while ((rc = poll(p, cancel >= 0 ? 2 : 1, timeout_ms > 0 ? timeout_ms : -1)) < 0 && errno == EINTR)
            ;
        bool cancelled = rc > 0 && !(p[0].revents & POLLIN) && (p[1].revents & (POLLHUP | POLLERR));
        if (rc == 0 || cancelled) {
            timed_out = rc == 0;
            kill(inner, SIGTERM);
            while ((rc = poll(p, 1, EXEC_KILL_GRACE_MS)) < 0 && errno == EINTR)
                ;
            if (rc == 0)
                kill(inner, SIGKILL);
        }
    }
    int ws;
    while (waitpid(inner, &ws, 0) < 0)
        if (errno != EINTR)
            _exit(125);
    if (timed_out) {
        /* Told apart from any status of the command's: nothing in the
         * container can signal this process. */
        signal(SIGALRM, SIG_DFL);
        raise(SIGALRM);
    }
    _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
}

/* The inner process's side of a terminal (it runs as the container's
 * root, in its mount namespace, with its capabilities and filter): opens
 * the container's own /dev/pts/ptmx, takes the peer without a path, sends
 * the master out through sock and makes the peer its stdio.  Returns 0,
 * or -1 (the caller exits 125 and the daemon reads no master). */
static int exec_tty_inner(int sock, unsigned short rows, unsigned short cols)
{
    int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -1;
    int unlock = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) < 0)
        return -1;
    int slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0)
        return -1;
    if (rows && cols) {
        struct winsize ws = {.ws_row = rows, .ws_col = cols};
        ioctl(m, TIOCSWINSZ, &ws);
    }
    char byte = 't';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &m, sizeof(int));
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1)
        return -1;
    close(m);
    close(sock);
    if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
        return -1;
    if (slave > 2)
        close(slave);
    return 0;
}

/* The daemon's side: the master the inner process sent, once it is known
 * to be one (what arrives was chosen inside the container).  -1 with err. */
static int exec_tty_receive(struct container *c, int sock, struct duet_err *err)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int rc;
    while ((rc = poll(&p, 1, 10000)) < 0 && errno == EINTR)
        ;
    if (rc <= 0)
        return duet_err_set(err, ETIMEDOUT, "container %s: no terminal could be made in it", c->name);
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&msg) : NULL;
    int m = -1;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&m, CMSG_DATA(cm), sizeof(int));
    unsigned int ptn;
    struct stat st;
    if (m >= 0 && (fstat(m, &st) < 0 || !S_ISCHR(st.st_mode) || ioctl(m, TIOCGPTN, &ptn) < 0)) {
        close(m);
        m = -1;
    }
    if (m < 0)
        return duet_err_set(err, EIO,
                            "container %s: no terminal could be made in it (its /dev/pts is not a devpts of its "
                            "own, or has no ptmx)",
                            c->name);
    return m;
}

int container_exec_start(struct container *c, const char *const *argv, int out_fd, int err_fd, int timeout_ms,
                         struct container_exec_proc *proc, struct duet_err *err)
{
    return container_exec_start_io(c, argv, -1, out_fd, err_fd, -1, false, 0, 0, NULL, timeout_ms, proc, err);
}

int container_exec_start_io(struct container *c, const char *const *argv, int in_fd, int out_fd, int err_fd,
                            int ctl_fd, bool tty, unsigned short rows, unsigned short cols, int *master,
                            int timeout_ms, struct container_exec_proc *proc, struct duet_err *err)
{
    proc->pid = -1;
    proc->pidfd = -1;
    if (master)
        *master = -1;
    uint64_t now;
    if (c->pidfd < 0 || read_starttime(c->pid, &now) < 0 || now != c->starttime)
        return duet_err_set(err, ESRCH, "container %s is not running", c->name);
    /* The user namespace first: it owns the others. */
    static const char *const all_ns[] = {"user", "ipc", "uts", "net", "pid", "cgroup", "mnt"};
    const char *const *ns = c->userns ? all_ns : all_ns + 1;
    size_t n_ns = c->userns ? 7 : 6;
    int keep[11];
    for (size_t i = 0; i < n_ns; i++) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)c->pid, ns[i]);
        keep[i] = open(p, O_RDONLY | O_CLOEXEC);
        if (keep[i] < 0) {
            duet_err_sys(err, "container %s: cannot open %s", c->name, p);
            for (size_t j = 0; j < i; j++)
                close(keep[j]);
            return -1;
        }
    }
    _cleanup_free_ char *envdata = NULL;
    _cleanup_free_ char **envp = exec_env(c, &envdata);
    /* duet-init's arguments: built here, the helper must not allocate. */
    struct init_ids ids;
    size_t argc = 0;
    while (argv[argc])
        argc++;
    _cleanup_free_ const char **iargv = calloc(argc + 15, sizeof(*iargv));
    if (!iargv)
        abort();
    size_t k = 0;
    iargv[k++] = "duet-init";
    iargv[k++] = "--exec";
    if (tty)
        iargv[k++] = "--tty";
    init_ids_append(c, &ids, iargv, &k);
    iargv[k++] = "--";
    for (size_t i = 0; i < argc; i++)
        iargv[k++] = argv[i];
    iargv[k] = NULL;

    int init_fd = c->rt->init_fd;
    keep[n_ns] = init_fd;
    /* A terminal's master comes back over this pair. */
    int tsock[2] = {-1, -1};
    if (tty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tsock) < 0) {
        for (size_t j = 0; j < n_ns; j++)
            close(keep[j]);
        return duet_err_sys(err, "container %s: cannot make a socket pair", c->name);
    }
    keep[n_ns + 1] = tsock[1];
    keep[n_ns + 2] = ctl_fd;
    pid_t helper = fork();
    if (helper < 0) {
        for (size_t j = 0; j < n_ns; j++)
            close(keep[j]);
        if (tty) {
            close(tsock[0]);
            close(tsock[1]);
        }
        return duet_err_sys(err, "container %s: cannot fork", c->name);
    }
    if (helper == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* The caller's end of things must not outlive it: no exec helper
         * survives the daemon (it would keep what the daemon had). */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int in = in_fd >= 0 ? fcntl(in_fd, F_DUPFD_CLOEXEC, 3) : nul;
        int o = tty ? nul : fcntl(out_fd, F_DUPFD_CLOEXEC, 3), e = tty ? nul : fcntl(err_fd, F_DUPFD_CLOEXEC, 3);
        if (o < 0 || e < 0 || in < 0 || nul < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(125);
        /* keep: the namespaces, duet-init, the terminal's pair, the cancel pipe */
        if (!tty)
            keep[n_ns + 1] = -1;
        duet_close_fds_except(keep, n_ns + 3);
        /* Same cgroup first (from outside), then every namespace; the pid
         * namespace applies to children, hence the second fork. */
        if (cgroup_attach(&c->rt->cgroup, c->cgroup, getpid(), NULL) < 0)
            _exit(125);
        for (size_t i = 0; i < n_ns; i++)
            if (setns(keep[i], 0) < 0)
                _exit(125);
        for (size_t i = 0; i < n_ns; i++)
            close(keep[i]);
        pid_t inner = fork();
        if (inner > 0 && tty)
            close(tsock[1]);   /* the inner process's alone: its end tells the daemon it failed */
        if (inner < 0)
            _exit(125);
        if (inner == 0) {
            /* Root of the container (in a user namespace, its mapped root:
             * an unmapped uid would lose every capability at the exec),
             * its capabilities and filter; duet-init takes the workload's
             * user and directory, then runs the command. */
            if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                _exit(125);
            /* After the switch, which clears it; the helper is outside this
             * pid namespace, parent 0 as seen from here while it lives. */
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            if (getppid() != 0)
                _exit(125);
            if (container_caps_apply(c->rt->caps, c->rt->last_cap) < 0)
                _exit(125);
            if (c->rt->filter.len && container_seccomp_apply(&c->rt->filter) < 0)
                _exit(125);
            if (tty && exec_tty_inner(tsock[1], rows, cols) < 0)
                _exit(125);
            syscall(SYS_execveat, init_fd, "", (char *const *)iargv, envp, AT_EMPTY_PATH);
            _exit(125);
        }
        exec_helper_wait(inner, timeout_ms, ctl_fd >= 0 ? keep[n_ns + 2] : -1);
    }
    for (size_t j = 0; j < n_ns; j++)
        close(keep[j]);
    proc->pid = helper;
    proc->pidfd = (int)syscall(SYS_pidfd_open, helper, 0);
    if (proc->pidfd < 0) {
        /* Our own unreaped child: its pid cannot have been reused. */
        duet_err_sys(err, "container %s: cannot watch the exec helper", c->name);
        kill(helper, SIGKILL);
        waitpid(helper, NULL, 0);
        proc->pid = -1;
        if (tty) {
            close(tsock[0]);
            close(tsock[1]);
        }
        return -1;
    }
    if (tty) {
        close(tsock[1]);
        int m = exec_tty_receive(c, tsock[0], err);
        close(tsock[0]);
        if (m < 0) {
            container_exec_kill(proc);
            int st;
            bool to;
            container_exec_reap(proc, &st, &to);
            return -1;
        }
        *master = m;
    }
    return 0;
}

void container_exec_kill(struct container_exec_proc *proc)
{
    if (proc->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, proc->pidfd, SIGKILL, NULL, 0);
}

int container_exec_reap(struct container_exec_proc *proc, int *status, bool *timed_out)
{
    int ws = 0;
    pid_t r;
    while ((r = waitpid(proc->pid, &ws, 0)) < 0 && errno == EINTR)
        ;
    if (proc->pidfd >= 0)
        close(proc->pidfd);
    proc->pidfd = -1;
    proc->pid = -1;
    if (r < 0)
        return -1;
    *timed_out = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM;
    *status = *timed_out ? 128 + SIGKILL : WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 0;
}

int container_exec(struct container *c, const char *const *argv, int out_fd, int err_fd, int timeout_ms,
                   int *status, struct duet_err *err)
{
    struct container_exec_proc proc;
    if (container_exec_start(c, argv, out_fd, err_fd, timeout_ms, &proc, err) < 0)
        return -1;
    bool timed_out = false;
    if (container_exec_reap(&proc, status, &timed_out) < 0)
        return duet_err_sys(err, "container %s: waiting for exec", c->name);
    if (timed_out)
        return duet_err_set(err, ETIMEDOUT, "container %s: %s did not end within %d ms and was killed", c->name,
                            argv[0], timeout_ms);
    if (*status == 125)
        return duet_err_set(err, EPERM, "container %s: could not enter the container to run %s", c->name, argv[0]);
    return 0;
}
