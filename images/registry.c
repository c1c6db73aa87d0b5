/*
 * registry.c - pulling from a registry (see registry.h), with libcurl.
 *
 * A request that answers 401 is retried once with what its
 * WWW-Authenticate asks: a bearer token fetched from the realm named there
 * (with the user's credentials when the auth file has them), or basic
 * credentials.  The token is kept for the session.
 */
#include "registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/urlenc.h"
#include "images/digest.h"

#define TOKEN_MAX (64u << 10)

struct registry {
    char name[IMAGE_REF_MAX + 64];   /* the reference, for messages */
    char host[256];                  /* where the API is: registry-1.docker.io for docker.io */
    char auth_key[256];              /* the auth file's key: docker.io's is its own */
    char repository[256];
    char scheme[8];                  /* "https", or "http" once TLS failed on an insecure one */
    bool may_be_plain;
    char *ca;                        /* the system's bundle and the extra CA, concatenated */
    size_t ca_len;
    char *basic;                     /* "user:pass", or NULL */
    char auth_where[512];            /* where credentials go, for messages */
    char *auth;                      /* "Authorization: ..." for the requests, or NULL */
};

void registry_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- credentials -------------------------------------------------------------- */

/* A file of at most max bytes, NUL-terminated, or NULL. */
static char *read_small(const char *path, size_t max, struct duet_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        duet_err_sys(err, "cannot read %s", path);
        return NULL;
    }
    size_t len;
    char *text = duet_read_fd(fd, max, &len, path, err);
    close(fd);
    return text;
}

/* user:pass for the registry from a docker-style auth file, or NULL. */
static char *credentials(const struct registry *g, const char *file)
{
    char home[4096];
    const char *h = getenv("HOME");
    snprintf(home, sizeof(home), "%s/.docker/config.json", h ? h : "/root");
    const char *files[] = {file, file ? NULL : "/etc/duet/auth.json", file ? NULL : home};
    for (size_t f = 0; f < 3; f++) {
        if (!files[f])
            continue;
        char *text = read_small(files[f], 1 << 20, NULL);
        json_t *root = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        json_t *auths = json_object_get(root, "auths");
        char keys[4][300];
        snprintf(keys[0], sizeof(keys[0]), "%s", g->auth_key);
        snprintf(keys[1], sizeof(keys[1]), "https://%s", g->auth_key);
        snprintf(keys[2], sizeof(keys[2]), "https://%s/v1/", g->auth_key);
        snprintf(keys[3], sizeof(keys[3]), "%s", strcmp(g->auth_key, "docker.io") == 0 ? "https://index.docker.io/v1/"
                                                                                          : g->auth_key);
        for (size_t k = 0; k < 4; k++) {
            const char *b64 = json_string_value(json_object_get(json_object_get(auths, keys[k]), "auth"));
            if (!b64 || strlen(b64) > 4096)
                continue;
            unsigned char out[3200];
            int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)strlen(b64));
            /* EVP_DecodeBlock counts the padding's zero bytes in */
            while (n > 0 && out[n - 1] == '\0')
                n--;
            if (n <= 0 || !memchr(out, ':', (size_t)n) || memchr(out, '\0', (size_t)n))
                continue;
            char *cred = strndup((const char *)out, (size_t)n);
            OPENSSL_cleanse(out, sizeof(out));
            json_decref(root);
            return cred;
        }
        json_decref(root);
    }
    return NULL;
}

/* ---- requests ----------------------------------------------------------------- */

struct answer {
    /* the body: into mem (bounded by max), or to fd, hashed */
    char *mem;
    size_t len, max;
    int fd;
    struct digest_ctx *hash;
    uint64_t limit;                  /* of a blob: its size */
    bool too_big, write_failed;
    void (*on_bytes)(void *opaque, uint64_t bytes);
    void *bytes_opaque;
    const char *what;                /* what is fetched, for a transfer's errors ("blob D"), or NULL */
    /* headers of the last response (after redirects) */
    char www_auth[1024];
    char content_type[128];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct answer *a = opaque;
    size_t n = size * nmemb;
    if (a->fd >= 0) {
        if (a->limit && a->hash->bytes + n > a->limit) {
            a->too_big = true;
            return 0;
        }
        digest_update(a->hash, data, n);
        for (size_t off = 0; off < n;) {
            ssize_t w = write(a->fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                a->write_failed = true;
                return 0;
            }
            off += (size_t)w;
        }
        if (a->on_bytes)
            a->on_bytes(a->bytes_opaque, a->hash->bytes);
        return n;
    }
    if (a->len + n > a->max) {
        a->too_big = true;
        return 0;
    }
    if (!a->mem && !(a->mem = malloc(a->max + 1)))
        abort();
    memcpy(a->mem + a->len, data, n);
    a->len += n;
    a->mem[a->len] = '\0';
    return n;
}

