/*
 * test_snapshot.c - snapshots of a workload's data, taken and restored
 * through duetd: a VM's kept disk and its named volume, in a real guest.
 *
 * The VM's command prints what it finds on its disk (/marker) and in its
 * volume (/data/v) at every boot, then writes "one" (first boot) or "two"
 * (MODE two).  Taken after "one", a snapshot restored after "two" must
 * give the next boot "one" on both.  One VM for the file: each boot costs
 * seconds under emulation.
 */
#include "dtest.h"

static const char *snap_vm(struct dd *d, const char *mode)
{
    return dd_manifest(
        d, "snapvm.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: snapvm}\nspec:\n  placement: vm\n"
        "  image: {rootfs: %s}\n  resources: {memory: 128Mi}\n  env: {MODE: %s}\n"
        "  volumes: [{name: snapvol, size: 32Mi, target: /data}]\n"
        "  command: [/bin/sh, -c, \"echo boot $MODE: $(cat /marker 2>/dev/null) $(cat /data/v 2>/dev/null) end; "
        "if [ $MODE = two ]; then echo two > /marker; echo two > /data/v; "
        "elif [ ! -f /marker ]; then echo one > /marker; echo one > /data/v; fi; sync; echo written; "
        "while :; do sleep 1; done\"]\n",
        dd_env("DUET_ROOTFS"), mode);
}

/* The current instance's boot line, once it has written. */
static char *boot_line(struct dd *d)
{
    cr_assert(duet_logs_until(d, "snapvm", "written", 180000), "snapvm did not boot and write");
    char *out = NULL;
    cr_assert_eq(dd_duet(d, &out, "logs snapvm"), 0);
    char *b = strstr(out, "boot "), *e = b ? strstr(b, " end") : NULL;
    cr_assert(b && e, "no boot line in: %s", out);
    char *line = strndup(b, (size_t)(e - b));
    free(out);
    return line;
}

/* Started again after a snapshot: an instance other than `before`. */
static void wait_new_instance(struct dd *d, const char *before)
{
    uint64_t deadline = dd_now_ms() + 120000;
    for (;;) {
        char *h = dd_handle(d, "snapvm");
        bool fresh = h[0] && strcmp(h, before) != 0;
        free(h);
        if (fresh)
            return;
        cr_assert(dd_now_ms() < deadline && usleep(200000) == 0, "snapvm was not started again");
    }
}

Test(snapshot, a_vms_disk_and_volume_are_put_back_as_they_were, .timeout = 600)
{
    struct dd d;
    dd_init_vm(&d);
    char *out, *line;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", snap_vm(&d, "one")), 0, "%s", out);
    free(out);
    line = boot_line(&d);
    cr_expect_str_eq(line, "boot one:", "a first boot finds nothing");
    free(line);

    char *h1 = dd_handle(&d, "snapvm");
    cr_assert_eq(dd_duet(&d, &out, "snapshot create snapvm s1"), 0, "%s", out);
    cr_expect(strstr(out, "snapshot s1 of snapvm") && strstr(out, "VM disk (rootfs ") &&
                  strstr(out, "volume snapvol") && strstr(out, "was stopped for"),
              "%s", out);
    free(out);
    /* started again, as a new instance, on the same data */
    wait_new_instance(&d, h1);
    free(h1);
    line = boot_line(&d);
    cr_expect_str_eq(line, "boot one: one one");
    free(line);

    /* A replace that keeps the disk writes "two" on both. */
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", snap_vm(&d, "two")), 0, "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 120000;
    while (!dd_field_is(&d, "snapvm", "generation", "2") || !duet_logs_until(&d, "snapvm", "boot two", 1000))
        cr_assert(dd_now_ms() < deadline, "the replace did not boot");
    line = boot_line(&d);
    cr_expect_str_eq(line, "boot two: one one");
    free(line);
    char v[256];
    snprintf(v, sizeof(v), "%s/volumes/snapvol/data/v", d.state);
    char *text = dd_slurp(v);
    cr_expect_str_eq(text ? text : "", "two\n");
    free(text);

    /* Restored: the next boot finds "one" again on its disk and in its volume. */
    h1 = dd_handle(&d, "snapvm");
    cr_assert_eq(dd_duet(&d, &out, "snapshot restore snapvm s1"), 0, "%s", out);
    cr_expect(strstr(out, "restored snapvm from snapshot s1"), "%s", out);
    free(out);
    wait_new_instance(&d, h1);
    free(h1);
    line = boot_line(&d);
    cr_expect_str_eq(line, "boot two: one one", "the restore put back the disk and the volume");
    free(line);

    cr_assert_eq(dd_duet(&d, &out, "snapshot ls snapvm"), 0);
    cr_expect(strstr(out, "s1") && strstr(out, "VM disk") && strstr(out, "volume snapvol"), "%s", out);
    free(out);
    char *ev = dd_events(&d, "snapvm");
    cr_expect(strstr(ev, "took snapshot s1") && strstr(ev, "restored from snapshot s1"), "%s", ev);
    free(ev);
    /* A live backup (the guest paused for the copy, never stopped)
     * restored on another daemon ("another host"): the disk there holds
     * the base duet built from the rootfs, so its first boot finds what
     * this one wrote and synced. */
    char file[256];
    snprintf(file, sizeof(file), "%s/snapvm.tar.zst", d.dir);
    line = boot_line(&d);
    cr_expect_str_eq(line, "boot two: one one");
    free(line);
    h1 = dd_handle(&d, "snapvm");
    cr_assert_eq(dd_duet(&d, &out, "backup snapvm -o %s", file), 0, "%s", out);
    cr_expect(strstr(out, "VM disk (rootfs ") && strstr(out, "volume snapvol, 32") &&
                  strstr(out, "crash-consistent: snapvm was paused for"),
              "%s", out);
    free(out);
    char *h2 = dd_handle(&d, "snapvm");
    cr_expect_str_eq(h2, h1, "a live backup restarted the VM");
    free(h2);
    free(h1);
    cr_expect(dd_field_is(&d, "snapvm", "state", "running"));
    struct dd other;
    dd_init_beside(&other, &d);
    cr_assert_eq(dd_duet(&other, &out, "restore %s", file), 0, "%s", out);
    cr_expect(strstr(out, "restored snapvm from") && strstr(out, "as a vm") && strstr(out, "VM disk"), "%s", out);
    free(out);
    line = boot_line(&other);
    cr_expect_str_eq(line, "boot two: two two", "the restored VM boots the disk and volume it was backed up with");
    free(line);
    dd_finish(&other);

    /* the snapshots go with the workload */
    cr_assert_eq(dd_duet(&d, &out, "delete snapvm --volumes --wait"), 0, "%s", out);
    free(out);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/snapshots/snapvm", d.state);
    cr_expect_neq(access(dir, F_OK), 0, "%s is left", dir);
    dd_finish(&d);
}

