/*
 * listenaddr.h - ADDRESS:PORT as a listening option takes it
 * (duetd --metrics-listen, the config file's metricsListen).
 */
#ifndef DUET_LISTENADDR_H
#define DUET_LISTENADDR_H

#include <sys/socket.h>

#include "common/err.h"

/* 127.0.0.1:9465 or [::1]:9465: an IP address, never a name a resolver
 * would have to be asked for, and a port from 1 to 65535.  EINVAL with a
 * message that shows the form. */
int listen_addr_parse(const char *text, struct sockaddr_storage *out, struct duet_err *err);

#endif
