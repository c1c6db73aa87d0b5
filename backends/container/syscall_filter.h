/*
 * syscall_filter.h - the seccomp filter every container runs under.
 *
 * Built with libseccomp in the parent and exported as raw BPF, because the
 * child installs it between clone() and exec, where a process forked from a
 * multi-threaded daemon must not call malloc (libseccomp allocates).  What
 * is allowed and why is in docs/security.md.
 */
#ifndef DUET_SYSCALL_FILTER_H
#define DUET_SYSCALL_FILTER_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"

struct seccomp_prog {
    struct sock_filter *insns;   /* owned */
    unsigned short len;
};

int container_seccomp_build(struct seccomp_prog *out, struct duet_err *err);
void container_seccomp_free(struct seccomp_prog *p);
/* Installs the program; async-signal-safe (two syscalls).  Sets
 * no_new_privs, which a filter requires without CAP_SYS_ADMIN.  Inline:
 * the spawner (spawner_main.c, in duet-init) calls it without libseccomp. */
static inline int container_seccomp_apply(const struct seccomp_prog *p)
{
    struct sock_fprog prog = {.len = p->len, .filter = p->insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* The syscalls allowed with any arguments, for docs and tests; every other
 * one fails with EPERM (personality, clone, unshare and socket are
 * allowed with some arguments: see syscall_filter.c). */
extern const char *const container_seccomp_allowed[];

#endif