static void copy_header(char *dst, size_t len, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    while (n && isspace((unsigned char)*v))
        v++, n--;
    if (n >= len)
        n = len - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct answer *a = opaque;
    size_t n = size * nmemb;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        /* a new response (after a redirect): its headers only */
        a->www_auth[0] = a->content_type[0] = '\0';
    } else if (n > 17 && !strncasecmp(data, "WWW-Authenticate:", 17)) {
        copy_header(a->www_auth, sizeof(a->www_auth), data + 17, n - 17);
    } else if (n > 13 && !strncasecmp(data, "Content-Type:", 13)) {
        copy_header(a->content_type, sizeof(a->content_type), data + 13, n - 13);
    }
    return n;
}

#define REGISTRY_STALL_S 30

/* One GET; the HTTP status, or -1 with err (the registry not reached). */
static long get(struct registry *g, const char *url, const char *accept, const char *auth, struct answer *a,
                struct duet_err *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        abort();
    struct curl_slist *h = NULL;
    if (accept)
        h = curl_slist_append(h, accept);
    if (auth)
        h = curl_slist_append(h, auth);
    char ua[] = "User-Agent: duet";
    h = curl_slist_append(h, ua);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    /* a redirect keeps the scheme's promise: https stays https */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, strcmp(g->scheme, "http") == 0 ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    /* no byte for that long ends the transfer: a stalled registry must not
     * hold an import (and the workloads waiting for it) forever */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)REGISTRY_STALL_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (g->ca) {
        struct curl_blob blob = {.data = g->ca, .len = g->ca_len, .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && (a->too_big || a->write_failed)))
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_WRITE_ERROR && a->too_big)
        status = -2;
    else if (rc == CURLE_WRITE_ERROR && a->write_failed)
        status = -3;
    else if (rc == CURLE_OPERATION_TIMEDOUT && !strncmp(cerr, "Operation too slow", 18))
        duet_err_set(err, ETIMEDOUT, "image %s: %s%s%s sent nothing for %d s: the registry stalled; try again later",
                     g->name, a->what ? a->what : "", a->what ? ": " : "", g->host, REGISTRY_STALL_S);
    else if (rc != CURLE_OK) {
        duet_err_set(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EHOSTUNREACH, "image %s: %s%s%s: %s", g->name,
                     a->what ? a->what : "", a->what ? ": " : "", g->host, cerr[0] ? cerr : curl_easy_strerror(rc));
        err->code = rc == CURLE_SSL_CONNECT_ERROR ? EPROTO : err->code;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* One value of a WWW-Authenticate challenge: key="value". */
static bool challenge_param(const char *ch, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strcasestr(p, key));) {
        bool start = p == ch || p[-1] == ' ' || p[-1] == ',';
        p += kl;
        if (!start || p[0] != '=' || p[1] != '"')
            continue;
        const char *v = p + 2, *e = strchr(v, '"');
        if (!e || (size_t)(e - v) >= len)
            return false;
        memcpy(out, v, (size_t)(e - v));
        out[e - v] = '\0';
        return true;
    }
    return false;
}

static void set_auth(struct registry *g, const char *fmt, const char *value)
{
    if (g->auth) {
        OPENSSL_cleanse(g->auth, strlen(g->auth));
        free(g->auth);
    }
    if (asprintf(&g->auth, fmt, value) < 0)
        abort();
}

/* Answers the challenge of a 401: a token from the realm, or basic
 * credentials.  -1 with err when it cannot be answered. */
