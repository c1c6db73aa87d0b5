/*
 * setup.c - a container's setup process: from its clone to the exec of
 * duet-init (see setup.h, and runtime.c for the parent's side).
 *
 * It runs in the new namespaces as their pid 1, on a copy of the
 * spawner's memory, and may not allocate: every step is system calls on
 * what child_args holds.  The order matters: the filesystem is built
 * while the parent moves the process into its cgroup; nothing of the
 * workload's runs before the parent's go-ahead; capabilities and the
 * seccomp filter are the last things before the exec.
 */
#include "setup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "common/fsutil.h"
#include "common/ifconf.h"
#include "init_attach.h"
#include "syscall_filter.h"

static _Noreturn void child_fail(const struct child_args *a, enum container_step step, const char *what)
{
    struct setup_report r = {.step = step, .err = errno};
    /* No `what`: the runtime names the step itself (container_step_name
     * is the daemon's, not in this binary). */
    snprintf(r.what, sizeof(r.what), "%s", what ? what : "");
    ssize_t n = write(a->report_fd, &r, sizeof(r));
    (void)n;
    _exit(127);
}

/* Runs one setup step: the injected failure when asked, else expr; on
 * failure reports the step, errno and `what` (set by the step, or NULL for
 * the step's own name). */
#define CHECK(step, expr)                              \
    do {                                               \
        if (a->fail_at == (step)) {                    \
            errno = EIO;                               \
            child_fail(a, (step), "injected failure"); \
        }                                              \
        what = NULL;                                   \
        if ((expr) < 0)                                \
            child_fail(a, (step), what);               \
    } while (0)

/* Waits for the parent's go-ahead: one byte, and with user namespaces the
 * idmapped image as a mount fd (SCM_RIGHTS).  No allocation. */
static int wait_go(int fd, int *tree)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        if (n == 0)
            errno = EPIPE;
        return -1;
    }
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (tree) {
        if (!cm || cm->cmsg_type != SCM_RIGHTS) {
            errno = EPROTO;
            return -1;
        }
        memcpy(tree, CMSG_DATA(cm), sizeof(int));
    }
    return 0;
}

static int attach_lower(int tree, const char *where, const char **what)
{
    *what = "attaching the idmapped image";
    return (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, where, MOVE_MOUNT_F_EMPTY_PATH);
}

static int attach_layer(int layer, const char *where, const char **what)
{
    *what = "attaching the writable layer";
    return (int)syscall(SYS_move_mount, layer, "", AT_FDCWD, where, MOVE_MOUNT_F_EMPTY_PATH);
}

/* eth0, the container's end of its veth pair, is in our namespace once
 * the parent's go came: give it the workload's address and route. */
static int network_up(const struct net_attachment *net, int v6conf, const char **what)
{
    /* No IPv6 on eth0, written while it is still down (see ipv6_off in
     * network/netlink.c); v6conf is -1 on a kernel without IPv6. */
    if (v6conf >= 0) {
        int fd = openat(v6conf, "eth0/disable_ipv6", O_WRONLY | O_CLOEXEC);
        bool ok = fd >= 0 && write(fd, "1", 1) == 1;
        if (fd >= 0)
            close(fd);
        close(v6conf);
        if (!ok) {
            *what = "turning IPv6 off on eth0";
            return -1;
        }
    }
    return ifconf_ipv4("eth0", net->addr, net->prefix, net->gateway, what);
}

/* The IPv6 settings of our network namespace, opened while the host's
 * /proc is still ours and writable: by the time eth0 has come (after the
 * mounts, without a user namespace) /proc is the container's, and its
 * /proc/sys is read-only.  What is under this directory is looked up in
 * the namespace of whoever opens it, so eth0's settings are ours. */
