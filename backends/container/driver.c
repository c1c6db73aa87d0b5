/*
 * driver.c - the container runtime behind backends/driver.h, on libuv.
 *
 * Calls that block (prepare, start, stop's grace period, destroy, exec) run
 * on libuv's thread pool and finish through their callback on the loop
 * thread.  An exit is noticed through the container's pidfd, watched by a
 * uv_poll_t: readable means duet-init is gone, with no polling of our own.
 * Operations on one instance run one at a time, in the order asked: a
 * destroy asked while a stop is still waiting runs after it.
 *
 * An exec holds the queue only while its helper starts; the command then
 * runs on its own (a pidfd watched on the loop, a timer for its timeout),
 * so a command that never ends cannot hold back a stop or a delete, nor a
 * pool thread.  A destroy ends it with the container.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
#include <uv.h>

#include "common/clock.h"
#include "container.h"
#include "backends/opqueue.h"
#include "backends/instance.h"
#include "backends/kept.h"
#include "exec_tty.h"
#include "runtime.h"

struct exec_watch;

struct ct_priv {
    struct container_runtime rt;
    struct exec_watch *execs;           /* commands running, killed at close */
    uv_loop_t *loop;
    bool open;
    char init_path[256];
    char cgroup_root[64];
    uint32_t userns_base, userns_size;   /* 0: no user namespaces */
    char *protect[3];                    /* given to the runtime at open */
    uint64_t log_max;                    /* 0: the runtime's default */
};

struct driver_instance {
    struct inst_core core;              /* first: the life both drivers share (backends/instance.h) */
    struct container *c;
    uv_poll_t watch;
    bool watching;                      /* watch is open */
    bool watch_closing, free_pending;
    /* attach: the ends the next start hands to duet-init, ours until then */
    struct container_attach attach;
    bool attached;
};

enum op_kind { OP_CREATE, OP_START, OP_STOP, OP_DESTROY, OP_EXEC, OP_RECOVERED, OP_PAUSE };

struct op {
    struct inst_op base;                /* first: kind, rc, err, the caller's callback */
    uint64_t grace_ms;
    bool paused;                        /* pause: freeze, else thaw */
    /* exec */
    const char *const *argv;
    int in_fd, out_fd, err_fd, ctl_fd;
    bool tty;
    unsigned short rows, cols;
    int master;                         /* with tty: the terminal's, from the start */
    uint64_t timeout_ms;
    struct container_exec_proc proc;
    void (*exited)(void *opaque, int status);
};

/* A command started by exec, until its helper is reaped and, with a
 * terminal, its relay has copied the last of the output. */
struct exec_watch {
    struct exec_watch *next, **prev;
    struct container_exec_proc proc;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    struct exec_tty *relay;             /* NULL once it has ended */
    int tty;                            /* a copy of the terminal's master, for resizes; -1 */
    uv_poll_t ctl;                      /* the caller's records; its end: the caller has gone */
    bool ctl_on;
    char ctl_buf[sizeof(struct driver_winsize)];
    size_t ctl_len;
    bool helper_done;
    int status;
    void (*exited)(void *opaque, int status);
    void *opaque;
};

static struct ct_priv *priv(struct driver *drv)
{
    return drv->priv;
}

/* Closes the attached run's ends this instance still holds. */
static void attach_drop(struct driver_instance *inst)
{
    if (!inst->attached)
        return;
    inst->attached = false;
    for (int i = 0; i < 4; i++)
        close(inst->attach.fds[i]);
}

static struct driver_instance *inst_of(struct op *op)
{
    return (struct driver_instance *)op->base.inst;
}

