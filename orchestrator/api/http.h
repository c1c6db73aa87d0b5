/*
 * http.h - the API's HTTP/1.1 server on a Unix socket (libuv + http_parser).
 *
 * One request per connection (the response says Connection: close), which
 * is what curl and the duet CLI do anyway and keeps the server's state
 * small.  Bounded: a request's head and body have size limits and the whole
 * request must arrive within a deadline, so a slow or hostile client costs
 * one connection slot for at most that long and never stalls the loop.
 *
 * Access: the socket file is mode 0660; on top of that each connection's
 * peer (SO_PEERCRED) must be root or in the socket's group.
 *
 * Under a flood the operator still gets in: when the connections are all
 * taken, a new one pushes out the oldest that has not yet sent its whole
 * request (a stalled or slow client), and the last HTTP_ROOT_RESERVE
 * slots are root's alone.  A client that goes away is noticed at once
 * (its end of the socket reads EOF), so a follower (events -f, logs -f)
 * whose client was killed frees its slot without waiting for the next
 * event.  Request bodies are bounded each (HTTP_MAX_BODY) and together
 * (HTTP_MAX_BODIES), and given back as soon as their handler returns.
 *
 * Lifetime: a connection is owned by the server and freed once it is closed
 * and nobody holds a reference (http_conn_ref/unref): a handler that
 * answers later (a workload's exit, a log follower) holds one, and checks
 * http_conn_closed() before writing.
 */
#ifndef DUET_HTTP_H
#define DUET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/err.h"

#define HTTP_MAX_HEAD (16u << 10)
#define HTTP_MAX_BODY (16u << 20)
#define HTTP_REQUEST_DEADLINE_MS 10000
#define HTTP_MAX_CONNS 512
#define HTTP_ROOT_RESERVE 32                 /* of those, slots only root's requests may take */
#define HTTP_MAX_BODIES (64u << 20)          /* request bodies held at once, all connections */
#define HTTP_MAX_STREAM_BACKLOG (4u << 20)   /* unread bytes before a slow reader is dropped */

struct http_conn;

struct http_header {
    char *name;                    /* as sent; compared without case */
    char *value;
};

struct http_request {
    const char *method;            /* "GET", "POST", ... */
    const char *path;              /* decoded-free: the path part of the URL */
    const char *query;             /* after '?', or "" */
    const char *body;              /* NUL-terminated (body_len bytes before it) */
    size_t body_len;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    const struct http_header *headers;   /* every header field, in order */
    size_t n_headers;
    bool tls;                      /* it came over TLS */
};

/* The first header of that name (case ignored), or NULL. */
const char *http_request_header(const struct http_request *r, const char *name);

typedef void (*http_handler_fn)(void *opaque, struct http_conn *c, const struct http_request *req);
typedef void (*http_close_fn)(void *opaque, struct http_conn *c);

/* Responses by route and status (http_conn_set_route), for the metrics. */
struct http_count {
    const char *method, *route;    /* static strings */
    int status;
    uint64_t n;
};

struct http_server {
    uv_loop_t *loop;
    union {
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } listener;
    bool tcp;                      /* a TCP listener: no peer credentials, no group */
    http_handler_fn handler;
    void *opaque;
    gid_t group;                   /* the socket's group: its members may connect */
    unsigned n_conns;
    struct http_conn *conns;       /* all open connections, newest first */
    size_t body_bytes;             /* request bodies held now (HTTP_MAX_BODIES) */
    unsigned deadline_ms;
    bool listening;
    struct http_count *counts;
    size_t n_counts, cap_counts;
    unsigned max_conns;            /* HTTP_MAX_CONNS unless the owner says fewer */
    /* Header lines sent with every answer ("Name: value\r\n"...), or
     * NULL; static. */
    const char *headers;
    SSL_CTX *tls;                  /* http_server_use_tls: every connection speaks TLS */
};

/* Creates the socket at path (mode 0660, group `group`), replacing a stale
 * one, and listens. */
