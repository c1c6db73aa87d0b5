/*
 * The backup archive (storage/backup.h): written from a real tree and read
 * back, and every hostile archive refused with the entry named, nothing
 * written outside the destination.
 */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/backup_forge.h"
#include "helpers.h"
#include "storage/backup.h"

static char root[64];

static void setup(void)
{
    tmp_root_make(root, sizeof(root), "duet-backup");
}

static void teardown(void)
{
    tmp_root_remove(root);
}

TestSuite(backup, .init = setup, .fini = teardown);

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void sub(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", root, rel);
}

static void mk(const char *rel)
{
    char p[256];
    sub(p, sizeof(p), rel);
    cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s: %s", p, strerror(errno));
}

static json_t *index_of(const char *vols_json, bool disk)
{
    json_t *ix = json_pack("{s:i,s:s,s:{s:s,s:s,s:{s:s}},s:o,s:o}", "format", BACKUP_FORMAT, "workload", "db", "spec",
                           "apiVersion", "duet/v1", "kind", "Workload", "metadata", "name", "db", "disk",
                           disk ? json_pack("{s:s}", "source", "rootfs /srv/db, 2.0 GiB") : json_null(), "volumes",
                           json_loads(vols_json, 0, NULL));
    cr_assert_not_null(ix);
    return ix;
}

/* Unpacks archive `file` into a fresh directory under root (in dir, when
 * not NULL); its index or NULL. */
static json_t *unpack_into(const char *file, char dir[128], struct duet_err *err)
{
    snprintf(dir, 128, "%s/out-XXXXXX", root);
    cr_assert_not_null(mkdtemp(dir));
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    struct backup_limits lim = {.max_bytes = 64 << 20, .max_entries = 1000};
    json_t *ix = backup_archive_read(fd, dir, &lim, err);
    close(fd);
    return ix;
}

static json_t *unpack(const char *file, struct duet_err *err)
{
    char dir[128];
    return unpack_into(file, dir, err);
}

Test(backup, a_tree_is_written_sparse_and_read_back_whole)
{
    mk("snap");
    mk("snap/disk");
    mk("snap/volumes");
    mk("snap/volumes/pg");
    mk("snap/volumes/pg/data");
    mk("snap/volumes/pg/data/sub");
    char p[256];
    sub(p, sizeof(p), "snap/disk/disk.qcow2");
    /* 64 MiB with 4 KiB written at 1 MiB: a sparse disk */
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, 64 << 20), 0);
    char block[4096];
    memset(block, 'x', sizeof(block));
    cr_assert_eq(pwrite(fd, block, sizeof(block), 1 << 20), (ssize_t)sizeof(block));
    close(fd);
    sub(p, sizeof(p), "snap/disk/disk.base");
    put(p, "\n0 0 0\n");
    sub(p, sizeof(p), "snap/volumes/pg/data/sub/f");
    put(p, "rows\n");
    sub(p, sizeof(p), "snap/volumes/pg/data/link");
    cr_assert_eq(symlink("sub/f", p), 0);
    sub(p, sizeof(p), "snap/snapshot.json");
    put(p, "{}");   /* a snapshot's own description: not the archive's */

    char snap[256], file[256];
    sub(snap, sizeof(snap), "snap");
    sub(file, sizeof(file), "b.tar.zst");
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    json_t *ix = index_of("[{\"name\": \"pg\", \"size\": null}]", true);
    struct duet_err err = {0};
    uint64_t written = 0;
    cr_assert_eq(backup_archive_write(fd, ix, snap, &written, &err), 0, "%s", err.msg);
    close(fd);
    json_decref(ix);
    cr_expect_lt(written, 1 << 20, "a sparse 64 MiB disk makes a %llu-byte archive", (unsigned long long)written);

    char out[128];
    json_t *got = unpack_into(file, out, &err);
    cr_assert_not_null(got, "%s", err.msg);
    cr_expect_eq(json_integer_value(json_object_get(got, "format")), BACKUP_FORMAT);
    json_decref(got);
    char *text;
    snprintf(p, sizeof(p), "%s/volumes/pg/data/sub/f", out);
    text = NULL;
    size_t n = 0;
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "%s", p);
    cr_expect_eq(getline(&text, &n, f), 5);
    cr_expect_str_eq(text, "rows\n");
    free(text);
    fclose(f);
    struct stat st;
    snprintf(p, sizeof(p), "%s/volumes/pg/data/link", out);
    cr_expect(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "a symlink stays a symlink");
    snprintf(p, sizeof(p), "%s/disk/disk.qcow2", out);
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_size, 64 << 20);
    cr_expect_lt(st.st_blocks * 512, 1 << 20, "the disk is unpacked sparse");
    snprintf(p, sizeof(p), "%s/snapshot.json", out);
    cr_expect_neq(access(p, F_OK), 0, "a snapshot's description is not in the archive");
}

