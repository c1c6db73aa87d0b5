/*
 * compare.c - duet compare: one POST /v1/compare, its progress on stderr
 * as it comes, then the table (or the JSON) of what both ways measured.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/verbs.h"
#include "common/units.h"
#include "manifests/manifest.h"
#include "orchestrator/compare.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

static const char usage[] =
    "usage: duet compare NAME [-f FILE|DIR ...] [--runs N] [--idle DURATION] [--keep] [-o table|json]\n"
    "                    [--http PATH [--port P] [--concurrency C] [--duration D] | --tcp PORT |\n"
    "                     --exec 'SHELL COMMAND' | -- COMMAND...]\n"
    "       duet compare -f FILE|DIR [-f ...] --estimate [--guest-kernel PATH] [-o table|json]\n"
    "\n"
    "Run workload NAME once as a container and once as a VM, side by side, as\n"
    "temporary instances that leave the running fleet alone (their own names and\n"
    "addresses, no published ports, no volumes), measure both, remove them, and\n"
    "say which way suits it and why (docs/compare.md).  NAME is the applied\n"
    "workload, or the one of that name in the files given with -f.\n"
    "\n"
    "  -f, --filename PATH    manifest file or directory holding NAME (repeatable)\n"
    "  -w, --workload NAME    the workload (instead of the first argument)\n"
    "      --runs N           starts measured on each side (default 3, at most 10)\n"
    "      --idle DURATION    how long both idle for the CPU and memory figures (default 10s)\n"
    "      --http PATH        probe: HTTP GETs of PATH (requests/s, p50/p99 latency)\n"
    "      --port P           the probe's port (default: the workload's first port, else 80)\n"
    "      --concurrency C    HTTP connections at once (default 4)\n"
    "      --duration D       how long the HTTP probe runs (default 5s)\n"
    "      --tcp PORT         probe: TCP connect latency to PORT\n"
    "      --exec CMD         probe: /bin/sh -c CMD run inside each, timed (5 runs)\n"
    "      -- COMMAND...      probe: COMMAND run inside each, timed (5 runs)\n"
    "      --keep             leave both instances running (duet delete them when done)\n"
    "      --estimate         for the whole fleet in the files, start nothing: what each workload costs\n"
    "                         as a container and as a VM, and the host's headroom as planned, all\n"
    "                         containers and all VMs (for the Host document among the files, else this host)\n"
    "      --guest-kernel PATH with --estimate: the kernel duetd boots rootfs images with, as duet plan's\n"
    "      --config FILE      with --estimate: duetd's config file, as duet plan's\n"
    "  -o, --output FORMAT    table (default) or json (docs/cli.md gives its schema)\n"
    "      --socket PATH      duetd's socket (default $DUET_SOCKET or /run/duet/duet.sock)\n";

/* The stream's last line that is not progress: the result or the error. */
static void on_line(void *opaque, json_t *j)
{
    json_t **last = opaque;
    const char *p = json_string_value(json_object_get(j, "progress"));
    if (p) {
        fprintf(stderr, "compare: %s\n", p);
        json_decref(j);
    } else if (j) {
        json_decref(*last);
        *last = j;
    }
}

/* ---- the table ------------------------------------------------------------------ */

static json_t *side_of(json_t *r, const char *k)
{
    return json_object_get(json_object_get(r, "sides"), k);
}

static bool ran(json_t *s)
{
    return json_is_true(json_object_get(s, "possible"));
}

static void cell_ms(char *b, size_t n, json_t *v)
{
    if (json_is_number(v))
        snprintf(b, n, "%.2f s", json_number_value(v) / 1000.0);
}

static void cell_bytes(char *b, size_t n, json_t *v)
{
    if (json_is_integer(v))
        units_size_format((uint64_t)json_integer_value(v), b, n);
}

static void row(json_t *r, const char *label, void (*fill)(json_t *side, char *b, size_t n))
{
    char c[96] = "-", v[96] = "-";
    json_t *sc = side_of(r, "container"), *sv = side_of(r, "vm");
    if (ran(sc))
        fill(sc, c, sizeof(c));
    if (ran(sv))
        fill(sv, v, sizeof(v));
    if (strcmp(c, "-") == 0 && strcmp(v, "-") == 0)
        return;
    printf("  %-26s %-24s %s\n", label, c, v);
}

