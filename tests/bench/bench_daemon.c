/*
 * bench_daemon.c - duetd end to end, on real containers:
 *
 *   1. one-shot: `duet run --rm --rootfs R -- /bin/true` (CLI -> API ->
 *      daemon -> store -> container -> exit status back to the CLI)
 *      against `runc run` and `podman run --rm --rootfs R` of the same
 *      rootfs, alternated, same run, medians; bar: under 0.30 of runc.
 *      And the daemon's own cost: `duet run --rm --network none` against
 *      the container runtime's whole cycle (prepare, start, wait,
 *      destroy) in this process, no network either; bar: under 1.4x;
 *   2. apply 500 sleeping busybox containers in one manifest: time until
 *      all 500 run, and the daemon's resident memory then; bars: under
 *      8 s, under 32 MiB.  Beside it, what the kernel charges: the
 *      runtime alone starting the same 500 (one thread, then two; no
 *      network), and with two threads and each container's veth on a
 *      bridge, as duetd does (the floor under the 500);
 *   3. `duet get -o json` with those 500 workloads: median of RUNS;
 *      bar: under 10 ms;
 *      and a Prometheus scrape (GET /metrics) with those 500: median;
 *      bar: under 20 ms, beside GET /v1/workloads;
 *   4. delete all 500 (--wait): bar: under 4 s;
 *   5. exec into a running container: `duet exec -- /bin/true` and 5 MB
 *      through `duet exec -i -- cat`, against `runc exec` and `podman
 *      exec` of a running container of the same rootfs, same run,
 *      medians (a report: no bar);
 *   6. an attached run: 5 MB through `duet run -i --rm -- cat` (a fresh
 *      container each time, its own command attached), against `runc
 *      run` of a bundle running cat on our stdio and `podman run -i --rm`,
 *      same run, medians (a report: no bar).
 * Exits 1 when a figure is outside its bar.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


#include "backends/container/runtime.h"
#include "bench_runc.h"
#include "bench_util.h"
#include "cli/client.h"
#include "common/fsutil.h"
#include "network/fleet.h"
#include "network/ipam.h"
#include "network/netlink.h"

#define RUNS 21
#define PODMAN_RUNS 7
#define FLEET 500

/* Runs argv; quiet: its output to /dev/null. */
static int run_argv(const char *const *argv, bool quiet)
{
    if (quiet)
        return run_quiet(argv);
    pid_t p;
    if (posix_spawnp(&p, argv[0], NULL, NULL, (char *const *)argv, environ) != 0)
        return 127;
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* How many workloads run, counted in duetd's compact answer without
 * parsing it: the bench polls while the 500 start, and a parse of the
 * list (10 ms) every poll was a third of a CPU taken from what it
 * measures.  "state" is a member of each workload's summary only. */
static int running_count(const char *sock)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    int n = -1;
    if (client_call_buf(sock, "GET", "/v1/workloads", NULL, 0, &b, 30000, &err) == 200) {
        n = 0;
        for (const char *p = b.data; (p = strstr(p, "\"state\":\"running\"")); p++)
            n++;
    }
    free(b.data);
    return n;
}

/* The container runtime's whole cycle of /bin/true, in this process. */
struct rt_cycle {
    struct container_runtime rt;
    struct manifest_set *set;
};

static int rt_cycle_init(struct rt_cycle *r, const char *state, const char *init, const char *rootfs)
{
    struct duet_err err = {0};
    if (container_runtime_init(&r->rt, state, init, NULL, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: cycle}\n"
             "spec: {image: {rootfs: %s}, command: [/bin/true], network: none}\n",
             rootfs);
    r->set = manifest_set_new();
    manifest_set_load_buffer(r->set, "cycle.yaml", yaml, strlen(yaml));
    manifest_set_validate(r->set);
    return manifest_set_ok(r->set) ? 0 : -1;
}

static double rt_cycle_once(struct rt_cycle *r)
{
    struct container_config cfg = {.spec = r->set->workloads[0]};
    struct container *c;
    struct container_exit st;
    struct duet_err err = {0};
    double t0 = now_ms();
    if (container_prepare(&r->rt, &cfg, &c, &err) < 0 || container_start(c, &cfg, &err) < 0 ||
        container_wait(c, -1, &st, &err) != 1 || container_destroy(c, &err) < 0) {
        fprintf(stderr, "bench: runtime cycle: %s\n", err.msg);
        return -1;
    }
    return now_ms() - t0;
}