static void on_work(struct inst_op *b)
{
    struct op *op = (struct op *)b;
    struct driver_instance *inst = inst_of(op);
    struct container_config cfg = {.spec = inst->core.spec, .net = inst->core.has_net ? &inst->core.net : NULL,
                                   .attach = inst->attached ? &inst->attach : NULL};
    switch (op->base.kind) {
    case OP_CREATE:
        op->base.rc = container_prepare(&priv(inst->core.drv)->rt, &cfg, &inst->c, &op->base.err);
        break;
    case OP_START:
        op->base.rc = container_start(inst->c, &cfg, &op->base.err);
        attach_drop(inst);   /* duet-init has them now, or nobody will */
        break;
    case OP_STOP:
        op->base.rc = container_stop(inst->c, (unsigned)op->grace_ms, &op->base.err);
        break;
    case OP_DESTROY:
        op->base.rc = inst->c ? container_destroy(inst->c, &op->base.err) : 0;
        inst->c = NULL;
        break;
    case OP_EXEC:
        op->base.rc = container_exec_start_io(inst->c, op->argv, op->in_fd, op->out_fd, op->err_fd, op->ctl_fd, op->tty,
                                              op->rows, op->cols, &op->master, (int)op->timeout_ms, &op->proc,
                                              &op->base.err);
        break;
    case OP_RECOVERED:
        op->base.rc = 0;
        break;
    case OP_PAUSE:
        op->base.rc = container_freeze(inst->c, op->paused, &op->base.err);
        break;
    }
}

static void unwatch(struct driver_instance *inst);

static void report_exit(struct driver_instance *inst)
{
    struct container_exit ex;
    struct duet_err err;
    if (container_wait(inst->c, 0, &ex, &err) != 1)
        return;
    inst->core.status.exit_code = ex.code;
    inst->core.status.term_signal = ex.signal;
    inst->core.status.exited_at_ms = clock_wall_ms();
    /* A SIGKILL with the cgroup's OOM kill count up was the kernel's, at
     * the memory limit: the cgroup is there until destroy. */
    inst->core.status.oom = ex.signal == SIGKILL && container_oom_killed(inst->c);
    inst_core_report_exit(&inst->core);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct driver_instance *inst = h->data;
    /* Closed before report_exit's wait closes the pidfd (see unwatch). */
    unwatch(inst);
    report_exit(inst);
}

static int watch_exit(struct driver_instance *inst, struct duet_err *err)
{
    int rc = uv_poll_init(priv(inst->core.drv)->loop, &inst->watch, inst->c->pidfd);
    if (rc == 0)
        rc = uv_poll_start(&inst->watch, UV_READABLE, on_readable);
    if (rc < 0)
        return duet_err_set(err, -rc, "container %s: cannot watch for its exit: %s", inst->c->name, uv_strerror(rc));
    inst->watch.data = inst;
    inst->watching = true;
    return 0;
}

static void on_watch_closed(uv_handle_t *h)
{
    struct driver_instance *inst = h->data;
    inst->watch_closing = false;
    if (inst->free_pending)
        free(inst);
}

/* Closes the exit watch; must come before the pidfd it polls is closed.
 * libuv takes the fd out of epoll when the handle closes, and by then a
 * closed pidfd's number may belong to somebody else (an API client's
 * socket, which would stop hearing from its peer). */
static void unwatch(struct driver_instance *inst)
{
    if (!inst->watching)
        return;
    inst->watching = false;
    inst->watch_closing = true;
    inst->watch.data = inst;
    uv_close((uv_handle_t *)&inst->watch, on_watch_closed);
}

/* Frees inst once its poll handle (if any) is closed. */
static void instance_free(struct driver_instance *inst)
{
    inst_core_fini(&inst->core);
    attach_drop(inst);
    unwatch(inst);
    if (inst->watch_closing)
        inst->free_pending = true;
    else
        free(inst);
}

static void exec_watch_closed(uv_handle_t *h)
{
    struct exec_watch *x = h->data;
    if (--x->open_handles == 0)
        free(x);
}

/* The command is over for its caller: reported once the helper is reaped
 * and the terminal's relay (if any) has ended. */
static void exec_watch_report(struct exec_watch *x)
{
    if (!x->helper_done || x->relay)
        return;
    if (x->exited)
        x->exited(x->opaque, x->status);
    x->exited = NULL;
    if (--x->open_handles == 0)
        free(x);
}

