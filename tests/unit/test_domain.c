/*
 * Domain XML: what duet generates must be what libvirt reads.  The XML is
 * defined in libvirt's in-process test driver (test:///default) and read
 * back; hostile names, paths and command lines must arrive as plain values,
 * never as elements.
 */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>

#include "backends/vm/domain.h"

static void quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static struct vm_domain_spec base(void)
{
    return (struct vm_domain_spec){.name = "duet-web", .memory_kib = 131072, .vcpus = 1, .kernel = "/k/vmlinuz",
                                   .initrd = "/k/initrd", .cmdline = "console=ttyS0", .console_log = "/s/console.log",
                                   .workload = "web", .owner = "duet-1234"};
}

/* Defines xml in the test driver; returns its XML description (caller frees). */
static char *define_and_describe(const char *xml)
{
    virSetErrorFunc(NULL, quiet);
    virConnectPtr conn = virConnectOpen("test:///default");
    cr_assert_not_null(conn);
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    cr_assert_not_null(dom, "libvirt refused the XML: %s\n%s", virGetLastErrorMessage(), xml);
    char *desc = virDomainGetXMLDesc(dom, 0);
    char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VM_METADATA_NS, 0);
    cr_expect_not_null(meta, "duet's metadata is found by its namespace");
    free(meta);
    virDomainUndefine(dom);
    virDomainFree(dom);
    virConnectClose(conn);
    return desc;
}

Test(domain, libvirt_reads_what_duet_writes)
{
    struct vm_domain_spec s = base();
    char *xml;
    struct duet_err err = {0};
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    char *desc = define_and_describe(xml);
    cr_expect(strstr(desc, "<name>duet-web</name>"), "%s", desc);
    cr_expect(strstr(desc, "<memory unit='KiB'>131072</memory>"), "%s", desc);
    cr_expect(strstr(desc, "<kernel>/k/vmlinuz</kernel>"), "%s", desc);
    cr_expect(strstr(desc, "<cmdline>console=ttyS0</cmdline>"), "%s", desc);
    cr_expect(strstr(desc, "<source path='/s/console.log' append='on'/>"), "the console is appended to (the daemon caps it by truncating): %s", desc);
    cr_expect(strstr(desc, "<on_poweroff>destroy</on_poweroff>"), "%s", desc);
    cr_expect(strstr(desc, "<acpi/>"), "%s", desc);
    free(desc);
    free(xml);
}

Test(domain, disk_boot)
{
    struct vm_domain_spec s = base();
    s.kernel = s.initrd = s.cmdline = NULL;
    s.disk = "/var/lib/duet/vms/db/disk.qcow2";
    s.disk_format = "qcow2";
    s.kvm = true;
    char *xml;
    struct duet_err err = {0};
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    cr_expect(strstr(xml, "<domain type='kvm'>"));
    char *desc = define_and_describe(xml);
    cr_expect(strstr(desc, "<source file='/var/lib/duet/vms/db/disk.qcow2'"), "%s", desc);
    cr_expect(strstr(desc, "<boot dev='hd'/>"), "%s", desc);
    cr_expect_eq(count(desc, "device='cdrom'"), 0, "a CD-ROM nobody asked for: %s", desc);
    free(desc);
    free(xml);
    /* the cloud-init seed: a read-only CD-ROM, its path a value */
    s.cdrom = "/var/lib/duet/vms/db/seed'.iso'/><disk type='file' device='disk'><source file='/dev/sda'/>";
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    desc = define_and_describe(xml);
    cr_expect_eq(count(desc, "device='cdrom'"), 1, "%s", desc);
    cr_expect_eq(count(desc, "<disk"), 2, "an injected disk became a device:\n%s", desc);
    cr_expect(strstr(desc, "<readonly/>"), "%s", desc);
    cr_expect(strstr(desc, "seed&apos;.iso&apos;/&gt;&lt;disk"), "%s", desc);
    free(desc);
    free(xml);
}

Test(domain, hostile_values_stay_values)
{
    struct vm_domain_spec s = base();
    s.cmdline = "console=ttyS0 x=\"</cmdline></os><devices><disk type='file'><source file='/etc/shadow'/>"
                "</disk></devices><os><cmdline>\" & 'quotes'";
    s.workload = "web</duet:name><duet:owner>someone-else</duet:owner><duet:name>";
    s.console_log = "/tmp/a'/><disk type='file' device='disk'><source file='/dev/sda'/></disk><serial type='pty"
                    "'><source path='/tmp/b";
    s.initrd = "/k/initrd & <b>";
    char *xml;
    struct duet_err err = {0};
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    char *desc = define_and_describe(xml);
    cr_expect_eq(count(desc, "<disk"), 0, "an injected disk became a device:\n%s", desc);
    cr_expect_eq(count(desc, "<cmdline>"), 1, "%s", desc);
    cr_expect_eq(count(desc, "<serial"), 1, "%s", desc);
    cr_expect(strstr(desc, "&lt;/cmdline&gt;&lt;/os&gt;&lt;devices&gt;"), "the command line is text: %s", desc);
    cr_expect_eq(count(desc, "<duet:owner>"), 1, "one owner in the metadata: %s", desc);
    free(desc);
    free(xml);
}

