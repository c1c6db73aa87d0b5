/*
 * fleet.c - the fleet network (see fleet.h): bridge, table, name server,
 * published ports.
 */
#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "dhcp.h"
#include "dns.h"
#include "common/grow.h"
#include "nft.h"

static bool bridge_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

static int write_sysctl(const char *path, const char *value, struct duet_err *err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0)
        return duet_err_sys(err, "cannot set %s to %s", path, value);
    return 0;
}

/* ---- the subnet must be ours alone -------------------------------------- */

struct overlap {
    const struct fleet_net *fn;
    char found[160];
};

static void check_addr(void *opaque, const struct nl_addr *a)
{
    struct overlap *o = opaque;
    if (o->found[0] || a->index == o->fn->bridge_index)
        return;
    struct ipam_subnet theirs = {.prefix = a->prefix};
    theirs.net = a->addr & ipam_mask(&theirs);
    if (!ipam_overlap(&theirs, &o->fn->ipam.subnet))
        return;
    char addr[16];
    ipam_format(a->addr, addr);
    snprintf(o->found, sizeof(o->found), "%s/%u on %s", addr, a->prefix, a->label[0] ? a->label : "another interface");
}

/* ---- name server ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct fleet_net *fn = h->data;
    *buf = uv_buf_init((char *)fn->rbuf, sizeof(fn->rbuf));
}

static void reply(struct fleet_net *fn, const struct sockaddr *to, const uint8_t *p, size_t n)
{
    if (!n)
        return;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    /* A full socket buffer drops the answer; the client asks again. */
    if (uv_udp_try_send(&fn->dns, &b, 1, to) < 0)
        fn->dns_dropped++;
}

static void forward(struct fleet_net *fn, const uint8_t *pkt, size_t len, uint16_t id, const struct sockaddr_in *client)
{
    /* The slot to use: a free one, or the oldest (its client gave up). */
    uint64_t now = clock_mono_ms();
    size_t pick = FLEET_FWD_SLOTS;
    for (size_t i = 0; i < FLEET_FWD_SLOTS && pick == FLEET_FWD_SLOTS; i++)
        if (!fn->fwd[i].used || now - fn->fwd[i].sent_ms > 5000)
            pick = i;
    if (pick == FLEET_FWD_SLOTS) {
        fn->dns_dropped++;
        return;
    }
    struct fleet_fwd *f = &fn->fwd[pick];
    /* Our id: the slot in the low byte, a counter in the high one, so a
     * late answer to a reused slot does not match. */
    fn->fwd_next++;
    *f = (struct fleet_fwd){.id = (uint16_t)((fn->fwd_next & 0xff) << 8 | pick), .client_id = id, .client = *client,
                           .sent_ms = now, .used = true};
    uint8_t out[4096];
    if (len > sizeof(out))
        return;
    memcpy(out, pkt, len);
    out[0] = (uint8_t)(f->id >> 8);
    out[1] = (uint8_t)f->id;
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
    if (uv_udp_try_send(&fn->upstream, &b, 1, (const struct sockaddr *)&fn->upstream_addr) < 0) {
        f->used = false;
        fn->dns_dropped++;
        return;
    }
    fn->dns_forwarded++;
}

static void on_upstream(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    (void)flags;
    struct fleet_net *fn = h->data;
    if (n < 12 || !from || from->sa_family != AF_INET)
        return;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)from;
    if (sin->sin_addr.s_addr != fn->upstream_addr.sin_addr.s_addr || sin->sin_port != fn->upstream_addr.sin_port)
        return;   /* only the server we asked */
    uint8_t *p = (uint8_t *)buf->base;
    uint16_t id = (uint16_t)(p[0] << 8 | p[1]);
    struct fleet_fwd *f = &fn->fwd[id & 0xff];
    if (!f->used || f->id != id)
        return;
    f->used = false;
    p[0] = (uint8_t)(f->client_id >> 8);
    p[1] = (uint8_t)f->client_id;
    reply(fn, (const struct sockaddr *)&f->client, p, (size_t)n);
}

