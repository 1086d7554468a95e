/* tests/helper_worker.c - a worker that takes N commands from a work queue,
 * acks none, and dies by SIGKILL: the "consumer died" case of it_broker.
 * usage: helper_worker URL SUBJECT N LEASE_MS */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "cb_loop.h"

typedef struct state {
    long want, got;
} state;

static void work_cb(cb_work *w, const cb_broker_msg *m, void *ctx)
{
    state *st = ctx;
    (void)w; /* never acked */
    (void)m;
    if (++st->got == st->want)
        raise(SIGKILL);
}

int main(int argc, char **argv)
{
    struct event_base *base;
    cb_broker_opts o;
    cb_consume_opts co;
    cb_broker *b = NULL;
    cb_consumer *c = NULL;
    state st = {0};
    struct timeval limit = {30, 0};

    if (argc != 5) {
        fprintf(stderr, "usage: helper_worker URL SUBJECT N LEASE_MS\n");
        return 2;
    }
    st.want = atol(argv[3]);
    if (!(base = cb_loop_new()))
        return 1;
    cb_broker_opts_init(&o);
    o.url = argv[1];
    o.name = "helper_worker";
    if (cb_broker_open(base, &o, &b) != CB_OK)
        return 1;
    cb_consume_opts_init(&co);
    co.max_inflight = (int)st.want;
    co.lease_ms = atol(argv[4]);
    if (cb_broker_consume(b, argv[2], &co, work_cb, &st, &c) != CB_OK)
        return 1;
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    fprintf(stderr, "helper_worker: only %ld of %ld commands arrived\n", st.got, st.want);
    return 1;
}
