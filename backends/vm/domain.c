#include "domain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "qga.h"
#include "common/utf8.h"

bool vm_xml_escape(const char *str, char *out, size_t len, size_t *written)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;
    while (*s) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: break;
        }
        if (rep) {
            size_t n = strlen(rep);
            if (o + n >= len)
                return false;
            memcpy(out + o, rep, n);
            o += n;
            s++;
            continue;
        }
        /* XML 1.0 allows tab, newline, carriage return; no other control
         * character, not even escaped. */
        if (*s < 0x20 || *s == 0x7f)
            return false;
        size_t n = duet_utf8_seq(s, 4);   /* a NUL ends any sequence early */
        if (n == 0 || o + n >= len)
            return false;
        memcpy(out + o, s, n);
        o += n;
        s += n;
    }
    out[o] = '\0';
    if (written)
        *written = o;
    return true;
}

struct xbuf {
    char *buf;
    size_t len, cap;
    bool bad;
    const char *bad_field;
};

static void put(struct xbuf *x, const char *s)
{
    size_t n = strlen(s);
    if (x->len + n + 1 > x->cap) {
        x->cap = (x->len + n + 1) * 2;
        x->buf = realloc(x->buf, x->cap);
        if (!x->buf)
            abort();
    }
    memcpy(x->buf + x->len, s, n + 1);
    x->len += n;
}

/* Writes before, the escaped value, after. */
static void put_value(struct xbuf *x, const char *field, const char *before, const char *value, const char *after)
{
    size_t need = strlen(value) * 6 + 1;
    char *esc = malloc(need);
    if (!esc)
        abort();
    if (!vm_xml_escape(value, esc, need, NULL)) {
        if (!x->bad)
            x->bad_field = field;
        x->bad = true;
        free(esc);
        return;
    }
    put(x, before);
    put(x, esc);
    put(x, after);
    free(esc);
}

