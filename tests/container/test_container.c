/*
 * The container runtime on this host's real namespaces and cgroups, as
 * root.  DUET_INIT and DUET_ROOTFS come from the Makefile (make builds the
 * busybox rootfs, with escape_probe inside, from Debian's busybox-static).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "backends/container/layer.h"
#include "tests/vm/leftovers.h"
#include "backends/container/runtime.h"
#include "watch_report.h"

struct fixture {
    char state[64];
    struct container_runtime rt;
    struct manifest_set *set;
};

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set: run the suite with make test", name);
    return v;
}

static void fixture_init(struct fixture *f)
{
    cr_assert_eq(geteuid(), 0, "the container tests need root: run make test as root");
    snprintf(f->state, sizeof(f->state), "/tmp/duet-ct-XXXXXX");
    cr_assert_not_null(mkdtemp(f->state));
    struct duet_err err = {0};
    int rc = container_runtime_init(&f->rt, f->state, env_or_die("DUET_INIT"), NULL, &err);
    cr_assert_eq(rc, 0, "runtime: %s", err.msg);
    f->set = NULL;
}

static void fixture_fini(struct fixture *f)
{
    container_runtime_fini(&f->rt);
    cr_expect_eq(loop_devices_under(f->state, true, 2000), 0, "the runtime's spare layers outlived it");
    /* The formatted templates of writable layers, which a daemon keeps. */
    char templates[128];
    snprintf(templates, sizeof(templates), "%s/.layers", f->state);
    duet_remove_tree(templates, NULL);
    char cg[128];
    snprintf(cg, sizeof(cg), "%s/%s", f->rt.cgroup.root, f->rt.cgroup.version == 1 ? "memory" : "");
    cr_expect_not(cgroup_exists(&f->rt.cgroup, f->rt.cgroup_parent), "the runtime's cgroup parent was removed");
    manifest_set_free(f->set);
    rmdir(f->state);
}

/* A workload from YAML text: "NAME" and "ROOTFS" are substituted. */
static const struct workload_spec *spec(struct fixture *f, const char *name, const char *body)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  image: {rootfs: %s}\n%s", name,
             env_or_die("DUET_ROOTFS"), body);
    manifest_set_free(f->set);
    f->set = manifest_set_new();
    manifest_set_load_buffer(f->set, "t.yaml", yaml, strlen(yaml));
    manifest_set_validate(f->set);
    cr_assert(manifest_set_ok(f->set), "bad test manifest: %s", f->set->diags.n ? f->set->diags.v[0].msg : "");
    return f->set->workloads[0];
}

static struct container *start(struct fixture *f, const struct workload_spec *w)
{
    struct container_config cfg = {.spec = w};
    struct container *c;
    struct duet_err err = {0};
    cr_assert_eq(container_prepare(&f->rt, &cfg, &c, &err), 0, "prepare: %s", err.msg);
    if (container_start(c, &cfg, &err) < 0) {
        container_destroy(c, NULL);
        cr_assert_fail("start: %s", err.msg);
    }
    return c;
}

static struct container_exit wait_exit(struct container *c, int timeout_ms)
{
    struct container_exit st = {0};
    struct duet_err err = {0};
    int r = container_wait(c, timeout_ms, &st, &err);
    cr_assert_eq(r, 1, "container did not exit in %d ms (%s)", timeout_ms, err.msg);
    return st;
}

static char *read_log(struct container *c)
{
    char p[400];
    FILE *fp = fopen(container_log_path(c, p, sizeof(p)), "r");
    cr_assert_not_null(fp);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Waits (up to 10 s) until the log holds text: the workload is ready. */
static void wait_for_log(struct container *c, const char *text)
{
    for (int i = 0; i < 1000; i++) {
        char *log = read_log(c);
        bool found = strstr(log, text) != NULL;
        free(log);
        if (found)
            return;
        usleep(10000);
    }
    cr_assert_fail("the workload never printed \"%s\"", text);
}

static void destroy(struct container *c)
{
    struct duet_err err = {0};
    cr_expect_eq(container_destroy(c, &err), 0, "destroy: %s", err.msg);
}

/* Runs a one-shot container and returns its log; *st gets the exit. */
static char *run(struct fixture *f, const char *name, const char *body, struct container_exit *st)
{
    struct container *c = start(f, spec(f, name, body));
    *st = wait_exit(c, 20000);
    char *log = read_log(c);
    destroy(c);
    return log;
}

static bool host_has_mount_under(const char *dir)
{
    FILE *m = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    bool found = false;
    while (m && fgets(line, sizeof(line), m))
        found = found || strstr(line, dir) != NULL;
    if (m)
        fclose(m);
    return found;
}

/* The owner of path in the container's writable layer, read from the
 * layer's image with debugfs after a sync: the layer is mounted in no
 * namespace the host can reach.  -1 when the layer has no such file. */
static long layer_file_uid(struct container *c, const char *path)
{
    sync();
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "debugfs -R 'stat /upper/%s' %s/disk.img 2>/dev/null", path, c->dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[512];
    long uid = -1;
    while (fgets(line, sizeof(line), p))
        if (strncmp(line, "User:", 5) == 0)
            uid = strtol(line + 5, NULL, 10);
    pclose(p);
    return uid;
}

TestSuite(container, .timeout = 60);

Test(container, output_reaches_the_log_and_the_exit_status_comes_back)
{
    struct fixture f;
    fixture_init(&f);
    struct container_exit st;
    char *log = run(&f, "hello", "  command: [/bin/sh, -c, 'echo to stdout; echo to stderr >&2; exit 3']\n", &st);
    cr_expect(st.exited);
    cr_expect_eq(st.code, 3);
    cr_expect_eq(st.signal, 0);
    cr_expect(strstr(log, "to stdout\n") && strstr(log, "to stderr\n"), "log: %s", log);
    free(log);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/hello", f.state);
    cr_expect_neq(access(dir, F_OK), 0, "destroy removed the state dir");
    char cg[128];
    cr_expect_not(cgroup_exists(&f.rt.cgroup, container_cgroup_name(&f.rt, "hello", cg, sizeof(cg))),
                  "destroy removed the cgroup");
    fixture_fini(&f);
}

Test(container, inside_is_as_designed)
{
    struct fixture f;
    fixture_init(&f);
    struct container_exit st;
    char *log = run(&f, "inside",
                    "  command: [/bin/sh, -c, 'echo pid=$$; echo init=$(cat /proc/1/comm); echo host=$(hostname); "
                    "echo dev=$(ls /dev | tr \"\\n\" \" \"); touch /sys/x 2>/dev/null || echo sys-ro; "
                    "grep -q \" / overlay \" /proc/mounts && echo root-overlay; "
                    "echo procs=$(ls -d /proc/[0-9]* | wc -l); echo cg=$(cat /proc/self/cgroup | tail -n1)']\n",
                    &st);
    cr_expect_eq(st.code, 0, "%s", log);
    cr_expect(strstr(log, "pid=2\n"), "the workload is pid 2 under duet-init: %s", log);
    cr_expect(strstr(log, "init=duet-init\n"), "%s", log);
    cr_expect(strstr(log, "host=inside\n"), "hostname is the workload name: %s", log);
    cr_expect(strstr(log, "dev=fd full null ptmx pts random shm stderr stdin stdout tty urandom zero\n"),
              "a minimal /dev: %s", log);
    cr_expect(strstr(log, "sys-ro\n"), "/sys is read-only: %s", log);
    cr_expect(strstr(log, "root-overlay\n"), "%s", log);
    cr_expect(strstr(log, "cg=0::/\n") || strstr(log, ":/\n"), "own cgroup namespace: %s", log);
    free(log);
    fixture_fini(&f);
}

/* The CPU quota of container `name`: quota_us per 100 ms period. */
static void expect_cpu_quota(struct fixture *f, const char *name, uint64_t quota_us)
{
    char path[300];
    if (f->rt.cgroup.version == 1) {
        uint64_t v = 0;
        snprintf(path, sizeof(path), "%s/cpu/%s/%s", f->rt.cgroup.root, f->rt.cgroup_parent, name);
        cr_expect_eq(cgroup_read_u64(path, "cpu.cfs_quota_us", &v), 0);
        cr_expect_eq(v, quota_us);
        return;
    }
    char got[64] = "", want[32];
    snprintf(path, sizeof(path), "%s/%s/%s/cpu.max", f->rt.cgroup.root, f->rt.cgroup_parent, name);
    snprintf(want, sizeof(want), "%llu 100000\n", (unsigned long long)quota_us);
    FILE *cm = fopen(path, "r");
    cr_assert(cm, "%s: %s", path, strerror(errno));
    cr_expect(fgets(got, sizeof(got), cm) && strcmp(got, want) == 0, "cpu.max is %s, not %s", got, want);
    fclose(cm);
}

Test(container, limits_are_applied_in_the_cgroup)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "limits", "  command: [/bin/sleep, '30']\n"
                                                       "  resources: {memory: 64Mi, cpus: 0.5, pids: 100}\n"));
    struct cgroup_stats s;
    struct duet_err err = {0};
    /* start returns once duet-init runs; it forks the workload right after. */
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(container_stats(c, &s, &err), 0, "%s", err.msg);
        if (s.pids == 2)
            break;
        usleep(10000);
    }
    cr_expect_eq(s.memory_limit, 64ull << 20);
    cr_expect_eq(s.pids, 2, "duet-init and sleep");
    cr_expect_gt(s.memory, 0);
    char path[256];
    uint64_t v;
    expect_cpu_quota(&f, "limits", 50000);
    if (f.rt.cgroup.version == 1)
        snprintf(path, sizeof(path), "%s/pids/%s/limits", f.rt.cgroup.root, f.rt.cgroup_parent);
    else
        snprintf(path, sizeof(path), "%s/%s/limits", f.rt.cgroup.root, f.rt.cgroup_parent);
    cr_expect_eq(cgroup_read_u64(path, "pids.max", &v), 0);
    cr_expect_eq(v, 100);
    destroy(c);
    fixture_fini(&f);
}

