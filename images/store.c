/*
 * store.c - the image store (see store.h), and the two sources that need
 * no network: an OCI image layout directory and a docker-archive file.
 *
 * An import reads the source's index, picks a manifest (by tag, then by
 * platform in an index), verifies each blob it reads against the digest
 * that names it, and unpacks each layer the store does not have yet from
 * the very bytes it hashes (unpack.h).  The image's record is written
 * last, by rename: an import that fails leaves no image, only layers that
 * a later import uses or a removal clears.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/utf8.h"
#include "images/ref.h"
#include "images/unpack.h"

#define INDEX_MAX (4u << 20)      /* index.json, a manifest or an image index */
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

struct image_store {
    char dir[PATH_MAX - 128];
    struct image_store_opts o;
    pthread_mutex_t lock;          /* imports and removals */
    pthread_mutex_t mount_lock;    /* roots: never held across an import, so a root is mounted while one runs */
};

struct desc {
    char media_type[128];
    char digest[DIGEST_STR];
    uint64_t size;
};

/* ---- small helpers ------------------------------------------------------------ */

static int write_atomic(const char *path, const void *buf, size_t len, struct duet_err *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)gettid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return duet_err_sys(err, "cannot write %s", tmp);
    const char *p = buf;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e ? e : EIO;
            return duet_err_sys(err, "cannot write %s", tmp);
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return duet_err_sys(err, "cannot write %s", path);
    }
    return 0;
}

/* Opens path below dirfd, never leaving it (no "..", no absolute
 * symlink, no magic link): a layout directory is the user's input. */
static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static const char *host_arch(void)
{
    struct utsname u;
    if (uname(&u) < 0)
        return "amd64";
    if (!strcmp(u.machine, "x86_64"))
        return "amd64";
    if (!strcmp(u.machine, "aarch64"))
        return "arm64";
    if (!strncmp(u.machine, "armv7", 5))
        return "arm";
    return "amd64";
}

static int desc_parse(json_t *o, const char *what, struct desc *d, struct duet_err *err)
{
    json_t *mt = json_object_get(o, "mediaType"), *dg = json_object_get(o, "digest"), *sz = json_object_get(o, "size");
    if (!json_is_object(o) || !json_is_string(dg) || !digest_valid(json_string_value(dg)) || !json_is_integer(sz) ||
        json_integer_value(sz) < 0)
        return duet_err_set(err, EINVAL, "%s is not a descriptor with a sha256 digest and a size", what);
    snprintf(d->media_type, sizeof(d->media_type), "%s", json_is_string(mt) ? json_string_value(mt) : "");
    snprintf(d->digest, sizeof(d->digest), "%s", json_string_value(dg));
    d->size = (uint64_t)json_integer_value(sz);
    return 0;
}

/* ---- the store ---------------------------------------------------------------- */

static void store_path(const struct image_store *s, char *out, size_t len, const char *fmt, const char *arg)
{
    int n = snprintf(out, len, "%s/", s->dir);
    snprintf(out + n, len - (size_t)n, fmt, arg);
}

struct image_store *image_store_open(const char *dir, const struct image_store_opts *o, struct duet_err *err)
{
    struct image_store *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    if (strlen(dir) >= sizeof(s->dir)) {
        free(s);
        duet_err_set(err, ENAMETOOLONG, "image store %s: the path is too long", dir);
        return NULL;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->o = o ? *o : (struct image_store_opts){0};
    if (!s->o.max_bytes)
        s->o.max_bytes = 16ull << 30;
    if (!s->o.max_entries)
        s->o.max_entries = 2000000;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->mount_lock, NULL);
    registry_global_init();
    static const char *const sub[] = {"", "/blobs", "/blobs/sha256", "/layers", "/images", "/roots"};
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s%s", s->dir, sub[i]);
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            duet_err_sys(err, "cannot create the image store's %s", p);
            image_store_free(s);
            return NULL;
        }
    }
    /* What an import cut short left: partial layers, never used. */
    char layers[PATH_MAX];
    store_path(s, layers, sizeof(layers), "%s", "layers");
    DIR *d = opendir(layers);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, ".tmp-", 5)) {
            char p[PATH_MAX + 300];
            snprintf(p, sizeof(p), "%s/%s", layers, e->d_name);
            duet_remove_tree(p, NULL);
        }
    if (d)
        closedir(d);
    return s;
}

void image_store_free(struct image_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->mount_lock);
    free(s);
}

void image_free(struct image *img)
{
    if (!img)
        return;
    free(img->layers);
    for (size_t i = 0; i < img->n_refs; i++)
        free(img->refs[i]);
    free(img->refs);
    image_config_free(&img->config);
    free(img);
}

void image_list_free(struct image **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        image_free(l[i]);
    free(l);
}

/* A blob the store keeps (manifest, config): bytes verified, written
 * once. */
static int blob_keep(struct image_store *s, const char *digest, const char *buf, size_t len, struct duet_err *err)
{
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "blobs/sha256/%s", digest_hex(digest));
    if (access(p, F_OK) == 0)
        return 0;
    return write_atomic(p, buf, len, err);
}

static char *blob_read_stored(struct image_store *s, const char *digest, size_t max, size_t *len, struct duet_err *err)
{
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "blobs/sha256/%s", digest_hex(digest));
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        duet_err_sys(err, "image store: blob %s", digest);
        return NULL;
    }
    return duet_read_fd(fd, max, len, digest, err);
}

