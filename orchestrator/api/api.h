/*
 * api.h - duetd's HTTP API on a Unix socket (docs/api.md).
 *
 * The API is the daemon's user, not a part of it: each route turns a
 * request into a call of orchestrator/daemon.h and its result into an
 * answer; event streams follow the daemon through an event sink.  A file
 * per resource: workloads.c (list, describe, delete), apply.c (apply, run),
 * logs.c (logs, exec), events.c (the event stream), routes.c (routing,
 * info, the server's life).  http.c is the HTTP/1.1 server under them.
 */
#ifndef DUET_API_H
#define DUET_API_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct api;
struct daemon;

struct api *api_new(struct daemon *d);
/* Listens on path (mode 0660, group `group`); a client has deadline_ms to
 * send its whole request. */
int api_start(struct api *a, const char *path, gid_t group, unsigned deadline_ms, struct duet_err *err);
/* Serves GET /metrics (docs/metrics.md), and nothing else, on TCP at addr
 * (ADDRESS:PORT); after api_start. */
int api_metrics_listen(struct api *a, const char *addr, struct duet_err *err);
/* The web dashboard (docs/dashboard.md) on TCP at addr, with TLS when
 * cert and key are given (PEM files); after api_start. */
struct api_web_config {
    const char *addr, *cert, *key;
    bool write;                    /* stop, start, restart, delete allowed */
};
int api_web_listen(struct api *a, const struct api_web_config *cfg, struct duet_err *err);
/* Stops listening, ends every stream, closes every connection. */
void api_stop(struct api *a);
void api_free(struct api *a);

#endif