/* duet-init sets the quota just before it starts the workload, through a
 * file the runtime opened for it: the quota is there while the workload
 * runs, and the workload never holds that file (root in a container
 * could otherwise lift its own limit on cgroup v1). */
Test(container, cpu_quota_file_is_not_the_workloads)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "quota", "  command: [/bin/sleep, '30']\n"
                                                      "  resources: {cpus: 0.25}\n"));
    /* the workload: duet-init's child, once it is there */
    char kids[64], line[64] = "";
    snprintf(kids, sizeof(kids), "/proc/%d/task/%d/children", (int)c->pid, (int)c->pid);
    for (int i = 0; i < 200 && !line[0]; i++) {
        FILE *k = fopen(kids, "r");
        if (k) {
            if (!fgets(line, sizeof(line), k))
                line[0] = '\0';
            fclose(k);
        }
        if (!line[0])
            usleep(10000);
    }
    int wpid = atoi(line);
    cr_assert_gt(wpid, 0, "duet-init started no workload");
    /* between its fork and its exec the child still has duet-init's fds */
    char comm[64], name[32] = "";
    snprintf(comm, sizeof(comm), "/proc/%d/comm", wpid);
    for (int i = 0; i < 200 && strcmp(name, "sleep\n") != 0; i++) {
        FILE *k = fopen(comm, "r");
        if (!k || !fgets(name, sizeof(name), k))
            name[0] = '\0';
        if (k)
            fclose(k);
        if (strcmp(name, "sleep\n") != 0)
            usleep(10000);
    }
    cr_assert_str_eq(name, "sleep\n", "the workload never ran");
    char fdir[64], seen[256] = "";
    snprintf(fdir, sizeof(fdir), "/proc/%d/fd", wpid);
    DIR *d = opendir(fdir);
    cr_assert(d, "%s: %s", fdir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            strncat(seen, e->d_name, sizeof(seen) - strlen(seen) - 2);
            strcat(seen, " ");
        }
    closedir(d);
    int n = 0;
    for (char *q = seen; *q; q++)
        n += *q == ' ';
    cr_expect_eq(n, 3, "the workload holds more than stdin, stdout and stderr: %s", seen);
    expect_cpu_quota(&f, "quota", 25000);
    destroy(c);
    fixture_fini(&f);
}

Test(container, image_is_shared_and_never_written)
{
    struct fixture f;
    fixture_init(&f);
    struct container_exit st;
    char *log = run(&f, "writer", "  command: [/bin/sh, -c, 'echo mine > /etc/duet-test; rm /bin/ls; echo done']\n", &st);
    cr_expect_eq(st.code, 0, "%s", log);
    free(log);
    char p[512];
    snprintf(p, sizeof(p), "%s/etc/duet-test", env_or_die("DUET_ROOTFS"));
    cr_expect_neq(access(p, F_OK), 0, "the image was written");
    snprintf(p, sizeof(p), "%s/bin/ls", env_or_die("DUET_ROOTFS"));
    cr_expect_eq(access(p, F_OK), 0, "a file deleted in a container is gone from the image");
    log = run(&f, "reader", "  command: [/bin/sh, -c, 'cat /etc/duet-test 2>&1; ls /bin/ls']\n", &st);
    cr_expect(strstr(log, "No such file") && strstr(log, "/bin/ls"), "each container has its own layer: %s", log);
    free(log);
    fixture_fini(&f);
}

Test(container, user_workdir_and_env)
{
    struct fixture f;
    fixture_init(&f);
    struct container_exit st;
    char *log = run(&f, "user",
                    "  command: [/bin/sh, -c, 'echo id=$(id -u):$(id -g) cwd=$(pwd) foo=$FOO; "
                    "grep CapEff /proc/self/status']\n"
                    "  user: \"1000:1000\"\n  workingDir: /tmp\n  env: {FOO: bar}\n",
                    &st);
    cr_expect(strstr(log, "id=1000:1000 cwd=/tmp foo=bar\n"), "%s", log);
    cr_expect(strstr(log, "CapEff:\t0000000000000000"), "a non-root user has no capabilities: %s", log);
    free(log);
    log = run(&f, "named", "  command: [/bin/id]\n  user: user\n", &st);
    cr_expect(strstr(log, "uid=1000(user) gid=1000(user) groups=10(wheel),1000(user)"),
              "names and groups come from the rootfs's /etc/passwd and /etc/group: %s", log);
    free(log);
    log = run(&f, "numeric", "  command: [/bin/id]\n  user: \"1000\"\n", &st);
    cr_expect(strstr(log, "uid=1000(user) gid=1000(user)"), "a listed uid brings its primary group: %s", log);
    free(log);
    log = run(&f, "unlisted", "  command: [/bin/id, -g]\n  user: \"4242\"\n", &st);
    cr_expect(strstr(log, "0\n"), "an unlisted uid gets group 0, as with Docker: %s", log);
    free(log);
    fixture_fini(&f);
}

Test(container, volumes_read_write_and_read_only)
{
    struct fixture f;
    fixture_init(&f);
    char rw[] = "/tmp/duet-vol-rw-XXXXXX", ro[] = "/tmp/duet-vol-ro-XXXXXX";
    cr_assert_not_null(mkdtemp(rw));
    cr_assert_not_null(mkdtemp(ro));
    char body[1024];
    snprintf(body, sizeof(body),
             "  command: [/bin/sh, -c, 'echo hi > /data/out && echo wrote; echo x > /conf/x 2>/dev/null || echo ro-refused']\n"
             "  volumes: [{source: %s, target: /data}, {source: %s, target: /conf, readOnly: true}]\n",
             rw, ro);
    struct container_exit st;
    char *log = run(&f, "volumes", body, &st);
    cr_expect(strstr(log, "wrote\n") && strstr(log, "ro-refused\n"), "%s", log);
    char p[256];
    snprintf(p, sizeof(p), "%s/out", rw);
    cr_expect_eq(access(p, F_OK), 0, "a write to the volume reaches the host");
    unlink(p);
    rmdir(rw);
    rmdir(ro);
    free(log);
    fixture_fini(&f);
}

