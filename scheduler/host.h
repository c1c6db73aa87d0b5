/*
 * host.h - the machine a plan is made for.
 *
 * Either probed (this machine, through each backend's probe) or read from a
 * `kind: Host` document (another machine, planned from anywhere).  The
 * scheduler sees only this struct: it never probes anything itself.
 */
#ifndef DUET_HOST_H
#define DUET_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/driver.h"
#include "manifests/manifest.h"

/* Kept for the host itself when a Host document or probe gives no reserve:
 * 256 MiB, or an eighth of a small host's memory. */
#define HOST_DEFAULT_RESERVE_MEMORY (UINT64_C(256) << 20)
#define HOST_DEFAULT_OVERCOMMIT_CPU 4.0
#define HOST_DEFAULT_OVERCOMMIT_MEMORY 1.0

struct host_info {
    char name[64];
    char source[96];               /* "probed", "Host document homelab (FILE:LINE)" */
    double cpus;
    uint64_t memory;
    double reserve_cpus;
    uint64_t reserve_memory;
    double overcommit_cpu, overcommit_memory;
    struct driver_caps backend[BACKEND_COUNT];
};

/* Host from a Host document: backends as declared, cost estimates for the
 * declared kind of VM backend (kvm or not). */
void host_info_from_spec(struct host_info *h, const struct host_spec *spec);

/* Sets the reserve default when none was given. */
uint64_t host_default_reserve_memory(uint64_t memory);

/* What workloads may use: (total - reserve) x overcommit. */
double host_cpu_capacity(const struct host_info *h);
uint64_t host_memory_capacity(const struct host_info *h);

#endif
