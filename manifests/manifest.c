/*
 * manifest.c - loading manifest files and the checks that span documents.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/sysinfo.h"
#include "manifest.h"
#include "schema.h"

struct manifest_set *manifest_set_new(void)
{
    struct manifest_set *set = calloc(1, sizeof(*set));
    if (!set)
        abort();
    arena_init(&set->arena);
    diag_list_init(&set->diags);
    strmap_init(&set->by_name);
    return set;
}

static struct manifest_part *part_new(void)
{
    struct manifest_part *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    arena_init(&p->arena);
    diag_list_init(&p->diags);
    return p;
}

static void part_free(struct manifest_part *p)
{
    arena_release(&p->arena);
    free(p->workloads);
    free(p->hosts);
    free(p->daemons);
    diag_list_free(&p->diags);
    free(p);
}

void manifest_set_free(struct manifest_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_parts; i++)
        part_free(set->parts[i]);
    free(set->parts);
    free(set->workloads);
    diag_list_free(&set->diags);
    strmap_free(&set->by_name);
    arena_release(&set->arena);
    free(set);
}

struct workload_spec *manifest_set_find(const struct manifest_set *set, const char *name)
{
    return strmap_get(&set->by_name, name);
}

/* Absolute directory that holds `file`, for resolving relative image paths. */
static char *file_dir(struct arena *a, const char *file)
{
    const char *slash = strrchr(file, '/');
    char *dir = slash ? arena_strndup(a, file, (size_t)(slash - file)) : arena_strdup(a, ".");
    if (dir[0] == '\0')
        dir = arena_strdup(a, "/");
    if (dir[0] == '/')
        return schema_path_normalize(a, dir);
    _cleanup_free_ char *cwd = getcwd(NULL, 0);
    return schema_path_normalize(a, arena_printf(a, "%s/%s", cwd ? cwd : "/", dir));
}

/* Files past this size are parsed in slices on several threads. */
#define SLICE_MIN_BYTES (256u << 10)
#define SLICES_MAX 4

struct slice {
    struct manifest_part *part;
    const char *file, *dir;
    const char *buf;
    size_t len;
    unsigned line_base;
    bool stored;
    pthread_t thread;
};

static void convert_one(void *opaque, const struct ydoc *doc)
{
    struct slice *sl = opaque;
    schema_convert_document(sl->part, sl->file, sl->dir, sl->stored, doc);
}

static void *parse_slice(void *arg)
{
    struct slice *sl = arg;
    struct arena scratch;
    arena_init(&scratch);
    ytree_parse(&scratch, sl->file, sl->buf, sl->len, sl->line_base, convert_one, sl, &sl->part->diags);
    arena_release(&scratch);
    return NULL;
}

/* The start of the first line at or after `from` that opens a document
 * ("---" at column 0, then a blank or the end), or len.  libyaml ends a
 * document at such a line wherever it stands, even inside a quoted or
 * flow value (an error there), so parsing the slices apart reads the same
 * documents.  A marker right after a directive line (%YAML) is skipped:
 * the directive belongs to the document it precedes. */
static size_t next_document_start(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 3 <= len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            return len;
        size_t start = (size_t)(nl - buf) + 1;
        if (start + 3 <= len && memcmp(buf + start, "---", 3) == 0 &&
            (start + 3 == len || strchr(" \t\r\n", buf[start + 3]))) {
            size_t prev = (size_t)(nl - buf);
            while (prev > 0 && buf[prev - 1] != '\n')
                prev--;
            if (buf[prev] != '%')
                return start;
        }
        i = start;
    }
    return len;
}

static unsigned count_lines(const char *buf, size_t len)
{
    unsigned n = 0;
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        n++;
    return n;
}

static void add_part(struct manifest_set *set, struct manifest_part *p)
{
    GROW(set->parts, set->cap_parts, set->n_parts + 1);
    set->parts[set->n_parts++] = p;
}

