#include "loopdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cleanup.h"

/* Another process may take the device we were offered before we
 * configure it (EBUSY): then ask again. */
int duet_loop_attach(int img, unsigned block_size, unsigned flags, const char *label, const char *what,
                     struct duet_err *err)
{
    _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return duet_err_sys(err, "%s needs a loop device, and /dev/loop-control cannot be opened; load the module: "
                                 "modprobe loop",
                            what);
    for (int attempt = 0; attempt < 64; attempt++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            return duet_err_sys(err, "no free loop device for %s", what);
        char dev[32];
        snprintf(dev, sizeof(dev), "/dev/loop%d", n);
        int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;   /* udev has not made the node yet */
            return duet_err_sys(err, "%s: cannot open %s", what, dev);
        }
        struct loop_config cfg = {
            .fd = (uint32_t)img,
            .block_size = block_size,
            .info = {.lo_flags = flags},
        };
        snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", label);
        if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
            return fd;
        int e = errno;
        close(fd);
        if (e != EBUSY) {
            errno = e;
            return duet_err_sys(err, "%s: cannot attach it to %s", what, dev);
        }
    }
    return duet_err_set(err, EBUSY, "%s: every free loop device was taken before it could be used", what);
}
