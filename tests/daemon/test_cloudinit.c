/*
 * test_cloudinit.c - a real cloud image set up by its own cloud-init.
 *
 * The guest is the Debian 12 cloud disk image `make images` builds
 * (tests/images/cloud-guest.sh: Debian's kernel, systemd and cloud-init,
 * no user, no network configuration), booted under emulation from its own
 * disk.  Everything it knows comes from duet's NoCloud seed: its name
 * (meta-data), its fleet address (network-config), and the user data,
 * which writes a file and starts a service.  A container then reaches
 * that service by the VM's name on the fleet network.  Then the VM is
 * replaced (more memory) and boots again from the disk it wrote: its
 * bootcmd, which runs at every boot, has counted two boots, and the
 * service cloud-init enabled once is up again.  A host directory is its
 * volume, which the guest mounts by the virtiofs tag duet gives it; what
 * it writes there at each boot is on the host.  The image runs
 * qemu-guest-agent: duet exec reaches it through that.  Two boots for the
 * whole file: under emulation each takes about a minute.
 */
#include "dtest.h"

Test(cloudinit, a_debian_cloud_image_is_set_up_by_its_cloud_init, .timeout = 600)
{
    struct dd d;
    dd_init_vm(&d);
    static const char *const fmt =
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: cloudy}\nspec:\n  role: infrastructure\n"
        "  image: {disk: %s}\n  resources: {memory: %s, disk: 2Gi}\n  healthcheck: {tcp: 8080, interval: 2s}\n"
        "  volumes: [{source: %s, target: /srv/shared}]\n"
        "  cloudInit:\n"
        "    userData: |\n"
        "      #cloud-config\n"
        "      bootcmd:\n"
        "        - [sh, -c, \"mkdir -p /srv/www && echo boot >> /srv/www/boots.txt\"]\n"
        "        - [sh, -c, \"mkdir -p /srv/shared && mount -t virtiofs duet0 /srv/shared && "
        "hostname >> /srv/shared/boots.txt\"]\n"
        "      write_files:\n"
        "        - path: /srv/www/hello.txt\n"
        "          content: \"hello from cloud-init\\n\"\n"
        "        - path: /etc/systemd/system/hello.service\n"
        "          content: |\n"
        "            [Unit]\n"
        "            Description=the test's service\n"
        "            [Service]\n"
        "            ExecStartPre=/bin/sh -c 'hostname > /srv/www/name.txt'\n"
        "            ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv/www\n"
        "            [Install]\n"
        "            WantedBy=multi-user.target\n"
        "      runcmd:\n"
        "        - [systemctl, daemon-reload]\n"
        "        - [systemctl, enable, --now, hello.service]\n"
        /* on the disk before the test replaces the VM, whose stop may
         * come to a forced end (the test's grace is 2 s) */
        "        - [sync]\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: reader}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [/bin/sh, -c, \"wget -qO- http://cloudy:8080/hello.txt && wget -qO- http://cloudy:8080/name.txt\"]\n"
        "  resources: {memory: 16Mi}\n  restart: never\n  dependsOn: [cloudy]\n";
    char shared[64] = "/tmp/duet-shared-XXXXXX", boots[128];
    cr_assert_not_null(mkdtemp(shared));
    snprintf(boots, sizeof(boots), "%s/boots.txt", shared);
    const char *m =
        dd_manifest(&d, "cloud.yaml", fmt, dd_env("DUET_CLOUD_GUEST"), "512Mi", shared, dd_env("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 500", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "reader", "state", "completed", 30000);
    cr_assert_eq(dd_duet(&d, &out, "logs reader"), 0);
    /* the user data's file and service; the hostname from meta-data */
    cr_expect_str_eq(out, "hello from cloud-init\ncloudy\n");
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "logs cloudy"), 0);
    cr_expect(strstr(out, "DataSourceNoCloud"), "cloud-init did not read duet's seed: %s", out);
    free(out);
    cr_expect(dd_field_is(&d, "cloudy", "health", "healthy"));
    char *vol = dd_slurp(boots);
    cr_expect_str_eq(vol ? vol : "", "cloudy\n", "the guest's write in its volume is on the host");
    free(vol);
    cr_assert_eq(dd_duet(&d, &out, "describe cloudy"), 0);
    cr_expect(strstr(out, "/srv/shared, virtiofs tag duet0"), "describe names the tag: %s", out);
    free(out);
    /* exec through the image's QEMU guest agent (it may come up a moment
     * after the service the health check waits for) */
    cr_expect(duet_until(&d, "exec cloudy -- cat /srv/www/hello.txt", "hello from cloud-init", 60000),
              "no exec through the guest agent");
    cr_expect_eq(dd_duet(&d, &out, "exec cloudy -- /bin/sh -c 'echo out; echo err >&2; exit 5'"), 5, "%s", out);
    cr_expect(strstr(out, "out\n") && strstr(out, "err\n"), "%s", out);
    free(out);
    dd_exec_times_out(&d, "cloudy", "sleep 100", 30000);
    cr_expect_eq(dd_duet(&d, &out, "exec cloudy -- /bin/sh -c 'pgrep -x sleep || echo gone'"), 0, "%s", out);
    cr_expect(strstr(out, "gone"), "the timed-out command still runs: %s", out);
    free(out);

    /* Replaced: the new instance boots the disk the first one wrote. */
    m = dd_manifest(&d, "cloud.yaml", fmt, dd_env("DUET_CLOUD_GUEST"), "640Mi", shared, dd_env("DUET_ROOTFS"));
    const char *m2 = dd_manifest(
        &d, "reader2.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: reader2}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [/bin/sh, -c, \"wget -qO- http://cloudy:8080/boots.txt\"]\n"
        "  resources: {memory: 16Mi}\n  restart: never\n",
        dd_env("DUET_ROOTFS"));
    char *h1 = dd_handle(&d, "cloudy");
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 500", m), 0, "%s", out);
    free(out);
    char *h2 = dd_handle(&d, "cloudy");
    cr_expect(strcmp(h1, h2) != 0, "cloudy was not replaced");
    free(h1);
    free(h2);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 500", m2), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "reader2", "state", "completed", 30000);
    cr_assert_eq(dd_duet(&d, &out, "logs reader2"), 0);
    cr_expect_str_eq(out, "boot\nboot\n", "the replaced VM did not boot the disk its first instance wrote");
    free(out);
    vol = dd_slurp(boots);
    cr_expect_str_eq(vol ? vol : "", "cloudy\ncloudy\n", "the second instance mounted the same volume");
    free(vol);
    cr_assert_eq(dd_duet(&d, &out, "delete reader2 --wait"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "delete -f %s --wait", m), 0, "%s", out);
    free(out);
    dd_finish(&d);
    unlink(boots);
    cr_expect_eq(rmdir(shared), 0, "the volume holds only what the guest wrote");
}