/* What a snapshot refuses, and a workload that had ended stays ended. */
Test(snapshot, refusals_and_hostile_names, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "snaps.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: done}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  restart: never\n  command: [/bin/sh, -c, \"echo ran >> /v/runs\"]\n"
        "  volumes: [{name: kept, target: /v}]\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: plain}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sleep, '3600']\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: reader}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  dependsOn: [done]\n  command: [/bin/sleep, '3600']\n"
        "  volumes: [{name: kept, target: /v, readOnly: true}]\n",
        dd_env("DUET_ROOTFS"), dd_env("DUET_ROOTFS"), dd_env("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "done", "state", "completed", 20000);

    cr_expect_eq(dd_duet(&d, &out, "snapshot create plain"), 1, "%s", out);
    cr_expect(strstr(out, "has nothing a snapshot keeps"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "snapshot create done first"), 0, "%s", out);
    cr_expect(strstr(out, "was not running"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "snapshot create done first"), 1, "%s", out);
    cr_expect(strstr(out, "already has a snapshot first"), "%s", out);
    free(out);
    /* ended, and not run again by the snapshot */
    usleep(500000);
    cr_expect(dd_field_is(&d, "done", "state", "completed"));
    char runs[256];
    snprintf(runs, sizeof(runs), "%s/volumes/kept/data/runs", d.state);
    char *text = dd_slurp(runs);
    cr_expect_str_eq(text ? text : "", "ran\n");
    free(text);
    /* a volume another workload has mounted is not rolled back under it */
    cr_expect_eq(dd_duet(&d, &out, "snapshot restore done first"), 1, "%s", out);
    cr_expect(strstr(out, "restores volume kept, which workload reader has mounted"), "%s", out);
    free(out);

    static const char *const bad[] = {"../x", "a/b", "UP", "x-", ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(dd_duet(&d, &out, "snapshot create done '%s'", bad[i]), 1, "%s", out);
        cr_expect(strstr(out, "is not a snapshot name"), "%s: %s", bad[i], out);
        free(out);
    }
    /* the API itself, past the command's checks */
    struct client_buf b = {0};
    struct duet_err err = {0};
    const char *body = "{\"name\": \"../../../etc\"}";
    int status = client_call_buf(d.sock, "POST", "/v1/workloads/done/snapshots", body, strlen(body), &b, 30000, &err);
    cr_expect_eq(status, 422, "%d %s", status, b.data ? b.data : "");
    free(b.data);
    memset(&b, 0, sizeof(b));
    char longname[400];
    memset(longname, 'a', 300);
    longname[300] = '\0';
    char path[512];
    snprintf(path, sizeof(path), "/v1/workloads/done/snapshots/%s/restore", longname);
    status = client_call_buf(d.sock, "POST", path, "{}", 2, &b, 30000, &err);
    cr_expect_eq(status, 404, "%d %s", status, b.data ? b.data : "");
    free(b.data);
    memset(&b, 0, sizeof(b));
    status = client_call_buf(d.sock, "DELETE", "/v1/workloads/done/snapshots/..", NULL, 0, &b, 30000, &err);
    cr_expect_eq(status, 404, "%d %s", status, b.data ? b.data : "");
    free(b.data);
    char etc[256];
    snprintf(etc, sizeof(etc), "%s/snapshots/done/first/snapshot.json", d.state);
    cr_expect_eq(access(etc, F_OK), 0, "the snapshot is still there");

    cr_assert_eq(dd_duet(&d, &out, "snapshot rm done first"), 0, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "snapshot rm done first"), 1, "%s", out);
    cr_expect(strstr(out, "has no snapshot first"), "%s", out);
    free(out);
    dd_finish(&d);
}
