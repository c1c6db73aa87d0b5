/*
 * bench_volume.c - one named volume's throughput in a container and in a
 * VM (virtiofs; here under emulation), side by side, through duetd.
 *
 * Each workload writes 256 MiB into its sized named volume (dd, 1 MiB
 * blocks, fsync at the end) and reads it back, RUNS times; busybox time
 * measures each inside the workload (the guest's clock in the VM, which
 * follows the host's).  The read comes after the write, so it finds what
 * the caches kept, on both sides alike.  No bar: the figures say what a
 * volume costs a VM here, and what sets its floor (every read and write
 * a FUSE request through virtiofsd, and under emulation the guest's side
 * of each one interpreted).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define RUNS 5
#define MIB 256

static char duet[512];

/* A command's whole output (malloc'd), its exit status in *rc. */
static char *run_out(const char *cmd, int *rc)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        *rc = -1;
        return strdup("");
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(p)) != EOF)
        fputc(c, o);
    fclose(o);
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* busybox time's "real\t0m 1.23s" lines, in order, as seconds. */
static int parse_times(const char *log, double *out, int max)
{
    int n = 0;
    for (const char *p = log; n < max && (p = strstr(p, "real")); p += 4) {
        unsigned m;
        double s;
        if (sscanf(p + 4, " %um %lfs", &m, &s) == 2)
            out[n++] = m * 60.0 + s;
    }
    return n;
}

/* Runs the workload as `placement` and fills write and read MiB/s. */
static int measure(const char *dir, const char *placement, double *wr, double *rd)
{
    char yaml[PATH_MAX + 64], cmd[PATH_MAX * 2];
    snprintf(yaml, sizeof(yaml), "%s/io-%s.yaml", dir, placement);
    FILE *f = fopen(yaml, "we");
    if (!f)
        return -1;
    fprintf(f,
            "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: io-%s}\nspec:\n  placement: %s\n"
            "  image: {rootfs: %s}\n  resources: {memory: 256Mi, cpus: 1}\n  restart: never\n  network: none\n"
            "  volumes: [{name: bench-%s, size: 1Gi, target: /v}]\n"
            "  command: [/bin/sh, -c, \"for i in $(seq %d); do rm -f /v/f; sync; "
            "time dd if=/dev/zero of=/v/f bs=1M count=%d conv=fsync; "
            "time dd if=/v/f of=/dev/null bs=1M; done; echo bench-done\"]\n",
            placement, placement, getenv("DUET_ROOTFS"), placement, RUNS, MIB);
    fclose(f);
    int rc;
    snprintf(cmd, sizeof(cmd), "%s apply -f %s 2>&1", duet, yaml);
    free(run_out(cmd, &rc));
    if (rc != 0)
        return -1;
    double t0 = now_ms();
    char *log = NULL;
    for (;;) {
        snprintf(cmd, sizeof(cmd), "%s logs io-%s 2>&1", duet, placement);
        free(log);
        log = run_out(cmd, &rc);
        if (strstr(log, "bench-done") || now_ms() - t0 > 1200000)
            break;
        usleep(500000);
    }
    double t[2 * RUNS];
    int n = parse_times(log, t, 2 * RUNS);
    if (n != 2 * RUNS)
        fprintf(stderr, "bench volume: %s: %d timings of %d in:\n%s\n", placement, n, 2 * RUNS, log);
    free(log);
    for (int i = 0; i < RUNS && n == 2 * RUNS; i++) {
        wr[i] = MIB / t[2 * i];
        rd[i] = MIB / t[2 * i + 1];
        fprintf(stderr, "  %s run %d: write %.1f MiB/s, read %.1f MiB/s\n", placement, i, wr[i], rd[i]);
    }
    /* gone with its volume, whatever the figures: nothing stays mounted */
    snprintf(cmd, sizeof(cmd), "%s delete io-%s --volumes --wait 2>&1", duet, placement);
    free(run_out(cmd, &rc));
    return rc == 0 && n == 2 * RUNS ? 0 : -1;
}

int main(void)
{
    const char *build = getenv("DUET_BUILD"), *kernel = getenv("DUET_GUEST_KERNEL");
    if (!build || !kernel || !getenv("DUET_ROOTFS")) {
        fprintf(stderr, "bench volume: run through make bench (DUET_BUILD, DUET_ROOTFS, DUET_GUEST_KERNEL)\n");
        return 2;
    }
    char dir[] = "/tmp/duet-bench-vol-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char sock[256], state[256], duetd[512], cmd[2048];
    snprintf(sock, sizeof(sock), "%s/duet.sock", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(duetd, sizeof(duetd), "%s/duetd", build);
    snprintf(duet, sizeof(duet), "%s/duet --socket %s", build, sock);
    snprintf(cmd, sizeof(cmd), "%s --state-dir %s --socket %s --guest-kernel %s --bridge duetbenchv0 --subnet "
             "10.86.0.0/16 2>&1", duetd, state, sock, kernel);
    int rc;
    char *out = run_out(cmd, &rc);
    if (rc != 0) {
        fprintf(stderr, "bench volume: duetd did not start: %s\n", out);
        free(out);
        return 2;
    }
    free(out);
    double cw[RUNS], cr[RUNS], vw[RUNS], vr[RUNS];
    int failed = measure(dir, "container", cw, cr) < 0 || measure(dir, "vm", vw, vr) < 0;
    char pidfile[300];
    snprintf(pidfile, sizeof(pidfile), "%s/duetd.pid", state);
    FILE *pf = fopen(pidfile, "re");
    int dpid = 0;
    if (pf && fscanf(pf, "%d", &dpid) == 1 && dpid > 0) {
        kill(dpid, SIGTERM);
        for (int i = 0; i < 100 && kill(dpid, 0) == 0; i++)
            usleep(100000);
    }
    if (pf)
        fclose(pf);
    snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", dir);
    if (!getenv("DUET_BENCH_KEEP"))
        free(run_out(cmd, &rc));
    if (failed)
        return 2;
    double mcw = median(cw, RUNS), mcr = median(cr, RUNS), mvw = median(vw, RUNS), mvr = median(vr, RUNS);
    printf("bench volume: a sized named volume (1 GiB, ext4 on a loop device), dd of %d MiB in 1 MiB blocks "
           "(write with fsync, then read), median of %d\n",
           MIB, RUNS);
    printf("  container                      write %8.1f MiB/s   read %8.1f MiB/s\n", mcw, mcr);
    printf("  VM, virtiofs (emulation here)  write %8.1f MiB/s   read %8.1f MiB/s   (%.3f and %.3f of the "
           "container)\n",
           mvw, mvr, mvw / mcw, mvr / mcr);
    return 0;
}
