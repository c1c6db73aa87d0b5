/*
 * The VM driver's logic against libvirt's in-process test driver
 * (test:///default): fast, and a supplement to tests/vm, which boots real
 * guests.  Ownership: a domain of the same name that duet did not make is
 * refused, never replaced; a stale one of duet's own is cleared.  The stop
 * path: the power button, the stopped event on the loop, the exit.
 */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backends/vm/domain.h"
#include "common/fsutil.h"
#include "manifests/manifest.h"
#include "backends/vm/vm.h"

struct flag {
    bool done, failed;
    char err[DUET_ERR_MSG_MAX];
    int exits, code, sig;
};

static void done_cb(void *o, const struct duet_err *e)
{
    struct flag *f = o;
    f->done = true;
    if (e) {
        f->failed = true;
        snprintf(f->err, sizeof(f->err), "%s", e->msg);
    }
}

static void exit_cb(void *o, const struct driver_status *st)
{
    struct flag *f = o;
    f->exits++;
    f->code = st->exit_code;
    f->sig = st->term_signal;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(uv_loop_t *loop, const bool *flag)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    for (int i = 0; i < 2000 && !*flag; i++)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

struct fixture {
    uv_loop_t loop;
    char state[64], kernel[96], initrd[96], owner[32];
    struct driver *drv;
    struct manifest_set *set;
};

static void fixture_open(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->state, sizeof(f->state), "/tmp/duet-vmt-XXXXXX");
    cr_assert_not_null(mkdtemp(f->state));
    snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinuz", f->state);
    snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->state);
    FILE *k = fopen(f->kernel, "we"), *i = fopen(f->initrd, "we");
    cr_assert(k && i);
    fclose(k);
    fclose(i);
    /* the owner the driver derives from its state directory */
    char real[PATH_MAX];
    cr_assert_not_null(realpath(f->state, real));
    uint32_t h = 2166136261u;
    for (const char *s = real; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    snprintf(f->owner, sizeof(f->owner), "duet-%08x", h);
    struct vm_driver_options o = {.uri = "test:///default", .accel = VM_ACCEL_TCG, .vminit = "/nonexistent"};
    f->drv = vm_driver_new(&o);
    struct duet_err err = {0};
    cr_assert_eq(f->drv->open(f->drv, &f->loop, f->state, &err), 0, "%s", err.msg);
    char y[1024];
    snprintf(y, sizeof(y),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n"
             "  image: {kernel: %s, initrd: %s}\n  resources: {memory: 128Mi}\n",
             f->kernel, f->initrd);
    f->set = manifest_set_new();
    manifest_set_load_buffer(f->set, "t.yaml", y, strlen(y));
    manifest_set_validate(f->set);
    cr_assert(manifest_set_ok(f->set));
}

static void fixture_close(struct fixture *f)
{
    vm_driver_free(f->drv);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    cr_expect_eq(uv_loop_close(&f->loop), 0);
    manifest_set_free(f->set);
    unlink(f->kernel);
    unlink(f->initrd);
    char path[128];
    snprintf(path, sizeof(path), "%s/vm/instances", f->state);
    cr_expect_eq(rmdir(path), 0, "no instance directory left");
    snprintf(path, sizeof(path), "%s/vm/libvirt.log", f->state);
    unlink(path);   /* libvirt's own log, where the driver sends it */
    /* What a workload keeps: the tests that destroy leave a last log. */
    snprintf(path, sizeof(path), "%s/vm/kept", f->state);
    duet_remove_tree(path, NULL);
    snprintf(path, sizeof(path), "%s/vm", f->state);
    cr_expect_eq(rmdir(path), 0, "nothing else left in %s", path);
    cr_expect_eq(rmdir(f->state), 0);
}

