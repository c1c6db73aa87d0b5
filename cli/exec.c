/*
 * exec.c - `duet exec -i` and `-t`, and `duet run -i` and `-t`: the
 * command's input from ours, and a terminal of the workload's own, over
 * the upgraded connection of common/execwire.h.
 *
 * With -it our terminal is put in raw mode (every key goes to the
 * command, ^C included, which the workload's terminal turns into SIGINT
 * there) and given back as it was on every way out; with -t its size is
 * sent at the start and on each SIGWINCH.  Output is written as it comes; the exit status
 * is the command's.  When our input ends, the command's input ends ('c');
 * with a terminal the workload's end-of-file character goes instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/verbs.h"
#include "common/execwire.h"
#include "common/fdio.h"
#include <sys/socket.h>

/* The one piece of process-wide state: a signal handler can reach nothing
 * else.  The terminal as it was, to give back, and the self-pipe SIGWINCH
 * writes to. */
static struct {
    struct termios saved;
    bool raw;
    int winch_w;
} term = {.winch_w = -1};

static void term_restore(void)
{
    if (term.raw) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &term.saved);
        term.raw = false;
    }
}

static void on_winch(int sig)
{
    (void)sig;
    int e = errno;
    if (term.winch_w >= 0 && write(term.winch_w, "w", 1) < 0) {
        /* a full pipe has a resize pending already */
    }
    errno = e;
}

/* Frames for the daemon wait here until the socket takes them: the loop
 * never blocks on a send, so the command's output is always read (a
 * daemon that holds our input back while we hold its output back would
 * wait for ever).  Input is read only when this is empty, which bounds it. */
struct outq {
    uint8_t *buf;
    size_t len, off, cap;
};

static void queue_frame(struct outq *q, uint8_t type, const void *data, size_t len)
{
    if (q->off && q->off == q->len)
        q->off = q->len = 0;
    size_t need = q->len + EXECWIRE_HDR + len;
    if (need > q->cap) {
        size_t cap = need * 2;
        uint8_t *b = realloc(q->buf, cap);
        if (!b)
            abort();
        q->buf = b;
        q->cap = cap;
    }
    execwire_hdr_put(q->buf + q->len, type, (uint32_t)len);
    if (len)
        memcpy(q->buf + q->len + EXECWIRE_HDR, data, len);
    q->len = need;
}

/* Sends what the socket takes now; false when the daemon is gone. */
static bool queue_flush(struct outq *q, int fd)
{
    while (q->off < q->len) {
        ssize_t n = send(fd, q->buf + q->off, q->len - q->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        q->off += (size_t)n;
    }
    return true;
}

static void queue_size(struct outq *q)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
        return;
    uint8_t d[4] = {(uint8_t)(ws.ws_row >> 8), (uint8_t)ws.ws_row, (uint8_t)(ws.ws_col >> 8), (uint8_t)ws.ws_col};
    queue_frame(q, EXECWIRE_WINSIZE, d, sizeof(d));
}

/* Frames from the daemon in buf[0..*len): handled and removed; the status
 * once it came (*done), -2 for a broken stream. */
