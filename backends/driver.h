/*
 * driver.h - the one interface both backends implement.
 *
 * A backend is a table of function pointers, owned by the backend and
 * registered once with the daemon, in the style of libvirt's hypervisor
 * drivers: the daemon never branches on "is this a VM?"; it calls through
 * the table.  Names read module_noun_verb (container_driver, vm_driver).
 *
 * Threading and the event loop.  The daemon runs one libuv loop.  Calls
 * marked (loop) return at once and finish through the callback on the loop
 * thread; any blocking work (libvirt RPCs, mounts, waiting for a process)
 * happens on the libuv thread pool or in the kernel.  Calls marked (any)
 * are quick and may be made from any thread.  probe may block (it opens a
 * libvirt connection): call it before the loop runs or from the pool.
 *
 * Ownership.  A `struct driver_instance` is created by `create`, owned by
 * the daemon afterwards, and released only by `destroy` or `release`.  Its
 * `handle` is what the state store keeps so that `recover` can re-attach
 * after a daemon restart: it must be enough to find the workload again and
 * to prove it is the same one (a container's pid plus its start time, a
 * domain's UUID), never just a pid.
 *
 * Errors.  Every call that can fail fills a `struct duet_err` that names the
 * workload and the fix where a user can act.
 *
 * Layering: backends include manifests/ (the spec they run) and common/,
 * never scheduler/ or orchestrator/.
 */
#ifndef DUET_DRIVER_H
#define DUET_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "manifests/manifest.h"
#include "network/attachment.h"

struct uv_loop_s;

enum backend_kind {
    BACKEND_VM,
    BACKEND_CONTAINER,
    BACKEND_COUNT
};

const char *backend_kind_name(enum backend_kind k);   /* "vm", "container" */

/* What `probe` reports: whether this backend can run workloads on this host
 * and what it costs.  The scheduler reads only this, never the backend. */
struct driver_caps {
    bool available;
    char unavailable_reason[DUET_ERR_MSG_MAX];  /* short: what is missing */
    char unavailable_fix[DUET_ERR_MSG_MAX];     /* the cause in detail and what to do */
    char description[64];          /* "kvm", "qemu (no kvm)", "namespaces, cgroup v1" */
    bool attach;                   /* a workload's command can be attached (driver.attach; duet run -i/-t) */

    /* vm */
    bool kvm;                      /* hardware virtualisation usable */
    bool guest_kernel;             /* a kernel exists to boot rootfs images as VMs */
    char guest_kernel_path[256];
    char uri[128];                 /* libvirt URI that answered */
    bool virtiofs;                 /* a virtiofsd to share volumes with guests */
    bool guest_virtiofs;           /* the guest kernel above can mount them */

    /* container */
    int cgroup_version;            /* 1 or 2 */
    bool cgroup_hybrid;            /* v1 controllers beside an empty v2 tree */
    bool user_namespaces;

    /* Cost model inputs.  Estimates until the daemon has measured them; the
     * daemon records measured values and passes them back in later plans. */
    uint64_t start_ms;             /* create to running */
    uint64_t memory_overhead;      /* bytes beyond the workload's own memory */
    uint64_t memory_floor;         /* the least resources.memory a workload may have here */
    bool measured;                 /* false: the two figures above are estimates */
};

enum driver_state {
    DRIVER_STATE_CREATED,          /* resources prepared, nothing running */
    DRIVER_STATE_RUNNING,
    DRIVER_STATE_STOPPING,
    DRIVER_STATE_EXITED,           /* ran and ended; exit status known */
    DRIVER_STATE_GONE,             /* nothing left on the host */
};

