/*
 * daemon.h - duetd's one context and the work it does.
 *
 * Everything duetd knows lives in `struct daemon`, owned by main() and
 * touched only on the loop thread: the store, the two drivers, the host
 * the plans are made for, the workloads by name, the fleet network, the
 * event sinks.  The API (orchestrator/api/) is one user of this header
 * among others: it turns requests into the calls below and their results
 * into answers, and follows events through a sink; nothing here knows of
 * HTTP.
 *
 * Modules: daemon.c (the context: open, shutdown, degraded state),
 * workload.c (struct wl and its row), events.c (events and their sinks),
 * apply.c (apply, run, delete), reconcile.c (the next step of each
 * workload), health.c (health checks), net.c (the daemon's side of the
 * fleet network), compare.c (duet compare), main.c (options and start-up).
 */
#ifndef DUET_DAEMON_H
#define DUET_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "backends/driver.h"
#include "common/promtext.h"
#include "common/strmap.h"
#include "manifests/manifest.h"
#include "network/fleet.h"
#include "images/store.h"
#include "orchestrator/store.h"
#include "orchestrator/workload.h"
#include "scheduler/host.h"

#define DUETD_DEFAULT_SOCKET "/run/duet/duet.sock"
#define DUETD_DEFAULT_STATE "/var/lib/duet"
#define DUETD_STOP_GRACE_MS 10000
#define DUETD_RESYNC_MS 30000
#define DUETD_STATS_MS 5000        /* how often a VM's stats are asked of libvirt */
#define DUETD_BACKOFF_BASE_MS 1000
#define DUETD_BACKOFF_MAX_MS 300000
#define DUETD_STABLE_MS 10000      /* a run this long resets the back-off */
#define DUETD_CRASHLOOP_AFTER 5    /* consecutive short runs that make a crash loop */
#define DUETD_EVENTS_RECENT 20     /* events shown by describe */
#define DUETD_STORE_RETRY_MS 1000  /* degraded: how often the store is tried again */
#define DUETD_MESSAGE_MAX 2048     /* a refusal or the degraded state, for the user */

/* A follower of events (the API's event stream, the log).  Sinks are
 * called on the loop thread, after the event is in the store, in the
 * order they were added; a sink may remove itself. */
struct event_sink {
    void (*emit)(struct event_sink *s, const struct store_event *e);
    struct event_sink *next;
};

struct import_job;
struct compare_job;
struct secret_store;

/* What duetd counts of its own work, for its metrics (metrics.c). */
struct daemon_counters {
    uint64_t reconcile_passes;     /* walks over the whole fleet */
    struct prom_hist reconcile_seconds;
};

struct daemon {
    uv_loop_t *loop;
    char state_dir[4096];
    char socket_path[108];
    char config_file[4096];        /* the config file it started with; "" for none */
    struct store *store;
    struct driver *drv[BACKEND_COUNT];
    bool drv_open[BACKEND_COUNT];
    struct host_info host;
    /* VMs' time from running to their first passed check on this host, a
     * running average (the store's "vm-ready" measurement): a VM's default
     * health start period is made from it. */
    uint64_t vm_ready_ms, vm_ready_n;
    struct strmap wls;             /* name -> struct wl */
    struct event_sink *sinks;
    struct event_sink log_sink;    /* every event on stderr (the log file when daemonized) */
    uv_timer_t resync;
    uv_timer_t stats_tick;         /* stats.c */
    uv_timer_t soon;               /* every workload reconciled on the loop's next turn */
    uv_timer_t store_retry;        /* degraded: the store is tried again */
    uv_signal_t sig_term, sig_int;
    uv_prepare_t stall_prepare;    /* measures how long callbacks hold the loop */
    uv_check_t stall_check;
    uint64_t stall_t0;
    /* Called first by daemon_shutdown (main.c stops the API there). */
    void (*on_shutdown)(void *opaque);
    void *on_shutdown_opaque;
    int host_netns;                /* for TCP health checks in containers */
    uint64_t backoff_base_ms, backoff_max_ms;
    uint64_t stable_ms;            /* a run this long resets the back-off */
    uint64_t stop_grace_ms;
    uint64_t started_at;
    bool shutting_down;
    unsigned run_seq;
    /* Not "" while the store refuses writes: why, and the fix.  No step is
     * taken on the host meanwhile (each must be written first), and the
     * API refuses changes with this text. */
    char degraded[DUETD_MESSAGE_MAX];
    struct fleet_net net;          /* bridge, addresses, table, names, published ports */
    bool net_open;
    struct image_store *images;    /* STATE/images (images/store.h) */
    struct secret_store *secrets;  /* STATE/secrets (secret.h) */
    struct import_job *imports;    /* under way, one per reference (image.c) */
    char volume_root[4200];        /* STATE/volumes: named volumes (storage/volume.h) */
    pthread_mutex_t volume_lock;   /* one volume operation at a time, on the workers */
    struct compare_job *compares;  /* under way (compare.c) */
    struct daemon_counters counters;
};

