/*
 * verbs.c - the duet verbs that talk to duetd: apply, get, describe,
 * logs, exec, delete, events, run.
 *
 * Each verb is one API call (docs/api.md) and a rendering of its answer.
 * Exit codes (DESIGN.md): 0 success, 1 invalid input or refused request,
 * 2 usage error, 3 daemon unreachable.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "verbs.h"
#include "client.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/jsonfmt.h"
#include "common/units.h"
#include "common/urlenc.h"
#include "common/utf8.h"
#include "images/ref.h"
#include "manifests/manifest.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

static const char *sock;

int cli_unreachable(const struct duet_err *err)
{
    fprintf(stderr, "duet: %s\n", err->msg);
    return EXIT_UNREACHABLE;
}

/* Prints the daemon's error answer; returns the exit code for it. */
int cli_refused(const char *body)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    json_t *diags = j ? json_object_get(j, "diagnostics") : NULL;
    json_t *unpl = j ? json_object_get(j, "unplaceable") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(diags, i, v) fprintf(stderr, "%s\n", json_string_value(v));
    json_array_foreach(unpl, i, v)
        fprintf(stderr, "%s: unplaceable: %s\n", json_string_value(json_object_get(v, "name")),
                json_string_value(json_object_get(v, "reason")));
    fprintf(stderr, "duet: %s\n", msg ? msg : (body && *body ? body : "request refused"));
    json_decref(j);
    return EXIT_REFUSED;
}

/* GET/POST/DELETE; the answer's body (NUL-terminated, the caller frees
 * it) when it is a success, else NULL with *rc set and the reason said. */
static char *call_raw(const char *method, const char *path, const char *body, size_t *len, int *rc)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    /* run answers when its workload ends, a snapshot when it is copied,
     * however long that takes */
    int timeout = strcmp(path, "/v1/run") == 0 || strcmp(path, "/v1/restore") == 0 ||
                          (strcmp(method, "POST") == 0 && (strstr(path, "/snapshots") || strstr(path, "/backup")))
                      ? 0
                      : CLIENT_TIMEOUT_MS;
    int status = client_call_buf(sock, method, path, body, body ? strlen(body) : 0, &b, timeout, &err);
    if (status < 0) {
        *rc = cli_unreachable(&err);
        free(b.data);
        return NULL;
    }
    if (status >= 300) {
        *rc = cli_refused(b.data);
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : strdup("");
}

static json_t *parse_answer(const char *text, int *rc)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!j) {
        fprintf(stderr, "duet: duetd's answer is not JSON: %s\n", jerr.text);
        *rc = EXIT_REFUSED;
    }
    return j;
}

/* GET/POST/DELETE with a JSON answer; NULL (and *rc set) on failure. */
static json_t *call_json(const char *method, const char *path, const char *body, int *rc)
{
    size_t len;
    char *text = call_raw(method, path, body, &len, rc);
    if (!text)
        return NULL;
    json_t *j = parse_answer(text, rc);
    free(text);
    return j;
}

/* ---- output helpers ----------------------------------------------------------- */

static void size_text(char *buf, size_t len, double bytes)
{
    if (bytes >= 1 << 30)
        snprintf(buf, len, "%.1f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20)
        snprintf(buf, len, "%.1f MiB", bytes / (1 << 20));
    else
        snprintf(buf, len, "%.0f KiB", bytes / 1024);
}

static void age(char *buf, size_t len, json_t *ms)
{
    if (!json_is_integer(ms)) {
        snprintf(buf, len, "-");
        return;
    }
    int64_t s = ((int64_t)clock_wall_ms() - json_integer_value(ms)) / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, len, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, len, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, len, "%lldd", (long long)(s / 86400));
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* JSON as YAML: strings stay double-quoted (valid YAML), the rest plain. */
static void yaml_print(FILE *out, json_t *j, int indent, bool in_seq)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        bool first = true;
        if (json_object_size(j) == 0) {
            fprintf(out, "{}\n");
            return;
        }
        json_object_foreach(j, k, v) {
            if (!(first && in_seq))
                fprintf(out, "%*s", indent, "");
            first = false;
            fprintf(out, "%s:", k);
            if ((json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v))) {
                fprintf(out, "\n");
                yaml_print(out, v, indent + 2, false);
            } else {
                fprintf(out, " ");
                yaml_print(out, v, indent + 2, false);
            }
        }
    } else if (json_is_array(j)) {
        if (json_array_size(j) == 0) {
            fprintf(out, "[]\n");
            return;
        }
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            fprintf(out, "%*s- ", indent, "");
            yaml_print(out, v, indent + 2, true);
        }
    } else {
        char *t = json_dumps(j, JSON_ENCODE_ANY);
        fprintf(out, "%s\n", t ? t : "null");
        free(t);
    }
}

static int print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", t);
    free(t);
    return 0;
}

/* -o json or -o yaml */
static void print_doc(json_t *j, const char *output)
{
    if (strcmp(output, "json") == 0)
        print_json(j);
    else
        yaml_print(stdout, j, 0, false);
}

/* -o json|yaml: the answer as it came, in place of the table; the
 * answer is then done with. */
static bool doc_printed(json_t *j, const char *output)
{
    if (!output)
        return false;
    print_doc(j, output);
    json_decref(j);
    return true;
}

/* ---- apply -------------------------------------------------------------------------- */

/* One file for apply: its absolute path (relative paths in it resolve
 * against its directory) and its text. */