static int network_v6conf(void)
{
    return open("/proc/sys/net/ipv6/conf", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* A new network namespace starts with lo down; every runtime brings it up,
 * and workloads (and TCP health checks) expect 127.0.0.1 to work. */
static int loopback_up(const char **what)
{
    if (ifconf_up("lo", what) < 0) {
        *what = "bringing up the loopback interface";
        return -1;
    }
    return 0;
}

/* Runs in the new namespaces, as pid 1; never returns. */
_Noreturn void container_setup_main(const struct child_args *a)
{
    const char *what = NULL;
    int tree = -1;
    /* Until the parent says go, its death must end this half-built
     * container: otherwise it would wait for ever, holding copies of the
     * parent's fds (the API socket among them) and its siblings' setup
     * pipes.  Cleared once the go came, so the workload outlives duetd. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* A copy of every fd of the caller came with the clone: a daemon's
     * sockets (its API, its name server's port) must not live on in a
     * child that is still dying after a kill -9 of the daemon, nor reach
     * a container.  Close all but what setup uses, before anything slow. */
    duet_close_fds_except(a->keep, a->n_keep);
    int v6conf = a->net ? network_v6conf() : -1;
    /* In a user namespace nothing can be built before the parent has
     * written the id maps and handed over the idmapped image. */
    if (a->userns) {
        CHECK(STEP_SYNC, wait_go(a->sync_fd, &tree));
        /* We are still host uid 0, which the map leaves out: become the
         * namespace's root (host uid base) before creating anything. */
        CHECK(STEP_SYNC, (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) ? (what = "becoming root in the user namespace", -1) : 0);
        CHECK(STEP_NETWORK, a->net ? network_up(a->net, v6conf, &what) : 0);
    }
    CHECK(STEP_HOSTNAME, sethostname(a->hostname, strlen(a->hostname)));
    CHECK(STEP_HOSTNAME, loopback_up(&what));
    CHECK(STEP_MOUNT_PRIVATE, mounts_make_private(&what));
    CHECK(STEP_OVERLAY, attach_layer(a->layer_fd, a->layer, &what));
    close(a->layer_fd);
    if (a->userns) {
        CHECK(STEP_OVERLAY, attach_lower(tree, a->lower, &what));
        close(tree);
    }
    int rootfd = -1;
    CHECK(STEP_OVERLAY, mounts_overlay(&a->plan, &rootfd, &what));
    CHECK(STEP_PROC_DEV_SYS, mounts_proc_dev_sys(rootfd, &what));
    CHECK(STEP_MASK, mounts_mask(rootfd, &what));
    CHECK(STEP_VOLUMES, mounts_volumes(rootfd, &a->plan, &what));
    CHECK(STEP_PIVOT, mounts_pivot(rootfd, &what));
    /* Nothing of the workload runs before it is in its cgroup: wait for
     * the parent, then make that cgroup the root of our cgroup namespace. */
    if (!a->userns) {
        CHECK(STEP_SYNC, wait_go(a->sync_fd, NULL));
        CHECK(STEP_NETWORK, a->net ? network_up(a->net, v6conf, &what) : 0);
    }
    CHECK(STEP_CGROUPNS, unshare(CLONE_NEWCGROUP));
    prctl(PR_SET_PDEATHSIG, 0);
    close(rootfd);
    CHECK(STEP_CAPS, container_caps_apply(a->rt->caps, a->rt->last_cap));
    /* An empty program means no filter: only the tests' control runs, which
     * prove the escape tests can see an escape, build a runtime like that. */
    if (a->rt->filter.len)
        CHECK(STEP_SECCOMP, container_seccomp_apply(&a->rt->filter));
    /* fds for duet-init: 0 /dev/null, 1 and 2 the log, 3 the exit file, 4
     * the log's previous generation, 5 the CPU quota file if there is a
     * quota, 6 to 9 the caller's ends of an attached run (init_attach.h);
     * everything else closes on exec (the report pipe first of all).
     *
     * The quota is written by duet-init, just before it starts the
     * workload, not here: everything until then is duet's own work (this
     * setup, the exec, whose unmapping of this copy of the daemon is the
     * dearest part), and a container given 0.01 CPUs spent 100 to 300 ms
     * throttled in it, holding up the start it reports.  The file was
     * opened by the parent, outside any cgroup namespace, so the write is
     * allowed on cgroup v2 too (the kernel checks the opener's namespace). */
    int report = fcntl(a->report_fd, F_DUPFD_CLOEXEC, 10);
    int init_fd = fcntl(a->rt->init_fd, F_DUPFD_CLOEXEC, 10);
    int log_fd = fcntl(a->log_fd, F_DUPFD_CLOEXEC, 10), exit_fd = fcntl(a->exit_fd, F_DUPFD_CLOEXEC, 10);
    int null_fd = fcntl(a->null_fd, F_DUPFD_CLOEXEC, 10), prev_fd = fcntl(a->prev_log_fd, F_DUPFD_CLOEXEC, 10);
    int quota_fd = a->quota_fd >= 0 ? fcntl(a->quota_fd, F_DUPFD_CLOEXEC, 10) : -1;
    int att[ATTACH_FDS];
    bool att_ok = true;
    for (int i = 0; i < ATTACH_FDS; i++) {
        att[i] = a->attach ? fcntl(a->attach_fds[i], F_DUPFD_CLOEXEC, 10) : -1;
        att_ok = att_ok && (!a->attach || att[i] >= 0);
    }
    for (int i = 0; att_ok && a->attach && i < ATTACH_FDS; i++)
        att_ok = dup2(att[i], ATTACH_IN_FD + i) >= 0;
    struct child_args moved = *a;
    moved.report_fd = report;
    a = &moved;
    CHECK(STEP_EXEC, (report < 0 || init_fd < 0 || log_fd < 0 || exit_fd < 0 || null_fd < 0 || prev_fd < 0 ||
                      (a->quota_fd >= 0 && quota_fd < 0) || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 ||
                      dup2(log_fd, 2) < 0 || dup2(exit_fd, 3) < 0 || dup2(prev_fd, 4) < 0 ||
                      (quota_fd >= 0 && dup2(quota_fd, 5) < 0) || !att_ok)
                         ? (what = "arranging duet-init's file descriptors", -1)
                         : 0);
    if (a->attach && quota_fd < 0)
        fcntl(5, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, a->attach ? ATTACH_IN_FD + ATTACH_FDS : quota_fd >= 0 ? 6 : 5, ~0U,
            CLOSE_RANGE_CLOEXEC);
    if (a->fail_at == STEP_EXEC) {
        errno = EIO;
        child_fail(a, STEP_EXEC, "injected failure");
    }
    syscall(SYS_execveat, init_fd, "", a->init_argv, a->envp, AT_EMPTY_PATH);
    child_fail(a, STEP_EXEC, "executing duet-init");
}

