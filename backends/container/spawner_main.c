/*
 * spawner_main.c - the container spawner's own side (see spawner.h):
 * `duet-init --spawner`, executed by the runtime from its sealed copy of
 * duet-init with its socket on fd 3 and duet-init itself on fd 4.
 *
 * It is a static binary of its own, not a fork of the daemon, because a
 * clone copies its caller's page tables and each copy is unmapped again by
 * the exec of duet-init: from a fork of duetd that is hundreds of mappings
 * per container, from here a few.
 *
 * First message on the socket: the runtime's hello (caps, last cap, the
 * seccomp program).  Then requests, one at a time.  The wire form of a
 * request: a fixed head, then strings, NUL-terminated, in this order:
 * hostname, lower, layer, merged, overlay options, each volume's target,
 * duet-init's argv, the environment.  Its fds, in this order: sync,
 * report, log, exit, /dev/null, previous log, layer, CPU quota (when
 * there is one), each volume.  The answer: the pid, or -errno.
 *
 * Whatever the request says, the spawner only clones namespaces, never
 * shared memory or files, and what it clones runs container_setup_main on
 * the request's own bytes.  Its buffers are mapped per request.
 */
#include "spawner.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fsutil.h"
#include "setup.h"

#define SPAWN_NAMESPACES (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER)

