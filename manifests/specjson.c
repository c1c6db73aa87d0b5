/*
 * specjson.c - workload_spec -> canonical JSON (see specjson.h).
 *
 * Every field the schema reads is written back, in the schema's own terms
 * (durations in ms, sizes in bytes), so loading the text again gives an
 * equal spec: tests/unit/test_specjson.c checks the round trip on every
 * example workload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specjson.h"

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

static json_t *str_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *kv_object(const struct kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    return o;
}

static json_t *duration(uint64_t ms)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llums", (unsigned long long)ms);
    return json_string(buf);
}

json_t *specjson_from_workload(const struct workload_spec *w)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "apiVersion", json_string(DUET_API_VERSION));
    json_object_set_new(doc, "kind", json_string("Workload"));
    json_t *meta = json_object();
    json_object_set_new(meta, "name", json_string(w->name));
    if (w->n_labels)
        json_object_set_new(meta, "labels", kv_object(w->labels, w->n_labels));
    json_object_set_new(doc, "metadata", meta);

    json_t *s = json_object();
    json_object_set_new(s, "role", json_string(wl_role_name(w->role)));
    json_object_set_new(s, "placement", json_string(wl_placement_name(w->placement)));
    json_object_set_new(s, "isolation", json_string(wl_isolation_name(w->isolation)));

    json_t *img = json_object();
    set_str(img, "rootfs", w->image.rootfs);
    set_str(img, "disk", w->image.disk);
    set_str(img, "kernel", w->image.kernel);
    set_str(img, "initrd", w->image.initrd);
    set_str(img, "cmdline", w->image.cmdline);
    set_str(img, "oci", w->image.oci);
    if (w->image.keep_disk)
        json_object_set_new(img, "keepDisk", json_true());
    json_object_set_new(s, "image", img);
    /* A userDataFile is kept as its content: a changed file is a changed
     * spec, and the store's copy loads back without the file. */
    if (w->cloud_init.user_data || w->cloud_init.network_config) {
        json_t *ci = json_object();
        set_str(ci, "userData", w->cloud_init.user_data);
        set_str(ci, "networkConfig", w->cloud_init.network_config);
        json_object_set_new(s, "cloudInit", ci);
    }

    if (w->command)
        json_object_set_new(s, "command", str_array(w->command, w->n_command));
    if (w->args)
        json_object_set_new(s, "args", str_array(w->args, w->n_args));
    /* Secrets by reference and sealed version, never their values: the
     * plain variables first, then the secret ones, each in file order. */
    json_t *env = kv_object(w->env, w->n_env), *files = json_array();
    for (size_t i = 0; i < w->n_secrets; i++) {
        const struct wl_secret *x = &w->secrets[i];
        json_t *o = json_object();
        if (x->env) {
            set_str(o, x->file ? "secretFile" : "secret", x->file ? x->file : x->name);
            set_str(o, "version", x->version);
            json_object_set_new(env, x->env, o);
        } else {
            set_str(o, "name", x->name);
            set_str(o, "file", x->file);
            set_str(o, "version", x->version);
            json_array_append_new(files, o);
        }
    }
    if (json_object_size(env))
        json_object_set_new(s, "env", env);
    else
        json_decref(env);
    if (json_array_size(files))
        json_object_set_new(s, "secrets", files);
    else
        json_decref(files);
    set_str(s, "workingDir", w->working_dir);
    set_str(s, "user", w->user);

    json_t *res = json_object();
    if (w->resources.cpus_set)
        json_object_set_new(res, "cpus", json_real(w->resources.cpus));
    if (w->resources.memory_set)
        json_object_set_new(res, "memory", json_integer((json_int_t)w->resources.memory));
    if (w->resources.disk_set)
        json_object_set_new(res, "disk", json_integer((json_int_t)w->resources.disk));
    if (w->resources.pids && w->resources.pids != WL_DEFAULT_PIDS)
        json_object_set_new(res, "pids", json_integer((json_int_t)w->resources.pids));
    if (json_object_size(res))
        json_object_set_new(s, "resources", res);
    else
        json_decref(res);

    if (w->needs.own_kernel || w->needs.n_devices || w->needs.start_within_ms) {
        json_t *needs = json_object();
        if (w->needs.own_kernel)
            json_object_set_new(needs, "ownKernel", json_true());
        if (w->needs.n_devices)
            json_object_set_new(needs, "devices", str_array(w->needs.devices, w->needs.n_devices));
        if (w->needs.start_within_ms)
            json_object_set_new(needs, "startWithin", duration(w->needs.start_within_ms));
        json_object_set_new(s, "needs", needs);
    }

    json_object_set_new(s, "restart", json_string(wl_restart_name(w->restart)));
    if (w->network != WL_NETWORK_FLEET)
        json_object_set_new(s, "network", json_string(wl_network_name(w->network)));
    if (w->n_depends_on) {
        json_t *deps = json_array();
        for (size_t i = 0; i < w->n_depends_on; i++)
            json_array_append_new(deps, json_string(w->depends_on[i].name));
        json_object_set_new(s, "dependsOn", deps);
    }

    if (w->health.kind != WL_HEALTH_NONE) {
        json_t *h = json_object();
        if (w->health.kind == WL_HEALTH_EXEC)
            json_object_set_new(h, "exec", str_array(w->health.exec, w->health.n_exec));
        else
            json_object_set_new(h, "tcp", json_integer(w->health.tcp));
        json_object_set_new(h, "interval", duration(w->health.interval_ms));
        json_object_set_new(h, "timeout", duration(w->health.timeout_ms));
        json_object_set_new(h, "retries", json_integer(w->health.retries));
        if (w->health.start_period_set)
            json_object_set_new(h, "startPeriod", duration(w->health.start_period_ms));
        if (w->health.start_interval_ms)
            json_object_set_new(h, "startInterval", duration(w->health.start_interval_ms));
        if (w->health.restart_unhealthy)
            json_object_set_new(h, "onUnhealthy", json_string("restart"));
        json_object_set_new(s, "healthcheck", h);
    }

    if (w->compare.probe != WL_COMPARE_NONE) {
        json_t *cmp = json_object();
        if (w->compare.probe == WL_COMPARE_TCP) {
            json_object_set_new(cmp, "tcp", json_integer(w->compare.port));
        } else if (w->compare.probe == WL_COMPARE_EXEC) {
            json_object_set_new(cmp, "exec", str_array(w->compare.exec, w->compare.n_exec));
        } else {
            json_t *h = json_object();
            json_object_set_new(h, "path", json_string(w->compare.http_path));
            if (w->compare.port)
                json_object_set_new(h, "port", json_integer(w->compare.port));
            if (w->compare.concurrency)
                json_object_set_new(h, "concurrency", json_integer(w->compare.concurrency));
            if (w->compare.duration_ms)
                json_object_set_new(h, "duration", duration(w->compare.duration_ms));
            json_object_set_new(cmp, "http", h);
        }
        json_object_set_new(s, "compare", cmp);
    }

    if (w->n_ports) {
        json_t *ports = json_array();
        for (size_t i = 0; i < w->n_ports; i++) {
            json_t *p = json_object();
            json_object_set_new(p, "host", json_integer(w->ports[i].host));
            json_object_set_new(p, "port", json_integer(w->ports[i].port));
            json_object_set_new(p, "protocol", json_string(w->ports[i].protocol == WL_PROTO_UDP ? "udp" : "tcp"));
            json_array_append_new(ports, p);
        }
        json_object_set_new(s, "ports", ports);
    }
    if (w->n_volumes) {
        json_t *vols = json_array();
        for (size_t i = 0; i < w->n_volumes; i++) {
            json_t *v = json_object();
            if (w->volumes[i].name)
                json_object_set_new(v, "name", json_string(w->volumes[i].name));
            else
                json_object_set_new(v, "source", json_string(w->volumes[i].source));
            if (w->volumes[i].size)
                json_object_set_new(v, "size", json_integer((json_int_t)w->volumes[i].size));
            json_object_set_new(v, "target", json_string(w->volumes[i].target));
            json_object_set_new(v, "readOnly", json_boolean(w->volumes[i].read_only));
            json_array_append_new(vols, v);
        }
        json_object_set_new(s, "volumes", vols);
    }
    if (w->host_access)
        json_object_set_new(s, "hostAccess", json_true());
    json_object_set_new(doc, "spec", s);
    return doc;
}

char *specjson_text(const struct workload_spec *w)
{
    json_t *doc = specjson_from_workload(w);
    char *t = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(doc);
    if (!t)
        abort();
    return t;
}

void specjson_load(struct manifest_set *set, const char *name, char *const *texts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(texts[i]) + 5;
    char *buf = malloc(len + 1);
    if (!buf)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(buf + o, "---\n%s\n", texts[i]);
    set->loading_stored = true;
    manifest_set_load_buffer(set, name, buf, o);
    set->loading_stored = false;
    free(buf);
}