/* The runtime alone, no network: 500 sleeping containers prepared and
 * started by `threads` threads, the same specs as the fleet.  What the
 * kernel charges for a container (namespaces, mounts, cgroups, fork and
 * exec) with nothing of the daemon's around it; with two threads on two
 * CPUs, how much of that the kernel lets run side by side. */
struct rt_fleet {
    struct rt_cycle *r;
    struct manifest_set *set;
    struct container **c;
    struct net_attachment *net;   /* per container, or NULL */
    int from, step;
    bool failed;
};

static void *rt_fleet_part(void *opaque)
{
    struct rt_fleet *p = opaque;
    for (int i = p->from; i < FLEET && !p->failed; i += p->step) {
        struct container_config cfg = {.spec = p->set->workloads[i], .net = p->net ? &p->net[i] : NULL};
        struct duet_err err = {0};
        if (container_prepare(&p->r->rt, &cfg, &p->c[i], &err) < 0 || container_start(p->c[i], &cfg, &err) < 0) {
            fprintf(stderr, "bench: the runtime's fleet: %s\n", err.msg);
            p->failed = true;
        }
    }
    return NULL;
}

/* A bridge of the benchmark's own, and an address on it per container,
 * as the fleet network gives them (network/fleet.c). */
#define RT_BRIDGE "duetbenchrt0"
#define RT_NET 0x0a580000u   /* 10.88.0.0/16 */

static struct net_attachment *rt_net_up(void)
{
    struct nl nl;
    struct nl_link br;
    struct duet_err err = {0};
    uint8_t mac[6];
    ipam_mac(RT_NET + 1, mac);
    if (nl_open(&nl, &err) < 0)
        return NULL;
    nl_link_del(&nl, RT_BRIDGE, NULL);
    bool ok = nl_bridge_add(&nl, RT_BRIDGE, "duet bench", mac, &err) == 0 && nl_link_get(&nl, RT_BRIDGE, &br, &err) == 0 &&
              nl_addr_add(&nl, br.index, RT_NET + 1, 16, &err) == 0 && nl_link_set_up(&nl, br.index, &err) == 0;
    nl_close(&nl);
    if (!ok) {
        fprintf(stderr, "bench: the runtime's bridge: %s\n", err.msg);
        return NULL;
    }
    struct net_attachment *na = calloc(FLEET, sizeof(*na));
    for (int i = 0; i < FLEET; i++) {
        uint32_t addr = RT_NET + 2 + (uint32_t)i;
        na[i] = (struct net_attachment){.bridge_index = br.index, .addr = addr, .gateway = RT_NET + 1,
                                        .dns = RT_NET + 1, .prefix = 16};
        snprintf(na[i].bridge, sizeof(na[i].bridge), "%s", RT_BRIDGE);
        fleet_net_host_if(addr, na[i].host_if);
        ipam_mac(addr, na[i].mac);
    }
    return na;
}

static void rt_net_down(struct net_attachment *na)
{
    struct nl nl;
    struct duet_err err = {0};
    if (nl_open(&nl, &err) == 0) {
        nl_link_del(&nl, RT_BRIDGE, NULL);
        nl_close(&nl);
    }
    free(na);
}