/* The record of an image, from images/HEX.json and its config blob. */
static struct image *record_load(struct image_store *s, const char *hex, struct duet_err *err)
{
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "images/%s.json", hex);
    _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        duet_err_sys(err, "image store: %s", p);
        return NULL;
    }
    size_t len;
    _cleanup_free_ char *text = duet_read_fd(fd, INDEX_MAX, &len, p, err);
    if (!text)
        return NULL;
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *id = json_object_get(root, "id"), *cfg = json_object_get(root, "config"),
           *layers = json_object_get(root, "layers"), *refs = json_object_get(root, "refs");
    if (!json_is_string(id) || !digest_valid(json_string_value(id)) || !json_is_string(cfg) ||
        !digest_valid(json_string_value(cfg)) || !json_is_array(layers) || !json_is_array(refs) ||
        json_array_size(layers) > IMAGE_MAX_LAYERS) {
        json_decref(root);
        duet_err_set(err, EINVAL, "image store: %s is damaged; remove it and import the image again", p);
        return NULL;
    }
    struct image *img = calloc(1, sizeof(*img));
    if (!img)
        abort();
    snprintf(img->id, sizeof(img->id), "%s", json_string_value(id));
    snprintf(img->config_digest, sizeof(img->config_digest), "%s", json_string_value(cfg));
    img->n_layers = json_array_size(layers);
    img->layers = calloc(img->n_layers + 1, sizeof(*img->layers));
    img->refs = calloc(json_array_size(refs) + 1, sizeof(*img->refs));
    if (!img->layers || !img->refs)
        abort();
    bool ok = true;
    for (size_t i = 0; i < img->n_layers; i++) {
        const char *l = json_string_value(json_array_get(layers, i));
        ok = ok && l && digest_valid(l);
        if (ok)
            snprintf(img->layers[i], DIGEST_STR, "%s", l);
    }
    for (size_t i = 0; i < json_array_size(refs); i++) {
        const char *r = json_string_value(json_array_get(refs, i));
        if (r && !(img->refs[img->n_refs++] = strdup(r)))
            abort();
    }
    img->size = (uint64_t)json_integer_value(json_object_get(root, "size"));
    img->created = (int64_t)json_integer_value(json_object_get(root, "created"));
    json_decref(root);
    size_t clen;
    _cleanup_free_ char *ctext = ok ? blob_read_stored(s, img->config_digest, IMAGE_CONFIG_MAX, &clen, err) : NULL;
    if (!ok || !ctext || image_config_parse(ctext, clen, &img->config, err) < 0) {
        if (!ok)
            duet_err_set(err, EINVAL, "image store: %s is damaged; remove it and import the image again", p);
        image_free(img);
        return NULL;
    }
    return img;
}

static int record_save(struct image_store *s, const struct image *img, struct duet_err *err)
{
    json_t *layers = json_array(), *refs = json_array();
    for (size_t i = 0; i < img->n_layers; i++)
        json_array_append_new(layers, json_string(img->layers[i]));
    for (size_t i = 0; i < img->n_refs; i++)
        json_array_append_new(refs, json_string(img->refs[i]));
    json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I}", "id", img->id, "config", img->config_digest, "layers",
                             layers, "refs", refs, "size", (json_int_t)img->size, "created", (json_int_t)img->created);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        abort();
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "images/%s.json", digest_hex(img->id));
    int rc = write_atomic(p, text, strlen(text), err);
    free(text);
    return rc;
}

static bool has_ref(const struct image *img, const char *ref)
{
    for (size_t i = 0; i < img->n_refs; i++)
        if (!strcmp(img->refs[i], ref))
            return true;
    return false;
}

/* Takes ref away from every image but keep (a reference names one image). */
static void refs_move(struct image_store *s, const char *ref, const char *keep_id)
{
    struct image **all = NULL;
    size_t n = 0;
    if (image_store_list(s, &all, &n, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(all[i]->id, keep_id) || !has_ref(all[i], ref))
            continue;
        size_t k = 0;
        for (size_t j = 0; j < all[i]->n_refs; j++) {
            if (!strcmp(all[i]->refs[j], ref))
                free(all[i]->refs[j]);
            else
                all[i]->refs[k++] = all[i]->refs[j];
        }
        all[i]->n_refs = k;
        record_save(s, all[i], NULL);
    }
    image_list_free(all, n);
}

int image_store_list(struct image_store *s, struct image ***out, size_t *n, struct duet_err *err)
{
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "%s", "images");
    _cleanup_closedir_ DIR *d = opendir(p);
    if (!d)
        return duet_err_sys(err, "image store: %s", p);
    size_t cap = 16, k = 0;
    struct image **l = calloc(cap, sizeof(*l));
    if (!l)
        abort();
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len != DIGEST_HEX + 5 || strcmp(e->d_name + DIGEST_HEX, ".json") != 0)
            continue;
        char hex[DIGEST_HEX + 1];
        memcpy(hex, e->d_name, DIGEST_HEX);
        hex[DIGEST_HEX] = '\0';
        struct image *img = record_load(s, hex, NULL);
        if (!img)
            continue;
        if (k == cap) {
            cap *= 2;
            l = realloc(l, cap * sizeof(*l));
            if (!l)
                abort();
        }
        l[k++] = img;
    }
    /* newest first */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && l[j - 1]->created < l[j]->created; j--) {
            struct image *t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
    *out = l;
    *n = k;
    return 0;
}

