/*
 * ifname.h - the rule for a network interface name duet creates or is
 * told to use (a bridge, a veth): what the kernel takes (at most 15 bytes,
 * no '/', ':' or blank), and not "." or "..", which the kernel's own paths
 * under /sys/class/net and /proc/sys/net make special.  One rule for the
 * config file, duetd's options and the netlink calls.
 */
#ifndef DUET_IFNAME_H
#define DUET_IFNAME_H

#include <stdbool.h>
#include <string.h>

static inline bool duet_ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || (unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

#endif
