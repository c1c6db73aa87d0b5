/*
 * netlink.c - rtnetlink requests through libmnl (see netlink.h).
 *
 * Every request asks for an ack, so the kernel's errno comes back with the
 * request that caused it; the caller gets it in a duet_err naming the link.
 */
#include "netlink.h"
#include "common/ifname.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int nl_open(struct nl *nl, struct duet_err *err)
{
    memset(nl, 0, sizeof(*nl));
    nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl->sock)
        return duet_err_sys(err, "cannot open a netlink socket");
    if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        int rc = duet_err_sys(err, "cannot bind a netlink socket");
        mnl_socket_close(nl->sock);
        nl->sock = NULL;
        return rc;
    }
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (unsigned)time(NULL);
    return 0;
}

void nl_close(struct nl *nl)
{
    if (nl->sock)
        mnl_socket_close(nl->sock);
    nl->sock = NULL;
}

/* Sends the request in buf and runs cb on each reply until the ack (or the
 * end of a dump).  Returns 0, or -1 with errno set (the kernel's). */
static int transact(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_seq = ++nl->seq;
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
        return -1;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        int rc = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
        if (rc < 0)
            return -1;
        if (rc == MNL_CB_STOP)
            return 0;
    }
}

/* A dump (a list of links, of addresses).  The kernel marks a dump that
 * changes underneath it (links added or removed meanwhile) with
 * NLM_F_DUMP_INTR, which libmnl turns into EINTR: then the whole dump is
 * asked again.  Replies are gathered first and handed to cb only once a
 * dump came through whole, so cb never sees an entry twice. */
#define DUMP_TRIES 16
static int dump(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
    for (int attempt = 0; attempt < DUMP_TRIES; attempt++) {
        nlh->nlmsg_seq = ++nl->seq;
        if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
            return -1;
        char *all = NULL;
        size_t len = 0, cap = 0;
        bool done = false, intr = false;
        while (!done) {
            char buf[MNL_SOCKET_BUFFER_SIZE];
            ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                free(all);
                return -1;
            }
            /* Only this dump's messages count; a late reply to an earlier
             * request is dropped. */
            int left = (int)n;
            for (const struct nlmsghdr *m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, left);
                 m = mnl_nlmsg_next(m, &left)) {
                if (m->nlmsg_seq != nl->seq)
                    continue;
                if (m->nlmsg_flags & NLM_F_DUMP_INTR)
                    intr = true;
                if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR)
                    done = true;
                if (len + m->nlmsg_len > cap) {
                    cap = (len + m->nlmsg_len) * 2;
                    char *nb = realloc(all, cap);
                    if (!nb)
                        abort();
                    all = nb;
                }
                memcpy(all + len, m, m->nlmsg_len);
                len += NLMSG_ALIGN(m->nlmsg_len);
            }
        }
        if (intr) {
            free(all);
            continue;
        }
        int rc = mnl_cb_run(all, len, nl->seq, nl->portid, cb, data);
        free(all);
        return rc < 0 ? -1 : 0;
    }
    errno = EINTR;
    return -1;
}

/* ---- links ---------------------------------------------------------- */

/* The start of every link request: the header and an ifinfomsg, to which
 * the caller adds attributes. */
static struct nlmsghdr *link_req(char *buf, uint16_t type, uint16_t flags, struct ifinfomsg **ifm)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(**ifm));
    (*ifm)->ifi_family = AF_UNSPEC;
    return nlh;
}

struct link_parse {
    struct nl_link *out;
    void (*cb)(void *opaque, const struct nl_link *l);
    void *opaque;
};

static void copy_str(char *dst, size_t len, const struct nlattr *a)
{
    size_t n = mnl_attr_get_payload_len(a);
    const char *s = mnl_attr_get_payload(a);
    if (n >= len)
        n = len - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';   /* the kernel's strings carry their NUL; a stray one inside ends the copy early */
}

