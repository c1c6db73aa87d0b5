/*
 * What VMs boot, built on the host: hostile and broken images are refused
 * with a message that names them, caches follow the image's content.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/vm/guest_image.h"
#include "common/dirs.h"
#include "helpers.h"

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void rm_tree(const char *dir)
{
    tmp_root_remove(dir);
}

Test(guest_image, disk_formats_are_told_by_content_and_backed_qcow2_is_refused)
{
    char dir[] = "/tmp/duet-gi-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    struct duet_err err = {0};
    const char *fmt = NULL;

    snprintf(path, sizeof(path), "%s/raw.img", dir);
    write_file(path, "\0\0\0\0 a raw disk", 16);
    uint64_t vsize = 0;
    cr_expect_eq(vm_disk_format(path, &fmt, &vsize, &err), 0, "%s", err.msg);
    cr_expect_str_eq(fmt, "raw");
    cr_expect_eq(vsize, 16, "a raw disk is its file's length");

    /* a qcow2 header (magic, version 3) without a backing file */
    unsigned char q[104] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    q[24 + 2] = 0x02;   /* virtual size 2 TiB (2 << 40), big endian */
    snprintf(path, sizeof(path), "%s/plain.qcow2", dir);
    write_file(path, q, sizeof(q));
    cr_expect_eq(vm_disk_format(path, &fmt, &vsize, &err), 0, "%s", err.msg);
    cr_expect_str_eq(fmt, "qcow2");
    cr_expect_eq(vsize, 2ull << 40, "a qcow2's virtual size, from its header");

    /* ... and one naming a backing file (offset 0x68): it would pull a
     * host file duet never saw into the guest */
    q[15] = 0x68;
    snprintf(path, sizeof(path), "%s/backed.qcow2", dir);
    write_file(path, q, sizeof(q));
    cr_expect_eq(vm_disk_format(path, &fmt, &vsize, &err), -1);
    cr_expect(strstr(err.msg, "has a backing file of its own; flatten it first"), "%s", err.msg);

    snprintf(path, sizeof(path), "%s/tiny", dir);
    write_file(path, "QF", 2);
    cr_expect_eq(vm_disk_format(path, &fmt, &vsize, &err), -1);
    cr_expect(strstr(err.msg, "too small"), "%s", err.msg);

    cr_expect_eq(vm_disk_format(dir, &fmt, &vsize, &err), -1);
    cr_expect(strstr(err.msg, "not a regular file"), "%s", err.msg);
    cr_expect_eq(vm_disk_format("/nonexistent/disk", &fmt, &vsize, &err), -1);
    cr_expect(strstr(err.msg, "image.disk /nonexistent/disk cannot be read"), "%s", err.msg);
    rm_tree(dir);
}

