/*
 * The VM backend with real QEMU guests (emulation forced, except where the
 * KVM fallback itself is tested), through libvirt's embedded driver.
 * Each test leaves nothing: vt_teardown checks for QEMU processes, domain
 * definitions and instance files.
 */
#include "vmtest.h"

#include "common/fsutil.h"
#include "backends/vm/guest_image.h"

static const char *const ROOTFS_VM =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: hello}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'echo hello from $(hostname); echo uid=$(id -u) gid=$(id -g) groups=$(id -G); "
    "echo cwd=$(pwd) greeting=$GREETING; printf \"[%s]\\\\n\" \"$TRICKY\"; echo written > /tmp/written; exit 7']\n"
    "  env: {GREETING: 'hi there', TRICKY: \"a=b\\nline two 'quoted' \\\"dq\\\" $HOME <x>\"}\n"
    "  workingDir: /tmp\n"
    "  user: user\n"
    "  resources: {memory: 128Mi, cpus: 1}\n";

static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    uint64_t h = 0xcbf29ce484222325ULL;
    int c;
    while ((c = fgetc(f)) != EOF)
        h = (h ^ (unsigned char)c) * 0x100000001b3ULL;
    fclose(f);
    return h;
}

/* The one cached base disk built from the rootfs. */
static void cached_disk(struct vt *t, char *out, size_t len)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/vm/cache", t->state);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    out[0] = '\0';
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "rootfs-", 7) && strstr(e->d_name, ".ext4") && !strstr(e->d_name, ".tmp"))
            snprintf(out, len, "%s/%s", dir, e->d_name);
    closedir(d);
    cr_assert(out[0], "a base disk was built in %s", dir);
}

Test(vm, rootfs_image_runs_its_command_as_a_vm, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, ROOTFS_VM);
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "hello", &x);
    char base[512];
    cached_disk(&t, base, sizeof(base));
    char cache[128];
    snprintf(cache, sizeof(cache), "%s/vm/cache", t.state);
    bool fast = false;
    DIR *cd = opendir(cache);
    for (struct dirent *e; cd && (e = readdir(cd));)
        fast |= !strncmp(e->d_name, "vmlinux-", 8);
    if (cd)
        closedir(cd);
    cr_expect(fast, "Debian's xz bzImage was unpacked once to an uncompressed PVH kernel in %s", cache);
    uint64_t before = file_hash(base);
    cr_assert(vt_wait_exit(&t, &x, 120000), "the guest powered off when its command ended");
    cr_expect_eq(x.count, 1);
    cr_expect_eq(x.code, 7, "the command's exit status came back (got %d, signal %d)", x.code, x.sig);
    cr_expect_eq(x.sig, 0);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "hello from hello"), "hostname is the workload's name; log:\n%s", log);
    cr_expect(strstr(log, "uid=1000 gid=1000 groups=1000 10"), "user, group and supplementary groups; log:\n%s", log);
    cr_expect(strstr(log, "cwd=/tmp greeting=hi there"), "working dir and env; log:\n%s", log);
    /* (the serial console's tty writes each newline as CR LF) */
    cr_expect(strstr(log, "[a=b\r\nline two 'quoted' \"dq\" $HOME <x>]"),
              "an env value with '=', a newline, quotes and markup arrives as it was; log:\n%s", log);
    free(log);
    struct driver_status st;
    struct duet_err err;
    cr_expect_eq(t.drv->inspect(t.drv, inst, &st, &err), 0);
    cr_expect_eq(st.state, DRIVER_STATE_EXITED);
    cr_expect_eq(file_hash(base), before, "the base disk was not written (the guest wrote to its overlay)");
    char handle[DRIVER_HANDLE_MAX];
    cr_expect_eq(t.drv->handle(t.drv, inst, handle, &err), 0);
    cr_expect_eq(strlen(handle), 36, "the handle is the domain UUID: %s", handle);
    vt_destroy(&t, inst);
    vt_teardown(&t);
}

