/* common/cb_loop.h - the only way the project makes a libevent loop.
 *
 * Every loop of the project is woken by other threads: the NATS client's
 * threads and the helper threads post to it (cb_mailbox), and libnats adds
 * its socket's write event from its own threads. libevent makes a loop that
 * can be woken so, and locks it, only if its threading was set up before the
 * loop was made; a loop made earlier misses wake-ups (it sleeps until some
 * unrelated event) and its structures race. cb_loop_new() sets the threading
 * up first, once per process; `make lint` refuses event_base_new() anywhere
 * else. Thread-safe. */
#ifndef CB_LOOP_H
#define CB_LOOP_H

#include "cb_status.h"

struct event_base;

/* libevent's pthreads locking, once per process (any thread, any number of
 * times). CB_ENOMEM when libevent could not set it up. */
CB_NODISCARD cb_status cb_loop_threads_init(void);
/* A new loop other threads can wake, NULL when out of memory. The caller
 * frees it with event_base_free(). */
struct event_base *cb_loop_new(void);

#endif /* CB_LOOP_H */