static int link_attr(const struct nlattr *a, void *data)
{
    struct nl_link *l = data;
    switch (mnl_attr_get_type(a)) {
    case IFLA_IFNAME:
        copy_str(l->name, sizeof(l->name), a);
        break;
    case IFLA_IFALIAS:
        copy_str(l->alias, sizeof(l->alias), a);
        break;
    case IFLA_MASTER:
        if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
            l->master = (int)mnl_attr_get_u32(a);
        break;
    case IFLA_LINKINFO: {
        const struct nlattr *in;
        mnl_attr_for_each_nested(in, a) {
            if (mnl_attr_get_type(in) == IFLA_INFO_KIND)
                copy_str(l->kind, sizeof(l->kind), in);
        }
        break;
    }
    default:
        break;
    }
    return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
    struct link_parse *lp = data;
    if (nlh->nlmsg_type != RTM_NEWLINK)
        return MNL_CB_OK;
    const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
    struct nl_link l = {.index = ifm->ifi_index, .up = (ifm->ifi_flags & IFF_UP) != 0};
    mnl_attr_parse(nlh, sizeof(*ifm), link_attr, &l);
    if (lp->out)
        *lp->out = l;
    if (lp->cb)
        lp->cb(lp->opaque, &l);
    return MNL_CB_OK;
}

int nl_link_get(struct nl *nl, const char *name, struct nl_link *out, struct duet_err *err)
{
    if (!duet_ifname_valid(name))
        return duet_err_set(err, EINVAL, "\"%.40s\" is not a valid interface name (1 to 15 characters)", name);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    struct nlmsghdr *nlh = link_req(buf, RTM_GETLINK, 0, &ifm);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    memset(out, 0, sizeof(*out));
    struct link_parse lp = {.out = out};
    if (transact(nl, nlh, link_cb, &lp) < 0)
        return errno == ENODEV ? duet_err_set(err, ENODEV, "no interface %s", name)
                               : duet_err_sys(err, "interface %s: cannot read it", name);
    return 0;
}

int nl_link_list(struct nl *nl, void (*cb)(void *opaque, const struct nl_link *l), void *opaque,
                 struct duet_err *err)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    struct nlmsghdr *nlh = link_req(buf, RTM_GETLINK, NLM_F_DUMP, &ifm);
    struct link_parse lp = {.cb = cb, .opaque = opaque};
    if (dump(nl, nlh, link_cb, &lp) < 0)
        return duet_err_sys(err, "cannot list the network interfaces");
    return 0;
}

int nl_bridge_add(struct nl *nl, const char *name, const char *alias, const uint8_t mac[6], struct duet_err *err)
{
    if (!duet_ifname_valid(name))
        return duet_err_set(err, EINVAL, "\"%.40s\" is not a valid bridge name (1 to 15 characters)", name);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    struct nlmsghdr *nlh = link_req(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifm);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, info);
    if (transact(nl, nlh, NULL, NULL) < 0)
        return errno == EEXIST ? duet_err_set(err, EEXIST, "interface %s exists already", name)
                               : duet_err_sys(err, "cannot create bridge %s", name);
    /* The alias is a property of an existing link (a new link ignores it). */
    nlh = link_req(buf, RTM_NEWLINK, 0, &ifm);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
    if (transact(nl, nlh, NULL, NULL) < 0) {
        int rc = duet_err_sys(err, "bridge %s: cannot label it", name);
        nl_link_del(nl, name, NULL);
        return rc;
    }
    return 0;
}

int nl_link_set_up(struct nl *nl, int index, struct duet_err *err)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    struct nlmsghdr *nlh = link_req(buf, RTM_NEWLINK, 0, &ifm);
    ifm->ifi_index = index;
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    if (transact(nl, nlh, NULL, NULL) < 0)
        return duet_err_sys(err, "cannot bring up interface %d", index);
    return 0;
}

int nl_link_del(struct nl *nl, const char *name, struct duet_err *err)
{
    if (!duet_ifname_valid(name))
        return duet_err_set(err, EINVAL, "\"%.40s\" is not a valid interface name", name);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    struct nlmsghdr *nlh = link_req(buf, RTM_DELLINK, 0, &ifm);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (transact(nl, nlh, NULL, NULL) < 0 && errno != ENODEV)
        return duet_err_sys(err, "cannot remove interface %s", name);
    return 0;
}

/* ---- addresses ---------------------------------------------------------- */

int nl_addr_add(struct nl *nl, int index, uint32_t addr, unsigned prefix, struct duet_err *err)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWADDR;
    nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)index;
    uint32_t be = htonl(addr);
    mnl_attr_put_u32(nlh, IFA_LOCAL, be);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, be);
    if (prefix < 31)
        mnl_attr_put_u32(nlh, IFA_BROADCAST, htonl(addr | (~UINT32_C(0) >> prefix)));
    if (transact(nl, nlh, NULL, NULL) < 0)
        return duet_err_sys(err, "cannot add an address to interface %d", index);
    return 0;
}

struct addr_parse {
    void (*cb)(void *opaque, const struct nl_addr *a);
    void *opaque;
};