static int add_file(json_t *files, const char *path)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs)) {
        fprintf(stderr, "duet: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    FILE *f = fopen(abs, "re");
    if (!f) {
        fprintf(stderr, "duet: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *data = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&data, &len);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, got, m);
    fclose(f);
    fclose(m);
    json_t *x = json_object();
    json_object_set_new(x, "name", json_string(abs));
    json_t *content = json_stringn(data, len);
    free(data);
    if (!content) {
        json_decref(x);
        fprintf(stderr, "duet: %s is not UTF-8 text; manifests must be UTF-8\n", path);
        return -1;
    }
    json_object_set_new(x, "content", content);
    json_array_append_new(files, x);
    return 0;
}

/* The files apply sends: the ones manifest_set_load_path reads. */
int cli_probe_settle(const char *config, struct host_probe_opts *po, struct cli_probe_keep *keep)
{
    po->libvirt_uri = manifest_libvirt_uri_given(po->libvirt_uri);
    bool named;
    const char *path = manifest_daemon_config_path(config, &named);
    if (!path || (po->libvirt_uri && po->guest_kernel))
        return 0;
    struct manifest_set *set = manifest_daemon_config_load(path);
    int rc = 0;
    if (!manifest_set_ok(set)) {
        diag_sort(&set->diags);
        diag_print(&set->diags, stderr);
        fprintf(stderr, "duet: duetd's config file %s has errors; fix it%s\n", path,
                named ? "" : ", or plan without it: --config none");
        rc = 1;
    } else {
        const struct daemon_spec *d = set->daemon;
        if (!po->libvirt_uri && d->libvirt_uri) {
            snprintf(keep->libvirt_uri, sizeof(keep->libvirt_uri), "%s", d->libvirt_uri);
            po->libvirt_uri = keep->libvirt_uri;
        }
        if (!po->guest_kernel && d->guest_kernel) {
            snprintf(keep->guest_kernel, sizeof(keep->guest_kernel), "%s", d->guest_kernel);
            po->guest_kernel = keep->guest_kernel;
        }
    }
    manifest_set_free(set);
    return rc;
}

int cli_add_path(json_t *files, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "duet: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **list;
    int n = manifest_path_files(path, &list);
    if (n < 0) {
        fprintf(stderr, "duet: cannot list %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = add_file(files, list[i]);
        free(list[i]);
    }
    free(list);
    return rc;
}

/* Local check first: errors name the files as the user typed them. */
static int validate_local(char **paths, size_t n)
{
    struct manifest_set *set = manifest_set_new();
    for (size_t i = 0; i < n; i++)
        manifest_set_load_path(set, paths[i]);
    manifest_set_validate(set);
    int rc = 0;
    if (!manifest_set_ok(set)) {
        diag_sort(&set->diags);
        diag_print(&set->diags, stderr);
        fprintf(stderr, "duet: %zu error%s; nothing was applied\n", diag_count(&set->diags),
                diag_count(&set->diags) == 1 ? "" : "s");
        rc = EXIT_REFUSED;
    }
    manifest_set_free(set);
    return rc;
}

/* Why w will not become ready by waiting, or NULL: it failed, or it ended
 * or could not be launched and waits to restart (a crash loop, a missing
 * volume source, no address left).  As docker compose's --wait, the
 * first such end fails the wait: waiting out the timeout tells nothing. */
static const char *not_coming(json_t *w, char *buf, size_t len)
{
    const char *state = str(w, "state");
    if (strcmp(state, "failed") && strcmp(state, "crashloop") && strcmp(state, "restarting"))
        return NULL;
    const char *msg = json_string_value(json_object_get(w, "message"));
    json_t *ex = json_object_get(w, "last_exit");
    if (msg)
        snprintf(buf, len, "%s", msg);
    else if (json_is_object(ex) && json_integer_value(json_object_get(ex, "signal")))
        snprintf(buf, len, "killed by signal %lld", (long long)json_integer_value(json_object_get(ex, "signal")));
    else if (json_is_object(ex))
        snprintf(buf, len, "exit status %lld", (long long)json_integer_value(json_object_get(ex, "code")));
    else
        snprintf(buf, len, "%s", state);
    return buf;
}

/* Polls until every named workload is ready (or completed); fails at the
 * first that will not be. */
static int wait_ready(json_t *names, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    json_t *want = json_object();   /* the names, as a set */
    size_t k;
    json_t *n;
    json_array_foreach(names, k, n) json_object_set(want, json_string_value(n), json_true());
    int rc = 0;
    /* On a terminal, one line says what is being waited for (an image's
     * pull shows its progress there); a pipe gets none of it. */
    bool tty = isatty(STDOUT_FILENO), drawn = false;
    for (;;) {
        json_t *j = call_json("GET", "/v1/workloads", NULL, &rc);
        if (!j)
            break;
        size_t waiting = 0, i;
        json_t *w;
        char lastname[64] = "", why[1024], status[160] = "";
        bool refused = false;
        json_array_foreach(json_object_get(j, "workloads"), i, w) {
            const char *name = str(w, "name");
            if (!json_object_get(want, name) || json_is_true(json_object_get(w, "ready")) ||
                strcmp(str(w, "state"), "completed") == 0)
                continue;
            if (not_coming(w, why, sizeof(why))) {
                fprintf(stderr, "duet: %s is %s: %s; see duet describe %s and duet logs %s\n", name,
                        str(w, "state"), why, name, name);
                refused = true;
                break;
            }
            waiting++;
            snprintf(lastname, sizeof(lastname), "%s", name);
            if (!status[0]) {
                const char *msg = json_string_value(json_object_get(w, "message"));
                snprintf(status, sizeof(status), "%s: %s", name, msg ? msg : str(w, "state"));
            }
        }
        json_decref(j);
        if (tty && waiting && !refused) {
            /* control characters of a message (a workload's own words) never reach the terminal */
            duet_text_mask(status);
            printf("\r\033[Kwaiting for %zu: %.100s", waiting, status);
            fflush(stdout);
            drawn = true;
        }
        if (drawn && (refused || !waiting || clock_mono_ms() > deadline)) {
            printf("\r\033[K");
            fflush(stdout);
            drawn = false;
        }
        if (refused) {
            rc = EXIT_REFUSED;
            break;
        }
        if (!waiting)
            break;
        if (clock_mono_ms() > deadline) {
            fprintf(stderr, "duet: %zu workload%s not ready after %llu s (%s among them); see duet describe\n",
                    waiting, waiting == 1 ? "" : "s", (unsigned long long)(timeout_ms / 1000), lastname);
            rc = EXIT_REFUSED;
            break;
        }
        usleep(200000);
    }
    json_decref(want);
    return rc;
}

static int cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"prune", no_argument, NULL, 'p'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"recreate", required_argument, NULL, 'r'},
                                         {"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] =
        "usage: duet apply -f FILE|DIR [-f ...] [--prune] [--dry-run] [--recreate NAME ...]\n"
        "                  [--wait [--timeout SECONDS]] [-o json]\n"
        "\n"
        "Make the fleet what the manifests say: create new workloads, replace changed\n"
        "ones (stop old, start new), leave the rest alone.  All or nothing: a manifest\n"
        "with any error, or a workload that fits nowhere, changes nothing.\n"
        "\n"
        "  -f, --filename PATH   manifest file or directory (repeatable)\n"
        "      --prune           also delete workloads that are not in the files\n"
        "      --dry-run         show what would change, change nothing\n"
        "      --recreate NAME   replace NAME even if unchanged, a VM with a fresh disk made\n"
        "                        from its image (what its guest wrote is lost); repeatable\n"
        "      --wait            return when every applied workload is ready (healthy or done)\n"
        "      --timeout SECONDS with --wait (default 300)\n"
        "  -o, --output json     the change list as JSON\n"
        "      --socket PATH     duetd's socket (default $DUET_SOCKET or /run/duet/duet.sock)\n";
    char **paths = calloc((size_t)argc + 1, sizeof(*paths));
    size_t n = 0;
    json_t *recreate = json_array();
    bool prune = false, dry = false, wait = false, json = false;
    unsigned long timeout = 300;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': paths[n++] = optarg; break;
        case 'p': prune = true; break;
        case 'n': dry = true; break;
        case 'r':
            if (!manifest_name_valid(optarg, strlen(optarg))) {
                fprintf(stderr, "duet: --recreate %.80s: not a workload name\n", optarg);
                free(paths);
                json_decref(recreate);
                return EXIT_USAGE;
            }
            json_array_append_new(recreate, json_string(optarg));
            break;
        case 'w': wait = true; break;
        case 't': timeout = strtoul(optarg, NULL, 10); break;
        case 'o': json = strcmp(optarg, "json") == 0; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); free(paths); json_decref(recreate); return 0;
        default: fputs(usage, stderr); free(paths); json_decref(recreate); return EXIT_USAGE;
        }
    }
    if (!n || optind < argc) {
        fprintf(stderr, "duet: apply needs manifests: -f FILE|DIR\n%s", usage);
        free(paths);
        json_decref(recreate);
        return EXIT_USAGE;
    }
    int rc = validate_local(paths, n);
    json_t *files = json_array();
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (cli_add_path(files, paths[i]) < 0)
            rc = EXIT_REFUSED;
    free(paths);
    if (rc) {
        json_decref(files);
        json_decref(recreate);
        return rc;
    }
    json_t *req = json_object();
    json_object_set_new(req, "files", files);
    json_object_set_new(req, "prune", json_boolean(prune));
    json_object_set_new(req, "dryRun", json_boolean(dry));
    json_object_set_new(req, "recreate", recreate);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *j = call_json("POST", "/v1/apply", body, &rc);
    free(body);
    if (!j)
        return rc;
    json_t *changes = json_object_get(j, "changes");
    if (json) {
        print_json(j);
    } else {
        size_t i;
        json_t *c;
        printf("%-20s %-10s %-10s %s\n", "NAME", dry ? "WOULD" : "ACTION", "BACKEND", "WHY");
        json_array_foreach(changes, i, c) {
            json_t *reasons = json_object_get(c, "reasons");
            const char *action = str(c, "action");
            static const char *const past[][2] = {{"create", "created"}, {"replace", "replaced"},
                                                  {"delete", "deleted"}, {"unchanged", "unchanged"}};
            const char *shown = action;
            for (size_t k = 0; !dry && k < 4; k++)
                if (strcmp(action, past[k][0]) == 0)
                    shown = past[k][1];
            printf("%-20s %-10s %-10s %s\n", str(c, "name"), shown, json_object_get(c, "backend") ? str(c, "backend") : "-",
                   json_array_size(reasons) ? json_string_value(json_array_get(reasons, 0)) : "");
        }
    }
    rc = 0;
    if (wait && !dry) {
        json_t *names = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(changes, i, c) if (strcmp(str(c, "action"), "delete") != 0)
            json_array_append_new(names, json_string(str(c, "name")));
        rc = wait_ready(names, (uint64_t)timeout * 1000);
        json_decref(names);
    }
    json_decref(j);
    return rc;
}

/* ---- get / describe ------------------------------------------------------------------ */

static void row(json_t *w)
{
    char a[16], restarts[32];
    age(a, sizeof(a), json_object_get(w, "started_at"));
    snprintf(restarts, sizeof(restarts), "%lld", (long long)json_integer_value(json_object_get(w, "restarts")));
    const char *health = str(w, "health");
    printf("%-20s %-15s %-10s %-11s %-10s %-9s %s\n", str(w, "name"), str(w, "role"), str(w, "backend"),
           str(w, "state"), strcmp(health, "none") == 0 ? "-" : health, restarts, a);
}

/* A daemon whose store refuses writes still answers reads; the user must
 * know that what they see is not being acted on. */
/* duetd's answer says it is degraded (the store refused a write): why. */
static void warn_degraded_why(json_t *why)
{
    if (json_is_string(why))
        fprintf(stderr, "duet: warning: %s\n", json_string_value(why));
}

static void warn_degraded(json_t *j)
{
    warn_degraded_why(json_object_get(j, "degraded"));
}

static void print_piece(void *opaque, const char *s, size_t n)
{
    fwrite(s, 1, n, opaque);
}

/* GET path printed as JSON the way print_json would, without a tree: a
 * fleet's list is the largest answer there is (see common/jsonfmt.h). */
static int print_answer_json(const char *path, int *rc)
{
    size_t len;
    char *text = call_raw("GET", path, NULL, &len, rc);
    if (!text)
        return -1;
    struct jsonfmt_key degraded = {.name = "degraded"};
    if (jsonfmt_indent(text, len, &degraded, NULL, NULL) < 0) {
        /* the parser says what is wrong with it */
        json_t *j = parse_answer(text, rc);
        free(text);
        if (!j)
            return -1;
        warn_degraded(j);
        print_json(j);
        json_decref(j);
        return 0;
    }
    if (degraded.value) {
        json_t *why = json_loadb(degraded.value, degraded.len, JSON_DECODE_ANY, NULL);
        warn_degraded_why(why);
        json_decref(why);
    }
    jsonfmt_indent(text, len, NULL, print_piece, stdout);
    free(text);
    return 0;
}

static int cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] = "usage: duet get [NAME] [-o table|json|yaml|name]\n\n"
                                "The workloads: NAME ROLE BACKEND STATE HEALTH RESTARTS AGE.\n"
                                "-o name: their names alone, one per line (for scripts and completion).\n";
    const char *fmt = "table";
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': fmt = optarg; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "yaml") && strcmp(fmt, "name")) {
        fprintf(stderr, "duet: unknown output format \"%s\"; use table, json, yaml or name\n%s", fmt, usage);
        return EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *name = optind < argc ? argv[optind] : NULL;
    if (name && !manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    char path[128];
    snprintf(path, sizeof(path), name ? "/v1/workloads/%s" : "/v1/workloads", name);
    int rc = 0;
    if (strcmp(fmt, "json") == 0)
        return print_answer_json(path, &rc) < 0 ? rc : 0;
    json_t *j = call_json("GET", path, NULL, &rc);
    if (!j)
        return rc;
    warn_degraded(j);
    if (strcmp(fmt, "yaml") == 0) {
        yaml_print(stdout, j, 0, false);
    } else if (strcmp(fmt, "name") == 0) {
        /* Only what is a name: the line is fed to shells. */
        size_t i;
        json_t *w, *one = json_array();
        json_array_append(one, j);
        json_array_foreach(name ? one : json_object_get(j, "workloads"), i, w) {
            const char *n = json_string_value(json_object_get(w, "name"));
            if (n && manifest_name_valid(n, strlen(n)))
                puts(n);
        }
        json_decref(one);
    } else {
        printf("%-20s %-15s %-10s %-11s %-10s %-9s %s\n", "NAME", "ROLE", "BACKEND", "STATE", "HEALTH", "RESTARTS",
               "AGE");
        if (name) {
            row(j);
        } else {
            size_t i;
            json_t *w;
            json_array_foreach(json_object_get(j, "workloads"), i, w) row(w);
        }
    }
    json_decref(j);
    return 0;
}

