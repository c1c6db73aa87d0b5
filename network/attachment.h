/*
 * attachment.h - where one workload joins the fleet network.
 *
 * The daemon's fleet network decides it (fleet.c); a backend only carries
 * it out.  A header of its own so that the backends, which include it
 * through driver.h, and the network module share the type without
 * including each other.
 */
#ifndef DUET_NET_ATTACHMENT_H
#define DUET_NET_ATTACHMENT_H

#include <stdint.h>

/* A workload's place on the fleet network, decided by the daemon (the
 * address from its IPAM, the bridge it owns).  Containers get a veth pair
 * (eth0 inside, the other end a port of the bridge); VMs a virtio NIC on
 * the bridge, the address given on the kernel command line as
 * ip=ADDR::GATEWAY:NETMASK:NAME:eth0:off:DNS.  Host byte order. */
struct net_attachment {
    char bridge[16];
    int bridge_index;
    uint32_t addr, gateway, dns;   /* dns: the fleet's name server (the bridge's address) */
    unsigned prefix;
    uint8_t mac[6];
    char host_if[16];              /* the host's end: veth (containers) or tap (VMs) */
};

#endif
