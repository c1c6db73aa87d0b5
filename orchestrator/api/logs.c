/*
 * logs.c - GET /v1/workloads/NAME/logs and POST /v1/workloads/NAME/exec.
 *
 * Both read what a hostile workload writes: a log of any size, a line
 * without end, output that is not text, a command that prints for ever.
 * Neither holds the loop or takes memory in proportion to it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/units.h"
#include "orchestrator/api/internal.h"

#define EXEC_OUTPUT_MAX (4u << 20)
#define LOG_FOLLOW_POLL_MS 200

/* ---- GET /v1/workloads/NAME/logs ---------------------------------------------------- */

/*
 * A log is sent in slices, a tick at a time, never more than LOG_SLICE per
 * tick and only while the client keeps up (what it has not taken stays
 * under LOG_BACKLOG): a log of any size, or a slow reader, never holds the
 * loop.  The previous generation (log.1, see the drivers) comes first.
 * --tail reads back from the end at most LOG_TAIL_SCAN bytes; when the
 * lines asked for do not fit, the answer starts inside a line and says so
 * on its first line.  A follower whose log shrank (a rotation) starts
 * again at the log's start.
 */
#define LOG_SLICE (1u << 20)
#define LOG_BACKLOG (1u << 20)
#define LOG_TAIL_SCAN (UINT64_C(16) << 20)

struct log_follow {
    struct wl *w;
    struct driver_instance *inst;
    struct http_conn *c;
    int fd, prev_fd;               /* the log, and its previous generation (-1 when done or none) */
    bool follow;
    uv_timer_t timer;
};

static void follow_closed(uv_handle_t *h)
{
    struct log_follow *f = h->data;
    close(f->fd);
    if (f->prev_fd >= 0)
        close(f->prev_fd);
    http_conn_unref(f->c);
    wl_unref(f->w);
    free(f);
}

static void follow_end(struct log_follow *f)
{
    http_stream_end(f->c);
    http_conn_on_close(f->c, NULL, NULL);
    uv_close((uv_handle_t *)&f->timer, follow_closed);
}

/* Sends one slice of what the logs hold now.  1: more is there, 0: all
 * sent for now, -1: the client is gone. */
static int pump(struct log_follow *f)
{
    if (http_stream_backlog(f->c) > LOG_BACKLOG)
        return 1;   /* wait for the client */
    char buf[65536];
    size_t sent = 0;
    while (sent < LOG_SLICE) {
        int fd = f->prev_fd >= 0 ? f->prev_fd : f->fd;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 && fd == f->prev_fd) {
            close(f->prev_fd);
            f->prev_fd = -1;
            continue;
        }
        if (n <= 0) {
            /* At the end: a log that shrank under us was rotated. */
            struct stat st;
            off_t at = lseek(f->fd, 0, SEEK_CUR);
            if (fstat(f->fd, &st) == 0 && at > st.st_size) {
                lseek(f->fd, 0, SEEK_SET);
                continue;
            }
            return 0;
        }
        if (!http_stream_write(f->c, buf, (size_t)n))
            return -1;
        sent += (size_t)n;
    }
    return 1;
}

static void follow_tick(uv_timer_t *t)
{
    struct log_follow *f = t->data;
    if (http_conn_closed(f->c)) {
        follow_end(f);
        return;
    }
    int more = pump(f);
    if (more < 0 || (more == 0 && !f->follow)) {
        follow_end(f);
        return;
    }
    /* The instance this log belongs to is gone (deleted or restarted). */
    if (f->follow && more == 0 && (f->w->inst != f->inst || f->w->deleted)) {
        follow_end(f);
        return;
    }
    /* Never 0 ms: a timer re-armed at the loop's cached time would run
     * again before the loop polls, and the writes it queued would never
     * leave. */
    uv_timer_start(&f->timer, follow_tick, more ? 1 : LOG_FOLLOW_POLL_MS, 0);
}

static void follow_conn_closed(void *opaque, struct http_conn *c)
{
    (void)c;
    struct log_follow *f = opaque;
    uv_timer_stop(&f->timer);
    uv_timer_start(&f->timer, follow_tick, 0, 0);
}

/* Positions fd at the start of its last `want` lines, reading back from the
 * end no more than LOG_TAIL_SCAN bytes; a newline that ends the file ends
 * the last line, it does not start one.  Returns how many bytes of a line
 * were left out (the scan bound cut it), 0 when none. */
static off_t tail_position(int fd, long want, bool *found)
{
    off_t end = lseek(fd, 0, SEEK_END), pos = end, start = want > 0 ? 0 : end;
    off_t floor = end > (off_t)LOG_TAIL_SCAN ? end - (off_t)LOG_TAIL_SCAN : 0;
    long seen = 0;
    char b[4096];
    *found = want <= 0;
    while (pos > floor && want > 0 && seen < want) {
        off_t step = pos - floor > (off_t)sizeof(b) ? (off_t)sizeof(b) : pos - floor;
        pos -= step;
        if (pread(fd, b, (size_t)step, pos) != step)
            break;
        for (off_t k = step; k-- > 0;) {
            if (b[k] == '\n' && pos + k != end - 1 && ++seen == want) {
                start = pos + k + 1;
                *found = true;
                break;
            }
        }
    }
    if (!*found && floor > 0) {
        /* Not enough lines within the bound: start at the bound. */
        start = floor;
    }
    lseek(fd, start, SEEK_SET);
    return !*found && floor > 0 ? floor : 0;
}

