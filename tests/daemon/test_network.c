/*
 * test_network.c - the fleet network through a real duetd: a bridge of
 * the test's own, real veth pairs and network namespaces, a real QEMU
 * guest on the same bridge, the daemon's name server, published ports
 * reached from the host, isolation of network: none, addresses that
 * survive restarts, and nothing left behind (dd_finish checks the bridge,
 * the interfaces and the table are gone).  All traffic stays on the
 * test's bridge and the host's loopback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "network/dns.h"
#include <pthread.h>
#include "dtest.h"

/* web: an HTTP server on 8080 whose page says "hello from web"; %s is the rootfs. */
#define WEB_DOC                                                                                                  \
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n  image: {rootfs: %s}\n"                 \
    "  command: [\"/bin/sh\", \"-c\", \"echo hello from web > /index.html; exec httpd -f -p 8080 -h /\"]\n"

/* The bridge's address: the daemon's name server and gateway. */
static void gateway_of(struct dd *d, char out[16])
{
    struct ipam_subnet sn;
    cr_assert_eq(ipam_parse_subnet(d->subnet, &sn, NULL), 0);
    ipam_format(ipam_gateway(&sn), out);
}

/* Sends `send` to addr:port over TCP and returns all that comes back
 * (malloc'd), or NULL when the connection fails. */
static char *tcp_talk(const char *addr, uint16_t port, const char *send, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, addr, &sin.sin_addr);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return NULL;
    }
    if (write(fd, send, strlen(send)) < 0) {
        close(fd);
        return NULL;
    }
    shutdown(fd, SHUT_WR);
    char *buf = calloc(1, 65536);
    size_t got = 0;
    ssize_t n;
    while (got < 65535 && (n = read(fd, buf + got, 65535 - got)) > 0)
        got += (size_t)n;
    close(fd);
    return buf;
}

/* Retries tcp_talk until the answer holds want (a guest's listener
 * serves one client at a time, and a workload needs a moment to listen). */
static bool talk_until(const char *addr, uint16_t port, const char *send, const char *want, unsigned timeout_ms)
{
    uint64_t deadline = dd_now_ms() + timeout_ms;
    do {
        char *r = tcp_talk(addr, port, send, 3000);
        bool ok = r && strstr(r, want);
        free(r);
        if (ok)
            return true;
        usleep(200000);
    } while (dd_now_ms() < deadline);
    return false;
}

