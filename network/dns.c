/*
 * dns.c - DNS query parsing and answers (see dns.h); RFC 1035 section 4.
 */
#include "dns.h"

#include <string.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

enum dns_parse dns_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q)
{
    memset(q, 0, sizeof(*q));
    if (len < 12)
        return DNS_PARSE_DROP;
    q->id = get16(pkt);
    uint16_t flags = get16(pkt + 2);
    if (flags & 0x8000)
        return DNS_PARSE_DROP;   /* a response: answering it could loop */
    q->rd = (flags & 0x0100) != 0;
    if (((flags >> 11) & 0xf) != 0)
        return DNS_PARSE_NOTIMP;
    if (get16(pkt + 4) != 1 || get16(pkt + 6) != 0 || get16(pkt + 8) != 0)
        return DNS_PARSE_FORMERR;   /* one question, no answers or authority in a query */
    size_t off = 12, out = 0;
    for (;;) {
        if (off >= len)
            return DNS_PARSE_FORMERR;
        uint8_t l = pkt[off++];
        if (l == 0)
            break;
        if (l & 0xc0)
            return DNS_PARSE_FORMERR;   /* pointers (and the reserved 01/10 forms) have no place in a question */
        if (off + l > len || out + l + (out ? 1 : 0) > DNS_NAME_MAX)
            return DNS_PARSE_FORMERR;
        if (out)
            q->name[out++] = '.';
        for (uint8_t i = 0; i < l; i++) {
            uint8_t c = pkt[off + i];
            /* a label may hold any byte; a dot or NUL inside one would make
             * the text form ambiguous: no name of ours has them */
            if (c == '.' || c == 0)
                return DNS_PARSE_FORMERR;
            q->name[out++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        off += l;
        q->labels++;
    }
    if (off + 4 > len)
        return DNS_PARSE_FORMERR;
    q->name[out] = '\0';
    q->qtype = get16(pkt + off);
    q->qclass = get16(pkt + off + 2);
    q->question_len = off + 4 - 12;
    return DNS_PARSE_OK;
}

size_t dns_answer(const uint8_t *pkt, const struct dns_query *q, enum dns_rcode rcode, const uint32_t *addr,
                  uint32_t ttl, uint8_t *out, size_t cap)
{
    size_t need = 12 + q->question_len + (addr ? 16 : 0);
    if (cap < need)
        return 0;
    put16(out, q->id);
    /* QR, AA (the fleet's names are ours), RD echoed, RA: other names are
     * forwarded */
    put16(out + 2, (uint16_t)(0x8000 | 0x0400 | (q->rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf)));
    put16(out + 4, 1);
    put16(out + 6, addr ? 1 : 0);
    put16(out + 8, 0);
    put16(out + 10, 0);
    memcpy(out + 12, pkt + 12, q->question_len);
    size_t off = 12 + q->question_len;
    if (addr) {
        put16(out + off, 0xc00c);   /* the name: the question's, at offset 12 */
        put16(out + off + 2, DNS_TYPE_A);
        put16(out + off + 4, DNS_CLASS_IN);
        put16(out + off + 6, (uint16_t)(ttl >> 16));
        put16(out + off + 8, (uint16_t)ttl);
        put16(out + off + 10, 4);
        out[off + 12] = (uint8_t)(*addr >> 24);
        out[off + 13] = (uint8_t)(*addr >> 16);
        out[off + 14] = (uint8_t)(*addr >> 8);
        out[off + 15] = (uint8_t)*addr;
    }
    return need;
}

size_t dns_error(uint16_t id, enum dns_rcode rcode, uint8_t *out, size_t cap)
{
    if (cap < 12)
        return 0;
    memset(out, 0, 12);
    put16(out, id);
    put16(out + 2, (uint16_t)(0x8000 | 0x0080 | (rcode & 0xf)));
    return 12;
}
