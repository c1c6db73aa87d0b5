/*
 * duet as installed: `make install` lays out what docs/install.md lists
 * and the installed commands find their helpers and guest kernel there;
 * the service unit passes systemd-analyze verify; the man pages render
 * without a warning and cover every command, option and field; the
 * completion scripts complete; duetd's config file is checked as strictly
 * as a manifest (FILE:LINE:COL, and duetd does not start), and duet plan
 * reads the same file.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/cli/run.h"

static const char *need(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the suite with make test", name);
    return v;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    int fd = fileno(f);
    char *s = run_slurp(fd);
    fclose(f);
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* make TARGET against the build under test, outside the make that runs
 * the suite (its jobserver is not this make's). */
static struct run make_target(const char *target, const char *destdir)
{
    char build[PATH_MAX + 8], dest[PATH_MAX + 16];
    snprintf(build, sizeof(build), "BUILD=%s", need("DUET_BUILD"));
    snprintf(dest, sizeof(dest), "DESTDIR=%s", destdir);
    const char *argv[] = {"make", "-s", "--no-print-directory", "-C", need("DUET_SRC"), target, build, dest, NULL};
    const char *env[] = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", NULL};
    return run_argv(argv, env, NULL);
}

static char *tmpdir(void)
{
    static __thread char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/duet-install-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void rm_rf(const char *dir)
{
    const char *argv[] = {"rm", "-rf", dir, NULL};
    struct run r = run_argv(argv, NULL, NULL);
    run_free(&r);
}

/* ---- the installed layout ------------------------------------------------------------- */

#define MAX_DOCUMENTED 64
static char documented[MAX_DOCUMENTED][PATH_MAX];
static size_t n_documented;
static const char *walk_root;
static char walk_problem[1024];

/* The rows of docs/install.md's list of installed files, PREFIX and
 * VERSION replaced. */
static void read_documented(const char *version)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/docs/install.md", need("DUET_SRC"));
    char *doc = read_all(path);
    char *begin = strstr(doc, "<!-- installed files: begin -->"), *end = strstr(doc, "<!-- installed files: end -->");
    cr_assert(begin && end && begin < end, "docs/install.md has no list of installed files");
    n_documented = 0;
    for (char *line = begin; line < end; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *tick = strchr(line + 3, '`');
        cr_assert_not_null(tick);
        char entry[PATH_MAX];
        snprintf(entry, sizeof(entry), "%.*s", (int)(tick - line - 3), line + 3);
        char out[PATH_MAX] = "";
        const char *p = entry;
        if (strncmp(p, "PREFIX", 6) == 0) {
            strcat(out, "/usr/local");
            p += 6;
        }
        const char *v = strstr(p, "VERSION");
        if (v)
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%.*s%s%s", (int)(v - p), p, version, v + 7);
        else
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s", p);
        cr_assert_lt(n_documented, MAX_DOCUMENTED);
        snprintf(documented[n_documented++], PATH_MAX, "%s", out);
    }
    free(doc);
    cr_assert_gt(n_documented, 10, "docs/install.md lists %zu installed files", n_documented);
}

static int walk_one(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_D || type == FTW_DP)
        return 0;
    const char *rel = fpath + strlen(walk_root);
    for (size_t i = 0; i < n_documented; i++) {
        size_t n = strlen(documented[i]);
        if (strcmp(rel, documented[i]) == 0 || (documented[i][n - 1] == '/' && strncmp(rel, documented[i], n) == 0))
            return 0;
    }
    snprintf(walk_problem, sizeof(walk_problem), "installed but not in docs/install.md: %s", rel);
    return 1;
}

static void expect_mode(const char *root, const char *rel, mode_t type, mode_t perm)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s%s", root, rel);
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0, "%s: %s", rel, strerror(errno));
    cr_expect_eq(st.st_mode & S_IFMT, type, "%s has the wrong file type", rel);
    if (perm)
        cr_expect_eq(st.st_mode & 07777, perm, "%s has mode %o, not %o", rel, st.st_mode & 07777, perm);
}

