#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int duet_err_set(struct duet_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return -1;
}

int duet_err_sys(struct duet_err *err, const char *fmt, ...)
{
    int saved = errno;
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(saved));
    err->code = saved;
    errno = saved;
    return -1;
}

int duet_err_prefix(struct duet_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char ctx[DUET_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    char old[DUET_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    /* Truncation keeps the context and as much of the cause as fits. */
    int n = snprintf(err->msg, sizeof(err->msg), "%s", ctx);
    if (n >= 0 && (size_t)n + 2 < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %.*s", (int)(sizeof(err->msg) - (size_t)n - 3), old);
    return -1;
}

void duet_err_clear(struct duet_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
