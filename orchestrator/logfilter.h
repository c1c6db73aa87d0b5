/*
 * logfilter.h - duetd's standard error, with libvirt's own log lines kept
 * out of it.
 *
 * libvirt writes its log to standard error: errors it raises and duet
 * expects and answers in its own words (a domain looked up before it
 * exists, no /dev/mem for dmidecode, no access manager in the embedded
 * driver, a taint warning for every VM).  They cannot be sent elsewhere:
 * with a file output, the processes libvirt forks to start QEMU lose their
 * start-up handshake and every VM start fails.  So standard error becomes a
 * pipe, and a thread copies every line to where standard error went
 * (duetd.log, the journal, the terminal) but libvirt's, unless asked to keep
 * them (--debug).  Everything else passes byte for byte: duet's own lines,
 * sanitizer reports, whatever a library prints.
 */
#ifndef DUET_LOGFILTER_H
#define DUET_LOGFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct log_filter;

/* Puts the filter between fd 2 and where it goes now.  keep_libvirt: pass
 * libvirt's lines too.  NULL after setting err: stderr is left as it was. */
struct log_filter *log_filter_start(bool keep_libvirt, struct duet_err *err);
/* Puts fd 2 back, copies what is left in the pipe, ends the thread. */
void log_filter_stop(struct log_filter *f);

/* Is this line (without its newline) one of libvirt's log lines,
 * "YYYY-MM-DD HH:MM:SS.mmm+ZZZZ: TID: LEVEL : ..."? */
bool log_line_is_libvirt(const char *line, size_t len);

#endif
