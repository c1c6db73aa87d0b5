/*
 * qga.c - exec through the QEMU guest agent (qga.h).
 */
#include "qga.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
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
#define QGA_CALL_TIMEOUT_S 10

struct vm_qga_exec {
    uv_work_t work;
    struct vm_qga_exec *next, **list;   /* list: the instance's, NULL once it let go */
    virConnectPtr conn;
    char uuid[VIR_UUID_STRING_BUFLEN];
    char name[128];
    char **argv;
    int out_fd, err_fd;
    uint64_t timeout_ms;
    atomic_bool cancelled;
    char why_cancelled[256];
    void (*exited)(void *opaque, int status);
    void *opaque;
    /* the result, from the worker */
    int status;
    char msg[768];
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

/* ---- the worker ------------------------------------------------------------------------------------- */

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

static char *agent_call(virDomainPtr d, json_t *cmd)
{
    char *text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (!text)
        abort();
    char *reply = virDomainQemuAgentCommand(d, text, QGA_CALL_TIMEOUT_S, 0);
    free(text);
    return reply;
}

static void fail(struct vm_qga_exec *x, const char *fmt, const char *arg)
{
    x->status = -1;
    snprintf(x->msg, sizeof(x->msg), fmt, arg ? arg : "");
}

static void kill_in_guest(virDomainPtr d, long pid)
{
    char num[32];
    snprintf(num, sizeof(num), "%ld", pid);
    json_t *args = json_pack("{s:s, s:[s, s]}", "path", "kill", "arg", "-KILL", num);
    free(agent_call(d, json_pack("{s:s, s:o}", "execute", "guest-exec", "arguments", args)));
    virResetLastError();
}

static void on_work(uv_work_t *req)
{
    struct vm_qga_exec *x = req->data;
    virDomainPtr d = virDomainLookupByUUIDString(x->conn, x->uuid);
    if (!d) {
        fail(x, "it is no longer running%s", NULL);
        virResetLastError();
        return;
    }
    json_t *args = json_object();
    json_object_set_new(args, "path", json_string(x->argv[0]));
    json_t *arg = json_array();
    for (char **a = x->argv + 1; *a; a++)
        json_array_append_new(arg, json_string(*a));
    json_object_set_new(args, "arg", arg);
    json_object_set_new(args, "capture-output", json_true());
    char *reply = agent_call(d, json_pack("{s:s, s:o}", "execute", "guest-exec", "arguments", args));
    if (!reply) {
        const char *m = virGetLastErrorMessage();
        fail(x,
             "its guest answers no QEMU guest agent (%s): exec and exec health checks in a VM that boots its own "
             "disk image need qemu-guest-agent running in the image",
             m);
        virResetLastError();
        virDomainFree(d);
        return;
    }
    const char *why = NULL;
    long pid = vm_qga_parse_pid(reply, &why);
    free(reply);
    if (pid < 0) {
        fail(x, "its QEMU guest agent: %s", why);
        virDomainFree(d);
        return;
    }
    uint64_t t0 = mono_ms();
    unsigned wait_ms = 10;
    for (;;) {
        if (atomic_load(&x->cancelled)) {
            kill_in_guest(d, pid);
            x->status = -1;
            break;
        }
        if (x->timeout_ms && mono_ms() - t0 >= x->timeout_ms) {
            kill_in_guest(d, pid);
            x->status = 137;
            snprintf(x->msg, sizeof(x->msg), "the command was killed at its timeout");
            break;
        }
        json_t *sargs = json_pack("{s:I}", "pid", (json_int_t)pid);
        reply = agent_call(d, json_pack("{s:s, s:o}", "execute", "guest-exec-status", "arguments", sargs));
        if (!reply) {
            fail(x, "its QEMU guest agent stopped answering (%s)", virGetLastErrorMessage());
            virResetLastError();
            break;
        }
        bool exited = false;
        int status = -1;
        char *out, *errs;
        size_t out_len, err_len;
        int rc = vm_qga_parse_status(reply, &exited, &status, &out, &out_len, &errs, &err_len, &why);
        free(reply);
        if (rc < 0) {
            fail(x, "its QEMU guest agent: %s", why);
            break;
        }
        if (exited) {
            write_all(x->out_fd, out ? out : "", out_len);
            write_all(x->err_fd, errs ? errs : "", err_len);
            free(out);
            free(errs);
            x->status = status;
            break;
        }
        /* Quick commands answer within the first polls; long ones are
         * asked every 200 ms. */
        usleep(wait_ms * 1000);
        if (wait_ms < 200)
            wait_ms *= 2;
    }
    virDomainFree(d);
}

static void on_done(uv_work_t *req, int status)
{
    struct vm_qga_exec *x = req->data;
    if (x->list) {
        for (struct vm_qga_exec **p = x->list; *p; p = &(*p)->next)
            if (*p == x) {
                *p = x->next;
                break;
            }
    }
    if (status == UV_ECANCELED)
        fail(x, "the command was cancelled before it ran%s", NULL);
    if (atomic_load(&x->cancelled)) {
        x->status = -1;
        snprintf(x->msg, sizeof(x->msg), "%s", x->why_cancelled);
    }
    if (x->msg[0] && x->err_fd >= 0) {
        char line[1024];
        int n = snprintf(line, sizeof(line), "duet: VM %s: %s\n", x->name, x->msg);
        write_all(x->err_fd, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    x->exited(x->opaque, x->status);
    virConnectClose(x->conn);
    for (char **a = x->argv; *a; a++)
        free(*a);
    free(x->argv);
    free(x);
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
    int rc = uv_queue_work(loop, &x->work, on_work, on_done);
    if (rc < 0) {
        virConnectClose(conn);
        for (size_t i = 0; i < n; i++)
            free(x->argv[i]);
        free(x->argv);
        free(x);
        return duet_err_set(err, -rc, "VM %s: cannot queue the command (%s)", name, uv_strerror(rc));
    }
    x->list = list;
    x->next = *list;
    *list = x;
    return 0;
}

void vm_qga_cancel_all(struct vm_qga_exec **list, const char *why)
{
    while (*list) {
        struct vm_qga_exec *x = *list;
        *list = x->next;
        x->list = NULL;
        snprintf(x->why_cancelled, sizeof(x->why_cancelled), "%s", why);
        atomic_store(&x->cancelled, true);
    }
}
