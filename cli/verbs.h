/* verbs.h - the duet verbs that need duetd (verbs.c, compare.c). */
#ifndef DUET_CLI_DAEMON_H
#define DUET_CLI_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* Runs verb with argv[0] == verb; -1 when verb is not one of them. */
int cli_verbs_run(const char *verb, int argc, char **argv);

/* What the verbs share. */
/* The daemon could not be reached: says why, returns exit status 3. */
int cli_unreachable(const struct duet_err *err);
/* Prints the daemon's error answer (and its diagnostics); exit status 1. */
int cli_refused(int status, const char *body);
/* Adds the manifest files under path ({"name", "content"}) to files; -1
 * after saying why. */
int cli_add_path(json_t *files, const char *path);

/* compare.c */
int cli_compare(int argc, char **argv);
/* estimate.c: duet compare --estimate of the manifests at paths. */
int cli_compare_estimate(char **paths, size_t n, const char *guest_kernel, bool json);

#endif