Test(container, volume_target_symlink_stays_inside_the_root)
{
    struct fixture f;
    fixture_init(&f);
    /* A rootfs whose /evil is a symlink to the host's /etc: mounting a
     * volume on /evil/duet-escape must land inside the rootfs. */
    char root[] = "/tmp/duet-evil-XXXXXX", cmd[600];
    cr_assert_not_null(mkdtemp(root));
    snprintf(cmd, sizeof(cmd), "cp -a %s/. %s/ && ln -s /etc %s/evil && ln -s ../../../../../../etc %s/evil2",
             env_or_die("DUET_ROOTFS"), root, root, root);
    cr_assert_eq(system(cmd), 0);
    char src[] = "/tmp/duet-evil-src-XXXXXX";
    cr_assert_not_null(mkdtemp(src));
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: evil}\nspec:\n  image: {rootfs: %s}\n"
             "  command: [/bin/sh, -c, 'ls -d /etc/duet-escape /etc/duet-escape2 && echo inside']\n"
             "  volumes: [{source: %s, target: /evil/duet-escape}, {source: %s, target: /evil2/duet-escape2}]\n",
             root, src, src);
    f.set = manifest_set_new();
    manifest_set_load_buffer(f.set, "t.yaml", yaml, strlen(yaml));
    manifest_set_validate(f.set);
    cr_assert(manifest_set_ok(f.set));
    struct container *c = start(&f, f.set->workloads[0]);
    struct container_exit st = wait_exit(c, 20000);
    char *log = read_log(c);
    cr_expect_eq(st.code, 0, "the volumes are at the rootfs's /etc: %s", log);
    cr_expect_neq(access("/etc/duet-escape", F_OK), 0, "a directory was created on the host's /etc");
    cr_expect_neq(access("/etc/duet-escape2", F_OK), 0, "a directory was created on the host's /etc");
    free(log);
    destroy(c);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", root, src);
    cr_expect_eq(system(cmd), 0);
    fixture_fini(&f);
}

/* Runs escape_probe in a container of f's runtime: every attempt must be
 * refused, and there must be at least 20 of them. */
static void expect_no_escape(struct fixture *f, const char *name)
{
    char marker[] = "/tmp/duet-host-marker-XXXXXX";
    int fd = mkstemp(marker);
    cr_assert_geq(fd, 0);
    close(fd);
    char body[512];
    snprintf(body, sizeof(body), "  command: [/bin/escape_probe, %s]\n", marker);
    struct container_exit st;
    char *log = run(f, name, body, &st);
    int blocked = 0;
    for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        cr_expect(strncmp(line, "ESCAPED", 7) != 0, "%.*s", (int)strcspn(line, "\n"), line);
        blocked += strncmp(line, "BLOCKED", 7) == 0;
    }
    cr_expect_geq(blocked, 20, "at least 20 attempts: %s", log);
    cr_expect(strstr(log, "DONE 0 escaped"), "%s", log);
    cr_expect_eq(st.code, 0);
    free(log);
    unlink(marker);
}

Test(container, escape_attempts_all_fail)
{
    struct fixture f;
    fixture_init(&f);
    expect_no_escape(&f, "escape");
    fixture_fini(&f);
}

Test(container, the_escape_probe_sees_an_escape_when_protection_is_off)
{
    /* Control: the same probe with every capability and no filter must
     * report escapes, or the test above proves nothing. */
    struct fixture f;
    fixture_init(&f);
    f.rt.caps = (UINT64_C(2) << f.rt.last_cap) - 1;
    container_seccomp_free(&f.rt.filter);
    struct container_exit st;
    char *log = run(&f, "control", "  command: [/bin/escape_probe, /nonexistent]\n", &st);
    cr_expect(strstr(log, "ESCAPED unshare-user-ns"), "%s", log);
    cr_expect(strstr(log, "ESCAPED raw-socket"), "%s", log);
    cr_expect(strstr(log, "ESCAPED mknod-block-device"), "%s", log);
    cr_expect(strstr(log, "ESCAPED keyctl"), "%s", log);
    cr_expect_eq(st.code, 1, "the probe exits 1 when anything escaped");
    /* Even so the pid and mount namespaces hold: */
    cr_expect(strstr(log, "BLOCKED see-host-processes"), "%s", log);
    cr_expect(strstr(log, "BLOCKED chroot-escape"), "%s", log);
    free(log);
    fixture_fini(&f);
}

Test(container, fork_bomb_stops_at_the_pids_limit)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "forkbomb", "  command: [/bin/escape_probe, --fork-bomb]\n"
                                                         "  resources: {pids: 64}\n"));
    struct timespec ts = {1, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct cgroup_stats s;
    struct duet_err err = {0};
    cr_assert_eq(container_stats(c, &s, &err), 0, "%s", err.msg);
    cr_expect_leq(s.pids, 64, "pids.current %llu", (unsigned long long)s.pids);
    cr_expect_geq(s.pids, 60, "the bomb did fork up to the limit (%llu)", (unsigned long long)s.pids);
    pid_t p = fork();   /* the host still forks */
    if (p == 0)
        _exit(0);
    cr_expect_gt(p, 0);
    waitpid(p, NULL, 0);
    destroy(c);
    fixture_fini(&f);
}

Test(container, memory_hog_is_oom_killed_inside_its_cgroup)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "hog", "  command: [/bin/tail, /dev/zero]\n"
                                                    "  resources: {memory: 32Mi}\n"));
    struct container_exit st = wait_exit(c, 30000);
    cr_expect_eq(st.signal, SIGKILL, "killed by the OOM killer (code %d signal %d)", st.code, st.signal);
    cr_expect(container_oom_killed(c), "the kill was the cgroup's OOM killer");
    destroy(c);
    fixture_fini(&f);
}

Test(container, stop_is_sigterm_then_sigkill)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "polite", "  command: [/bin/sh, -c, "
                                                       "'trap \"echo got TERM; exit 0\" TERM; echo ready; while :; do sleep 0.1; done']\n"));
    wait_for_log(c, "ready");
    struct duet_err err = {0};
    cr_assert_eq(container_stop(c, 5000, &err), 0, "%s", err.msg);
    struct container_exit st = wait_exit(c, 5000);
    char *log = read_log(c);
    cr_expect_eq(st.code, 0, "%s", log);
    cr_expect(strstr(log, "got TERM"), "SIGTERM reached the workload through duet-init: %s", log);
    free(log);
    destroy(c);

    c = start(&f, spec(&f, "stubborn", "  command: [/bin/sh, -c, 'trap \"\" TERM; echo ready; while :; do sleep 0.1; done']\n"));
    wait_for_log(c, "ready");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(container_stop(c, 500, &err), 0, "%s", err.msg);
    st = wait_exit(c, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_eq(st.signal, SIGKILL, "code %d signal %d", st.code, st.signal);
    cr_expect(secs >= 0.45 && secs < 3, "killed after the grace period (%.2fs)", secs);
    destroy(c);
    fixture_fini(&f);
}