/* Appends a part's results to the set, in order. */
static void merge_part(struct manifest_set *set, struct manifest_part *p)
{
    if (p->n_workloads) {
        size_t need = set->n_workloads + p->n_workloads;
        GROW(set->workloads, set->cap_workloads, need);
        memcpy(set->workloads + set->n_workloads, p->workloads, p->n_workloads * sizeof(*p->workloads));
        set->n_workloads = need;
    }
    for (size_t i = 0; i < p->n_hosts; i++) {
        const struct host_spec *h = p->hosts[i], *o = set->host;
        if (!o)
            set->host = p->hosts[i];
        else
            diag_add(&set->diags, h->pos.file, h->pos.line, h->pos.col,
                     "a second Host document (\"%s\"); the first is \"%s\" at %s:%u:%u: plan for one host at a time",
                     h->name, o->name, o->pos.file, o->pos.line, o->pos.col);
    }
    for (size_t i = 0; i < p->n_daemons; i++) {
        const struct daemon_spec *dm = p->daemons[i];
        if (!set->daemon_config)
            diag_add(&set->diags, dm->pos.file, dm->pos.line, dm->pos.col,
                     "a Daemon document configures duetd and belongs in its config file (" DUET_DEFAULT_CONFIG
                     ", docs/install.md), not among manifests");
        else if (set->daemon)
            diag_add(&set->diags, dm->pos.file, dm->pos.line, dm->pos.col,
                     "a second Daemon document; the first is at line %u: give each setting once",
                     set->daemon->pos.line);
        else
            set->daemon = p->daemons[i];
    }
    if (set->daemon_config) {
        for (size_t i = 0; i < p->n_workloads; i++)
            diag_add(&set->diags, p->workloads[i]->pos.file, p->workloads[i]->pos.line, p->workloads[i]->pos.col,
                     "a Workload document (\"%s\") does not belong in duetd's config file, which holds one Daemon "
                     "document; apply workloads with duet apply",
                     p->workloads[i]->name);
        for (size_t i = 0; i < p->n_hosts; i++)
            diag_add(&set->diags, p->hosts[i]->pos.file, p->hosts[i]->pos.line, p->hosts[i]->pos.col,
                     "a Host document does not belong in duetd's config file, which holds one Daemon document; "
                     "give it to duet plan -f");
    }
    diag_list_move(&set->diags, &p->diags);
    set->n_documents += p->n_documents;
}

void manifest_set_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len)
{
    const char *file = arena_strdup(&set->arena, name);
    const char *dir = file_dir(&set->arena, file);
    set->n_files++;
    if (len > YTREE_MAX_FILE) {
        diag_add(&set->diags, file, 0, 0, "file is %zu bytes; manifests larger than %u MiB are refused", len,
                 YTREE_MAX_FILE >> 20);
        return;
    }
    size_t want = len / SLICE_MIN_BYTES, cpus = duet_usable_cpus();
    if (want > cpus)
        want = cpus;
    if (want > SLICES_MAX)
        want = SLICES_MAX;
    struct slice slices[SLICES_MAX];
    size_t n = 0, at = 0;
    unsigned lines = 0;
    while (at < len || n == 0) {
        size_t end = n + 1 >= want ? len : next_document_start(buf, len, at + len / (want ? want : 1));
        struct slice *sl = &slices[n++];
        *sl = (struct slice){.part = part_new(), .file = file, .dir = dir, .buf = buf + at, .len = end - at,
                             .line_base = lines, .stored = set->loading_stored};
        lines += count_lines(buf + at, end - at);
        at = end;
    }
    /* Slice 0 on this thread, the rest on their own; a failed thread start
     * just means that slice runs here. */
    bool threaded[SLICES_MAX] = {false};
    for (size_t i = 1; i < n; i++)
        threaded[i] = pthread_create(&slices[i].thread, NULL, parse_slice, &slices[i]) == 0;
    parse_slice(&slices[0]);
    for (size_t i = 1; i < n; i++) {
        if (threaded[i])
            pthread_join(slices[i].thread, NULL);
        else
            parse_slice(&slices[i]);
    }
    for (size_t i = 0; i < n; i++) {
        add_part(set, slices[i].part);
        merge_part(set, slices[i].part);
    }
}

