/*
 * test_fleet_vm.c - a mixed fleet in one file through duetd: a real QEMU
 * guest (kernel + initramfs, under emulation: the test binary hides
 * /dev/kvm, see tests/vm/no_kvm.c) and containers, one of which waits for
 * the VM.  Then the daemon is restarted under the running VM, and
 * everything is deleted with nothing left behind.
 */
#include "dtest.h"
#include "pty_client.h"

Test(fleet, vm_and_containers_in_one_file, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    const char *img = dd_env("DUET_IMAGES"), *rootfs = dd_env("DUET_ROOTFS");
    const char *m = dd_manifest(
        &d, "fleet.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\nspec:\n  role: infrastructure\n"
        "  isolation: strong\n  image:\n    kernel: %s/vmlinuz\n    initrd: %s/db-initrd.cpio.gz\n"
        "    cmdline: \"console=ttyS0\"\n  resources: {cpus: 1, memory: 192Mi}\n  healthcheck: {tcp: 5432}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sh\", \"-c\", \"exec httpd -f -p 8080 -h /\"]\n  resources: {memory: 32Mi}\n"
        "  dependsOn: [db]\n  healthcheck: {tcp: 8080, interval: 1s}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: worker}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 16Mi}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: job}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/echo\", \"job done\"]\n  resources: {memory: 16Mi}\n  restart: never\n"
        "  dependsOn: [web]\n",
        img, img, rootfs, rootfs, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 200", m), 0, "%s", out);
    cr_expect(strstr(out, "db") && strstr(out, " vm "), "%s", out);
    free(out);
    /* --wait returns once everything is ready, and a job that runs is: its
     * end may come a moment later. */
    dd_wait_field(&d, "job", "state", "completed", 10000);
    cr_assert_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect(strstr(out, "vm         running"), "%s", out);
    cr_expect(strstr(out, "container  running"), "%s", out);
    cr_expect(strstr(out, "completed"), "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "db", "backend", "vm"));
    cr_expect(dd_field_is(&d, "web", "backend", "container"));
    /* The VM's TCP check reaches the guest over the fleet network, and web
     * (which depends on db) started only after it passed. */
    cr_expect(dd_field_is(&d, "db", "health", "healthy"), "db's TCP check did not pass");
    char *dbe = dd_events(&d, "db"), *webe = dd_events(&d, "web");
    int64_t healthy = dd_event_id(dbe, "healthy"), web_created = dd_event_id(webe, "created");
    cr_expect_gt(healthy, 0, "no healthy event for db: %s", dbe);
    cr_expect_gt(web_created, healthy, "web was created before db's check passed");
    free(dbe);
    free(webe);
    /* The VM's serial console is its log. */
    uint64_t deadline = dd_now_ms() + 60000;
    for (;;) {
        dd_duet(&d, &out, "logs db");
        if (strstr(out, "Linux version"))
            break;
        cr_assert(dd_now_ms() < deadline, "no kernel banner on the VM's console: %s", out);
        free(out);
        usleep(500000);
    }
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "logs job"), 0);
    cr_expect_str_eq(out, "job done\n");
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec db -- /bin/true"), 1);
    cr_expect(strstr(out, "VM db boots its own kernel and initrd, whose guest runs no agent"), "%s", out);
    free(out);
    /* Its QEMU killed from outside: said as such, not as a crash of the
     * guest (libvirt reports only "failed"). */
    char *h0 = dd_handle(&d, "db");
    const char *needles[] = {"qemu-system", h0, NULL};
    int qpid;
    cr_assert_eq(processes_matching_pid(needles, &qpid), 1, "not one QEMU with -uuid %s", h0);
    cr_assert_eq(kill(qpid, SIGKILL), 0);
    free(h0);
    deadline = dd_now_ms() + 30000;
    char *ev = NULL;
    for (;;) {
        ev = dd_events(&d, "db");
        if (strstr(ev, "its QEMU process"))
            break;
        cr_assert(dd_now_ms() < deadline, "no exit event naming QEMU: %s", ev);
        free(ev);
        usleep(200000);
    }
    cr_expect(!strstr(ev, "signal 11"), "%s", ev);
    /* Embedded, duetd reaped QEMU and knows the signal; through a libvirtd it cannot. */
    cr_expect(strstr(ev, "its QEMU process was killed by signal 9") ||
                  (dd_libvirtd(&d) && strstr(ev, "its QEMU process ended without the guest powering off")),
              "%s", ev);
    free(ev);
    /* restart: always brings it back */
    dd_wait_field(&d, "db", "state", "running", 60000);
    /* The daemon goes and comes back: the guest is re-attached, not rebooted. */
    char *h = dd_handle(&d, "db");
    int64_t restarts = dd_int(&d, "db", "restarts");
    cr_expect_eq(restarts, 1, "the killed QEMU's guest was restarted once");
    dd_stop(&d);
    dd_start(&d);
    deadline = dd_now_ms() + 30000;
    while (!dd_field_is(&d, "db", "state", "running"))
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "db not running after the restart");
    char *h2 = dd_handle(&d, "db");
    cr_expect_str_eq(h2, h, "the VM was replaced instead of re-attached");
    cr_expect_eq(dd_int(&d, "db", "restarts"), restarts, "a daemon restart counted as the workload's");
    free(h);
    free(h2);
    dd_finish(&d);
}