Test(vm_driver, a_foreign_domain_of_the_same_name_is_never_touched, .timeout = 20)
{
    struct fixture f;
    fixture_open(&f);
    /* someone else's domain, named as duet would name "web" */
    virConnectPtr c = virConnectOpen("test:///default");
    cr_assert_not_null(c);
    char xml[512];
    snprintf(xml, sizeof(xml),
             "<domain type='test'><name>%s-web</name><memory>65536</memory><vcpu>1</vcpu>"
             "<os><type>hvm</type></os></domain>",
             f.owner);
    virDomainPtr d = virDomainDefineXML(c, xml);
    cr_assert_not_null(d);
    struct driver_instance *inst = NULL;
    struct flag fl = {0};
    struct duet_err err = {0};
    cr_assert_eq(f.drv->create(f.drv, manifest_set_find(f.set, "web"), NULL, &inst, done_cb, &fl, &err), 0);
    cr_assert(run_until(&f.loop, &fl.done));
    cr_expect(fl.failed);
    cr_expect(strstr(fl.err, "that duet did not make; rename or remove it"), "%s", fl.err);
    cr_expect_eq(virDomainIsPersistent(d), 1, "the foreign domain is still there");
    struct flag dd = {0};
    f.drv->destroy(f.drv, inst, done_cb, &dd, &err);
    cr_assert(run_until(&f.loop, &dd.done));
    cr_expect_eq(virDomainIsPersistent(d), 1, "destroying duet's failed instance left it alone");
    virDomainUndefine(d);
    virDomainFree(d);
    virConnectClose(c);
    fixture_close(&f);
}

Test(vm_driver, lifecycle_through_the_test_driver, .timeout = 20)
{
    struct fixture f;
    fixture_open(&f);
    struct driver_instance *inst = NULL;
    struct flag c = {0}, s = {0}, st = {0}, d = {0};
    struct duet_err err = {0};
    const struct workload_spec *w = manifest_set_find(f.set, "web");
    cr_assert_eq(f.drv->create(f.drv, w, NULL, &inst, done_cb, &c, &err), 0);
    cr_assert(run_until(&f.loop, &c.done));
    cr_assert(!c.failed, "%s", c.err);
    /* defined, with duet's metadata */
    virConnectPtr conn = virConnectOpen("test:///default");
    char handle[DRIVER_HANDLE_MAX];
    cr_assert_eq(f.drv->handle(f.drv, inst, handle, &err), 0);
    virDomainPtr dom = virDomainLookupByUUIDString(conn, handle);
    cr_assert_not_null(dom);
    char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VM_METADATA_NS, 0);
    cr_expect(meta && strstr(meta, ">web<") && strstr(meta, f.owner), "%s", meta ? meta : "(none)");
    free(meta);
    cr_assert_eq(f.drv->start(f.drv, inst, done_cb, exit_cb, &s, &err), 0);
    cr_assert(run_until(&f.loop, &s.done));
    cr_assert(!s.failed, "%s", s.err);
    cr_expect_eq(virDomainIsActive(dom), 1);
    struct driver_stats ds;
    cr_expect_eq(f.drv->stats(f.drv, inst, &ds, &err), 0, "%s", err.msg);
    cr_expect_eq(ds.memory_limit, UINT64_C(128) << 20);
    /* the test driver obeys the power button at once: the stopped event
     * comes through the loop and ends the run with exit 0 */
    cr_assert_eq(f.drv->stop(f.drv, inst, 5000, done_cb, &st, &err), 0);
    cr_assert(run_until(&f.loop, &st.done));
    bool exited = false;
    for (int i = 0; i < 100 && !s.exits; i++)
        run_until(&f.loop, &exited);
    cr_expect_eq(s.exits, 1, "one exit reported");
    cr_expect_eq(s.code, 0, "a guest that powered off exits 0 (got %d, signal %d)", s.code, s.sig);
    cr_assert_eq(f.drv->destroy(f.drv, inst, done_cb, &d, &err), 0);
    cr_assert(run_until(&f.loop, &d.done));
    cr_expect(!d.failed, "%s", d.err);
    virDomainFree(dom);
    cr_expect_null(virDomainLookupByUUIDString(conn, handle), "destroy removed the definition");
    virConnectClose(conn);
    /* Its console outlives it (duet logs --previous) until purged. */
    int lfd = -1, lprev = -1;
    cr_expect_eq(f.drv->logs_previous(f.drv, "web", &lfd, &lprev, &err), 0, "%s", err.msg);
    if (lfd >= 0)
        close(lfd);
    if (lprev >= 0)
        close(lprev);
    struct flag pu = {0};
    cr_assert_eq(f.drv->purge(f.drv, "web", DRIVER_KEPT_DISK | DRIVER_KEPT_LOGS, done_cb, &pu, &err), 0, "%s",
                 err.msg);
    cr_assert(run_until(&f.loop, &pu.done));
    cr_expect(!pu.failed, "%s", pu.err);
    cr_expect_eq(f.drv->logs_previous(f.drv, "web", &lfd, &lprev, &err), -1, "purged, yet a log is kept");
    cr_expect_eq(err.code, ENOENT);
    cr_expect_eq(f.drv->purge(f.drv, "../web", DRIVER_KEPT_LOGS, done_cb, &pu, &err), -1);
    fixture_close(&f);
}