static void f_start(json_t *s, char *b, size_t n)
{
    json_t *st = json_object_get(s, "start_ms");
    if (!st)
        return;
    char med[32] = "", lo[32] = "", hi[32] = "";
    cell_ms(med, sizeof(med), json_object_get(st, "median"));
    cell_ms(lo, sizeof(lo), json_object_get(st, "min"));
    cell_ms(hi, sizeof(hi), json_object_get(st, "max"));
    lo[strlen(lo) > 2 ? strlen(lo) - 2 : 0] = '\0';   /* "0.19-0.25 s" */
    snprintf(b, n, "%s (%s-%s)", med, lo, hi);
}
static void f_mem_idle(json_t *s, char *b, size_t n) { cell_bytes(b, n, json_object_get(s, "memory_idle_bytes")); }
static void f_mem_probe(json_t *s, char *b, size_t n) { cell_bytes(b, n, json_object_get(s, "memory_probe_bytes")); }
static void f_disk(json_t *s, char *b, size_t n) { cell_bytes(b, n, json_object_get(s, "disk_bytes")); }
static void f_cpu(json_t *s, char *b, size_t n)
{
    json_t *v = json_object_get(s, "cpu_idle_percent");
    if (json_is_number(v))
        snprintf(b, n, "%.2f%% of a CPU", json_number_value(v));
}
static void f_rps(json_t *s, char *b, size_t n)
{
    json_t *v = json_object_get(json_object_get(s, "probe"), "per_second");
    if (json_is_number(v))
        snprintf(b, n, "%.1f", json_number_value(v));
}
static void f_lat(json_t *s, char *b, size_t n)
{
    json_t *p = json_object_get(s, "probe");
    json_t *a = json_object_get(p, "p50_ms"), *c = json_object_get(p, "p99_ms");
    if (json_is_number(a) && json_is_number(c))
        snprintf(b, n, "%.2f / %.2f ms", json_number_value(a), json_number_value(c));
}
static void f_errors(json_t *s, char *b, size_t n)
{
    json_t *p = json_object_get(s, "probe");
    if (json_object_get(p, "error"))
        snprintf(b, n, "failed (below)");
    else if (json_is_integer(json_object_get(p, "errors")))
        snprintf(b, n, "%lld", (long long)json_integer_value(json_object_get(p, "errors")));
}
static void f_exec(json_t *s, char *b, size_t n)
{
    json_t *v = json_object_get(json_object_get(s, "probe"), "median_ms");
    if (json_is_integer(v))
        snprintf(b, n, "%lld ms", (long long)json_integer_value(v));
}
static void cap(json_t *s, const char *k, char *b, size_t n)
{
    json_t *v = json_object_get(json_object_get(s, "capabilities"), k);
    if (json_is_boolean(v))
        snprintf(b, n, "%s", json_is_true(v) ? "yes" : "no");
}
static void f_kernel(json_t *s, char *b, size_t n) { cap(s, "own_kernel", b, n); }
static void f_devices(json_t *s, char *b, size_t n) { cap(s, "devices", b, n); }
static void f_filter(json_t *s, char *b, size_t n) { cap(s, "syscall_filter", b, n); }
static void f_execcap(json_t *s, char *b, size_t n) { cap(s, "exec", b, n); }
static void f_share(json_t *s, char *b, size_t n) { cap(s, "live_volume_sharing", b, n); }
static void f_within(json_t *s, char *b, size_t n) { cap(s, "start_within", b, n); }