static double rt_fleet_up(struct rt_cycle *r, const char *rootfs, int threads, bool net, double *down_ms)
{
    size_t cap = (size_t)FLEET * 300;
    char *yaml = malloc(cap), *p = yaml;
    for (int i = 0; i < FLEET; i++)
        p += snprintf(p, cap - (size_t)(p - yaml),
                      "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: f%03d}\nspec:\n"
                      "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n%s"
                      "  resources: {memory: 8Mi, cpus: 0.01}\n",
                      i, rootfs, net ? "" : "  network: none\n");
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "fleet.yaml", yaml, strlen(yaml));
    free(yaml);
    manifest_set_validate(set);
    struct net_attachment *na = net ? rt_net_up() : NULL;
    struct container **c = calloc(FLEET, sizeof(*c));
    double up = -1, t0 = now_ms();
    struct rt_fleet parts[4];
    pthread_t tid[4];
    bool failed = !manifest_set_ok(set) || (net && !na);
    for (int t = 0; t < threads && !failed; t++) {
        parts[t] = (struct rt_fleet){.r = r, .set = set, .c = c, .net = na, .from = t, .step = threads};
        if (pthread_create(&tid[t], NULL, rt_fleet_part, &parts[t]) != 0)
            abort();
    }
    for (int t = 0; t < threads && !failed; t++) {
        pthread_join(tid[t], NULL);
        failed = failed || parts[t].failed;
    }
    if (!failed)
        up = now_ms() - t0;
    t0 = now_ms();
    struct duet_err err = {0};
    for (int i = 0; i < FLEET; i++)
        if (c[i] && container_destroy(c[i], &err) < 0)
            fprintf(stderr, "bench: the runtime's fleet: %s\n", err.msg);
    *down_ms = now_ms() - t0;
    if (net)
        rt_net_down(na);
    free(c);
    manifest_set_free(set);
    return up;
}

/* Runs a shell command line (for its redirections); its exit status. */
static int run_sh(const char *line)
{
    const char *argv[] = {"/bin/sh", "-c", line, NULL};
    return run_argv(argv, true);
}

#define EXEC_BYTES (5u << 20)

/* Section 5: one running container each for duet, runc and podman, then
 * the same commands into each. */
static int bench_exec(const char *dir, const char *duet, const char *rootfs, const char *runc_root)
{
    char m[300], bundle[300], data[300], cfg[400], line[2048];
    snprintf(m, sizeof(m), "%s/ex.yaml", dir);
    snprintf(bundle, sizeof(bundle), "%s/ex-bundle", dir);
    snprintf(data, sizeof(data), "%s/ex-data", dir);
    FILE *f = fopen(m, "w");
    if (!f)
        return -1;
    fprintf(f, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: ex}\nspec:\n  placement: container\n"
               "  image: {rootfs: %s}\n  command: [/bin/sleep, \"3600\"]\n", rootfs);
    fclose(f);
    f = fopen(data, "w");
    for (unsigned i = 0; f && i < EXEC_BYTES / 64; i++)
        fprintf(f, "%063u\n", i);
    if (!f || fclose(f) != 0)
        return -1;
    mkdir(bundle, 0700);
    snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
    json_t *c = runc_bundle(bundle, rootfs) == 0 ? json_load_file(cfg, 0, NULL) : NULL;
    if (!c)
        return -1;
    json_object_set_new(json_object_get(c, "process"), "args", json_pack("[s,s]", "/bin/sleep", "3600"));
    json_dump_file(c, cfg, JSON_INDENT(1));
    json_decref(c);
    const char *apply[] = {duet, "apply", "-f", m, "--wait", "--timeout", "60", NULL};
    const char *runc_up[] = {"runc", "--root", runc_root, "run", "-d", "--bundle", bundle, "exbench", NULL};
    const char *podman_up[] = {"podman", "run", "-d", "--name", "duetbench-ex", "--ulimit", "nofile=1024:1024",
                               "--ulimit", "nproc=4096:4096", "--rootfs", rootfs, "/bin/sleep", "3600", NULL};
    if (run_argv(apply, true) != 0 || run_argv(runc_up, true) != 0) {
        fprintf(stderr, "bench: the exec targets did not start\n");
        return -1;
    }
    bool podman = run_argv(podman_up, true) == 0;
    const char *d_true[] = {duet, "exec", "ex", "--", "/bin/true", NULL};
    const char *r_true[] = {"runc", "--root", runc_root, "exec", "exbench", "/bin/true", NULL};
    const char *p_true[] = {"podman", "exec", "duetbench-ex", "/bin/true", NULL};
    double dt[RUNS], rt[RUNS], pt[PODMAN_RUNS], di[RUNS], ri[RUNS], pi[PODMAN_RUNS];
    int bad = 0;
    for (int i = 0; i < 2; i++)   /* warm */
        bad |= run_argv(d_true, true) | run_argv(r_true, true);
    for (int i = 0; i < RUNS; i++) {
        double t0 = now_ms();
        bad |= run_argv(d_true, true);
        dt[i] = now_ms() - t0;
        t0 = now_ms();
        bad |= run_argv(r_true, true);
        rt[i] = now_ms() - t0;
        snprintf(line, sizeof(line), "%s exec -i ex -- cat < %s | cmp -s - %s", duet, data, data);
        t0 = now_ms();
        bad |= run_sh(line);
        di[i] = now_ms() - t0;
        snprintf(line, sizeof(line), "runc --root %s exec exbench cat < %s | cmp -s - %s", runc_root, data, data);
        t0 = now_ms();
        bad |= run_sh(line);
        ri[i] = now_ms() - t0;
    }
    for (int i = 0; i < PODMAN_RUNS && podman; i++) {
        double t0 = now_ms();
        podman = run_argv(p_true, true) == 0;
        pt[i] = now_ms() - t0;
        snprintf(line, sizeof(line), "podman exec -i duetbench-ex cat < %s | cmp -s - %s", data, data);
        t0 = now_ms();
        podman = podman && run_sh(line) == 0;
        pi[i] = now_ms() - t0;
    }
    double dtm = median(dt, RUNS), rtm = median(rt, RUNS), dim = median(di, RUNS), rim = median(ri, RUNS);
    printf("exec into a running container, median of %d (podman: %d)\n", RUNS, PODMAN_RUNS);
    printf("  duet exec -- /bin/true        %7.2f ms; runc exec %7.2f ms: duet/runc %.2f", dtm, rtm, dtm / rtm);
    if (podman)
        printf("; podman exec %7.2f ms: duet/podman %.2f", median(pt, PODMAN_RUNS), dtm / median(pt, PODMAN_RUNS));
    printf("\n  5 MiB through cat: duet exec -i %7.2f ms; runc exec %7.2f ms: duet/runc %.2f", dim, rim, dim / rim);
    if (podman)
        printf("; podman exec -i %7.2f ms: duet/podman %.2f", median(pi, PODMAN_RUNS), dim / median(pi, PODMAN_RUNS));
    printf("\n");
    if (!podman)
        printf("  podman exec: failed or not installed (make bench installs it)\n");
    const char *runc_down[] = {"runc", "--root", runc_root, "delete", "-f", "exbench", NULL};
    const char *podman_down[] = {"podman", "rm", "-f", "-t", "0", "duetbench-ex", NULL};
    const char *del[] = {duet, "delete", "ex", "--wait", NULL};
    run_argv(runc_down, true);
    run_argv(podman_down, true);
    run_argv(del, true);
    if (bad)
        fprintf(stderr, "bench: an exec failed or its output came back changed\n");
    return bad || !podman ? -1 : 0;
}

