/* sysinfo.h - facts about the machine this process runs on. */
#ifndef DUET_SYSINFO_H
#define DUET_SYSINFO_H

#include <stddef.h>

/* The CPUs this process may run on (its affinity mask), at least 1. */
size_t duet_usable_cpus(void);

#endif
