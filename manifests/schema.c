/*
 * schema.c - YAML trees to typed specs, one document at a time.
 *
 * Each getter checks one value against its rule and, on failure, adds a
 * diagnostic at that value's position and returns false; the caller moves
 * on to the next field, so one pass reports every error in a document.
 * Messages start with the field's path (spec.resources.memory) and end with
 * what would be accepted.
 *
 * Every node visit is charged to a budget: an alias can make a small file
 * describe an exponentially large value, and the budget keeps the walk (and
 * the number of errors it could produce) linear in something we chose.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/listenaddr.h"
#include "common/ifname.h"
#include "common/units.h"
#include "common/utf8.h"
#include "images/ref.h"
#include "network/ipam.h"
#include "hostpath.h"
#include "manifest.h"
#include "schema.h"

#define CONV_BUDGET 200000     /* node visits per document; a real one needs < 1000 */

struct conv {
    struct manifest_part *part;
    struct arena *a;
    const char *file;
    const char *dir;           /* absolute directory of the file, for relative paths */
    bool stored;               /* duetd's own specjson text (schema.h) */
    long budget;
};

static void cerr(struct conv *c, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cerr(struct conv *c, const struct ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(&c->part->diags, c->file, n ? n->line : 0, n ? n->col : 0, fmt, ap);
    va_end(ap);
}

/* Charges one visit; false (after one error) once the budget is spent. */
static bool visit(struct conv *c, const struct ynode *n)
{
    if (c->budget > 0) {
        c->budget--;
        return true;
    }
    if (c->budget == 0) {
        cerr(c, n, "this document expands to more than %d values through aliases; write it out plainly",
             CONV_BUDGET);
        c->budget = -1;
    }
    return false;
}

static const char *kind_name(const struct ynode *n)
{
    if (ynode_is_null(n))
        return "nothing (null)";
    switch (n->kind) {
    case YNODE_MAP: return "a mapping";
    case YNODE_SEQ: return "a list";
    default: return "a single value";
    }
}

static const char *q(const struct ynode *n, char *buf, size_t len)
{
    return diag_quote(n->str, n->n, buf, len);
}

static bool key_is(const struct ynode *k, const char *key)
{
    size_t len = strlen(key);
    return k->n == len && memcmp(k->str, key, len) == 0;
}

/* Value for key in a mapping, or NULL; *keyp gets the key node. */
static const struct ynode *mget(const struct ynode *map, const char *key, const struct ynode **keyp)
{
    for (size_t i = 0; i < map->n; i++)
        if (key_is(map->items[2 * i], key)) {
            if (keyp)
                *keyp = map->items[2 * i];
            return map->items[2 * i + 1];
        }
    return NULL;
}

/* Optimal string alignment distance, case-insensitive: a swap of two
 * neighbouring letters ("hots" for "host") counts as one edit. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 40 || lb > 40)
        return SIZE_MAX;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The closest of `names` to s when it is a plausible typo, else NULL. */
const char *schema_suggest(const char *s, size_t len, const char *const *names)
{
    const char *const *start = names;
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (; *names; names++) {
        size_t d = edit_distance(s, len, *names);
        if (d < bestd) {
            bestd = d;
            best = *names;
        }
    }
    size_t limit = len <= 4 ? 1 : 2;
    if (bestd <= limit)
        return best;
    /* A cut-short key ("root" for "rootfs") is a typo too. */
    for (names = start; *names && len >= 3; names++)
        if (strlen(*names) > len && strncasecmp(*names, s, len) == 0)
            return *names;
    return NULL;
}

/* "a, b, c" into buf: the allowed words, for an error message. */
static const char *join_names(const char *const *names, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const char *const *p = names; *p && o < len; p++) {
        int n = snprintf(buf + o, len - o, "%s%s", p == names ? "" : ", ", *p);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return buf;
}

static void check_keys(struct conv *c, const struct ynode *map, const char *path, const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->items[2 * i];
        bool ok = false;
        for (const char *const *p = allowed; *p && !ok; p++)
            ok = key_is(k, *p);
        if (ok)
            continue;
        char buf[160], words[256];
        const char *hint = schema_suggest(k->str, k->n, allowed);
        if (hint)
            cerr(c, k, "unknown key \"%s\" in %s (did you mean \"%s\"?)", q(k, buf, sizeof(buf)), path, hint);
        else
            cerr(c, k, "unknown key \"%s\" in %s (allowed: %s)", q(k, buf, sizeof(buf)), path,
                 join_names(allowed, words, sizeof(words)));
    }
}

static bool want_map(struct conv *c, const struct ynode *n, const char *path)
{
    if (!visit(c, n))
        return false;
    if (n && n->kind == YNODE_MAP)
        return true;
    cerr(c, n, "%s must be a mapping (key: value lines), not %s", path, kind_name(n));
    return false;
}

static bool want_seq(struct conv *c, const struct ynode *n, const char *path)
{
    if (!visit(c, n))
        return false;
    if (n && n->kind == YNODE_SEQ)
        return true;
    cerr(c, n, "%s must be a list, not %s", path, kind_name(n));
    return false;
}

static bool want_scalar(struct conv *c, const struct ynode *n, const char *path, const char *what)
{
    if (!visit(c, n))
        return false;
    if (n && n->kind == YNODE_SCALAR && !ynode_is_null(n)) {
        if (memchr(n->str, '\0', n->n)) {
            cerr(c, n, "%s contains a NUL byte", path);
            return false;
        }
        return true;
    }
    cerr(c, n, "%s must be %s, not %s", path, what, kind_name(n));
    return false;
}

/* Strings that a spec keeps are copied out of the YAML tree, whose memory
 * is recycled after each document. */
/* A usable string value: the check behind want_scalar without its message,
 * so callers can skip building a path when nothing is wrong. */
static bool scalar_ok(const struct ynode *n)
{
    return n->kind == YNODE_SCALAR && !ynode_is_null(n) && !memchr(n->str, '\0', n->n);
}

static bool get_string(struct conv *c, const struct ynode *n, const char *path, const char **out)
{
    if (!want_scalar(c, n, path, "a string"))
        return false;
    *out = arena_strndup(c->a, n->str, n->n);
    return true;
}

static bool get_bool(struct conv *c, const struct ynode *n, const char *path, bool *out)
{
    if (!want_scalar(c, n, path, "true or false"))
        return false;
    static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False", "FALSE"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(n->str, t[i]) == 0)
            return *out = true, true;
        if (strcmp(n->str, f[i]) == 0)
            return *out = false, true;
    }
    char buf[160];
    cerr(c, n, "%s must be true or false, not \"%s\"", path, q(n, buf, sizeof(buf)));
    return false;
}

static bool get_uint(struct conv *c, const struct ynode *n, const char *path, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    if (!want_scalar(c, n, path, "a whole number"))
        return false;
    const char *s = n->str;
    bool digits = *s != '\0';
    for (const char *p = s; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    char buf[160];
    if (!digits) {
        cerr(c, n, "%s must be a whole number, not \"%s\"", path, q(n, buf, sizeof(buf)));
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        cerr(c, n, "%s is %s; it must be between %llu and %llu", path, q(n, buf, sizeof(buf)),
             (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

/* A positive decimal number: digits with at most one '.', nothing else (no
 * sign, exponent, hex, inf or nan, which strtod would take). */
static bool get_positive(struct conv *c, const struct ynode *n, const char *path, double max, double *out)
{
    if (!want_scalar(c, n, path, "a number"))
        return false;
    const char *s = n->str;
    int dots = 0, digits = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.')
            dots++;
        else if (isdigit((unsigned char)*p))
            digits++;
        else
            digits = -1000;
    }
    char buf[160];
    if (digits <= 0 || dots > 1 || n->n > 32) {
        cerr(c, n, "%s must be a number such as 2 or 0.5, not \"%s\"", path, q(n, buf, sizeof(buf)));
        return false;
    }
    double v = strtod(s, NULL);
    if (!(v > 0) || v > max) {
        cerr(c, n, "%s is %s; it must be greater than 0 and at most %g", path, q(n, buf, sizeof(buf)), max);
        return false;
    }
    *out = v;
    return true;
}

static bool get_size(struct conv *c, const struct ynode *n, const char *path, uint64_t *out)
{
    if (!want_scalar(c, n, path, "a size such as 256Mi"))
        return false;
    const char *why;
    char buf[160];
    if (!units_size_parse(n->str, out, &why)) {
        cerr(c, n, "%s: \"%s\" is not a size: %s", path, q(n, buf, sizeof(buf)), why);
        return false;
    }
    return true;
}

static bool get_duration(struct conv *c, const struct ynode *n, const char *path, uint64_t *out)
{
    if (!want_scalar(c, n, path, "a duration such as 5s"))
        return false;
    const char *why;
    char buf[160];
    if (!units_duration_parse(n->str, out, &why)) {
        cerr(c, n, "%s: \"%s\" is not a duration: %s", path, q(n, buf, sizeof(buf)), why);
        return false;
    }
    if (*out == 0) {
        cerr(c, n, "%s must be longer than 0", path);
        return false;
    }
    return true;
}

static bool get_enum(struct conv *c, const struct ynode *n, const char *path, const char *const *names,
                     int *out)
{
    if (!want_scalar(c, n, path, "one of the listed words"))
        return false;
    for (int i = 0; names[i]; i++)
        if (key_is(n, names[i]))
            return *out = i, true;
    char buf[160], words[256];
    const char *hint = schema_suggest(n->str, n->n, names);
    if (hint)
        cerr(c, n, "%s: \"%s\" is not allowed (did you mean \"%s\"?)", path, q(n, buf, sizeof(buf)), hint);
    else
        cerr(c, n, "%s: \"%s\" is not allowed; use one of: %s", path, q(n, buf, sizeof(buf)),
             join_names(names, words, sizeof(words)));
    return false;
}

/* A list of strings as a NULL-terminated array in the arena. */
static bool get_string_list(struct conv *c, const struct ynode *n, const char *path, bool nonempty,
                            const char ***out, size_t *count)
{
    if (!want_seq(c, n, path))
        return false;
    if (nonempty && n->n == 0) {
        cerr(c, n, "%s must not be empty", path);
        return false;
    }
    const char **v = arena_alloc(c->a, (n->n + 1) * sizeof(*v));
    bool ok = true;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i];
        if (scalar_ok(it) && visit(c, it)) {
            v[i] = arena_strndup(c->a, it->str, it->n);
            continue;
        }
        char p[128];
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        ok = get_string(c, it, p, &v[i]) && ok;
        if (c->budget < 0)
            return false;
    }
    if (!ok)
        return false;
    *out = v;
    *count = n->n;
    return true;
}

bool manifest_name_valid(const char *s, size_t len)
{
    if (len < 1 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i > 0 && i + 1 < len))
            return false;
    }
    return true;
}