struct driver_status {
    enum driver_state state;
    int exit_code;                 /* EXITED: the workload's exit status, or -1 */
    int term_signal;               /* EXITED: killing signal, or 0 */
    uint64_t started_at_ms;        /* wall clock, ms since the epoch */
    uint64_t exited_at_ms;
    /* EXITED: what the status alone would hide.  oom: the kernel's OOM
     * killer ended it at its memory limit (the container's cgroup, or the
     * guest's own kernel).  reason: how it ended, in words, when the
     * status is not the workload's own (a VM whose QEMU was killed). */
    bool oom;
    char reason[160];
};

struct driver_stats {
    uint64_t cpu_ns;               /* CPU time used */
    /* What the host gives it now: a container's cgroup usage (its page
     * cache included), a VM's QEMU process's resident set (guest memory
     * it has touched, whatever the guest uses it for). */
    uint64_t memory_bytes;
    uint64_t memory_limit;
    /* The workload's own view, the same for both backends (has_mem_view):
     * memory its processes hold, page cache not counted, and its page
     * cache.  A container's from its cgroup's memory.stat; a VM's from
     * its guest, through the balloon device's statistics (total less
     * free less buffers and cache), when its kernel reports them. */
    bool has_mem_view;
    uint64_t memory_resident_bytes, memory_cache_bytes;
    uint64_t pids;                 /* processes (containers) or vCPUs (VMs) */
    uint64_t disk_bytes;           /* what its writes take on the host now */
    uint64_t disk_limit;           /* resources.disk */
    /* I/O since the instance started, from the workload's side: bytes
     * read from and written to its disks (has_blk: the host counts them:
     * a container's cgroup, a VM's virtual disk), received and sent on
     * the fleet network (has_net: it is on it; counted at the host's end
     * of its link, the same for both backends). */
    bool has_blk, has_net;
    uint64_t blk_read_bytes, blk_write_bytes;
    uint64_t net_rx_bytes, net_tx_bytes;
};

/* The counters of the host's end of a workload's link (veth or tap),
 * turned to the workload's side: what the host's end sent, the workload
 * received.  false when the link is not there.  Their files stay open in
 * f (one reader at a time) until driver_net_files_close. */
struct driver_net_files {
    int fd[2];
};
void driver_net_files_init(struct driver_net_files *f);
void driver_net_files_close(struct driver_net_files *f);
bool driver_net_counters(struct driver_net_files *f, const char *host_if, uint64_t *rx, uint64_t *tx);

/* Starting points of the cost model, measured on a 2-core Debian 12 host
 * (libvirt 9.0, QEMU 7.2, a small guest; a busybox container): start is
 * create to running (for a VM, to the guest's first console line), overhead
 * is memory beyond the workload's own (the QEMU process; duet's init).  The
 * daemon replaces them with what it measures. */
#define DRIVER_EST_CONTAINER_START_MS 15
#define DRIVER_EST_CONTAINER_OVERHEAD (UINT64_C(256) << 10)
#define DRIVER_EST_VM_START_KVM_MS 1500
#define DRIVER_EST_VM_START_TCG_MS 3000
#define DRIVER_EST_VM_OVERHEAD_KVM (UINT64_C(48) << 20)
#define DRIVER_EST_VM_OVERHEAD_TCG (UINT64_C(96) << 20)
/* Below this a guest kernel and its init do not come up; a container's
 * floor is the manifest's own (WL_MIN_MEMORY). */
#define DRIVER_VM_MEMORY_FLOOR (UINT64_C(64) << 20)
/* A rootfs or OCI image boots with duet's guest kernel (a distribution's,
 * with its modules in the initramfs): Debian 12's panics in 80 MiB before
 * its console is up, and comes up in 96 MiB with 15 MiB to spare. */
#define DRIVER_VM_GUEST_KERNEL_FLOOR (UINT64_C(128) << 20)

/* Opaque per-workload state, defined by each backend. */
struct driver_instance;

/* The persistent identity of an instance: backend-defined text, at most
 * DRIVER_HANDLE_MAX bytes, stored by the daemon as is. */
#define DRIVER_HANDLE_MAX 256