void api_get_logs(struct api *a, struct http_conn *c, const char *name, const char *query)
{
    struct daemon *d = a->d;
    struct wl *w = api_find(a, c, name);
    if (!w)
        return;
    char v[32];
    bool previous = http_query_get(query, "previous", v, sizeof(v)) && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
    int fd = -1, prev_fd = -1;
    struct duet_err err = {0};
    if (previous) {
        /* The last instance destroyed, whichever backend ran it: the
         * newer of the backends' kept logs. */
        struct timespec newest = {0};
        for (int b = 0; b < BACKEND_COUNT; b++) {
            struct driver *drv = daemon_driver(d, (enum backend_kind)b);
            int f1, p1;
            struct stat st;
            if (!drv || !drv->logs_previous || drv->logs_previous(drv, name, &f1, &p1, &err) < 0)
                continue;
            if (fstat(f1, &st) == 0 && (fd < 0 || st.st_mtim.tv_sec > newest.tv_sec ||
                                        (st.st_mtim.tv_sec == newest.tv_sec && st.st_mtim.tv_nsec > newest.tv_nsec))) {
                if (fd >= 0)
                    close(fd);
                if (prev_fd >= 0)
                    close(prev_fd);
                fd = f1;
                prev_fd = p1;
                newest = st.st_mtim;
            } else {
                close(f1);
                if (p1 >= 0)
                    close(p1);
            }
        }
        if (fd < 0) {
            http_respond_error(c, 404, "%s has no previous instance's log: none of its instances has ended and been "
                                       "replaced yet (duet logs %s shows the current one)",
                               name, name);
            return;
        }
    } else {
        if (!w->inst) {
            http_respond_error(c, 409, "%s has no instance on the host now (%s); its logs start when it does", name,
                               wl_state_name(w));
            return;
        }
        struct driver *drv = daemon_driver(d, w->inst_backend);
        if (!drv) {
            http_respond_error(c, 503, "the %s backend is not open in this duetd", backend_kind_name(w->inst_backend));
            return;
        }
        if (drv->logs(drv, w->inst, &fd, &prev_fd, &err) < 0) {
            http_respond_error(c, 500, "%s", err.msg);
            return;
        }
    }
    /* The previous instance has ended: there is nothing to follow. */
    bool follow = !previous && http_query_get(query, "follow", v, sizeof(v)) && strcmp(v, "0") != 0 &&
                  strcmp(v, "false") != 0;
    off_t cut = 0;
    if (http_query_get(query, "tail", v, sizeof(v))) {
        bool found;
        cut = tail_position(fd, strtol(v, NULL, 10), &found);
        /* The lines asked for are all in the current generation, or as
         * many as it has: the previous one is not read back. */
        if (prev_fd >= 0) {
            close(prev_fd);
            prev_fd = -1;
        }
    }
    struct log_follow *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    f->w = w;
    wl_ref(w);
    f->inst = w->inst;
    f->c = c;
    http_conn_ref(c);
    f->fd = fd;
    f->prev_fd = prev_fd;
    f->follow = follow;
    uv_timer_init(d->loop, &f->timer);
    f->timer.data = f;
    http_stream_begin(c, 200, "text/plain; charset=utf-8");
    if (cut) {
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "[duet: the lines asked for are longer than %llu MiB: the first %lld bytes were left out]\n",
                         (unsigned long long)(LOG_TAIL_SCAN >> 20), (long long)cut);
        http_stream_write(c, note, (size_t)n);
    }
    http_conn_on_close(c, follow_conn_closed, f);
    uv_timer_start(&f->timer, follow_tick, 0, 0);
}

/* ---- POST /v1/workloads/NAME/exec ------------------------------------------------------------------------ */

struct exec_req {
    struct wl *w;
    struct http_conn *c;
    char **argv;
    int out, err;
};

/* A command's output buffer, which cannot hold more than EXEC_OUTPUT_MAX
 * and a page: a memfd sized at that (its pages come only when written)
 * and sealed against growing, so a command that prints without end (the
 * container may have replaced the one asked for) gets EPERM past it
 * instead of filling the host's memory.  The command writes through a
 * copy of this fd, so the shared file offset says how much it wrote.  The
 * page beyond the answer's 4 MiB is how a cut is told from output of
 * exactly 4 MiB: the kernel fills a memfd a page at a time and stops a
 * write at the first page that would not fit, so anything more than
 * 4 MiB leaves the offset past it. */