static bool get_name(struct conv *c, const struct ynode *n, const char *path, const char **out)
{
    if (!want_scalar(c, n, path, "a name"))
        return false;
    char buf[160];
    if (!manifest_name_valid(n->str, n->n)) {
        cerr(c, n,
             "%s \"%s\" is not a valid name: use 1 to 63 lower-case letters, digits and '-', starting and "
             "ending with a letter or digit (e.g. web-1)",
             path, q(n, buf, sizeof(buf)));
        return false;
    }
    *out = arena_strndup(c->a, n->str, n->n);
    return true;
}

/* Lexical normalisation of an absolute path: collapses "//", "." and "..".
 * Nothing on disk is consulted: plans are made for hosts other than this. */
char *schema_path_normalize(struct arena *a, const char *path)
{
    size_t len = strlen(path);
    char *out = arena_alloc(a, len + 2);
    size_t o = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        size_t seg = (size_t)(e - p);
        if (seg == 1 && p[0] == '.') {
            /* skip */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, p, seg);
            o += seg;
        }
        p = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static bool has_dotdot(const char *s)
{
    for (const char *p = s; (p = strstr(p, "..")); p += 2)
        if ((p == s || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return true;
    return false;
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* A host path: absolute, or relative to the manifest's directory. */
static bool get_host_path(struct conv *c, const struct ynode *n, const char *path, const char **out)
{
    if (!want_scalar(c, n, path, "a path"))
        return false;
    if (has_control(n->str, n->n)) {
        cerr(c, n, "%s contains control characters; write the path on one line", path);
        return false;
    }
    if (n->str[0] == '/')
        *out = schema_path_normalize(c->a, n->str);
    else
        *out = schema_path_normalize(c->a, arena_printf(c->a, "%s/%s", c->dir, n->str));
    return true;
}

/* A host path the workload would be given: refused when it is the host's
 * own tree (hostpath.h), unless spec.hostAccess says so. */
static void check_host_path(struct conv *c, const struct workload_spec *w, const struct ynode *n, const char *field,
                            const char *path)
{
    char resolved[4096];
    const char *hit = hostpath_protected(path, NULL, resolved, sizeof(resolved));
    if (!hit || w->host_access)
        return;
    char how[4200] = "";
    if (strcmp(resolved, path) != 0)
        snprintf(how, sizeof(how), " (it leads to %s)", resolved);
    cerr(c, n,
         "%s %s%s is or holds the host's %s: a workload given it can change the host; name a directory of its "
         "own, or set spec.hostAccess: true to give it the host knowingly",
         field, path, how, hit);
}

/* A path inside the workload: absolute, and no ".." so it cannot name a place
 * outside the root however the root is laid out. */
static bool get_guest_path(struct conv *c, const struct ynode *n, const char *path, bool allow_root,
                           const char **out)
{
    if (!want_scalar(c, n, path, "an absolute path"))
        return false;
    char buf[160];
    if (n->str[0] != '/') {
        cerr(c, n, "%s \"%s\" must be an absolute path (start with /)", path, q(n, buf, sizeof(buf)));
        return false;
    }
    if (has_control(n->str, n->n)) {
        cerr(c, n, "%s contains control characters", path);
        return false;
    }
    if (has_dotdot(n->str)) {
        cerr(c, n, "%s \"%s\" must not contain \"..\"", path, q(n, buf, sizeof(buf)));
        return false;
    }
    const char *norm = schema_path_normalize(c->a, n->str);
    if (!allow_root && strcmp(norm, "/") == 0) {
        cerr(c, n, "%s cannot be / itself; mount the volume on a directory such as /data", path);
        return false;
    }
    *out = norm;
    return true;
}

static bool env_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 255 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

static bool label_key_valid(const char *s, size_t n)
{
    if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr("._/-", s[i])))
            return false;
    return true;
}

/* A mapping of strings to strings; key_ok names the key rule. */
static bool get_string_map(struct conv *c, const struct ynode *n, const char *path,
                           bool (*key_ok)(const char *, size_t), const char *key_rule, struct kv **out,
                           size_t *count)
{
    if (!want_map(c, n, path))
        return false;
    struct kv *v = arena_alloc(c->a, (n->n ? n->n : 1) * sizeof(*v));
    bool ok = true;
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        const struct ynode *k = n->items[2 * i], *val = n->items[2 * i + 1];
        char buf[160];
        if (!key_ok(k->str, k->n)) {
            cerr(c, k, "%s: key \"%s\" is not allowed: %s", path, q(k, buf, sizeof(buf)), key_rule);
            ok = false;
            continue;
        }
        if (!visit(c, val)) {
            ok = false;
            break;
        }
        v[i].key = arena_strndup(c->a, k->str, k->n);
        if (ynode_is_null(val)) {
            v[i].value = "";   /* KEY: (empty) means the empty string */
            continue;
        }
        if (scalar_ok(val)) {
            v[i].value = arena_strndup(c->a, val->str, val->n);
            continue;
        }
        char p[400];
        snprintf(p, sizeof(p), "%s.%s", path, diag_quote(k->str, k->n, buf, sizeof(buf)));
        ok = get_string(c, val, p, &v[i].value) && ok;
    }
    if (!ok)
        return false;
    *out = v;
    *count = n->n;
    return true;
}

static bool user_valid(const char *s)
{
    /* name or uid, optionally ":group" or ":gid" */
    const char *colon = strchr(s, ':');
    size_t parts = colon ? 2 : 1;
    const char *part = s;
    for (size_t i = 0; i < parts; i++) {
        size_t len = i == 0 && colon ? (size_t)(colon - s) : strlen(part);
        if (len == 0 || len > 32)
            return false;
        bool numeric = true;
        for (size_t j = 0; j < len; j++)
            numeric = numeric && isdigit((unsigned char)part[j]);
        if (numeric) {
            if (len > 10 || strtoull(part, NULL, 10) > 4294967294ULL)
                return false;
        } else {
            if (!(islower((unsigned char)part[0]) || part[0] == '_'))
                return false;
            for (size_t j = 0; j < len; j++)
                if (!(islower((unsigned char)part[j]) || isdigit((unsigned char)part[j]) ||
                      part[j] == '_' || part[j] == '-'))
                    return false;
        }
        part = colon ? colon + 1 : part;
    }
    return true;
}

static bool device_valid(const char *s)
{
    if (strncmp(s, "/dev/", 5) == 0)
        return s[5] != '\0' && !has_dotdot(s) && !has_control(s, strlen(s));
    /* PCI address: [DDDD:]BB:DD.F in hex */
    const char *p = s;
    size_t len = strlen(s);
    if (len == 12)
        p += 5;
    else if (len != 7)
        return false;
    if (len == 12 && !(isxdigit((unsigned char)s[0]) && isxdigit((unsigned char)s[1]) &&
                       isxdigit((unsigned char)s[2]) && isxdigit((unsigned char)s[3]) && s[4] == ':'))
        return false;
    return isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1]) && p[2] == ':' &&
           isxdigit((unsigned char)p[3]) && isxdigit((unsigned char)p[4]) && p[5] == '.' && p[6] >= '0' &&
           p[6] <= '7';
}

static void pos_of(struct conv *c, const struct ynode *n, struct src_pos *pos)
{
    pos->file = c->file;
    pos->line = n ? n->line : 0;
    pos->col = n ? n->col : 0;
}

static const char *const role_names[] = {"app", "infrastructure", NULL};
static const char *const placement_names[] = {"auto", "vm", "container", NULL};
static const char *const isolation_names[] = {"standard", "strong", NULL};
static const char *const restart_names[] = {"always", "on-failure", "never", NULL};
static const char *const protocol_names[] = {"tcp", "udp", NULL};
static const char *const network_names[] = {"fleet", "none", NULL};