/* ---- volume.c ---- */
/* Are w's named volumes made and mounted for run (its run spec)?  0: yes;
 * 1: not yet, a worker is preparing them and w is reconciled when it is
 * done; 2: a volume it writes is still written by another workload's
 * instance (err says which); -1: it failed (err). */
int wl_volumes_ready(struct wl *w, const struct workload_spec *run, struct duet_err *err);
/* delete --volumes: removes w's named volumes that no other workload
 * names, on workers, w busy meanwhile; false when there are none (w can be
 * forgotten now). */
bool wl_volumes_remove(struct wl *w);
/* Removes volume `name` on a worker; done(opaque, err or NULL) on the loop. */
typedef void (*volume_done_cb)(void *opaque, const struct duet_err *err);
void daemon_volume_remove(struct daemon *d, const char *name, volume_done_cb done, void *opaque);
/* The workloads (not forgotten) whose spec names volume `name`: the first
 * in *first (may be NULL), the count returned. */
size_t daemon_volume_users(struct daemon *d, const char *name, const char **first);

/* ---- snapshot.c ---- */
/* Takes (restore false) or restores snapshot `snap` of workload `name`:
 * the workload is stopped first and started again after, as a new
 * instance (docs/storage.md).  done(opaque, err or NULL, the snapshot's
 * description or NULL) on the loop when it is over; -1 with err when it
 * cannot begin (ENOENT, EEXIST, EBUSY, ESTALE, ENODATA, EAGAIN). */
typedef void (*snapshot_done_cb)(void *opaque, const struct duet_err *err, json_t *meta);
int daemon_snapshot(struct daemon *d, const char *name, const char *snap, bool restore, snapshot_done_cb done,
                    void *opaque, struct duet_err *err);
/* Takes a snapshot of w as daemon_snapshot does, into another root (a
 * backup's copy, backup.c); why says what holds it ("for a backup"). */
int daemon_snapshot_into(struct daemon *d, struct wl *w, const char *root, const char *snap, const char *why,
                         snapshot_done_cb done, void *opaque, struct duet_err *err);
/* The same without stopping it: its instance is paused (driver.pause)
 * while the copy is made, then goes on; what the copy holds is what a
 * power cut at that moment would have left.  The description's
 * "paused_ms" says for how long. */
int daemon_snapshot_live(struct daemon *d, struct wl *w, const char *root, const char *snap, snapshot_done_cb done,
                         void *opaque, struct duet_err *err);
/* At start: a restore the last daemon began and did not finish is done
 * again before the workload runs. */
void daemon_snapshots_resume(struct daemon *d);
/* Removes snapshot `snap` of workload `name` (NULL: every one) on a
 * worker; done on the loop. */
typedef void (*snapshot_rm_cb)(void *opaque, const struct duet_err *err);
void daemon_snapshot_remove(struct daemon *d, const char *name, const char *snap, snapshot_rm_cb done, void *opaque);