static bool load_file(struct manifest_set *set, const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        diag_add(&set->diags, path, 0, 0, "cannot read: %s", strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        diag_add(&set->diags, path, 0, 0, "not a regular file: give a manifest file or a directory of them");
        return false;
    }
    if ((uint64_t)st.st_size > YTREE_MAX_FILE) {
        diag_add(&set->diags, path, 0, 0, "file is %lld bytes; manifests larger than %u MiB are refused",
                 (long long)st.st_size, YTREE_MAX_FILE >> 20);
        return false;
    }
    /* Read to EOF rather than trusting st_size: the file may change under us. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len == cap) {
            if (cap > YTREE_MAX_FILE) {
                diag_add(&set->diags, path, 0, 0, "file grew past %u MiB while being read", YTREE_MAX_FILE >> 20);
                return false;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            diag_add(&set->diags, path, 0, 0, "cannot read: %s", strerror(errno));
            return false;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    manifest_set_load_buffer(set, path, buf, len);
    return true;
}

static int yaml_entry(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.')
        return 0;
    return (n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(e->d_name + n - 4, ".yml") == 0);
}

int manifest_path_files(const char *path, char ***files)
{
    struct stat st;
    *files = NULL;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        if (!(*files = malloc(sizeof(char *))) || !((*files)[0] = strdup(path)))
            abort();
        return 1;
    }
    struct dirent **list;
    int n = scandir(path, &list, yaml_entry, alphasort);
    if (n < 0)
        return -1;
    if (!(*files = calloc((size_t)n + 1, sizeof(char *))))
        abort();
    size_t plen = strlen(path);
    bool sep = plen > 0 && path[plen - 1] == '/';
    int kept = 0;
    for (int i = 0; i < n; i++) {
        char *file;
        if (asprintf(&file, "%s%s%s", path, sep ? "" : "/", list[i]->d_name) < 0)
            abort();
        struct stat fst;
        /* Subdirectories are not searched (as kubectl without -R); a dangling
         * link or a fifo named *.yaml is the reader's to report. */
        if (stat(file, &fst) == 0 && S_ISDIR(fst.st_mode))
            free(file);
        else
            (*files)[kept++] = file;
        free(list[i]);
    }
    free(list);
    return kept;
}

bool manifest_set_load_path(struct manifest_set *set, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        diag_add(&set->diags, path, 0, 0, "cannot read: %s", strerror(errno));
        return false;
    }
    char **files;
    int n = manifest_path_files(path, &files);
    if (n < 0) {
        diag_add(&set->diags, path, 0, 0, "cannot list directory: %s", strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        bool ok = load_file(set, files[0]);
        free(files[0]);
        free(files);
        return ok;
    }
    for (int i = 0; i < n; i++) {
        load_file(set, files[i]);
        free(files[i]);
    }
    free(files);
    if (n == 0)
        diag_add(&set->diags, path, 0, 0, "no *.yaml or *.yml files in this directory");
    return true;
}

struct manifest_set *manifest_daemon_config_load(const char *path)
{
    struct manifest_set *set = manifest_set_new();
    set->daemon_config = true;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        diag_add(&set->diags, path, 0, 0, "is a directory; duetd's config is one file, e.g. " DUET_DEFAULT_CONFIG);
        return set;
    }
    if (load_file(set, path) && manifest_set_ok(set) && !set->daemon)
        diag_add(&set->diags, path, 0, 0,
                 "holds no Daemon document; start it with \"apiVersion: " DUET_API_VERSION
                 "\" and \"kind: Daemon\" (docs/install.md)");
    return set;
}

const char *manifest_daemon_config_path(const char *given, bool *explicit_path)
{
    *explicit_path = true;
    const char *env = getenv("DUET_CONFIG");
    const char *p = given && *given ? given : env && *env ? env : NULL;
    if (p)
        return strcmp(p, "none") == 0 ? NULL : p;
    *explicit_path = false;
    return access(DUET_DEFAULT_CONFIG, F_OK) == 0 ? DUET_DEFAULT_CONFIG : NULL;
}

const char *manifest_libvirt_uri_given(const char *option)
{
    const char *env = getenv("DUET_LIBVIRT_URI");
    return option ? option : env && *env ? env : NULL;
}

static void check_names(struct manifest_set *set)
{
    for (size_t i = 0; i < set->n_workloads; i++) {
        struct workload_spec *w = set->workloads[i];
        struct workload_spec *first = strmap_put(&set->by_name, w->name, w);
        if (first != w)
            diag_add(&set->diags, w->name_pos.file, w->name_pos.line, w->name_pos.col,
                     "workload \"%s\" is defined twice; the first is at %s:%u:%u (names are unique across "
                     "all files)",
                     w->name, first->name_pos.file, first->name_pos.line, first->name_pos.col);
    }
}

/* A named volume's users agree on its size and on who writes it.  Pairs
 * are compared only among workloads with named volumes (few). */