const char *wl_role_name(enum wl_role r) { return role_names[r]; }

const char *wl_env_get(const struct workload_spec *w, const char *key)
{
    for (size_t i = 0; i < w->n_env; i++)
        if (strcmp(w->env[i].key, key) == 0)
            return w->env[i].value;
    return NULL;
}
bool wl_disk_source(const struct workload_spec *w, char *buf, size_t len)
{
    const char *kind = w->image.oci ? "oci" : w->image.rootfs ? "rootfs" : w->image.disk ? "disk" : NULL;
    const char *what = w->image.oci ? w->image.oci : w->image.rootfs ? w->image.rootfs : w->image.disk;
    if (!kind) {
        if (len)
            buf[0] = '\0';
        return false;
    }
    char size[32];
    snprintf(buf, len, "%s %s, %s", kind, what, units_size_format(wl_disk_bytes(w), size, sizeof(size)));
    return true;
}

const struct wl_volume *wl_volume_named(const struct workload_spec *w, const char *name)
{
    for (size_t i = 0; w && name && i < w->n_volumes; i++)
        if (w->volumes[i].name && strcmp(w->volumes[i].name, name) == 0)
            return &w->volumes[i];
    return NULL;
}

const char *wl_volumes_conflict(const struct workload_spec *a, const struct workload_spec *b, char *buf, size_t len)
{
    char sa[32], sb[32];
    for (size_t i = 0; i < a->n_volumes; i++) {
        const struct wl_volume *va = &a->volumes[i];
        const struct wl_volume *vb = wl_volume_named(b, va->name);
        if (vb) {
            /* no size: whatever size the volume has */
            if (va->size && vb->size && va->size != vb->size) {
                snprintf(buf, len,
                         "volume %s is %s in workload %s and %s in workload %s: a volume has one size; give "
                         "both the same",
                         va->name, units_size_format(va->size, sa, sizeof(sa)), a->name,
                         units_size_format(vb->size, sb, sizeof(sb)), b->name);
                return buf;
            }
            if (!va->read_only && !vb->read_only) {
                snprintf(buf, len,
                         "volume %s is written by workload %s and by workload %s: a volume is written by one "
                         "workload at a time; mount it readOnly: true in the other",
                         va->name, a->name, b->name);
                return buf;
            }
        }
    }
    return NULL;
}

bool wl_disk_resets(const struct workload_spec *w, const char *kept, char *now, size_t len)
{
    bool has = wl_disk_source(w, now, len);
    return kept && !w->image.keep_disk && !(has && strcmp(now, kept) == 0);
}

const char *wl_placement_name(enum wl_placement p) { return placement_names[p]; }
const char *wl_isolation_name(enum wl_isolation i) { return isolation_names[i]; }
const char *wl_restart_name(enum wl_restart r) { return restart_names[r]; }
const char *wl_network_name(enum wl_network n) { return network_names[n]; }

/* spec.image.oci: a reference (images/ref.h); a layout's or archive's
 * path is resolved against the manifest's directory, like other paths. */
static void conv_image_oci(struct conv *c, struct workload_spec *w, const struct ynode *k, const struct ynode *v,
                           const struct ynode *img)
{
    if (!want_scalar(c, v, "spec.image.oci", "an image reference"))
        return;
    const char *text = arena_strndup(c->a, v->str, v->n);
    struct image_ref r;
    struct duet_err e = {0};
    if (strlen(text) != v->n || image_ref_parse(text, &r, &e) < 0) {
        cerr(c, v, "spec.image.oci: %s", e.msg[0] ? e.msg : "the reference holds a NUL byte");
        return;
    }
    if (r.kind != IMAGE_REF_REGISTRY && r.path[0] != '/') {
        const char *abs = schema_path_normalize(c->a, arena_printf(c->a, "%s/%s", c->dir, r.path));
        if (strlen(abs) >= sizeof(r.path)) {
            cerr(c, v, "spec.image.oci: the path is too long");
            return;
        }
        snprintf(r.path, sizeof(r.path), "%s", abs);
    }
    char canon[IMAGE_REF_MAX + PATH_MAX];
    image_ref_format(&r, canon, sizeof(canon));
    w->image.oci = arena_strdup(c->a, canon);
    if (mget(img, "rootfs", NULL) || mget(img, "disk", NULL) || mget(img, "kernel", NULL))
        cerr(c, k, "spec.image.oci is a whole image: give it alone, without rootfs, disk or kernel");
}

static void conv_image(struct conv *c, struct workload_spec *w, const struct ynode *key, const struct ynode *img)
{
    static const char *const keys[] = {"rootfs", "disk", "kernel", "initrd", "cmdline", "oci", "keepDisk", NULL};
    if (!img) {
        cerr(c, key, "spec.image is required: give rootfs (a directory), oci (an OCI image), disk (a bootable "
                     "image) or kernel");
        return;
    }
    if (!want_map(c, img, "spec.image"))
        return;
    check_keys(c, img, "spec.image", keys);
    const struct ynode *v;
    if ((v = mget(img, "rootfs", NULL)) && get_host_path(c, v, "spec.image.rootfs", &w->image.rootfs))
        check_host_path(c, w, v, "spec.image.rootfs", w->image.rootfs);
    if ((v = mget(img, "disk", NULL)))
        get_host_path(c, v, "spec.image.disk", &w->image.disk);
    if ((v = mget(img, "kernel", NULL)))
        get_host_path(c, v, "spec.image.kernel", &w->image.kernel);
    const struct ynode *k;
    if ((v = mget(img, "initrd", &k))) {
        if (get_host_path(c, v, "spec.image.initrd", &w->image.initrd) && !mget(img, "kernel", NULL))
            cerr(c, k, "spec.image.initrd needs spec.image.kernel: an initrd is only used with direct kernel boot");
    }
    if ((v = mget(img, "cmdline", &k))) {
        if (get_string(c, v, "spec.image.cmdline", &w->image.cmdline)) {
            if (!mget(img, "kernel", NULL))
                cerr(c, k, "spec.image.cmdline needs spec.image.kernel: a kernel command line is only used with direct kernel boot");
            else if (has_control(v->str, v->n))
                cerr(c, v, "spec.image.cmdline contains control characters; write it on one line");
        }
    }
    if ((v = mget(img, "oci", &k)))
        conv_image_oci(c, w, k, v, img);
    if ((v = mget(img, "keepDisk", &k)) && get_bool(c, v, "spec.image.keepDisk", &w->image.keep_disk) &&
        w->image.keep_disk && !mget(img, "rootfs", NULL) && !mget(img, "disk", NULL) && !mget(img, "oci", NULL))
        cerr(c, k, "spec.image.keepDisk keeps a VM's disk, and a VM booted from image.kernel and image.initrd "
                   "has none; remove keepDisk");
    if (!mget(img, "rootfs", NULL) && !mget(img, "disk", NULL) && !mget(img, "kernel", NULL) && !mget(img, "oci", NULL))
        cerr(c, img, "spec.image needs at least one of rootfs, oci, disk or kernel");
}

/* A userDataFile's content: a regular file, bounded, UTF-8 text. */
static const char *read_user_data_file(struct conv *c, const struct ynode *n, const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        cerr(c, n, "spec.cloudInit.userDataFile %s cannot be read: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        cerr(c, n, "spec.cloudInit.userDataFile %s is not a regular file", path);
        return NULL;
    }
    struct duet_err err = {0};
    size_t len = 0;
    _cleanup_free_ char *buf = duet_read_fd(fd, WL_MAX_USER_DATA, &len, path, &err);
    if (!buf) {
        cerr(c, n, "spec.cloudInit.userDataFile: %s%s", err.msg,
             err.code == E2BIG ? " (user data is at most 1 MiB)" : "");
        return NULL;
    }
    if (!duet_utf8_valid(buf, len)) {
        cerr(c, n, "spec.cloudInit.userDataFile %s is not UTF-8 text (or holds a NUL byte); give cloud-config or a "
                   "script as text, not compressed",
             path);
        return NULL;
    }
    return arena_strndup(c->a, buf, len);
}

/* spec.cloudInit: what a cloud disk image's cloud-init reads at first
 * boot.  Only an image that boots its own init from its disk runs
 * cloud-init; duet's own init (rootfs, oci) would never read it. */
