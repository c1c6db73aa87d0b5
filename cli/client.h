/*
 * client.h - the CLI's side of the API: one blocking HTTP/1.1 request over
 * the daemon's Unix socket, the response parsed with http_parser.
 */
#ifndef DUET_CLIENT_H
#define DUET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* The socket: --socket, else $DUET_SOCKET, else /run/duet/duet.sock. */
const char *client_socket_path(const char *given);

typedef int (*client_body_fn)(void *opaque, const char *data, size_t len);   /* non-zero stops */

struct client_buf {
    char *data;
    size_t len, cap;
};

/* Sends the request and passes a successful (2xx) response body to fn as
 * it arrives; an error's body goes to err_body instead (when not NULL).
 * Returns the HTTP status, or -1 when the daemon cannot be reached (the
 * CLI's exit 3). */
/* timeout_ms bounds each wait for more of the answer (0: none, for streams
 * and for run, which answers when its workload ends): a daemon that took
 * the connection but does not answer fails with ETIMEDOUT. */
#define CLIENT_TIMEOUT_MS 60000
int client_call(const char *socket_path, const char *method, const char *path, const char *body, size_t body_len,
                client_body_fn fn, void *opaque, struct client_buf *err_body, int timeout_ms, struct duet_err *err);

/* A stream of JSON lines (application/x-ndjson) cut into lines: each
 * whole line to fn, parsed (a new reference), or NULL for one that is
 * not JSON or longer than the buffer.  Give client_lines_feed to
 * client_call as its client_body_fn and the struct as its opaque. */
struct client_lines {
    void (*fn)(void *opaque, json_t *line);
    void *opaque;
    char buf[65536];
    size_t n;
    bool overflow;
};
int client_lines_feed(void *lines, const char *data, size_t len);

/* A request that leaves HTTP (POST with Upgrade: protocol): 101 with the
 * connection in *fd_out (the caller's to close) and the bytes that came
 * after the answer's head in leftover; any other status with its body in
 * err_body; -1 with err when the daemon cannot be reached. */
int client_upgrade(const char *socket_path, const char *path, const char *body, size_t body_len,
                   const char *protocol, int *fd_out, struct client_buf *leftover, struct client_buf *err_body,
                   struct duet_err *err);

/* client_call collecting the body (NUL-terminated) into buf. */
int client_call_buf(const char *socket_path, const char *method, const char *path, const char *body,
                    size_t body_len, struct client_buf *buf, int timeout_ms, struct duet_err *err);

#endif
