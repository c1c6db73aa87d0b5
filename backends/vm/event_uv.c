#include "event_uv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <libvirt/libvirt.h>

#include "grow.h"

struct watch {
    int id;
    bool is_timer, removed;
    union {
        uv_poll_t poll;
        uv_timer_t timer;
    } h;
    int fd;
    int freq;                       /* timer: ms; 0 every iteration; -1 off */
    virEventHandleCallback hcb;
    virEventTimeoutCallback tcb;
    void *opaque;
    virFreeCallback ff;
};

/* See the header: libvirt's hooks carry no context. */
static struct {
    uv_loop_t *loop;
    struct watch **v;               /* by id - 1; NULL once freed */
    size_t n, cap;
} reg;

static struct watch *find(int id, bool timer)
{
    if (id < 1 || (size_t)id > reg.n)
        return NULL;
    struct watch *w = reg.v[id - 1];
    return w && !w->removed && w->is_timer == timer ? w : NULL;
}

static struct watch *watch_new(bool timer)
{
    GROW(reg.v, reg.cap, reg.n + 1);
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->is_timer = timer;
    w->id = (int)(++reg.n);
    reg.v[w->id - 1] = w;
    return w;
}

/* libvirt wants the free callback run later, never from inside remove. */
static void on_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    if (w->ff)
        w->ff(w->opaque);
    reg.v[w->id - 1] = NULL;
    free(w);
}

static int to_uv(int events)
{
    return (events & VIR_EVENT_HANDLE_READABLE ? UV_READABLE : 0) |
           (events & VIR_EVENT_HANDLE_WRITABLE ? UV_WRITABLE : 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct watch *w = p->data;
    int ev = 0;
    if (status < 0)
        ev |= VIR_EVENT_HANDLE_ERROR;
    if (events & UV_READABLE)
        ev |= VIR_EVENT_HANDLE_READABLE;
    if (events & UV_WRITABLE)
        ev |= VIR_EVENT_HANDLE_WRITABLE;
    if (events & UV_DISCONNECT)
        ev |= VIR_EVENT_HANDLE_HANGUP;
    if (!w->removed)
        w->hcb(w->id, w->fd, ev, w->opaque);
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff)
{
    struct watch *w = watch_new(false);
    w->fd = fd;
    w->hcb = cb;
    w->opaque = opaque;
    w->ff = ff;
    if (uv_poll_init(reg.loop, &w->h.poll, fd) < 0) {
        reg.v[w->id - 1] = NULL;
        free(w);
        return -1;
    }
    w->h.poll.data = w;
    if (to_uv(events))
        uv_poll_start(&w->h.poll, to_uv(events), on_poll);
    return w->id;
}

static void update_handle(int id, int events)
{
    struct watch *w = find(id, false);
    if (!w)
        return;
    if (to_uv(events))
        uv_poll_start(&w->h.poll, to_uv(events), on_poll);
    else
        uv_poll_stop(&w->h.poll);
}

static int remove_handle(int id)
{
    struct watch *w = find(id, false);
    if (!w)
        return -1;
    w->removed = true;
    uv_poll_stop(&w->h.poll);
    uv_close((uv_handle_t *)&w->h.poll, on_closed);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct watch *w = t->data;
    if (w->removed)
        return;
    w->tcb(w->id, w->opaque);
    if (!w->removed && w->freq == 0 && !uv_is_active((uv_handle_t *)t))
        uv_timer_start(t, on_timer, 0, 0);
}

static void start_timer(struct watch *w)
{
    uv_timer_stop(&w->h.timer);
    if (w->freq >= 0)
        uv_timer_start(&w->h.timer, on_timer, (uint64_t)w->freq, (uint64_t)w->freq);
}

static int add_timeout(int freq, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
    struct watch *w = watch_new(true);
    w->freq = freq;
    w->tcb = cb;
    w->opaque = opaque;
    w->ff = ff;
    uv_timer_init(reg.loop, &w->h.timer);
    w->h.timer.data = w;
    start_timer(w);
    return w->id;
}

static void update_timeout(int id, int freq)
{
    struct watch *w = find(id, true);
    if (!w)
        return;
    w->freq = freq;
    start_timer(w);
}

static int remove_timeout(int id)
{
    struct watch *w = find(id, true);
    if (!w)
        return -1;
    w->removed = true;
    uv_timer_stop(&w->h.timer);
    uv_close((uv_handle_t *)&w->h.timer, on_closed);
    return 0;
}

int vm_event_uv_register(uv_loop_t *loop, struct duet_err *err)
{
    if (reg.loop)
        return duet_err_set(err, EALREADY, "libvirt's event loop is already registered");
    reg.loop = loop;
    virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout, remove_timeout);
    return 0;
}
