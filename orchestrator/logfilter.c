/*
 * logfilter.c - see logfilter.h.
 *
 * The thread reads the pipe in chunks and judges whole lines; a line longer
 * than its buffer is passed on as it comes (no libvirt line is that long),
 * so memory stays bounded whatever is written.  A blank line right after a
 * dropped libvirt line goes with it: libvirt ends messages that carry their
 * own newline (a child's stderr) with another.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "logfilter.h"

#define LINE_MAX_KEPT 8192

struct log_filter {
    int in;             /* the pipe's read end */
    int out;            /* where stderr went before */
    int stop;           /* eventfd: stop once the pipe is empty */
    bool keep_libvirt;
    bool after_dropped; /* the last whole line was libvirt's */
    size_t len;
    char line[LINE_MAX_KEPT];
    pthread_t thread;
};

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool log_line_is_libvirt(const char *l, size_t len)
{
    /* 2026-12-02 01:24:27.503+0000: 20650: error : ... */
    if (len < 40 || !digits(l, 4) || l[4] != '-' || !digits(l + 5, 2) || l[7] != '-' || !digits(l + 8, 2) ||
        l[10] != ' ' || !digits(l + 11, 2) || l[13] != ':' || !digits(l + 14, 2) || l[16] != ':' ||
        !digits(l + 17, 2) || l[19] != '.' || !digits(l + 20, 3) || (l[23] != '+' && l[23] != '-') ||
        !digits(l + 24, 4) || l[28] != ':' || l[29] != ' ')
        return false;
    size_t i = 30;
    while (i < len && isdigit((unsigned char)l[i]))
        i++;
    if (i == 30 || i + 2 >= len || l[i] != ':' || l[i + 1] != ' ')
        return false;
    static const char *const levels[] = {"debug : ", "info : ", "warning : ", "error : "};
    for (size_t k = 0; k < 4; k++) {
        size_t n = strlen(levels[k]);
        if (len - (i + 2) >= n && memcmp(l + i + 2, levels[k], n) == 0)
            return true;
    }
    return false;
}

static void put(struct log_filter *f, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(f->out, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* the log is gone (a closed terminal): nothing to tell it */
        p += w;
        n -= (size_t)w;
    }
}

/* One whole line, its newline included. */
static void judge(struct log_filter *f, const char *line, size_t n)
{
    size_t body = n && line[n - 1] == '\n' ? n - 1 : n;
    if (!f->keep_libvirt) {
        if (log_line_is_libvirt(line, body)) {
            f->after_dropped = true;
            return;
        }
        if (body == 0 && f->after_dropped) {
            f->after_dropped = false;
            return;
        }
    }
    f->after_dropped = false;
    put(f, line, n);
}

static void feed(struct log_filter *f, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;
        if (f->len + take > sizeof(f->line)) {
            /* Too long to be libvirt's: it goes as it is. */
            put(f, f->line, f->len);
            f->len = 0;
            f->after_dropped = false;
            if (!nl) {
                put(f, p, n);
                return;
            }
            put(f, p, take);
        } else {
            memcpy(f->line + f->len, p, take);
            f->len += take;
            if (nl) {
                judge(f, f->line, f->len);
                f->len = 0;
            }
        }
        p += take;
        n -= take;
    }
}

static void *run(void *opaque)
{
    struct log_filter *f = opaque;
    char buf[16384];
    bool stopping = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = f->in, .events = POLLIN}, {.fd = f->stop, .events = POLLIN}};
        if (poll(p, stopping ? 1 : 2, stopping ? 0 : -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(f->in, buf, sizeof(buf));
            if (n > 0) {
                feed(f, buf, (size_t)n);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || errno != EAGAIN)
                break;   /* every writer is gone */
        }
        if (stopping)
            break;       /* nothing more to read right now */
        if (p[1].revents & POLLIN)
            stopping = true;
    }
    /* A last line without its newline. */
    if (f->len)
        judge(f, f->line, f->len);
    return NULL;
}

struct log_filter *log_filter_start(bool keep_libvirt, struct duet_err *err)
{
    struct log_filter *f = calloc(1, sizeof(*f));
    if (!f) {
        duet_err_set(err, ENOMEM, "no memory for the log filter");
        return NULL;
    }
    int p[2] = {-1, -1};
    f->keep_libvirt = keep_libvirt;
    f->out = fcntl(2, F_DUPFD_CLOEXEC, 3);
    f->stop = eventfd(0, EFD_CLOEXEC);
    if (f->out < 0 || f->stop < 0 || pipe2(p, O_CLOEXEC) < 0) {
        duet_err_sys(err, "cannot set up the log filter");
        goto fail;
    }
    f->in = p[0];
    fcntl(f->in, F_SETFL, O_NONBLOCK);
    fflush(stderr);
    if (dup2(p[1], 2) < 0) {
        duet_err_sys(err, "cannot set up the log filter");
        goto fail;
    }
    close(p[1]);
    p[1] = -1;
    int rc = pthread_create(&f->thread, NULL, run, f);
    if (rc != 0) {
        dup2(f->out, 2);
        errno = rc;
        duet_err_sys(err, "cannot start the log filter");
        goto fail;
    }
    return f;
fail:
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
    if (f->out >= 0)
        close(f->out);
    if (f->stop >= 0)
        close(f->stop);
    free(f);
    return NULL;
}

void log_filter_stop(struct log_filter *f)
{
    if (!f)
        return;
    fflush(stderr);
    /* Writers from here on reach the log directly; the pipe still holds
     * what was written before, which the thread copies before it ends. */
    dup2(f->out, 2);
    uint64_t one = 1;
    if (write(f->stop, &one, sizeof(one)) < 0)
        abort();
    pthread_join(f->thread, NULL);
    close(f->in);
    close(f->out);
    close(f->stop);
    free(f);
}
