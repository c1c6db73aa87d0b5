/*
 * compare.h - duet compare: a workload run once as a container and once
 * as a VM, side by side, measured, and removed (docs/compare.md).
 *
 * The two instances are temporary workloads of the daemon's own
 * (daemon_run_temporary), named NAME-cmp-ct and NAME-cmp-vm: they get
 * addresses on the fleet network, health checks and figures as any
 * workload does, and nothing of the live workload (no published port, no
 * volume, no dependency).  Their rows carry the mark of a temporary, so a
 * daemon that ends mid-compare leaves nothing behind for long: the next
 * one deletes them first.
 *
 * One job per compared workload, on the loop: it starts each side `runs`
 * times (start to ready, as apply --wait means it), keeps the last
 * instance of each, lets both idle (CPU, memory), puts the probe on each
 * in turn (memory under load, the workload's own speed), then removes
 * them (unless keep) and answers with every figure and a verdict.
 */
#ifndef DUET_COMPARE_H
#define DUET_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

#define COMPARE_MAX_RUNS 10
#define COMPARE_DEFAULT_RUNS 3
#define COMPARE_DEFAULT_IDLE_MS 10000
#define COMPARE_DEFAULT_CONCURRENCY 4
#define COMPARE_DEFAULT_DURATION_MS 5000
#define COMPARE_EXEC_RUNS 5
#define COMPARE_TCP_CONNECTS 50
#define COMPARE_READY_TIMEOUT_MS 600000   /* a start slower than this is a failed one */

enum compare_probe_kind { COMPARE_PROBE_NONE, COMPARE_PROBE_HTTP, COMPARE_PROBE_TCP, COMPARE_PROBE_EXEC };

struct compare_opts {
    unsigned runs;                 /* 1 .. COMPARE_MAX_RUNS */
    uint64_t idle_ms;
    enum compare_probe_kind probe;
    char http_path[512];           /* begins with "/" */
    uint16_t port;                 /* 0: the workload's first port, else 80 (http) */
    unsigned concurrency;
    uint64_t duration_ms;
    char **exec;                   /* NULL-terminated, owned by the caller */
    bool keep;                     /* leave both instances running */
};

struct daemon;
struct manifest_set;
struct compare_job;

/* A line of progress for the user ("vm: run 2 of 3 ready in 3.10 s"). */
typedef void (*compare_progress_fn)(void *opaque, const char *line);
/* The end: result (a new reference, docs/cli.md's schema) or err. */
typedef void (*compare_done_fn)(void *opaque, json_t *result, const struct duet_err *err);

/* Compares workload `name`: the one applied (set NULL) or the one of that
 * name in set (taken, freed here; it must be valid).  o is copied, its
 * exec argv too.  NULL with err when it cannot begin: ENOENT (no such
 * workload), EEXIST (a compare of it under way, or a workload holding a
 * temporary's name), EAGAIN (degraded), EINVAL. */
struct compare_job *daemon_compare(struct daemon *d, const char *name, struct manifest_set *set,
                                   const struct compare_opts *o, compare_progress_fn progress, compare_done_fn done,
                                   void *opaque, struct duet_err *err);
/* The client went away: no callback is made any more; the instances are
 * removed (kept, with keep) and the job ends on its own. */
void compare_abandon(struct compare_job *j);
/* duetd stops: every job ends now, its instances left for the next daemon
 * to delete (not kept) or keep. */
void compare_shutdown(struct daemon *d);

/* The verdict from the figures (exposed for the unit tests): sides is
 * the result's "sides" object, plan_backend the plan's choice; a new
 * object {backend, agrees_with_plan, deciding: [...], text}. */
json_t *compare_verdict(json_t *sides, const char *plan_backend);

/* The results of the last compares (at most 10, oldest first), each with
 * finished_at (ms since the epoch): a new array. */
json_t *daemon_compare_results(struct daemon *d);

#endif