Test(network, containers_by_name_published_ports_and_isolation, .timeout = 240)
{
    struct dd d;
    dd_init(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    uint16_t port = (uint16_t)dd_free_port();
    const char *m = dd_manifest(
        &d, "net.yaml",
        WEB_DOC "  ports: [{host: %u, port: 8080}]\n  healthcheck: {tcp: 8080, interval: 1s}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: client}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sleep\", \"3600\"]\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: lonely}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sleep\", \"3600\"]\n  network: none\n",
        rootfs, port, rootfs, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);

    /* by name, through the daemon's name server */
    cr_assert_eq(dd_duet(&d, &out, "exec client -- wget -q -O- http://web:8080/"), 0, "%s", out);
    cr_expect_str_eq(out, "hello from web\n");
    free(out);
    dd_duet(&d, &out, "exec client -- cat /etc/resolv.conf");
    char gw[16];
    gateway_of(&d, gw);
    cr_expect(strstr(out, gw), "resolv.conf names the bridge's address %s: %s", gw, out);
    free(out);
    /* a name that is nobody's: "bad address", not a hang */
    cr_expect_neq(dd_duet(&d, &out, "exec client -- nc -w 2 nosuch 80"), 0);
    cr_expect(strstr(out, "bad address"), "%s", out);
    free(out);

    /* the published port, from the host: loopback and the bridge's address */
    char req[] = "GET / HTTP/1.0\r\n\r\n";
    cr_expect(talk_until("127.0.0.1", port, req, "hello from web", 10000), "127.0.0.1:%u does not reach web", port);
    cr_expect(talk_until(gw, port, req, "hello from web", 10000), "%s:%u does not reach web", gw, port);
    /* a workload through the published port (hairpin) */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "exec client -- sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 %s %u'", gw, port);
    cr_expect(duet_until(&d, cmd, "hello from web", 10000), "the published port from a workload");

    /* network: none: a loopback and nothing else */
    cr_assert_eq(dd_duet(&d, &out, "exec lonely -- cat /proc/net/dev"), 0, "%s", out);
    cr_expect(strstr(out, "lo:") && !strstr(out, "eth0"), "%s", out);
    free(out);
    char *web_addr = dd_field(&d, "web", "address");
    cr_expect_neq(dd_duet(&d, &out, "exec lonely -- nc -w 2 %s 8080", web_addr), 0);
    cr_expect(strstr(out, "unreachable"), "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "lonely", "address", "null"), "lonely has an address");

    /* describe shows the address and the ports */
    cr_assert_eq(dd_duet(&d, &out, "describe web"), 0);
    char want[64];
    snprintf(want, sizeof(want), "Address:     %s", web_addr);
    cr_expect(strstr(out, want), "%s", out);
    snprintf(want, sizeof(want), "%u->8080/tcp", port);
    cr_expect(strstr(out, want), "%s", out);
    free(out);

    /* addresses stay: across a daemon restart (published ports answer
     * while no daemon runs) ... */
    char *client_addr = dd_field(&d, "client", "address");
    dd_stop(&d);
    cr_expect(talk_until("127.0.0.1", port, req, "hello from web", 5000), "the port closed with the daemon");
    dd_start(&d);
    char *w2 = dd_field(&d, "web", "address"), *c2 = dd_field(&d, "client", "address");
    cr_expect_str_eq(w2, web_addr);
    cr_expect_str_eq(c2, client_addr);
    free(w2);
    free(c2);
    cr_expect(duet_until(&d, "exec client -- wget -q -O- http://web:8080/", "hello from web", 10000));
    /* ... and across the workload's own restart */
    dd_duet(&d, &out, "exec web -- kill 1");
    free(out);
    uint64_t deadline = dd_now_ms() + 30000;
    while (dd_int(&d, "web", "restarts") < 1 || !dd_field_is(&d, "web", "state", "running"))
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "web did not restart");
    w2 = dd_field(&d, "web", "address");
    cr_expect_str_eq(w2, web_addr, "a restarted workload keeps its address");
    free(w2);
    cr_expect(duet_until(&d, "exec client -- wget -q -O- http://web:8080/", "hello from web", 15000));
    cr_expect(talk_until("127.0.0.1", port, req, "hello from web", 15000));
    free(web_addr);
    free(client_addr);
    web_addr = client_addr = NULL;

    /* a host port another program has: refused at apply, nothing changes */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    cr_assert(bind(busy, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(busy, 1) == 0 &&
              getsockname(busy, (struct sockaddr *)&sin, &sl) == 0);
    const char *m2 = dd_manifest(&d, "taker.yaml",
                                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: taker}\nspec:\n"
                                 "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n"
                                 "  ports: [{host: %u, port: 80}]\n",
                                 rootfs, ntohs(sin.sin_port));
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m2), 1, "%s", out);
    cr_expect(strstr(out, "in use by another program"), "%s", out);
    cr_expect(strstr(out, "taker.yaml:"), "the error names the place: %s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "get taker"), 1, "%s", out);
    free(out);
    close(busy);
    /* a host port the fleet already publishes (web's): said at this
     * file's port, naming web, not at a place in the applied fleet */
    const char *m_second = dd_manifest(&d, "second.yaml",
                                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: second}\nspec:\n"
                                 "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n"
                                 "  ports: [{host: %u, port: 80}]\n",
                                 rootfs, port);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m_second), 1, "%s", out);
    cr_expect(strstr(out, "second.yaml:7:") && strstr(out, "already published by workload \"web\" (applied earlier)"),
              "%s", out);
    cr_expect(!strstr(out, "(applied earlier):"), "the error points into the applied fleet: %s", out);
    free(out);
    /* the live table: outbound NAT for the subnet, web's published port */
    char nft_cmd[128];
    snprintf(nft_cmd, sizeof(nft_cmd), "nft list table ip duet_%s 2>&1", d.bridge);
    FILE *np = popen(nft_cmd, "r");
    char table[8192];
    size_t tl = fread(table, 1, sizeof(table) - 1, np);
    table[tl] = '\0';
    pclose(np);
    char masq[64], pub[64];
    snprintf(masq, sizeof(masq), "ip saddr %s", d.subnet);
    web_addr = dd_field(&d, "web", "address");
    snprintf(pub, sizeof(pub), "%u : %s . 8080", port, web_addr);
    cr_expect(strstr(table, masq) && strstr(table, "masquerade"), "no outbound NAT for %s:\n%s", d.subnet, table);
    cr_expect(strstr(table, pub), "web's port is not in the table (%s):\n%s", pub, table);
    free(web_addr);

    /* a deleted workload's address goes back: the next workload gets it */
    client_addr = dd_field(&d, "client", "address");
    cr_assert_eq(dd_duet(&d, &out, "delete client --wait"), 0, "%s", out);
    free(out);
    const char *m3 = dd_manifest(&d, "next.yaml",
                                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: next}\nspec:\n"
                                 "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n",
                                 rootfs);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m3), 0, "%s", out);
    free(out);
    char *next_addr = dd_field(&d, "next", "address");
    cr_expect_str_eq(next_addr, client_addr, "the deleted client's address was not given again");
    free(next_addr);
    free(client_addr);

    /* a port the fleet holds is the fleet's: another program cannot take it */
    int thief = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in tsin = {.sin_family = AF_INET, .sin_port = htons(port)};
    cr_expect_neq(bind(thief, (struct sockaddr *)&tsin, sizeof(tsin)), 0, "another program took a published port");
    close(thief);
    dd_finish(&d);
}

