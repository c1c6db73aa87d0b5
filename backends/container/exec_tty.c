/*
 * exec_tty.c - see exec_tty.h.
 *
 * Lifetime: the struct belongs to the thread until it has ended and the
 * loop has been told (uv_async); the loop then joins the thread, calls
 * done and frees it.  abort joins from the caller instead and frees.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "exec_tty.h"

#define TTY_BUF 65536
/* After the command ended, what the terminal still holds is read for at
 * most this long (a background process may keep writing for ever). */
#define TTY_DRAIN_MS 500

enum { STOP_FINISH = 1, STOP_ABORT = 2 };

struct exec_tty {
    int master, in, out, stop;
    pthread_t thread;
    uv_async_t async;
    void (*done)(void *opaque);
    void *opaque;
    _Atomic int stopping;
    /* typed: in -> master; shown: master -> out */
    char typed[TTY_BUF], shown[TTY_BUF];
    size_t typed_len, typed_off, shown_len, shown_off;
    bool in_eof, eof_sent;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes what buf holds from *off while fd takes it; false when fd is
 * gone. */
static bool flush(int fd, const char *buf, size_t *len, size_t *off)
{
    while (*off < *len) {
        ssize_t n = write(fd, buf + *off, *len - *off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        *off += (size_t)n;
    }
    *len = *off = 0;
    return true;
}

static void *run(void *opaque)
{
    struct exec_tty *t = opaque;
    uint64_t drain_until = 0;
    bool master_open = true;
    for (;;) {
        int stop = atomic_load(&t->stopping);
        if (stop == STOP_ABORT)
            break;
        if (stop == STOP_FINISH && !drain_until)
            drain_until = now_ms() + TTY_DRAIN_MS;
        if (drain_until && (now_ms() >= drain_until || !master_open) && t->shown_len == 0)
            break;
        struct pollfd p[4];
        int n = 0, i_master = -1, i_in = -1;
        short mev = 0;
        if (master_open && t->shown_len == 0)
            mev |= POLLIN;
        if (master_open && t->typed_len > 0)
            mev |= POLLOUT;
        if (mev) {
            i_master = n;
            p[n++] = (struct pollfd){.fd = t->master, .events = mev};
        }
        if (t->in >= 0 && !t->in_eof && t->typed_len == 0 && !drain_until) {
            i_in = n;
            p[n++] = (struct pollfd){.fd = t->in, .events = POLLIN};
        }
        if (t->shown_len > 0)
            p[n++] = (struct pollfd){.fd = t->out, .events = POLLOUT};
        p[n++] = (struct pollfd){.fd = t->stop, .events = POLLIN};
        int timeout = drain_until ? 50 : -1;
        if (poll(p, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[n - 1].revents & POLLIN) {
            uint64_t v;
            if (read(t->stop, &v, sizeof(v)) < 0) {
                /* counted again next turn through stopping */
            }
        }
        if (i_master >= 0 && (p[i_master].revents & (POLLIN | POLLHUP | POLLERR)) && t->shown_len == 0) {
            ssize_t r = read(t->master, t->shown, sizeof(t->shown));
            if (r > 0)
                t->shown_len = (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                master_open = false;   /* EIO: no process has the terminal open any more */
        }
        if (i_master >= 0 && (p[i_master].revents & POLLOUT) && !flush(t->master, t->typed, &t->typed_len,
                                                                      &t->typed_off))
            master_open = false;
        if (t->shown_len > 0 && !flush(t->out, t->shown, &t->shown_len, &t->shown_off))
            break;   /* the caller no longer reads */
        if (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(t->in, t->typed, sizeof(t->typed));
            if (r > 0)
                t->typed_len = (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                t->in_eof = true;
        }
        if (t->in_eof && !t->eof_sent && t->typed_len == 0) {
            /* The end of input, as a user at a terminal gives it. */
            struct termios tio;
            t->typed[0] = tcgetattr(t->master, &tio) == 0 && tio.c_cc[VEOF] ? (char)tio.c_cc[VEOF] : 4;
            t->typed_len = 1;
            t->eof_sent = true;
        }
        if (t->typed_len > 0 && master_open)
            flush(t->master, t->typed, &t->typed_len, &t->typed_off);
    }
    close(t->master);
    t->master = -1;
    if (atomic_load(&t->stopping) != STOP_ABORT)
        uv_async_send(&t->async);
    return NULL;
}

static void on_async_closed(uv_handle_t *h)
{
    struct exec_tty *t = h->data;
    close(t->stop);
    void (*done)(void *) = t->done;
    void *opaque = t->opaque;
    free(t);
    if (done)
        done(opaque);
}

static void on_ended(uv_async_t *a)
{
    struct exec_tty *t = a->data;
    pthread_join(t->thread, NULL);
    uv_close((uv_handle_t *)&t->async, on_async_closed);
}

static void nonblock(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct exec_tty *exec_tty_start(uv_loop_t *loop, int master, int in_fd, int out_fd, void (*done)(void *opaque),
                                void *opaque, struct duet_err *err)
{
    struct exec_tty *t = calloc(1, sizeof(*t));
    if (!t) {
        close(master);
        duet_err_set(err, ENOMEM, "no memory for a terminal");
        return NULL;
    }
    t->master = master;
    t->in = in_fd;
    t->out = out_fd;
    t->done = done;
    t->opaque = opaque;
    t->stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    nonblock(master);
    nonblock(in_fd);
    nonblock(out_fd);
    if (t->stop < 0) {
        duet_err_sys(err, "cannot make an eventfd");
        close(master);
        free(t);
        return NULL;
    }
    uv_async_init(loop, &t->async, on_ended);
    t->async.data = t;
    int rc = pthread_create(&t->thread, NULL, run, t);
    if (rc != 0) {
        errno = rc;
        duet_err_sys(err, "cannot start the terminal's thread");
        close(master);
        t->done = NULL;
        uv_close((uv_handle_t *)&t->async, on_async_closed);
        return NULL;
    }
    return t;
}

static void wake(struct exec_tty *t, int how)
{
    atomic_store(&t->stopping, how);
    uint64_t one = 1;
    if (write(t->stop, &one, sizeof(one)) < 0) {
        /* an eventfd that is full is awake already */
    }
}

void exec_tty_finish(struct exec_tty *t)
{
    wake(t, STOP_FINISH);
}

void exec_tty_abort(struct exec_tty *t)
{
    wake(t, STOP_ABORT);
    pthread_join(t->thread, NULL);
    t->done = NULL;
    uv_close((uv_handle_t *)&t->async, on_async_closed);
}
