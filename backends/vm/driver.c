/*
 * driver.c - libvirt virtual machines behind backends/driver.h, on libuv.
 *
 * Threads.  libvirt's event hooks live on the daemon's loop (event_uv.c);
 * every libvirt call that waits on a reply (connect, define, start, stop,
 * destroy) runs on libuv's thread pool and finishes through its callback
 * on the loop thread.  Operations on one instance run one at a time, in
 * the order asked.  The connection is opened by the first operation, on
 * the pool: opening libvirt's embedded driver needs the loop running.
 *
 * Connection.  The URI given, or qemu:///system when its daemon answers,
 * or else libvirt's embedded QEMU driver rooted in the state directory
 * (qemu:///embed?root=STATE/vm/libvirt), which needs no daemon at all.
 *
 * Identity.  Each domain is persistent, named duet-OWNER-WORKLOAD, and
 * carries the workload's name and its owner (a hash of the state
 * directory) in <metadata>.  The handle the daemon stores is the domain's
 * UUID; recover checks that the domain it finds still carries the same
 * metadata before trusting it.
 *
 * Exits.  A domain lifecycle event (stopped, crashed) reaches the loop
 * through event_uv; the workload's exit status is what duet's guest init
 * wrote to the second serial port (a file in the instance's directory),
 * so it survives a daemon that was down when the guest ended.
 *
 * KVM.  Some nested hypervisors let /dev/kvm run a probe's few
 * instructions yet hang a whole guest.  In accel=auto, until one KVM guest
 * has printed on its console, a KVM guest that stays silent past a
 * deadline is restarted under emulation, and this driver uses emulation
 * from then on.  Only guests known to print (rootfs images, kernels with
 * console=ttyS0) are judged this way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "agent.h"
#include "qga.h"
#include "cloudinit.h"
#include "domain.h"
#include "event_uv.h"
#include "backends/exit_status.h"
#include "common/fsutil.h"
#include "guest_image.h"
#include "network/ipam.h"
#include "backends/instance.h"
#include "backends/kept.h"
#include "backends/opqueue.h"
#include "backends/rootfs.h"
#include "manifests/hostpath.h"
#include "virtiofs.h"
#include "vm.h"

/* How long SIGCHLDs gather before one scan for orphaned QEMUs. */
#define VM_REAP_DELAY_MS 10

struct vm_priv {
    struct vm_driver_options opt;
    char uri_opt[256], vminit[PATH_MAX], guest_kernel[PATH_MAX];
    char virtiofsd[PATH_MAX - 8], virtiofsd_ro[PATH_MAX];   /* duet-virtiofsd and its -ro name */
    char *protect[VM_PROTECT_MAX + 1];  /* no volume leads here (NULL-terminated) */
    uv_loop_t *loop;
    bool open;
    char state_dir[PATH_MAX - 64];
    char cache_dir[PATH_MAX];
    char kept_dir[PATH_MAX];            /* STATE/vm/kept: disks and last logs (backends/kept.h) */
    char embed_root[PATH_MAX];
    char owner[32];                     /* duet-XXXXXXXX: this state dir's domains */

    pthread_mutex_t lock;               /* conn, uri, kvm_* */
    virConnectPtr conn;
    char uri[PATH_MAX + 32];
    bool embed;
    int lifecycle_cb;                   /* -1: not registered */
    bool kvm_host, kvm_confirmed, kvm_failed;

    struct driver_instance *instances;  /* loop thread only */
    uv_signal_t sigchld;
    uv_timer_t reap_timer;              /* one /proc scan for a burst of SIGCHLDs */
    bool embed_used;                    /* the embedded driver ever ran: QEMUs may be orphans of ours */
    uv_timer_t console_check;           /* caps the consoles (VM_CONSOLE_MAX) */
    uint64_t console_max;
    bool reaping;
};

struct driver_instance {
    struct inst_core core;              /* first: the life both drivers share (backends/instance.h) */
    struct driver_instance *next;
    char dom_name[160];
    char uuid[VIR_UUID_STRING_BUFLEN];
    char dir[PATH_MAX - 32];
    char boot_kernel[PATH_MAX];         /* rootfs images: the kernel booted (maybe uncompressed) */
    bool defined;
    bool kvm;                           /* defined as type kvm */
    bool prints;                        /* its console shows progress early */
    bool stop_seen;                     /* a STOPPED event came while an op was pending */
    bool shutdown_seen;                 /* libvirt said the guest shut down (before its STOPPED) */
    int qemu_pid;                       /* its QEMU, from libvirt's pid file once running; 0: unknown */
    bool qemu_reaped;                   /* this process reaped it: qemu_wstatus says how it ended */
    int qemu_wstatus;
    int stop_detail;
    struct vm_agent *agent;             /* rootfs VMs: made at the first exec */
    struct vm_qga_exec *qga;            /* disk VMs: commands through the QEMU guest agent */
    /* duet run -i/-t (vm_attach): copies of the caller's ends, handed to
     * the agent once the guest runs; the workload's exit is held back
     * until the agent has its last output (exit_held). */
    int attach_fds[4];
    bool attach_tty, attach_pending, attach_running, freeing;
    bool exit_held;
    int held_code, held_sig;
};

enum op_kind { OP_CREATE, OP_START, OP_STOP, OP_DESTROY, OP_RECOVER, OP_PAUSE, OP_STATS };

struct op {
    struct inst_op base;                /* first: kind, rc, err, the caller's callback */
    uint64_t grace_ms;
    const char *handle;
    int dom_state;                      /* recover: what libvirt says */
    bool powered_off;                   /* recover: the guest is known to have powered off */
    bool fell_back;                     /* start: KVM hung, restarted under emulation */
    int end_detail;                     /* stop: how the guest was seen to end, or -1 */
    bool paused;                        /* pause: suspend, else resume */
    struct driver_stats *stats_out;     /* stats: the caller's */
};

static struct driver_instance *inst_of(struct op *op)
{
    return (struct driver_instance *)op->base.inst;
}