/* DNS over UDP to the daemon's name server, asked up to five times a
 * second apart as a resolver does (a datagram may be dropped while the
 * server's queue is full of junk); returns the answer's length. */
static ssize_t dns_ask(const char *server, const uint8_t *q, size_t n, uint8_t *a, size_t cap)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, server, &sin.sin_addr);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t r = -1;
    for (int i = 0; i < 5 && r < 0; i++) {
        sendto(fd, q, n, 0, (struct sockaddr *)&sin, sizeof(sin));
        r = recv(fd, a, cap, 0);
    }
    close(fd);
    return r;
}

static size_t make_query(uint8_t *buf, const char *label)
{
    uint8_t hdr[12] = {0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(buf, hdr, 12);
    size_t l = strlen(label), off = 12;
    buf[off++] = (uint8_t)l;
    memcpy(buf + off, label, l);
    off += l;
    buf[off++] = 0;
    memcpy(buf + off, "\0\1\0\1", 4);
    return off + 4;
}

Test(network, name_server_answers_and_survives_hostile_packets, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "one");
    char gw[16];
    gateway_of(&d, gw);
    /* garbage of every size, a response, a pointer loop, a huge label */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, gw, &sin.sin_addr);
    unsigned seed = 4242;
    uint8_t junk[1500];
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(rand_r(&seed) % sizeof(junk));
        for (size_t k = 0; k < len; k++)
            junk[k] = (uint8_t)rand_r(&seed);
        if (i % 3 == 0 && len > 12) {
            junk[2] &= 0x07;
            junk[4] = 0;
            junk[5] = 1;
        }
        sendto(fd, junk, len, 0, (struct sockaddr *)&sin, sizeof(sin));
        if (i % 200 == 0)
            usleep(10000);   /* the socket's buffer is not the subject */
    }
    close(fd);
    /* still answering, correctly */
    uint8_t q[300], a[1500];
    size_t n = make_query(q, "one");
    ssize_t r = dns_ask(gw, q, n, a, sizeof(a));
    cr_assert_gt(r, 12, "no answer from the name server after the junk");
    cr_expect_eq(a[0], 0xab);
    cr_expect_eq(a[3] & 0xf, DNS_NOERROR);
    cr_expect_eq(a[7], 1, "one answer");
    char *addr = dd_field(&d, "one", "address");
    struct in_addr want;
    inet_pton(AF_INET, addr, &want);
    cr_expect_eq(memcmp(a + r - 4, &want, 4), 0, "the answer is not one's address %s", addr);
    free(addr);
    n = make_query(q, "nobody");
    r = dns_ask(gw, q, n, a, sizeof(a));
    cr_assert_gt(r, 12);
    cr_expect_eq(a[3] & 0xf, DNS_NXDOMAIN);
    dd_finish(&d);
}

