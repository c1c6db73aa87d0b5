/*
 * placement.h - where each workload runs (VM or container), and why.
 *
 * plan_new() is a pure function of the manifests and a host description:
 *   1. start order: dependsOn levels (0 = depends on nothing);
 *   2. in that order, for each workload, rule backends out with a reason
 *      (what the workload needs, what the host has, what is left of its
 *      capacity), then
 *   3. obey `placement: vm|container`, or refuse with the reason; for auto,
 *      take the one backend left or score both, each term a reason;
 *   4. charge the chosen backend's cost against the host's capacity.
 * A workload that fits nowhere, or waits on one that fits nowhere, is
 * unplaceable with its reason.
 */
#ifndef DUET_PLACEMENT_H
#define DUET_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "host.h"
#include "manifests/manifest.h"

#define PLACEMENT_MAX_REASONS 8

/* Points in the scoring, written in docs/placement.md. */
#define SCORE_ROLE 10          /* the role's preferred backend */
#define SCORE_MEMORY_MAX 8     /* VM overhead large against the workload's memory */
#define SCORE_START 3          /* a VM's start takes most of needs.startWithin */
#define SCORE_DENSITY 2        /* as a VM it would leave the host nearly full */
/* No KVM: a VM's code runs under emulation, an order of magnitude slower
 * than the same code in a container (a postgres measured 50-72 TPC-B tps
 * against 595-1412, healthy after 15.8 s against 1.65 s).  More than the
 * role: an infrastructure workload goes to a VM here only when it asks for
 * a VM's isolation (isolation: strong, needs.ownKernel, needs.devices) or
 * pins placement: vm, and the plan then says what that costs. */
#define SCORE_EMULATION 12

struct placement {
    const struct workload_spec *w;
    bool placed;
    enum backend_kind backend;                 /* when placed */
    const char *reasons[PLACEMENT_MAX_REASONS];
    size_t n_reasons;
    const char *ruled_out[BACKEND_COUNT];      /* reason, or NULL when not ruled out */
    const char *unplaceable;                   /* reason, when !placed */
    unsigned start_order;
    int score[BACKEND_COUNT];                  /* when both were scored */
    double cpus;                               /* charged against the host */
    uint64_t memory;
};

struct plan {
    struct arena arena;                        /* reason strings */
    struct placement *items;                   /* in start order, then manifest order */
    size_t n, n_unplaceable;
    const struct host_info *host;              /* borrowed */
    double cpu_capacity, cpu_used;
    uint64_t memory_capacity, memory_used;
};

/* set must be valid (no diagnostics); host is borrowed for the plan's life. */
struct plan *plan_new(const struct manifest_set *set, const struct host_info *host);
void plan_free(struct plan *p);

/* What a workload costs on a backend: a VM whole vCPUs and its memory plus
 * the backend's overhead; a container its limits. */
void placement_cost(const struct workload_spec *w, const struct host_info *h, enum backend_kind b, double *cpus,
                    uint64_t *memory);

#endif
