/*
 * http.c - HTTP/1.1 over a Unix socket for the API (see http.h).
 *
 * Parsing is http_parser's (the request line, headers, chunked bodies,
 * every malformed case); this file only bounds what it may collect and
 * turns complete requests into handler calls.  Each connection has two
 * handles (the pipe and its deadline timer); it is gone once both are
 * closed and no handler holds a reference.
 *
 * TLS (a TCP server given a certificate) sits between the socket and the
 * rest through OpenSSL's memory BIOs: bytes read go into the session and
 * what it decrypts goes on as if read from the socket; what is written is
 * encrypted and what the session has to send is queued on the socket.
 * Nothing blocks, and a handshake is held to the request's deadline.
 */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/grow.h"
#include "common/listenaddr.h"
#include "http.h"

enum conn_state { CS_READING, CS_HANDLING, CS_STREAMING, CS_RAW, CS_DONE };

struct http_conn {
    struct http_server *srv;
    struct http_conn *next, *prev;
    union {
        uv_stream_t stream;
        uv_pipe_t pipe;            /* the Unix socket's */
        uv_tcp_t tcp;              /* a TCP listener's */
    } h;
    uv_timer_t timer;
    http_parser parser;
    enum conn_state state;
    int open_handles;
    int refs;
    bool closing, closed;
    bool deadline_grace;           /* the deadline passed once: one more turn to read */
    http_close_fn on_close;
    void *close_opaque;

    char *url;
    size_t url_len;
    size_t head_bytes;             /* URL + header fields and values */
    char *body;
    size_t body_len, body_cap;
    int reject_status;             /* set by a callback that refused the request */
    const char *reject_msg;
    struct ucred cred;
    const char *route_method, *route;   /* http_conn_set_route */
    bool counted;
    bool keep_body;                /* the handler reads the body later */
    /* bytes that came after the request, kept for a handler that upgrades */
    char *extra;
    size_t extra_len;
    http_raw_data_fn raw_data;
    void *raw_opaque;
    void (*raw_drain)(void *opaque);
    void *raw_drain_opaque;
    size_t raw_low;
    bool raw_paused;
    struct http_header *headers;
    size_t n_headers, cap_headers;
    bool in_value;                 /* the parser is in a header's value */
    char *resp_headers;            /* http_conn_add_header's lines, CRLF-ended */
    SSL *ssl;                      /* TLS: the session (its BIOs are its own) */
    BIO *rbio, *wbio;
};

static const char *status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 204: return "No Content";
    case 303: return "See Other";
    case 401: return "Unauthorized";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- lifetime ----------------------------------------------------------- */

/* The body's memory goes back to the budget (and, when large, to the
 * system: a flood of large bodies must not leave the daemon big). */
static void body_release(struct http_conn *c)
{
    bool large = c->body_cap > (1u << 20);
    c->srv->body_bytes -= c->body_cap;
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    if (large)
        malloc_trim(0);
}

static void conn_free_if_done(struct http_conn *c)
{
    if (c->closed && c->refs == 0) {
        free(c->url);
        free(c->extra);
        for (size_t i = 0; i < c->n_headers; i++) {
            free(c->headers[i].name);
            free(c->headers[i].value);
        }
        free(c->headers);
        free(c->resp_headers);
        if (c->ssl)
            SSL_free(c->ssl);
        if (c->body)
            body_release(c);
        free(c);
    }
}

void http_conn_keep_body(struct http_conn *c)
{
    c->keep_body = true;
}

void http_conn_ref(struct http_conn *c)
{
    c->refs++;
}

void http_conn_unref(struct http_conn *c)
{
    c->refs--;
    conn_free_if_done(c);
}

bool http_conn_closed(const struct http_conn *c)
{
    return c->closing || c->closed;
}

