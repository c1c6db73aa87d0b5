/*
 * dhcp.h - the DHCP replies that give a VM booted from a disk (no kernel
 * command line of duet's) its fleet address.
 *
 * The address is not leased from a pool: duet gave the VM its MAC from its
 * address (02:64 and the four address bytes, see ipam_mac), so the MAC in
 * a request already says which address is the client's; the server only
 * answers a MAC of that shape whose address a workload holds.  Pure: bytes
 * in, bytes out; the socket is fleet.c's.  Requests are untrusted: every
 * option's length is checked against the packet.
 */
#ifndef DUET_DHCP_H
#define DUET_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_DISCOVER 1
#define DHCP_OFFER 2
#define DHCP_REQUEST 3
#define DHCP_ACK 5
#define DHCP_NAK 6

struct dhcp_request {
    uint32_t xid;
    uint16_t flags;
    uint32_t ciaddr;
    uint8_t chaddr[6];
    uint8_t type;            /* option 53 */
    uint32_t requested;      /* option 50, 0 if absent */
    uint32_t server_id;      /* option 54, 0 if absent */
};

/* false: not a BOOTREQUEST from an Ethernet client with a message type. */
bool dhcp_parse(const uint8_t *pkt, size_t len, struct dhcp_request *r);

struct dhcp_lease {
    uint32_t addr, server, mask, router, dns;
    uint32_t seconds;        /* lease time */
    const char *hostname;    /* NULL: none */
};

/* The reply of the given type (OFFER, ACK, NAK) to r; its length, or 0
 * when cap is too small. */
size_t dhcp_reply(const struct dhcp_request *r, uint8_t type, const struct dhcp_lease *l, uint8_t *out, size_t cap);

#endif