/* The next NUL-terminated string of [*p, end), or NULL when there is none. */
static const char *next_string(const char **p, const char *end)
{
    const char *s = *p;
    const char *nul = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
    if (!nul)
        return NULL;
    *p = nul + 1;
    return s;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* One request: read, checked, cloned; returns the pid or -errno.  *stop:
 * the stream is closed, or out of step after a request that could not be
 * read whole; the answer (if any) is the last. */
static int serve_one(const struct container_runtime *rt, int sock, bool *stop)
{
    struct spawn_head h = {0};
    int fds[SPAWN_MAX_FDS];
    size_t n_fds = 0;
    union {
        char buf[CMSG_SPACE(sizeof(int) * SPAWN_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t got;
    do
        got = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        *stop = true;
        return 0;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k && n_fds < SPAWN_MAX_FDS; i++)
                memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    /* Until the whole request is read, a failure leaves the stream out
     * of step: answered, then the spawner ends (the next request starts
     * another). */
    int rc = -EPROTO;
    size_t extra = 0;
    char *mem = MAP_FAILED;
    *stop = true;
    size_t first_attach = SPAWN_FIXED_FDS - 1 + (h.has_quota ? 1 : 0);
    size_t first_volume = first_attach + (h.has_attach ? SPAWN_ATTACH_FDS : 0);
    /* Each string takes a byte at least: the counts are bounded by len.
     * Only namespaces are cloned, never shared memory or files. */
    if ((size_t)got != sizeof(h) || h.magic != SPAWN_MAGIC || h.len > SPAWN_MAX_BYTES || (m.msg_flags & MSG_CTRUNC) ||
        h.n_fds != n_fds || n_fds < first_volume || h.n_volumes != n_fds - first_volume || h.n_argv == 0 ||
        (uint64_t)h.n_argv + h.n_envp + h.n_volumes + 5 > h.len || (h.flags & ~(uint64_t)SPAWN_NAMESPACES))
        goto out;
    /* strings, then the volumes' and the two vectors' arrays */
    size_t strings = (h.len + 15) & ~(size_t)15;
    extra = strings + h.n_volumes * sizeof(struct wl_volume) + (h.n_argv + h.n_envp + 2) * sizeof(char *) +
            (n_fds + 1) * sizeof(int);
    mem = mmap(NULL, extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto out;
    }
    if (!duet_read_full(sock, mem, h.len))
        goto out;
    *stop = false;
    const char *p = mem, *end = mem + h.len;
    struct wl_volume *vols = (struct wl_volume *)(mem + strings);
    char **argv = (char **)(vols + h.n_volumes);
    char **envp = argv + h.n_argv + 1;
    int *keep = (int *)(envp + h.n_envp + 1);
    const char *hostname = next_string(&p, end), *lower = next_string(&p, end), *layer = next_string(&p, end),
               *merged = next_string(&p, end), *opts = next_string(&p, end);
    bool ok = opts != NULL;
    for (uint32_t i = 0; ok && i < h.n_volumes; i++) {
        vols[i] = (struct wl_volume){.target = next_string(&p, end)};
        ok = vols[i].target != NULL;
    }
    for (uint32_t i = 0; ok && i < h.n_argv; i++)
        ok = (argv[i] = (char *)next_string(&p, end)) != NULL;
    argv[h.n_argv] = NULL;
    for (uint32_t i = 0; ok && i < h.n_envp; i++)
        ok = (envp[i] = (char *)next_string(&p, end)) != NULL;
    envp[h.n_envp] = NULL;
    if (!ok || p != end)
        goto out;
    memcpy(keep, fds, n_fds * sizeof(int));
    keep[n_fds] = rt->init_fd;
    struct child_args a = {
        .rt = rt,
        .hostname = hostname,
        .fail_at = (enum container_step)h.fail_at,
        .userns = h.userns,
        .lower = lower,
        .layer = layer,
        .layer_fd = fds[6],
        .plan = {.merged = merged, .overlay_opts = opts, .volumes = vols,
                 .volume_fds = fds + first_volume, .n_volumes = h.n_volumes},
        .sync_fd = fds[0],
        .report_fd = fds[1],
        .log_fd = fds[2],
        .exit_fd = fds[3],
        .null_fd = fds[4],
        .prev_log_fd = fds[5],
        .keep = keep,
        .n_keep = n_fds + 1,
        .init_argv = argv,
        .envp = envp,
        .net = h.has_net ? &h.net : NULL,
        .quota_fd = h.has_quota ? fds[7] : -1,
        .attach = h.has_attach != 0,
    };
    for (int i = 0; a.attach && i < SPAWN_ATTACH_FDS; i++)
        a.attach_fds[i] = fds[first_attach + (size_t)i];
    /* Like fork: no new stack, the child goes on on its copy of ours. */
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)h.flags | CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0)
        container_setup_main(&a);
    rc = pid < 0 ? -errno : pid;
out:
    if (mem != MAP_FAILED)
        munmap(mem, extra);
    close_all(fds, n_fds);
    return rc;
}

/* The runtime's hello: what every setup process applies (caps, filter). */
static bool read_hello(int sock, struct container_runtime *rt)
{
    static struct sock_filter insns[SPAWN_MAX_FILTER];
    struct spawn_hello hello;
    if (!duet_read_full(sock, &hello, sizeof(hello)) || hello.magic != SPAWN_HELLO_MAGIC ||
        hello.filter_len > SPAWN_MAX_FILTER || hello.last_cap < 0 || hello.last_cap > 63)
        return false;
    if (hello.filter_len && !duet_read_full(sock, insns, hello.filter_len * sizeof(insns[0])))
        return false;
    rt->caps = hello.caps;
    rt->last_cap = hello.last_cap;
    rt->filter.insns = insns;
    rt->filter.len = (unsigned short)hello.filter_len;
    return true;
}

int container_spawner_main(void)
{
    /* The runtime it was started for is its parent (checked before the
     * exec, spawner.c); the parent-death signal set there ends it with
     * its creator.  An end of file on the socket ends it too. */
    prctl(PR_SET_NAME, "duet-spawner", 0, 0, 0);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int keep[] = {SPAWN_SOCK_FD, SPAWN_INIT_FD};
    duet_close_fds_except(keep, 2);
    static struct container_runtime rt;
    rt.init_fd = SPAWN_INIT_FD;
    if (!read_hello(SPAWN_SOCK_FD, &rt))
        return 1;
    for (;;) {
        bool stop = false;
        struct spawn_answer ans = {.pid = serve_one(&rt, SPAWN_SOCK_FD, &stop)};
        if (ans.pid == 0 || write(SPAWN_SOCK_FD, &ans, sizeof(ans)) != (ssize_t)sizeof(ans) || stop)
            return 0;
    }
}