typedef void (*driver_done_cb)(void *opaque, const struct duet_err *err);     /* err NULL on success */
typedef void (*driver_exit_cb)(void *opaque, const struct driver_status *st);

/* An interactive exec's ends (driver.exec_io). */
struct driver_exec_io {
    int in_fd, out_fd, err_fd;
    int ctl_fd;                    /* struct driver_winsize records; -1: none */
    bool tty;
    unsigned short rows, cols;     /* the terminal's first size (0: the kernel's default) */
};
/* A resize of an exec's terminal, as written to its ctl_fd. */
struct driver_winsize {
    unsigned short rows, cols;
};

/* What a backend can do and asks of the daemon (driver.flags).  The daemon
 * reads these, never the backend's kind. */
/* A start a daemon's end interrupted cannot be trusted to have finished
 * (a VM's QEMU may be half set up, or killed by a hypervisor that
 * reconnects later): the daemon destroys such an instance and starts the
 * workload again rather than re-attach to it.  A container's start is
 * whole once duet-init runs, so the container driver re-attaches. */
#define DRIVER_RESTART_INTERRUPTED_START 0x1u
/* exec runs a command inside the running workload (health checks, duet
 * exec), for every spec unless exec_supported says otherwise.  Without it
 * an exec health check cannot be run. */
#define DRIVER_CAN_EXEC 0x2u
/* stats reads files and answers at once: safe to call on the loop (a
 * hypervisor's figures may wait on its connection, which the loop must
 * not). */
#define DRIVER_STATS_AT_ONCE 0x4u
/* netns gives the workload's own network namespace: a tcp health check
 * connects to 127.0.0.1 inside it.  Without it the check connects to the
 * workload's address on the fleet network. */
#define DRIVER_HAS_NETNS 0x8u
/* recover finds an instance by the workload alone when no handle was
 * stored (a start cut short before its handle was written). */
#define DRIVER_RECOVER_WITHOUT_HANDLE 0x10u
/* The workload's disk outlives its instances (a VM's): a create finds
 * the disk the last instance wrote and boots it, whatever the spec's
 * image says, until purge(DRIVER_KEPT_DISK) removes it.  Deciding when
 * a changed image may reset it is the daemon's (docs/storage.md). */
#define DRIVER_KEEPS_DISK 0x20u

/* What purge removes of what a backend keeps for a workload beyond its
 * instances. */
#define DRIVER_KEPT_DISK 0x1u       /* a VM's disk */
#define DRIVER_KEPT_LOGS 0x2u       /* the log of the last instance destroyed */

struct driver {
    const char *name;              /* "container", "vm" */
    enum backend_kind kind;
    unsigned flags;                /* DRIVER_* above */

    /* Prepares the backend on `loop` (libvirt event hooks, pidfd watchers). */
    int (*open)(struct driver *drv, struct uv_loop_s *loop, const char *state_dir, struct duet_err *err);
    void (*close)(struct driver *drv);

    /* (blocking) What this backend can do here.  Valid before open. */
    int (*probe)(struct driver *drv, struct driver_caps *caps, struct duet_err *err);

    /* (loop) Prepare everything a start needs (overlay, cgroup, disk
     * overlay, domain definition) without running anything.  net: where
     * the workload joins the fleet network, or NULL for none (loopback
     * only); copied. */
    int (*create)(struct driver *drv, const struct workload_spec *spec, const struct net_attachment *net,
                  struct driver_instance **out, driver_done_cb done, void *opaque, struct duet_err *err);
    /* (loop) Run it.  `on_exit` fires once when the workload ends, on the
     * loop thread, without polling (pidfd, libvirt lifecycle events). */
    int (*start)(struct driver *drv, struct driver_instance *inst, driver_done_cb done,
                 driver_exit_cb on_exit, void *opaque, struct duet_err *err);
    /* (loop) Graceful stop (SIGTERM, ACPI shutdown), forced after grace_ms. */
    int (*stop)(struct driver *drv, struct driver_instance *inst, uint64_t grace_ms, driver_done_cb done,
                void *opaque, struct duet_err *err);
    /* (loop) Remove everything create made; leaves nothing on the host even
     * after a half-finished create or start.  Frees inst. */
    int (*destroy)(struct driver *drv, struct driver_instance *inst, driver_done_cb done, void *opaque,
                   struct duet_err *err);
    /* (loop) Forget inst without touching the workload (daemon shutdown).
     * With an operation still running, inst goes when it ends, and none of
     * its callbacks is called. */
    void (*release)(struct driver *drv, struct driver_instance *inst);

