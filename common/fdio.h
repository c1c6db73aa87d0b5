/*
 * fdio.h - reading and writing a whole buffer on a stream, across short
 * reads, short writes and EINTR.  Header-only and allocation-free: the
 * container spawner (in duet-init's static binary) uses it as the runtime
 * does.
 */
#ifndef DUET_FDIO_H
#define DUET_FDIO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

/* All n bytes, or false (end of file counts as failure). */
static inline bool duet_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* All n bytes to a file or pipe; or false with errno set. */
static inline bool duet_write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return false;
        }
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* All n bytes to a socket, never raising SIGPIPE; or false. */
static inline bool duet_send_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

#endif