static void check_volumes(struct manifest_set *set)
{
    struct workload_spec **users = NULL;
    size_t n = 0;
    for (size_t i = 0; i < set->n_workloads; i++) {
        struct workload_spec *w = set->workloads[i];
        bool named = false;
        for (size_t v = 0; v < w->n_volumes; v++)
            named |= w->volumes[v].name != NULL;
        if (!named)
            continue;
        char why[512];
        for (size_t j = 0; j < n; j++)
            if (wl_volumes_conflict(users[j], w, why, sizeof(why))) {
                /* said where the user can change it, as for ports */
                bool ctx = set->context_file && strcmp(w->name_pos.file, set->context_file) == 0;
                const struct workload_spec *at = ctx ? users[j] : w;
                diag_add(&set->diags, at->name_pos.file, at->name_pos.line, at->name_pos.col, "%s", why);
                break;
            }
        users = realloc(users, (n + 1) * sizeof(*users));
        if (!users)
            abort();
        users[n++] = w;
    }
    free(users);
}

static void check_deps_exist(struct manifest_set *set)
{
    const char **names = NULL;
    for (size_t i = 0; i < set->n_workloads; i++) {
        struct workload_spec *w = set->workloads[i];
        for (size_t j = 0; j < w->n_depends_on; j++) {
            struct wl_dep *d = &w->depends_on[j];
            if (strcmp(d->name, w->name) == 0) {
                diag_add(&set->diags, d->pos.file, d->pos.line, d->pos.col,
                         "spec.dependsOn: workload \"%s\" cannot depend on itself", w->name);
                continue;
            }
            if (strmap_get(&set->by_name, d->name))
                continue;
            const char *hint = NULL;
            if (set->n_workloads <= 1000) {    /* suggestions cost O(n); skip for huge fleets */
                if (!names) {
                    names = calloc(set->n_workloads + 1, sizeof(*names));
                    if (!names)
                        abort();
                    for (size_t k = 0; k < set->n_workloads; k++)
                        names[k] = set->workloads[k]->name;
                }
                hint = schema_suggest(d->name, strlen(d->name), names);
            }
            if (hint)
                diag_add(&set->diags, d->pos.file, d->pos.line, d->pos.col,
                         "spec.dependsOn: no workload named \"%s\" (did you mean \"%s\"?)", d->name, hint);
            else
                diag_add(&set->diags, d->pos.file, d->pos.line, d->pos.col,
                         "spec.dependsOn: no workload named \"%s\" in these manifests", d->name);
        }
    }
    free(names);
}

/* Iterative depth-first search (fleets can chain thousands deep).  Each
 * cycle is reported once, at the dependsOn entry that closes it, with the
 * whole loop spelled out. */
static void check_cycles(struct manifest_set *set)
{
    size_t n = set->n_workloads;
    if (n == 0)
        return;
    struct strmap index;
    strmap_init(&index);
    for (size_t i = 0; i < n; i++)
        strmap_put(&index, set->workloads[i]->name, (void *)(i + 1));
    enum { WHITE, GREY, BLACK };
    unsigned char *color = calloc(n, 1);
    size_t *stack = malloc(n * sizeof(*stack)), *edge = calloc(n, sizeof(*edge));
    if (!color || !stack || !edge)
        abort();
    for (size_t root = 0; root < n; root++) {
        if (color[root] != WHITE)
            continue;
        size_t top = 0;
        stack[top++] = root;
        color[root] = GREY;
        while (top) {
            size_t u = stack[top - 1];
            struct workload_spec *w = set->workloads[u];
            if (edge[u] == w->n_depends_on) {
                color[u] = BLACK;
                top--;
                continue;
            }
            struct wl_dep *d = &w->depends_on[edge[u]++];
            size_t v = (size_t)strmap_get(&index, d->name);
            if (v == 0 || v - 1 == u)
                continue;   /* unknown or self: reported by check_deps_exist */
            v--;
            if (color[v] == WHITE) {
                color[v] = GREY;
                stack[top++] = v;
            } else if (color[v] == GREY) {
                /* stack[k..top) is the loop: v -> ... -> u -> v */
                size_t k = top;
                while (k > 0 && stack[k - 1] != v)
                    k--;
                k--;
                size_t len = 0;
                for (size_t i = k; i < top; i++)
                    len += strlen(set->workloads[stack[i]]->name) + 4;
                len += strlen(set->workloads[v]->name) + 1;
                char *path = malloc(len);
                if (!path)
                    abort();
                path[0] = '\0';
                for (size_t i = k; i < top; i++) {
                    strcat(path, set->workloads[stack[i]]->name);
                    strcat(path, " -> ");
                }
                strcat(path, set->workloads[v]->name);
                diag_add(&set->diags, d->pos.file, d->pos.line, d->pos.col,
                         "spec.dependsOn: dependency cycle %s; remove one of these dependencies", path);
                free(path);
            }
        }
    }
    free(color);
    free(stack);
    free(edge);
    strmap_free(&index);
}