static int take_frames(uint8_t *buf, size_t *len, bool *done)
{
    size_t off = 0;
    int status = 0;
    while (*len - off >= EXECWIRE_HDR) {
        uint8_t type = buf[off];
        uint32_t n = execwire_hdr_len(buf + off);
        if (!execwire_valid(type, n, 0))
            return -2;
        if (*len - off < EXECWIRE_HDR + n)
            break;
        const uint8_t *d = buf + off + EXECWIRE_HDR;
        if (type == EXECWIRE_OUT)
            duet_write_full(STDOUT_FILENO, d, n);
        else if (type == EXECWIRE_ERR)
            duet_write_full(STDERR_FILENO, d, n);
        else if (type == EXECWIRE_FAIL) {
            term_restore();
            fprintf(stderr, "duet: ");
            for (uint32_t i = 0; i < n; i++)
                fputc(d[i] >= 0x20 && d[i] < 0x7f ? d[i] : '?', stderr);
            fputc('\n', stderr);
        } else if (type == EXECWIRE_STATUS) {
            status = (int)(((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3]);
            *done = true;
        }
        off += EXECWIRE_HDR + n;
        if (*done)
            break;
    }
    memmove(buf, buf + off, *len - off);
    *len -= off;
    return status;
}

int cli_exec_interactive(const char *sock, const char *path, json_t *req, bool in, bool tty, int broken_code)
{
    if (tty && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "duet: -t needs a terminal, and standard input is not one; give -i alone to pass input "
                        "from a pipe or file\n");
        return 2;
    }
    struct winsize ws = {0};
    if (tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
        json_object_set_new(req, "rows", json_integer(ws.ws_row));
        json_object_set_new(req, "cols", json_integer(ws.ws_col));
    }
    json_object_set_new(req, "stdin", json_boolean(in));
    json_object_set_new(req, "tty", json_boolean(tty));
    char *body = json_dumps(req, JSON_COMPACT);
    struct client_buf left = {0}, errb = {0};
    struct duet_err err = {0};
    int fd = -1;
    int status = client_upgrade(sock, path, body, strlen(body), EXECWIRE_PROTOCOL, &fd, &left, &errb, &err);
    free(body);
    if (status < 0) {
        free(left.data);
        free(errb.data);
        return cli_unreachable(&err);
    }
    if (status != 101) {
        if (errb.data)
            errb.data[errb.len < errb.cap ? errb.len : errb.cap - 1] = '\0';
        int rc = cli_refused(errb.data ? errb.data : "");
        free(left.data);
        free(errb.data);
        return rc;
    }
    free(errb.data);

    int winch[2] = {-1, -1};
    /* The size follows ours with -t; our keys go raw only with -i too
     * (without it, ^C is ours: it ends this client). */
    if (tty && pipe2(winch, O_CLOEXEC | O_NONBLOCK) == 0) {
        term.winch_w = winch[1];
        struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
        sigaction(SIGWINCH, &sa, NULL);
    }
    if (tty && in) {
        if (tcgetattr(STDIN_FILENO, &term.saved) == 0) {
            struct termios raw = term.saved;
            cfmakeraw(&raw);
            if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0) {
                term.raw = true;
                atexit(term_restore);
            }
        }
    }
    struct outq q = {0};
    if (tty)
        queue_size(&q);
    size_t cap = EXECWIRE_HDR + EXECWIRE_DATA_MAX, len = 0;
    uint8_t *buf = malloc(cap), *inbuf = malloc(EXECWIRE_DATA_MAX);
    if (!buf || !inbuf)
        abort();
    bool done = false, stdin_open = in, broken = false;
    int code = 0;
    if (left.len) {
        memcpy(buf, left.data, left.len < cap ? left.len : cap);
        len = left.len < cap ? left.len : cap;
        code = take_frames(buf, &len, &done);
        broken = code == -2;
    }
    free(left.data);
    while (!done && !broken) {
        bool pending = q.off < q.len;
        struct pollfd p[3] = {{.fd = fd, .events = (short)(POLLIN | (pending ? POLLOUT : 0))},
                              {.fd = stdin_open && !pending ? STDIN_FILENO : -1, .events = POLLIN},
                              {.fd = winch[0], .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents & POLLIN) {
            char drainbuf[64];
            while (read(winch[0], drainbuf, sizeof(drainbuf)) > 0)
                ;
            queue_size(&q);
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(STDIN_FILENO, inbuf, EXECWIRE_DATA_MAX);
            if (n > 0) {
                queue_frame(&q, EXECWIRE_IN, inbuf, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                stdin_open = false;
                queue_frame(&q, EXECWIRE_IN_END, NULL, 0);
            }
        }
        if (q.off < q.len && !queue_flush(&q, fd))
            stdin_open = false;   /* the daemon's end is gone: what it said is still read below */
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, buf + len, cap - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
            code = take_frames(buf, &len, &done);
            broken = code == -2;
        }
    }
    term_restore();
    free(q.buf);
    free(buf);
    free(inbuf);
    close(fd);
    if (winch[0] >= 0) {
        signal(SIGWINCH, SIG_DFL);
        term.winch_w = -1;
        close(winch[0]);
        close(winch[1]);
    }
    if (broken) {
        fprintf(stderr, "duet: duetd's exec stream broke its protocol\n");
        return broken_code;
    }
    if (!done) {
        fprintf(stderr, "duet: the connection to duetd ended before the command did\n");
        return broken_code;
    }
    return code < 0 ? broken_code : code;
}