Test(install, make_install_lays_out_the_documented_files_and_they_work_from_there, .timeout = 300)
{
    char ver_path[PATH_MAX];
    snprintf(ver_path, sizeof(ver_path), "%s/images/kernel/version", need("DUET_BUILD"));
    char *version = read_all(ver_path);
    version[strcspn(version, "\n")] = '\0';
    read_documented(version);
    char *dest = tmpdir();

    struct run r = make_target("install-files", dest);
    cr_assert_eq(r.status, 0, "make install-files: %s%s", r.out, r.err);
    run_free(&r);

    /* Every documented file is there, and nothing else is. */
    for (size_t i = 0; i < n_documented; i++) {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof(p), "%s%s", dest, documented[i]);
        struct stat st;
        cr_expect_eq(lstat(p, &st), 0, "documented in docs/install.md but not installed: %s", documented[i]);
        if (documented[i][strlen(documented[i]) - 1] == '/')
            cr_expect(S_ISDIR(st.st_mode), "%s should be a directory", documented[i]);
    }
    walk_root = dest;
    walk_problem[0] = '\0';
    cr_expect_eq(nftw(dest, walk_one, 32, FTW_PHYS), 0, "%s", walk_problem);

    expect_mode(dest, "/usr/local/bin/duet", S_IFREG, 0755);
    expect_mode(dest, "/usr/local/sbin/duetd", S_IFREG, 0755);
    expect_mode(dest, "/usr/local/lib/duet/duet-init", S_IFREG, 0755);
    expect_mode(dest, "/usr/local/lib/duet/duet-vminit", S_IFREG, 0755);
    expect_mode(dest, "/usr/local/lib/duet/duet-virtiofsd-ro", S_IFLNK, 0);
    expect_mode(dest, "/usr/local/lib/duet/kernel/vmlinuz", S_IFLNK, 0);
    expect_mode(dest, "/usr/local/lib/systemd/system/duetd.service", S_IFREG, 0644);
    expect_mode(dest, "/etc/duet/duetd.yaml", S_IFREG, 0644);

    /* The installed duet finds the installed guest kernel without being
     * told: plan says which kernel a rootfs VM would boot. */
    char duet[PATH_MAX], duetd[PATH_MAX], kernel[PATH_MAX], want[PATH_MAX * 2];
    snprintf(duet, sizeof(duet), "%s/usr/local/bin/duet", dest);
    snprintf(duetd, sizeof(duetd), "%s/usr/local/sbin/duetd", dest);
    snprintf(want, sizeof(want), "%s/usr/local/lib/duet/kernel/boot/vmlinuz-%s", dest, version);
    cr_assert_not_null(realpath(want, kernel));
    char manifests[PATH_MAX];
    snprintf(manifests, sizeof(manifests), "%s/manifests/examples", need("DUET_SRC"));
    const char *plan[] = {duet, "plan", "-f", manifests, "-o", "json", "--config", "none", NULL};
    r = run_argv(plan, NULL, NULL);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j, "plan -o json: %s", r.err);
    json_t *vm = json_object_get(json_object_get(json_object_get(j, "host"), "backends"), "vm");
    cr_expect_str_eq(json_string_value(json_object_get(vm, "guest_kernel")), kernel,
                     "the installed duet plans with its installed guest kernel");
    json_decref(j);
    run_free(&r);

    /* The installed config file is a valid one, all defaults. */
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/etc/duet/duetd.yaml", dest);
    const char *check[] = {duetd, "--config", cfg, "--check-config", NULL};
    r = run_argv(check, NULL, NULL);
    cr_expect_eq(r.status, 0, "the installed duetd.yaml: %s", r.err);
    cr_expect(strstr(r.out, ": valid"), "%s", r.out);
    run_free(&r);

    /* Installing again never overwrites the user's settings. */
    write_text(cfg, "apiVersion: duet/v1\nkind: Daemon\nspec:\n  stopGrace: 30s   # mine\n");
    r = make_target("install-files", dest);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *kept = read_all(cfg);
    cr_expect(strstr(kept, "# mine"), "make install overwrote /etc/duet/duetd.yaml");
    free(kept);

    /* Uninstalling removes all but the settings. */
    r = make_target("uninstall", dest);
    cr_assert_eq(r.status, 0, "make uninstall: %s", r.err);
    run_free(&r);
    n_documented = 1;
    snprintf(documented[0], PATH_MAX, "/etc/duet/duetd.yaml");
    walk_problem[0] = '\0';
    cr_expect_eq(nftw(dest, walk_one, 32, FTW_PHYS), 0, "left after make uninstall: %s", walk_problem);
    cr_expect_eq(access(cfg, F_OK), 0, "make uninstall removed the settings");
    free(version);
    rm_rf(dest);
}