static struct vm_priv *priv(struct driver *drv)
{
    return drv->priv;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* libvirt prints every error to stderr unless told otherwise; duet reports
 * them itself, once, in its own words. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

/* err = the message, then libvirt's reason for its last failure. */
__attribute__((format(printf, 2, 3))) static int lv_err(struct duet_err *err, const char *fmt, ...)
{
    const char *why = virGetLastErrorMessage();
    char what[DUET_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return duet_err_set(err, EIO, "%s: %s", what, why ? why : "libvirt gave no reason");
}

/* ---- connection --------------------------------------------------------- */

static void kill_stray_probes(const char *embed_root);

static int write_embed_config(struct vm_priv *p, struct duet_err *err)
{
    kill_stray_probes(p->embed_root);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/etc", p->embed_root);
    if (mkdir(p->embed_root, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", p->embed_root);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", path);
    snprintf(path, sizeof(path), "%s/etc/qemu.conf", p->embed_root);
    /* QEMU runs as the daemon's user (root): there is no system libvirt to
     * have created the usual qemu user's files.  Its stdio goes to a file,
     * as there is no virtlogd; duet leaves file ownership alone. */
    static const char conf[] = "# written by duet for its embedded libvirt\n"
                               "user = \"root\"\n"
                               "group = \"root\"\n"
                               "stdio_handler = \"file\"\n"
                               "remember_owner = 0\n";
    _cleanup_fclose_ FILE *f = fopen(path, "we");
    if (!f || fputs(conf, f) < 0)
        return duet_err_sys(err, "cannot write %s", path);
    return 0;
}

static void on_lifecycle_event(struct driver *drv, const char *uuid, int event, int detail);

static int lifecycle_cb(virConnectPtr c, virDomainPtr d, int event, int detail, void *opaque)
{
    (void)c;
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(d, uuid) == 0)
        on_lifecycle_event(opaque, uuid, event, detail);
    return 0;
}

/* A reference on the connection when one is open, else NULL: never
 * opens one, so the loop may call it. */
static virConnectPtr conn_if_open(struct vm_priv *p)
{
    pthread_mutex_lock(&p->lock);
    virConnectPtr c = p->conn;
    if (c)
        virConnectRef(c);
    pthread_mutex_unlock(&p->lock);
    return c;
}

/* On a pool thread.  The first caller connects; the rest reuse it. */
static virConnectPtr conn_get(struct driver *drv, struct duet_err *err)
{
    struct vm_priv *p = priv(drv);
    pthread_mutex_lock(&p->lock);
    if (p->conn) {
        virConnectPtr c = p->conn;
        virConnectRef(c);
        pthread_mutex_unlock(&p->lock);
        return c;
    }
    virSetErrorFunc(NULL, quiet_errors);
    virConnectPtr c = NULL;
    if (p->uri_opt[0] && !p->opt.embedded) {
        c = virConnectOpen(p->uri_opt);
        if (!c) {
            lv_err(err, "libvirt does not answer at %s", p->uri_opt);
            duet_err_prefix(err, "%s",
                            "VMs cannot run; start libvirt (systemctl start libvirtd, or virtlogd -d && "
                            "libvirtd -d) or leave the URI out to use duet's embedded libvirt");
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        snprintf(p->uri, sizeof(p->uri), "%s", p->uri_opt);
    } else {
        if (!p->opt.embedded && access("/run/libvirt/libvirt-sock", F_OK) == 0)
            c = virConnectOpen(VM_DEFAULT_URI);
        if (c) {
            snprintf(p->uri, sizeof(p->uri), "%s", VM_DEFAULT_URI);
        } else {
            if (write_embed_config(p, err) < 0) {
                pthread_mutex_unlock(&p->lock);
                return NULL;
            }
            snprintf(p->uri, sizeof(p->uri), "qemu:///embed?root=%s", p->embed_root);
            /* Reaping starts before the open: the embedded driver probes
             * QEMU while it opens, the probes are reparented here (a
             * subreaper), and libvirt waits for each it killed to be gone,
             * which a zombie never is. */
            __atomic_store_n(&p->embed_used, true, __ATOMIC_RELEASE);
            c = virConnectOpen(p->uri);
            if (!c) {
                lv_err(err, "neither libvirtd nor the embedded driver (%s) answers", p->uri);
                duet_err_prefix(err, "%s",
                                "VMs cannot run; install libvirt's QEMU driver (apt-get install "
                                "libvirt-daemon-driver-qemu qemu-system-x86) or start libvirtd");
                pthread_mutex_unlock(&p->lock);
                return NULL;
            }
            p->embed = true;
        }
    }
    p->lifecycle_cb = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                       VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), drv, NULL);
    if (p->lifecycle_cb < 0) {
        lv_err(err, "libvirt at %s sends no domain events", p->uri);
        virConnectClose(c);
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    p->conn = c;
    virConnectRef(c);
    pthread_mutex_unlock(&p->lock);
    return c;
}

static void conn_put(virConnectPtr c)
{
    if (c)
        virConnectClose(c);
}

/* ---- paths and files ---------------------------------------------------- */

static void inst_path(const struct driver_instance *inst, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", inst->dir, file);
}

/* ---- the kept disk ------------------------------------------------------
 *
 * A VM's disk outlives its instances (DRIVER_KEEPS_DISK): KEPT/NAME/disk.qcow2,
 * an overlay made by the first create over the image's disk and booted by
 * every create after, until purge.  Beside it, disk.base records what it
 * was made over: the backing file's path, size and change time.  A qcow2
 * over a backing file that changed reads a mix of the two, so a disk whose
 * backing file is gone or changed is refused, not booted.  The record is
 * written before the disk is renamed into place: a disk without a record
 * is what a crash left half made, and is made again. */
#define KEPT_DISK "disk.qcow2"
#define KEPT_DISK_BASE "disk.base"
static const char *const kept_disk_files[] = {KEPT_DISK, KEPT_DISK_BASE, KEPT_DISK ".tmp", KEPT_DISK_BASE ".tmp",
                                              NULL};

static int kept_file(const struct driver_instance *inst, const char *file, char *out, size_t len,
                     struct duet_err *err)
{
    return kept_path(((struct vm_priv *)inst->core.drv->priv)->kept_dir, inst->core.spec->name, file, out, len, err);
}

/* 1 with the kept disk's path in disk when there is one to boot, 0 when
 * the next create makes one. */
static int kept_disk_find(struct driver_instance *inst, const char *what, char *disk, size_t len,
                          struct duet_err *err)
{
    char rec[PATH_MAX];
    if (kept_file(inst, KEPT_DISK, disk, len, err) < 0 || kept_file(inst, KEPT_DISK_BASE, rec, sizeof(rec), err) < 0)
        return -1;
    _cleanup_fclose_ FILE *f = fopen(rec, "re");
    if (!f || access(disk, F_OK) < 0) {
        unlink(disk);
        unlink(rec);
        return 0;
    }
    char base[PATH_MAX + 2];
    long long size, sec, nsec;
    if (!fgets(base, sizeof(base), f) || !strchr(base, '\n') ||
        fscanf(f, "%lld %lld %lld", &size, &sec, &nsec) != 3)
        return duet_err_set(err, EINVAL,
                            "%s: the record of its kept disk %s cannot be read; move the disk away, or apply with "
                            "--recreate %s to start from a fresh disk",
                            what, rec, inst->core.spec->name);
    *strchr(base, '\n') = '\0';
    /* A disk restored from a backup of a VM whose base duet built holds
     * that base in itself (kept_portable): nothing to check it against. */
    if (!base[0])
        return 1;
    struct stat st;
    if (stat(base, &st) < 0)
        return duet_err_sys(err,
                            "%s: its kept disk %s is an overlay of %s, which cannot be read; put it back, or apply "
                            "with --recreate %s to start from a fresh disk",
                            what, disk, base, inst->core.spec->name);
    if ((long long)st.st_size != size || (long long)st.st_mtim.tv_sec != sec || (long long)st.st_mtim.tv_nsec != nsec)
        return duet_err_set(err, ESTALE,
                            "%s: its kept disk %s is an overlay of %s, which has changed since the disk was made "
                            "(a disk over a changed image reads garbage); put the old file back, or apply with "
                            "--recreate %s to start from a fresh disk (a new image belongs under a new name)",
                            what, disk, base, inst->core.spec->name);
    return 1;
}

/* Makes the kept disk: an overlay of base of `size` bytes, recorded. */
static int kept_disk_make(struct driver_instance *inst, const char *base, const char *fmt, uint64_t size,
                          const char *what, char *disk, size_t len, struct duet_err *err)
{
    struct vm_priv *p = priv(inst->core.drv);
    char real[PATH_MAX], rec[PATH_MAX], tmp[PATH_MAX + 8], rtmp[PATH_MAX + 8];
    struct stat st;
    if (kept_file(inst, KEPT_DISK, disk, len, err) < 0 || kept_file(inst, KEPT_DISK_BASE, rec, sizeof(rec), err) < 0)
        return -1;
    if (!realpath(base, real) || stat(real, &st) < 0)
        return duet_err_sys(err, "%s: image %s cannot be used", what, base);
    if (kept_dir_make(p->kept_dir, inst->core.spec->name, err) < 0)
        return duet_err_prefix(err, "%s", what);
    snprintf(tmp, sizeof(tmp), "%s.tmp", disk);
    snprintf(rtmp, sizeof(rtmp), "%s.tmp", rec);
    unlink(tmp);
    if (vm_disk_overlay(real, fmt, tmp, size, what, err) < 0)
        return -1;
    /* What the guest writes is for QEMU alone (a system libvirtd hands
     * the file to its QEMU's user when it starts one). */
    chmod(tmp, 0600);
    _cleanup_fclose_ FILE *f = fopen(rtmp, "we");
    if (!f || fprintf(f, "%s\n%lld %lld %lld\n", real, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                      (long long)st.st_mtim.tv_nsec) < 0 ||
        fflush(f) != 0 || fsync(fileno(f)) < 0 || rename(rtmp, rec) < 0 || rename(tmp, disk) < 0) {
        int rc = duet_err_sys(err, "%s: cannot write its disk %s", what, disk);
        unlink(tmp);
        unlink(rtmp);
        unlink(rec);
        return rc;
    }
    return 0;
}

/* "exit N" or "signal N", as duet's guest init writes it; false when the
 * guest never wrote one (a disk or kernel image with its own init). */
static bool read_status_text(const struct driver_instance *inst, char *buf, size_t len)
{
    char path[PATH_MAX];
    inst_path(inst, "status", path, sizeof(path));
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

static bool read_status(const struct driver_instance *inst, int *code, int *sig)
{
    char buf[4096];
    return read_status_text(inst, buf, sizeof(buf)) && exit_status_parse(buf, code, sig);
}

/* The guest's kernel killed for want of memory before the workload ended. */
static bool status_says_oom(const struct driver_instance *inst)
{
    char buf[4096];
    return read_status_text(inst, buf, sizeof(buf)) && exit_status_oom(buf);
}

/* Its QEMU's pid, from the pid file libvirt keeps while it runs. */
static int qemu_pid_of(const struct driver_instance *inst)
{
    struct vm_priv *p = priv(inst->core.drv);
    char path[PATH_MAX * 2];
    if (p->embed)
        snprintf(path, sizeof(path), "%s/run/qemu/%s.pid", p->embed_root, inst->dom_name);
    else
        snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", inst->dom_name);
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0)
        return 0;
    return pid;
}

static uint64_t mem_available(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
    char line[128];
    unsigned long long kib;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            return (uint64_t)kib << 10;
    return UINT64_MAX;
}

/* Has the guest shown a sign of life?  duet's guest init says "boot" on
 * the status port first thing; other guests are judged by their console. */
static bool guest_progressed(const struct driver_instance *inst)
{
    char path[PATH_MAX];
    inst_path(inst, inst->core.spec->image.rootfs ? "status" : "console.log", path, sizeof(path));
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* ---- the work, on the pool ---------------------------------------------- */

static bool use_kvm(struct vm_priv *p)
{
    pthread_mutex_lock(&p->lock);
    bool kvm = p->opt.accel == VM_ACCEL_KVM || (p->opt.accel == VM_ACCEL_AUTO && p->kvm_host && !p->kvm_failed);
    pthread_mutex_unlock(&p->lock);
    return kvm;
}

/* Volumes reach the guest through virtiofs (virtiofs.h).  Each source is
 * resolved and checked here as a container's is (hostpath.h: not the
 * host's own tree, not the daemon's, unless hostAccess); libvirt gets the
 * resolved path, and duet-virtiofsd refuses it if a symlink has been put
 * on it since.  *out: one entry per volume (malloc'd, strings inside). */
struct vm_vol {
    struct vm_domain_fs fs;
    char source[PATH_MAX], tag[32];
};

static int volumes_prepare(struct vm_priv *p, const struct workload_spec *w, const char *what, struct vm_vol **out,
                           struct duet_err *err)
{
    *out = NULL;
    if (!w->n_volumes)
        return 0;
    char real[PATH_MAX];
    if (!vm_virtiofsd_find(real, sizeof(real)))
        return duet_err_set(err, ENOTSUP,
                            "%s: volumes reach a VM through virtiofs and this host has no virtiofsd; install it "
                            "with: apt-get install qemu-system-common (or place the workload as a container)",
                            what);
    if (!p->virtiofsd[0] || access(p->virtiofsd, X_OK) < 0)
        return duet_err_set(err, ENOENT,
                            "%s: duet-virtiofsd, which shares a volume with a VM, is not beside duetd (%s); "
                            "reinstall duet (make install)",
                            what, p->virtiofsd[0] ? p->virtiofsd : "not found");
    struct vm_vol *v = calloc(w->n_volumes, sizeof(*v));
    if (!v)
        return duet_err_set(err, ENOMEM, "%s: no memory for its volumes", what);
    for (size_t i = 0; i < w->n_volumes; i++) {
        const struct wl_volume *vol = &w->volumes[i];
        struct stat st;
        if (!realpath(vol->source, v[i].source) || stat(v[i].source, &st) < 0) {
            duet_err_sys(err, "%s: volume source %s (for %s) cannot be used; create it or fix the path", what,
                         vol->source, vol->target);
            free(v);
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            free(v);
            return duet_err_set(err, ENOTDIR,
                                "%s: volume source %s (for %s) is not a directory: virtiofs shares directories "
                                "with a VM; give the directory that holds it, or place the workload as a container",
                                what, vol->source, vol->target);
        }
        /* A named volume's directory is the daemon's own (managed): it
         * lies in the daemon's state directory by design. */
        const char *hit = NULL;
        if (!vol->managed) {
            const char *const mine[] = {p->state_dir, NULL};   /* the guests' disks and logs */
            hit = hostpath_protected_resolved(v[i].source, (const char *const *)p->protect);
            if (!hit)
                hit = hostpath_protected_resolved(v[i].source, mine);
        }
        if (hit && !w->host_access) {
            duet_err_set(err, EPERM,
                         "%s: volume source %s leads to %s, which is or holds the host's %s: a workload given it "
                         "can change the host; name a directory of its own, or set spec.hostAccess: true to give "
                         "it the host knowingly",
                         what, vol->source, v[i].source, hit);
            free(v);
            return -1;
        }
        snprintf(v[i].tag, sizeof(v[i].tag), VM_VIRTIOFS_TAG_PREFIX "%zu", i);
        v[i].fs.source = v[i].source;
        v[i].fs.tag = v[i].tag;
        v[i].fs.binary = vol->read_only ? p->virtiofsd_ro : p->virtiofsd;
    }
    *out = v;
    return 0;
}

static bool vm_exec_supported(struct driver *drv, const struct workload_spec *spec, char *why, size_t len);

static int vm_stats(struct driver *drv, struct driver_instance *inst, struct driver_stats *st, struct duet_err *err);

/* Builds the domain definition for inst (images prepared on the way). */
static int build_xml(struct driver_instance *inst, bool kvm, char **xml, struct duet_err *err)
{
    struct vm_priv *p = priv(inst->core.drv);
    const struct workload_spec *w = inst->core.spec;
    char what[96], console[PATH_MAX], status[PATH_MAX], overlay[PATH_MAX], initrd[PATH_MAX], seed[PATH_MAX],
        agent[PATH_MAX];
    snprintf(what, sizeof(what), "VM %s", w->name);
    inst_path(inst, "console.log", console, sizeof(console));
    inst_path(inst, "status", status, sizeof(status));
    inst_path(inst, "initrd", initrd, sizeof(initrd));
    struct vm_domain_spec ds = {
        .name = inst->dom_name,
        .uuid = inst->uuid[0] ? inst->uuid : NULL,   /* a redefinition keeps its identity */
        .kvm = kvm,
        .memory_kib = (w->resources.memory ? w->resources.memory : WL_DEFAULT_MEMORY) >> 10,
        .vcpus = (unsigned)(w->resources.cpus > 0 ? w->resources.cpus + 0.999 : 1),
        .console_log = console,
        .workload = w->name,
        .owner = p->owner,
        .disk_format = "qcow2",
    };
    char cmdline[4096], ipcfg[160] = "", mac[18];
    struct vm_seed_net seed_net = {0};
    _cleanup_free_ struct vm_vol *vols = NULL;
    if (volumes_prepare(p, w, what, &vols, err) < 0)
        return -1;
    _cleanup_free_ struct vm_domain_fs *fs = w->n_volumes ? calloc(w->n_volumes, sizeof(*fs)) : NULL;
    if (w->n_volumes && !fs)
        return duet_err_set(err, ENOMEM, "%s: no memory for its volumes", what);
    for (size_t i = 0; i < w->n_volumes; i++)
        fs[i] = vols[i].fs;
    ds.fs = fs;
    ds.n_fs = w->n_volumes;
    const char *kernel = w->image.kernel;
    uint64_t disk_bytes = wl_disk_bytes(w);
    if (inst->core.has_net) {
        /* The address goes on the kernel command line in the form the
         * kernel's own ip= autoconfiguration, initramfs-tools, dracut and
         * duet-vminit all read: client::gateway:netmask:hostname:device:off:dns */
        const struct net_attachment *n = &inst->core.net;
        char a[16], g[16], m[16], dns[16];
        struct ipam_subnet sn = {.prefix = n->prefix};
        ipam_format(n->addr, a);
        ipam_format(n->gateway, g);
        ipam_format(ipam_mask(&sn), m);
        ipam_format(n->dns, dns);
        snprintf(ipcfg, sizeof(ipcfg), " ip=%s::%s:%s:%s:eth0:off:%s", a, g, m, w->name, dns);
        ipam_format_mac(n->mac, mac);
        memcpy(seed_net.addr, a, sizeof(a));
        memcpy(seed_net.gateway, g, sizeof(g));
        memcpy(seed_net.dns, dns, sizeof(dns));
        memcpy(seed_net.mac, mac, sizeof(mac));
        seed_net.prefix = n->prefix;
        ds.net_bridge = n->bridge;
        ds.net_mac = mac;
        ds.net_target = n->host_if;
    }
    if (w->image.rootfs) {
        if (!kernel)
            kernel = p->guest_kernel[0] ? p->guest_kernel : NULL;
        if (!kernel)
            return duet_err_set(err, ENOENT,
                                "%s: a rootfs image boots with a guest kernel and none was found; give "
                                "spec.image.kernel, or duetd a guest kernel (guestKernel in /etc/duet/duetd.yaml "
                                "or --guest-kernel; docs/install.md)",
                                what);
        if (rootfs_check_dir(w->image.rootfs, what, err) < 0)
            return -1;
        if (w->n_volumes && !vm_kernel_has_virtiofs(kernel))
            return duet_err_set(err, ENOTSUP,
                                "%s: volumes reach a VM through virtiofs and the guest kernel %s has no virtiofs "
                                "module; give a kernel that has it (Debian's does) or place the workload as a "
                                "container",
                                what, kernel);
        struct rootfs_user user;
        if (rootfs_user_resolve(w->image.rootfs, w->user, what, &user, err) < 0)
            return -1;
        const char *path = wl_env_get(w, "PATH");
        if (!w->command || !rootfs_command_exists(w->image.rootfs, w->command[0], path ? path : ROOTFS_DEFAULT_PATH))
            return duet_err_set(err, ENOENT, "%s: command \"%s\" is not an executable file in the rootfs %s", what,
                                w->command ? w->command[0] : "", w->image.rootfs);
        char disk[PATH_MAX], base_initrd[PATH_MAX];
        if (vm_kernel_uncompressed(p->cache_dir, kernel, inst->boot_kernel, sizeof(inst->boot_kernel), err) < 0)
            return duet_err_prefix(err, "%s", what);
        /* A kept disk is booted as it is: the rootfs is not even read. */
        int kept = kept_disk_find(inst, what, overlay, sizeof(overlay), err);
        if (kept < 0 ||
            (!kept && (vm_rootfs_disk(p->cache_dir, w->image.rootfs, disk_bytes, what, disk, sizeof(disk), err) < 0 ||
                       kept_disk_make(inst, disk, "raw", disk_bytes, what, overlay, sizeof(overlay), err) < 0)) ||
            vm_guest_initramfs(p->cache_dir, kernel, p->vminit, what, base_initrd, sizeof(base_initrd), err) < 0 ||
            vm_workload_initrd(base_initrd, w, &user, initrd, err) < 0)
            return -1;
        /* panic=-1: a guest that cannot go on reboots, which on_reboot
         * turns into a stop, instead of hanging. */
        snprintf(cmdline, sizeof(cmdline), "console=ttyS0 quiet panic=-1 rdinit=/init%s%s%s",
                 w->image.cmdline ? " " : "", w->image.cmdline ? w->image.cmdline : "", ipcfg);
        ds.kernel = inst->boot_kernel;
        ds.initrd = initrd;
        ds.cmdline = cmdline;
        ds.disk = overlay;
        ds.status_log = status;
        char why[DUET_ERR_MSG_MAX];
        if (vm_exec_supported(inst->core.drv, w, why, sizeof(why))) {
            inst_path(inst, VM_AGENT_SOCKET, agent, sizeof(agent));
            ds.agent_socket = agent;
        }
        inst->prints = true;
    } else {
        if (w->image.disk) {
            int kept = kept_disk_find(inst, what, overlay, sizeof(overlay), err);
            if (kept < 0)
                return -1;
            const char *fmt = "qcow2";
            uint64_t base_bytes = 0;
            if (!kept && vm_disk_format(w->image.disk, &fmt, &base_bytes, err) < 0)
                return duet_err_prefix(err, "%s", what);
            /* The guest's disk is resources.disk: grown from the image when
             * that is smaller; an image larger than the bound could be
             * filled past it, so it is refused. */
            if (!kept && base_bytes > disk_bytes)
                return duet_err_set(err, EFBIG,
                                    "%s: image.disk %s is a %" PRIu64 " MiB disk and resources.disk allows %" PRIu64
                                    " MiB; raise resources.disk to at least %" PRIu64 "Mi",
                                    what, w->image.disk, base_bytes >> 20, disk_bytes >> 20,
                                    (base_bytes + (1 << 20) - 1) >> 20);
            if (!kept && kept_disk_make(inst, w->image.disk, fmt, disk_bytes, what, overlay, sizeof(overlay), err) < 0)
                return -1;
            ds.disk = overlay;
            /* Its own init may run qemu-guest-agent: exec goes through it. */
            char why[DUET_ERR_MSG_MAX];
            if (vm_exec_supported(inst->core.drv, w, why, sizeof(why))) {
                inst_path(inst, VM_QGA_SOCKET, agent, sizeof(agent));
                ds.guest_agent = agent;
            }
            /* A disk image boots its own init: the fleet address and the
             * name reach it through cloud-init's NoCloud seed. */
            inst_path(inst, "seed.iso", seed, sizeof(seed));
            unlink(seed);   /* a redefinition writes it anew */
            if (vm_seed_write(seed, w, inst->core.has_net ? &seed_net : NULL, time(NULL), err) < 0)
                return -1;
            ds.cdrom = seed;
        }
        if (kernel) {
            if (access(kernel, R_OK) < 0)
                return duet_err_sys(err, "%s: image.kernel %s cannot be read", what, kernel);
            if (w->image.initrd && access(w->image.initrd, R_OK) < 0)
                return duet_err_sys(err, "%s: image.initrd %s cannot be read", what, w->image.initrd);
            if (!w->image.initrd && !w->image.disk)
                return duet_err_set(err, EINVAL,
                                    "%s: image.kernel without an initrd or a disk has no root filesystem to "
                                    "run; add image.initrd",
                                    what);
            ds.kernel = kernel;
            ds.initrd = w->image.initrd;
            snprintf(cmdline, sizeof(cmdline), "%s%s", w->image.cmdline ? w->image.cmdline : "",
                     ipcfg + (w->image.cmdline ? 0 : 1 /* no leading space */));
            ds.cmdline = cmdline[0] ? cmdline : NULL;
            inst->prints = w->image.cmdline && strstr(w->image.cmdline, "console=ttyS0");
        }
        ds.status_log = status;
    }
    return vm_domain_xml(&ds, xml, err);
}

/* Removes d's definition (and NVRAM, where the hypervisor keeps one). */
static int undefine(virDomainPtr d)
{
    if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM) == 0)
        return 0;
    return virDomainUndefine(d);   /* a hypervisor without NVRAM may refuse the flag */
}

static int define(struct driver_instance *inst, virConnectPtr c, bool kvm, struct duet_err *err)
{
    _cleanup_free_ char *xml = NULL;
    if (build_xml(inst, kvm, &xml, err) < 0)
        return -1;
    virDomainPtr d = virDomainDefineXML(c, xml);
    if (!d)
        return lv_err(err, "VM %s: libvirt refused its definition", inst->core.spec->name);
    virDomainGetUUIDString(d, inst->uuid);
    virDomainFree(d);
    inst->defined = true;
    inst->kvm = kvm;
    return 0;
}

/* A domain of ours left behind (a crash between define and the store's
 * write) is removed; one of anybody else's is never touched. */
static int clear_stale(struct driver_instance *inst, virConnectPtr c, struct duet_err *err)
{
    virDomainPtr d = virDomainLookupByName(c, inst->dom_name);
    if (!d)
        return 0;
    char *meta = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, VM_METADATA_NS, 0);
    bool ours = meta && strstr(meta, priv(inst->core.drv)->owner);
    free(meta);
    int rc = 0;
    if (!ours) {
        rc = duet_err_set(err, EEXIST,
                          "VM %s: libvirt already has a domain named %s that duet did not make; rename or remove it",
                          inst->core.spec->name, inst->dom_name);
    } else if (virDomainIsActive(d) == 1) {
        rc = duet_err_set(err, EEXIST, "VM %s is already running (domain %s); destroy it first", inst->core.spec->name,
                          inst->dom_name);
    } else {
        undefine(d);
    }
    virDomainFree(d);
    return rc;
}