static void time_of(char *buf, size_t len, json_t *ms)
{
    if (!json_is_integer(ms)) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(json_integer_value(ms) / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* A string of an image's author: control characters (a terminal's
 * escape sequences) shown as '?'. */
static void put_clean(const char *s)
{
    for (; s && *s; s++)
        putchar(duet_char_shown(*s));
}

static int cmd_describe(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'}, {0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'S': sock = optarg; break;
        case 'h': puts("usage: duet describe NAME\n\nSpec, placement and its reasons, state, health, restarts, last exit, recent events."); return 0;
        default: return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: duet describe NAME\n");
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/workloads/%s", name);
    int rc = 0;
    json_t *j = call_json("GET", path, NULL, &rc);
    if (!j)
        return rc;
    warn_degraded(j);
    char t[64];
    printf("Name:        %s\n", str(j, "name"));
    printf("Role:        %s\n", str(j, "role"));
    printf("Backend:     %s\n", str(j, "backend"));
    json_t *pl = json_object_get(j, "placement");
    size_t i;
    json_t *v;
    printf("Placement:\n");
    json_array_foreach(json_object_get(pl, "reasons"), i, v) printf("  - %s\n", json_string_value(v));
    const char *k;
    json_object_foreach(json_object_get(pl, "ruled_out"), k, v) printf("  ruled out %s: %s\n", k, json_string_value(v));
    printf("State:       %s%s\n", str(j, "state"), json_is_true(json_object_get(j, "ready")) ? " (ready)" : "");
    printf("Health:      %s", str(j, "health"));
    if (json_is_string(json_object_get(j, "health_message")))
        printf(" (%s)", str(j, "health_message"));
    printf("\n");
    printf("Restarts:    %lld (policy %s)%s\n", (long long)json_integer_value(json_object_get(j, "restarts")),
           str(j, "restart_policy"), json_is_true(json_object_get(j, "crashloop")) ? ", crash loop" : "");
    printf("Generation:  %lld\n", (long long)json_integer_value(json_object_get(j, "generation")));
    time_of(t, sizeof(t), json_object_get(j, "started_at"));
    printf("Started:     %s\n", t);
    json_t *le = json_object_get(j, "last_exit");
    if (json_is_object(le)) {
        time_of(t, sizeof(t), json_object_get(j, "exited_at"));
        long long sig = json_integer_value(json_object_get(le, "signal"));
        if (sig)
            printf("Last exit:   killed by signal %lld at %s\n", sig, t);
        else
            printf("Last exit:   status %lld at %s\n", (long long)json_integer_value(json_object_get(le, "code")), t);
    }
    if (json_is_string(json_object_get(j, "message")))
        printf("Message:     %s\n", str(j, "message"));
    if (json_is_string(json_object_get(j, "warning")))
        printf("Warning:     hostAccess: %s\n", str(j, "warning"));
    json_t *disk = json_object_get(j, "disk");
    if (json_is_object(disk)) {
        char shown[1024];
        snprintf(shown, sizeof(shown), "%s", str(disk, "source"));
        duet_text_mask(shown);
        printf("Disk:        kept until the workload is deleted, made from %s%s\n", shown,
               json_is_true(json_object_get(disk, "reset")) ? " (reset before the next start: apply --recreate)"
                                                            : "");
    }
    json_t *vols = json_object_get(j, "volumes");
    json_array_foreach(vols, i, v) {
        char src[1024], dst[1024];
        if (json_is_string(json_object_get(v, "name")) && json_is_integer(json_object_get(v, "size"))) {
            char sz[32];
            size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(v, "size")));
            snprintf(src, sizeof(src), "volume %s (%s)", str(v, "name"), sz);
        } else if (json_is_string(json_object_get(v, "name")))
            snprintf(src, sizeof(src), "volume %s", str(v, "name"));
        else
            snprintf(src, sizeof(src), "%s", str(v, "source"));
        snprintf(dst, sizeof(dst), "%s", str(v, "target"));
        duet_text_mask(src);
        duet_text_mask(dst);
        printf("%s %s -> %s%s", i ? "            " : "Volumes:    ", src, dst,
               json_is_true(json_object_get(v, "read_only")) ? " (read-only)" : "");
        if (json_is_string(json_object_get(v, "tag")))
            printf(", virtiofs tag %s", str(v, "tag"));
        printf("\n");
    }
    /* Secrets by where they come from; their values are never here. */
    json_t *spec = json_object_get(j, "spec"), *sp = json_object_get(spec, "spec");
    bool first = true;
    const char *key;
    json_object_foreach(json_object_get(sp, "env"), key, v) {
        if (!json_is_object(v))
            continue;
        char from[1100];
        snprintf(from, sizeof(from), "%s", json_is_string(json_object_get(v, "secret")) ? str(v, "secret")
                                                                                       : str(v, "secretFile"));
        duet_text_mask(from);
        printf("%s env %s = (secret %s%s)\n", first ? "Secrets:    " : "            ", key,
               json_is_string(json_object_get(v, "secret")) ? "" : "from ", from);
        first = false;
    }
    json_array_foreach(json_object_get(sp, "secrets"), i, v) {
        char from[1100];
        snprintf(from, sizeof(from), "%s", json_is_string(json_object_get(v, "file")) ? str(v, "file") : str(v, "name"));
        duet_text_mask(from);
        printf("%s file " WL_SECRETS_DIR "/%s = (secret %s%s)\n", first ? "Secrets:    " : "            ",
               str(v, "name"), json_is_string(json_object_get(v, "file")) ? "from " : "", from);
        first = false;
    }
    if (json_is_string(json_object_get(j, "address")))
        printf("Address:     %s (reached by name as %s)\n", str(j, "address"), str(j, "name"));
    else
        printf("Address:     none (network: %s)\n", str(j, "network"));
    json_t *ports = json_object_get(j, "ports");
    if (json_array_size(ports)) {
        printf("Ports:      ");
        json_array_foreach(ports, i, v) printf(" %lld->%lld/%s%s", (long long)json_integer_value(json_object_get(v, "host")),
                                               (long long)json_integer_value(json_object_get(v, "port")), str(v, "protocol"),
                                               json_is_true(json_object_get(v, "published")) ? "" : " (not published)");
        printf("\n");
    }
    json_t *img = json_object_get(j, "image");
    if (json_is_object(img)) {
        const char *id = json_string_value(json_object_get(img, "id"));
        printf("Image:       %s (%s)\n", str(img, "ref"), id ? id : "not in the store yet");
        json_t *cmd = json_object_get(img, "command");
        if (json_array_size(cmd)) {
            printf("  runs:     ");
            json_array_foreach(cmd, i, v) {
                putchar(' ');
                put_clean(json_string_value(v));
            }
            printf("\n");
        }
        json_t *exp = json_object_get(img, "exposed_ports");
        if (json_array_size(exp)) {
            printf("  exposes:  ");
            json_array_foreach(exp, i, v) {
                putchar(' ');
                put_clean(json_string_value(v));
            }
            printf(" (published only by ports)\n");
        }
        if (json_is_string(json_object_get(img, "stop_signal"))) {
            printf("  stops with: ");
            put_clean(str(img, "stop_signal"));
            printf("\n");
        }
    }
    json_t *inst = json_object_get(j, "instance");
    if (json_is_object(inst)) {
        printf("Instance:    %s, generation %lld, handle %s%s\n", str(inst, "backend"),
               (long long)json_integer_value(json_object_get(inst, "generation")), str(inst, "handle"),
               json_is_true(json_object_get(inst, "running")) ? ", running" : "");
        json_t *st = json_object_get(inst, "stats");
        if (st) {
            printf("Usage:       memory %.1f MiB of %.1f MiB, disk %.1f MiB of %.1f MiB, cpu %.2f s, %lld %s\n",
                   (double)json_integer_value(json_object_get(st, "memory_bytes")) / 1048576.0,
                   (double)json_integer_value(json_object_get(st, "memory_limit")) / 1048576.0,
                   (double)json_integer_value(json_object_get(st, "disk_bytes")) / 1048576.0,
                   (double)json_integer_value(json_object_get(st, "disk_limit")) / 1048576.0,
                   (double)json_integer_value(json_object_get(st, "cpu_ns")) / 1e9,
                   (long long)json_integer_value(json_object_get(st, "pids")),
                   strcmp(str(inst, "backend"), "vm") == 0 ? "vCPUs" : "processes");
            /* The workload's own view (a VM's guest reports it through
             * its balloon driver): null when it does not. */
            json_t *mr = json_object_get(st, "memory_resident_bytes"), *mc = json_object_get(st, "memory_cache_bytes");
            if (json_is_integer(mr))
                printf("Memory:      %.1f MiB in use, %.1f MiB page cache (the workload's own view)\n",
                       (double)json_integer_value(mr) / 1048576.0, (double)json_integer_value(mc) / 1048576.0);
            /* null: not counted on this host or not on the network */
            json_t *br = json_object_get(st, "blk_read_bytes"), *bw = json_object_get(st, "blk_write_bytes");
            json_t *nr = json_object_get(st, "net_rx_bytes"), *nt = json_object_get(st, "net_tx_bytes");
            if (json_is_integer(br) || json_is_integer(nr)) {
                printf("I/O:        ");
                if (json_is_integer(br))
                    printf(" disk %.1f MiB read, %.1f MiB written%s", (double)json_integer_value(br) / 1048576.0,
                           (double)json_integer_value(bw) / 1048576.0, json_is_integer(nr) ? ";" : "");
                if (json_is_integer(nr))
                    printf(" network %.1f MiB received, %.1f MiB sent", (double)json_integer_value(nr) / 1048576.0,
                           (double)json_integer_value(nt) / 1048576.0);
                printf("\n");
            }
        }
    }
    printf("Spec:\n");
    yaml_print(stdout, json_object_get(j, "spec"), 2, false);
    printf("Events:\n");
    json_array_foreach(json_object_get(j, "events"), i, v) {
        time_of(t, sizeof(t), json_object_get(v, "time"));
        printf("  %s  %-10s %s\n", t, str(v, "type"), str(v, "message"));
    }
    json_decref(j);
    return 0;
}

/* ---- logs / events ---------------------------------------------------------------------- */

static int to_stdout(void *opaque, const char *data, size_t len)
{
    (void)opaque;
    if (fwrite(data, 1, len, stdout) != len)
        return 1;
    fflush(stdout);
    return 0;
}

static int stream(const char *path, client_body_fn fn, void *opaque)
{
    struct duet_err err = {0};
    struct client_buf e = {0};
    int status = client_call(sock, "GET", path, NULL, 0, fn, opaque, &e, 0, &err);
    int rc = 0;
    if (status < 0)
        rc = cli_unreachable(&err);
    else if (status >= 300)
        rc = cli_refused(e.data);
    free(e.data);
    return rc;
}