/* ---- the service ------------------------------------------------------------------------ */

Test(install, the_service_unit_passes_systemd_analyze_verify, .timeout = 120)
{
    char *dest = tmpdir();
    struct run r = make_target("install-files", dest);
    cr_assert_eq(r.status, 0, "make install-files: %s", r.err);
    run_free(&r);
    char unit[PATH_MAX], copy[PATH_MAX], mandir[PATH_MAX];
    snprintf(unit, sizeof(unit), "%s/usr/local/lib/systemd/system/duetd.service", dest);
    char *text = read_all(unit);
    cr_expect(strstr(text, "\nType=notify\n"), "duetd.service is not Type=notify");
    cr_expect(strstr(text, "\nKillMode=process\n"), "stopping the service must leave the workloads running");
    cr_expect(strstr(text, "\nRestart=on-failure\n"));
    cr_expect(strstr(text, "\nExecStart=/usr/local/sbin/duetd --foreground\n"), "%s", text);
    /* verify wants the binary and the man pages it names where they would
     * be: here, under the staging root. */
    char *at = strstr(text, "ExecStart=/usr/local/sbin/duetd");
    cr_assert_not_null(at);
    snprintf(copy, sizeof(copy), "%s/duetd.service", dest);
    FILE *f = fopen(copy, "w");
    cr_assert_not_null(f);
    fprintf(f, "%.*sExecStart=%s/usr/local/sbin/duetd%s", (int)(at - text), text, dest,
            at + strlen("ExecStart=/usr/local/sbin/duetd"));
    fclose(f);
    snprintf(mandir, sizeof(mandir), "MANPATH=%s/usr/local/share/man", dest);
    const char *verify[] = {"systemd-analyze", "verify", copy, NULL};
    const char *env[] = {mandir, NULL};
    r = run_argv(verify, env, dest);
    cr_expect_eq(r.status, 0, "systemd-analyze verify: %s%s", r.out, r.err);
    cr_expect_str_empty(r.err, "systemd-analyze verify has something to say: %s", r.err);
    run_free(&r);

    /* The check can fail: a unit with a typo does. */
    f = fopen(copy, "a");
    fputs("[Service]\nKillMod=process\n", f);
    fclose(f);
    r = run_argv(verify, env, dest);
    cr_expect(r.status != 0 || r.err[0], "systemd-analyze verify took a unit with an unknown key");
    run_free(&r);
    free(text);
    rm_rf(dest);
}

/* ---- man pages -------------------------------------------------------------------------- */

/* The page as plain text, and what groff said about it. */
static char *render(const char *page, char **warnings)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/man/%s", need("DUET_BUILD"), page);
    const char *argv[] = {"groff", "-ww", "-man", "-Tutf8", "-P-cbou", path, NULL};
    const char *env[] = {"LC_ALL=C.UTF-8", NULL};
    struct run r = run_argv(argv, env, NULL);
    cr_assert_eq(r.status, 0, "groff %s: %s", page, r.err);
    *warnings = r.err;
    return r.out;
}

/* Each line of `text` that starts (after blanks) with a `prefix` word:
 * the word, for the caller to look up. */
static void expect_words(const char *page, const char *text, const char *source, const char *what,
                         const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char needle[256];
        snprintf(needle, sizeof(needle), "%s", words[i]);
        cr_expect(strstr(text, needle), "%s does not cover %s \"%s\" (from %s)", page, what, words[i], source);
    }
}

