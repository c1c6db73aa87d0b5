/*
 * estimate.c - duet compare --estimate: what each placement of a whole
 * fleet would cost on a host, without starting anything.
 *
 * The fleet is planned three times on the same host: as the policy places
 * it, with every workload pinned to containers, and with every workload
 * pinned to VMs.  Each plan charges what placement.c charges (a VM's
 * whole vCPUs and its memory plus the backend's overhead, a container its
 * limits), so the three agree with what apply would accept; a workload
 * that cannot run one way is unplaceable in that plan, with the reason.
 * Start times are the host's: measured by duetd when one answers and the
 * host is this one, else the backends' estimates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/client.h"
#include "cli/verbs.h"
#include "common/units.h"
#include "manifests/manifest.h"
#include "scheduler/hostprobe.h"
#include "scheduler/placement.h"

enum strategy { AS_PLANNED, ALL_CONTAINERS, ALL_VMS, STRATEGIES };
static const char *const strategy_key[STRATEGIES] = {"as_planned", "all_containers", "all_vms"};

/* The files' set; with auto, every placement left to the policy (what
 * rules a backend out, without the user's pin). */
static struct manifest_set *load(char **paths, size_t n, bool autoplace)
{
    struct manifest_set *set = manifest_set_new();
    for (size_t i = 0; i < n; i++)
        manifest_set_load_path(set, paths[i]);
    manifest_set_validate(set);
    if (manifest_set_ok(set) && autoplace)
        for (size_t i = 0; i < set->n_workloads; i++)   /* the set is ours */
            set->workloads[i]->placement = WL_PLACEMENT_AUTO;
    return set;
}

static const struct placement *find(const struct plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].w->name, name) == 0)
            return &p->items[i];
    return NULL;
}

/* The start times duetd measured on this host, when it answers. */
static void measured_starts(struct host_info *h, bool *measured)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    *measured = false;
    if (client_call_buf(client_socket_path(NULL), "GET", "/v1/info", NULL, 0, &b, 5000, &err) != 200) {
        free(b.data);
        return;
    }
    json_t *info = json_loads(b.data, 0, NULL);
    free(b.data);
    for (int k = 0; k < BACKEND_COUNT; k++) {
        json_t *x = json_object_get(json_object_get(info, "backends"), backend_kind_name((enum backend_kind)k));
        if (json_is_true(json_object_get(x, "measured")) && json_is_integer(json_object_get(x, "start_ms"))) {
            h->backend[k].start_ms = (uint64_t)json_integer_value(json_object_get(x, "start_ms"));
            h->backend[k].measured = true;
            *measured = true;
        }
    }
    json_decref(info);
}

/* One workload one way: what it would be charged and how long it would
 * take to start, or why it cannot run that way. */
struct way {
    bool possible;
    const char *reason;
    double cpus;
    uint64_t memory;
};

static json_t *way_json(const struct way *w, const struct host_info *h, enum backend_kind k)
{
    json_t *o = json_object();
    json_object_set_new(o, "possible", json_boolean(w->possible));
    if (!w->possible) {
        json_object_set_new(o, "reason", json_string(w->reason));
        return o;
    }
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)w->memory));
    json_object_set_new(o, "cpus", json_real(w->cpus));
    json_object_set_new(o, "start_ms", json_integer((json_int_t)h->backend[k].start_ms));
    json_object_set_new(o, "start_measured", json_boolean(h->backend[k].measured));
    return o;
}

struct totals {
    double cpus;
    uint64_t memory;
    unsigned other_way;            /* all-X: workloads that cannot be X, counted the other way */
    json_t *unplaceable;
};

