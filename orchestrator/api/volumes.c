/*
 * volumes.c - GET /v1/volumes, GET and DELETE /v1/volumes/NAME: the named
 * volumes (docs/storage.md).  Listing reads each volume's directory and
 * its filesystem's counters, which the loop can afford; removing one
 * (unmount, remove the tree) runs on a worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/api/internal.h"
#include "storage/volume.h"

static json_t *volume_json(struct daemon *d, const struct volume_info *v)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(v->name));
    json_object_set_new(j, "size", v->sized ? json_integer((json_int_t)v->size) : json_null());
    json_object_set_new(j, "used", v->mounted ? json_integer((json_int_t)v->used) : json_null());
    json_object_set_new(j, "mounted", json_boolean(v->mounted));
    json_object_set_new(j, "created_at", json_integer((json_int_t)v->created_ms));
    char path[4400];
    volume_data_path(d->volume_root, v->name, path, sizeof(path));
    json_object_set_new(j, "path", json_string(path));
    json_t *users = json_array();
    DAEMON_WL_FOREACH(d, w) {
        const struct wl_volume *vol = wl_volume_named(w->spec, v->name);
        if (vol)
            json_array_append_new(users, json_pack("{s:s,s:s,s:b}", "workload", w->name, "target", vol->target,
                                                   "read_only", vol->read_only));
    }
    json_object_set_new(j, "users", users);
    return j;
}

static void volumes_list(struct api *a, struct http_conn *c)
{
    struct volume_info *v;
    size_t n;
    struct duet_err err = {0};
    if (volume_list(a->d->volume_root, &v, &n, &err) < 0) {
        http_respond_error(c, 500, "%s", err.msg);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, volume_json(a->d, &v[i]));
    free(v);
    http_respond_json(c, 200, json_pack("{s:o}", "volumes", arr));
}

static void volume_get(struct api *a, struct http_conn *c, const char *name)
{
    struct volume_info v;
    struct duet_err err = {0};
    if (volume_inspect(a->d->volume_root, name, &v, &err) < 0) {
        http_respond_error(c, err.code == ENOENT ? 404 : 500, "%s", err.msg);
        return;
    }
    http_respond_json(c, 200, volume_json(a->d, &v));
}

struct rm_req {
    struct http_conn *c;
    char name[64];
};

static void volume_removed(void *opaque, const struct duet_err *err)
{
    struct rm_req *r = opaque;
    if (!http_conn_closed(r->c)) {
        if (err)
            http_respond_error(r->c, err->code == ENOENT ? 404 : err->code == EBUSY ? 409 : 500, "%s", err->msg);
        else
            http_respond_json(r->c, 200, json_pack("{s:s}", "removed", r->name));
    }
    http_conn_unref(r->c);
    free(r);
}

static void volume_delete(struct api *a, struct http_conn *c, const char *name)
{
    struct daemon *d = a->d;
    struct volume_info v;
    struct duet_err err = {0};
    if (volume_inspect(d->volume_root, name, &v, &err) < 0) {
        http_respond_error(c, err.code == ENOENT ? 404 : 500, "%s", err.msg);
        return;
    }
    /* As docker volume rm: not while a workload names it, running or
     * not, since its next start would make it anew, empty. */
    const char *user;
    size_t n = daemon_volume_users(d, name, &user);
    if (n) {
        http_respond_error(c, 409,
                           "volume %s is in use by workload %s%s: delete the workload first (duet delete %s "
                           "--volumes removes it with its volumes)",
                           name, user, n > 1 ? " and others" : "", user);
        return;
    }
    struct rm_req *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->c = c;
    snprintf(r->name, sizeof(r->name), "%s", name);
    http_conn_ref(c);
    daemon_volume_remove(d, name, volume_removed, r);
}

void api_volumes(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub)
{
    bool get = strcmp(req->method, "GET") == 0, del = strcmp(req->method, "DELETE") == 0;
    if (!*sub && get)
        return volumes_list(a, c);
    if (*sub == '/') {
        const char *name = sub + 1;
        if (!manifest_name_valid(name, strlen(name))) {
            http_respond_error(c, 404, "\"%.63s\" is not a volume name", name);
            return;
        }
        if (get)
            return volume_get(a, c, name);
        if (del)
            return volume_delete(a, c, name);
    }
    http_respond_error(c, 404, "no route for %s /v1/volumes%.100s (see docs/api.md)", req->method, sub);
}