Test(container, exec_runs_inside_with_the_same_confinement)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "execme", "  command: [/bin/sleep, '30']\n  user: \"1000:1000\"\n"
                                                      "  workingDir: /tmp\n  env: {FOO: from-the-spec}\n"));
    char out[] = "/tmp/duet-exec-out-XXXXXX";
    int fd = mkstemp(out);
    cr_assert_geq(fd, 0);
    int status = -1;
    struct duet_err err = {0};
    const char *argv[] = {"/bin/sh", "-c", "echo host=$(hostname) uid=$(id -u) cwd=$(pwd) init=$(cat /proc/1/comm); "
                                           "unshare -U true 2>/dev/null || echo no-userns; echo foo=$FOO",
                          NULL};
    cr_assert_eq(container_exec(c, argv, fd, fd, -1, &status, &err), 0, "%s", err.msg);
    cr_expect_eq(status, 0);
    char buf[1024] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    cr_expect(strstr(buf, "host=execme uid=1000 cwd=/tmp init=duet-init\n"), "%s", buf);
    cr_expect(strstr(buf, "no-userns"), "the filter applies to exec too: %s", buf);
    cr_expect(strstr(buf, "foo=from-the-spec"), "exec runs with the workload's environment: %s", buf);
    const char *missing[] = {"/bin/nonexistent", NULL};
    cr_expect_eq(container_exec(c, missing, fd, fd, -1, &status, &err), 0);
    cr_expect_eq(status, 127);
    close(fd);
    unlink(out);
    destroy(c);
    fixture_fini(&f);
}

Test(container, user_errors_are_named)
{
    struct fixture f;
    fixture_init(&f);
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"  command: [/bin/nonexistent]\n", "command \"/bin/nonexistent\" is not an executable file in the rootfs"},
        {"  command: [nonexistent-cmd]\n", "command \"nonexistent-cmd\" is not an executable file in the rootfs"},
        {"  command: [/bin/true]\n  user: bob\n", "user \"bob\" is not in"},
        {"  command: [/bin/true]\n  user: \"1000:staff\"\n", "group \"staff\" is not in"},
        {"  command: [/bin/true]\n  resources: {pids: 1}\n", "resources.pids 1 is too low"},
        {"  command: [/bin/true]\n  volumes: [{source: /nonexistent/src, target: /x}]\n",
         "volume source /nonexistent/src (for /x) cannot be used"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct container_config cfg = {.spec = spec(&f, "oops", cases[i].body)};
        struct container *c = NULL;
        struct duet_err err = {0};
        cr_expect_eq(container_prepare(&f.rt, &cfg, &c, &err), -1, "case %zu", i);
        cr_expect(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
        cr_expect_null(c);
        if (c)
            container_destroy(c, NULL);   /* a case that wrongly passed leaves nothing either */
    }
    /* A rootfs that does not exist */
    char yaml[] = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: gone}\n"
                  "spec: {image: {rootfs: /nonexistent/rootfs}, command: [/bin/true]}\n";
    manifest_set_free(f.set);
    f.set = manifest_set_new();
    manifest_set_load_buffer(f.set, "t.yaml", yaml, strlen(yaml));
    manifest_set_validate(f.set);
    struct container_config cfg = {.spec = f.set->workloads[0]};
    struct container *c = NULL;
    struct duet_err err = {0};
    cr_expect_eq(container_prepare(&f.rt, &cfg, &c, &err), -1);
    cr_expect(strstr(err.msg, "image.rootfs /nonexistent/rootfs cannot be used: No such file or directory"), "%s", err.msg);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/oops", f.state);
    cr_expect_neq(access(dir, F_OK), 0, "nothing left behind");
    fixture_fini(&f);
}

/* Injects a failure at every setup step in turn: each must fail, name its
 * step, and leave no state dir, cgroup or mount behind once destroyed (what
 * a caller does with a failed start). */
static void expect_clean_failures(struct fixture *f, const char *name, const char *body)
{
    const struct workload_spec *w = spec(f, name, body);
    for (int step = STEP_STATE_DIR; step < STEP_COUNT; step++) {
        struct container_config cfg = {.spec = w, .fail_at = (enum container_step)step};
        struct container *c = NULL;
        struct duet_err err = {0};
        int rc = container_prepare(&f->rt, &cfg, &c, &err);
        if (rc == 0) {
            rc = container_start(c, &cfg, &err);
            struct duet_err derr = {0};
            cr_expect_eq(container_destroy(c, &derr), 0, "step %s: destroy: %s", container_step_name(step), derr.msg);
        }
        cr_expect_eq(rc, -1, "step %s did not fail", container_step_name(step));
        cr_expect(strstr(err.msg, container_step_name(step)) && strstr(err.msg, "injected failure"),
                  "step %s: error names the step: %s", container_step_name(step), err.msg);
        char dir[128], cg[128];
        snprintf(dir, sizeof(dir), "%s/%s", f->state, name);
        cr_expect_neq(access(dir, F_OK), 0, "step %s: state dir left behind", container_step_name(step));
        cr_expect_not(cgroup_exists(&f->rt.cgroup, container_cgroup_name(&f->rt, name, cg, sizeof(cg))),
                      "step %s: cgroup left behind", container_step_name(step));
        cr_expect_not(host_has_mount_under(f->state), "step %s: a mount leaked to the host", container_step_name(step));
        cr_expect_eq(loop_devices_under(f->state, false, 2000), 0, "step %s: a loop device was left attached",
                     container_step_name(step));
    }
}

Test(container, a_failure_at_any_step_leaves_nothing_behind)
{
    struct fixture f;
    fixture_init(&f);
    char vol[] = "/tmp/duet-fail-vol-XXXXXX";
    cr_assert_not_null(mkdtemp(vol));
    char body[512];
    snprintf(body, sizeof(body), "  command: [/bin/true]\n  volumes: [{source: %s, target: /data}]\n", vol);
    expect_clean_failures(&f, "failing", body);
    rmdir(vol);
    fixture_fini(&f);
}

/* A process plays the daemon: it starts a container and exits without
 * waiting.  A new "daemon" (this process) recovers it from the state dir. */
