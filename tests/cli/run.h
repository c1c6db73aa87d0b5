/*
 * run.h - a program run as a user runs it, for the command-line suites:
 * its exit status, standard output and error, and peak memory.
 */
#ifndef DUET_TESTS_RUN_H
#define DUET_TESTS_RUN_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int status;             /* exit code, or 128+signal */
    char *out, *err;
    long maxrss_kib;
};

static inline char *run_slurp(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* Runs argv[0] (a path) with argv; env: "NAME=VALUE" or "NAME" (unset)
 * changes to the environment, NULL-terminated, or NULL; dir: the working
 * directory, or NULL. */
static inline struct run run_argv(const char *const *argv, const char *const *env, const char *dir)
{
    char outp[] = "/tmp/duet-out-XXXXXX", errp[] = "/tmp/duet-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    cr_assert(ofd >= 0 && efd >= 0);
    unlink(outp);
    unlink(errp);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq) {
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
                setenv(name, eq + 1, 1);
            } else {
                unsetenv(env[i]);
            }
        }
        if (dir && chdir(dir) < 0)
            _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    struct run r = {0};
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = run_slurp(ofd);
    r.err = run_slurp(efd);
    r.maxrss_kib = ru.ru_maxrss;
    close(ofd);
    close(efd);
    return r;
}

static inline void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* What duet's completion offers when words are on the line, the last one
 * being completed: one offer per line.  src: the source tree; env as for
 * run_argv.  bash runs the script as installed; zsh's compadd and _files
 * are stood in for by functions that print what they are given. */
static inline char *run_complete(const char *shell, const char *src, const char *words, const char *const *env)
{
    char script[8192];
    if (strcmp(shell, "bash") == 0)
        snprintf(script, sizeof(script),
                 "source %s/cli/completion/duet.bash || exit 9\n"
                 "complete -p duet || exit 8\n"
                 "COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _duet; "
                 "((${#COMPREPLY[@]} == 0)) || printf '%%s\\n' \"${COMPREPLY[@]}\"\n",
                 src, words);
    else
        snprintf(script, sizeof(script),
                 "compadd() { [[ $1 == -- ]] && shift; (( $# == 0 )) || print -l -- \"$@\"; }\n"
                 "_files() { print FILES; }\n"
                 "words=(%s); CURRENT=${#words}\n"
                 "source %s/cli/completion/_duet\n",
                 words, src);
    const char *bash[] = {"bash", "--norc", "--noprofile", "-c", script, NULL};
    const char *zsh[] = {"zsh", "-f", "-c", script, NULL};
    struct run r = run_argv(strcmp(shell, "bash") == 0 ? bash : zsh, env, NULL);
    cr_assert_eq(r.status, 0, "%s completion: %s", shell, r.err);
    cr_expect_str_empty(r.err, "%s completion printed errors: %s", shell, r.err);
    free(r.err);
    return r.out;
}

#endif
