/*
 * listenaddr.c - see listenaddr.h.
 */
#include "common/listenaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int listen_addr_parse(const char *text, struct sockaddr_storage *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    const char *colon = strrchr(text, ':');
    char host[64];
    const char *h = text;
    size_t hn;
    bool v6 = text[0] == '[';
    if (!colon || colon == text)
        goto bad;
    if (v6) {
        if (colon[-1] != ']' || colon - 1 <= text + 1)
            goto bad;
        h = text + 1;
        hn = (size_t)(colon - 1 - h);
    } else {
        hn = (size_t)(colon - text);
    }
    if (hn == 0 || hn >= sizeof(host))
        goto bad;
    memcpy(host, h, hn);
    host[hn] = '\0';
    const char *ps = colon + 1;
    if (!*ps || strspn(ps, "0123456789") != strlen(ps) || strlen(ps) > 5)
        goto bad;
    unsigned long port = strtoul(ps, NULL, 10);
    if (port == 0 || port > 65535)
        goto bad;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        goto bad;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return 0;
bad:
    return duet_err_set(err, EINVAL,
                        "\"%.100s\" is not an address to listen on: give ADDRESS:PORT with an IP address, e.g. "
                        "127.0.0.1:9465 or [::1]:9465",
                        text);
}