int image_store_get(struct image_store *s, const char *ref_or_id, struct image **out, struct duet_err *err)
{
    *out = NULL;
    const char *hex = NULL;
    size_t hex_len = 0;
    if (!strncmp(ref_or_id, "sha256:", 7) && digest_valid(ref_or_id)) {
        hex = ref_or_id + 7;
        hex_len = DIGEST_HEX;
    } else {
        size_t n = strlen(ref_or_id);
        bool all_hex = n >= 12 && n <= DIGEST_HEX;
        for (size_t i = 0; all_hex && i < n; i++)
            all_hex = (ref_or_id[i] >= '0' && ref_or_id[i] <= '9') || (ref_or_id[i] >= 'a' && ref_or_id[i] <= 'f');
        if (all_hex) {
            hex = ref_or_id;
            hex_len = n;
        }
    }
    char canon[IMAGE_REF_MAX + PATH_MAX];
    struct image_ref r;
    bool is_ref = !hex && image_ref_parse(ref_or_id, &r, NULL) == 0;
    if (is_ref)
        image_ref_format(&r, canon, sizeof(canon));
    if (!hex && !is_ref)
        return image_ref_parse(ref_or_id, &r, err) < 0 ? -1 : 1;
    struct image **all = NULL;
    size_t n = 0;
    if (image_store_list(s, &all, &n, err) < 0)
        return -1;
    int found = 1;
    for (size_t i = 0; i < n && found == 1; i++) {
        bool match = hex ? !strncmp(all[i]->id + 7, hex, hex_len) : has_ref(all[i], canon);
        if (!match)
            continue;
        *out = all[i];
        all[i] = NULL;
        found = 0;
        /* an id prefix that two images share names neither */
        for (size_t j = i + 1; hex && hex_len < DIGEST_HEX && j < n; j++)
            if (!strncmp(all[j]->id + 7, hex, hex_len)) {
                image_free(*out);
                *out = NULL;
                found = duet_err_set(err, EINVAL, "image id %s is ambiguous: give more of it", ref_or_id);
                break;
            }
    }
    image_list_free(all, n);
    return found;
}

/* ---- layers ------------------------------------------------------------------ */

static bool layer_present(struct image_store *s, const char *digest)
{
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "layers/%s", digest_hex(digest));
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Unpacks the layer blob open at fd (verified while it is read) into
 * layers/HEX. */
static int layer_add(struct image_store *s, int fd, const struct desc *d, uint64_t *bytes, struct duet_err *err)
{
    if (layer_present(s, d->digest))
        return 0;
    char tmp[PATH_MAX];
    store_path(s, tmp, sizeof(tmp), "layers/.tmp-%s-XXXXXX", digest_hex(d->digest));
    if (!mkdtemp(tmp))
        return duet_err_sys(err, "cannot create %s", tmp);
    chmod(tmp, 0755);
    struct unpack_limits lim = {.max_bytes = s->o.max_bytes > *bytes ? s->o.max_bytes - *bytes : 0,
                                .image_max = s->o.max_bytes, .max_entries = s->o.max_entries};
    struct unpack_stats st = {0};
    if (image_layer_unpack(fd, d->digest, d->size, tmp, &lim, &st, err) < 0) {
        duet_err_prefix(err, "layer %s", d->digest);
        duet_remove_tree(tmp, NULL);
        return -1;
    }
    *bytes += st.bytes;
    char final[PATH_MAX];
    store_path(s, final, sizeof(final), "layers/%s", digest_hex(d->digest));
    if (rename(tmp, final) < 0) {
        int e = errno;
        duet_remove_tree(tmp, NULL);
        if (e == EEXIST || e == ENOTEMPTY)
            return 0;
        errno = e;
        return duet_err_sys(err, "cannot move layer %s into place", d->digest);
    }
    return 0;
}

static bool layer_media_type_ok(const char *mt)
{
    static const char *const ok[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        "",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(mt, ok[i]))
            return true;
    return false;
}

/* ---- importing ---------------------------------------------------------------- */

/* Where an import reads blobs from: a layout's blobs/ directory, or the
 * files of an unpacked docker archive (by digest, as listed). */
struct source {
    struct image_store *s;
    struct registry *reg;            /* a registry's, or NULL */
    int dirfd;                       /* the layout, or the unpacked archive */
    const char *name;                /* for messages: the reference */
    struct progress *prog;           /* NULL: nobody listens */
    /* docker-archive: digest -> file, from its manifest.json */
    char (*arch_digest)[DIGEST_STR];
    char **arch_path;
    size_t n_arch;
};

/* An import's progress, told to its listener (store.h). */
struct progress {
    const struct image_progress_cb *cb;
    struct image_progress p;
    uint64_t base;                   /* bytes of the layers done */
    uint64_t last_ms;
};

static void progress_say(struct progress *pr, bool force)
{
    if (!pr || !pr->cb || !pr->cb->fn)
        return;
    uint64_t now = clock_mono_ms();
    if (!force && now - pr->last_ms < 100)
        return;
    pr->last_ms = now;
    pr->cb->fn(pr->cb->opaque, &pr->p);
}

static void progress_bytes(void *opaque, uint64_t bytes)
{
    struct progress *pr = opaque;
    pr->p.bytes_done = pr->base + bytes;
    progress_say(pr, false);
}