static int do_create(struct driver_instance *inst, struct duet_err *err)
{
    struct vm_priv *p = priv(inst->core.drv);
    const struct workload_spec *w = inst->core.spec;
    uint64_t mem = w->resources.memory ? w->resources.memory : WL_DEFAULT_MEMORY;
    if (mem < VM_MEMORY_FLOOR)
        return duet_err_set(err, EINVAL, "VM %s: resources.memory is below 64Mi, too little for a guest kernel",
                            w->name);
    if (!w->image.disk && !w->image.kernel && mem < DRIVER_VM_GUEST_KERNEL_FLOOR)
        return duet_err_set(err, EINVAL,
                            "VM %s: resources.memory is below 128Mi, too little for duet's guest kernel to boot",
                            w->name);
    uint64_t avail = mem_available();
    if (mem > avail)
        return duet_err_set(err, ENOMEM,
                            "VM %s: resources.memory %" PRIu64 " MiB is more than this host has available (%" PRIu64
                            " MiB); lower it or stop other workloads",
                            w->name, mem >> 20, avail >> 20);
    virConnectPtr c = conn_get(inst->core.drv, err);
    if (!c)
        return duet_err_prefix(err, "VM %s", w->name);
    int rc = clear_stale(inst, c, err);
    if (rc == 0 && mkdir(inst->dir, 0711) < 0) {
        if (errno == EEXIST) {
            /* What a crashed create left: nothing in it is trusted. */
            duet_remove_tree(inst->dir, NULL);
            rc = mkdir(inst->dir, 0711);
        } else {
            rc = -1;
        }
        if (rc < 0)
            duet_err_sys(err, "VM %s: cannot create %s", w->name, inst->dir);
    }
    if (rc == 0) {
        rc = define(inst, c, use_kvm(p), err);
        if (rc < 0)
            duet_remove_tree(inst->dir, NULL);   /* a half-built overlay or initrd is of no use */
    }
    conn_put(c);
    return rc;
}