static void on_query(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    struct fleet_net *fn = h->data;
    if (n <= 0 || !from || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
        return;
    const uint8_t *pkt = (const uint8_t *)buf->base;
    struct dns_query q;
    uint8_t out[600];
    switch (dns_parse_query(pkt, (size_t)n, &q)) {
    case DNS_PARSE_DROP:
        fn->dns_dropped++;
        return;
    case DNS_PARSE_FORMERR:
        reply(fn, from, out, dns_error(q.id, DNS_FORMERR, out, sizeof(out)));
        return;
    case DNS_PARSE_NOTIMP:
        reply(fn, from, out, dns_error(q.id, DNS_NOTIMP, out, sizeof(out)));
        return;
    case DNS_PARSE_OK:
        break;
    }
    fn->dns_answered++;
    if (q.labels == 1) {
        /* A workload's name, or nobody's: never sent out of the host. */
        uint32_t addr;
        bool known = q.qclass == DNS_CLASS_IN && fn->lookup(fn->lookup_opaque, q.name, &addr);
        bool want_a = q.qtype == DNS_TYPE_A || q.qtype == 255;
        reply(fn, from, out,
              dns_answer(pkt, &q, known ? DNS_NOERROR : DNS_NXDOMAIN, known && want_a ? &addr : NULL,
                         FLEET_DNS_TTL, out, sizeof(out)));
        return;
    }
    if (fn->has_upstream && q.labels > 1) {
        forward(fn, pkt, (size_t)n, q.id, (const struct sockaddr_in *)from);
        return;
    }
    reply(fn, from, out, dns_answer(pkt, &q, DNS_SERVFAIL, NULL, 0, out, sizeof(out)));
}

/* The host's first IPv4 name server, for names that are not the fleet's. */
static bool read_upstream(struct sockaddr_in *out)
{
    _cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
    char line[256];
    while (f && fgets(line, sizeof(line), f)) {
        char addr[64];
        if (sscanf(line, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &out->sin_addr) == 1) {
            out->sin_family = AF_INET;
            out->sin_port = htons(53);
            return true;
        }
    }
    return false;
}

/* A UDP socket of the loop's, bound to addr and reading into fn->rbuf. */
static int udp_open(struct fleet_net *fn, uv_udp_t *h, bool *open, const struct sockaddr_in *addr, uv_udp_recv_cb cb)
{
    int rc = uv_udp_init(fn->loop, h);
    if (rc < 0)
        return rc;
    *open = true;
    h->data = fn;
    rc = uv_udp_bind(h, (const struct sockaddr *)addr, 0);
    return rc < 0 ? rc : uv_udp_recv_start(h, on_alloc, cb);
}

static int dns_open(struct fleet_net *fn, struct duet_err *err)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53)};
    sin.sin_addr.s_addr = htonl(ipam_gateway(&fn->ipam.subnet));
    int rc = udp_open(fn, &fn->dns, &fn->dns_open, &sin, on_query);
    if (rc < 0) {
        char a[16];
        ipam_format(ipam_gateway(&fn->ipam.subnet), a);
        return duet_err_set(err, -rc, "the fleet's name server cannot listen on %s port 53: %s", a, uv_strerror(rc));
    }
    fn->has_upstream = read_upstream(&fn->upstream_addr);
    struct sockaddr_in any = {.sin_family = AF_INET};
    if (fn->has_upstream && udp_open(fn, &fn->upstream, &fn->upstream_open, &any, on_upstream) < 0)
        fn->has_upstream = false;   /* names outside the fleet fail; the fleet's still work */
    return 0;
}

/* ---- DHCP for VMs booted from a disk ---------------------------------------- */