int vm_domain_xml(const struct vm_domain_spec *s, char **out, struct duet_err *err)
{
    *out = NULL;
    if (!s->name || !s->name[0])
        return duet_err_set(err, EINVAL, "a VM needs a name");
    if (!s->kernel && !s->disk)
        return duet_err_set(err, EINVAL, "VM %s: give a kernel or a disk to boot", s->name);
    if (s->initrd && !s->kernel)
        return duet_err_set(err, EINVAL, "VM %s: an initrd needs a kernel", s->name);
    if (s->memory_kib == 0 || s->vcpus == 0)
        return duet_err_set(err, EINVAL, "VM %s: memory and vCPUs must be above 0", s->name);
    struct xbuf x = {0};
    char num[64];
    put(&x, s->kvm ? "<domain type='kvm'>\n" : "<domain type='qemu'>\n");
    put_value(&x, "name", "  <name>", s->name, "</name>\n");
    if (s->uuid)
        put_value(&x, "uuid", "  <uuid>", s->uuid, "</uuid>\n");
    put(&x, "  <metadata>\n");
    put(&x, "    <" VM_METADATA_PREFIX ":workload xmlns:" VM_METADATA_PREFIX "='" VM_METADATA_NS "'>\n");
    if (s->workload)
        put_value(&x, "workload", "      <" VM_METADATA_PREFIX ":name>", s->workload, "</" VM_METADATA_PREFIX ":name>\n");
    if (s->owner)
        put_value(&x, "owner", "      <" VM_METADATA_PREFIX ":owner>", s->owner, "</" VM_METADATA_PREFIX ":owner>\n");
    put(&x, "    </" VM_METADATA_PREFIX ":workload>\n");
    put(&x, "  </metadata>\n");
    snprintf(num, sizeof(num), "  <memory unit='KiB'>%" PRIu64 "</memory>\n", s->memory_kib);
    put(&x, num);
    snprintf(num, sizeof(num), "  <vcpu>%u</vcpu>\n", s->vcpus);
    put(&x, num);
    /* virtiofsd reads and writes the guest's buffers in place: the guest's
     * memory must be a file both processes map. */
    if (s->n_fs)
        put(&x, "  <memoryBacking>\n    <source type='memfd'/>\n    <access mode='shared'/>\n  </memoryBacking>\n");
    put(&x, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
    if (s->kernel) {
        put_value(&x, "kernel", "    <kernel>", s->kernel, "</kernel>\n");
        if (s->initrd)
            put_value(&x, "initrd", "    <initrd>", s->initrd, "</initrd>\n");
        if (s->cmdline)
            put_value(&x, "cmdline", "    <cmdline>", s->cmdline, "</cmdline>\n");
    } else {
        put(&x, "    <boot dev='hd'/>\n");
    }
    put(&x, "  </os>\n");
    /* ACPI: a graceful stop is an ACPI power button press. */
    /* Under emulation QEMU keeps a translation cache that by default may
     * grow to 1 GiB per guest; 64 MiB holds a small guest's hot code and
     * keeps each VM's overhead near a KVM guest's. */
    put(&x, s->kvm ? "  <features><acpi/></features>\n"
                   : "  <features><acpi/><tcg><tb-cache unit='MiB'>64</tb-cache></tcg></features>\n");
    put(&x, "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n  <on_crash>destroy</on_crash>\n");
    put(&x, "  <devices>\n");
    if (s->disk) {
        const char *fmt = s->disk_format ? s->disk_format : "qcow2";
        if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) {
            free(x.buf);
            return duet_err_set(err, EINVAL, "VM %s: disk format %s is not qcow2 or raw", s->name, fmt);
        }
        put(&x, "    <disk type='file' device='disk'>\n");
        put(&x, "      <driver name='qemu' type='");
        put(&x, fmt);
        put(&x, "'/>\n");
        put_value(&x, "disk", "      <source file='", s->disk, "'/>\n");
        put(&x, "      <target dev='vda' bus='virtio'/>\n    </disk>\n");
    }
    if (s->cdrom) {
        /* IDE: the one CD-ROM bus every machine type and firmware knows */
        put(&x, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n");
        put_value(&x, "CD-ROM", "      <source file='", s->cdrom, "'/>\n");
        put(&x, "      <target dev='hdc' bus='ide'/>\n      <readonly/>\n    </disk>\n");
    }
    if (s->console_log) {
        /* Appending: the daemon caps the file by truncating it. */
        put_value(&x, "console log", "    <serial type='file'>\n      <source path='", s->console_log,
                  "' append='on'/>\n      <target port='0'/>\n    </serial>\n");
    }
    if (s->status_log) {
        put_value(&x, "status log", "    <serial type='file'>\n      <source path='", s->status_log,
                  "'/>\n      <target port='1'/>\n    </serial>\n");
    }
    if (s->agent_socket) {
        /* QEMU listens and never waits for a client: the daemon connects
         * when it has a command to run, and again after its own restart. */
        put_value(&x, "agent socket", "    <channel type='unix'>\n      <source mode='bind' path='", s->agent_socket,
                  "'/>\n      <target type='virtio' name='" VM_AGENT_PORT "'/>\n    </channel>\n");
    }
    if (s->guest_agent) {
        /* Our path, not one libvirt picks: under its root that can be
         * longer than a socket address holds.  libvirt connects to it. */
        put_value(&x, "guest agent socket", "    <channel type='unix'>\n      <source mode='bind' path='",
                  s->guest_agent, "'/>\n      <target type='virtio' name='" VM_QGA_PORT "'/>\n    </channel>\n");
    }
    if (s->net_bridge) {
        put(&x, "    <interface type='bridge'>\n");
        put_value(&x, "bridge", "      <source bridge='", s->net_bridge, "'/>\n");
        if (s->net_mac)
            put_value(&x, "MAC", "      <mac address='", s->net_mac, "'/>\n");
        if (s->net_target)
            put_value(&x, "tap name", "      <target dev='", s->net_target, "'/>\n");
        put(&x, "      <model type='virtio'/>\n    </interface>\n");
    }
    for (size_t i = 0; i < s->n_fs; i++) {
        const struct vm_domain_fs *f = &s->fs[i];
        put(&x, "    <filesystem type='mount' accessmode='passthrough'>\n      <driver type='virtiofs'/>\n");
        put_value(&x, "virtiofsd path", "      <binary path='", f->binary, "'/>\n");
        put_value(&x, "volume source", "      <source dir='", f->source, "'/>\n");
        put_value(&x, "volume tag", "      <target dir='", f->tag, "'/>\n");
        put(&x, "    </filesystem>\n");
    }
    /* The balloon is not used to take memory back: it is how the guest
     * says what it does with its memory (free, page cache), every few
     * seconds, so a VM's figures mean what a container's do. */
    put(&x, "    <memballoon model='virtio'>\n      <stats period='5'/>\n    </memballoon>\n");
    put(&x, "  </devices>\n</domain>\n");
    if (x.bad) {
        free(x.buf);
        return duet_err_set(err, EINVAL,
                            "VM %s: the %s holds a control character or invalid UTF-8, which a domain definition "
                            "cannot carry",
                            s->name, x.bad_field);
    }
    *out = x.buf;
    return 0;
}
