/*
 * instance.h - the part of a workload's instance that both drivers share.
 *
 * An instance is made by create or recover and ended by destroy or
 * release (driver.h).  Its operations run one at a time, in the order
 * asked, their blocking part on the thread pool (opqueue.h).  What happens
 * when one completes is the same for every backend, and is decided here
 * only, as libvirt's domain job code does for its hypervisor drivers:
 *
 *   - the daemon let go of the instance meanwhile (release): no callback
 *     of it is called; the backend lets go of what the operation left
 *     (ops->let_go), everything queued behind it fails, the instance is
 *     freed;
 *   - cancelled by libuv before it ran: it failed, with ECANCELED;
 *   - otherwise the backend records what it learnt (ops->finish), the
 *     caller's callback is told, and a destroy, whatever its result, ends
 *     the instance: queued operations fail and it is freed (the daemon
 *     forgets an instance it asked to destroy, so one kept would leak).
 *
 * A driver embeds `struct inst_core` first in its `struct driver_instance`
 * and `struct inst_op` first in its operation, and never frees either
 * itself.
 */
#ifndef DUET_INSTANCE_H
#define DUET_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/driver.h"
#include "backends/opqueue.h"

struct inst_core;

struct inst_op {
    struct opq_item item;          /* first: an operation is its queue item */
    struct inst_core *inst;
    int kind;                      /* the driver's own */
    bool destroys;                 /* the instance ends when it completes */
    int rc;                        /* set by work: 0, or -1 with err */
    struct duet_err err;
};

struct inst_core_ops {
    /* On a pool thread: the blocking part, setting op->rc and op->err. */
    void (*work)(struct inst_op *op);
    /* On the loop: what the completed operation means for the instance.
     * false when the operation told its caller itself (its done is then
     * not called). */
    bool (*finish)(struct inst_op *op);
    /* On the loop, after a release: let go of what the backend holds for
     * the instance without touching the workload; running is the
     * operation that was in flight, or NULL.  NULL: nothing to let go of. */
    void (*let_go)(struct inst_core *c, struct inst_op *running);
    /* An operation that never ran (queued behind one that failed to be
     * submitted, or drained): tell its caller; NULL calls its done. */
    void (*never_ran)(struct inst_op *op, const struct duet_err *err);
    /* The driver's own teardown of the instance; frees its memory. */
    void (*free)(struct inst_core *c);
};

struct inst_core {
    struct driver *drv;
    const struct workload_spec *spec;   /* borrowed: the caller keeps it alive until a destroy's
                                           callback or a release, after which the core reads
                                           nothing of it */
    char name[64];                      /* the workload's, for messages after that */
    const struct inst_core_ops *ops;
    struct opq q;                       /* its operations, in order */
    bool released;                      /* let go while an operation ran: freed when it ends */
    driver_exit_cb on_exit;
    void *exit_opaque;
    bool exit_reported;
    struct driver_status status;
    struct net_attachment net;
    bool has_net;
    struct driver_net_files net_files;   /* its link's counters, kept open (stats) */
};

void inst_core_init(struct inst_core *c, struct driver *drv, struct uv_loop_s *loop,
                    const struct workload_spec *spec, const struct inst_core_ops *ops);

/* A zeroed operation of `size` bytes (the driver's struct, inst_op
 * first). */
void *inst_op_new(size_t size, int kind, driver_done_cb done, void *opaque);

/* Runs op after what c has queued.  -1 when it could not be submitted:
 * op is freed, err says why. */
int inst_op_queue(struct inst_core *c, struct inst_op *op, struct duet_err *err);

/* What the core keeps open goes (the driver's instance_free calls it). */
void inst_core_fini(struct inst_core *c);

/* driver->release: at once when idle, else when the operation in flight
 * completes.  No callback of the instance is called after it. */
void inst_core_release(struct inst_core *c);

/* The workload ended (c->status filled, state EXITED): on_exit, once. */
void inst_core_report_exit(struct inst_core *c);

#endif
