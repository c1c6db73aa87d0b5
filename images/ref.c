/*
 * ref.c - image references (see ref.h).  The registry grammar is the
 * distribution project's: lowercase path components separated by one
 * '.', '_', "__" or runs of '-'; tags of at most 128 word characters,
 * '.' and '-', not starting with either.
 */
#include "ref.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool tag_valid(const char *t, size_t n)
{
    if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
            return false;
    return true;
}

/* One path component of a repository. */
static bool component_valid(const char *c, size_t n)
{
    if (n == 0 || !is_lower_alnum(c[0]) || !is_lower_alnum(c[n - 1]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (is_lower_alnum(c[i]))
            continue;
        /* separators: '.', '_', "__", or '-'+ ; never two different ones in a row */
        if (c[i] == '.' || c[i] == '_') {
            size_t run = 1;
            while (i + run < n && c[i + run] == c[i])
                run++;
            if (run > (c[i] == '_' ? 2u : 1u) || !is_lower_alnum(c[i + run]))
                return false;
            i += run - 1;
        } else if (c[i] == '-') {
            size_t run = 1;
            while (i + run < n && c[i + run] == '-')
                run++;
            if (!is_lower_alnum(c[i + run]))
                return false;
            i += run - 1;
        } else {
            return false;
        }
    }
    return true;
}

/* host, host:port, [v6]:port: what may come before the first '/'. */
static bool domain_valid(const char *d, size_t n)
{
    if (n == 0 || n >= 256)
        return false;
    const char *colon = memchr(d, ':', n);
    size_t host = colon ? (size_t)(colon - d) : n;
    if (host == 0)
        return false;
    for (size_t i = 0; i < host; i++)
        if (!(isalnum((unsigned char)d[i]) || d[i] == '.' || d[i] == '-'))
            return false;
    if (d[0] == '-' || d[0] == '.' || d[host - 1] == '-' || d[host - 1] == '.')
        return false;
    if (colon) {
        size_t plen = n - host - 1;
        if (plen == 0 || plen > 5)
            return false;
        unsigned port = 0;
        for (size_t i = host + 1; i < n; i++) {
            if (!isdigit((unsigned char)d[i]))
                return false;
            port = port * 10 + (unsigned)(d[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
    }
    return true;
}

static int parse_registry(const char *s, struct image_ref *r, struct duet_err *err)
{
    static const char form[] = "expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. docker.io/library/redis:7, "
                               "or oci-layout:DIR[:TAG] or docker-archive:FILE";
    const char *at = strchr(s, '@');
    size_t name_len = at ? (size_t)(at - s) : strlen(s);
    if (at) {
        if (!digest_valid(at + 1))
            return duet_err_set(err, EINVAL, "image \"%s\": the digest after '@' is not sha256: and 64 lowercase hex digits",
                                s);
        snprintf(r->digest, sizeof(r->digest), "%s", at + 1);
    }
    /* a tag: after the last ':' that follows the last '/' */
    const char *slash = memrchr(s, '/', name_len);
    const char *colon = memrchr(slash ? slash : s, ':', name_len - (size_t)((slash ? slash : s) - s));
    size_t repo_end = name_len;
    if (colon) {
        size_t tlen = name_len - (size_t)(colon + 1 - s);
        if (!tag_valid(colon + 1, tlen))
            return duet_err_set(err, EINVAL, "image \"%s\": tag \"%.*s\" is not valid (letters, digits, '_', '.', '-'; at "
                                "most 128; not starting with '.' or '-')",
                                s, (int)tlen, colon + 1);
        memcpy(r->tag, colon + 1, tlen);
        r->tag[tlen] = '\0';
        repo_end = (size_t)(colon - s);
    }
    /* the first component is a registry when it looks like a host */
    const char *first_slash = memchr(s, '/', repo_end);
    const char *repo = s;
    if (first_slash) {
        size_t dlen = (size_t)(first_slash - s);
        bool host_like = memchr(s, '.', dlen) || memchr(s, ':', dlen) || (dlen == 9 && !memcmp(s, "localhost", 9));
        if (host_like) {
            if (!domain_valid(s, dlen))
                return duet_err_set(err, EINVAL, "image \"%s\": registry \"%.*s\" is not a host name with an optional port",
                                    s, (int)dlen, s);
            memcpy(r->registry, s, dlen);
            r->registry[dlen] = '\0';
            repo = first_slash + 1;
        }
    }
    if (!r->registry[0] || !strcmp(r->registry, "index.docker.io") || !strcmp(r->registry, "registry-1.docker.io"))
        snprintf(r->registry, sizeof(r->registry), "docker.io");
    size_t rlen = repo_end - (size_t)(repo - s);
    if (rlen == 0)
        return duet_err_set(err, EINVAL, "image \"%s\": no repository; %s", s, form);
    bool hub = !strcmp(r->registry, "docker.io");
    bool one = !memchr(repo, '/', rlen);
    int n = snprintf(r->repository, sizeof(r->repository), "%s%.*s", hub && one ? "library/" : "", (int)rlen, repo);
    if (n < 0 || (size_t)n >= sizeof(r->repository))
        return duet_err_set(err, ENAMETOOLONG, "image \"%s\": the repository name is longer than %zu characters", s,
                            sizeof(r->repository) - 1);
    for (const char *c = r->repository; *c;) {
        const char *e = strchrnul(c, '/');
        if (!component_valid(c, (size_t)(e - c)))
            return duet_err_set(err, EINVAL, "image \"%s\": repository component \"%.*s\" is not valid (lowercase "
                                "letters and digits, separated by '.', '_', '__' or '-'); %s",
                                s, (int)(e - c), c, form);
        c = *e ? e + 1 : e;
    }
    if (!r->tag[0] && !r->digest[0])
        snprintf(r->tag, sizeof(r->tag), "latest");
    return 0;
}

int image_ref_parse(const char *s, struct image_ref *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return duet_err_set(err, EINVAL, "an empty image reference");
    size_t len = strnlen(s, IMAGE_REF_MAX + 1);
    if (len > IMAGE_REF_MAX)
        return duet_err_set(err, ENAMETOOLONG, "image reference longer than %d characters", IMAGE_REF_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return duet_err_set(err, EINVAL, "image reference \"%.40s…\" contains a control character", s);
    if (!strncmp(s, "oci-layout:", 11)) {
        out->kind = IMAGE_REF_OCI_LAYOUT;
        const char *p = s + 11;
        /* DIR may hold ':' itself; a last part without '/' that is a valid tag is the tag */
        const char *colon = strrchr(p, ':');
        size_t dlen = strlen(p);
        if (colon && !strchr(colon, '/') && tag_valid(colon + 1, strlen(colon + 1))) {
            snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
            dlen = (size_t)(colon - p);
        }
        if (dlen == 0)
            return duet_err_set(err, EINVAL, "image \"%s\": oci-layout: needs a directory, as oci-layout:DIR[:TAG]", s);
        if (dlen >= sizeof(out->path))
            return duet_err_set(err, ENAMETOOLONG, "image \"%s\": the directory name is too long", s);
        memcpy(out->path, p, dlen);
        out->path[dlen] = '\0';
        return 0;
    }
    if (!strncmp(s, "docker-archive:", 15)) {
        out->kind = IMAGE_REF_DOCKER_ARCHIVE;
        if (!s[15])
            return duet_err_set(err, EINVAL, "image \"%s\": docker-archive: needs a file, as docker-archive:FILE", s);
        if (strlen(s + 15) >= sizeof(out->path))
            return duet_err_set(err, ENAMETOOLONG, "image \"%s\": the file name is too long", s);
        snprintf(out->path, sizeof(out->path), "%s", s + 15);
        return 0;
    }
    if (strstr(s, "://"))
        return duet_err_set(err, EINVAL, "image \"%s\": a reference has no scheme; write the registry host alone, as "
                            "registry.example:5000/team/app:1.0", s);
    out->kind = IMAGE_REF_REGISTRY;
    return parse_registry(s, out, err);
}

void image_ref_format(const struct image_ref *r, char *buf, size_t len)
{
    switch (r->kind) {
    case IMAGE_REF_OCI_LAYOUT:
        snprintf(buf, len, "oci-layout:%s%s%s", r->path, r->tag[0] ? ":" : "", r->tag);
        break;
    case IMAGE_REF_DOCKER_ARCHIVE:
        snprintf(buf, len, "docker-archive:%s", r->path);
        break;
    case IMAGE_REF_REGISTRY:
        snprintf(buf, len, "%s/%s%s%s%s%s", r->registry, r->repository, r->tag[0] ? ":" : "", r->tag,
                 r->digest[0] ? "@" : "", r->digest);
        break;
    }
}