/* One published host port, in the order the set holds them: the first of
 * a (protocol, port) is its owner, every later one from another workload
 * a conflict. */
struct port_use {
    unsigned key;   /* protocol * 65536 + host port */
    size_t seq;
    const struct wl_port *port;
    const struct workload_spec *wl;
};

static int port_use_cmp(const void *a, const void *b)
{
    const struct port_use *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorted, not a table of every port: a run of one workload validates the
 * whole fleet beside it, and zeroing 2 x 65536 slots per request cost more
 * than the container it started. */
static void check_ports(struct manifest_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n_workloads; i++)
        n += set->workloads[i]->n_ports;
    if (n < 2)
        return;
    struct port_use *use = malloc(n * sizeof(*use));
    if (!use)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < set->n_workloads; i++) {
        const struct workload_spec *w = set->workloads[i];
        for (size_t j = 0; j < w->n_ports; j++, k++)
            use[k] = (struct port_use){.key = (unsigned)w->ports[j].protocol * 65536u + w->ports[j].host,
                                       .seq = k,
                                       .port = &w->ports[j],
                                       .wl = w};
    }
    qsort(use, n, sizeof(*use), port_use_cmp);
    for (size_t first = 0, i = 1; i < n; i++) {
        if (use[i].key != use[first].key) {
            first = i;
            continue;
        }
        const struct wl_port *p = use[i].port;
        const struct workload_spec *w = use[i].wl;
        if (use[first].wl == w)
            continue;
        /* Said where the user can change it: a context workload (the
         * fleet already applied) is the holder, never the culprit. */
        bool ctx = set->context_file && strcmp(p->pos.file, set->context_file) == 0;
        const struct wl_port *at = ctx ? use[first].port : p;
        const struct workload_spec *holder = ctx ? w : use[first].wl;
        bool holder_ctx = set->context_file && strcmp(holder->pos.file, set->context_file) == 0;
        diag_add(&set->diags, at->pos.file, at->pos.line, at->pos.col,
                 "host port %u/%s is already published by workload \"%s\"%s; pick another host port", p->host,
                 p->protocol == WL_PROTO_TCP ? "tcp" : "udp", holder->name, holder_ctx ? " (applied earlier)" : "");
    }
    free(use);
}

void manifest_set_validate(struct manifest_set *set)
{
    check_names(set);
    check_deps_exist(set);
    check_volumes(set);
    check_cycles(set);
    check_ports(set);
    if (set->n_documents == 0 && diag_count(&set->diags) == 0)
        diag_add(&set->diags, "duet", 0, 0, "no manifests found: the files hold no YAML documents");
    diag_sort(&set->diags);
}

char *wl_secret_file_read(const char *path, size_t *len, struct duet_err *err)
{
    /* Non-blocking: a FIFO put in its place cannot hang the reader. */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        duet_err_sys(err, "the secret file %s cannot be read", path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        duet_err_set(err, EINVAL, "the secret file %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & S_IROTH) {
        duet_err_set(err, EACCES, "the secret file %s is readable by every user (mode %04o); make it private: chmod o-r %s",
                     path, (unsigned)(st.st_mode & 07777), path);
        return NULL;
    }
    if (st.st_size > WL_MAX_SECRET) {
        duet_err_set(err, E2BIG, "the secret file %s is %lld bytes; a secret is at most 1 MiB", path,
                     (long long)st.st_size);
        return NULL;
    }
    char *buf = duet_read_fd(fd, WL_MAX_SECRET, len, path, err);
    if (!buf && err->code == E2BIG)
        duet_err_set(err, E2BIG, "the secret file %s grew past 1 MiB as it was read; a secret is at most 1 MiB", path);
    return buf;
}
