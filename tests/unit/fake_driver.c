/*
 * fake_driver.c - the scripted driver of fake_driver.h.
 *
 * Instances live until the driver is freed (destroy and release only mark
 * them), so an operation that completes after a release finds its
 * instance whole and simply says nothing, as driver.h asks.
 */
#include "fake_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct fake_inst {
    struct fake_inst *next;
    struct fake_driver *f;
    char name[64];
    int id;
    bool running, ended, destroyed, released;
    int exit_code, term_signal;
    driver_exit_cb on_exit;
    void *opaque;
};

/* One operation completing later, on the loop. */
struct fake_defer {
    struct fake_defer *next;
    struct fake_driver *f;
    uv_timer_t timer;
    void (*fn)(struct fake_defer *x);
    struct fake_inst *inst;
    driver_done_cb done;
    void *opaque;
    bool fail;
    void (*exited)(void *opaque, int status);
};

static struct fake_driver *F(struct driver *drv)
{
    return (struct fake_driver *)drv;
}

static void oplog(struct fake_driver *f, const char *op, const char *name)
{
    size_t n = strlen(f->oplog);
    snprintf(f->oplog + n, sizeof(f->oplog) - n, "%s %s\n", op, name);
}

static void defer_closed(uv_handle_t *h)
{
    struct fake_defer *x = h->data;
    struct fake_driver *f = x->f;
    for (struct fake_defer **p = &f->defers; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    free(x);
}

static void defer_fire(uv_timer_t *t)
{
    struct fake_defer *x = t->data;
    x->fn(x);
    uv_close((uv_handle_t *)&x->timer, defer_closed);
}

static struct fake_defer *defer(struct fake_driver *f, unsigned ms, void (*fn)(struct fake_defer *),
                                struct fake_inst *inst, driver_done_cb done, void *opaque)
{
    struct fake_defer *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->f = f;
    x->fn = fn;
    x->inst = inst;
    x->done = done;
    x->opaque = opaque;
    x->next = f->defers;
    f->defers = x;
    uv_timer_init(f->loop, &x->timer);
    x->timer.data = x;
    uv_timer_start(&x->timer, defer_fire, ms, 0);
    return x;
}

/* The workload ends: once, and never for an instance let go of. */
static void end(struct fake_inst *i, int code, int sig)
{
    if (!i->running)
        return;
    i->running = false;
    i->ended = true;
    i->exit_code = code;
    i->term_signal = sig;
    if (i->released || !i->on_exit)
        return;
    struct driver_status st = {.state = DRIVER_STATE_EXITED, .exit_code = code, .term_signal = sig,
                               .oom = i->f->oom && sig == 9};
    i->on_exit(i->opaque, &st);
}

static void done_ok(struct fake_defer *x)
{
    if (x->inst && x->inst->released)
        return;
    if (x->fail) {
        struct duet_err err = {0};
        duet_err_set(&err, EIO, "the fake driver was told to fail this");
        x->done(x->opaque, &err);
        return;
    }
    x->done(x->opaque, NULL);
}

/* ---- the table --------------------------------------------------------------- */

static int f_open(struct driver *drv, struct uv_loop_s *loop, const char *dir, struct duet_err *err)
{
    (void)drv, (void)loop, (void)dir, (void)err;
    return 0;
}

static void f_close(struct driver *drv)
{
    (void)drv;
}

static int f_probe(struct driver *drv, struct driver_caps *caps, struct duet_err *err)
{
    (void)drv, (void)err;
    memset(caps, 0, sizeof(*caps));
    caps->available = true;
    return 0;
}

/* A new instance of workload `name`, kept until the driver is freed. */
static struct fake_inst *inst_new(struct fake_driver *f, const char *name)
{
    struct fake_inst *i = calloc(1, sizeof(*i));
    if (!i)
        abort();
    i->f = f;
    i->id = ++f->next_id;
    snprintf(i->name, sizeof(i->name), "%s", name);
    i->next = f->insts;
    f->insts = i;
    return i;
}

/* Arms x to fail when *budget says so (fail_creates, fail_starts). */
static void maybe_fail(struct fake_defer *x, int *budget)
{
    if (*budget > 0) {
        (*budget)--;
        x->fail = true;
    }
}

static int f_create(struct driver *drv, const struct workload_spec *spec, const struct net_attachment *net,
                    struct driver_instance **out, driver_done_cb done, void *opaque, struct duet_err *err)
{
    (void)net, (void)err;
    struct fake_driver *f = F(drv);
    struct fake_inst *i = inst_new(f, spec->name);
    f->creates++;
    oplog(f, "create", i->name);
    *out = (struct driver_instance *)i;
    maybe_fail(defer(f, f->op_ms, done_ok, i, done, opaque), &f->fail_creates);
    return 0;
}

static void started(struct fake_defer *x)
{
    struct fake_inst *i = x->inst;
    if (i->released)
        return;
    if (x->fail) {
        done_ok(x);
        return;
    }
    i->running = true;
    if (i->f->exit_before_started)
        end(i, 0, 0);
    x->done(x->opaque, NULL);
}

static int f_start(struct driver *drv, struct driver_instance *inst, driver_done_cb done, driver_exit_cb on_exit,
                   void *opaque, struct duet_err *err)
{
    (void)err;
    struct fake_driver *f = F(drv);
    struct fake_inst *i = (struct fake_inst *)inst;
    i->on_exit = on_exit;
    i->opaque = opaque;
    f->starts++;
    oplog(f, "start", i->name);
    maybe_fail(defer(f, f->op_ms, started, i, done, opaque), &f->fail_starts);
    return 0;
}

static void stopped(struct fake_defer *x)
{
    end(x->inst, 0, 15);
    done_ok(x);
}

static int f_stop(struct driver *drv, struct driver_instance *inst, uint64_t grace_ms, driver_done_cb done,
                  void *opaque, struct duet_err *err)
{
    (void)grace_ms, (void)err;
    struct fake_driver *f = F(drv);
    struct fake_inst *i = (struct fake_inst *)inst;
    f->stops++;
    oplog(f, "stop", i->name);
    defer(f, f->stop_ms, stopped, i, done, opaque);
    return 0;
}

static void destroyed(struct fake_defer *x)
{
    x->inst->running = false;
    x->inst->destroyed = true;
    done_ok(x);
}

static int f_destroy(struct driver *drv, struct driver_instance *inst, driver_done_cb done, void *opaque,
                     struct duet_err *err)
{
    (void)err;
    struct fake_driver *f = F(drv);
    struct fake_inst *i = (struct fake_inst *)inst;
    f->destroys++;
    oplog(f, "destroy", i->name);
    defer(f, f->op_ms, destroyed, i, done, opaque);
    return 0;
}

static void f_release(struct driver *drv, struct driver_instance *inst)
{
    F(drv)->releases++;
    ((struct fake_inst *)inst)->released = true;
}

static int f_inspect(struct driver *drv, struct driver_instance *inst, struct driver_status *st,
                     struct duet_err *err)
{
    (void)drv, (void)err;
    struct fake_inst *i = (struct fake_inst *)inst;
    memset(st, 0, sizeof(*st));
    st->state = i->destroyed ? DRIVER_STATE_GONE
                : i->running ? DRIVER_STATE_RUNNING
                : i->ended   ? DRIVER_STATE_EXITED
                             : DRIVER_STATE_CREATED;
    st->exit_code = i->exit_code;
    st->term_signal = i->term_signal;
    return 0;
}

static int f_stats(struct driver *drv, struct driver_instance *inst, struct driver_stats *st, struct duet_err *err)
{
    (void)drv, (void)inst, (void)err;
    memset(st, 0, sizeof(*st));
    return 0;
}

static int f_handle(struct driver *drv, struct driver_instance *inst, char out[DRIVER_HANDLE_MAX],
                    struct duet_err *err)
{
    (void)drv, (void)err;
    snprintf(out, DRIVER_HANDLE_MAX, "fake-%d", ((struct fake_inst *)inst)->id);
    return 0;
}

static void recovered_exit(struct fake_defer *x)
{
    x->inst->running = true;
    end(x->inst, x->f->recover_exit, 0);
}

static int f_recover(struct driver *drv, const struct workload_spec *spec, const char *handle,
                     const struct net_attachment *net, struct driver_instance **out, driver_exit_cb on_exit,
                     void *opaque, struct duet_err *err)
{
    (void)net;
    struct fake_driver *f = F(drv);
    f->recovers++;
    oplog(f, "recover", spec->name);
    if (f->recover_as == FAKE_RECOVER_GONE)
        return duet_err_set(err, ENOENT, "%s: no instance %s on the host", spec->name, handle ? handle : "by name");
    struct fake_inst *i = inst_new(f, spec->name);
    i->on_exit = on_exit;
    i->opaque = opaque;
    *out = (struct driver_instance *)i;
    if (f->recover_as == FAKE_RECOVER_RUNNING)
        i->running = true;
    else
        defer(f, 0, recovered_exit, i, NULL, NULL);
    return 0;
}

static int f_logs(struct driver *drv, struct driver_instance *inst, int *fd, int *prev, struct duet_err *err)
{
    (void)drv, (void)inst;
    *fd = memfd_create("fake-log", MFD_CLOEXEC);
    if (prev)
        *prev = -1;
    return *fd < 0 ? duet_err_sys(err, "memfd") : 0;
}

static void exec_done(struct fake_defer *x)
{
    if (!x->inst->released)
        x->exited(x->opaque, x->f->exec_status);
}

static int f_exec(struct driver *drv, struct driver_instance *inst, const char *const *argv, int out_fd, int err_fd,
                  uint64_t timeout_ms, void (*exited)(void *opaque, int status), void *opaque, struct duet_err *err)
{
    (void)argv, (void)out_fd, (void)err_fd, (void)timeout_ms, (void)err;
    struct fake_driver *f = F(drv);
    struct fake_inst *i = (struct fake_inst *)inst;
    f->execs++;
    struct fake_defer *x = defer(f, 1, exec_done, i, NULL, opaque);
    x->exited = exited;
    return 0;
}

static void purge_done(struct fake_defer *x)
{
    x->done(x->opaque, NULL);
}

/* "purge-disk web", "purge-all web" (disk and logs), "purge-logs web". */
static int f_purge(struct driver *drv, const char *name, unsigned what, driver_done_cb done, void *opaque,
                   struct duet_err *err)
{
    (void)err;
    struct fake_driver *f = F(drv);
    oplog(f, what == DRIVER_KEPT_DISK ? "purge-disk" : what == DRIVER_KEPT_LOGS ? "purge-logs" : "purge-all", name);
    defer(f, f->op_ms, purge_done, NULL, done, opaque);
    return 0;
}

static int f_netns(struct driver *drv, struct driver_instance *inst, int *fd, struct duet_err *err)
{
    (void)drv, (void)inst, (void)fd;
    return duet_err_set(err, ENOTSUP, "the fake driver has no network namespace");
}

struct fake_driver *fake_driver_new(uv_loop_t *loop, enum backend_kind kind, unsigned flags)
{
    struct fake_driver *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    f->loop = loop;
    f->op_ms = 1;
    f->stop_ms = 5;
    f->drv = (struct driver){
        .name = "fake", .kind = kind, .flags = flags, .open = f_open, .close = f_close, .probe = f_probe,
        .create = f_create, .start = f_start, .stop = f_stop, .destroy = f_destroy, .release = f_release,
        .inspect = f_inspect, .stats = f_stats, .handle = f_handle, .recover = f_recover, .logs = f_logs,
        .exec = f_exec, .netns = f_netns, .purge = f_purge, .priv = f,
    };
    return f;
}

void fake_driver_free(struct fake_driver *f)
{
    while (f->insts) {
        struct fake_inst *i = f->insts;
        f->insts = i->next;
        free(i);
    }
    while (f->defers) {   /* closed with the loop's handles, never fired */
        struct fake_defer *x = f->defers;
        f->defers = x->next;
        free(x);
    }
    free(f);
}

bool fake_exit(struct fake_driver *f, const char *name, int code, int sig)
{
    for (struct fake_inst *i = f->insts; i; i = i->next)
        if (strcmp(i->name, name) == 0 && i->running && !i->released) {
            end(i, code, sig);
            return true;
        }
    return false;
}

unsigned fake_count(const struct fake_driver *f, const char *line)
{
    unsigned n = 0;
    size_t len = strlen(line);
    for (const char *p = f->oplog; (p = strstr(p, line)); p += len)
        if ((p == f->oplog || p[-1] == '\n') && p[len] == '\n')
            n++;
    return n;
}

long fake_pos(const struct fake_driver *f, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = f->oplog; (p = strstr(p, line)); p += len)
        if ((p == f->oplog || p[-1] == '\n') && p[len] == '\n')
            return p - f->oplog;
    return -1;
}