static int cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"tail", required_argument, NULL, 'n'},
                                         {"previous", no_argument, NULL, 'p'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] = "usage: duet logs [-f | -p] [--tail N] NAME\n\n"
                                "A container's stdout and stderr, a VM's serial console.\n"
                                "  -f, --follow     keep printing as it grows, until the instance ends\n"
                                "  -p, --previous   the output of the instance before this one (the last\n"
                                "                   that ended and was replaced: a restart, a new spec)\n"
                                "      --tail N     only the last N lines\n";
    bool follow = false, previous = false;
    const char *tail = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "fpn:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': follow = true; break;
        case 'p': previous = true; break;
        case 'n': tail = optarg; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (follow && previous) {
        fputs("duet: --previous shows an instance that has ended: there is nothing to follow; drop -f\n", stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    char path[192];
    if (tail)
        snprintf(path, sizeof(path), "/v1/workloads/%s/logs?follow=%d&previous=%d&tail=%ld", name, follow ? 1 : 0,
                 previous ? 1 : 0, strtol(tail, NULL, 10));
    else
        snprintf(path, sizeof(path), "/v1/workloads/%s/logs?follow=%d&previous=%d", name, follow ? 1 : 0,
                 previous ? 1 : 0);
    return stream(path, to_stdout, NULL);
}

struct ev_print {
    bool json;
    char line[65536];
    size_t len;
};

static int print_events(void *opaque, const char *data, size_t len)
{
    struct ev_print *p = opaque;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (p->len + 1 < sizeof(p->line))
                p->line[p->len++] = data[i];
            continue;
        }
        p->line[p->len] = '\0';
        p->len = 0;
        if (p->json) {
            printf("%s\n", p->line);
        } else {
            json_t *e = json_loads(p->line, 0, NULL);
            if (!e)
                continue;
            char t[64];
            time_of(t, sizeof(t), json_object_get(e, "time"));
            const char *w = json_string_value(json_object_get(e, "workload"));
            printf("%s  %-20s %-10s %s\n", t, w ? w : "-", str(e, "type"), str(e, "message"));
            json_decref(e);
        }
        fflush(stdout);
    }
    return 0;
}

static int cmd_events(int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"workload", required_argument, NULL, 'w'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] = "usage: duet events [-f] [--workload NAME] [-o json]\n\n"
                                "What duetd did and saw: applies, starts, exits, restarts, health changes.\n";
    bool follow = false;
    const char *wl = NULL;
    static struct ev_print p;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "fw:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': follow = true; break;
        case 'w': wl = optarg; break;
        case 'o': p.json = strcmp(optarg, "json") == 0; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc || (wl && !manifest_name_valid(wl, strlen(wl)))) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    char path[192];
    snprintf(path, sizeof(path), "/v1/events?follow=%d%s%s", follow ? 1 : 0, wl ? "&workload=" : "", wl ? wl : "");
    return stream(path, print_events, &p);
}

/* ---- exec ------------------------------------------------------------------------------- */

static int cmd_exec(int argc, char **argv)
{
    static const char usage[] =
        "usage: duet exec [-i] [-t] [--timeout DURATION] NAME -- CMD [ARG...]\n\n"
        "Run a command in a running workload (a container, or a VM booted from a rootfs image) as its\n"
        "user, with its environment; exits with its status.  --timeout kills it and all it started then\n"
        "(exit 137).\n"
        "  -i, --interactive  pass standard input to the command (echo hi | duet exec -i NAME -- cat)\n"
        "  -t, --tty          run it on a terminal of the workload's own (with -i: a shell, psql, top)\n";
    int i = 1;
    const char *timeout = NULL;
    bool interactive = false, tty = false;
    /* Options come before NAME: what follows belongs to the command. */
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0' && strcmp(argv[i], "--") != 0 &&
           strcmp(argv[i], "-h") != 0 && strcmp(argv[i], "--help") != 0;
         i++) {
        if (strcmp(argv[i], "--interactive") == 0 || strcmp(argv[i], "--tty") == 0) {
            *(argv[i][2] == 'i' ? &interactive : &tty) = true;
            continue;
        }
        if (argv[i][1] != '-') {
            /* -i, -t, -it, -ti */
            for (const char *f = argv[i] + 1; *f; f++) {
                if (*f == 'i')
                    interactive = true;
                else if (*f == 't')
                    tty = true;
                else {
                    fprintf(stderr, "duet: exec: unknown option -%c\n%s", *f, usage);
                    return EXIT_USAGE;
                }
            }
            continue;
        }
        if (strncmp(argv[i], "--socket", 8) != 0 && strncmp(argv[i], "--timeout", 9) != 0) {
            fprintf(stderr, "duet: exec: unknown option %s\n%s", argv[i], usage);
            return EXIT_USAGE;
        }
        bool is_sock = argv[i][2] == 's';
        size_t klen = is_sock ? 8 : 9;
        const char *v = NULL;
        if (argv[i][klen] == '=')
            v = argv[i] + klen + 1;
        else if (argv[i][klen] == '\0' && i + 1 < argc)
            v = argv[++i];
        if (!v) {
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
        if (is_sock)
            sock = v;
        else
            timeout = v;
    }
    uint64_t timeout_ms = 0;
    const char *why = NULL;
    if (timeout && !units_duration_parse(timeout, &timeout_ms, &why)) {
        fprintf(stderr, "duet: --timeout %s is not a duration such as 30s or 2m%s%s\n", timeout, why ? ": " : "",
                why ? why : "");
        return EXIT_USAGE;
    }
    if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc - i < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[i++];
    if (strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (!manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    json_t *cmd = json_array();
    for (; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_t *req = json_object();
    json_object_set_new(req, "command", cmd);
    if (timeout)
        json_object_set_new(req, "timeout", json_string(timeout));
    if (interactive || tty) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/workloads/%s/exec", name);
        int rc = cli_exec_interactive(sock, path, req, interactive, tty, 126);
        json_decref(req);
        return rc;
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char path[128];
    snprintf(path, sizeof(path), "/v1/workloads/%s/exec", name);
    int rc = 0;
    json_t *j = call_json("POST", path, body, &rc);
    free(body);
    if (!j)
        return rc;
    /* Output is text, and text may hold a NUL: written whole. */
    json_t *o = json_object_get(j, "stdout"), *e = json_object_get(j, "stderr");
    fwrite(json_string_value(o) ? json_string_value(o) : "", 1, json_string_length(o), stdout);
    fwrite(json_string_value(e) ? json_string_value(e) : "", 1, json_string_length(e), stderr);
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(j, "truncated"), k, v)
        fprintf(stderr, "duet: the command's %s was cut at 4 MiB (writing more failed inside the workload)\n",
                json_string_value(v));
    if (json_is_string(json_object_get(j, "error")))
        fprintf(stderr, "duet: %s\n", str(j, "error"));
    json_int_t code = json_integer_value(json_object_get(j, "exit_code"));
    json_decref(j);
    return code < 0 ? 126 : (int)code;
}

/* ---- stop, start, restart ------------------------------------------------------------------ */

/* duet stop|start|restart NAME... [--wait]: asked of duetd, which writes
 * it and does it; --wait returns once each is there (stopped, or running). */
static int cmd_action(const char *verb, int argc, char **argv)
{
    static const struct option opts[] = {{"wait", no_argument, NULL, 'w'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    char usage[600];
    snprintf(usage, sizeof(usage),
             "usage: duet %s NAME... [--wait]\n\n%s\n"
             "  --wait      return once %s\n",
             verb,
             strcmp(verb, "stop") == 0
                 ? "Stop workloads and keep them stopped (across duetd restarts) until duet start:\n"
                   "their spec, address, disk and volumes stay; an apply does not start them."
             : strcmp(verb, "start") == 0
                 ? "Start stopped workloads again (or one that completed or failed and is not restarted)."
                 : "Replace each workload's instance with a fresh one, whatever its restart policy\n"
                   "(a stopped one is started); the back-off and crash loop are forgotten.",
             strcmp(verb, "stop") == 0 ? "they are stopped" : "they run again");
    bool wait = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w': wait = true; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        const char *name = argv[i];
        if (!manifest_name_valid(name, strlen(name))) {
            fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
            rc = EXIT_REFUSED;
            continue;
        }
        char path[128];
        snprintf(path, sizeof(path), "/v1/workloads/%s/%s", name, verb);
        int r = 0;
        json_t *j = call_json("POST", path, "{}", &r);
        if (!j) {
            if (r == EXIT_UNREACHABLE)
                return r;
            rc = r;
            continue;
        }
        json_decref(j);
        /* For a restart, the instance it replaces: waiting means a new one. */
        if (wait) {
            bool stop = strcmp(verb, "stop") == 0;
            for (;;) {
                int gr = 0;
                char wp[128];
                snprintf(wp, sizeof(wp), "/v1/workloads/%s", name);
                json_t *w = call_json("GET", wp, NULL, &gr);
                if (!w)
                    return gr ? gr : EXIT_REFUSED;
                const char *state = str(w, "state");
                bool there = stop ? strcmp(state, "stopped") == 0
                                  : strcmp(state, "running") == 0 || strcmp(state, "completed") == 0 ||
                                        strcmp(state, "failed") == 0 || strcmp(state, "crashloop") == 0;
                bool fresh = stop || !json_is_true(json_object_get(w, "restart_pending"));
                json_decref(w);
                if (there && fresh)
                    break;
                usleep(100000);
            }
        }
        printf("%s %s\n", name, strcmp(verb, "stop") == 0 ? "stopped" : strcmp(verb, "start") == 0 ? "started" : "restarted");
    }
    return rc;
}

static int cmd_stop(int argc, char **argv)
{
    return cmd_action("stop", argc, argv);
}

static int cmd_start(int argc, char **argv)
{
    return cmd_action("start", argc, argv);
}

static int cmd_restart(int argc, char **argv)
{
    return cmd_action("restart", argc, argv);
}

/* ---- dashboard ------------------------------------------------------------------------------ */

static int cmd_dashboard(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] = "usage: duet dashboard [-o json]\n\n"
                                "The web dashboard's address with its login token (duetd --web; docs/dashboard.md).\n"
                                "Open it in a browser: the token is kept as a cookie.  Anyone with the token\n"
                                "can see the fleet (and with duetd --web-write, stop, restart and delete).\n";
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "duet dashboard: -o %s: only json\n", optarg);
                return EXIT_USAGE;
            }
            json = true;
            break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    int rc = 0;
    json_t *j = call_json("GET", "/v1/dashboard", NULL, &rc);
    if (!j)
        return rc;
    if (doc_printed(j, json ? "json" : NULL))
        return 0;
    printf("%s\n", str(j, "login_url"));
    fprintf(stderr, "duet: the dashboard is %s%s\n", json_is_true(json_object_get(j, "write")) ? "read-write" : "read-only",
            json_is_true(json_object_get(j, "tls")) ? ", over TLS" : "");
    json_decref(j);
    return 0;
}

/* ---- delete ------------------------------------------------------------------------------- */

