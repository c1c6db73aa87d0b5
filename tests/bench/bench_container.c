/*
 * bench_container - start a container running /bin/true and collect its
 * exit status, RUNS times, with duet's runtime and with runc on an
 * equivalent bundle (same rootfs; pid, mount, uts, ipc, net and cgroup
 * namespaces) in the same run.  Prints medians and the ratio, and the
 * private memory of duet-init (what each running container costs beyond
 * its workload).
 *
 * duet's cycle is the whole life: prepare (state dir, writable layer,
 * cgroup with limits), start, wait for the exit status, destroy.  runc's is
 * `runc run` (create, start, wait, delete), which also makes and removes a
 * cgroup; runc mounts the bundle read-only rather than building an overlay.
 *
 * Then the fleet network's cost: the same cycle with a veth pair on a
 * bridge (address, route, resolv.conf) against none, alternating, in a
 * network namespace of the benchmark's own so the host is not touched.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_runc.h"
#include "bench_util.h"

#include "network/fleet.h"
#include "common/fsutil.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "backends/container/runtime.h"

#define RUNS 100

static long private_kib(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(p, "r");
    long total = 0, v;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 || sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
            total += v;
    if (f)
        fclose(f);
    return total;
}

int main(void)
{
    const char *init = getenv("DUET_INIT"), *rootfs = getenv("DUET_ROOTFS");
    if (!init || !rootfs) {
        fprintf(stderr, "bench: set DUET_INIT and DUET_ROOTFS (make bench does)\n");
        return 2;
    }
    /* A namespace of our own: the bridge and veths below never reach the
     * host's, and runc gets one of its own inside it either way. */
    if (unshare(CLONE_NEWNET) < 0) {
        perror("bench: unshare(CLONE_NEWNET)");
        return 1;
    }
    char state[] = "/tmp/duet-bench-ct-XXXXXX", bundle[] = "/tmp/duet-bench-runc-XXXXXX",
         runc_root[] = "/tmp/duet-bench-runc-root-XXXXXX";
    if (!mkdtemp(state) || !mkdtemp(bundle) || !mkdtemp(runc_root))
        return 1;
    struct container_runtime rt;
    struct duet_err err = {0};
    if (container_runtime_init(&rt, state, init, NULL, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: bench}\n"
             "spec: {image: {rootfs: %s}, command: [/bin/true], resources: {memory: 256Mi, cpus: 1, pids: 256}}\n",
             rootfs);
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "bench.yaml", yaml, strlen(yaml));
    manifest_set_validate(set);
    if (!manifest_set_ok(set)) {
        diag_print(&set->diags, stderr);
        return 1;
    }
    if (runc_bundle(bundle, rootfs) < 0) {
        fprintf(stderr, "bench: cannot make a runc bundle (is runc installed?)\n");
        return 1;
    }

    double duet[RUNS], runc[RUNS], duet_start[RUNS];
    for (int i = 0; i < RUNS; i++) {
        struct container_config cfg = {.spec = set->workloads[0]};
        struct container *c;
        struct container_exit st;
        double t0 = now_ms();
        if (container_prepare(&rt, &cfg, &c, &err) < 0 || container_start(c, &cfg, &err) < 0 ||
            container_wait(c, -1, &st, &err) != 1) {
            fprintf(stderr, "bench: duet: %s\n", err.msg);
            return 1;
        }
        double t1 = now_ms();
        if (st.code != 0 || container_destroy(c, &err) < 0) {
            fprintf(stderr, "bench: duet: exit %d %s\n", st.code, err.msg);
            return 1;
        }
        duet[i] = now_ms() - t0;
        duet_start[i] = t1 - t0;

        char id[32];
        snprintf(id, sizeof(id), "bench-%d", i);
        const char *argv[] = {"runc", "--root", runc_root, "run", "--bundle", bundle, id, NULL};
        t0 = now_ms();
        int rc = run_quiet(argv);
        runc[i] = now_ms() - t0;
        if (rc != 0) {
            fprintf(stderr, "bench: runc run exited %d\n", rc);
            return 1;
        }
    }

    /* A running container's cost beyond its workload: duet-init's private
     * memory.  Measured with four containers running: with one, the pages
     * of duet-init's program count as private only because nothing else
     * maps them; from the second container on they are shared. */
    struct container *idle[4];
    for (int i = 0; i < 4; i++) {
        char y2[512];
        snprintf(y2, sizeof(y2), "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: idle%d}\n"
                                 "spec: {image: {rootfs: %s}, command: [/bin/sleep, '60']}\n", i, rootfs);
        manifest_set_load_buffer(set, "idle.yaml", y2, strlen(y2));
        struct container_config cfg = {.spec = set->workloads[set->n_workloads - 1]};
        if (container_prepare(&rt, &cfg, &idle[i], &err) < 0 || container_start(idle[i], &cfg, &err) < 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
    }
    usleep(200000);
    long init_kib = private_kib(idle[0]->pid);
    for (int i = 0; i < 4; i++)
        container_destroy(idle[i], NULL);

    /* The network's cost: a bridge, then start-to-exit-status with and
     * without a veth, alternating so both see the same machine. */
    struct nl nl;
    struct nl_link br;
    uint8_t brmac[6];
    ipam_mac(0x0a630001, brmac);
    if (nl_open(&nl, &err) < 0 || nl_bridge_add(&nl, "benchbr0", "duet:bench", brmac, &err) < 0 ||
        nl_link_get(&nl, "benchbr0", &br, &err) < 0 || nl_addr_add(&nl, br.index, 0x0a630001, 16, &err) < 0 ||
        nl_link_set_up(&nl, br.index, &err) < 0) {
        fprintf(stderr, "bench: network: %s\n", err.msg);
        return 1;
    }
    double with_net[RUNS], without_net[RUNS];
    for (int i = 0; i < 2 * RUNS; i++) {
        bool net = i % 2 == 0;
        struct net_attachment dn = {.bridge_index = br.index, .addr = 0x0a630002 + (uint32_t)i, .gateway = 0x0a630001,
                                .dns = 0x0a630001, .prefix = 16};
        snprintf(dn.bridge, sizeof(dn.bridge), "benchbr0");
        fleet_net_host_if(dn.addr, dn.host_if);
        ipam_mac(dn.addr, dn.mac);
        struct container_config cfg = {.spec = set->workloads[0], .net = net ? &dn : NULL};
        struct container *c;
        struct container_exit st;
        double t0 = now_ms();
        if (container_prepare(&rt, &cfg, &c, &err) < 0 || container_start(c, &cfg, &err) < 0 ||
            container_wait(c, -1, &st, &err) != 1) {
            fprintf(stderr, "bench: duet with%s network: %s\n", net ? "" : "out", err.msg);
            return 1;
        }
        double t = now_ms() - t0;
        (net ? with_net : without_net)[i / 2] = t;
        if (st.code != 0 || container_destroy(c, &err) < 0) {
            fprintf(stderr, "bench: duet: exit %d %s\n", st.code, err.msg);
            return 1;
        }
    }
    nl_link_del(&nl, "benchbr0", NULL);
    nl_close(&nl);
    double wn = median(with_net, RUNS), won = median(without_net, RUNS);

    double dm = median(duet, RUNS), ds = median(duet_start, RUNS), rm = median(runc, RUNS);
    printf("bench container: /bin/true, %d runs each, medians\n", RUNS);
    printf("  duet  prepare+start+exit status     %6.2f ms\n", ds);
    printf("  duet  whole cycle (with destroy)    %6.2f ms\n", dm);
    printf("  runc  run (reference, same run)     %6.2f ms\n", rm);
    printf("  ratio duet/runc (whole cycle): %.3f   [bar: <= 0.25]\n", dm / rm);
    printf("  duet-init private memory per running container: %ld KiB   [bar: < 256 KiB]\n", init_kib);
    printf("  network: prepare+start+exit status with a veth on a bridge %6.2f ms, network: none %6.2f ms\n", wn,
           won);
    printf("  network: added per container start (median): %.2f ms   [bar: < 5 ms]\n", wn - won);
    container_runtime_fini(&rt);
    manifest_set_free(set);
    char templates[128];
    snprintf(templates, sizeof(templates), "%s/.layers", state);
    duet_remove_tree(templates, NULL);
    rmdir(state);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", bundle, runc_root);
    if (system(cmd) != 0)
        return 1;
    return dm / rm <= 0.25 && init_kib < 256 && wn - won < 5.0 ? 0 : 1;
}