/* pr: a layer's download counts towards the import's progress (NULL: a
 * config or manifest, which does not). */
static int source_open_blob(const struct source *src, const struct desc *d, struct progress *pr, struct duet_err *err)
{
    if (src->reg) {
        /* downloaded into a file of the store's own, verified as it comes */
        char dir[PATH_MAX];
        store_path(src->s, dir, sizeof(dir), "%s", "layers");
        int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
            return duet_err_sys(err, "image %s: cannot make room for blob %s in %s", src->name, d->digest, dir);
        if (registry_blob(src->reg, d->digest, d->size, fd, pr ? progress_bytes : NULL, pr, err) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    char p[PATH_MAX];
    const char *path = NULL;
    for (size_t i = 0; i < src->n_arch && !path; i++)
        if (!strcmp(src->arch_digest[i], d->digest))
            path = src->arch_path[i];
    if (!path) {
        snprintf(p, sizeof(p), "blobs/sha256/%s", digest_hex(d->digest));
        path = p;
    }
    int fd = open_beneath(src->dirfd, path, O_RDONLY);
    if (fd < 0)
        return duet_err_sys(err, "image %s: blob %s (%s)", src->name, d->digest, path);
    return fd;
}

/* A small blob (index, manifest, config) read whole and verified. */
static char *source_read_small(const struct source *src, const struct desc *d, size_t max, size_t *len,
                               struct duet_err *err)
{
    if (d->size > max) {
        duet_err_set(err, E2BIG, "image %s: blob %s is %llu bytes; at most %zu", src->name, d->digest,
                     (unsigned long long)d->size, max);
        return NULL;
    }
    _cleanup_close_ int fd = source_open_blob(src, d, NULL, err);
    if (fd < 0)
        return NULL;
    char *buf = duet_read_fd(fd, max, len, d->digest, err);
    if (!buf)
        return NULL;
    char got[DIGEST_STR];
    digest_of(buf, *len, got);
    if (strcmp(got, d->digest) != 0 || (d->size && *len != d->size)) {
        duet_err_set(err, EBADMSG, "image %s: blob %s does not match its digest or size (its content hashes to %s, "
                     "%zu bytes); the image is damaged",
                     src->name, d->digest, got, *len);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Picks this host's platform from an image index. */
static int index_pick_platform(json_t *manifests, const char *name, struct desc *out, struct duet_err *err)
{
    const char *arch = host_arch();
    size_t i;
    json_t *m;
    json_array_foreach(manifests, i, m) {
        json_t *pf = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(pf, "os")),
                   *a = json_string_value(json_object_get(pf, "architecture"));
        if (os && a && !strcmp(os, "linux") && !strcmp(a, arch))
            return desc_parse(m, "an index entry", out, err);
    }
    /* what it has instead, so the user sees whether a tag for this
     * platform may exist (the names are the registry's: shown bounded,
     * without control characters) */
    char has[200] = "";
    size_t o = 0;
    json_array_foreach(manifests, i, m) {
        json_t *pf = json_object_get(m, "platform");
        const char *os = json_string_value(json_object_get(pf, "os")),
                   *a = json_string_value(json_object_get(pf, "architecture"));
        if (!os || !a || o + 40 >= sizeof(has))
            continue;
        int n = snprintf(has + o, sizeof(has) - o, "%s%.16s/%.16s", o ? ", " : "", os, a);
        duet_text_mask(has + o);
        o += (size_t)n;
    }
    return duet_err_set(err, ENOENT, "image %s has no linux/%s image in its index (it has %s)", name, arch,
                        has[0] ? has : "no platform named");
}

/* The manifest a layout's index.json names: by the tag's annotation, or
 * the only one there is; an image index is followed to this host's
 * platform. */
static int layout_pick(const struct source *src, const char *tag, struct desc *out, struct duet_err *err)
{
    _cleanup_close_ int lfd = open_beneath(src->dirfd, "oci-layout", O_RDONLY);
    size_t len;
    _cleanup_free_ char *lay = lfd >= 0 ? duet_read_fd(lfd, 4096, &len, "oci-layout", err) : NULL;
    json_t *lj = lay ? json_loads(lay, 0, NULL) : NULL;
    bool layout_ok = json_is_string(json_object_get(lj, "imageLayoutVersion"));
    json_decref(lj);
    if (!layout_ok)
        return duet_err_set(err, EINVAL, "image %s: not an OCI image layout (no oci-layout file with an "
                            "imageLayoutVersion); make one with skopeo copy or umoci",
                            src->name);
    _cleanup_close_ int ifd = open_beneath(src->dirfd, "index.json", O_RDONLY);
    if (ifd < 0)
        return duet_err_sys(err, "image %s: index.json", src->name);
    _cleanup_free_ char *text = duet_read_fd(ifd, INDEX_MAX, &len, "index.json", err);
    if (!text)
        return -1;
    json_t *idx = json_loadb(text, len, 0, NULL);
    json_t *mans = json_object_get(idx, "manifests");
    if (!json_is_array(mans)) {
        json_decref(idx);
        return duet_err_set(err, EINVAL, "image %s: index.json has no manifests list", src->name);
    }
    json_t *pick = NULL;
    size_t i, n_tags = 0;
    json_t *m;
    char tags[256] = "";
    json_array_foreach(mans, i, m) {
        const char *rn = json_string_value(json_object_get(json_object_get(m, "annotations"),
                                                           "org.opencontainers.image.ref.name"));
        if (rn && n_tags++ < 8)
            snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), "%s%s", n_tags > 1 ? ", " : "", rn);
        if (tag && tag[0] ? (rn && !strcmp(rn, tag)) : json_array_size(mans) == 1)
            pick = m;
    }
    /* no tag given and several manifests: "latest", as docker reads a bare name */
    json_array_foreach(mans, i, m) {
        const char *rn = json_string_value(json_object_get(json_object_get(m, "annotations"),
                                                           "org.opencontainers.image.ref.name"));
        if (!pick && !(tag && tag[0]) && rn && !strcmp(rn, "latest"))
            pick = m;
    }
    int rc;
    if (!pick && tag && tag[0])
        rc = duet_err_set(err, ENOENT, "image %s: no manifest tagged %s in index.json (tags: %s)", src->name, tag,
                          n_tags ? tags : "none");
    else if (!pick)
        rc = duet_err_set(err, ENOENT, "image %s: index.json has %zu manifests and none tagged latest; name one as oci-layout:DIR:TAG (tags: %s)",
                          src->name, json_array_size(mans), n_tags ? tags : "none");
    else
        rc = desc_parse(pick, "index.json's manifest entry", out, err);
    json_decref(idx);
    return rc;
}

/* index or manifest -> manifest (one level of index, as registries do). */
static char *manifest_resolve(const struct source *src, struct desc *d, size_t *len, struct duet_err *err)
{
    char *text = source_read_small(src, d, INDEX_MAX, len, err);
    if (!text)
        return NULL;
    json_t *j = json_loadb(text, *len, 0, NULL);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    bool is_index = (mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) ||
                    !strcmp(d->media_type, MT_OCI_INDEX) || !strcmp(d->media_type, MT_DOCKER_LIST) ||
                    (!json_object_get(j, "layers") && json_is_array(json_object_get(j, "manifests")));
    if (!is_index) {
        json_decref(j);
        return text;
    }
    free(text);
    int rc = index_pick_platform(json_object_get(j, "manifests"), src->name, d, err);
    json_decref(j);
    if (rc < 0)
        return NULL;
    return source_read_small(src, d, INDEX_MAX, len, err);
}

/* The manifest read and checked; the image built into the store. */
static int import_manifest(struct image_store *s, const struct source *src, const struct desc *md, const char *mtext,
                           size_t mlen, const char *ref, struct image **out, struct duet_err *err)
{
    json_t *m = json_loadb(mtext, mlen, 0, NULL);
    json_t *cfg = json_object_get(m, "config"), *layers = json_object_get(m, "layers");
    struct image *img = NULL;
    char *ctext = NULL;
    int rc = -1;
    if (!json_is_object(m) || !json_is_array(layers)) {
        duet_err_set(err, EINVAL, "image %s: manifest %s is not an image manifest (no layers)", src->name, md->digest);
        goto out;
    }
    if (json_array_size(layers) == 0 || json_array_size(layers) > IMAGE_MAX_LAYERS) {
        duet_err_set(err, EINVAL, "image %s has %zu layers; duet takes 1 to %d", src->name, json_array_size(layers),
                     IMAGE_MAX_LAYERS);
        goto out;
    }
    struct desc cd;
    if (desc_parse(cfg, "the manifest's config", &cd, err) < 0)
        goto out;
    size_t clen;
    ctext = source_read_small(src, &cd, IMAGE_CONFIG_MAX, &clen, err);
    if (!ctext)
        goto out;
    img = calloc(1, sizeof(*img));
    if (!img)
        abort();
    if (image_config_parse(ctext, clen, &img->config, err) < 0) {
        duet_err_prefix(err, "image %s", src->name);
        goto out;
    }
    const char *arch = host_arch();
    if ((img->config.os && strcmp(img->config.os, "linux") != 0) ||
        (img->config.architecture && strcmp(img->config.architecture, arch) != 0)) {
        duet_err_set(err, ENOEXEC, "image %s is for %s/%s; this host runs linux/%s", src->name,
                     img->config.os ? img->config.os : "?", img->config.architecture ? img->config.architecture : "?",
                     arch);
        goto out;
    }
    snprintf(img->id, sizeof(img->id), "%s", md->digest);
    snprintf(img->config_digest, sizeof(img->config_digest), "%s", cd.digest);
    img->n_layers = json_array_size(layers);
    img->layers = calloc(img->n_layers + 1, sizeof(*img->layers));
    if (!img->layers)
        abort();
    /* what this import brings: the layers the store lacks */
    struct progress *pr = src->prog;
    for (size_t i = 0; pr && i < img->n_layers; i++) {
        struct desc ld;
        if (desc_parse(json_array_get(layers, i), "a layer", &ld, NULL) == 0 && !layer_present(s, ld.digest)) {
            pr->p.layers_total++;
            pr->p.bytes_total += ld.size;
        }
    }
    progress_say(pr, true);
    for (size_t i = 0; i < img->n_layers; i++) {
        struct desc ld;
        char what[64];
        snprintf(what, sizeof(what), "layer %zu of the manifest", i);
        if (desc_parse(json_array_get(layers, i), what, &ld, err) < 0)
            goto out;
        if (!layer_media_type_ok(ld.media_type)) {
            duet_err_set(err, ENOTSUP, "image %s: layer %s has media type %s, which duet does not unpack (tar, with "
                         "gzip or zstd)",
                         src->name, ld.digest, ld.media_type);
            goto out;
        }
        snprintf(img->layers[i], DIGEST_STR, "%s", ld.digest);
        if (layer_present(s, ld.digest))
            continue;
        _cleanup_close_ int fd = source_open_blob(src, &ld, pr, err);
        if (fd < 0)
            goto out;   /* its errors name the image */
        if (layer_add(s, fd, &ld, &img->size, err) < 0) {
            duet_err_prefix(err, "image %s", src->name);
            goto out;
        }
        if (pr) {
            pr->p.layers_done++;
            pr->base += ld.size;
            pr->p.bytes_done = pr->base;
            progress_say(pr, true);
        }
    }
    if (blob_keep(s, cd.digest, ctext, clen, err) < 0 || blob_keep(s, md->digest, mtext, mlen, err) < 0)
        goto out;
    /* An image already in the store keeps its record; the reference is added. */
    struct image *old = NULL;
    if (image_store_get(s, md->digest, &old, NULL) == 0) {
        image_free(img);
        img = old;
    } else {
        img->created = (int64_t)time(NULL);
    }
    if (!has_ref(img, ref)) {
        img->refs = realloc(img->refs, (img->n_refs + 2) * sizeof(*img->refs));
        if (!img->refs || !(img->refs[img->n_refs++] = strdup(ref)))
            abort();
        img->refs[img->n_refs] = NULL;
    }
    if (record_save(s, img, err) < 0)
        goto out;
    refs_move(s, ref, img->id);
    *out = img;
    img = NULL;
    rc = 0;
out:
    free(ctext);
    image_free(img);
    json_decref(m);
    return rc;
}

/* A docker archive, unpacked whole into a directory of the store's, is
 * read by its manifest.json: a config file and layer files (plain or
 * compressed tars), which become an OCI manifest of the store's. */
static int import_archive(struct image_store *s, const struct image_ref *r, const char *ref, struct progress *prog,
                          struct image **out, struct duet_err *err)
{
    _cleanup_close_ int afd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (afd < 0)
        return duet_err_sys(err, "image %s", ref);
    char tmp[PATH_MAX];
    store_path(s, tmp, sizeof(tmp), "%s", "layers/.tmp-archive-XXXXXX");
    if (!mkdtemp(tmp))
        return duet_err_sys(err, "cannot create %s", tmp);
    int rc = -1, mfd = -1;
    struct source src = {.s = s, .dirfd = -1, .name = ref, .prog = prog};
    json_t *man = NULL, *om = NULL;
    char *mtext = NULL, *text = NULL;
    struct unpack_limits lim = {.max_bytes = s->o.max_bytes, .image_max = s->o.max_bytes, .max_entries = 100000};
    if (image_layer_unpack(afd, NULL, 0, tmp, &lim, NULL, err) < 0) {
        duet_err_prefix(err, "image %s: not a docker archive", ref);
        goto out;
    }
    src.dirfd = open(tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
    mfd = src.dirfd >= 0 ? open_beneath(src.dirfd, "manifest.json", O_RDONLY) : -1;
    size_t len = 0;
    text = mfd >= 0 ? duet_read_fd(mfd, INDEX_MAX, &len, "manifest.json", err) : NULL;
    if (!text) {
        duet_err_set(err, EINVAL, "image %s: no manifest.json: not a docker archive (docker save writes one)", ref);
        goto out;
    }
    man = json_loadb(text, len, 0, NULL);
    json_t *entry = json_array_get(man, 0);
    json_t *cfgname = json_object_get(entry, "Config"), *layers = json_object_get(entry, "Layers");
    if (!json_is_array(man) || json_array_size(man) != 1 || !json_is_string(cfgname) || !json_is_array(layers) ||
        json_array_size(layers) == 0 || json_array_size(layers) > IMAGE_MAX_LAYERS) {
        duet_err_set(err, EINVAL, "image %s: manifest.json must name one image with a Config and 1 to %d Layers "
                     "(save one image per archive)",
                     ref, IMAGE_MAX_LAYERS);
        goto out;
    }
    size_t n = json_array_size(layers) + 1;
    src.arch_digest = calloc(n, sizeof(*src.arch_digest));
    src.arch_path = calloc(n, sizeof(*src.arch_path));
    if (!src.arch_digest || !src.arch_path)
        abort();
    om = json_pack("{s:i, s:s}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST);
    json_t *olayers = json_array();
    json_object_set_new(om, "layers", olayers);
    for (size_t i = 0; i < n; i++) {
        json_t *name = i == 0 ? cfgname : json_array_get(layers, i - 1);
        if (!json_is_string(name)) {
            duet_err_set(err, EINVAL, "image %s: manifest.json names a layer that is not a file name", ref);
            goto out;
        }
        src.arch_path[i] = (char *)json_string_value(name);
        _cleanup_close_ int fd = open_beneath(src.dirfd, src.arch_path[i], O_RDONLY);
        uint64_t size = 0;
        if (fd < 0) {
            duet_err_sys(err, "image %s: %s, named in manifest.json", ref, src.arch_path[i]);
            goto out;
        }
        if (digest_of_fd(fd, src.arch_digest[i], &size, err) < 0)
            goto out;
        src.n_arch++;
        json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType",
                              i == 0 ? "application/vnd.oci.image.config.v1+json" : "application/vnd.oci.image.layer.v1.tar",
                              "digest", src.arch_digest[i], "size", (json_int_t)size);
        if (i == 0)
            json_object_set_new(om, "config", d);
        else
            json_array_append_new(olayers, d);
    }
    mtext = json_dumps(om, JSON_COMPACT);
    if (!mtext)
        abort();
    struct desc md = {.size = strlen(mtext)};
    snprintf(md.media_type, sizeof(md.media_type), MT_OCI_MANIFEST);
    digest_of(mtext, md.size, md.digest);
    rc = import_manifest(s, &src, &md, mtext, md.size, ref, out, err);
out:
    if (mfd >= 0)
        close(mfd);
    free(text);
    free(mtext);
    json_decref(om);
    json_decref(man);
    free(src.arch_digest);
    free(src.arch_path);
    if (src.dirfd >= 0)
        close(src.dirfd);
    duet_remove_tree(tmp, NULL);
    return rc;
}

/* A registry: the manifest by tag or digest (an index followed to this
 * host's platform), each checked against the digest that names it. */
static int import_registry(struct image_store *s, const struct image_ref *r, const char *ref, struct progress *prog,
                           struct image **out, struct duet_err *err)
{
    struct registry *g = registry_new(r, &s->o.registry, err);
    if (!g)
        return -1;
    struct source src = {.s = s, .reg = g, .dirfd = -1, .name = ref, .prog = prog};
    struct desc md = {0};
    size_t len = 0;
    int rc = -1;
    char *text = registry_manifest(g, r->digest[0] ? r->digest : r->tag, INDEX_MAX, &len, md.media_type,
                                   sizeof(md.media_type), err);
    if (!text)
        goto out;
    digest_of(text, len, md.digest);
    md.size = len;
    if (r->digest[0] && strcmp(md.digest, r->digest) != 0) {
        duet_err_set(err, EBADMSG, "image %s: the registry served a manifest hashing to %s, not the digest asked for",
                     ref, md.digest);
        goto out;
    }
    json_t *j = json_loadb(text, len, 0, NULL);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    bool is_index = (mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) ||
                    !strcmp(md.media_type, MT_OCI_INDEX) || !strcmp(md.media_type, MT_DOCKER_LIST) ||
                    (!json_object_get(j, "layers") && json_is_array(json_object_get(j, "manifests")));
    if (is_index) {
        struct desc pick;
        int p = index_pick_platform(json_object_get(j, "manifests"), ref, &pick, err);
        json_decref(j);
        if (p < 0)
            goto out;
        free(text);
        text = registry_manifest(g, pick.digest, INDEX_MAX, &len, md.media_type, sizeof(md.media_type), err);
        if (!text)
            goto out;
        digest_of(text, len, md.digest);
        md.size = len;
        if (strcmp(md.digest, pick.digest) != 0) {
            duet_err_set(err, EBADMSG, "image %s: the registry served a manifest hashing to %s for %s", ref, md.digest,
                         pick.digest);
            goto out;
        }
    } else {
        json_decref(j);
    }
    rc = import_manifest(s, &src, &md, text, len, ref, out, err);
out:
    free(text);
    registry_free(g);
    return rc;
}

int image_store_import(struct image_store *s, const char *ref_text, struct image **out, struct duet_err *err)
{
    return image_store_pull(s, ref_text, NULL, out, err);
}

int image_store_pull(struct image_store *s, const char *ref_text, const struct image_progress_cb *cb, struct image **out,
                     struct duet_err *err)
{
    *out = NULL;
    struct progress prog = {.cb = cb}, *pr = cb ? &prog : NULL;
    struct image_ref r;
    if (image_ref_parse(ref_text, &r, err) < 0)
        return -1;
    char ref[IMAGE_REF_MAX + PATH_MAX];
    image_ref_format(&r, ref, sizeof(ref));
    pthread_mutex_lock(&s->lock);
    int rc;
    if (r.kind == IMAGE_REF_REGISTRY) {
        rc = import_registry(s, &r, ref, pr, out, err);
    } else if (r.kind == IMAGE_REF_DOCKER_ARCHIVE) {
        rc = import_archive(s, &r, ref, pr, out, err);
    } else {
        struct source src = {.s = s, .dirfd = open(r.path, O_PATH | O_DIRECTORY | O_CLOEXEC), .name = ref, .prog = pr};
        struct desc md;
        size_t mlen = 0;
        char *mtext = NULL;
        if (src.dirfd < 0)
            rc = duet_err_sys(err, "image %s: the layout directory %s", ref, r.path);
        else if (layout_pick(&src, r.tag, &md, err) < 0 || !(mtext = manifest_resolve(&src, &md, &mlen, err)))
            rc = -1;
        else
            rc = import_manifest(s, &src, &md, mtext, mlen, ref, out, err);
        free(mtext);
        if (src.dirfd >= 0)
            close(src.dirfd);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- roots ------------------------------------------------------------------- */

struct mount_job {
    const char *layers_dir, *target, *opts;
    int rc, err;
};

/* The lowerdir list names layers relative to the layers directory, so
 * that 60 of them fit the one page mount(2) takes: relative paths are
 * looked up from the mounting thread's cwd, and this thread has a cwd of
 * its own. */
static void *mount_thread(void *opaque)
{
    struct mount_job *j = opaque;
    j->rc = -1;
    if (unshare(CLONE_FS) == 0 && chdir(j->layers_dir) == 0)
        j->rc = mount("overlay", j->target, "overlay", MS_RDONLY | MS_NODEV, j->opts);
    j->err = errno;
    return NULL;
}

static bool is_mountpoint(const char *path)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s/..", path);
    struct stat a, b;
    return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

void image_store_root_path(struct image_store *s, const struct image *img, char *out, size_t len)
{
    char p[PATH_MAX];
    if (img->n_layers == 1)
        store_path(s, p, sizeof(p), "layers/%s", digest_hex(img->layers[0]));
    else
        store_path(s, p, sizeof(p), "roots/%s", digest_hex(img->id));
    snprintf(out, len, "%s", p);
}

int image_store_root(struct image_store *s, const struct image *img, char *out, size_t len, struct duet_err *err)
{
    image_store_root_path(s, img, out, len);
    if (img->n_layers == 1)
        return 0;
    char target[PATH_MAX], layers[PATH_MAX];
    snprintf(target, sizeof(target), "%s", out);
    store_path(s, layers, sizeof(layers), "%s", "layers");
    pthread_mutex_lock(&s->mount_lock);
    int rc = 0;
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        rc = duet_err_sys(err, "image %s: cannot create its root %s", img->id, target);
    if (rc == 0 && !is_mountpoint(target)) {
        char opts[4096];
        size_t o = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
        for (size_t i = img->n_layers; i-- > 0;) {
            if (!layer_present(s, img->layers[i])) {
                rc = duet_err_set(err, ENOENT, "image %s: layer %s is missing from the store; remove the image and "
                                  "import it again",
                                  img->id, img->layers[i]);
                break;
            }
            o += (size_t)snprintf(opts + o, sizeof(opts) - o, "%s%s", i + 1 < img->n_layers ? ":" : "",
                                  digest_hex(img->layers[i]));
        }
        if (rc == 0) {
            struct mount_job j = {.layers_dir = layers, .target = target, .opts = opts};
            pthread_t t;
            if (pthread_create(&t, NULL, mount_thread, &j) != 0)
                abort();
            pthread_join(t, NULL);
            if (j.rc < 0) {
                errno = j.err;
                rc = duet_err_sys(err, "image %s: cannot mount its root (an overlay of its %zu layers) on %s", img->id,
                                  img->n_layers, target);
            }
        }
    }
    pthread_mutex_unlock(&s->mount_lock);
    return rc;
}

void image_store_unmount_all(struct image_store *s)
{
    char roots[PATH_MAX];
    store_path(s, roots, sizeof(roots), "%s", "roots");
    pthread_mutex_lock(&s->mount_lock);
    DIR *d = opendir(roots);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX + 300];
        snprintf(p, sizeof(p), "%s/%s", roots, e->d_name);
        if (is_mountpoint(p))
            umount2(p, MNT_DETACH);
        rmdir(p);
    }
    if (d)
        closedir(d);
    pthread_mutex_unlock(&s->mount_lock);
}

/* ---- removal ----------------------------------------------------------------- */

int image_store_remove(struct image_store *s, const char *ref_or_id, struct duet_err *err)
{
    struct image *img = NULL;
    int g = image_store_get(s, ref_or_id, &img, err);
    if (g < 0)
        return -1;
    if (g == 1)
        return duet_err_set(err, ENOENT, "no image %s in the store (duet image ls lists them)", ref_or_id);
    pthread_mutex_lock(&s->lock);
    char p[PATH_MAX];
    store_path(s, p, sizeof(p), "roots/%s", digest_hex(img->id));
    pthread_mutex_lock(&s->mount_lock);
    if (is_mountpoint(p) && umount2(p, MNT_DETACH) < 0) {
        pthread_mutex_unlock(&s->mount_lock);
        pthread_mutex_unlock(&s->lock);
        image_free(img);
        return duet_err_sys(err, "cannot unmount the image's root %s", p);
    }
    rmdir(p);
    pthread_mutex_unlock(&s->mount_lock);
    store_path(s, p, sizeof(p), "images/%s.json", digest_hex(img->id));
    int rc = 0;
    if (unlink(p) < 0)
        rc = duet_err_sys(err, "cannot remove %s", p);
    /* the layers and blobs that no other image has */
    struct image **all = NULL;
    size_t n = 0;
    if (rc == 0 && image_store_list(s, &all, &n, NULL) == 0) {
        for (size_t i = 0; i < img->n_layers; i++) {
            bool used = false;
            for (size_t k = 0; k < n && !used; k++)
                for (size_t l = 0; l < all[k]->n_layers && !used; l++)
                    used = !strcmp(all[k]->layers[l], img->layers[i]);
            if (!used) {
                store_path(s, p, sizeof(p), "layers/%s", digest_hex(img->layers[i]));
                duet_remove_tree(p, NULL);
            }
        }
        bool cfg_used = false;
        for (size_t k = 0; k < n; k++)
            cfg_used = cfg_used || !strcmp(all[k]->config_digest, img->config_digest);
        if (!cfg_used) {
            store_path(s, p, sizeof(p), "blobs/sha256/%s", digest_hex(img->config_digest));
            unlink(p);
        }
        store_path(s, p, sizeof(p), "blobs/sha256/%s", digest_hex(img->id));
        unlink(p);
        image_list_free(all, n);
    }
    pthread_mutex_unlock(&s->lock);
    image_free(img);
    return rc;
}
