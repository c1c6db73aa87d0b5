/*
 * dhcp.c - DHCP requests and replies (see dhcp.h); RFC 2131 and 2132.
 */
#include "dhcp.h"

#include <string.h>

#define BOOTP_LEN 236            /* the fixed part, up to the options */
static const uint8_t cookie[4] = {99, 130, 83, 99};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

bool dhcp_parse(const uint8_t *pkt, size_t len, struct dhcp_request *r)
{
    memset(r, 0, sizeof(*r));
    if (len < BOOTP_LEN + 4 || pkt[0] != 1 || pkt[1] != 1 || pkt[2] != 6 ||
        memcmp(pkt + BOOTP_LEN, cookie, 4) != 0)
        return false;
    r->xid = get32(pkt + 4);
    r->flags = (uint16_t)(pkt[10] << 8 | pkt[11]);
    r->ciaddr = get32(pkt + 12);
    memcpy(r->chaddr, pkt + 28, 6);
    size_t off = BOOTP_LEN + 4;
    while (off < len) {
        uint8_t code = pkt[off++];
        if (code == 255)
            break;
        if (code == 0)
            continue;   /* pad */
        if (off >= len)
            return false;
        uint8_t l = pkt[off++];
        if (off + l > len)
            return false;
        const uint8_t *v = pkt + off;
        if (code == 53 && l == 1)
            r->type = v[0];
        else if (code == 50 && l == 4)
            r->requested = get32(v);
        else if (code == 54 && l == 4)
            r->server_id = get32(v);
        off += l;
    }
    return r->type != 0;
}

static size_t opt(uint8_t *out, size_t off, size_t cap, uint8_t code, const void *v, size_t l)
{
    if (off == 0 || off + 2 + l > cap)
        return 0;
    out[off] = code;
    out[off + 1] = (uint8_t)l;
    memcpy(out + off + 2, v, l);
    return off + 2 + l;
}

static size_t opt32(uint8_t *out, size_t off, size_t cap, uint8_t code, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    return opt(out, off, cap, code, b, 4);
}

size_t dhcp_reply(const struct dhcp_request *r, uint8_t type, const struct dhcp_lease *l, uint8_t *out, size_t cap)
{
    if (cap < BOOTP_LEN + 4)
        return 0;
    memset(out, 0, BOOTP_LEN);
    out[0] = 2;                  /* BOOTREPLY */
    out[1] = 1;
    out[2] = 6;
    put32(out + 4, r->xid);
    out[10] = (uint8_t)(r->flags >> 8);
    out[11] = (uint8_t)r->flags;
    if (type != DHCP_NAK) {
        put32(out + 16, l->addr);   /* yiaddr */
        put32(out + 20, l->server); /* siaddr */
    }
    memcpy(out + 28, r->chaddr, 6);
    memcpy(out + BOOTP_LEN, cookie, 4);
    size_t off = BOOTP_LEN + 4;
    off = opt(out, off, cap, 53, &type, 1);
    off = opt32(out, off, cap, 54, l->server);
    if (type != DHCP_NAK) {
        off = opt32(out, off, cap, 51, l->seconds);
        off = opt32(out, off, cap, 1, l->mask);
        off = opt32(out, off, cap, 3, l->router);
        off = opt32(out, off, cap, 6, l->dns);
        if (l->hostname && *l->hostname) {
            size_t n = strlen(l->hostname);
            off = opt(out, off, cap, 12, l->hostname, n > 63 ? 63 : n);
        }
    }
    if (off == 0 || off + 1 > cap)
        return 0;
    out[off++] = 255;
    /* BOOTP's minimum: some clients drop shorter replies */
    while (off < 300 && off < cap)
        out[off++] = 0;
    return off;
}