static void on_dhcp(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    (void)from;
    struct fleet_net *fn = h->data;
    struct dhcp_request r;
    if (n <= 0 || (flags & UV_UDP_PARTIAL) || !dhcp_parse((const uint8_t *)buf->base, (size_t)n, &r))
        return;
    /* Only a NIC duet made, whose address a workload holds. */
    uint32_t addr;
    char name[64];
    if (!ipam_mac_addr(r.chaddr, &addr) || !ipam_contains(&fn->ipam.subnet, addr) ||
        !fn->name_of(fn->lookup_opaque, addr, name))
        return;
    uint32_t gw = ipam_gateway(&fn->ipam.subnet);
    uint8_t type;
    if (r.type == DHCP_DISCOVER) {
        type = DHCP_OFFER;
    } else if (r.type == DHCP_REQUEST) {
        if (r.server_id && r.server_id != gw)
            return;   /* it chose another server */
        uint32_t want = r.requested ? r.requested : r.ciaddr;
        type = want == 0 || want == addr ? DHCP_ACK : DHCP_NAK;
    } else {
        return;
    }
    struct dhcp_lease l = {.addr = addr, .server = gw, .mask = ipam_mask(&fn->ipam.subnet), .router = gw,
                           .dns = gw, .seconds = 86400, .hostname = name};
    uint8_t out[600];
    size_t m = dhcp_reply(&r, type, &l, out, sizeof(out));
    /* The client has no address yet: broadcast, on the bridge only. */
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(68), .sin_addr.s_addr = htonl(INADDR_BROADCAST)};
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)m);
    if (m && uv_udp_try_send(&fn->dhcp, &b, 1, (const struct sockaddr *)&to) >= 0)
        fn->dhcp_answered++;
}

/* Port 67 on the bridge alone (SO_BINDTODEVICE), beside any DHCP server
 * the host runs on its other interfaces.  Failing is not fatal: VMs booted
 * with duet's kernel command line do not need it; the reason is kept. */
static void dhcp_open(struct fleet_net *fn)
{
    int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(67)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, fn->bridge, (socklen_t)strlen(fn->bridge)) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        snprintf(fn->dhcp_error, sizeof(fn->dhcp_error), "cannot listen on port 67 of %s: %s", fn->bridge,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    int rc = uv_udp_init(fn->loop, &fn->dhcp);
    if (rc == 0) {
        fn->dhcp_open = true;
        fn->dhcp.data = fn;
        rc = uv_udp_open(&fn->dhcp, fd);
        if (rc < 0)
            close(fd);
        else
            rc = uv_udp_recv_start(&fn->dhcp, on_alloc, on_dhcp);
    } else {
        close(fd);
    }
    if (rc < 0)
        snprintf(fn->dhcp_error, sizeof(fn->dhcp_error), "DHCP on %s: %s", fn->bridge, uv_strerror(rc));
}

/* ---- open, close -------------------------------------------------------- */