Test(install, man_pages_render_without_warnings_and_cover_every_command_option_and_field, .timeout = 120)
{
    static const char *const pages[] = {"duet.1", "duet-manifest.5", "duetd.8"};
    char *text[3];
    for (int i = 0; i < 3; i++) {
        char *warnings;
        text[i] = render(pages[i], &warnings);
        cr_expect_str_empty(warnings, "groff -ww %s: %s", pages[i], warnings);
        free(warnings);
        /* man -l as a user runs it (its own preprocessors). */
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/man/%s", need("DUET_BUILD"), pages[i]);
        const char *argv[] = {"man", "--warnings=w", "-l", path, NULL};
        const char *env[] = {"LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100", NULL};
        struct run r = run_argv(argv, env, NULL);
        cr_expect_eq(r.status, 0, "man -l %s: %s", pages[i], r.err);
        cr_expect_str_empty(r.err, "man -l %s: %s", pages[i], r.err);
        run_free(&r);
    }

    /* duet(1): every command duet --help lists. */
    char duet[PATH_MAX];
    snprintf(duet, sizeof(duet), "%s/duet", need("DUET_BUILD"));
    const char *help[] = {duet, "--help", NULL};
    struct run r = run_argv(help, NULL, NULL);
    const char *words[64];
    size_t n = 0;
    char *save, *copy = strdup(r.out);
    for (char *line = strtok_r(copy, "\n", &save); line && n < 64; line = strtok_r(NULL, "\n", &save))
        if (line[0] == ' ' && line[1] == ' ' && line[2] >= 'a' && line[2] <= 'z') {
            line[2 + strcspn(line + 2, " ")] = '\0';
            words[n] = line + 2;
            n++;
        }
    cr_expect_geq(n, 15, "duet --help lists %zu commands", n);
    char tagged[64][80];
    for (size_t i = 0; i < n; i++) {
        snprintf(tagged[i], sizeof(tagged[i]), "\n       %s", words[i]);
        words[i] = tagged[i];
    }
    expect_words("duet(1)", text[0], "duet --help", "the command", words, n);
    free(copy);
    run_free(&r);

    /* duetd(8): every option of duetd --help, every key of the config file. */
    char duetd[PATH_MAX];
    snprintf(duetd, sizeof(duetd), "%s/duetd", need("DUET_BUILD"));
    const char *dhelp[] = {duetd, "--help", NULL};
    r = run_argv(dhelp, NULL, NULL);
    n = 0;
    copy = strdup(r.out);
    for (char *p = copy; (p = strstr(p, " --")) && n < 64; p += 3) {
        size_t len = strspn(p + 1, "-abcdefghijklmnopqrstuvwxyz");
        snprintf(tagged[n], sizeof(tagged[n]), "%.*s", (int)len, p + 1);
        n++;
    }
    cr_expect_geq(n, 20, "duetd --help lists %zu options", n);
    /* An option is the tag of its paragraph, alone or after its short form. */
    for (size_t i = 0; i < n; i++) {
        char alone[160], after_short[160];
        snprintf(alone, sizeof(alone), "\n       %.80s", tagged[i]);
        snprintf(after_short, sizeof(after_short), ", %.80s\n", tagged[i]);
        cr_expect(strstr(text[2], alone) || strstr(text[2], after_short),
                  "duetd(8) does not cover the option %s (from duetd --help)", tagged[i]);
    }
    free(copy);
    run_free(&r);

    /* Tables from docs: every row's name (docs/install.md's config keys in
     * duetd(8), docs/manifest.md's fields in duet-manifest(5)). */
    static const struct {
        const char *doc, *begin, *end;
        int page;
    } tables[] = {
        {"docs/install.md", "<!-- config keys: begin -->", "<!-- config keys: end -->", 2},
        {"docs/manifest.md", "\n## Workload\n", "\n### ", 1},
        {"docs/manifest.md", "\n## Host\n", "\n## YAML", 1},
    };
    for (size_t t = 0; t < 3; t++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", need("DUET_SRC"), tables[t].doc);
        char *doc = read_all(path);
        char *b = strstr(doc, tables[t].begin);
        cr_assert_not_null(b, "%s: no %s", tables[t].doc, tables[t].begin);
        char *e = strstr(b + 1, tables[t].end);
        cr_assert_not_null(e);
        size_t rows = 0;
        for (char *line = b; line && line < e; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (strncmp(line, "| `", 3) != 0)
                continue;
            char *tick = strchr(line + 3, '`');
            char name[160];
            snprintf(name, sizeof(name), "\n       %.*s", (int)(tick - line - 3), line + 3);
            const char *one[] = {name};
            expect_words(pages[tables[t].page], text[tables[t].page], tables[t].doc, "the field", one, 1);
            rows++;
        }
        cr_expect_geq(rows, 6, "%s: only %zu rows read", tables[t].doc, rows);
        free(doc);
    }
    for (int i = 0; i < 3; i++)
        free(text[i]);
}

/* ---- completion ------------------------------------------------------------------------- */

static char *bash_complete(const char *words)
{
    return run_complete("bash", need("DUET_SRC"), words, NULL);
}

static char *zsh_complete(const char *words)
{
    return run_complete("zsh", need("DUET_SRC"), words, NULL);
}

/* What a shell offers after the words (duet's path first): each of
 * `has` (lines), none of `lacks`. */
