/*
 * backup.c - duet backup and duet restore: a workload carried to another
 * daemon, or kept off the host, as one archive (storage/backup.h holds
 * its format, docs/storage.md what a user sees).
 *
 * A backup is a snapshot (snapshot.c: its disk and the volumes it writes
 * copied on a worker) taken into STATE/backups, then written as the
 * archive from that copy while the workload runs on; the copy goes once
 * the archive is written.  With --stop the workload is held (stopped)
 * for the copy: consistent.  Without, a running workload is paused
 * (driver.pause) for the copy: crash-consistent, as a power cut would
 * have left it, which is what databases are built to recover from.  A disk over a base duet
 * built is made to hold that base (driver.kept_portable), so the archive
 * restores on a host that never saw the image.
 *
 * The file is the user's: it is created and read with the rights of the
 * client that asked (its uid and gid from SO_PEERCRED, as the fs ids of
 * the thread that opens it), never with the daemon's.  A backup is
 * written beside its name and renamed over it once whole, so a full disk
 * or a crash leaves no half archive under the name.
 *
 * A restore unpacks the archive into STATE/backups, checks its spec as
 * apply would (a dry run against the fleet, on the loop), puts the disk
 * and volumes in place on a worker (a disk is checked to refer to no
 * host file but the spec's image, a sized volume's filesystem by e2fsck
 * before the host mounts it), then applies the spec.  Any refusal leaves
 * nothing made.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "common/units.h"
#include "manifests/specjson.h"
#include "orchestrator/daemon.h"
#include "orchestrator/workload.h"
#include "storage/backup.h"
#include "storage/snapshot.h"
#include "storage/volume.h"

#define STAGING_SNAP "backup"

/* Opens `path` as uid:gid would (fs ids of this thread only: the other
 * threads keep root's); flags as open(2).  For a new file the directory
 * is opened too (*dirfd), so that the rename that finishes it and an
 * unlink that drops it act where it was made. */
static int open_as(uid_t uid, gid_t gid, const char *path, int flags, int *dirfd, char *base, size_t blen,
                   struct duet_err *err)
{
    char copy[PATH_MAX];
    if (path[0] != '/' || strlen(path) >= sizeof(copy))
        return duet_err_set(err, EINVAL, "\"%.200s\" is not an absolute path", path);
    snprintf(copy, sizeof(copy), "%s", path);
    int ofs_g = setfsgid(gid), ofs_u = setfsuid(uid);
    int fd = -1, e = 0;
    if (dirfd) {
        char dcopy[PATH_MAX];
        snprintf(dcopy, sizeof(dcopy), "%s", path);
        snprintf(base, blen, "%s", basename(copy));
        *dirfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*dirfd >= 0)
            fd = openat(*dirfd, base, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
    } else {
        fd = open(path, flags | O_CLOEXEC);
    }
    e = errno;
    setfsuid(ofs_u);
    setfsgid(ofs_g);
    if (fd < 0) {
        if (dirfd && *dirfd >= 0) {
            close(*dirfd);
            *dirfd = -1;
        }
        errno = e;
        return duet_err_sys(err, "%s", path);
    }
    return fd;
}

static int staging_root(struct daemon *d, char *out, size_t len, struct duet_err *err)
{
    if (snprintf(out, len, "%s/backups", d->state_dir) >= (int)len)
        return duet_err_set(err, ENAMETOOLONG, "the state directory's path is too long");
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", out);
    return 0;
}

/* ---- backup ----------------------------------------------------------- */

struct bk_job {
    uv_work_t req;
    struct daemon *d;
    struct wl *w;
    char name[64];
    char root[4200];               /* STATE/backups */
    char path[PATH_MAX];           /* the file asked for */
    char tmp[NAME_MAX + 1], final[NAME_MAX + 1];
    int fd, dirfd;
    json_t *index;
    json_t *meta;                  /* the snapshot's description */
    struct driver *vm;
    uint64_t t0, stopped_ms, paused_ms, written;
    backup_done_cb done;
    void *opaque;
    int rc;
    struct duet_err err;
};

