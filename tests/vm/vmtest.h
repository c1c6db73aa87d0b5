/*
 * vmtest.h - the VM backend driven through backends/driver.h on a real
 * libuv loop, with libvirt's embedded QEMU driver rooted in a temporary
 * state directory: real QEMU guests, nothing else started.
 *
 * Under the sanitizers (DUET_VM_VIA_LIBVIRTD=1, set by make asan) the VMs
 * go through a libvirtd of the test's own instead, as in the daemon suite:
 * the embedded driver forks inside the instrumented test process, and a
 * child that allocates before it execs can wait for ever on an allocator
 * lock another thread held at the fork (GCC 12's ASan takes none around
 * fork).  Such a child was seen holding the suite's output pipe open, so
 * the run never ended.  One libvirtd per test process, started by its
 * first vt_open (or by vt_libvirtd_start before a test forks "daemons"
 * that must share it), stopped when that process exits.
 *
 * Calls are made the way the daemon makes them (on the loop, callbacks on
 * the loop); these helpers run the loop until a callback arrives.
 */
#ifndef DUET_VMTEST_H
#define DUET_VMTEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "manifests/manifest.h"
#include "backends/vm/vm.h"
#include "leftovers.h"
#include "private_libvirtd.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

/* Under the sanitizers: the leak check, now rather than at exit.  At exit
 * libvirt's threads (its event and worker threads, glib's) are being torn
 * down while LeakSanitizer stops the world to scan them, and its tracer was
 * seen to crash on that once in several runs; here every one of them is
 * idle.  This is the process's one check: none runs at exit after it. */
static inline int vt_thread_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static inline void vt_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    /* Threads still exiting (libvirt's, after the driver let go of its
     * connection) are what LeakSanitizer's tracer was seen to crash on:
     * wait until the set of threads has stayed the same for a second (300
     * ms was seen not to be enough on a loaded machine), 15 s at most. */
    int last = vt_thread_count(), stable = 0;
    for (int i = 0; i < 150 && stable < 10; i++) {
        usleep(100000);
        int now = vt_thread_count();
        stable = now == last ? stable + 1 : 0;
        last = now;
    }
    __lsan_do_leak_check();
#endif
}

struct vt_wait {
    bool done;
    bool failed;
    char err[DUET_ERR_MSG_MAX];
};

/* start's opaque is shared by its done and on_exit callbacks. */
struct vt_exit {
    struct vt_wait started;
    bool exited;
    int count;
    int code, sig;
};

struct vt {
    uv_loop_t loop;
    struct driver *drv;
    struct manifest_set *set;
    char state[64];
};

static inline void vt_done(void *opaque, const struct duet_err *e)
{
    struct vt_wait *w = opaque;
    w->done = true;
    if (e) {
        w->failed = true;
        snprintf(w->err, sizeof(w->err), "%s", e->msg);
    }
}

static inline void vt_start_done(void *opaque, const struct duet_err *e)
{
    struct vt_exit *x = opaque;
    vt_done(&x->started, e);
}

static inline void vt_exited(void *opaque, const struct driver_status *st)
{
    struct vt_exit *x = opaque;
    x->exited = true;
    x->count++;
    x->code = st->exit_code;
    x->sig = st->term_signal;
}

static inline uint64_t vt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void vt_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is true or timeout_ms passed; true if it came. */
static inline bool vt_run_until(struct vt *t, const bool *flag, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&t->loop, &tick);
    uv_timer_start(&tick, vt_tick, 20, 20);
    uint64_t until = vt_now() + timeout_ms;
    while (!*flag && vt_now() < until)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    return *flag;
}

static inline bool vt_wait_exit(struct vt *t, struct vt_exit *x, uint64_t timeout_ms)
{
    return vt_run_until(t, &x->exited, timeout_ms);
}

static struct {
    struct private_libvirtd d;
    pid_t owner;                   /* the process that started it: only it stops it */
} vt_lvd;

