/* verbs.h - the duet verbs that need duetd (verbs.c). */
#ifndef DUET_CLI_DAEMON_H
#define DUET_CLI_DAEMON_H

/* Runs verb with argv[0] == verb; -1 when verb is not one of them. */
int cli_verbs_run(const char *verb, int argc, char **argv);

#endif
