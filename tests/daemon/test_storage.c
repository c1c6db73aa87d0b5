/*
 * test_storage.c - data that outlives an instance: a VM's kept disk, the
 * previous instance's log, a volume that follows its workload from a
 * container into a VM and back.
 *
 * The VM is the busybox rootfs booted under emulation.  Its command
 * writes /marker on its first run and fails; every later run prints what
 * it finds.  Each way an instance is replaced must find the marker: a
 * restart by the policy, a restart after the daemon was killed and the
 * guest ended meanwhile, a replace by a changed env.  A changed image is
 * refused until the user says --recreate (a fresh disk) or keepDisk (the
 * old one).  One VM for the whole test: each boot costs seconds.
 */
#include "dtest.h"

static const char *marker_vm(struct dd *d, int round, const char *disk, bool keep)
{
    return dd_manifest(
        d, "marker.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: keeper}\nspec:\n  placement: vm\n"
        "  image: {rootfs: %s%s}\n  resources: {memory: 128Mi, disk: %s}\n  restart: on-failure\n"
        "  env: {ROUND: \"%d\"}\n"
        "  command: [/bin/sh, -c, \"if [ -f /marker ]; then echo found $(cat /marker) in round $ROUND; "
        "else echo written in round $ROUND > /marker; sync; echo wrote the marker; exit 3; fi; "
        "while :; do sleep 1; done\"]\n",
        dd_env("DUET_ROOTFS"), keep ? ", keepDisk: true" : "", disk, round);
}

static bool kept_exists(struct dd *d, const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/vm/kept/keeper%s%s", d->state, file ? "/" : "", file ? file : "");
    return access(path, F_OK) == 0;
}

