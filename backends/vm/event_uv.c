/*
 * event_uv.c - libvirt's event hooks as libuv handles.
 *
 * libvirt calls these hooks from whichever thread is using a connection:
 * the loop thread when it dispatches an event, and the thread-pool threads
 * that make duet's blocking libvirt calls (a remote call updates its
 * socket's watch from the calling thread).  libuv handles may be touched on
 * the loop thread only.  So a hook records what libvirt asked for in the
 * registry, under its lock, and either applies it at once (on the loop
 * thread) or wakes the loop with a uv_async_t to apply it there.  IDs are
 * handed out at once, as libvirt expects, before any handle exists.
 *
 * libvirt callbacks are always called with the lock released: they call
 * the hooks again.
 */
#include "event_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <libvirt/libvirt.h>

#include "common/grow.h"

struct watch {
    int id;
    bool is_timer;
    bool live;                      /* its uv handle is initialised */
    bool removed;                   /* libvirt removed it: close, then free */
    bool dirty;                     /* changed since last applied */
    bool in_cb;                     /* timer callback running (every-iteration re-arm) */
    union {
        uv_poll_t poll;
        uv_timer_t timer;
    } h;
    int fd;                         /* libvirt's */
    int own_fd;                     /* our duplicate, the one libuv polls */
    int events;                     /* handle: VIR_EVENT_HANDLE_* wanted */
    int freq;                       /* timer: ms; 0 every iteration; -1 off */
    virEventHandleCallback hcb;
    virEventTimeoutCallback tcb;
    void *opaque;
    virFreeCallback ff;
};

/* See the header: libvirt's hooks carry no context. */
static struct {
    uv_loop_t *loop;
    uv_thread_t loop_thread;
    pthread_mutex_t lock;
    uv_async_t wake;
    bool wake_open;
    struct watch **v;               /* by id - 1; NULL once freed */
    size_t n, cap;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &reg.loop_thread);
}

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

static int to_uv(int events)
{
    return (events & VIR_EVENT_HANDLE_READABLE ? UV_READABLE : 0) |
           (events & VIR_EVENT_HANDLE_WRITABLE ? UV_WRITABLE : 0);
}

/* libvirt wants the free callback run later, never from inside remove. */
static void on_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    if (w->own_fd >= 0)
        close(w->own_fd);
    pthread_mutex_lock(&reg.lock);
    reg.v[w->id - 1] = NULL;
    pthread_mutex_unlock(&reg.lock);
    if (w->ff)
        w->ff(w->opaque);
    free(w);
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
    pthread_mutex_lock(&reg.lock);
    bool gone = w->removed;
    pthread_mutex_unlock(&reg.lock);
    if (!gone)
        w->hcb(w->id, w->fd, ev, w->opaque);
}

static void on_timer(uv_timer_t *t);

/* Makes w's uv handle match what libvirt asked for.  Loop thread, lock held.
 * Returns a watch whose free callback must run now (it never had a handle),
 * or NULL. */
static struct watch *apply(struct watch *w)
{
    w->dirty = false;
    if (w->removed) {
        if (w->live) {
            w->live = false;
            uv_close((uv_handle_t *)&w->h, on_closed);
            return NULL;
        }
        reg.v[w->id - 1] = NULL;
        return w;
    }
    if (!w->live) {
        int rc = w->is_timer ? uv_timer_init(reg.loop, &w->h.timer) : uv_poll_init(reg.loop, &w->h.poll, w->own_fd);
        if (rc < 0)
            return NULL;     /* an fd libuv cannot watch: libvirt's call already succeeded; nothing to do */
        w->h.poll.data = w;  /* same offset for both members */
        /* libvirt's watches never keep the loop alive by themselves: the
         * daemon's own handles say when it runs.  Otherwise a connection
         * to a libvirt daemon (its socket, its keepalive timer) would keep
         * duetd's loop running after shutdown, and duetd would never exit. */
        uv_unref((uv_handle_t *)&w->h);
        w->live = true;
    }
    if (w->is_timer) {
        uv_timer_stop(&w->h.timer);
        if (w->freq >= 0 && !w->in_cb)
            uv_timer_start(&w->h.timer, on_timer, (uint64_t)w->freq, (uint64_t)w->freq);
    } else if (to_uv(w->events)) {
        uv_poll_start(&w->h.poll, to_uv(w->events), on_poll);
    } else {
        uv_poll_stop(&w->h.poll);
    }
    return NULL;
}

static void apply_all(void)
{
    for (;;) {
        struct watch *dead = NULL;
        pthread_mutex_lock(&reg.lock);
        for (size_t i = 0; i < reg.n && !dead; i++)
            if (reg.v[i] && reg.v[i]->dirty)
                dead = apply(reg.v[i]);
        bool more = false;
        for (size_t i = 0; i < reg.n && !more; i++)
            more = reg.v[i] && reg.v[i]->dirty;
        pthread_mutex_unlock(&reg.lock);
        if (dead) {
            if (dead->own_fd >= 0)
                close(dead->own_fd);
            if (dead->ff)
                dead->ff(dead->opaque);
            free(dead);
        }
        if (!dead && !more)
            return;
    }
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    apply_all();
}