static int dom_start(struct driver_instance *inst, virConnectPtr c, struct duet_err *err)
{
    virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
    if (!d)
        return lv_err(err, "VM %s: its domain is gone", inst->core.spec->name);
    /* Created here, empty, so that a libvirtd running QEMU as another user
     * hands them to that user (its DAC driver relabels files that exist)
     * rather than QEMU failing to create them in a directory of root's. */
    static const char *const files[] = {"status", "console.log"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX];
        inst_path(inst, files[i], path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            virDomainFree(d);
            return duet_err_sys(err, "VM %s: cannot create %s", inst->core.spec->name, path);
        }
        close(fd);
    }
    int rc = virDomainCreate(d);
    virDomainFree(d);
    if (rc < 0)
        return lv_err(err, "VM %s: libvirt could not start it", inst->core.spec->name);
    return 0;
}

static int do_start(struct op *op)
{
    struct driver_instance *inst = inst_of(op);
    struct vm_priv *p = priv(inst->core.drv);
    virConnectPtr c = conn_get(inst->core.drv, &op->base.err);
    if (!c)
        return -1;
    int rc = dom_start(inst, c, &op->base.err);
    pthread_mutex_lock(&p->lock);
    bool judge = rc == 0 && inst->kvm && inst->prints && p->opt.accel == VM_ACCEL_AUTO && !p->kvm_confirmed;
    pthread_mutex_unlock(&p->lock);
    if (judge) {
        uint64_t until = clock_mono_ms() + p->opt.kvm_deadline_ms;
        while (!guest_progressed(inst) && clock_mono_ms() < until)
            sleep_ms(50);
        pthread_mutex_lock(&p->lock);
        if (guest_progressed(inst))
            p->kvm_confirmed = true;
        else
            p->kvm_failed = true;
        bool failed = p->kvm_failed && !p->kvm_confirmed;
        pthread_mutex_unlock(&p->lock);
        if (failed) {
            /* Redefine the same domain (same UUID) for emulation. */
            virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
            if (d) {
                virDomainDestroy(d);
                undefine(d);
                virDomainFree(d);
            }
            inst->defined = false;
            rc = define(inst, c, false, &op->base.err);
            if (rc == 0)
                rc = dom_start(inst, c, &op->base.err);
            op->fell_back = true;
        }
    }
    conn_put(c);
    return rc;
}

static int dom_state(virDomainPtr d)
{
    int state = VIR_DOMAIN_NOSTATE, reason;
    if (virDomainGetState(d, &state, &reason, 0) < 0)
        return -1;
    return state;
}

static int do_stop(struct op *op)
{
    struct driver_instance *inst = inst_of(op);
    virConnectPtr c = conn_get(inst->core.drv, &op->base.err);
    if (!c)
        return -1;
    virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
    int rc = 0;
    op->end_detail = VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN;
    if (d && virDomainIsActive(d) == 1) {
        /* The power button: the guest's init decides how to stop. */
        if (virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0)
            virDomainShutdown(d);   /* a hypervisor that picks its own method */
        uint64_t until = clock_mono_ms() + op->grace_ms;
        while (virDomainIsActive(d) == 1 && clock_mono_ms() < until)
            sleep_ms(50);
        if (virDomainIsActive(d) == 1) {
            op->end_detail = VIR_DOMAIN_EVENT_STOPPED_DESTROYED;
            if (virDomainDestroy(d) < 0 && virDomainIsActive(d) == 1) {
                op->end_detail = -1;
                rc = lv_err(&op->base.err, "VM %s: libvirt could not stop it", inst->core.spec->name);
            }
        }
    }
    if (d)
        virDomainFree(d);
    conn_put(c);
    return rc;
}

/* Suspended, QEMU stops its vCPUs and writes out what it holds of its
 * disks (its qcow2 caches included) before libvirt answers: the files
 * are then as a power cut would leave them, and stay so until resumed. */
static int do_pause(struct op *op)
{
    struct driver_instance *inst = inst_of(op);
    virConnectPtr c = conn_get(inst->core.drv, &op->base.err);
    if (!c)
        return -1;
    virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
    int rc = 0;
    if (!d)
        rc = lv_err(&op->base.err, "VM %s: libvirt has no domain for it", inst->core.spec->name);
    else if ((op->paused ? virDomainSuspend(d) : virDomainResume(d)) < 0)
        rc = lv_err(&op->base.err, "VM %s: libvirt could not %s it", inst->core.spec->name,
                    op->paused ? "pause" : "resume");
    if (d)
        virDomainFree(d);
    conn_put(c);
    return rc;
}

static const char *basename_of(const char *path)
{
    const char *end = path + strcspn(path, " ");
    const char *b = path;
    for (const char *q = path; q < end; q++)
        if (*q == '/')
            b = q + 1;
    return b;
}

/* Removes what libvirt left of dom_name's cgroups: the machine cgroups
 * (machine/qemu-...-NAME.libvirt-qemu and their emulator and vcpu
 * children, in every v1 hierarchy or the v2 tree) stay behind when QEMU
 * ended while no libvirt watched it.  Only empty directories go (rmdir
 * refuses anything with a process in it), deepest first. */
static void rmdir_tree(const char *dir, int depth)
{
    if (depth > 4)
        return;
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < (int)sizeof(sub))
            rmdir_tree(sub, depth + 1);
    }
    rmdir(dir);
}

static void sweep_machine_cgroups(const char *dom_name)
{
    char suffix[192];   /* a dom_name of 160 and its suffix */
    snprintf(suffix, sizeof(suffix), "-%s.libvirt-qemu", dom_name);
    size_t sl = strlen(suffix);
    _cleanup_closedir_ DIR *root = opendir("/sys/fs/cgroup");
    struct dirent *h;
    /* v1: one tree per controller; v2 (and hybrid's unified): the root. */
    while (root && (h = readdir(root))) {
        if (h->d_name[0] == '.' || h->d_type != DT_DIR)
            continue;
        static const char *const parents[] = {"machine", "machine.slice"};
        for (int k = -1; k < 2; k++) {
            char dir[PATH_MAX];
            if (k < 0)
                snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s", h->d_name);
            else
                snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", h->d_name, parents[k]);
            if (k < 0 && strcmp(h->d_name, "machine") != 0 && strcmp(h->d_name, "machine.slice") != 0)
                continue;
            _cleanup_closedir_ DIR *m = opendir(dir);
            struct dirent *e;
            while (m && (e = readdir(m))) {
                size_t n = strlen(e->d_name);
                if (e->d_type != DT_DIR || n <= sl || strcmp(e->d_name + n - sl, suffix) != 0)
                    continue;
                char path[PATH_MAX];
                if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
                    rmdir_tree(path, 0);
            }
        }
    }
}

/* pid's command line, arguments joined by spaces, when it is a QEMU. */
static bool qemu_cmdline(int pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
    if (n <= 0)
        return false;   /* gone, or a zombie */
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    return strncmp(basename_of(buf), "qemu-system", 11) == 0;
}

/* Whether the process pid is a QEMU of dom_name's (its -name guest=...). */
static bool is_qemu_of(int pid, const char *dom_name)
{
    char buf[4096], want[200];
    snprintf(want, sizeof(want), "guest=%s,", dom_name);
    return qemu_cmdline(pid, buf, sizeof(buf)) && strstr(buf, want) != NULL;
}

/* libvirt's capability probe (a QEMU with "-machine none", daemonized)
 * outlives a daemon killed while it ran; the next daemon ends those of
 * its own embedded root before it starts its own. */
static void kill_stray_probes(const char *embed_root)
{
    char want[PATH_MAX + 8];
    snprintf(want, sizeof(want), "%s/", embed_root);
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;
    char buf[4096];
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid > 1 && qemu_cmdline(pid, buf, sizeof(buf)) && strstr(buf, "-machine none") && strstr(buf, want))
            kill(pid, SIGKILL);
    }
}

/* Embedded mode, at reconnect: libvirt checks its QEMUs in a thread of its
 * own, and may still call a domain "running" whose QEMU died while no
 * daemon ran.  Its pid file and /proc say the truth now. */
static bool embedded_qemu_alive(struct driver_instance *inst)
{
    int pid = qemu_pid_of(inst);
    return pid > 0 && is_qemu_of(pid, inst->dom_name);
}

/* A QEMU that a daemon killed during its start left behind: started by
 * that daemon's embedded libvirt, and unknown to the next one (which
 * finds the domain shut off).  Destroy ends every QEMU that still names
 * the domain; the names carry this state dir's hash, so no other daemon's
 * guest is touched. */
static void kill_stray_qemus(const char *dom_name)
{
    int pids[16], n = 0;
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 16) {
        int pid = atoi(e->d_name);
        if (pid > 1 && is_qemu_of(pid, dom_name) && kill(pid, SIGKILL) == 0)
            pids[n++] = pid;
    }
    /* Gone within a few seconds; a zombie of ours is reaped here. */
    uint64_t until = clock_mono_ms() + 5000;
    for (int i = 0; i < n; i++)
        while (is_qemu_of(pids[i], dom_name) && clock_mono_ms() < until) {
            waitpid(pids[i], NULL, WNOHANG);
            sleep_ms(20);
        }
}

static int do_destroy(struct op *op)
{
    struct driver_instance *inst = inst_of(op);
    int rc = 0;
    if (inst->defined || inst->uuid[0]) {
        virConnectPtr c = conn_get(inst->core.drv, &op->base.err);
        if (!c)
            return -1;
        virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
        if (d) {
            if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0 && virDomainIsActive(d) == 1)
                rc = lv_err(&op->base.err, "VM %s: libvirt could not stop it", inst->core.spec->name);
            if (rc == 0 && undefine(d) < 0)
                rc = lv_err(&op->base.err, "VM %s: libvirt could not remove its definition", inst->core.spec->name);
            virDomainFree(d);
        }
        conn_put(c);
    }
    if (rc == 0 && priv(inst->core.drv)->embed)
        kill_stray_qemus(inst->dom_name);
    if (rc == 0)
        sweep_machine_cgroups(inst->dom_name);
    if (rc == 0) {
        /* What the guest printed outlives it (duet logs --previous). */
        char log[PATH_MAX], log1[PATH_MAX];
        inst_path(inst, "console.log", log, sizeof(log));
        inst_path(inst, "console.log.1", log1, sizeof(log1));
        kept_logs_save(priv(inst->core.drv)->kept_dir, inst->core.spec->name, log, log1);
        rc = duet_remove_tree(inst->dir, &op->base.err);
    }
    return rc;
}

