/*
 * qga.c - exec through the QEMU guest agent (qga.h).
 *
 * A command is a few agent calls: guest-exec, then guest-exec-status until
 * it has ended (or guest-exec of kill at its timeout).  Each call blocks
 * in libvirt, so each runs on the thread pool by itself; the waits
 * between them are timers on the loop.  A command that runs for an hour
 * thus holds a pool thread for a few milliseconds every 200 ms, never for
 * the hour: the pool stays free for the VM operations that need it.
 */
#include "qga.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "common/base64.h"

/* Seconds libvirt waits for one answer of the agent's. */
#define QGA_CALL_TIMEOUT_S 5
#define QGA_POLL_FIRST_MS 10
#define QGA_POLL_MAX_MS 200

enum qga_step { QGA_EXEC, QGA_STATUS, QGA_KILL };

struct vm_qga_exec {
    uv_loop_t *loop;
    uv_work_t work;
    uv_timer_t timer;
    struct vm_qga_exec *next, **list;   /* list: the instance's, NULL once it let go */
    virConnectPtr conn;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    char **argv;
    int out_fd, err_fd;
    uint64_t timeout_ms, t0;
    unsigned wait_ms;
    bool cancelled, in_call;
    char why_cancelled[256];
    void (*exited)(void *opaque, int status);
    void *opaque;
    long pid;                           /* in the guest, once started */
    enum qga_step step;                 /* the call in flight */
    /* the call's answer, from the worker: reply (malloc'd), or call_err */
    char *reply;
    char call_err[512];
    /* how it ends once the kill is done */
    int final_status;
    char final_msg[256];
};

/* ---- answers ---------------------------------------------------------------------------------------- */

long vm_qga_parse_pid(const char *reply, const char **why)
{
    json_t *j = reply ? json_loads(reply, 0, NULL) : NULL;
    json_t *pid = json_object_get(json_object_get(j, "return"), "pid");
    long v = json_is_integer(pid) ? (long)json_integer_value(pid) : -1;
    json_decref(j);
    if (v <= 0) {
        *why = "its answer to guest-exec names no process";
        return -1;
    }
    return v;
}