static void conv_cloud_init(struct conv *c, struct workload_spec *w, const struct ynode *key, const struct ynode *n,
                            const struct ynode *img)
{
    static const char *const keys[] = {"userData", "userDataFile", "networkConfig", NULL};
    if (!want_map(c, n, "spec.cloudInit"))
        return;
    check_keys(c, n, "spec.cloudInit", keys);
    if (img && img->kind == YNODE_MAP && !mget(img, "disk", NULL))
        cerr(c, key, "spec.cloudInit is read by the cloud-init of a disk image at its first boot, and this workload "
                     "has no image.disk; give image.disk (e.g. a debian-12-genericcloud qcow2), or drop cloudInit");
    const struct ynode *v, *k, *fk;
    const struct ynode *file = mget(n, "userDataFile", &fk);
    if ((v = mget(n, "userData", &k))) {
        if (file)
            cerr(c, fk, "spec.cloudInit: give userData or userDataFile, not both");
        else if (want_scalar(c, v, "spec.cloudInit.userData", "a string (cloud-config or a script), e.g. userData: |"))
            w->cloud_init.user_data = arena_strndup(c->a, v->str, v->n);
        if (v->kind == YNODE_SCALAR && v->n > WL_MAX_USER_DATA)
            cerr(c, v, "spec.cloudInit.userData is %zu bytes; user data is at most 1 MiB", v->n);
    } else if (file) {
        const char *path;
        if (get_host_path(c, file, "spec.cloudInit.userDataFile", &path)) {
            check_host_path(c, w, file, "spec.cloudInit.userDataFile", path);
            w->cloud_init.user_data = read_user_data_file(c, file, path);
        }
    }
    if ((v = mget(n, "networkConfig", &k))) {
        if (want_scalar(c, v, "spec.cloudInit.networkConfig",
                        "a string (network-config version 1 or 2 as YAML), e.g. networkConfig: |"))
            w->cloud_init.network_config = arena_strndup(c->a, v->str, v->n);
        if (v->kind == YNODE_SCALAR && v->n > WL_MAX_NETWORK_CONFIG)
            cerr(c, v, "spec.cloudInit.networkConfig is %zu bytes; it is at most 64 KiB", v->n);
        if (w->network == WL_NETWORK_NONE)
            cerr(c, k, "spec.cloudInit.networkConfig configures the VM's NIC, and with network: none it has none; "
                       "remove one of them");
    }
}

static void conv_resources(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"cpus", "memory", "pids", "disk", NULL};
    if (!want_map(c, n, "spec.resources"))
        return;
    check_keys(c, n, "spec.resources", keys);
    const struct ynode *v;
    if ((v = mget(n, "cpus", NULL)))
        w->resources.cpus_set = get_positive(c, v, "spec.resources.cpus", WL_MAX_CPUS, &w->resources.cpus);
    if ((v = mget(n, "memory", NULL))) {
        uint64_t m;
        if (get_size(c, v, "spec.resources.memory", &m)) {
            if (m < WL_MIN_MEMORY) {
                char buf[160];
                cerr(c, v, "spec.resources.memory \"%s\" is too small: give at least 4Mi", q(v, buf, sizeof(buf)));
            } else {
                w->resources.memory = m;
                w->resources.memory_set = true;
            }
        }
    }
    if ((v = mget(n, "pids", NULL)))
        get_uint(c, v, "spec.resources.pids", 1, WL_MAX_PIDS, &w->resources.pids);
    if ((v = mget(n, "disk", NULL))) {
        uint64_t d;
        if (get_size(c, v, "spec.resources.disk", &d)) {
            char buf[160];
            if (d < WL_MIN_DISK)
                cerr(c, v, "spec.resources.disk \"%s\" is too small: give at least 16Mi", q(v, buf, sizeof(buf)));
            else {
                w->resources.disk = d;
                w->resources.disk_set = true;
            }
        }
    }
}

static void conv_needs(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"ownKernel", "devices", "startWithin", NULL};
    if (!want_map(c, n, "spec.needs"))
        return;
    check_keys(c, n, "spec.needs", keys);
    const struct ynode *v;
    if ((v = mget(n, "ownKernel", NULL)))
        get_bool(c, v, "spec.needs.ownKernel", &w->needs.own_kernel);
    if ((v = mget(n, "devices", NULL)) &&
        get_string_list(c, v, "spec.needs.devices", false, &w->needs.devices, &w->needs.n_devices)) {
        for (size_t i = 0; i < w->needs.n_devices; i++)
            if (!device_valid(w->needs.devices[i])) {
                char buf[160];
                cerr(c, v->items[i],
                     "spec.needs.devices[%zu] \"%s\" is not a device: give a path under /dev/ or a PCI "
                     "address such as 0000:01:00.0",
                     i, q(v->items[i], buf, sizeof(buf)));
            }
    }
    if ((v = mget(n, "startWithin", NULL)))
        get_duration(c, v, "spec.needs.startWithin", &w->needs.start_within_ms);
}

static void conv_health(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"exec",    "tcp",         "interval",      "timeout",
                                       "retries", "onUnhealthy", "startPeriod",   "startInterval", NULL};
    if (!want_map(c, n, "spec.healthcheck"))
        return;
    check_keys(c, n, "spec.healthcheck", keys);
    const struct ynode *tcp_key = NULL, *ex = mget(n, "exec", NULL), *tcp = mget(n, "tcp", &tcp_key), *v;
    if (ex && tcp) {
        cerr(c, tcp_key, "spec.healthcheck takes one of exec or tcp, not both");
    } else if (ex) {
        if (get_string_list(c, ex, "spec.healthcheck.exec", true, &w->health.exec, &w->health.n_exec))
            w->health.kind = WL_HEALTH_EXEC;
    } else if (tcp) {
        uint64_t port;
        if (get_uint(c, tcp, "spec.healthcheck.tcp", 1, 65535, &port)) {
            w->health.kind = WL_HEALTH_TCP;
            w->health.tcp = (uint16_t)port;
        }
    } else {
        cerr(c, n, "spec.healthcheck needs exec (a command) or tcp (a port)");
    }
    if ((v = mget(n, "interval", NULL)))
        get_duration(c, v, "spec.healthcheck.interval", &w->health.interval_ms);
    if ((v = mget(n, "timeout", NULL)))
        get_duration(c, v, "spec.healthcheck.timeout", &w->health.timeout_ms);
    if ((v = mget(n, "retries", NULL))) {
        uint64_t r;
        if (get_uint(c, v, "spec.healthcheck.retries", 1, 1000, &r))
            w->health.retries = (unsigned)r;
    }
    if ((v = mget(n, "startPeriod", NULL))) {
        /* 0 is a period too: none, where the backend would give one. */
        if (scalar_ok(v) && (key_is(v, "0") || key_is(v, "0s") || key_is(v, "0ms"))) {
            w->health.start_period_ms = 0;
            w->health.start_period_set = true;
        } else if (get_duration(c, v, "spec.healthcheck.startPeriod", &w->health.start_period_ms)) {
            w->health.start_period_set = true;
            if (w->health.start_period_ms > 24ull * 3600 * 1000) {
                cerr(c, v, "spec.healthcheck.startPeriod is longer than a day; a start that slow is a failure");
                w->health.start_period_set = false;
            }
        }
    }
    if ((v = mget(n, "startInterval", NULL)))
        get_duration(c, v, "spec.healthcheck.startInterval", &w->health.start_interval_ms);
    static const char *const on_unhealthy_names[] = {"none", "restart", NULL};
    int e;
    if ((v = mget(n, "onUnhealthy", NULL)) && get_enum(c, v, "spec.healthcheck.onUnhealthy", on_unhealthy_names, &e))
        w->health.restart_unhealthy = e == 1;
}

/* A URL path the probe may send on its request line as it is. */
static bool http_path_ok(const char *p)
{
    return p[0] == '/' && strlen(p) < 512 && !strpbrk(p, " \t\r\n");
}

static void conv_compare(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"http", "tcp", "exec", NULL};
    static const char *const http_keys[] = {"path", "port", "concurrency", "duration", NULL};
    if (!want_map(c, n, "spec.compare"))
        return;
    check_keys(c, n, "spec.compare", keys);
    const struct ynode *http = mget(n, "http", NULL), *tcp = mget(n, "tcp", NULL), *ex = mget(n, "exec", NULL), *v;
    if (!!http + !!tcp + !!ex != 1) {
        cerr(c, n, "spec.compare takes one probe: http, tcp or exec");
        return;
    }
    uint64_t u;
    if (tcp && get_uint(c, tcp, "spec.compare.tcp", 1, 65535, &u)) {
        w->compare.probe = WL_COMPARE_TCP;
        w->compare.port = (uint16_t)u;
    }
    if (ex && get_string_list(c, ex, "spec.compare.exec", true, &w->compare.exec, &w->compare.n_exec))
        w->compare.probe = WL_COMPARE_EXEC;
    if (!http || !want_map(c, http, "spec.compare.http"))
        return;
    check_keys(c, http, "spec.compare.http", http_keys);
    const struct ynode *path = mget(http, "path", NULL);
    if (!path) {
        cerr(c, http, "spec.compare.http needs a path (like /)");
        return;
    }
    if (!get_string(c, path, "spec.compare.http.path", &w->compare.http_path))
        return;
    if (!http_path_ok(w->compare.http_path)) {
        cerr(c, path, "spec.compare.http.path must begin with / and hold no space or line break");
        return;
    }
    w->compare.probe = WL_COMPARE_HTTP;
    if ((v = mget(http, "port", NULL)) && get_uint(c, v, "spec.compare.http.port", 1, 65535, &u))
        w->compare.port = (uint16_t)u;
    if ((v = mget(http, "concurrency", NULL)) && get_uint(c, v, "spec.compare.http.concurrency", 1, 64, &u))
        w->compare.concurrency = (unsigned)u;
    if ((v = mget(http, "duration", NULL)) && get_duration(c, v, "spec.compare.http.duration", &u)) {
        if (u < 100 || u > 600000)
            cerr(c, v, "spec.compare.http.duration is from 100ms to 10m");
        else
            w->compare.duration_ms = u;
    }
}

