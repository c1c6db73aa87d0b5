/*
 * dtest.h - a real duetd for each test: started on a temporary socket and
 * state dir, driven through the duet CLI (as users do) and the API client,
 * stopped by its pid.  Every test ends by deleting what it applied and
 * checking that nothing is left: no process in the daemon's cgroup parent,
 * no container or VM directory.
 */
#ifndef DUET_DTEST_H
#define DUET_DTEST_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/client.h"
#include "tests/vm/leftovers.h"
#include "tests/vm/private_libvirtd.h"
#include "common/fsutil.h"
#include "network/fleet.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "network/nft.h"

struct dd {
    char dir[64];
    char sock[100];
    char state[192];
    char cgdir[256];               /* the daemon's containers' cgroups */
    char bridge[16], subnet[24];   /* the daemon's own network: tests run side by side */
    bool network_from_store;       /* start without --bridge and --subnet: the state directory's own */
    char log_max[16];              /* --log-max, when set */
    bool tmpfs;                    /* the state directory is a tmpfs of its own */
    char libvirt_uri[32];          /* --libvirt-uri, when set */
    struct private_libvirtd lv;    /* its libvirtd, when the test started one */
    bool lv_on;
    const char *extra[8];          /* more duetd options, NULL-terminated */
    pid_t pid;
};

static inline json_t *dd_get(struct dd *d, const char *path);

static inline uint64_t dd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline const char *dd_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the daemon tests through make test", name);
    return v;
}

static inline bool dd_answers(struct dd *d)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    int status = client_call_buf(d->sock, "GET", "/v1/info", NULL, 0, &b, 2000, &err);
    free(b.data);
    return status == 200;
}

/* Starts duetd on d (made by dd_init) with the options tests use. */
/* A test that fails an assertion leaves its function at once, before its
 * dd_finish: what it started would outlive it (a duetd, its workloads, a
 * libvirtd) and disturb the tests after it.  The worker process runs this
 * on its way out instead: every workload deleted, the daemon stopped, the
 * tmpfs unmounted; the directory is kept, with the daemon's log.  It works
 * on copies: the test's own struct dd is on a stack frame that is gone by
 * then. */
#define DD_LIVE_MAX 4
static struct {
    const struct dd *owner;
    struct dd copy;
} dd_live[DD_LIVE_MAX];

/* d as it is now (started, stopped), or forgotten (finished). */
static inline void dd_live_set(const struct dd *d, bool on)
{
    int free_slot = -1;
    for (int i = 0; i < DD_LIVE_MAX; i++) {
        if (dd_live[i].owner == d) {
            if (on)
                dd_live[i].copy = *d;
            else
                dd_live[i].owner = NULL;
            return;
        }
        if (!dd_live[i].owner && free_slot < 0)
            free_slot = i;
    }
    if (on && free_slot >= 0) {
        dd_live[free_slot].owner = d;
        dd_live[free_slot].copy = *d;
    }
}

static void dd_cleanup_at_exit(void)
{
    for (int i = 0; i < DD_LIVE_MAX; i++) {
        if (!dd_live[i].owner)
            continue;
        dd_live[i].owner = NULL;
        struct dd *d = &dd_live[i].copy;
        if (d->pid > 0) {
            struct client_buf b = {0};
            struct duet_err err = {0};
            if (client_call_buf(d->sock, "GET", "/v1/workloads", NULL, 0, &b, 10000, &err) == 200) {
                json_t *all = json_loads(b.data, 0, NULL);
                size_t k;
                json_t *w;
                json_array_foreach(json_object_get(all, "workloads"), k, w) {
                    char path[128];
                    struct client_buf x = {0};
                    snprintf(path, sizeof(path), "/v1/workloads/%s", json_string_value(json_object_get(w, "name")));
                    client_call_buf(d->sock, "DELETE", path, NULL, 0, &x, 10000, &err);
                    free(x.data);
                }
                json_decref(all);
                for (int t = 0; t < 600; t++) {
                    struct client_buf l = {0};
                    client_call_buf(d->sock, "GET", "/v1/workloads", NULL, 0, &l, 10000, &err);
                    json_t *left = l.data ? json_loads(l.data, 0, NULL) : NULL;
                    size_t n = json_array_size(json_object_get(left, "workloads"));
                    json_decref(left);
                    free(l.data);
                    if (n == 0)
                        break;
                    usleep(50000);
                }
            }
            free(b.data);
            kill(d->pid, SIGTERM);
            waitpid(d->pid, NULL, 0);
            d->pid = -1;
        }
        if (d->tmpfs)
            umount2(d->state, MNT_DETACH);
        if (d->lv_on)
            private_libvirtd_stop(&d->lv);
        fprintf(stderr, "dtest: cleaned up after a failed test; its log is in %s\n", d->dir);
    }
}

