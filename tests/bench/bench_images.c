/*
 * bench_images.c - OCI images, against the tools people use, in the same
 * run:
 *
 *   1. pull + unpack of a ~100 MiB image of 5 layers from a registry on
 *      127.0.0.1 (Debian's docker-registry, started here): duet's store
 *      (into an empty store each time) against `skopeo copy docker://...
 *      oci:...` followed by `umoci unpack`, and against `podman pull`;
 *      medians of RUNS, alternated; bars: at most 1.0x skopeo+umoci and
 *      0.5x podman;
 *   2. a container's start-to-exit from the image's root (an overlay of
 *      its two layers) against the same from the rootfs directory it was
 *      made of, median of 100 each, alternated; bar: within 2 ms.
 *
 * The image is made once, in build/bench/big-oci: the busybox layout's
 * base layer and four layers of 25 MiB that do not compress.
 * Exits 1 when a figure is outside its bar.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/container/runtime.h"
#include "bench_util.h"
#include "common/fsutil.h"
#include "images/store.h"

#define RUNS 5
#define START_RUNS 100

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* build/bench/big-oci:1, made once. */
static int make_big(const char *build, const char *oci, char *out, size_t len)
{
    snprintf(out, len, "%s/bench/big-oci", build);
    char idx[600];
    snprintf(idx, sizeof(idx), "%s/index.json", out);
    if (access(idx, F_OK) == 0)
        return 0;
    fprintf(stderr, "bench: making a 5-layer image of ~100 MiB in %s (once)\n", out);
    return sh("set -e; rm -rf %s %s.b; mkdir -p %s; cp -a %s/. %s/; umoci tag --image %s:base 1; "
              "for i in 1 2 3 4; do umoci unpack --image %s:1 %s.b >/dev/null; "
              "head -c 26214400 /dev/urandom > %s.b/rootfs/data$i; umoci repack --image %s:1 %s.b; rm -rf %s.b; done; "
              "umoci gc --layout %s",
              out, out, out, oci, out, out, out, out, out, out, out, out, out);
}

static int dir_size_mib(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "du -sm %s | cut -f1", dir);
    FILE *p = popen(cmd, "r");
    int mib = 0;
    if (p && fscanf(p, "%d", &mib) != 1)
        mib = 0;
    if (p)
        pclose(p);
    return mib;
}