static void conv_ports(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"host", "port", "protocol", NULL};
    if (!want_seq(c, n, "spec.ports"))
        return;
    w->ports = arena_alloc(c->a, (n->n ? n->n : 1) * sizeof(*w->ports));
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        const struct ynode *it = n->items[i], *v;
        char p[64];
        snprintf(p, sizeof(p), "spec.ports[%zu]", i);
        if (!want_map(c, it, p))
            continue;
        check_keys(c, it, p, keys);
        struct wl_port port = {0};
        pos_of(c, it, &port.pos);
        uint64_t num;
        char pp[96];
        if ((v = mget(it, "port", NULL))) {
            snprintf(pp, sizeof(pp), "%s.port", p);
            if (get_uint(c, v, pp, 1, 65535, &num))
                port.port = (uint16_t)num;
        } else {
            cerr(c, it, "%s needs port: the port the workload listens on", p);
        }
        if ((v = mget(it, "host", NULL))) {
            snprintf(pp, sizeof(pp), "%s.host", p);
            if (get_uint(c, v, pp, 1, 65535, &num)) {
                port.host = (uint16_t)num;
                pos_of(c, v, &port.pos);
            }
        } else {
            port.host = port.port;
        }
        if ((v = mget(it, "protocol", NULL))) {
            int proto;
            snprintf(pp, sizeof(pp), "%s.protocol", p);
            if (get_enum(c, v, pp, protocol_names, &proto))
                port.protocol = (enum wl_protocol)proto;
        }
        if (port.port == 0 || port.host == 0)
            continue;
        for (size_t j = 0; j < w->n_ports; j++)
            if (w->ports[j].host == port.host && w->ports[j].protocol == port.protocol)
                cerr(c, it, "%s publishes host port %u/%s a second time", p, port.host,
                     protocol_names[port.protocol]);
        w->ports[w->n_ports++] = port;
    }
}

static void conv_volumes(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"source", "name", "size", "target", "readOnly", NULL};
    if (!want_seq(c, n, "spec.volumes"))
        return;
    w->volumes = arena_alloc(c->a, (n->n ? n->n : 1) * sizeof(*w->volumes));
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        const struct ynode *it = n->items[i], *v;
        char p[64], pp[96];
        snprintf(p, sizeof(p), "spec.volumes[%zu]", i);
        if (!want_map(c, it, p))
            continue;
        check_keys(c, it, p, keys);
        struct wl_volume vol = {0};
        bool ok = true;
        snprintf(pp, sizeof(pp), "%s.source", p);
        const struct ynode *sn = mget(it, "source", NULL), *nn = mget(it, "name", NULL), *zn = mget(it, "size", NULL);
        if (sn && nn) {
            ok = false, cerr(c, nn, "%s gives both source and name: a volume is a host directory (source) or a "
                                    "volume duet keeps (name), not both", p);
        } else if (sn) {
            ok = get_host_path(c, sn, pp, &vol.source) && ok;
            if (vol.source)
                check_host_path(c, w, sn, pp, vol.source);
        } else if (nn) {
            snprintf(pp, sizeof(pp), "%s.name", p);
            char buf[160];
            if (!want_scalar(c, nn, pp, "a volume name"))
                ok = false;
            else if (!manifest_name_valid(nn->str, nn->n))
                ok = false, cerr(c, nn,
                                 "%s \"%s\" is not a valid volume name: use 1 to 63 lower-case letters, digits and "
                                 "'-', starting and ending with a letter or digit (e.g. pgdata)",
                                 pp, q(nn, buf, sizeof(buf)));
            else
                vol.name = arena_strndup(c->a, nn->str, nn->n);
        } else {
            ok = false, cerr(c, it, "%s needs source (a host directory to mount) or name (a volume duet keeps, "
                                    "e.g. name: pgdata)", p);
        }
        if (zn) {
            snprintf(pp, sizeof(pp), "%s.size", p);
            char buf[160];
            if (!nn)
                ok = false, cerr(c, zn, "%s bounds a named volume; a host directory (source) has the room of its "
                                        "filesystem: give the volume a name instead, or drop size", pp);
            else if (!get_size(c, zn, pp, &vol.size))
                ok = false;
            else if (vol.size < WL_MIN_DISK)
                ok = false, cerr(c, zn, "%s \"%s\" is too small for a volume: give at least 16Mi", pp,
                                 q(zn, buf, sizeof(buf)));
        }
        snprintf(pp, sizeof(pp), "%s.target", p);
        const struct ynode *tn = mget(it, "target", NULL);
        if (tn)
            ok = get_guest_path(c, tn, pp, false, &vol.target) && ok;
        else
            ok = false, cerr(c, it, "%s needs target: where the workload sees it, e.g. /data", p);
        snprintf(pp, sizeof(pp), "%s.readOnly", p);
        if ((v = mget(it, "readOnly", NULL)))
            ok = get_bool(c, v, pp, &vol.read_only) && ok;
        if (!ok)
            continue;
        for (size_t j = 0; j < w->n_volumes; j++)
            if (strcmp(w->volumes[j].target, vol.target) == 0)
                cerr(c, tn, "%s.target mounts a second volume on %s", p, vol.target);
        w->volumes[w->n_volumes++] = vol;
    }
}

static void conv_deps(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    if (!want_seq(c, n, "spec.dependsOn"))
        return;
    w->depends_on = arena_alloc(c->a, (n->n ? n->n : 1) * sizeof(*w->depends_on));
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        char p[64];
        snprintf(p, sizeof(p), "spec.dependsOn[%zu]", i);
        struct wl_dep d = {0};
        if (!get_name(c, n->items[i], p, &d.name))
            continue;
        pos_of(c, n->items[i], &d.pos);
        bool dup = false;
        for (size_t j = 0; j < w->n_depends_on; j++)
            dup = dup || strcmp(w->depends_on[j].name, d.name) == 0;
        if (dup) {
            cerr(c, n->items[i], "%s names \"%s\" twice", "spec.dependsOn", d.name);
            continue;
        }
        w->depends_on[w->n_depends_on++] = d;
    }
}

/* ---- secrets (docs/secrets.md) ---------------------------------------------------- */

/* A secret file's content.  Checked here, where the user's own file is
 * read, so the refusal names it: a regular file, at most 1 MiB, not
 * readable by every user of the host (a secret anyone can read is not one,
 * and copying it into a workload would hide that).  An env value may
 * hold no NUL.  No message quotes the content. */
static bool read_secret_file(struct conv *c, const struct ynode *n, const char *field, const char *path, bool env,
                             struct wl_secret *out)
{
    struct duet_err err = {0};
    size_t len = 0;
    _cleanup_free_ char *buf = wl_secret_file_read(path, &len, &err);
    if (!buf) {
        cerr(c, n, "%s: %s", field, err.msg);
        return false;
    }
    if (env) {
        if (memchr(buf, '\0', len)) {
            cerr(c, n, "%s: the secret file %s holds a NUL byte, which no environment variable can; give it as a "
                       "file instead (spec.secrets)",
                 field, path);
            return false;
        }
    }
    char *v = arena_alloc(c->a, len + 1);
    memcpy(v, buf, len);
    v[len] = '\0';
    explicit_bzero(buf, len);
    out->value = v;
    out->len = len;
    return true;
}

/* version: only in duetd's own texts, 64 lower-case hex digits. */
static bool get_secret_version(struct conv *c, const struct ynode *map, const char *field, struct wl_secret *out)
{
    const struct ynode *k = NULL, *v = mget(map, "version", &k);
    if (!c->stored)
        return true;   /* check_keys refused it */
    if (!v) {
        cerr(c, map, "%s: a stored secret has no version", field);
        return false;
    }
    if (!want_scalar(c, v, field, "a version"))
        return false;
    if (!wl_secret_version_valid(v->str, v->n)) {
        cerr(c, v, "%s: version is not 64 hex digits", field);
        return false;
    }
    out->version = arena_strndup(c->a, v->str, v->n);
    return true;
}

static bool get_secret_name(struct conv *c, const struct ynode *n, const char *field, const char **out)
{
    if (!want_scalar(c, n, field, "a secret's name"))
        return false;
    char buf[160];
    if (!wl_secret_name_valid(n->str, n->n)) {
        cerr(c, n,
             "%s \"%s\" is not a secret's name: use 1 to 63 letters, digits, '.', '_' and '-', starting with a "
             "letter or digit (e.g. db-password)",
             field, q(n, buf, sizeof(buf)));
        return false;
    }
    *out = arena_strndup(c->a, n->str, n->n);
    return true;
}

static struct wl_secret *secret_add(struct conv *c, struct workload_spec *w, const struct ynode *at, size_t cap)
{
    if (w->n_secrets >= WL_MAX_SECRETS) {
        cerr(c, at, "more than %d secrets; give a workload at most %d (one file may hold many values)",
             WL_MAX_SECRETS, WL_MAX_SECRETS);
        return NULL;
    }
    if (!w->secrets)
        w->secrets = arena_alloc(c->a, cap * sizeof(*w->secrets));
    struct wl_secret *s = &w->secrets[w->n_secrets];
    *s = (struct wl_secret){0};
    pos_of(c, at, &s->pos);
    return s;
}

