/*
 * client.c - blocking API client for the duet CLI (see client.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

#include "client.h"
#include "common/fdio.h"
#include "common/grow.h"

#define CLIENT_DEFAULT_SOCKET "/run/duet/duet.sock"

const char *client_socket_path(const char *given)
{
    if (given && *given)
        return given;
    const char *e = getenv("DUET_SOCKET");
    return e && *e ? e : CLIENT_DEFAULT_SOCKET;
}

static int collect(void *opaque, const char *data, size_t len);

struct reader {
    struct client_buf *err_body;
    struct client_buf *whole;   /* the body is collected here: sized once from Content-Length */
    client_body_fn fn;
    void *opaque;
    int stopped;
    int done;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct reader *r = p->data;
    if (p->status_code >= 300) {
        if (r->err_body && r->err_body->len < (64u << 10))
            collect(r->err_body, at, len);
        return 0;
    }
    if (r->fn && r->fn(r->opaque, at, len) != 0) {
        r->stopped = 1;
        return 1;
    }
    return 0;
}

/* A buffer grown by doubling touches, and copies, about twice what it
 * ends up holding; a fleet's list is 160 KB or more, and each page first
 * touched is a page fault.  One allocation of the announced size instead
 * (bounded: the length is duetd's word, and the buffer still grows if
 * the body turns out longer). */
static int on_headers(http_parser *p)
{
    struct reader *r = p->data;
    if (r->whole && p->status_code < 300 && p->content_length != ULLONG_MAX &&
        p->content_length < (64u << 20) && r->whole->cap < p->content_length + 1) {
        size_t n = p->content_length + 1;
        char *d = realloc(r->whole->data, n);
        if (d) {
            r->whole->data = d;
            r->whole->cap = n;
            /* Faulted in by one call rather than a fault per page as the
             * body is copied in (over 20 µs each on a paravirtualized
             * host); a kernel before 5.14 refuses, and faults them as before. */
            uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
            uintptr_t a = ((uintptr_t)d + pg - 1) & ~(pg - 1), e = ((uintptr_t)d + n) & ~(pg - 1);
            if (e > a)
                madvise((void *)a, e - a, MADV_POPULATE_WRITE);
        }
    }
    return 0;
}

static int on_complete(http_parser *p)
{
    struct reader *r = p->data;
    r->done = 1;
    return 0;
}

/* A connection to duetd with the request sent; the fd, or -1 with err. */
static int send_request(const char *socket_path, const char *method, const char *path, const char *extra_headers,
                        const char *body, size_t body_len, struct duet_err *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return duet_err_sys(err, "cannot make a socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        close(fd);
        return duet_err_set(err, ENAMETOOLONG, "socket path %s is too long", socket_path);
    }
    strcpy(sa.sun_path, socket_path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        if (e == EACCES)
            return duet_err_sys(err, "cannot connect to duetd at %s: only root and the socket's group may", socket_path);
        return duet_err_sys(err, "cannot connect to duetd at %s; is it running? (start it with duetd, or set "
                                 "--socket / DUET_SOCKET)", socket_path);
    }
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: duet\r\nUser-Agent: duet-cli\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, body_len, extra_headers);
    if ((size_t)n >= sizeof(head)) {
        close(fd);
        return duet_err_set(err, EINVAL, "request path too long");
    }
    if (!duet_send_full(fd, head, (size_t)n) || (body_len && !duet_send_full(fd, body, body_len))) {
        int e = errno;
        close(fd);
        errno = e;
        return duet_err_sys(err, "cannot send the request to duetd");
    }
    return fd;
}

/* Reads the answer to the request sent on fd, which it closes, until the
 * end of the answer (or fn stopped it); with leftover, an answer 101 to
 * an upgrade stops the reading instead, fd left open in *upgraded and
 * what came after the head in leftover.  The status, or -1 with err. */
static int read_answer(int fd, const char *socket_path, struct reader *r, int timeout_ms,
                       struct client_buf *leftover, int *upgraded, struct duet_err *err)
{
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = r;
    http_parser_settings s = {.on_headers_complete = on_headers, .on_body = on_body, .on_message_complete = on_complete};
    char buf[65536];
    for (;;) {
        if (timeout_ms > 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                close(fd);
                return duet_err_set(err, ETIMEDOUT, "duetd at %s took the request but did not answer within %d s",
                                    socket_path, timeout_ms / 1000);
            }
        }
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return duet_err_sys(err, "cannot read duetd's answer");
        }
        size_t used = http_parser_execute(&p, &s, buf, (size_t)got);
        if (leftover && p.upgrade && p.status_code == 101) {
            /* What follows the answer's head is the new protocol's. */
            if (used < (size_t)got)
                collect(leftover, buf + used, (size_t)got - used);
            *upgraded = fd;
            return 101;
        }
        if (r->stopped || r->done)
            break;
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK) {
            close(fd);
            return duet_err_set(err, EPROTO, "duetd's answer is not valid HTTP: %s",
                                http_errno_description(HTTP_PARSER_ERRNO(&p)));
        }
        if (got == 0) {
            close(fd);
            return duet_err_set(err, EPIPE, "duetd closed the connection before answering");
        }
    }
    close(fd);
    return (int)p.status_code;
}

int client_upgrade(const char *socket_path, const char *path, const char *body, size_t body_len,
                   const char *protocol, int *fd_out, struct client_buf *leftover, struct client_buf *err_body,
                   struct duet_err *err)
{
    *fd_out = -1;
    socket_path = client_socket_path(socket_path);
    char headers[160];
    snprintf(headers, sizeof(headers), "Connection: Upgrade\r\nUpgrade: %s\r\n", protocol);
    int fd = send_request(socket_path, "POST", path, headers, body, body_len, err);
    if (fd < 0)
        return -1;
    struct reader r = {.err_body = err_body};
    return read_answer(fd, socket_path, &r, CLIENT_TIMEOUT_MS, leftover, fd_out, err);
}

int client_call(const char *socket_path, const char *method, const char *path, const char *body, size_t body_len,
                client_body_fn fn, void *opaque, struct client_buf *err_body, int timeout_ms, struct duet_err *err)
{
    socket_path = client_socket_path(socket_path);
    int fd = send_request(socket_path, method, path, "Connection: close\r\n", body, body_len, err);
    if (fd < 0)
        return -1;
    struct reader r = {.fn = fn, .opaque = opaque, .err_body = err_body};
    if (fn == collect)
        r.whole = opaque;
    return read_answer(fd, socket_path, &r, timeout_ms, NULL, NULL, err);
}

static int collect(void *opaque, const char *data, size_t len)
{
    struct client_buf *b = opaque;
    GROW(b->data, b->cap, b->len + len + 1);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int client_call_buf(const char *socket_path, const char *method, const char *path, const char *body,
                    size_t body_len, struct client_buf *buf, int timeout_ms, struct duet_err *err)
{
    collect(buf, "", 0);
    return client_call(socket_path, method, path, body, body_len, collect, buf, buf, timeout_ms, err);
}

int client_lines_feed(void *opaque, const char *data, size_t len)
{
    struct client_lines *l = opaque;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (l->n + 1 < sizeof(l->buf))
                l->buf[l->n++] = data[i];
            else
                l->overflow = true;
            continue;
        }
        l->buf[l->n] = '\0';
        json_t *j = l->overflow ? NULL : json_loads(l->buf, 0, NULL);
        l->n = 0;
        l->overflow = false;
        l->fn(l->opaque, j);
    }
    return 0;
}