/* ---- hostile archives: made by hand ------------------------------------ */

static void refused(const char *index_text, const struct entry *e, size_t n, const char *why, const char *want);
static void refused_tampered(const char *index_text, const struct entry *e, size_t n, const char *why,
                             const char *want);

#define IX_VOL "{\"format\":1,\"workload\":\"db\",\"spec\":{\"kind\":\"Workload\"},\"disk\":null,"
#define IX_PG IX_VOL "\"volumes\":[{\"name\":\"pg\",\"size\":null}]}"

static void refused_as(const char *index_text, const struct entry *e, size_t n, bool tampered, const char *why,
                       const char *want)
{
    char file[256];
    sub(file, sizeof(file), "h.tar.zst");
    unlink(file);
    cr_assert_eq(backup_forge(file, index_text, e, n, tampered), 0, "forging the archive %s", why);
    struct duet_err err = {0};
    json_t *ix = unpack(file, &err);
    cr_expect_null(ix, "an archive %s was accepted", why);
    json_decref(ix);
    cr_expect(strstr(err.msg, want), "an archive %s: \"%s\" is not the reason (%s)", why, err.msg, want);
}

static void refused(const char *index_text, const struct entry *e, size_t n, const char *why, const char *want)
{
    refused_as(index_text, e, n, false, why, want);
}

static void refused_tampered(const char *index_text, const struct entry *e, size_t n, const char *why,
                             const char *want)
{
    refused_as(index_text, e, n, true, why, want);
}

Test(backup, names_that_lead_out_are_refused)
{
    struct entry up[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                         {"volumes/pg/data", AE_IFDIR, NULL}, {"volumes/pg/data/../../../../escaped", AE_IFREG, "x"}};
    refused(IX_PG, up, 4, "with ../", "leads out");
    struct entry abs[] = {{"/tmp/escaped-by-backup", AE_IFREG, "x"}};
    refused(IX_PG, abs, 1, "with an absolute name", "leads out");
    cr_expect_neq(access("/tmp/escaped-by-backup", F_OK), 0, "a file was written outside");
    struct entry link[] = {{"volumes", AE_IFDIR, NULL},
                           {"volumes/pg", AE_IFDIR, NULL},
                           {"volumes/pg/data", AE_IFDIR, NULL},
                           {"volumes/pg/data/l", AE_IFLNK, "/tmp"},
                           {"volumes/pg/data/l/escaped-through-link", AE_IFREG, "x"}};
    refused(IX_PG, link, 5, "that writes through its own symlink", "symlink");
    cr_expect_neq(access("/tmp/escaped-through-link", F_OK), 0, "a file was written through a symlink");
    struct entry hard[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                           {"volumes/pg/data", AE_IFDIR, NULL}, {"volumes/pg/data/h", 0, "disk/disk.qcow2"}};
    refused(IX_PG, hard, 4, "with a hard link out of its volume", "hard link out");
    struct entry dev[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                          {"volumes/pg/data", AE_IFDIR, NULL}, {"volumes/pg/data/null", AE_IFCHR, NULL}};
    refused(IX_PG, dev, 4, "with a device node", "device node");
}

