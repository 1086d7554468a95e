/* tests/cb_stack.h - the real daemons for end-to-end tests: cb-projector,
 * cb-engine and N cb-adapter processes against a broker URL, each with its
 * log in a temporary directory (printed when a test fails). Children are
 * driven from the test's libevent loop (common/cb_proc.h). */
#ifndef CB_STACK_H
#define CB_STACK_H
#include <jansson.h>
#include <stdbool.h>

struct event_base;
typedef struct cb_stack cb_stack;

#define CB_STACK_MAX_ADAPTERS 4
#define CB_STACK_BEAT_MS      200 /* two engines' beats: one not heard for 600 ms is gone */

/* Start the projector, the engine and `adapters` workers of the local
 * backend. extra_adapter_args (may be NULL) go to every adapter, e.g.
 * "--lease-ms 2000". Binaries are taken from $CB_TEST_BIN. With
 * cb_test_partitions() > 1 every daemon is given a copy of `config` that
 * says so ("broker": {"partitions"}); with $CB_TEST_ENGINES = 2 as well,
 * two engines with names ("engine", "engine1") share the partitions with
 * failover (docs/scale.md, "Ownership"). NULL on failure. */
cb_stack *cb_stack_start(struct event_base *base, const char *url, const char *config, int adapters,
                         const char *extra_adapter_args);
/* An empty group of daemons (e.g. a test's peers), driven from `base`, with
 * its directory; add processes with cb_stack_add. NULL on failure. */
cb_stack *cb_stack_new(struct event_base *base);
/* Start one more daemon: `cmd` is a shell command line, its output goes to
 * the daemon's log. false if it cannot start or the group is full. */
bool cb_stack_add(cb_stack *s, const char *name, const char *cmd);
/* The group's temporary directory. */
const char *cb_stack_dir(cb_stack *s);
/* Daemon names: "projector", "engine", "adapter0", "adapter1", ... */
/* Send `sig` (SIGSTOP, SIGCONT) to a running daemon without waiting. */
bool cb_stack_signal(cb_stack *s, const char *name, int sig);
/* Send `sig` and wait (bounded) for the process to end. true if it ended. */
bool cb_stack_kill(cb_stack *s, const char *name, int sig);
/* The exit status of a daemon that ended (as from waitpid), -1 if running. */
int cb_stack_exit_status(cb_stack *s, const char *name);
/* Start it again (after cb_stack_kill). */
bool cb_stack_restart(cb_stack *s, const char *name);
/* The path of a daemon's log. */
const char *cb_stack_log(cb_stack *s, const char *name);
/* Print the end of every log to stderr (for a failing test). */
void cb_stack_dump(cb_stack *s);
/* SIGTERM everything, wait, remove the directory. Accepts NULL. */
void cb_stack_stop(cb_stack *s);

#endif /* CB_STACK_H */
