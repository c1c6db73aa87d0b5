#include "opqueue.h"

#include <errno.h>
#include <stdlib.h>

static void fail(struct opq *q, struct opq_item *it, const struct duet_err *err)
{
    if (q->failed) {
        q->failed(it, err);
        return;
    }
    if (it->done)
        it->done(it->opaque, err);
    free(it);
}

static void on_work(uv_work_t *req)
{
    struct opq_item *it = req->data;
    it->q->work(it);
}

static void on_after(uv_work_t *req, int status)
{
    struct opq_item *it = req->data;
    it->q->busy = false;
    it->q->after(it, status);
}

static int submit(struct opq *q, struct opq_item *it, struct duet_err *err)
{
    it->req.data = it;
    int rc = uv_queue_work(q->loop, &it->req, on_work, on_after);
    if (rc < 0)
        return duet_err_set(err, -rc, "cannot queue work: %s", uv_strerror(rc));
    q->busy = true;
    return 0;
}

int opq_push(struct opq *q, struct opq_item *it, struct duet_err *err)
{
    it->q = q;
    it->next = NULL;
    if (!q->busy) {
        if (submit(q, it, err) < 0) {
            free(it);
            return -1;
        }
        return 0;
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->pending = it;
    q->tail = it;
    return 0;
}

void opq_next(struct opq *q)
{
    while (!q->busy && q->pending) {
        struct opq_item *it = q->pending;
        q->pending = it->next;
        if (!q->pending)
            q->tail = NULL;
        it->next = NULL;
        struct duet_err err;
        if (submit(q, it, &err) < 0)
            fail(q, it, &err);
    }
}

void opq_drain(struct opq *q, const struct duet_err *why)
{
    struct opq_item *it = q->pending;
    q->pending = q->tail = NULL;
    while (it) {
        struct opq_item *next = it->next;
        fail(q, it, why);
        it = next;
    }
}