static int addr_attr(const struct nlattr *a, void *data)
{
    struct nl_addr *ad = data;
    switch (mnl_attr_get_type(a)) {
    case IFA_LOCAL:
        if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
            ad->addr = ntohl(mnl_attr_get_u32(a));
        break;
    case IFA_ADDRESS:   /* IFA_LOCAL wins where both exist (point-to-point) */
        if (!ad->addr && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
            ad->addr = ntohl(mnl_attr_get_u32(a));
        break;
    case IFA_LABEL:
        copy_str(ad->label, sizeof(ad->label), a);
        break;
    default:
        break;
    }
    return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
    struct addr_parse *ap = data;
    if (nlh->nlmsg_type != RTM_NEWADDR)
        return MNL_CB_OK;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (ifa->ifa_family != AF_INET)
        return MNL_CB_OK;
    struct nl_addr a = {.index = (int)ifa->ifa_index, .prefix = ifa->ifa_prefixlen};
    mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, &a);
    ap->cb(ap->opaque, &a);
    return MNL_CB_OK;
}

int nl_addr_list(struct nl *nl, void (*cb)(void *opaque, const struct nl_addr *a), void *opaque,
                 struct duet_err *err)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_DUMP;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    struct addr_parse ap = {.cb = cb, .opaque = opaque};
    if (dump(nl, nlh, addr_cb, &ap) < 0)
        return duet_err_sys(err, "cannot list the host's addresses");
    return 0;
}

/* ---- veth ------------------------------------------------------------- */

/* The fleet's network is IPv4.  An interface left to IPv6's defaults makes
 * itself a link-local address when it comes up, checks it with neighbour
 * solicitations and asks for routers: multicast that the bridge floods to
 * every port, each copy handled by a namespace's IPv6 stack, and on the
 * host one fe80::/64 route per port, a list every IPv6 lookup walks.  With
 * 500 containers that is 500 × 500 copies and a 500-long list, for
 * addresses nothing uses.  So neither end of a veth has IPv6 (the
 * container's end is turned off by its setup process, inside its
 * namespace); loopback keeps ::1.  Written while the link is down, so it
 * never has an address to take back.  A kernel without IPv6 has no such
 * file, and nothing to turn off. */
static int ipv6_off(const char *name)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT && access("/proc/sys/net/ipv6", F_OK) < 0 ? 0 : -1;
    int rc = write(fd, "1", 1) == 1 ? 0 : -1;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int nl_veth_add(struct nl *nl, const char *name, int master, const char *peer_name, const uint8_t peer_mac[6],
                pid_t peer_pid, struct duet_err *err)
{
    if (!duet_ifname_valid(name) || !duet_ifname_valid(peer_name))
        return duet_err_set(err, EINVAL, "veth %.20s/%.20s: invalid interface name", name, peer_name);
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct ifinfomsg *ifm;
    /* A port of the bridge from the start, but down: see ipv6_off. */
    struct nlmsghdr *nlh = link_req(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifm);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    /* One queue each way, asked for, on both ends: a veth otherwise gets
     * one per CPU and is cut down to one at once, and that cut waits out
     * an RCU grace period while holding the kernel's network lock (rtnl),
     * which every other container's veth, address and network namespace
     * is waiting for.  Starting 500, that wait was the longest of all. */
    mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
    mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    /* The peer is described by an ifinfomsg of its own, then attributes. */
    struct ifinfomsg *pifm = (struct ifinfomsg *)((char *)nlh + nlh->nlmsg_len);
    memset(pifm, 0, sizeof(*pifm));
    pifm->ifi_family = AF_UNSPEC;
    nlh->nlmsg_len += MNL_ALIGN(sizeof(*pifm));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name);
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
    mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
    mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_PID, (uint32_t)peer_pid);
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    if (transact(nl, nlh, NULL, NULL) < 0)
        return errno == EEXIST ? duet_err_set(err, EEXIST, "interface %s exists already", name)
                               : duet_err_sys(err, "cannot create veth %s", name);
    if (ipv6_off(name) < 0) {
        int rc = duet_err_sys(err, "veth %s: cannot turn IPv6 off on it", name);
        nl_link_del(nl, name, NULL);
        return rc;
    }
    nlh = link_req(buf, RTM_NEWLINK, 0, &ifm);
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    if (transact(nl, nlh, NULL, NULL) < 0) {
        int rc = duet_err_sys(err, "cannot bring up veth %s", name);
        nl_link_del(nl, name, NULL);
        return rc;
    }
    return 0;
}