static void on_relay_done(void *opaque)
{
    struct exec_watch *x = opaque;
    x->relay = NULL;
    if (x->tty >= 0)
        close(x->tty);   /* the last copy: what is left on the terminal gets SIGHUP */
    x->tty = -1;
    exec_watch_report(x);
}

static void ctl_stop(struct exec_watch *x)
{
    if (!x->ctl_on)
        return;
    x->ctl_on = false;
    uv_close((uv_handle_t *)&x->ctl, exec_watch_closed);
}

/* Resizes of the terminal; the end of the caller's end (it has gone, or
 * has nothing more to say) ends the command. */
static void on_ctl(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct exec_watch *x = h->data;
    uv_os_fd_t fd;
    if (status < 0 || uv_fileno((uv_handle_t *)h, &fd) < 0) {
        ctl_stop(x);
        return;
    }
    for (;;) {
        ssize_t n = read(fd, x->ctl_buf + x->ctl_len, sizeof(x->ctl_buf) - x->ctl_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            /* The caller has gone: the helper, which watches this pipe
             * too, ends the command (killing the helper would orphan it). */
            ctl_stop(x);
            return;
        }
        x->ctl_len += (size_t)n;
        if (x->ctl_len < sizeof(x->ctl_buf))
            continue;
        x->ctl_len = 0;
        struct driver_winsize w;
        memcpy(&w, x->ctl_buf, sizeof(w));
        struct winsize ws = {.ws_row = w.rows, .ws_col = w.cols};
        if (x->tty >= 0 && w.rows && w.cols)
            ioctl(x->tty, TIOCSWINSZ, &ws);
    }
}

/* Reaps the helper (it has ended: the pidfd is readable) and reports. */
static void exec_watch_end(struct exec_watch *x, bool report)
{
    /* The poll leaves epoll before the reap closes the pidfd it watches. */
    uv_close((uv_handle_t *)&x->poll, exec_watch_closed);
    uv_close((uv_handle_t *)&x->timer, exec_watch_closed);
    ctl_stop(x);
    int status = -1;
    bool timed_out = false;
    if (container_exec_reap(&x->proc, &status, &timed_out) < 0)
        status = -1;
    *x->prev = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->helper_done = true;
    x->status = status;
    if (!report) {
        x->exited = NULL;
        if (x->relay)
            exec_tty_abort(x->relay);
        x->relay = NULL;
        if (x->tty >= 0)
            close(x->tty);
        x->tty = -1;
    } else if (x->relay) {
        exec_tty_finish(x->relay);   /* the rest follows on_relay_done */
    }
    exec_watch_report(x);
}

static void on_exec_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    exec_watch_end(h->data, true);
}

/* The helper keeps the command's timeout; this is the backstop should
 * the helper itself not end. */
static void on_exec_timeout(uv_timer_t *t)
{
    struct exec_watch *x = t->data;
    container_exec_kill(&x->proc);   /* the poll reports its end */
}

