/*
 * agent_proto.h - the wire between duetd and the agent in a rootfs VM.
 *
 * duet-vminit, the guest's /init, also serves `duet exec` and exec health
 * checks: QEMU gives the guest a virtio-serial port named VM_AGENT_PORT
 * whose host end is a unix socket in the instance's directory.  Both ends
 * speak frames:
 *
 *   byte 0     type (below)
 *   byte 1     0
 *   bytes 2-3  the command's id, big-endian: several run at once
 *   bytes 4-7  payload length, big-endian
 *
 * host to guest:  'x' run: argv as NUL-terminated strings, at most
 *                     VM_AGENT_REQ_MAX bytes (what execve takes and more);
 *                 'X' run with input (duet exec -i, -t): a 6-byte head
 *                     (flags: VM_AGENT_IO_TTY; a 0 byte; rows, cols, 2
 *                     bytes each, big-endian), then argv as for 'x';
 *                 'i' input for its stdin (or terminal): 1 to
 *                     VM_AGENT_DATA_MAX bytes, never more in all than the
 *                     guest has acknowledged plus VM_AGENT_WINDOW;
 *                 'c' its input has ended (empty);
 *                 'w' its terminal's new size: rows, cols (4 bytes);
 *                 'g' the host took this much more of its output (4 bytes);
 *                 'k' kill the command and all it started (empty);
 *                 'A' attach to the workload's own command (duet run
 *                     -i/-t, started by duet-vminit with "attach" in its
 *                     spec) as this id: the 6-byte head of 'X' alone; it
 *                     is then an 'X' command in all but its start;
 *                 'd' let go of it (the client went: it runs on, its
 *                     output to the console alone), or after its status:
 *                     the host has it (empty).
 * guest to host:  'o', 'e' output on its stdout, stderr: 1 to
 *                     VM_AGENT_DATA_MAX bytes; for an 'X' command never
 *                     more in all than the host granted plus
 *                     VM_AGENT_WINDOW (with a terminal, all is 'o');
 *                 'a' the command took this much more of its input
 *                     (4 bytes);
 *                 's' it ended: a 4-byte big-endian status, as a shell
 *                     gives it (128+N for signal N, -1: it could not run),
 *                     after all of its output.
 *
 * The windows bound what either end holds for one command (a command that
 * does not read its input, a client that does not read the output): the
 * other end then stops, and so, in the end, does the command.
 *
 * The guest side is the workload's: anything in the guest running as root
 * can open the port and write what it likes.  The host therefore accepts
 * only the frame types above at their sizes, output within the window it
 * granted and acknowledgements of no more than it sent, and treats
 * anything else as a broken channel (agent.c).
 *
 * Header-only and allocation-free: duet-vminit links nothing of duet's.
 */
#ifndef DUET_VM_AGENT_PROTO_H
#define DUET_VM_AGENT_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#define VM_AGENT_PORT "duet.agent"
#define VM_AGENT_SOCKET "agent.sock"          /* in the instance's directory */
#define VM_AGENT_HDR 8
#define VM_AGENT_DATA_MAX 65536u
/* Linux takes up to a quarter of the stack limit in arguments (2 MiB by
 * default); a request may carry that much and a little. */
#define VM_AGENT_REQ_MAX (UINT32_C(2) << 20)
/* What may be in flight, each way, for one 'X' command. */
#define VM_AGENT_WINDOW (UINT32_C(256) << 10)
#define VM_AGENT_IO_HEAD 6
#define VM_AGENT_IO_TTY 0x1u

enum {
    VM_AGENT_RUN = 'x',
    VM_AGENT_RUN_IO = 'X',
    VM_AGENT_INPUT = 'i',
    VM_AGENT_INPUT_END = 'c',
    VM_AGENT_WINSIZE = 'w',
    VM_AGENT_GRANT = 'g',
    VM_AGENT_KILL = 'k',
    VM_AGENT_ATTACH = 'A',
    VM_AGENT_DETACH = 'd',
    VM_AGENT_OUT = 'o',
    VM_AGENT_ERR = 'e',
    VM_AGENT_ACK = 'a',
    VM_AGENT_STATUS = 's',
};

static inline void vm_agent_hdr_put(uint8_t *h, uint8_t type, uint16_t id, uint32_t len)
{
    h[0] = type;
    h[1] = 0;
    h[2] = (uint8_t)(id >> 8);
    h[3] = (uint8_t)id;
    h[4] = (uint8_t)(len >> 24);
    h[5] = (uint8_t)(len >> 16);
    h[6] = (uint8_t)(len >> 8);
    h[7] = (uint8_t)len;
}

static inline void vm_agent_hdr_get(const uint8_t *h, uint8_t *type, uint16_t *id, uint32_t *len)
{
    *type = h[0];
    *id = (uint16_t)((h[2] << 8) | h[3]);
    *len = ((uint32_t)h[4] << 24) | ((uint32_t)h[5] << 16) | ((uint32_t)h[6] << 8) | h[7];
}

static inline void vm_agent_u32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t vm_agent_u32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