static int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"wait", no_argument, NULL, 'w'},
                                         {"volumes", no_argument, NULL, 'V'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] = "usage: duet delete NAME... | -f FILE|DIR [--wait] [--volumes]\n\n"
                                "Stop and remove workloads (the files name them with -f).\n"
                                "  --wait      return once they are gone from the host\n"
                                "  --volumes   remove their named volumes too (those no other workload names);\n"
                                "              without it a named volume outlives its workloads\n";
    struct manifest_set *set = manifest_set_new();
    bool from_files = false, wait = false, volumes = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': manifest_set_load_path(set, optarg); from_files = true; break;
        case 'w': wait = true; break;
        case 'V': volumes = true; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); manifest_set_free(set); return 0;
        default: fputs(usage, stderr); manifest_set_free(set); return EXIT_USAGE;
        }
    }
    json_t *names = json_array();
    if (from_files) {
        if (!manifest_set_ok(set)) {
            diag_print(&set->diags, stderr);
            manifest_set_free(set);
            json_decref(names);
            return EXIT_REFUSED;
        }
        for (size_t i = 0; i < set->n_workloads; i++)
            json_array_append_new(names, json_string(set->workloads[i]->name));
    }
    manifest_set_free(set);
    for (int i = optind; i < argc; i++)
        json_array_append_new(names, json_string(argv[i]));
    if (json_array_size(names) == 0) {
        fputs(usage, stderr);
        json_decref(names);
        return EXIT_USAGE;
    }
    int rc = 0;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) {
        const char *name = json_string_value(n);
        if (!manifest_name_valid(name, strlen(name))) {
            fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
            rc = EXIT_REFUSED;
            continue;
        }
        char path[128];
        snprintf(path, sizeof(path), "/v1/workloads/%s%s", name, volumes ? "?volumes=1" : "");
        int r = 0;
        json_t *j = call_json("DELETE", path, NULL, &r);
        if (!j) {
            if (r == EXIT_UNREACHABLE) {
                json_decref(names);
                return r;
            }
            rc = r;
            continue;
        }
        printf("%s deleted\n", name);
        json_decref(j);
    }
    if (wait) {
        /* One look at the whole list per round, not one request per name:
         * deleting 500 asked duetd 500 times every 100 ms while it worked. */
        json_t *want = json_object();
        json_array_foreach(names, i, n) json_object_set(want, json_string_value(n), json_true());
        for (;;) {
            int r = 0;
            json_t *j = call_json("GET", "/v1/workloads", NULL, &r);
            if (!j) {
                json_decref(want);
                json_decref(names);
                return r;
            }
            bool left = false;
            size_t k;
            json_t *w;
            json_array_foreach(json_object_get(j, "workloads"), k, w) {
                if (json_object_get(want, str(w, "name"))) {
                    left = true;
                    break;
                }
            }
            json_decref(j);
            if (!left)
                break;
            usleep(100000);
        }
        json_decref(want);
    }
    json_decref(names);
    return rc;
}

/* ---- image ------------------------------------------------------------------------------- */

/* A reference as duetd wants it: a layout's or archive's path made
 * absolute from here (duetd has its own working directory). */
static int image_ref_absolute(const char *in, char *out, size_t len)
{
    struct image_ref r;
    struct duet_err err = {0};
    if (image_ref_parse(in, &r, &err) < 0) {
        fprintf(stderr, "duet: %s\n", err.msg);
        return -1;
    }
    if (r.kind != IMAGE_REF_REGISTRY) {
        char abs[PATH_MAX];
        if (!realpath(r.path, abs)) {
            fprintf(stderr, "duet: image %s: cannot find %s: %s\n", in, r.path, strerror(errno));
            return -1;
        }
        snprintf(r.path, sizeof(r.path), "%s", abs);
    }
    image_ref_format(&r, out, len);
    return 0;
}

/* A pull's answer, a JSON line at a time (docs/api.md): progress drawn as
 * a bar when stdout is a terminal, the last line kept. */
struct pull_view {
    bool tty, drawn;
    json_t *last;
    uint64_t t0;
};

static void pull_bar(struct pull_view *v, json_t *p)
{
    double done = (double)json_integer_value(json_object_get(p, "bytes_done")),
           total = (double)json_integer_value(json_object_get(p, "bytes_total"));
    json_int_t ld = json_integer_value(json_object_get(p, "layers_done")),
               lt = json_integer_value(json_object_get(p, "layers_total"));
    if (!v->tty || lt == 0)
        return;
    int width = 30, fill = total > 0 ? (int)(width * done / total) : 0;
    char bar[64], a[32], b[32], rate[48] = "";
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = '\0';
    size_text(a, sizeof(a), done);
    size_text(b, sizeof(b), total);
    double s = (double)(clock_mono_ms() - v->t0) / 1000.0;
    if (s >= 0.5) {
        char r[32];
        size_text(r, sizeof(r), done / s);
        snprintf(rate, sizeof(rate), "  %s/s", r);
    }
    printf("\r[%s] layer %lld/%lld  %s / %s%s\033[K", bar, (long long)(ld < lt ? ld + 1 : lt), (long long)lt, a, b,
           rate);
    fflush(stdout);
    v->drawn = true;
}

static void pull_line(void *opaque, json_t *j)
{
    struct pull_view *v = opaque;
    json_t *p = json_object_get(j, "progress");
    if (p) {
        pull_bar(v, p);
        json_decref(j);
    } else if (j) {
        json_decref(v->last);
        v->last = j;
    }
}

/* POST /v1/images/pull?progress=1: the stream also keeps a long pull from
 * looking like a daemon that stopped answering. */
static json_t *pull_streamed(const char *body, int *rc)
{
    struct pull_view v = {.tty = isatty(STDOUT_FILENO), .t0 = clock_mono_ms()};
    struct client_lines lines = {.fn = pull_line, .opaque = &v};
    struct client_buf eb = {0};
    struct duet_err err = {0};
    int status = client_call(sock, "POST", "/v1/images/pull?progress=1", body, strlen(body), client_lines_feed,
                             &lines, &eb, CLIENT_TIMEOUT_MS, &err);
    if (v.drawn) {
        printf("\r\033[K");
        fflush(stdout);
    }
    if (status < 0) {
        json_decref(v.last);
        free(eb.data);
        *rc = cli_unreachable(&err);
        return NULL;
    }
    if (status >= 300) {
        json_decref(v.last);
        *rc = cli_refused(eb.data);
        free(eb.data);
        return NULL;
    }
    free(eb.data);
    json_t *img = json_incref(json_object_get(v.last, "image"));
    if (!img) {
        const char *e = json_string_value(json_object_get(v.last, "error"));
        fprintf(stderr, "duet: %s\n", e ? e : "the pull ended without an answer");
        *rc = EXIT_REFUSED;
    }
    json_decref(v.last);
    return img;
}

/* ?ref=..., URL-encoded ('/', ':' and '@' kept: they are plain in a query). */
static void ref_query(const char *path, const char *ref, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%s?ref=", path);
    if (o < len)
        duet_url_escape(ref, "/:@", out + o, len - o);
}

/* A sub-command and how many arguments it takes. */
struct subcommand {
    const char *name;
    int min, max;
};

/* The options `image`, `volume` and `snapshot` share (-o json|yaml,
 * --socket), then SUB, one of subs, and its arguments into args[0..1]
 * (NULL where not given).  0 with *sub set; else the exit status to
 * return (usage printed; -1 for --help, which is a success). */
static int subcommand_args(int argc, char **argv, const char *usage, const struct subcommand *subs,
                           const char **sub, const char **args, const char **output)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    *output = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': *output = optarg; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return -1;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (*output && strcmp(*output, "json") != 0 && strcmp(*output, "yaml") != 0) {
        fprintf(stderr, "duet: -o takes json or yaml\n");
        return EXIT_USAGE;
    }
    *sub = optind < argc ? argv[optind] : NULL;
    int n = argc - optind - 1;
    args[0] = n > 0 ? argv[optind + 1] : NULL;
    args[1] = n > 1 ? argv[optind + 2] : NULL;
    for (size_t i = 0; *sub && subs[i].name; i++)
        if (!strcmp(*sub, subs[i].name) && n >= subs[i].min && n <= subs[i].max)
            return 0;
    fputs(usage, stderr);
    return EXIT_USAGE;
}

static int cmd_image(int argc, char **argv)
{
    static const char usage[] =
        "usage: duet image ls [-o json|yaml]\n"
        "       duet image pull REF [-o json|yaml]\n"
        "       duet image inspect REF|ID [-o json|yaml]\n"
        "       duet image rm REF|ID [-o json|yaml]\n"
        "       duet image prune [-o json|yaml]\n\n"
        "The images in duetd's store.  REF is oci-layout:DIR[:TAG] (an OCI image\n"
        "layout, as skopeo and umoci write) or docker-archive:FILE (docker save);\n"
        "an image is pulled by apply when a workload needs it, or ahead with pull.\n"
        "rm refuses an image a workload uses; prune removes every one none uses.\n";
    static const struct subcommand subs[] = {{"ls", 0, 0},      {"pull", 1, 1}, {"inspect", 1, 1},
                                             {"rm", 1, 1},      {"prune", 0, 0}, {0}};
    const char *sub, *args[2], *output;
    int pr = subcommand_args(argc, argv, usage, subs, &sub, args, &output);
    if (pr)
        return pr < 0 ? 0 : pr;
    const char *arg = args[0];
    int rc = 0;
    char path[IMAGE_REF_MAX * 3 + 64];
    json_t *j = NULL;
    if (!strcmp(sub, "ls")) {
        j = call_json("GET", "/v1/images", NULL, &rc);
        if (!j)
            return rc;
        if (doc_printed(j, output))
            return 0;
        printf("%-48s %-12s %6s %10s %8s %9s\n", "REFERENCE", "ID", "LAYERS", "SIZE", "CREATED", "WORKLOADS");
        size_t i;
        json_t *img;
        json_array_foreach(json_object_get(j, "images"), i, img) {
            char sz[32], created[32];
            size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(img, "size")));
            age(created, sizeof(created), json_object_get(img, "created"));
            json_t *refs = json_object_get(img, "refs");
            const char *ref = json_array_size(refs) ? json_string_value(json_array_get(refs, 0)) : "<none>";
            printf("%-48s %-12.12s %6zu %10s %8s %9lld\n", ref, str(img, "id") + 7,
                   json_array_size(json_object_get(img, "layers")), sz, created,
                   (long long)json_integer_value(json_object_get(img, "workloads")));
            for (size_t k = 1; k < json_array_size(refs); k++)
                printf("  %s\n", json_string_value(json_array_get(refs, k)));
        }
    } else if (!strcmp(sub, "pull")) {
        char ref[IMAGE_REF_MAX + PATH_MAX];
        if (image_ref_absolute(arg, ref, sizeof(ref)) < 0)
            return EXIT_REFUSED;
        json_t *b = json_pack("{s:s}", "ref", ref);
        char *body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        j = pull_streamed(body, &rc);
        free(body);
        if (!j)
            return rc;
        if (doc_printed(j, output))
            return 0;
        char sz[32];
        size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(j, "size")));
        printf("%s: %s, %zu layer%s, %s\n", ref, str(j, "id"), json_array_size(json_object_get(j, "layers")),
               json_array_size(json_object_get(j, "layers")) == 1 ? "" : "s", sz);
    } else if (!strcmp(sub, "inspect") || !strcmp(sub, "rm")) {
        char ref[IMAGE_REF_MAX + PATH_MAX];
        /* an id, or a reference whose path is made absolute */
        if (strncmp(arg, "oci-layout:", 11) == 0 || strncmp(arg, "docker-archive:", 15) == 0) {
            if (image_ref_absolute(arg, ref, sizeof(ref)) < 0)
                return EXIT_REFUSED;
        } else {
            snprintf(ref, sizeof(ref), "%s", arg);
        }
        ref_query(!strcmp(sub, "rm") ? "/v1/images" : "/v1/images/inspect", ref, path, sizeof(path));
        j = call_json(!strcmp(sub, "rm") ? "DELETE" : "GET", path, NULL, &rc);
        if (!j)
            return rc;
        if (!strcmp(sub, "rm") && !output)
            printf("removed %s\n", str(j, "removed"));
        else
            print_doc(j, output ? output : "yaml");
    } else if (!strcmp(sub, "prune")) {
        j = call_json("POST", "/v1/images/prune", "{}", &rc);
        if (!j)
            return rc;
        if (doc_printed(j, output))
            return 0;
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(j, "removed"), i, id)
            printf("removed %s\n", json_string_value(id));
        if (json_array_size(json_object_get(j, "removed")) == 0)
            printf("no image is unused\n");
    } else {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    json_decref(j);
    return 0;
}

