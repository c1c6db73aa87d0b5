/*
 * exec_io.c - POST /v1/workloads/NAME/exec with "stdin" or "tty", and
 * POST /v1/run with them (duet run -i/-t, api/apply.c): the connection is
 * upgraded (101, Upgrade: duet-exec) and carries the frames of
 * common/execwire.h both ways until the command (or the run workload's
 * main command) ends.
 *
 * The command's ends are pipes: its input (the client's 'i' frames,
 * written here; 'c' closes it), its stdout and stderr (read here and sent
 * as 'o' and 'e' frames), and the control pipe the driver reads resizes
 * from ('w' frames) and whose closing tells it the client has gone, which
 * ends the command.  Both directions are bounded: a client that does not
 * read stops the reading of the command's output (the command then blocks
 * on its writes, as on a slow terminal), and a command that does not read
 * its input stops the reading of the client's frames.
 *
 * Everything runs on the loop.  The exchange is freed once the driver has
 * reported the command's end and the connection is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/execwire.h"
#include "internal.h"

/* What may wait unsent, each way, before the other side is held back. */
#define XIO_BACKLOG_HIGH (1u << 20)
#define XIO_BACKLOG_LOW (256u << 10)

struct xio {
    struct wl *w;                  /* exec: held; run: NULL (its end is told) */
    struct http_conn *c;
    char **argv;                   /* exec */
    bool tty;
    struct driver_exec_io io;      /* the driver's ends, as given to it */
    bool begun;                    /* the connection is upgraded */
    /* an end told before the upgrade (a run that failed at once), sent
     * after it */
    bool early;
    int early_status;
    char *early_fail;
    /* our ends */
    uv_pipe_t in;                  /* the command's stdin: written */
    uv_pipe_t out, err;            /* its stdout, stderr: read */
    int ctl;                       /* resizes; closed when the client goes */
    bool in_open, out_open, err_open, in_shutting;
    /* the driver's ends, open until it reports the end */
    int in_r, out_w, err_w, ctl_r;
    int handles;                   /* open libuv handles */
    bool exited, conn_gone, freed;
    int status;
    bool reading_paused;           /* the command's output, held back for a slow client */
    /* a frame from the client, being assembled */
    uint8_t frame[EXECWIRE_HDR + EXECWIRE_DATA_MAX];
    size_t frame_len;
};

static void xio_maybe_free(struct xio *x);

static void on_handle_closed(uv_handle_t *h)
{
    struct xio *x = h->data;
    x->handles--;
    xio_maybe_free(x);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void xio_maybe_free(struct xio *x)
{
    if (!x->exited || !x->conn_gone || x->handles > 0 || x->freed)
        return;
    x->freed = true;
    close_fd(&x->ctl);
    close_fd(&x->in_r);
    close_fd(&x->out_w);
    close_fd(&x->err_w);
    close_fd(&x->ctl_r);
    free(x->early_fail);
    for (char **a = x->argv; a && *a; a++)
        free(*a);
    free(x->argv);
    http_conn_unref(x->c);
    if (x->w)
        wl_unref(x->w);
    free(x);
}

static void close_handle(struct xio *x, uv_pipe_t *p, bool *open)
{
    (void)x;   /* p->data is x: on_handle_closed finds it there */
    if (!*open)
        return;
    *open = false;
    uv_close((uv_handle_t *)p, on_handle_closed);
}

static void send_frame(struct xio *x, uint8_t type, const void *data, size_t len)
{
    uint8_t h[EXECWIRE_HDR];
    execwire_hdr_put(h, type, (uint32_t)len);
    http_raw_write(x->c, h, sizeof(h));
    if (len)
        http_raw_write(x->c, data, len);
}

/* ---- the command's output ---------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(EXECWIRE_DATA_MAX);
    if (!buf->base)
        abort();
    buf->len = EXECWIRE_DATA_MAX;
}

static void output_resume(void *opaque);

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct xio *x = s->data;
    bool is_err = s == (uv_stream_t *)&x->err;
    if (n > 0)
        send_frame(x, is_err ? EXECWIRE_ERR : EXECWIRE_OUT, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        close_handle(x, is_err ? &x->err : &x->out, is_err ? &x->err_open : &x->out_open);
        return;
    }
    /* A client that does not keep up holds the command's output back. */
    if (!x->reading_paused && http_stream_backlog(x->c) > XIO_BACKLOG_HIGH) {
        x->reading_paused = true;
        if (x->out_open)
            uv_read_stop((uv_stream_t *)&x->out);
        if (x->err_open)
            uv_read_stop((uv_stream_t *)&x->err);
        http_raw_on_drain(x->c, XIO_BACKLOG_LOW, output_resume, x);
    }
}