static void start_and_abandon(struct fixture *f, const char *name, const char *body)
{
    const struct workload_spec *w = spec(f, name, body);
    pid_t p = fork();
    cr_assert_geq(p, 0);
    if (p == 0) {
        struct container_config cfg = {.spec = w};
        struct container *c;
        struct duet_err err;
        if (container_prepare(&f->rt, &cfg, &c, &err) < 0 || container_start(c, &cfg, &err) < 0)
            _exit(1);
        container_release(c);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the first daemon could not start the container");
}

Test(container, recover_after_a_daemon_restart)
{
    struct fixture f;
    fixture_init(&f);
    /* Orphans come to us, as they do to duetd (a child subreaper). */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    start_and_abandon(&f, "survivor", "  command: [/bin/sh, -c, 'sleep 1; exit 5']\n");
    struct container *c = NULL;
    struct duet_err err = {0};
    cr_assert_eq(container_recover(&f.rt, "survivor", &c, &err), 0, "%s", err.msg);
    cr_expect_geq(c->pidfd, 0, "still running: re-attached");
    struct container_exit st = wait_exit(c, 10000);
    cr_expect_eq(st.code, 5, "the exit status comes back after the restart");
    destroy(c);

    /* The workload exits while no daemon runs. */
    start_and_abandon(&f, "gone", "  command: [/bin/sh, -c, 'exit 9']\n");
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    cr_assert_eq(container_recover(&f.rt, "gone", &c, &err), 0, "%s", err.msg);
    cr_expect_lt(c->pidfd, 0, "not running any more");
    st = wait_exit(c, 1000);
    cr_expect_eq(st.code, 9, "the exit file kept the status");
    destroy(c);

    /* A recorded pid that now belongs to another process is not ours. */
    start_and_abandon(&f, "reused", "  command: [/bin/sleep, '30']\n");
    char p[256];
    snprintf(p, sizeof(p), "%s/reused/state", f.state);
    FILE *sf = fopen(p, "r");
    int pid;
    unsigned long long start;
    cr_assert_eq(fscanf(sf, "%d %llu", &pid, &start), 2);
    fclose(sf);
    sf = fopen(p, "w");
    fprintf(sf, "%d %llu 0 0 0\n/\n0\n", pid, start + 1);
    fclose(sf);
    cr_assert_eq(container_recover(&f.rt, "reused", &c, &err), 0, "%s", err.msg);
    cr_expect_lt(c->pidfd, 0, "a different start time means a different process");
    kill(pid, SIGKILL);
    destroy(c);
    fixture_fini(&f);
}

/* ---- user namespaces -------------------------------------------------- */

static void fixture_userns(struct fixture *f)
{
    fixture_init(f);
    struct duet_err err = {0};
    cr_assert_eq(container_runtime_set_userns(&f->rt, 100000, 65536, &err), 0, "%s", err.msg);
}

Test(container, userns_root_inside_is_unprivileged_outside)
{
    struct fixture f;
    fixture_userns(&f);
    struct container *c = start(&f, spec(&f, "mapped", "  command: [/bin/sh, -c, 'id -u; cat /proc/self/uid_map; "
                                                       "ls -ln /bin/busybox; echo hi > /etc/mine && echo wrote; sleep 30']\n"));
    wait_for_log(c, "wrote");
    char p[512], line[256];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)c->pid);
    FILE *st = fopen(p, "r");
    cr_assert_not_null(st);
    unsigned uid = 0;
    while (fgets(line, sizeof(line), st))
        sscanf(line, "Uid: %u", &uid);
    fclose(st);
    cr_expect_eq(uid, 100000, "duet-init runs as host uid 100000, not root");
    char *log = read_log(c);
    cr_expect(strncmp(log, "0\n", 2) == 0, "root inside: %s", log);
    cr_expect(strstr(log, "0     100000      65536"), "%s", log);
    cr_expect(strstr(log, " 0        0 ") && strstr(log, "/bin/busybox"), "the image is root's inside: %s", log);
    free(log);
    cr_expect_eq(layer_file_uid(c, "etc/mine"), 100000,
                 "the write went to the container's layer and belongs to the mapped root on the host");
    struct stat sb;
    cr_assert_eq(stat(c->dir, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0710, "only the mapped root's group may pass to the layers");
    cr_expect_eq(sb.st_gid, 100000);
    snprintf(p, sizeof(p), "%s/etc/mine", env_or_die("DUET_ROOTFS"));
    cr_expect_neq(access(p, F_OK), 0, "the image is unchanged");
    /* exec joins the user namespace too */
    char out[] = "/tmp/duet-uns-exec-XXXXXX";
    int fd = mkstemp(out);
    int status = -1;
    struct duet_err err = {0};
    const char *argv[] = {"/bin/sh", "-c", "id -u; cat /proc/self/uid_map", NULL};
    cr_assert_eq(container_exec(c, argv, fd, fd, -1, &status, &err), 0, "%s", err.msg);
    char buf[256] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    cr_expect(strstr(buf, "0\n") && strstr(buf, "100000"), "%s", buf);
    close(fd);
    unlink(out);
    destroy(c);
    fixture_fini(&f);
}

Test(container, userns_escape_attempts_all_fail)
{
    struct fixture f;
    fixture_userns(&f);
    expect_no_escape(&f, "escape-uns");
    fixture_fini(&f);
}

Test(container, userns_failure_at_any_step_leaves_nothing_behind)
{
    struct fixture f;
    fixture_userns(&f);
    expect_clean_failures(&f, "failing-uns", "  command: [/bin/true]\n");
    fixture_fini(&f);
}

Test(container, init_reaps_orphans)
{
    struct fixture f;
    fixture_init(&f);
    struct container_exit st;
    /* The inner shell's child is orphaned onto pid 1 and exits: without
     * reaping it would stay a zombie (Z) in ps. */
    char *log = run(&f, "reaper",
                    "  command: [/bin/sh, -c, '(sh -c \"sleep 0.2\" &); sleep 1; ps -o pid,stat,comm; echo listed']\n",
                    &st);
    cr_expect(strstr(log, "listed"), "%s", log);
    for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char stat[8] = "";
        int pid;
        if (sscanf(line, "%d %7s", &pid, stat) == 2)
            cr_expect(stat[0] != 'Z', "a zombie in the container: %.*s", (int)strcspn(line, "\n"), line);
    }
    free(log);
    fixture_fini(&f);
}

/* ---- the fleet network, in a network namespace of the test's own -------- */

#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "network/fleet.h"
#include "network/ipam.h"
#include "network/netlink.h"

static int private_bridge(struct net_attachment *dn, uint32_t addr)
{
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
    struct nl nl;
    struct nl_link br;
    struct duet_err err = {0};
    uint8_t mac[6];
    ipam_mac(0x0a420001, mac);
    cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
    cr_assert_eq(nl_bridge_add(&nl, "ctbr0", "duet:test", mac, &err), 0, "%s", err.msg);
    cr_assert_eq(nl_link_get(&nl, "ctbr0", &br, &err), 0);
    cr_assert_eq(nl_addr_add(&nl, br.index, 0x0a420001, 24, &err), 0, "%s", err.msg);
    cr_assert_eq(nl_link_set_up(&nl, br.index, &err), 0);
    nl_close(&nl);
    *dn = (struct net_attachment){.bridge_index = br.index, .addr = addr, .gateway = 0x0a420001, .dns = 0x0a420001,
                              .prefix = 24};
    snprintf(dn->bridge, sizeof(dn->bridge), "ctbr0");
    fleet_net_host_if(addr, dn->host_if);
    ipam_mac(addr, dn->mac);
    return br.index;
}

/* eth0 with the address, the route via the bridge, resolv.conf naming the
 * bridge, the host's end on the bridge; the image unchanged; and the pair
 * gone with the container. */
