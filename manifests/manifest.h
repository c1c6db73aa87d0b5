/*
 * manifest.h - duet/v1 manifests as typed specs.
 *
 * The flow is: files and directories -> YAML trees (ytree.c) -> one
 * `struct workload_spec` per Workload document and at most one
 * `struct host_spec` (schema.c) -> checks across documents (validate.c):
 * unique names, known and acyclic dependsOn, host ports published once.
 * duetd's config file is read by the same path: a `kind: Daemon` document
 * becomes a `struct daemon_spec`.
 *
 * A `struct manifest_set` owns everything it loaded: specs and their strings
 * live in its arena and die with manifest_set_free().  Every problem found on
 * the way is a diagnostic in set->diags with FILE:LINE:COL; callers treat a
 * set with any diagnostic as invalid as a whole (apply is all or nothing).
 *
 * This module depends on libyaml, common/ and network/ipam.h's subnet
 * parser (a Daemon document's subnet is checked as duetd will read it).
 */
#ifndef DUET_MANIFEST_H
#define DUET_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "diag.h"
#include "common/strmap.h"

#define DUET_API_VERSION "duet/v1"

/* Defaults written in docs/manifest.md; change both together. */
#define WL_DEFAULT_CPUS 1.0
#define WL_DEFAULT_MEMORY (UINT64_C(512) << 20)
#define WL_DEFAULT_PIDS 1024
#define WL_DEFAULT_DISK (UINT64_C(10) << 30)
#define WL_DEFAULT_HEALTH_INTERVAL_MS 10000
#define WL_DEFAULT_HEALTH_TIMEOUT_MS 2000
#define WL_DEFAULT_HEALTH_RETRIES 3
#define WL_MIN_MEMORY (UINT64_C(4) << 20)   /* below this no workload can even start */
#define WL_MIN_DISK (UINT64_C(16) << 20)     /* a filesystem and a little room */
#define WL_MAX_CPUS 1024.0
#define WL_MAX_PIDS 4194304
#define WL_MAX_USER_DATA (1u << 20)          /* spec.cloudInit.userData */
#define WL_MAX_NETWORK_CONFIG (64u << 10)    /* spec.cloudInit.networkConfig */

struct src_pos {
    const char *file;
    unsigned line, col;
};

struct kv {
    const char *key, *value;
};

enum wl_role { WL_ROLE_APP, WL_ROLE_INFRASTRUCTURE };
enum wl_placement { WL_PLACEMENT_AUTO, WL_PLACEMENT_VM, WL_PLACEMENT_CONTAINER };
enum wl_isolation { WL_ISOLATION_STANDARD, WL_ISOLATION_STRONG };
enum wl_restart { WL_RESTART_ALWAYS, WL_RESTART_ON_FAILURE, WL_RESTART_NEVER };
enum wl_health_kind { WL_HEALTH_NONE, WL_HEALTH_EXEC, WL_HEALTH_TCP };
enum wl_protocol { WL_PROTO_TCP, WL_PROTO_UDP };
enum wl_network { WL_NETWORK_FLEET, WL_NETWORK_NONE };

struct wl_port {
    uint16_t host, port;
    enum wl_protocol protocol;
    struct src_pos pos;
};

struct wl_volume {
    /* A host directory (source, absolute, normalised), or a named volume
     * duet keeps (name; docs/storage.md), whose source the daemon fills
     * in with the volume's directory when it runs the workload (managed:
     * a path duet made, which may lie in its state directory). */
    const char *source;
    const char *name;          /* NULL: a host directory */
    uint64_t size;             /* a named volume's bound, bytes; 0: none */
    bool managed;
    const char *target;        /* absolute, normalised, never "/" nor containing ".." */
    bool read_only;
};

struct wl_dep {
    const char *name;
    struct src_pos pos;
};

#define WL_MAX_SECRET (1u << 20)     /* one secret's value, bytes */
#define WL_MAX_SECRETS 64            /* secrets of one workload, env and files together */
#define WL_SECRETS_DIR "/run/secrets"

/* A secret the workload is given (docs/secrets.md).  The spec says where
 * the value comes from and how it is given; the value itself never enters
 * the spec's JSON (specjson.c writes `version` in its place), so it is not
 * in the store, the API's answers or any message of duet's.  duetd seals
 * a value when it takes the spec and fills it in again only in the spec
 * an instance runs from (orchestrator/secret.h). */