static const char *const STOPPABLE =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: polite}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'trap \"echo got TERM; exit 3\" TERM; echo ready; while :; do sleep 1; done']\n"
    "  resources: {memory: 128Mi}\n"
    "---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: stubborn}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'trap \"echo ignoring TERM\" TERM; echo ready; while :; do sleep 1; done']\n"
    "  resources: {memory: 128Mi}\n";

/* stop is the ACPI power button: duet's guest init turns it into SIGTERM
 * for the workload, whose own exit status comes back.  A workload that
 * ignores it is destroyed when the grace period ends. */
Test(vm, stop_is_graceful_then_forced, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, STOPPABLE);
    struct vt_exit xp = {0}, xs = {0};
    struct driver_instance *polite = vt_boot(&t, "polite", &xp);
    struct driver_instance *stubborn = vt_boot(&t, "stubborn", &xs);
    cr_assert(vt_log_waits_for(&t, polite, "ready", 120000), "polite started");
    cr_assert(vt_log_waits_for(&t, stubborn, "ready", 120000), "stubborn started");
    struct driver_stats ds;
    struct duet_err serr = {0};
    cr_expect_eq(t.drv->stats(t.drv, polite, &ds, &serr), 0, "%s", serr.msg);
    cr_expect_gt(ds.cpu_ns, 0, "CPU time from libvirt");
    cr_expect_eq(ds.memory_limit, UINT64_C(128) << 20, "the guest's RAM");
    cr_expect_gt(ds.memory_bytes, 0);
    cr_expect_eq(ds.pids, 1, "one vCPU");
    /* the power button driver needs a moment after boot to be listening */
    vt_stop(&t, polite, 60000);
    cr_assert(vt_wait_exit(&t, &xp, 10000));
    cr_expect_eq(xp.code, 3, "the workload's own status after SIGTERM (got %d, signal %d)", xp.code, xp.sig);
    char *log = vt_log(&t, polite);
    cr_expect(strstr(log, "got TERM"), "log:\n%s", log);
    free(log);

    uint64_t t0 = vt_now();
    vt_stop(&t, stubborn, 3000);
    uint64_t took = vt_now() - t0;
    cr_assert(vt_wait_exit(&t, &xs, 10000));
    cr_expect_eq(xs.sig, SIGKILL, "destroyed after the grace period (code %d, signal %d)", xs.code, xs.sig);
    cr_expect_geq(took, 2900, "the grace period was given (%llu ms)", (unsigned long long)took);
    log = vt_log(&t, stubborn);
    cr_expect(strstr(log, "ignoring TERM"), "the guest got the button press; log:\n%s", log);
    free(log);
    vt_destroy(&t, polite);
    vt_destroy(&t, stubborn);
    vt_teardown(&t);
}

/* A kernel and initramfs of the user's own: the console is the log, the
 * guest powering off is exit 0.  The command line carries XML and quotes
 * that must reach the guest as text, never as domain XML. */
Test(vm, kernel_and_initrd_boot_and_hostile_cmdline_is_text, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: kboot}\nspec:\n"
                "  image:\n"
                "    kernel: @KERNEL@\n"
                "    initrd: @IMAGES@/test-initrd.cpio.gz\n"
                "    cmdline: \"console=ttyS0 quiet x=</cmdline></os><devices><disk type='file'><source "
                "file='/etc/shadow'/></disk></devices><os><cmdline>&amp; y=]]>\"\n"
                "  resources: {memory: 128Mi}\n");
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "kboot", &x);
    cr_assert(vt_wait_exit(&t, &x, 120000), "the guest powered off");
    cr_expect_eq(x.code, 0, "a guest that powers off by itself exits 0 (got %d, signal %d)", x.code, x.sig);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "test-guest: hello"), "the console is the log:\n%s", log);
    cr_expect(strstr(log, "x=</cmdline></os><devices><disk type='file'><source file='/etc/shadow'/></disk>"
                          "</devices><os><cmdline>&amp; y=]]>"),
              "the command line arrived verbatim:\n%s", log);
    free(log);
    vt_destroy(&t, inst);
    vt_teardown(&t);
}

