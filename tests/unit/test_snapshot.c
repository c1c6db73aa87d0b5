/*
 * Snapshots on disk (storage/snapshot.h): names that would be paths, a
 * snapshot a crash cut short, a description that is not one.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/kept.h"
#include "helpers.h"
#include "storage/snapshot.h"

static char root[64];

static void setup(void)
{
    tmp_root_make(root, sizeof(root), "duet-snaps");
}

static void teardown(void)
{
    tmp_root_remove(root);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

static void take(const char *wl, const char *snap, json_int_t at)
{
    char dir[256];
    struct duet_err err = {0};
    cr_assert_eq(snapshot_begin(root, wl, snap, dir, sizeof(dir), &err), 0, "%s", err.msg);
    json_t *meta = json_pack("{s:s,s:s,s:I}", "workload", wl, "name", snap, "created_at", at);
    cr_assert_eq(snapshot_commit(root, wl, snap, dir, meta, &err), 0, "%s", err.msg);
    json_decref(meta);
}

Test(snapshot, names_are_names_never_paths)
{
    char out[256];
    struct duet_err err = {0};
    static const char *const bad[] = {"..", "../x", "a/b", "", "UP", "x-", "-x", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(snapshot_path(root, "web", bad[i], out, sizeof(out), &err), -1, "snapshot \"%s\"", bad[i]);
        cr_expect_eq(snapshot_path(root, bad[i], "s1", out, sizeof(out), &err), -1, "workload \"%s\"", bad[i]);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_expect_eq(snapshot_path(root, "web", longname, out, sizeof(out), &err), -1);
    cr_expect_eq(snapshot_path(root, "web", "s1", out, sizeof(out), &err), 0, "%s", err.msg);
    cr_expect(strstr(out, "/web/s1"), "%s", out);
    char dir[256];
    cr_expect_eq(snapshot_begin(root, "web", "../../etc", dir, sizeof(dir), &err), -1);
    cr_expect_eq(err.code, EINVAL);
}

Test(snapshot, listed_oldest_first_and_what_a_crash_left_is_not_one)
{
    take("web", "late", 3000);
    take("web", "early", 1000);
    char dir[256];
    struct duet_err err = {0};
    /* cut short: begun, never committed */
    cr_assert_eq(snapshot_begin(root, "web", "cut", dir, sizeof(dir), &err), 0, "%s", err.msg);
    json_t *l = snapshot_list(root, "web", &err);
    cr_assert_not_null(l);
    cr_assert_eq(json_array_size(l), 2, "the one cut short is not listed");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "name")), "early");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(l, 1), "name")), "late");
    json_decref(l);
    /* that name can be taken again */
    cr_assert_eq(snapshot_begin(root, "web", "cut", dir, sizeof(dir), &err), 0, "%s", err.msg);
    snapshot_abort(dir);
    cr_expect_neq(access(dir, F_OK), 0);
    /* a taken name is refused */
    cr_expect_eq(snapshot_begin(root, "web", "late", dir, sizeof(dir), &err), -1);
    cr_expect_eq(err.code, EEXIST);
    cr_expect(strstr(err.msg, "duet snapshot rm web late"), "%s", err.msg);
    /* none for another workload */
    l = snapshot_list(root, "api", &err);
    cr_expect_eq(json_array_size(l), 0);
    json_decref(l);
}

Test(snapshot, a_description_that_is_not_json_is_said_and_skipped)
{
    take("web", "good", 1);
    take("web", "bad", 2);
    char path[256];
    snprintf(path, sizeof(path), "%s/web/bad/snapshot.json", root);
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f);
    fputs("{\"name\": \"bad\", \"created_at\": ", f);   /* truncated */
    fclose(f);
    struct duet_err err = {0};
    cr_expect_null(snapshot_get(root, "web", "bad", &err));
    cr_expect_eq(err.code, EIO);
    cr_expect(strstr(err.msg, "cannot be read"), "%s", err.msg);
    json_t *l = snapshot_list(root, "web", &err);
    cr_expect_eq(json_array_size(l), 1);
    json_decref(l);
    cr_expect_null(snapshot_get(root, "web", "none", &err));
    cr_expect_eq(err.code, ENOENT);
    cr_expect_eq(snapshot_remove(root, "web", "bad", &err), 0, "%s", err.msg);
    cr_expect_eq(snapshot_remove(root, "web", "bad", &err), -1);
    cr_expect_eq(snapshot_remove_all(root, "web", &err), 0, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/web", root);
    cr_expect_neq(access(path, F_OK), 0);
}

/* What a backend keeps, copied out and back: a file the snapshot lacks
 * goes (the disk as it was: none). */
Test(snapshot, kept_files_are_copied_out_and_back)
{
    char kept[128], snap[160], path[256];
    snprintf(kept, sizeof(kept), "%s/kept", root);
    snprintf(snap, sizeof(snap), "%s/snap", root);
    cr_assert_eq(mkdir(snap, 0700), 0);
    struct duet_err err = {0};
    cr_assert_eq(kept_dir_make(kept, "db", &err), 0, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/db/disk.base", kept);
    FILE *f = fopen(path, "we");
    fputs("/srv/base 1 2 3\n", f);
    fclose(f);
    static const char *const files[] = {"disk.base", "disk.qcow2"};
    size_t n = 0;
    cr_assert_eq(kept_copy(kept, "db", files, 2, snap, false, &n, &err), 0, "%s", err.msg);
    cr_expect_eq(n, 1, "only what exists");
    /* later a disk appears; the restore takes it away again */
    snprintf(path, sizeof(path), "%s/db/disk.qcow2", kept);
    f = fopen(path, "we");
    fputs("QFI", f);
    fclose(f);
    cr_assert_eq(kept_copy(kept, "db", files, 2, snap, true, &n, &err), 0, "%s", err.msg);
    cr_expect_eq(n, 1);
    cr_expect_neq(access(path, F_OK), 0, "the disk made after the snapshot is gone");
    snprintf(path, sizeof(path), "%s/db/disk.base", kept);
    cr_expect_eq(access(path, F_OK), 0);
    cr_expect_eq(kept_copy(kept, "../db", files, 2, snap, true, &n, &err), -1, "a name that is a path");
}
