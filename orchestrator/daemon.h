/*
 * daemon.h - duetd's one context and the workloads it keeps.
 *
 * Everything duetd knows lives in `struct daemon`, owned by main() and
 * touched only on the loop thread: the store, the two drivers, the host
 * the plans are made for, the workloads by name, the API server, the event
 * subscribers.
 *
 * A workload (`struct wl`) has a desired half (the applied spec, its
 * generation, where it was placed and why, whether it was deleted) and an
 * observed half (the instance on the host: which backend, which generation,
 * its handle, whether it runs; restarts, last exit, health).  reconcile.c
 * compares the two and takes the next step; nothing else starts, stops or
 * destroys anything.
 *
 * Specs live in the manifest_set they were parsed into; a set is shared by
 * every workload of one apply and freed with its last user (spec_group).
 * The instance on the host keeps the group of the spec it was created
 * from, so a replacement can still stop and destroy the old one.
 */
#ifndef DUET_DAEMON_H
#define DUET_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "backends/driver.h"
#include "network/fleet.h"
#include "scheduler/host.h"
#include "orchestrator/api/http.h"
#include "manifests/manifest.h"
#include "store.h"
#include "common/strmap.h"

#define DUETD_DEFAULT_SOCKET "/run/duet/duet.sock"
#define DUETD_DEFAULT_STATE "/var/lib/duet"
#define DUETD_STOP_GRACE_MS 10000
#define DUETD_RESYNC_MS 30000
#define DUETD_BACKOFF_BASE_MS 1000
#define DUETD_BACKOFF_MAX_MS 300000
#define DUETD_STABLE_MS 10000      /* a run this long resets the back-off */
#define DUETD_CRASHLOOP_AFTER 5    /* consecutive short runs that make a crash loop */
#define DUETD_EVENTS_RECENT 20     /* events shown by describe */

struct spec_group {
    struct manifest_set *set;
    unsigned refs;
};

enum wl_phase {
    PH_PENDING,                    /* waiting for its dependencies */
    PH_CREATING,
    PH_STARTING,
    PH_RUNNING,
    PH_STOPPING,
    PH_DESTROYING,
    PH_EXITED,                     /* ended, not to be restarted */
    PH_BACKOFF,                    /* ended or failed; restarts when the delay is over */
    PH_RECOVERING,                 /* re-attaching after a daemon restart */
    PH_COUNT
};

enum wl_health {
    HEALTH_NONE,                   /* no healthcheck: running is ready */
    HEALTH_STARTING,               /* no result yet */
    HEALTH_HEALTHY,
    HEALTH_UNHEALTHY,
    HEALTH_UNCHECKED,              /* the backend cannot run this check (see health.c) */
};

struct daemon;
struct health_probe;

struct wl {
    struct daemon *d;
    char *name;
    unsigned refs;                 /* the map, operations and probes in flight */
    bool closed;                   /* tick timer closed: freed when refs drop to 0 */

    /* desired */
    const struct workload_spec *spec;
    struct spec_group *grp;
    char *spec_json;
    int64_t gen;
    enum backend_kind backend;
    char *placement_json;          /* {"backend", "reasons", "ruled_out"} */
    bool deleted;
    bool rm;                       /* duet run --rm: deleted when it ends */

    /* observed */
    struct driver_instance *inst;
    const struct workload_spec *inst_spec;
    struct spec_group *inst_grp;
    enum backend_kind inst_backend;
    int64_t inst_gen;
    char handle[DRIVER_HANDLE_MAX];
    bool inst_started, inst_running, stop_requested;
    bool busy;                     /* a driver operation is in flight */
    enum wl_phase phase;
    int64_t restarts;
    unsigned quick_failures;       /* consecutive runs shorter than DUETD_STABLE_MS */
    bool crashloop;
    int64_t last_exit, last_signal;
    int64_t created_at, started_at, exited_at;
    uint64_t backoff_until;        /* monotonic ms */
    uint64_t op_t0;                /* monotonic ms, for measured start times */
    char *message;                 /* why it is pending, or the last error */

