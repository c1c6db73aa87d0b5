/*
 * fleet.h - the fleet network of one daemon: its bridge, its subnet's
 * addresses, its firewall table, its name server and the host ports it
 * publishes.
 *
 * One bridge per daemon, labelled with the daemon's state directory (the
 * bridge's alias): a second daemon asked to use it is refused, as is a
 * subnet that an interface of the host already uses.  The daemon owns the
 * struct; everything runs on its loop.
 *
 * Names: the daemon answers DNS on the bridge's address, port 53.  A
 * single-label name is a workload's (answered from the daemon's own
 * table, so it is current the moment an address is given); other names
 * are passed on to the host's first IPv4 name server.  Containers get an
 * /etc/resolv.conf naming the bridge's address; VMs get it as the DNS
 * field of ip= on their kernel command line, or, booted from a disk
 * without a kernel of duet's, from the daemon's DHCP replies (the MAC says
 * the address, see dhcp.h).
 */
#ifndef DUET_FLEET_H
#define DUET_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "attachment.h"
#include "ipam.h"
#include "manifests/manifest.h"
#include "netlink.h"

#define FLEET_DEFAULT_BRIDGE "duet0"
#define FLEET_DEFAULT_SUBNET "10.47.0.0/16"
#define FLEET_DNS_TTL 5

struct fleet_net_config {
    const char *bridge;          /* NULL: FLEET_DEFAULT_BRIDGE */
    const char *subnet;          /* NULL: FLEET_DEFAULT_SUBNET */
    const char *owner;           /* the daemon's state directory: the bridge's label */
};

/* The daemon's answer to "which address has workload NAME?": false when
 * there is no such workload or it has no address. */
typedef bool (*fleet_lookup_fn)(void *opaque, const char *name, uint32_t *addr);
/* And the other way: which workload has addr?  Its name into out. */
typedef bool (*fleet_name_fn)(void *opaque, uint32_t addr, char out[64]);

struct fleet_hold {
    char owner[64];              /* the workload publishing it */
    uint16_t host, port;
    bool udp;
    int fd;                      /* bound, never listening: keeps the port from other programs */
};

struct fleet_fwd {
    uint16_t id, client_id;
    struct sockaddr_in client;
    uint64_t sent_ms;
    bool used;
};

#define FLEET_FWD_SLOTS 256

struct fleet_net {
    uv_loop_t *loop;
    char bridge[16];
    int bridge_index;
    char alias[128];
    struct ipam ipam;
    struct nl nl;
    fleet_lookup_fn lookup;
    fleet_name_fn name_of;
    void *lookup_opaque;

    uv_udp_t dns;                /* on the bridge's address, port 53 */
    uv_udp_t upstream;           /* to the host's name server */
    uv_udp_t dhcp;               /* port 67 on the bridge only */
    bool dns_open, upstream_open, dhcp_open;
    char dhcp_error[160];        /* why disk-booted VMs get no address, or "" */
    uint64_t dhcp_answered;
    struct sockaddr_in upstream_addr;
    bool has_upstream;
    struct fleet_fwd fwd[FLEET_FWD_SLOTS];
    uint16_t fwd_next;
    uint8_t rbuf[4096];
    uint64_t dns_answered, dns_forwarded, dns_dropped;

    struct fleet_hold *holds;
    size_t n_holds, cap_holds;
};

int fleet_net_open(struct fleet_net *fn, uv_loop_t *loop, const struct fleet_net_config *cfg, fleet_lookup_fn lookup,
                   fleet_name_fn name_of, void *opaque, struct duet_err *err);
/* Closes the sockets; with teardown, also removes the table and the
 * bridge (the daemon asks when no workload is left). */
void fleet_net_close(struct fleet_net *fn, bool teardown);

/* Addresses: claim one the store holds, allocate a new one, give one back. */
int fleet_net_claim(struct fleet_net *fn, uint32_t addr, struct duet_err *err);
int fleet_net_alloc(struct fleet_net *fn, uint32_t *addr, struct duet_err *err);
void fleet_net_release(struct fleet_net *fn, uint32_t addr);

/* What a driver needs to attach a workload with address addr. */
void fleet_net_attachment(const struct fleet_net *fn, uint32_t addr, struct net_attachment *out);
/* The host end's name for addr ("dv" + its 8 hex digits): unique on the
 * host, since no two daemons share addresses. */
void fleet_net_host_if(uint32_t addr, char out[16]);
/* The other way: false when name is not a host end's. */
bool fleet_net_host_if_addr(const char *name, uint32_t *addr);
/* Removes addr's host end (in the loop's thread pool).  The kernel removes
 * a veth pair by itself once its container's namespace is gone, but in a
 * work queue of its own, seen seconds later after a burst of deletes: this
 * takes it away within milliseconds of the delete. */
void fleet_net_unplug(struct fleet_net *fn, uint32_t addr);

/* Could owner publish these ports?  Each is free on the host, or held by
 * this daemon already (a workload handing it over in the same apply). */
int fleet_net_ports_check(struct fleet_net *fn, const char *owner, const struct wl_port *ports, size_t n,
                          struct duet_err *err);
/* Makes owner's held ports exactly these (opening and closing sockets);
 * on failure the ports that could be held stay held. */
int fleet_net_ports_set(struct fleet_net *fn, const char *owner, const struct wl_port *ports, size_t n,
                        struct duet_err *err);
/* Lets go of all owner's ports; true when it held any. */
bool fleet_net_ports_release(struct fleet_net *fn, const char *owner);
/* The workload holding a host port, or NULL. */
const char *fleet_net_port_owner(const struct fleet_net *fn, uint16_t host, enum wl_protocol protocol);
/* Rewrites the table from the held ports and their owners' addresses. */
int fleet_net_sync(struct fleet_net *fn, struct duet_err *err);

/* Removes ports of the bridge that no workload has: veths whose
 * container is gone but whose namespace lived on.  in_use says whether an
 * address belongs to a workload.  Returns how many were removed. */
int fleet_net_sweep(struct fleet_net *fn, bool (*in_use)(void *opaque, uint32_t addr), void *opaque);

#endif
