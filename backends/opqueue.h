/*
 * opqueue.h - one workload's operations, run one at a time on libuv's
 * thread pool, in the order asked.
 *
 * Both drivers need the same discipline: an operation's blocking part runs
 * on the pool, its completion on the loop thread, and a destroy asked
 * while a stop is still waiting runs after the stop.  A driver embeds a
 * `struct opq` in its instance and a `struct opq_item` in each operation.
 */
#ifndef DUET_OPQUEUE_H
#define DUET_OPQUEUE_H

#include <stdbool.h>
#include <uv.h>

#include "common/err.h"

struct opq_item;

/* work: on a pool thread.  after: on the loop thread, status as libuv
 * gives it (UV_ECANCELED when cancelled).  after owns the item. */
typedef void (*opq_work_fn)(struct opq_item *it);
typedef void (*opq_after_fn)(struct opq_item *it, int status);

/* Items are malloc'd with the opq_item first; the queue frees those it
 * cannot run. */
struct opq_item {
    uv_work_t req;
    struct opq_item *next;
    struct opq *q;
    void (*done)(void *opaque, const struct duet_err *err);   /* the caller's, or NULL */
    void *opaque;
};

/* One driver's kind of queue: every item of it runs work, then after. */
struct opq {
    uv_loop_t *loop;
    opq_work_fn work;
    opq_after_fn after;
    bool busy;
    struct opq_item *pending, *tail;
    /* An item queued behind a busy one that then cannot be submitted is
     * handed to this, which reports the error and frees the item; NULL:
     * its done callback gets the error. */
    void (*failed)(struct opq_item *it, const struct duet_err *err);
};

/* Runs it now or after what is queued.  -1 when it could not be
 * submitted at once: it is freed, err says why. */
int opq_push(struct opq *q, struct opq_item *it, struct duet_err *err);

/* Called by every `after` once it is done with its item: marks the queue
 * idle and starts the next item. */
void opq_next(struct opq *q);

/* Fails every queued item with why (through its done callback) and frees
 * it: nothing can run on a workload that is gone. */
void opq_drain(struct opq *q, const struct duet_err *why);

#endif