    enum wl_health health;
    unsigned health_fails;
    char *health_msg;
    struct health_probe *probe;
    uv_timer_t tick;               /* back-off delay or next health check */

    struct http_conn *waiter;      /* duet run: answered when it ends */

    uint32_t addr;                 /* on the fleet network (kept until deleted), 0: none */
};

struct event_sub;

struct daemon {
    uv_loop_t *loop;
    char state_dir[4096];
    char socket_path[108];
    gid_t socket_group;
    struct store *store;
    struct driver *drv[BACKEND_COUNT];
    bool drv_open[BACKEND_COUNT];
    struct host_info host;
    struct strmap wls;             /* name -> struct wl */
    struct http_server http;
    struct event_sub *subs;        /* event stream followers */
    uv_timer_t resync;
    uv_signal_t sig_term, sig_int;
    uv_prepare_t stall_prepare;    /* measures how long callbacks hold the loop */
    uv_check_t stall_check;
    uint64_t stall_t0;
    int host_netns;                /* for TCP health checks in containers */
    uint64_t backoff_base_ms;
    uint64_t stop_grace_ms;
    uint64_t started_at;
    bool shutting_down;
    unsigned run_seq;
    int lock_fd;
    struct fleet_net net;          /* bridge, addresses, table, names, published ports */
    bool net_open;
};

/* ---- daemon.c ---- */
/* The next workload in d's map from *pos on (start at 0), or NULL at the
 * end; DAEMON_WL_FOREACH walks them all (break and continue work). */
struct wl *daemon_wl_next(const struct daemon *d, size_t *pos);
#define DAEMON_WL_FOREACH(d, w)                                                                                    \
    for (size_t w##_pos = 0; w##_pos != SIZE_MAX; w##_pos = SIZE_MAX)                                              \
        for (struct wl *w; (w = daemon_wl_next((d), &w##_pos));)
uint64_t now_ms(void);             /* wall clock */
uint64_t mono_ms(void);
void spec_group_unref(struct spec_group *g);
struct wl *wl_new(struct daemon *d, const char *name);
void wl_ref(struct wl *w);
void wl_unref(struct wl *w);
void wl_set_message(struct wl *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes w's row (desired and observed) to the store. */
void wl_save(struct wl *w);
/* Records an event in the store and sends it to followers. */
void daemon_event(struct daemon *d, const char *workload, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void daemon_shutdown(struct daemon *d);

/* ---- daemon.c: the fleet network ---- */
/* Gives w an address when its spec joins the network and it has none, or
 * takes it back when the spec says network: none; rewrites the table when
 * that changes what is published.  -1 with err when no address is left. */
int wl_net_prepare(struct wl *w, struct duet_err *err);
/* w is gone: its address and ports go back. */
void wl_net_release(struct wl *w);
/* The table again, from the ports held and the addresses given. */
void daemon_net_sync(struct daemon *d);

/* ---- reconcile.c ---- */
const char *wl_phase_name(enum wl_phase p);
const char *wl_health_name(enum wl_health h);
/* The state a user sees: running, pending, crashloop, completed, failed, ... */
const char *wl_state_name(const struct wl *w);
/* Takes w's next step, if any. */
void wl_reconcile(struct wl *w);
/* Every workload (after a dependency became ready, on resync). */
void reconcile_all(struct daemon *d);
/* Re-attaches to the instance a previous daemon left (at start-up). */
void wl_recover(struct wl *w);
bool wl_ready(const struct wl *w);

/* ---- health.c ---- */
void health_start(struct wl *w);   /* schedules checks while running */
void health_stop(struct wl *w);
void health_probe_cancel(struct wl *w);

/* ---- api.c ---- */
void api_handle(void *opaque, struct http_conn *c, const struct http_request *req);
void api_event_publish(struct daemon *d, int64_t id, int64_t ts, const char *workload, const char *type,
                       const char *message);
void api_close_subscribers(struct daemon *d);
/* The workload's row as the API shows it (get). */
json_t *api_wl_json(const struct wl *w, bool detail);

#endif
