/*
 * kept.c - what a backend keeps of a workload beyond its instances
 * (kept.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/kept.h"
#include "common/fsutil.h"
#include "manifests/manifest.h"

#define KEPT_LOG "log"
#define KEPT_LOG1 "log.1"

int kept_path(const char *kept_dir, const char *name, const char *file, char *out, size_t len,
              struct duet_err *err)
{
    /* A workload name is a DNS label: no '/', no "..", never empty. */
    if (!manifest_name_valid(name, strlen(name)))
        return duet_err_set(err, EINVAL, "\"%.64s\" is not a workload name", name);
    int n = file ? snprintf(out, len, "%s/%s/%s", kept_dir, name, file) : snprintf(out, len, "%s/%s", kept_dir, name);
    if (n < 0 || (size_t)n >= len)
        return duet_err_set(err, ENAMETOOLONG, "workload %s: the path of what is kept for it is too long", name);
    return 0;
}

int kept_dir_make(const char *kept_dir, const char *name, struct duet_err *err)
{
    char dir[PATH_MAX];
    if (kept_path(kept_dir, name, NULL, dir, sizeof(dir), err) < 0)
        return -1;
    /* 0711, as an instance's directory: a QEMU run by a system libvirtd
     * as a user of its own must reach a disk in it; nothing is listed. */
    if (mkdir(kept_dir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", kept_dir);
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", dir);
    return 0;
}

void kept_logs_save(const char *kept_dir, const char *name, const char *log, const char *log1)
{
    char to[PATH_MAX], to1[PATH_MAX];
    struct duet_err err = {0};
    if (access(log, F_OK) < 0 || kept_path(kept_dir, name, KEPT_LOG, to, sizeof(to), &err) < 0 ||
        kept_path(kept_dir, name, KEPT_LOG1, to1, sizeof(to1), &err) < 0 || kept_dir_make(kept_dir, name, &err) < 0)
        return;
    /* Both on the state dir's file system: renames, whatever the size.
     * The generation before goes first, so the pair is never mixed from
     * two instances for longer than between the two renames. */
    if (!log1 || rename(log1, to1) < 0)
        unlink(to1);
    rename(log, to);
}

int kept_logs_open(const char *kept_dir, const char *name, const char *what, int *fd, int *prev,
                   struct duet_err *err)
{
    char path[PATH_MAX];
    *fd = -1;
    if (prev)
        *prev = -1;
    if (kept_path(kept_dir, name, KEPT_LOG, path, sizeof(path), err) < 0)
        return -1;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return errno == ENOENT ? duet_err_set(err, ENOENT, "%s has no previous instance's log", what)
                               : duet_err_sys(err, "%s: cannot open the previous instance's log %s", what, path);
    if (prev && kept_path(kept_dir, name, KEPT_LOG1, path, sizeof(path), err) == 0)
        *prev = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return 0;
}

/* ---- purge, on the pool ------------------------------------------------- */

struct purge {
    uv_work_t req;
    char dir[PATH_MAX];
    unsigned what;
    const char *const *disk_files;
    struct duet_err err;
    int rc;
    driver_done_cb done;
    void *opaque;
};

static int remove_file(struct purge *pu, const char *file)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", pu->dir, file) >= (int)sizeof(path))
        return duet_err_set(&pu->err, ENAMETOOLONG, "%s/%s: path too long", pu->dir, file);
    if (unlink(path) < 0 && errno != ENOENT)
        return duet_err_sys(&pu->err, "cannot remove %s", path);
    return 0;
}

static void purge_work(uv_work_t *req)
{
    struct purge *pu = req->data;
    pu->rc = 0;
    if (pu->what & DRIVER_KEPT_LOGS) {
        if (remove_file(pu, KEPT_LOG) < 0 || remove_file(pu, KEPT_LOG1) < 0)
            pu->rc = -1;
    }
    if ((pu->what & DRIVER_KEPT_DISK) && pu->disk_files) {
        for (size_t i = 0; pu->disk_files[i] && pu->rc == 0; i++)
            if (remove_file(pu, pu->disk_files[i]) < 0)
                pu->rc = -1;
    }
    /* Empty now (or holding what was not asked to go: then it stays). */
    if (pu->rc == 0 && rmdir(pu->dir) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
        pu->rc = duet_err_sys(&pu->err, "cannot remove %s", pu->dir);
}

static void purge_after(uv_work_t *req, int status)
{
    struct purge *pu = req->data;
    if (status == UV_ECANCELED && pu->rc == 0)
        pu->rc = duet_err_set(&pu->err, ECANCELED, "removing %s was cancelled", pu->dir);
    if (pu->done)
        pu->done(pu->opaque, pu->rc < 0 ? &pu->err : NULL);
    free(pu);
}

int kept_purge(uv_loop_t *loop, const char *kept_dir, const char *name, unsigned what,
               const char *const *disk_files, driver_done_cb done, void *opaque, struct duet_err *err)
{
    struct purge *pu = calloc(1, sizeof(*pu));
    if (!pu)
        abort();
    if (kept_path(kept_dir, name, NULL, pu->dir, sizeof(pu->dir), err) < 0) {
        free(pu);
        return -1;
    }
    pu->what = what;
    pu->disk_files = disk_files;
    pu->done = done;
    pu->opaque = opaque;
    pu->req.data = pu;
    int rc = uv_queue_work(loop, &pu->req, purge_work, purge_after);
    if (rc < 0) {
        free(pu);
        return duet_err_set(err, -rc, "cannot queue the removal of what is kept for %s: %s", name, uv_strerror(rc));
    }
    return 0;
}

int kept_copy(const char *kept_dir, const char *name, const char *const *files, size_t n_files, const char *dir,
              bool restore, size_t *copied, struct duet_err *err)
{
    *copied = 0;
    char what[96];
    snprintf(what, sizeof(what), "workload %s", name);
    if (restore && kept_dir_make(kept_dir, name, err) < 0)
        return -1;
    for (size_t i = 0; i < n_files; i++) {
        char kept[PATH_MAX], snap[PATH_MAX], tmp[PATH_MAX + 32];
        if (kept_path(kept_dir, name, files[i], kept, sizeof(kept), err) < 0)
            return -1;
        int n = snprintf(snap, sizeof(snap), "%s/%s", dir, files[i]);
        if (n < 0 || (size_t)n >= sizeof(snap))
            return duet_err_set(err, ENAMETOOLONG, "%s: the snapshot's path is too long", what);
        if (!restore) {
            if (access(kept, F_OK) < 0)
                continue;
            if (duet_copy_file(kept, snap, what, err) < 0)
                return -1;
            (*copied)++;
            continue;
        }
        if (access(snap, F_OK) < 0) {
            if (unlink(kept) < 0 && errno != ENOENT)
                return duet_err_sys(err, "%s: cannot remove %s", what, kept);
            continue;
        }
        snprintf(tmp, sizeof(tmp), "%s.restore", kept);
        unlink(tmp);
        if (duet_copy_file(snap, tmp, what, err) < 0)
            return -1;
        if (rename(tmp, kept) < 0) {
            unlink(tmp);
            return duet_err_sys(err, "%s: cannot put %s in place", what, kept);
        }
        (*copied)++;
    }
    return 0;
}
