/*
 * test_network.c - the fleet network's parts on their own: subnet parsing
 * and the address map (hostile text included), the DNS query parser fed
 * truncated, looping, oversized and random packets, the firewall table's
 * text, and the netlink requests against a real kernel, in a network
 * namespace of the test's own so the host is never touched.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "network/dhcp.h"
#include "network/dns.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "network/nft.h"

/* ---- addresses ------------------------------------------------------------ */

Test(ipam, parses_only_plain_dotted_quads)
{
    uint32_t a;
    cr_expect(ipam_parse_addr("10.88.0.1", &a) && a == 0x0a580001);
    cr_expect(ipam_parse_addr("0.0.0.0", &a) && a == 0);
    cr_expect(ipam_parse_addr("255.255.255.255", &a) && a == 0xffffffff);
    static const char *const bad[] = {"", "10", "10.88", "10.88.0", "10.88.0.1.", "10.88.0.256", "10.88.0.1 ",
                                      " 10.88.0.1", "10.88.0.01", "010.1.1.1", "1..1.1", "a.b.c.d", "10.88.0.-1",
                                      "1000.1.1.1", "10.88.0.1/24", "0x0a.0.0.1", "10.88.0.4294967297"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(!ipam_parse_addr(bad[i], &a), "\"%s\" was taken for an address", bad[i]);
}

Test(ipam, subnets_and_their_errors)
{
    struct ipam_subnet s;
    struct duet_err err = {0};
    cr_assert_eq(ipam_parse_subnet("10.88.0.0/16", &s, &err), 0, "%s", err.msg);
    cr_expect_eq(s.net, 0x0a580000);
    cr_expect_eq(s.prefix, 16);
    cr_expect_eq(ipam_gateway(&s), 0x0a580001);
    char out[20];
    ipam_format_subnet(&s, out);
    cr_expect_str_eq(out, "10.88.0.0/16");
    struct {
        const char *text, *says;
    } bad[] = {
        {"10.88.0.0", "ADDRESS/PREFIX"},     {"10.88.0.1/16", "did you mean 10.88.0.0/16"},
        {"10.88.0.0/7", "wider"},             {"10.88.0.0/30", "no room"},
        {"10.88.0.0/", "number from 8"},      {"10.88.0.0/1x", "number from 8"},
        {"10.88.0.0/016", "number from 8"},   {"x/16", "not an IPv4 address"},
        {"10.88.0.0/16/16", "number from 8"}, {"/16", "not an IPv4 address"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duet_err_clear(&err);
        cr_expect_eq(ipam_parse_subnet(bad[i].text, &s, &err), -1, "\"%s\" was accepted", bad[i].text);
        cr_expect(strstr(err.msg, bad[i].says), "\"%s\": %s", bad[i].text, err.msg);
    }
    /* a very long one is cut in the message, not overflowed */
    char longs[4000];
    memset(longs, '9', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    cr_expect_eq(ipam_parse_subnet(longs, &s, &err), -1);
}

Test(ipam, overlap_is_symmetric)
{
    struct ipam_subnet a = {0x0a580000, 16}, b = {0x0a580a00, 24}, c = {0x0a590000, 16}, d = {0x0a000000, 8};
    cr_expect(ipam_overlap(&a, &b) && ipam_overlap(&b, &a));
    cr_expect(!ipam_overlap(&a, &c) && !ipam_overlap(&c, &a));
    cr_expect(ipam_overlap(&d, &c) && ipam_overlap(&c, &d));
}

Test(ipam, lowest_free_first_stable_and_exhaustible)
{
    struct ipam_subnet s = {0x0ac80000, 29};   /* .0 network, .1 gateway, .7 broadcast: .2 to .6 */
    struct ipam p;
    struct duet_err err = {0};
    cr_assert_eq(ipam_init(&p, &s, &err), 0);
    uint32_t got[5];
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ipam_alloc(&p, &got[i], &err), 0, "%s", err.msg);
        cr_expect_eq(got[i], 0x0ac80002 + (uint32_t)i);
    }
    uint32_t x;
    cr_expect_eq(ipam_alloc(&p, &x, &err), -1);
    cr_expect_eq(err.code, ENOSPC);
    cr_expect(strstr(err.msg, "--subnet"), "%s", err.msg);
    ipam_release(&p, got[3]);
    ipam_release(&p, got[1]);
    cr_assert_eq(ipam_alloc(&p, &x, &err), 0);
    cr_expect_eq(x, got[1], "the lowest free address comes first");
    cr_assert_eq(ipam_alloc(&p, &x, &err), 0);
    cr_expect_eq(x, got[3]);
    /* what the store holds is claimed again; reserved and foreign addresses are refused */
    ipam_release(&p, got[0]);
    cr_expect_eq(ipam_take(&p, got[0], &err), 0);
    cr_expect_eq(ipam_take(&p, got[0], &err), -1);
    cr_expect_eq(err.code, EEXIST);
    cr_expect_eq(ipam_take(&p, 0x0ac80001, &err), -1);
    cr_expect_eq(err.code, EDOM);
    cr_expect_eq(ipam_take(&p, 0x0ac80007, &err), -1);
    cr_expect_eq(ipam_take(&p, 0x0ac90002, &err), -1);
    cr_expect_eq(err.code, EDOM);
    /* releasing what is not held changes nothing */
    uint32_t used = p.used;
    ipam_release(&p, 0x0ac80001);
    ipam_release(&p, 0x0b000002);
    cr_expect_eq(p.used, used);
    ipam_fini(&p);
}

Test(ipam, mac_follows_the_address)
{
    uint8_t m[6];
    char s[18];
    ipam_mac(0x0a580005, m);
    ipam_format_mac(m, s);
    cr_expect_str_eq(s, "02:64:0a:58:00:05");
    cr_expect_eq(m[0] & 1, 0, "unicast");
    cr_expect_eq(m[0] & 2, 2, "locally administered");
    uint32_t back = 0;
    cr_expect(ipam_mac_addr(m, &back) && back == 0x0a580005, "the address does not come back from the MAC");
    uint8_t other[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    cr_expect(!ipam_mac_addr(other, &back), "a MAC duet did not make was read as one of its own");
}

/* ---- DNS ------------------------------------------------------------------- */

/* A query for name (dotted), type qtype. */
static size_t query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = 0x01;   /* RD */
    buf[5] = 1;
    size_t off = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchrnul(p, '.');
        buf[off++] = (uint8_t)(dot - p);
        memcpy(buf + off, p, (size_t)(dot - p));
        off += (size_t)(dot - p);
        p = *dot ? dot + 1 : dot;
    }
    buf[off++] = 0;
    buf[off++] = (uint8_t)(qtype >> 8);
    buf[off++] = (uint8_t)qtype;
    buf[off++] = 0;
    buf[off++] = 1;
    return off;
}