static int do_recover(struct op *op)
{
    struct driver_instance *inst = inst_of(op);
    struct vm_priv *p = priv(inst->core.drv);
    virConnectPtr c = conn_get(inst->core.drv, &op->base.err);
    if (!c)
        return -1;
    op->dom_state = -1;
    virDomainPtr d = virDomainLookupByUUIDString(c, op->handle);
    int rc = 0;
    if (d) {
        char *meta = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, VM_METADATA_NS, 0);
        char want_name[200], want_owner[64];
        snprintf(want_name, sizeof(want_name), ">%s<", inst->core.spec->name);
        snprintf(want_owner, sizeof(want_owner), ">%s<", p->owner);
        if (!meta || !strstr(meta, want_name) || !strstr(meta, want_owner)) {
            rc = duet_err_set(&op->base.err, ESTALE,
                              "VM %s: domain %s is not this workload's (its metadata names another); not "
                              "re-attaching",
                              inst->core.spec->name, op->handle);
        } else {
            inst->defined = true;
            op->dom_state = dom_state(d);
            int code, sig, reason = 0, st = 0;
            virDomainGetState(d, &st, &reason, 0);
            /* A guest that powered off while no daemon ran is left by QEMU
             * (libvirt runs it with -no-shutdown) waiting for libvirt to act
             * on it, which a reconnecting libvirt may still report as
             * running.  duet's guest init wrote the workload's end on the
             * status port; a paused "shutting down" says the same. */
            /* Powered off for sure: QEMU waits paused in "shutting down",
             * or a libvirt daemon, which ran all along, saw the guest's
             * shutdown.  A QEMU merely gone is not that (see guest_ended). */
            op->powered_off = (st == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_SHUTTING_DOWN) ||
                              (!p->embed && st == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN);
            bool ended = read_status(inst, &code, &sig) || op->powered_off ||
                         (p->embed && op->dom_state == VIR_DOMAIN_RUNNING && !embedded_qemu_alive(inst));
            if (ended) {
                if (virDomainIsActive(d) == 1)
                    virDomainDestroy(d);
                op->dom_state = VIR_DOMAIN_SHUTOFF;
            } else if (st == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_USER) {
                /* paused for a backup by a daemon that ended meanwhile */
                virDomainResume(d);
            }
        }
        free(meta);
        virDomainFree(d);
    } else {
        int code, sig;
        if (!read_status(inst, &code, &sig))
            rc = duet_err_set(&op->base.err, ENOENT,
                              "VM %s: libvirt at %s has no domain %s and it left no exit status; it is gone",
                              inst->core.spec->name, p->uri, op->handle);
    }
    conn_put(c);
    return rc;
}

static void on_work(struct inst_op *b)
{
    struct op *op = (struct op *)b;
    switch (op->base.kind) {
    case OP_CREATE:
        op->base.rc = do_create(inst_of(op), &op->base.err);
        break;
    case OP_START:
        op->base.rc = do_start(op);
        break;
    case OP_STOP:
        op->base.rc = do_stop(op);
        break;
    case OP_DESTROY:
        op->base.rc = do_destroy(op);
        break;
    case OP_RECOVER:
        op->base.rc = do_recover(op);
        break;
    case OP_PAUSE:
        op->base.rc = do_pause(op);
        break;
    case OP_STATS:
        op->base.rc = vm_stats(inst_of(op)->core.drv, inst_of(op), op->stats_out, &op->base.err);
        break;
    }
}

/* ---- on the loop -------------------------------------------------------- */

static void report_exit(struct driver_instance *inst, int code, int sig)
{
    if (inst->core.exit_reported)
        return;
    if (inst->attach_running && !inst->freeing) {
        /* Its end comes after the last of its output, which the agent
         * still relays (attach_ended reports it). */
        inst->exit_held = true;
        inst->held_code = code;
        inst->held_sig = sig;
        return;
    }
    inst->core.status.exit_code = code;
    inst->core.status.term_signal = sig;
    inst->core.status.exited_at_ms = clock_wall_ms();
    inst->core.status.oom = sig == SIGKILL && status_says_oom(inst);
    inst_core_report_exit(&inst->core);
}

static void reap_qemus(struct vm_priv *p);

/* libvirt says "failed" or "crashed": QEMU itself ended, not the guest.
 * How, when this process reaped it (embedded mode); libvirt does not say. */
static void qemu_ended(struct driver_instance *inst, int *code, int *sig)
{
    reap_qemus(priv(inst->core.drv));   /* the exit may be here before SIGCHLD's turn */
    char *r = inst->core.status.reason;
    size_t len = sizeof(inst->core.status.reason);
    *code = -1;
    *sig = 0;
    if (!inst->qemu_reaped) {
        snprintf(r, len, "its QEMU process ended without the guest powering off (killed, or crashed)");
    } else if (WIFSIGNALED(inst->qemu_wstatus)) {
        *sig = WTERMSIG(inst->qemu_wstatus);
        snprintf(r, len, "its QEMU process was killed by signal %d (%s)%s", *sig, strsignal(*sig),
                 *sig == SIGKILL ? ": by hand, or by the host's OOM killer" : "");
    } else {
        *code = WEXITSTATUS(inst->qemu_wstatus);
        snprintf(r, len, "its QEMU process exited with status %d without the guest powering off", *code);
    }
}

/* The guest ended: its status file says how, else libvirt's reason does.
 * libvirt's "shutdown" is not proof that the guest powered off: a QEMU
 * killed after libvirt re-attached to it was seen reported so.  The guest
 * did power off when libvirt said "shutdown" first (a SHUTDOWN event), or
 * when duet stopped it (shutdown_ok); otherwise QEMU went by itself. */
static void guest_ended(struct driver_instance *inst, int detail, bool shutdown_ok)
{
    int code = -1, sig = 0;
    if (!read_status(inst, &code, &sig)) {
        switch (detail) {
        case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
            if (shutdown_ok || inst->shutdown_seen)
                code = 0;                   /* the guest powered off */
            else
                qemu_ended(inst, &code, &sig);
            break;
        case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
        case VIR_DOMAIN_EVENT_STOPPED_FAILED:
            qemu_ended(inst, &code, &sig);
            break;
        default:
            code = -1;
            sig = SIGKILL;                  /* destroyed */
            break;
        }
    }
    report_exit(inst, code, sig);
}

static void on_lifecycle_event(struct driver *drv, const char *uuid, int event, int detail)
{
    struct vm_priv *p = priv(drv);
    for (struct driver_instance *i = p->instances; i; i = i->next) {
        if (strcmp(i->uuid, uuid) != 0)
            continue;
        bool live = i->core.status.state == DRIVER_STATE_RUNNING || i->core.status.state == DRIVER_STATE_STOPPING;
        if (event == VIR_DOMAIN_EVENT_SHUTDOWN) {
            i->shutdown_seen = true;
            return;
        }
        if (event == VIR_DOMAIN_EVENT_CRASHED)
            detail = VIR_DOMAIN_EVENT_STOPPED_CRASHED;
        if (event != VIR_DOMAIN_EVENT_STOPPED && event != VIR_DOMAIN_EVENT_CRASHED)
            return;
        if (live) {
            /* STOPPING: duet asked for the power-off. */
            guest_ended(i, detail, i->core.status.state == DRIVER_STATE_STOPPING);
        } else if (i->core.q.busy) {
            /* Before start or recover has reported back (a guest that ends
             * at once; libvirt finding at reconnect that a QEMU died while
             * no daemon ran): kept for when it does. */
            i->stop_seen = true;
            i->stop_detail = detail;
        }
        return;
    }
}

/* Embedded mode: libvirt starts QEMU, its capability probes and a VM's
 * virtiofsds from this process, daemonized, so with this process a child
 * subreaper they are reparented to it.  libvirt waits for a QEMU it
 * stopped to vanish, and a zombie has not: reap them as soon as they end.
 * Only orphans are taken: zombies named qemu-system-* (or virtiofsd) in
 * another session than ours (libvirt's
 * daemonizing calls setsid); a QEMU libvirt runs as its direct child (the
 * capability probe) stays in our session and libvirt waits for it itself,
 * as the container runtime does for its children. */
static void on_reap_timer(uv_timer_t *t)
{
    reap_qemus(t->data);
}

/* The scan reads every process's stat, so it is skipped where no QEMU of
 * ours can exist (libvirtd's QEMUs are libvirtd's children; containers are
 * reaped by their driver) and run once for a burst: 500 containers
 * deleted at once would otherwise scan /proc 500 times over their 1,000
 * processes.  libvirt waits for its QEMU to vanish, so a few milliseconds
 * later is only that much later. */
static void on_sigchld(uv_signal_t *h, int sig)
{
    (void)sig;
    struct vm_priv *p = h->data;
    if (!__atomic_load_n(&p->embed_used, __ATOMIC_ACQUIRE) || uv_is_active((uv_handle_t *)&p->reap_timer))
        return;
    uv_timer_start(&p->reap_timer, on_reap_timer, VM_REAP_DELAY_MS, 0);
}

static void reap_qemus(struct vm_priv *p)
{
    pid_t self = getpid(), our_sid = getsid(0);
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
        /* QEMU, and the virtiofsds libvirt starts beside it for volumes
         * (ours, duet-virtiofsd, becomes virtiofsd once it has checked
         * the directory, and stays duet-virtiofsd when it refuses it). */
        if (!open_paren || !close_paren ||
            (strncmp(open_paren + 1, "qemu-system", 11) != 0 && strncmp(open_paren + 1, "virtiofsd)", 10) != 0 &&
             strncmp(open_paren + 1, "duet-virtiofsd", 14) != 0))
            continue;
        char state;
        int ppid, pgrp, sid;
        int pid = atoi(e->d_name), wst;
        if (sscanf(close_paren + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) == 4 && state == 'Z' &&
            ppid == self && sid != our_sid && waitpid(pid, &wst, WNOHANG) == pid) {
            /* Kept for the guest's end, which libvirt reports as "failed" alone. */
            for (struct driver_instance *i = p ? p->instances : NULL; i; i = i->next)
                if (i->qemu_pid == pid) {
                    i->qemu_reaped = true;
                    i->qemu_wstatus = wst;
                }
        }
    }
}

static void link_instance(struct driver_instance *inst)
{
    struct vm_priv *p = priv(inst->core.drv);
    inst->next = p->instances;
    p->instances = inst;
}

static void unlink_instance(struct driver_instance *inst)
{
    struct vm_priv *p = priv(inst->core.drv);
    for (struct driver_instance **pp = &p->instances; *pp; pp = &(*pp)->next)
        if (*pp == inst) {
            *pp = inst->next;
            return;
        }
}

static void attach_close(struct driver_instance *inst)
{
    if (!inst->attach_pending && !inst->attach_running)
        return;
    inst->attach_pending = inst->attach_running = false;
    for (int i = 0; i < 4; i++)
        close(inst->attach_fds[i]);
}

static void instance_free(struct driver_instance *inst)
{
    inst_core_fini(&inst->core);
    inst->freeing = true;
    vm_agent_free(inst->agent, "the VM was stopped before the command ended");
    attach_close(inst);
    vm_qga_cancel_all(&inst->qga, "the VM was stopped before the command ended");
    unlink_instance(inst);
    free(inst);
}

/* The agent has the workload's last output and status, or let go of it:
 * its end may be reported now. */
static void attach_ended(void *opaque, int status)
{
    (void)status;   /* the workload's status is the guest's status file's */
    struct driver_instance *inst = opaque;
    if (!inst->attach_running)
        return;
    attach_close(inst);
    if (inst->exit_held && !inst->freeing) {
        inst->exit_held = false;
        report_exit(inst, inst->held_code, inst->held_sig);
    }
}

static struct vm_agent *agent_of(struct driver_instance *inst)
{
    if (!inst->agent) {
        char path[PATH_MAX];
        inst_path(inst, VM_AGENT_SOCKET, path, sizeof(path));
        inst->agent = vm_agent_new(priv(inst->core.drv)->loop, path, inst->core.spec->name);
    }
    return inst->agent;
}

/* The guest runs: the caller's ends go to its agent, which attaches them
 * to the command duet-vminit holds for it. */