static int authenticate(struct registry *g, const char *challenge, struct duet_err *err)
{
    if (!strncasecmp(challenge, "Basic", 5)) {
        if (!g->basic)
            return duet_err_set(err, EACCES, "image %s: %s asks for a user and password (HTTP 401): put them in "
                                "%s (docker login's format)",
                                g->name, g->host, g->auth_where);
        unsigned char b64[4200];
        EVP_EncodeBlock(b64, (const unsigned char *)g->basic, (int)strlen(g->basic));
        set_auth(g, "Authorization: Basic %s", (const char *)b64);
        OPENSSL_cleanse(b64, sizeof(b64));
        return 0;
    }
    char realm[512], service[256] = "", scope[512] = "";
    if (strncasecmp(challenge, "Bearer", 6) != 0 || !challenge_param(challenge, "realm", realm, sizeof(realm)))
        return duet_err_set(err, EACCES, "image %s: %s asks for an authentication duet does not speak (%.60s)", g->name,
                            g->host, challenge);
    challenge_param(challenge, "service", service, sizeof(service));
    if (!challenge_param(challenge, "scope", scope, sizeof(scope)))
        snprintf(scope, sizeof(scope), "repository:%s:pull", g->repository);
    /* credentials go to the realm over https only (or to a plain registry's own) */
    if (strncmp(realm, "https://", 8) != 0 && !(g->may_be_plain && !strncmp(realm, "http://", 7)))
        return duet_err_set(err, EACCES, "image %s: %s sends for a token to %s, which is not https", g->name, g->host,
                            realm);
    char es[600], esc[1600], url[3000];
    duet_url_escape(service, NULL, es, sizeof(es));
    duet_url_escape(scope, NULL, esc, sizeof(esc));
    snprintf(url, sizeof(url), "%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', es, esc);
    struct answer a = {.fd = -1, .max = TOKEN_MAX};
    char *basic = NULL;
    if (g->basic) {
        unsigned char b64[4200];
        EVP_EncodeBlock(b64, (const unsigned char *)g->basic, (int)strlen(g->basic));
        if (asprintf(&basic, "Authorization: Basic %s", (const char *)b64) < 0)
            abort();
        OPENSSL_cleanse(b64, sizeof(b64));
    }
    long st = get(g, url, NULL, basic, &a, err);
    if (basic) {
        OPENSSL_cleanse(basic, strlen(basic));
        free(basic);
    }
    int rc = -1;
    if (st < 0 && st != -1)
        duet_err_set(err, EPROTO, "image %s: the token from %s is larger than %u bytes", g->name, realm, TOKEN_MAX);
    else if (st == 401 || st == 403)
        duet_err_set(err, EACCES, "image %s: %s refused the credentials%s (HTTP %ld): check %s", g->name, realm,
                     g->basic ? " given" : " (none were given)", st, g->auth_where);
    else if (st != 200 && st != -1)
        duet_err_set(err, EIO, "image %s: %s answered HTTP %ld for a token", g->name, realm, st);
    else if (st == 200) {
        json_t *j = json_loadb(a.mem ? a.mem : "", a.len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || strlen(tok) > 16384 || strpbrk(tok, "\r\n"))
            duet_err_set(err, EPROTO, "image %s: %s gave no usable token", g->name, realm);
        else {
            set_auth(g, "Authorization: Bearer %s", tok);
            rc = 0;
        }
        json_decref(j);
    }
    if (a.mem) {
        OPENSSL_cleanse(a.mem, a.len);
        free(a.mem);
    }
    return rc;
}

/* GET path under /v2/REPO/, authenticating once when asked; falls back to
 * plain HTTP where that is allowed and TLS is not spoken.  The status, or
 * -1 with err. */
static long api_get(struct registry *g, const char *path, const char *accept, struct answer *a,
                    void (*reset)(struct answer *), struct duet_err *err)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        char url[1200];
        snprintf(url, sizeof(url), "%s://%s/v2/%s/%s", g->scheme, g->host, g->repository, path);
        long st = get(g, url, accept, g->auth, a, err);
        if (st == -1 && err->code == EPROTO && g->may_be_plain && strcmp(g->scheme, "https") == 0) {
            snprintf(g->scheme, sizeof(g->scheme), "http");
            reset(a);
            continue;
        }
        if (st == 401 && attempt < 2 && a->www_auth[0]) {
            char ch[1024];
            snprintf(ch, sizeof(ch), "%s", a->www_auth);
            if (authenticate(g, ch, err) < 0)
                return -1;
            reset(a);
            continue;
        }
        return st;
    }
    return duet_err_set(err, EACCES, "image %s: %s refused access after authentication", g->name, g->host);
}

static int status_err(struct registry *g, long st, const char *what, struct duet_err *err)
{
    if (st == 401 || st == 403)
        return duet_err_set(err, EACCES, "image %s: %s refused access to %s (HTTP %ld): %s %s", g->name, g->host, what,
                            st, g->basic ? "the credentials do not allow it; check" : "put credentials for it in",
                            g->auth_where);
    if (st == 404)
        return duet_err_set(err, ENOENT, "image %s: %s has no %s (HTTP 404): check the name and tag", g->name,
                            g->host, what);
    if (st == 429)
        return duet_err_set(err, EAGAIN, "image %s: %s limits the rate of pulls (HTTP 429): try again later, or log "
                            "in to raise the limit",
                            g->name, g->host);
    return duet_err_set(err, EIO, "image %s: %s answered HTTP %ld for %s", g->name, g->host, st, what);
}

/* ---- the session ---------------------------------------------------------------- */

static bool is_local(const char *host)
{
    return !strncmp(host, "localhost", 9) && (host[9] == '\0' || host[9] == ':') ? true
           : !strncmp(host, "127.", 4)                                         ? true
           : !strncmp(host, "[::1]", 5);
}