static const struct {
    const char *shell, *words, *has[3], *lacks;
} completions[] = {
    {"bash", "ge", {"complete -F _duet duet\nget\n"}, NULL},
    {"bash", "apply --", {"--prune\n", "--wait\n", "--dry-run\n"}, NULL},
    {"bash", "image ''", {"pull\n", "prune\n"}, NULL},
    {"bash", "secret ''", {"set\n", "ls\n", "rm\n"}, NULL},
    {"bash", "secret set --", {"--from-file\n"}, NULL},
    {"bash", "get -o ''", {"name\n", "json\n"}, NULL},
    /* After exec's --, the words are the workload's, not duet's. */
    {"bash", "exec web -- --", {NULL}, "--timeout"},
    {"zsh", "''", {"compare\n", "snapshot\n", "secret\n"}, NULL},
    {"zsh", "compare --", {"--estimate\n", "--keep\n"}, NULL},
    {"zsh", "apply -f ''", {"FILES\n"}, NULL},
    {"bash", "top --sort ''", {"cpu\n", "memory\n", "name\n"}, NULL},
    {"zsh", "top --sort ''", {"memory\n"}, NULL},
    {"bash", "to", {"top\n"}, NULL},
};

Test(install, completion_offers_commands_options_subcommands_and_files)
{
    for (size_t i = 0; i < sizeof(completions) / sizeof(completions[0]); i++) {
        char w[PATH_MAX + 64];
        snprintf(w, sizeof(w), "%s %s", need("DUET_BIN"), completions[i].words);
        bool bash = strcmp(completions[i].shell, "bash") == 0;
        char *o = bash ? bash_complete(w) : zsh_complete(w);
        for (size_t k = 0; k < 3 && completions[i].has[k]; k++)
            cr_expect(strstr(o, completions[i].has[k]), "%s: duet %s<TAB> lacks %s: %s", completions[i].shell,
                      completions[i].words, completions[i].has[k], o);
        if (completions[i].lacks)
            cr_expect(!strstr(o, completions[i].lacks), "%s: duet %s<TAB> offers %s: %s", completions[i].shell,
                      completions[i].words, completions[i].lacks, o);
        free(o);
    }
    const char *syntax[] = {"zsh", "-n", NULL, NULL};
    char zfile[PATH_MAX];
    snprintf(zfile, sizeof(zfile), "%s/cli/completion/_duet", need("DUET_SRC"));
    syntax[2] = zfile;
    struct run r = run_argv(syntax, NULL, NULL);
    cr_expect_eq(r.status, 0, "zsh -n _duet: %s", r.err);
    run_free(&r);
}

/* ---- the config file -------------------------------------------------------------------- */

struct bad_config {
    const char *text;
    const char *where;     /* ":LINE:COL: error: " */
    const char *says;
};

static const struct bad_config bad_configs[] = {
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  stopGarce: 5s\n", ":4:3:", "did you mean \"stopGrace\"?"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  bridge: du/et0\n", ":4:11:", "is not a network interface name"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  bridge: averylongbridgename\n", ":4:11:",
     "1 to 15 characters"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  bridge: ..\n", ":4:11:", "not a network interface name"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  subnet: 10.9.0.1/24\n", ":4:11:",
     "has host bits set; did you mean 10.9.0.0/24?"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  subnet: 10.9.0.0/31\n", ":4:11:", "no room for workloads"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  stopGrace: 10\n", ":4:14:", "is not a duration"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  stopGrace: [1s]\n", ":4:14:", "must be a duration"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  logMax: 1Ki\n", ":4:11:", "4Ki or more"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  maxImageSize: 10G\n", ":4:17:", "is not a size"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  debug: yes please\n", ":4:10:", "true or false"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  metricsListen: localhost:9465\n", ":4:18:",
     "not an address to listen on"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  metricsListen: \"127.0.0.1:9465\\0\"\n", ":4:18:",
     "contains a NUL byte"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  metricsListen: [127.0.0.1:9465]\n", ":4:18:", "must be a string"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  guestKernel: /nonexistent/vmlinuz\n", ":4:16:",
     "No such file or directory"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  guestKernel: \"/boot/vm\\x1b[2Jlinuz\"\n", ":4:16:",
     "control characters"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  socket: /run/duet/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
     ":4:11:", "longer than a Unix socket path may be"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  socketGroup: \"wheel;rm\"\n", ":4:16:", "is not a group name"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  libvirtUri: not a uri\n", ":4:15:", "is not a libvirt URI"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  registries:\n    insecure: [\"a b\"]\n", ":5:16:",
     "is not HOST or HOST:PORT"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  registries: {ca: /nonexistent.pem}\n", ":4:20:",
     "No such file or directory"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  registries: {mirrors: [x]}\n", ":4:16:",
     "unknown key \"mirrors\""},
    {"apiVersion: duet/v1\nkind: Daemon\nmetadata: {name: x}\nspec:\n", ":3:1:", "unknown key \"metadata\""},
    {"apiVersion: duet/v1\nkind: Daemon\n", ":1:1:", "spec is required in a Daemon document"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec: [bridge]\n", ":3:7:", "spec must be a mapping"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n---\napiVersion: duet/v1\nkind: Daemon\nspec:\n", ":5:1:",
     "a second Daemon document"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n  image: {rootfs: /srv/web}\n  command: "
     "[/bin/true]\n",
     ":1:1:", "does not belong in duetd's config file"},
    {"# nothing but a comment\n", ": error: ", "holds no Daemon document"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec: &a\n  bridge: x\n  again: *a\n", ":5:10:", "alias *a names no anchor"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n  bridge: x\n  bridge: y\n", ":5:3:", "bridge"},
    {"apiVersion: duet/v1\nkind: Daemon\nspec:\n\tbridge: x\n", ":", "error"},
};

