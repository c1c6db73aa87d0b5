/*
 * backups.c - POST /v1/workloads/NAME/backup and POST /v1/restore
 * (docs/api.md).  The archive is a file on this host named by an
 * absolute path, written or read with the rights of the client that
 * asks (its peer credentials), never the daemon's.  Both answer when the
 * work is done; the client waits meanwhile, as for a snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/api/internal.h"

static void answer(void *opaque, const struct duet_err *err, json_t *result)
{
    struct http_conn *c = opaque;
    if (!http_conn_closed(c)) {
        if (err)
            http_respond_error(c, api_status_of(err->code), "%s", err->msg);
        else
            http_respond_json(c, 201, json_incref(result));
    }
    http_conn_unref(c);
}

static json_t *body_object(struct http_conn *c, const struct http_request *req, const char **path)
{
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    *path = json_string_value(json_object_get(body, "path"));
    if (!json_is_object(body) || !*path || (*path)[0] != '/') {
        http_respond_error(c, 400, "the body is {\"path\": \"/absolute/path\", ...}");
        json_decref(body);
        return NULL;
    }
    return body;
}

void api_backup(struct api *a, struct http_conn *c, const struct http_request *req, const char *name)
{
    const char *path;
    json_t *body = body_object(c, req, &path);
    if (!body)
        return;
    json_t *stop = json_object_get(body, "stop");
    struct duet_err err = {0};
    http_conn_ref(c);
    if (daemon_backup(a->d, name, path, json_is_true(stop), req->uid, req->gid, answer, c, &err) < 0) {
        http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        http_conn_unref(c);
    }
    json_decref(body);
}

void api_restore(struct api *a, struct http_conn *c, const struct http_request *req)
{
    const char *path;
    json_t *body = body_object(c, req, &path);
    if (!body)
        return;
    json_t *name = json_object_get(body, "name");
    if (name && !json_is_string(name)) {
        http_respond_error(c, 400, "name is a string: the workload's name here");
        json_decref(body);
        return;
    }
    struct duet_err err = {0};
    http_conn_ref(c);
    if (daemon_restore(a->d, path, json_string_value(name), req->uid, req->gid, answer, c, &err) < 0) {
        http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        http_conn_unref(c);
    }
    json_decref(body);
}