static inline void dd_start(struct dd *d)
{
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(dd_cleanup_at_exit);
    }
    char duetd[512];
    snprintf(duetd, sizeof(duetd), "%s/duetd", dd_env("DUET_BUILD"));
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char log[256];
        snprintf(log, sizeof(log), "%s/duetd.log", d->dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* A descriptor that is not close-on-exec, as a shell may leave
         * one to the programs it starts: duetd must not pass it on. */
        int dir = open(d->dir, O_RDONLY | O_DIRECTORY);
        if (dir >= 0 && dir != 251) {
            dup2(dir, 251);
            close(dir);
        }
        const char *argv[32] = {"duetd", "--foreground", "--state-dir", d->state, "--socket", d->sock,
                                "--restart-backoff", "100", "--stop-grace", "2000", "--request-timeout", "1500",
                                "--guest-kernel",
                                getenv("DUET_GUEST_KERNEL") ? getenv("DUET_GUEST_KERNEL") : "/nonexistent"};
        int n = 14;
        if (!d->network_from_store) {
            argv[n++] = "--bridge";
            argv[n++] = d->bridge;
            argv[n++] = "--subnet";
            argv[n++] = d->subnet;
        }
        if (d->log_max[0]) {
            argv[n++] = "--log-max";
            argv[n++] = d->log_max;
        }
        if (d->libvirt_uri[0]) {
            argv[n++] = "--libvirt-uri";
            argv[n++] = d->libvirt_uri;
        }
        for (size_t i = 0; i < 8 && d->extra[i] && n < 31; i++)
            argv[n++] = d->extra[i];
        argv[n] = NULL;
        execv(duetd, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    uint64_t deadline = dd_now_ms() + 20000;
    while (!dd_answers(d)) {
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "duetd exited during start-up; see %s/duetd.log", d->dir);
        cr_assert(dd_now_ms() < deadline, "duetd did not answer within 20 s");
        usleep(20000);
    }
    dd_live_set(d, true);
    json_t *info = dd_get(d, "/v1/info");
    snprintf(d->cgdir, sizeof(d->cgdir), "%s", json_string_value(json_object_get(info, "cgroup_dir")));
    json_decref(info);
    cr_assert(d->cgdir[0], "duetd reports no cgroup directory");
}

static inline void dd_init_with_log_max(struct dd *d, const char *log_max);
static inline void dd_init(struct dd *d)
{
    dd_init_with_log_max(d, NULL);
}

static inline void dd_prepare(struct dd *d, const char *log_max);

static inline void dd_init_with_log_max(struct dd *d, const char *log_max)
{
    dd_prepare(d, log_max);
    dd_start(d);
}

/* A daemon that runs VMs (dd_vm_libvirtd between dd_prepare and dd_start
 * for one with options of its own).  Under the sanitizers (DUET_VM_VIA_LIBVIRTD=1,
 * set by make asan) its VMs go through a libvirtd of the test's own
 * instead of libvirt's embedded driver: the embedded driver forks inside
 * duetd (dmidecode, QEMU's capability probe, each QEMU) and the children
 * allocate memory before they exec, which GCC 12's ASan allocator does
 * not survive (it takes no lock around fork: a child can wait for ever on
 * an allocator lock another thread held).  Glibc's allocator does, so the
 * plain suite keeps the embedded driver, as users run it. */