Test(network, a_bridge_or_subnet_is_one_daemons, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    char duetd[512], cmd[2048], buf[4096];
    snprintf(duetd, sizeof(duetd), "%s/duetd", dd_env("DUET_BUILD"));
    /* Taken by another daemon or the host: refused at start (1); not a
     * name or a subnet at all: refused as the options are read (2). */
    struct {
        const char *bridge, *subnet, *says;
        int status;
    } cases[] = {
        {d.bridge, "10.250.77.0/24", "never share a bridge", 1},
        {"dtother0", d.subnet, "overlaps", 1},
        {"bad/name", "10.250.77.0/24", "--bridge bad/name is not a network interface name", 2},
        {"dtother0", "10.250.77.9/24", "host bits", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(cmd, sizeof(cmd),
                 "%s --foreground --state-dir %s/other --socket %s/other.sock --bridge '%s' --subnet '%s' 2>&1",
                 duetd, d.dir, d.dir, cases[i].bridge, cases[i].subnet);
        FILE *p = popen(cmd, "r");
        size_t got = fread(buf, 1, sizeof(buf) - 1, p);
        buf[got] = '\0';
        int st = pclose(p);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == cases[i].status, "%s: status %d", cmd, st);
        cr_expect(strstr(buf, cases[i].says), "%s: %s", cmd, buf);
    }
    struct nl nl;
    struct nl_link l;
    struct duet_err err = {0};
    cr_assert_eq(nl_open(&nl, &err), 0);
    cr_expect_eq(nl_link_get(&nl, "dtother0", &l, &err), -1, "a refused daemon left a bridge");
    cr_expect_eq(nl_link_get(&nl, d.bridge, &l, &err), 0, "the first daemon's bridge went");
    nl_close(&nl);
    dd_finish(&d);
}

/* A state directory keeps the network it was started with: started again
 * without --bridge and --subnet, duetd takes the recorded ones (not the
 * defaults, which would strand every workload's address); started with
 * another subnet while workloads hold addresses, it refuses and names the
 * one to use. */
Test(network, a_state_directory_keeps_its_network, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "keeper");
    char *addr = dd_field(&d, "keeper", "address");
    dd_stop(&d);

    d.network_from_store = true;
    dd_start(&d);
    json_t *info = dd_get(&d, "/v1/info");
    json_t *net = json_object_get(info, "network");
    cr_expect_str_eq(json_string_value(json_object_get(net, "subnet")), d.subnet);
    cr_expect_str_eq(json_string_value(json_object_get(net, "bridge")), d.bridge);
    json_decref(info);
    char *again = dd_field(&d, "keeper", "address");
    cr_expect_str_eq(again, addr, "the workload's address changed");
    free(again);
    dd_stop(&d);

    char duetd[512], cmd[1024], buf[4096];
    snprintf(duetd, sizeof(duetd), "%s/duetd", dd_env("DUET_BUILD"));
    snprintf(cmd, sizeof(cmd), "%s --foreground --state-dir %s --socket %s --bridge %s --subnet 10.250.78.0/24 2>&1",
             duetd, d.state, d.sock, d.bridge);
    FILE *p = popen(cmd, "r");
    size_t got = fread(buf, 1, sizeof(buf) - 1, p);
    buf[got] = '\0';
    int st = pclose(p);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: status %d", cmd, st);
    char want[64];
    snprintf(want, sizeof(want), "--subnet %s", d.subnet);
    cr_expect(strstr(buf, "keeper") && strstr(buf, want), "the refusal does not name %s: %s", want, buf);
    free(addr);
    dd_start(&d);
    dd_finish(&d);
}

/* A listener on the host's 127.0.0.1 that answers a secret and counts who
 * reached it: what a workload must never reach. */