struct wl_secret {
    /* A stored secret's name (duet secret set NAME), and for a secret
     * given as a file the file's name under /run/secrets.  NULL for an
     * env variable whose value is a file's ({secretFile: PATH}). */
    const char *name;
    const char *file;          /* absolute; NULL: a stored secret */
    const char *env;           /* given as this variable; NULL: as the file /run/secrets/NAME */
    /* The bytes: read from file when a manifest is loaded, or filled in
     * by duetd for a run (where an env value loses one trailing newline);
     * NULL in a spec loaded from the store. */
    const char *value;
    size_t len;
    /* duetd's keyed digest of the value (64 hex digits): a changed value
     * is a changed spec.  NULL until duetd sealed it. */
    const char *version;
    struct src_pos pos;
};

/* A secret's name: 1 to 63 letters, digits, '.', '_' and '-', starting
 * with a letter or digit (it becomes a file name, in /run/secrets and in
 * duetd's state directory). */
/* A sealed value's version (duetd's state, docs/secrets.md): 64
 * lower-case hex digits, an HMAC-SHA256.  It names a file too. */
#define WL_SECRET_VERSION_HEX 64
static inline bool wl_secret_version_valid(const char *s, size_t n)
{
    if (n != WL_SECRET_VERSION_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static inline bool wl_secret_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
            return false;
    }
    return true;
}

/* A secret's value from the file at path (spec.secrets[].file, env
 * {secretFile}, duet secret set --from-file): a regular file that not
 * every user may read, at most WL_MAX_SECRET bytes.  malloc'd (the caller
 * wipes and frees it), or NULL with err naming the file and the fix. */
struct duet_err;
char *wl_secret_file_read(const char *path, size_t *len, struct duet_err *err);

enum wl_attach {
    WL_ATTACH_NONE,
    WL_ATTACH_PIPES,           /* its stdin, stdout and stderr the caller's */
    WL_ATTACH_TTY,             /* a terminal of its own, the caller's to type into and see */
};

struct workload_spec {
    const char *name;
    struct src_pos pos;        /* the document */
    struct src_pos name_pos;
    struct kv *labels;
    size_t n_labels;

    enum wl_role role;
    enum wl_placement placement;
    enum wl_isolation isolation;

    struct {
        /* Absolute paths; relative ones in the file are resolved against the
         * directory of the manifest that names them. NULL when absent. */
        const char *rootfs, *disk, *kernel, *initrd;
        const char *cmdline;
        /* An OCI image: its reference in canonical form (images/ref.h),
         * a layout's or archive's path made absolute.  The daemon brings
         * it into its image store and runs the workload from an effective
         * spec with rootfs set to the image's root and the image config's
         * defaults filled in (orchestrator/image.c). */
        const char *oci;
        /* A VM's disk outlives its instances (docs/storage.md): with
         * keep_disk it is kept even when the image changes, which then
         * reaches only a VM made with a fresh disk (apply --recreate). */
        bool keep_disk;
    } image;

    /* cloud-init's NoCloud seed for a VM booting its own disk image
     * (backends/vm/cloudinit.h): the user data and network config exactly
     * as given, a userDataFile's content read when the manifest is
     * loaded.  Each NULL when absent; without spec.cloudInit a disk image
     * still gets a seed with its name and the fleet address. */
    struct {
        const char *user_data;
        const char *network_config;
    } cloud_init;

    const char **command;      /* NULL-terminated; NULL when absent */
    size_t n_command;
    const char **args;         /* NULL-terminated; NULL when absent: with an OCI image it replaces Cmd */
    size_t n_args;
    struct kv *env;            /* the plain variables; secret ones are in secrets */
    size_t n_env;
    struct wl_secret *secrets; /* env values {secret:}/{secretFile:}, then spec.secrets, each in file order */
    size_t n_secrets;
    const char *working_dir;   /* NULL: "/" */
    const char *user;          /* NULL: root */
    /* The signal a graceful stop sends the command; 0: SIGTERM.  Not a
     * manifest field: an OCI image's StopSignal, set in the spec the
     * workload runs from (orchestrator/image.c). */
    int stop_signal;
    /* Its command attached to its caller (duet run -i/-t).  Not a manifest
     * field: the daemon sets it in an attached run's own spec, which is
     * never stored; a backend that cannot attach it is ruled out
     * (scheduler), and a VM's init learns it from its initramfs. */
    enum wl_attach attach;

    struct {
        double cpus;
        uint64_t memory;       /* bytes */
        uint64_t pids;
        uint64_t disk;         /* bytes the writable layer may hold */
        bool cpus_set, memory_set, disk_set;
    } resources;

    struct {
        bool own_kernel;
        const char **devices;
        size_t n_devices;
        uint64_t start_within_ms;   /* 0: no budget */
    } needs;

    enum wl_restart restart;
    enum wl_network network;   /* fleet (default): the bridge, an address, names; none: loopback only */
    struct wl_dep *depends_on;
    size_t n_depends_on;

