/*
 * ipam.c - subnet arithmetic and the address map (see ipam.h).
 */
#include "ipam.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ipam_parse_addr(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *s++ != '.')
            return false;
        if (*s < '0' || *s > '9')
            return false;
        unsigned n = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            n = n * 10 + (unsigned)(*s - '0');
            if (n > 255 || s - start >= 3)
                return false;
            s++;
        }
        if (s - start > 1 && *start == '0')
            return false;   /* 010 is octal to inet_aton: refuse the ambiguity */
        v = (v << 8) | n;
    }
    if (*s)
        return false;
    *out = v;
    return true;
}

uint32_t ipam_mask(const struct ipam_subnet *s)
{
    return s->prefix == 0 ? 0 : ~UINT32_C(0) << (32 - s->prefix);
}

int ipam_parse_subnet(const char *s, struct ipam_subnet *out, struct duet_err *err)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return duet_err_set(err, EINVAL, "subnet \"%.40s\": write it as ADDRESS/PREFIX, e.g. 10.88.0.0/16", s);
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    uint32_t addr;
    if (!ipam_parse_addr(buf, &addr))
        return duet_err_set(err, EINVAL, "subnet \"%.40s\": \"%s\" is not an IPv4 address", s, buf);
    const char *p = slash + 1;
    unsigned prefix = 0;
    if (*p < '0' || *p > '9' || strlen(p) > 2)
        return duet_err_set(err, EINVAL, "subnet \"%.40s\": the prefix length must be a number from 8 to 29", s);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return duet_err_set(err, EINVAL, "subnet \"%.40s\": the prefix length must be a number from 8 to 29",
                                s);
        prefix = prefix * 10 + (unsigned)(*p - '0');
    }
    if (prefix < 8 || prefix > 29)
        return duet_err_set(err, EINVAL, "subnet \"%.40s\": a /%u %s; use a prefix from 8 to 29", s, prefix,
                            prefix < 8 ? "is wider than any host needs" : "has no room for workloads");
    struct ipam_subnet sn = {.net = addr, .prefix = prefix};
    if (addr & ~ipam_mask(&sn)) {
        char fixed[16];
        ipam_format(addr & ipam_mask(&sn), fixed);
        return duet_err_set(err, EINVAL, "subnet \"%.40s\" has host bits set; did you mean %s/%u?", s, fixed,
                            prefix);
    }
    *out = sn;
    return 0;
}

void ipam_format(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

void ipam_format_subnet(const struct ipam_subnet *s, char out[20])
{
    char a[16];
    ipam_format(s->net, a);
    snprintf(out, 20, "%s/%u", a, s->prefix);
}

uint32_t ipam_gateway(const struct ipam_subnet *s)
{
    return s->net + 1;
}

bool ipam_contains(const struct ipam_subnet *s, uint32_t addr)
{
    return (addr & ipam_mask(s)) == s->net;
}

bool ipam_overlap(const struct ipam_subnet *a, const struct ipam_subnet *b)
{
    /* Two prefixes overlap exactly when the wider contains the narrower's start. */
    const struct ipam_subnet *wide = a->prefix <= b->prefix ? a : b, *narrow = wide == a ? b : a;
    return ipam_contains(wide, narrow->net);
}

void ipam_mac(uint32_t addr, uint8_t mac[6])
{
    mac[0] = 0x02;
    mac[1] = 0x64;
    mac[2] = (uint8_t)(addr >> 24);
    mac[3] = (uint8_t)(addr >> 16);
    mac[4] = (uint8_t)(addr >> 8);
    mac[5] = (uint8_t)addr;
}

bool ipam_mac_addr(const uint8_t mac[6], uint32_t *addr)
{
    if (mac[0] != 0x02 || mac[1] != 0x64)
        return false;
    *addr = (uint32_t)mac[2] << 24 | (uint32_t)mac[3] << 16 | (uint32_t)mac[4] << 8 | mac[5];
    return true;
}

void ipam_format_mac(const uint8_t m[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

int ipam_init(struct ipam *p, const struct ipam_subnet *s, struct duet_err *err)
{
    memset(p, 0, sizeof(*p));
    if (s->prefix < 8 || s->prefix > 29)
        return duet_err_set(err, EINVAL, "subnet prefix /%u out of range 8..29", s->prefix);
    p->subnet = *s;
    p->size = UINT32_C(1) << (32 - s->prefix);
    p->bits = calloc(p->size / 8, 1);
    if (!p->bits)
        abort();
    /* network, gateway and broadcast addresses are never handed out */
    p->bits[0] |= 3;
    p->bits[(p->size - 1) / 8] |= (uint8_t)(1u << ((p->size - 1) % 8));
    p->hint = 2;
    return 0;
}

void ipam_fini(struct ipam *p)
{
    free(p->bits);
    p->bits = NULL;
}

static bool bit(const struct ipam *p, uint32_t i)
{
    return p->bits[i / 8] & (1u << (i % 8));
}

int ipam_take(struct ipam *p, uint32_t addr, struct duet_err *err)
{
    char a[16], sn[20];
    ipam_format(addr, a);
    ipam_format_subnet(&p->subnet, sn);
    if (!ipam_contains(&p->subnet, addr))
        return duet_err_set(err, EDOM, "address %s is outside the fleet's subnet %s", a, sn);
    uint32_t i = addr - p->subnet.net;
    if (i < 2 || i == p->size - 1)
        return duet_err_set(err, EDOM, "address %s is reserved in %s (network, gateway or broadcast)", a, sn);
    if (bit(p, i))
        return duet_err_set(err, EEXIST, "address %s is taken twice", a);
    p->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    p->used++;
    return 0;
}

int ipam_alloc(struct ipam *p, uint32_t *out, struct duet_err *err)
{
    /* Usable addresses are size - 3; the hint makes a run of allocations
     * linear overall instead of quadratic. */
    for (uint32_t n = 0; n < p->size; n++) {
        uint32_t i = (p->hint + n) % p->size;
        if (!bit(p, i)) {
            p->bits[i / 8] |= (uint8_t)(1u << (i % 8));
            p->used++;
            p->hint = i + 1;
            *out = p->subnet.net + i;
            return 0;
        }
    }
    char sn[20];
    ipam_format_subnet(&p->subnet, sn);
    return duet_err_set(err, ENOSPC,
                        "the fleet's subnet %s has no free address left; start duetd with a wider --subnet", sn);
}

void ipam_release(struct ipam *p, uint32_t addr)
{
    if (!ipam_contains(&p->subnet, addr))
        return;
    uint32_t i = addr - p->subnet.net;
    if (i < 2 || i == p->size - 1 || !bit(p, i))
        return;
    p->bits[i / 8] &= (uint8_t) ~(1u << (i % 8));
    p->used--;
    /* lowest free first: a released address is the next one given */
    if (i < p->hint)
        p->hint = i;
}

uint32_t ipam_free_count(const struct ipam *p)
{
    uint32_t usable = p->size > 3 ? p->size - 3 : 0;
    return p->used < usable ? usable - p->used : 0;
}