/* The helper started: watch it on the loop from now on. */
static void exec_watch_start(struct driver_instance *inst, struct op *op)
{
    struct ct_priv *p = priv(inst->core.drv);
    struct exec_watch *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->proc = op->proc;
    x->exited = op->exited;
    x->opaque = op->base.item.opaque;
    uv_timer_init(p->loop, &x->timer);
    x->timer.data = x;
    x->poll.data = x;
    /* The timer, and the report (exec_watch_report) */
    x->open_handles = 2;
    x->tty = -1;
    if (op->tty) {
        struct duet_err e = {0};
        x->tty = fcntl(op->master, F_DUPFD_CLOEXEC, 3);
        x->relay = exec_tty_start(p->loop, op->master, op->in_fd, op->out_fd, on_relay_done, x, &e);
        op->master = -1;
        if (!x->relay)
            container_exec_kill(&x->proc);   /* nothing would show its terminal: end it, the poll reports */
    }
    if (op->ctl_fd >= 0) {
        fcntl(op->ctl_fd, F_SETFL, fcntl(op->ctl_fd, F_GETFL) | O_NONBLOCK);
        if (uv_poll_init(p->loop, &x->ctl, op->ctl_fd) == 0) {
            x->ctl.data = x;
            x->ctl_on = true;
            x->open_handles++;
            uv_poll_start(&x->ctl, UV_READABLE, on_ctl);
        }
    }
    x->next = p->execs;
    x->prev = &p->execs;
    if (p->execs)
        p->execs->prev = &x->next;
    p->execs = x;
    int rc = uv_poll_init(p->loop, &x->poll, x->proc.pidfd);
    bool poll_on = rc == 0;
    if (rc == 0)
        x->open_handles++;
    if (rc == 0)
        rc = uv_poll_start(&x->poll, UV_READABLE, on_exec_readable);
    if (rc < 0) {
        /* Nothing watches it: end it now rather than leave it running. */
        if (poll_on)
            uv_close((uv_handle_t *)&x->poll, exec_watch_closed);
        uv_close((uv_handle_t *)&x->timer, exec_watch_closed);
        ctl_stop(x);
        if (x->tty >= 0)
            close(x->tty);
        x->tty = -1;
        container_exec_kill(&x->proc);
        int st;
        bool to;
        container_exec_reap(&x->proc, &st, &to);
        *x->prev = x->next;
        if (x->next)
            x->next->prev = x->prev;
        if (x->relay)
            exec_tty_abort(x->relay);
        x->relay = NULL;
        x->helper_done = true;
        x->status = -1;
        exec_watch_report(x);
        return;
    }
    if (op->timeout_ms)
        uv_timer_start(&x->timer, on_exec_timeout, op->timeout_ms + 5000, 0);
}

/* What a completed operation means for the instance (instance.h decides
 * the rest: released, cancelled, destroyed). */
static bool on_finish(struct inst_op *b)
{
    struct op *op = (struct op *)b;
    struct driver_instance *inst = inst_of(op);
    switch (op->base.kind) {
    case OP_START:
        if (op->base.rc == 0) {
            inst->core.status.state = DRIVER_STATE_RUNNING;
            inst->core.status.started_at_ms = clock_wall_ms();
            if (watch_exit(inst, &op->base.err) < 0)
                op->base.rc = -1;
        }
        return true;
    case OP_CREATE:
        if (op->base.rc == 0)
            inst->core.status.state = DRIVER_STATE_CREATED;
        return true;
    case OP_DESTROY:
        inst->core.status.state = DRIVER_STATE_GONE;
        return true;
    case OP_EXEC:
        if (op->base.rc == 0)
            exec_watch_start(inst, op);
        else if (op->exited)
            op->exited(op->base.item.opaque, -1);
        return false;
    case OP_RECOVERED:
        report_exit(inst);
        return false;
    default:
        return true;
    }
}

/* Released: the container goes on without us.  An exec that had started
 * is ended, since nothing would reap its helper. */
static void on_let_go(struct inst_core *c, struct inst_op *running)
{
    struct driver_instance *inst = (struct driver_instance *)c;
    struct op *op = (struct op *)running;
    if (op && op->base.kind == OP_EXEC && op->base.rc == 0) {
        int st;
        bool to;
        container_exec_kill(&op->proc);
        container_exec_reap(&op->proc, &st, &to);
        if (op->master >= 0)
            close(op->master);
        op->master = -1;
    }
    unwatch(inst);   /* before the release closes the pidfd */
    if (inst->c)
        container_release(inst->c);
    inst->c = NULL;
}

/* A queued op that never ran fails through its own callback. */
static void on_never_ran(struct inst_op *b, const struct duet_err *err)
{
    struct op *op = (struct op *)b;
    if (op->base.kind == OP_EXEC && op->exited)
        op->exited(op->base.item.opaque, -1);
    else if (op->base.item.done)
        op->base.item.done(op->base.item.opaque, err);
}

