#include "hostprobe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "backends/container/container.h"
#include "common/sysinfo.h"
#include "backends/vm/vm.h"

static int read_memtotal(uint64_t *bytes, struct duet_err *err)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return duet_err_sys(err, "cannot read /proc/meminfo");
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            *bytes = (uint64_t)kb * 1024;
            return 0;
        }
    }
    return duet_err_set(err, EINVAL, "/proc/meminfo has no MemTotal line");
}

int host_probe(struct host_info *h, const struct host_probe_opts *opts, struct duet_err *err)
{
    memset(h, 0, sizeof(*h));
    if (gethostname(h->name, sizeof(h->name) - 1) < 0)
        snprintf(h->name, sizeof(h->name), "localhost");
    snprintf(h->source, sizeof(h->source), "probed");
    h->cpus = (double)duet_usable_cpus();
    if (read_memtotal(&h->memory, err) < 0)
        return -1;
    h->reserve_memory = host_default_reserve_memory(h->memory);
    h->overcommit_cpu = HOST_DEFAULT_OVERCOMMIT_CPU;
    h->overcommit_memory = HOST_DEFAULT_OVERCOMMIT_MEMORY;
    if (vm_backend_probe(opts->libvirt_uri, opts->guest_kernel, &h->backend[BACKEND_VM], err) < 0)
        return duet_err_prefix(err, "probing the VM backend");
    if (container_backend_probe(opts->cgroup_root ? opts->cgroup_root : "/sys/fs/cgroup",
                                &h->backend[BACKEND_CONTAINER], err) < 0)
        return duet_err_prefix(err, "probing the container backend");
    return 0;
}
