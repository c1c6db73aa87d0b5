/*
 * main.c - the `duet` command.
 *
 * Exit codes (DESIGN.md): 0 success, 1 invalid input or refused request,
 * 2 usage error, 3 daemon unreachable.  Errors go to stderr, one line each.
 *
 * Verbs that work without a daemon live here: validate and plan.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verbs.h"
#include "scheduler/hostprobe.h"
#include "manifests/manifest.h"
#include "scheduler/placement.h"
#include "cli/client.h"
#include "plan_output.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2

#ifndef DUET_VERSION
#define DUET_VERSION "0.1.0"
#endif

static const char usage_main[] =
    "usage: duet COMMAND [OPTIONS]\n"
    "\n"
    "Run a fleet of virtual machines and containers from YAML manifests.\n"
    "\n"
    "Commands:\n"
    "  validate FILE|DIR...          check manifests; every error as FILE:LINE:COL\n"
    "  plan -f FILE|DIR [-o json]    where each workload would run, and why\n"
    "\n"
    "Commands that talk to duetd (--socket PATH or $DUET_SOCKET, default /run/duet/duet.sock):\n"
    "  apply -f FILE|DIR [--prune]   make the fleet what the manifests say (--dry-run, --wait)\n"
    "  get [NAME] [-o json|yaml]     the workloads and their state\n"
    "  describe NAME                 spec, placement reasons, state, restarts, events\n"
    "  logs [-f] NAME                a container's output, a VM's serial console\n"
    "  exec NAME -- CMD...           run a command in a running workload\n"
    "  delete NAME... | -f FILE      stop and remove workloads\n"
    "  stop NAME...                  stop workloads; they stay stopped until started\n"
    "  start NAME...                 start stopped workloads again\n"
    "  restart NAME...               replace workloads' instances with fresh ones\n"
    "  dashboard                     the web dashboard's address, with its login token\n"
    "  events [-f]                   the event stream\n"
    "  top [--sort cpu|memory]       the workloads' CPU, memory, disk and network, live\n"
    "  compare NAME [--http PATH]    run it as a container and as a VM, measure both, say which suits it\n"
    "  run (--rootfs DIR|--disk IMG|--image REF) [--rm] [-- CMD...]   one workload now, like docker run\n"
    "  image ls|pull|inspect|rm|prune   the OCI images in duetd's store\n"
    "  volume ls|inspect|rm          the named volumes duetd keeps\n"
    "  secret set|ls|rm              the secrets duetd keeps for workloads\n"
    "  snapshot create|ls|restore|rm NAME [SNAP]   snapshots of a workload's disk and volumes\n"
    "  backup NAME -o FILE [--stop]   write a workload (spec, disk, volumes) to one archive\n"
    "  restore FILE [--name NEW]      make the workload of a backup on this daemon\n"
    "\n"
    "Run 'duet COMMAND --help' for a command's options.\n"
    "Exit codes: 0 success, 1 invalid input or refused, 2 usage error, 3 daemon unreachable.\n";

static const char usage_validate[] =
    "usage: duet validate FILE|DIR...\n"
    "\n"
    "Check manifests against the duet/v1 schema and across documents (unique\n"
    "names, known and acyclic dependsOn, host ports published once).  A\n"
    "directory means every *.yaml and *.yml directly inside it, in name order.\n"
    "Prints every error found as FILE:LINE:COL: error: MESSAGE on stderr.\n"
    "\n"
    "  -q, --quiet    print nothing on success\n"
    "  -h, --help     this text\n"
    "\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error.\n";

static const char usage_plan[] =
    "usage: duet plan -f FILE|DIR [-f FILE|DIR...] [-o table|json]\n"
    "\n"
    "Show where each workload would run (vm or container), the reasons, what\n"
    "was ruled out and why, and the start order from dependsOn.  Plans for\n"
    "the kind: Host document among the manifests when there is one, otherwise\n"
    "for this machine as probed (CPUs, memory, cgroups, KVM, libvirt).\n"
    "\n"
    "  -f, --filename PATH      manifest file or directory (repeatable)\n"
    "  -o, --output FORMAT      table (default) or json\n"
    "      --libvirt-uri URI    libvirt to probe (or $DUET_LIBVIRT_URI; default: qemu:///system if\n"
    "                           its daemon answers, else duet's embedded libvirt)\n"
    "      --guest-kernel PATH  kernel that boots rootfs images as VMs\n"
    "      --config FILE        duetd's config file, for the two above when not given (default\n"
    "                           $DUET_CONFIG, else " DUET_DEFAULT_CONFIG "; none: no file)\n"
    "  -h, --help               this text\n"
    "\n"
    "Exit status: 0 every workload placed, 1 invalid manifests or a workload\n"
    "that fits nowhere, 2 usage error.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "duet: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    fputs(usage, stderr);
    return EXIT_USAGE;
}

/* Loads and validates; prints diagnostics.  Always returns a set (the
 * caller frees it); manifest_set_ok() says whether it is valid. */
static struct manifest_set *load_all(char **paths, int n)
{
    struct manifest_set *set = manifest_set_new();
    for (int i = 0; i < n; i++)
        manifest_set_load_path(set, paths[i]);
    manifest_set_validate(set);
    diag_print(&set->diags, stderr);
    return set;
}