static inline bool vt_via_libvirtd(void)
{
    const char *v = getenv("DUET_VM_VIA_LIBVIRTD");
    return v && strcmp(v, "1") == 0;
}

static inline int vt_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static inline void vt_libvirtd_stop(void)
{
    if (vt_lvd.owner != getpid())
        return;
    private_libvirtd_stop(&vt_lvd.d);
    nftw(vt_lvd.d.root, vt_rm, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    vt_lvd.owner = 0;
}

static inline void vt_libvirtd_start(void)
{
    if (!vt_via_libvirtd() || vt_lvd.owner)
        return;
    char why[256];
    cr_assert_eq(private_libvirtd_start(&vt_lvd.d, why, sizeof(why)), 0, "a libvirtd of the test's own: %s", why);
    vt_lvd.owner = getpid();
    atexit(vt_libvirtd_stop);
}

static inline void vt_open(struct vt *t, const char *state, enum vm_accel accel)
{
    cr_assert_eq(uv_loop_init(&t->loop), 0);
    snprintf(t->state, sizeof(t->state), "%s", state);
    vt_libvirtd_start();
    struct vm_driver_options o = {
        .embedded = !vt_via_libvirtd(),
        .uri = vt_via_libvirtd() ? "qemu:///system" : NULL,
        .vminit = getenv("DUET_VMINIT"),
        .virtiofsd = getenv("DUET_VIRTIOFSD"),
        .guest_kernel = getenv("DUET_GUEST_KERNEL"),
        .accel = accel,
    };
    cr_assert_not_null(o.vminit, "DUET_VMINIT names duet-vminit (make check sets it)");
    cr_assert_not_null(o.virtiofsd, "DUET_VIRTIOFSD names duet-virtiofsd (make check sets it)");
    cr_assert_not_null(o.guest_kernel, "DUET_GUEST_KERNEL names the guest kernel (make check sets it)");
    t->drv = vm_driver_new(&o);
    struct duet_err err = {0};
    cr_assert_eq(t->drv->open(t->drv, &t->loop, t->state, &err), 0, "%s", err.msg);
}

static inline void vt_setup(struct vt *t, enum vm_accel accel)
{
    memset(t, 0, sizeof(*t));
    char state[64] = "/tmp/duet-vm-XXXXXX";
    cr_assert_not_null(mkdtemp(state));
    vt_open(t, state, accel);
}

/* Workload documents; @ROOTFS@, @KERNEL@ and @IMAGES@ are replaced. */
static inline void vt_load(struct vt *t, const char *yaml)
{
    char buf[16384];
    size_t o = 0;
    for (const char *p = yaml; *p && o < sizeof(buf) - 512;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (!strncmp(p, "@ROOTFS@", 8))
            rep = getenv("DUET_ROOTFS"), skip = 8;
        else if (!strncmp(p, "@KERNEL@", 8))
            rep = getenv("DUET_GUEST_KERNEL"), skip = 8;
        else if (!strncmp(p, "@IMAGES@", 8))
            rep = getenv("DUET_IMAGES"), skip = 8;
        if (skip) {
            cr_assert_not_null(rep, "test environment incomplete (run through make check)");
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", rep);
            p += skip;
        } else {
            buf[o++] = *p++;
        }
    }
    buf[o] = '\0';
    if (t->set)
        manifest_set_free(t->set);
    t->set = manifest_set_new();
    manifest_set_load_buffer(t->set, "vm-test.yaml", buf, o);
    manifest_set_validate(t->set);
    if (!manifest_set_ok(t->set)) {
        diag_print(&t->set->diags, stderr);
        cr_assert_fail("test manifest invalid");
    }
}

static inline const struct workload_spec *vt_spec(struct vt *t, const char *name)
{
    const struct workload_spec *w = manifest_set_find(t->set, name);
    cr_assert_not_null(w, "%s", name);
    return w;
}

/* create + start; returns the instance, asserting each step worked. */
static inline struct driver_instance *vt_boot(struct vt *t, const char *name, struct vt_exit *x)
{
    struct driver_instance *inst = NULL;
    struct vt_wait w = {0};
    struct duet_err err = {0};
    cr_assert_eq(t->drv->create(t->drv, vt_spec(t, name), NULL, &inst, vt_done, &w, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(t, &w.done, 120000), "create of %s finished", name);
    cr_assert(!w.failed, "create %s: %s", name, w.err);
    cr_assert_eq(t->drv->start(t->drv, inst, vt_start_done, vt_exited, x, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(t, &x->started.done, 120000), "start of %s finished", name);
    cr_assert(!x->started.failed, "start %s: %s", name, x->started.err);
    return inst;
}

static inline void vt_destroy(struct vt *t, struct driver_instance *inst)
{
    struct vt_wait w = {0};
    struct duet_err err = {0};
    cr_assert_eq(t->drv->destroy(t->drv, inst, vt_done, &w, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(t, &w.done, 60000), "destroy finished");
    cr_assert(!w.failed, "destroy: %s", w.err);
}

static inline void vt_stop(struct vt *t, struct driver_instance *inst, uint64_t grace_ms)
{
    struct vt_wait w = {0};
    struct duet_err err = {0};
    cr_assert_eq(t->drv->stop(t->drv, inst, grace_ms, vt_done, &w, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(t, &w.done, grace_ms + 60000), "stop finished");
    cr_assert(!w.failed, "stop: %s", w.err);
}

/* The whole file as a string (malloc'd), "" when missing. */
static inline char *vt_slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = calloc(1, 1 << 20);
    if (f) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static inline char *vt_log(struct vt *t, struct driver_instance *inst)
{
    int fd;
    struct duet_err err = {0};
    cr_assert_eq(t->drv->logs(t->drv, inst, &fd, NULL, &err), 0, "%s", err.msg);
    char *buf = calloc(1, 1 << 20);
    ssize_t n = read(fd, buf, (1 << 20) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

/* Waits until the workload's console log contains needle. */
static inline bool vt_log_waits_for(struct vt *t, struct driver_instance *inst, const char *needle, uint64_t ms)
{
    uint64_t until = vt_now() + ms;
    for (;;) {
        char *log = vt_log(t, inst);
        bool found = strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        if (vt_now() > until)
            return false;
        bool never = false;
        vt_run_until(t, &never, 100);
    }
}

/* Processes whose command line mentions s (QEMU names its files). */
static inline int vt_processes_mentioning(const char *s)
{
    const char *const needles[] = {s, NULL};
    return processes_matching(needles);
}

/* Persistent domain definitions libvirt keeps for this state dir. */
static inline int vt_defined_domains(const char *state)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/vm/libvirt/etc/qemu", state);
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".xml"))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static inline int vt_count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}


/* Nothing left: no QEMU, no definition, no instance files, no machine
 * cgroup.  Then the state dir goes. */
static inline void vt_teardown(struct vt *t)
{
    vm_driver_free(t->drv);
    t->drv = NULL;
    uv_run(&t->loop, UV_RUN_NOWAIT);
    cr_expect_eq(uv_loop_close(&t->loop), 0, "every handle was closed");
    char inst[128];
    snprintf(inst, sizeof(inst), "%s/vm/instances", t->state);
    cr_expect_eq(vt_count_entries(inst), 0, "no instance directory left in %s", inst);
    cr_expect_eq(vt_defined_domains(t->state), 0, "no domain definition left");
    /* QEMU may take a moment to go once destroyed */
    for (int i = 0; i < 100 && vt_processes_mentioning(t->state) > 0; i++)
        usleep(50000);
    cr_expect_eq(vt_processes_mentioning(t->state), 0, "no QEMU left running for %s", t->state);
    cr_expect_eq(machine_cgroups_left(t->state), 0, "libvirt's machine cgroups left for %s", t->state);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (t->set)
        manifest_set_free(t->set);
    t->set = NULL;
    nftw(t->state, vt_rm, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    vt_leak_check();
}

#endif