static void attach_begin(struct driver_instance *inst)
{
    struct driver_exec_io io = {.in_fd = inst->attach_fds[0], .out_fd = inst->attach_fds[1],
                                .err_fd = inst->attach_fds[2], .ctl_fd = inst->attach_fds[3],
                                .tty = inst->attach_tty};
    struct duet_err err = {0};
    inst->attach_pending = false;
    inst->attach_running = true;
    if (vm_agent_attach(agent_of(inst), &io, attach_ended, inst, &err) < 0) {
        char msg[DUET_ERR_MSG_MAX + 16];
        int n = snprintf(msg, sizeof(msg), "duet: %s\n", err.msg);
        ssize_t w = write(inst->attach_tty ? io.out_fd : io.err_fd, msg, (size_t)n);
        (void)w;   /* the caller's, which may be gone */
        attach_close(inst);
    }
}

/* What a completed operation means for the instance (instance.h decides
 * the rest: released, cancelled, destroyed). */
static bool on_finish(struct inst_op *b)
{
    struct op *op = (struct op *)b;
    struct driver_instance *inst = inst_of(op);
    switch (op->base.kind) {
    case OP_CREATE:
        if (op->base.rc == 0)
            inst->core.status.state = DRIVER_STATE_CREATED;
        break;
    case OP_START:
        if (op->base.rc == 0) {
            inst->core.status.state = DRIVER_STATE_RUNNING;
            inst->core.status.started_at_ms = clock_wall_ms();
            inst->core.exit_reported = false;
            inst->qemu_pid = qemu_pid_of(inst);
            inst->qemu_reaped = false;
            if (inst->attach_pending)
                attach_begin(inst);
            /* An exit that came before this callback (a guest faster than
             * the pool's reply) was kept aside: report it now. */
            if (op->fell_back) {
                /* The stop seen was the silent KVM guest's, destroyed. */
                inst->stop_seen = false;
                int code, sig;
                if (read_status(inst, &code, &sig))
                    report_exit(inst, code, sig);
            } else if (inst->stop_seen) {
                guest_ended(inst, inst->stop_detail, false);
            }
        }
        break;
    case OP_STOP:
        /* The guest is known to be down: its end is reported now, not left
         * to libvirt's lifecycle event, which a busy libvirt (or one that
         * re-attached to the domain) was seen never to deliver, leaving
         * the workload "stopping" for ever.  A late event finds the exit
         * reported and changes nothing. */
        if (op->base.rc == 0 && op->end_detail >= 0 &&
            (inst->core.status.state == DRIVER_STATE_RUNNING || inst->core.status.state == DRIVER_STATE_STOPPING))
            guest_ended(inst, op->end_detail, true);
        break;
    case OP_DESTROY:
        if (op->base.rc == 0)
            inst->core.status.state = DRIVER_STATE_GONE;
        break;
    case OP_RECOVER: {
        int code = -1, sig = 0;
        if (op->base.rc < 0) {
            /* Not there, or not ours: the workload is gone.  recover has no
             * done callback; on_exit says so, and inspect keeps it. */
            inst->core.status.state = DRIVER_STATE_GONE;
            inst->core.exit_reported = true;
            if (inst->core.on_exit)
                inst->core.on_exit(inst->core.exit_opaque, &inst->core.status);
        } else if ((op->dom_state == VIR_DOMAIN_RUNNING || op->dom_state == VIR_DOMAIN_PAUSED) &&
                   !inst->stop_seen) {
            inst->core.status.state = DRIVER_STATE_RUNNING;
            inst->qemu_pid = qemu_pid_of(inst);
        } else {
            /* It ended while no daemon ran. */
            inst->core.status.state = DRIVER_STATE_RUNNING;
            if (read_status(inst, &code, &sig))
                report_exit(inst, code, sig);
            else if (inst->stop_seen)
                guest_ended(inst, inst->stop_detail, false);
            else
                guest_ended(inst, op->dom_state == VIR_DOMAIN_CRASHED ? VIR_DOMAIN_EVENT_STOPPED_CRASHED
                                                                      : VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN,
                            op->powered_off);
        }
        break;
    }
    default:
        break;
    }
    return true;
}


static void on_free(struct inst_core *c)
{
    instance_free((struct driver_instance *)c);
}

static const struct inst_core_ops vm_inst_ops = {
    /* no let_go: a released guest goes on, nothing of libvirt's is held per instance */
    .work = on_work, .finish = on_finish, .free = on_free,
};

/* Runs op after what inst has queued; on failure op is freed. */
static int queue(struct driver_instance *inst, struct op *op, struct duet_err *err)
{
    return inst_op_queue(&inst->core, &op->base, err);
}

static struct op *op_new(enum op_kind kind, driver_done_cb done, void *opaque)
{
    struct op *op = inst_op_new(sizeof(struct op), kind, done, opaque);
    op->base.destroys = kind == OP_DESTROY;
    return op;
}

/* ---- the table ---------------------------------------------------------- */

static struct driver_instance *instance_new(struct driver *drv, const struct workload_spec *spec)
{
    struct vm_priv *p = priv(drv);
    struct driver_instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        abort();
    inst_core_init(&inst->core, drv, p->loop, spec, &vm_inst_ops);
    snprintf(inst->dom_name, sizeof(inst->dom_name), "%s-%s", p->owner, spec->name);
    snprintf(inst->dir, sizeof(inst->dir), "%s/vm/instances/%s", p->state_dir, spec->name);
    link_instance(inst);
    return inst;
}

/* A guest's console is written by QEMU (appending), with no process of
 * duet's in between: the daemon checks the consoles' sizes every
 * VM_CONSOLE_CHECK_MS and rotates one past VM_CONSOLE_MAX, as duet-init
 * does a container's log (copy into console.log.1, then truncate).  While
 * no daemon runs, a console is not capped. */
#define VM_CONSOLE_MAX (UINT64_C(8) << 20)
#define VM_CONSOLE_CHECK_MS 1000

static void console_rotate(struct driver_instance *inst)
{
    char path[PATH_MAX], prev[PATH_MAX];
    inst_path(inst, "console.log", path, sizeof(path));
    inst_path(inst, "console.log.1", prev, sizeof(prev));
    _cleanup_close_ int in = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0 || (uint64_t)st.st_size <= priv(inst->core.drv)->console_max)
        return;
    _cleanup_close_ int out = open(prev, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0)
        return;
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = copy_file_range(in, &off, out, NULL, (size_t)(st.st_size - off), 0);
        if (n <= 0)
            break;
    }
    if (ftruncate(in, 0) < 0)
        return;
}

static void on_console_check(uv_timer_t *t)
{
    struct vm_priv *p = t->data;
    for (struct driver_instance *i = p->instances; i; i = i->next)
        console_rotate(i);
}