struct registry *registry_new(const struct image_ref *r, const struct registry_opts *o, struct duet_err *err)
{
    struct registry *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    image_ref_format(r, g->name, sizeof(g->name));
    snprintf(g->auth_key, sizeof(g->auth_key), "%s", r->registry);
    snprintf(g->host, sizeof(g->host), "%s", strcmp(r->registry, "docker.io") == 0 ? "registry-1.docker.io" : r->registry);
    snprintf(g->repository, sizeof(g->repository), "%s", r->repository);
    snprintf(g->scheme, sizeof(g->scheme), "https");
    g->may_be_plain = is_local(g->host);
    for (size_t i = 0; o && i < o->n_insecure; i++)
        g->may_be_plain = g->may_be_plain || strcmp(o->insecure[i], g->host) == 0;
    if (o && o->ca_file) {
        char *extra = read_small(o->ca_file, 1 << 20, err);
        char *sys = read_small("/etc/ssl/certs/ca-certificates.crt", 4 << 20, NULL);
        if (!extra) {
            free(sys);
            free(g);
            duet_err_prefix(err, "the registry CA file");
            return NULL;
        }
        if (asprintf(&g->ca, "%s\n%s", sys ? sys : "", extra) < 0)
            abort();
        g->ca_len = strlen(g->ca);
        free(sys);
        free(extra);
    }
    g->basic = credentials(g, o ? o->auth_file : NULL);
    snprintf(g->auth_where, sizeof(g->auth_where), "%s",
             o && o->auth_file ? o->auth_file : "/etc/duet/auth.json (or ~/.docker/config.json)");
    return g;
}

void registry_free(struct registry *g)
{
    if (!g)
        return;
    if (g->basic) {
        OPENSSL_cleanse(g->basic, strlen(g->basic));
        free(g->basic);
    }
    if (g->auth) {
        OPENSSL_cleanse(g->auth, strlen(g->auth));
        free(g->auth);
    }
    free(g->ca);
    free(g);
}

static void reset_mem(struct answer *a)
{
    free(a->mem);
    a->mem = NULL;
    a->len = 0;
    a->too_big = false;
}

char *registry_manifest(struct registry *g, const char *ref, size_t max, size_t *len, char *mt, size_t mtlen,
                        struct duet_err *err)
{
    struct answer a = {.fd = -1, .max = max};
    char path[300];
    snprintf(path, sizeof(path), "manifests/%s", ref);
    static const char accept[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                 "application/vnd.oci.image.manifest.v1+json, "
                                 "application/vnd.docker.distribution.manifest.list.v2+json, "
                                 "application/vnd.docker.distribution.manifest.v2+json";
    long st = api_get(g, path, accept, &a, reset_mem, err);
    if (st == 200 && a.mem) {
        *len = a.len;
        snprintf(mt, mtlen, "%.*s", (int)strcspn(a.content_type, ";"), a.content_type);
        return a.mem;
    }
    free(a.mem);
    if (st == -2)
        duet_err_set(err, E2BIG, "image %s: the manifest %s is larger than %zu bytes", g->name, ref, max);
    else if (st >= 0)
        status_err(g, st, st == 404 ? "such image or tag" : "the manifest", err);
    return NULL;
}

static void reset_fd(struct answer *a)
{
    if (ftruncate(a->fd, 0) < 0 || lseek(a->fd, 0, SEEK_SET) < 0)
        a->write_failed = true;
    digest_abort(a->hash);
    digest_init(a->hash);
    a->too_big = false;
}

int registry_blob(struct registry *g, const char *digest, uint64_t size, int fd,
                  void (*on_bytes)(void *opaque, uint64_t bytes), void *opaque, struct duet_err *err)
{
    struct digest_ctx h;
    digest_init(&h);
    char what[DIGEST_STR + 8];
    snprintf(what, sizeof(what), "blob %s", digest);
    struct answer a = {.fd = fd, .hash = &h, .limit = size, .on_bytes = on_bytes, .bytes_opaque = opaque, .what = what};
    char path[100];
    snprintf(path, sizeof(path), "blobs/%s", digest);
    long st = api_get(g, path, NULL, &a, reset_fd, err);
    if (st != 200) {
        digest_abort(&h);
        if (st == -2)
            return duet_err_set(err, EBADMSG, "image %s: blob %s is larger than its manifest says (%llu bytes)",
                                g->name, digest, (unsigned long long)size);
        if (st == -3)
            return duet_err_sys(err, "image %s: cannot store blob %s", g->name, digest);
        return st == -1 ? -1 : status_err(g, st, "that blob", err);   /* -1: get() named the blob */
    }
    uint64_t got = h.bytes;
    char d[DIGEST_STR];
    digest_final(&h, d);
    if ((size && got != size) || strcmp(d, digest) != 0)
        return duet_err_set(err, EBADMSG, "image %s: blob %s came as %llu bytes hashing to %s: not what its manifest "
                            "says (%llu bytes); the download was cut short or the registry serves something else",
                            g->name, digest, (unsigned long long)got, d, (unsigned long long)size);
    return 0;
}