static void bk_free(struct bk_job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->dirfd >= 0)
        close(j->dirfd);
    json_decref(j->index);
    json_decref(j->meta);
    if (j->w) {
        j->w->backing_up = false;
        wl_unref(j->w);
    }
    free(j);
}

static void bk_work(uv_work_t *req)
{
    struct bk_job *j = req->data;
    char dir[PATH_MAX], sub[PATH_MAX + 8];
    j->rc = -1;
    if (snapshot_path(j->root, j->name, STAGING_SNAP, dir, sizeof(dir), &j->err) < 0)
        goto out;
    snprintf(sub, sizeof(sub), "%s/disk", dir);
    if (json_is_object(json_object_get(j->index, "disk")) && j->vm && j->vm->kept_portable &&
        j->vm->kept_portable(j->vm, j->name, sub, NULL, &j->err) < 0)
        goto out;
    if (backup_archive_write(j->fd, j->index, dir, &j->written, &j->err) < 0)
        goto out;
    if (renameat(j->dirfd, j->tmp, j->dirfd, j->final) < 0) {
        duet_err_sys(&j->err, "cannot put the backup in place as %s", j->path);
        goto out;
    }
    j->tmp[0] = '\0';
    j->rc = 0;
out:
    if (j->tmp[0])
        unlinkat(j->dirfd, j->tmp, 0);
    struct duet_err e2;
    snapshot_remove_all(j->root, j->name, &e2);
}

static void bk_written(uv_work_t *req, int status)
{
    struct bk_job *j = req->data;
    if (status == UV_ECANCELED) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "the backup was cancelled");
    }
    if (j->rc == 0) {
        char sz[32];
        daemon_event(j->d, j->name, "backup", "backed up to %s (%s)", j->path,
                     units_size_format(j->written, sz, sizeof(sz)));
        json_t *res = json_pack("{s:s,s:s,s:I,s:O,s:O,s:O,s:I,s:I,s:I}", "workload", j->name, "path", j->path,
                                "bytes", (json_int_t)j->written, "consistency",
                                json_object_get(j->index, "consistency"), "disk", json_object_get(j->index, "disk"),
                                "volumes", json_object_get(j->index, "volumes"), "stopped_ms",
                                (json_int_t)j->stopped_ms, "paused_ms", (json_int_t)j->paused_ms, "took_ms",
                                (json_int_t)(clock_mono_ms() - j->t0));
        j->done(j->opaque, NULL, res);
        json_decref(res);
    } else {
        daemon_event(j->d, j->name, "failed", "backing up to %s: %s", j->path, j->err.msg);
        j->done(j->opaque, &j->err, NULL);
    }
    bk_free(j);
}

/* The copy is made and the workload runs again: the archive is written
 * from the copy on a worker. */
static void bk_copied(void *opaque, const struct duet_err *err, json_t *meta)
{
    struct bk_job *j = opaque;
    if (err) {
        if (j->tmp[0])
            unlinkat(j->dirfd, j->tmp, 0);
        j->done(j->opaque, err, NULL);
        bk_free(j);
        return;
    }
    j->meta = json_incref(meta);
    j->stopped_ms = (uint64_t)json_integer_value(json_object_get(meta, "stopped_ms"));
    j->paused_ms = (uint64_t)json_integer_value(json_object_get(meta, "paused_ms"));
    /* What the copy holds is what the archive says it holds. */
    const char *src = json_string_value(json_object_get(meta, "disk"));
    json_object_set_new(j->index, "disk", src ? json_pack("{s:s}", "source", src) : json_null());
    json_object_set(j->index, "volumes", json_object_get(meta, "volumes"));
    uv_queue_work(j->d->loop, &j->req, bk_work, bk_written);
}

/* A backup holds a spec as its user wrote it: secrets by reference, not
 * the versions of this duetd's seals (docs/secrets.md).  A restore reads
 * the files and the stored secrets where it runs. */
static void spec_unseal(json_t *doc)
{
    json_t *spec = json_object_get(doc, "spec"), *v;
    const char *k;
    size_t i;
    json_object_foreach(json_object_get(spec, "env"), k, v)
        if (json_is_object(v))
            json_object_del(v, "version");
    json_array_foreach(json_object_get(spec, "secrets"), i, v)
        json_object_del(v, "version");
}