/* An env value that is a secret: {secret: NAME} or {secretFile: PATH}. */
static void conv_env_secret(struct conv *c, struct workload_spec *w, const char *key, const char *field,
                            const struct ynode *val, size_t cap)
{
    static const char *const keys[] = {"secret", "secretFile", NULL};
    static const char *const stored_keys[] = {"secret", "secretFile", "version", NULL};
    check_keys(c, val, field, c->stored ? stored_keys : keys);
    const struct ynode *nk = NULL, *fk = NULL, *name = mget(val, "secret", &nk), *file = mget(val, "secretFile", &fk);
    if (!name == !file) {
        cerr(c, val, "%s: give {secret: NAME} (a secret set with duet secret set) or {secretFile: PATH}, one of them",
             field);
        return;
    }
    struct wl_secret *s = secret_add(c, w, val, cap);
    if (!s)
        return;
    s->env = key;
    char f[420];
    if (name) {
        snprintf(f, sizeof(f), "%s.secret", field);
        if (!get_secret_name(c, name, f, &s->name))
            return;
    } else {
        snprintf(f, sizeof(f), "%s.secretFile", field);
        if (!get_host_path(c, file, f, &s->file))
            return;
        if (!c->stored && !read_secret_file(c, file, f, s->file, true, s))
            return;
    }
    if (get_secret_version(c, val, field, s))
        w->n_secrets++;
}

/* spec.env: NAME: value, or NAME: {secret: ...} / {secretFile: ...}. */
static void conv_env(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    if (!want_map(c, n, "spec.env"))
        return;
    struct kv *v = arena_alloc(c->a, (n->n ? n->n : 1) * sizeof(*v));
    size_t cap = n->n + WL_MAX_SECRETS + 1;
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        const struct ynode *k = n->items[2 * i], *val = n->items[2 * i + 1];
        char buf[160], p[400];
        if (!env_name_valid(k->str, k->n)) {
            cerr(c, k, "spec.env: key \"%s\" is not allowed: use letters, digits, '_', '.' and '-', starting with a "
                       "letter or '_'",
                 q(k, buf, sizeof(buf)));
            continue;
        }
        if (!visit(c, val))
            return;
        const char *key = arena_strndup(c->a, k->str, k->n);
        snprintf(p, sizeof(p), "spec.env.%s", diag_quote(k->str, k->n, buf, sizeof(buf)));
        if (val->kind == YNODE_MAP) {
            conv_env_secret(c, w, key, p, val, cap);
            continue;
        }
        struct kv *e = &v[w->n_env];
        e->key = key;
        if (ynode_is_null(val))
            e->value = "";   /* KEY: (empty) means the empty string */
        else if (scalar_ok(val))
            e->value = arena_strndup(c->a, val->str, val->n);
        else if (!get_string(c, val, p, &e->value))
            continue;
        w->n_env++;
    }
    w->env = v;
}

/* spec.secrets: files under /run/secrets: NAME (a stored secret) or
 * {name: NAME, file: PATH}. */
static void conv_secrets(struct conv *c, struct workload_spec *w, const struct ynode *n)
{
    static const char *const keys[] = {"name", "file", NULL};
    static const char *const stored_keys[] = {"name", "file", "version", NULL};
    if (!want_seq(c, n, "spec.secrets"))
        return;
    size_t cap = w->n_secrets + n->n + 1;
    struct wl_secret *old = w->secrets;
    if (old || n->n) {
        w->secrets = arena_alloc(c->a, cap * sizeof(*w->secrets));
        if (old)
            memcpy(w->secrets, old, w->n_secrets * sizeof(*old));
    }
    size_t first = w->n_secrets;
    for (size_t i = 0; i < n->n && c->budget >= 0; i++) {
        const struct ynode *it = n->items[i];
        char f[64];
        snprintf(f, sizeof(f), "spec.secrets[%zu]", i);
        if (!visit(c, it))
            return;
        struct wl_secret tmp = {0};
        const struct ynode *file = NULL;
        if (it->kind == YNODE_MAP) {
            check_keys(c, it, f, c->stored ? stored_keys : keys);
            const struct ynode *name = mget(it, "name", NULL);
            file = mget(it, "file", NULL);
            if (!name) {
                cerr(c, it, "%s.name is required: the file's name under " WL_SECRETS_DIR
                            " (and without file, the stored secret's)",
                     f);
                continue;
            }
            char fn[80];
            snprintf(fn, sizeof(fn), "%s.name", f);
            if (!get_secret_name(c, name, fn, &tmp.name))
                continue;
            if (file) {
                snprintf(fn, sizeof(fn), "%s.file", f);
                if (!get_host_path(c, file, fn, &tmp.file) ||
                    (!c->stored && !read_secret_file(c, file, fn, tmp.file, false, &tmp)))
                    continue;
            }
            if (!get_secret_version(c, it, f, &tmp))
                continue;
        } else if (c->stored) {
            cerr(c, it, "%s: a stored secret is a mapping", f);
            continue;
        } else if (!get_secret_name(c, it, f, &tmp.name)) {
            continue;
        }
        bool dup = false;
        for (size_t j = first; j < w->n_secrets && !dup; j++)
            dup = strcmp(w->secrets[j].name, tmp.name) == 0;
        if (dup) {
            cerr(c, it, "%s: " WL_SECRETS_DIR "/%s is given twice; name each file once", f, tmp.name);
            continue;
        }
        struct wl_secret *s = secret_add(c, w, it, cap);
        if (!s)
            return;
        struct src_pos pos = s->pos;
        *s = tmp;
        s->pos = pos;
        w->n_secrets++;
    }
}

static void conv_spec(struct conv *c, struct workload_spec *w, const struct ynode *key, const struct ynode *s)
{
    static const char *const keys[] = {"role", "placement", "isolation", "image", "command", "args", "env",
                                       "workingDir", "user", "resources", "needs", "restart", "dependsOn",
                                       "healthcheck", "ports", "volumes", "network", "hostAccess", "cloudInit",
                                       "compare", "secrets", NULL};
    if (!s) {
        cerr(c, key, "spec is required (at least spec.image)");
        return;
    }
    if (!want_map(c, s, "spec"))
        return;
    check_keys(c, s, "spec", keys);
    const struct ynode *v, *k = NULL;
    int e;
    /* First: the paths below are checked against it. */
    if ((v = mget(s, "hostAccess", NULL)))
        get_bool(c, v, "spec.hostAccess", &w->host_access);
    if ((v = mget(s, "role", NULL)) && get_enum(c, v, "spec.role", role_names, &e))
        w->role = (enum wl_role)e;
    if ((v = mget(s, "placement", NULL)) && get_enum(c, v, "spec.placement", placement_names, &e))
        w->placement = (enum wl_placement)e;
    if ((v = mget(s, "isolation", NULL)) && get_enum(c, v, "spec.isolation", isolation_names, &e))
        w->isolation = (enum wl_isolation)e;
    const struct ynode *ik = NULL, *img = mget(s, "image", &ik);
    conv_image(c, w, ik ? ik : key, img);
    bool has_root = img && img->kind == YNODE_MAP && (mget(img, "rootfs", NULL) || mget(img, "oci", NULL));
    if ((v = mget(s, "command", &k))) {
        if (get_string_list(c, v, "spec.command", true, &w->command, &w->n_command) && img &&
            img->kind == YNODE_MAP && !has_root)
            cerr(c, k, "spec.command runs a process from image.rootfs or image.oci, and this image has neither (a "
                       "disk or kernel image boots its own init)");
    } else if (img && img->kind == YNODE_MAP && mget(img, "rootfs", NULL)) {
        cerr(c, ik, "spec.command is required with image.rootfs: name the program to run, e.g. "
                    "[\"/bin/sh\", \"-c\", \"exec httpd -f\"]");
    }
    if ((v = mget(s, "args", &k)) && get_string_list(c, v, "spec.args", false, &w->args, &w->n_args) && img &&
        img->kind == YNODE_MAP && !has_root)
        cerr(c, k, "spec.args are the arguments of a process from image.rootfs or image.oci, and this image has "
                   "neither");
    if ((v = mget(s, "env", NULL)))
        conv_env(c, w, v);
    if ((v = mget(s, "secrets", NULL)))
        conv_secrets(c, w, v);
    if (w->n_secrets && img && img->kind == YNODE_MAP && !has_root)
        cerr(c, mget(s, "secrets", &k) ? k : mget(s, "env", &k) ? k : key,
             "secrets are given to a process duet starts from image.rootfs or image.oci, and this image has "
             "neither (a disk image boots its own init: give it its secrets through cloudInit, or run the "
             "service from a rootfs)");
    if ((v = mget(s, "workingDir", NULL)))
        get_guest_path(c, v, "spec.workingDir", true, &w->working_dir);
    if ((v = mget(s, "user", NULL)) && get_string(c, v, "spec.user", &w->user) && !user_valid(w->user)) {
        char buf[160];
        cerr(c, v, "spec.user \"%s\" is not a user: give NAME, UID, NAME:GROUP or UID:GID (e.g. \"1000:1000\")",
             q(v, buf, sizeof(buf)));
    }
    if ((v = mget(s, "resources", NULL)))
        conv_resources(c, w, v);
    if ((v = mget(s, "needs", NULL)))
        conv_needs(c, w, v);
    if ((v = mget(s, "restart", NULL)) && get_enum(c, v, "spec.restart", restart_names, &e))
        w->restart = (enum wl_restart)e;
    if ((v = mget(s, "dependsOn", NULL)))
        conv_deps(c, w, v);
    if ((v = mget(s, "healthcheck", NULL)))
        conv_health(c, w, v);
    if ((v = mget(s, "compare", NULL)))
        conv_compare(c, w, v);
    if ((v = mget(s, "network", NULL)) && get_enum(c, v, "spec.network", network_names, &e))
        w->network = (enum wl_network)e;
    const struct ynode *pk = NULL;
    if ((v = mget(s, "ports", &pk))) {
        conv_ports(c, w, v);
        if (w->network == WL_NETWORK_NONE && w->n_ports)
            cerr(c, pk, "spec.ports publishes ports of a workload with network: none, which has only a loopback; "
                        "remove network: none or the ports");
    }
    if ((v = mget(s, "volumes", NULL)))
        conv_volumes(c, w, v);
    /* After network: a networkConfig needs a NIC. */
    if ((v = mget(s, "cloudInit", &k)))
        conv_cloud_init(c, w, k, v, img);
}