/* ---- backup.c ---- */
/* duet backup: workload `name` written to the file `path` (made as
 * uid:gid, so with their rights) as one archive (storage/backup.h),
 * taken with the workload stopped (stop: it is, and is started again
 * once the copy is made; a running one without stop is refused).
 * restore: the workload of the archive at `path` (read with uid:gid's
 * rights) made on this daemon, named `name` when given.  done(opaque,
 * err or NULL, what was done) on the loop; -1 with err when it cannot
 * begin. */
typedef void (*backup_done_cb)(void *opaque, const struct duet_err *err, json_t *result);
int daemon_backup(struct daemon *d, const char *name, const char *path, bool stop, uid_t uid, gid_t gid,
                  backup_done_cb done, void *opaque, struct duet_err *err);
int daemon_restore(struct daemon *d, const char *path, const char *name, uid_t uid, gid_t gid, backup_done_cb done,
                   void *opaque, struct duet_err *err);
/* At start: the copies of backups and restores the last daemon left
 * half done go (on a worker). */
void daemon_backups_clean(struct daemon *d);

/* A deleted workload's snapshots go before it is forgotten: started on
 * a worker (w busy meanwhile), or false when it has none. */
bool wl_snapshots_remove(struct wl *w);

/* ---- daemon.c ---- */
struct daemon_config {
    const char *state_dir;         /* absolute, existing */
    const char *socket_path;       /* kept out of volumes, with state_dir */
    const char *libvirt_uri, *guest_kernel;
    const char *init, *vminit;     /* duet-init, duet-vminit */
    const char *virtiofsd;         /* duet-virtiofsd */
    const char *bridge, *subnet;
    uint64_t backoff_ms, grace_ms, log_max;
    struct registry_opts registry;  /* kept by reference for the daemon's life */
    uint64_t max_image_size;        /* unpacked bytes an import may add; 0: the store's default */
    bool debug;                     /* libvirt's own log lines in duetd's log too */
    const char *config_file;        /* the config file read, for `duet info`; NULL: none */
};
/* Opens the store, probes the host, opens the drivers and the network,
 * and re-attaches to every instance the store names: after it, d knows
 * the whole fleet and a request may act on it. */
int daemon_open(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, struct duet_err *err);
/* The first part of daemon_open: the context and its store, no host, no
 * drivers, no network.  A caller that brings its own (the reconciler's
 * tests: a scripted driver) sets d->host, d->drv and d->drv_open, then
 * calls daemon_load. */
int daemon_init(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, struct duet_err *err);
/* Makes a workload of every row in the store and re-attaches to the
 * instances they name (wl_recover). */
int daemon_load(struct daemon *d, struct duet_err *err);
/* Starts reconciling (timers and the first pass). */
void daemon_start(struct daemon *d);
/* Lets go of every instance without touching it: workloads run on. */
void daemon_shutdown(struct daemon *d);
/* After the loop ended: the drivers close, memory is returned. */
void daemon_close(struct daemon *d);

/* The next workload in d's map from *pos on (start at 0), or NULL at the
 * end; DAEMON_WL_FOREACH walks them all (break and continue work). */