void http_conn_on_close(struct http_conn *c, http_close_fn fn, void *opaque)
{
    c->on_close = fn;
    c->close_opaque = opaque;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    c->closed = true;
    /* The callback may drop the last reference: hold one across it. */
    c->refs++;
    if (c->raw_data) {
        http_raw_data_fn fn = c->raw_data;
        c->raw_data = NULL;
        fn(c->raw_opaque, NULL, 0);
    }
    if (c->on_close)
        c->on_close(c->close_opaque, c);
    http_conn_unref(c);
}

static void conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->state = CS_DONE;
    uv_close((uv_handle_t *)&c->h.stream, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---- writing ------------------------------------------------------------ */

struct wreq {
    uv_write_t req;
    struct http_conn *c;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct http_conn *c = w->c;
    free(w);
    if (status < 0)
        conn_close(c);
    else if (c->raw_drain && !http_conn_closed(c) &&
             uv_stream_get_write_queue_size(&c->h.stream) <= c->raw_low) {
        void (*fn)(void *) = c->raw_drain;
        c->raw_drain = NULL;
        fn(c->raw_drain_opaque);
    }
    http_conn_unref(c);
}

/* Queues w (len bytes of its data) on the socket; takes w. */
static bool wreq_queue(struct http_conn *c, struct wreq *w, size_t len)
{
    w->c = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    http_conn_ref(c);
    if (uv_write(&w->req, &c->h.stream, &b, 1, on_written) < 0) {
        free(w);
        http_conn_unref(c);
        conn_close(c);
        return false;
    }
    return true;
}

/* What the TLS session has to send, onto the socket. */
static bool tls_flush(struct http_conn *c)
{
    size_t len = BIO_ctrl_pending(c->wbio);
    if (len == 0 || http_conn_closed(c))
        return !http_conn_closed(c);
    struct wreq *w = malloc(sizeof(*w) + len);
    if (!w)
        abort();
    if (BIO_read(c->wbio, w->data, (int)len) != (int)len)
        abort();   /* a memory BIO gives what it says it holds */
    return wreq_queue(c, w, len);
}

/* Queues the parts as one write (copied: the caller's buffers may go). */
static bool conn_writev(struct http_conn *c, const uv_buf_t *parts, size_t n)
{
    if (http_conn_closed(c))
        return false;
    if (c->ssl) {
        /* A memory BIO takes all of it: SSL_write cannot want more. */
        for (size_t i = 0; i < n; i++) {
            ERR_clear_error();
            if (parts[i].len && SSL_write(c->ssl, parts[i].base, (int)parts[i].len) <= 0) {
                conn_close(c);
                return false;
            }
        }
        return tls_flush(c);
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    struct wreq *w = malloc(sizeof(*w) + len);
    if (!w)
        abort();
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(w->data + off, parts[i].base, parts[i].len);
        off += parts[i].len;
    }
    return wreq_queue(c, w, len);
}

static bool conn_write(struct http_conn *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return conn_writev(c, &b, 1);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct http_conn *c = req->data;
    free(req);
    conn_close(c);
    http_conn_unref(c);
}

/* Closes once everything queued is written. */
static void conn_finish(struct http_conn *c)
{
    if (http_conn_closed(c))
        return;
    c->state = CS_DONE;
    if (c->ssl) {
        /* close_notify, so the client knows the answer is whole. */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        if (!tls_flush(c))
            return;
    }
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req)
        abort();
    req->data = c;
    http_conn_ref(c);
    if (uv_shutdown(req, &c->h.stream, on_shutdown) < 0) {
        free(req);
        http_conn_unref(c);
        conn_close(c);
    }
}

void http_conn_set_route(struct http_conn *c, const char *method, const char *route)
{
    c->route_method = method;
    c->route = route;
}