static int decode(json_t *r, const char *key, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    json_t *v = json_object_get(r, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    size_t cap = base64_decoded_max(n);
    *out = malloc(cap + 1);
    if (!*out)
        abort();
    ssize_t got = base64_decode(json_string_value(v), n, (uint8_t *)*out, cap);
    if (got < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    (*out)[got] = '\0';
    *len = (size_t)got;
    return 0;
}

int vm_qga_parse_status(const char *reply, bool *exited, int *status, char **out, size_t *out_len, char **errs,
                        size_t *err_len, const char **why)
{
    *out = *errs = NULL;
    *out_len = *err_len = 0;
    json_t *j = reply ? json_loads(reply, 0, NULL) : NULL;
    json_t *r = json_object_get(j, "return");
    json_t *ex = json_object_get(r, "exited");
    int rc = -1;
    *why = "its answer to guest-exec-status is not what the agent answers";
    if (!json_is_boolean(ex))
        goto out;
    *exited = json_is_true(ex);
    if (!*exited) {
        rc = 0;
        goto out;
    }
    json_t *code = json_object_get(r, "exitcode"), *sig = json_object_get(r, "signal");
    if (json_is_integer(sig) && json_integer_value(sig) > 0 && json_integer_value(sig) < 128)
        *status = 128 + (int)json_integer_value(sig);
    else if (json_is_integer(code) && json_integer_value(code) >= 0 && json_integer_value(code) <= 255)
        *status = (int)json_integer_value(code);
    else
        goto out;
    if (decode(r, "out-data", out, out_len) < 0 || decode(r, "err-data", errs, err_len) < 0) {
        *why = "its answer to guest-exec-status carries output that is not base64";
        free(*out);
        free(*errs);
        *out = *errs = NULL;
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* ---- one call, on the pool --------------------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;   /* past what the caller takes: dropped, as a container's would be */
        p += w;
        n -= (size_t)w;
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static json_t *command_of(const struct vm_qga_exec *x)
{
    char num[32];
    json_t *args;
    switch (x->step) {
    case QGA_EXEC: {
        args = json_object();
        json_object_set_new(args, "path", json_string(x->argv[0]));
        json_t *arg = json_array();
        for (char **a = x->argv + 1; *a; a++)
            json_array_append_new(arg, json_string(*a));
        json_object_set_new(args, "arg", arg);
        json_object_set_new(args, "capture-output", json_true());
        return json_pack("{s:s, s:o}", "execute", "guest-exec", "arguments", args);
    }
    case QGA_STATUS:
        return json_pack("{s:s, s:{s:I}}", "execute", "guest-exec-status", "arguments", "pid", (json_int_t)x->pid);
    case QGA_KILL:
        snprintf(num, sizeof(num), "%ld", x->pid);
        return json_pack("{s:s, s:{s:s, s:[s, s]}}", "execute", "guest-exec", "arguments", "path", "kill", "arg",
                         "-KILL", num);
    }
    return NULL;
}

static void on_work(uv_work_t *req)
{
    struct vm_qga_exec *x = req->data;
    virDomainPtr d = virDomainLookupByUUIDString(x->conn, x->uuid);
    if (!d) {
        snprintf(x->call_err, sizeof(x->call_err), "it is no longer running");
        virResetLastError();
        return;
    }
    json_t *cmd = command_of(x);
    char *text = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
    json_decref(cmd);
    if (!text)
        abort();
    x->reply = virDomainQemuAgentCommand(d, text, QGA_CALL_TIMEOUT_S, 0);
    free(text);
    if (!x->reply) {
        const char *m = virGetLastErrorMessage();
        snprintf(x->call_err, sizeof(x->call_err), "%s", m ? m : "no answer");
        virResetLastError();
    }
    virDomainFree(d);
}

/* ---- on the loop ------------------------------------------------------------------------------------ */

static void on_after(uv_work_t *req, int status);

static void x_free(uv_handle_t *h)
{
    struct vm_qga_exec *x = h->data;
    virConnectClose(x->conn);
    for (char **a = x->argv; *a; a++)
        free(*a);
    free(x->argv);
    free(x);
}

/* Reports x and lets it go. */
static void finish(struct vm_qga_exec *x, int status, const char *msg)
{
    if (x->list) {
        for (struct vm_qga_exec **p = x->list; *p; p = &(*p)->next)
            if (*p == x) {
                *p = x->next;
                break;
            }
        x->list = NULL;
    }
    if (msg && msg[0] && x->err_fd >= 0) {
        char line[1024];
        int n = snprintf(line, sizeof(line), "duet: VM %s: %s\n", x->name, msg);
        write_all(x->err_fd, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    x->exited(x->opaque, status);
    uv_close((uv_handle_t *)&x->timer, x_free);
}

static void call(struct vm_qga_exec *x, enum qga_step step)
{
    x->step = step;
    x->reply = NULL;
    x->call_err[0] = '\0';
    x->in_call = true;
    int rc = uv_queue_work(x->loop, &x->work, on_work, on_after);
    if (rc < 0) {
        x->in_call = false;
        char msg[128];
        snprintf(msg, sizeof(msg), "cannot ask its QEMU guest agent (%s)", uv_strerror(rc));
        finish(x, step == QGA_KILL ? x->final_status : -1, msg);
    }
}

/* Ends the command in the guest, then reports it with status and msg. */
static void kill_then_finish(struct vm_qga_exec *x, int status, const char *msg)
{
    x->final_status = status;
    snprintf(x->final_msg, sizeof(x->final_msg), "%s", msg);
    call(x, QGA_KILL);
}

static void on_timer(uv_timer_t *t)
{
    struct vm_qga_exec *x = t->data;
    if (x->cancelled)
        kill_then_finish(x, -1, x->why_cancelled);
    else if (x->timeout_ms && mono_ms() - x->t0 >= x->timeout_ms)
        kill_then_finish(x, 137, "the command was killed at its timeout");
    else
        call(x, QGA_STATUS);
}

static void on_after(uv_work_t *req, int status)
{
    struct vm_qga_exec *x = req->data;
    x->in_call = false;
    char *reply = x->reply;
    x->reply = NULL;
    char msg[768];
    const char *why = NULL;
    if (status == UV_ECANCELED) {
        free(reply);
        finish(x, -1, "the command was cancelled before it ran");
        return;
    }
    switch (x->step) {
    case QGA_EXEC:
        if (!reply) {
            snprintf(msg, sizeof(msg),
                     "its guest answers no QEMU guest agent (%s): exec and exec health checks in a VM that boots its "
                     "own disk image need qemu-guest-agent running in the image",
                     x->call_err);
            finish(x, -1, msg);
            return;
        }
        x->pid = vm_qga_parse_pid(reply, &why);
        free(reply);
        if (x->pid < 0) {
            snprintf(msg, sizeof(msg), "its QEMU guest agent: %s", why);
            finish(x, -1, msg);
            return;
        }
        if (x->cancelled) {
            kill_then_finish(x, -1, x->why_cancelled);
            return;
        }
        x->t0 = mono_ms();
        x->wait_ms = QGA_POLL_FIRST_MS;
        uv_timer_start(&x->timer, on_timer, x->wait_ms, 0);
        return;
    case QGA_STATUS: {
        if (!reply) {
            snprintf(msg, sizeof(msg), "its QEMU guest agent stopped answering (%s)", x->call_err);
            finish(x, -1, msg);
            return;
        }
        bool exited = false;
        int st = -1;
        char *out, *errs;
        size_t out_len, err_len;
        int rc = vm_qga_parse_status(reply, &exited, &st, &out, &out_len, &errs, &err_len, &why);
        free(reply);
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "its QEMU guest agent: %s", why);
            finish(x, -1, msg);
            return;
        }
        if (exited) {
            write_all(x->out_fd, out ? out : "", out_len);
            write_all(x->err_fd, errs ? errs : "", err_len);
            free(out);
            free(errs);
            finish(x, st, x->cancelled ? x->why_cancelled : NULL);
            return;
        }
        /* Quick commands end within the first polls; long ones are asked
         * every 200 ms. */
        if (x->wait_ms < QGA_POLL_MAX_MS)
            x->wait_ms *= 2;
        uv_timer_start(&x->timer, on_timer, x->cancelled ? 0 : x->wait_ms, 0);
        return;
    }
    case QGA_KILL:
        free(reply);   /* whatever it says: the command is over for duet */
        finish(x, x->final_status, x->final_msg);
        return;
    }
}

int vm_qga_exec(uv_loop_t *loop, virConnectPtr conn, const char *uuid, const char *name, const char *const *argv,
                int out_fd, int err_fd, uint64_t timeout_ms, void (*exited)(void *opaque, int status), void *opaque,
                struct vm_qga_exec **list, struct duet_err *err)
{
    if (!argv || !argv[0] || !argv[0][0])
        return duet_err_set(err, EINVAL, "VM %s: exec needs a command", name);
    size_t n = 0;
    for (const char *const *a = argv; *a; a++)
        n++;
    struct vm_qga_exec *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->argv = calloc(n + 1, sizeof(char *));
    if (!x->argv)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!(x->argv[i] = strdup(argv[i])))
            abort();
    x->loop = loop;
    snprintf(x->uuid, sizeof(x->uuid), "%s", uuid);
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->out_fd = out_fd;
    x->err_fd = err_fd;
    x->timeout_ms = timeout_ms;
    x->exited = exited;
    x->opaque = opaque;
    x->conn = conn;
    virConnectRef(conn);
    x->work.data = x;
    uv_timer_init(loop, &x->timer);
    x->timer.data = x;
    x->list = list;
    x->next = *list;
    *list = x;
    /* exited comes from the loop, never from within this call */
    x->step = QGA_EXEC;
    x->in_call = true;
    int rc = uv_queue_work(loop, &x->work, on_work, on_after);
    if (rc < 0) {
        *list = x->next;
        x->list = NULL;
        x->exited = NULL;
        uv_close((uv_handle_t *)&x->timer, x_free);
        return duet_err_set(err, -rc, "VM %s: cannot queue the command (%s)", name, uv_strerror(rc));
    }
    return 0;
}

void vm_qga_cancel_all(struct vm_qga_exec **list, const char *why)
{
    while (*list) {
        struct vm_qga_exec *x = *list;
        *list = x->next;
        x->list = NULL;
        x->cancelled = true;
        snprintf(x->why_cancelled, sizeof(x->why_cancelled), "%s", why);
        /* waiting for its next poll: kill it now; in a call: when it returns */
        if (!x->in_call)
            uv_timer_start(&x->timer, on_timer, 0, 0);
    }
}