    /* (any) */
    int (*inspect)(struct driver *drv, struct driver_instance *inst, struct driver_status *st,
                   struct duet_err *err);
    int (*stats)(struct driver *drv, struct driver_instance *inst, struct driver_stats *st,
                 struct duet_err *err);
    /* (loop) stats on the pool, for a backend whose stats may wait on a
     * hypervisor (no DRIVER_STATS_AT_ONCE): out is filled before done and
     * must live until then; queued behind the instance's other operations.
     * NULL where stats answers at once. */
    int (*stats_later)(struct driver *drv, struct driver_instance *inst, struct driver_stats *out, driver_done_cb done,
                       void *opaque, struct duet_err *err);
    /* (any) The handle the store keeps for inst. */
    int (*handle)(struct driver *drv, struct driver_instance *inst, char out[DRIVER_HANDLE_MAX],
                  struct duet_err *err);

    /* (loop) Re-attach to what a previous daemon started, from its handle;
     * an exit that happened while no daemon ran is reported through
     * on_exit right after.  A backend that must ask a hypervisor finishes
     * on the loop later: a workload it cannot find (or that is not the one
     * the handle named) is reported through on_exit with state GONE.  net:
     * its attachment to the fleet network, as create was given it (NULL:
     * none), so its link's counters are read again. */
    int (*recover)(struct driver *drv, const struct workload_spec *spec, const char *handle,
                   const struct net_attachment *net, struct driver_instance **out, driver_exit_cb on_exit,
                   void *opaque, struct duet_err *err);

    /* (any) A readable fd on the workload's log (stdout+stderr of a
     * container, serial console of a VM), positioned at its start, and
     * when prev is not NULL one on the generation before it (-1: none).
     * Logs are capped: a log that reaches its bound becomes the previous
     * generation and starts again empty (a reader sees it shrink).  The
     * caller owns the fds. */
    int (*logs)(struct driver *drv, struct driver_instance *inst, int *fd, int *prev, struct duet_err *err);

    /* (any) Whether exec can run commands in a workload of this spec when
     * it runs here: false with the reason in why (a VM booting a disk
     * image, whose guest runs no agent of duet's).  NULL: exec always can
     * where DRIVER_CAN_EXEC is set. */
    bool (*exec_supported)(struct driver *drv, const struct workload_spec *spec, char *why, size_t len);
    /* (loop) Run argv inside the running workload; its output
     * goes to out_fd and err_fd, its exit status (128+N for signal N, -1
     * when it could not run) to exited.  timeout_ms > 0: the command and
     * everything it started are killed then (status 137).  A command that
     * runs on holds back no other operation of the workload. */
    int (*exec)(struct driver *drv, struct driver_instance *inst, const char *const *argv, int out_fd,
                int err_fd, uint64_t timeout_ms, void (*exited)(void *opaque, int status), void *opaque,
                struct duet_err *err);

