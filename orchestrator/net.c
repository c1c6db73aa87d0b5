/*
 * net.c - the daemon's side of the fleet network (network/fleet.c is the
 * network itself).
 *
 * A workload's address is a column of its row: IPAM needs no table of its
 * own and an address never outlives its workload.  It is given before the
 * workload's first create (wl_net_prepare) and taken back when the
 * workload is forgotten (wl_net_release); the name server answers from the
 * workloads' map.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "orchestrator/daemon.h"

static bool net_lookup(void *opaque, const char *name, uint32_t *addr)
{
    struct daemon *d = opaque;
    struct wl *w = daemon_wl_find(d, name);
    if (!w || w->deleted || !w->addr)
        return false;
    *addr = w->addr;
    return true;
}

/* The workload holding addr (IPAM gives each address to one), deleted or not. */
static struct wl *wl_by_addr(struct daemon *d, uint32_t addr)
{
    DAEMON_WL_FOREACH(d, w)
        if (w->addr == addr)
            return w;
    return NULL;
}

static bool net_name_of(void *opaque, uint32_t addr, char out[64])
{
    struct wl *w = wl_by_addr(opaque, addr);
    if (!w || w->deleted)
        return false;
    snprintf(out, 64, "%s", w->name);
    return true;
}

/* A deleted workload not yet forgotten may still have its instance. */
static bool addr_in_use(void *opaque, uint32_t addr)
{
    return wl_by_addr(opaque, addr) != NULL;
}

int daemon_net_open(struct daemon *d, const struct fleet_net_config *nc, struct duet_err *err)
{
    if (fleet_net_open(&d->net, d->loop, nc, net_lookup, net_name_of, d, err) < 0)
        return -1;
    if (d->net.dhcp_error[0])
        fprintf(stderr, "duetd: %s; VMs booted from a disk without image.kernel get no address\n", d->net.dhcp_error);
    d->net_open = true;
    return 0;
}

void daemon_net_sync(struct daemon *d)
{
    struct duet_err err = {0};
    if (d->net_open && fleet_net_sync(&d->net, &err) < 0)
        daemon_event(d, NULL, "failed", "published ports: %s", err.msg);
}

int wl_net_prepare(struct wl *w, struct duet_err *err)
{
    struct daemon *d = w->d;
    bool wants = w->spec->network == WL_NETWORK_FLEET;
    if (wants && !w->addr) {
        if (fleet_net_alloc(&d->net, &w->addr, err) < 0)
            return -1;
        char a[16];
        ipam_format(w->addr, a);
        daemon_event(d, w->name, "address", "%s on bridge %s", a, d->net.bridge);
        wl_save(w);
        if (w->spec->n_ports)
            daemon_net_sync(d);
    } else if (!wants && w->addr) {
        fleet_net_release(&d->net, w->addr);
        w->addr = 0;
        wl_save(w);
    }
    return 0;
}

void wl_net_release(struct wl *w)
{
    struct daemon *d = w->d;
    if (!d->net_open)
        return;
    bool published = fleet_net_ports_release(&d->net, w->name);
    if (w->addr) {
        fleet_net_unplug(&d->net, w->addr);
        fleet_net_release(&d->net, w->addr);
    }
    w->addr = 0;
    if (published)
        daemon_net_sync(d);
}

/* After loading: the store's addresses are taken again, every workload's
 * ports held again, the table rewritten, and veths no workload has are
 * removed. */
int daemon_net_recover(struct daemon *d, struct duet_err *err)
{
    char sn[20];
    ipam_format_subnet(&d->net.ipam.subnet, sn);
    bool publishes = false;
    DAEMON_WL_FOREACH(d, w) {
        struct duet_err e = {0};
        if (w->addr && fleet_net_claim(&d->net, w->addr, &e) < 0) {
            char a[16];
            ipam_format(w->addr, a);
            if (e.code == EDOM) {
                char was[64];
                if (store_setting_get(d->store, "subnet", was, sizeof(was)))
                    return duet_err_set(err, EDOM,
                                        "workload %s has address %s, outside the fleet's subnet %s: this state "
                                        "directory was used with --subnet %s; start duetd with that one, or "
                                        "without --subnet (or delete the workloads first)",
                                        w->name, a, sn, was);
                return duet_err_set(err, EDOM,
                                    "workload %s has address %s, outside the fleet's subnet %s: this state "
                                    "directory was used with another --subnet; start duetd with that one (or "
                                    "delete the workloads first)",
                                    w->name, a, sn);
            }
            return duet_err_set(err, e.code, "workload %s: %s", w->name, e.msg);
        }
        if (w->deleted || !w->spec->n_ports)
            continue;
        publishes = true;
        if (fleet_net_ports_set(&d->net, w->name, w->spec->ports, w->spec->n_ports, &e) < 0)
            daemon_event(d, w->name, "failed", "publishing its ports again: %s", e.msg);
    }
    /* fleet_net_open wrote the table without ports: again only with some */
    if (publishes)
        daemon_net_sync(d);
    int removed = fleet_net_sweep(&d->net, addr_in_use, d);
    if (removed)
        daemon_event(d, NULL, "network", "removed %d leftover interface%s from bridge %s", removed,
                     removed == 1 ? "" : "s", d->net.bridge);
    return 0;
}
