/*
 * secret.c - secrets' values in STATE/secrets (see secret.h).
 *
 * Every name that becomes a path here was checked first: a stored
 * secret's by wl_secret_name_valid, a seal's is 64 hex digits made here or
 * checked by the schema.  Files are opened with O_NOFOLLOW below a
 * directory fd, so nothing in the state directory is followed anywhere
 * else.  Buffers that held a value are wiped before they are freed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/cleanup.h"
#include "common/fdio.h"
#include "common/fsutil.h"
#include "secret.h"

#define KEY_BYTES 32

struct secret_store {
    char dir[4200];
    int dir_fd, named_fd, sealed_fd;
    unsigned char key[KEY_BYTES];
};

static void wipe_free(char *p, size_t len)
{
    if (p) {
        explicit_bzero(p, len);
        free(p);
    }
}

/* name written whole under dirfd, 0600, or not at all. */
static int write_whole(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                       struct duet_err *err)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), ".tmp-%d-%.64s", (int)getpid(), name);
    unlinkat(dirfd, tmp, 0);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return duet_err_sys(err, "cannot write %s/%s", dir, name);
    if (!duet_write_full(fd, data, len)) {
        duet_err_sys(err, "cannot write %s/%s", dir, name);
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        duet_err_sys(err, "cannot write %s/%s", dir, name);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        duet_err_sys(err, "cannot write %s/%s", dir, name);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    fsync(dirfd);
    return 0;
}

/* The content of name under dirfd (a regular file), or NULL: errno ENOENT
 * when there is none, anything else with err. */
static char *read_whole(int dirfd, const char *dir, const char *name, size_t *len, struct duet_err *err)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        duet_err_sys(err, "cannot read %s/%s", dir, name);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        duet_err_set(err, EINVAL, "%s/%s is not a regular file", dir, name);
        errno = EINVAL;
        return NULL;
    }
    char what[4300];
    snprintf(what, sizeof(what), "%s/%s", dir, name);
    return duet_read_fd(fd, WL_MAX_SECRET, len, what, err);
}

static int open_subdir(int dirfd, const char *dir, const char *name, struct duet_err *err)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot make %s/%s", dir, name);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return duet_err_sys(err, "cannot open %s/%s", dir, name);
    if (fchmod(fd, 0700) < 0) {
        duet_err_sys(err, "cannot make %s/%s private", dir, name);
        close(fd);
        return -1;
    }
    return fd;
}

struct secret_store *secret_store_new(const char *state_dir, struct duet_err *err)
{
    struct secret_store *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->dir_fd = s->named_fd = s->sealed_fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s/secrets", state_dir);
    _cleanup_close_ int state = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (state < 0) {
        duet_err_sys(err, "cannot open %s", state_dir);
        goto fail;
    }
    if ((s->dir_fd = open_subdir(state, state_dir, "secrets", err)) < 0 ||
        (s->named_fd = open_subdir(s->dir_fd, s->dir, "named", err)) < 0 ||
        (s->sealed_fd = open_subdir(s->dir_fd, s->dir, "sealed", err)) < 0)
        goto fail;
    size_t len = 0;
    struct duet_err rerr = {0};
    char *key = read_whole(s->dir_fd, s->dir, "key", &len, &rerr);
    if (key && len == KEY_BYTES) {
        memcpy(s->key, key, KEY_BYTES);
        wipe_free(key, len);
        return s;
    }
    wipe_free(key, len);
    if (key || errno != ENOENT) {
        duet_err_set(err, EINVAL,
                     "%s/key is not the 32-byte key duetd made (%s); the sealed secrets cannot be checked without "
                     "it: restore it from a backup, or remove %s to start with no secrets",
                     s->dir, key ? "wrong size" : rerr.msg, s->dir);
        goto fail;
    }
    if (getrandom(s->key, KEY_BYTES, 0) != KEY_BYTES) {
        duet_err_sys(err, "cannot make a key for %s", s->dir);
        goto fail;
    }
    if (write_whole(s->dir_fd, s->dir, "key", s->key, KEY_BYTES, err) < 0)
        goto fail;
    return s;
fail:
    secret_store_free(s);
    return NULL;
}