/* ---- run --------------------------------------------------------------------------------- */

/* duet run's docker-like options, each into the spec's own field (the
 * daemon's schema then checks the values as it checks a manifest's).
 * NULL, or a malloc'd message that names the option and the fix. */
static char *run_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run_msg(const char *fmt, ...)
{
    char *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    return m;
}

/* KEY=VALUE, or KEY alone for the value it has here (left out when unset,
 * as docker does). */
static char *run_env_arg(json_t *env, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (klen == 0 || klen > 255)
        return run_msg("-e %.40s: give KEY=VALUE (or KEY for the value it has here)", arg);
    char key[256];
    memcpy(key, arg, klen);
    key[klen] = '\0';
    const char *value = eq ? eq + 1 : getenv(key);
    if (value)
        json_object_set_new(env, key, json_string(value));
    return NULL;
}

#define RUN_ENV_FILE_MAX (1u << 20)

static char *run_env_file(json_t *env, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return run_msg("--env-file %s: %s", path, strerror(errno));
    char *line = NULL, *err = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    unsigned no = 0;
    while (!err && (n = getline(&line, &cap, f)) >= 0) {
        no++;
        total += (size_t)n;
        if (total > RUN_ENV_FILE_MAX) {
            err = run_msg("--env-file %s is larger than 1 MiB", path);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strlen(p) != (size_t)(n - (p - line)))
            err = run_msg("%s:%u: a NUL byte in the line", path, no);
        else if (strcspn(p, "=") == 0 || strcspn(p, " \t") < strcspn(p, "="))
            err = run_msg("%s:%u: not KEY=VALUE (a key has no blanks)", path, no);
        else {
            char *m = run_env_arg(env, p);
            if (m) {
                err = run_msg("%s:%u: %s", path, no, m);
                free(m);
            }
        }
    }
    free(line);
    fclose(f);
    return err;
}

/* SOURCE:TARGET[:ro|:rw]: SOURCE with a '/' (or . ..) is a host path, made
 * absolute here; otherwise the name of a named volume. */
static char *run_volume_arg(json_t *vols, const char *arg)
{
    char *copy = strdup(arg), *save = NULL;
    char *src = strtok_r(copy, ":", &save), *dst = strtok_r(NULL, ":", &save), *mode = strtok_r(NULL, ":", &save);
    char *extra = strtok_r(NULL, ":", &save);
    char *err = NULL;
    if (!src || !dst || extra || (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0))
        err = run_msg("-v %.80s: give SOURCE:TARGET or SOURCE:TARGET:ro (SOURCE a host directory or a volume name)",
                      arg);
    else {
        json_t *v = json_object();
        bool path = strchr(src, '/') || strcmp(src, ".") == 0 || strcmp(src, "..") == 0;
        char abs[PATH_MAX];
        if (path && !realpath(src, abs))
            err = run_msg("-v %.80s: cannot find %s: %s", arg, src, strerror(errno));
        json_object_set_new(v, path ? "source" : "name", json_string(path ? abs : src));
        json_object_set_new(v, "target", json_string(dst));
        if (mode && strcmp(mode, "ro") == 0)
            json_object_set_new(v, "readOnly", json_true());
        if (err)
            json_decref(v);
        else
            json_array_append_new(vols, v);
    }
    free(copy);
    return err;
}

/* [HOST:]PORT[/tcp|/udp] */
static char *run_publish_arg(json_t *ports, const char *arg)
{
    char buf[64];
    if (strlen(arg) >= sizeof(buf))
        return run_msg("-p %.40s...: give [HOST:]PORT[/udp]", arg);
    snprintf(buf, sizeof(buf), "%s", arg);
    char *proto = strchr(buf, '/');
    if (proto)
        *proto++ = '\0';
    char *colon = strchr(buf, ':');
    if (colon && strchr(colon + 1, ':'))
        return run_msg("-p %s: duet publishes on every address of the host; give HOST-PORT:PORT, not an address",
                       arg);
    const char *host = colon ? buf : NULL, *port = colon ? colon + 1 : buf;
    if (colon)
        *colon = '\0';
    unsigned long hp = 0, pp;
    char *end;
    pp = strtoul(port, &end, 10);
    bool ok = *port && !*end && pp >= 1 && pp <= 65535;
    if (ok && host) {
        hp = strtoul(host, &end, 10);
        ok = *host && !*end && hp >= 1 && hp <= 65535;
    }
    if (!ok || (proto && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
        return run_msg("-p %s: give [HOST:]PORT[/udp], ports from 1 to 65535", arg);
    json_t *p = json_pack("{s:I}", "port", (json_int_t)pp);
    if (host)
        json_object_set_new(p, "host", json_integer((json_int_t)hp));
    if (proto)
        json_object_set_new(p, "protocol", json_string(proto));
    json_array_append_new(ports, p);
    return NULL;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"placement", required_argument, NULL, 'L'},
                                         {"rm", no_argument, NULL, 'r'},
                                         {"rootfs", required_argument, NULL, 'R'},
                                         {"disk", required_argument, NULL, 'D'},
                                         {"image", required_argument, NULL, 'I'},
                                         {"name", required_argument, NULL, 'N'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"disk-size", required_argument, NULL, 'z'},
                                         {"cpus", required_argument, NULL, 'c'},
                                         {"network", required_argument, NULL, 'n'},
                                         {"env", required_argument, NULL, 'e'},
                                         {"env-file", required_argument, NULL, 'E'},
                                         {"volume", required_argument, NULL, 'v'},
                                         {"publish", required_argument, NULL, 'p'},
                                         {"user", required_argument, NULL, 'u'},
                                         {"workdir", required_argument, NULL, 'w'},
                                         {"interactive", no_argument, NULL, 'i'},
                                         {"tty", no_argument, NULL, 't'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] =
        "usage: duet run [--placement auto|vm|container] [--rm] [--name NAME] [--memory SIZE] [--cpus N]\n"
        "                [--disk-size SIZE] [--network fleet|none] [-e KEY[=VALUE]]... [--env-file FILE]...\n"
        "                [-v SOURCE:TARGET[:ro]]... [-p [HOST:]PORT[/udp]]... [-u USER] [-w DIR]\n"
        "                [-i] [-t] (--rootfs DIR | --disk IMAGE | --image REF) [-- CMD [ARG...]]\n\n"
        "Run one workload now and wait for it to end, like docker run: prints its\n"
        "output and exits with its status.  --rm removes it once it ends.  With\n"
        "--image (an OCI image: oci-layout:DIR[:TAG] or docker-archive:FILE), CMD\n"
        "replaces the image's Cmd and the image's Entrypoint stays, as docker run does.\n"
        "  -e, --env KEY=VALUE  an environment variable (KEY alone: its value here)\n"
        "      --env-file FILE  KEY=VALUE lines (# comments, blank lines; KEY alone: its value here)\n"
        "  -v, --volume SOURCE:TARGET[:ro]  a host directory (SOURCE with a /) or a named volume\n"
        "  -p, --publish [HOST:]PORT[/udp]  publish the workload's PORT on the host's HOST (default PORT)\n"
        "  -u, --user USER      NAME, UID, NAME:GROUP or UID:GID\n"
        "  -w, --workdir DIR    the working directory inside\n"
        "  -i, --interactive    its command reads our standard input\n"
        "  -t, --tty            its command runs on a terminal, ours relayed (needs a terminal here)\n";
    json_t *spec = json_object(), *image = json_object(), *res = json_object();
    json_t *doc = json_object(), *env = json_object(), *vols = json_array(), *ports = json_array();
    bool rm = false, in = false, tty = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+he:v:p:u:w:it", opts, NULL)) != -1) {
        char abs[PATH_MAX];
        const char *bad = NULL;
        switch (ch) {
        case 'e': bad = run_env_arg(env, optarg); break;
        case 'E': bad = run_env_file(env, optarg); break;
        case 'v': bad = run_volume_arg(vols, optarg); break;
        case 'p': bad = run_publish_arg(ports, optarg); break;
        case 'u': json_object_set_new(spec, "user", json_string(optarg)); break;
        case 'w': json_object_set_new(spec, "workingDir", json_string(optarg)); break;
        case 'L': json_object_set_new(spec, "placement", json_string(optarg)); break;
        case 'r': rm = true; break;
        case 'i': in = true; break;
        case 't': tty = true; break;
        case 'R':
        case 'D':
            if (!realpath(optarg, abs)) {
                fprintf(stderr, "duet: cannot find %s: %s\n", optarg, strerror(errno));
                json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
                return EXIT_REFUSED;
            }
            json_object_set_new(image, ch == 'R' ? "rootfs" : "disk", json_string(abs));
            break;
        case 'I': {
            char ref[IMAGE_REF_MAX + PATH_MAX];
            if (image_ref_absolute(optarg, ref, sizeof(ref)) < 0) {
                json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
                return EXIT_REFUSED;
            }
            json_object_set_new(image, "oci", json_string(ref));
            break;
        }
        case 'N': json_object_set_new(doc, "metadata", json_pack("{s:s}", "name", optarg)); break;
        case 'm': json_object_set_new(res, "memory", json_string(optarg)); break;
        case 'z': json_object_set_new(res, "disk", json_string(optarg)); break;
        case 'c': json_object_set_new(res, "cpus", json_real(strtod(optarg, NULL))); break;
        case 'n': json_object_set_new(spec, "network", json_string(optarg)); break;
        case 'S': sock = optarg; break;
        case 'h':
            fputs(usage, stdout);
            json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
            json_decref(env), json_decref(vols), json_decref(ports);
            return 0;
        default:
            fputs(usage, stderr);
            json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
            json_decref(env), json_decref(vols), json_decref(ports);
            return EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "duet: %s\n", bad);
            free((char *)bad);
            json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
            json_decref(env), json_decref(vols), json_decref(ports);
            return EXIT_USAGE;
        }
    }
    if (json_object_size(env))
        json_object_set(spec, "env", env);
    if (json_array_size(vols))
        json_object_set(spec, "volumes", vols);
    if (json_array_size(ports))
        json_object_set(spec, "ports", ports);
    json_decref(env), json_decref(vols), json_decref(ports);
    if (json_object_size(image) == 0) {
        fprintf(stderr, "duet: run needs --rootfs DIR, --disk IMAGE or --image REF\n%s", usage);
        json_decref(spec), json_decref(image), json_decref(res), json_decref(doc);
        return EXIT_USAGE;
    }
    if (optind < argc && strcmp(argv[optind], "--") == 0)
        optind++;
    if (optind < argc) {
        json_t *cmd = json_array();
        for (int i = optind; i < argc; i++)
            json_array_append_new(cmd, json_string(argv[i]));
        /* docker run IMAGE CMD: CMD replaces the image's Cmd */
        json_object_set_new(spec, json_object_get(image, "oci") ? "args" : "command", cmd);
    }
    json_object_set_new(spec, "image", image);
    json_object_set_new(spec, "restart", json_string("never"));
    if (json_object_size(res))
        json_object_set_new(spec, "resources", res);
    else
        json_decref(res);
    json_object_set_new(doc, "spec", spec);
    json_t *req = json_pack("{s:o,s:b}", "workload", doc, "rm", rm);
    if (in || tty) {
        /* 125 when it ended unseen: as when it could not start */
        int rc = cli_exec_interactive(sock, "/v1/run", req, in, tty, 125);
        json_decref(req);
        return rc;
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int rc = 0;
    json_t *j = call_json("POST", "/v1/run", body, &rc);
    free(body);
    if (!j)
        return rc;
    fputs(str(j, "output"), stdout);
    if (json_is_string(json_object_get(j, "error")))
        fprintf(stderr, "duet: %s: %s\n", str(j, "name"), str(j, "error"));
    json_int_t sig = json_integer_value(json_object_get(j, "signal"));
    json_int_t code = json_integer_value(json_object_get(j, "exit_code"));
    if ((json_is_string(json_object_get(j, "error")) && code <= 0) || code < 0 || code > 255)
        code = 125;
    json_decref(j);
    return sig ? 128 + (int)sig : (int)code;
}