static json_t *totals_json(struct totals *t, const struct host_info *h)
{
    json_t *o = json_object();
    uint64_t mcap = host_memory_capacity(h);
    double ccap = host_cpu_capacity(h);
    json_object_set_new(o, "memory_used", json_integer((json_int_t)t->memory));
    json_object_set_new(o, "memory_capacity", json_integer((json_int_t)mcap));
    json_object_set_new(o, "memory_headroom", json_integer((json_int_t)(mcap > t->memory ? mcap - t->memory : 0)));
    json_object_set_new(o, "cpus_used", json_real(t->cpus));
    json_object_set_new(o, "cpu_capacity", json_real(ccap));
    json_object_set_new(o, "cpu_headroom", json_real(ccap > t->cpus ? ccap - t->cpus : 0));
    json_object_set_new(o, "the_other_way", json_integer(t->other_way));
    json_object_set_new(o, "unplaceable", t->unplaceable);
    return o;
}

static void cell(char *b, size_t n, json_t *way)
{
    if (!json_is_true(json_object_get(way, "possible"))) {
        snprintf(b, n, "-");
        return;
    }
    char m[32];
    units_size_format((uint64_t)json_integer_value(json_object_get(way, "memory_bytes")), m, sizeof(m));
    snprintf(b, n, "%s, %.2f s%s", m, (double)json_integer_value(json_object_get(way, "start_ms")) / 1000.0,
             json_is_true(json_object_get(way, "start_measured")) ? "" : "*");
}

static void print_table(json_t *r)
{
    printf("estimate for %s (%s): nothing was started\n\n", json_string_value(json_object_get(r, "host")),
           json_string_value(json_object_get(r, "host_source")));
    printf("%-20s %-10s %-26s %s\n", "NAME", "PLAN", "AS A CONTAINER", "AS A VM");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(r, "workloads"), i, w) {
        char c[64], v[64];
        cell(c, sizeof(c), json_object_get(w, "container"));
        cell(v, sizeof(v), json_object_get(w, "vm"));
        const char *plan = json_string_value(json_object_get(w, "plan"));
        printf("%-20s %-10s %-26s %s\n", json_string_value(json_object_get(w, "name")), plan ? plan : "-", c, v);
    }
    printf("\n%-16s %-22s %-22s %s\n", "", "AS PLANNED", "ALL CONTAINERS", "ALL VMS");
    static const char *const rows[] = {"memory used", "memory left", "CPUs used", "CPUs left", "the other way",
                                       "unplaceable"};
    for (size_t row = 0; row < 6; row++) {
        printf("%-16s", rows[row]);
        for (int s = 0; s < STRATEGIES; s++) {
            json_t *st = json_object_get(json_object_get(r, "strategies"), strategy_key[s]);
            char b[64];
            if (row < 2) {
                units_size_format((uint64_t)json_integer_value(json_object_get(st, row ? "memory_headroom" : "memory_used")),
                                  b, sizeof(b));
            } else if (row < 4) {
                snprintf(b, sizeof(b), "%.2f", json_real_value(json_object_get(st, row == 2 ? "cpus_used" : "cpu_headroom")));
            } else if (row == 4) {
                snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(json_object_get(st, "the_other_way")));
            } else {
                snprintf(b, sizeof(b), "%zu", json_array_size(json_object_get(st, "unplaceable")));
            }
            printf(" %-22s", b);
        }
        printf("\n");
    }
    printf("\nmemory and CPUs are what each placement charges (a VM: whole vCPUs, its memory and the backend's\n"
           "overhead); all containers (all VMs) runs the other way what cannot be one; starts are %s\n"
           "(* estimated)\n",
           json_is_true(json_object_get(r, "starts_measured")) ? "measured by duetd on this host" : "the backends' estimates");
    json_array_foreach(json_object_get(r, "workloads"), i, w) {
        static const char *const ks[] = {"container", "vm"};
        for (int k = 0; k < 2; k++) {
            const char *why = json_string_value(json_object_get(json_object_get(w, ks[k]), "reason"));
            if (why)
                printf("%s: not as a %s: %s\n", json_string_value(json_object_get(w, "name")), ks[k], why);
        }
    }
}