Test(install, a_bad_config_file_is_reported_at_its_place_and_duetd_does_not_start)
{
    char *dir = tmpdir();
    char cfg[PATH_MAX], duetd[PATH_MAX], duet[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/duetd.yaml", dir);
    snprintf(duetd, sizeof(duetd), "%s/duetd", need("DUET_BUILD"));
    snprintf(duet, sizeof(duet), "%s/duet", need("DUET_BUILD"));
    for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
        write_text(cfg, bad_configs[i].text);
        const char *argv[] = {duetd, "--config", cfg, "--check-config", NULL};
        struct run r = run_argv(argv, NULL, NULL);
        cr_expect_eq(r.status, 2, "config %zu: duetd --check-config exited %d: %s", i, r.status, r.err);
        char where[PATH_MAX + 64];
        snprintf(where, sizeof(where), "%s%s", cfg, bad_configs[i].where);
        cr_expect(strstr(r.err, where), "config %zu: no error at %s in:\n%s", i, where, r.err);
        cr_expect(strstr(r.err, bad_configs[i].says), "config %zu: \"%s\" not said in:\n%s", i, bad_configs[i].says,
                  r.err);
        cr_expect(strstr(r.err, "duetd: not started: fix "), "config %zu: %s", i, r.err);
        cr_expect(!strchr(r.err, '\x1b'), "config %zu: an escape sequence reached the terminal", i);
        run_free(&r);
    }

    /* Without --check-config the same: duetd does not start, and makes
     * neither its state directory nor its socket. */
    write_text(cfg, bad_configs[1].text);
    char state[PATH_MAX + 8], sock[PATH_MAX + 8];
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(sock, sizeof(sock), "%s/duet.sock", dir);
    const char *start[] = {duetd, "--config", cfg, "--state-dir", state, "--socket", sock, "--foreground", NULL};
    struct run r = run_argv(start, NULL, NULL);
    cr_expect_eq(r.status, 2, "%s", r.err);
    cr_expect_neq(access(state, F_OK), 0, "duetd made its state directory with a bad config file");
    cr_expect_neq(access(sock, F_OK), 0);
    run_free(&r);

    /* A file named and absent, a directory, the environment's name. */
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/absent.yaml", dir);
    const char *absent[] = {duetd, "--config", missing, "--check-config", NULL};
    r = run_argv(absent, NULL, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "absent.yaml: error: cannot read: No such file or directory"), "%s", r.err);
    run_free(&r);
    const char *isdir[] = {duetd, "--config", dir, "--check-config", NULL};
    r = run_argv(isdir, NULL, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "is a directory"), "%s", r.err);
    run_free(&r);
    char envcfg[PATH_MAX + 64];
    snprintf(envcfg, sizeof(envcfg), "DUET_CONFIG=%s", missing);
    const char *byenv[] = {duetd, "--check-config", NULL};
    const char *env[] = {envcfg, NULL};
    r = run_argv(byenv, env, NULL);
    cr_expect_eq(r.status, 2, "$DUET_CONFIG naming an absent file: %s", r.err);
    run_free(&r);

    /* Options are checked as the file's keys are. */
    const char *badflags[][3] = {{"--bridge", "a/b", "is not a network interface name"},
                                 {"--subnet", "10.0.0.1/8", "has host bits set"},
                                 {"--stop-grace", "0", "is not a number of milliseconds"},
                                 {"--restart-backoff", "12x", "is not a number of milliseconds"}};
    for (size_t i = 0; i < 4; i++) {
        const char *argv[] = {duetd, "--config", "none", badflags[i][0], badflags[i][1], "--check-config", NULL};
        r = run_argv(argv, NULL, NULL);
        cr_expect_eq(r.status, 2, "%s %s", badflags[i][0], badflags[i][1]);
        cr_expect(strstr(r.err, badflags[i][2]), "%s %s: %s", badflags[i][0], badflags[i][1], r.err);
        run_free(&r);
    }

    /* duet plan reads the same file, and stops on the same errors. */
    write_text(cfg, bad_configs[4].text);
    char manifests[PATH_MAX];
    snprintf(manifests, sizeof(manifests), "%s/manifests/examples", need("DUET_SRC"));
    const char *plan[] = {duet, "plan", "-f", manifests, "--config", cfg, NULL};
    r = run_argv(plan, NULL, NULL);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(strstr(r.err, ":4:11: error: spec.subnet"), "%s", r.err);
    cr_expect(strstr(r.err, "duetd's config file"), "%s", r.err);
    run_free(&r);

    /* A Daemon document among manifests is refused, with where it goes. */
    char mdir[PATH_MAX + 16], mfile[PATH_MAX + 32];
    snprintf(mdir, sizeof(mdir), "%s/manifests", dir);
    mkdir(mdir, 0755);
    snprintf(mfile, sizeof(mfile), "%s/daemon.yaml", mdir);
    write_text(mfile, "apiVersion: duet/v1\nkind: Daemon\nspec:\n  bridge: x0\n");
    const char *validate[] = {duet, "validate", mdir, NULL};
    r = run_argv(validate, NULL, NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "daemon.yaml:1:1: error: a Daemon document configures duetd and belongs in its config "
                            "file (/etc/duet/duetd.yaml"),
              "%s", r.err);
    run_free(&r);
    rm_rf(dir);
}

