#include "caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t container_caps_default(void)
{
    static const int keep[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
                               CAP_SETGID, CAP_SETUID,       CAP_SETFCAP,          CAP_SETPCAP,
                               CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE};
    uint64_t m = 0;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        m |= UINT64_C(1) << keep[i];
    return m;
}

int container_caps_last(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int last = CAP_LAST_CAP;
    if (f) {
        if (fscanf(f, "%d", &last) != 1)
            last = CAP_LAST_CAP;
        fclose(f);
    }
    return last;
}

int container_caps_apply(uint64_t keep, int last_cap)
{
    /* Keep only what this process has: a daemon started without one of the
     * default capabilities (a restricted host) must still start containers. */
    struct __user_cap_header_struct cur_hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct cur[2];
    if (syscall(SYS_capget, &cur_hdr, cur) == 0)
        keep &= (uint64_t)cur[0].permitted | ((uint64_t)cur[1].permitted << 32);
    for (int c = 0; c <= last_cap && c < 64; c++)
        if (!(keep & (UINT64_C(1) << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {
        {.effective = (uint32_t)keep, .permitted = (uint32_t)keep, .inheritable = 0},
        {.effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32), .inheritable = 0},
    };
    return (int)syscall(SYS_capset, &hdr, data);
}
