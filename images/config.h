/*
 * config.h - what an image's config gives a workload by default: the
 * program (Entrypoint, Cmd), its environment, user, working directory,
 * the ports it says it listens on, and the signal that stops it.  Also
 * the platform and the layers' uncompressed digests (rootfs.diff_ids).
 *
 * A config is image input: sizes and counts are bounded, every string is
 * checked to be text without NUL or newline where a newline would matter.
 */
#ifndef DUET_IMAGES_CONFIG_H
#define DUET_IMAGES_CONFIG_H

#include <stddef.h>

#include "common/err.h"

#define IMAGE_CONFIG_MAX (1u << 20)   /* bytes of the config blob */
#define IMAGE_ENV_MAX (256u << 10)    /* bytes of all of Env */
#define IMAGE_LIST_MAX 4096           /* entries of any one list */

struct image_config {
    char **entrypoint, **cmd, **env, **exposed_ports;   /* NULL-terminated; NULL when absent */
    size_t n_entrypoint, n_cmd, n_env, n_exposed_ports;
    char *user, *working_dir, *stop_signal;             /* NULL when absent or empty */
    char *os, *architecture;
};

/* Parses a config blob; -1 with err naming the field. */
int image_config_parse(const char *json, size_t len, struct image_config *out, struct duet_err *err);
void image_config_free(struct image_config *c);

#endif
