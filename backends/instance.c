/*
 * instance.c - the shared life of a driver instance (see instance.h).
 */
#include "backends/instance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void core_work(struct opq_item *it)
{
    struct inst_op *op = (struct inst_op *)it;
    op->inst->ops->work(op);
}

static void core_free(struct inst_core *c, const struct duet_err *why)
{
    opq_drain(&c->q, why);
    c->ops->free(c);
}

static void core_after(struct opq_item *it, int status)
{
    struct inst_op *op = (struct inst_op *)it;
    struct inst_core *c = op->inst;
    struct duet_err gone = {0};
    if (c->released) {
        /* The daemon let go of it: no callback of its is wanted now. */
        duet_err_set(&gone, ECANCELED, "%s was released", c->name);
        if (c->ops->let_go)
            c->ops->let_go(c, op);
        free(op);
        core_free(c, &gone);
        return;
    }
    if (status == UV_ECANCELED && op->rc == 0) {
        op->rc = -1;
        duet_err_set(&op->err, ECANCELED, "operation cancelled");
    }
    bool tell = c->ops->finish(op);
    if (tell && op->item.done)
        op->item.done(op->item.opaque, op->rc == 0 ? NULL : &op->err);
    if (op->destroys) {
        /* Nothing can run on a destroyed instance: what is queued fails. */
        duet_err_set(&gone, ENOENT, "workload %s was destroyed", c->name);
        free(op);
        core_free(c, &gone);
        return;
    }
    free(op);
    opq_next(&c->q);
}

static void core_never_ran(struct opq_item *it, const struct duet_err *err)
{
    struct inst_op *op = (struct inst_op *)it;
    if (op->inst->ops->never_ran)
        op->inst->ops->never_ran(op, err);
    else if (op->item.done)
        op->item.done(op->item.opaque, err);
    free(op);
}

void inst_core_init(struct inst_core *c, struct driver *drv, struct uv_loop_s *loop,
                    const struct workload_spec *spec, const struct inst_core_ops *ops)
{
    c->drv = drv;
    c->spec = spec;
    snprintf(c->name, sizeof(c->name), "%s", spec->name);
    c->ops = ops;
    c->q = (struct opq){.loop = loop, .work = core_work, .after = core_after, .failed = core_never_ran};
    c->status.exit_code = -1;   /* no exit status yet */
    driver_net_files_init(&c->net_files);
}

void inst_core_fini(struct inst_core *c)
{
    driver_net_files_close(&c->net_files);
}

void *inst_op_new(size_t size, int kind, driver_done_cb done, void *opaque)
{
    struct inst_op *op = calloc(1, size);
    if (!op)
        abort();
    op->kind = kind;
    op->item.done = done;
    op->item.opaque = opaque;
    return op;
}

int inst_op_queue(struct inst_core *c, struct inst_op *op, struct duet_err *err)
{
    op->inst = c;
    return opq_push(&c->q, &op->item, err);
}

void inst_core_release(struct inst_core *c)
{
    c->on_exit = NULL;
    if (c->q.busy) {
        /* The operation in flight still uses what the instance holds. */
        c->released = true;
        return;
    }
    struct duet_err gone = {0};
    duet_err_set(&gone, ECANCELED, "%s was released", c->name);
    if (c->ops->let_go)
        c->ops->let_go(c, NULL);
    core_free(c, &gone);
}

void inst_core_report_exit(struct inst_core *c)
{
    if (c->exit_reported)
        return;
    c->exit_reported = true;
    c->status.state = DRIVER_STATE_EXITED;
    if (c->on_exit)
        c->on_exit(c->exit_opaque, &c->status);
}
