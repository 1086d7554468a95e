/* common/cb_daemon.h - what every cbcore daemon's main() does around its
 * loop: run it until SIGINT or SIGTERM.
 *
 * Threading: the loop's thread (call it where the loop is run). */
#ifndef CB_DAEMON_H
#define CB_DAEMON_H

struct event_base;

/* Called on the loop for each SIGINT or SIGTERM (NULL: the default, which
 * logs "signal N: stopping" as `mod` and breaks the loop). */
typedef void cb_daemon_stop_fn(int sig, void *arg);

/* Dispatch base until the loop ends (a stop breaks it). 0, or -1 when the
 * signal events cannot be made (nothing ran). `mod` is borrowed. */
int cb_daemon_run(struct event_base *base, const char *mod, cb_daemon_stop_fn *on_stop, void *arg);

#endif /* CB_DAEMON_H */