/* A disk image: the guest writes to its disk, the base image stays as it
 * was; the overlay took the write.  The kernel and an initramfs that
 * mounts /dev/vda come from duet's own builders, used as a user would use
 * any initramfs. */
Test(vm, disk_image_boots_from_an_overlay_and_the_base_is_never_written, .timeout = 300)
{
    char dir[64] = "/tmp/duet-vmdisk-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct duet_err err = {0};
    char ext4[512], base[128], initrd0[512], initrd[128];
    cr_assert_eq(vm_rootfs_disk(dir, getenv("DUET_ROOTFS"), 256ull << 20, "test", ext4, sizeof(ext4), &err), 0, "%s",
                 err.msg);
    snprintf(base, sizeof(base), "%s/base.qcow2", dir);
    char *const convert[] = {"qemu-img", "convert", "-O", "qcow2", ext4, base, NULL};
    cr_assert_eq(duet_run_tool(convert, &err), 0, "%s", err.msg);
    cr_assert_eq(vm_guest_initramfs(dir, getenv("DUET_GUEST_KERNEL"), getenv("DUET_VMINIT"), "test", initrd0,
                                    sizeof(initrd0), &err),
                 0, "%s", err.msg);
    /* the initramfs's command: a workload spec of its own */
    struct manifest_set *s = manifest_set_new();
    char y[1024];
    snprintf(y, sizeof(y),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: writer}\nspec:\n"
             "  image: {rootfs: %s}\n"
             "  command: [/bin/sh, -c, 'echo scribbled > /scribble; sync; cat /scribble; "
             "echo sectors=$(cat /sys/block/vda/size); exit 5']\n",
             getenv("DUET_ROOTFS"));
    manifest_set_load_buffer(s, "w.yaml", y, strlen(y));
    manifest_set_validate(s);
    cr_assert(manifest_set_ok(s));
    struct rootfs_user root = {.n_groups = 1};
    snprintf(initrd, sizeof(initrd), "%s/writer-initrd", dir);
    cr_assert_eq(vm_workload_initrd(initrd0, manifest_set_find(s, "writer"), &root, initrd, &err), 0, "%s", err.msg);
    manifest_set_free(s);
    uint64_t before = file_hash(base);

    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: disky}\nspec:\n"
             "  image:\n    disk: %s\n    kernel: @KERNEL@\n    initrd: %s\n    cmdline: console=ttyS0 quiet\n"
             "  resources: {memory: 128Mi, disk: 768Mi}\n",
             base, initrd);
    vt_load(&t, yaml);
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "disky", &x);
    cr_assert(vt_wait_exit(&t, &x, 120000), "the guest ended");
    cr_expect_eq(x.code, 5, "exit status from the guest (got %d, signal %d)", x.code, x.sig);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "scribbled"), "the guest wrote to its disk:\n%s", log);
    /* resources.disk is the disk the guest sees, grown from the image's
     * 256 MiB: 768 MiB is 1572864 sectors. */
    cr_expect(strstr(log, "sectors=1572864"), "the guest's disk is resources.disk:\n%s", log);
    free(log);
    cr_expect_eq(file_hash(base), before, "the base image is unchanged");
    char overlay[PATH_MAX];
    snprintf(overlay, sizeof(overlay), "%s/vm/kept/disky/disk.qcow2", t.state);
    struct stat st;
    cr_expect_eq(stat(overlay, &st), 0);
    cr_expect_gt(st.st_size, 200 * 1024, "the overlay took the writes (%lld bytes)", (long long)st.st_size);
    /* The disk outlives the instance (docs/storage.md) until a purge. */
    vt_destroy(&t, inst);
    cr_expect_eq(stat(overlay, &st), 0, "destroy removed the disk");
    struct vt_wait pw = {0};
    struct duet_err perr = {0};
    cr_assert_eq(t.drv->purge(t.drv, "disky", DRIVER_KEPT_DISK | DRIVER_KEPT_LOGS, vt_done, &pw, &perr), 0, "%s",
                 perr.msg);
    cr_assert(vt_run_until(&t, &pw.done, 30000), "the purge ended");
    cr_expect_neq(stat(overlay, &st), 0, "the purge left the disk");
    vt_teardown(&t);
    nftw(dir, vt_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A disk and nothing else: the BIOS boots it (SYSLINUX on a raw FAT disk),
 * from its overlay; the image is never written. */
Test(vm, a_raw_disk_boots_by_bios_alone, .timeout = 300)
{
    char img[PATH_MAX];
    snprintf(img, sizeof(img), "%s/bootable.img", getenv("DUET_IMAGES"));
    uint64_t before = file_hash(img);
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: biosboot}\nspec:\n"
                "  image: {disk: @IMAGES@/bootable.img}\n  resources: {memory: 128Mi}\n");
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "biosboot", &x);
    cr_assert(vt_wait_exit(&t, &x, 180000), "the guest powered off");
    cr_expect_eq(x.code, 0, "got %d, signal %d", x.code, x.sig);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "test-guest: hello"), "the guest the disk's boot loader started ran:\n%s", log);
    free(log);
    cr_expect_eq(file_hash(img), before, "the raw image was not written");
    vt_destroy(&t, inst);
    vt_teardown(&t);
}

