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
#include <stddef.h>

#include "common/err.h"

struct seccomp_prog {
    struct sock_filter *insns;   /* owned */
    unsigned short len;
};

int container_seccomp_build(struct seccomp_prog *out, struct duet_err *err);
void container_seccomp_free(struct seccomp_prog *p);
/* Installs the program; async-signal-safe (two syscalls).  Sets
 * no_new_privs, which a filter requires without CAP_SYS_ADMIN. */
int container_seccomp_apply(const struct seccomp_prog *p);

/* The syscalls allowed with any arguments, for docs and tests; every other
 * one fails with EPERM (personality, clone, unshare and socket are
 * allowed with some arguments: see syscall_filter.c). */
extern const char *const container_seccomp_allowed[];

#endif
