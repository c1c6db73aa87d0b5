/*
 * init_attach.c - see init_attach.h.  Part of duet-init: static, no
 * allocation, every fd non-blocking but the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "backends/driver.h"
#include "init_attach.h"

/* After the command ended, the last of its output waits at most this long
 * without progress for a caller that does not read. */
#define ATTACH_DRAIN_IDLE_MS 5000

static void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sizes the caller sent; the newest wins.  Its end of file (or an
 * error other than "nothing yet") is the caller gone: false. */
static bool read_sizes(struct attach *a)
{
    struct driver_winsize ws[64];
    for (;;) {
        ssize_t n = read(a->ctl, ws, sizeof(ws));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        /* Records are written whole (4 bytes, under PIPE_BUF). */
        size_t k = (size_t)n / sizeof(ws[0]);
        if (k && a->tty) {
            struct winsize w = {.ws_row = ws[k - 1].rows, .ws_col = ws[k - 1].cols};
            ioctl(a->master, TIOCSWINSZ, &w);
        }
    }
}

/* The caller has gone: the output goes to the log alone and nothing more
 * is typed.  Its fds stay open until duet-init exits (they are nobody
 * else's), only unused. */
static void caller_gone(struct attach *a)
{
    a->ctl = -1;
    for (int i = 0; i < 2; i++) {
        struct attach_stream *s = &a->s[i];
        if (s->typed) {
            s->src = -1;
            continue;
        }
        s->dst = -1;
        s->len = s->off = 0;
    }
}

/* Writes what s holds while dst takes it. */
static void flush(struct attach *a, struct attach_stream *s)
{
    while (s->dst >= 0 && s->off < s->len) {
        ssize_t n = write(s->dst, s->buf + s->off, s->len - s->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (s->typed)
                s->len = s->off = 0;   /* the terminal is gone: what was typed with it */
            else
                caller_gone(a);        /* its reader went (with the daemon) */
            return;
        }
        s->off += (size_t)n;
    }
    s->len = s->off = 0;
}

/* One read of s's source: 1 when it gave something, 0 when it had
 * nothing yet, -1 when it has ended (end of file, or EIO from a terminal
 * no process holds any more). */