static void output_resume(void *opaque)
{
    struct xio *x = opaque;
    if (!x->reading_paused)
        return;
    x->reading_paused = false;
    if (x->out_open)
        uv_read_start((uv_stream_t *)&x->out, alloc_cb, on_output);
    if (x->err_open)
        uv_read_start((uv_stream_t *)&x->err, alloc_cb, on_output);
}

/* What the pipes still hold once the command has ended (nothing writes
 * them any more but what it left running in the background, which is not
 * waited for). */
static void drain(struct xio *x, uv_pipe_t *p, bool open, uint8_t type)
{
    uv_os_fd_t fd;
    if (!open || uv_fileno((uv_handle_t *)p, &fd) < 0)
        return;
    char *buf = malloc(EXECWIRE_DATA_MAX);
    if (!buf)
        abort();
    for (int i = 0; i < 256; i++) {
        ssize_t n = read(fd, buf, EXECWIRE_DATA_MAX);
        if (n <= 0)
            break;
        send_frame(x, type, buf, (size_t)n);
    }
    free(buf);
}

void api_xio_end(struct xio *x, int status, const char *fail)
{
    if (!x->begun) {
        x->early = true;
        x->early_status = status;
        x->early_fail = fail ? strdup(fail) : NULL;
        if (fail && !x->early_fail)
            abort();
        return;
    }
    x->exited = true;
    x->status = status;
    /* The driver is done with its ends: the pipes' ends are ours alone. */
    close_fd(&x->in_r);
    close_fd(&x->out_w);
    close_fd(&x->err_w);
    close_fd(&x->ctl_r);
    if (!x->conn_gone) {
        drain(x, &x->out, x->out_open, EXECWIRE_OUT);
        drain(x, &x->err, x->err_open, EXECWIRE_ERR);
        if (fail)
            send_frame(x, EXECWIRE_FAIL, fail, strnlen(fail, EXECWIRE_DATA_MAX));
        uint8_t st[4] = {(uint8_t)((uint32_t)status >> 24), (uint8_t)((uint32_t)status >> 16),
                         (uint8_t)((uint32_t)status >> 8), (uint8_t)status};
        send_frame(x, EXECWIRE_STATUS, st, sizeof(st));
        http_raw_end(x->c);   /* nothing more is read from the client */
        x->conn_gone = true;
    }
    close_handle(x, &x->in, &x->in_open);
    close_handle(x, &x->out, &x->out_open);
    close_handle(x, &x->err, &x->err_open);
    xio_maybe_free(x);
}

static void on_exited(void *opaque, int status)
{
    api_xio_end(opaque, status, status < 0 ? "the command could not be run in the workload" : NULL);
}

/* ---- the client's frames ------------------------------------------------------------------ */

struct in_write {
    uv_write_t req;
    struct xio *x;
    char data[];
};

static void on_in_written(uv_write_t *req, int status)
{
    struct in_write *iw = (struct in_write *)req;
    struct xio *x = iw->x;
    free(iw);
    (void)status;   /* EPIPE: the command no longer reads; its input is dropped */
    if (x->in_open && uv_stream_get_write_queue_size((uv_stream_t *)&x->in) < XIO_BACKLOG_LOW)
        http_raw_pause(x->c, false);
    x->handles--;
    xio_maybe_free(x);
}

