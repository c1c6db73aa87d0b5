/*
 * nft.c - the fleet's table through libnftables (see nft.h).
 *
 * libnftables takes nft's own language; the text is built here from
 * values duet has checked (addresses it formats, ports as numbers, a
 * bridge name it validated), so nothing a user typed reaches the parser
 * as syntax.
 */
#include "nft.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nft_table_name(const char *bridge, char out[32])
{
    snprintf(out, 32, "duet_%s", bridge);
}

struct text {
    char *buf;
    size_t len;
    FILE *f;
};

static void port_map(FILE *f, const char *name, const struct nft_port *ports, size_t n, bool udp)
{
    fprintf(f, "  map %s {\n    type inet_service : ipv4_addr . inet_service\n", name);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (ports[i].udp != udp)
            continue;
        char a[16];
        ipam_format(ports[i].addr, a);
        fprintf(f, "%s%u : %s . %u", first ? "    elements = { " : ", ", ports[i].host, a, ports[i].port);
        first = false;
    }
    if (!first)
        fprintf(f, " }\n");
    fprintf(f, "  }\n");
}

char *nft_table_text(const char *bridge, const struct ipam_subnet *subnet, const struct nft_port *ports, size_t n)
{
    char table[32], sn[20];
    nft_table_name(bridge, table);
    ipam_format_subnet(subnet, sn);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    /* "add" then "delete" makes the delete valid whether or not the table
     * existed; the whole buffer is one transaction. */
    fprintf(f, "add table ip %s\ndelete table ip %s\n", table, table);
    fprintf(f, "table ip %s {\n", table);
    port_map(f, "tcp_ports", ports, n, false);
    port_map(f, "udp_ports", ports, n, true);
    /* Published ports: anything addressed to one of the host's own
     * addresses, from outside (prerouting) or from the host (output). */
    static const char *const hooks[][2] = {{"prerouting", "dstnat"}, {"output", "-100"}};
    for (int h = 0; h < 2; h++) {
        fprintf(f,
                "  chain %s {\n    type nat hook %s priority %s; policy accept;\n"
                "    fib daddr type local meta l4proto tcp dnat ip to tcp dport map @tcp_ports\n"
                "    fib daddr type local meta l4proto udp dnat ip to udp dport map @udp_ports\n  }\n",
                hooks[h][0], hooks[h][0], hooks[h][1]);
    }
    /* Nothing from the fleet reaches the host's loopback: route_localnet
     * (on for the bridge, so 127.0.0.1:PORT can be published) would
     * otherwise deliver a guest's packet addressed to 127.0.0.1 to the
     * host's 127.0.0.1-only services (the CVE-2020-8558 pattern).  Before
     * conntrack (priority raw), so the replies of a published port used
     * from the host's 127.0.0.1, still addressed to the bridge then, pass. */
    fprintf(f,
            "  chain loopback_guard {\n    type filter hook prerouting priority raw; policy accept;\n"
            "    iifname \"%s\" ip daddr 127.0.0.0/8 drop\n  }\n",
            bridge);
    fprintf(f,
            "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
            /* the fleet going out: through the host's address */
            "    ip saddr %s ip daddr != %s masquerade\n"
            /* 127.0.0.1:PORT from the host, sent on to a workload: the
             * workload cannot answer 127.0.0.1, so it sees the bridge's address */
            "    oifname \"%s\" ip saddr 127.0.0.0/8 masquerade\n"
            /* a workload reaching another through a published port (hairpin) */
            "    oifname \"%s\" ct status dnat ip saddr %s masquerade\n  }\n",
            sn, sn, bridge, bridge, sn);
    fprintf(f, "}\n");
    fclose(f);
    return buf;
}

static int run(const char *text, const char *what, struct duet_err *err)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return duet_err_set(err, ENOMEM, "%s: cannot set up libnftables", what);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = 0;
    if (nft_run_cmd_from_buffer(ctx, text) != 0) {
        const char *msg = nft_ctx_get_error_buffer(ctx);
        char one[300] = "";
        if (msg) {
            /* the first line says what; the rest repeats the input */
            size_t k = strcspn(msg, "\n");
            snprintf(one, sizeof(one), "%.*s", (int)(k < sizeof(one) - 1 ? k : sizeof(one) - 1), msg);
        }
        rc = duet_err_set(err, EIO,
                          "%s: nftables refused it: %s (is the nf_tables module available? see docs/network.md)",
                          what, one[0] ? one : "no reason given");
    }
    nft_ctx_free(ctx);
    return rc;
}

int nft_table_write(const char *bridge, const struct ipam_subnet *subnet, const struct nft_port *ports, size_t n,
                    struct duet_err *err)
{
    char *text = nft_table_text(bridge, subnet, ports, n);
    char what[64];
    nft_table_name(bridge, what);
    int rc = run(text, what, err);
    free(text);
    return rc;
}

int nft_table_delete(const char *bridge, struct duet_err *err)
{
    char table[32], text[128];
    nft_table_name(bridge, table);
    snprintf(text, sizeof(text), "add table ip %s\ndelete table ip %s\n", table, table);
    return run(text, table, err);
}

bool nft_table_exists(const char *bridge)
{
    char table[32], text[128];
    nft_table_name(bridge, table);
    snprintf(text, sizeof(text), "list table ip %s\n", table);
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return false;
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    bool ok = nft_run_cmd_from_buffer(ctx, text) == 0;
    nft_ctx_free(ctx);
    return ok;
}
