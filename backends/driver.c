#include "driver.h"

#include "common/fsutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One counter of the link's, through *keep (opened now when -1) and read
 * again from its start: a scrape of hundreds of links walks no path. */
static bool read_counter(int *keep, const char *host_if, const char *name, uint64_t *v)
{
    char buf[32];
    if (*keep < 0) {
        char path[128];
        snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", host_if, name);
        *keep = duet_fd_keep_high(open(path, O_RDONLY | O_CLOEXEC));
        if (*keep < 0)
            return false;
    }
    ssize_t n = pread(*keep, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    *v = strtoull(buf, NULL, 10);
    return true;
}

bool driver_net_counters(struct driver_net_files *f, const char *host_if, uint64_t *rx, uint64_t *tx)
{
    /* duet names these links itself; anything that could leave the
     * directory is not one of them */
    if (!host_if[0] || strlen(host_if) > 15 || strchr(host_if, '/') || host_if[0] == '.')
        return false;
    return read_counter(&f->fd[0], host_if, "tx_bytes", rx) && read_counter(&f->fd[1], host_if, "rx_bytes", tx);
}

void driver_net_files_init(struct driver_net_files *f)
{
    f->fd[0] = f->fd[1] = -1;
}

void driver_net_files_close(struct driver_net_files *f)
{
    for (int i = 0; i < 2; i++)
        if (f->fd[i] >= 0) {
            close(f->fd[i]);
            f->fd[i] = -1;
        }
}

const char *backend_kind_name(enum backend_kind k)
{
    switch (k) {
    case BACKEND_VM: return "vm";
    case BACKEND_CONTAINER: return "container";
    default: return "?";
    }
}
