/*
 * events.c - what happened, for the user: recorded, then told to sinks.
 *
 * An event is first written to the store (describe shows a workload's
 * recent ones, `duet events` reads them back from any point), then handed
 * to every sink: the daemon's log is one, each API event stream another.
 * The store is not a sink because it gives the event its id, which the
 * sinks pass on (a follower resumes from it).  A store that refuses the
 * event does not hold it back from the sinks: its id is then -1.
 */
#include <stdarg.h>
#include <stdio.h>

#include "orchestrator/daemon.h"

void daemon_event_sink_add(struct daemon *d, struct event_sink *s)
{
    struct event_sink **p = &d->sinks;
    while (*p)
        p = &(*p)->next;
    s->next = NULL;
    *p = s;
}

void daemon_event_sink_remove(struct daemon *d, struct event_sink *s)
{
    for (struct event_sink **p = &d->sinks; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            s->next = NULL;
            return;
        }
}

void daemon_event(struct daemon *d, const char *workload, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct store_event e = {.ts = (int64_t)now_ms(), .workload = workload, .type = type, .message = msg};
    struct duet_err err = {0};
    e.id = store_event_add(d->store, e.ts, workload, type, msg, &err);
    if (e.id < 0)
        fprintf(stderr, "duetd: the state store did not take an event: %s\n", err.msg);
    /* A sink may remove itself while it is told. */
    for (struct event_sink *s = d->sinks, *next; s; s = next) {
        next = s->next;
        s->emit(s, &e);
    }
}
