#include "driver.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool read_counter(const char *host_if, const char *name, uint64_t *v)
{
    char path[128], buf[32];
    snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", host_if, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    *v = strtoull(buf, NULL, 10);
    return true;
}

bool driver_net_counters(const char *host_if, uint64_t *rx, uint64_t *tx)
{
    /* duet names these links itself; anything that could leave the
     * directory is not one of them */
    if (!host_if[0] || strlen(host_if) > 15 || strchr(host_if, '/') || host_if[0] == '.')
        return false;
    return read_counter(host_if, "tx_bytes", rx) && read_counter(host_if, "rx_bytes", tx);
}

const char *backend_kind_name(enum backend_kind k)
{
    switch (k) {
    case BACKEND_VM: return "vm";
    case BACKEND_CONTAINER: return "container";
    default: return "?";
    }
}