static int vm_open(struct driver *drv, struct uv_loop_s *loop, const char *state_dir, struct duet_err *err)
{
    struct vm_priv *p = priv(drv);
    if (p->open)
        return duet_err_set(err, EALREADY, "the VM driver is already open");
    char real[PATH_MAX];
    if (!realpath(state_dir, real))
        return duet_err_sys(err, "state directory %s cannot be used", state_dir);
    if (strlen(real) > sizeof(p->state_dir) - 1)
        return duet_err_set(err, ENAMETOOLONG, "state directory %s: path too long", real);
    memcpy(p->state_dir, real, strlen(real) + 1);
    char vmdir[PATH_MAX];
    snprintf(vmdir, sizeof(vmdir), "%s/vm", p->state_dir);
    if (mkdir(vmdir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", vmdir);
    snprintf(vmdir, sizeof(vmdir), "%s/vm/instances", p->state_dir);
    if (mkdir(vmdir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", vmdir);
    snprintf(p->cache_dir, sizeof(p->cache_dir), "%s/vm/cache", p->state_dir);
    snprintf(p->kept_dir, sizeof(p->kept_dir), "%s/vm/kept", p->state_dir);
    if (mkdir(p->kept_dir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", p->kept_dir);
    snprintf(p->embed_root, sizeof(p->embed_root), "%s/vm/libvirt", p->state_dir);
    uint32_t h = 2166136261u;
    for (const char *s = p->state_dir; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    snprintf(p->owner, sizeof(p->owner), "duet-%08x", h);
    if (!p->console_max)
        p->console_max = VM_CONSOLE_MAX;
    /* libvirt logs its warnings to stderr; a daemon's belong in a file.
     * Read once, by libvirt's first call, which comes after this. */
    char logs[PATH_MAX + 32];
    snprintf(logs, sizeof(logs), "3:file:%s/vm/libvirt.log", p->state_dir);
    setenv("LIBVIRT_LOG_OUTPUTS", logs, 0);
    /* A libvirtd that goes away turns the next write on its socket into
     * SIGPIPE, which would kill the daemon: libvirt asks its users to
     * ignore it and report the error instead. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    if (vm_event_uv_register(loop, err) < 0)
        return -1;
    p->loop = loop;
    p->kvm_host = vm_kvm_usable();
    /* Embedded libvirt starts QEMU from this process; see on_sigchld. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    uv_signal_init(loop, &p->sigchld);
    p->sigchld.data = p;
    uv_signal_start(&p->sigchld, on_sigchld, SIGCHLD);
    uv_unref((uv_handle_t *)&p->sigchld);
    uv_timer_init(loop, &p->reap_timer);
    p->reap_timer.data = p;
    uv_unref((uv_handle_t *)&p->reap_timer);
    uv_timer_init(loop, &p->console_check);
    p->console_check.data = p;
    uv_timer_start(&p->console_check, on_console_check, VM_CONSOLE_CHECK_MS, VM_CONSOLE_CHECK_MS);
    uv_unref((uv_handle_t *)&p->console_check);
    p->reaping = true;
    p->open = true;
    return 0;
}

static void vm_close(struct driver *drv)
{
    struct vm_priv *p = priv(drv);
    if (!p->open)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->conn) {
        if (p->lifecycle_cb >= 0)
            virConnectDomainEventDeregisterAny(p->conn, p->lifecycle_cb);
        virConnectClose(p->conn);
        p->conn = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (p->reaping) {
        uv_close((uv_handle_t *)&p->sigchld, NULL);
        uv_close((uv_handle_t *)&p->reap_timer, NULL);
        uv_close((uv_handle_t *)&p->console_check, NULL);
        p->reaping = false;
    }
    vm_event_uv_shutdown();
    p->open = false;
}

static int vm_probe(struct driver *drv, struct driver_caps *caps, struct duet_err *err)
{
    struct vm_priv *p = priv(drv);
    return vm_backend_probe(p->uri_opt[0] ? p->uri_opt : NULL, p->guest_kernel[0] ? p->guest_kernel : NULL, caps,
                            err);
}

static int vm_create(struct driver *drv, const struct workload_spec *spec, const struct net_attachment *net,
                     struct driver_instance **out, driver_done_cb done, void *opaque, struct duet_err *err)
{
    if (!priv(drv)->open)
        return duet_err_set(err, EINVAL, "the VM driver is not open");
    struct driver_instance *inst = instance_new(drv, spec);
    if (net) {
        inst->core.net = *net;
        inst->core.has_net = true;
    }
    if (queue(inst, op_new(OP_CREATE, done, opaque), err) < 0) {
        instance_free(inst);
        return -1;
    }
    *out = inst;
    return 0;
}

static int vm_start(struct driver *drv, struct driver_instance *inst, driver_done_cb done, driver_exit_cb on_exit,
                    void *opaque, struct duet_err *err)
{
    (void)drv;
    inst->stop_seen = false;
    inst->shutdown_seen = false;
    inst->core.on_exit = on_exit;
    inst->core.exit_opaque = opaque;
    return queue(inst, op_new(OP_START, done, opaque), err);
}

static int vm_stop(struct driver *drv, struct driver_instance *inst, uint64_t grace_ms, driver_done_cb done,
                   void *opaque, struct duet_err *err)
{
    (void)drv;
    struct op *op = op_new(OP_STOP, done, opaque);
    op->grace_ms = grace_ms;
    if (inst->core.status.state == DRIVER_STATE_RUNNING)
        inst->core.status.state = DRIVER_STATE_STOPPING;
    return queue(inst, op, err);
}

static int vm_pause(struct driver *drv, struct driver_instance *inst, bool paused, driver_done_cb done, void *opaque,
                    struct duet_err *err)
{
    (void)drv;
    if (inst->core.status.state != DRIVER_STATE_RUNNING)
        return duet_err_set(err, EINVAL, "VM %s is not running", inst->core.spec->name);
    struct op *op = op_new(OP_PAUSE, done, opaque);
    op->paused = paused;
    return queue(inst, op, err);
}

static int vm_stats_later(struct driver *drv, struct driver_instance *inst, struct driver_stats *out,
                          driver_done_cb done, void *opaque, struct duet_err *err)
{
    (void)drv;
    struct op *op = op_new(OP_STATS, done, opaque);
    op->stats_out = out;
    return queue(inst, op, err);
}

static int vm_destroy(struct driver *drv, struct driver_instance *inst, driver_done_cb done, void *opaque,
                      struct duet_err *err)
{
    (void)drv;
    return queue(inst, op_new(OP_DESTROY, done, opaque), err);
}

static void vm_release(struct driver *drv, struct driver_instance *inst)
{
    (void)drv;
    if (inst)
        inst_core_release(&inst->core);
}

static int vm_inspect(struct driver *drv, struct driver_instance *inst, struct driver_status *st,
                      struct duet_err *err)
{
    (void)drv;
    (void)err;
    *st = inst->core.status;
    return 0;
}

static int vm_stats(struct driver *drv, struct driver_instance *inst, struct driver_stats *st, struct duet_err *err)
{
    memset(st, 0, sizeof(*st));
    virConnectPtr c = conn_if_open(priv(drv));
    if (!c)
        return duet_err_set(err, ENOTCONN, "VM %s: not connected to libvirt yet", inst->core.spec->name);
    virDomainPtr d = virDomainLookupByUUIDString(c, inst->uuid);
    virDomainInfo info;
    int rc = 0;
    if (!d || virDomainGetInfo(d, &info) < 0) {
        rc = lv_err(err, "VM %s: no statistics from libvirt", inst->core.spec->name);
    } else {
        st->cpu_ns = info.cpuTime;
        st->memory_limit = (uint64_t)info.maxMem << 10;
        st->memory_bytes = (uint64_t)info.memory << 10;
        st->pids = info.nrVirtCpu;
        /* What the host gives it: QEMU's resident set, when known.  What
         * the guest does with it, from the balloon's statistics, which a
         * guest without its driver never sends (libvirt then has none of
         * the guest's keys); all in KiB. */
        virDomainMemoryStatStruct ms[VIR_DOMAIN_MEMORY_STAT_NR];
        int n = virDomainMemoryStats(d, ms, VIR_DOMAIN_MEMORY_STAT_NR, 0);
        uint64_t total = 0, free_kib = 0, caches = 0;
        bool has_total = false, has_free = false;
        for (int i = 0; i < n; i++) {
            if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_RSS)
                st->memory_bytes = ms[i].val << 10;
            else if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_AVAILABLE)
                total = ms[i].val, has_total = true;
            else if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_UNUSED)
                free_kib = ms[i].val, has_free = true;
            else if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_DISK_CACHES)
                caches = ms[i].val;
        }
        if (n < 0)
            virResetLastError();
        if (has_total && has_free && free_kib + caches <= total) {
            st->has_mem_view = true;
            st->memory_resident_bytes = (total - free_kib - caches) << 10;
            st->memory_cache_bytes = caches << 10;
        }
        /* The guest's view of its disk (vda, where there is one); -1 for
         * a counter QEMU does not keep.  A kernel+initrd VM has none, and
         * asking would make libvirt log an error every few seconds. */
        virDomainBlockStatsStruct bs;
        char src[PATH_MAX];
        if (wl_disk_source(inst->core.spec, src, sizeof(src)) &&
            virDomainBlockStats(d, "vda", &bs, sizeof(bs)) == 0) {
            st->has_blk = true;
            st->blk_read_bytes = bs.rd_bytes > 0 ? (uint64_t)bs.rd_bytes : 0;
            st->blk_write_bytes = bs.wr_bytes > 0 ? (uint64_t)bs.wr_bytes : 0;
        } else {
            virResetLastError();
        }
        if (inst->core.has_net)
            st->has_net = driver_net_counters(&inst->core.net_files, inst->core.net.host_if, &st->net_rx_bytes,
                                          &st->net_tx_bytes);
        /* The kept disk holds all the guest wrote; a VM without a disk
         * writes only to its RAM. */
        char overlay[PATH_MAX];
        struct stat ost;
        struct duet_err ignored;
        if (kept_file(inst, KEPT_DISK, overlay, sizeof(overlay), &ignored) == 0 && stat(overlay, &ost) == 0) {
            st->disk_bytes = (uint64_t)ost.st_blocks * 512;
            st->disk_limit = wl_disk_bytes(inst->core.spec);
        }
    }
    if (d)
        virDomainFree(d);
    virConnectClose(c);
    return rc;
}

static int vm_handle(struct driver *drv, struct driver_instance *inst, char out[DRIVER_HANDLE_MAX],
                     struct duet_err *err)
{
    (void)drv;
    if (!inst->uuid[0])
        return duet_err_set(err, EINVAL, "VM %s has not been created", inst->core.spec->name);
    snprintf(out, DRIVER_HANDLE_MAX, "%s", inst->uuid);
    return 0;
}

static int vm_recover(struct driver *drv, const struct workload_spec *spec, const char *handle,
                      const struct net_attachment *net, struct driver_instance **out, driver_exit_cb on_exit,
                      void *opaque, struct duet_err *err)
{
    if (!priv(drv)->open)
        return duet_err_set(err, EINVAL, "the VM driver is not open");
    if (!handle || strlen(handle) != VIR_UUID_STRING_BUFLEN - 1 || strspn(handle, "0123456789abcdef-") != strlen(handle))
        return duet_err_set(err, EINVAL, "VM %s: the stored handle \"%s\" is not a domain UUID", spec->name,
                            handle ? handle : "");
    struct driver_instance *inst = instance_new(drv, spec);
    if (net) {
        inst->core.net = *net;
        inst->core.has_net = true;
    }
    inst->core.on_exit = on_exit;
    inst->core.exit_opaque = opaque;
    snprintf(inst->uuid, sizeof(inst->uuid), "%s", handle);
    struct op *op = op_new(OP_RECOVER, NULL, NULL);
    op->handle = inst->uuid;
    if (queue(inst, op, err) < 0) {
        instance_free(inst);
        return -1;
    }
    *out = inst;
    return 0;
}

static int vm_logs(struct driver *drv, struct driver_instance *inst, int *fd, int *prev, struct duet_err *err)
{
    (void)drv;
    char path[PATH_MAX];
    if (prev) {
        inst_path(inst, "console.log.1", path, sizeof(path));
        *prev = open(path, O_RDONLY | O_CLOEXEC);
    }
    inst_path(inst, "console.log", path, sizeof(path));
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && prev && *prev >= 0) {
        close(*prev);
        *prev = -1;
    }
    return *fd < 0 ? duet_err_sys(err, "VM %s: cannot open its console log %s", inst->core.spec->name, path) : 0;
}

static int vm_logs_previous(struct driver *drv, const char *name, int *fd, int *prev, struct duet_err *err)
{
    char what[96];
    snprintf(what, sizeof(what), "VM %.64s", name);
    return kept_logs_open(priv(drv)->kept_dir, name, what, fd, prev, err);
}

static int vm_purge(struct driver *drv, const char *name, unsigned what, driver_done_cb done, void *opaque,
                    struct duet_err *err)
{
    struct vm_priv *p = priv(drv);
    if (!p->open)
        return duet_err_set(err, EINVAL, "the VM driver is not open");
    return kept_purge(p->loop, p->kept_dir, name, what, kept_disk_files, done, opaque, err);
}

static int vm_kept_copy(struct driver *drv, const char *name, const char *dir, bool restore, size_t *copied,
                        struct duet_err *err)
{
    struct vm_priv *p = priv(drv);
    if (!p->open)
        return duet_err_set(err, EINVAL, "the VM driver is not open");
    /* The record before the disk, as a kept disk is made (above). */
    static const char *const order[] = {KEPT_DISK_BASE, KEPT_DISK};
    return kept_copy(p->kept_dir, name, order, 2, dir, restore, copied, err);
}

/* The record beside a saved disk: its base's path ("" for a standalone
 * disk) and that file's size. */
static int record_read(const char *rec, char *base, size_t len, long long *size, struct duet_err *err)
{
    _cleanup_fclose_ FILE *f = fopen(rec, "re");
    long long sec, nsec;
    if (!f || !fgets(base, (int)len, f) || !strchr(base, '\n') || fscanf(f, "%lld %lld %lld", size, &sec, &nsec) != 3)
        return duet_err_set(err, EPROTO, "the record of the VM disk %s cannot be read", rec);
    *strchr(base, '\n') = '\0';
    return 0;
}

static int record_write(const char *rec, const char *base, long long size, long long sec, long long nsec,
                        struct duet_err *err)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", rec);
    _cleanup_fclose_ FILE *f = fopen(tmp, "we");
    if (!f || fprintf(f, "%s\n%lld %lld %lld\n", base, size, sec, nsec) < 0 || fflush(f) != 0 ||
        fsync(fileno(f)) < 0 || rename(tmp, rec) < 0) {
        int rc = duet_err_sys(err, "cannot write %s", rec);
        unlink(tmp);
        return rc;
    }
    return 0;
}

static uint64_t be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

/* A qcow2 from a backup is read by QEMU on the host: its header must name
 * no file but `base` ("" none), neither as its backing file nor as an
 * external data file. */
static int qcow2_check_refs(const char *path, const char *base, struct duet_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    unsigned char h[104];
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pread(fd, h, sizeof(h), 0) < 72 ||
        memcmp(h, "QFI\xfb", 4) != 0)
        return duet_err_set(err, EPROTO, "the VM disk in the backup is not a qcow2 image");
    uint32_t version = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    if (version != 2 && version != 3)
        return duet_err_set(err, EPROTO, "the VM disk in the backup is a qcow2 of version %u", version);
    /* incompatible feature bit 2: the data lives in another file */
    if (version == 3 && (be64(h + 72) & 4))
        return duet_err_set(err, EPERM, "the VM disk in the backup keeps its data in an external file; refused");
    uint64_t off = be64(h + 8);
    uint32_t n = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
    char name[PATH_MAX] = "";
    if (off) {
        if (n == 0 || n >= sizeof(name) || pread(fd, name, n, (off_t)off) != (ssize_t)n)
            return duet_err_set(err, EPROTO, "the VM disk in the backup has a damaged backing file name");
        name[n] = '\0';
    }
    if (strcmp(name, base) != 0)
        return duet_err_set(err, EPERM,
                            "the VM disk in the backup is an overlay of \"%.200s\", and its record says \"%.200s\"; "
                            "refused",
                            name, base);
    return 0;
}

/* driver.kept_portable.  A disk over a base duet built (a rootfs or OCI
 * VM's, in its cache) is flattened on export: that base is made anew on
 * another host and differs byte for byte.  A disk over the user's
 * image.disk stays an overlay, and on import that image must be the
 * spec's, present with the size recorded. */
