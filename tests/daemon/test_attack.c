/*
 * Attacks on a real duetd from inside its containers: the exec trap of
 * CVE-2019-5736, descriptors raced through /proc, a health check that
 * never ends.  Each test performs the attack and checks what it got.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "dtest.h"
#include "tests/container/watch_report.h"

#define ROOTFS dd_env("DUET_ROOTFS")

/* Every descriptor duetd holds is close-on-exec: nothing it opened (nor
 * anything it inherited) can reach a program it starts. */
static void expect_all_cloexec(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)pid);
    DIR *d = opendir(dir);
    cr_assert(d);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2)
            continue;
        char p[400], line[256], target[256] = "";
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;   /* closed meanwhile */
        unsigned long flags = 0;
        while (fgets(line, sizeof(line), f))
            sscanf(line, "flags: %lo", &flags);
        fclose(f);
        snprintf(p, sizeof(p), "/proc/%d/fd/%s", (int)pid, e->d_name);
        ssize_t n = readlink(p, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        cr_expect(flags & O_CLOEXEC, "duetd's fd %d (%s) is not close-on-exec", fd, target);
        checked++;
    }
    closedir(d);
    cr_expect_gt(checked, 5, "duetd has descriptors to check");
}

Test(attack, exec_and_health_check_traps_reach_nothing_of_the_daemon, .timeout = 180)
{
    struct dd d;
    dd_init(&d);
    /* The container replaces its own health-check program with a script
     * run by /proc/self/exe, then watches for what that brings in. */
    const char *m = dd_manifest(
        &d, "trap.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: trap}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n"
        "  command: [/bin/sh, -c, \"printf '#!/proc/self/exe\\\\n' > /bin/check; chmod 755 /bin/check; "
        "exec /bin/escape_probe --watch 60\"]\n"
        "  healthcheck: {exec: [/bin/check], interval: 1s, timeout: 1s, retries: 1000}\n",
        ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "trap", "state", "running", 20000);
    expect_all_cloexec(d.pid);
    /* `duet exec` of the trap too, and of a command that lists its fds. */
    for (int i = 0; i < 15; i++) {
        dd_duet(&d, &out, "exec trap -- /bin/check");
        if (i == 0)
            cr_expect(strstr(out, "duet-init"), "the trap ran the sealed duet-init: %s", out);
        free(out);
    }
    /* One the watcher cannot miss: it proves the watch works. */
    cr_expect_eq(dd_duet(&d, &out, "exec trap -- /bin/sleep 0.5"), 0);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec trap -- /bin/ls /proc/self/fd"), 0);
    cr_expect_str_eq(out, "0\n1\n2\n3\n", "an exec'd command has only its stdio (3: ls's directory): %s", out);
    free(out);
    /* Health checks keep running meanwhile (one a second). */
    sleep(4);
    cr_assert_eq(dd_duet(&d, &out, "logs trap"), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/duetd", dd_env("DUET_BUILD"));
    const char *const host[] = {path, dd_env("DUET_INIT"), NULL};
    cr_expect(!strstr(out, "state.db"), "the container opened the store");
    int exes = watch_report_check(out, host);
    cr_expect_gt(exes, 0, "the watcher saw the execs at all");
    free(out);
    dd_finish(&d);
}

/* A check that never ends (and leaves an orphan behind) is killed at its
 * timeout with everything it started; it holds back no delete; after a
 * kill -9 of duetd nothing of it keeps the daemon's sockets, so the next
 * duetd starts and finishes the delete. */
Test(attack, a_hung_health_check_holds_nothing, .timeout = 180)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "hang.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: hang}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sleep, '1000']\n"
        "  healthcheck: {exec: [/bin/sh, -c, 'sleep 1000 & exec sleep 1000'], interval: 1s, timeout: 1s}\n"
        "---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: hang2}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sleep, '1000']\n"
        "  healthcheck: {exec: [/bin/sh, -c, 'sleep 1000 & exec sleep 1000'], interval: 1s, timeout: 1s}\n",
        ROOTFS, ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "hang", "health", "unhealthy", 30000);
    char *why = dd_field(&d, "hang", "health_message");
    cr_expect(why && strstr(why, "no answer within 1000 ms"), "%s", why ? why : "(none)");
    free(why);
    /* Killed, not piling up: beside duet-init and the workload's sleep,
     * at most the trees of two checks (3 processes each: one ending while
     * the next starts), over seconds in which unkilled checks would add 3
     * a second. */
    char cg[512];
    snprintf(cg, sizeof(cg), "%s/hang/cgroup.procs", d.cgdir);
    int most = 0;
    for (int i = 0; i < 16; i++) {
        FILE *f = fopen(cg, "r");
        cr_assert(f, "%s", cg);
        int procs = 0, pid;
        while (fscanf(f, "%d", &pid) == 1)
            procs++;
        fclose(f);
        most = procs > most ? procs : most;
        usleep(250000);
    }
    cr_expect_leq(most, 8, "%d processes in the container: the checks' trees are not killed", most);
    cr_expect_geq(most, 2, "the count sees the container's own processes");
    uint64_t t0 = dd_now_ms();
    cr_expect_eq(dd_duet(&d, &out, "delete hang --wait"), 0, "%s", out);
    free(out);
    cr_expect_lt(dd_now_ms() - t0, 10000, "delete waited for the hung check");
    /* kill -9 while hang2's check hangs: the next daemon starts (no
     * helper holds its name server's socket) and deletes hang2. */
    sleep(2);
    dd_kill9(&d);
    dd_start(&d);
    cr_expect_eq(dd_duet(&d, &out, "delete hang2 --wait"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

/* Volumes and roots that are the host, or the daemon's own state, are
 * refused at apply with the reason; hostAccess lets them through and
 * plan and describe say so.  With /proc mounted a container's root could
 * write the host's core_pattern. */
Test(attack, host_paths_are_refused_unless_said, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *srcs[] = {"/proc", "/", "/etc", "/sys/kernel", "/dev", d.state, d.dir};
    for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
        const char *m = dd_manifest(&d, "host.yaml",
                                    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: grab}\nspec:\n"
                                    "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/sleep, '30']\n"
                                    "  volumes: [{source: %s, target: /host}]\n",
                                    ROOTFS, srcs[i]);
        char *out;
        cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "volume %s: %s", srcs[i], out);
        cr_expect(strstr(out, "spec.hostAccess: true"), "volume %s: %s", srcs[i], out);
        free(out);
    }
    const char *m = dd_manifest(&d, "root.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: grab}\nspec:\n"
                                "  placement: container\n  image: {rootfs: /}\n  command: [/bin/true]\n");
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s", out);
    cr_expect(strstr(out, "spec.image.rootfs / is or holds the host's"), "%s", out);
    free(out);
    json_t *all = dd_get(&d, "/v1/workloads");
    cr_expect_eq(json_array_size(json_object_get(all, "workloads")), 0, "nothing was created");
    json_decref(all);
    /* Said knowingly: allowed, and shown. */
    m = dd_manifest(&d, "said.yaml",
                    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: said}\nspec:\n"
                    "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/sleep, '30']\n"
                    "  hostAccess: true\n  volumes: [{source: /etc, target: /host-etc, readOnly: true}]\n",
                    ROOTFS);
    cr_expect_eq(dd_duet(&d, &out, "plan -f %s", m), 0, "%s", out);
    cr_expect(strstr(out, "warning: hostAccess: volume /etc is or holds the host's /etc"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "describe said"), 0);
    cr_expect(strstr(out, "Warning:     hostAccess: volume /etc"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec said -- /bin/cat /host-etc/hostname"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

/* A container that writes without end (the 2 GiB writer of the attack)
 * stops at its resources.disk: the host keeps at most that for it, and
 * describe shows how much of the bound is used.  With no bound the same
 * writer filled what it was given. */
Test(attack, a_container_that_fills_its_disk_stops_at_its_bound, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(&d, "fill.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: filler}\nspec:\n"
                                "  placement: container\n  image: {rootfs: %s}\n"
                                "  command: [/bin/sh, -c, 'dd if=/dev/zero of=/fill bs=1M count=2048; echo dd=$?; "
                                "sync; sleep 60']\n"
                                "  resources: {disk: 48Mi}\n",
                                ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "filler", "dd=", 30000), "the writer never finished");
    cr_expect(duet_logs_until(&d, "filler", "No space left on device", 1000), "the writer was not stopped");
    cr_expect_eq(dd_duet(&d, &out, "describe filler"), 0, "%s", out);
    double used = -1, limit = -1;
    const char *u = strstr(out, "disk ");
    cr_assert_not_null(u, "%s", out);
    cr_expect_eq(sscanf(u, "disk %lf MiB of %lf MiB", &used, &limit), 2, "%s", out);
    cr_expect_eq(limit, 48.0, "%s", out);
    cr_expect(used > 24.0 && used <= 48.0, "the layer holds %.1f MiB: %s", used, out);
    free(out);
    json_t *w = dd_workload(&d, "filler");
    json_t *st = json_object_get(json_object_get(w, "instance"), "stats");
    cr_expect_eq(json_integer_value(json_object_get(st, "disk_limit")), 48ll << 20);
    cr_expect_leq(json_integer_value(json_object_get(st, "disk_bytes")), 48ll << 20);
    json_decref(w);
    cr_expect_eq(dd_duet(&d, &out, "delete filler --wait"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

/* duet exec of a command that prints without end (the container may have
 * replaced what was asked for with one): the daemon holds at most 4 MiB
 * of it, the command gets EPERM past that and ends, and the CLI says the
 * output was cut.  Before, the output grew in the daemon's memory for as
 * long as the command ran. */
Test(attack, an_exec_that_prints_without_end_is_cut, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(&d, "talk.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: talker}\nspec:\n"
                                "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/sleep, '600']\n",
                                ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    uint64_t t0 = dd_now_ms();
    int rc = dd_duet(&d, &out, "exec talker -- /bin/yes");
    cr_expect_eq(rc, 1, "yes ended on its write error (exit %d)", rc);
    cr_expect_lt(dd_now_ms() - t0, 30000, "the exec did not end soon after its 4 MiB");
    size_t len = strlen(out);
    cr_expect_geq(len, 4u << 20, "the first 4 MiB came back (%zu bytes)", len);
    cr_expect_lt(len, (4u << 20) + 4096, "no more than 4 MiB came back (%zu bytes)", len);
    cr_expect(strstr(out, "duet: the command's stdout was cut at 4 MiB"), "the cut was not reported");
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec talker -- /bin/echo still fine"), 0, "%s", out);
    cr_expect_str_eq(out, "still fine\n");
    free(out);
    dd_finish(&d);
}

static int connect_to(struct dd *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int count_fds(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(p);
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        n += e->d_name[0] != '.';
    if (dir)
        closedir(dir);
    return n;
}

static long status_kib(pid_t pid, const char *field)
{
    char p[64], line[256];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0)
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

/* 1,000 connections that never finish their request take every slot; the
 * operator's `duet get` still gets in, and the daemon answers at once. */
Test(attack, a_connection_flood_leaves_the_operator_a_way_in, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    enum { N = 1000 };
    int fds[N], opened = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(&d);
        if (fds[i] >= 0) {
            opened++;
            send(fds[i], "GET /v1/work", 12, MSG_NOSIGNAL);   /* and never the rest */
        }
    }
    cr_expect_gt(opened, 600);
    usleep(300000);
    for (int k = 0; k < 3; k++) {
        char *out;
        uint64_t t0 = dd_now_ms();
        cr_expect_eq(dd_duet(&d, &out, "get"), 0, "duet get during a flood: %s", out);
        cr_expect_lt(dd_now_ms() - t0, 3000, "duet get took %llu ms", (unsigned long long)(dd_now_ms() - t0));
        free(out);
    }
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    dd_finish(&d);
}

/* 600 followers whose clients are killed, with nothing happening in the
 * fleet: duetd lets go of them at once, not at the next event. */
Test(attack, interrupted_followers_are_let_go_at_once, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    int before = count_fds(d.pid);
    enum { N = 600 };
    int fds[N], opened = 0;
    const char *req = "GET /v1/events?follow=1 HTTP/1.1\r\nHost: duet\r\n\r\n";
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(&d);
        if (fds[i] >= 0 && send(fds[i], req, strlen(req), MSG_NOSIGNAL) > 0)
            opened++;
    }
    cr_expect_gt(opened, 400);
    usleep(500000);
    int during = count_fds(d.pid);
    cr_expect_gt(during, before + 300, "the followers are held (%d fds, %d before)", during, before);
    /* As a killed `duet events -f` leaves it: all it was sent read, then
     * closed (a plain end of stream, not a reset). */
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0)
            continue;
        char buf[4096];
        while (recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
        close(fds[i]);
    }
    uint64_t t0 = dd_now_ms();
    int after = during;
    while (dd_now_ms() - t0 < 2000 && (after = count_fds(d.pid)) > before + 5)
        usleep(50000);
    cr_expect_leq(after, before + 5, "duetd still holds %d fds (%d before) 2 s after its followers went", after,
                  before);
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "get"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

/* 100 clients sending 14 MiB bodies at once: duetd holds a bounded total
 * (the rest are refused with 503) and gives the memory back. */
Test(attack, request_bodies_are_bounded_in_total, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    long base = status_kib(d.pid, "VmRSS:");
    enum { N = 100, BODY = 14 << 20, CHUNK = 1 << 20 };
    int fds[N];
    size_t sent[N];
    char *chunk = malloc(CHUNK);
    memset(chunk, 'x', CHUNK);
    chunk[0] = '{';
    char head[160];
    snprintf(head, sizeof(head), "POST /v1/apply HTTP/1.1\r\nHost: duet\r\nContent-Length: %d\r\n\r\n", BODY);
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(&d);
        sent[i] = 0;
        if (fds[i] >= 0) {
            fcntl(fds[i], F_SETFL, O_NONBLOCK);
            send(fds[i], head, strlen(head), MSG_NOSIGNAL);
        }
    }
    /* Round-robin, a chunk each, until every body is sent or refused. */
    for (bool more = true; more;) {
        more = false;
        for (int i = 0; i < N; i++) {
            if (fds[i] < 0 || sent[i] >= BODY)
                continue;
            size_t want = BODY - sent[i] < CHUNK ? BODY - sent[i] : CHUNK;
            ssize_t n = send(fds[i], chunk, want, MSG_NOSIGNAL);
            if (n > 0)
                sent[i] += (size_t)n;
            else if (n < 0 && errno != EAGAIN) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            more = true;
        }
        usleep(2000);
    }
    long peak = status_kib(d.pid, "VmHWM:");
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(chunk);
    usleep(500000);
    long after = status_kib(d.pid, "VmRSS:");
    const char *lim = getenv("DUET_RSS_LIMIT_KIB");
    long keep = lim ? atol(lim) : 64 << 10;
    cr_expect_lt(peak - base, 320 << 10, "duetd grew by %ld KiB while 100 bodies of 14 MiB came in", peak - base);
    cr_expect_lt(after - base, keep, "duetd still holds %ld KiB more than before", after - base);
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "get"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

static long long file_size(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* A workload that prints without end holds at most two generations of
 * --log-max on the host; a log ending in a 40 MB line answers --tail at
 * once, says what it left out, and never holds the daemon; a whole log is
 * sent whole. */
Test(attack, logs_are_capped_and_never_hold_the_daemon, .timeout = 120)
{
    struct dd d;
    dd_init_with_log_max(&d, "4Mi");
    const char *m = dd_manifest(
        &d, "logs.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: flood}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/yes, 'all work and no play makes a full disk']\n"
        "---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: longline}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n"
        "  command: [/bin/sh, -c, \"echo first; echo second; yes aaaaaaa | head -c 40000000 | tr -d '[:space:]'; "
        "echo; echo -n tail-without-newline; sleep 1000\"]\n",
        ROOTFS, ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    sleep(4);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/containers/flood", d.state);
    /* Sampled while it rotates many times a second. */
    long long most_cur = 0, most_prev = 0;
    for (int i = 0; i < 20; i++) {
        long long cur = file_size(dir, "log"), prev = file_size(dir, "log.1");
        most_cur = cur > most_cur ? cur : most_cur;
        most_prev = prev > most_prev ? prev : most_prev;
        usleep(50000);
    }
    cr_expect_leq(most_cur, (4 << 20) + (64 << 10), "flood's log reached %lld bytes (cap 4 MiB)", most_cur);
    cr_expect_gt(most_prev, 0, "flood's log was rotated");
    cr_expect_leq(most_prev, (4 << 20) + (64 << 10), "flood's log.1 reached %lld bytes (cap 4 MiB)", most_prev);

    /* longline's log: "first", "second", a line of 40 MB, cut by the cap
     * into generations; the last one ends with a line without newline. */
    uint64_t t0 = dd_now_ms();
    for (int i = 0; i < 100 && !duet_logs_until(&d, "longline", "tail-without-newline", 100); i++)
        ;
    cr_assert_eq(dd_duet(&d, &out, "logs --tail 3 longline"), 0, "%s", out);
    cr_expect(strstr(out, "tail-without-newline"), "the last line is there");
    cr_expect_lt(strlen(out), (5u << 20), "--tail 3 sent %zu bytes", strlen(out));
    free(out);
    cr_expect_lt(dd_now_ms() - t0, 20000);
    /* The whole log: both generations, nothing dropped on the way. */
    snprintf(dir, sizeof(dir), "%s/containers/longline", d.state);
    long long want = file_size(dir, "log") + file_size(dir, "log.1");
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s logs longline | wc -c", d.sock, dd_env("DUET_BIN"));
    FILE *p = popen(cmd, "r");
    long long got = 0;
    cr_assert(p && fscanf(p, "%lld", &got) == 1);
    pclose(p);
    cr_expect_eq(got, want, "duet logs sent %lld of %lld bytes", got, want);
    /* A slow reader of a large log holds nothing of the daemon's: while
     * one reads 1 byte a second, `duet get` answers at once. */
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s logs longline | (sleep 3; head -c 1 >/dev/null)", d.sock,
             dd_env("DUET_BIN"));
    FILE *slow = popen(cmd, "r");
    usleep(500000);
    for (int i = 0; i < 3; i++) {
        t0 = dd_now_ms();
        cr_expect_eq(dd_duet(&d, &out, "get"), 0, "%s", out);
        free(out);
        cr_expect_lt(dd_now_ms() - t0, 1000, "duet get took %llu ms beside a slow log reader",
                     (unsigned long long)(dd_now_ms() - t0));
    }
    pclose(slow);
    dd_finish(&d);
}

/* A log ending in a line longer than the --tail scan reads back (16 MiB):
 * the answer comes at once and says what it left out. */
Test(attack, tail_of_a_huge_line_is_bounded_and_says_so, .timeout = 120)
{
    struct dd d;
    dd_init_with_log_max(&d, "64Mi");
    const char *m = dd_manifest(
        &d, "huge.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: huge}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n"
        "  command: [/bin/sh, -c, \"echo first; yes aaaaaaa | head -c 40000000 | tr -d '[:space:]'; echo -n END; "
        "sleep 1000\"]\n",
        ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/containers/huge", d.state);
    for (int i = 0; i < 300 && file_size(dir, "log") < 35000000; i++)
        usleep(100000);
    cr_assert_geq(file_size(dir, "log"), 35000000);
    usleep(500000);
    uint64_t t0 = dd_now_ms();
    cr_assert_eq(dd_duet(&d, &out, "logs --tail 3 huge"), 0);
    cr_expect_lt(dd_now_ms() - t0, 5000, "--tail took %llu ms", (unsigned long long)(dd_now_ms() - t0));
    cr_expect(strncmp(out, "[duet: the lines asked for are longer than 16 MiB", 49) == 0, "%.120s", out);
    cr_expect(strlen(out) < (17u << 20) && strstr(out, "END"), "%zu bytes", strlen(out));
    free(out);
    dd_finish(&d);
}
