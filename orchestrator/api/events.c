/*
 * events.c - GET /v1/events: what happened, then (follow) what happens.
 *
 * Followers are fed by one event sink of the daemon's.  A follower that
 * does not read is dropped once its backlog passes the server's bound
 * (http.c), so a stalled client never holds events in memory for ever.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/api/internal.h"

#define EVENTS_DEFAULT_LIMIT 1000

struct event_sub {
    struct event_sub *next;
    struct http_conn *c;
    char workload[64];
    struct api *a;
};

static void sub_remove(struct api *a, struct event_sub *s)
{
    for (struct event_sub **p = &a->subs; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    http_conn_on_close(s->c, NULL, NULL);
    http_conn_unref(s->c);
    free(s);
}

static void sub_closed(void *opaque, struct http_conn *c)
{
    (void)c;
    struct event_sub *s = opaque;
    sub_remove(s->a, s);
}

static char *event_line(const struct store_event *e)
{
    json_t *j = api_event_json(e);
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!t)
        abort();
    size_t n = strlen(t);
    char *o = realloc(t, n + 2);
    if (!o)
        abort();
    o[n] = '\n';
    o[n + 1] = '\0';
    return o;
}

/* The daemon's sink: each event to every follower that wants it. */
static void sink_emit(struct event_sink *sink, const struct store_event *e)
{
    struct api *a = (struct api *)((char *)sink - offsetof(struct api, sink));
    if (!a->subs)
        return;
    char *line = event_line(e);
    for (struct event_sub *s = a->subs, *next; s; s = next) {
        next = s->next;
        if (s->workload[0] && (!e->workload || strcmp(s->workload, e->workload) != 0))
            continue;
        if (!http_stream_write(s->c, line, strlen(line)))
            sub_remove(a, s);
    }
    free(line);
}

void api_events_init(struct api *a)
{
    a->sink.emit = sink_emit;
    daemon_event_sink_add(a->d, &a->sink);
    a->sink_added = true;
}

void api_events_close(struct api *a)
{
    while (a->subs) {
        http_stream_end(a->subs->c);
        sub_remove(a, a->subs);
    }
    if (a->sink_added)
        daemon_event_sink_remove(a->d, &a->sink);
    a->sink_added = false;
}

struct events_out {
    struct http_conn *c;
    bool ok;
};

static void stream_event(void *opaque, const struct store_event *e)
{
    struct events_out *o = opaque;
    if (!o->ok)
        return;
    char *line = event_line(e);
    o->ok = http_stream_write(o->c, line, strlen(line));
    free(line);
}

void api_get_events(struct api *a, struct http_conn *c, const char *query)
{
    struct daemon *d = a->d;
    char v[64];
    int64_t since = 0;
    if (http_query_get(query, "since", v, sizeof(v)))
        since = strtoll(v, NULL, 10);
    char wl[64] = "";
    if (http_query_get(query, "workload", v, sizeof(v)))
        snprintf(wl, sizeof(wl), "%s", v);
    bool follow = http_query_get(query, "follow", v, sizeof(v)) && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
    http_stream_begin(c, 200, "application/x-ndjson");
    struct events_out o = {c, true};
    struct duet_err err = {0};
    store_events(d->store, since, wl[0] ? wl : NULL, wl[0] ? EVENTS_DEFAULT_LIMIT : INT32_MAX, stream_event, &o, &err);
    if (!follow || !o.ok) {
        http_stream_end(c);
        return;
    }
    struct event_sub *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->c = c;
    s->a = a;
    snprintf(s->workload, sizeof(s->workload), "%s", wl);
    http_conn_ref(c);
    http_conn_on_close(c, sub_closed, s);
    s->next = a->subs;
    a->subs = s;
}

