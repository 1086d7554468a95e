/* common/cb_daemon.c - a daemon's loop until SIGINT/SIGTERM (cb_daemon.h). */
#include "cb_daemon.h"

#include <event2/event.h>
#include <signal.h>

#include "cb_log.h"

typedef struct run {
    struct event_base *base;
    const char *mod;
    cb_daemon_stop_fn *on_stop;
    void *arg;
} run;

static void signalled(evutil_socket_t sig, short what, void *ctx)
{
    run *r = ctx;
    (void)what;
    if (r->on_stop) {
        r->on_stop((int)sig, r->arg);
        return;
    }
    CB_LOG_INF(r->mod, "signal %d: stopping", (int)sig);
    event_base_loopbreak(r->base);
}

int cb_daemon_run(struct event_base *base, const char *mod, cb_daemon_stop_fn *on_stop, void *arg)
{
    run r = {base, mod, on_stop, arg};
    struct event *sigint = evsignal_new(base, SIGINT, signalled, &r);
    struct event *sigterm = evsignal_new(base, SIGTERM, signalled, &r);
    int rc = -1;
    if (sigint && sigterm && event_add(sigint, NULL) == 0 && event_add(sigterm, NULL) == 0) {
        event_base_dispatch(base);
        rc = 0;
    }
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    return rc;
}