void http_conn_add_header(struct http_conn *c, const char *line)
{
    if (strpbrk(line, "\r\n"))
        return;   /* a header line cannot carry another */
    size_t had = c->resp_headers ? strlen(c->resp_headers) : 0, n = strlen(line);
    char *r = realloc(c->resp_headers, had + n + 3);
    if (!r)
        abort();
    memcpy(r + had, line, n);
    memcpy(r + had + n, "\r\n", 3);
    c->resp_headers = r;
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* One answer more for c's route and status. */
static void count_answer(struct http_conn *c, int status)
{
    if (c->counted)
        return;
    c->counted = true;
    struct http_server *s = c->srv;
    const char *m = c->route_method ? c->route_method : "other", *r = c->route ? c->route : "other";
    for (size_t i = 0; i < s->n_counts; i++) {
        struct http_count *k = &s->counts[i];
        if (k->status == status && strcmp(k->route, r) == 0 && strcmp(k->method, m) == 0) {
            k->n++;
            return;
        }
    }
    GROW(s->counts, s->cap_counts, s->n_counts + 1);
    s->counts[s->n_counts++] = (struct http_count){.method = m, .route = r, .status = status, .n = 1};
}

void http_server_free_counts(struct http_server *s)
{
    if (s->tls) {
        SSL_CTX_free(s->tls);
        s->tls = NULL;
    }
    free(s->counts);
    s->counts = NULL;
    s->n_counts = s->cap_counts = 0;
}

static void write_head(struct http_conn *c, int status, const char *content_type, long long content_length)
{
    count_answer(c, status);
    char head[512];
    int n;
    if (content_length >= 0)
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lld\r\nConnection: close\r\n",
                     status, status_text(status), content_type, content_length);
    else
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n%s",
                     status, status_text(status), content_type,
                     c->srv->headers ? "" : "Cache-Control: no-cache\r\n");
    const char *server = c->srv->headers ? c->srv->headers : "", *own = c->resp_headers ? c->resp_headers : "";
    uv_buf_t parts[4] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)server, (unsigned)strlen(server)),
                         uv_buf_init((char *)own, (unsigned)strlen(own)), uv_buf_init((char *)"\r\n", 2)};
    conn_writev(c, parts, 4);
}

void http_respond(struct http_conn *c, int status, const char *content_type, const char *body, size_t len)
{
    if (http_conn_closed(c) || c->state == CS_DONE)
        return;
    write_head(c, status, content_type, (long long)len);
    if (len)
        conn_write(c, body, len);
    conn_finish(c);
}

void http_respond_json(struct http_conn *c, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text)
        abort();
    size_t n = strlen(text);
    text[n] = '\0';
    /* A newline at the end keeps a terminal tidy under curl. */
    char *nl = realloc(text, n + 2);
    if (!nl)
        abort();
    nl[n] = '\n';
    nl[n + 1] = '\0';
    http_respond(c, status, "application/json", nl, n + 1);
    free(nl);
}

void http_respond_error(struct http_conn *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *j = json_object();
    json_t *m = json_string(msg);
    json_object_set_new(j, "error", m ? m : json_string("(message not valid UTF-8)"));
    http_respond_json(c, status, j);
}

void http_stream_begin(struct http_conn *c, int status, const char *content_type)
{
    if (http_conn_closed(c))
        return;
    c->state = CS_STREAMING;
    write_head(c, status, content_type, -1);
}

bool http_stream_write(struct http_conn *c, const char *data, size_t len)
{
    if (http_conn_closed(c) || c->state != CS_STREAMING)
        return false;
    if (len == 0)
        return true;
    if (uv_stream_get_write_queue_size(&c->h.stream) > HTTP_MAX_STREAM_BACKLOG) {
        conn_close(c);
        return false;
    }
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    uv_buf_t parts[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                         uv_buf_init((char *)"\r\n", 2)};
    return conn_writev(c, parts, 3);
}

size_t http_stream_backlog(const struct http_conn *c)
{
    return http_conn_closed(c) ? 0 : uv_stream_get_write_queue_size(&c->h.stream);
}

void http_stream_end(struct http_conn *c)
{
    if (http_conn_closed(c) || c->state != CS_STREAMING)
        return;
    conn_write(c, "0\r\n\r\n", 5);
    conn_finish(c);
}

/* ---- raw (after an upgrade) ---------------------------------------------- */