static void network_case(struct fixture *f, const char *name)
{
    struct net_attachment dn;
    int br = private_bridge(&dn, 0x0a420005);
    const struct workload_spec *w =
        spec(f, name, "  command: [/bin/sh, -c, 'cat /proc/net/route; cat /etc/resolv.conf /etc/hosts; "
                      "ip -4 -o addr show eth0; cat /sys/class/net/eth0/address; "
                      "echo eth0-v6-off=$(cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6); ip -6 -o addr; "
                      "echo ready; sleep 30']\n");
    struct container_config cfg = {.spec = w, .net = &dn};
    struct container *c;
    struct duet_err err = {0};
    cr_assert_eq(container_prepare(&f->rt, &cfg, &c, &err), 0, "prepare: %s", err.msg);
    cr_assert_eq(container_start(c, &cfg, &err), 0, "start: %s", err.msg);
    wait_for_log(c, "ready");
    char *log = read_log(c);
    cr_expect(strstr(log, "inet 10.66.0.5/24"), "%s", log);
    cr_expect(strstr(log, "02:64:0a:42:00:05"), "%s", log);
    cr_expect(strstr(log, "nameserver 10.66.0.1"), "%s", log);
    cr_expect(strstr(log, "10.66.0.5\t"), "its own name in /etc/hosts: %s", log);
    cr_expect(strstr(log, "eth0\t00000000\t0100420A"), "a default route via 10.66.0.1: %s", log);
    /* the fleet's network is IPv4: no IPv6 on eth0 (no link-local address
     * chattering to every port of the bridge), but ::1 on loopback */
    cr_expect(strstr(log, "eth0-v6-off=1"), "%s", log);
    cr_expect(strstr(log, "inet6 ::1/128"), "loopback lost ::1: %s", log);
    cr_expect(!strstr(log, "fe80::"), "eth0 has a link-local IPv6 address: %s", log);
    free(log);
    struct nl nl;
    struct nl_link l;
    cr_assert_eq(nl_open(&nl, &err), 0);
    cr_assert_eq(nl_link_get(&nl, "dv0a420005", &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l.master, br, "the host's end is a port of the bridge");
    cr_expect(l.up);
    char v6[8] = "";
    FILE *hv = fopen("/proc/sys/net/ipv6/conf/dv0a420005/disable_ipv6", "r");
    cr_assert(hv, "no IPv6 settings for the host's end: %s", strerror(errno));
    cr_expect(fgets(v6, sizeof(v6), hv) && v6[0] == '1', "IPv6 is on at the host's end: %s", v6);
    fclose(hv);
    /* from inside to the bridge's address: a listener of the test's */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a420001)};
    socklen_t sl = sizeof(sin);
    cr_assert(bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(ls, 1) == 0 &&
              getsockname(ls, (struct sockaddr *)&sin, &sl) == 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "echo hello-bridge | nc -w 2 10.66.0.1 %u", ntohs(sin.sin_port));
    int status = -1;
    char out[] = "/tmp/duet-ct-net-XXXXXX";
    int fd = mkstemp(out);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    /* busybox's nc waits for the far end to close after sending, and the
     * test accepts only once exec returns: a timeout ends nc (its line
     * is in the listener's backlog by then) instead of the container's
     * own end 30 s later. */
    int rc = container_exec(c, argv, fd, fd, 3000, &status, &err);
    cr_assert(rc == 0 || strstr(err.msg, "did not end within"), "%s", err.msg);
    int conn = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    char got[64] = "";
    if (conn >= 0) {
        ssize_t k = read(conn, got, sizeof(got) - 1);
        got[k > 0 ? k : 0] = '\0';
        close(conn);
    }
    close(ls);
    cr_expect(strstr(got, "hello-bridge"), "nothing came from inside to the bridge's address (status %d)", status);
    close(fd);
    unlink(out);
    /* the files went to the container's own layer, never to the image */
    char p[512], buf[256] = "";
    snprintf(p, sizeof(p), "%s/etc/resolv.conf", env_or_die("DUET_ROOTFS"));
    FILE *img = fopen(p, "r");
    if (img) {
        size_t nread = fread(buf, 1, sizeof(buf) - 1, img);
        buf[nread] = '\0';
        fclose(img);
    }
    cr_expect(!strstr(buf, "10.66.0.1"), "the image's resolv.conf was written: %s", buf);
    cr_expect_geq(layer_file_uid(c, "etc/resolv.conf"), 0, "resolv.conf is not in the container's layer");
    destroy(c);
    for (int i = 0; i < 200 && nl_link_get(&nl, "dv0a420005", &l, &err) == 0; i++)
        usleep(10000);
    cr_expect_eq(nl_link_get(&nl, "dv0a420005", &l, &err), -1, "the veth outlived its container");
    nl_close(&nl);
}

Test(container, joins_a_bridge_with_its_address)
{
    struct fixture f;
    fixture_init(&f);
    network_case(&f, "net");
    fixture_fini(&f);
}

Test(container, userns_joins_a_bridge_with_its_address)
{
    struct fixture f;
    fixture_userns(&f);
    network_case(&f, "net-uns");
    fixture_fini(&f);
}

/* ---- attacks on exec (the CVE-2019-5736 pattern, descriptors) ---------- */

static char *exec_out(struct container *c, const char *const *argv, int *status)
{
    char out[] = "/tmp/duet-exec-out-XXXXXX";
    int fd = mkostemp(out, O_CLOEXEC);
    cr_assert_geq(fd, 0);
    unlink(out);
    struct duet_err err = {0};
    cr_assert_eq(container_exec(c, argv, fd, fd, 10000, status, &err), 0, "%s", err.msg);
    char *buf = calloc(1, 1 << 16);
    ssize_t n = pread(fd, buf, (1 << 16) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

/* The container replaces a program it is asked to run with a script whose
 * interpreter is /proc/self/exe, while a process of its own races for every
 * new pid's exe and descriptors.  What it gets must be nothing of the
 * host's: not the binary that ran the exec (the test runner here, duetd in
 * the daemon), not duet-init's file, no descriptor beyond 0-2. */
Test(container, exec_trap_gets_nothing_of_the_host, .timeout = 120)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "trap", "  command: [/bin/escape_probe, --watch, '60']\n"));
    wait_for_log(c, "WATCHING");
    int status = -1;
    const char *set[] = {"/bin/sh", "-c", "printf '#!/proc/self/exe\\n' > /bin/check && chmod 755 /bin/check", NULL};
    free(exec_out(c, set, &status));
    cr_assert_eq(status, 0, "the trap could not be set");
    /* A descriptor of the caller's that is not close-on-exec, as a daemon
     * inherits from the shell that started it. */
    int leak = open(f.state, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(leak, 0);
    int high = dup2(leak, 251);
    close(leak);
    cr_assert_eq(high, 251);
    const char *trap[] = {"/bin/check", "--uid", "0", NULL};
    char *first = exec_out(c, trap, &status);
    cr_expect(strstr(first, "duet-init"), "the trap's interpreter was the sealed duet-init, not the caller: %s", first);
    free(first);
    for (int i = 0; i < 60; i++)
        free(exec_out(c, trap, &status));
    /* One the watcher cannot miss: it proves the watch works. */
    const char *slow[] = {"/bin/sleep", "0.5", NULL};
    free(exec_out(c, slow, &status));
    const char *fds[] = {"/bin/ls", "/proc/self/fd", NULL};
    char *listing = exec_out(c, fds, &status);
    cr_expect_str_eq(listing, "0\n1\n2\n3\n", "an exec'd command has only its stdio (3 is ls's own directory): %s",
                     listing);
    free(listing);
    close(high);
    usleep(200000);
    char *log = read_log(c);
    destroy(c);

    /* The binary that ran the exec is this test's here (duetd's in the
     * daemon's test). */
    const char *const host[] = {"/proc/self/exe", env_or_die("DUET_INIT"), NULL};
    int exes = watch_report_check(log, host);
    cr_expect_gt(exes, 0, "the watcher saw the execs at all");
    free(log);
    fixture_fini(&f);
}

/* A command that never ends is killed at the timeout, with everything it
 * started, orphans included. */