static inline void dd_vm_libvirtd(struct dd *d)
{
    const char *via = getenv("DUET_VM_VIA_LIBVIRTD");
    if (via && strcmp(via, "1") == 0) {
        char why[256];
        cr_assert_eq(private_libvirtd_start(&d->lv, why, sizeof(why)), 0, "a libvirtd of the test's own: %s", why);
        d->lv_on = true;
        snprintf(d->libvirt_uri, sizeof(d->libvirt_uri), "qemu:///system");
    }
}

static inline void dd_init_vm(struct dd *d)
{
    dd_prepare(d, NULL);
    dd_vm_libvirtd(d);
    dd_start(d);
}

/* A second daemon in the same test ("another host"): its own state
 * directory, bridge and subnet; its VMs go through first's libvirtd when
 * first has one. */
static inline void dd_init_beside(struct dd *d, const struct dd *first)
{
    dd_prepare(d, NULL);
    unsigned id = (unsigned)getpid();
    snprintf(d->bridge, sizeof(d->bridge), "du%u", id % 1000000);
    snprintf(d->subnet, sizeof(d->subnet), "10.%u.%u.0/24", 200 + (id >> 8) % 50, id & 255);
    if (first->lv_on)
        snprintf(d->libvirt_uri, sizeof(d->libvirt_uri), "%s", first->libvirt_uri);
    dd_start(d);
}

/* Its VMs go through a libvirtd (dd_init_vm under the sanitizers). */
static inline bool dd_libvirtd(const struct dd *d)
{
    return d->lv_on;
}

/* The state directory on a tmpfs of `size` bytes (mount's size=), which a
 * test can fill to the last page. */
static inline void dd_init_on_tmpfs(struct dd *d, const char *size)
{
    dd_prepare(d, NULL);
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
    cr_assert_eq(mkdir(d->state, 0700), 0);
    cr_assert_eq(mount("duet-test", d->state, "tmpfs", MS_NOSUID | MS_NODEV, opts), 0, "mount tmpfs: %s",
                 strerror(errno));
    d->tmpfs = true;
    dd_start(d);
}

static inline void dd_prepare(struct dd *d, const char *log_max)
{
    memset(d, 0, sizeof(*d));
    if (log_max)
        snprintf(d->log_max, sizeof(d->log_max), "%s", log_max);
    snprintf(d->dir, sizeof(d->dir), "/tmp/duet-dt-XXXXXX");
    cr_assert(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/duet.sock", d->dir);
    snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
    /* Named after this process: two tests at once never meet on the host
     * (the daemon refuses a bridge or subnet it does not own). */
    unsigned id = (unsigned)getpid();
    snprintf(d->bridge, sizeof(d->bridge), "dt%u", id % 1000000);
    snprintf(d->subnet, sizeof(d->subnet), "10.%u.%u.0/24", 100 + (id >> 8) % 100, id & 255);
}

/* Under the sanitizers duetd reports into its log: any report fails the
 * test.  And the log is duet's own: libvirt's lines ("TIME: PID: error :
 * ...") stay out of it unless duetd runs with --debug (docs/install.md). */
static inline void dd_check_log(struct dd *d)
{
    char path[128], line[1024];
    snprintf(path, sizeof(path), "%s/duetd.log", d->dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        cr_expect(!strstr(line, "Sanitizer") && !strstr(line, "runtime error:"), "duetd: %s (see %s)", line, path);
        cr_expect(!strstr(line, ": error : ") && !strstr(line, ": warning : ") && !strstr(line, ": info : "),
                  "libvirt's own line in duetd's log: %s (see %s)", line, path);
    }
    if (f)
        fclose(f);
}

/* SIGTERM and wait: workloads keep running. */
static inline void dd_stop(struct dd *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(d->pid, &st, 0), d->pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "duetd ended with status %d; see %s/duetd.log", st, d->dir);
    d->pid = -1;
    dd_live_set(d, true);
    dd_check_log(d);
}

static inline void dd_kill9(struct dd *d)
{
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = -1;
    dd_live_set(d, true);
}

