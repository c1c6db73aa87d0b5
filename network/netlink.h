/*
 * netlink.h - the few rtnetlink requests duet's network needs, through
 * libmnl: a bridge, veth pairs, addresses, and the listings that recovery
 * and the leak checks read.
 *
 * One `struct nl` is one NETLINK_ROUTE socket in the network namespace
 * that opened it; requests on it are synchronous (send, wait for the ack).
 * A socket is not shared between threads: the daemon's loop has one, each
 * container start opens its own.
 */
#ifndef DUET_NETLINK_H
#define DUET_NETLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define NL_IFNAMSIZ 16

struct mnl_socket;

struct nl {
    struct mnl_socket *sock;
    unsigned portid;
    unsigned seq;
};

int nl_open(struct nl *nl, struct duet_err *err);
void nl_close(struct nl *nl);

struct nl_link {
    int index;
    char name[NL_IFNAMSIZ];
    char kind[16];        /* "bridge", "veth", "" */
    char alias[128];      /* IFLA_IFALIAS, "" when none */
    int master;           /* index of the bridge it is a port of, 0: none */
    bool up;
};

/* ENODEV when there is no link of that name. */
int nl_link_get(struct nl *nl, const char *name, struct nl_link *out, struct duet_err *err);
/* Calls cb for every link of this namespace. */
int nl_link_list(struct nl *nl, void (*cb)(void *opaque, const struct nl_link *l), void *opaque,
                 struct duet_err *err);

/* A new bridge, down, with an alias naming its owner and a fixed MAC
 * (a bridge otherwise takes its lowest port's, which changes as ports come
 * and go, and neighbours' caches go stale); EEXIST if the name is taken. */
int nl_bridge_add(struct nl *nl, const char *name, const char *alias, const uint8_t mac[6], struct duet_err *err);
int nl_link_set_up(struct nl *nl, int index, struct duet_err *err);
/* ENODEV is not an error: the link is gone either way. */
int nl_link_del(struct nl *nl, const char *name, struct duet_err *err);

/* Adds addr/prefix to the link (replacing the same address). */
int nl_addr_add(struct nl *nl, int index, uint32_t addr, unsigned prefix, struct duet_err *err);

struct nl_addr {
    int index;
    uint32_t addr;
    unsigned prefix;
    char label[NL_IFNAMSIZ];
};
int nl_addr_list(struct nl *nl, void (*cb)(void *opaque, const struct nl_addr *a), void *opaque,
                 struct duet_err *err);

/* A veth pair: `name` here, up, without IPv6, a port of bridge `master`; its peer,
 * called `peer_name` with MAC `peer_mac`, created directly in the network
 * namespace of process `peer_pid` (down: the process configures it). */
int nl_veth_add(struct nl *nl, const char *name, int master, const char *peer_name, const uint8_t peer_mac[6],
                pid_t peer_pid, struct duet_err *err);

#endif