Test(guest_image, rootfs_disks_are_cached_by_content, .timeout = 60)
{
    char dir[] = "/tmp/duet-gi-XXXXXX", root[64], cache[64], file[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(root, sizeof(root), "%s/root", dir);
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    mkdir(root, 0755);
    snprintf(file, sizeof(file), "%s/hello", root);
    write_file(file, "one", 3);
    /* names that a shell or a line-based format would mangle */
    char odd[128];
    snprintf(odd, sizeof(odd), "%s/odd name\nwith 'quotes' & <markup>", root);
    write_file(odd, "x", 1);
    symlink("/etc/shadow", (snprintf(file, sizeof(file), "%s/escape", root), file));
    struct duet_err err = {0};
    char a[512], b[512], c[512];
    cr_assert_eq(vm_rootfs_disk(cache, root, 64ull << 20, "test", a, sizeof(a), &err), 0, "%s", err.msg);
    cr_assert_eq(vm_rootfs_disk(cache, root, 64ull << 20, "test", b, sizeof(b), &err), 0, "%s", err.msg);
    cr_expect_str_eq(a, b, "the same tree is built once");
    snprintf(file, sizeof(file), "%s/hello", root);
    write_file(file, "two", 3);
    cr_assert_eq(vm_rootfs_disk(cache, root, 64ull << 20, "test", c, sizeof(c), &err), 0, "%s", err.msg);
    cr_expect_str_neq(a, c, "an edited file makes a new disk");
    struct stat st;
    cr_expect_eq(stat(c, &st), 0);
    cr_expect_eq(vm_rootfs_disk(cache, "/nonexistent/rootfs", 64ull << 20, "VM x", a, sizeof(a), &err), -1);
    cr_expect(strstr(err.msg, "VM x: image.rootfs /nonexistent/rootfs cannot be used"), "%s", err.msg);
    cr_expect_eq(vm_rootfs_disk(cache, file, 64ull << 20, "VM x", a, sizeof(a), &err), -1);
    cr_expect(strstr(err.msg, "is not a directory"), "%s", err.msg);
    /* the disk is resources.disk, sparse; one too small for the tree is refused */
    cr_expect_eq(stat(a, &st), 0);
    cr_expect_eq(st.st_size, 64ll << 20, "the disk is the size asked for");
    cr_expect_lt(st.st_blocks * 512, 16ll << 20, "and sparse");
    cr_assert_eq(vm_rootfs_disk(cache, root, 128ull << 20, "test", b, sizeof(b), &err), 0, "%s", err.msg);
    cr_expect_str_neq(a, b, "another size is another disk");
    cr_expect_eq(vm_rootfs_disk(cache, root, 16ull << 20, "VM x", c, sizeof(c), &err), -1);
    cr_expect(strstr(err.msg, "VM x: image.rootfs") && strstr(err.msg, "needs a disk of at least") &&
                  strstr(err.msg, "raise resources.disk to"),
              "%s", err.msg);
    rm_tree(dir);
}

Test(guest_image, kernels_and_their_modules)
{
    char dir[] = "/tmp/duet-gi-XXXXXX", path[96], out[512];
    cr_assert_not_null(mkdtemp(dir));
    struct duet_err err = {0};
    /* a kernel whose name does not say its version */
    snprintf(path, sizeof(path), "%s/bzImage", dir);
    write_file(path, "not really", 10);
    cr_expect_eq(vm_kernel_modules_dir(path, out, sizeof(out), &err), -1);
    cr_expect(strstr(err.msg, "vmlinuz-VERSION"), "%s", err.msg);
    /* named as /boot does, but no modules anywhere */
    snprintf(path, sizeof(path), "%s/vmlinuz-0.0.0-duet-test", dir);
    write_file(path, "not really", 10);
    cr_expect_eq(vm_kernel_modules_dir(path, out, sizeof(out), &err), -1);
    cr_expect(strstr(err.msg, "/lib/modules/0.0.0-duet-test"), "%s", err.msg);
    /* not a bzImage: booted as it is */
    cr_expect_eq(vm_kernel_uncompressed(dir, path, out, sizeof(out), &err), 0, "%s", err.msg);
    cr_expect_str_eq(out, path);
    cr_expect_eq(vm_kernel_uncompressed(dir, "/nonexistent/vmlinuz", out, sizeof(out), &err), -1);
    /* the test kernel, laid out as installed, finds its modules and unpacks */
    const char *k = getenv("DUET_GUEST_KERNEL");
    cr_assert_not_null(k, "DUET_GUEST_KERNEL (make check sets it)");
    cr_expect_eq(vm_kernel_modules_dir(k, out, sizeof(out), &err), 0, "%s", err.msg);
    cr_expect(strstr(out, "/lib/modules/"), "%s", out);
    cr_expect_eq(vm_kernel_uncompressed(dir, k, out, sizeof(out), &err), 0, "%s", err.msg);
    cr_expect(strstr(out, "/vmlinux-"), "Debian's xz bzImage unpacks to an ELF with a PVH entry: %s", out);
    cr_expect(vm_kernel_has_virtiofs(k), "Debian's kernel can mount volumes (virtiofs)");
    rm_tree(dir);
}

/* Whether a guest kernel can mount volumes: its virtiofs module where
 * kernel trees keep it, or built in; a kernel without either cannot. */
Test(guest_image, a_kernel_without_virtiofs_is_told_apart)
{
    char dir[] = "/tmp/duet-gi-XXXXXX", path[160];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/boot", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/lib/modules/0.0.1-duet/kernel/fs/fuse", dir);
    cr_assert_eq(duet_mkdir_p(path, 0755), 0);
    char kernel[96];
    snprintf(kernel, sizeof(kernel), "%s/boot/vmlinuz-0.0.1-duet", dir);
    write_file(kernel, "not really", 10);
    cr_expect_not(vm_kernel_has_virtiofs(kernel), "no module, not built in");
    snprintf(path, sizeof(path), "%s/lib/modules/0.0.1-duet/modules.builtin", dir);
    const char *builtin = "kernel/fs/ext4/ext4.ko\nkernel/fs/fuse/virtiofs.ko\n";
    write_file(path, builtin, strlen(builtin));
    cr_expect(vm_kernel_has_virtiofs(kernel), "built in");
    unlink(path);
    snprintf(path, sizeof(path), "%s/lib/modules/0.0.1-duet/kernel/fs/fuse/virtiofs.ko", dir);
    write_file(path, "\x7f" "ELF", 4);
    cr_expect(vm_kernel_has_virtiofs(kernel), "a module");
    cr_expect_not(vm_kernel_has_virtiofs("/nonexistent/vmlinuz-9.9.9"));
    rm_tree(dir);
}