struct wl *daemon_wl_next(const struct daemon *d, size_t *pos);
#define DAEMON_WL_FOREACH(d, w)                                                                                    \
    for (size_t w##_pos = 0; w##_pos != SIZE_MAX; w##_pos = SIZE_MAX)                                              \
        for (struct wl *w; (w = daemon_wl_next((d), &w##_pos));)
struct wl *daemon_wl_find(const struct daemon *d, const char *name);
uint64_t now_ms(void);             /* wall clock */
uint64_t mono_ms(void);
/* Every workload's next step, on the loop's next turn (after an apply,
 * whose answer should not wait for hundreds of steps). */
void daemon_reconcile_soon(struct daemon *d);
/* The store refused a write: from now on the daemon is degraded (see
 * struct daemon) until a retry writes every workload's row again. */
void daemon_degrade(struct daemon *d, const char *what, const struct duet_err *err);
/* The driver for backend k, or NULL when it did not open here. */
struct driver *daemon_driver(const struct daemon *d, enum backend_kind k);

/* ---- metrics.c ---- */
/* Starts the timing of a walk over the fleet; daemon_pass_end counts it. */
uint64_t daemon_pass_begin(void);
void daemon_pass_end(struct daemon *d, uint64_t t0);
/* The fleet's and the daemon's figures in the Prometheus text format
 * (docs/metrics.md), written to f: read now from the drivers, the
 * workloads and the counters, nothing sampled in between. */
void daemon_metrics_write(struct daemon *d, FILE *f);

/* ---- events.c ---- */
/* Records an event in the store and sends it to every sink. */
void daemon_event(struct daemon *d, const char *workload, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void daemon_event_sink_add(struct daemon *d, struct event_sink *s);
void daemon_event_sink_remove(struct daemon *d, struct event_sink *s);

/* ---- apply.c ---- */
enum apply_status {
    APPLY_OK,
    APPLY_INVALID,                 /* lines: the manifests' errors */
    APPLY_UNPLACEABLE,             /* unplaceable: what fits nowhere and why */
    APPLY_PORTS_TAKEN,             /* lines: host ports held by others */
    APPLY_CONFLICT,                /* error: a name taken (run) */
    APPLY_UNAVAILABLE,             /* error: degraded, or the store refused the commit */
    APPLY_DISK_RESET,              /* lines: VMs whose kept disk the apply would reset without --recreate */
};

enum apply_action { APPLY_CREATE, APPLY_REPLACE, APPLY_UNCHANGED, APPLY_DELETE };
const char *apply_action_name(enum apply_action a);

struct apply_change {
    char *name;
    enum apply_action action;
    char *placement_json;          /* NULL for a delete */
};

struct apply_unplaceable {
    char *name, *reason;
};

/* What an apply (or run) did, or why it did nothing. */
struct apply_result {
    enum apply_status status;
    char error[DUETD_MESSAGE_MAX];  /* one line for the user */
    struct apply_change *changes;   /* APPLY_OK: in start order, deletes last */
    size_t n_changes;
    char **lines;                   /* APPLY_INVALID, APPLY_PORTS_TAKEN: FILE:LINE:COL: error: ... */
    size_t n_lines;
    struct apply_unplaceable *unplaceable;
    size_t n_unplaceable;
    char name[64];                  /* run: the workload's name */
};
void apply_result_free(struct apply_result *r);

struct apply_opts {
    bool prune;                    /* workloads not in the files are deleted (ad-hoc ones are kept) */
    bool dry_run;                  /* checked and planned, nothing changed */
    /* apply --recreate: these workloads get a fresh instance (replaced
     * even when unchanged) and a VM a fresh disk. */
    char *const *recreate;
    size_t n_recreate;
};
/* Applies the workloads of set (taken, freed here): checked against the
 * fleet, planned, diffed, written to the store in one transaction, and
 * only then changed in memory; reconciled on the loop's next turn.  Any
 * refusal changes nothing. */
void daemon_apply(struct daemon *d, struct manifest_set *set, const struct apply_opts *o, struct apply_result *res);
/* A placement as the store and the API keep it: {"backend", "reasons",
 * "ruled_out", "start_order"}; the caller frees the text. */
struct placement;
char *placement_json_text(const struct placement *pl);
/* Runs one ad-hoc workload from a set of one document (taken) whose name
 * may be missing (one is made).  on_end (may be NULL) is told when it
 * ends; rm: deleted then.  attach (NULL: none; see struct wl's): its
 * command runs attached to these ends, which must stay open until on_end
 * is told; a workload placed on a backend that cannot attach is refused. */
void daemon_run(struct daemon *d, struct manifest_set *set, bool rm, const struct driver_exec_io *attach,
                wl_end_fn on_end, void *opaque, struct apply_result *res);
/* daemon_run for duet compare (compare.c): the workload is a temporary
 * instance of workload `of`, which the next daemon deletes if this one
 * ends first (struct wl's temp_of). */
void daemon_run_temporary(struct daemon *d, struct manifest_set *set, const char *of, struct apply_result *r);
/* Marks a workload deleted; its instance is stopped and destroyed, then it
 * is forgotten.  volumes: its named volumes that no other workload names
 * go too (delete --volumes).  -1 with err (ENOENT, or EAGAIN when
 * degraded). */
int daemon_delete(struct daemon *d, const char *name, bool volumes, struct duet_err *err);

/* ---- secrets (apply.c; docs/secrets.md) ---- */
/* Stores secret name's value (written first) and, when it changed,
 * replaces the applied workloads that use it, as an apply of their specs
 * would: *r says what was replaced (APPLY_OK with no changes when none
 * uses it).  -1 with err when the value could not be stored; a failed
 * replacement is r's status and error. */
int daemon_secret_set(struct daemon *d, const char *name, const void *value, size_t len, bool *changed,
                      struct apply_result *r, struct duet_err *err);
/* Removes a stored secret no workload uses (EBUSY names them). */
int daemon_secret_remove(struct daemon *d, const char *name, struct duet_err *err);
/* Does w's spec use stored secret name? */
bool wl_uses_secret(const struct workload_spec *w, const char *name);
/* Drops the seals no workload's spec uses any more. */
void daemon_secrets_gc(struct daemon *d);
/* A name for an ad-hoc workload, unused in d. */
void daemon_run_name(struct daemon *d, char out[64]);

/* ---- net.c: the daemon's side of the fleet network ---- */
/* The network, with d's workloads as the name server's answers. */
int daemon_net_open(struct daemon *d, const struct fleet_net_config *nc, struct duet_err *err);
/* After loading: addresses and ports held again, leftovers removed. */
int daemon_net_recover(struct daemon *d, struct duet_err *err);
/* Gives w an address when its spec joins the network and it has none, or
 * takes it back when the spec says network: none; rewrites the table when
 * that changes what is published.  -1 with err when no address is left. */
int wl_net_prepare(struct wl *w, struct duet_err *err);
/* w is gone: its address and ports go back. */
void wl_net_release(struct wl *w);
/* The table again, from the ports held and the addresses given. */
void daemon_net_sync(struct daemon *d);

/* ---- reconcile.c ---- */
/* Takes w's next step, if any. */
void wl_reconcile(struct wl *w);
/* healthcheck.onUnhealthy restart: stops w's instance as a failed run,
 * whose end the restart policy then decides; false when nothing was
 * stopped (busy, not running). */
bool wl_stop_unhealthy(struct wl *w);
/* Every workload without an instance or an operation in flight (after a
 * dependency became ready, after a workload ended). */
void reconcile_all(struct daemon *d);
/* duet stop, start, restart (docs/cli.md): what the workload should be,
 * written, then made so.  A stopped workload keeps its spec, address,
 * disk and volumes and has no instance until started; a restart replaces
 * its instance whatever its restart policy says, as a fresh start (the
 * back-off and crash loop forgotten, not counted as a restart). */
enum wl_action { WL_ACTION_STOP, WL_ACTION_START, WL_ACTION_RESTART };
int daemon_workload_action(struct daemon *d, const char *name, enum wl_action action, struct duet_err *err);
/* Re-attaches to the instance a previous daemon left (at start-up). */
void wl_recover(struct wl *w);

/* ---- health.c ---- */
/* stats.c: the figures of instances whose driver answers on the pool. */
void daemon_stats_start(struct daemon *d);
/* What GET /v1/workloads shows of w's instance: read now where the driver
 * answers at once, else the last sample; false when there is none. */
bool wl_stats(const struct wl *w, struct driver_stats *st, uint64_t *at_ms);

/* Schedules checks while running.  fresh: the instance has just been
 * started (not re-attached), so its first passed check measures a boot. */
void health_start(struct wl *w, bool fresh);
/* How long after its start w's instance may fail its checks without it
 * counting (healthcheck.startPeriod, or the backend's default). */
uint64_t health_start_period_ms(const struct wl *w);
#define HEALTH_VM_READY_MEASURE "vm-ready"
void health_stop(struct wl *w);
/* A paused workload (a live backup) is not checked; its checks go on as
 * they were once it runs again. */
void health_pause(struct wl *w, bool paused);
void health_probe_cancel(struct wl *w);

#endif
