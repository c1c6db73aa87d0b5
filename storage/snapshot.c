/*
 * snapshot.c - a workload's snapshots on disk (see snapshot.h).
 */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "manifests/manifest.h"

#define SNAPSHOT_META "snapshot.json"

int snapshot_path(const char *root, const char *workload, const char *snap, char *out, size_t len,
                  struct duet_err *err)
{
    if (!manifest_name_valid(workload, strlen(workload)))
        return duet_err_set(err, EINVAL, "\"%.64s\" is not a workload name", workload);
    if (snap && !manifest_name_valid(snap, strlen(snap)))
        return duet_err_set(err, EINVAL,
                            "\"%.64s\" is not a snapshot name: use 1 to 63 lower-case letters, digits and '-', "
                            "starting and ending with a letter or digit",
                            snap);
    int n = snap ? snprintf(out, len, "%s/%s/%s", root, workload, snap) : snprintf(out, len, "%s/%s", root, workload);
    if (n < 0 || (size_t)n >= len)
        return duet_err_set(err, ENAMETOOLONG, "workload %s: its snapshots' path is too long", workload);
    return 0;
}

int snapshot_begin(const char *root, const char *workload, const char *snap, char *dir, size_t len,
                   struct duet_err *err)
{
    char wdir[PATH_MAX], final[PATH_MAX];
    if (snapshot_path(root, workload, NULL, wdir, sizeof(wdir), err) < 0 ||
        snapshot_path(root, workload, snap, final, sizeof(final), err) < 0)
        return -1;
    if ((mkdir(root, 0700) < 0 && errno != EEXIST) || (mkdir(wdir, 0700) < 0 && errno != EEXIST))
        return duet_err_sys(err, "workload %s: cannot create %s", workload, wdir);
    char meta[PATH_MAX + 32];
    snprintf(meta, sizeof(meta), "%s/" SNAPSHOT_META, final);
    if (access(meta, F_OK) == 0)
        return duet_err_set(err, EEXIST, "workload %s already has a snapshot %s; name another, or remove it first "
                                         "(duet snapshot rm %s %s)",
                            workload, snap, workload, snap);
    /* What a crash left of an earlier try under this name. */
    if (duet_remove_tree(final, err) < 0)
        return -1;
    int n = snprintf(dir, len, "%s.tmp", final);
    if (n < 0 || (size_t)n >= len)
        return duet_err_set(err, ENAMETOOLONG, "workload %s: its snapshots' path is too long", workload);
    if (duet_remove_tree(dir, err) < 0)
        return -1;
    if (mkdir(dir, 0700) < 0)
        return duet_err_sys(err, "workload %s: cannot create %s", workload, dir);
    return 0;
}

int snapshot_commit(const char *root, const char *workload, const char *snap, const char *dir, json_t *meta,
                    struct duet_err *err)
{
    char final[PATH_MAX], path[PATH_MAX + 32];
    if (snapshot_path(root, workload, snap, final, sizeof(final), err) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/" SNAPSHOT_META, dir);
    _cleanup_free_ char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t n = text ? strlen(text) : 0;
    if (!text || fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) < 0)
        return duet_err_sys(err, "workload %s: cannot write %s", workload, path);
    if (rename(dir, final) < 0)
        return duet_err_sys(err, "workload %s: cannot put snapshot %s in place", workload, snap);
    return 0;
}

void snapshot_abort(const char *dir)
{
    duet_remove_tree(dir, NULL);
}

json_t *snapshot_get(const char *root, const char *workload, const char *snap, struct duet_err *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    if (snapshot_path(root, workload, snap, dir, sizeof(dir), err) < 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/" SNAPSHOT_META, dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) < 0)
            duet_err_set(err, ENOENT, "workload %s has no snapshot %s; duet snapshot ls %s lists them", workload,
                         snap, workload);
        else
            duet_err_set(err, EIO, "workload %s: snapshot %s cannot be read (%s): remove it", workload, snap, je.text);
        return NULL;
    }
    return j;
}

static int by_created(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "created_at"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "created_at"));
    return (x > y) - (x < y);
}

json_t *snapshot_list(const char *root, const char *workload, struct duet_err *err)
{
    char wdir[PATH_MAX];
    if (snapshot_path(root, workload, NULL, wdir, sizeof(wdir), err) < 0)
        return NULL;
    json_t *arr = json_array();
    _cleanup_closedir_ DIR *d = opendir(wdir);
    if (!d)
        return arr;
    json_t *found[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < sizeof(found) / sizeof(found[0])) {
        if (!manifest_name_valid(e->d_name, strlen(e->d_name)))
            continue;   /* ".", "..", what a crash left (NAME.tmp) */
        struct duet_err ignored;
        json_t *j = snapshot_get(root, workload, e->d_name, &ignored);
        if (j)
            found[n++] = j;
    }
    qsort(found, n, sizeof(found[0]), by_created);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, found[i]);
    return arr;
}

int snapshot_remove(const char *root, const char *workload, const char *snap, struct duet_err *err)
{
    char dir[PATH_MAX];
    if (snapshot_path(root, workload, snap, dir, sizeof(dir), err) < 0)
        return -1;
    struct stat st;
    if (lstat(dir, &st) < 0)
        return duet_err_set(err, ENOENT, "workload %s has no snapshot %s; duet snapshot ls %s lists them", workload,
                            snap, workload);
    return duet_remove_tree(dir, err);
}

int snapshot_remove_all(const char *root, const char *workload, struct duet_err *err)
{
    char wdir[PATH_MAX];
    if (snapshot_path(root, workload, NULL, wdir, sizeof(wdir), err) < 0)
        return -1;
    return duet_remove_tree(wdir, err);
}