static void typed(struct xio *x, const uint8_t *data, size_t len)
{
    if (!x->in_open || x->in_shutting)
        return;
    struct in_write *iw = malloc(sizeof(*iw) + len);
    if (!iw)
        abort();
    memcpy(iw->data, data, len);
    iw->x = x;
    uv_buf_t b = uv_buf_init(iw->data, (unsigned)len);
    x->handles++;   /* the write holds x */
    if (uv_write(&iw->req, (uv_stream_t *)&x->in, &b, 1, on_in_written) < 0) {
        free(iw);
        x->handles--;
        return;
    }
    /* A command that does not read its input holds the client back. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&x->in) > XIO_BACKLOG_HIGH)
        http_raw_pause(x->c, true);
}

static void on_in_shut(uv_shutdown_t *req, int status)
{
    (void)status;
    struct xio *x = req->data;
    free(req);
    close_handle(x, &x->in, &x->in_open);
    x->handles--;
    xio_maybe_free(x);
}

/* The end of the command's input, once what was typed before it has been
 * written (a close would drop the writes still queued). */
static void in_end(struct xio *x)
{
    if (!x->in_open || x->in_shutting)
        return;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req)
        abort();
    req->data = x;
    x->in_shutting = true;
    x->handles++;
    if (uv_shutdown(req, (uv_stream_t *)&x->in, on_in_shut) < 0) {
        free(req);
        x->handles--;
        close_handle(x, &x->in, &x->in_open);
    }
}

/* One whole frame, of a type execwire_valid took. */
static void on_frame(struct xio *x, uint8_t type, const uint8_t *data, uint32_t len)
{
    if (type == EXECWIRE_IN) {
        typed(x, data, len);
    } else if (type == EXECWIRE_IN_END) {
        in_end(x);
    } else if (type == EXECWIRE_WINSIZE && x->tty && x->ctl >= 0) {
        struct driver_winsize ws = {.rows = (unsigned short)((data[0] << 8) | data[1]),
                                    .cols = (unsigned short)((data[2] << 8) | data[3])};
        /* A few bytes into a pipe nobody else writes: when it is full (a
         * client sending sizes without end) the newest are dropped. */
        ssize_t w = write(x->ctl, &ws, sizeof(ws));
        (void)w;
    }
}

static void client_gone(struct xio *x)
{
    if (x->conn_gone)
        return;
    x->conn_gone = true;
    /* The driver reads the end of the control pipe as "the caller has
     * gone" and ends the command. */
    close_fd(&x->ctl);
    close_handle(x, &x->in, &x->in_open);
    xio_maybe_free(x);
}

static void on_client_data(void *opaque, const char *data, size_t len)
{
    struct xio *x = opaque;
    if (!data) {
        client_gone(x);
        return;
    }
    const uint8_t *p = (const uint8_t *)data;
    while (len > 0) {
        size_t need = x->frame_len < EXECWIRE_HDR ? EXECWIRE_HDR - x->frame_len
                                                  : EXECWIRE_HDR + execwire_hdr_len(x->frame) - x->frame_len;
        size_t take = len < need ? len : need;
        memcpy(x->frame + x->frame_len, p, take);
        x->frame_len += take;
        p += take;
        len -= take;
        if (x->frame_len == EXECWIRE_HDR && !execwire_valid(x->frame[0], execwire_hdr_len(x->frame), 1)) {
            static const char msg[] = "broken exec stream: an unknown frame";
            send_frame(x, EXECWIRE_FAIL, msg, sizeof(msg) - 1);
            http_raw_end(x->c);
            client_gone(x);
            return;
        }
        if (x->frame_len >= EXECWIRE_HDR && x->frame_len == EXECWIRE_HDR + execwire_hdr_len(x->frame)) {
            on_frame(x, x->frame[0], x->frame + EXECWIRE_HDR, execwire_hdr_len(x->frame));
            x->frame_len = 0;
        }
    }
}

/* ---- the request ----------------------------------------------------------------------------- */

static bool open_pipe(uv_loop_t *loop, uv_pipe_t *p, int fd, struct xio *x)
{
    if (uv_pipe_init(loop, p, 0) < 0)
        return false;
    p->data = x;
    x->handles++;
    if (uv_pipe_open(p, fd) < 0) {
        close(fd);
        uv_close((uv_handle_t *)p, on_handle_closed);
        return false;
    }
    return true;
}

