/*
 * duet-virtiofsd - the virtiofsd libvirt starts for a duet volume.
 *
 * libvirt runs it as it would run virtiofsd, with the same arguments (the
 * shared directory in "-o source=DIR" for QEMU's virtiofsd, or
 * "--shared-dir DIR" for the Rust one).  Before it hands over to the
 * host's virtiofsd it:
 *
 *   1. opens DIR without following a final symlink and checks that it
 *      still leads to DIR itself: duet resolved and checked the path (no
 *      volume may lead into the host's /etc or duet's state), and a link
 *      swapped in since, by anyone who can write beside it, is refused;
 *   2. takes a copy of the mount tree it opened, read-only throughout when
 *      run as duet-virtiofsd-ro;
 *   3. in a mount namespace of its own, mounts that copy over DIR, so the
 *      virtiofsd it then runs shares exactly what was checked, and a
 *      read-only volume is read-only on the host's side: the guest is root
 *      in there and can remount its own side as it likes.
 *
 * Anything else (--print-capabilities, --help) goes to virtiofsd as is.
 */
#include "virtiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *me = "duet-virtiofsd";

static int die(const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s: %s\n", me, what, arg ? " " : "", arg ? arg : "", strerror(errno));
    return 1;
}

/* The value of source= in a virtiofsd -o list, where ",," stands for a
 * comma, in out. */
static bool opt_source(const char *opts, char *out, size_t len)
{
    for (const char *p = opts; *p;) {
        const char *start = p;
        size_t o = 0;
        while (*p && !(*p == ',' && p[1] != ',')) {
            if (*p == ',')
                p++;   /* ",," */
            if (o + 1 < len)
                out[o++] = *p;
            p++;
        }
        out[o] = '\0';
        if (*p == ',')
            p++;
        if (strncmp(start, "source=", 7) == 0) {
            memmove(out, out + 7, strlen(out + 7) + 1);
            return true;
        }
    }
    return false;
}

static bool find_source(int argc, char **argv, char *out, size_t len)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0 && i + 1 < argc && opt_source(argv[i + 1], out, len))
            return true;
        if (strncmp(a, "-o", 2) == 0 && a[2] && opt_source(a + 2, out, len))
            return true;
        if (strcmp(a, "--shared-dir") == 0 && i + 1 < argc) {
            snprintf(out, len, "%s", argv[i + 1]);
            return true;
        }
        if (strncmp(a, "--shared-dir=", 13) == 0) {
            snprintf(out, len, "%s", a + 13);
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    char real[PATH_MAX];
    if (!vm_virtiofsd_find(real, sizeof(real))) {
        fprintf(stderr, "%s: this host has no virtiofsd; install it with: apt-get install qemu-system-common\n", me);
        return 1;
    }
    char self[PATH_MAX];
    snprintf(self, sizeof(self), "%s", argv[0]);
    const char *base = basename(self);
    size_t bl = strlen(base), sl = strlen(VM_VIRTIOFSD_RO_SUFFIX);
    bool read_only = bl > sl && strcmp(base + bl - sl, VM_VIRTIOFSD_RO_SUFFIX) == 0;

    char dir[PATH_MAX];
    if (find_source(argc, argv, dir, sizeof(dir))) {
        if (dir[0] != '/') {
            errno = EINVAL;
            return die("the shared directory must be an absolute path:", dir);
        }
        int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return die("cannot open the shared directory", dir);
        char link[64], now[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, now, sizeof(now) - 1);
        if (n <= 0)
            return die("cannot tell where the shared directory leads:", dir);
        now[n] = '\0';
        if (strcmp(now, dir) != 0) {
            fprintf(stderr, "%s: the shared directory %s now leads to %s (a symlink was put on its path): refused\n",
                    me, dir, now);
            return 1;
        }
        /* The copy is taken here, in the host's namespace: a mount can
         * only be cloned from the namespace it is in. */
        int tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (tree < 0)
            return die("cannot take a copy of", dir);
        if (read_only) {
            struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
            if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return die("cannot make read-only:", dir);
        }
        /* Slave: the host's later unmounts still reach this namespace;
         * nothing mounted here reaches the host. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
            return die("cannot make a mount namespace for", dir);
        if (syscall(SYS_move_mount, tree, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return die("cannot mount the checked directory on", dir);
        close(tree);
        close(fd);
    }
    argv[0] = real;
    execv(real, argv);
    return die("cannot run", real);
}