void http_conn_upgrade(struct http_conn *c, const char *protocol, http_raw_data_fn on_data, void *opaque)
{
    if (http_conn_closed(c) || c->state == CS_DONE)
        return;
    count_answer(c, 101);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", protocol);
    c->state = CS_RAW;
    c->raw_data = on_data;
    c->raw_opaque = opaque;
    uv_timer_stop(&c->timer);
    conn_write(c, head, (size_t)n);
    if (c->extra_len) {
        char *extra = c->extra;
        size_t len = c->extra_len;
        c->extra = NULL;
        c->extra_len = 0;
        on_data(opaque, extra, len);
        free(extra);
    }
}

bool http_raw_write(struct http_conn *c, const void *data, size_t len)
{
    if (http_conn_closed(c) || c->state != CS_RAW)
        return false;
    return len == 0 || conn_write(c, data, len);
}

void http_raw_on_drain(struct http_conn *c, size_t low, void (*fn)(void *opaque), void *opaque)
{
    c->raw_low = low;
    c->raw_drain = fn;
    c->raw_drain_opaque = opaque;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void http_raw_pause(struct http_conn *c, bool paused)
{
    if (http_conn_closed(c) || c->state != CS_RAW || c->raw_paused == paused)
        return;
    c->raw_paused = paused;
    if (paused)
        uv_read_stop(&c->h.stream);
    else
        uv_read_start(&c->h.stream, alloc_cb, on_read);
}

void http_raw_end(struct http_conn *c)
{
    if (http_conn_closed(c) || c->state != CS_RAW)
        return;
    c->raw_data = NULL;
    conn_finish(c);
}

/* ---- reading ------------------------------------------------------------ */

static int reject(struct http_conn *c, int status, const char *msg)
{
    c->reject_status = status;
    c->reject_msg = msg;
    return 1;   /* non-zero stops the parser */
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    c->head_bytes += len;
    if (c->head_bytes > HTTP_MAX_HEAD)
        return reject(c, 414, "request line too long");
    char *u = realloc(c->url, c->url_len + len + 1);
    if (!u)
        abort();
    memcpy(u + c->url_len, at, len);
    c->url_len += len;
    u[c->url_len] = '\0';
    c->url = u;
    return 0;
}

/* Appends at..len to *s (a field or value may come in pieces). */
static void str_append(char **s, const char *at, size_t len)
{
    size_t had = *s ? strlen(*s) : 0;
    char *n = realloc(*s, had + len + 1);
    if (!n)
        abort();
    memcpy(n + had, at, len);
    n[had + len] = '\0';
    *s = n;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    c->head_bytes += len;
    if (c->head_bytes > HTTP_MAX_HEAD)
        return reject(c, 431, "request headers too large");
    if (c->in_value || c->n_headers == 0) {
        GROW(c->headers, c->cap_headers, c->n_headers + 1);
        c->headers[c->n_headers++] = (struct http_header){0};
        c->in_value = false;
    }
    str_append(&c->headers[c->n_headers - 1].name, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    c->head_bytes += len;
    if (c->head_bytes > HTTP_MAX_HEAD)
        return reject(c, 431, "request headers too large");
    c->in_value = true;
    /* A NUL inside a value would cut it short where a C reader looks. */
    if (memchr(at, '\0', len))
        return reject(c, 400, "a NUL byte in a header value");
    str_append(&c->headers[c->n_headers - 1].value, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    /* Refuse a declared oversized body before reading any of it. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > HTTP_MAX_BODY)
        return reject(c, 413, "request body too large");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (c->body_len + len > HTTP_MAX_BODY)
        return reject(c, 413, "request body too large");
    size_t before = c->body_cap;
    if (c->body_len + len + 1 > c->body_cap &&
        c->srv->body_bytes + (c->body_len + len + 1) * 2 - before > HTTP_MAX_BODIES)
        return reject(c, 503, "duetd is receiving too many large requests at once; try again");
    GROW(c->body, c->body_cap, c->body_len + len + 1);
    c->srv->body_bytes += c->body_cap - before;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->state = CS_HANDLING;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void dispatch(struct http_conn *c)
{
    uv_timer_stop(&c->timer);
    if (c->parser.http_major != 1) {
        http_respond_error(c, 505, "HTTP/%u.%u is not spoken here: use HTTP/1.1", c->parser.http_major,
                           c->parser.http_minor);
        return;
    }
    char *q = strchr(c->url, '?');
    const char *query = "";
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    struct http_request req = {
        .method = http_method_str((enum http_method)c->parser.method),
        .path = c->url,
        .query = query,
        .body = c->body ? c->body : "",
        .body_len = c->body_len,
        .uid = c->cred.uid,
        .gid = c->cred.gid,
        .pid = c->cred.pid,
        .headers = c->headers,
        .n_headers = c->n_headers,
        .tls = c->ssl != NULL,
    };
    /* A header sent with a name and no value, or the reverse, reads "". */
    for (size_t i = 0; i < c->n_headers; i++) {
        if (!c->headers[i].name)
            str_append(&c->headers[i].name, "", 0);
        if (!c->headers[i].value)
            str_append(&c->headers[i].value, "", 0);
    }
    http_conn_ref(c);
    c->srv->handler(c->srv->opaque, c, &req);
    /* Handlers copy what they keep of the request, or say they keep it. */
    if (!c->keep_body)
        body_release(c);
    http_conn_unref(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(16384);
    if (!buf->base)
        abort();
    buf->len = 16384;
}

/* Bytes from the client (decrypted, with TLS). */
static void conn_input(struct http_conn *c, const char *data, size_t nread)
{
    if (c->state == CS_RAW) {
        if (c->raw_data)
            c->raw_data(c->raw_opaque, data, nread);
        return;
    }
    if (c->state != CS_READING)
        return;   /* bytes after the one request are ignored */
    size_t used = http_parser_execute(&c->parser, &parser_settings, data, nread);
    /* What came after the request: another protocol's, if the handler
     * upgrades (a client may send it without waiting for the answer). */
    if (c->state == CS_HANDLING && used < nread) {
        char *x = realloc(c->extra, c->extra_len + nread - used);
        if (!x)
            abort();
        memcpy(x + c->extra_len, data + used, nread - used);
        c->extra = x;
        c->extra_len += nread - used;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->reject_status) {
        uv_read_stop(&c->h.stream);
        http_respond_error(c, c->reject_status, "%s", c->reject_msg);
        return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        uv_read_stop(&c->h.stream);
        http_respond_error(c, 400, "malformed HTTP request: %s", http_errno_description(e));
        return;
    }
    if (c->state == CS_HANDLING)
        dispatch(c);
}

/* Ciphertext in; what it decrypts to goes on to conn_input, and what the
 * session answers (the handshake's messages) goes out. */
static void tls_input(struct http_conn *c, const char *data, size_t n)
{
    if (BIO_write(c->rbio, data, (int)n) != (int)n) {
        conn_close(c);
        return;
    }
    http_conn_ref(c);
    char plain[16384];
    while (!http_conn_closed(c)) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, plain, sizeof(plain));
        if (r > 0) {
            conn_input(c, plain, (size_t)r);
            continue;
        }
        /* Wanting more: wait for it.  Otherwise the client's
         * close_notify, a failed handshake (plain HTTP to a TLS port) or
         * a bad record: nothing more comes. */
        if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ && (c->state == CS_READING || c->state == CS_RAW))
            conn_close(c);
        break;
    }
    if (!http_conn_closed(c))
        tls_flush(c);
    http_conn_unref(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = stream->data;
    if (nread < 0) {
        free(buf->base);
        /* The client went away (or shut its side, which no client of this
         * one-request protocol does while it still wants the answer):
         * whatever waits for it, a follower or a run, lets go now. */
        conn_close(c);
        return;
    }
    if (c->ssl)
        tls_input(c, buf->base, (size_t)nread);
    else
        conn_input(c, buf->base, (size_t)nread);
    free(buf->base);
}

static void on_deadline(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    /* Timers run before the loop reads: a request that arrived in time
     * while the loop was busy is still unread here.  One more turn lets
     * it be read (and the deadline stopped) before it is refused (1 ms:
     * a timer of 0 set in a timer's callback would run in this same turn). */
    if (c->state == CS_READING && !c->deadline_grace) {
        c->deadline_grace = true;
        uv_timer_start(&c->timer, on_deadline, 1, 0);
        return;
    }
    if (c->state == CS_READING) {
        uv_read_stop(&c->h.stream);
        http_respond_error(c, 408, "request not complete within %u ms", c->srv->deadline_ms);
    }
}

/* Root, or the socket's group as primary or supplementary group. */
static bool peer_allowed(const struct http_server *s, const struct ucred *cr)
{
    if (cr->uid == 0 || cr->gid == s->group)
        return true;
    if (s->group == 0)
        return false;
    char buf[4096];
    struct passwd pw, *res = NULL;
    if (getpwuid_r(cr->uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return false;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
        return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == s->group)
            return true;
    return false;
}

/* Closes the oldest connection still sending its request, to make room
 * for c; false when every other connection is past that. */
static bool evict_stalled(struct http_server *s, struct http_conn *c)
{
    struct http_conn *oldest = NULL;
    for (struct http_conn *o = s->conns; o; o = o->next)
        if (o != c && o->state == CS_READING && !o->closing)
            oldest = o;
    if (!oldest)
        return false;
    uv_read_stop(&oldest->h.stream);
    http_respond_error(oldest, 503, "duetd is busy and this request was not complete; try again");
    return true;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *s = server->data;
    if (status < 0)
        return;
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->srv = s;
    if (s->tcp)
        uv_tcp_init(s->loop, &c->h.tcp);
    else
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->h.stream.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(server, &c->h.stream) < 0) {
        conn_close(c);
        return;
    }
    uv_os_fd_t fd;
    socklen_t len = sizeof(c->cred);
    if (s->tcp) {
        /* Nobody in particular: root's reserve is not a network peer's. */
        c->cred = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    } else if (uv_fileno((uv_handle_t *)&c->h.stream, &fd) < 0 ||
               getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
        conn_close(c);
        return;
    }
    unsigned limit = s->max_conns;
    if (!s->tcp && c->cred.uid != 0)
        limit -= HTTP_ROOT_RESERVE;
    if (s->n_conns > limit && !evict_stalled(s, c)) {
        http_respond_error(c, 503, "too many connections to duetd; try again");
        return;
    }
    if (!s->tcp && !peer_allowed(s, &c->cred)) {
        http_respond_error(c, 403, "uid %u may not use duetd: only root and members of the socket's group may",
                           (unsigned)c->cred.uid);
        return;
    }
    if (s->tls) {
        c->ssl = SSL_new(s->tls);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio)
            abort();
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = CS_READING;
    /* The deadline counts from now, not from the start of this turn of
     * the loop (libuv's cached time), which a slow callback before this
     * one may have left far behind. */
    uv_update_time(s->loop);
    uv_timer_start(&c->timer, on_deadline, s->deadline_ms, 0);
    uv_read_start(&c->h.stream, alloc_cb, on_read);
}

int http_server_start(struct http_server *s, uv_loop_t *loop, const char *path, gid_t group, http_handler_fn fn,
                      void *opaque, struct duet_err *err)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->handler = fn;
    s->opaque = opaque;
    s->group = group;
    s->deadline_ms = HTTP_REQUEST_DEADLINE_MS;
    s->max_conns = HTTP_MAX_CONNS;
    /* A socket left by a daemon that died; the state-dir lock already
     * proved no daemon of ours runs, but the path may be shared, so only a
     * socket nobody answers on is replaced. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return duet_err_set(err, EEXIST, "%s exists and is not a socket; remove it or choose --socket", path);
        /* A killed daemon's socket can still take connections for a
         * moment, held open by a child that dies with it: ask for a second. */
        bool live = true;
        for (int tries = 0; live && tries < 10; tries++) {
            if (tries)
                usleep(100000);
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
            live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
            if (fd >= 0)
                close(fd);
        }
        if (live)
            return duet_err_set(err, EADDRINUSE, "another daemon answers on %s; stop it or choose --socket", path);
        unlink(path);
    }
    uv_pipe_init(loop, &s->listener.pipe, 0);
    s->listener.stream.data = s;
    int rc = uv_pipe_bind(&s->listener.pipe, path);
    if (rc == 0) {
        if (chmod(path, 0660) < 0 || chown(path, 0, group) < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, 128, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->listener.stream, NULL);
        errno = -rc;
        return duet_err_sys(err, "cannot listen on %s", path);
    }
    s->listening = true;
    return 0;
}