Test(backup, what_the_index_does_not_name_is_refused)
{
    struct entry other[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/other", AE_IFDIR, NULL}};
    refused(IX_PG, other, 2, "with a volume its index does not name", "volume the index does not name");
    struct entry disk[] = {{"disk", AE_IFDIR, NULL}, {"disk/disk.qcow2", AE_IFREG, "QFI"}};
    refused(IX_PG, disk, 2, "with a disk its index does not name", "disk the index does not name");
    struct entry stray[] = {{"etc", AE_IFDIR, NULL}, {"etc/passwd", AE_IFREG, "root::0:0::/:/bin/sh\n"}};
    refused(IX_PG, stray, 2, "with files of no part of a backup", "not part of a duet backup");
    struct entry second[] = {{BACKUP_INDEX, AE_IFREG, "{}"}};
    refused(IX_PG, second, 1, "with a second index", "not part of");
    /* cut short: the volume its index names is not there */
    refused(IX_PG, NULL, 0, "without the volume its index names", "cut short");
    /* a sized volume of another size than it says */
    struct entry sized[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                            {"volumes/pg/disk.ext4", AE_IFREG, "tiny"}};
    refused(IX_VOL "\"volumes\":[{\"name\":\"pg\",\"size\":16777216}]}", sized, 3, "with a volume of the wrong size",
            "not of the size");
}

Test(backup, contents_that_do_not_match_the_seal_are_refused)
{
    struct entry e[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                        {"volumes/pg/data", AE_IFDIR, NULL}, {"volumes/pg/data/f", AE_IFREG, "the rows"}};
        refused_tampered(IX_PG, e, 4, "whose data is not what it was sealed with", "do not match its seal");
}

Test(backup, an_index_that_is_not_one_is_refused)
{
    struct entry none[] = {{"volumes", AE_IFDIR, NULL}};
    refused(NULL, none, 1, "without an index first", "first entry");
    refused("not json", NULL, 0, "whose index is not JSON", "not JSON");
    refused("{\"format\":2,\"spec\":{},\"disk\":null,\"volumes\":[]}", NULL, 0, "of another format", "format 1");
    refused("{\"format\":1,\"disk\":null,\"volumes\":[]}", NULL, 0, "without a spec", "no workload spec");
    refused(IX_VOL "\"volumes\":[{\"name\":\"../../etc\",\"size\":null}]}", NULL, 0, "naming a volume ../../etc",
            "not a volume name");
    refused(IX_VOL "\"volumes\":[{\"name\":\"pg\",\"size\":null},{\"name\":\"pg\",\"size\":null}]}", NULL, 0,
            "naming a volume twice", "twice");
    refused(IX_VOL "\"volumes\":[{\"name\":\"pg\",\"size\":-5}]}", NULL, 0, "with a negative size", "not one");
}

Test(backup, cut_short_corrupted_and_too_large_archives_are_refused)
{
    char file[128], cut[128];
    snprintf(file, sizeof(file), "%s/good.tar.zst", root);
    char big[8192];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct entry e[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/pg", AE_IFDIR, NULL},
                        {"volumes/pg/data", AE_IFDIR, NULL}, {"volumes/pg/data/f", AE_IFREG, big}};
    cr_assert_eq(backup_forge(file, IX_PG, e, 4, false), 0);
    struct duet_err err = {0};
    json_t *ix = unpack(file, &err);
    cr_assert_not_null(ix, "the archive itself is fine: %s", err.msg);
    json_decref(ix);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    /* cut in half */
    snprintf(cut, sizeof(cut), "%s/cut.tar.zst", root);
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "head -c %lld %s > %s", (long long)st.st_size / 2, file, cut);
    cr_assert_eq(system(cmd), 0);
    memset(&err, 0, sizeof(err));
    ix = unpack(cut, &err);
    cr_expect_null(ix, "a cut archive was accepted");
    json_decref(ix);
    /* bytes flipped in the middle */
    snprintf(cmd, sizeof(cmd), "cp %s %s && printf 'garbagegarbage' | dd of=%s bs=1 seek=%lld conv=notrunc 2>/dev/null",
             file, cut, cut, (long long)st.st_size / 2);
    cr_assert_eq(system(cmd), 0);
    memset(&err, 0, sizeof(err));
    ix = unpack(cut, &err);
    cr_expect_null(ix, "a corrupted archive was accepted");
    json_decref(ix);
    /* more than the room there is */
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/small-XXXXXX", root);
    cr_assert_not_null(mkdtemp(dir));
    struct backup_limits lim = {.max_bytes = 4096, .max_entries = 1000};
    memset(&err, 0, sizeof(err));
    ix = backup_archive_read(fd, dir, &lim, &err);
    close(fd);
    cr_expect_null(ix);
    cr_expect_eq(err.code, ENOSPC, "%s", err.msg);
    json_decref(ix);
}