/* ---- entry --------------------------------------------------------------------------------- */

/* ---- volume ------------------------------------------------------------------------------ */

static int cmd_volume(int argc, char **argv)
{
    static const char usage[] =
        "usage: duet volume ls [-o json|yaml]\n"
        "       duet volume inspect NAME [-o json|yaml]\n"
        "       duet volume rm NAME\n\n"
        "The named volumes duetd keeps (spec.volumes[].name): made when a workload first\n"
        "needs one, kept when workloads are deleted (unless delete --volumes).\n"
        "rm refuses a volume a workload names.\n";
    static const struct subcommand subs[] = {{"ls", 0, 0}, {"inspect", 1, 1}, {"rm", 1, 1}, {0}};
    const char *sub, *args[2], *output;
    int pr = subcommand_args(argc, argv, usage, subs, &sub, args, &output);
    if (pr)
        return pr < 0 ? 0 : pr;
    const char *arg = args[0];
    if (arg && !manifest_name_valid(arg, strlen(arg))) {
        fprintf(stderr, "duet: \"%s\" is not a volume name\n", arg);
        return EXIT_REFUSED;
    }
    int rc = 0;
    char path[128];
    if (!strcmp(sub, "ls")) {
        json_t *j = call_json("GET", "/v1/volumes", NULL, &rc);
        if (!j)
            return rc;
        if (doc_printed(j, output))
            return 0;
        printf("%-32s %10s %10s %8s  %s\n", "NAME", "SIZE", "USED", "CREATED", "WORKLOADS");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "volumes"), i, v) {
            char sz[32] = "-", used[32] = "-", created[32], users[512] = "";
            if (json_is_integer(json_object_get(v, "size")))
                size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(v, "size")));
            if (json_is_integer(json_object_get(v, "used")))
                size_text(used, sizeof(used), (double)json_integer_value(json_object_get(v, "used")));
            age(created, sizeof(created), json_object_get(v, "created_at"));
            size_t k, o = 0;
            json_t *u;
            json_array_foreach(json_object_get(v, "users"), k, u) if (o < sizeof(users))
                o += (size_t)snprintf(users + o, sizeof(users) - o, "%s%s%s", k ? "," : "", str(u, "workload"),
                                      json_is_true(json_object_get(u, "read_only")) ? "(ro)" : "");
            printf("%-32s %10s %10s %8s  %s\n", str(v, "name"), sz, used, created, o ? users : "-");
        }
        json_decref(j);
        return 0;
    }
    snprintf(path, sizeof(path), "/v1/volumes/%s", arg);
    json_t *j = call_json(!strcmp(sub, "rm") ? "DELETE" : "GET", path, NULL, &rc);
    if (!j)
        return rc;
    if (!strcmp(sub, "rm") && !output)
        printf("removed %s\n", str(j, "removed"));
    else
        print_doc(j, output ? output : "yaml");
    json_decref(j);
    return 0;
}

/* ---- secret ------------------------------------------------------------------------------ */

/* A secret's value from --from-file (checked as a manifest's secret file
 * is), a terminal (asked for, not echoed) or whatever stdin holds.  NULL
 * after saying why. */
static char *secret_value(const char *name, const char *file, size_t *len)
{
    struct duet_err err = {0};
    if (file) {
        char *v = wl_secret_file_read(file, len, &err);
        if (!v)
            fprintf(stderr, "duet: %s\n", err.msg);
        return v;
    }
    if (isatty(0)) {
        struct termios old, quiet;
        bool echo_off = tcgetattr(0, &old) == 0;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        if (echo_off)
            tcsetattr(0, TCSAFLUSH, &quiet);
        fprintf(stderr, "Value of secret %s (not shown): ", name);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (echo_off)
            tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n <= 0) {
            fprintf(stderr, "duet: no value given; nothing was set\n");
            free(line);
            return NULL;
        }
        *len = (size_t)n;
        return line;
    }
    char *v = duet_read_fd(0, WL_MAX_SECRET, len, "stdin", &err);
    if (!v)
        fprintf(stderr, "duet: %s%s\n", err.msg, err.code == E2BIG ? " (a secret is at most 1 MiB)" : "");
    return v;
}

static int cmd_secret(int argc, char **argv)
{
    static const char usage[] =
        "usage: duet secret set NAME [--from-file FILE]\n"
        "       duet secret ls [-o json|yaml]\n"
        "       duet secret rm NAME\n\n"
        "Secrets duetd keeps for workloads (env {secret: NAME}, spec.secrets), 0600 in its\n"
        "state directory.  set reads the value from FILE, else asks for it on a terminal,\n"
        "else reads stdin whole; the workloads that use a changed secret are replaced.\n"
        "No command shows a value again.  rm refuses a secret a workload uses.\n";
    static const struct option opts[] = {{"from-file", required_argument, NULL, 'f'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *file = NULL, *output = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': file = optarg; break;
        case 'o': output = optarg; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (output && strcmp(output, "json") != 0 && strcmp(output, "yaml") != 0) {
        fprintf(stderr, "duet: -o takes json or yaml\n");
        return EXIT_USAGE;
    }
    const char *sub = optind < argc ? argv[optind] : "";
    int n = argc - optind - 1;
    const char *name = n == 1 ? argv[optind + 1] : NULL;
    bool ls = !strcmp(sub, "ls") && n == 0, set = !strcmp(sub, "set") && name, rm = !strcmp(sub, "rm") && name;
    if ((!ls && !set && !rm) || (file && !set)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (name && !wl_secret_name_valid(name, strlen(name))) {
        fprintf(stderr,
                "duet: \"%s\" is not a secret's name: use 1 to 63 letters, digits, '.', '_' and '-', starting with "
                "a letter or digit\n",
                name);
        return EXIT_REFUSED;
    }
    int rc = 0;
    if (ls) {
        json_t *j = call_json("GET", "/v1/secrets", NULL, &rc);
        if (!j)
            return rc;
        if (doc_printed(j, output))
            return 0;
        printf("%-40s %10s %8s  %s\n", "NAME", "SIZE", "UPDATED", "USED BY");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "secrets"), i, v) {
            char updated[32], users[512] = "";
            age(updated, sizeof(updated), json_object_get(v, "updated_at"));
            size_t k, o = 0;
            json_t *u;
            json_array_foreach(json_object_get(v, "used_by"), k, u) if (o < sizeof(users))
                o += (size_t)snprintf(users + o, sizeof(users) - o, "%s%s", k ? "," : "", json_string_value(u));
            printf("%-40s %10lld %8s  %s\n", str(v, "name"), (long long)json_integer_value(json_object_get(v, "size")),
                   updated, o ? users : "-");
        }
        json_decref(j);
        return 0;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/secrets/%s", name);
    if (rm) {
        json_t *j = call_json("DELETE", path, NULL, &rc);
        if (!j)
            return rc;
        printf("removed %s\n", str(j, "removed"));
        json_decref(j);
        return 0;
    }
    size_t len = 0;
    char *value = secret_value(name, file, &len);
    if (!value)
        return EXIT_REFUSED;
    struct client_buf b = {0};
    struct duet_err err = {0};
    int status = client_call_buf(sock, "PUT", path, value, len, &b, CLIENT_TIMEOUT_MS, &err);
    explicit_bzero(value, len);
    free(value);
    if (status < 0) {
        free(b.data);
        return cli_unreachable(&err);
    }
    json_t *j = b.data ? json_loads(b.data, 0, NULL) : NULL;
    if (status >= 300 && !json_is_array(json_object_get(j, "replaced"))) {
        rc = cli_refused(b.data);
        json_decref(j);
        free(b.data);
        return rc;
    }
    free(b.data);
    if (output) {
        print_doc(j, output);
    } else {
        size_t i;
        json_t *v;
        printf("secret %s %s\n", name, json_is_true(json_object_get(j, "changed")) ? "set" : "unchanged");
        json_array_foreach(json_object_get(j, "replaced"), i, v) printf("replaced %s\n", json_string_value(v));
    }
    if (json_is_string(json_object_get(j, "error"))) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "diagnostics"), i, v) fprintf(stderr, "%s\n", json_string_value(v));
        fprintf(stderr, "duet: %s\n", str(j, "error"));
        rc = EXIT_REFUSED;
    }
    json_decref(j);
    return rc;
}

