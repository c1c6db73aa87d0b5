/*
 * ipam.h - the fleet's IPv4 subnet and who holds which address in it.
 *
 * The subnet's first usable address is the bridge's (the workloads'
 * gateway and name server); workloads get the others, lowest free first.
 * The allocation itself lives in the state store (each workload row keeps
 * its address until the workload is deleted); this is the in-memory view
 * the daemon rebuilds from it at start-up, so a workload keeps its address
 * across its own restarts and the daemon's.
 *
 * Addresses are host byte order uint32_t throughout; ipam_format and
 * ipam_parse_addr convert at the edges.
 */
#ifndef DUET_IPAM_H
#define DUET_IPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct ipam_subnet {
    uint32_t net;        /* network address */
    unsigned prefix;     /* 8..29 */
};

/* "A.B.C.D" only: no shorthand forms ("10.1"), no leading zeros, no spaces. */
bool ipam_parse_addr(const char *s, uint32_t *out);
/* "A.B.C.D/N"; host bits must be zero, N within 8..29 (a /30 leaves room
 * for one workload only; wider than /8 is a mistake). */
int ipam_parse_subnet(const char *s, struct ipam_subnet *out, struct duet_err *err);
void ipam_format(uint32_t addr, char out[16]);
void ipam_format_subnet(const struct ipam_subnet *s, char out[20]);

uint32_t ipam_mask(const struct ipam_subnet *s);
uint32_t ipam_gateway(const struct ipam_subnet *s);
bool ipam_contains(const struct ipam_subnet *s, uint32_t addr);
/* Do the two subnets share any address? */
bool ipam_overlap(const struct ipam_subnet *a, const struct ipam_subnet *b);

/* A workload's MAC follows from its address (locally administered,
 * unicast: 02:64 then the four address bytes), so a restarted workload
 * answers ARP as before and neighbours' caches stay right. */
void ipam_mac(uint32_t addr, uint8_t mac[6]);
/* The other way: false when mac is not of that shape. */
bool ipam_mac_addr(const uint8_t mac[6], uint32_t *addr);
void ipam_format_mac(const uint8_t mac[6], char out[18]);

/* The free/used map of one subnet. */
struct ipam {
    struct ipam_subnet subnet;
    uint32_t size;       /* addresses in the subnet */
    uint32_t used;       /* taken by workloads */
    uint32_t hint;       /* where the next search starts */
    uint8_t *bits;       /* one bit per address, by host part */
};

int ipam_init(struct ipam *p, const struct ipam_subnet *s, struct duet_err *err);
void ipam_fini(struct ipam *p);
/* Marks addr taken (an address the store already holds).  EEXIST when it
 * is taken already, EDOM when outside the subnet or reserved. */
int ipam_take(struct ipam *p, uint32_t addr, struct duet_err *err);
/* The lowest free address; ENOSPC when none is left. */
int ipam_alloc(struct ipam *p, uint32_t *out, struct duet_err *err);
void ipam_release(struct ipam *p, uint32_t addr);
/* Addresses still free for workloads (the size less network, gateway and
 * broadcast, less those taken). */
uint32_t ipam_free_count(const struct ipam *p);

#endif
