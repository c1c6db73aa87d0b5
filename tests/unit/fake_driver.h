/*
 * fake_driver.h - a driver the reconciler's tests script.
 *
 * It implements backends/driver.h on the test's libuv loop: every
 * operation completes after a delay the test sets, can be made to fail,
 * and is written to an operation log ("create web", "stop web", ...) that
 * the tests read to check order.  The test ends a workload when it wants
 * (fake_exit), scripts what recover finds after a "kill -9", and reports
 * an exit before the start's own callback to check events out of order.
 * Nothing runs: it tests the daemon's decisions, not a backend.
 */
#ifndef DUET_FAKE_DRIVER_H
#define DUET_FAKE_DRIVER_H

#include <stdbool.h>

#include <uv.h>

#include "backends/driver.h"

enum fake_recover {
    FAKE_RECOVER_RUNNING,          /* found, still running */
    FAKE_RECOVER_EXITED,           /* found, ended while no daemon ran (exit code recover_exit) */
    FAKE_RECOVER_GONE,             /* not found: recover fails */
};

struct fake_inst;
struct fake_defer;

struct fake_driver {
    struct driver drv;             /* first: the daemon holds &drv */
    uv_loop_t *loop;
    unsigned op_ms;                /* create, start, destroy complete after this */
    unsigned stop_ms;              /* stop: the workload ends this long after stop */
    int fail_creates;              /* the next N creates fail (through their callback) */
    int fail_starts;
    int exec_status;               /* what exec (health checks) answers */
    bool exit_before_started;      /* start: on_exit (code 0) comes before start's done */
    enum fake_recover recover_as;
    int recover_exit;
    bool oom;                      /* fake_exit reports an OOM kill */
    unsigned creates, starts, stops, destroys, recovers, releases, execs;
    char oplog[8192];              /* "create web\nstart web\n..." */
    struct fake_inst *insts;       /* every instance made, freed with the driver */
    struct fake_defer *defers;     /* operations still to complete */
    int next_id;
};

struct fake_driver *fake_driver_new(uv_loop_t *loop, enum backend_kind kind, unsigned flags);
/* After the loop has closed its handles (daemon_close). */
void fake_driver_free(struct fake_driver *f);
/* Ends the running instance of workload `name` with exit status code (or
 * killed by signal when sig > 0); false when none runs. */
bool fake_exit(struct fake_driver *f, const char *name, int code, int sig);
/* How many times `line` ("create web") is in the operation log. */
unsigned fake_count(const struct fake_driver *f, const char *line);
/* Where `line` first is in the operation log, or -1. */
long fake_pos(const struct fake_driver *f, const char *line);

#endif