static int vm_kept_portable(struct driver *drv, const char *name, const char *dir,
                            const struct workload_spec *spec, struct duet_err *err)
{
    bool import = spec != NULL;
    struct vm_priv *p = priv(drv);
    char disk[PATH_MAX], rec[PATH_MAX], base[PATH_MAX + 2];
    long long size;
    if (snprintf(disk, sizeof(disk), "%s/" KEPT_DISK, dir) >= (int)sizeof(disk) ||
        snprintf(rec, sizeof(rec), "%s/" KEPT_DISK_BASE, dir) >= (int)sizeof(rec))
        return duet_err_set(err, ENAMETOOLONG, "the VM disk's path is too long");
    if (record_read(rec, base, sizeof(base), &size, err) < 0)
        return -1;
    size_t cl = strlen(p->cache_dir);
    if (!import) {
        if (!base[0] || strncmp(base, p->cache_dir, cl) != 0 || base[cl] != '/')
            return 0;
        char flat[PATH_MAX + 8];
        snprintf(flat, sizeof(flat), "%s.flat", disk);
        char *const argv[] = {"qemu-img", "convert", "-O", "qcow2", disk, flat, NULL};
        if (duet_run_tool(argv, err) < 0) {
            unlink(flat);
            return duet_err_prefix(err, "workload %s: flattening its disk for the backup", name);
        }
        if (rename(flat, disk) < 0) {
            unlink(flat);
            return duet_err_sys(err, "workload %s: flattening its disk for the backup", name);
        }
        return record_write(rec, "", 0, 0, 0, err);
    }
    if (qcow2_check_refs(disk, base, err) < 0)
        return -1;
    if (!base[0])
        return 0;
    char real[PATH_MAX];
    struct stat st;
    if (!spec->image.disk || !realpath(spec->image.disk, real) || strcmp(real, base) != 0)
        return duet_err_set(err, EPERM,
                            "the VM disk in the backup is an overlay of %s, which is not the workload's image.disk "
                            "(%s); refused",
                            base, spec->image.disk ? spec->image.disk : "none");
    if (stat(real, &st) < 0)
        return duet_err_sys(err, "the VM disk in the backup is an overlay of %s; put that image there first", base);
    if ((long long)st.st_size != size)
        return duet_err_set(err, ESTALE,
                            "the VM disk in the backup is an overlay of %s, and that file is now %lld bytes where it "
                            "was %lld; put the image it was made over there first",
                            base, (long long)st.st_size, size);
    /* The same image by path and size: recorded as this host's file. */
    return record_write(rec, base, size, (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec, err);
}

/* A rootfs image boots duet-vminit, which serves commands on the agent's
 * port (vminit_agent.c); a disk image boots its own init, which does not.
 * QEMU's end of the port is a unix socket in the instance's directory,
 * whose path must fit a socket address. */
static bool vm_exec_supported(struct driver *drv, const struct workload_spec *spec, char *why, size_t len)
{
    /* A disk image: if it runs a QEMU guest agent, which the exec says
     * when it does not. */
    if (!spec->image.rootfs && !spec->image.disk) {
        snprintf(why, len,
                 "VM %s boots its own kernel and initrd, whose guest runs no agent: exec (and an exec health check) "
                 "needs a rootfs image, or a disk image running qemu-guest-agent; use a tcp health check, or duet "
                 "logs for its console",
                 spec->name);
        return false;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/vm/instances/%s/%s", priv(drv)->state_dir, spec->name,
             spec->image.rootfs ? VM_AGENT_SOCKET : VM_QGA_SOCKET);
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(why, len,
                 "VM %s: its agent's socket %s would be longer than the %zu bytes a socket address holds; give "
                 "duetd a shorter --state-dir",
                 spec->name, path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return false;
    }
    return true;
}

static int vm_exec(struct driver *drv, struct driver_instance *inst, const char *const *argv, int out_fd,
                   int err_fd, uint64_t timeout_ms, void (*exited)(void *opaque, int status), void *opaque,
                   struct duet_err *err)
{
    char why[DUET_ERR_MSG_MAX];
    if (!vm_exec_supported(drv, inst->core.spec, why, sizeof(why)))
        return duet_err_set(err, ENOTSUP, "%s", why);
    /* A re-attached VM is asked of libvirt on the loop, after the daemon
     * has it running already: only one known to have ended is refused
     * here, the rest is up to the socket. */
    if (inst->core.status.state == DRIVER_STATE_EXITED || inst->core.status.state == DRIVER_STATE_GONE)
        return duet_err_set(err, EAGAIN, "VM %s is not running", inst->core.spec->name);
    if (inst->core.spec->image.disk) {
        struct vm_priv *p = priv(drv);
        virConnectPtr c = conn_if_open(p);
        if (!c || !inst->uuid[0]) {
            if (c)
                virConnectClose(c);
            return duet_err_set(err, ENOTCONN, "VM %s: not connected to libvirt yet; try again", inst->core.spec->name);
        }
        int rc = vm_qga_exec(p->loop, c, inst->uuid, inst->core.spec->name, argv, out_fd, err_fd, timeout_ms, exited,
                             opaque, &inst->qga, err);
        virConnectClose(c);
        return rc;
    }
    return vm_agent_exec(agent_of(inst), argv, out_fd, err_fd, timeout_ms, exited, opaque, err);
}

/* duet exec -i, -t: through duet-vminit's agent only (a rootfs or OCI VM);
 * the QEMU guest agent of a disk image runs commands without either. */
static int vm_exec_io(struct driver *drv, struct driver_instance *inst, const char *const *argv,
                      const struct driver_exec_io *io, uint64_t timeout_ms, void (*exited)(void *opaque, int status),
                      void *opaque, struct duet_err *err)
{
    char why[DUET_ERR_MSG_MAX];
    if (!vm_exec_supported(drv, inst->core.spec, why, sizeof(why)))
        return duet_err_set(err, ENOTSUP, "%s", why);
    if (inst->core.status.state == DRIVER_STATE_EXITED || inst->core.status.state == DRIVER_STATE_GONE)
        return duet_err_set(err, EAGAIN, "VM %s is not running", inst->core.spec->name);
    if (inst->core.spec->image.disk)
        return duet_err_set(err, ENOTSUP,
                            "VM %s boots a disk image, whose guest agent (qemu-guest-agent) runs commands without "
                            "input or a terminal; run duet exec without -i and -t, or ssh into it",
                            inst->core.spec->name);
    return vm_agent_exec_io(agent_of(inst), argv, io, timeout_ms, exited, opaque, err);
}

/* duet run -i/-t: a rootfs or OCI VM whose duet-vminit was told to hold
 * its command for the caller ("attach" in its spec, from spec->attach). */
static int vm_attach(struct driver *drv, struct driver_instance *inst, const struct driver_exec_io *io,
                     struct duet_err *err)
{
    (void)drv;
    const struct workload_spec *w = inst->core.spec;
    if (!w->attach || w->image.disk || w->image.kernel)
        return duet_err_set(err, ENOTSUP,
                            "VM %s: only a command duet-vminit runs, started for duet run -i/-t, can be attached",
                            w->name);
    if (inst->core.status.state != DRIVER_STATE_CREATED || inst->attach_pending || inst->attach_running)
        return duet_err_set(err, EINVAL, "VM %s: only a VM not started yet can be attached", w->name);
    int src[4] = {io->in_fd, io->out_fd, io->err_fd, io->ctl_fd};
    for (int i = 0; i < 4; i++) {
        inst->attach_fds[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        if (inst->attach_fds[i] < 0) {
            duet_err_sys(err, "VM %s: cannot keep its caller's ends", w->name);
            while (i-- > 0)
                close(inst->attach_fds[i]);
            return -1;
        }
    }
    inst->attach_tty = io->tty;
    inst->attach_pending = true;
    return 0;
}

void vm_driver_set_console_max(struct driver *drv, uint64_t bytes)
{
    priv(drv)->console_max = bytes;
}

const char *vm_driver_uri(struct driver *drv)
{
    return priv(drv)->uri;
}

bool vm_driver_uses_kvm(struct driver *drv)
{
    return use_kvm(priv(drv));
}

static int vm_netns(struct driver *drv, struct driver_instance *inst, int *fd, struct duet_err *err)
{
    (void)drv;
    *fd = -1;
    return duet_err_set(err, ENOTSUP, "VM %s: its network is inside the guest; duet cannot enter it",
                        inst->core.spec->name);
}

struct driver *vm_driver_new(const struct vm_driver_options *opt)
{
    struct driver *drv = calloc(1, sizeof(*drv));
    struct vm_priv *p = calloc(1, sizeof(*p));
    if (!drv || !p)
        abort();
    p->opt = *opt;
    if (!p->opt.kvm_deadline_ms)
        p->opt.kvm_deadline_ms = VM_KVM_DEADLINE_MS;
    snprintf(p->uri_opt, sizeof(p->uri_opt), "%s", opt->uri ? opt->uri : "");
    snprintf(p->vminit, sizeof(p->vminit), "%s", opt->vminit ? opt->vminit : "");
    snprintf(p->virtiofsd, sizeof(p->virtiofsd), "%s", opt->virtiofsd ? opt->virtiofsd : "");
    snprintf(p->virtiofsd_ro, sizeof(p->virtiofsd_ro), "%s" VM_VIRTIOFSD_RO_SUFFIX, p->virtiofsd);
    if (opt->guest_kernel)
        snprintf(p->guest_kernel, sizeof(p->guest_kernel), "%s", opt->guest_kernel);
    else if (!vm_find_guest_kernel(NULL, p->guest_kernel, sizeof(p->guest_kernel)))
        p->guest_kernel[0] = '\0';
    p->opt.uri = p->opt.vminit = p->opt.guest_kernel = p->opt.virtiofsd = NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->lifecycle_cb = -1;
    *drv = (struct driver){
        .name = "vm",
        .kind = BACKEND_VM,
        .open = vm_open,
        .close = vm_close,
        .probe = vm_probe,
        .create = vm_create,
        .start = vm_start,
        .stop = vm_stop,
        .destroy = vm_destroy,
        .release = vm_release,
        .inspect = vm_inspect,
        .stats = vm_stats,
        .stats_later = vm_stats_later,
        .handle = vm_handle,
        .recover = vm_recover,
        .flags = DRIVER_RESTART_INTERRUPTED_START | DRIVER_KEEPS_DISK | DRIVER_CAN_EXEC,
        .logs = vm_logs,
        .logs_previous = vm_logs_previous,
        .purge = vm_purge,
        .kept_copy = vm_kept_copy,
        .kept_portable = vm_kept_portable,
        .pause = vm_pause,
        .exec = vm_exec,
        .exec_io = vm_exec_io,
        .attach = vm_attach,
        .exec_supported = vm_exec_supported,
        .netns = vm_netns,
        .priv = p,
    };
    return drv;
}

void vm_driver_free(struct driver *drv)
{
    if (!drv)
        return;
    vm_close(drv);
    struct vm_priv *p = priv(drv);
    while (p->instances)
        vm_release(drv, p->instances);
    pthread_mutex_destroy(&p->lock);
    for (size_t i = 0; p->protect[i]; i++)
        free(p->protect[i]);
    free(p);
    free(drv);
}

void vm_driver_protect_path(struct driver *drv, const char *path)
{
    struct vm_priv *p = priv(drv);
    for (size_t i = 0; i < VM_PROTECT_MAX; i++)
        if (!p->protect[i]) {
            p->protect[i] = strdup(path);
            if (!p->protect[i])
                abort();
            return;
        }
}