static void on_free(struct inst_core *c)
{
    instance_free((struct driver_instance *)c);
}

static const struct inst_core_ops ct_inst_ops = {
    .work = on_work, .finish = on_finish, .let_go = on_let_go, .never_ran = on_never_ran, .free = on_free,
};

/* Runs op after what inst has queued; on failure op is freed. */
static int queue(struct driver_instance *inst, struct op *op, struct duet_err *err)
{
    return inst_op_queue(&inst->core, &op->base, err);
}

static struct op *op_new(enum op_kind kind, driver_done_cb done, void *opaque)
{
    struct op *op = inst_op_new(sizeof(struct op), kind, done, opaque);
    op->base.destroys = kind == OP_DESTROY;
    return op;
}

/* ---- the table -------------------------------------------------------- */

static struct driver_instance *instance_new(struct driver *drv, const struct workload_spec *spec)
{
    struct driver_instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        abort();
    inst_core_init(&inst->core, drv, priv(drv)->loop, spec, &ct_inst_ops);
    return inst;
}

static int ct_open(struct driver *drv, struct uv_loop_s *loop, const char *state_dir, struct duet_err *err)
{
    struct ct_priv *p = priv(drv);
    if (container_runtime_init(&p->rt, state_dir, p->init_path, p->cgroup_root[0] ? p->cgroup_root : NULL, err) < 0)
        return -1;
    for (size_t i = 0; i < 3 && p->protect[i]; i++)
        container_runtime_protect(&p->rt, p->protect[i]);
    if (p->log_max)
        p->rt.log_max = p->log_max;
    if (p->userns_base && container_runtime_set_userns(&p->rt, p->userns_base, p->userns_size, err) < 0) {
        container_runtime_fini(&p->rt);
        return -1;
    }
    p->loop = loop;
    p->open = true;
    return 0;
}

static void ct_close(struct driver *drv)
{
    struct ct_priv *p = priv(drv);
    /* Commands still running end with the daemon, unreported. */
    while (p->execs) {
        struct exec_watch *x = p->execs;
        container_exec_kill(&x->proc);
        exec_watch_end(x, false);
    }
    if (p->open)
        container_runtime_fini(&p->rt);
    p->open = false;
}

static int ct_probe(struct driver *drv, struct driver_caps *caps, struct duet_err *err)
{
    const char *root = priv(drv)->cgroup_root;
    return container_backend_probe(root[0] ? root : "/sys/fs/cgroup", caps, err);
}

static int ct_create(struct driver *drv, const struct workload_spec *spec, const struct net_attachment *net,
                     struct driver_instance **out, driver_done_cb done, void *opaque, struct duet_err *err)
{
    struct driver_instance *inst = instance_new(drv, spec);
    if (net) {
        inst->core.net = *net;
        inst->core.has_net = true;
    }
    if (queue(inst, op_new(OP_CREATE, done, opaque), err) < 0) {
        free(inst);
        return -1;
    }
    *out = inst;
    return 0;
}

static int ct_start(struct driver *drv, struct driver_instance *inst, driver_done_cb done, driver_exit_cb on_exit,
                    void *opaque, struct duet_err *err)
{
    (void)drv;
    if (!inst->c)
        return duet_err_set(err, EINVAL, "workload %s was not created", inst->core.spec->name);
    inst->core.on_exit = on_exit;
    inst->core.exit_opaque = opaque;
    return queue(inst, op_new(OP_START, done, opaque), err);
}

static int ct_stop(struct driver *drv, struct driver_instance *inst, uint64_t grace_ms, driver_done_cb done,
                   void *opaque, struct duet_err *err)
{
    (void)drv;
    if (!inst->c)
        return duet_err_set(err, EINVAL, "workload %s was not created", inst->core.spec->name);
    struct op *op = op_new(OP_STOP, done, opaque);
    op->grace_ms = grace_ms;
    inst->core.status.state = inst->core.status.state == DRIVER_STATE_RUNNING ? DRIVER_STATE_STOPPING : inst->core.status.state;
    return queue(inst, op, err);
}