struct loopback_service {
    int fd;
    uint16_t port;
    volatile int accepted;
    volatile bool stop;
    pthread_t t;
};

static void *loopback_serve(void *opaque)
{
    struct loopback_service *s = opaque;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        s->accepted++;
        ssize_t n = write(c, "HOSTSECRET\n", 11);
        (void)n;
        close(c);
    }
    return NULL;
}

static void loopback_start(struct loopback_service *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(s->fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(s->fd, (struct sockaddr *)&sa, &len);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(listen(s->fd, 16), 0);
    cr_assert_eq(pthread_create(&s->t, NULL, loopback_serve, s), 0);
}

static void loopback_stop(struct loopback_service *s)
{
    s->stop = true;
    pthread_join(s->t, NULL);
    close(s->fd);
}

Test(network, a_vm_and_a_container_by_name, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    const char *img = dd_env("DUET_IMAGES"), *rootfs = dd_env("DUET_ROOTFS");
    uint16_t port = (uint16_t)dd_free_port();
    /* The guest routes 127.0.0.0/8 to the bridge and tries this, the
     * CVE-2020-8558 pattern: it must get nothing. */
    struct loopback_service lo = {0};
    loopback_start(&lo);
    const char *m = dd_manifest(
        &d, "mixed.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\nspec:\n  role: infrastructure\n"
        "  isolation: strong\n  image:\n    kernel: %s/vmlinuz\n    initrd: %s/net-initrd.cpio.gz\n"
        "    cmdline: \"console=ttyS0 duet.peer=web:8080 duet.localnet=%u\"\n  resources: {cpus: 1, memory: 192Mi}\n"
        "  ports: [{host: %u, port: 5432}]\n"
        "---\n" WEB_DOC,
        img, img, lo.port, port, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 200", m), 0, "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "db", "backend", "vm"));
    /* the guest asks for web by name every second and prints the answer */
    cr_expect(duet_until(&d, "logs db", "peer web:8080 says: hello from web", 90000),
              "the VM never reached web by name");
    /* the container reaches the VM by name: the guest echoes on 5432 */
    cr_expect(duet_until(&d, "exec web -- sh -c 'echo ping-db | nc -w 3 db 5432'", "ping-db", 30000),
              "web never reached db by name");
    /* the VM's published port, from the host */
    cr_expect(talk_until("127.0.0.1", port, "ping-host\n", "ping-host", 30000),
              "127.0.0.1:%u does not reach the VM", port);
    char *out2;
    cr_assert_eq(dd_duet(&d, &out2, "describe db"), 0);
    cr_expect(strstr(out2, "Address:     10."), "%s", out2);
    free(out2);
    /* By now the guest has tried the host's 127.0.0.1 for many seconds. */
    char want[64];
    snprintf(want, sizeof(want), "localnet %u: [", lo.port);
    cr_expect(duet_until(&d, "logs db", want, 30000), "the guest never tried the host's loopback");
    sleep(3);
    cr_assert_eq(dd_duet(&d, &out2, "logs db"), 0);
    cr_expect(strstr(out2, "localnet: 127.0.0.0/8 routed to"), "the guest did not set up its route: %s", out2);
    cr_expect(!strstr(out2, "HOSTSECRET"), "a guest reached the host's 127.0.0.1");
    free(out2);
    cr_expect_eq(lo.accepted, 0, "%d connections from the fleet reached a 127.0.0.1-only listener", lo.accepted);
    loopback_stop(&lo);
    dd_finish(&d);
}

/* A VM booted from a disk (BIOS, its own boot loader: no kernel command
 * line of duet's) asks DHCP, and the daemon's answer gives it its fleet
 * address: it then reaches web by name and is reached by name. */