static int pump(struct attach *a, struct attach_stream *s)
{
    ssize_t n;
    do
        n = read(s->src, s->buf, sizeof(s->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0) {
        s->src = -1;
        if (s->typed && s->dst >= 0) {
            /* The end of input, as a user at a terminal gives it. */
            struct termios tio;
            s->buf[0] = tcgetattr(s->dst, &tio) == 0 && tio.c_cc[VEOF] ? (char)tio.c_cc[VEOF] : 4;
            s->len = 1;
            s->off = 0;
            flush(a, s);
        }
        return -1;
    }
    if (s->to_log)
        init_log_write(a->log, s->buf, (size_t)n);
    if (s->dst >= 0) {
        s->len = (size_t)n;
        s->off = 0;
        flush(a, s);
    }
    return 1;
}

int attach_prepare(struct attach *a, bool tty, struct logcap *log, unsigned long uid, unsigned long gid)
{
    memset(a, 0, sizeof(*a));
    a->tty = tty;
    a->log = log;
    a->master = a->slave = a->out_w = a->err_w = -1;
    a->ctl = ATTACH_CTL_FD;
    for (int fd = ATTACH_IN_FD; fd < ATTACH_IN_FD + ATTACH_FDS; fd++)
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return -1;
    nonblock(ATTACH_OUT_FD);
    nonblock(ATTACH_ERR_FD);
    nonblock(ATTACH_CTL_FD);
    if (tty) {
        /* The container's own devpts: the terminal is the workload's, as
         * any it opens itself would be. */
        a->master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        int unlock = 0;
        if (a->master < 0 || ioctl(a->master, TIOCSPTLCK, &unlock) < 0)
            return -1;
        a->slave = ioctl(a->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (a->slave < 0)
            return -1;
        /* Its user's, as login gives one: not fatal (a group the
         * container's user namespace does not map). */
        if (fchown(a->slave, (uid_t)uid, (gid_t)gid) < 0 || fchmod(a->slave, 0620) < 0) {
            /* the command holds it open all the same */
        }
        nonblock(a->master);
        nonblock(ATTACH_IN_FD);
        a->s[0] = (struct attach_stream){.src = a->master, .dst = ATTACH_OUT_FD, .to_log = true};
        a->s[1] = (struct attach_stream){.src = ATTACH_IN_FD, .dst = a->master, .typed = true};
    } else {
        int po[2], pe[2];
        if (pipe2(po, O_CLOEXEC) < 0)
            return -1;
        if (pipe2(pe, O_CLOEXEC) < 0) {
            close(po[0]);
            close(po[1]);
            return -1;
        }
        nonblock(po[0]);
        nonblock(pe[0]);
        a->out_w = po[1];
        a->err_w = pe[1];
        a->s[0] = (struct attach_stream){.src = po[0], .dst = ATTACH_OUT_FD, .to_log = true};
        a->s[1] = (struct attach_stream){.src = pe[0], .dst = ATTACH_ERR_FD, .to_log = true};
    }
    /* The first size was sent before the start: the command's first
     * look at its terminal finds it. */
    if (!read_sizes(a))
        caller_gone(a);
    return 0;
}

int attach_child(struct attach *a)
{
    if (a->tty) {
        if (ioctl(a->slave, TIOCSCTTY, 0) < 0)
            return -1;
        return dup2(a->slave, 0) < 0 || dup2(a->slave, 1) < 0 || dup2(a->slave, 2) < 0 ? -1 : 0;
    }
    return dup2(ATTACH_IN_FD, 0) < 0 || dup2(a->out_w, 1) < 0 || dup2(a->err_w, 2) < 0 ? -1 : 0;
}

void attach_parent(struct attach *a)
{
    int *mine[] = {&a->slave, &a->out_w, &a->err_w};
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        if (*mine[i] >= 0) {
            close(*mine[i]);
            *mine[i] = -1;
        }
    if (!a->tty)
        close(ATTACH_IN_FD);   /* the command's own now */
}

int attach_pollfds(struct attach *a, struct pollfd *p)
{
    int n = 0;
    p[n++] = (struct pollfd){.fd = a->ctl, .events = POLLIN};
    for (int i = 0; i < 2; i++) {
        struct attach_stream *s = &a->s[i];
        if (s->len > 0)
            p[n++] = (struct pollfd){.fd = s->dst, .events = POLLOUT};
        else
            p[n++] = (struct pollfd){.fd = s->src, .events = POLLIN};
    }
    return n;
}

void attach_handle(struct attach *a, const struct pollfd *p, int n)
{
    if (n < 3)
        return;
    if (a->ctl >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_sizes(a))
        caller_gone(a);
    for (int i = 0; i < 2; i++) {
        struct attach_stream *s = &a->s[i];
        short ev = p[1 + i].revents;
        if (!ev || p[1 + i].fd < 0)
            continue;
        if (p[1 + i].events & POLLOUT) {
            if (s->len > 0)
                flush(a, s);
        } else if (s->src >= 0 && s->len == 0) {
            pump(a, s);
        }
    }
}

void attach_drain(struct attach *a)
{
    long long idle_until = mono_ms() + ATTACH_DRAIN_IDLE_MS;
    for (;;) {
        bool pending = false;
        for (int i = 0; i < 2; i++) {
            struct attach_stream *s = &a->s[i];
            if (s->typed)
                continue;
            size_t before = s->len - s->off;
            flush(a, s);
            if (s->len - s->off < before)
                idle_until = mono_ms() + ATTACH_DRAIN_IDLE_MS;
            /* What is there now, not what a process left running writes
             * later: a source with nothing to give is done. */
            while (s->src >= 0 && s->len == 0)
                if (pump(a, s) <= 0)
                    s->src = -1;
            pending |= s->len > 0;
        }
        if (!pending)
            return;
        long long left = idle_until - mono_ms();
        if (left <= 0)
            return;
        struct pollfd p[2];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (!a->s[i].typed && a->s[i].len > 0)
                p[n++] = (struct pollfd){.fd = a->s[i].dst, .events = POLLOUT};
        if (poll(p, (nfds_t)n, (int)left) < 0 && errno != EINTR)
            return;
    }
}