/* The OCI image the container tests run, booted as a VM: its disk built
 * from the image's root (both layers, the whiteout applied), its config's
 * Entrypoint, Cmd, Env, WorkingDir and User honoured by duet-vminit as by
 * duet-init. */
Test(fleet, an_oci_image_boots_as_a_vm_with_its_config, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "run --rm --placement vm --memory 256Mi --image oci-layout:%s", dd_env("DUET_OCI")),
                 0, "%s", out);
    cr_expect(strstr(out, "hello-from-oci from /srv as 1000"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out,
                         "run --rm --placement vm --memory 256Mi --image oci-layout:%s -- "
                         "'cat /srv/hello.txt; test -e /bin/vi || echo no-vi'",
                         dd_env("DUET_OCI")),
                 0, "%s", out);
    cr_expect(strstr(out, "the second layer") && strstr(out, "no-vi"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* An image's StopSignal is what a graceful stop sends its command, as a
 * container and as a VM: the image tagged "stop" says SIGUSR1, and the
 * command tells the two apart by its exit status.  The stop is the one a
 * changed spec brings (the old instance is stopped, a new one made). */
Test(fleet, an_images_stop_signal_stops_it_as_a_container_and_as_a_vm, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    static const char *const body =
        "  args: [\"trap 'echo got-usr1; exit 7' USR1; trap 'echo got-term; exit 8' TERM; echo ready; "
        "while :; do sleep 1; done\"]\n  env: {ROUND: \"%d\"}\n";
    char fmt[1024];
    snprintf(fmt, sizeof(fmt),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: sigc}\nspec:\n  placement: container\n"
             "  image: {oci: \"oci-layout:%%s:stop\"}\n%s"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: sigv}\nspec:\n  placement: vm\n"
             "  resources: {memory: 256Mi}\n  image: {oci: \"oci-layout:%%s:stop\"}\n%s",
             body, body);
    char *out;
    for (int round = 1; round <= 2; round++) {
        const char *m = dd_manifest(&d, "stop.yaml", fmt, dd_env("DUET_OCI"), round, dd_env("DUET_OCI"), round);
        cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 200", m), 0, "%s", out);
        free(out);
        cr_assert(duet_logs_until(&d, "sigc", "ready", 20000));
        cr_assert(duet_logs_until(&d, "sigv", "ready", 60000));
    }
    static const char *const names[] = {"sigc", "sigv"};
    for (int i = 0; i < 2; i++) {
        char *ev = dd_events(&d, names[i]);
        cr_expect(strstr(ev, "exit status 7"), "%s was not stopped by its image's SIGUSR1: %s", names[i], ev);
        cr_expect(!strstr(ev, "exit status 8"), "%s was stopped by SIGTERM: %s", names[i], ev);
        free(ev);
    }
    cr_assert_eq(dd_duet(&d, &out, "delete sigc sigv --wait"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}

/* A VM booted from a rootfs image is looked into as a container is: duet
 * exec runs in the guest as the workload's user with its environment, an
 * exec health check follows what the command says, --timeout bounds a
 * command that never ends, and all of it works again after the daemon
 * restarted under the running guest. */
Test(fleet, exec_and_exec_health_checks_reach_into_a_rootfs_vm, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    /* Secrets reach the guest through its spec, as variables and as files. */
    char token[128], cert[128];
    snprintf(token, sizeof(token), "%s/token", d.dir);
    snprintf(cert, sizeof(cert), "%s/cert", d.dir);
    FILE *f = fopen(token, "w");
    cr_assert(f);
    fputs("tok-Vq7Hn2\n", f);
    fclose(f);
    f = fopen(cert, "w");
    cr_assert(f);
    fputs("cert-Zp4Ld8", f);
    fclose(f);
    cr_assert(chmod(token, 0600) == 0 && chmod(cert, 0600) == 0);
    const char *m = dd_manifest(
        &d, "shell.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: shell}\nspec:\n  placement: vm\n"
        "  image: {rootfs: %s}\n  user: user\n  env: {WHO: the-guest, TOKEN: {secretFile: ./token}}\n"
        "  secrets: [{name: cert, file: ./cert}]\n"
        "  command: [/bin/sh, -c, 'touch /tmp/ok; echo ready; while :; do sleep 1; done']\n"
        "  resources: {memory: 128Mi}\n"
        "  healthcheck: {exec: [/bin/sh, -c, 'test -e /tmp/ok'], interval: 1s, timeout: 5s, retries: 2,\n"
        "                onUnhealthy: restart}\n",
        dd_env("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 200", m), 0, "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "shell", "health", "healthy"), "the exec check passed in the guest");
    /* The checks that failed while the guest booted were within a VM's
     * default start period: not one made it unhealthy. */
    char *ev = dd_events(&d, "shell");
    cr_expect(!strstr(ev, "unhealthy"), "a booting VM was reported unhealthy: %s", ev);
    free(ev);
    /* Its figures come from libvirt in the fields a container's have: a
     * write in the guest shows on its disk's counter. */
    cr_assert_eq(dd_duet(&d, &out, "exec shell -- /bin/sh -c 'dd if=/dev/zero of=/tmp/blob bs=1M count=4 && sync'"),
                 0, "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 30000;
    for (;;) {
        json_t *j = dd_workload(&d, "shell");
        json_t *st = json_object_get(json_object_get(j, "instance"), "stats");
        bool done = json_integer_value(json_object_get(st, "blk_write_bytes")) >= (4 << 20);
        if (done) {
            cr_expect_gt(json_integer_value(json_object_get(st, "memory_bytes")), 16 << 20, "QEMU's resident memory");
            cr_expect_gt(json_integer_value(json_object_get(st, "cpu_ns")), 0);
            cr_expect(json_is_integer(json_object_get(st, "net_tx_bytes")) &&
                          json_is_integer(json_object_get(st, "net_rx_bytes")),
                      "the guest's network counters");
            cr_expect_gt(json_integer_value(json_object_get(st, "sampled_at")), 0);
        }
        json_decref(j);
        if (done)
            break;
        cr_assert(dd_now_ms() < deadline, "no disk write counted for the VM");
        usleep(500000);
    }
    cr_assert_eq(dd_duet(&d, &out, "describe shell"), 0, "%s", out);
    cr_expect(strstr(out, "Usage:       memory") && strstr(out, "vCPUs") && strstr(out, "MiB written"), "%s", out);
    free(out);
    /* Input reaches a command in the guest: a line, and more than any
     * window holds, counted exactly; its status comes back. */
    char line[128];
    snprintf(line, sizeof(line), "%s/line", d.dir);
    f = fopen(line, "w");
    cr_assert(f);
    fputs("a line\n", f);
    fclose(f);
    cr_expect_eq(dd_duet(&d, &out, "exec -i shell -- sh -c 'read x; echo got $x; exit 4' < %s", line), 4, "%s",
                 out);
    cr_expect_str_eq(out, "got a line\n");
    free(out);
    char big[128];
    snprintf(big, sizeof(big), "%s/big", d.dir);
    f = fopen(big, "w");
    cr_assert(f);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "%0999d\n", i);
    fclose(f);
    cr_expect_eq(dd_duet(&d, &out, "exec -i shell -- cat < %s | cmp - %s && echo same", big, big), 0);
    cr_expect(strstr(out, "same"), "2 MB through cat in the guest came back changed: %.300s", out);
    free(out);
    /* A terminal of the guest's own: typed into, resized, its status. */
    struct pty_client pc;
    const char *sh[] = {"/bin/sh", NULL};
    pty_client_start(&pc, &d, "shell", sh);
    cr_assert(pty_until(&pc, 0, "$ ", 30000), "no prompt: %s", pc.seen);
    size_t at = pc.len;
    pty_type(&pc, "tty; stty size; echo $((6*7))x\r");
    cr_expect(pty_until(&pc, at, "42x", 15000), "%s", pc.seen + at);
    cr_expect(strstr(pc.seen + at, "/dev/pts/") && strstr(pc.seen + at, "24 80"), "%s", pc.seen + at);
    cr_expect(pty_resized(&pc, 40, 132, 1000), "the resize did not reach the guest's terminal: %s", pc.seen);
    pty_type(&pc, "exit 6\r");
    cr_expect_eq(pty_wait(&pc), 6, "the guest shell's exit status");
    cr_assert_eq(dd_duet(&d, &out, "exec shell -- /bin/sh -c 'echo $(id -u) $WHO; echo err >&2; exit 3'"), 3,
                 "%s", out);
    cr_expect(strstr(out, "1000 the-guest") && strstr(out, "err"), "%s", out);
    free(out);
    static const char see_secrets[] =
        "exec shell -- /bin/sh -c 'echo [$TOKEN]; stat -c \"%a %u\" /run/secrets/cert; cat /run/secrets/cert; "
        "grep \" /run/secrets \" /proc/mounts'";
    cr_assert_eq(dd_duet(&d, &out, "%s", see_secrets), 0, "%s", out);
    cr_expect(strstr(out, "[tok-Vq7Hn2]\n400 1000\ncert-Zp4Ld8") && strstr(out, "/run/secrets tmpfs ro,"), "%s", out);
    free(out);
    static const char *const shows[] = {"describe shell", "get shell -o json"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(dd_duet(&d, &out, "%s", shows[i]), 0, "%s", out);
        cr_expect(!strstr(out, "tok-Vq7Hn2") && !strstr(out, "cert-Zp4Ld8") && strstr(out, "secret"), "%s", out);
        free(out);
    }
    /* The check follows the guest: failing, it makes the VM unhealthy, and
     * onUnhealthy restarts it by its policy (always): a new guest, whose
     * command makes the check pass again. */
    char *h0 = dd_handle(&d, "shell");
    cr_assert_eq(dd_duet(&d, &out, "exec shell -- rm /tmp/ok"), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "shell", "health", "unhealthy", 30000);
    deadline = dd_now_ms() + 120000;
    while (dd_int(&d, "shell", "restarts") < 1)
        cr_assert(dd_now_ms() < deadline && usleep(200000) == 0, "the unhealthy VM was not restarted");
    dd_wait_field(&d, "shell", "health", "healthy", 120000);
    char *h1 = dd_handle(&d, "shell");
    cr_expect_str_neq(h1, h0, "a new guest");
    cr_assert_eq(dd_duet(&d, &out, "%s", see_secrets), 0, "%s", out);
    cr_expect(strstr(out, "[tok-Vq7Hn2]\n400 1000\ncert-Zp4Ld8"), "the new guest got its secrets too: %s", out);
    free(out);
    free(h0);
    free(h1);
    dd_exec_times_out(&d, "shell", "/bin/sleep 1000", 15000);
    cr_expect_eq(dd_duet(&d, &out, "exec --timeout soon shell -- /bin/true"), 2, "%s", out);
    cr_expect(strstr(out, "not a duration"), "%s", out);
    free(out);
    /* The daemon goes and comes back: it reaches the same guest again. */
    char *h = dd_handle(&d, "shell");
    dd_stop(&d);
    dd_start(&d);
    dd_wait_field(&d, "shell", "state", "running", 30000);
    char *h2 = dd_handle(&d, "shell");
    cr_expect_str_eq(h2, h, "the VM was re-attached, not replaced");
    free(h);
    free(h2);
    cr_assert_eq(dd_duet(&d, &out, "exec shell -- test -e /tmp/ok"), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "shell", "health", "healthy", 30000);
    cr_assert_eq(dd_duet(&d, &out, "delete shell --wait"), 0, "%s", out);
    free(out);
    dd_finish(&d);
}