Test(dns, answers_a_query_for_a_name)
{
    uint8_t q[512], a[512];
    size_t n = query(q, 0x1234, "Web", DNS_TYPE_A);
    struct dns_query dq;
    cr_assert_eq(dns_parse_query(q, n, &dq), DNS_PARSE_OK);
    cr_expect_str_eq(dq.name, "web", "names compare in lower case");
    cr_expect_eq(dq.labels, 1);
    cr_expect_eq(dq.qtype, DNS_TYPE_A);
    uint32_t addr = 0x0a580005;
    size_t m = dns_answer(q, &dq, DNS_NOERROR, &addr, 5, a, sizeof(a));
    cr_assert_eq(m, n + 16);
    cr_expect_eq(a[0], 0x12);
    cr_expect_eq(a[1], 0x34);
    cr_expect(a[2] & 0x80, "QR");
    cr_expect_eq(a[3] & 0xf, 0, "NOERROR");
    cr_expect_eq(a[7], 1, "one answer");
    cr_expect_eq(memcmp(a + 12, q + 12, n - 12), 0, "the question is echoed");
    cr_expect_eq(memcmp(a + m - 4, "\x0a\x58\x00\x05", 4), 0);
    /* NXDOMAIN, no answer */
    m = dns_answer(q, &dq, DNS_NXDOMAIN, NULL, 0, a, sizeof(a));
    cr_expect_eq(m, n);
    cr_expect_eq(a[3] & 0xf, 3);
    cr_expect_eq(a[7], 0);
    /* too little room: nothing written */
    cr_expect_eq(dns_answer(q, &dq, DNS_NOERROR, &addr, 5, a, n), 0);
}