/* Runs the duet CLI with d's socket; stdout+stderr into *out (may be NULL). */
static inline int dd_duet(struct dd *d, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int dd_duet(struct dd *d, char **out, const char *fmt, ...)
{
    char args[4096], cmd[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s %s 2>&1", d->sock, dd_env("DUET_BIN"), args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A TCP port nobody listens on now, on any address (the kernel's pick,
 * then let go). */
static inline unsigned dd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof(sa);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A connection to 127.0.0.1:port, or -1. */
static inline int dd_tcp_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Everything fd gives until its end (malloc'd, NUL-terminated); closes fd. */
static inline char *dd_read_all(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    cr_assert(buf);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* Runs cmd through the shell; its output (both streams, as cmd says) in
 * out, its exit status returned (-1: it did not exit). */
static inline int dd_sh_out(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Runs the CLI command until its output holds want (every 0.3 s). */
static inline bool duet_until(struct dd *d, const char *cmd, const char *want, unsigned timeout_ms)
{
    uint64_t deadline = dd_now_ms() + timeout_ms;
    do {
        char *out;
        dd_duet(d, &out, "%s", cmd);
        bool ok = strstr(out, want) != NULL;
        free(out);
        if (ok)
            return true;
        usleep(300000);
    } while (dd_now_ms() < deadline);
    return false;
}

/* `duet exec --timeout 2s NAME -- CMD` of a command that never ends: it
 * ends 137 (killed with all it started) within bound_ms. */
static inline void dd_exec_times_out(struct dd *d, const char *name, const char *cmd, uint64_t bound_ms)
{
    char *out;
    uint64_t t0 = dd_now_ms();
    cr_expect_eq(dd_duet(d, &out, "exec --timeout 2s %s -- %s", name, cmd), 137, "%s", out);
    cr_expect_lt(dd_now_ms() - t0, bound_ms, "%s: the timeout did not end it in time", name);
    free(out);
}

static inline bool duet_logs_until(struct dd *d, const char *name, const char *want, unsigned timeout_ms)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "logs %s", name);
    return duet_until(d, cmd, want, timeout_ms);
}

/* A manifest file in d's directory; returns its path (static per name). */
static inline const char *dd_manifest(struct dd *d, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline const char *dd_manifest(struct dd *d, const char *name, const char *fmt, ...)
{
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 256, "%s/%s", d->dir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return p;
}

/* GET path, JSON answer (NULL on a non-200). */
static inline json_t *dd_get(struct dd *d, const char *path)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    int status = client_call_buf(d->sock, "GET", path, NULL, 0, &b, 30000, &err);
    json_t *j = status == 200 ? json_loads(b.data, 0, NULL) : NULL;
    free(b.data);
    return j;
}

static inline json_t *dd_workload(struct dd *d, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/workloads/%s", name);
    return dd_get(d, path);
}

/* The value of key in workload name ("" when absent). */
/* Applies one sleeping container called name on the fleet network, and
 * waits until it runs. */
static inline void dd_apply_sleeper(struct dd *d, const char *name)
{
    char file[80];
    snprintf(file, sizeof(file), "%s.yaml", name);
    const char *m = dd_manifest(d, file,
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n"
                                "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n",
                                name, dd_env("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);
}

/* A file's contents (malloc'd), or NULL when it cannot be read. */
static inline char *dd_slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, o);
    fclose(f);
    fclose(o);
    return buf;
}

static inline char *dd_field(struct dd *d, const char *name, const char *key)
{
    json_t *w = dd_workload(d, name);
    json_t *v = w ? json_object_get(w, key) : NULL;
    char *s = v ? (json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY)) : strdup("");
    json_decref(w);
    return s;
}

static inline bool dd_field_is(struct dd *d, const char *name, const char *key, const char *want)
{
    char *v = dd_field(d, name, key);
    bool eq = strcmp(v, want) == 0;
    free(v);
    return eq;
}

/* Waits until workload name's key equals want; fails the test after timeout_ms. */
static inline void dd_wait_field(struct dd *d, const char *name, const char *key, const char *want, unsigned timeout_ms)
{
    uint64_t deadline = dd_now_ms() + timeout_ms;
    while (!dd_field_is(d, name, key, want)) {
        if (dd_now_ms() > deadline) {
            char *v = dd_field(d, name, key);
            cr_assert_fail("%s: %s is \"%s\", not \"%s\", after %u ms", name, key, v, want, timeout_ms);
        }
        usleep(50000);
    }
}

static inline int64_t dd_int(struct dd *d, const char *name, const char *key)
{
    char *v = dd_field(d, name, key);
    int64_t n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

/* The instance handle (pid + start time for containers). */
static inline char *dd_handle(struct dd *d, const char *name)
{
    json_t *w = dd_workload(d, name);
    json_t *inst = w ? json_object_get(w, "instance") : NULL;
    const char *h = json_string_value(json_object_get(inst, "handle"));
    char *r = strdup(h ? h : "");
    json_decref(w);
    return r;
}

/* Events of workload name, in order, "type:message" per line. */
static inline char *dd_events(struct dd *d, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/events?workload=%s", name);
    struct client_buf b = {0};
    struct duet_err err = {0};
    client_call_buf(d->sock, "GET", path, NULL, 0, &b, 30000, &err);
    return b.data ? b.data : strdup("");
}

/* The id of the first event of `type` in an NDJSON event list, or -1. */
static inline int64_t dd_event_id(const char *events, const char *type)
{
    for (const char *line = events; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        json_t *e = json_loadb(line, n, 0, NULL);
        const char *t = e ? json_string_value(json_object_get(e, "type")) : NULL;
        if (t && strcmp(t, type) == 0) {
            int64_t id = json_integer_value(json_object_get(e, "id"));
            json_decref(e);
            return id;
        }
        json_decref(e);
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* Processes of the daemon's containers: those in its cgroup parent
 * (duet-HASH under the pids controller, v1 or v2). */
static inline int dd_count_procs(const char *cgroup_dir)
{
    int n = 0;
    DIR *dir = opendir(cgroup_dir);
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s/cgroup.procs", cgroup_dir, e->d_name);
        FILE *f = fopen(p, "r");
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1)
            n++;
        if (f)
            fclose(f);
    }
    closedir(dir);
    return n;
}

static inline int dd_count_dirs(const char *path)
{
    int n = 0;
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.' && e->d_type == DT_DIR)
            n++;
    closedir(dir);
    return n;
}

struct dd_links {
    struct ipam_subnet subnet;
    char names[256];
};

/* A host end of ours is named dv + its address in hex. */
static inline void dd_leftover_link(void *opaque, const struct nl_link *l)
{
    struct dd_links *x = opaque;
    uint32_t addr;
    if (fleet_net_host_if_addr(l->name, &addr) && ipam_contains(&x->subnet, addr) &&
        strlen(x->names) + strlen(l->name) + 2 < sizeof(x->names)) {
        strcat(x->names, " ");
        strcat(x->names, l->name);
    }
}

/* With its last workload gone and the daemon stopped, nothing of the
 * network is left: no bridge, no veth or tap, no table. */
static inline void dd_check_network_gone(struct dd *d)
{
    struct nl nl;
    struct duet_err err = {0};
    cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
    struct nl_link l;
    cr_expect_eq(nl_link_get(&nl, d->bridge, &l, &err), -1, "bridge %s is still there", d->bridge);
    /* The kernel finishes a veth's removal in a work queue of its own: a
     * leftover is one still there after 15 s. */
    struct dd_links x = {0};
    cr_assert_eq(ipam_parse_subnet(d->subnet, &x.subnet, &err), 0);
    uint64_t deadline = dd_now_ms() + 15000;
    do {
        x.names[0] = '\0';
        cr_assert_eq(nl_link_list(&nl, dd_leftover_link, &x, &err), 0, "%s", err.msg);
    } while (x.names[0] && dd_now_ms() < deadline && usleep(100000) == 0);
    cr_expect_eq(x.names[0], '\0', "interfaces left:%s", x.names);
    nl_close(&nl);
    cr_expect(!nft_table_exists(d->bridge), "table duet_%s is still there", d->bridge);
}

/* Deletes every workload, waits until they are gone, stops the daemon
 * and checks the host is clean; removes the directory. */
static inline void dd_finish(struct dd *d)
{
    if (d->pid <= 0)
        dd_start(d);
    json_t *all = dd_get(d, "/v1/workloads");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(all, "workloads"), i, w) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/workloads/%s", json_string_value(json_object_get(w, "name")));
        struct client_buf b = {0};
        struct duet_err err = {0};
        int status = client_call_buf(d->sock, "DELETE", path, NULL, 0, &b, 30000, &err);
        /* 404: it was forgotten since the list (a delete of the test's own) */
        cr_expect(status == 202 || status == 404, "DELETE %s: %d %s %s", path, status, b.data ? b.data : "",
                  err.msg);
        free(b.data);
    }
    json_decref(all);
    uint64_t deadline = dd_now_ms() + 60000;
    for (;;) {
        json_t *left = dd_get(d, "/v1/workloads");
        size_t n = json_array_size(json_object_get(left, "workloads"));
        if (n > 0 && dd_now_ms() >= deadline) {
            /* Name what is stuck and keep the daemon's log for a look. */
            char *txt = json_dumps(left, JSON_COMPACT);
            cr_assert_fail("%zu workloads still there 60 s after delete: %s (log kept in %s)", n, txt, d->dir);
        }
        json_decref(left);
        if (n == 0)
            break;
        usleep(50000);
    }
    /* Named volumes outlive their workloads: removed here, so no mount
     * nor loop device is left (checked below). */
    json_t *vols = dd_get(d, "/v1/volumes");
    json_array_foreach(json_object_get(vols, "volumes"), i, w) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/volumes/%s", json_string_value(json_object_get(w, "name")));
        struct client_buf b = {0};
        struct duet_err err = {0};
        int status = client_call_buf(d->sock, "DELETE", path, NULL, 0, &b, 30000, &err);
        cr_expect_eq(status, 200, "DELETE %s: %d %s %s", path, status, b.data ? b.data : "", err.msg);
        free(b.data);
    }
    json_decref(vols);
    dd_stop(d);
    cr_expect_eq(dd_count_procs(d->cgdir), 0, "processes left in %s", d->cgdir);
    char p[256];
    snprintf(p, sizeof(p), "%s/containers", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "container directories left in %s", p);
    snprintf(p, sizeof(p), "%s/vm/instances", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "VM directories left in %s", p);
    /* What deleted workloads kept (a VM's disk, a last log) went with them. */
    snprintf(p, sizeof(p), "%s/containers/.kept", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "what deleted containers kept is left in %s", p);
    snprintf(p, sizeof(p), "%s/vm/kept", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "what deleted VMs kept is left in %s", p);
    snprintf(p, sizeof(p), "%s/backups", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "the copies of backups and restores are left in %s", p);
    /* No secret's value outlives the last workload that used it. */
    snprintf(p, sizeof(p), "%s/secrets/sealed", d->state);
    DIR *sealed = opendir(p);
    if (sealed) {
        struct dirent *e;
        while ((e = readdir(sealed)))
            cr_expect(e->d_name[0] == '.', "a sealed secret is left in %s: %s", p, e->d_name);
        closedir(sealed);
    }
    cr_expect_eq(machine_cgroups_left(d->state), 0, "libvirt's machine cgroups left for %s", d->state);
    cr_expect_eq(loop_devices_under(d->state, true, 5000), 0, "loop devices left for %s", d->state);
    dd_check_network_gone(d);
    if (d->tmpfs)
        cr_expect_eq(umount2(d->state, MNT_DETACH), 0, "umount %s: %s", d->state, strerror(errno));
    if (d->lv_on) {
        private_libvirtd_stop(&d->lv);
        duet_remove_tree(d->lv.root, NULL);
    }
    dd_live_set(d, false);
    duet_remove_tree(d->dir, NULL);
}

#endif