/* Section 6: a fresh container per run, its own command cat, 5 MB
 * through it. */
static int bench_run_io(const char *dir, const char *duet, const char *rootfs, const char *runc_root)
{
    char bundle[300], data[300], cfg[400], line[2048];
    snprintf(bundle, sizeof(bundle), "%s/rio-bundle", dir);
    snprintf(data, sizeof(data), "%s/ex-data", dir);   /* bench_exec's */
    mkdir(bundle, 0700);
    snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
    json_t *c = runc_bundle(bundle, rootfs) == 0 ? json_load_file(cfg, 0, NULL) : NULL;
    if (!c)
        return -1;
    json_object_set_new(json_object_get(c, "process"), "args", json_pack("[s]", "cat"));
    json_object_set_new(json_object_get(c, "process"), "terminal", json_false());
    json_dump_file(c, cfg, JSON_INDENT(1));
    json_decref(c);
    double d[RUNS], r[RUNS], p[PODMAN_RUNS];
    int bad = 0;
    bool podman = true;
    for (int i = 0; i < RUNS; i++) {
        snprintf(line, sizeof(line), "%s run -i --rm --placement container --rootfs %s -- cat < %s | cmp -s - %s", duet,
                 rootfs, data, data);
        double t0 = now_ms();
        bad |= run_sh(line);
        d[i] = now_ms() - t0;
        snprintf(line, sizeof(line), "runc --root %s run --bundle %s rio-%d < %s | cmp -s - %s", runc_root, bundle, i,
                 data, data);
        t0 = now_ms();
        bad |= run_sh(line);
        r[i] = now_ms() - t0;
    }
    for (int i = 0; i < PODMAN_RUNS && podman; i++) {
        snprintf(line, sizeof(line),
                 "podman run -i --rm --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs %s cat < %s | "
                 "cmp -s - %s",
                 rootfs, data, data);
        double t0 = now_ms();
        podman = run_sh(line) == 0;
        p[i] = now_ms() - t0;
    }
    double dm = median(d, RUNS), rm = median(r, RUNS);
    printf("an attached run, a fresh container each, 5 MiB through its own cat, median of %d (podman: %d)\n", RUNS,
           PODMAN_RUNS);
    printf("  duet run -i --rm %7.2f ms; runc run %7.2f ms: duet/runc %.2f", dm, rm, dm / rm);
    if (podman)
        printf("; podman run -i --rm %7.2f ms: duet/podman %.2f", median(p, PODMAN_RUNS), dm / median(p, PODMAN_RUNS));
    printf("\n");
    if (!podman)
        printf("  podman run -i: failed or not installed (make bench installs it)\n");
    if (bad)
        fprintf(stderr, "bench: an attached run failed or its output came back changed\n");
    return bad || !podman ? -1 : 0;
}