Test(dns, hostile_packets_are_refused_or_dropped)
{
    uint8_t q[600];
    struct dns_query dq;
    size_t n = query(q, 7, "db", DNS_TYPE_A);
    /* every truncation of a good query */
    for (size_t len = 0; len < n; len++) {
        enum dns_parse r = dns_parse_query(q, len, &dq);
        cr_expect(r == DNS_PARSE_DROP || r == DNS_PARSE_FORMERR, "a %zu-byte prefix parsed", len);
    }
    /* a response is never answered */
    q[2] |= 0x80;
    cr_expect_eq(dns_parse_query(q, n, &dq), DNS_PARSE_DROP);
    q[2] &= 0x7f;
    /* opcode STATUS */
    q[2] |= 2 << 3;
    cr_expect_eq(dns_parse_query(q, n, &dq), DNS_PARSE_NOTIMP);
    cr_expect_eq(dq.id, 7);
    q[2] &= (uint8_t) ~(0xf << 3);
    /* no question, two questions, answers in a query */
    q[5] = 0;
    cr_expect_eq(dns_parse_query(q, n, &dq), DNS_PARSE_FORMERR);
    q[5] = 2;
    cr_expect_eq(dns_parse_query(q, n, &dq), DNS_PARSE_FORMERR);
    q[5] = 1;
    q[7] = 1;
    cr_expect_eq(dns_parse_query(q, n, &dq), DNS_PARSE_FORMERR);
    q[7] = 0;
    /* a compression pointer to itself */
    uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    cr_expect_eq(dns_parse_query(loop, sizeof(loop), &dq), DNS_PARSE_FORMERR);
    /* a label running past the end */
    uint8_t past[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a', 'b'};
    cr_expect_eq(dns_parse_query(past, sizeof(past), &dq), DNS_PARSE_FORMERR);
    /* a name over 255 bytes: five labels of 63 */
    uint8_t big[600] = {0, 1, 0, 0, 0, 1};
    size_t off = 12;
    for (int i = 0; i < 5; i++) {
        big[off++] = 63;
        memset(big + off, 'a', 63);
        off += 63;
    }
    big[off++] = 0;
    memcpy(big + off, "\0\1\0\1", 4);
    cr_expect_eq(dns_parse_query(big, off + 4, &dq), DNS_PARSE_FORMERR);
    /* a dot or a NUL inside a label */
    size_t m = query(q, 9, "a", DNS_TYPE_A);
    q[13] = '.';
    cr_expect_eq(dns_parse_query(q, m, &dq), DNS_PARSE_FORMERR);
    q[13] = 0;
    cr_expect_eq(dns_parse_query(q, m, &dq), DNS_PARSE_FORMERR);
    /* the error answers are headers only */
    uint8_t e[12];
    cr_expect_eq(dns_error(9, DNS_FORMERR, e, sizeof(e)), 12);
    cr_expect_eq(e[3] & 0xf, 1);
    cr_expect_eq(dns_error(9, DNS_FORMERR, e, 11), 0);
}

Test(dns, random_packets_never_read_outside_them)
{
    /* Under the sanitizers a read past the buffer is a failure; each packet
     * is in a buffer of exactly its size. */
    unsigned seed = 12345;
    for (int i = 0; i < 200000; i++) {
        size_t len = (size_t)(rand_r(&seed) % 300);
        uint8_t *p = malloc(len ? len : 1);
        for (size_t k = 0; k < len; k++)
            p[k] = (uint8_t)rand_r(&seed);
        if (len >= 12 && (i & 1)) {
            p[2] &= 0x07;   /* a query with one question: reaches the name parser */
            p[4] = 0;
            p[5] = 1;
            p[6] = p[7] = p[8] = p[9] = 0;
        }
        struct dns_query dq;
        enum dns_parse r = dns_parse_query(p, len, &dq);
        if (r == DNS_PARSE_OK) {
            cr_assert_leq(12 + dq.question_len, len);
            cr_assert_leq(strlen(dq.name), DNS_NAME_MAX);
            uint8_t a[700];
            uint32_t addr = 1;
            cr_assert_neq(dns_answer(p, &dq, DNS_NOERROR, &addr, 1, a, sizeof(a)), 0);
        }
        free(p);
    }
}


/* ---- DHCP ------------------------------------------------------------------ */

static size_t dhcp_request_pkt(uint8_t *p, uint8_t type, const uint8_t mac[6], uint32_t requested)
{
    memset(p, 0, 300);
    p[0] = 1;
    p[1] = 1;
    p[2] = 6;
    p[4] = 0xde, p[5] = 0xad, p[6] = 0xbe, p[7] = 0xef;
    memcpy(p + 28, mac, 6);
    memcpy(p + 236, "\x63\x82\x53\x63", 4);
    size_t off = 240;
    p[off++] = 53;
    p[off++] = 1;
    p[off++] = type;
    if (requested) {
        p[off++] = 50;
        p[off++] = 4;
        p[off++] = (uint8_t)(requested >> 24);
        p[off++] = (uint8_t)(requested >> 16);
        p[off++] = (uint8_t)(requested >> 8);
        p[off++] = (uint8_t)requested;
    }
    p[off++] = 255;
    return off;
}

Test(dhcp, offer_for_a_request)
{
    uint8_t mac[6], p[600], out[600];
    ipam_mac(0x0a580005, mac);
    size_t n = dhcp_request_pkt(p, DHCP_REQUEST, mac, 0x0a580005);
    struct dhcp_request r;
    cr_assert(dhcp_parse(p, n, &r));
    cr_expect_eq(r.type, DHCP_REQUEST);
    cr_expect_eq(r.xid, 0xdeadbeef);
    cr_expect_eq(r.requested, 0x0a580005);
    cr_expect_eq(memcmp(r.chaddr, mac, 6), 0);
    struct dhcp_lease l = {.addr = 0x0a580005, .server = 0x0a580001, .mask = 0xffff0000, .router = 0x0a580001,
                           .dns = 0x0a580001, .seconds = 86400, .hostname = "db"};
    size_t m = dhcp_reply(&r, DHCP_ACK, &l, out, sizeof(out));
    cr_assert_geq(m, 300);
    cr_expect_eq(out[0], 2, "a BOOTREPLY");
    cr_expect_eq(memcmp(out + 16, "\x0a\x58\x00\x05", 4), 0, "yiaddr");
    cr_expect_eq(memcmp(out + 4, "\xde\xad\xbe\xef", 4), 0, "xid");
    cr_expect_eq(out[240], 53);
    cr_expect_eq(out[242], DHCP_ACK);
    /* a NAK carries no address */
    m = dhcp_reply(&r, DHCP_NAK, &l, out, sizeof(out));
    cr_assert_gt(m, 0);
    cr_expect_eq(memcmp(out + 16, "\0\0\0\0", 4), 0);
    /* too little room: nothing */
    cr_expect_eq(dhcp_reply(&r, DHCP_ACK, &l, out, 200), 0);
}

Test(dhcp, hostile_requests_are_dropped)
{
    uint8_t mac[6] = {2, 0x64, 10, 88, 0, 5}, p[600];
    struct dhcp_request r;
    size_t n = dhcp_request_pkt(p, DHCP_DISCOVER, mac, 0);
    /* every prefix shorter than the header and the message type option */
    for (size_t len = 0; len < 243; len++)
        cr_expect(!dhcp_parse(p, len, &r), "a %zu-byte prefix parsed", len);
    p[0] = 2;   /* a reply */
    cr_expect(!dhcp_parse(p, n, &r));
    p[0] = 1;
    p[2] = 16;  /* not Ethernet */
    cr_expect(!dhcp_parse(p, n, &r));
    p[2] = 6;
    p[237] = 0;   /* no magic cookie */
    cr_expect(!dhcp_parse(p, n, &r));
    p[237] = 0x82;
    /* an option running past the end */
    p[240] = 53;
    p[241] = 200;
    cr_expect(!dhcp_parse(p, 243, &r));
    /* no message type */
    n = dhcp_request_pkt(p, 0, mac, 0);
    cr_expect(!dhcp_parse(p, n, &r));
    /* random bytes after a valid header, each packet in a buffer of its size */
    unsigned seed = 99;
    for (int i = 0; i < 50000; i++) {
        size_t len = 240 + (size_t)(rand_r(&seed) % 200);
        uint8_t *q = malloc(len);
        dhcp_request_pkt(p, DHCP_DISCOVER, mac, 0);
        memcpy(q, p, 240);
        for (size_t k = 240; k < len; k++)
            q[k] = (uint8_t)rand_r(&seed);
        dhcp_parse(q, len, &r);
        free(q);
    }
}

/* ---- the table ------------------------------------------------------------ */

Test(nft, table_text_holds_the_ports_and_the_subnet)
{
    struct ipam_subnet s = {0x0a580000, 16};
    struct nft_port p[] = {{8080, 80, false, 0x0a580005}, {5353, 53, true, 0x0a580006}};
    char *t = nft_table_text("duet0", &s, p, 2);
    cr_expect(strstr(t, "table ip duet_duet0 {"), "%s", t);
    cr_expect(strstr(t, "8080 : 10.88.0.5 . 80"), "%s", t);
    cr_expect(strstr(t, "5353 : 10.88.0.6 . 53"), "%s", t);
    cr_expect(strstr(t, "ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade"), "%s", t);
    cr_expect(strstr(t, "delete table ip duet_duet0"), "the table is replaced whole: %s", t);
    cr_expect(strstr(t, "type filter hook prerouting priority raw") &&
                  strstr(t, "iifname \"duet0\" ip daddr 127.0.0.0/8 drop"),
              "nothing from the bridge reaches the host's loopback: %s", t);
    free(t);
    /* no ports: empty maps, still valid */
    t = nft_table_text("duet0", &s, NULL, 0);
    cr_expect(!strstr(t, "elements"), "%s", t);
    free(t);
}

/* ---- netlink, in a namespace of our own -------------------------------------- */

static void own_netns(void)
{
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
}

struct found {
    const char *name;
    struct nl_link link;
    bool seen;
};

static void find_link(void *opaque, const struct nl_link *l)
{
    struct found *f = opaque;
    if (strcmp(l->name, f->name) == 0) {
        f->link = *l;
        f->seen = true;
    }
}

Test(netlink, bridge_veth_and_address_in_a_private_namespace)
{
    own_netns();
    struct nl nl;
    struct duet_err err = {0};
    cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
    uint8_t mac[6] = {0x02, 0x64, 10, 77, 0, 1};
    cr_assert_eq(nl_bridge_add(&nl, "tbr0", "duet:/test", mac, &err), 0, "%s", err.msg);
    struct nl_link l;
    cr_assert_eq(nl_link_get(&nl, "tbr0", &l, &err), 0, "%s", err.msg);
    cr_expect_str_eq(l.kind, "bridge");
    cr_expect_str_eq(l.alias, "duet:/test");
    cr_expect_eq(nl_bridge_add(&nl, "tbr0", "x", mac, &err), -1);
    cr_expect_eq(err.code, EEXIST);
    cr_assert_eq(nl_addr_add(&nl, l.index, 0x0a4d0001, 24, &err), 0, "%s", err.msg);
    cr_assert_eq(nl_link_set_up(&nl, l.index, &err), 0, "%s", err.msg);

    /* a peer namespace: a child that waits */
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (unshare(CLONE_NEWNET) < 0)
            _exit(1);
        close(go[1]);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        /* eth0 must be here, with the MAC asked for */
        struct nl in;
        struct nl_link e;
        if (nl_open(&in, NULL) < 0 || nl_link_get(&in, "eth0", &e, NULL) < 0)
            _exit(2);
        _exit(strcmp(e.kind, "veth") == 0 ? 0 : 3);
    }
    close(go[0]);
    usleep(100000);   /* the child's unshare */
    uint8_t pm[6] = {0x02, 0x64, 10, 77, 0, 2};
    cr_assert_eq(nl_veth_add(&nl, "dvtest", l.index, "eth0", pm, pid, &err), 0, "%s", err.msg);
    struct found f = {.name = "dvtest"};
    cr_assert_eq(nl_link_list(&nl, find_link, &f, &err), 0);
    cr_assert(f.seen);
    cr_expect_eq(f.link.master, l.index, "the host end is a port of the bridge");
    cr_expect(f.link.up);
    cr_expect_eq(write(go[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the peer end was not in the child's namespace (%d)", st);
    /* the child's namespace is gone, and the pair with it */
    for (int i = 0; i < 100; i++) {
        f.seen = false;
        nl_link_list(&nl, find_link, &f, &err);
        if (!f.seen)
            break;
        usleep(10000);
    }
    cr_expect(!f.seen, "the veth outlived its namespace");
    /* hostile names never reach the kernel */
    cr_expect_eq(nl_link_get(&nl, "", &l, &err), -1);
    cr_expect_eq(nl_link_get(&nl, "a/b", &l, &err), -1);
    cr_expect_eq(nl_link_get(&nl, "sixteen-chars-xx", &l, &err), -1);
    cr_expect_eq(nl_link_del(&nl, "nosuch0", &err), 0, "deleting what is gone is fine");
    cr_assert_eq(nl_link_del(&nl, "tbr0", &err), 0, "%s", err.msg);
    cr_expect_eq(nl_link_get(&nl, "tbr0", &l, &err), -1);
    cr_expect_eq(err.code, ENODEV);
    nl_close(&nl);
}

struct churn {
    volatile bool stop;
    int added;
};

/* Adds and removes bridges as fast as it can: every dump meanwhile may be
 * interrupted by the kernel (NLM_F_DUMP_INTR). */
static void *churn_links(void *opaque)
{
    struct churn *c = opaque;
    struct nl nl;
    if (nl_open(&nl, NULL) < 0)
        return NULL;
    uint8_t mac[6] = {0x02, 0x64, 10, 78, 0, 0};
    for (unsigned i = 0; !c->stop; i++) {
        char name[24];
        snprintf(name, sizeof(name), "tch%u", i % 8);
        mac[5] = (uint8_t)(i % 8);
        if (nl_bridge_add(&nl, name, "churn", mac, NULL) == 0)
            c->added++;
        nl_link_del(&nl, name, NULL);
    }
    nl_close(&nl);
    return NULL;
}

struct count {
    int n, dups;
    int seen[1024];
};

static void count_link(void *opaque, const struct nl_link *l)
{
    struct count *c = opaque;
    for (int i = 0; i < c->n; i++)
        if (c->seen[i] == l->index)
            c->dups++;
    if (c->n < 1024)
        c->seen[c->n++] = l->index;
}

/* A dump that links change under is asked again, whole: it never fails
 * with "Interrupted system call" and never lists a link twice. */
Test(netlink, a_dump_interrupted_by_changing_links_is_retried, .timeout = 60)
{
    own_netns();
    struct nl nl;
    struct duet_err err = {0};
    cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
    /* Enough links that a dump takes several messages. */
    for (int i = 0; i < 150; i++) {
        char name[24];
        uint8_t mac[6] = {0x02, 0x64, 10, 79, (uint8_t)(i >> 8), (uint8_t)i};
        snprintf(name, sizeof(name), "tfill%u", (unsigned)i % 1000);
        cr_assert_eq(nl_bridge_add(&nl, name, "fill", mac, &err), 0, "%s", err.msg);
    }
    struct churn c = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, churn_links, &c), 0);
    int failed = 0, dups = 0;
    for (int i = 0; i < 300; i++) {
        struct count n = {0};
        if (nl_link_list(&nl, count_link, &n, &err) < 0) {
            failed++;
            cr_log_info("dump %d: %s", i, err.msg);
        }
        dups += n.dups;
        cr_expect_geq(n.n, 151, "a listing missed links (%d)", n.n);
    }
    c.stop = true;
    pthread_join(t, NULL);
    cr_expect_gt(c.added, 0, "links changed meanwhile");
    cr_expect_eq(failed, 0, "%d of 300 dumps failed", failed);
    cr_expect_eq(dups, 0, "links listed twice");
    nl_close(&nl);
}