/* Released while its create still runs: the instance goes when the create
 * ends, its callback is not called, and the domain (the workload) stays. */
Test(vm_driver, release_during_an_operation, .timeout = 20)
{
    struct fixture f;
    fixture_open(&f);
    struct driver_instance *inst = NULL;
    struct flag c = {0};
    struct duet_err err = {0};
    cr_assert_eq(f.drv->create(f.drv, manifest_set_find(f.set, "web"), NULL, &inst, done_cb, &c, &err), 0);
    f.drv->release(f.drv, inst);
    uv_timer_t t;
    uv_timer_init(&f.loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    for (int i = 0; i < 60; i++)   /* ~300 ms: long enough for the create */
        uv_run(&f.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    cr_expect(!c.done, "no callback after release");
    virConnectPtr conn = virConnectOpen("test:///default");
    char name[64];
    snprintf(name, sizeof(name), "%s-web", f.owner);
    virDomainPtr d = virDomainLookupByName(conn, name);
    cr_expect_not_null(d, "release leaves the workload alone");
    if (d) {
        virDomainUndefine(d);
        virDomainFree(d);
    }
    virConnectClose(conn);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/vm/instances/web", f.state);
    rmdir(dir);   /* what the released create made */
    fixture_close(&f);
}

/* ---- a disk from a backup: portable on export, checked on import ---- */

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void record(const char *dir, const char *base, long long size)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/disk.base", dir);
    FILE *f = fopen(p, "we");
    cr_assert_not_null(f);
    fprintf(f, "%s\n%lld 1 2\n", base, size);
    fclose(f);
}

static const struct workload_spec *disk_spec(struct fixture *f, const char *disk)
{
    char y[1024];
    snprintf(y, sizeof(y),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\nspec:\n  placement: vm\n"
             "  image: {disk: %s}\n  resources: {memory: 128Mi}\n",
             disk);
    manifest_set_free(f->set);
    f->set = manifest_set_new();
    manifest_set_load_buffer(f->set, "t.yaml", y, strlen(y));
    manifest_set_validate(f->set);
    cr_assert(manifest_set_ok(f->set));
    return manifest_set_find(f->set, "db");
}

Test(vm_driver, a_disk_from_a_backup_names_no_host_file_but_its_image, .timeout = 60)
{
    struct fixture f;
    fixture_open(&f);
    char dir[] = "/tmp/duet-port-XXXXXX", disk[128], img[128], p[PATH_MAX + 128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir);
    snprintf(img, sizeof(img), "%s/image.raw", dir);
    sh("truncate -s 4M %s%s", img, "");
    const struct workload_spec *w = disk_spec(&f, img);
    struct duet_err err = {0};

    /* standalone, as it says: taken */
    sh("qemu-img create -q -f qcow2 %s 16M%s", disk, "");
    record(dir, "", 0);
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), 0, "%s", err.msg);
    /* a backing file it does not declare: the host's /etc/passwd read by the guest */
    sh("rm -f %s && qemu-img create -q -f qcow2 -b /etc/passwd -F raw %s 16M", disk, disk);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), -1);
    cr_expect(strstr(err.msg, "overlay of \"/etc/passwd\""), "%s", err.msg);
    /* declared, but not the spec's image */
    struct stat st;
    cr_assert_eq(stat("/etc/passwd", &st), 0);
    record(dir, "/etc/passwd", (long long)st.st_size);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), -1);
    cr_expect(strstr(err.msg, "not the workload's image.disk"), "%s", err.msg);
    /* its data in another file */
    snprintf(p, sizeof(p), "rm -f %%s && qemu-img create -q -f qcow2 -o data_file=%s/data.raw,data_file_raw=on %%s 16M",
             dir);
    sh(p, disk, disk);
    record(dir, "", 0);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), -1);
    cr_expect(strstr(err.msg, "external file"), "%s", err.msg);
    /* not a qcow2 at all */
    sh("head -c 4096 /dev/urandom > %s%s", disk, "");
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), -1);
    cr_expect(strstr(err.msg, "not a qcow2"), "%s", err.msg);

    /* over the spec's image, here with the size recorded: taken, and
     * recorded as this host's file */
    char real[PATH_MAX];
    cr_assert_not_null(realpath(img, real));
    snprintf(p, sizeof(p), "rm -f %%s && qemu-img create -q -f qcow2 -b %s -F raw %%s 16M", real);
    sh(p, disk, disk);
    record(dir, real, 4 << 20);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), 0, "%s", err.msg);
    snprintf(p, sizeof(p), "%s/disk.base", dir);
    cr_assert_eq(stat(real, &st), 0);
    char want[PATH_MAX + 64], got[PATH_MAX + 64] = "";
    snprintf(want, sizeof(want), "%s\n%lld %lld %lld\n", real, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             (long long)st.st_mtim.tv_nsec);
    FILE *rf = fopen(p, "re");
    cr_assert_not_null(rf);
    size_t n = fread(got, 1, sizeof(got) - 1, rf);
    got[n] = '\0';
    fclose(rf);
    cr_expect_str_eq(got, want);
    /* ... and refused when that image is not the one it was made over */
    record(dir, real, 8 << 20);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), -1);
    cr_expect(strstr(err.msg, "was 8388608"), "%s", err.msg);

    /* export: a disk over a base duet built is flattened to stand alone */
    char cache[128], base[200];
    snprintf(cache, sizeof(cache), "%s/vm/cache", f.state);
    mkdir(cache, 0700);
    snprintf(base, sizeof(base), "%s/rootfs-0000000000000001-4194304.ext4", cache);
    sh("printf 'built by duet' > %s && truncate -s 4M %s", base, base);
    snprintf(p, sizeof(p), "rm -f %%s && qemu-img create -q -f qcow2 -b %s -F raw %%s 16M", base);
    sh(p, disk, disk);
    record(dir, base, 4 << 20);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, NULL, &err), 0, "%s", err.msg);
    sh("qemu-img info %s | grep -q 'backing file' && exit 1 || exit 0%s", disk, "");
    sh("cd %s && qemu-img dd -f qcow2 -O raw if=%s of=head.raw bs=13 count=1 && grep -q 'built by duet' head.raw", dir,
       disk);
    memset(&err, 0, sizeof(err));
    cr_expect_eq(f.drv->kept_portable(f.drv, "db", dir, w, &err), 0, "a flattened disk is taken anywhere: %s", err.msg);
    duet_remove_tree(cache, NULL);
    duet_remove_tree(dir, NULL);
    fixture_close(&f);
}
