/*
 * bench_compare.c - duet compare of the example web workload, end to end,
 * through a duetd of the benchmark's own (VMs under emulation, as in the
 * tests: tests/vm/no_kvm.c hides /dev/kvm in this process's mount
 * namespace, which duetd inherits).
 *
 * Prints the figures compare measured (the reference each side is for
 * the other: a container and a VM of the same spec, in the same run), the
 * compare's wall time split into what it waits for by design (starts,
 * idle, probe) and the rest (removals, the daemon's own steps), and
 * duetd's resident memory before, at its peak during, and after.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_util.h"

struct sampler {
    pid_t pid;
    atomic_bool stop;
    long peak;
};

static void *sample(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        long k = rss_kib(s->pid);
        if (k > s->peak)
            s->peak = k;
        usleep(100000);
    }
    return NULL;
}

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : -1;
}

int main(void)
{
    const char *build = getenv("DUET_BUILD"), *src = getenv("DUET_SRC"), *kernel = getenv("DUET_GUEST_KERNEL");
    if (!build || !src || !kernel) {
        fprintf(stderr, "bench compare: run through make bench (DUET_BUILD, DUET_SRC, DUET_GUEST_KERNEL)\n");
        return 2;
    }
    char dir[] = "/tmp/duet-bench-cmp-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char sock[300], state[300], duetd[512], duet[512], cmd[2048], pidfile[400];
    snprintf(sock, sizeof(sock), "%s/duet.sock", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(duetd, sizeof(duetd), "%s/duetd", build);
    snprintf(duet, sizeof(duet), "%s/duet", build);
    snprintf(cmd, sizeof(cmd), "%s --state-dir %s --socket %s --bridge duetcmp0 --subnet 10.86.0.0/16 --guest-kernel %s",
             duetd, state, sock, kernel);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench compare: duetd did not start (its log: %s/duetd.log)\n", state);
        return 2;
    }
    snprintf(pidfile, sizeof(pidfile), "%s/duetd.pid", state);
    FILE *pf = fopen(pidfile, "r");
    int dpid = 0;
    if (!pf || fscanf(pf, "%d", &dpid) != 1)
        return 2;
    fclose(pf);
    usleep(500000);
    long before = rss_kib(dpid);
    struct sampler smp = {.pid = dpid, .peak = before};
    pthread_t t;
    pthread_create(&t, NULL, sample, &smp);
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s compare -f %s/manifests/examples --workload web --http / -o json",
             sock, duet, src);
    double t0 = now_ms();
    FILE *p = popen(cmd, "r");
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[8192];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, m);
    int status = p ? pclose(p) : -1;
    fclose(m);
    double wall = now_ms() - t0;
    atomic_store(&smp.stop, true);
    pthread_join(t, NULL);
    usleep(2000000);
    long after = rss_kib(dpid);
    kill(dpid, SIGTERM);
    for (int i = 0; i < 100 && kill(dpid, 0) == 0; i++)
        usleep(100000);

    json_t *r = json_loads(out ? out : "", 0, NULL);
    int rc = 0;
    if (status != 0 || !r) {
        fprintf(stderr, "bench compare: duet compare failed (%d): %s\n", status, out ? out : "");
        rc = 1;
    }
    json_t *c = json_object_get(json_object_get(r, "sides"), "container");
    json_t *v = json_object_get(json_object_get(r, "sides"), "vm");
    double cs = num(c, "start_ms", "median"), vs = num(v, "start_ms", "median");
    double cm = num(c, "memory_idle_bytes", NULL) / 1048576.0, vmm = num(v, "memory_idle_bytes", NULL) / 1048576.0;
    double crps = num(c, "probe", "per_second"), vrps = num(v, "probe", "per_second");
    printf("duet compare -f manifests/examples --workload web --http / (3 runs each, 10 s idle, 5 s of HTTP at 4)\n");
    printf("  start to ready, median of 3  container %8.1f ms   vm %8.1f ms   vm/container %.1f\n", cs, vs,
           cs > 0 ? vs / cs : 0);
    printf("  memory at idle               container %8.1f MiB  vm %8.1f MiB  vm/container %.1f\n", cm, vmm,
           cm > 0 ? vmm / cm : 0);
    printf("  CPU while idle               container %8.2f %%    vm %8.2f %%\n", num(c, "cpu_idle_percent", NULL),
           num(v, "cpu_idle_percent", NULL));
    printf("  HTTP requests/s              container %8.1f      vm %8.1f      container/vm %.1f\n", crps, vrps,
           vrps > 0 ? crps / vrps : 0);
    printf("  HTTP latency p50/p99         container %.2f/%.2f ms   vm %.2f/%.2f ms\n", num(c, "probe", "p50_ms"),
           num(c, "probe", "p99_ms"), num(v, "probe", "p50_ms"), num(v, "probe", "p99_ms"));
    /* What compare waits for by design: every start it measures, the idle
     * time, the two probes; the rest is its own. */
    double starts = 0;
    for (int s = 0; s < 2; s++) {
        json_t *runs = json_object_get(json_object_get(s ? v : c, "start_ms"), "runs");
        size_t i;
        json_t *x;
        json_array_foreach(runs, i, x) starts += json_number_value(x);
    }
    double idle = num(r, "idle_ms", NULL), probes = 2 * num(json_object_get(r, "probe"), "duration_ms", NULL);
    printf("  end to end %.1f s: starts %.1f s, idle %.1f s, probes %.1f s, the rest %.1f s (removals, deletes\n"
           "    between runs, idle samples of the VM every 5 s, the daemon's steps)\n",
           wall / 1000, starts / 1000, idle / 1000, probes / 1000, (wall - starts - idle - probes) / 1000);
    printf("  duetd resident memory: %.1f MiB before, %.1f MiB at its peak during, %.1f MiB after\n", before / 1024.0,
           smp.peak / 1024.0, after / 1024.0);
    printf("  verdict: %s\n", json_string_value(json_object_get(json_object_get(r, "verdict"), "text")));
    json_decref(r);
    free(out);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
