/*
 * store.h - duetd's state store: SQLite in WAL mode under the state dir.
 *
 * What it keeps: each workload's applied spec (canonical JSON) and its
 * generation, the placement decision with its reasons, what the daemon is
 * doing with it (phase), the backend handle of the instance that exists on
 * the host (and which backend and generation it belongs to), restart
 * counts and the last exit; the event stream; measured backend costs.
 *
 * The daemon writes a transition before it acts on it ("creating" before
 * the backend's create), so a daemon killed at any point finds, on restart,
 * everything it may have left on the host.  WAL with synchronous=NORMAL
 * survives a killed process; only a host crash can lose the last commits,
 * and a host crash ends the workloads too.
 *
 * One owner: the daemon's loop thread.  Every call is short (one prepared
 * statement, one transaction).
 */
#ifndef DUET_STORE_H
#define DUET_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/promtext.h"

struct store;

struct store_row {
    const char *name;
    int64_t generation;
    const char *spec;              /* canonical JSON */
    const char *backend;           /* "vm" | "container" */
    const char *placement;         /* JSON array of reasons */
    bool deleted;                  /* desired state: gone */
    const char *phase;
    const char *inst_backend;      /* NULL: nothing on the host */
    int64_t inst_generation;
    const char *handle;            /* NULL: no handle yet */
    int64_t restarts;
    int64_t last_exit;             /* -1: none */
    int64_t last_signal;
    int64_t exited_at, started_at, created_at;   /* ms since the epoch, 0: never */
    const char *message;           /* last error, or NULL */
    bool rm;                       /* ad-hoc (duet run --rm): deleted when it ends */
    int64_t quick_failures;        /* consecutive short runs: the back-off and crash loop go on after a restart */
    int64_t backoff_until;         /* wall clock, ms: when a waiting restart is due, 0: none */
    int64_t address;               /* the workload's IPv4 address on the fleet network (IPAM), 0: none */
    /* The VM disk a backend keeps for the workload (DRIVER_KEEPS_DISK):
     * what it was made from (wl_disk_source), NULL: none kept. */
    const char *disk;
    bool disk_reset;               /* apply --recreate: the kept disk goes before the next create */
    bool delete_volumes;           /* delete --volumes: its named volumes go with it */
    const char *restore_from;      /* a snapshot restore begun and not finished, NULL: none */
    /* A temporary instance of duet compare: the workload it measures,
     * NULL: none.  Not kept (compare --keep): deleted by the next daemon,
     * whose compare it can no longer be. */
    const char *temporary;
    bool kept;
    bool stopped;                  /* duet stop: no instance until duet start */
    bool restart_asked;            /* duet restart: its instance goes, a new one comes */
};

struct store_event {
    int64_t id, ts;
    const char *workload, *type, *message;
};

int store_open(struct store **out, const char *path, struct duet_err *err);
void store_close(struct store *s);
/* How long each statement that changes the store took (a commit: its
 * fsync), since it was opened: for duetd's metrics. */
const struct prom_hist *store_write_latency(const struct store *s);

int store_begin(struct store *s, struct duet_err *err);
int store_commit(struct store *s, struct duet_err *err);
void store_rollback(struct store *s);

int store_put(struct store *s, const struct store_row *r, struct duet_err *err);
int store_delete(struct store *s, const char *name, struct duet_err *err);
/* Calls cb for each row, in name order; the row's strings live for the call. */
int store_load(struct store *s, void (*cb)(void *opaque, const struct store_row *r), void *opaque,
               struct duet_err *err);

/* Appends an event; returns its id (> 0) or -1.  Keeps the newest
 * STORE_EVENTS_KEEP. */
#define STORE_EVENTS_KEEP 10000
int64_t store_event_add(struct store *s, int64_t ts, const char *workload, const char *type, const char *message,
                        struct duet_err *err);
/* Events with id > since, oldest first: the first `limit`, or with
 * `workload` that workload's newest `limit`. */
/* The newest event's id (0: none): where a follower that wants only
 * what comes next starts. */
int64_t store_events_last(struct store *s);
int store_events(struct store *s, int64_t since, const char *workload, int limit,
                 void (*cb)(void *opaque, const struct store_event *e), void *opaque, struct duet_err *err);

/* Measured backend costs (start time, memory overhead), averaged. */
int store_measure_get(struct store *s, const char *backend, uint64_t *start_ms, uint64_t *overhead,
                      uint64_t *samples);
int store_measure_put(struct store *s, const char *backend, uint64_t start_ms, uint64_t overhead, uint64_t samples,
                      struct duet_err *err);

/* What the daemon was started with that its state depends on (the fleet's
 * subnet and bridge): 1 with the value in buf, 0 when never recorded (or
 * longer than len). */
int store_setting_get(struct store *s, const char *key, char *buf, size_t len);
int store_setting_put(struct store *s, const char *key, const char *value, struct duet_err *err);

#endif
