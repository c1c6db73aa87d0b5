/*
 * cloudinit.c - see cloudinit.h.
 *
 * Everything duet writes itself (the name, the addresses, the MAC) is of
 * characters that need no quoting in YAML; it is quoted all the same, so
 * that no value can start a new key.  What the user gave (userData,
 * networkConfig) goes on the disc byte for byte: it is theirs, and it is
 * read only by their own guest.
 */
#include "cloudinit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "iso9660.h"
#include "virtiofs.h"

void vm_seed_files_free(struct vm_seed_files *f)
{
    free(f->meta_data);
    free(f->user_data);
    free(f->network_config);
    memset(f, 0, sizeof(*f));
}

/* s as a YAML double-quoted scalar: a target is the user's path. */
static void yaml_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* meta-data: the instance, the name, and the volumes a disk image's own
 * init can mount (cloud-init shows them to user-data templates as
 * ds.meta_data.duet_volumes): tag, target, readOnly each. */
static char *meta_data(const struct workload_spec *w)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "instance-id: \"duet-%s\"\nlocal-hostname: \"%s\"\n", w->name, w->name);
    if (w->n_volumes)
        fprintf(f, "duet_volumes:\n");
    for (size_t i = 0; i < w->n_volumes; i++) {
        fprintf(f, "  - tag: \"" VM_VIRTIOFS_TAG_PREFIX "%zu\"\n    target: ", i);
        yaml_quoted(f, w->volumes[i].target);
        fprintf(f, "\n    readOnly: %s\n", w->volumes[i].read_only ? "true" : "false");
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int vm_seed_files_make(const struct workload_spec *w, const struct vm_seed_net *net, struct vm_seed_files *out,
                       struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    if (!(out->meta_data = meta_data(w)))
        rc = -1;
    const char *ud = w->cloud_init.user_data ? w->cloud_init.user_data : "#cloud-config\n{}\n";
    if (rc == 0 && !(out->user_data = strdup(ud)))
        rc = -1;
    if (rc == 0 && w->cloud_init.network_config) {
        if (!(out->network_config = strdup(w->cloud_init.network_config)))
            rc = -1;
    } else if (rc == 0 && net) {
        /* version 2, as netplan reads it and cloud-init renders it for
         * ifupdown, networkd, NetworkManager or sysconfig alike.  The
         * default route as gateway4, not as a route: cloud-init renders
         * routes for ifupdown as `route add`, which a minimal image lacks
         * (net-tools), and gateway4 as ifupdown's own gateway line. */
        if (asprintf(&out->network_config,
                     "version: 2\n"
                     "ethernets:\n"
                     "  eth0:\n"
                     "    match:\n"
                     "      macaddress: \"%s\"\n"
                     "    set-name: eth0\n"
                     "    addresses: [\"%s/%u\"]\n"
                     "    gateway4: \"%s\"\n"
                     "    nameservers:\n"
                     "      addresses: [\"%s\"]\n",
                     net->mac, net->addr, net->prefix, net->gateway, net->dns) < 0)
            out->network_config = NULL, rc = -1;
    }
    if (rc < 0) {
        vm_seed_files_free(out);
        return duet_err_set(err, ENOMEM, "VM %s: no memory for its cloud-init seed", w->name);
    }
    return 0;
}

int vm_seed_write(const char *path, const struct workload_spec *w, const struct vm_seed_net *net, time_t mtime,
                  struct duet_err *err)
{
    struct vm_seed_files f;
    if (vm_seed_files_make(w, net, &f, err) < 0)
        return -1;
    struct iso_file files[3] = {
        {"meta-data", f.meta_data, strlen(f.meta_data)},
        {"user-data", f.user_data, strlen(f.user_data)},
        {"network-config", f.network_config, f.network_config ? strlen(f.network_config) : 0},
    };
    int rc = 0;
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        rc = duet_err_sys(err, "VM %s: cannot create its cloud-init seed %s", w->name, path);
    else if (iso_write(fd, "cidata", files, f.network_config ? 3 : 2, mtime, err) < 0)
        rc = duet_err_prefix(err, "VM %s: its cloud-init seed %s", w->name, path);
    if (rc < 0 && fd >= 0)
        unlink(path);
    vm_seed_files_free(&f);
    return rc;
}
