/*
 * snapshots.c - /v1/workloads/NAME/snapshots: a workload's snapshots
 * listed, taken, restored and removed (docs/api.md).  Taking and
 * restoring answer when the workload runs again (or stays ended, as it
 * was); the client waits meanwhile, as for a pull.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "orchestrator/api/internal.h"
#include "storage/snapshot.h"

struct snap_req {
    struct http_conn *c;
    int ok_status;
    char snap[64];
};

static void snap_answer(void *opaque, const struct duet_err *err, json_t *meta)
{
    struct snap_req *r = opaque;
    if (!http_conn_closed(r->c)) {
        if (err)
            http_respond_error(r->c, api_status_of(err->code), "%s", err->msg);
        else
            http_respond_json(r->c, r->ok_status, json_incref(meta));
    }
    http_conn_unref(r->c);
    free(r);
}

static void rm_answer(void *opaque, const struct duet_err *err)
{
    struct snap_req *r = opaque;
    if (!http_conn_closed(r->c)) {
        if (err)
            http_respond_error(r->c, api_status_of(err->code), "%s", err->msg);
        else
            http_respond_json(r->c, 200, json_pack("{s:s}", "removed", r->snap));
    }
    http_conn_unref(r->c);
    free(r);
}

static struct snap_req *req_new(struct http_conn *c, int ok_status)
{
    struct snap_req *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->c = c;
    r->ok_status = ok_status;
    http_conn_ref(c);
    return r;
}

/* A snapshot name given, or one made from the time (s20261201-134502). */
static bool snap_name(json_t *body, char *out, size_t len)
{
    const char *given = json_string_value(json_object_get(body, "name"));
    if (given) {
        snprintf(out, len, "%s", given);
        return strlen(given) < len && manifest_name_valid(given, strlen(given));
    }
    time_t t = (time_t)(clock_wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "s%Y%m%d-%H%M%S", &tm);
    return true;
}

static void snap_start(struct api *a, struct http_conn *c, const char *name, const char *snap, bool restore)
{
    struct snap_req *r = req_new(c, restore ? 200 : 201);
    struct duet_err err = {0};
    if (daemon_snapshot(a->d, name, snap, restore, snap_answer, r, &err) < 0) {
        http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        http_conn_unref(c);
        free(r);
    }
}

void api_snapshots(struct api *a, struct http_conn *c, const struct http_request *req, const char *name,
                   const char *sub)
{
    struct daemon *d = a->d;
    bool get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST"), del = !strcmp(req->method, "DELETE");
    if (!daemon_wl_find(d, name)) {
        http_respond_error(c, 404, "no workload named \"%.63s\"; duet get lists them", name);
        return;
    }
    char root[4200];
    snprintf(root, sizeof(root), "%s/snapshots", d->state_dir);
    if (!*sub && get) {
        struct duet_err err = {0};
        json_t *list = snapshot_list(root, name, &err);
        if (!list) {
            http_respond_error(c, api_status_of(err.code), "%s", err.msg);
            return;
        }
        http_respond_json(c, 200, json_pack("{s:o}", "snapshots", list));
        return;
    }
    if (!*sub && post) {
        json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : json_object();
        char snap[64];
        bool ok = body && snap_name(body, snap, sizeof(snap));
        json_decref(body);
        if (!ok) {
            http_respond_error(c, 422,
                               "a snapshot is named by 1 to 63 lower-case letters, digits and '-', starting and "
                               "ending with a letter or digit (e.g. before-upgrade)");
            return;
        }
        return snap_start(a, c, name, snap, false);
    }
    if (*sub != '/') {
        http_respond_error(c, 404, "no route for %s /v1/workloads/%s/snapshots%.100s (see docs/api.md)", req->method,
                           name, sub);
        return;
    }
    const char *snap = sub + 1, *slash = strchr(snap, '/');
    size_t n = slash ? (size_t)(slash - snap) : strlen(snap);
    char sn[64];
    if (n == 0 || n >= sizeof(sn) || !manifest_name_valid(snap, n)) {
        http_respond_error(c, 404, "\"%.*s\" is not a snapshot name", (int)(n > 63 ? 63 : n), snap);
        return;
    }
    memcpy(sn, snap, n);
    sn[n] = '\0';
    if (!slash && get) {
        struct duet_err err = {0};
        json_t *meta = snapshot_get(root, name, sn, &err);
        if (!meta)
            http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        else
            http_respond_json(c, 200, meta);
        return;
    }
    if (slash && !strcmp(slash, "/restore") && post)
        return snap_start(a, c, name, sn, true);
    if (!slash && del) {
        struct wl *w = daemon_wl_find(d, name);
        if (w->hold && w->restore_from && !strcmp(w->restore_from, sn)) {
            http_respond_error(c, 409, "workload %s is being restored from snapshot %s; wait for it", name, sn);
            return;
        }
        struct snap_req *r = req_new(c, 200);
        snprintf(r->snap, sizeof(r->snap), "%s", sn);
        daemon_snapshot_remove(d, name, sn, rm_answer, r);
        return;
    }
    http_respond_error(c, 404, "no route for %s /v1/workloads/%s/snapshots%.100s (see docs/api.md)", req->method, name,
                       sub);
}
