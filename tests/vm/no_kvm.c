/*
 * The VM tests run their guests under emulation (type qemu), on every host.
 * libvirt's QEMU capability probe nevertheless starts QEMU with KVM when
 * /dev/kvm exists, and under some nested hypervisors (this project's CI
 * host among them) that probe now and then hangs for minutes.  So before
 * anything starts, the test binary moves into a mount namespace of its own
 * in which /dev/kvm is /dev/null: libvirt, QEMU and the driver's own probe
 * all see a host without KVM.  The driver's auto acceleration is then
 * tested choosing emulation; its fallback from a hanging KVM is exercised
 * with DUET_VM_TEST_KVM=1, which keeps /dev/kvm.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

__attribute__((constructor)) static void vm_tests_hide_kvm(void)
{
    if (getenv("DUET_VM_TEST_KVM") || access("/dev/kvm", F_OK) != 0)
        return;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("/dev/null", "/dev/kvm", NULL, MS_BIND, NULL) < 0) {
        perror("vm tests: cannot hide /dev/kvm in a private mount namespace");
        exit(2);
    }
}