struct xio *api_xio_new(struct api *a, struct http_conn *c, bool tty, unsigned rows, unsigned cols,
                        struct duet_err *err)
{
    struct xio *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->tty = tty;
    x->c = c;
    http_conn_ref(c);
    x->ctl = x->in_r = x->out_w = x->err_w = x->ctl_r = -1;
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, pctl[2] = {-1, -1};
    uv_loop_t *loop = a->d->loop;
    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
        pipe2(pctl, O_CLOEXEC | O_NONBLOCK) < 0) {
        duet_err_sys(err, "cannot make the command's pipes");
        for (int i = 0; i < 2; i++) {
            close_fd(&pin[i]);
            close_fd(&pout[i]);
            close_fd(&perr[i]);
            close_fd(&pctl[i]);
        }
        api_xio_cancel(x);
        return NULL;
    }
    x->in_r = pin[0];
    x->out_w = pout[1];
    x->err_w = perr[1];
    x->ctl_r = pctl[0];
    x->ctl = pctl[1];
    x->in_open = open_pipe(loop, &x->in, pin[1], x);
    x->out_open = open_pipe(loop, &x->out, pout[0], x);
    x->err_open = open_pipe(loop, &x->err, perr[0], x);
    if (!x->in_open || !x->out_open || !x->err_open) {
        duet_err_set(err, EIO, "cannot watch the command's pipes");
        api_xio_cancel(x);
        return NULL;
    }
    x->io = (struct driver_exec_io){.in_fd = x->in_r, .out_fd = x->out_w, .err_fd = x->err_w, .ctl_fd = x->ctl_r,
                                    .tty = tty, .rows = (unsigned short)rows, .cols = (unsigned short)cols};
    /* The first size is the first record too: a run's command is started
     * later, by its driver, and finds it there. */
    if (tty && rows && cols) {
        struct driver_winsize ws = {.rows = (unsigned short)rows, .cols = (unsigned short)cols};
        ssize_t w = write(x->ctl, &ws, sizeof(ws));
        (void)w;   /* an empty pipe takes 4 bytes */
    }
    return x;
}

const struct driver_exec_io *api_xio_ends(struct xio *x)
{
    return &x->io;
}

void api_xio_begin(struct xio *x)
{
    x->begun = true;
    uv_read_start((uv_stream_t *)&x->out, alloc_cb, on_output);
    uv_read_start((uv_stream_t *)&x->err, alloc_cb, on_output);
    http_conn_upgrade(x->c, EXECWIRE_PROTOCOL, on_client_data, x);
    if (x->early) {
        x->early = false;
        api_xio_end(x, x->early_status, x->early_fail);
    }
}

void api_xio_cancel(struct xio *x)
{
    x->exited = true;
    x->conn_gone = true;
    close_handle(x, &x->in, &x->in_open);
    close_handle(x, &x->out, &x->out_open);
    close_handle(x, &x->err, &x->err_open);
    xio_maybe_free(x);
}

void api_exec_interactive(struct api *a, struct http_conn *c, struct wl *w, struct driver *drv, char **argv,
                          bool tty, unsigned rows, unsigned cols, uint64_t timeout_ms)
{
    struct duet_err err = {0};
    struct xio *x = NULL;
    if (!drv->exec_io) {
        duet_err_set(&err, ENOTSUP,
                     "%s runs as a %s, which runs commands without input or a terminal; run duet exec "
                     "without -i and -t",
                     w->name, backend_kind_name(w->inst_backend));
    } else if ((x = api_xio_new(a, c, tty, rows, cols, &err)) != NULL) {
        x->argv = argv;
        argv = NULL;
        x->w = w;
        wl_ref(w);
        if (drv->exec_io(drv, w->inst, (const char *const *)x->argv, &x->io, timeout_ms, on_exited, x, &err) == 0) {
            api_xio_begin(x);
            return;
        }
        api_xio_cancel(x);
    }
    http_respond_error(c, 409, "%s", err.msg);
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}