int http_server_start_tcp(struct http_server *s, uv_loop_t *loop, const char *addr, http_handler_fn fn,
                          void *opaque, struct duet_err *err)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->handler = fn;
    s->opaque = opaque;
    s->tcp = true;
    s->deadline_ms = HTTP_REQUEST_DEADLINE_MS;
    s->max_conns = HTTP_MAX_CONNS;
    struct sockaddr_storage sa;
    if (listen_addr_parse(addr, &sa, err) < 0)
        return -1;
    uv_tcp_init(loop, &s->listener.tcp);
    s->listener.stream.data = s;
    int rc = uv_tcp_bind(&s->listener.tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen(&s->listener.stream, 128, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->listener.stream, NULL);
        return duet_err_set(err, -rc, "cannot listen on %s: %s%s", addr, uv_strerror(rc),
                            rc == UV_EADDRINUSE ? "; another program has that port, choose another" : "");
    }
    s->listening = true;
    return 0;
}

/* OpenSSL's reason for the last failure, for a message. */
static const char *tls_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown reason";
}

int http_server_use_tls(struct http_server *s, const char *cert_file, const char *key_file, struct duet_err *err)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return duet_err_set(err, ENOMEM, "cannot set up TLS: %s", tls_reason());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Each connection's session is its own; nothing to resume across. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    int rc = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        rc = duet_err_set(err, EINVAL, "certificate %s: %s; give a PEM file with the certificate (and its chain)",
                          cert_file, tls_reason());
    else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        rc = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH
                 ? duet_err_set(err, EINVAL, "key %s is not the key of certificate %s", key_file, cert_file)
                 : duet_err_set(err, EINVAL, "key %s: %s; give the certificate's private key as a PEM file",
                                key_file, tls_reason());
    else if (SSL_CTX_check_private_key(ctx) != 1)
        rc = duet_err_set(err, EINVAL, "key %s is not the key of certificate %s", key_file, cert_file);
    ERR_clear_error();
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    if (s->tls)
        SSL_CTX_free(s->tls);
    s->tls = ctx;
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener.stream, NULL);
        s->listening = false;
    }
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

bool http_query_get(const char *query, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= klen && strncmp(p, key, klen) == 0 && (n == klen || p[klen] == '=')) {
            const char *v = n == klen ? "" : p + klen + 1;
            size_t vn = n == klen ? 0 : n - klen - 1;
            /* Percent-decoding: values here are names and numbers. */
            size_t o = 0;
            for (size_t i = 0; i < vn && o + 1 < len; i++) {
                if (v[i] == '%' && i + 2 < vn && isxdigit((unsigned char)v[i + 1]) &&
                    isxdigit((unsigned char)v[i + 2])) {
                    char hex[3] = {v[i + 1], v[i + 2], '\0'};
                    buf[o++] = (char)strtoul(hex, NULL, 16);
                    i += 2;
                    continue;
                }
                buf[o++] = v[i] == '+' ? ' ' : v[i];
            }
            buf[o] = '\0';
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}