static void print_table(json_t *r)
{
    json_t *probe = json_object_get(r, "probe");
    const char *kind = json_string_value(json_object_get(probe, "kind"));
    printf("compare of %s: %lld run%s each", json_string_value(json_object_get(r, "workload")),
           (long long)json_integer_value(json_object_get(r, "runs")),
           json_integer_value(json_object_get(r, "runs")) == 1 ? "" : "s");
    if (kind && strcmp(kind, "http") == 0)
        printf("; probe: HTTP GET %s on port %lld, %lld at once for %.1f s", json_string_value(json_object_get(probe, "path")),
               (long long)json_integer_value(json_object_get(probe, "port")),
               (long long)json_integer_value(json_object_get(probe, "concurrency")),
               (double)json_integer_value(json_object_get(probe, "duration_ms")) / 1000.0);
    else if (kind && strcmp(kind, "tcp") == 0)
        printf("; probe: TCP connects to port %lld", (long long)json_integer_value(json_object_get(probe, "port")));
    else if (kind)
        printf("; probe: a command inside, %lld runs", (long long)json_integer_value(json_object_get(probe, "runs")));
    printf("\n\n  %-26s %-24s %s\n", "", "container", "vm");
    row(r, "start to ready (median)", f_start);
    row(r, "memory at idle", f_mem_idle);
    row(r, "memory under the probe", f_mem_probe);
    row(r, "CPU while idle", f_cpu);
    row(r, "disk beyond the image", f_disk);
    row(r, "requests/s", f_rps);
    row(r, "latency p50 / p99", f_lat);
    row(r, "command time (median)", f_exec);
    row(r, "probe errors", f_errors);
    row(r, "own kernel", f_kernel);
    row(r, "device access", f_devices);
    row(r, "syscall filter", f_filter);
    row(r, "exec", f_execcap);
    row(r, "live volume sharing", f_share);
    row(r, "starts within its budget", f_within);
    printf("\n");
    static const char *const ks[] = {"container", "vm"};
    for (size_t i = 0; i < 2; i++) {
        json_t *s = side_of(r, ks[i]);
        const char *why = json_string_value(json_object_get(s, "reason"));
        const char *e = json_string_value(json_object_get(s, "error"));
        const char *pe = json_string_value(json_object_get(json_object_get(s, "probe"), "error"));
        if (why)
            printf("%s: cannot run this way: %s\n", ks[i], why);
        if (e)
            printf("%s: %s\n", ks[i], e);
        if (pe)
            printf("%s: probe: %s\n", ks[i], pe);
    }
    json_t *plan = json_object_get(r, "plan");
    const char *pb = json_string_value(json_object_get(plan, "backend"));
    if (pb) {
        const char *why = json_string_value(json_array_get(json_object_get(plan, "reasons"), 0));
        printf("plan: %s%s%s\n", pb, why ? ": " : "", why ? why : "");
    }
    printf("verdict: %s\n", json_string_value(json_object_get(json_object_get(r, "verdict"), "text")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "notes"), i, v) printf("note: %s\n", json_string_value(v));
    if (json_array_size(json_object_get(r, "kept"))) {
        printf("kept running:");
        json_array_foreach(json_object_get(r, "kept"), i, v) printf(" %s", json_string_value(v));
        printf(" (duet delete them when done)\n");
    }
}

