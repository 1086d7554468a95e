/* broker/report.c - a daemon's figures on cb.stats (see report.h). */
#include "report.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_alloc.h"
#include "cb_event.h"
#include "cb_json.h"
#include "cb_time.h"

struct cb_report {
    cb_broker *b;
    struct event *timer;
    char daemon[CB_NAME_MAX + 1], id[CB_NAME_MAX + 1], subject[2 * CB_NAME_MAX + 16];
    cb_report_fill_fn *fill;
    void *arg;
    int64_t period_ms;
    uint64_t missed;
};

static void tick(evutil_socket_t fd, short what, void *arg)
{
    cb_report *r = arg;
    struct timeval tv = {r->period_ms / 1000, (r->period_ms % 1000) * 1000};
    json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:o}", "daemon", r->daemon, "id", r->id, "time",
                          cb_json_time(cb_time_now_ns()), "period_ms", (json_int_t)r->period_ms,
                          "broker", cb_broker_health(r->b));
    char *text;
    (void)fd;
    (void)what;
    if (o) {
        r->fill(o, r->arg);
        if ((text = cb_json_dumps(o, JSON_COMPACT))) {
            if (cb_broker_notify(r->b, r->subject, NULL, text, strlen(text), NULL, NULL) != CB_OK)
                r->missed++; /* the next report carries the same counters */
            free(text);
        }
        json_decref(o);
    }
    evtimer_add(r->timer, &tv);
}

cb_status cb_report_start(struct event_base *base, cb_broker *b, const char *daemon, const char *id,
                          cb_report_fill_fn *fill, void *arg, cb_report **out)
{
    cb_report *r;
    const char *env = getenv("CB_STATS_MS");
    long ms = env && *env ? strtol(env, NULL, 10) : 5000;
    char host[64] = "", name[64], own[CB_NAME_MAX + 1];
    *out = NULL;
    if (!id) { /* HOST-PID, in name characters */
        (void)gethostname(host, sizeof host - 1);
        snprintf(own, sizeof own, "%s-%d", cb_name_from(host, name, sizeof name), (int)getpid());
        id = own;
    }
    if (!cb_name_valid(daemon) || !cb_name_valid(id) || !fill)
        return CB_EINVAL;
    if (!(r = cb_calloc(1, sizeof *r)))
        return CB_ENOMEM;
    r->b = b;
    r->fill = fill;
    r->arg = arg;
    r->period_ms = ms >= 100 && ms <= 3600000 ? ms : 5000;
    snprintf(r->daemon, sizeof r->daemon, "%s", daemon);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->subject, sizeof r->subject, "cb.stats.%s.%s", daemon, id);
    if (!(r->timer = evtimer_new(base, tick, r))) {
        cb_free(r);
        return CB_ENOMEM;
    }
    tick(-1, 0, r);
    *out = r;
    return CB_OK;
}

void cb_report_free(cb_report *r)
{
    if (!r)
        return;
    event_free(r->timer);
    cb_free(r);
}
