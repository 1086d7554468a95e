/* tools/cmd_sla.c - `cb sla`: the SLA service from the command line
 * (docs/sla.md). Today: `cb sla watch TENANT`, the breaches of a tenant's
 * agreements as they are notified on cb.sla.<tenant>.<agreement>. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_event.h"
#include "cli.h"

typedef struct sla_watch {
    struct event_base *base;
    long want, got;
    int timed_out;
} sla_watch;

static void note_cb(const cb_broker_msg *m, void *ctx)
{
    sla_watch *w = ctx;
    printf("%.*s\n", (int)m->len, (const char *)m->data);
    fflush(stdout);
    if (w->want > 0 && ++w->got >= w->want)
        event_base_loopbreak(w->base);
}

static void timeout_cb(evutil_socket_t fd, short what, void *ctx)
{
    sla_watch *w = ctx;
    (void)fd;
    (void)what;
    w->timed_out = 1;
    event_base_loopbreak(w->base);
}

static int usage(void)
{
    fprintf(stderr, "usage: cb sla watch TENANT [--broker URL] [--count N] [--timeout-ms MS]\n"
                    "Prints each breach notified for the tenant's agreements (one JSON line\n"
                    "each: id, tenant, job, breach) as it comes. --count N: exit 0 after N;\n"
                    "--timeout-ms: exit 1 if they did not come in time.\n");
    return 2;
}

int cb_cmd_sla(int argc, char **argv)
{
    const char *url = NULL, *tenant = NULL;
    char subject[CB_NAME_MAX + 16];
    long timeout_ms = 0;
    sla_watch w = {0};
    cb_broker *b = NULL;
    cb_sub *sub = NULL;
    struct event *timer = NULL;
    cb_status s;

    if (argc < 2 || strcmp(argv[1], "watch"))
        return usage();
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            w.want = atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else if (!tenant && argv[i][0] != '-')
            tenant = argv[i];
        else
            return usage();
    }
    if (!tenant || !cb_name_valid(tenant))
        return usage();
    if (!(url = cb_cli_broker_url(url))) {
        fprintf(stderr, "cb sla: no broker: give --broker URL or set CB_BROKER_URL\n");
        return 2;
    }
    if (cb_cli_connect(url, "cb sla", &w.base, &b) != 0)
        return 1;
    snprintf(subject, sizeof subject, "cb.sla.%s.>", tenant);
    if ((s = cb_broker_subscribe(b, subject, 0, note_cb, &w, &sub)) != CB_OK) {
        fprintf(stderr, "cb sla: cannot subscribe to %s: %s\n", subject, cb_strerror(s));
        cb_cli_disconnect(w.base, b);
        return 1;
    }
    fprintf(stderr, "cb sla: watching %s\n", subject); /* subscribed: breaches from now on */
    if (timeout_ms > 0 && (timer = evtimer_new(w.base, timeout_cb, &w))) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(timer, &tv);
    }
    event_base_dispatch(w.base);
    if (timer)
        event_free(timer);
    cb_sub_close(sub);
    cb_cli_disconnect(w.base, b);
    return w.timed_out ? 1 : 0;
}
