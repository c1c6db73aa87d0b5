/*
 * spawner.c - the process that clones containers' setup processes (see
 * spawner.h).
 *
 * The wire form of a request: a fixed head, then strings, NUL-terminated,
 * in this order: hostname, lower, layer, merged, overlay options, each
 * volume's target, duet-init's argv, the environment.  Its fds, in this
 * order: sync, report, log, exit, /dev/null, previous log, layer, CPU
 * quota (when there is one), each volume.  The answer: the pid, or -errno.
 *
 * The spawner may be forked from a multi-threaded process, so from the
 * fork on it only makes system calls: no malloc, no stdio, no locks.  Its
 * buffers are mapped per request.
 */
#include "spawner.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "setup.h"

#define SPAWN_NAMESPACES (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUSER)

struct container_spawner {
    pthread_mutex_t lock;
    pid_t pid;       /* the spawner, or -1 */
    int sock;        /* our end */
};

/* ---- the spawner's side: system calls only ---------------------------- */

static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

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
    size_t first_volume = SPAWN_FIXED_FDS - 1 + (h.has_quota ? 1 : 0);
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
    if (!read_full(sock, mem, h.len))
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
    };
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

static _Noreturn void spawner_main(const struct container_runtime *rt, int sock, pid_t parent)
{
    /* Gone with its creator; and the creator's handlers, mask and fds are
     * not ours. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
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
    int keep[] = {sock, rt->init_fd};
    duet_close_fds_except(keep, 2);
    for (;;) {
        bool stop = false;
        struct spawn_answer ans = {.pid = serve_one(rt, sock, &stop)};
        if (ans.pid == 0 || write(sock, &ans, sizeof(ans)) != (ssize_t)sizeof(ans) || stop)
            _exit(0);
    }
}

/* ---- the runtime's side ----------------------------------------------- */

static int spawner_start(struct container_spawner *s, const struct container_runtime *rt, struct duet_err *err);
static void spawner_stop(struct container_spawner *s);

struct container_spawner *container_spawner_new(void)
{
    struct container_spawner *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    pthread_mutex_init(&s->lock, NULL);
    s->pid = -1;
    s->sock = -1;
    return s;
}

pid_t container_spawner_pid(const struct container_spawner *s)
{
    return s->pid;
}

int container_spawner_socket(struct container_spawner *s, const struct container_runtime *rt, struct duet_err *err)
{
    pthread_mutex_lock(&s->lock);
    spawner_stop(s);
    int rc = spawner_start(s, rt, err);
    pthread_mutex_unlock(&s->lock);
    return rc < 0 ? -1 : s->sock;
}

/* Closing our end ends the spawner (end of file); then it is reaped. */
static void spawner_stop(struct container_spawner *s)
{
    if (s->sock >= 0)
        close(s->sock);
    s->sock = -1;
    if (s->pid > 0)
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    s->pid = -1;
}

void container_spawner_free(struct container_spawner *s)
{
    if (!s)
        return;
    spawner_stop(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int spawner_start(struct container_spawner *s, const struct container_runtime *rt, struct duet_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return duet_err_sys(err, "cannot make the container spawner's socket");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = duet_err_sys(err, "cannot start the container spawner");
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    if (pid == 0)
        spawner_main(rt, sv[1], parent);
    close(sv[1]);
    s->pid = pid;
    s->sock = sv[0];
    return 0;
}

/* The request's bytes: the strings of a, in the wire order. */
struct wire {
    char *buf;
    size_t len, cap;
};

static void wire_put(struct wire *w, const char *str)
{
    size_t n = strlen(str) + 1;
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2;
        w->buf = realloc(w->buf, w->cap);
        if (!w->buf)
            abort();
    }
    memcpy(w->buf + w->len, str, n);
    w->len += n;
}

static int send_request(int sock, const struct spawn_head *h, const struct wire *w, const int *fds, size_t n_fds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SPAWN_MAX_FDS)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {.iov_base = (void *)h, .iov_len = sizeof(*h)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n_fds)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    ssize_t sent;
    do
        sent = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)sizeof(*h))
        return -1;
    for (size_t off = 0; off < w->len;) {
        ssize_t k = send(sock, w->buf + off, w->len - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    return 0;
}

pid_t container_spawner_clone(struct container_spawner *s, const struct child_args *a, unsigned long flags,
                              struct duet_err *err)
{
    const struct mounts_plan *pl = &a->plan;
    if (pl->n_volumes > SPAWN_MAX_FDS - SPAWN_FIXED_FDS)
        return duet_err_set(err, E2BIG, "%zu volumes; a container has at most %d", pl->n_volumes,
                            SPAWN_MAX_FDS - SPAWN_FIXED_FDS);
    struct spawn_head h = {.magic = SPAWN_MAGIC, .flags = flags, .fail_at = (int32_t)a->fail_at,
                           .userns = a->userns, .has_net = a->net != NULL, .has_quota = a->quota_fd >= 0,
                           .n_volumes = (uint32_t)pl->n_volumes};
    if (a->net)
        h.net = *a->net;
    int fds[SPAWN_MAX_FDS];
    size_t n = 0;
    int fixed[] = {a->sync_fd, a->report_fd, a->log_fd, a->exit_fd, a->null_fd, a->prev_log_fd, a->layer_fd};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        fds[n++] = fixed[i];
    if (a->quota_fd >= 0)
        fds[n++] = a->quota_fd;
    for (size_t i = 0; i < pl->n_volumes; i++)
        fds[n++] = pl->volume_fds[i];
    h.n_fds = (uint32_t)n;
    struct wire w = {0};
    const char *fixed_str[] = {a->hostname, a->lower ? a->lower : "", a->layer, pl->merged, pl->overlay_opts};
    for (size_t i = 0; i < sizeof(fixed_str) / sizeof(fixed_str[0]); i++)
        wire_put(&w, fixed_str[i]);
    for (size_t i = 0; i < pl->n_volumes; i++)
        wire_put(&w, pl->volumes[i].target);
    for (; a->init_argv[h.n_argv]; h.n_argv++)
        wire_put(&w, a->init_argv[h.n_argv]);
    for (; a->envp[h.n_envp]; h.n_envp++)
        wire_put(&w, a->envp[h.n_envp]);
    if (w.len > SPAWN_MAX_BYTES) {
        free(w.buf);
        return duet_err_set(err, E2BIG, "the command line and environment take %zu bytes; at most %u", w.len,
                            SPAWN_MAX_BYTES);
    }
    h.len = (uint32_t)w.len;
    struct spawn_answer ans = {.pid = -EPIPE};
    pthread_mutex_lock(&s->lock);
    /* A spawner found dead when the request is sent (killed, or ended
     * after a request it could not read) is started again.  Not once the
     * request is out: it may have cloned the child before it died, and a
     * second child must not share this one's pipes. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->pid < 0 && spawner_start(s, a->rt, err) < 0) {
            pthread_mutex_unlock(&s->lock);
            free(w.buf);
            return -1;
        }
        if (send_request(s->sock, &h, &w, fds, n) < 0) {
            spawner_stop(s);
            continue;
        }
        if (!read_full(s->sock, &ans, sizeof(ans))) {
            ans.pid = -EPIPE;
            spawner_stop(s);
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    free(w.buf);
    if (ans.pid < 0) {
        errno = -ans.pid;
        return ans.pid == -EPIPE ? duet_err_set(err, EPIPE, "the container spawner went away")
                                 : duet_err_sys(err, "clone");
    }
    return (pid_t)ans.pid;
}
