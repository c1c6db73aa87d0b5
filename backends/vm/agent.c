/*
 * agent.c - the host's end of a rootfs VM's agent (agent.h).
 *
 * Lifetimes.  A connection is its own allocation (struct conn): breaking
 * one closes its pipe and forgets it, and its libuv callbacks, which may
 * still come, find it orphaned and do nothing.  The agent itself is
 * counted: one reference for its owner, one for each command's timer
 * while open, one held across a read so that a callback which frees the
 * agent (a failed health check restarts the VM) leaves it valid until
 * the read returns.
 *
 * A command with input ('X') also holds handles that watch the caller's
 * fds: its input (read while the guest has room: the window, reopened by
 * its acknowledgements), its resizes, and its output fds while a frame
 * waits for room in them; the guest is granted more output only as what
 * it sent is written.  The command is freed once every handle closed.
 */
#include "agent.h"
#include "backends/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* ---- frames from the guest ---------------------------------------------------------------------- */

void vm_agent_rx_init(struct vm_agent_rx *rx)
{
    rx->hdr_got = 0;
    rx->got = 0;
}

int vm_agent_rx_feed(struct vm_agent_rx *rx, const uint8_t *buf, size_t n, vm_agent_frame_cb cb, void *opaque,
                     const char **why)
{
    while (n > 0) {
        if (rx->hdr_got < VM_AGENT_HDR) {
            size_t take = VM_AGENT_HDR - rx->hdr_got < n ? VM_AGENT_HDR - rx->hdr_got : n;
            memcpy(rx->hdr + rx->hdr_got, buf, take);
            rx->hdr_got += take;
            buf += take;
            n -= take;
            if (rx->hdr_got < VM_AGENT_HDR)
                return 0;
            vm_agent_hdr_get(rx->hdr, &rx->type, &rx->id, &rx->len);
            rx->got = 0;
            bool data = rx->type == VM_AGENT_OUT || rx->type == VM_AGENT_ERR;
            if (rx->hdr[1] != 0 || (!data && rx->type != VM_AGENT_STATUS && rx->type != VM_AGENT_ACK)) {
                *why = "a frame of no known type";
                return -1;
            }
            if (data ? rx->len == 0 || rx->len > VM_AGENT_DATA_MAX : rx->len != 4) {
                *why = "a frame of the wrong size";
                return -1;
            }
        }
        size_t take = rx->len - rx->got < n ? rx->len - rx->got : n;
        memcpy(rx->data + rx->got, buf, take);
        rx->got += (uint32_t)take;
        buf += take;
        n -= take;
        if (rx->got < rx->len)
            return 0;
        rx->hdr_got = 0;
        if (!cb(opaque, rx->type, rx->id, rx->data, rx->len))
            return 0;
    }
    return 0;
}

/* ---- the agent ------------------------------------------------------------------------------------- */

struct conn;

/* Output of an 'X' command waiting for room in the caller's fd. */
struct pend {
    struct pend *next;
    uint32_t len, off;
    uint8_t data[];
};

struct out_q {
    int fd;
    uv_poll_t poll;
    bool polling;
    struct pend *head, **tail;
};

struct cmd {
    struct cmd *next;
    struct vm_agent *a;
    uint16_t id;
    int out_fd, err_fd;
    uv_timer_t timer;
    bool killed;
    uint8_t *frame;            /* the request, until it is written */
    size_t frame_len;
    vm_agent_exited_cb exited;
    void *opaque;
    int handles;               /* open: the timer, and an 'X' command's polls */
    bool ended;
    /* an 'X' command */
    bool io, started;          /* started: its request went */
    bool attach;               /* an 'A': the workload's own command, let go of, never killed */
    int in_fd, ctl_fd;
    uv_poll_t in_poll, ctl_poll;
    bool in_polling, in_done, ctl_open;
    uint32_t in_credit;        /* input the guest has room for */
    uint64_t in_unacked;       /* sent and not yet acknowledged */
    uint32_t out_room;         /* output the guest may still send */
    struct out_q q[2];         /* stdout, stderr */
    bool status_held;          /* its status came before its output was written */
    int status;
};

enum conn_state { CONN_NONE, CONN_CONNECTING, CONN_UP };