int daemon_backup(struct daemon *d, const char *name, const char *path, bool stop, uid_t uid, gid_t gid,
                  backup_done_cb done, void *opaque, struct duet_err *err)
{
    struct wl *w = daemon_wl_find(d, name);
    if (!w || w->deleted)
        return duet_err_set(err, ENOENT, "no workload named \"%.63s\"; duet get lists them", name);
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    if (w->hold || w->backing_up)
        return duet_err_set(err, EBUSY, "workload %s: a snapshot or a backup of it is being taken; wait for it", name);
    bool running = w->inst && w->inst_running, live = running && !stop;
    struct bk_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    j->d = d;
    j->fd = j->dirfd = -1;
    j->t0 = clock_mono_ms();
    j->done = done;
    j->opaque = opaque;
    j->vm = d->drv_open[BACKEND_VM] ? d->drv[BACKEND_VM] : NULL;
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->path, sizeof(j->path), "%s", path);
    if (staging_root(d, j->root, sizeof(j->root), err) < 0)
        goto fail;
    /* The file first: a place the user cannot write is refused before
     * the workload is stopped for nothing.  It is written under a
     * temporary name beside the one asked for. */
    char tmpname[PATH_MAX], dcopy[PATH_MAX], bcopy[PATH_MAX];
    snprintf(dcopy, sizeof(dcopy), "%s", path);
    snprintf(bcopy, sizeof(bcopy), "%s", path);
    const char *base = basename(bcopy);
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || strlen(base) > 200 ||
        snprintf(tmpname, sizeof(tmpname), "%s/.%s.%" PRIx64 ".partial", dirname(dcopy), base, clock_wall_ms()) >=
            (int)sizeof(tmpname)) {
        duet_err_set(err, EINVAL, "\"%.200s\" is not a file name a backup can be written to", path);
        goto fail;
    }
    snprintf(j->final, sizeof(j->final), "%s", base);
    j->fd = open_as(uid, gid, tmpname, O_WRONLY | O_CREAT | O_EXCL, &j->dirfd, j->tmp, sizeof(j->tmp), err);
    if (j->fd < 0) {
        duet_err_prefix(err, "cannot write the backup");
        goto fail;
    }
    /* The staging copy a backup cut short left (snapshot_begin refuses an
     * existing one). */
    struct duet_err e2;
    snapshot_remove_all(j->root, name, &e2);
    const char *consistency = live ? "crash-consistent" : running ? "stopped" : "not running";
    j->index = json_pack("{s:i,s:s,s:I,s:s,s:s,s:o,s:n,s:[]}", "format", BACKUP_FORMAT, "workload", name,
                         "created_at", (json_int_t)clock_wall_ms(), "backend", backend_kind_name(w->backend),
                         "consistency", consistency, "spec", json_loads(w->spec_json, 0, NULL), "disk", "volumes");
    if (!j->index || !json_is_object(json_object_get(j->index, "spec"))) {
        duet_err_set(err, EINVAL, "workload %s: its applied spec cannot be read back", name);
        goto fail;
    }
    spec_unseal(json_object_get(j->index, "spec"));
    j->w = w;
    wl_ref(w);
    w->backing_up = true;
    if ((live ? daemon_snapshot_live(d, w, j->root, STAGING_SNAP, bk_copied, j, err)
              : daemon_snapshot_into(d, w, j->root, STAGING_SNAP, "for a backup", bk_copied, j, err)) < 0)
        goto fail;
    daemon_event(d, name, "backup", "backing up to %s", path);
    return 0;
fail:
    if (j->tmp[0] && j->dirfd >= 0)
        unlinkat(j->dirfd, j->tmp, 0);
    bk_free(j);
    return -1;
}

/* ---- restore ---------------------------------------------------------- */

struct rs_job {
    uv_work_t req;
    struct daemon *d;
    int fd;
    char path[PATH_MAX];
    char dir[4300];                /* STATE/backups/restore-XXXXXX */
    char name[64];                 /* asked for, or "" */
    json_t *index;
    char *spec_text;               /* the spec, renamed as asked */
    struct manifest_set *set;      /* spec_text parsed: its workload for the import */
    const struct workload_spec *spec;
    bool vm;                       /* placed as a VM here */
    struct driver *vmdrv;
    char volume_root[4200];
    size_t n_made;                 /* volumes made, for an undo */
    bool disk_made;
    int stage;                     /* 0 unpack, 1 put in place */
    backup_done_cb done;
    void *opaque;
    int rc;
    struct duet_err err;
};