    struct {
        enum wl_health_kind kind;
        const char **exec;     /* NULL-terminated */
        size_t n_exec;
        uint16_t tcp;
        uint64_t interval_ms, timeout_ms;
        unsigned retries;
        /* startPeriod: failures within it of an instance's start do not
         * count (Docker's start_period); the first success ends it.  Not
         * set: the backend's default (a VM's from the boots measured on
         * this host, none for a container: orchestrator/health.c). */
        uint64_t start_period_ms;
        bool start_period_set;
        /* startInterval: the checks' interval until the first success;
         * 0: the interval, at most 1s. */
        uint64_t start_interval_ms;
        /* onUnhealthy: restart: an unhealthy instance is stopped as a
         * failed run, and the restart policy decides what follows. */
        bool restart_unhealthy;
    } health;

    /* spec.compare: the probe duet compare puts on it when the command
     * line gives none (docs/compare.md). */
    struct {
        enum wl_compare_probe { WL_COMPARE_NONE, WL_COMPARE_HTTP, WL_COMPARE_TCP, WL_COMPARE_EXEC } probe;
        const char *http_path;
        uint16_t port;             /* http: 0 for the default; tcp: the port */
        unsigned concurrency;      /* http: 0 for the default */
        uint64_t duration_ms;      /* http: 0 for the default */
        const char **exec;         /* NULL-terminated */
        size_t n_exec;
    } compare;

    struct wl_port *ports;
    size_t n_ports;
    struct wl_volume *volumes;
    size_t n_volumes;
    /* Volumes or a rootfs that are the host's own tree (hostpath.h) are
     * allowed: said by the user, shown as a warning. */
    bool host_access;
};

struct host_spec {
    const char *name;
    struct src_pos pos;
    double cpus;
    uint64_t memory;
    double reserve_cpus;
    uint64_t reserve_memory;
    bool reserve_memory_set;
    double overcommit_cpu, overcommit_memory;
    bool vm_available, vm_kvm, vm_guest_kernel;
    bool vm_virtiofs;              /* volumes reach its VMs (virtiofsd, a guest kernel with virtiofs) */
    bool container_available;
};

/* duetd's own settings: the `kind: Daemon` document of its config file
 * (/etc/duet/duetd.yaml, docs/install.md).  What the file leaves out is
 * NULL or 0, and duetd's command line or its defaults decide it.  Paths are
 * absolute (relative ones are the file's directory's). */
struct daemon_spec {
    struct src_pos pos;
    const char *socket, *socket_group, *state_dir, *libvirt_uri, *guest_kernel;
    const char *bridge, *subnet;
    uint64_t restart_backoff_ms, stop_grace_ms, request_timeout_ms;
    uint64_t log_max, max_image_size;
    const char **insecure_registries;
    size_t n_insecure_registries;
    const char *registry_ca, *registry_auth;
    bool debug;
    const char *metrics_listen;    /* ADDRESS:PORT; NULL: no metrics listener */
    const char *web;               /* the dashboard's ADDRESS:PORT; NULL: none */
    const char *web_cert, *web_key;   /* PEM files: the dashboard speaks TLS */
    bool web_write;                /* the dashboard may stop, restart and delete */
};

/* What one parse of (a slice of) a file produced.  Large files are parsed
 * in slices on several threads; each slice owns its part, and the set
 * merges the parts in file order. */
struct manifest_part {
    struct arena arena;            /* the specs and their strings */
    struct workload_spec **workloads;
    size_t n_workloads, cap_workloads;
    struct host_spec **hosts;
    size_t n_hosts, cap_hosts;
    struct daemon_spec **daemons;
    size_t n_daemons, cap_daemons;
    struct diag_list diags;
    size_t n_documents;
};

struct manifest_set {
    struct arena arena;            /* file names */
    struct manifest_part **parts;  /* owned; their arenas hold the specs */
    size_t n_parts, cap_parts;
    struct workload_spec **workloads;   /* in file and document order */
    size_t n_workloads, cap_workloads;
    struct host_spec *host;        /* NULL when no Host document was given */
    /* A set loaded by manifest_daemon_config_load holds one Daemon document
     * and nothing else; any other set refuses Daemon documents. */
    bool daemon_config;
    /* Set while specjson_load reads duetd's own texts: a secret there
     * carries its sealed version and its file is not read again (it may
     * be gone; the sealed value is what runs).  Never set for a user's
     * file, so a manifest cannot claim a version. */
    bool loading_stored;
    struct daemon_spec *daemon;
    struct diag_list diags;
    struct strmap by_name;         /* name -> first workload_spec with it */
    size_t n_files;
    size_t n_documents;
    /* A file whose documents are context, not the user's to fix (duetd's
     * apply loads the rest of the fleet as "(applied earlier)"): a
     * conflict with one of them is reported at the user's side, naming
     * the context's workload.  NULL: every file is the user's. */
    const char *context_file;
};