int main(void)
{
    const char *build = getenv("DUET_BUILD"), *rootfs = getenv("DUET_ROOTFS"), *init = getenv("DUET_INIT");
    if (!build || !rootfs || !init) {
        fprintf(stderr, "bench: set DUET_BUILD, DUET_ROOTFS and DUET_INIT (make bench does)\n");
        return 2;
    }
    char dir[] = "/tmp/duet-bench-d-XXXXXX", bundle[] = "/tmp/duet-bench-runc-XXXXXX",
         runc_root[] = "/tmp/duet-bench-runc-root-XXXXXX";
    if (!mkdtemp(dir) || !mkdtemp(bundle) || !mkdtemp(runc_root))
        return 2;
    if (runc_bundle(bundle, rootfs) < 0) {
        fprintf(stderr, "bench: cannot make a runc bundle (is runc installed?)\n");
        return 2;
    }
    char sock[256], state[256], duetd[512], duet[512];
    snprintf(sock, sizeof(sock), "%s/duet.sock", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(duetd, sizeof(duetd), "%s/duetd", build);
    snprintf(duet, sizeof(duet), "%s/duet", build);
    /* A bridge and subnet of the benchmark's own, beside any duetd of the host's. */
    const char *start[] = {duetd, "--state-dir", state, "--socket", sock, "--bridge", "duetbench0", "--subnet",
                           "10.87.0.0/16", NULL};
    if (run_argv(start, false) != 0) {
        fprintf(stderr, "bench: duetd did not start\n");
        return 2;
    }
    char pidfile[300];
    snprintf(pidfile, sizeof(pidfile), "%s/duetd.pid", state);
    FILE *pf = fopen(pidfile, "r");
    int dpid = 0;
    if (!pf || fscanf(pf, "%d", &dpid) != 1)
        return 2;
    fclose(pf);
    setenv("DUET_SOCKET", sock, 1);
    int rc = 0;

    /* 1. one-shot, alternated with runc and the runtime's own cycle */
    char ctstate[300];
    snprintf(ctstate, sizeof(ctstate), "%s/cycle", dir);
    mkdir(ctstate, 0700);
    struct rt_cycle cyc;
    if (rt_cycle_init(&cyc, ctstate, init, rootfs) < 0)
        return 2;
    double d1[RUNS], r1[RUNS], n1[RUNS], c1[RUNS];
    const char *one[] = {duet, "run", "--rm", "--rootfs", rootfs, "--", "/bin/true", NULL};
    const char *bare[] = {duet, "run", "--rm", "--network", "none", "--rootfs", rootfs, "--", "/bin/true", NULL};
    for (int i = 0; i < 3; i++) {
        run_argv(one, true);   /* warm: caches, the first cgroups, the layer template */
        run_argv(bare, true);
        rt_cycle_once(&cyc);
    }
    for (int i = 0; i < RUNS; i++) {
        double t0 = now_ms();
        int s = run_argv(one, true);
        d1[i] = now_ms() - t0;
        if (s != 0) {
            fprintf(stderr, "bench: duet run exited %d\n", s);
            rc = 1;
        }
        t0 = now_ms();
        s = run_argv(bare, true);
        n1[i] = now_ms() - t0;
        if (s != 0) {
            fprintf(stderr, "bench: duet run --network none exited %d\n", s);
            rc = 1;
        }
        if ((c1[i] = rt_cycle_once(&cyc)) < 0)
            rc = 1;
        char id[32];
        snprintf(id, sizeof(id), "bench-%d", i);
        const char *runc[] = {"runc", "--root", runc_root, "run", "--bundle", bundle, id, NULL};
        t0 = now_ms();
        s = run_argv(runc, true);
        r1[i] = now_ms() - t0;
        if (s != 0) {
            fprintf(stderr, "bench: runc run exited %d\n", s);
            rc = 1;
        }
    }
    /* podman, slower by far: fewer runs, after the others */
    double p1[PODMAN_RUNS];
    /* podman asks its runtime for 1048576 open files by default, which a
     * host without CAP_SYS_RESOURCE in its bounding set (a container of
     * its own) refuses: limits below the host's are always allowed. */
    const char *podman[] = {"podman", "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                            "--rootfs", rootfs, "/bin/true", NULL};
    bool have_podman = run_argv(podman, true) == 0;   /* warm, and installed? */
    for (int i = 0; i < PODMAN_RUNS && have_podman; i++) {
        double t0 = now_ms();
        if (run_argv(podman, true) != 0)
            have_podman = false;
        p1[i] = now_ms() - t0;
    }
    double dm = median(d1, RUNS), rm = median(r1, RUNS), nm = median(n1, RUNS), cm = median(c1, RUNS);
    printf("duetd one-shot: duet run --rm -- /bin/true, CLI to exit status, median of %d\n", RUNS);
    printf("  duet run                        %7.2f ms\n", dm);
    printf("  runc run (reference, same run)  %7.2f ms\n", rm);
    printf("  ratio duet/runc: %.3f   [bar: < 0.30]\n", dm / rm);
    if (dm / rm >= 0.30)
        rc = 1;
    if (have_podman) {
        double pm = median(p1, PODMAN_RUNS);
        printf("  podman run --rm --rootfs (reference, same run, median of %d)  %7.2f ms: duet/podman %.3f\n",
               PODMAN_RUNS, pm, dm / pm);
    } else {
        printf("  podman run --rm --rootfs: failed or not installed (make bench installs it)\n");
        rc = 1;
    }
    printf("  the daemon's own cost: duet run --network none %7.2f ms, the runtime's cycle in-process %7.2f ms:"
           " %.2fx   [bar: < 1.4x]\n",
           nm, cm, nm / cm);
    if (nm / cm >= 1.4)
        rc = 1;

    /* 2. 500 containers in one manifest, after the runtime alone */
    double rt_down = 0, rt_up = rt_fleet_up(&cyc, rootfs, 1, false, &rt_down);
    double rt_down2 = 0, rt_up2 = rt_fleet_up(&cyc, rootfs, 2, false, &rt_down2);
    double rt_down3 = 0, rt_up3 = rt_fleet_up(&cyc, rootfs, 2, true, &rt_down3);
    if (rt_up < 0 || rt_up2 < 0 || rt_up3 < 0)
        rc = 1;
    char manifest[300];
    snprintf(manifest, sizeof(manifest), "%s/fleet.yaml", dir);
    FILE *m = fopen(manifest, "w");
    for (int i = 0; i < FLEET; i++)
        fprintf(m,
                "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: s%03d}\nspec:\n  placement: container\n"
                "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 8Mi, cpus: 0.01}\n",
                i, rootfs);
    fclose(m);
    long rss0 = rss_kib(dpid);
    double t0 = now_ms();
    const char *apply[] = {duet, "apply", "-f", manifest, NULL};
    if (run_argv(apply, true) != 0) {
        fprintf(stderr, "bench: duet apply failed\n");
        rc = 1;
    }
    int running = 0;
    while ((running = running_count(sock)) < FLEET && now_ms() - t0 < 120000)
        usleep(50000);
    double up = now_ms() - t0;
    usleep(500000);
    long rss = rss_kib(dpid);
    printf("duetd: apply %d sleeping containers in one manifest (each with its veth on the fleet bridge)\n", FLEET);
    printf("  all %d running after      %7.0f ms   [bar: < 8000]\n", running, up);
    printf("  the runtime alone, one thread, no network: %d started in %.0f ms (%.1f ms each), destroyed in %.0f ms\n",
           FLEET, rt_up, rt_up / FLEET, rt_down);
    printf("  the runtime alone, two threads: %d started in %.0f ms (the kernel's floor here: what it lets run at once)\n",
           FLEET, rt_up2);
    printf("  the runtime alone, two threads, each with its veth on a bridge as duetd gives it: %d started in %.0f ms"
           " (the floor of what duetd does: duetd/this %.2fx)\n",
           FLEET, rt_up3, up / rt_up3);
    printf("  duetd resident memory      %7.1f MiB with %d running (%.1f MiB idle before)   [bar: < 32]\n",
           (double)rss / 1024, running, (double)rss0 / 1024);
    if (running < FLEET || up >= 8000 || rss >= 32 * 1024)
        rc = 1;

    /* 3. get -o json with 500 */
    double g[RUNS];
    const char *get[] = {duet, "get", "-o", "json", NULL};
    for (int i = 0; i < RUNS; i++) {
        double t = now_ms();
        run_argv(get, true);
        g[i] = now_ms() - t;
    }
    double gm = median(g, RUNS);
    /* the floor under it: starting the CLI at all (exec, the loader) */
    const char *version[] = {duet, "--version", NULL};
    for (int i = 0; i < RUNS; i++) {
        double t = now_ms();
        run_argv(version, true);
        g[i] = now_ms() - t;
    }
    printf("  duet get -o json, %d workloads: %.2f ms median of %d   [bar: < 10]; duet --version alone %.2f ms\n",
           FLEET, gm, RUNS, median(g, RUNS));
    if (gm >= 10)
        rc = 1;

    /* 3b. a Prometheus scrape with 500: every container's cgroup read
     * then and there; against GET /v1/workloads (the daemon's state, no
     * figures) in the same run */
    double sc[RUNS], wl[RUNS];
    size_t scrape_len = 0;
    for (int i = 0; i < RUNS; i++) {
        struct client_buf b = {0};
        struct duet_err err = {0};
        double t = now_ms();
        int st = client_call_buf(sock, "GET", "/metrics", NULL, 0, &b, 10000, &err);
        sc[i] = now_ms() - t;
        if (st != 200)
            rc = 1;
        scrape_len = b.len;
        free(b.data);
        memset(&b, 0, sizeof(b));
        t = now_ms();
        client_call_buf(sock, "GET", "/v1/workloads", NULL, 0, &b, 10000, &err);
        wl[i] = now_ms() - t;
        free(b.data);
    }
    double scm = median(sc, RUNS), wlm = median(wl, RUNS);
    printf("  GET /metrics, %d workloads (%zu KiB): %.2f ms median of %d   [bar: < 20]; GET /v1/workloads %.2f ms"
           " (%.2fx)\n",
           FLEET, scrape_len / 1024, scm, RUNS, wlm, scm / wlm);
    if (scm >= 20)
        rc = 1;

    /* 5. exec, while the 500 still run (a daemon with a fleet to mind) */
    if (bench_exec(dir, duet, rootfs, runc_root) < 0)
        rc = 1;
    if (bench_run_io(dir, duet, rootfs, runc_root) < 0)
        rc = 1;

    /* tear down */
    const char *del[] = {duet, "delete", "-f", manifest, "--wait", NULL};
    t0 = now_ms();
    run_argv(del, true);
    double gone = now_ms() - t0;
    printf("  delete all %d (--wait): %.0f ms   [bar: < 4000]\n", FLEET, gone);
    if (gone >= 4000)
        rc = 1;
    manifest_set_free(cyc.set);
    container_runtime_fini(&cyc.rt);
    kill(dpid, SIGTERM);
    for (int i = 0; i < 100 && kill(dpid, 0) == 0; i++)
        usleep(50000);
    duet_remove_tree(dir, NULL);
    duet_remove_tree(bundle, NULL);
    duet_remove_tree(runc_root, NULL);
    return rc;
}