/* A guest that prints without end: the daemon's check rotates its console
 * (console.log into console.log.1) once it passes the cap, so the host
 * keeps at most two generations of it, the newest lines last.  The check
 * runs every second, so a generation may pass the cap by what the guest
 * writes in a second: this one writes 300 lines (about 14 KiB) a second. */
Test(vm, a_chatty_guest_console_is_capped, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    const uint64_t cap = 64 << 10;
    vm_driver_set_console_max(t.drv, cap);
    vt_load(&t, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: chatty}\nspec:\n"
                "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  resources: {memory: 128Mi}\n"
                "  command: [/bin/sh, -c, 'i=0; while [ $i -lt 6000 ]; do "
                "echo \"line $i of a guest that will not stop talking\"; i=$((i+1)); "
                "[ $((i % 300)) = 0 ] && sleep 1; done; echo finished']\n");
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "chatty", &x);
    cr_assert(vt_wait_exit(&t, &x, 240000), "the guest ended");
    cr_expect_eq(x.code, 0);
    /* one more check after the last line */
    bool never = false;
    vt_run_until(&t, &never, 2500);
    char cur[PATH_MAX], prev[PATH_MAX];
    snprintf(cur, sizeof(cur), "%s/vm/instances/chatty/console.log", t.state);
    snprintf(prev, sizeof(prev), "%s/vm/instances/chatty/console.log.1", t.state);
    struct stat a, b;
    cr_assert_eq(stat(cur, &a), 0);
    cr_assert_eq(stat(prev, &b), 0, "the console was never rotated");
    /* 6000 lines of about 48 bytes (CR LF on a serial tty): 290 KiB */
    cr_expect_leq((uint64_t)a.st_size, cap, "console.log is %lld bytes", (long long)a.st_size);
    cr_expect_gt(b.st_size, 0);
    cr_expect_lt((uint64_t)(a.st_size + b.st_size), 200u << 10, "the oldest output was not let go: %lld + %lld bytes",
                 (long long)a.st_size, (long long)b.st_size);
    char *older = vt_slurp(prev), *newer = vt_slurp(cur);
    cr_expect((strstr(older, "line 5999 of a guest") || strstr(newer, "line 5999 of a guest")) &&
                  (strstr(older, "finished") || strstr(newer, "finished")),
              "the newest lines are kept:\n%.400s", newer);
    cr_expect_not(strstr(older, "line 10 of a guest"), "the oldest lines are gone");
    free(older);
    free(newer);
    vt_destroy(&t, inst);
    vt_teardown(&t);
}