static int ct_destroy(struct driver *drv, struct driver_instance *inst, driver_done_cb done, void *opaque,
                      struct duet_err *err)
{
    (void)drv;
    unwatch(inst);   /* before the destroy closes the pidfd */
    return queue(inst, op_new(OP_DESTROY, done, opaque), err);
}

static void ct_release(struct driver *drv, struct driver_instance *inst)
{
    (void)drv;
    inst_core_release(&inst->core);
}

static int ct_inspect(struct driver *drv, struct driver_instance *inst, struct driver_status *st,
                      struct duet_err *err)
{
    (void)drv;
    (void)err;
    *st = inst->core.status;
    return 0;
}

static int ct_stats(struct driver *drv, struct driver_instance *inst, struct driver_stats *st, struct duet_err *err)
{
    (void)drv;
    if (!inst->c)
        return duet_err_set(err, EINVAL, "workload %s was not created", inst->core.spec->name);
    struct cgroup_stats cs = {0};
    if (container_stats(inst->c, &cs, err) < 0)
        return -1;
    *st = (struct driver_stats){.cpu_ns = cs.cpu_ns, .memory_bytes = cs.memory, .memory_limit = cs.memory_limit,
                                .pids = cs.pids, .has_blk = cs.has_blk, .blk_read_bytes = cs.blk_read,
                                .blk_write_bytes = cs.blk_write, .has_mem_view = cs.has_mem_split,
                                .memory_resident_bytes = cs.memory_anon, .memory_cache_bytes = cs.memory_cache};
    if (inst->core.has_net)
        st->has_net = driver_net_counters(&inst->core.net_files, inst->core.net.host_if, &st->net_rx_bytes,
                                          &st->net_tx_bytes);
    return container_disk_usage(inst->c, &st->disk_bytes, &st->disk_limit, err);
}

static int ct_handle(struct driver *drv, struct driver_instance *inst, char out[DRIVER_HANDLE_MAX],
                     struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->c->pid <= 0)
        return duet_err_set(err, EINVAL, "workload %s has not started", inst->core.spec->name);
    snprintf(out, DRIVER_HANDLE_MAX, "%d %llu", (int)inst->c->pid, (unsigned long long)inst->c->starttime);
    return 0;
}

static int ct_pause(struct driver *drv, struct driver_instance *inst, bool paused, driver_done_cb done, void *opaque,
                    struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->core.status.state != DRIVER_STATE_RUNNING)
        return duet_err_set(err, EINVAL, "workload %s is not running", inst->core.spec->name);
    struct op *op = op_new(OP_PAUSE, done, opaque);
    op->paused = paused;
    return queue(inst, op, err);
}

static int ct_recover(struct driver *drv, const struct workload_spec *spec, const char *handle,
                      const struct net_attachment *net, struct driver_instance **out, driver_exit_cb on_exit,
                      void *opaque, struct duet_err *err)
{
    struct driver_instance *inst = instance_new(drv, spec);
    if (net) {
        inst->core.net = *net;
        inst->core.has_net = true;
    }
    inst->core.on_exit = on_exit;
    inst->core.exit_opaque = opaque;
    if (container_recover(&priv(drv)->rt, spec->name, &inst->c, err) < 0) {
        free(inst);
        return -1;
    }
    /* The handle the store kept must name the process the state dir names. */
    int pid;
    unsigned long long start;
    if (handle && (sscanf(handle, "%d %llu", &pid, &start) != 2 || pid != inst->c->pid ||
                   start != inst->c->starttime)) {
        container_release(inst->c);
        free(inst);
        return duet_err_set(err, ESTALE, "workload %s: the stored handle \"%s\" does not match its state directory",
                            spec->name, handle);
    }
    if (inst->c->pidfd >= 0) {
        inst->core.status.state = DRIVER_STATE_RUNNING;
        /* A daemon that ended while it had the container paused for a
         * backup left it frozen. */
        struct duet_err e;
        container_freeze(inst->c, false, &e);
        if (watch_exit(inst, err) < 0) {
            container_release(inst->c);
            free(inst);
            return -1;
        }
    } else {
        /* It ended while no daemon ran: report that on the loop, after the
         * caller has the instance. */
        struct op *op = op_new(OP_RECOVERED, NULL, NULL);
        if (queue(inst, op, err) < 0) {
            container_release(inst->c);
            free(inst);
            return -1;
        }
    }
    *out = inst;
    return 0;
}

