/*
 * stats.c - the figures of instances whose driver answers only on the
 * thread pool (a VM's come from libvirt, whose connection the loop must
 * not wait on).
 *
 * Every second the daemon looks for running instances of such drivers
 * whose last sample is older than DUETD_STATS_MS (or of an older
 * instance) and asks for one, at most one in flight per workload.  The API
 * shows the last sample with its time, so `describe` and `get -o json`
 * show a VM's memory, CPU and I/O in the same fields as a container's,
 * at most a few seconds old; a container's are read when asked.
 */
#include "orchestrator/daemon.h"

#include <string.h>

#include "common/clock.h"

static void on_sample(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->stats_busy = false;
    if (!err && w->inst && w->inst_gen == w->stats_next_gen) {
        w->stats = w->stats_next;
        w->stats_gen = w->stats_next_gen;
        w->stats_at = clock_wall_ms();
    }
    wl_unref(w);
}

static void on_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    uint64_t now = clock_wall_ms();
    DAEMON_WL_FOREACH(d, w) {
        struct driver *drv = w->inst ? daemon_driver(d, w->inst_backend) : NULL;
        if (!drv || !w->inst_running || w->stats_busy || (drv->flags & DRIVER_STATS_AT_ONCE) || !drv->stats_later)
            continue;
        if (w->stats_gen == w->inst_gen && w->stats_at && now - w->stats_at < DUETD_STATS_MS)
            continue;
        struct duet_err err = {0};
        w->stats_busy = true;
        w->stats_next_gen = w->inst_gen;
        memset(&w->stats_next, 0, sizeof(w->stats_next));
        wl_ref(w);
        if (drv->stats_later(drv, w->inst, &w->stats_next, on_sample, w, &err) < 0) {
            w->stats_busy = false;
            wl_unref(w);
        }
    }
}

void daemon_stats_start(struct daemon *d)
{
    uv_timer_start(&d->stats_tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&d->stats_tick);
}

bool wl_stats(const struct wl *w, struct driver_stats *st, uint64_t *at_ms)
{
    struct driver *drv = w->inst ? daemon_driver(w->d, w->inst_backend) : NULL;
    if (!drv || !w->inst_running)
        return false;
    if (drv->flags & DRIVER_STATS_AT_ONCE) {
        struct duet_err err = {0};
        *at_ms = clock_wall_ms();
        return drv->stats(drv, w->inst, st, &err) == 0;
    }
    if (!w->stats_at || w->stats_gen != w->inst_gen)
        return false;
    *st = w->stats;
    *at_ms = w->stats_at;
    return true;
}