void secret_store_free(struct secret_store *s)
{
    if (!s)
        return;
    explicit_bzero(s->key, sizeof(s->key));
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->named_fd >= 0)
        close(s->named_fd);
    if (s->sealed_fd >= 0)
        close(s->sealed_fd);
    free(s);
}

static void version_of(const struct secret_store *s, const void *value, size_t len, char out[WL_SECRET_VERSION_HEX + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), s->key, KEY_BYTES, value, len, mac, &n) || n != 32)
        abort();   /* SHA-256 is always there */
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* sealed/VERSION exists, written now if need be. */
static int seal_value(struct secret_store *s, const char *version, const void *value, size_t len,
                      struct duet_err *err)
{
    if (faccessat(s->sealed_fd, version, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/sealed", s->dir);
    return write_whole(s->sealed_fd, dir, version, value, len, err);
}

static void seal_one(struct secret_store *s, struct manifest_set *set, const struct workload_spec *w,
                     struct wl_secret *x, bool write)
{
    const struct src_pos *p = &x->pos;
    const char *label = x->env ? x->env : x->name;
    if (x->value) {
        char v[WL_SECRET_VERSION_HEX + 1];
        version_of(s, x->value, x->len, v);
        struct duet_err err = {0};
        if (write && seal_value(s, v, x->value, x->len, &err) < 0) {
            diag_add(&set->diags, p->file, p->line, p->col, "%s: secret %s cannot be kept: %s", w->name, label,
                     err.msg);
            return;
        }
        x->version = arena_strdup(&set->arena, v);
        return;
    }
    if (x->file) {
        /* From the store: the seal it was applied with must still be there. */
        if (!x->version || faccessat(s->sealed_fd, x->version, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
            diag_add(&set->diags, p->file, p->line, p->col,
                     "%s: the value of secret %s (from %s) is no longer in %s/sealed; apply its manifest again",
                     w->name, label, x->file, s->dir);
        return;
    }
    size_t len = 0;
    struct duet_err err = {0};
    char *val = read_whole(s->named_fd, s->dir, x->name, &len, &err);
    if (!val) {
        if (errno == ENOENT)
            diag_add(&set->diags, p->file, p->line, p->col,
                     "%s: secret %s is not set; set it first: duet secret set %s", w->name, x->name, x->name);
        else
            diag_add(&set->diags, p->file, p->line, p->col, "%s: secret %s cannot be read: %s", w->name, x->name,
                     err.msg);
        return;
    }
    if (x->env && memchr(val, '\0', len)) {
        diag_add(&set->diags, p->file, p->line, p->col,
                 "%s: secret %s holds a NUL byte, which no environment variable (%s) can; give it as a file "
                 "(spec.secrets)",
                 w->name, x->name, x->env);
    } else {
        char v[WL_SECRET_VERSION_HEX + 1];
        version_of(s, val, len, v);
        if (write && seal_value(s, v, val, len, &err) < 0)
            diag_add(&set->diags, p->file, p->line, p->col, "%s: secret %s cannot be kept: %s", w->name, x->name,
                     err.msg);
        else
            x->version = arena_strdup(&set->arena, v);
    }
    wipe_free(val, len);
}

void secret_store_seal(struct secret_store *s, struct manifest_set *set, const struct strmap *only, bool write)
{
    for (size_t k = 0; k < set->n_workloads; k++) {
        struct workload_spec *w = set->workloads[k];
        if (only && !strmap_get(only, w->name))
            continue;
        for (size_t i = 0; i < w->n_secrets; i++)
            seal_one(s, set, w, &w->secrets[i], write);
    }
}

int secret_store_fill(struct secret_store *s, struct arena *a, struct workload_spec *r, struct duet_err *err)
{
    if (!r->n_secrets)
        return 0;
    struct kv *env = arena_alloc(a, (r->n_env + r->n_secrets) * sizeof(*env));
    struct wl_secret *sec = arena_alloc(a, r->n_secrets * sizeof(*sec));
    size_t n_env = r->n_env;
    if (n_env)
        memcpy(env, r->env, n_env * sizeof(*env));
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/sealed", s->dir);
    for (size_t i = 0; i < r->n_secrets; i++) {
        const struct wl_secret *x = &r->secrets[i];
        const char *label = x->env ? x->env : x->name;
        sec[i] = *x;
        if (!x->version || !wl_secret_version_valid(x->version, strlen(x->version)))
            return duet_err_set(err, EINVAL, "workload %s: secret %s was never sealed; apply its manifest again",
                                r->name, label);
        size_t len = 0;
        char *val = read_whole(s->sealed_fd, dir, x->version, &len, err);
        if (!val)
            return duet_err_set(err, ENOENT,
                                "workload %s: the value of secret %s is gone from %s; apply its manifest again%s%s",
                                r->name, label, dir, x->file ? "" : " after: duet secret set ",
                                x->file ? "" : x->name);
        char *copy = arena_alloc(a, len + 1);
        memcpy(copy, val, len);
        copy[len] = '\0';
        wipe_free(val, len);
        sec[i].value = copy;
        sec[i].len = len;
        /* A value made with echo or an editor ends in a newline that no
         * password has. */
        if (x->env) {
            if (len && copy[len - 1] == '\n')
                copy[len - 1] = '\0';
            env[n_env++] = (struct kv){.key = x->env, .value = copy};
        }
    }
    r->env = env;
    r->n_env = n_env;
    r->secrets = sec;
    return 0;
}

int secret_store_set(struct secret_store *s, const char *name, const void *value, size_t len, bool *changed,
                     struct duet_err *err)
{
    if (!wl_secret_name_valid(name, strlen(name)))
        return duet_err_set(err, EINVAL,
                            "\"%.80s\" is not a secret's name: use 1 to 63 letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit",
                            name);
    if (len > WL_MAX_SECRET)
        return duet_err_set(err, E2BIG, "secret %s: %zu bytes; a secret is at most 1 MiB", name, len);
    size_t old_len = 0;
    struct duet_err rerr = {0};
    char *old = read_whole(s->named_fd, s->dir, name, &old_len, &rerr);
    *changed = !old || old_len != len || memcmp(old, value, len) != 0;
    wipe_free(old, old_len);
    if (!*changed)
        return 0;
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/named", s->dir);
    return write_whole(s->named_fd, dir, name, value, len, err);
}

int secret_store_remove(struct secret_store *s, const char *name, struct duet_err *err)
{
    if (!wl_secret_name_valid(name, strlen(name)) || unlinkat(s->named_fd, name, 0) < 0) {
        if (errno == ENOENT || !wl_secret_name_valid(name, strlen(name)))
            return duet_err_set(err, ENOENT, "no secret named \"%.80s\"; duet secret ls lists them", name);
        return duet_err_sys(err, "cannot remove %s/named/%s", s->dir, name);
    }
    fsync(s->named_fd);
    return 0;
}

bool secret_store_has(struct secret_store *s, const char *name)
{
    return wl_secret_name_valid(name, strlen(name)) && faccessat(s->named_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int info_cmp(const void *a, const void *b)
{
    return strcmp(((const struct secret_info *)a)->name, ((const struct secret_info *)b)->name);
}

int secret_store_list(struct secret_store *s, struct secret_info **out, size_t *n, struct duet_err *err)
{
    *out = NULL;
    *n = 0;
    int fd = openat(s->named_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return duet_err_sys(err, "cannot list %s/named", s->dir);
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        struct stat st;
        if (!wl_secret_name_valid(de->d_name, strlen(de->d_name)) ||
            fstatat(s->named_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            struct secret_info *g = realloc(*out, cap * sizeof(**out));
            if (!g)
                abort();
            *out = g;
        }
        struct secret_info *i = &(*out)[(*n)++];
        snprintf(i->name, sizeof(i->name), "%.63s", de->d_name);
        i->size = (uint64_t)st.st_size;
        i->updated_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    }
    closedir(dir);
    if (*n)
        qsort(*out, *n, sizeof(**out), info_cmp);
    return 0;
}

void secret_store_gc(struct secret_store *s, const struct strmap *keep)
{
    int fd = openat(s->sealed_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)))
        if ((wl_secret_version_valid(de->d_name, strlen(de->d_name)) && !strmap_get(keep, de->d_name)) ||
            strncmp(de->d_name, ".tmp-", 5) == 0)
            unlinkat(s->sealed_fd, de->d_name, 0);
    closedir(dir);
}
