/*
 * workload.h - one workload as duetd keeps it: `struct wl`.
 *
 * A workload has a desired half (the applied spec, its generation, where
 * it was placed and why, whether it was deleted) and an observed half (the
 * instance on the host: which backend, which generation, its handle,
 * whether it runs; restarts, last exit, health).  reconcile.c compares the
 * two and takes the next step; nothing else starts, stops or destroys
 * anything.
 *
 * This module owns the struct and its row in the store: wl_save() writes
 * both halves as one row, wl_load() makes a workload from a row.  A write
 * the store refuses puts the daemon in its degraded state (daemon.c), in
 * which no step is taken until the store takes writes again.
 *
 * Specs live in the manifest_set they were parsed into; a set is shared by
 * every workload of one apply and freed with its last user (spec_group).
 * The instance on the host keeps the group of the spec it was created
 * from, so a replacement can still stop and destroy the old one.
 */
#ifndef DUET_WORKLOAD_H
#define DUET_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "backends/driver.h"
#include "manifests/manifest.h"
#include "orchestrator/store.h"

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
struct wl;

/* Told once when a workload's run ends (duet run waits on it), or with
 * cancelled set when the daemon stops first. */
typedef void (*wl_end_fn)(void *opaque, struct wl *w, bool cancelled);

struct wl {
    struct daemon *d;
    char *name;
    unsigned refs;                 /* the map, operations and probes in flight */

    /* desired */
    const struct workload_spec *spec;
    struct spec_group *grp;
    /* What the drivers are given (image.h): built from spec when it was
     * run_spec_of, in grp; NULL until the first create needs it. */
    const struct workload_spec *run_spec, *run_spec_of;
    bool image_busy;               /* its image is being imported */
    char *image_err;               /* the last import's failure, for the next create */
    bool vol_busy;                 /* its named volumes are being prepared (volume.c) */
    char *vol_err;                 /* the last preparation's failure, for the next create */
    const struct workload_spec *vol_ready_of;   /* the spec its volumes were last prepared for */
    bool pull_failed;              /* its last create failed on its image: apply tries again at once */
    char *spec_json;
    int64_t gen;
    enum backend_kind backend;
    char *placement_json;          /* {"backend", "reasons", "ruled_out", "start_order"} */
    bool deleted;
    bool rm;                       /* duet run --rm: deleted when it ends */
    /* duet compare's temporary instance of workload temp_of (compare.c),
     * NULL: an ordinary workload.  temp_kept: left running by --keep. */
    char *temp_of;
    bool temp_kept;

    /* observed */
    struct driver_instance *inst;
    const struct workload_spec *inst_spec;
    struct spec_group *inst_grp;
    enum backend_kind inst_backend;
    int64_t inst_gen;
    char handle[DRIVER_HANDLE_MAX];
    bool inst_started, inst_running, stop_requested;
    bool stopped_unhealthy;        /* its instance is being stopped for failing its checks */
    /* duet stop / start / restart (written first): stopped, it has no
     * instance until started again; restart_asked, its instance goes and
     * a new one comes whatever the restart policy, the back-off reset. */
    bool stopped, restart_asked;
    bool busy;                     /* a driver operation is in flight */
    enum wl_phase phase;
    int64_t restarts;
    unsigned quick_failures;       /* consecutive runs shorter than DUETD_STABLE_MS */
    bool crashloop;
    int64_t last_exit, last_signal;
    int64_t created_at, started_at, exited_at;
    uint64_t backoff_until;        /* monotonic ms */
    uint64_t op_t0;                /* monotonic ms, for measured start times */
    /* From its instance's create to its first time ready (wl_ready), in
     * ms; 0 until then, and for an instance this daemon did not start. */
    uint64_t ready_ms;
    char *message;                 /* why it is pending, or the last error */

    enum wl_health health;
    unsigned health_fails;
    bool health_boot_timed;        /* its first passed check times a VM's boot (a fresh start) */
    char *health_msg;
    struct health_probe *probe;
    uv_timer_t tick;               /* back-off delay or next health check */

    wl_end_fn on_end;              /* duet run: told when it ends */
    void *on_end_opaque;
    /* duet run -i/-t: the caller's ends, given to its first instance's
     * driver before it starts (driver.h, attach).  The caller's until it
     * is told of the end; cleared then and once given. */
    const struct driver_exec_io *attach;

    uint32_t addr;                 /* on the fleet network (kept until deleted), 0: none */

    /* What a backend keeps beyond its instances (backends/kept.h).  disk:
     * what the kept VM disk was made from (wl_disk_source), NULL: none;
     * written before the create that makes it.  disk_reset: apply
     * --recreate asked for a fresh disk, which the next create gets.
     * purged: the kept things of a deleted workload are gone, it can be
     * forgotten (not stored: a purge cut short is asked again). */
    char *disk;
    bool disk_reset;
    /* delete --volumes (written with the deletion): its named volumes
     * that no other workload names go before it is forgotten. */
    bool delete_volumes;
    bool volumes_removing;
    /* A snapshot's hold (snapshot.c): while set the workload has no
     * instance (the reconciler stops and destroys it and makes none);
     * hold_ready is called once, when there is none. */
    bool hold;
    const char *hold_why;          /* for the stop's event: "for a snapshot" */
    void (*hold_ready)(struct wl *w);
    void *hold_opaque;             /* snapshot.c's job */
    /* A restore begun (written first): the next daemon finishes it if
     * this one is cut short. */
    char *restore_from;
    bool backing_up;               /* a backup of it is being taken or written (backup.c) */
    bool snaps_removed;            /* deleted: its snapshots are gone */
    bool purged;
    unsigned purging;              /* purges in flight */
    bool purge_failed, purge_for_delete;

    /* The last figures of an instance whose driver answers stats only on
     * the pool (a VM's, stats.c): of instance generation stats_gen, taken
     * at stats_at (wall ms; 0: none yet).  stats_next is filled meanwhile. */
    struct driver_stats stats, stats_next;
    int64_t stats_gen, stats_next_gen;
    uint64_t stats_at;
    bool stats_busy;
};

void spec_group_unref(struct spec_group *g);

/* A new workload, in d's map (which holds the first reference). */
struct wl *wl_new(struct daemon *d, const char *name);
void wl_ref(struct wl *w);
void wl_unref(struct wl *w);
void wl_set_message(struct wl *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* w's row as the store keeps it; the strings are w's. */
void wl_row(const struct wl *w, struct store_row *r);
/* Writes w's row.  -1 when the store refused it: the daemon is then
 * degraded (daemon_degrade), and a caller about to make something on the
 * host must not. */
int wl_save(struct wl *w);
/* A workload from a row read at start-up; its spec is set by the caller. */
struct wl *wl_load(struct daemon *d, const struct store_row *r);

/* Tells whoever waits on w's end (see wl_end_fn), once. */
void wl_notify_end(struct wl *w, bool cancelled);

const char *wl_phase_name(enum wl_phase p);
enum wl_phase wl_phase_from(const char *s);
const char *wl_health_name(enum wl_health h);
/* The state a user sees: running, pending, crashloop, completed, failed, ... */
const char *wl_state_name(const struct wl *w);
/* Ready for its dependents: running (and healthy, when checked), or
 * completed. */
bool wl_ready(const struct wl *w);
/* Times ready_ms, the first time the instance it started is ready. */
void wl_note_ready(struct wl *w);

#endif
