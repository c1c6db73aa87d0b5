/*
 * dns.h - the small part of DNS the fleet's name server speaks: one
 * question in, an A answer (or none) out.
 *
 * Everything here is pure (bytes in, bytes out) so it can be tested with
 * hostile packets; the server around it is in resolver.c.  Incoming
 * packets are untrusted: every length is checked against the packet,
 * compression pointers in a question are refused, names are limited to
 * 255 bytes and labels to 63.
 */
#ifndef DUET_DNS_H
#define DUET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 255
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

enum dns_rcode { DNS_NOERROR = 0, DNS_FORMERR = 1, DNS_SERVFAIL = 2, DNS_NXDOMAIN = 3, DNS_NOTIMP = 4, DNS_REFUSED = 5 };

struct dns_query {
    uint16_t id;
    bool rd;                       /* recursion desired */
    uint16_t qtype, qclass;
    char name[DNS_NAME_MAX + 1];   /* lower case, dots between labels, no trailing dot; "" for the root */
    size_t labels;
    size_t question_len;           /* bytes of the question section, for the echo in an answer */
};

enum dns_parse {
    DNS_PARSE_OK,
    DNS_PARSE_DROP,                /* not a query (too short, a response): no answer at all */
    DNS_PARSE_FORMERR,             /* a query we can answer only with FORMERR (id is set) */
    DNS_PARSE_NOTIMP,              /* an opcode other than QUERY (id is set) */
};

enum dns_parse dns_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q);

/* Writes the answer to q into out: header, q's question (taken from pkt),
 * and one A record for *addr when addr is not NULL.  Returns its length,
 * or 0 when cap is too small. */
size_t dns_answer(const uint8_t *pkt, const struct dns_query *q, enum dns_rcode rcode, const uint32_t *addr,
                  uint32_t ttl, uint8_t *out, size_t cap);
/* A header-only error answer (FORMERR, NOTIMP) for a packet whose question could not be read. */
size_t dns_error(uint16_t id, enum dns_rcode rcode, uint8_t *out, size_t cap);

#endif