int main(void)
{
    const char *build = getenv("DUET_BUILD"), *oci = getenv("DUET_OCI"), *rootfs = getenv("DUET_ROOTFS"),
               *init = getenv("DUET_INIT");
    if (!build || !oci || !rootfs || !init) {
        fprintf(stderr, "bench: set DUET_BUILD, DUET_OCI, DUET_ROOTFS and DUET_INIT (make bench does)\n");
        return 2;
    }
    char big[512];
    if (make_big(build, oci, big, sizeof(big)) != 0) {
        fprintf(stderr, "bench: cannot make the image (umoci installed?)\n");
        return 2;
    }
    char dir[] = "/tmp/duet-bench-img-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    /* the registry */
    unsigned port = 30000 + (unsigned)getpid() % 20000;
    char cfg[600];
    snprintf(cfg, sizeof(cfg), "%s/registry.yml", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s/registry}\n"
               "http: {addr: \"127.0.0.1:%u\"}\n",
            dir, port);
    fclose(f);
    pid_t reg = fork();
    if (reg == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
        _exit(127);
    }
    usleep(500000);
    char ref[128];
    snprintf(ref, sizeof(ref), "127.0.0.1:%u/bench/big:1", port);
    int rc = 0;
    if (sh("skopeo copy -q --dest-tls-verify=false oci:%s:1 docker://%s", big, ref) != 0) {
        fprintf(stderr, "bench: cannot push the image to the registry (docker-registry, skopeo installed?)\n");
        kill(reg, SIGTERM);
        return 2;
    }
    bool have_podman = sh("command -v podman >/dev/null") == 0;
    double d[RUNS], s[RUNS], p[RUNS];
    int mib = 0;
    for (int i = 0; i < RUNS; i++) {
        char store_dir[600];
        snprintf(store_dir, sizeof(store_dir), "%s/store%d", dir, i);
        struct duet_err err = {0};
        double t0 = now_ms();
        struct image_store *st = image_store_open(store_dir, NULL, &err);
        struct image *img = NULL;
        if (!st || image_store_import(st, ref, &img, &err) < 0) {
            fprintf(stderr, "bench: duet's pull: %s\n", err.msg);
            rc = 1;
        }
        d[i] = now_ms() - t0;
        if (i == 0)
            mib = dir_size_mib(store_dir);
        image_free(img);
        image_store_free(st);
        duet_remove_tree(store_dir, NULL);
        t0 = now_ms();
        if (sh("skopeo copy -q --src-tls-verify=false docker://%s oci:%s/sk:1 && umoci unpack --image %s/sk:1 %s/bundle "
               ">/dev/null",
               ref, dir, dir, dir) != 0)
            rc = 1;
        s[i] = now_ms() - t0;
        sh("rm -rf %s/sk %s/bundle", dir, dir);
        if (have_podman) {
            t0 = now_ms();
            if (sh("podman pull -q --tls-verify=false %s >/dev/null", ref) != 0)
                have_podman = false;
            p[i] = now_ms() - t0;
            sh("podman rmi -f %s >/dev/null 2>&1", ref);
        }
    }
    double dm = median(d, RUNS), sm = median(s, RUNS);
    printf("images: pull + unpack of a 5-layer image (%d MiB unpacked) from a registry on 127.0.0.1, median of %d\n",
           mib, RUNS);
    printf("  duet's store                       %8.0f ms\n", dm);
    printf("  skopeo copy + umoci unpack         %8.0f ms   duet/that %.2f   [bar: <= 1.0]\n", sm, dm / sm);
    if (dm > sm)
        rc = 1;
    if (have_podman) {
        double pm = median(p, RUNS);
        printf("  podman pull                        %8.0f ms   duet/that %.2f   [bar: <= 0.5]\n", pm, dm / pm);
        if (dm > 0.5 * pm)
            rc = 1;
    } else {
        printf("  podman pull: failed or not installed (make bench installs it)\n");
        rc = 1;
    }
    kill(reg, SIGTERM);
    waitpid(reg, NULL, 0);

    /* 2. start from an image's root against the rootfs directory */
    char state[600], store_dir[600], root[4096], layout_ref[600];
    snprintf(state, sizeof(state), "%s/ct", dir);
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    snprintf(layout_ref, sizeof(layout_ref), "oci-layout:%s:latest", oci);
    mkdir(state, 0700);
    struct duet_err err = {0};
    struct image_store *st = image_store_open(store_dir, NULL, &err);
    struct image *img = NULL;
    struct container_runtime rt;
    if (!st || image_store_import(st, layout_ref, &img, &err) < 0 ||
        image_store_root(st, img, root, sizeof(root), &err) < 0 || container_runtime_init(&rt, state, init, NULL, &err) < 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    const char *roots[2] = {rootfs, root};
    struct manifest_set *sets[2];
    for (int k = 0; k < 2; k++) {
        char yaml[5000];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: start%d}\n"
                 "spec: {image: {rootfs: %s}, command: [/bin/true], network: none}\n",
                 k, roots[k]);
        sets[k] = manifest_set_new();
        manifest_set_load_buffer(sets[k], "start.yaml", yaml, strlen(yaml));
        manifest_set_validate(sets[k]);
    }
    double t[2][START_RUNS];
    for (int i = 0; i < START_RUNS + 3; i++)
        for (int k = 0; k < 2; k++) {
            struct container_config cc = {.spec = sets[k]->workloads[0]};
            struct container *c;
            struct container_exit ex;
            double t0 = now_ms();
            if (container_prepare(&rt, &cc, &c, &err) < 0 || container_start(c, &cc, &err) < 0 ||
                container_wait(c, -1, &ex, &err) != 1 || container_destroy(c, &err) < 0) {
                fprintf(stderr, "bench: start from %s: %s\n", roots[k], err.msg);
                return 1;
            }
            if (i >= 3)
                t[k][i - 3] = now_ms() - t0;
        }
    double tr = median(t[0], START_RUNS), ti = median(t[1], START_RUNS);
    printf("  a container's whole cycle from the image's root (2 layers, an overlay) %.2f ms, from the rootfs "
           "directory %.2f ms: %+.2f ms   [bar: within 2 ms]\n",
           ti, tr, ti - tr);
    if (ti - tr > 2.0)
        rc = 1;
    for (int k = 0; k < 2; k++)
        manifest_set_free(sets[k]);
    container_runtime_fini(&rt);
    image_free(img);
    image_store_unmount_all(st);
    image_store_free(st);
    duet_remove_tree(dir, NULL);
    return rc;
}