int http_server_start(struct http_server *s, uv_loop_t *loop, const char *path, gid_t group, http_handler_fn fn,
                      void *opaque, struct duet_err *err);
/* Listens on TCP at addr (ADDRESS:PORT, [V6]:PORT).  Its peers have no
 * credentials (uid -1): the handler decides what they may ask. */
int http_server_start_tcp(struct http_server *s, uv_loop_t *loop, const char *addr, http_handler_fn fn,
                          void *opaque, struct duet_err *err);
/* Stops listening and closes every connection (the counts stay until
 * http_server_free_counts). */
void http_server_stop(struct http_server *s);
/* TLS with the certificate chain and key in these PEM files (TLS 1.2 and
 * up); for a TCP server, before its loop runs.  The context is the
 * server's (freed by http_server_free_counts). */
int http_server_use_tls(struct http_server *s, const char *cert_file, const char *key_file, struct duet_err *err);
void http_server_free_counts(struct http_server *s);
/* The route the request was taken as ("/v1/workloads/{name}"), for the
 * count of its answer; a request with none counts as "other".  Static
 * strings. */
void http_conn_set_route(struct http_conn *c, const char *method, const char *route);
/* One more header line for this connection's answer ("Name: value", no
 * CR or LF: refused otherwise); before the answer begins. */
void http_conn_add_header(struct http_conn *c, const char *line);

void http_conn_ref(struct http_conn *c);
void http_conn_unref(struct http_conn *c);
bool http_conn_closed(const struct http_conn *c);
/* The request's body stays valid after the handler returns, until the
 * connection is freed (for a handler that reads it on the thread pool;
 * it still counts against HTTP_MAX_BODIES meanwhile). */
void http_conn_keep_body(struct http_conn *c);
/* Called once when the connection closes (client gone or response done). */
void http_conn_on_close(struct http_conn *c, http_close_fn fn, void *opaque);

/* Whole responses (Content-Length); the connection closes once written. */
void http_respond(struct http_conn *c, int status, const char *content_type, const char *body, size_t len);
/* Takes the reference to j. */
void http_respond_json(struct http_conn *c, int status, json_t *j);
void http_respond_error(struct http_conn *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Streams (chunked): begin, any number of writes, end.  A write to a
 * client that does not read is refused (false) once HTTP_MAX_STREAM_BACKLOG
 * bytes wait, and the connection is closed. */
void http_stream_begin(struct http_conn *c, int status, const char *content_type);
bool http_stream_write(struct http_conn *c, const char *data, size_t len);
void http_stream_end(struct http_conn *c);
/* Bytes written to the stream and not yet taken by the client: a writer
 * with much to send waits while this is high instead of being refused. */
size_t http_stream_backlog(const struct http_conn *c);

/* The connection leaves HTTP: "101 Switching Protocols" (Upgrade:
 * protocol) is sent, and from then on every byte the client sends goes to
 * on_data (bytes that came after the request included), in order; its end
 * or a failure is on_data(NULL, 0), after which the connection closes.
 * The server's deadline no longer applies.  For a handler that has not
 * answered yet. */
typedef void (*http_raw_data_fn)(void *opaque, const char *data, size_t len);
void http_conn_upgrade(struct http_conn *c, const char *protocol, http_raw_data_fn on_data, void *opaque);
/* Raw bytes to the client; false once the connection is closed.  Nothing
 * is refused here: the writer bounds itself with http_stream_backlog and
 * http_raw_on_drain. */
bool http_raw_write(struct http_conn *c, const void *data, size_t len);
/* Called when the backlog falls back under `low` (from above). */
void http_raw_on_drain(struct http_conn *c, size_t low, void (*fn)(void *opaque), void *opaque);
/* Stops or resumes reading the client (back-pressure on its input). */
void http_raw_pause(struct http_conn *c, bool paused);
/* Closes once everything written has gone. */
void http_raw_end(struct http_conn *c);

/* Query parameter value (first occurrence) into buf; false when absent. */
bool http_query_get(const char *query, const char *key, char *buf, size_t len);

#endif