/* ---- snapshot ---------------------------------------------------------------------------- */

/* What a snapshot holds, in a line: "disk (rootfs /srv/pg, 1 GiB), volume pgdata". */
static void snapshot_holds(json_t *s, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    if (json_is_string(json_object_get(s, "disk")))
        o += (size_t)snprintf(buf + o, len - o, "VM disk (%s)", str(s, "disk"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "volumes"), i, v) if (o < len)
        o += (size_t)snprintf(buf + o, len - o, "%svolume %s", o ? ", " : "", str(v, "name"));
    duet_text_mask(buf);
}

static int cmd_snapshot(int argc, char **argv)
{
    static const char usage[] =
        "usage: duet snapshot create NAME [SNAP] [-o json|yaml]\n"
        "       duet snapshot ls NAME [-o json|yaml]\n"
        "       duet snapshot restore NAME SNAP [-o json|yaml]\n"
        "       duet snapshot rm NAME SNAP\n\n"
        "Snapshots of a workload's data: its VM's disk and the named volumes it writes.\n"
        "create and restore stop the workload (a VM's guest is shut down), copy, and start\n"
        "it again; SNAP defaults to the time (s20261201-134502).  Snapshots go with the\n"
        "workload when it is deleted.\n";
    static const struct subcommand subs[] = {{"create", 1, 2}, {"ls", 1, 1}, {"restore", 2, 2}, {"rm", 2, 2}, {0}};
    const char *sub, *args[2], *output;
    int pr = subcommand_args(argc, argv, usage, subs, &sub, args, &output);
    if (pr)
        return pr < 0 ? 0 : pr;
    const char *name = args[0], *snap = args[1];
    if (!manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    if (snap && !manifest_name_valid(snap, strlen(snap))) {
        fprintf(stderr,
                "duet: \"%s\" is not a snapshot name: use 1 to 63 lower-case letters, digits and '-', starting and "
                "ending with a letter or digit\n",
                snap);
        return EXIT_REFUSED;
    }
    int rc = 0;
    char path[256], holds[1024];
    json_t *j;
    if (!strcmp(sub, "ls")) {
        snprintf(path, sizeof(path), "/v1/workloads/%s/snapshots", name);
        if (!(j = call_json("GET", path, NULL, &rc)))
            return rc;
        if (doc_printed(j, output))
            return 0;
        printf("%-32s %8s %10s  %s\n", "SNAPSHOT", "CREATED", "SIZE", "HOLDS");
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(j, "snapshots"), i, s) {
            char created[32], sz[32];
            age(created, sizeof(created), json_object_get(s, "created_at"));
            size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(s, "bytes")));
            snapshot_holds(s, holds, sizeof(holds));
            printf("%-32s %8s %10s  %s\n", str(s, "name"), created, sz, holds);
        }
        json_decref(j);
        return 0;
    }
    if (!strcmp(sub, "rm")) {
        snprintf(path, sizeof(path), "/v1/workloads/%s/snapshots/%s", name, snap);
        if (!(j = call_json("DELETE", path, NULL, &rc)))
            return rc;
        printf("removed snapshot %s of %s\n", snap, name);
        json_decref(j);
        return 0;
    }
    bool restore = !strcmp(sub, "restore");
    char body[128] = "{}";
    if (restore)
        snprintf(path, sizeof(path), "/v1/workloads/%s/snapshots/%s/restore", name, snap);
    else {
        snprintf(path, sizeof(path), "/v1/workloads/%s/snapshots", name);
        if (snap)
            snprintf(body, sizeof(body), "{\"name\": \"%s\"}", snap);
    }
    if (!(j = call_json("POST", path, body, &rc)))
        return rc;
    if (doc_printed(j, output))
        return 0;
    snapshot_holds(j, holds, sizeof(holds));
    json_int_t stopped = json_integer_value(json_object_get(j, "stopped_ms"));
    char sz[32];
    size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(j, "bytes")));
    if (restore)
        printf("restored %s from snapshot %s\n", name, str(j, "name"));
    else
        printf("snapshot %s of %s: %s\n", str(j, "name"), name, sz);
    printf("  holds %s\n", holds[0] ? holds : "nothing");
    if (stopped)
        printf("  consistent: %s was stopped for %.1f s%s and started again\n", name, (double)stopped / 1000,
               restore ? " while its data was put back" : " while it was copied");
    else
        printf("  consistent: %s was not running\n", name);
    json_decref(j);
    return 0;
}

/* ---- backup, restore ---------------------------------------------------------------- */

static void print_holds(json_t *j)
{
    char sz[32];
    json_t *disk = json_object_get(j, "disk");
    if (json_is_object(disk))
        printf("  VM disk (%s)\n", str(disk, "source"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "volumes"), i, v) {
        if (json_is_integer(json_object_get(v, "size")))
            size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(v, "size")));
        printf("  volume %s%s%s\n", str(v, "name"), json_is_integer(json_object_get(v, "size")) ? ", " : "",
               json_is_integer(json_object_get(v, "size")) ? sz : "");
    }
}

/* FILE as the daemon reads it: absolute. */
static bool absolute_path(const char *file, char *out, size_t len)
{
    if (file[0] == '/')
        return snprintf(out, len, "%s", file) < (int)len;
    char cwd[PATH_MAX];
    return getcwd(cwd, sizeof(cwd)) && snprintf(out, len, "%s/%s", cwd, file) < (int)len;
}

static int cmd_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"stop", no_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] =
        "usage: duet backup NAME -o FILE [--stop] [--json]\n\n"
        "Write a workload to FILE, one zstd-compressed archive: its applied spec, its VM's\n"
        "disk and the named volumes it writes; duet restore FILE makes it again, here or\n"
        "on another host.  A running workload is paused while its data is copied (a VM\n"
        "suspended, a container frozen) and goes on: the backup is crash-consistent, as\n"
        "a power cut would leave it.  --stop stops it for the copy instead and starts it\n"
        "again: consistent.  The archive is written after, while it runs.  FILE is\n"
        "written with your rights.\n";
    const char *out = NULL;
    bool stop = false, json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 's': stop = true; break;
        case 'j': json = true; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !out) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    char file[PATH_MAX], path[128];
    if (!absolute_path(out, file, sizeof(file))) {
        fprintf(stderr, "duet: %s: the path is too long\n", out);
        return EXIT_REFUSED;
    }
    json_t *b = json_pack("{s:s,s:b}", "path", file, "stop", stop);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    snprintf(path, sizeof(path), "/v1/workloads/%s/backup", name);
    int rc = 0;
    json_t *j = call_json("POST", path, body, &rc);
    free(body);
    if (!j)
        return rc;
    if (doc_printed(j, json ? "json" : NULL))
        return 0;
    char sz[32], took[32];
    size_text(sz, sizeof(sz), (double)json_integer_value(json_object_get(j, "bytes")));
    printf("backed up %s to %s (%s)\n", name, str(j, "path"), sz);
    print_holds(j);
    json_int_t stopped = json_integer_value(json_object_get(j, "stopped_ms"));
    json_int_t paused = json_integer_value(json_object_get(j, "paused_ms"));
    if (!strcmp(str(j, "consistency"), "crash-consistent")) {
        snprintf(took, sizeof(took), "%.1f s", (double)paused / 1000);
        printf("  crash-consistent: %s was paused for %s while its data was copied, and went on; its data is as a "
               "power cut would leave it (--stop for a consistent backup)\n",
               name, took);
    } else if (stopped) {
        snprintf(took, sizeof(took), "%.1f s", (double)stopped / 1000);
        printf("  consistent: %s was stopped for %s while its data was copied\n", name, took);
    } else {
        printf("  consistent: %s was not running\n", name);
    }
    json_decref(j);
    return 0;
}

static int cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] =
        "usage: duet restore FILE [--name NEW] [--json]\n\n"
        "Make the workload a duet backup FILE holds on this daemon: its spec applied (as\n"
        "duet apply would, or refused with the reason), its VM disk and its named volumes\n"
        "put in place first.  --name gives it another name.  A workload or a volume of the\n"
        "same name here is never overwritten: the restore is refused and nothing is made.\n";
    const char *name = NULL;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': name = optarg; break;
        case 'j': json = true; break;
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (name && !manifest_name_valid(name, strlen(name))) {
        fprintf(stderr, "duet: \"%s\" is not a workload name\n", name);
        return EXIT_REFUSED;
    }
    char file[PATH_MAX];
    if (!absolute_path(argv[optind], file, sizeof(file))) {
        fprintf(stderr, "duet: %s: the path is too long\n", argv[optind]);
        return EXIT_REFUSED;
    }
    json_t *b = json_pack("{s:s}", "path", file);
    if (name)
        json_object_set_new(b, "name", json_string(name));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = 0;
    json_t *j = call_json("POST", "/v1/restore", body, &rc);
    free(body);
    if (!j)
        return rc;
    if (doc_printed(j, json ? "json" : NULL))
        return 0;
    printf("restored %s from %s as a %s\n", str(j, "workload"), str(j, "path"), str(j, "backend"));
    print_holds(j);
    json_decref(j);
    return 0;
}

int cli_verbs_run(const char *verb, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } verbs[] = {{"apply", cmd_apply},   {"get", cmd_get},       {"describe", cmd_describe}, {"logs", cmd_logs},
                 {"exec", cmd_exec},     {"delete", cmd_delete}, {"events", cmd_events},     {"run", cmd_run},
                 {"image", cmd_image},   {"volume", cmd_volume}, {"snapshot", cmd_snapshot}, {"secret", cmd_secret},
                 {"backup", cmd_backup},   {"restore", cmd_restore},   {"compare", cli_compare},
                 {"top", cli_top},       {"stop", cmd_stop},     {"start", cmd_start},       {"restart", cmd_restart},
                 {"dashboard", cmd_dashboard}};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verb, verbs[i].name) == 0)
            return verbs[i].fn(argc, argv);
    return -1;
}