Test(container, exec_timeout_kills_the_whole_tree)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "hang", "  command: [/bin/sleep, '60']\n"));
    int status = -1;
    struct duet_err err = {0};
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    const char *hang[] = {"/bin/sh", "-c", "(setsid sleep 1000 &) ; sleep 1000 & sleep 1000", NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(container_exec(c, hang, fd, fd, 500, &status, &err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(err.code, ETIMEDOUT, "%s", err.msg);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_lt(secs, 3.0, "the exec ended at its timeout (%.2f s)", secs);
    /* Only the workload's own sleep is left in the container. */
    const char *ps[] = {"/bin/sh", "-c", "ps -o comm= | grep -c sleep", NULL};
    char *n = exec_out(c, ps, &status);
    cr_expect_str_eq(n, "1\n", "sleeps left in the container: %s", n);
    free(n);
    close(fd);
    destroy(c);
    fixture_fini(&f);
}

/* A volume's link that is swapped for one to the host's /etc after the
 * manifest was checked (another workload can write next to it) is caught
 * where the source is opened, and so is one into the runtime's own state
 * or a path the daemon protects. */
Test(container, a_volume_swapped_to_the_host_is_refused)
{
    struct fixture f;
    fixture_init(&f);
    container_runtime_protect(&f.rt, "/tmp/duet-ct-protected");
    char dir[] = "/tmp/duet-vol-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char data[128], link[128], body[512];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    cr_assert_eq(mkdir(data, 0755), 0);
    cr_assert_eq(symlink(data, link), 0);
    snprintf(body, sizeof(body), "  command: [/bin/ls, /data]\n  volumes: [{source: %s, target: /data}]\n", link);
    const struct workload_spec *w = spec(&f, "swapped", body);
    cr_assert_eq(unlink(link), 0);
    cr_assert_eq(symlink("/etc", link), 0);
    struct container_config cfg = {.spec = w};
    struct container *c;
    struct duet_err err = {0};
    cr_assert_eq(container_prepare(&f.rt, &cfg, &c, &err), 0, "prepare: %s", err.msg);
    cr_expect_eq(container_start(c, &cfg, &err), -1, "a volume that became /etc was mounted");
    cr_expect(strstr(err.msg, "leads to /etc, which is or holds the host's /etc"), "%s", err.msg);
    container_destroy(c, NULL);

    const char *inside[] = {f.state, "/tmp/duet-ct-protected/sub"};
    cr_assert_eq(mkdir("/tmp/duet-ct-protected", 0700) == 0 || errno == EEXIST, true);
    cr_assert_eq(mkdir("/tmp/duet-ct-protected/sub", 0700) == 0 || errno == EEXIST, true);
    for (size_t i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "  command: [/bin/true]\n  volumes: [{source: %s, target: /data}]\n", inside[i]);
        w = spec(&f, "inside", body);
        cfg.spec = w;
        cr_assert_eq(container_prepare(&f.rt, &cfg, &c, &err), 0, "prepare: %s", err.msg);
        cr_expect_eq(container_start(c, &cfg, &err), -1, "volume %s was mounted", inside[i]);
        cr_expect(strstr(err.msg, "spec.hostAccess"), "%s", err.msg);
        container_destroy(c, NULL);
    }
    rmdir("/tmp/duet-ct-protected/sub");
    rmdir("/tmp/duet-ct-protected");
    unlink(link);
    rmdir(data);
    rmdir(dir);
    fixture_fini(&f);
}

/* A container that fills its disk gets ENOSPC at resources.disk, and the
 * host holds no more than that for it.
 * Without the bound, the same dd wrote its 200 MiB (and 2 GiB before). */
Test(container, the_writable_layer_is_bounded_by_resources_disk)
{
    struct fixture f;
    fixture_init(&f);
    struct container *c = start(&f, spec(&f, "filler",
                                         "  command: [/bin/sh, -c, 'dd if=/dev/zero of=/fill bs=1M count=200 2>&1; "
                                         "echo dd=$?; sync; echo size=$(stat -c %s /fill); sleep 2; rm /fill; "
                                         "sync; echo removed; sleep 30']\n"
                                         "  resources: {disk: 64Mi}\n"));
    wait_for_log(c, "size=");
    char *log = read_log(c);
    cr_expect(strstr(log, "No space left on device"), "the writer was stopped by the bound: %s", log);
    cr_expect_not(strstr(log, "dd=0\n"), "dd wrote everything: %s", log);
    const char *size = strstr(log, "size=");
    cr_assert_not_null(size, "%s", log);
    long long wrote = atoll(size + 5);
    cr_expect(wrote > (32ll << 20) && wrote <= (64ll << 20), "the container wrote %lld bytes under a 64Mi bound", wrote);
    free(log);
    char img[512];
    snprintf(img, sizeof(img), "%s/disk.img", c->dir);
    uint64_t used = 0;
    struct duet_err err = {0};
    uint64_t limit = 0;
    cr_assert_eq(container_layer_usage(img, &used, &limit, &err), 0, "%s", err.msg);
    cr_expect_eq(limit, 64ull << 20);
    cr_expect_leq(used, 64ull << 20, "the host holds %llu bytes for a 64Mi layer", (unsigned long long)used);
    /* What the layer holds is what its filesystem says: full, then
     * nearly empty once the file is gone; the image on the host keeps
     * its high-water mark, within the bound. */
    uint64_t held = 0, bound = 0;
    cr_assert_eq(container_disk_usage(c, &held, &bound, &err), 0, "%s", err.msg);
    cr_expect_eq(bound, 64ull << 20);
    cr_expect_gt(held, 48ull << 20, "a full layer holds %llu bytes", (unsigned long long)held);
    wait_for_log(c, "removed");
    cr_assert_eq(container_disk_usage(c, &held, &bound, &err), 0, "%s", err.msg);
    cr_expect_lt(held, 4ull << 20, "after rm the layer holds %llu bytes", (unsigned long long)held);
    cr_assert_eq(container_layer_usage(img, &used, NULL, &err), 0, "%s", err.msg);
    cr_expect_leq(used, 64ull << 20, "the host holds %llu bytes for a 64Mi layer", (unsigned long long)used);
    cr_expect_eq(loop_devices_under(f.state, false, 0), 1, "one loop device while it runs");
    cr_expect_not(host_has_mount_under(f.state), "the layer is mounted in the container's namespace only");
    destroy(c);
    cr_expect_eq(loop_devices_under(f.state, false, 2000), 0, "the loop device outlived its container");
    cr_expect_not(host_has_mount_under(f.state), "a mount leaked to the host");

    /* The next 64Mi layer was made ahead: a spare, which the next start
     * of that size takes (the same file becomes its disk.img). */
    char spare[512] = "";
    for (int i = 0; i < 300 && !spare[0]; i++) {
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/.layers", f.state);
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));)
            if (strncmp(e->d_name, "spare-67108864-", 15) == 0)
                snprintf(spare, sizeof(spare), "%s/%s", dir, e->d_name);
        if (d)
            closedir(d);
        if (!spare[0])
            usleep(10000);
    }
    cr_assert(spare[0], "no spare 64Mi layer was made");
    struct stat sp, taken;
    cr_assert_eq(stat(spare, &sp), 0);
    c = start(&f, spec(&f, "second", "  command: [/bin/sleep, '30']\n  resources: {disk: 64Mi}\n"));
    snprintf(img, sizeof(img), "%s/disk.img", c->dir);
    cr_assert_eq(stat(img, &taken), 0);
    cr_expect_eq(taken.st_ino, sp.st_ino, "the start made its own layer beside a ready spare");
    cr_expect_neq(access(spare, F_OK), 0, "the spare is still in the pool after being taken");
    destroy(c);

    /* Without resources.disk: the default bound, 10 GiB. */
    struct container_exit st;
    log = run(&f, "roomy", "  command: [/bin/sh, -c, 'df -k / | tail -n 1']\n", &st);
    unsigned long long total = 0;
    char *line = strstr(log, "overlay");
    cr_assert_not_null(line, "%s", log);
    sscanf(line, "overlay %llu", &total);
    cr_expect(total > (WL_DEFAULT_DISK >> 10) * 95 / 100 && total <= WL_DEFAULT_DISK >> 10,
              "the default layer is %llu KiB: %s", total, log);
    free(log);
    cr_expect_eq(loop_devices_under(f.state, false, 2000), 0, "the loop device outlived its container");
    fixture_fini(&f);
}

/* ---- the spawner ---------------------------------------------------------- */

#include "backends/container/spawner.h"

/* Our children, from every thread's list. */
static size_t children(pid_t *out, size_t cap)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/task");
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char p[300];
        snprintf(p, sizeof(p), "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(p, "r");
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1 && n < cap)
            out[n++] = pid;
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

/* A spawner killed between two starts is started again, and what it
 * clones is still our child (CLONE_PARENT): waitable, as before. */