    /* (loop, optional) exec with the caller's input and, with io->tty, a
     * terminal of the workload's own (duet exec -i/-t): as exec, but the
     * command reads io->in_fd until its end (-1: nothing), and with a tty
     * its stdin, stdout and stderr are the terminal: what it shows goes to
     * io->out_fd (err_fd unused), io->in_fd is typed into it, and the
     * records read from io->ctl_fd (struct driver_winsize) resize it.
     * exited is called once all the output is in out_fd and err_fd.  The
     * caller owns the fds and keeps them open until exited.  NULL: this
     * backend runs no interactive command (the API says so). */
    int (*exec_io)(struct driver *drv, struct driver_instance *inst, const char *const *argv,
                   const struct driver_exec_io *io, uint64_t timeout_ms, void (*exited)(void *opaque, int status),
                   void *opaque, struct duet_err *err);

    /* (loop, optional) Before the first start of inst: its main command
     * is run attached to io, as exec_io runs a command (duet run -i/-t):
     * io->in_fd is its input, with io->tty it runs on a terminal of the
     * workload's own whose size follows io->ctl_fd's records, and what it
     * writes goes to io->out_fd (and err_fd without a terminal) as well as
     * to its log.  The end of io->ctl_fd means the caller has gone: the
     * workload runs on, its output into its log alone.  The driver keeps
     * copies of the fds; the caller keeps its own open until the workload
     * has ended, and learns of that end as of any (driver_exit_cb).  NULL:
     * this backend's workloads cannot be attached (the daemon refuses
     * such a run before placing it there). */
    int (*attach)(struct driver *drv, struct driver_instance *inst, const struct driver_exec_io *io,
                  struct duet_err *err);

    /* (any) A readable fd on the log of the workload's last destroyed
     * instance (destroy keeps it), and when prev is not NULL one on its
     * previous generation (-1: none).  ENOENT when there is none. */
    int (*logs_previous)(struct driver *drv, const char *name, int *fd, int *prev, struct duet_err *err);

    /* (loop) Removes what this backend keeps for the workload `name`
     * beyond its instances (what: DRIVER_KEPT_*), on the pool; no instance
     * of it may exist meanwhile.  Removing what is not there succeeds, so
     * a purge cut short by the daemon's end is simply asked again. */
    int (*purge)(struct driver *drv, const char *name, unsigned what, driver_done_cb done, void *opaque,
                 struct duet_err *err);
    /* (worker) A snapshot of what this backend keeps for the workload
     * `name` (DRIVER_KEPT_DISK: a VM's disk): copied into dir (restore
     * false; *copied: how many files, 0 when none is kept), or put back
     * from dir (restore true).  No instance of it may exist meanwhile;
     * blocks.  NULL where a backend keeps no disk. */
    int (*kept_copy)(struct driver *drv, const char *name, const char *dir, bool restore, size_t *copied,
                     struct duet_err *err);

    /* (loop) Pauses the running workload (paused true), or lets it go on:
     * a VM's guest is suspended (QEMU writes out what it holds of its
     * disks first), a container's processes frozen (the cgroup freezer).
     * done once it has taken effect.  While paused, nothing it runs
     * changes a file: what a live backup copies meanwhile is as a crash
     * would have left it.  NULL where a backend cannot pause. */
    int (*pause)(struct driver *drv, struct driver_instance *inst, bool paused, driver_done_cb done, void *opaque,
                 struct duet_err *err);

    /* (worker) Makes a disk kept_copy saved into dir for workload `name`
     * fit to leave this host (import_for NULL: a disk over a base the
     * backend built itself comes to hold that base too), or checks one
     * from elsewhere before it is put back for the spec import_for (it
     * must refer to no file but that spec's image, which must be here).
     * NULL where kept_copy is. */
    int (*kept_portable)(struct driver *drv, const char *name, const char *dir,
                         const struct workload_spec *import_for, struct duet_err *err);

    /* (any) An fd on the running workload's network namespace, for health
     * checks that connect from inside it (containers).  The caller owns
     * the fd.  A backend without one fails with ENOTSUP. */
    int (*netns)(struct driver *drv, struct driver_instance *inst, int *fd, struct duet_err *err);

    void *priv;                    /* the backend's own state, owned by the backend */
};

#endif