int fleet_net_open(struct fleet_net *fn, uv_loop_t *loop, const struct fleet_net_config *cfg, fleet_lookup_fn lookup,
                   fleet_name_fn name_of, void *opaque, struct duet_err *err)
{
    memset(fn, 0, sizeof(*fn));
    fn->loop = loop;
    fn->lookup = lookup;
    fn->name_of = name_of;
    fn->lookup_opaque = opaque;
    const char *bridge = cfg->bridge ? cfg->bridge : FLEET_DEFAULT_BRIDGE;
    if (!bridge_name_ok(bridge))
        return duet_err_set(err, EINVAL,
                            "bridge name \"%.40s\": use 1 to 15 characters from a-z, 0-9, - and _ (--bridge)", bridge);
    snprintf(fn->bridge, sizeof(fn->bridge), "%s", bridge);
    snprintf(fn->alias, sizeof(fn->alias), "duet:%.120s", cfg->owner);
    struct ipam_subnet sn;
    if (ipam_parse_subnet(cfg->subnet ? cfg->subnet : FLEET_DEFAULT_SUBNET, &sn, err) < 0)
        return duet_err_prefix(err, "--subnet");
    if (ipam_init(&fn->ipam, &sn, err) < 0)
        return -1;
    if (nl_open(&fn->nl, err) < 0)
        goto fail;

    struct nl_link l;
    struct duet_err e2 = {0};
    bool exists = nl_link_get(&fn->nl, fn->bridge, &l, &e2) == 0;
    if (!exists && e2.code != ENODEV) {
        *err = e2;
        goto fail;
    }
    if (exists) {
        if (strcmp(l.kind, "bridge") != 0) {
            duet_err_set(err, EBUSY,
                         "interface %s exists and is not a bridge; start duetd with --bridge NAME naming one that "
                         "does not exist yet",
                         fn->bridge);
            goto fail;
        }
        if (strcmp(l.alias, fn->alias) != 0) {
            duet_err_set(err, EBUSY,
                         "bridge %s is not this daemon's (its label is \"%s\"); two duet daemons never share a "
                         "bridge: start this one with --bridge NAME",
                         fn->bridge, l.alias);
            goto fail;
        }
        fn->bridge_index = l.index;
    }
    /* No interface but our own bridge may use the subnet: two daemons (or
     * duet and a LAN) on one subnet would route each other's traffic astray. */
    struct overlap o = {.fn = fn};
    if (nl_addr_list(&fn->nl, check_addr, &o, err) < 0)
        goto fail;
    if (o.found[0]) {
        char s[20];
        ipam_format_subnet(&sn, s);
        duet_err_set(err, EADDRINUSE,
                     "the fleet's subnet %s overlaps %s; start duetd with a --subnet that no interface uses", s,
                     o.found);
        goto fail;
    }
    if (!exists) {
        uint8_t mac[6];
        ipam_mac(ipam_gateway(&sn), mac);
        if (nl_bridge_add(&fn->nl, fn->bridge, fn->alias, mac, err) < 0 ||
            nl_link_get(&fn->nl, fn->bridge, &l, err) < 0)
            goto fail;
        fn->bridge_index = l.index;
    }
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/route_localnet", fn->bridge);
    if (nl_addr_add(&fn->nl, fn->bridge_index, ipam_gateway(&sn), sn.prefix, err) < 0 ||
        nl_link_set_up(&fn->nl, fn->bridge_index, err) < 0 ||
        /* forwarding: the fleet's traffic to the world, and hairpins */
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err) < 0 ||
        /* 127.0.0.1:PORT on the host, sent on to a workload on the bridge */
        write_sysctl(path, "1", err) < 0) {
        duet_err_prefix(err, "bridge %s", fn->bridge);
        goto fail;
    }
    if (nft_table_write(fn->bridge, &sn, NULL, 0, err) < 0 || dns_open(fn, err) < 0)
        goto fail;
    dhcp_open(fn);
    return 0;
fail:
    fleet_net_close(fn, false);
    return -1;
}

static void noop_close(uv_handle_t *h)
{
    (void)h;
}

void fleet_net_close(struct fleet_net *fn, bool teardown)
{
    if (fn->dns_open)
        uv_close((uv_handle_t *)&fn->dns, noop_close);
    if (fn->upstream_open)
        uv_close((uv_handle_t *)&fn->upstream, noop_close);
    if (fn->dhcp_open)
        uv_close((uv_handle_t *)&fn->dhcp, noop_close);
    fn->dns_open = fn->upstream_open = fn->dhcp_open = false;
    for (size_t i = 0; i < fn->n_holds; i++)
        close(fn->holds[i].fd);
    free(fn->holds);
    fn->holds = NULL;
    fn->n_holds = fn->cap_holds = 0;
    if (teardown && fn->bridge[0] && fn->nl.sock) {
        nft_table_delete(fn->bridge, NULL);
        nl_link_del(&fn->nl, fn->bridge, NULL);
    }
    nl_close(&fn->nl);
    ipam_fini(&fn->ipam);
}

/* ---- addresses -------------------------------------------------------------- */

int fleet_net_claim(struct fleet_net *fn, uint32_t addr, struct duet_err *err)
{
    return ipam_take(&fn->ipam, addr, err);
}