struct vm_agent {
    uv_loop_t *loop;
    int refs;
    bool freed;                /* its owner let go */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char name[128];
    struct conn *conn;         /* NULL: none */
    enum conn_state state;
    uint16_t next_id;
    struct cmd *cmds;
    uint64_t stray;            /* bytes for no command since the last one began */
    struct vm_agent_rx rx;
};

struct conn {
    uv_pipe_t pipe;
    uv_connect_t req;
    struct vm_agent *a;        /* NULL once broken */
    uint8_t buf[VM_AGENT_DATA_MAX + VM_AGENT_HDR];
};

struct wreq {
    uv_write_t req;
    uint8_t *data;
    struct conn *c;
};

static void agent_unref(struct vm_agent *a)
{
    if (--a->refs == 0)
        free(a);
}

struct vm_agent *vm_agent_new(uv_loop_t *loop, const char *socket, const char *name)
{
    struct vm_agent *a = calloc(1, sizeof(*a));
    if (!a)
        abort();
    a->loop = loop;
    a->refs = 1;
    snprintf(a->path, sizeof(a->path), "%s", socket);
    snprintf(a->name, sizeof(a->name), "%s", name);
    vm_agent_rx_init(&a->rx);
    return a;
}

static void say(int fd, const char *msg)
{
    if (fd < 0)
        return;
    for (size_t n = strlen(msg); n > 0;) {
        ssize_t w = write(fd, msg, n);
        if (w <= 0)
            return;   /* a full buffer: the rest is lost, as the command's own would be */
        msg += w;
        n -= (size_t)w;
    }
}

static void cmd_handle_closed(uv_handle_t *h)
{
    struct cmd *c = h->data;
    if (--c->handles > 0)
        return;
    struct vm_agent *a = c->a;
    for (int i = 0; i < 2; i++)
        while (c->q[i].head) {
            struct pend *p = c->q[i].head;
            c->q[i].head = p->next;
            free(p);
        }
    free(c->frame);
    free(c);
    agent_unref(a);
}

static void cmd_close(uv_handle_t *h)
{
    if (h->data && !uv_is_closing(h))
        uv_close(h, cmd_handle_closed);
}

