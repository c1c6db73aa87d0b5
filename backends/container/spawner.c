/*
 * spawner.c - the runtime's side of the container spawner (spawner.h):
 * starting it, and sending it requests.  The spawner's own side is
 * spawner_main.c, which runs inside duet-init's binary.
 *
 * The wire form is described there.  Requests go one at a time under the
 * spawner's mutex: each waits for its answer (the pid) before the next.
 */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/fsutil.h"
#include "setup.h"

struct container_spawner {
    pthread_mutex_t lock;
    pid_t pid;       /* the spawner, or -1 */
    int sock;        /* our end */
};

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

/* The child of fork, until the exec: system calls only (the runtime may
 * have other threads).  The spawner's socket goes to fd 3 and duet-init
 * to fd 4, by way of fds out of their way. */
static _Noreturn void spawner_exec(int sock, int init_fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    int s = fcntl(sock, F_DUPFD, 10), i = fcntl(init_fd, F_DUPFD, 10);
    if (s < 0 || i < 0 || dup2(s, SPAWN_SOCK_FD) < 0 || dup2(i, SPAWN_INIT_FD) < 0)
        _exit(127);
    static char *const argv[] = {"duet-spawner", "--spawner", NULL};
    static char *const envp[] = {NULL};
    syscall(SYS_execveat, SPAWN_INIT_FD, "", argv, envp, AT_EMPTY_PATH);
    _exit(127);
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
        spawner_exec(sv[1], rt->init_fd, parent);
    close(sv[1]);
    s->pid = pid;
    s->sock = sv[0];
    /* What every setup process applies, as the runtime has it now. */
    struct spawn_hello hello = {.magic = SPAWN_HELLO_MAGIC, .last_cap = rt->last_cap, .caps = rt->caps,
                                .filter_len = rt->filter.len};
    if (!duet_send_full(s->sock, &hello, sizeof(hello)) ||
        !duet_send_full(s->sock, rt->filter.insns, rt->filter.len * sizeof(rt->filter.insns[0]))) {
        spawner_stop(s);
        return duet_err_set(err, EPIPE, "the container spawner (duet-init --spawner) ended as it started");
    }
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
    return duet_send_full(sock, w->buf, w->len) ? 0 : -1;
}

pid_t container_spawner_clone(struct container_spawner *s, const struct child_args *a, unsigned long flags,
                              struct duet_err *err)
{
    const struct mounts_plan *pl = &a->plan;
    if (pl->n_volumes > SPAWN_MAX_FDS - SPAWN_FIXED_FDS - SPAWN_ATTACH_FDS)
        return duet_err_set(err, E2BIG, "%zu volumes; a container has at most %d", pl->n_volumes,
                            SPAWN_MAX_FDS - SPAWN_FIXED_FDS - SPAWN_ATTACH_FDS);
    struct spawn_head h = {.magic = SPAWN_MAGIC, .flags = flags, .fail_at = (int32_t)a->fail_at,
                           .userns = a->userns, .has_net = a->net != NULL, .has_quota = a->quota_fd >= 0,
                           .has_attach = a->attach,
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
    for (size_t i = 0; a->attach && i < SPAWN_ATTACH_FDS; i++)
        fds[n++] = a->attach_fds[i];
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
        if (!duet_read_full(s->sock, &ans, sizeof(ans))) {
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
