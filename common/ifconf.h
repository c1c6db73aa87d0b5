/*
 * ifconf.h - gives an interface an IPv4 address, brings it up and routes
 * through a gateway, from inside the namespace (or guest) that owns it.
 *
 * Header-only and allocation-free on purpose: it runs in a container's
 * setup child (a fork of a threaded daemon, where malloc may deadlock) and
 * in duet-vminit, the guest's static /init, which links nothing of duet's.
 * Both only configure the one interface duet gave them, so the classic
 * ioctls do all that is needed; the host side (bridge, veth) is netlink.
 */
#ifndef DUET_IFCONF_H
#define DUET_IFCONF_H

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void ifconf_name(struct ifreq *ifr, const char *ifname)
{
    memset(ifr, 0, sizeof(*ifr));
    size_t n = strlen(ifname);
    if (n >= IFNAMSIZ)
        n = IFNAMSIZ - 1;
    memcpy(ifr->ifr_name, ifname, n);
}

/* Sets IFF_UP on ifname through fd (any AF_INET socket). */
static inline int ifconf_set_up(int fd, const char *ifname)
{
    struct ifreq ifr;
    ifconf_name(&ifr, ifname);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

/* Brings ifname up (loopback, in a new namespace or guest).  On failure
 * returns -1 with errno set and *what naming the step. */
static inline int ifconf_up(const char *ifname, const char **what)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : ifconf_set_up(fd, ifname);
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        *what = "bringing up a network interface";
    return rc;
}

/* Host byte order addresses; gateway 0: no default route.  On failure
 * returns -1 with errno set and *what naming the step. */
static inline int ifconf_ipv4(const char *ifname, uint32_t addr, unsigned prefix, uint32_t gateway,
                              const char **what)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *what = "opening a socket to configure the network";
        return -1;
    }
    struct ifreq ifr;
    ifconf_name(&ifr, ifname);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int rc = 0;
    sin.sin_addr.s_addr = htonl(addr);
    memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
    if (ioctl(fd, SIOCSIFADDR, &ifr) < 0) {
        *what = "setting the address of the network interface";
        rc = -1;
        goto out;
    }
    sin.sin_addr.s_addr = htonl(prefix ? ~UINT32_C(0) << (32 - prefix) : 0);
    memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0) {
        *what = "setting the netmask of the network interface";
        rc = -1;
        goto out;
    }
    if (ifconf_set_up(fd, ifname) < 0) {
        *what = "bringing up the network interface";
        rc = -1;
        goto out;
    }
    if (gateway) {
        struct rtentry rt;
        memset(&rt, 0, sizeof(rt));
        struct sockaddr_in any = {.sin_family = AF_INET}, gw = {.sin_family = AF_INET};
        gw.sin_addr.s_addr = htonl(gateway);
        memcpy(&rt.rt_dst, &any, sizeof(any));
        memcpy(&rt.rt_genmask, &any, sizeof(any));
        memcpy(&rt.rt_gateway, &gw, sizeof(gw));
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        if (ioctl(fd, SIOCADDRT, &rt) < 0) {
            *what = "adding the default route";
            rc = -1;
        }
    }
out:
    close(fd);
    return rc;
}

#endif