static void rs_free(struct rs_job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->dir[0]) {
        struct duet_err e;
        duet_remove_tree(j->dir, &e);
    }
    json_decref(j->index);
    free(j->spec_text);
    if (j->set)
        manifest_set_free(j->set);
    free(j);
}

static void rs_finish(struct rs_job *j, const struct duet_err *err, json_t *res)
{
    if (err)
        daemon_event(j->d, j->name[0] ? j->name : NULL, "failed", "restoring from %s: %s", j->path, err->msg);
    j->done(j->opaque, err, res);
    rs_free(j);
}

/* A sized volume's image is a filesystem the host's kernel mounts: one
 * from an archive is checked whole first. */
static int fs_check(const char *img, const char *vol, struct duet_err *err)
{
    char *const argv[] = {"e2fsck", "-f", "-n", (char *)img, NULL};
    if (duet_run_tool(argv, err) < 0)
        return duet_err_prefix(err, "volume %s in the backup is not a sound ext4 filesystem; refused", vol);
    return 0;
}

static void rs_work(uv_work_t *req)
{
    struct rs_job *j = req->data;
    j->rc = -1;
    if (j->stage == 0) {
        struct statvfs vfs;
        struct backup_limits lim = {.max_bytes = UINT64_MAX, .max_entries = 1u << 20};
        if (statvfs(j->dir, &vfs) == 0) {
            uint64_t free_b = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            lim.max_bytes = free_b > (64u << 20) ? free_b - (64u << 20) : 0;
        }
        j->index = backup_archive_read(j->fd, j->dir, &lim, &j->err);
        j->rc = j->index ? 0 : -1;
        return;
    }
    char sub[sizeof(j->dir) + 200];
    if (j->vm && json_is_object(json_object_get(j->index, "disk"))) {
        size_t n = 0;
        snprintf(sub, sizeof(sub), "%s/disk", j->dir);
        if (!j->vmdrv || !j->vmdrv->kept_portable || !j->vmdrv->kept_copy) {
            duet_err_set(&j->err, ENOTSUP, "the backup holds a VM disk and the VM backend is not available here");
            return;
        }
        if (j->vmdrv->kept_portable(j->vmdrv, j->spec->name, sub, j->spec, &j->err) < 0)
            return;
        j->disk_made = true;
        if (j->vmdrv->kept_copy(j->vmdrv, j->spec->name, sub, true, &n, &j->err) < 0)
            return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j->index, "volumes"), i, v) {
        const char *vn = json_string_value(json_object_get(v, "name"));
        snprintf(sub, sizeof(sub), "%s/volumes/%s/disk.ext4", j->dir, vn);
        if (json_is_integer(json_object_get(v, "size")) && fs_check(sub, vn, &j->err) < 0)
            return;
        snprintf(sub, sizeof(sub), "%s/volumes/%s", j->dir, vn);
        j->n_made = i + 1;
        if (volume_restore(j->volume_root, vn, sub, &j->err) < 0)
            return;
    }
    j->rc = 0;
}

static void rs_undone(void *opaque, const struct duet_err *err)
{
    (void)opaque;
    (void)err;
}

/* What a failed restore made goes again: nothing is left of it. */
static void rs_undo(struct rs_job *j)
{
    struct duet_err e;
    if (j->disk_made && j->vmdrv && j->vmdrv->purge)
        j->vmdrv->purge(j->vmdrv, j->spec->name, DRIVER_KEPT_DISK, rs_undone, NULL, &e);
    for (size_t i = 0; i < j->n_made; i++) {
        const char *vn = json_string_value(json_object_get(json_array_get(json_object_get(j->index, "volumes"), i),
                                                           "name"));
        daemon_volume_remove(j->d, vn, rs_undone, NULL);
    }
}