static int ct_logs(struct driver *drv, struct driver_instance *inst, int *fd, int *prev, struct duet_err *err)
{
    (void)drv;
    if (!inst->c)
        return duet_err_set(err, EINVAL, "workload %s was not created", inst->core.spec->name);
    char p[400];
    if (prev) {
        snprintf(p, sizeof(p), "%s/log.1", inst->c->dir);
        *prev = open(p, O_RDONLY | O_CLOEXEC);
    }
    *fd = open(container_log_path(inst->c, p, sizeof(p)), O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && prev && *prev >= 0) {
        close(*prev);
        *prev = -1;
    }
    return *fd < 0 ? duet_err_sys(err, "workload %s: cannot open its log %s", inst->core.spec->name, p) : 0;
}

static int ct_logs_previous(struct driver *drv, const char *name, int *fd, int *prev, struct duet_err *err)
{
    struct ct_priv *p = priv(drv);
    char kept[300], what[96];
    snprintf(what, sizeof(what), "workload %.64s", name);
    return kept_logs_open(container_kept_dir(&p->rt, kept, sizeof(kept)), name, what, fd, prev, err);
}

/* A container keeps no disk: its writable layer lives for its instance. */
static int ct_purge(struct driver *drv, const char *name, unsigned what, driver_done_cb done, void *opaque,
                    struct duet_err *err)
{
    struct ct_priv *p = priv(drv);
    if (!p->open)
        return duet_err_set(err, EINVAL, "the container driver is not open");
    char kept[300];
    return kept_purge(p->loop, container_kept_dir(&p->rt, kept, sizeof(kept)), name, what, NULL, done, opaque, err);
}

static int ct_exec_io(struct driver *drv, struct driver_instance *inst, const char *const *argv,
                      const struct driver_exec_io *io, uint64_t timeout_ms, void (*exited)(void *opaque, int status),
                      void *opaque, struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->core.status.state != DRIVER_STATE_RUNNING)
        return duet_err_set(err, ESRCH, "workload %s is not running", inst->core.spec->name);
    struct op *op = op_new(OP_EXEC, NULL, opaque);
    op->argv = argv;
    op->in_fd = io->in_fd;
    op->out_fd = io->out_fd;
    op->err_fd = io->err_fd;
    op->ctl_fd = io->ctl_fd;
    op->tty = io->tty;
    op->rows = io->rows;
    op->cols = io->cols;
    op->master = -1;
    op->timeout_ms = timeout_ms;
    op->exited = exited;
    return queue(inst, op, err);
}

static int ct_attach(struct driver *drv, struct driver_instance *inst, const struct driver_exec_io *io,
                     struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->core.status.state != DRIVER_STATE_CREATED || inst->attached)
        return duet_err_set(err, EINVAL, "workload %s: only a container not started yet can be attached",
                            inst->core.spec->name);
    int src[4] = {io->in_fd, io->out_fd, io->err_fd, io->ctl_fd};
    for (int i = 0; i < 4; i++) {
        inst->attach.fds[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        if (inst->attach.fds[i] < 0) {
            duet_err_sys(err, "workload %s: cannot keep its caller's ends", inst->core.spec->name);
            while (i-- > 0)
                close(inst->attach.fds[i]);
            return -1;
        }
    }
    inst->attach.tty = io->tty;
    inst->attached = true;
    return 0;
}