/* Reports c and forgets it. */
static void cmd_end(struct cmd *c, int status, const char *why)
{
    struct vm_agent *a = c->a;
    for (struct cmd **p = &a->cmds; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->ended = true;
    if (why) {
        char msg[768];
        snprintf(msg, sizeof(msg), "duet: VM %s: %s\n", a->name, why);
        say(c->err_fd, msg);
    }
    vm_agent_exited_cb exited = c->exited;
    void *opaque = c->opaque;
    /* An 'X' command's polls, those made (data set). */
    cmd_close((uv_handle_t *)&c->in_poll);
    cmd_close((uv_handle_t *)&c->ctl_poll);
    cmd_close((uv_handle_t *)&c->q[0].poll);
    cmd_close((uv_handle_t *)&c->q[1].poll);
    cmd_close((uv_handle_t *)&c->timer);
    exited(opaque, status);
}

static struct cmd *cmd_find(struct vm_agent *a, uint16_t id)
{
    for (struct cmd *c = a->cmds; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Breaks the connection; the commands waiting on it end with why. */
static void conn_break(struct vm_agent *a, const char *why)
{
    struct conn *c = a->conn;
    if (c) {
        c->a = NULL;
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
    }
    a->conn = NULL;
    a->state = CONN_NONE;
    vm_agent_rx_init(&a->rx);
    while (a->cmds)
        cmd_end(a->cmds, -1, why);
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = req->data;
    struct conn *c = w->c;
    free(w->data);
    free(w);
    if (status < 0 && c->a) {
        char why[160];
        snprintf(why, sizeof(why), "cannot write to its agent (%s)", uv_strerror(status));
        conn_break(c->a, why);
    }
}

/* Sends data (taken over) on the connection, which is up. */
static int send_bytes(struct vm_agent *a, uint8_t *data, size_t len)
{
    struct wreq *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->data = data;
    w->c = a->conn;
    w->req.data = w;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&a->conn->pipe, &b, 1, on_written);
    if (rc < 0) {
        free(data);
        free(w);
    }
    return rc;
}

/* ---- an 'X' command's input and output ----------------------------------------------------- */

static void send_frame(struct vm_agent *a, uint8_t type, uint16_t id, const void *data, uint32_t len)
{
    if (a->state != CONN_UP)
        return;
    uint8_t *f = malloc(VM_AGENT_HDR + len);
    if (!f)
        abort();
    vm_agent_hdr_put(f, type, id, len);
    if (len)
        memcpy(f + VM_AGENT_HDR, data, len);
    send_bytes(a, f, VM_AGENT_HDR + len);
}

static void send_u32(struct vm_agent *a, uint8_t type, uint16_t id, uint32_t v)
{
    uint8_t b[4];
    vm_agent_u32_put(b, v);
    send_frame(a, type, id, b, 4);
}

static void on_input(uv_poll_t *h, int status, int events);

/* Input is read while the guest has room for it. */
static void cmd_input_watch(struct cmd *c)
{
    bool want = c->started && !c->ended && !c->in_done && c->in_credit > 0;
    if (want && !c->in_polling)
        c->in_polling = uv_poll_start(&c->in_poll, UV_READABLE, on_input) == 0;
    else if (!want && c->in_polling) {
        uv_poll_stop(&c->in_poll);
        c->in_polling = false;
    }
}

static void on_input(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct cmd *c = h->data;
    static uint8_t buf[VM_AGENT_DATA_MAX];
    size_t want = c->in_credit < sizeof(buf) ? c->in_credit : sizeof(buf);
    ssize_t n = status < 0 || !want ? 0 : read(c->in_fd, buf, want);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->in_done = true;
        send_frame(c->a, VM_AGENT_INPUT_END, c->id, NULL, 0);
    } else {
        c->in_credit -= (uint32_t)n;
        c->in_unacked += (uint64_t)n;
        send_frame(c->a, VM_AGENT_INPUT, c->id, buf, (uint32_t)n);
    }
    cmd_input_watch(c);
}

/* A resize, or the client gone (the end of the control pipe): then the
 * command is killed, as at its timeout. */
static void on_timeout(uv_timer_t *t);

static void on_ctl(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct cmd *c = h->data;
    struct driver_winsize ws;
    ssize_t n;
    while (status == 0 && (n = read(c->ctl_fd, &ws, sizeof(ws))) == (ssize_t)sizeof(ws)) {
        uint8_t b[4] = {(uint8_t)(ws.rows >> 8), (uint8_t)ws.rows, (uint8_t)(ws.cols >> 8), (uint8_t)ws.cols};
        send_frame(c->a, VM_AGENT_WINSIZE, c->id, b, 4);
    }
    if (status == 0 && n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    uv_poll_stop(&c->ctl_poll);
    if (c->attach) {
        /* The workload runs on without its client. */
        send_frame(c->a, VM_AGENT_DETACH, c->id, NULL, 0);
        cmd_end(c, -1, NULL);
        return;
    }
    if (!c->killed) {
        uv_timer_stop(&c->timer);
        on_timeout(&c->timer);
    }
}

static void on_out_writable(uv_poll_t *h, int status, int events);

/* Writes what waits for fd i; true when nothing does any more.  Each
 * frame written whole gives the guest room for as much again. */
static bool out_drain(struct cmd *c, int i)
{
    struct out_q *q = &c->q[i];
    while (q->head) {
        struct pend *p = q->head;
        ssize_t w = write(q->fd, p->data + p->off, p->len - p->off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return false;
        if (w <= 0) {
            /* The caller's end is gone: nobody reads it, it is all taken. */
            p->off = p->len;
        } else {
            p->off += (uint32_t)w;
        }
        if (p->off < p->len)
            continue;
        q->head = p->next;
        if (!q->head)
            q->tail = &q->head;
        c->out_room += p->len;
        send_u32(c->a, VM_AGENT_GRANT, c->id, p->len);
        free(p);
    }
    return true;
}

static void out_settle(struct cmd *c, int i)
{
    struct out_q *q = &c->q[i];
    bool empty = out_drain(c, i);
    if (!empty && !q->poll.data) {
        /* Only a pipe or a socket fills up, and epoll takes both. */
        if (uv_poll_init(c->a->loop, &q->poll, q->fd) < 0)
            abort();
        q->poll.data = c;
        c->handles++;
    }
    if (!empty && !q->polling)
        q->polling = uv_poll_start(&q->poll, UV_WRITABLE, on_out_writable) == 0;
    else if (empty && q->polling) {
        uv_poll_stop(&q->poll);
        q->polling = false;
    }
    if (c->status_held && !c->q[0].head && !c->q[1].head)
        cmd_end(c, c->status, NULL);
}

static void on_out_writable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct cmd *c = h->data;
    out_settle(c, h == &c->q[0].poll ? 0 : 1);
}

static void cmd_output(struct cmd *c, int i, const uint8_t *data, uint32_t len)
{
    struct pend *p = malloc(sizeof(*p) + len);
    if (!p)
        abort();
    p->next = NULL;
    p->len = len;
    p->off = 0;
    memcpy(p->data, data, len);
    *c->q[i].tail = p;
    c->q[i].tail = &p->next;
    out_settle(c, i);
}

/* The request went: input and resizes may follow it. */
static void cmd_io_start(struct cmd *c)
{
    c->started = true;
    if (c->ctl_open)
        uv_poll_start(&c->ctl_poll, UV_READABLE, on_ctl);
    cmd_input_watch(c);
}

static bool on_frame(void *opaque, uint8_t type, uint16_t id, const uint8_t *data, uint32_t len)
{
    struct vm_agent *a = opaque;
    struct conn *cur = a->conn;
    struct cmd *c = cmd_find(a, id);
    if (!c) {
        /* A killed command's last words, or a guest talking to itself. */
        a->stray += len;
        if (a->stray > VM_AGENT_STRAY_MAX) {
            conn_break(a, "its agent sent more than 1 MiB for no command; the connection was closed");
            return false;
        }
        return true;
    }
    if (type == VM_AGENT_ACK) {
        uint32_t took = vm_agent_u32_get(data);
        if (!c->io || took > c->in_unacked) {
            conn_break(a, "its agent acknowledged input it was never sent; the connection was closed");
            return false;
        }
        c->in_unacked -= took;
        c->in_credit += took;
        cmd_input_watch(c);
    } else if (type == VM_AGENT_STATUS) {
        int32_t st = (int32_t)vm_agent_u32_get(data);
        /* A status is 0..255, 128+N for a signal, or -1. */
        st = st >= -1 && st <= 255 + 128 ? (int)st : -1;
        if (c->attach)
            send_frame(a, VM_AGENT_DETACH, id, NULL, 0);   /* the guest may power off: we have it */
        if (c->io && (c->q[0].head || c->q[1].head)) {
            c->status_held = true;   /* after its output */
            c->status = st;
        } else {
            cmd_end(c, st, NULL);
        }
    } else if (c->io) {
        if (len > c->out_room) {
            conn_break(a, "its agent sent more output than it was given room for; the connection was closed");
            return false;
        }
        c->out_room -= len;
        cmd_output(c, type == VM_AGENT_OUT ? 0 : 1, data, len);
    } else {
        int fd = type == VM_AGENT_OUT ? c->out_fd : c->err_fd;
        /* Past what the caller's buffer takes, writes fail: the rest is
         * dropped, as a container's would be. */
        for (uint32_t off = 0; off < len;) {
            ssize_t w = write(fd, data + off, len - off);
            if (w <= 0)
                break;
            off += (uint32_t)w;
        }
    }
    return a->conn == cur;
}

static uv_buf_t *alloc_for(uv_handle_t *h, uv_buf_t *b)
{
    struct conn *c = h->data;
    *b = uv_buf_init((char *)c->buf, sizeof(c->buf));
    return b;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    alloc_for(h, b);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    struct vm_agent *a = c->a;
    if (!a || n == 0)
        return;
    if (n < 0) {
        conn_break(a, n == UV_EOF ? "its agent's channel closed (the guest stopped or restarted)"
                                  : "reading from its agent failed");
        return;
    }
    a->refs++;
    const char *why = NULL;
    if (vm_agent_rx_feed(&a->rx, (const uint8_t *)b->base, (size_t)n, on_frame, a, &why) < 0 && a->conn == c) {
        char msg[160];
        snprintf(msg, sizeof(msg), "its agent sent %s, which is not duet's protocol; the connection was closed", why);
        conn_break(a, msg);
    }
    agent_unref(a);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct vm_agent *a = c->a;
    if (!a)
        return;
    if (status < 0) {
        char why[512];
        if (status == UV_ENOENT)
            snprintf(why, sizeof(why), "it has no agent socket (%s): it has stopped, or was started by a duet "
                                       "without agents; recreate it (duet delete %s, then apply)", a->path, a->name);
        else
            snprintf(why, sizeof(why), "cannot connect to its agent at %s (%s)", a->path, uv_strerror(status));
        conn_break(a, why);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (rc < 0) {
        conn_break(a, "cannot read from its agent");
        return;
    }
    a->state = CONN_UP;
    /* Oldest first, as they were asked. */
    struct cmd *order[64];
    size_t n = 0;
    for (struct cmd *k = a->cmds; k && n < sizeof(order) / sizeof(order[0]); k = k->next)
        order[n++] = k;
    while (n-- > 0) {
        struct cmd *k = order[n];
        uint8_t *f = k->frame;
        k->frame = NULL;
        /* One killed before it was sent is not started at all; its
         * timer ends it. */
        if (f && k->killed) {
            free(f);
        } else if (f) {
            send_bytes(a, f, k->frame_len);
            if (k->io)
                cmd_io_start(k);
        }
    }
}

static int conn_open(struct vm_agent *a, struct duet_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    int rc = uv_pipe_init(a->loop, &c->pipe, 0);
    if (rc < 0) {
        free(c);
        return duet_err_set(err, -rc, "VM %s: cannot reach its agent (%s)", a->name, uv_strerror(rc));
    }
    c->a = a;
    c->pipe.data = c;
    c->req.data = c;
    uv_pipe_connect(&c->req, &c->pipe, a->path, on_connect);
    a->conn = c;
    a->state = CONN_CONNECTING;
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct cmd *c = t->data;
    if (c->killed) {
        cmd_end(c, 137, "the command did not end when killed at its timeout");
        return;
    }
    c->killed = true;
    send_frame(c->a, VM_AGENT_KILL, c->id, NULL, 0);
    uv_timer_start(&c->timer, on_timeout, VM_AGENT_KILL_GRACE_MS, 0);
}

/* The command's request, queued or sent; io: an 'X' command's ends;
 * argv NULL with io: an 'A', the workload's own command. */
static int cmd_start(struct vm_agent *a, const char *const *argv, int out_fd, int err_fd,
                     const struct driver_exec_io *io, uint64_t timeout_ms, vm_agent_exited_cb exited, void *opaque,
                     struct duet_err *err)
{
    bool attach = io && !argv;
    if (!attach && (!argv || !argv[0] || !argv[0][0]))
        return duet_err_set(err, EINVAL, "VM %s: exec needs a command", a->name);
    size_t len = 0, count = 0;
    for (const char *const *p = argv; p && *p; p++, count++)
        len += strlen(*p) + 1;
    if (len > VM_AGENT_REQ_MAX - VM_AGENT_IO_HEAD)
        return duet_err_set(err, E2BIG,
                            "VM %s: the command's %zu arguments take %zu bytes, more than the 2 MiB a command "
                            "may have; pass the data through a file or a volume instead",
                            a->name, count, len);
    size_t cmds = 0;
    for (struct cmd *k = a->cmds; k; k = k->next)
        cmds++;
    if (cmds >= 64)
        return duet_err_set(err, EBUSY, "VM %s: 64 commands wait on its agent already; try again later", a->name);
    uint16_t id = a->next_id;
    while (cmd_find(a, id))
        id++;
    a->next_id = (uint16_t)(id + 1);
    size_t head = io ? VM_AGENT_IO_HEAD : 0;
    struct cmd *c = calloc(1, sizeof(*c));
    uint8_t *frame = malloc(VM_AGENT_HDR + head + len);
    if (!c || !frame)
        abort();
    vm_agent_hdr_put(frame, attach ? VM_AGENT_ATTACH : io ? VM_AGENT_RUN_IO : VM_AGENT_RUN, id,
                     (uint32_t)(head + len));
    uint8_t *p = frame + VM_AGENT_HDR;
    if (io) {
        *p++ = io->tty ? VM_AGENT_IO_TTY : 0;
        *p++ = 0;
        *p++ = (uint8_t)(io->rows >> 8);
        *p++ = (uint8_t)io->rows;
        *p++ = (uint8_t)(io->cols >> 8);
        *p++ = (uint8_t)io->cols;
    }
    for (const char *const *s = argv; s && *s; s++) {
        size_t n = strlen(*s) + 1;
        memcpy(p, *s, n);
        p += n;
    }
    if (a->state == CONN_NONE && conn_open(a, err) < 0) {
        free(frame);
        free(c);
        return -1;
    }
    *c = (struct cmd){.a = a, .id = id, .out_fd = out_fd, .err_fd = err_fd, .exited = exited, .opaque = opaque,
                      .next = a->cmds, .in_fd = -1, .ctl_fd = -1};
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    if (io) {
        c->io = true;
        c->attach = attach;
        c->in_fd = io->in_fd;
        c->ctl_fd = io->ctl_fd;
        c->in_credit = VM_AGENT_WINDOW;
        c->out_room = VM_AGENT_WINDOW;
        int fds[4] = {io->in_fd, io->ctl_fd, io->out_fd, io->err_fd};
        for (int i = 0; i < 4; i++)
            if (fds[i] >= 0)
                fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        /* A poll for the input and the resizes (data set: made): pipes,
         * which epoll takes.  An output fd gets one when it is first full. */
        uv_poll_t *polls[2] = {&c->in_poll, &c->ctl_poll};
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0)
                continue;
            int rc = uv_poll_init(a->loop, polls[i], fds[i]);
            if (rc < 0) {
                /* Undone as an ended command is: its handles closed, then freed. */
                c->frame = frame;
                c->ended = true;
                a->refs++;
                for (int k = 0; k < i; k++)
                    cmd_close((uv_handle_t *)polls[k]);
                cmd_close((uv_handle_t *)&c->timer);
                return duet_err_set(err, -rc, "VM %s: cannot watch the command's input and output (%s)", a->name,
                                    uv_strerror(rc));
            }
            polls[i]->data = c;
            c->handles++;
        }
        c->ctl_open = io->ctl_fd >= 0;
        c->in_done = io->in_fd < 0;
        for (int i = 0; i < 2; i++) {
            c->q[i].fd = i ? io->err_fd : io->out_fd;
            c->q[i].tail = &c->q[i].head;
        }
    }
    a->refs++;
    a->cmds = c;
    a->stray = 0;
    if (timeout_ms)
        uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
    if (a->state == CONN_UP) {
        send_bytes(a, frame, VM_AGENT_HDR + head + len);
        if (io)
            cmd_io_start(c);
    } else {
        c->frame = frame;
        c->frame_len = VM_AGENT_HDR + head + len;
    }
    return 0;
}

int vm_agent_exec(struct vm_agent *a, const char *const *argv, int out_fd, int err_fd, uint64_t timeout_ms,
                  vm_agent_exited_cb exited, void *opaque, struct duet_err *err)
{
    return cmd_start(a, argv, out_fd, err_fd, NULL, timeout_ms, exited, opaque, err);
}

int vm_agent_exec_io(struct vm_agent *a, const char *const *argv, const struct driver_exec_io *io,
                     uint64_t timeout_ms, vm_agent_exited_cb exited, void *opaque, struct duet_err *err)
{
    return cmd_start(a, argv, io->out_fd, io->err_fd, io, timeout_ms, exited, opaque, err);
}

int vm_agent_attach(struct vm_agent *a, const struct driver_exec_io *io, vm_agent_exited_cb exited, void *opaque,
                    struct duet_err *err)
{
    return cmd_start(a, NULL, io->out_fd, io->err_fd, io, 0, exited, opaque, err);
}

void vm_agent_free(struct vm_agent *a, const char *why)
{
    if (!a || a->freed)
        return;
    a->freed = true;
    conn_break(a, why ? why : "the VM stopped");
    agent_unref(a);
}