Test(install, duet_plan_takes_the_guest_kernel_and_libvirt_uri_from_the_config_file)
{
    char *dir = tmpdir();
    char cfg[PATH_MAX + 16], duet[PATH_MAX], manifests[PATH_MAX], text[PATH_MAX + 256];
    snprintf(cfg, sizeof(cfg), "%s/duetd.yaml", dir);
    snprintf(duet, sizeof(duet), "%s/duet", need("DUET_BUILD"));
    snprintf(manifests, sizeof(manifests), "%s/manifests/examples", need("DUET_SRC"));
    const char *kernel = need("DUET_GUEST_KERNEL");
    snprintf(text, sizeof(text),
             "apiVersion: duet/v1\nkind: Daemon\nspec:\n  guestKernel: %s\n  libvirtUri: test:///default\n", kernel);
    write_text(cfg, text);

    /* As the options would: the description of the test driver's VMs. */
    const char *by_opts[] = {duet, "plan", "-f", manifests, "-o", "json", "--config", "none", "--guest-kernel",
                             kernel, "--libvirt-uri", "test:///default", NULL};
    struct run a = run_argv(by_opts, NULL, NULL);
    const char *by_file[] = {duet, "plan", "-f", manifests, "-o", "json", "--config", cfg, NULL};
    struct run b = run_argv(by_file, NULL, NULL);
    json_t *ja = json_loads(a.out, 0, NULL), *jb = json_loads(b.out, 0, NULL);
    cr_assert(ja && jb, "plan: %s / %s", a.err, b.err);
    json_t *va = json_object_get(json_object_get(json_object_get(ja, "host"), "backends"), "vm");
    json_t *vb = json_object_get(json_object_get(json_object_get(jb, "host"), "backends"), "vm");
    cr_expect_str_eq(json_string_value(json_object_get(vb, "guest_kernel")), kernel);
    cr_expect_str_eq(json_string_value(json_object_get(vb, "description")),
                     json_string_value(json_object_get(va, "description")),
                     "the config file's libvirtUri was not the one probed");
    char *test_driver = strdup(json_string_value(json_object_get(va, "description")));
    json_decref(ja);
    json_decref(jb);
    run_free(&a);
    run_free(&b);

    /* The environment names the file too; an option wins over the file. */
    char envcfg[PATH_MAX + 64];
    snprintf(envcfg, sizeof(envcfg), "DUET_CONFIG=%s", cfg);
    const char *env[] = {envcfg, NULL};
    char other[PATH_MAX];
    snprintf(other, sizeof(other), "%s/images/vmlinuz", need("DUET_BUILD"));
    const char *over[] = {duet, "plan", "-f", manifests, "-o", "json", "--guest-kernel", other, NULL};
    struct run c = run_argv(over, env, NULL);
    json_t *jc = json_loads(c.out, 0, NULL);
    cr_assert_not_null(jc, "%s", c.err);
    json_t *vc = json_object_get(json_object_get(json_object_get(jc, "host"), "backends"), "vm");
    cr_expect_str_eq(json_string_value(json_object_get(vc, "guest_kernel")), other);
    cr_expect_str_eq(json_string_value(json_object_get(vc, "description")), test_driver,
                     "$DUET_CONFIG's libvirtUri was not the one probed");
    free(test_driver);
    json_decref(jc);
    run_free(&c);
    rm_rf(dir);
}