static int ct_exec(struct driver *drv, struct driver_instance *inst, const char *const *argv, int out_fd,
                   int err_fd, uint64_t timeout_ms, void (*exited)(void *opaque, int status), void *opaque,
                   struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->core.status.state != DRIVER_STATE_RUNNING)
        return duet_err_set(err, ESRCH, "workload %s is not running", inst->core.spec->name);
    struct driver_exec_io io = {.in_fd = -1, .out_fd = out_fd, .err_fd = err_fd, .ctl_fd = -1};
    return ct_exec_io(drv, inst, argv, &io, timeout_ms, exited, opaque, err);
}

static int ct_netns(struct driver *drv, struct driver_instance *inst, int *fd, struct duet_err *err)
{
    (void)drv;
    if (!inst->c || inst->c->pidfd < 0 || inst->core.status.state != DRIVER_STATE_RUNNING)
        return duet_err_set(err, ESRCH, "workload %s is not running", inst->core.spec->name);
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)inst->c->pid);
    *fd = open(p, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return duet_err_sys(err, "workload %s: cannot open %s", inst->core.spec->name, p);
    /* Still alive after the open: the pid was not reused, the namespace is its own. */
    if (syscall(SYS_pidfd_send_signal, inst->c->pidfd, 0, NULL, 0) < 0) {
        close(*fd);
        *fd = -1;
        return duet_err_set(err, ESRCH, "workload %s has exited", inst->core.spec->name);
    }
    return 0;
}

struct driver *container_driver_new(const char *init_path, const char *cgroup_root)
{
    struct driver *drv = calloc(1, sizeof(*drv));
    struct ct_priv *p = calloc(1, sizeof(*p));
    if (!drv || !p)
        abort();
    snprintf(p->init_path, sizeof(p->init_path), "%s", init_path);
    snprintf(p->cgroup_root, sizeof(p->cgroup_root), "%s", cgroup_root ? cgroup_root : "");
    *drv = (struct driver){
        .name = "container",
        .kind = BACKEND_CONTAINER,
        .flags = DRIVER_CAN_EXEC | DRIVER_STATS_AT_ONCE | DRIVER_HAS_NETNS | DRIVER_RECOVER_WITHOUT_HANDLE,
        .open = ct_open,
        .close = ct_close,
        .probe = ct_probe,
        .create = ct_create,
        .start = ct_start,
        .stop = ct_stop,
        .destroy = ct_destroy,
        .release = ct_release,
        .inspect = ct_inspect,
        .stats = ct_stats,
        .handle = ct_handle,
        .recover = ct_recover,
        .logs = ct_logs,
        .logs_previous = ct_logs_previous,
        .purge = ct_purge,
        .exec = ct_exec,
        .exec_io = ct_exec_io,
        .attach = ct_attach,
        .pause = ct_pause,
        .netns = ct_netns,
        .priv = p,
    };
    return drv;
}

const char *container_driver_cgroup_dir(struct driver *drv, char *buf, size_t len)
{
    struct ct_priv *p = priv(drv);
    if (!p->open) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    const struct cgroup_layout *l = &p->rt.cgroup;
    snprintf(buf, len, "%s%s/%s", l->root, l->version == 1 ? "/pids" : "", p->rt.cgroup_parent);
    return buf;
}

void container_driver_set_userns(struct driver *drv, uint32_t base, uint32_t size)
{
    priv(drv)->userns_base = base;
    priv(drv)->userns_size = size;
}

void container_driver_set_log_max(struct driver *drv, uint64_t bytes)
{
    priv(drv)->log_max = bytes;
}

void container_driver_protect_path(struct driver *drv, const char *path)
{
    struct ct_priv *p = priv(drv);
    for (size_t i = 0; i < 3; i++)
        if (!p->protect[i]) {
            p->protect[i] = strdup(path);
            if (!p->protect[i])
                abort();
            return;
        }
}

void container_driver_free(struct driver *drv)
{
    if (!drv)
        return;
    ct_close(drv);
    for (size_t i = 0; i < 3; i++)
        free(priv(drv)->protect[i]);
    free(drv->priv);
    free(drv);
}