Test(network, a_disk_vm_gets_its_address_by_dhcp, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    const char *img = dd_env("DUET_IMAGES"), *rootfs = dd_env("DUET_ROOTFS");
    const char *m = dd_manifest(&d, "disk.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: diskvm}\nspec:\n"
                                "  role: infrastructure\n  image: {disk: %s/net-bootable.img}\n"
                                "  resources: {cpus: 1, memory: 192Mi}\n"
                                "  healthcheck: {exec: [/bin/true], interval: 1s, timeout: 5s, retries: 1, startPeriod: 0s}\n"
                                "---\n" WEB_DOC,
                                img, rootfs);
    char *out;
    /* Not --wait: its exec check cannot pass (below). */
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "diskvm", "state", "running", 120000);
    dd_wait_field(&d, "web", "state", "running", 30000);
    char *addr = dd_field(&d, "diskvm", "address");
    char want[80];
    snprintf(want, sizeof(want), "eth0 %s/", addr);
    cr_expect(duet_until(&d, "logs diskvm", want, 90000), "the guest did not get %s by DHCP", addr);
    cr_expect(duet_until(&d, "logs diskvm", "peer web:8080 says: hello from web", 60000),
              "the disk VM never reached web by name");
    cr_expect(duet_until(&d, "exec web -- sh -c 'echo ping-disk | nc -w 3 diskvm 5432'", "ping-disk", 30000),
              "web never reached the disk VM by name");
    /* Its image runs no QEMU guest agent: exec says so and what to do, and
     * so does its exec health check. */
    cr_expect_eq(dd_duet(&d, &out, "exec diskvm -- /bin/true"), 126, "%s", out);
    cr_expect(strstr(out, "its guest answers no QEMU guest agent") && strstr(out, "qemu-guest-agent"), "%s", out);
    free(out);
    dd_wait_field(&d, "diskvm", "health", "unhealthy", 30000);
    char *msg = dd_field(&d, "diskvm", "health_message");
    cr_expect(strstr(msg, "the check could not be run: duet: VM diskvm: its guest answers no QEMU guest agent"), "%s",
              msg);
    free(msg);
    json_t *info = dd_get(&d, "/v1/info");
    cr_expect_gt(json_integer_value(json_object_get(json_object_get(info, "network"), "dhcp_answered")), 1,
                 "no DHCP offer and ack");
    json_decref(info);
    free(addr);
    dd_finish(&d);
}

/* Addresses are admitted like CPUs and memory: an apply that brings more
 * workloads onto the fleet network than it has free addresses changes
 * nothing and says how many are free, how many it needs, and the fix. */
Test(network, an_apply_beyond_the_free_addresses_is_refused_whole, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    char *slash = strrchr(d.subnet, '/');
    snprintf(slash, sizeof(d.subnet) - (size_t)(slash - d.subnet), "/29");   /* 5 workload addresses */
    dd_start(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    char six[8192] = "";
    for (int i = 0; i < 6; i++) {
        size_t n = strlen(six);
        snprintf(six + n, sizeof(six) - n,
                 "%sapiVersion: duet/v1\nkind: Workload\nmetadata: {name: w%d}\nspec:\n  image: {rootfs: %s}\n"
                 "  command: [/bin/sleep, '3600']\n  resources: {memory: 16Mi}\n",
                 i ? "---\n" : "", i, rootfs);
    }
    const char *m6 = dd_manifest(&d, "six.yaml", "%s", six);
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m6), 1, "%s", out);
    cr_expect(strstr(out, "has 5 free addresses and this apply needs 6 more; nothing was changed") &&
                  strstr(out, "--subnet"),
              "%s", out);
    free(out);
    json_t *all = dd_get(&d, "/v1/workloads");
    cr_expect_eq(json_array_size(json_object_get(all, "workloads")), 0, "the refused apply left workloads");
    json_decref(all);
    /* five fit; a sixth then does not, unless one is pruned for it */
    char *cut = strstr(six, "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: w5}");
    cr_assert(cut);
    *cut = '\0';
    const char *m5 = dd_manifest(&d, "five.yaml", "%s", six);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m5), 0, "%s", out);
    free(out);
    const char *one = dd_manifest(&d, "one.yaml",
                                  "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: extra}\nspec:\n"
                                  "  image: {rootfs: %s}\n  command: [/bin/sleep, '3600']\n",
                                  rootfs);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", one), 1, "%s", out);
    cr_expect(strstr(out, "has 0 free addresses and this apply needs 1 more"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --prune --wait --timeout 60", one), 0, "%s", out);
    free(out);
    dd_finish(&d);
}
