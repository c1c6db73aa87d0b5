/* verbs.h - the duet verbs that need duetd (verbs.c, compare.c). */
#ifndef DUET_CLI_DAEMON_H
#define DUET_CLI_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"
#include "scheduler/hostprobe.h"

/* Runs verb with argv[0] == verb; -1 when verb is not one of them. */
int cli_verbs_run(const char *verb, int argc, char **argv);

/* What the verbs share. */
/* The daemon could not be reached: says why, returns exit status 3. */
int cli_unreachable(const struct duet_err *err);
/* Prints the daemon's error answer (and its diagnostics); exit status 1. */
int cli_refused(const char *body);
/* Adds the manifest files under path ({"name", "content"}) to files; -1
 * after saying why. */
int cli_add_path(json_t *files, const char *path);

/* What duetd would probe with, so a plan here agrees with it: the
 * options' values as given in *po, else $DUET_LIBVIRT_URI for the URI,
 * else duetd's config file (config: --config; else $DUET_CONFIG, else
 * /etc/duet/duetd.yaml when it exists).  Strings are kept in *keep.
 * 0, or 1 after printing the file's errors. */
struct cli_probe_keep {
    char libvirt_uri[256];
    char guest_kernel[4096];
};
int cli_probe_settle(const char *config, struct host_probe_opts *po, struct cli_probe_keep *keep);

/* exec.c: duet exec -i / -t (path /v1/workloads/NAME/exec, req holding
 * the command and timeout) and duet run -i / -t (path /v1/run, req the
 * run's) over the upgraded connection.  The exit status is the command's;
 * broken: the one for a command whose end never came. */
int cli_exec_interactive(const char *sock, const char *path, json_t *req, bool in, bool tty, int broken);

/* top.c: duet top */
int cli_top(int argc, char **argv);

/* compare.c */
int cli_compare(int argc, char **argv);
/* estimate.c: duet compare --estimate of the manifests at paths. */
int cli_compare_estimate(char **paths, size_t n, const char *guest_kernel, const char *config, bool json);

#endif