Test(storage, a_vms_disk_outlives_its_instances, .timeout = 600)
{
    struct dd d;
    dd_init_vm(&d);
    char *out;
    /* First run: writes the marker and fails; the policy's restart finds it. */
    const char *m = marker_vm(&d, 1, "512Mi", false);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 1 in round 1", 180000),
              "the restarted VM did not find what its first instance wrote");
    cr_expect(kept_exists(&d, "disk.qcow2"));
    cr_assert_eq(dd_duet(&d, &out, "logs --previous keeper"), 0, "%s", out);
    cr_expect(strstr(out, "wrote the marker") && !strstr(out, "found written"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "logs -f --previous keeper"), 2, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "describe keeper"), 0);
    cr_expect(strstr(out, "Disk:        kept until the workload is deleted, made from rootfs "), "%s", out);
    free(out);

    /* The daemon is killed, and the guest ends while none runs: the next
     * daemon restarts it (on-failure) on the same disk. */
    char *h = dd_handle(&d, "keeper");
    dd_kill9(&d);
    const char *needles[] = {"qemu-system", h, NULL};
    int qpid;
    cr_assert_eq(processes_matching_pid(needles, &qpid), 1, "not one QEMU with -uuid %s", h);
    cr_assert_eq(kill(qpid, SIGKILL), 0);
    uint64_t deadline = dd_now_ms() + 20000;
    while (processes_matching_pid(needles, &qpid) > 0)
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the killed QEMU stays");
    dd_start(&d);
    deadline = dd_now_ms() + 180000;
    for (;;) {
        char *h2 = dd_handle(&d, "keeper");
        bool fresh = h2[0] && strcmp(h2, h) != 0 && dd_field_is(&d, "keeper", "state", "running");
        free(h2);
        if (fresh)
            break;
        cr_assert(dd_now_ms() < deadline && usleep(200000) == 0, "keeper was not restarted after its QEMU died");
    }
    free(h);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 1 in round 1", 180000),
              "the VM restarted after the daemon's end lost its disk");

    /* A replace that changes only env keeps the disk. */
    m = marker_vm(&d, 2, "512Mi", false);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 1 in round 2", 180000),
              "the replaced VM lost its disk");

    /* Another disk size would make the disk anew: refused, nothing changes. */
    m = marker_vm(&d, 3, "600Mi", false);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s", out);
    cr_expect(strstr(out, "keeper: its VM's disk, which holds what the guest wrote, was made from rootfs ") &&
                  strstr(out, "512 MiB and the spec now says rootfs ") && strstr(out, "--recreate keeper") &&
                  strstr(out, "keepDisk"),
              "%s", out);
    free(out);
    cr_expect_eq(dd_int(&d, "keeper", "generation"), 2, "a refused apply changed the workload");
    /* The plan says so before any apply. */
    const char *host = dd_manifest(&d, "host.yaml",
                                   "apiVersion: duet/v1\nkind: Host\nmetadata: {name: here}\nspec:\n  cpus: 2\n"
                                   "  memory: 4Gi\n  backends:\n    vm: {available: true, kvm: false, guestKernel: true}\n");
    cr_assert_eq(dd_duet(&d, &out, "plan -f %s -f %s", m, host), 0, "%s", out);
    cr_expect(strstr(out, "Disks that apply would reset") &&
                  strstr(out, "keeper: its disk was made from rootfs ") && strstr(out, "600 MiB"),
              "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "apply --dry-run -f %s", m), 1, "%s", out);
    cr_expect(strstr(out, "--recreate keeper"), "%s", out);
    free(out);
    /* keepDisk: the old disk stays, and says so. */
    m = marker_vm(&d, 3, "600Mi", true);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 1 in round 3", 180000),
              "keepDisk did not keep the disk");
    char *ev = dd_events(&d, "keeper");
    cr_expect(strstr(ev, "keeps its disk made from rootfs ") && strstr(ev, "(image.keepDisk)"), "%s", ev);
    free(ev);
    /* Without keepDisk the kept disk is still the old one: refused again,
     * until --recreate, which starts from a fresh disk. */
    m = marker_vm(&d, 4, "600Mi", false);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --recreate nosuch", m), 1, "%s", out);
    cr_expect(strstr(out, "--recreate nosuch: no workload of that name is in the files applied"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --recreate ../keeper", m), 2, "%s", out);
    cr_expect(strstr(out, "not a workload name"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --recreate keeper", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 4 in round 4", 180000),
              "--recreate did not start from a fresh disk");
    ev = dd_events(&d, "keeper");
    cr_expect(strstr(ev, "its disk was reset (apply --recreate)"), "%s", ev);
    free(ev);
    /* --recreate of an unchanged workload replaces it all the same. */
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --recreate keeper", m), 0, "%s", out);
    cr_expect(strstr(out, "keeper") && strstr(out, "replaced"), "%s", out);
    free(out);
    uint64_t until = dd_now_ms() + 120000;
    for (;;) {
        ev = dd_events(&d, "keeper");
        const char *first = strstr(ev, "its disk was reset");
        bool twice = first && strstr(first + 1, "its disk was reset");
        free(ev);
        if (twice)
            break;
        cr_assert(dd_now_ms() < until && usleep(200000) == 0, "the second --recreate did not reset the disk");
    }
    dd_wait_field(&d, "keeper", "state", "running", 180000);
    cr_assert(duet_logs_until(&d, "keeper", "found written in round 4 in round 4", 180000));

    /* Deleted: its disk and its last log go with it. */
    cr_assert_eq(dd_duet(&d, &out, "delete keeper --wait"), 0, "%s", out);
    free(out);
    cr_expect(!kept_exists(&d, NULL), "the deleted workload's disk is still kept");
    dd_finish(&d);
}

/* A container's previous instance: its output once it was restarted;
 * none before a first instance ended; gone with the workload. */
Test(storage, logs_previous_shows_the_instance_before, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char *out;
    const char *m = dd_manifest(&d, "prev.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: prev}\nspec:\n"
                                "  image: {rootfs: %s}\n  restart: on-failure\n  env: {N: \"1\"}\n"
                                "  command: [/bin/sh, -c, \"echo run $N; exit 1\"]\n",
                                dd_env("DUET_ROOTFS"));
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "prev", "run 1", 20000));
    /* Each run fails: once restarted, the one before is the previous. */
    uint64_t deadline = dd_now_ms() + 20000;
    while (dd_int(&d, "prev", "restarts") < 2)
        cr_assert(dd_now_ms() < deadline && usleep(50000) == 0, "prev was not restarted");
    cr_assert_eq(dd_duet(&d, &out, "logs --previous prev"), 0, "%s", out);
    cr_expect_str_eq(out, "run 1\n");
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "logs --previous nosuch"), 1, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "delete prev --wait"), 0, "%s", out);
    free(out);
    char path[512];
    snprintf(path, sizeof(path), "%s/containers/.kept/prev", d.state);
    cr_expect(access(path, F_OK) < 0, "the deleted workload's last log is still kept at %s", path);

    /* A new workload has no previous instance until one ends. */
    dd_apply_sleeper(&d, "fresh");
    cr_expect_eq(dd_duet(&d, &out, "logs --previous fresh"), 1, "%s", out);
    cr_expect(strstr(out, "fresh has no previous instance's log"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* One named volume, one workload, moved container -> VM -> container:
 * each instance reads what the one before it wrote (in the VM through
 * virtiofs), the old instance gone before the new one mounts it.  The
 * volume outlives the workload until it is removed. */
static const char *mover(struct dd *d, const char *placement)
{
    return dd_manifest(d, "mover.yaml",
                       "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: mover}\nspec:\n  placement: %s\n"
                       "  image: {rootfs: %s}\n  resources: {memory: 128Mi}\n  restart: never\n"
                       "  env: {PLACED: %s}\n  volumes: [{name: moving, size: 32Mi, target: /data}]\n"
                       "  command: [/bin/sh, -c, \"echo saw $(cat /data/log 2>/dev/null | tr '\\\\n' ' ')as $PLACED; "
                       "echo $PLACED >> /data/log\"]\n",
                       placement, dd_env("DUET_ROOTFS"), placement);
}

static void move_to(struct dd *d, const char *placement, const char *want_log)
{
    char *out;
    cr_assert_eq(dd_duet(d, &out, "apply -f %s", mover(d, placement)), 0, "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 180000;
    while (!(dd_field_is(d, "mover", "backend", placement) && dd_field_is(d, "mover", "state", "completed")))
        cr_assert(dd_now_ms() < deadline && usleep(200000) == 0, "mover did not complete as a %s", placement);
    cr_assert_eq(dd_duet(d, &out, "logs mover"), 0);
    cr_expect(strstr(out, want_log), "as a %s it saw: %s", placement, out);
    free(out);
}

Test(storage, a_named_volume_keeps_its_data_when_the_workload_moves_between_backends, .timeout = 400)
{
    struct dd d;
    dd_init_vm(&d);
    move_to(&d, "container", "saw as container");
    move_to(&d, "vm", "saw container as vm");
    move_to(&d, "container", "saw container vm as container");
    char log[256], *out;
    snprintf(log, sizeof(log), "%s/volumes/moving/data/log", d.state);
    char *text = dd_slurp(log);
    cr_expect_str_eq(text ? text : "", "container\nvm\ncontainer\n");
    free(text);
    cr_assert_eq(dd_duet(&d, &out, "volume ls"), 0, "%s", out);
    cr_expect(strstr(out, "moving") && strstr(out, "32.0 MiB") && strstr(out, "mover"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "volume rm moving"), 1, "a volume a workload names stays: %s", out);
    cr_expect(strstr(out, "volume moving is in use by workload mover"), "%s", out);
    free(out);
    /* deleted without --volumes: the volume and its data stay */
    cr_assert_eq(dd_duet(&d, &out, "delete mover --wait"), 0, "%s", out);
    free(out);
    text = dd_slurp(log);
    cr_expect_str_eq(text ? text : "", "container\nvm\ncontainer\n", "the volume outlived its workload");
    free(text);
    cr_assert_eq(dd_duet(&d, &out, "volume inspect moving -o json"), 0, "%s", out);
    cr_expect(strstr(out, "\"users\": []") || strstr(out, "\"users\":[]"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "volume rm moving"), 0, "%s", out);
    free(out);
    cr_expect_neq(access(log, F_OK), 0, "removed with its data");
    cr_expect_eq(dd_duet(&d, &out, "volume inspect moving"), 1, "%s", out);
    free(out);
    dd_finish(&d);
}

/* A volume one workload writes and another reads; delete --volumes takes
 * it only with the last workload that names it.  An apply that would make
 * two writers, or a volume bigger than the disk, is refused. */
Test(storage, a_shared_volume_goes_with_the_last_workload_deleted_with_volumes, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "shared.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: writer}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sh, -c, \"echo written > /v/file; sleep 3600\"]\n"
        "  volumes: [{name: shared, target: /v}]\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: reader}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  dependsOn: [writer]\n"
        "  command: [/bin/sh, -c, \"sleep 1; cat /v/file; touch /v/mine || echo read-only; sleep 3600\"]\n"
        "  volumes: [{name: shared, target: /v, readOnly: true}]\n",
        dd_env("DUET_ROOTFS"), dd_env("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&d, "reader", "read-only", 20000), "the reader read the writer's file and could not write");
    char *log = NULL;
    cr_assert_eq(dd_duet(&d, &log, "logs reader"), 0);
    cr_expect(strstr(log, "written"), "%s", log);
    free(log);

    const char *two = dd_manifest(&d, "two.yaml",
                                  "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: second}\nspec:\n"
                                  "  image: {rootfs: %s}\n  command: [/bin/true]\n"
                                  "  volumes: [{name: shared, target: /v}]\n",
                                  dd_env("DUET_ROOTFS"));
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", two), 1, "%s", out);
    cr_expect(strstr(out, "volume shared is written by workload second and by workload writer"), "%s", out);
    free(out);
    const char *huge = dd_manifest(&d, "huge.yaml",
                                   "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: huge}\nspec:\n"
                                   "  image: {rootfs: %s}\n  command: [/bin/true]\n"
                                   "  volumes: [{name: huge, size: 1000Ti, target: /v}]\n",
                                   dd_env("DUET_ROOTFS"));
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", huge), 1, "%s", out);
    cr_expect(strstr(out, "volume huge of size 1000 TiB is more than the whole disk"), "%s", out);
    free(out);

    cr_assert_eq(dd_duet(&d, &out, "delete writer --volumes --wait"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "volume ls"), 0);
    cr_expect(strstr(out, "shared") && strstr(out, "reader(ro)"), "kept for the reader: %s", out);
    free(out);
    char *ev = dd_events(&d, "writer");
    cr_expect(strstr(ev, "volume shared is kept: workload reader names it too"), "%s", ev);
    free(ev);
    cr_assert_eq(dd_duet(&d, &out, "delete reader --volumes --wait"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "volume ls -o json"), 0);
    cr_expect_not(strstr(out, "shared"), "gone with the last workload: %s", out);
    free(out);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/volumes/shared", d.state);
    cr_expect_neq(access(dir, F_OK), 0);
    dd_finish(&d);
}