static void conv_metadata(struct conv *c, const struct ynode *root, const struct ynode *docpos,
                          const char **name, struct src_pos *name_pos, struct kv **labels, size_t *n_labels)
{
    static const char *const keys[] = {"name", "labels", NULL};
    const struct ynode *md = mget(root, "metadata", NULL);
    if (!md) {
        cerr(c, docpos, "metadata is required: give metadata.name");
        return;
    }
    if (!want_map(c, md, "metadata"))
        return;
    check_keys(c, md, "metadata", keys);
    const struct ynode *v = mget(md, "name", NULL);
    if (!v)
        cerr(c, md, "metadata.name is required");
    else if (get_name(c, v, "metadata.name", name))
        pos_of(c, v, name_pos);
    if ((v = mget(md, "labels", NULL)) && labels)
        get_string_map(c, v, "metadata.labels", label_key_valid,
                       "use letters, digits, '.', '_', '/' and '-', starting and ending with a letter or digit",
                       labels, n_labels);
}

static void workload_defaults(struct workload_spec *w)
{
    w->resources.cpus = WL_DEFAULT_CPUS;
    w->resources.memory = WL_DEFAULT_MEMORY;
    w->resources.pids = WL_DEFAULT_PIDS;
    w->resources.disk = WL_DEFAULT_DISK;
    w->health.interval_ms = WL_DEFAULT_HEALTH_INTERVAL_MS;
    w->health.timeout_ms = WL_DEFAULT_HEALTH_TIMEOUT_MS;
    w->health.retries = WL_DEFAULT_HEALTH_RETRIES;
}

static void conv_workload(struct conv *c, const struct ynode *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    struct workload_spec *w = arena_alloc(c->a, sizeof(*w));
    workload_defaults(w);
    pos_of(c, root, &w->pos);
    check_keys(c, root, "a Workload document", keys);
    conv_metadata(c, root, root, &w->name, &w->name_pos, &w->labels, &w->n_labels);
    const struct ynode *sk = NULL, *s = mget(root, "spec", &sk);
    conv_spec(c, w, sk ? sk : root, s);
    if (!w->name)
        return;        /* nothing can refer to it; its errors are already reported */
    struct manifest_part *part = c->part;
    GROW(part->workloads, part->cap_workloads, part->n_workloads + 1);
    part->workloads[part->n_workloads++] = w;
}

static void conv_host_backends(struct conv *c, struct host_spec *h, const struct ynode *n)
{
    static const char *const keys[] = {"vm", "container", NULL};
    static const char *const vm_keys[] = {"available", "kvm", "guestKernel", "virtiofs", NULL};
    static const char *const ct_keys[] = {"available", NULL};
    if (!want_map(c, n, "spec.backends"))
        return;
    check_keys(c, n, "spec.backends", keys);
    const struct ynode *vm = mget(n, "vm", NULL), *ct = mget(n, "container", NULL), *v;
    if (vm && want_map(c, vm, "spec.backends.vm")) {
        check_keys(c, vm, "spec.backends.vm", vm_keys);
        if ((v = mget(vm, "available", NULL)))
            get_bool(c, v, "spec.backends.vm.available", &h->vm_available);
        if ((v = mget(vm, "kvm", NULL)))
            get_bool(c, v, "spec.backends.vm.kvm", &h->vm_kvm);
        if ((v = mget(vm, "guestKernel", NULL)))
            get_bool(c, v, "spec.backends.vm.guestKernel", &h->vm_guest_kernel);
        if ((v = mget(vm, "virtiofs", NULL)))
            get_bool(c, v, "spec.backends.vm.virtiofs", &h->vm_virtiofs);
    }
    if (ct && want_map(c, ct, "spec.backends.container")) {
        check_keys(c, ct, "spec.backends.container", ct_keys);
        if ((v = mget(ct, "available", NULL)))
            get_bool(c, v, "spec.backends.container.available", &h->container_available);
    }
}

static void conv_host(struct conv *c, const struct ynode *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const spec_keys[] = {"cpus", "memory", "reserve", "overcommit", "backends", NULL};
    static const char *const reserve_keys[] = {"cpus", "memory", NULL};
    static const char *const oc_keys[] = {"cpu", "memory", NULL};
    struct host_spec *h = arena_alloc(c->a, sizeof(*h));
    h->overcommit_cpu = 4.0;
    h->overcommit_memory = 1.0;
    h->vm_available = h->vm_kvm = h->vm_guest_kernel = h->vm_virtiofs = h->container_available = true;
    pos_of(c, root, &h->pos);
    check_keys(c, root, "a Host document", keys);
    struct src_pos np;
    conv_metadata(c, root, root, &h->name, &np, NULL, NULL);
    const struct ynode *sk = NULL, *s = mget(root, "spec", &sk), *v, *k;
    if (!s) {
        cerr(c, root, "spec is required in a Host document: give spec.cpus and spec.memory");
        return;
    }
    if (!want_map(c, s, "spec"))
        return;
    check_keys(c, s, "spec", spec_keys);
    bool ok = true;
    if ((v = mget(s, "cpus", NULL)))
        ok = get_positive(c, v, "spec.cpus", 65536, &h->cpus) && ok;
    else
        ok = false, cerr(c, s, "spec.cpus is required: how many CPUs the host has");
    if ((v = mget(s, "memory", NULL)))
        ok = get_size(c, v, "spec.memory", &h->memory) && ok;
    else
        ok = false, cerr(c, s, "spec.memory is required: how much memory the host has, e.g. 32Gi");
    if ((v = mget(s, "reserve", &k)) && want_map(c, v, "spec.reserve")) {
        check_keys(c, v, "spec.reserve", reserve_keys);
        const struct ynode *r;
        if ((r = mget(v, "cpus", NULL)) && get_positive(c, r, "spec.reserve.cpus", 65536, &h->reserve_cpus) &&
            ok && h->reserve_cpus >= h->cpus)
            cerr(c, r, "spec.reserve.cpus (%g) leaves no CPU for workloads on a %g-CPU host", h->reserve_cpus,
                 h->cpus);
        if ((r = mget(v, "memory", NULL)) && get_size(c, r, "spec.reserve.memory", &h->reserve_memory)) {
            h->reserve_memory_set = true;
            if (ok && h->reserve_memory >= h->memory)
                cerr(c, r, "spec.reserve.memory leaves no memory for workloads");
        }
    }
    if ((v = mget(s, "overcommit", NULL)) && want_map(c, v, "spec.overcommit")) {
        check_keys(c, v, "spec.overcommit", oc_keys);
        const struct ynode *r;
        if ((r = mget(v, "cpu", NULL)))
            get_positive(c, r, "spec.overcommit.cpu", 100, &h->overcommit_cpu);
        if ((r = mget(v, "memory", NULL)))
            get_positive(c, r, "spec.overcommit.memory", 100, &h->overcommit_memory);
    }
    if ((v = mget(s, "backends", NULL)))
        conv_host_backends(c, h, v);
    if (!h->name)
        return;
    struct manifest_part *part = c->part;
    GROW(part->hosts, part->cap_hosts, part->n_hosts + 1);
    part->hosts[part->n_hosts++] = h;
}

/* A path the daemon reads: it must be there now, or duetd would start and
 * fail later, on the first workload that needs it. */
static bool get_readable_file(struct conv *c, const struct ynode *n, const char *path, const char **out)
{
    if (!get_host_path(c, n, path, out))
        return false;
    if (access(*out, R_OK) < 0) {
        cerr(c, n, "%s %s: %s", path, *out, strerror(errno));
        return false;
    }
    return true;
}

