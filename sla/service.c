/* sla/service.c - cb-sla's loop: the log into the evaluator, breaches out
 * as events and notifications (see service.h). */
#include "service.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_event.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_map.h"
#include "cb_time.h"
#include "emit.h"
#include "evaluator.h"

typedef struct pending {
    uint64_t key; /* hash of the id */
    char id[512], tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1], agreement[CB_NAME_MAX + 1];
    json_t *data;
    struct pending *next;
} pending;

struct cb_sla_service {
    struct event_base *base;
    cb_broker *b;
    cb_reader *reader;
    cb_sla_evaluator *ev;
    cb_map seen;   /* hashes of the cb.sla.violated ids in the log */
    pending *wait; /* breaches found before the end, not yet seen in the log */
    cb_sla_stats stats;
};

static void pending_free(pending *p)
{
    json_decref(p->data);
    free(p);
}

static void appended(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    cb_sla_service *sv = ctx;
    (void)seq;
    (void)duplicate;
    if (s != CB_OK) {
        sv->stats.errors++;
        CB_LOG_ERR("sla", "cannot append a breach: %s", cb_strerror(s));
    }
}

/* Append the breach and notify it. */
static void report(cb_sla_service *sv, const pending *p)
{
    char subject[2 * CB_NAME_MAX + 16], *text;
    json_t *note;
    cb_status s = cb_emit(sv->b, CB_EV_SLA_VIOLATED, p->tenant, p->job, p->id, "cbcore/sla",
                          json_incref(p->data), appended, sv);
    if (s != CB_OK) {
        sv->stats.errors++;
        CB_LOG_ERR("sla", "cannot append %s: %s", p->id, cb_strerror(s));
        return;
    }
    sv->stats.appended++;
    CB_LOG_WRN("sla", "breach %s", p->id);
    snprintf(subject, sizeof subject, "cb.sla.%s.%s", p->tenant, p->agreement);
    {
        char now[40];
        note =
            json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", p->id, "tenant", p->tenant, "job", p->job,
                      "time", cb_time_format(cb_time_now_ns(), now, sizeof now), "breach", p->data);
    }
    if (note && (text = cb_json_dumps(note, JSON_COMPACT))) {
        if (cb_broker_notify(sv->b, subject, p->id, text, strlen(text), NULL, NULL) != CB_OK)
            sv->stats.errors++;
        free(text);
    }
    json_decref(note);
}

static void on_breach(void *ctx, const cb_sla_agreement *a, const cb_sla_breach *b, const char *job)
{
    cb_sla_service *sv = ctx;
    pending *p;
    int n;
    if (!job || !*job)
        return; /* periodic breaches belong to no job: not reported yet (docs/sla.md) */
    if (!(p = cb_calloc(1, sizeof *p)))
        return;
    n = snprintf(p->id, sizeof p->id, "%s/%s/%s/%llu/violated", a->tenant, a->id, b->guarantee,
                 (unsigned long long)b->ordinal);
    p->key = cb_hash64(p->id, (size_t)n);
    snprintf(p->tenant, sizeof p->tenant, "%s", a->tenant);
    snprintf(p->job, sizeof p->job, "%s", job);
    snprintf(p->agreement, sizeof p->agreement, "%s", a->id);
    p->data = json_pack("{s:s, s:s, s:s, s:I, s:s}", "agreement", a->id, "guarantee", b->guarantee,
                        "constraint", b->constraint, "ordinal", (json_int_t)b->ordinal, "level",
                        b->level == CB_SLA_LEVEL_TASK ? "task" : "job");
    if (!p->data) {
        pending_free(p);
        return;
    }
    if (!isnan(b->observed))
        json_object_set_new(p->data, "observed", json_real(b->observed));
    if (b->level == CB_SLA_LEVEL_TASK)
        json_object_set_new(p->data, "task", json_integer(b->task));
    sv->stats.breaches++;
    if (sv->stats.caught_up) {
        if (!cb_map_get(&sv->seen, p->key))
            report(sv, p);
        pending_free(p);
        return;
    }
    p->next = sv->wait;
    sv->wait = p;
}

/* A cb.sla.violated in the log: reported already. */
static void mark_seen(cb_sla_service *sv, const char *id)
{
    uint64_t key = cb_hash64(id, strlen(id));
    if (cb_map_put(&sv->seen, key, (void *)1) != CB_OK)
        sv->stats.errors++;
    for (pending **pp = &sv->wait; *pp;)
        if ((*pp)->key == key) {
            pending *p = *pp;
            *pp = p->next;
            pending_free(p);
        } else {
            pp = &(*pp)->next;
        }
}

static void on_read(const cb_broker_msg *m, cb_status s, void *ctx)
{
    cb_sla_service *sv = ctx;
    cb_event ev;
    char why[256];
    if (!m) {
        if (s != CB_OK) {
            CB_LOG_ERR("sla", "reading the log failed: %s; stopping", cb_strerror(s));
            sv->stats.failed = 1;
            event_base_loopbreak(sv->base);
            return;
        }
        if (!sv->stats.caught_up) { /* report what a crash may have lost, oldest first */
            pending *rev = NULL;
            sv->stats.caught_up = 1;
            while (sv->wait) {
                pending *p = sv->wait;
                sv->wait = p->next;
                p->next = rev;
                rev = p;
            }
            while (rev) {
                pending *p = rev;
                rev = p->next;
                report(sv, p);
                pending_free(p);
            }
            CB_LOG_INF("sla", "caught up with the log: %llu events, %llu breaches",
                       (unsigned long long)sv->stats.events,
                       (unsigned long long)sv->stats.breaches);
        }
        return;
    }
    sv->stats.events++;
    if (cb_event_decode(m->data, m->len, &ev, why, sizeof why) != CB_OK)
        return; /* the projector reports invalid events */
    if (ev.type == CB_EV_SLA_VIOLATED)
        mark_seen(sv, ev.id);
    else if (cb_sla_evaluator_apply(sv->ev, &ev) != CB_OK)
        sv->stats.errors++;
    cb_event_cleanup(&ev);
}

cb_status cb_sla_service_start(struct event_base *base, cb_broker *b, cb_sla_service **out)
{
    cb_sla_service *sv = cb_calloc(1, sizeof *sv);
    cb_read_opts o;
    cb_status s;
    *out = NULL;
    if (!sv)
        return CB_ENOMEM;
    sv->base = base;
    sv->b = b;
    cb_map_init(&sv->seen);
    if (!(sv->ev = cb_sla_evaluator_new(on_breach, sv))) {
        cb_sla_service_stop(sv);
        return CB_ENOMEM;
    }
    cb_read_opts_init(&o);
    o.from = CB_READ_FIRST;
    if ((s = cb_broker_read(b, &o, on_read, sv, &sv->reader)) != CB_OK) {
        cb_sla_service_stop(sv);
        return s;
    }
    *out = sv;
    return CB_OK;
}

void cb_sla_service_stop(cb_sla_service *sv)
{
    if (!sv)
        return;
    cb_reader_close(sv->reader);
    cb_sla_evaluator_free(sv->ev);
    cb_map_cleanup(&sv->seen);
    while (sv->wait) {
        pending *p = sv->wait;
        sv->wait = p->next;
        pending_free(p);
    }
    free(sv);
}

const cb_sla_stats *cb_sla_service_stats(const cb_sla_service *sv)
{
    return &sv->stats;
}