static void refusal(struct duet_err *err, struct apply_result *r)
{
    char buf[1024] = "";
    size_t o = 0;
    for (size_t i = 0; i < r->n_lines && o < sizeof(buf) - 1; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "; " : "", r->lines[i]);
    for (size_t i = 0; i < r->n_unplaceable && o < sizeof(buf) - 1; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s: %s", o ? "; " : "", r->unplaceable[i].name,
                              r->unplaceable[i].reason);
    duet_err_set(err, r->status == APPLY_UNAVAILABLE ? EAGAIN : EINVAL, "the backup's workload is refused here: %s%s%s",
                 r->error, buf[0] ? ": " : "", buf);
}

static struct manifest_set *spec_set(const char *text)
{
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "(the backup's spec)", text, strlen(text));
    return set;
}

static void rs_placed(uv_work_t *req, int status)
{
    struct rs_job *j = req->data;
    struct daemon *d = j->d;
    if (status == UV_ECANCELED || d->shutting_down) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "the restore was cancelled: duetd is stopping");
    }
    if (j->rc < 0) {
        rs_undo(j);
        return rs_finish(j, &j->err, NULL);
    }
    struct apply_result r;
    struct apply_opts o = {0};
    daemon_apply(d, spec_set(j->spec_text), &o, &r);
    if (r.status != APPLY_OK) {
        refusal(&j->err, &r);
        apply_result_free(&r);
        rs_undo(j);
        return rs_finish(j, &j->err, NULL);
    }
    apply_result_free(&r);
    struct wl *w = daemon_wl_find(d, j->name);
    json_t *disk = json_object_get(j->index, "disk");
    if (w && j->vm && json_is_object(disk)) {
        /* what the disk put in place was made from, as a create records it */
        free(w->disk);
        w->disk = strdup(json_string_value(json_object_get(disk, "source")));
        wl_save(w);
    }
    daemon_event(d, j->name, "restored", "made from the backup %s", j->path);
    json_t *res = json_pack("{s:s,s:s,s:s,s:O,s:O,s:O,s:O}", "workload", j->name, "path", j->path, "backend",
                            j->vm ? "vm" : "container", "consistency", json_object_get(j->index, "consistency"),
                            "disk", disk, "volumes", json_object_get(j->index, "volumes"), "created_at",
                            json_object_get(j->index, "created_at"));
    rs_finish(j, NULL, res);
    json_decref(res);
}

/* The archive is unpacked: the workload it holds is checked against this
 * daemon's fleet, then its disk and volumes go in place. */