/* Called with the lock held after w changed. */
static void changed(struct watch *w)
{
    w->dirty = true;
    if (on_loop_thread()) {
        struct watch *dead = apply(w);
        if (dead) {
            /* Not from inside remove: let the loop's next turn free it. */
            reg.v[dead->id - 1] = dead;
            dead->dirty = true;
            dead->live = false;
            if (reg.wake_open)
                uv_async_send(&reg.wake);
        }
    } else if (reg.wake_open) {
        uv_async_send(&reg.wake);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct watch *w = t->data;
    pthread_mutex_lock(&reg.lock);
    bool gone = w->removed;
    w->in_cb = true;
    pthread_mutex_unlock(&reg.lock);
    if (!gone)
        w->tcb(w->id, w->opaque);
    pthread_mutex_lock(&reg.lock);
    w->in_cb = false;
    /* A zero frequency means "every loop iteration": re-arm for the next
     * turn unless libvirt changed or removed it meanwhile. */
    if (!w->removed && w->live && w->freq == 0 && !uv_is_active((uv_handle_t *)t))
        uv_timer_start(t, on_timer, 0, 0);
    else if (!w->removed && w->live && w->freq > 0 && !uv_is_active((uv_handle_t *)t))
        uv_timer_start(t, on_timer, (uint64_t)w->freq, (uint64_t)w->freq);
    pthread_mutex_unlock(&reg.lock);
}

/* One watch: an fd (events: what to watch) or a timer (value: its
 * frequency). */
static int add_watch(bool timer, int fd, int value, virEventHandleCallback hcb, virEventTimeoutCallback tcb,
                     void *opaque, virFreeCallback ff)
{
    pthread_mutex_lock(&reg.lock);
    struct watch *w = watch_new(timer);
    w->fd = fd;
    /* libvirt may close its fd as soon as it removed the watch, from any
     * thread, before the loop thread has closed the handle; libuv takes
     * the handle's fd out of epoll only then, and a closed fd's number may
     * be somebody else's by that time.  Polling a duplicate that only we
     * close makes that harmless. */
    w->own_fd = timer ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (timer)
        w->freq = value;
    else
        w->events = value;
    w->hcb = hcb;
    w->tcb = tcb;
    w->opaque = opaque;
    w->ff = ff;
    int id = w->id;
    changed(w);
    pthread_mutex_unlock(&reg.lock);
    return id;
}

/* value: the events of an fd watch, the frequency of a timer; remove: the
 * watch goes (value unused).  -1 when id names no such watch. */
static int update_watch(int id, bool timer, int value, bool remove)
{
    pthread_mutex_lock(&reg.lock);
    struct watch *w = find(id, timer);
    if (w) {
        if (remove)
            w->removed = true;
        else if (timer)
            w->freq = value;
        else
            w->events = value;
        changed(w);
    }
    pthread_mutex_unlock(&reg.lock);
    return w ? 0 : -1;
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff)
{
    return add_watch(false, fd, events, cb, NULL, opaque, ff);
}

static void update_handle(int id, int events)
{
    update_watch(id, false, events, false);
}

static int remove_handle(int id)
{
    return update_watch(id, false, 0, true);
}

static int add_timeout(int freq, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
    return add_watch(true, -1, freq, NULL, cb, opaque, ff);
}

static void update_timeout(int id, int freq)
{
    update_watch(id, true, freq, false);
}

static int remove_timeout(int id)
{
    return update_watch(id, true, 0, true);
}

int vm_event_uv_register(uv_loop_t *loop, struct duet_err *err)
{
    if (reg.loop)
        return duet_err_set(err, EALREADY, "libvirt's event loop is already registered");
    reg.loop = loop;
    reg.loop_thread = uv_thread_self();
    int rc = uv_async_init(loop, &reg.wake, on_wake);
    if (rc < 0)
        return duet_err_set(err, -rc, "cannot wake the event loop: %s", uv_strerror(rc));
    /* The wake-up alone must not keep the loop running. */
    uv_unref((uv_handle_t *)&reg.wake);
    reg.wake_open = true;
    virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout, remove_timeout);
    return 0;
}

static void on_wake_closed(uv_handle_t *h)
{
    (void)h;
}

void vm_event_uv_shutdown(void)
{
    pthread_mutex_lock(&reg.lock);
    bool was_open = reg.wake_open;
    reg.wake_open = false;
    pthread_mutex_unlock(&reg.lock);
    if (was_open && !uv_is_closing((uv_handle_t *)&reg.wake))
        uv_close((uv_handle_t *)&reg.wake, on_wake_closed);
}