Test(domain, refuses_what_xml_cannot_carry)
{
    static const char *const bad[] = {"console=ttyS0\x01", "a\x1b[31m", "caf\xe9", "\xc0\xaf", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vm_domain_spec s = base();
        s.cmdline = bad[i];
        char *xml = NULL;
        struct duet_err err = {0};
        cr_expect_eq(vm_domain_xml(&s, &xml, &err), -1, "case %zu", i);
        cr_expect(strstr(err.msg, "the cmdline holds a control character or invalid UTF-8"), "%s", err.msg);
        cr_expect_null(xml);
    }
    struct vm_domain_spec s = base();
    s.kernel = NULL;
    s.initrd = NULL;
    char *xml = NULL;
    struct duet_err err = {0};
    cr_expect_eq(vm_domain_xml(&s, &xml, &err), -1);
    cr_expect(strstr(err.msg, "give a kernel or a disk"), "%s", err.msg);
    s = base();
    s.disk = "/d";
    s.kernel = NULL;
    s.initrd = NULL;
    s.disk_format = "vmdk";
    cr_expect_eq(vm_domain_xml(&s, &xml, &err), -1);
    cr_expect(strstr(err.msg, "not qcow2 or raw"), "%s", err.msg);
}

Test(domain, volumes_are_virtiofs_filesystems_on_shared_memory)
{
    struct vm_domain_spec s = base();
    const struct vm_domain_fs fs[] = {
        {.source = "/srv/data", .tag = "duet0", .binary = "/usr/bin/duet-virtiofsd"},
        /* a hostile directory name stays the value of one source */
        {.source = "/srv/x'/></filesystem><filesystem type='mount'><driver type='virtiofs'/><source dir='/",
         .tag = "duet1", .binary = "/usr/bin/duet-virtiofsd-ro"},
    };
    char *xml;
    struct duet_err err = {0};
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    cr_expect_not(strstr(xml, "memoryBacking"), "no shared memory without volumes: %s", xml);
    free(xml);
    s.fs = fs;
    s.n_fs = 2;
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    char *desc = define_and_describe(xml);
    cr_expect(strstr(desc, "<source type='memfd'/>") && strstr(desc, "<access mode='shared'/>"),
              "vhost-user needs the guest's memory shared: %s", desc);
    cr_expect_eq(count(desc, "<filesystem"), 2, "one filesystem per volume:\n%s", desc);
    cr_expect_eq(count(desc, "<driver type='virtiofs'"), 2, "%s", desc);
    cr_expect(strstr(desc, "<binary path='/usr/bin/duet-virtiofsd'/>"), "%s", desc);
    cr_expect(strstr(desc, "<binary path='/usr/bin/duet-virtiofsd-ro'/>"), "%s", desc);
    cr_expect(strstr(desc, "<source dir='/srv/data'/>") && strstr(desc, "<target dir='duet0'/>"), "%s", desc);
    cr_expect(strstr(desc, "<source dir='/srv/x&apos;/&gt;&lt;/filesystem&gt;"), "the name is text: %s", desc);
    free(desc);
    free(xml);
    const struct vm_domain_fs bad[] = {{.source = "/srv/a\x01b", .tag = "duet0", .binary = "/b"}};
    s.fs = bad;
    s.n_fs = 1;
    cr_expect_eq(vm_domain_xml(&s, &xml, &err), -1, "a control character cannot be carried");
    cr_expect(strstr(err.msg, "volume source"), "%s", err.msg);
}

/* The agents' ports: duet's on a rootfs VM, the QEMU guest agent's on a
 * disk VM, each a unix socket at a path of duet's, which stays a value. */
Test(domain, agent_ports_are_virtio_channels_on_sockets_of_duets)
{
    struct vm_domain_spec s = base();
    s.agent_socket = "/s/agent.sock";
    char *xml;
    struct duet_err err = {0};
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    char *desc = define_and_describe(xml);
    cr_expect(strstr(desc, "<source mode='bind' path='/s/agent.sock'/>"), "%s", desc);
    cr_expect(strstr(desc, "<target type='virtio' name='duet.agent'/>"), "%s", desc);
    cr_expect_eq(count(desc, "<channel"), 1, "%s", desc);
    free(desc);
    free(xml);
    s = base();
    s.kernel = s.initrd = s.cmdline = NULL;
    s.disk = "/d/disk.qcow2";
    s.guest_agent = "/s/qga'.sock'/><channel type='pty'>";
    cr_assert_eq(vm_domain_xml(&s, &xml, &err), 0, "%s", err.msg);
    desc = define_and_describe(xml);
    cr_expect(strstr(desc, "<target type='virtio' name='org.qemu.guest_agent.0'/>"), "%s", desc);
    cr_expect_eq(count(desc, "<channel"), 1, "an injected channel became a device:\n%s", desc);
    cr_expect(strstr(desc, "qga&apos;.sock&apos;/&gt;&lt;channel"), "%s", desc);
    free(desc);
    free(xml);
}