static int cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        switch (c) {
        case 'q': quiet = true; break;
        case 'h': fputs(usage_validate, stdout); return 0;
        default: fputs(usage_validate, stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return usage_error(usage_validate, "%s", "validate needs at least one FILE or DIR");
    struct manifest_set *set = load_all(argv + optind, argc - optind);
    int rc = 0;
    if (!manifest_set_ok(set)) {
        size_t n = diag_count(&set->diags);
        fprintf(stderr, "duet: %zu error%s; nothing is valid until all are fixed\n", n, n == 1 ? "" : "s");
        rc = EXIT_INVALID;
    } else if (!quiet) {
        printf("valid: %zu workload%s%s in %zu file%s\n", set->n_workloads, set->n_workloads == 1 ? "" : "s",
               set->host ? " and 1 host" : "", set->n_files, set->n_files == 1 ? "" : "s");
    }
    manifest_set_free(set);
    return rc;
}

static int cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"libvirt-uri", required_argument, NULL, 'U'},
                                         {"guest-kernel", required_argument, NULL, 'K'},
                                         {"config", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char **files = calloc((size_t)argc + 1, sizeof(*files));
    const char *config = NULL;
    struct cli_probe_keep keep;
    if (!files)
        abort();
    int n_files = 0, c, rc = 0;
    bool json = false;
    struct host_probe_opts popts = {0};
    optind = 1;
    while ((c = getopt_long(argc, argv, "+f:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': files[n_files++] = optarg; break;
        case 'o':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "table") != 0) {
                free(files);
                return usage_error(usage_plan, "unknown output format \"%s\"; use table or json", optarg);
            }
            break;
        case 'U': popts.libvirt_uri = optarg; break;
        case 'K': popts.guest_kernel = optarg; break;
        case 'C': config = optarg; break;
        case 'h': free(files); fputs(usage_plan, stdout); return 0;
        default: free(files); fputs(usage_plan, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        rc = usage_error(usage_plan, "unexpected argument \"%s\"; give manifests with -f", argv[optind]);
        free(files);
        return rc;
    }
    if (n_files == 0) {
        free(files);
        return usage_error(usage_plan, "%s", "plan needs manifests: -f FILE|DIR");
    }
    struct manifest_set *set = load_all(files, n_files);
    free(files);
    if (!manifest_set_ok(set)) {
        size_t n = diag_count(&set->diags);
        fprintf(stderr, "duet: %zu error%s in the manifests; nothing was planned\n", n, n == 1 ? "" : "s");
        manifest_set_free(set);
        return EXIT_INVALID;
    }
    struct host_info host;
    if (set->host) {
        host_info_from_spec(&host, set->host);
    } else {
        struct duet_err err;
        if (cli_probe_settle(config, &popts, &keep)) {
            manifest_set_free(set);
            return EXIT_INVALID;
        }
        if (host_probe(&host, &popts, &err) < 0) {
            fprintf(stderr, "duet: %s\n", err.msg);
            manifest_set_free(set);
            return EXIT_INVALID;
        }
    }
    struct plan *plan = plan_new(set, &host);
    /* A plan of thousands of workloads is megabytes of output. */
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    /* What duetd's image store says of the OCI images, if a daemon runs. */
    struct plan_images imgs = {0};
    plan_images_lookup(set, client_socket_path(NULL), &imgs);
    plan_disks_lookup(plan, client_socket_path(NULL), &imgs);
    if (json) {
        if (plan_print_json(plan, &imgs, stdout) < 0) {
            fprintf(stderr, "duet: cannot write the plan to standard output\n");
            rc = EXIT_INVALID;
        }
    } else {
        plan_print_table(plan, &imgs, stdout);
    }
    plan_images_free(&imgs);
    if (plan->n_unplaceable) {
        fprintf(stderr, "duet: %zu workload%s cannot be placed on %s (reasons above)\n", plan->n_unplaceable,
                plan->n_unplaceable == 1 ? "" : "s", host.name);
        rc = EXIT_INVALID;
    }
    plan_free(plan);
    manifest_set_free(set);
    return rc;
}

int main(int argc, char **argv)
{
    /* Global options go before the verb as well as after it, as in kubectl
     * and docker: duet --socket PATH get.  Before the verb they stand for
     * $DUET_SOCKET, which every verb reads; after it the verb parses them. */
    while (argc >= 2 && strncmp(argv[1], "--socket", 8) == 0) {
        const char *path = NULL;
        int used = 1;
        if (argv[1][8] == '=')
            path = argv[1] + 9;
        else if (argv[1][8] == '\0' && argc >= 3)
            path = argv[2], used = 2;
        if (!path || !*path)
            return usage_error(usage_main, "%s", "--socket needs a path: duet --socket PATH COMMAND ...");
        setenv("DUET_SOCKET", path, 1);
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0 || strcmp(verb, "help") == 0) {
        if (argc > 2 && strcmp(verb, "help") == 0) {
            char *args[] = {argv[2], "--help", NULL};
            if (strcmp(argv[2], "validate") == 0)
                return cmd_validate(2, args);
            if (strcmp(argv[2], "plan") == 0)
                return cmd_plan(2, args);
        }
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(verb, "--version") == 0 || strcmp(verb, "version") == 0) {
        printf("duet %s\n", DUET_VERSION);
        return 0;
    }
    if (strcmp(verb, "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    if (strcmp(verb, "plan") == 0)
        return cmd_plan(argc - 1, argv + 1);
    int rc = cli_verbs_run(verb, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    return usage_error(usage_main, "unknown command \"%s\"", verb);
}
