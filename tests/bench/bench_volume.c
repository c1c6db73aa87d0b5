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
 *
 * Then a backup: a VM whose kept disk is 1 GiB with 100 MiB written (half
 * random, half text, written into its qcow2 by qemu-io), backed up with
 * duet backup and, as the reference, with qemu-img convert -O qcow2 -c
 * (both make the disk stand alone: the rootfs' base is duet's own), time
 * and size, median of BK_RUNS; and its restore.
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
#define BK_RUNS 3

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

/* Runs cmd every half second until its output holds want or timeout_ms
 * pass; its last output (malloc'd). */
static char *poll_output(const char *cmd, const char *want, double timeout_ms)
{
    double t0 = now_ms();
    for (;;) {
        int rc;
        char *out = run_out(cmd, &rc);
        if (strstr(out, want) || now_ms() - t0 > timeout_ms)
            return out;
        free(out);
        usleep(500000);
    }
}

/* Writes the manifest into dir/file and applies it; 0 when applied. */
static int apply_manifest(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX + 64], cmd[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    int rc;
    snprintf(cmd, sizeof(cmd), "%s apply -f %s 2>&1", duet, path);
    free(run_out(cmd, &rc));
    return rc == 0 ? 0 : -1;
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
    char yaml[2048], cmd[PATH_MAX * 2], file[64];
    snprintf(file, sizeof(file), "io-%s.yaml", placement);
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: io-%s}\nspec:\n  placement: %s\n"
             "  image: {rootfs: %s}\n  resources: {memory: 256Mi, cpus: 1}\n  restart: never\n  network: none\n"
             "  volumes: [{name: bench-%s, size: 1Gi, target: /v}]\n"
             "  command: [/bin/sh, -c, \"for i in $(seq %d); do rm -f /v/f; sync; "
             "time dd if=/dev/zero of=/v/f bs=1M count=%d conv=fsync; "
             "time dd if=/v/f of=/dev/null bs=1M; done; echo bench-done\"]\n",
             placement, placement, getenv("DUET_ROOTFS"), placement, RUNS, MIB);
    if (apply_manifest(dir, file, yaml) < 0)
        return -1;
    int rc;
    snprintf(cmd, sizeof(cmd), "%s logs io-%s 2>&1", duet, placement);
    char *log = poll_output(cmd, "bench-done", 1200000);
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

static double file_mib(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1 << 20) : -1;
}

/* Times `cmd` (which must exit 0), in seconds, or -1. */
static double timed(const char *cmd)
{
    int rc;
    double t0 = now_ms();
    char *out = run_out(cmd, &rc);
    double t = (now_ms() - t0) / 1000;
    if (rc != 0)
        fprintf(stderr, "bench backup: %s failed: %s\n", cmd, out);
    free(out);
    return rc == 0 ? t : -1;
}

struct bk_figures {
    double duet_s, duet_mib, ref_s, ref_mib, restore_s;
};

static int measure_backup(const char *dir, const char *state, struct bk_figures *fig)
{
    char yaml[2048], cmd[PATH_MAX * 5], disk[PATH_MAX], src[PATH_MAX], out[PATH_MAX];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: bk-vm}\nspec:\n  placement: vm\n"
             "  image: {rootfs: %s}\n  resources: {memory: 128Mi, disk: 1Gi}\n  restart: never\n  network: none\n"
             "  command: [/bin/true]\n",
             getenv("DUET_ROOTFS"));
    if (apply_manifest(dir, "bk.yaml", yaml) < 0)
        return -1;
    int rc;
    snprintf(cmd, sizeof(cmd), "%s get bk-vm 2>&1", duet);
    char *o = poll_output(cmd, "completed", 600000);
    bool done = strstr(o, "completed") != NULL;
    free(o);
    if (!done)
        return -1;
    /* 100 MiB into the disk: 50 random, 50 of text */
    snprintf(disk, sizeof(disk), "%s/vm/kept/bk-vm/disk.qcow2", state);
    snprintf(src, sizeof(src), "%s/written", dir);
    snprintf(cmd, sizeof(cmd),
             "head -c 52428800 /dev/urandom > %s && yes 'duet backup bench: a line of text like a log' | head -c "
             "52428800 >> %s && qemu-io -f qcow2 %s -c 'write -q -s %s 256M 100M' 2>&1",
             src, src, disk, src);
    if (timed(cmd) < 0)
        return -1;
    double ds[BK_RUNS], rs[BK_RUNS], rt[BK_RUNS];
    for (int i = 0; i < BK_RUNS; i++) {
        snprintf(out, sizeof(out), "%s/bk-%d.tar.zst", dir, i);
        snprintf(cmd, sizeof(cmd), "%s backup bk-vm -o %s 2>&1", duet, out);
        if ((ds[i] = timed(cmd)) < 0)
            return -1;
        fig->duet_mib = file_mib(out);
        snprintf(out, sizeof(out), "%s/ref-%d.qcow2", dir, i);
        snprintf(cmd, sizeof(cmd), "qemu-img convert -O qcow2 -c %s %s 2>&1", disk, out);
        if ((rs[i] = timed(cmd)) < 0)
            return -1;
        fig->ref_mib = file_mib(out);
        unlink(out);
        snprintf(out, sizeof(out), "%s/bk-%d.tar.zst", dir, i);
        snprintf(cmd, sizeof(cmd), "%s restore %s --name bk-back 2>&1", duet, out);
        if ((rt[i] = timed(cmd)) < 0)
            return -1;
        snprintf(cmd, sizeof(cmd), "%s delete bk-back --wait 2>&1", duet);
        free(run_out(cmd, &rc));
        unlink(out);
        fprintf(stderr,
                "  backup run %d: duet %.2f s, %.1f MiB; qemu-img convert -c %.2f s, %.1f MiB; restore %.2f s\n", i,
                ds[i], fig->duet_mib, rs[i], fig->ref_mib, rt[i]);
    }
    fig->duet_s = median(ds, BK_RUNS);
    fig->ref_s = median(rs, BK_RUNS);
    fig->restore_s = median(rt, BK_RUNS);
    snprintf(cmd, sizeof(cmd), "%s delete bk-vm --wait 2>&1", duet);
    free(run_out(cmd, &rc));
    return 0;
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
    struct bk_figures bk = {0};
    int failed = measure(dir, "container", cw, cr) < 0 || measure(dir, "vm", vw, vr) < 0 ||
                 measure_backup(dir, state, &bk) < 0;
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
    printf("bench backup: a VM's 1 GiB disk with 100 MiB written (half random), median of %d\n", BK_RUNS);
    printf("  duet backup                    %6.2f s  %7.1f MiB   (%.2f of the reference's time, %.2f of its size)\n",
           bk.duet_s, bk.duet_mib, bk.duet_s / bk.ref_s, bk.duet_mib / bk.ref_mib);
    printf("  qemu-img convert -O qcow2 -c   %6.2f s  %7.1f MiB   (the reference)\n", bk.ref_s, bk.ref_mib);
    printf("  duet restore                   %6.2f s\n", bk.restore_s);
    return 0;
}