struct manifest_set *manifest_set_new(void);
void manifest_set_free(struct manifest_set *set);

/* Loads a file, or every *.yaml / *.yml directly inside a directory (sorted,
 * hidden files skipped).  Problems become diagnostics; returns false when the
 * path itself could not be read. */
bool manifest_set_load_path(struct manifest_set *set, const char *path);

/* The files manifest_set_load_path reads for path: path itself, or the
 * *.yaml / *.yml files directly inside a directory (hidden ones and
 * subdirectories skipped), in name order.  Returns how many (*files and
 * each entry malloc'd, for the caller to free), or -1 with errno when a
 * directory cannot be listed. */
int manifest_path_files(const char *path, char ***files);

/* duetd's config file: where duetd and `duet plan` look for it when not
 * told (DUET_CONFIG in the environment, else this). */
#define DUET_DEFAULT_CONFIG "/etc/duet/duetd.yaml"

/* Loads duetd's config file into a new set (daemon_config, the Daemon
 * document in set->daemon when it is valid).  Every problem, the file's
 * absence included, is a diagnostic; the caller prints them and refuses to
 * go on when the set is not ok. */
struct manifest_set *manifest_daemon_config_load(const char *path);

/* The config file a command uses: `given` (--config), else DUET_CONFIG,
 * else DUET_DEFAULT_CONFIG when it exists; NULL when there is none, which
 * is no error (every setting has a default), or when the name given is
 * "none".  *explicit: the user named it, so its absence is an error. */
const char *manifest_daemon_config_path(const char *given, bool *explicit_path);
/* The libvirt URI given before the config file is read: the option, else
 * $DUET_LIBVIRT_URI, else NULL (then the file's, then the default).  duetd
 * and duet plan read it alike. */
const char *manifest_libvirt_uri_given(const char *option);

/* Loads YAML text held in memory, as if read from a file named `name`. */
void manifest_set_load_buffer(struct manifest_set *set, const char *name, const char *buf, size_t len);

/* Cross-document checks; call once after everything is loaded. */
void manifest_set_validate(struct manifest_set *set);

static inline bool manifest_set_ok(const struct manifest_set *set)
{
    return diag_count(&set->diags) == 0;
}

struct workload_spec *manifest_set_find(const struct manifest_set *set, const char *name);

/* The value of env variable key in w's spec.env, or NULL. */
const char *wl_env_get(const struct workload_spec *w, const char *key);

/* The bound on w's writable disk. Specs built in code (tests, `duet run`)
 * may leave resources.disk zero; both backends must then use one default. */
static inline uint64_t wl_disk_bytes(const struct workload_spec *w)
{
    return w->resources.disk ? w->resources.disk : WL_DEFAULT_DISK;
}

/* What a VM's kept disk is made from, in words that change exactly when
 * the disk would have to be made anew (docs/storage.md): the image (an
 * OCI reference as written, a rootfs directory, a disk image) and the
 * disk's size.  false when w boots no disk of its own (kernel + initrd). */
bool wl_disk_source(const struct workload_spec *w, char *buf, size_t len);
/* Would w, booted as a VM, need a disk other than the one kept for it,
 * made from `kept` (its wl_disk_source; NULL: none kept)?  Not when
 * image.keepDisk says to keep it.  now: what w makes its disk from ("" when
 * it boots none). */
bool wl_disk_resets(const struct workload_spec *w, const char *kept, char *now, size_t len);

/* Do a and b (two workloads) use one named volume in ways that cannot
 * stand together: with two sizes (one that gives none takes the volume as
 * it is), or both writing it (docs/storage.md: a volume is written by one
 * workload at a time)?  The reason, naming both, in buf, or NULL. */
/* The volume of w named `name` (a named volume, not a host path), or NULL. */
const struct wl_volume *wl_volume_named(const struct workload_spec *w, const char *name);
const char *wl_volumes_conflict(const struct workload_spec *a, const struct workload_spec *b, char *buf, size_t len);

const char *wl_role_name(enum wl_role r);
const char *wl_placement_name(enum wl_placement p);
const char *wl_isolation_name(enum wl_isolation i);
const char *wl_restart_name(enum wl_restart r);
const char *wl_network_name(enum wl_network n);

/* The workload name rule (RFC 1123 DNS label), exposed for the CLI and tests. */
bool manifest_name_valid(const char *s, size_t len);

#endif