static void conv_daemon_registries(struct conv *c, struct daemon_spec *dm, const struct ynode *n)
{
    static const char *const keys[] = {"insecure", "ca", "auth", NULL};
    if (!want_map(c, n, "spec.registries"))
        return;
    check_keys(c, n, "spec.registries", keys);
    const struct ynode *v;
    if ((v = mget(n, "insecure", NULL)) &&
        get_string_list(c, v, "spec.registries.insecure", false, &dm->insecure_registries,
                        &dm->n_insecure_registries)) {
        for (size_t i = 0; i < dm->n_insecure_registries; i++) {
            const char *r = dm->insecure_registries[i];
            if (!*r || strpbrk(r, "/ \t\r\n@") || has_control(r, strlen(r))) {
                char buf[160];
                cerr(c, v->items[i], "spec.registries.insecure[%zu]: \"%s\" is not HOST or HOST:PORT", i,
                     diag_quote(r, strlen(r), buf, sizeof(buf)));
            }
        }
        if (dm->n_insecure_registries > 16)
            cerr(c, v, "spec.registries.insecure names %zu registries; at most 16", dm->n_insecure_registries);
    }
    if ((v = mget(n, "ca", NULL)))
        get_readable_file(c, v, "spec.registries.ca", &dm->registry_ca);
    if ((v = mget(n, "auth", NULL)))
        get_readable_file(c, v, "spec.registries.auth", &dm->registry_auth);
}

/* An ADDRESS:PORT key (metricsListen, web), checked as duetd's option is. */
static void get_listen_addr(struct conv *c, const struct ynode *v, const char *key, const char **out)
{
    if (!get_string(c, v, key, out))
        return;
    struct sockaddr_storage sa;
    struct duet_err e = {0};
    if (listen_addr_parse(*out, &sa, &e) < 0) {
        cerr(c, v, "%s: %s", key, e.msg);
        *out = NULL;
    }
}

/* duetd's config file (docs/install.md): every command-line option of
 * duetd has its key here, checked as strictly as the option. */
static void conv_daemon(struct conv *c, const struct ynode *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "spec", NULL};
    static const char *const spec_keys[] = {"socket", "socketGroup", "stateDir", "libvirtUri", "guestKernel",
                                            "bridge", "subnet", "restartBackoff", "stopGrace", "requestTimeout",
                                            "logMax", "maxImageSize", "registries", "debug", "metricsListen",
                                            "web", "webCert", "webKey", "webWrite", NULL};
    struct daemon_spec *dm = arena_alloc(c->a, sizeof(*dm));
    memset(dm, 0, sizeof(*dm));
    pos_of(c, root, &dm->pos);
    check_keys(c, root, "a Daemon document", keys);
    const struct ynode *s = mget(root, "spec", NULL), *v;
    if (!s) {
        cerr(c, root, "spec is required in a Daemon document: give the settings that differ from duetd's "
                      "defaults under spec (docs/install.md)");
        return;
    }
    struct manifest_part *part = c->part;
    /* "spec:" with every setting commented out: all defaults. */
    if (ynode_is_null(s) || !want_map(c, s, "spec"))
        goto out;
    check_keys(c, s, "spec", spec_keys);
    char buf[160];
    if ((v = mget(s, "socket", NULL)) && get_host_path(c, v, "spec.socket", &dm->socket) &&
        strlen(dm->socket) > 107) {
        cerr(c, v, "spec.socket is longer than a Unix socket path may be (107 bytes); pick a shorter one");
        dm->socket = NULL;
    }
    if ((v = mget(s, "socketGroup", NULL)) && get_string(c, v, "spec.socketGroup", &dm->socket_group)) {
        bool ok = v->n <= 32;
        for (size_t i = 0; i < v->n && ok; i++)
            ok = isalnum((unsigned char)v->str[i]) || ((v->str[i] == '-' || v->str[i] == '.') && i > 0) ||
                 v->str[i] == '_';
        if (!ok) {
            cerr(c, v, "spec.socketGroup: \"%s\" is not a group name (letters, digits, _ - ., at most 32)",
                 q(v, buf, sizeof(buf)));
            dm->socket_group = NULL;
        }
    }
    if ((v = mget(s, "stateDir", NULL)))
        get_host_path(c, v, "spec.stateDir", &dm->state_dir);
    if ((v = mget(s, "libvirtUri", NULL)) && get_string(c, v, "spec.libvirtUri", &dm->libvirt_uri) &&
        (has_control(v->str, v->n) || !strstr(dm->libvirt_uri, ":"))) {
        cerr(c, v, "spec.libvirtUri: \"%s\" is not a libvirt URI such as qemu:///system", q(v, buf, sizeof(buf)));
        dm->libvirt_uri = NULL;
    }
    if ((v = mget(s, "guestKernel", NULL)))
        get_readable_file(c, v, "spec.guestKernel", &dm->guest_kernel);
    if ((v = mget(s, "bridge", NULL)) && get_string(c, v, "spec.bridge", &dm->bridge) &&
        (memchr(v->str, '\0', v->n) || !duet_ifname_valid(dm->bridge))) {
        cerr(c, v, "spec.bridge: \"%s\" is not a network interface name (1 to 15 characters, no '/', ':' or "
                   "blanks), e.g. duet0",
             q(v, buf, sizeof(buf)));
        dm->bridge = NULL;
    }
    if ((v = mget(s, "subnet", NULL)) && get_string(c, v, "spec.subnet", &dm->subnet)) {
        struct ipam_subnet sn;
        struct duet_err e = {0};
        if (ipam_parse_subnet(dm->subnet, &sn, &e) < 0) {
            cerr(c, v, "spec.%s", e.msg);
            dm->subnet = NULL;
        }
    }
    if ((v = mget(s, "restartBackoff", NULL)))
        get_duration(c, v, "spec.restartBackoff", &dm->restart_backoff_ms);
    if ((v = mget(s, "stopGrace", NULL)))
        get_duration(c, v, "spec.stopGrace", &dm->stop_grace_ms);
    if ((v = mget(s, "requestTimeout", NULL)))
        get_duration(c, v, "spec.requestTimeout", &dm->request_timeout_ms);
    if ((v = mget(s, "logMax", NULL)) && get_size(c, v, "spec.logMax", &dm->log_max) && dm->log_max < 4096) {
        cerr(c, v, "spec.logMax must be 4Ki or more, e.g. 8Mi");
        dm->log_max = 0;
    }
    if ((v = mget(s, "maxImageSize", NULL)) && get_size(c, v, "spec.maxImageSize", &dm->max_image_size) &&
        dm->max_image_size < (1u << 20)) {
        cerr(c, v, "spec.maxImageSize must be 1Mi or more, e.g. 20Gi");
        dm->max_image_size = 0;
    }
    if ((v = mget(s, "registries", NULL)))
        conv_daemon_registries(c, dm, v);
    if ((v = mget(s, "debug", NULL)))
        get_bool(c, v, "spec.debug", &dm->debug);
    if ((v = mget(s, "metricsListen", NULL)))
        get_listen_addr(c, v, "spec.metricsListen", &dm->metrics_listen);
    if ((v = mget(s, "web", NULL)))
        get_listen_addr(c, v, "spec.web", &dm->web);
    if ((v = mget(s, "webCert", NULL)))
        get_readable_file(c, v, "spec.webCert", &dm->web_cert);
    if ((v = mget(s, "webKey", NULL)))
        get_readable_file(c, v, "spec.webKey", &dm->web_key);
    if ((v = mget(s, "webWrite", NULL)))
        get_bool(c, v, "spec.webWrite", &dm->web_write);
    if (!dm->web_cert != !dm->web_key)
        cerr(c, s, "spec.webCert and spec.webKey go together: give both for TLS, or neither");
out:
    GROW(part->daemons, part->cap_daemons, part->n_daemons + 1);
    part->daemons[part->n_daemons++] = dm;
}

void schema_convert_document(struct manifest_part *part, const char *file, const char *dir, bool stored,
                             const struct ydoc *doc)
{
    struct conv c = {.part = part, .a = &part->arena, .file = file, .dir = dir, .stored = stored,
                     .budget = CONV_BUDGET};
    const struct ynode *root = doc->root;
    if (ynode_is_null(root))
        return;                                   /* an empty document, e.g. after a trailing --- */
    part->n_documents++;
    if (root->kind != YNODE_MAP) {
        cerr(&c, root, "a manifest must be a mapping with apiVersion, kind, metadata and spec, not %s",
             kind_name(root));
        return;
    }
    const struct ynode *v = mget(root, "apiVersion", NULL);
    char buf[160];
    if (!v)
        cerr(&c, root, "apiVersion is required: add \"apiVersion: %s\"", DUET_API_VERSION);
    else if (want_scalar(&c, v, "apiVersion", "a string") && !key_is(v, DUET_API_VERSION))
        cerr(&c, v, "apiVersion \"%s\" is not supported; use %s", q(v, buf, sizeof(buf)), DUET_API_VERSION);
    static const char *const kinds[] = {"Workload", "Host", "Daemon", NULL};
    static void (*const convs[])(struct conv *, const struct ynode *) = {conv_workload, conv_host, conv_daemon};
    v = mget(root, "kind", NULL);
    int kind;
    if (!v)
        cerr(&c, root, "kind is required: Workload or Host");
    else if (get_enum(&c, v, "kind", kinds, &kind))
        convs[kind](&c, root);
}