Test(container, spawner_killed_is_started_again)
{
    struct fixture f;
    fixture_init(&f);
    struct container *a = start(&f, spec(&f, "sp-a", "  command: [/bin/sleep, '30']\n"));
    pid_t first = container_spawner_pid(f.rt.spawner);
    cr_assert_gt(first, 0, "no spawner after a start");
    cr_expect_eq(getpgid(a->pid) >= 0 && a->child, true);
    char stat[64], line[512] = "";
    snprintf(stat, sizeof(stat), "/proc/%d/stat", (int)a->pid);
    FILE *sf = fopen(stat, "r");
    cr_assert(sf && fgets(line, sizeof(line), sf));
    fclose(sf);
    int ppid = 0;
    cr_assert_eq(sscanf(strrchr(line, ')') + 2, "%*c %d", &ppid), 1);
    cr_expect_eq(ppid, getpid(), "the container's parent is %d, not the runtime's process", ppid);
    cr_assert_eq(kill(first, SIGKILL), 0);
    /* Dead, not yet reaped: the runtime finds that out at the next start.
     * (A spawner that dies holding a request fails that start instead.) */
    char pstat[64], st[256] = "";
    snprintf(pstat, sizeof(pstat), "/proc/%d/stat", (int)first);
    for (int i = 0; i < 500; i++) {
        FILE *ps = fopen(pstat, "r");
        if (!ps || !fgets(st, sizeof(st), ps))
            st[0] = '\0';
        if (ps)
            fclose(ps);
        if (strrchr(st, ')') && strrchr(st, ')')[2] == 'Z')
            break;
        usleep(10000);
    }
    cr_assert(strrchr(st, ')') && strrchr(st, ')')[2] == 'Z', "the killed spawner did not die: %s", st);
    struct container *b = start(&f, spec(&f, "sp-b", "  command: [/bin/sleep, '30']\n"));
    pid_t second = container_spawner_pid(f.rt.spawner);
    cr_expect(second > 0 && second != first, "spawner %d, then %d", first, second);
    cr_expect_eq(waitpid(first, NULL, WNOHANG), -1, "the killed spawner was left unreaped");
    destroy(b);
    destroy(a);
    fixture_fini(&f);
}

/* The spawner is duet-init's static binary executed from the sealed copy,
 * not a fork of this (large, multi-threaded) process: each of its clones
 * copies a handful of mappings, and it holds its socket and duet-init
 * only. */
Test(container, spawner_is_a_small_process_of_its_own)
{
    struct fixture f;
    fixture_init(&f);
    struct container *a = start(&f, spec(&f, "sp-small", "  command: [/bin/sleep, '30']\n"));
    pid_t sp = container_spawner_pid(f.rt.spawner);
    cr_assert_gt(sp, 0, "no spawner after a start");
    char p[64], buf[PATH_MAX] = "";
    snprintf(p, sizeof(p), "/proc/%d/exe", (int)sp);
    ssize_t n = readlink(p, buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect(strncmp(buf, "/memfd:duet-init", 16) == 0, "the spawner runs %s", buf);
    snprintf(p, sizeof(p), "/proc/%d/maps", (int)sp);
    FILE *mf = fopen(p, "r");
    cr_assert(mf);
    size_t lines = 0;
    while (fgets(buf, sizeof(buf), mf))
        lines++;
    fclose(mf);
    cr_expect_lt(lines, 20, "the spawner has %zu mappings", lines);
    snprintf(p, sizeof(p), "/proc/%d/fd", (int)sp);
    DIR *d = opendir(p);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));)
        cr_expect(e->d_name[0] == '.' || atoi(e->d_name) <= SPAWN_INIT_FD, "the spawner holds fd %s", e->d_name);
    closedir(d);
    destroy(a);
    fixture_fini(&f);
}

/* Requests the runtime never sends: each is refused (-EPROTO, or the
 * stream closed) and nothing is cloned; a spawner that could not read the
 * request whole ends (it cannot know where the next one starts); and the
 * next real start gets a spawner that works.  What the spawner parses comes from duetd,
 * but a bug there must not become a container built from garbage. */
Test(container, spawner_refuses_malformed_requests)
{
    struct fixture f;
    fixture_init(&f);
    static const char body[] = "host\0\0/l\0/m\0o\0/init\0";   /* hostname lower layer merged opts argv[0] */
    struct spawn_head ok = {.magic = SPAWN_MAGIC, .len = sizeof(body) - 1, .n_fds = SPAWN_FIXED_FDS - 1, .n_argv = 1};
    struct {
        const char *what;
        struct spawn_head h;
        const char *body;
        size_t len;
        int nfds;
        bool half, ends;
    } cases[] = {
        {"a wrong magic", ok, body, sizeof(body) - 1, 7, false, true},
        {"fewer fds than the head says", ok, body, sizeof(body) - 1, 2, false, true},
        {"volumes that are not among the fds", ok, body, sizeof(body) - 1, 9, false, true},
        {"a string without its end", ok, "host\0\0/l\0/m\0o\0/in", 17, 7, false, false},
        {"no argv", ok, body, sizeof(body) - 1, 7, false, true},
        {"more argv than strings", ok, body, sizeof(body) - 1, 7, false, true},
        {"a length past the limit", ok, body, sizeof(body) - 1, 7, false, true},
        {"strings left over", ok, "host\0\0/l\0/m\0o\0/init\0extra", 26, 7, false, false},
        {"half a head", ok, NULL, 0, 7, true, true},
        {"a clone sharing our memory", ok, body, sizeof(body) - 1, 7, false, true},
        {"more strings counted than bytes", ok, body, sizeof(body) - 1, 7, false, true},
    };
    cases[0].h.magic = 0x41414141;
    cases[1].h.n_fds = 7;
    cases[2].h.n_fds = 9;
    cases[2].h.n_volumes = 5;
    cases[3].h.len = 17;
    cases[4].h.n_argv = 0;
    cases[5].h.n_argv = 1000;
    cases[6].h.len = SPAWN_MAX_BYTES + 1;
    cases[7].h.len = 26;   /* "extra" is no string the head counts */
    cases[9].h.flags = CLONE_VM | CLONE_NEWNS;
    cases[10].h.n_envp = 1u << 30;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        pid_t before[64];
        size_t nb = children(before, 64);
        int sock = container_spawner_socket(f.rt.spawner, &f.rt, &err);
        cr_assert_geq(sock, 0, "%s", err.msg);
        pid_t sp = container_spawner_pid(f.rt.spawner);
        int fds[16];
        for (int k = 0; k < cases[i].nfds; k++)
            fds[k] = open("/dev/null", O_RDWR | O_CLOEXEC);
        union {
            char buf[CMSG_SPACE(sizeof(int) * 16)];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct iovec iov = {.iov_base = &cases[i].h, .iov_len = cases[i].half ? sizeof(cases[i].h) / 2 : sizeof(cases[i].h)};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                           .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)cases[i].nfds)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)cases[i].nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)cases[i].nfds);
        cr_assert_eq(sendmsg(sock, &m, MSG_NOSIGNAL), (ssize_t)iov.iov_len, "%s", cases[i].what);
        for (int k = 0; k < cases[i].nfds; k++)
            close(fds[k]);
        if (cases[i].half)
            shutdown(sock, SHUT_WR);
        else if (cases[i].len)
            send(sock, cases[i].body, cases[i].len, MSG_NOSIGNAL);
        struct spawn_answer ans = {0};
        ssize_t got = read(sock, &ans, sizeof(ans));
        cr_expect(got == 0 || (got == (ssize_t)sizeof(ans) && ans.pid < 0), "%s: answered %zd bytes, pid %d",
                  cases[i].what, got, ans.pid);
        /* the spawner ends: it cannot know where the next request starts */
        int st = 0;
        pid_t w = 0;
        for (int k = 0; k < (cases[i].ends ? 300 : 10) && w == 0; k++) {
            w = waitpid(sp, &st, WNOHANG);
            if (w == 0)
                usleep(10000);
        }
        if (cases[i].ends)
            cr_expect_eq(w, sp, "%s: the spawner went on", cases[i].what);
        else
            cr_expect_eq(w, 0, "%s: the spawner ended after a request it read whole", cases[i].what);
        pid_t after[64];
        size_t na = children(after, 64);
        for (size_t k = 0; k < na; k++) {
            bool old = after[k] == sp;
            for (size_t j = 0; j < nb; j++)
                old = old || before[j] == after[k];
            cr_expect(old, "%s: a process %d was cloned", cases[i].what, (int)after[k]);
        }
    }
    /* and a real start still works, through a new spawner */
    struct container *a = start(&f, spec(&f, "sp-after", "  command: [/bin/sleep, '30']\n"));
    cr_expect_gt(container_spawner_pid(f.rt.spawner), 0);
    destroy(a);
    fixture_fini(&f);
}
