/*
 * bench_plan - validate and plan a generated fleet of 10,000 workloads.
 *
 * Figures: the `duet plan` and `duet validate` binaries end to end (wall
 * time, median of RUNS, and peak RSS from wait4), and in-process the whole
 * load+validate+plan path against a bare libyaml event parse of the same
 * file, measured in the same run: the ratio says what duet adds on top of
 * reading the YAML at all.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include <yaml.h>

#include "manifests/manifest.h"
#include "scheduler/placement.h"

#define FLEET 10000
#define RUNS 9

/* A fleet that exercises every rule: roles, isolation, needs, images,
 * dependsOn chains and fans, health checks, ports and volumes. */
static void write_fleet(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "apiVersion: duet/v1\nkind: Host\nmetadata: {name: big}\nspec:\n  cpus: 512\n  memory: 4Ti\n"
               "  reserve: {cpus: 2, memory: 8Gi}\n  overcommit: {cpu: 16.0, memory: 1.5}\n"
               "  backends: {vm: {available: true, kvm: true}, container: {available: true}}\n");
    for (int i = 0; i < FLEET; i++) {
        int kind = i % 10;
        fprintf(f, "---\napiVersion: duet/v1\nkind: Workload\nmetadata:\n  name: w%05d\n  labels: {tier: t%d, app: a%d}\n"
                   "spec:\n",
                i, i % 7, i % 100);
        fprintf(f, "  role: %s\n", kind < 3 ? "infrastructure" : "app");
        if (kind == 1)
            fprintf(f, "  isolation: strong\n");
        if (kind == 2)
            fprintf(f, "  image:\n    disk: /srv/images/disk%d.qcow2\n", i % 5);
        else
            fprintf(f, "  image:\n    rootfs: /srv/images/alpine\n"
                       "  command: [\"/bin/sh\", \"-c\", \"exec httpd -f -p 8080\"]\n"
                       "  env: {MODE: production, INDEX: \"%d\", PEER: w%05d}\n  workingDir: /srv\n  user: \"1000:1000\"\n",
                    i, (i + 1) % FLEET);
        fprintf(f, "  resources: {cpus: %s, memory: %dMi, pids: 256}\n", kind < 3 ? "1" : "0.25", 64 + (i % 8) * 32);
        if (kind == 4)
            fprintf(f, "  needs: {startWithin: 500ms}\n");
        if (kind == 5)
            fprintf(f, "  placement: container\n");
        fprintf(f, "  restart: %s\n", i % 3 == 0 ? "always" : i % 3 == 1 ? "on-failure" : "never");
        if (i >= 10)
            fprintf(f, "  dependsOn: [w%05d, w%05d]\n", i / 10, i - 1 - (i % 7));
        fprintf(f, "  healthcheck: {tcp: 8080, interval: 5s, timeout: 1s, retries: 3}\n");
        if (i < 20000 && i % 2 == 0)
            fprintf(f, "  ports: [{host: %d, port: 8080}]\n", 10000 + i / 2);
        fprintf(f, "  volumes: [{source: /srv/data/w%05d, target: /data, readOnly: false}]\n", i);
    }
    fclose(f);
}

static double bare_parse_ms(const char *buf, size_t len)
{
    double t0 = now_ms();
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            fprintf(stderr, "bench: fleet is not YAML\n");
            exit(1);
        }
        int end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    return now_ms() - t0;
}

static double in_process_ms(const char *path)
{
    double t0 = now_ms();
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_path(set, path);
    manifest_set_validate(set);
    if (!manifest_set_ok(set)) {
        diag_print(&set->diags, stderr);
        exit(1);
    }
    struct host_info h;
    host_info_from_spec(&h, set->host);
    struct plan *pl = plan_new(set, &h);
    if (pl->n_unplaceable) {
        fprintf(stderr, "bench: %zu unplaceable\n", pl->n_unplaceable);
        exit(1);
    }
    plan_free(pl);
    manifest_set_free(set);
    return now_ms() - t0;
}

/* Runs the binary with output to /dev/null; wall ms and peak RSS in KiB. */
static double run_binary(const char *const *argv, long *rss_kib, int *status)
{
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    double ms = now_ms() - t0;
    *rss_kib = ru.ru_maxrss;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return ms;
}

int main(void)
{
    const char *duet = getenv("DUET_BIN");
    if (!duet) {
        fprintf(stderr, "bench: set DUET_BIN (make bench does)\n");
        return 2;
    }
    char path[] = "/tmp/duet-bench-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    close(fd);
    write_fleet(path);
    FILE *f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    char *buf = malloc(len);
    if (fread(buf, 1, len, f) != len)
        return 1;
    fclose(f);

    double bare[RUNS], inproc[RUNS], plan_ms[RUNS], val_ms[RUNS];
    long plan_rss = 0, val_rss = 0, rss;
    int st;
    const char *plan_argv[] = {duet, "plan", "-f", path, "-o", "json", NULL};
    const char *val_argv[] = {duet, "validate", "-q", path, NULL};
    for (int i = 0; i < RUNS; i++) {
        bare[i] = bare_parse_ms(buf, len);
        inproc[i] = in_process_ms(path);
        plan_ms[i] = run_binary(plan_argv, &rss, &st);
        if (st != 0) {
            fprintf(stderr, "bench: duet plan exited %d\n", st);
            return 1;
        }
        plan_rss = rss > plan_rss ? rss : plan_rss;
        val_ms[i] = run_binary(val_argv, &rss, &st);
        if (st != 0) {
            fprintf(stderr, "bench: duet validate exited %d\n", st);
            return 1;
        }
        val_rss = rss > val_rss ? rss : val_rss;
    }
    double b = median(bare, RUNS), ip = median(inproc, RUNS), pm = median(plan_ms, RUNS), vm = median(val_ms, RUNS);
    printf("bench plan: %d workloads, %.1f MiB of YAML, median of %d runs\n", FLEET, (double)len / (1 << 20), RUNS);
    printf("  duet plan -o json (binary)   %7.1f ms   peak RSS %5.1f MiB   [bar: < 200 ms, < 64 MiB]\n", pm,
           (double)plan_rss / 1024);
    printf("  duet validate (binary)       %7.1f ms   peak RSS %5.1f MiB\n", vm, (double)val_rss / 1024);
    printf("  load+validate+plan (in-proc) %7.1f ms\n", ip);
    printf("  reference: bare libyaml parse of the same file %7.1f ms\n", b);
    printf("  ratio load+validate+plan / bare parse: %.2f\n", ip / b);
    int ok = pm < 200 && plan_rss < 64 * 1024;
    printf("  %s\n", ok ? "within the bars" : "OUTSIDE THE BARS");
    unlink(path);
    free(buf);
    return ok ? 0 : 1;
}
