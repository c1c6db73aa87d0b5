/* bench_runc.h - runc, the container benchmarks' reference: a quiet
 * command runner and a bundle that runs /bin/true from a rootfs. */
#ifndef DUET_BENCH_RUNC_H
#define DUET_BENCH_RUNC_H

#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs argv with stdout and stderr on /dev/null; its exit status.
 * posix_spawn (a vfork, no copy of this process's page tables): the
 * benchmark links libvirt and the runtime, and a fork of it would add its
 * own size to every command it times. */
static inline int run_quiet(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t p;
    int rc = posix_spawnp(&p, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return 127;
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A runc bundle from `runc spec`, changed to run /bin/true from rootfs
 * (read-only) in a cgroup namespace too, as duet's containers have. */
static inline int runc_bundle(const char *dir, const char *rootfs)
{
    const char *spec[] = {"runc", "spec", "--bundle", dir, NULL};
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
    unlink(cfg);
    if (run_quiet(spec) != 0)
        return -1;
    json_t *c = json_load_file(cfg, 0, NULL);
    if (!c)
        return -1;
    json_object_set_new(c, "root", json_pack("{s:s,s:b}", "path", rootfs, "readonly", 1));
    json_t *proc = json_object_get(c, "process");
    json_object_set_new(proc, "args", json_pack("[s]", "/bin/true"));
    json_object_set_new(proc, "terminal", json_false());
    json_array_append_new(json_object_get(json_object_get(c, "linux"), "namespaces"),
                          json_pack("{s:s}", "type", "cgroup"));
    int rc = json_dump_file(c, cfg, JSON_INDENT(1));
    json_decref(c);
    return rc;
}

#endif
