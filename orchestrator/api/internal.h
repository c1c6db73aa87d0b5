/*
 * internal.h - what the API's files share (see api.h).
 *
 * Handlers run on the loop thread and never block: what takes time (a
 * workload's exit for `run`, an exec, a log follower) keeps a reference to
 * the connection and answers later.  Every error is {"error": "..."} with
 * a 4xx status for what the client can fix and 5xx for what it cannot.
 */
#ifndef DUET_API_INTERNAL_H
#define DUET_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "orchestrator/api/api.h"
#include "orchestrator/api/http.h"
#include "orchestrator/daemon.h"

struct event_sub;

#define WEB_TOKEN_HEX 64

/* The dashboard's listener (web.c). */
struct api_web {
    struct http_server http;
    bool on, write, tls;
    char token[WEB_TOKEN_HEX + 1];       /* the login token (STATE/web-token) */
    unsigned char token_hash[32];        /* its SHA-256, what requests are checked against */
    char csrf[65];                       /* HMAC(token, "duet-csrf"), hex */
    unsigned char csrf_hash[32];
    char url[96];                        /* http(s)://HOST:PORT/ */
    char cookie[32];                     /* duet_token_PORT */
};

struct api {
    struct daemon *d;
    struct http_server http;
    struct http_server metrics;    /* duetd --metrics-listen: GET /metrics only */
    bool metrics_on;
    /* The listener's last answer, given again to scrapes less than
     * API_METRICS_REUSE_MS after it (routes.c). */
    char *metrics_text;
    size_t metrics_len;
    uint64_t metrics_at;           /* monotonic ms; 0: none */
    struct event_sub *subs;        /* event stream followers */
    struct event_sink sink;        /* the daemon's events, to them */
    bool sink_added;
    struct api_web web;
};

/* routes.c: a request as the socket would answer it (the dashboard serves
 * some routes through it); the route a path counts as. */
void api_route(struct api *a, struct http_conn *c, const struct http_request *req);
const char *api_route_of(const char *path);
/* workloads.c: POST /v1/workloads/NAME/{stop,start,restart}. */
void api_workload_action(struct api *a, struct http_conn *c, const char *name, const char *action);
/* web.c: GET /v1/dashboard (socket only). */
void api_get_dashboard(struct api *a, struct http_conn *c);

/* The HTTP status for an error of the daemon's (duet_err.code): 404 for
 * what is not there, 409 for a conflict, 422 for what is refused, 507 for
 * a full disk, 503 while degraded. */
int api_status_of(int code);
/* JSON text from bytes that may not be UTF-8 (a log line): what is not is
 * replaced byte by byte with U+FFFD. */
json_t *api_json_text(const char *s, size_t n);
/* The workload named, or NULL after a 404 answer. */
struct wl *api_find(struct api *a, struct http_conn *c, const char *name);
/* One workload, whole: its summary (what GET /v1/workloads lists) and its
 * spec, placement, health and instance. */
json_t *api_wl_json(const struct wl *w);
/* A store event as the API shows it. */
json_t *api_event_json(const struct store_event *e);

/* Routes, one file each. */
void api_get_workloads(struct api *a, struct http_conn *c);
void api_get_workload(struct api *a, struct http_conn *c, const char *name);
void api_delete_workload(struct api *a, struct http_conn *c, const char *name, const char *query);
void api_volumes(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub);
void api_snapshots(struct api *a, struct http_conn *c, const struct http_request *req, const char *name,
                   const char *sub);
/* backups.c */
void api_backup(struct api *a, struct http_conn *c, const struct http_request *req, const char *name);
void api_restore(struct api *a, struct http_conn *c, const struct http_request *req);
void api_apply(struct api *a, struct http_conn *c, const struct http_request *req);
/* compare.c */
void api_compare(struct api *a, struct http_conn *c, const struct http_request *req);
/* GET /v1/compare: the results kept of the last compares. */
void api_get_compares(struct api *a, struct http_conn *c);
void api_run(struct api *a, struct http_conn *c, const struct http_request *req);
void api_get_logs(struct api *a, struct http_conn *c, const char *name, const char *query);
void api_exec(struct api *a, struct http_conn *c, const char *name, const struct http_request *req);
/* exec_io.c: the ends of an interactive exchange (duet exec -i/-t, duet
 * run -i/-t): pipes for the driver (api_xio_ends), relayed to the client
 * over the upgraded connection once api_xio_begin has answered 101.
 * api_xio_end says the command ended (status as a shell gives it; fail: a
 * message first, or NULL) and frees it once the driver's ends and the
 * connection are done; api_xio_cancel frees one never begun, whose request
 * the caller answers. */
struct xio;
struct xio *api_xio_new(struct api *a, struct http_conn *c, bool tty, unsigned rows, unsigned cols,
                        struct duet_err *err);
const struct driver_exec_io *api_xio_ends(struct xio *x);
void api_xio_begin(struct xio *x);
void api_xio_end(struct xio *x, int status, const char *fail);
void api_xio_cancel(struct xio *x);
/* exec_io.c: an exec with the client's input or a terminal; takes argv. */
void api_exec_interactive(struct api *a, struct http_conn *c, struct wl *w, struct driver *drv, char **argv,
                          bool tty, unsigned rows, unsigned cols, uint64_t timeout_ms);
void api_get_events(struct api *a, struct http_conn *c, const char *query);
/* secrets.c: /v1/secrets and below (sub: what follows "secrets"). */
void api_secrets(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub);
/* images.c: /v1/images and below (sub: what follows "images"). */
void api_images(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub);
/* events.c: the sink that feeds followers; the end of every stream. */
void api_events_init(struct api *a);
void api_events_close(struct api *a);

#endif