static int exec_buffer(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    if (ftruncate(fd, (off_t)EXEC_OUTPUT_MAX + (page > 0 ? page : 4096)) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static json_t *read_all(int fd, bool *cut)
{
    off_t n = lseek(fd, 0, SEEK_CUR);
    if (n < 0)
        n = 0;
    *cut = (size_t)n > EXEC_OUTPUT_MAX;
    size_t len = (size_t)n > EXEC_OUTPUT_MAX ? EXEC_OUTPUT_MAX : (size_t)n;
    char *b = malloc(len + 1);
    if (!b)
        abort();
    ssize_t got = pread(fd, b, len, 0);
    json_t *j = api_json_text(b, got > 0 ? (size_t)got : 0);
    free(b);
    return j;
}

static void exec_done(void *opaque, int status)
{
    struct exec_req *x = opaque;
    json_t *j = json_object();
    json_object_set_new(j, "exit_code", json_integer(status));
    bool cut_out, cut_err;
    json_object_set_new(j, "stdout", read_all(x->out, &cut_out));
    json_object_set_new(j, "stderr", read_all(x->err, &cut_err));
    if (cut_out || cut_err) {
        json_t *cut = json_array();
        if (cut_out)
            json_array_append_new(cut, json_string("stdout"));
        if (cut_err)
            json_array_append_new(cut, json_string("stderr"));
        json_object_set_new(j, "truncated", cut);
    }
    if (status < 0)
        json_object_set_new(j, "error", json_string("the command could not be run in the workload"));
    http_respond_json(x->c, 200, j);
    http_conn_unref(x->c);
    wl_unref(x->w);
    close(x->out);
    close(x->err);
    for (char **a = x->argv; *a; a++)
        free(*a);
    free(x->argv);
    free(x);
}

void api_exec(struct api *a, struct http_conn *c, const char *name, const struct http_request *req)
{
    struct wl *w = api_find(a, c, name);
    if (!w)
        return;
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *cmd = json_object_get(body, "command");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > 4096) {
        json_decref(body);
        http_respond_error(c, 400, "exec wants {\"command\": [\"program\", \"arg\", ...]}");
        return;
    }
    if (!w->inst || !w->inst_running) {
        json_decref(body);
        http_respond_error(c, 409, "%s is not running (%s)", name, wl_state_name(w));
        return;
    }
    uint64_t timeout_ms = 0;
    json_t *to = json_object_get(body, "timeout");
    const char *why = NULL;
    if (to && (!json_is_string(to) || !units_duration_parse(json_string_value(to), &timeout_ms, &why))) {
        json_decref(body);
        http_respond_error(c, 400, "exec's timeout is a duration such as \"30s\" or \"2m\"%s%s", why ? ": " : "",
                           why ? why : "");
        return;
    }
    struct driver *drv = daemon_driver(a->d, w->inst_backend);
    char cannot[DUET_ERR_MSG_MAX] = "";
    if (!drv || !(drv->flags & DRIVER_CAN_EXEC) ||
        (drv->exec_supported && !drv->exec_supported(drv, w->spec, cannot, sizeof(cannot)))) {
        json_decref(body);
        if (!cannot[0])
            snprintf(cannot, sizeof(cannot), "%s runs as a %s, whose backend cannot run commands inside it", name,
                     backend_kind_name(w->inst_backend));
        http_respond_error(c, 409, "%s", cannot);
        return;
    }
    /* stdin, tty: the client's input and a terminal (exec_io.c). */
    json_t *in = json_object_get(body, "stdin"), *tty = json_object_get(body, "tty");
    json_t *rows = json_object_get(body, "rows"), *cols = json_object_get(body, "cols");
    if ((in && !json_is_boolean(in)) || (tty && !json_is_boolean(tty)) ||
        (rows && (!json_is_integer(rows) || json_integer_value(rows) < 0 || json_integer_value(rows) > 65535)) ||
        (cols && (!json_is_integer(cols) || json_integer_value(cols) < 0 || json_integer_value(cols) > 65535))) {
        json_decref(body);
        http_respond_error(c, 400, "exec's stdin and tty are true or false, rows and cols numbers from 0 to 65535");
        return;
    }
    char **argv = calloc(json_array_size(cmd) + 1, sizeof(char *));
    if (!argv)
        abort();
    size_t i;
    json_t *arg;
    json_array_foreach(cmd, i, arg) {
        const char *s = json_string_value(arg);
        argv[i] = strdup(s ? s : "");
    }
    if (json_is_true(in) || json_is_true(tty)) {
        api_exec_interactive(a, c, w, drv, argv, json_is_true(tty), (unsigned)json_integer_value(rows),
                             (unsigned)json_integer_value(cols), timeout_ms);
        json_decref(body);
        return;
    }
    json_decref(body);
    struct exec_req *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->argv = argv;
    x->out = exec_buffer("duet-exec-out");
    x->err = exec_buffer("duet-exec-err");
    x->w = w;
    wl_ref(w);
    x->c = c;
    http_conn_ref(c);
    struct duet_err err = {0};
    if (x->out < 0 || x->err < 0 ||
        drv->exec(drv, w->inst, (const char *const *)x->argv, x->out, x->err, timeout_ms, exec_done, x, &err) < 0) {
        http_respond_error(c, 409, "%s", err.msg[0] ? err.msg : "cannot make output buffers for exec");
        x->c = c;
        exec_done(x, -1);
    }
}