int cli_compare_estimate(char **paths, size_t n, const char *guest_kernel, const char *config, bool json)
{
    struct manifest_set *given = load(paths, n, false), *free_set = load(paths, n, true);
    int rc = 0;
    if (!manifest_set_ok(given)) {
        diag_sort(&given->diags);
        diag_print(&given->diags, stderr);
        fprintf(stderr, "duet: %zu error%s in the manifests; nothing was estimated\n", diag_count(&given->diags),
                diag_count(&given->diags) == 1 ? "" : "s");
        rc = 1;
        goto out;
    }
    struct host_info host;
    bool measured = false;
    if (given->host) {
        host_info_from_spec(&host, given->host);
    } else {
        struct duet_err err = {0};
        struct host_probe_opts po = {.guest_kernel = guest_kernel};
        struct cli_probe_keep keep;
        if (cli_probe_settle(config, &po, &keep)) {
            rc = 1;
            goto out;
        }
        if (host_probe(&host, &po, &err) < 0) {
            fprintf(stderr, "duet: %s\n", err.msg);
            rc = 1;
            goto out;
        }
        measured_starts(&host, &measured);
    }
    struct plan *plan = plan_new(given, &host), *open = plan_new(free_set, &host);
    json_t *r = json_object(), *ws = json_array(), *sts = json_object();
    json_object_set_new(r, "host", json_string(host.name));
    json_object_set_new(r, "host_source", json_string(host.source));
    json_object_set_new(r, "starts_measured", json_boolean(measured));
    struct totals t[STRATEGIES] = {{0}};
    for (int s = 0; s < STRATEGIES; s++)
        t[s].unplaceable = json_array();
    for (size_t i = 0; i < given->n_workloads; i++) {
        const struct workload_spec *spec = given->workloads[i];
        const struct placement *pl = find(plan, spec->name), *po = find(open, spec->name);
        struct way way[BACKEND_COUNT];
        for (int k = 0; k < BACKEND_COUNT; k++) {
            const char *out = po ? po->ruled_out[k] : "not planned";
            way[k] = (struct way){.possible = !out, .reason = out};
            placement_cost(spec, &host, (enum backend_kind)k, &way[k].cpus, &way[k].memory);
        }
        json_t *w = json_object();
        json_object_set_new(w, "name", json_string(spec->name));
        json_object_set_new(w, "plan", pl && pl->placed ? json_string(backend_kind_name(pl->backend)) : json_null());
        json_object_set_new(w, "container", way_json(&way[BACKEND_CONTAINER], &host, BACKEND_CONTAINER));
        json_object_set_new(w, "vm", way_json(&way[BACKEND_VM], &host, BACKEND_VM));
        json_array_append_new(ws, w);
        /* as planned: the plan's backend; all X: X where it can be, else the other way */
        for (int s = 0; s < STRATEGIES; s++) {
            int k = s == AS_PLANNED ? (pl && pl->placed ? (int)pl->backend : -1)
                                    : s == ALL_VMS ? BACKEND_VM : BACKEND_CONTAINER;
            if (s != AS_PLANNED && !way[k].possible) {
                k = k == BACKEND_VM ? BACKEND_CONTAINER : BACKEND_VM;
                if (way[k].possible)
                    t[s].other_way++;
                else
                    k = -1;
            }
            if (k < 0) {
                json_array_append_new(t[s].unplaceable, json_string(spec->name));
                continue;
            }
            t[s].cpus += way[k].cpus;
            t[s].memory += way[k].memory;
        }
    }
    json_object_set_new(r, "workloads", ws);
    for (int s = 0; s < STRATEGIES; s++)
        json_object_set_new(sts, strategy_key[s], totals_json(&t[s], &host));
    json_object_set_new(r, "strategies", sts);
    if (json) {
        char *txt = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", txt);
        free(txt);
    } else {
        print_table(r);
    }
    json_decref(r);
    plan_free(plan);
    plan_free(open);
out:
    manifest_set_free(given);
    manifest_set_free(free_set);
    return rc;
}