int fleet_net_alloc(struct fleet_net *fn, uint32_t *addr, struct duet_err *err)
{
    return ipam_alloc(&fn->ipam, addr, err);
}

void fleet_net_release(struct fleet_net *fn, uint32_t addr)
{
    ipam_release(&fn->ipam, addr);
}

void fleet_net_host_if(uint32_t addr, char out[16])
{
    snprintf(out, 16, "dv%08x", addr);
}

bool fleet_net_host_if_addr(const char *name, uint32_t *addr)
{
    unsigned a;
    char tail;
    if (sscanf(name, "dv%8x%c", &a, &tail) != 1)
        return false;
    *addr = a;
    return true;
}

/* Deleting a veth waits for the kernel's RCU grace periods (20-40 ms
 * here), far too long for the loop: it runs in the pool, on a netlink
 * socket of its own. */
struct unplug {
    uv_work_t work;
    char name[16];
};

static void unplug_work(uv_work_t *w)
{
    struct unplug *u = (struct unplug *)w;
    struct nl nl;
    if (nl_open(&nl, NULL) == 0) {
        nl_link_del(&nl, u->name, NULL);   /* gone already: fine */
        nl_close(&nl);
    }
}

static void unplug_done(uv_work_t *w, int status)
{
    (void)status;
    free(w);
}

void fleet_net_unplug(struct fleet_net *fn, uint32_t addr)
{
    struct unplug *u = calloc(1, sizeof(*u));
    if (!u)
        abort();
    fleet_net_host_if(addr, u->name);
    if (uv_queue_work(fn->loop, &u->work, unplug_work, unplug_done) < 0)
        free(u);
}

void fleet_net_attachment(const struct fleet_net *fn, uint32_t addr, struct net_attachment *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->bridge, sizeof(out->bridge), "%s", fn->bridge);
    out->bridge_index = fn->bridge_index;
    out->addr = addr;
    out->gateway = out->dns = ipam_gateway(&fn->ipam.subnet);
    out->prefix = fn->ipam.subnet.prefix;
    ipam_mac(addr, out->mac);
    fleet_net_host_if(addr, out->host_if);
}

/* ---- published ports ---------------------------------------------------------- */

static struct fleet_hold *hold_find(struct fleet_net *fn, uint16_t host, bool udp)
{
    for (size_t i = 0; i < fn->n_holds; i++)
        if (fn->holds[i].host == host && fn->holds[i].udp == udp)
            return &fn->holds[i];
    return NULL;
}

/* A socket bound to the port on every address, without SO_REUSEADDR and
 * never listening: while it is open no other program can take the port,
 * and a program that has it already makes this fail.  Traffic never
 * reaches it: the table sends it on to the workload first. */
static int port_bind(uint16_t port, bool udp, struct duet_err *err)
{
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return duet_err_sys(err, "cannot open a socket for host port %u", port);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        if (e == EADDRINUSE)
            return duet_err_set(err, EADDRINUSE,
                                "host port %u/%s is in use by another program on this host; publish on another "
                                "host port (ports: [{host: N, ...}]) or stop that program",
                                port, udp ? "udp" : "tcp");
        return duet_err_sys(err, "cannot reserve host port %u/%s", port, udp ? "udp" : "tcp");
    }
    return fd;
}

int fleet_net_ports_check(struct fleet_net *fn, const char *owner, const struct wl_port *ports, size_t n,
                          struct duet_err *err)
{
    (void)owner;
    for (size_t i = 0; i < n; i++) {
        bool udp = ports[i].protocol == WL_PROTO_UDP;
        if (hold_find(fn, ports[i].host, udp))
            continue;   /* the fleet's already; the manifests decide whose */
        int fd = port_bind(ports[i].host, udp, err);
        if (fd < 0)
            return duet_err_prefix(err, "%s", owner);
        close(fd);
    }
    return 0;
}