int cli_compare(int argc, char **argv)
{
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"workload", required_argument, NULL, 'w'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"idle", required_argument, NULL, 'i'},
                                         {"http", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"tcp", required_argument, NULL, 't'},
                                         {"exec", required_argument, NULL, 'e'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"estimate", no_argument, NULL, 'E'},
                                         {"guest-kernel", required_argument, NULL, 'K'},
                                         {"config", required_argument, NULL, 'C'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    json_t *body = json_object(), *files = json_array(), *http = NULL, *probe = NULL;
    const char *name = NULL, *sock = NULL, *shell = NULL, *guest_kernel = NULL, *config = NULL;
    long tcp = 0;
    bool json = false, estimate = false, measuring = false;
    int ch, rc = EXIT_USAGE;
    size_t n_files = 0;
    char **paths = calloc((size_t)argc + 1, sizeof(*paths));
    if (!paths)
        abort();
    unsigned n_probes = 0;
    /* What follows "--" is the probe's command, not options or a name. */
    int dashes = argc;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            dashes = i;
            break;
        }
    optind = 1;
    while ((ch = getopt_long(dashes, argv, "f:w:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            paths[n_files++] = optarg;
            break;
        case 'E': estimate = true; break;
        case 'K': guest_kernel = optarg; break;
        case 'C': config = optarg; break;
        case 'w': name = optarg; break;
        case 'r': {
            char *end;
            long r = strtol(optarg, &end, 10);
            if (*end || r < 1 || r > COMPARE_MAX_RUNS) {
                fprintf(stderr, "duet: --runs %.40s: give a number from 1 to %d\n", optarg, COMPARE_MAX_RUNS);
                goto out;
            }
            json_object_set_new(body, "runs", json_integer(r));
            measuring = true;
            break;
        }
        case 'i':
            json_object_set_new(body, "idle", json_string(optarg));
            measuring = true;
            break;
        case 'H':
            if (!http)
                http = json_object();
            json_object_set_new(http, "path", json_string(optarg));
            n_probes++;
            break;
        case 'p':
        case 'c': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 65535) {
                fprintf(stderr, "duet: --%s %.40s: not a number\n", ch == 'p' ? "port" : "concurrency", optarg);
                goto out;
            }
            if (!http)
                http = json_object();
            json_object_set_new(http, ch == 'p' ? "port" : "concurrency", json_integer(v));
            break;
        }
        case 'd':
            if (!http)
                http = json_object();
            json_object_set_new(http, "duration", json_string(optarg));
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 65535) {
                fprintf(stderr, "duet: --tcp %.40s: give a port from 1 to 65535\n", optarg);
                goto out;
            }
            tcp = v;
            n_probes++;
            break;
        }
        case 'e': shell = optarg; n_probes++; break;
        case 'k':
            json_object_set_new(body, "keep", json_true());
            measuring = true;
            break;
        case 'o':
            if (strcmp(optarg, "json") && strcmp(optarg, "table")) {
                fprintf(stderr, "duet: -o %.40s: give table or json\n", optarg);
                goto out;
            }
            json = strcmp(optarg, "json") == 0;
            break;
        case 'S': sock = optarg; break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default: fputs(usage, stderr); goto out;
        }
    }
    if (estimate) {
        /* A fleet's costs, planned here: nothing is started, no daemon needed. */
        if (!n_files || name || optind < argc || measuring || n_probes || http) {
            fprintf(stderr, "duet: --estimate takes the fleet's files (-f FILE|DIR) and -o; it starts nothing, so "
                            "no workload name, probe, --runs, --idle or --keep\n");
            goto out;
        }
        rc = cli_compare_estimate(paths, n_files, guest_kernel, config, json);
        goto out;
    }
    if (guest_kernel || config) {
        fprintf(stderr, "duet: --guest-kernel and --config go with --estimate; a measured compare uses duetd's own\n");
        goto out;
    }
    for (size_t i = 0; i < n_files; i++)
        if (cli_add_path(files, paths[i]) < 0) {
            rc = EXIT_REFUSED;
            goto out;
        }
    if (!name && optind < dashes)
        name = argv[optind++];
    if (optind < dashes) {
        fprintf(stderr, "duet: %s: one workload at a time; a probe's command goes after --\n", argv[optind]);
        goto out;
    }
    if (dashes + 1 < argc)
        n_probes++;
    if (!name || !manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, name ? "duet: %s is not a workload name\n%s" : "%.0s%s", name ? name : "", usage);
        goto out;
    }
    if (n_probes > 1) {
        fprintf(stderr, "duet: give one probe: --http, --tcp, --exec or a command after --\n");
        goto out;
    }
    if (http && !json_object_get(http, "path")) {
        fprintf(stderr, "duet: --port, --concurrency and --duration go with --http PATH%s\n",
                tcp ? " (--tcp takes its port)" : "");
        goto out;
    }
    if (http) {
        probe = json_pack("{s:O}", "http", http);
    } else if (tcp) {
        probe = json_pack("{s:{s:I}}", "tcp", "port", (json_int_t)tcp);
    } else if (shell) {
        probe = json_pack("{s:[s,s,s]}", "exec", "/bin/sh", "-c", shell);
    } else if (dashes + 1 < argc) {
        json_t *cmd = json_array();
        for (int i = dashes + 1; i < argc; i++)
            json_array_append_new(cmd, json_string(argv[i]));
        probe = json_pack("{s:o}", "exec", cmd);
    }
    json_object_set_new(body, "workload", json_string(name));
    if (probe)
        json_object_set(body, "probe", probe);
    if (n_files)
        json_object_set(body, "files", files);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *last = NULL;
    struct client_lines *lines = calloc(1, sizeof(*lines));
    struct client_buf eb = {0};
    struct duet_err err = {0};
    if (!text || !lines)
        abort();
    lines->fn = on_line;
    lines->opaque = &last;
    int status = client_call(client_socket_path(sock), "POST", "/v1/compare", text, strlen(text), client_lines_feed,
                             lines, &eb, 0, &err);
    free(lines);
    free(text);
    if (status < 0)
        rc = cli_unreachable(&err);
    else if (status >= 300)
        rc = cli_refused(eb.data);
    else if (!json_object_get(last, "result")) {
        const char *e = json_string_value(json_object_get(last, "error"));
        fprintf(stderr, "duet: %s\n", e ? e : "the compare ended without an answer");
        rc = EXIT_REFUSED;
    } else {
        json_t *r = json_object_get(last, "result");
        if (json) {
            char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n", t);
            free(t);
        } else {
            print_table(r);
        }
        rc = 0;
    }
    free(eb.data);
    json_decref(last);
out:
    free(paths);
    json_decref(http);
    json_decref(probe);
    json_decref(files);
    json_decref(body);
    return rc;
}
