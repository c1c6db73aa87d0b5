#include "plan_output.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "units.h"

static json_t *number(double v)
{
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *backend_json(const struct driver_caps *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "available", json_boolean(c->available));
    json_object_set_new(o, "description", json_string(c->description));
    if (!c->available) {
        json_object_set_new(o, "reason", json_string(c->unavailable_reason));
        if (c->unavailable_fix[0])
            json_object_set_new(o, "fix", json_string(c->unavailable_fix));
    }
    json_object_set_new(o, "start_ms", json_integer((json_int_t)c->start_ms));
    json_object_set_new(o, "memory_overhead", json_integer((json_int_t)c->memory_overhead));
    json_object_set_new(o, "measured", json_boolean(c->measured));
    return o;
}

static json_t *host_json(const struct plan *p)
{
    const struct host_info *h = p->host;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(h->name));
    json_object_set_new(o, "source", json_string(h->source));
    json_object_set_new(o, "cpus", number(h->cpus));
    json_object_set_new(o, "memory", json_integer((json_int_t)h->memory));
    json_object_set_new(o, "vm_backend", json_string(h->backend[BACKEND_VM].description));
    json_object_set_new(o, "container_backend", json_string(h->backend[BACKEND_CONTAINER].description));
    json_object_set_new(o, "reserve", json_pack("{s:o,s:I}", "cpus", number(h->reserve_cpus), "memory",
                                                (json_int_t)h->reserve_memory));
    json_object_set_new(o, "overcommit", json_pack("{s:o,s:o}", "cpu", number(h->overcommit_cpu), "memory",
                                                   number(h->overcommit_memory)));
    json_object_set_new(o, "capacity", json_pack("{s:o,s:I}", "cpus", number(p->cpu_capacity), "memory",
                                                 (json_int_t)p->memory_capacity));
    json_object_set_new(o, "allocated", json_pack("{s:o,s:I}", "cpus", number(p->cpu_used), "memory",
                                                  (json_int_t)p->memory_used));
    json_object_set_new(o, "backends", json_pack("{s:o,s:o}", "vm", backend_json(&h->backend[BACKEND_VM]),
                                                 "container", backend_json(&h->backend[BACKEND_CONTAINER])));
    return o;
}

static json_t *ruled_out_json(const struct placement *pl)
{
    json_t *o = json_object();
    for (int b = 0; b < BACKEND_COUNT; b++)
        if (pl->ruled_out[b])
            json_object_set_new(o, backend_kind_name((enum backend_kind)b), json_string(pl->ruled_out[b]));
    return o;
}

int plan_print_json(const struct plan *p, FILE *out)
{
    json_t *root = json_object(), *wl = json_array(), *un = json_array();
    json_object_set_new(root, "host", host_json(p));
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed) {
            json_array_append_new(un, json_pack("{s:s,s:s,s:I,s:o}", "name", pl->w->name, "reason", pl->unplaceable,
                                                "start_order", (json_int_t)pl->start_order, "ruled_out",
                                                ruled_out_json(pl)));
            continue;
        }
        json_t *reasons = json_array();
        for (size_t r = 0; r < pl->n_reasons; r++)
            json_array_append_new(reasons, json_string(pl->reasons[r]));
        json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:I,s:s,s:o,s:I}", "name", pl->w->name, "backend",
                              backend_kind_name(pl->backend), "reasons", reasons, "ruled_out", ruled_out_json(pl),
                              "start_order", (json_int_t)pl->start_order, "role", wl_role_name(pl->w->role),
                              "cpus", number(pl->cpus), "memory", (json_int_t)pl->memory);
        if (pl->score[BACKEND_VM] || pl->score[BACKEND_CONTAINER])
            json_object_set_new(o, "score", json_pack("{s:i,s:i}", "vm", pl->score[BACKEND_VM], "container",
                                                      pl->score[BACKEND_CONTAINER]));
        json_array_append_new(wl, o);
    }
    json_object_set_new(root, "workloads", wl);
    json_object_set_new(root, "unplaceable", un);
    int rc = json_dumpf(root, out, JSON_INDENT(2)) == 0 && fputc('\n', out) != EOF ? 0 : -1;
    json_decref(root);
    return rc;
}

static const char *sz(uint64_t b, char *buf)
{
    return units_size_format(b, buf, 32);
}

void plan_print_table(const struct plan *p, FILE *out)
{
    const struct host_info *h = p->host;
    char a[32], b[32], c[32];
    fprintf(out, "Host %s (%s): %g CPUs, %s memory; reserved for the host: %g CPUs, %s\n", h->name, h->source,
            h->cpus, sz(h->memory, a), h->reserve_cpus, sz(h->reserve_memory, b));
    for (int k = 0; k < BACKEND_COUNT; k++) {
        const struct driver_caps *cp = &h->backend[k];
        if (cp->available)
            fprintf(out, "  %-9s backend: %s\n", backend_kind_name((enum backend_kind)k), cp->description);
        else
            fprintf(out, "  %-9s backend: unavailable: %s%s%s%s\n", backend_kind_name((enum backend_kind)k),
                    cp->unavailable_reason, cp->unavailable_fix[0] ? " (" : "", cp->unavailable_fix,
                    cp->unavailable_fix[0] ? ")" : "");
    }
    fprintf(out, "Capacity for workloads: %g CPUs (overcommit %g), %s (overcommit %g); this plan uses %g CPUs, %s\n\n",
            p->cpu_capacity, h->overcommit_cpu, sz(p->memory_capacity, a), h->overcommit_memory, p->cpu_used,
            sz(p->memory_used, c));

    int wname = 4;
    for (size_t i = 0; i < p->n; i++) {
        int l = (int)strlen(p->items[i].w->name);
        wname = l > wname ? l : wname;
    }
    fprintf(out, "%-5s  %-*s  %-9s  %-14s  %5s  %s\n", "ORDER", wname, "NAME", "BACKEND", "ROLE", "CPUS", "MEMORY");
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed)
            fprintf(out, "%-5u  %-*s  %-9s  %-14s  %5s  %s\n", pl->start_order, wname, pl->w->name, "-",
                    wl_role_name(pl->w->role), "-", "-");
        else
            fprintf(out, "%-5u  %-*s  %-9s  %-14s  %5g  %s\n", pl->start_order, wname, pl->w->name,
                    backend_kind_name(pl->backend), wl_role_name(pl->w->role), pl->cpus, sz(pl->memory, a));
    }
    fprintf(out, "\nWhy:\n");
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed)
            continue;
        fprintf(out, "  %s -> %s\n", pl->w->name, backend_kind_name(pl->backend));
        for (size_t r = 0; r < pl->n_reasons; r++)
            fprintf(out, "    - %s\n", pl->reasons[r]);
        for (int k = 0; k < BACKEND_COUNT; k++)
            if (pl->ruled_out[k])
                fprintf(out, "    - %s ruled out: %s\n", backend_kind_name((enum backend_kind)k), pl->ruled_out[k]);
    }
    if (p->n_unplaceable) {
        fprintf(out, "\nUnplaceable:\n");
        for (size_t i = 0; i < p->n; i++)
            if (!p->items[i].placed)
                fprintf(out, "  %s: %s\n", p->items[i].w->name, p->items[i].unplaceable);
    }
}