int fleet_net_ports_set(struct fleet_net *fn, const char *owner, const struct wl_port *ports, size_t n,
                        struct duet_err *err)
{
    /* Let go of what owner no longer publishes. */
    for (size_t i = 0; i < fn->n_holds;) {
        struct fleet_hold *h = &fn->holds[i];
        bool keep = strcmp(h->owner, owner) != 0;
        for (size_t k = 0; k < n && !keep; k++)
            keep = ports[k].host == h->host && (ports[k].protocol == WL_PROTO_UDP) == h->udp;
        if (keep) {
            i++;
            continue;
        }
        close(h->fd);
        fn->holds[i] = fn->holds[--fn->n_holds];
    }
    int rc = 0;
    for (size_t k = 0; k < n; k++) {
        bool udp = ports[k].protocol == WL_PROTO_UDP;
        struct fleet_hold *h = hold_find(fn, ports[k].host, udp);
        if (h) {
            /* Handed over within the fleet (the apply that did it checked
             * the manifests): the new owner takes it. */
            snprintf(h->owner, sizeof(h->owner), "%s", owner);
            h->port = ports[k].port;
            continue;
        }
        struct duet_err e = {0};
        int fd = port_bind(ports[k].host, udp, &e);
        if (fd < 0) {
            if (rc == 0 && err)
                *err = e;
            rc = -1;
            continue;
        }
        GROW(fn->holds, fn->cap_holds, fn->n_holds + 1);
        h = &fn->holds[fn->n_holds++];
        *h = (struct fleet_hold){.host = ports[k].host, .port = ports[k].port, .udp = udp, .fd = fd};
        snprintf(h->owner, sizeof(h->owner), "%s", owner);
    }
    return rc;
}

bool fleet_net_ports_release(struct fleet_net *fn, const char *owner)
{
    size_t before = fn->n_holds;
    fleet_net_ports_set(fn, owner, NULL, 0, NULL);
    return fn->n_holds != before;
}

const char *fleet_net_port_owner(const struct fleet_net *fn, uint16_t host, enum wl_protocol protocol)
{
    for (size_t i = 0; i < fn->n_holds; i++)
        if (fn->holds[i].host == host && fn->holds[i].udp == (protocol == WL_PROTO_UDP))
            return fn->holds[i].owner;
    return NULL;
}

int fleet_net_sync(struct fleet_net *fn, struct duet_err *err)
{
    struct nft_port *v = calloc(fn->n_holds + 1, sizeof(*v));
    if (!v)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < fn->n_holds; i++) {
        uint32_t addr;
        if (!fn->lookup(fn->lookup_opaque, fn->holds[i].owner, &addr))
            continue;   /* no address yet: published once it has one */
        v[n++] = (struct nft_port){.host = fn->holds[i].host, .port = fn->holds[i].port, .udp = fn->holds[i].udp,
                                   .addr = addr};
    }
    int rc = nft_table_write(fn->bridge, &fn->ipam.subnet, v, n, err);
    free(v);
    return rc;
}

/* ---- leftovers -------------------------------------------------------------- */

struct sweep {
    struct fleet_net *fn;
    bool (*in_use)(void *opaque, uint32_t addr);
    void *opaque;
    char (*names)[16];
    size_t n, cap;
};

static void sweep_link(void *opaque, const struct nl_link *l)
{
    struct sweep *s = opaque;
    uint32_t addr;
    if (l->master != s->fn->bridge_index || !fleet_net_host_if_addr(l->name, &addr) || s->in_use(s->opaque, addr))
        return;
    GROW(s->names, s->cap, s->n + 1);
    snprintf(s->names[s->n++], 16, "%s", l->name);
}

int fleet_net_sweep(struct fleet_net *fn, bool (*in_use)(void *opaque, uint32_t addr), void *opaque)
{
    struct sweep s = {.fn = fn, .in_use = in_use, .opaque = opaque};
    if (nl_link_list(&fn->nl, sweep_link, &s, NULL) < 0)
        return 0;
    int removed = 0;
    for (size_t i = 0; i < s.n; i++)
        if (nl_link_del(&fn->nl, s.names[i], NULL) == 0)
            removed++;
    free(s.names);
    return removed;
}
