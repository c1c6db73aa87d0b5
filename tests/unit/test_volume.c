/*
 * Named volumes on the host (storage/volume.h): real directories, real
 * ext4 images on real loop devices, real mounts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/volume.h"

static char root[64];

static void setup(void)
{
    tmp_root_make(root, sizeof(root), "duet-volumes");
}

static void teardown(void)
{
    /* whatever a failed test left mounted goes first */
    char data[128];
    for (int i = 0; i < 4; i++) {
        snprintf(data, sizeof(data), "%s/pg/data", root);
        umount2(data, MNT_DETACH);
    }
    tmp_root_remove(root);
}

TestSuite(volume, .init = setup, .fini = teardown);

static void path_of(const char *name, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/%s/%s", root, name, file);
}

/* Is any loop device backed by a file whose path holds s? */
static bool loop_backing_mentions(const char *s)
{
    for (int i = 0; i < 256; i++) {
        char p[96], buf[512];
        snprintf(p, sizeof(p), "/sys/block/loop%d/loop/backing_file", i);
        FILE *f = fopen(p, "re");
        if (!f)
            continue;
        bool hit = fgets(buf, sizeof(buf), f) && strstr(buf, s);
        fclose(f);
        if (hit)
            return true;
    }
    return false;
}

Test(volume, an_unbounded_volume_is_a_directory_given_to_its_user)
{
    struct duet_err err = {0};
    cr_assert_eq(volume_prepare(root, "cache", 0, 1234, 4321, &err), 0, "%s", err.msg);
    char data[128];
    path_of("cache", "data", data, sizeof(data));
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    cr_expect(st.st_uid == 1234 && st.st_gid == 4321, "owned by %u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
    cr_expect(volume_ready(root, "cache"));
    /* again: nothing changes, the owner given first stays */
    cr_assert_eq(volume_prepare(root, "cache", 0, 0, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(stat(data, &st), 0);
    cr_expect_eq(st.st_uid, 1234);
    struct volume_info v;
    cr_assert_eq(volume_inspect(root, "cache", &v, &err), 0, "%s", err.msg);
    cr_expect_str_eq(v.name, "cache");
    cr_expect_not(v.sized);
    cr_expect_not(v.mounted);
    cr_expect_gt(v.created_ms, 0);
    /* a size asked later is refused, naming the way out */
    cr_expect_eq(volume_prepare(root, "cache", 64 << 20, 0, 0, &err), -1);
    cr_expect(strstr(err.msg, "was made without a size") && strstr(err.msg, "duet volume rm cache"), "%s", err.msg);
    cr_assert_eq(volume_remove(root, "cache", &err), 0, "%s", err.msg);
    cr_expect_not(volume_ready(root, "cache"));
    cr_expect_eq(volume_remove(root, "cache", &err), -1);
    cr_expect_eq(err.code, ENOENT);
}

Test(volume, a_sized_volume_is_a_filesystem_a_workload_cannot_write_past, .timeout = 60)
{
    const uint64_t size = 32 << 20;
    struct duet_err err = {0};
    cr_assert_eq(volume_prepare(root, "pg", size, 999, 998, &err), 0, "%s", err.msg);
    char data[128], img[128], dir[128];
    path_of("pg", "data", data, sizeof(data));
    path_of("pg", "disk.ext4", img, sizeof(img));
    snprintf(dir, sizeof(dir), "%s/pg", root);
    struct stat sd, sv, si;
    cr_assert_eq(stat(data, &sd), 0);
    cr_assert_eq(stat(dir, &sv), 0);
    cr_expect_neq(sd.st_dev, sv.st_dev, "data is a filesystem of its own");
    cr_expect(sd.st_uid == 999 && sd.st_gid == 998, "its root is the user's: %u:%u", (unsigned)sd.st_uid,
              (unsigned)sd.st_gid);
    char lf[160];
    snprintf(lf, sizeof(lf), "%s/lost+found", data);
    cr_expect_neq(access(lf, F_OK), 0, "a new volume is empty (initdb wants it so)");
    cr_expect(loop_backing_mentions(img), "on a loop device");

    /* Fill it: ENOSPC, and the host's file never grows past the size. */
    char big[160];
    snprintf(big, sizeof(big), "%s/big", data);
    int fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof(chunk));
    uint64_t written = 0;
    ssize_t n;
    while ((n = write(fd, chunk, sizeof(chunk))) > 0)
        written += (uint64_t)n;
    cr_expect_eq(errno, ENOSPC);
    fsync(fd);
    close(fd);
    cr_expect_lt(written, size, "wrote %llu bytes into a %llu-byte volume", (unsigned long long)written,
                 (unsigned long long)size);
    cr_expect_gt(written, size / 2, "most of it is the workload's: %llu bytes", (unsigned long long)written);
    cr_assert_eq(stat(img, &si), 0);
    cr_expect_eq((uint64_t)si.st_size, size);
    cr_expect_leq((uint64_t)si.st_blocks * 512, size, "the host gave it no more than its size");
    struct volume_info v;
    cr_assert_eq(volume_inspect(root, "pg", &v, &err), 0, "%s", err.msg);
    cr_expect(v.sized && v.mounted);
    cr_expect_eq(v.size, size);
    cr_expect_gt(v.used, written / 2);

    /* Another size is refused; none given takes it as it is. */
    cr_expect_eq(volume_prepare(root, "pg", 64 << 20, 0, 0, &err), -1);
    cr_expect(strstr(err.msg, "volume pg is 32 MiB and the spec says size 64 MiB"), "%s", err.msg);
    cr_expect_eq(volume_prepare(root, "pg", 0, 0, 0, &err), 0, "%s", err.msg);

    /* After a reboot (unmounted): not ready, and mounted again with what
     * it held. */
    cr_assert_eq(umount2(data, 0), 0);
    cr_expect_not(volume_ready(root, "pg"));
    cr_assert_eq(volume_prepare(root, "pg", size, 0, 0, &err), 0, "%s", err.msg);
    cr_expect(volume_ready(root, "pg"));
    struct stat sb;
    cr_assert_eq(stat(big, &sb), 0, "the data is back");
    cr_expect_eq((uint64_t)sb.st_size, written);

    cr_assert_eq(volume_remove(root, "pg", &err), 0, "%s", err.msg);
    cr_expect_neq(access(dir, F_OK), 0, "the volume is gone");
    cr_expect_not(loop_backing_mentions(img), "its loop device was let go");
}

Test(volume, a_size_beyond_the_disk_is_refused_and_nothing_is_made)
{
    struct duet_err err = {0};
    cr_expect_eq(volume_prepare(root, "huge", UINT64_C(1) << 60, 0, 0, &err), -1);
    cr_expect_eq(err.code, EFBIG);
    cr_expect(strstr(err.msg, "is more than the whole disk"), "%s", err.msg);
    char img[128];
    path_of("huge", "disk.ext4", img, sizeof(img));
    cr_expect_neq(access(img, F_OK), 0, "no image was made");
}

Test(volume, removing_a_volume_never_follows_a_link_out_of_it)
{
    struct duet_err err = {0};
    cr_assert_eq(volume_prepare(root, "cache", 0, 0, 0, &err), 0, "%s", err.msg);
    /* what a workload could leave in its volume: links to the host's files */
    char outside[96], keep[128], link[160], data[128];
    snprintf(outside, sizeof(outside), "%s-outside", root);
    cr_assert_eq(mkdir(outside, 0700), 0);
    snprintf(keep, sizeof(keep), "%s/keep", outside);
    FILE *f = fopen(keep, "we");
    cr_assert_not_null(f);
    fclose(f);
    path_of("cache", "data", data, sizeof(data));
    snprintf(link, sizeof(link), "%s/to-outside", data);
    cr_assert_eq(symlink(outside, link), 0);
    snprintf(link, sizeof(link), "%s/to-etc", data);
    cr_assert_eq(symlink("/etc", link), 0);
    cr_assert_eq(volume_remove(root, "cache", &err), 0, "%s", err.msg);
    cr_expect_eq(access(keep, F_OK), 0, "what the link led to is untouched");
    cr_expect_eq(access("/etc/passwd", F_OK), 0);
    unlink(keep);
    rmdir(outside);
}

Test(volume, a_data_path_that_is_not_a_directory_is_refused)
{
    struct duet_err err = {0};
    char dir[128], data[128];
    snprintf(dir, sizeof(dir), "%s/odd", root);
    cr_assert_eq(mkdir(dir, 0700), 0);
    path_of("odd", "data", data, sizeof(data));
    cr_assert_eq(symlink("/etc", data), 0);
    cr_expect_eq(volume_prepare(root, "odd", 0, 0, 0, &err), -1);
    cr_expect(strstr(err.msg, "is not a directory"), "%s", err.msg);
    cr_expect_not(volume_ready(root, "odd"));
    cr_expect_eq(volume_prepare(root, "odd", 32 << 20, 0, 0, &err), -1);
}

Test(volume, every_volume_is_listed_by_name)
{
    struct duet_err err = {0};
    const char *names[] = {"zeta", "alpha", "mid"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(volume_prepare(root, names[i], 0, 0, 0, &err), 0, "%s", err.msg);
    struct volume_info *v;
    size_t n;
    cr_assert_eq(volume_list(root, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(v[0].name, "alpha");
    cr_expect_str_eq(v[1].name, "mid");
    cr_expect_str_eq(v[2].name, "zeta");
    free(v);
    char none[96];
    snprintf(none, sizeof(none), "%s/none", root);
    cr_assert_eq(volume_list(none, &v, &n, &err), 0, "a root not made yet holds no volume");
    cr_expect_eq(n, 0);
    free(v);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Saved, changed, restored: the volume holds what it held when saved,
 * sized (its image, frozen while copied) or not (its tree). */
static void save_change_restore(const char *name, uint64_t size)
{
    struct duet_err err = {0};
    cr_assert_eq(volume_prepare(root, name, size, 0, 0, &err), 0, "%s", err.msg);
    char data[128], file[192], snap[128], later[192];
    path_of(name, "data", data, sizeof(data));
    snprintf(file, sizeof(file), "%s/file", data);
    snprintf(later, sizeof(later), "%s/later", data);
    put(file, "then\n");
    snprintf(snap, sizeof(snap), "%s-snap-%s", root, name);
    cr_assert_eq(volume_save(root, name, snap, &err), 0, "%s", err.msg);
    cr_expect_eq(volume_save(root, name, snap, &err), -1, "never over a snapshot");
    put(file, "now\n");
    put(later, "x");
    cr_assert_eq(volume_restore(root, name, snap, &err), 0, "%s", err.msg);
    cr_expect(volume_ready(root, name), "mounted again");
    char *t = get(file);
    cr_expect_str_eq(t ? t : "(none)", "then\n");
    cr_expect_neq(access(later, F_OK), 0, "what came after is gone");
    /* restored twice (a restore asked again after a crash): the same */
    cr_assert_eq(volume_restore(root, name, snap, &err), 0, "%s", err.msg);
    t = get(file);
    cr_expect_str_eq(t ? t : "(none)", "then\n");
    char old[160];
    snprintf(old, sizeof(old), "%s.old", data);
    cr_expect_neq(access(old, F_OK), 0, "nothing is left beside the data");
    /* removed since: made again from the snapshot */
    cr_assert_eq(volume_remove(root, name, &err), 0, "%s", err.msg);
    cr_assert_eq(volume_restore(root, name, snap, &err), 0, "%s", err.msg);
    cr_expect(volume_ready(root, name));
    t = get(file);
    cr_expect_str_eq(t ? t : "(none)", "then\n");
    cr_assert_eq(volume_remove(root, name, &err), 0, "%s", err.msg);
    tmp_root_remove(snap);
}

Test(volume, a_sized_volume_is_saved_and_restored, .timeout = 60)
{
    save_change_restore("pg", 32 << 20);
}

Test(volume, an_unbounded_volume_is_saved_and_restored, .timeout = 60)
{
    save_change_restore("cache", 0);
}
