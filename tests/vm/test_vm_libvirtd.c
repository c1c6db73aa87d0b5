/*
 * The VM backend through a libvirt daemon (qemu:///system) rather than the
 * embedded driver: a private libvirtd in a private mount namespace, running
 * QEMU as libvirt-qemu as Debian's default configuration does, so the files
 * duet hands to QEMU must be usable by another user.
 */
#include <sys/prctl.h>

#include "private_libvirtd.h"
#include "vmtest.h"

Test(vm_libvirtd, rootfs_vm_through_libvirtd_with_qemu_as_its_own_user, .timeout = 300)
{
    struct private_libvirtd lvd;
    char why[256];
    cr_assert_eq(private_libvirtd_start_as(&lvd, false, why, sizeof(why)), 0, "%s", why);
    struct vt t;
    memset(&t, 0, sizeof(t));
    char state[64] = "/tmp/duet-vm-XXXXXX";
    cr_assert_not_null(mkdtemp(state));
    chmod(state, 0711);
    cr_assert_eq(uv_loop_init(&t.loop), 0);
    snprintf(t.state, sizeof(t.state), "%s", state);
    struct vm_driver_options o = {.uri = "qemu:///system", .vminit = getenv("DUET_VMINIT"),
                                  .guest_kernel = getenv("DUET_GUEST_KERNEL"), .accel = VM_ACCEL_TCG};
    t.drv = vm_driver_new(&o);
    struct duet_err err = {0};
    cr_assert_eq(t.drv->open(t.drv, &t.loop, t.state, &err), 0, "%s", err.msg);
    vt_load(&t, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: sys}\nspec:\n"
                "  placement: vm\n  image: {rootfs: @ROOTFS@}\n"
                "  command: [/bin/sh, -c, 'echo through libvirtd; exit 6']\n"
                "  resources: {memory: 128Mi}\n");
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "sys", &x);
    cr_expect_str_eq(vm_driver_uri(t.drv), "qemu:///system");
    cr_assert(vt_wait_exit(&t, &x, 120000), "the guest ended");
    cr_expect_eq(x.code, 6, "got %d, signal %d", x.code, x.sig);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "through libvirtd"), "%s", log);
    free(log);
    vt_destroy(&t, inst);
    vt_teardown(&t);
    private_libvirtd_stop(&lvd);
    nftw(lvd.root, vt_rm, 16, FTW_DEPTH | FTW_PHYS);
}
