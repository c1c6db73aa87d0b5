/*
 * config.c - an image config (OCI image-spec config.md; Docker's is the
 * same for the fields read here) into struct image_config.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void free_list(char **l)
{
    for (size_t i = 0; l && l[i]; i++)
        free(l[i]);
    free(l);
}

void image_config_free(struct image_config *c)
{
    free_list(c->entrypoint);
    free_list(c->cmd);
    free_list(c->env);
    free_list(c->exposed_ports);
    free(c->user);
    free(c->working_dir);
    free(c->stop_signal);
    free(c->os);
    free(c->architecture);
    memset(c, 0, sizeof(*c));
}

static int get_string(json_t *obj, const char *key, const char *field, char **out, struct duet_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return duet_err_set(err, EINVAL, "image config: %s is not a string", field);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n || n > 4096)
        return duet_err_set(err, EINVAL, "image config: %s holds a NUL byte or is longer than 4096", field);
    if (n && !(*out = strdup(s)))
        abort();
    return 0;
}

/* A list of strings; *total (when not NULL) adds up their bytes. */
static int get_list(json_t *obj, const char *key, const char *field, char ***out, size_t *n_out, size_t *total,
                    struct duet_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return duet_err_set(err, EINVAL, "image config: %s is not a list of strings", field);
    size_t n = json_array_size(v);
    if (n > IMAGE_LIST_MAX)
        return duet_err_set(err, E2BIG, "image config: %s has %zu entries; at most %u", field, n, IMAGE_LIST_MAX);
    char **l = calloc(n + 1, sizeof(*l));
    if (!l)
        abort();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
            free_list(l);
            return duet_err_set(err, EINVAL, "image config: %s[%zu] is not a string without NUL bytes", field, i);
        }
        if (total && (*total += json_string_length(e)) > IMAGE_ENV_MAX) {
            free_list(l);
            return duet_err_set(err, E2BIG, "image config: %s holds more than %u KiB", field, IMAGE_ENV_MAX >> 10);
        }
        if (!(l[i] = strdup(json_string_value(e))))
            abort();
    }
    *out = l;
    *n_out = n;
    return 0;
}

int image_config_parse(const char *json, size_t len, struct image_config *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len > IMAGE_CONFIG_MAX)
        return duet_err_set(err, E2BIG, "image config: %zu bytes; at most %u", len, IMAGE_CONFIG_MAX);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return duet_err_set(err, EINVAL, "image config is not JSON: %s (line %d)", je.text, je.line);
    int rc = -1;
    if (!json_is_object(root)) {
        duet_err_set(err, EINVAL, "image config is not a JSON object");
        goto out;
    }
    if (get_string(root, "os", "os", &out->os, err) < 0 ||
        get_string(root, "architecture", "architecture", &out->architecture, err) < 0)
        goto out;
    json_t *c = json_object_get(root, "config");
    if (c && !json_is_null(c)) {
        if (!json_is_object(c)) {
            duet_err_set(err, EINVAL, "image config: config is not an object");
            goto out;
        }
        size_t env_bytes = 0;
        if (get_list(c, "Entrypoint", "config.Entrypoint", &out->entrypoint, &out->n_entrypoint, NULL, err) < 0 ||
            get_list(c, "Cmd", "config.Cmd", &out->cmd, &out->n_cmd, NULL, err) < 0 ||
            get_list(c, "Env", "config.Env", &out->env, &out->n_env, &env_bytes, err) < 0 ||
            get_string(c, "User", "config.User", &out->user, err) < 0 ||
            get_string(c, "WorkingDir", "config.WorkingDir", &out->working_dir, err) < 0 ||
            get_string(c, "StopSignal", "config.StopSignal", &out->stop_signal, err) < 0)
            goto out;
        for (size_t i = 0; i < out->n_env; i++)
            if (!strchr(out->env[i], '=') || out->env[i][0] == '=') {
                duet_err_set(err, EINVAL, "image config: config.Env[%zu] \"%.40s\" is not NAME=VALUE", i, out->env[i]);
                goto out;
            }
        json_t *ports = json_object_get(c, "ExposedPorts");
        if (ports && !json_is_null(ports)) {
            if (!json_is_object(ports) || json_object_size(ports) > IMAGE_LIST_MAX) {
                duet_err_set(err, EINVAL, "image config: config.ExposedPorts is not an object of at most %u ports",
                             IMAGE_LIST_MAX);
                goto out;
            }
            out->exposed_ports = calloc(json_object_size(ports) + 1, sizeof(char *));
            if (!out->exposed_ports)
                abort();
            const char *k;
            json_t *v;
            json_object_foreach(ports, k, v) {
                (void)v;
                if (strlen(k) > 32) {
                    duet_err_set(err, EINVAL, "image config: config.ExposedPorts has a key longer than 32");
                    goto out;
                }
                if (!(out->exposed_ports[out->n_exposed_ports++] = strdup(k)))
                    abort();
            }
        }
    }
    rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        image_config_free(out);
    return rc;
}