/* The keys duetd's config file takes (its "allowed:" list for an unknown
 * key) are the ones docs/install.md documents, both ways. */
static void allowed_keys(const char *yaml_spec, const char *prefix, char *out, size_t len)
{
    char *dir = tmpdir();
    char cfg[PATH_MAX], duetd[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/duetd.yaml", dir);
    snprintf(duetd, sizeof(duetd), "%s/duetd", need("DUET_BUILD"));
    char text[512];
    snprintf(text, sizeof(text), "apiVersion: duet/v1\nkind: Daemon\nspec:\n%s", yaml_spec);
    write_text(cfg, text);
    const char *argv[] = {duetd, "--config", cfg, "--check-config", NULL};
    struct run r = run_argv(argv, NULL, NULL);
    char *a = strstr(r.err, "(allowed: ");
    cr_assert_not_null(a, "%s", r.err);
    a += strlen("(allowed: ");
    size_t n = strcspn(a, ")");
    out[0] = '\0';
    /* "a, b, c" -> " PREFIXa PREFIXb PREFIXc " */
    char *list = strndup(a, n), *save;
    strcat(out, " ");
    for (char *k = strtok_r(list, ", ", &save); k; k = strtok_r(NULL, ", ", &save))
        snprintf(out + strlen(out), len - strlen(out), "%s%s ", prefix, k);
    free(list);
    run_free(&r);
    rm_rf(dir);
}

Test(install, every_config_key_is_documented_and_every_documented_key_is_known)
{
    char known[2048], nested[512];
    allowed_keys("  zzzzzzzzzzzzzzzz: 1\n", "spec.", known, sizeof(known));
    allowed_keys("  registries: {zzzzzzzzzzzzzzzz: 1}\n", "spec.registries.", nested, sizeof(nested));
    strncat(known, nested + 1, sizeof(known) - strlen(known) - 1);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/docs/install.md", need("DUET_SRC"));
    char *doc = read_all(path);
    char *b = strstr(doc, "<!-- config keys: begin -->"), *e = strstr(doc, "<!-- config keys: end -->");
    cr_assert(b && e);
    char documented_keys[2048] = " ";
    for (char *line = b; line < e; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char key[128];
        snprintf(key, sizeof(key), " %.*s ", (int)(strchr(line + 3, '`') - line - 3), line + 3);
        cr_expect(strstr(known, key), "docs/install.md documents%sbut duetd does not take it (takes:%s)", key, known);
        strncat(documented_keys, key + 1, sizeof(documented_keys) - strlen(documented_keys) - 1);
    }
    char *save;
    for (char *k = strtok_r(known, " ", &save); k; k = strtok_r(NULL, " ", &save)) {
        if (strcmp(k, "spec.registries") == 0)
            continue;   /* documented by its keys */
        char key[128];
        snprintf(key, sizeof(key), " %s ", k);
        cr_expect(strstr(documented_keys, key), "duetd takes %s but docs/install.md does not document it", k);
    }
    free(doc);
}