static void rs_unpacked(uv_work_t *req, int status)
{
    struct rs_job *j = req->data;
    struct daemon *d = j->d;
    if (status == UV_ECANCELED || d->shutting_down) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "the restore was cancelled: duetd is stopping");
    }
    if (j->rc < 0)
        return rs_finish(j, &j->err, NULL);
    close(j->fd);
    j->fd = -1;
    json_t *spec = json_object_get(j->index, "spec");
    json_t *meta = json_object_get(spec, "metadata");
    const char *orig = json_string_value(json_object_get(meta, "name"));
    if (!json_is_object(meta) || !orig)
        return rs_finish(j, (duet_err_set(&j->err, EPROTO, "the backup's spec has no metadata.name"), &j->err), NULL);
    if (!j->name[0])
        snprintf(j->name, sizeof(j->name), "%.63s", orig);
    json_object_set_new(meta, "name", json_string(j->name));
    struct wl *w = daemon_wl_find(d, j->name);
    if (w && !w->deleted)
        return rs_finish(j,
                         (duet_err_set(&j->err, EEXIST,
                                       "a workload named %s exists here; restore under another name (--name) or "
                                       "delete it first",
                                       j->name),
                          &j->err),
                         NULL);
    if (w)
        return rs_finish(j, (duet_err_set(&j->err, EBUSY, "workload %s is being deleted; wait for it", j->name),
                             &j->err),
                         NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j->index, "volumes"), i, v) {
        const char *vn = json_string_value(json_object_get(v, "name"));
        struct volume_info info;
        struct duet_err e;
        if (volume_inspect(d->volume_root, vn, &info, &e) == 0)
            return rs_finish(j,
                             (duet_err_set(&j->err, EEXIST,
                                           "volume %s exists here and the backup holds one of that name; a restore "
                                           "does not overwrite data: remove it first (duet volume rm %s) or restore "
                                           "on another host",
                                           vn, vn),
                              &j->err),
                             NULL);
    }
    j->spec_text = json_dumps(spec, JSON_COMPACT);
    if (!j->spec_text)
        abort();
    /* As apply would take it, nothing changed yet. */
    struct apply_result r;
    struct apply_opts o = {.dry_run = true};
    daemon_apply(d, spec_set(j->spec_text), &o, &r);
    if (r.status != APPLY_OK || r.n_changes != 1) {
        refusal(&j->err, &r);
        apply_result_free(&r);
        return rs_finish(j, &j->err, NULL);
    }
    json_t *pl = json_loads(r.changes[0].placement_json ? r.changes[0].placement_json : "{}", 0, NULL);
    j->vm = pl && !strcmp(json_string_value(json_object_get(pl, "backend")) ?: "", "vm");
    json_decref(pl);
    apply_result_free(&r);
    if (json_is_object(json_object_get(j->index, "disk")) && !j->vm)
        return rs_finish(j,
                         (duet_err_set(&j->err, EINVAL,
                                       "the backup holds the VM disk of %s and this host places it as a container; "
                                       "restore where it runs as a VM, or set placement: vm",
                                       j->name),
                          &j->err),
                         NULL);
    j->set = spec_set(j->spec_text);
    manifest_set_validate(j->set);
    if (j->set->n_workloads != 1)
        return rs_finish(j, (duet_err_set(&j->err, EINVAL, "the backup's spec is not one workload"), &j->err), NULL);
    j->spec = j->set->workloads[0];
    j->stage = 1;
    uv_queue_work(d->loop, &j->req, rs_work, rs_placed);
}

int daemon_restore(struct daemon *d, const char *path, const char *name, uid_t uid, gid_t gid, backup_done_cb done,
                   void *opaque, struct duet_err *err)
{
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    if (name && *name && !manifest_name_valid(name, strlen(name)))
        return duet_err_set(err, EINVAL, "\"%.63s\" is not a workload name", name);
    struct rs_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    j->d = d;
    j->done = done;
    j->opaque = opaque;
    j->vmdrv = d->drv_open[BACKEND_VM] ? d->drv[BACKEND_VM] : NULL;
    snprintf(j->volume_root, sizeof(j->volume_root), "%s", d->volume_root);
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
    char root[4200];
    if (staging_root(d, root, sizeof(root), err) < 0)
        goto fail;
    j->fd = open_as(uid, gid, path, O_RDONLY, NULL, NULL, 0, err);
    if (j->fd < 0) {
        duet_err_prefix(err, "cannot read the backup");
        goto fail;
    }
    snprintf(j->dir, sizeof(j->dir), "%s/restore-XXXXXX", root);
    if (!mkdtemp(j->dir)) {
        duet_err_sys(err, "cannot create %s", j->dir);
        j->dir[0] = '\0';
        goto fail;
    }
    uv_queue_work(d->loop, &j->req, rs_work, rs_unpacked);
    return 0;
fail:
    rs_free(j);
    return -1;
}

/* ---- at start ------------------------------------------------------------ */

struct clean_job {
    uv_work_t req;
    char dir[4200];
};

static void clean_work(uv_work_t *req)
{
    struct clean_job *j = req->data;
    struct duet_err e;
    duet_remove_tree(j->dir, &e);
}

static void clean_done(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

void daemon_backups_clean(struct daemon *d)
{
    struct clean_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    /* Moved aside at once, removed on a worker: a backup asked meanwhile
     * makes STATE/backups anew and never meets the old copies. */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/backups", d->state_dir);
    snprintf(j->dir, sizeof(j->dir), "%s/backups.old", d->state_dir);
    struct stat st;
    /* (one an earlier daemon did not finish removing stays in the way
     * until this one has removed it: the next start moves this one) */
    if (rename(dir, j->dir) < 0 && lstat(j->dir, &st) < 0) {
        free(j);
        return;
    }
    uv_queue_work(d->loop, &j->req, clean_work, clean_done);
}
