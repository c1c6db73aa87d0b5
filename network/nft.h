/*
 * nft.h - the fleet's firewall table: outbound NAT and published ports,
 * through libnftables.
 *
 * duet keeps everything it needs in one table of its own (family ip,
 * named after the bridge) and never touches another.  The table is always
 * written whole, in one transaction that deletes the old one and adds the
 * new: the kernel applies it atomically, so traffic never sees half a rule
 * set, and what the table holds is exactly what the daemon knows.
 */
#ifndef DUET_NFT_H
#define DUET_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "ipam.h"

struct nft_port {
    uint16_t host;        /* the host's port */
    uint16_t port;        /* the workload's */
    bool udp;
    uint32_t addr;        /* the workload's address */
};

/* "duet_" + bridge */
void nft_table_name(const char *bridge, char out[32]);

/* Replaces the table: masquerade for the subnet's outbound traffic, the
 * published ports as DNAT for traffic to any of the host's addresses
 * (from outside, from the host itself, 127.0.0.1 included). */
int nft_table_write(const char *bridge, const struct ipam_subnet *subnet, const struct nft_port *ports, size_t n,
                    struct duet_err *err);
/* Removes the table; absent is fine. */
int nft_table_delete(const char *bridge, struct duet_err *err);
/* The ruleset text nft_table_write loads (for tests and `--dry-run` eyes). */
char *nft_table_text(const char *bridge, const struct ipam_subnet *subnet, const struct nft_port *ports, size_t n);
bool nft_table_exists(const char *bridge);

#endif
