/*
 * qga.h - exec in a VM that boots its own disk image, through the QEMU
 * guest agent the image runs (qemu-guest-agent), by way of libvirt.
 *
 * Such a guest has no duet-vminit; when its image runs a QEMU guest agent,
 * libvirt holds the agent's virtio-serial port (org.qemu.guest_agent.0,
 * which duet gives every disk VM) and passes commands to it:
 * guest-exec starts the command with its output captured, and
 * guest-exec-status is asked until it has ended.  libvirt's calls block,
 * so each call runs on the thread pool, the waits between them on the
 * loop: a long command holds no pool thread.  It holds nothing of the
 * instance's (the domain is named by its UUID), so a stop or destroy never
 * waits for it.
 *
 * The guest is untrusted: every answer is checked for its shape (a pid, a
 * status in range, base64 output) and anything else ends the command with
 * -1 and the reason.  A command past its timeout is killed with the
 * agent's own kill (guest-exec of kill -KILL PID) and reported 137.
 */
#ifndef DUET_VM_QGA_H
#define DUET_VM_QGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvirt/libvirt.h>

#include "common/err.h"

struct uv_loop_s;
struct vm_qga_exec;

#define VM_QGA_PORT "org.qemu.guest_agent.0"
#define VM_QGA_SOCKET "qga.sock"             /* in the instance's directory */

/* Starts argv in the guest of the domain uuid on conn (which it
 * references meanwhile), linked into *list (the instance's) until it has
 * ended; exited is called on the loop, never from within this call. */
int vm_qga_exec(struct uv_loop_s *loop, virConnectPtr conn, const char *uuid, const char *name,
                const char *const *argv, int out_fd, int err_fd, uint64_t timeout_ms,
                void (*exited)(void *opaque, int status), void *opaque, struct vm_qga_exec **list,
                struct duet_err *err);

/* The instance goes: its commands are no longer waited for; each ends
 * with -1 and why on its stderr once its thread returns. */
void vm_qga_cancel_all(struct vm_qga_exec **list, const char *why);

/* What a guest-exec-status answer says, checked (exposed for tests):
 * 0 and *exited false while it runs; with *exited true the status (0-255,
 * 128+N for signal N) and the decoded output (malloc'd, the caller frees);
 * -1 with why for an answer of the wrong shape. */
int vm_qga_parse_status(const char *reply, bool *exited, int *status, char **out, size_t *out_len, char **errs,
                        size_t *err_len, const char **why);
/* The pid a guest-exec answer names, or -1 with why. */
long vm_qga_parse_pid(const char *reply, const char **why);

#endif
