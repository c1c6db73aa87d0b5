/*
 * Host paths a workload is not given without spec.hostAccess: the host's
 * root, its system directories, duet's own, however they are spelled
 * (trailing slashes, "..", symlinks to them).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"
#include "manifests/hostpath.h"

static const char *const refused[] = {
    "/", "/etc", "/etc/", "//etc", "/etc/ssh", "/proc", "/proc/sys/kernel", "/dev", "/dev/sda", "/sys",
    "/sys/fs/cgroup", "/usr", "/usr/bin", "/boot", "/lib", "/run", "/run/duet", "/var/run", "/var", "/var/lib",
    "/var/lib/duet", "/var/lib/duet/containers", "/tmp/../etc", "/srv/./../proc", "/bin", "/sbin",
};
static const char *const allowed[] = {"/srv/data", "/tmp", "/tmp/x", "/home/user/data", "/mnt/disk", "/opt/app",
                                      "/var/lib/app", "/etcetera", "/procfs", "/devel", "/srv/run", "/data"};

Test(hostpath, system_paths_by_any_spelling)
{
    char r[4096];
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), WL_OK "  volumes: [{source: \"%s\", target: /data}]\n", refused[i]);
        struct manifest_set *set = load_yaml(yaml);
        cr_expect(has_diag(set, 0, 0, "spec.hostAccess: true"), "volume %s was accepted", refused[i]);
        manifest_set_free(set);
        snprintf(yaml, sizeof(yaml), WL_OK "  hostAccess: true\n  volumes: [{source: \"%s\", target: /data}]\n",
                 refused[i]);
        set = load_yaml(yaml);
        cr_expect(manifest_set_ok(set), "with hostAccess, volume %s is allowed", refused[i]);
        char warn[1024];
        cr_expect(set->n_workloads == 1 && hostpath_warning(set->workloads[0], warn, sizeof(warn)) &&
                      strstr(warn, "is or holds the host's"),
                  "and warned about");
        manifest_set_free(set);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        cr_expect_null(hostpath_protected(allowed[i], NULL, r, sizeof(r)), "%s is refused", allowed[i]);
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), WL_OK "  volumes: [{source: \"%s\", target: /data}]\n", allowed[i]);
        struct manifest_set *set = load_yaml(yaml);
        cr_expect(manifest_set_ok(set), "volume %s", allowed[i]);
        char warn[64];
        cr_expect(!manifest_set_ok(set) || !hostpath_warning(set->workloads[0], warn, sizeof(warn)));
        manifest_set_free(set);
    }
}

Test(hostpath, a_rootfs_that_is_the_host_and_links_to_it)
{
    struct manifest_set *set = load_yaml(WL_HEAD "  image: {rootfs: /}\n  command: [/bin/sh]\n");
    cr_expect(has_diag(set, 6, 19, "spec.image.rootfs / is or holds the host's"), "a rootfs of /");
    manifest_set_free(set);
    char dir[] = "/tmp/duet-hp-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char link[128], yaml[1024];
    snprintf(link, sizeof(link), "%s/root", dir);
    cr_assert_eq(symlink("/", link), 0);
    snprintf(yaml, sizeof(yaml), WL_HEAD "  image: {rootfs: %s}\n  command: [/bin/sh]\n", link);
    set = load_yaml(yaml);
    cr_expect(has_diag(set, 0, 0, "(it leads to /)"), "a rootfs linking to /");
    manifest_set_free(set);
    snprintf(link, sizeof(link), "%s/etc", dir);
    cr_assert_eq(symlink("/etc", link), 0);
    snprintf(yaml, sizeof(yaml), WL_OK "  volumes: [{source: %s, target: /data}]\n", link);
    set = load_yaml(yaml);
    cr_expect(has_diag(set, 0, 0, "(it leads to /etc)"), "a volume linking to /etc");
    manifest_set_free(set);
    unlink(link);
    snprintf(link, sizeof(link), "%s/root", dir);
    unlink(link);
    rmdir(dir);
}

Test(hostpath, the_daemons_own_paths)
{
    const char *const mine[] = {"/srv/duet-state", "/run/duet2", NULL};
    char r[4096];
    cr_expect_str_eq(hostpath_protected("/srv/duet-state/containers/x/upper", mine, r, sizeof(r)), "/srv/duet-state");
    cr_expect_str_eq(hostpath_protected("/srv", mine, r, sizeof(r)), "/srv/duet-state", "a parent holds it");
    cr_expect_null(hostpath_protected("/srv/duet-statefile", mine, r, sizeof(r)), "a sibling with a longer name");
    cr_expect_null(hostpath_protected("/srv/other", mine, r, sizeof(r)));
}
