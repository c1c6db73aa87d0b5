/*
 * agent.h - the host's end of a rootfs VM's agent (agent_proto.h): runs
 * commands in the guest for duet exec and exec health checks.
 *
 * One per VM instance, owned by the VM driver, living on the daemon's
 * loop.  It connects to the socket QEMU listens on when it first has a
 * command to send, keeps the connection for the next ones, and connects
 * again after the guest or the daemon dropped it.  Commands run at once,
 * each with its own id.
 *
 * What comes from the guest is untrusted (a workload is root in there and
 * can open the port itself): frames of another type or size break the
 * connection, output for no running command is counted and more than
 * VM_AGENT_STRAY_MAX of it breaks the connection, and a command that
 * never answers ends at its timeout whatever the guest does.  The
 * commands waiting when a connection breaks end with status -1 and the
 * reason on their stderr.
 */
#ifndef DUET_VM_AGENT_H
#define DUET_VM_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "common/err.h"

struct uv_loop_s;
struct vm_agent;

#define VM_AGENT_STRAY_MAX (UINT64_C(1) << 20)
/* How long a killed command's guest has to say it ended. */
#define VM_AGENT_KILL_GRACE_MS 2000

typedef void (*vm_agent_exited_cb)(void *opaque, int status);

/* socket: QEMU's end (at most 107 bytes); name: the workload's, for
 * messages. */
struct vm_agent *vm_agent_new(struct uv_loop_s *loop, const char *socket, const char *name);
/* Ends every command still waiting with status -1 and "why" on its
 * stderr, and lets go of the connection.  Safe from within a callback of
 * the agent's own. */
void vm_agent_free(struct vm_agent *a, const char *why);

/* Runs argv in the guest; its output goes to out_fd and err_fd (written
 * by the daemon as it comes: the caller keeps them open until exited),
 * its status to exited, always on the loop and never from within this
 * call.  timeout_ms > 0: it is killed then, and reported 137 once the
 * guest says it ended or VM_AGENT_KILL_GRACE_MS later. */
int vm_agent_exec(struct vm_agent *a, const char *const *argv, int out_fd, int err_fd, uint64_t timeout_ms,
                  vm_agent_exited_cb exited, void *opaque, struct duet_err *err);

/* The same with the command's input and, with tty, a terminal (duet exec
 * -i, -t; driver.exec_io): input read from in_fd is sent as the guest
 * takes it, resizes (struct driver_winsize records) from ctl_fd, whose
 * end means the client went and kills the command; output is written to
 * out_fd and err_fd as they take it, the guest held back meanwhile.  The
 * fds are the caller's, open until exited; they are made non-blocking. */
struct driver_exec_io;
int vm_agent_exec_io(struct vm_agent *a, const char *const *argv, const struct driver_exec_io *io,
                     uint64_t timeout_ms, vm_agent_exited_cb exited, void *opaque, struct duet_err *err);

/* duet run -i/-t: attaches io to the workload's own command, which
 * duet-vminit started attached (agent_proto.h 'A'), as exec_io attaches a
 * command: input, resizes, output within the windows.  The end of ctl_fd
 * lets go of it (it runs on); its status comes to exited after all its
 * output, and is acknowledged so the guest may power off. */
int vm_agent_attach(struct vm_agent *a, const struct driver_exec_io *io, vm_agent_exited_cb exited, void *opaque,
                    struct duet_err *err);

/* The reader of frames from the guest, exposed for its tests. */
struct vm_agent_rx {
    uint8_t hdr[VM_AGENT_HDR];
    size_t hdr_got;
    uint8_t type;
    uint16_t id;
    uint32_t len, got;
    uint8_t data[VM_AGENT_DATA_MAX];
};

/* Called once per whole frame; returns false to stop reading. */
typedef bool (*vm_agent_frame_cb)(void *opaque, uint8_t type, uint16_t id, const uint8_t *data, uint32_t len);

void vm_agent_rx_init(struct vm_agent_rx *rx);
/* 0 when all of buf was read (or cb stopped it), -1 with *why when it is
 * not the protocol: the connection cannot be trusted after that. */
int vm_agent_rx_feed(struct vm_agent_rx *rx, const uint8_t *buf, size_t n, vm_agent_frame_cb cb, void *opaque,
                     const char **why);

#endif
