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
#include "cb_partition.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_map.h"
#include "cb_time.h"
#include "control.h"
#include "emit.h"
#include "evaluator.h"
#include "prom.h"
#include "webhook.h"

#define TICK_MS   250  /* periodic guarantees, expirations, unanswered changes */
#define REREAD_MS 1000 /* a failed read of the log is made again after this */

typedef struct pending {
    uint64_t key; /* hash of the id */
    char id[512], tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1], agreement[CB_NAME_MAX + 1];
    int kind;           /* CB_SLA_BREACHED or CB_SLA_RECOVERED */
    unsigned partition; /* whose log it goes to: the job's (0 for the tenant's _sla) */
    json_t *data;       /* the event's */
    json_t *hooks;      /* the agreement's notify.webhooks, or NULL */
    struct pending *next;
} pending;

/* The reading of one partition's log (docs/scale.md). */
typedef struct part {
    struct cb_sla_service *sv;
    unsigned k;
    cb_reader *reader;
    uint64_t last_seq;    /* the last event read: a failed read goes on after it */
    int64_t reread_at_ns; /* reader NULL after a failed read: read again then */
    int caught_up;        /* has reached its log's end once */
} part;

struct cb_sla_service {
    struct event_base *base;
    cb_broker *b;
    part parts[CB_PARTITIONS_MAX];
    unsigned nparts;       /* the deployment's partitions, each one's log read */
    unsigned nparts_ended; /* of those, caught up once */
    unsigned applying;     /* the partition of the event being applied */
    cb_sla_evaluator *ev;
    cb_sla_control *ctl;
    cb_sla_webhooks *hooks;
    cb_sla_prom *prom;     /* NULL: no Prometheus server to ask */
    struct query *queries; /* asked, not answered */
    cb_map next_query;     /* hash of tenant/agreement/guarantee -> when to ask next (ns) */
    cb_map query_fails;    /* the same key -> failures in a row (logged at the 1st, every 100th) */
    struct event *timer;
    cb_map seen;        /* hashes of the cb.sla.violated/recovered ids in the log */
    cb_map terminating; /* hashes of the cb.sla.terminated ids appended */
    pending *wait;      /* breaches found before the end, not yet seen in the log */
    cb_sla_stats stats;
    unsigned nops; /* appends not confirmed yet */
    int stopped;   /* freed when the last one is */
};

static void pending_free(pending *p)
{
    json_decref(p->data);
    json_decref(p->hooks);
    free(p);
}

static void service_free(cb_sla_service *sv)
{
    cb_map_cleanup(&sv->next_query);
    cb_map_cleanup(&sv->query_fails);
    cb_map_cleanup(&sv->seen);
    cb_map_cleanup(&sv->terminating);
    free(sv);
}

static void appended(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    cb_sla_service *sv = ctx;
    (void)seq;
    (void)duplicate;
    sv->nops--;
    if (s != CB_OK) {
        sv->stats.errors++;
        CB_LOG_ERR("sla", "cannot append an SLA event: %s", cb_strerror(s));
    }
    if (sv->stopped && !sv->nops)
        service_free(sv);
}

static cb_status append(cb_sla_service *sv, unsigned partition, cb_event_type t, const char *tenant,
                        const char *job, const char *id, json_t *data)
{
    cb_status s;
    sv->nops++;
    if ((s = cb_emit(sv->b, partition, t, tenant, job, id, "cbcore/sla", data, appended, sv)) !=
        CB_OK) {
        sv->nops--;
        sv->stats.errors++;
        CB_LOG_ERR("sla", "cannot append %s: %s", id, cb_strerror(s));
    }
    return s;
}

/* Tell cb.sla.<tenant>.<agreement>: {"id" (when id), "kind", "tenant",
 * "agreement", "job", "time", key: value (borrowed)}, with id as the
 * message id (de-duplication). Returns the text sent (free()), or NULL. */
static char *notify(cb_sla_service *sv, const char *id, const char *kind, const char *tenant,
                    const char *agreement, const char *job, const char *key, json_t *value)
{
    char subject[2 * CB_NAME_MAX + 16], now[40], *text = NULL;
    json_t *note = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "kind", kind, "tenant", tenant,
                             "agreement", agreement, "job", job, "time",
                             cb_time_format(cb_time_now_ns(), now, sizeof now), key, value);
    if (note && id)
        json_object_set_new(note, "id", json_string(id));
    if (note && (text = cb_json_dumps(note, JSON_COMPACT))) {
        snprintf(subject, sizeof subject, "cb.sla.%s.%s", tenant, agreement);
        if (cb_broker_notify(sv->b, subject, id, text, strlen(text), NULL, NULL) != CB_OK)
            sv->stats.errors++;
    }
    json_decref(note);
    return text;
}

/* Append the breach (or recovery), notify it and post it to the webhooks. */
static void report(cb_sla_service *sv, const pending *p)
{
    static const cb_event_type types[] = {[CB_SLA_BREACHED] = CB_EV_SLA_VIOLATED,
                                          [CB_SLA_RECOVERED] = CB_EV_SLA_RECOVERED,
                                          [CB_SLA_AT_RISK] = CB_EV_SLA_AT_RISK};
    static const char *const kinds[] = {[CB_SLA_BREACHED] = "violated",
                                        [CB_SLA_RECOVERED] = "recovered",
                                        [CB_SLA_AT_RISK] = "at_risk"};
    const char *kind = kinds[p->kind];
    json_t *hook;
    char *text;
    size_t i;
    if (append(sv, p->partition, types[p->kind], p->tenant, p->job, p->id, json_incref(p->data)) !=
        CB_OK)
        return;
    sv->stats.appended++;
    if (p->kind == CB_SLA_BREACHED)
        CB_LOG_WRN("sla", "breach %s", p->id);
    else
        CB_LOG_INF("sla", "%s %s", kind, p->id);
    if (!(text = notify(sv, p->id, kind, p->tenant, p->agreement, p->job, "breach", p->data)))
        return;
    json_array_foreach(p->hooks, i, hook) cb_sla_webhooks_post(
        sv->hooks, json_string_value(json_object_get(hook, "url")),
        json_string_value(json_object_get(hook, "secret")), p->id, kind, text, strlen(text));
    free(text);
}

/* A job's sla.template that cannot be filled in: said on the job's
 * agreement's topic and in the log of cb-sla (not in the event log; a
 * replay says it again only when cb-sla is live). */
static void refused(cb_sla_service *sv, const cb_sla_agreement *a, const char *job, const char *why)
{
    json_t *error;
    if (!sv->stats.caught_up)
        return; /* said when it happened */
    CB_LOG_WRN("sla", "job %s/%s is not evaluated: %s", a->tenant, job, why);
    error = json_string(why);
    free(notify(sv, NULL, "refused", a->tenant, a->id, job, "error", error));
    json_decref(error);
}

static void on_breach(void *ctx, const cb_sla_agreement *a, const cb_sla_breach *b, int kind,
                      const char *job)
{
    cb_sla_service *sv = ctx;
    pending *p;
    int n;
    if (kind == CB_SLA_REFUSED) {
        refused(sv, a, job ? job : "", b->constraint);
        return;
    }
    if (!(p = cb_calloc(1, sizeof *p)))
        return;
    p->kind = kind;
    /* a job's breach is found applying one of the job's events: in its log */
    p->partition = job ? sv->applying : 0;
    if (kind == CB_SLA_AT_RISK) /* once per job and guarantee */
        n = snprintf(p->id, sizeof p->id, "%s/%s/%s/%s/at_risk", a->tenant, a->id, b->guarantee,
                     job ? job : "");
    else
        n = snprintf(p->id, sizeof p->id, "%s/%s/%s/%llu/%s", a->tenant, a->id, b->guarantee,
                     (unsigned long long)b->ordinal,
                     kind == CB_SLA_RECOVERED ? "recovered" : "violated");
    p->key = cb_hash64(p->id, (size_t)n);
    snprintf(p->tenant, sizeof p->tenant, "%s", a->tenant);
    snprintf(p->job, sizeof p->job, "%s", job ? job : CB_SLA_SUBJECT); /* periodic: the tenant's */
    snprintf(p->agreement, sizeof p->agreement, "%s", a->id);
    p->hooks = json_incref(json_object_get(json_object_get(a->spec, "notify"), "webhooks"));
    if (kind == CB_SLA_AT_RISK)
        p->data =
            json_pack("{s:s, s:s, s:s, s:f, s:f}", "agreement", a->id, "guarantee", b->guarantee,
                      "constraint", b->constraint, "predicted", b->observed, "bound", b->bound);
    else
        p->data =
            json_pack("{s:s, s:s, s:s, s:I, s:s}", "agreement", a->id, "guarantee", b->guarantee,
                      "constraint", b->constraint, "ordinal", (json_int_t)b->ordinal, "level",
                      b->level == CB_SLA_LEVEL_TASK    ? "task"
                      : b->level == CB_SLA_LEVEL_QUERY ? "query"
                                                       : "job");
    if (!p->data) {
        pending_free(p);
        return;
    }
    if (kind != CB_SLA_AT_RISK && !isnan(b->observed))
        json_object_set_new(p->data, "observed", json_real(b->observed));
    if (kind != CB_SLA_AT_RISK && !isnan(b->bound))
        json_object_set_new(p->data, "threshold", json_real(b->bound));
    if (kind != CB_SLA_AT_RISK && b->level == CB_SLA_LEVEL_TASK)
        json_object_set_new(p->data, "task", json_integer(b->task));
    if (kind == CB_SLA_BREACHED)
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

/* A cb.sla.violated or recovered in the log: reported already. */
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

/* Whether the event m may matter to the evaluator (most events of a busy log
 * are of jobs no agreement watches: passed over without decoding). */
static bool needed(const cb_sla_service *sv, const cb_broker_msg *m)
{
    char tenant[CB_NAME_MAX + 1];
    cb_log_subject ls;
    if (!cb_partition_parse(m->subject, &ls) || ls.tenant_len >= sizeof tenant)
        return true;
    memcpy(tenant, ls.tenant, ls.tenant_len);
    tenant[ls.tenant_len] = '\0';
    return cb_sla_evaluator_needs(sv->ev, cb_event_peek_type(m->data, m->len), tenant, ls.job);
}

/* Every partition's log read to its end: report what a crash may have lost
 * (oldest first) and start answering. */
static void caught_up(cb_sla_service *sv)
{
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
    CB_LOG_INF("sla", "caught up with the log%s: %llu events, %llu breaches",
               sv->nparts > 1 ? " of every partition" : "", (unsigned long long)sv->stats.events,
               (unsigned long long)sv->stats.breaches);
    cb_sla_control_ready(sv->ctl);
}

static void on_read(const cb_broker_msg *m, cb_status s, void *ctx)
{
    part *pt = ctx;
    cb_sla_service *sv = pt->sv;
    cb_event ev;
    char why[256];
    if (!m) {
        if (s != CB_OK) { /* a broker node lost, say: read on from where it stood */
            CB_LOG_WRN("sla",
                       "reading the log of partition %u failed: %s; reading on after position "
                       "%llu in %d ms",
                       pt->k, cb_strerror(s), (unsigned long long)pt->last_seq, REREAD_MS);
            cb_reader_close(pt->reader);
            pt->reader = NULL;
            pt->reread_at_ns = cb_time_mono_ns() + (int64_t)REREAD_MS * 1000000;
            return;
        }
        if (!pt->caught_up) {
            pt->caught_up = 1;
            if (++sv->nparts_ended == sv->nparts)
                caught_up(sv);
        }
        return;
    }
    if (m->seq)
        pt->last_seq = m->seq;
    sv->stats.events++;
    if (!needed(sv, m)) {
        sv->stats.passed++;
        return;
    }
    if (cb_event_decode(m->data, m->len, &ev, why, sizeof why) != CB_OK)
        return; /* the projector reports invalid events */
    if (ev.type == CB_EV_SLA_VIOLATED || ev.type == CB_EV_SLA_RECOVERED ||
        ev.type == CB_EV_SLA_AT_RISK)
        mark_seen(sv, ev.id);
    sv->applying = pt->k;
    if (cb_sla_evaluator_apply(sv->ev, &ev) != CB_OK)
        sv->stats.errors++;
    cb_sla_control_on_event(sv->ctl, &ev);
    cb_event_cleanup(&ev);
}

/* ---- time: periodic guarantees, expirations ----------------------------- */

static void expire(const cb_sla_agreement *a, void *ctx)
{
    cb_sla_service *sv = ctx;
    char id[3 * CB_NAME_MAX + 40];
    uint64_t key;
    int n;
    if (!a->expiration_ns || a->terminated || a->is_template || cb_time_now_ns() < a->expiration_ns)
        return;
    n = snprintf(id, sizeof id, "%s/%s/%llu/terminated", a->tenant, a->id,
                 (unsigned long long)a->version + 1);
    key = cb_hash64(id, (size_t)n);
    if (cb_map_get(&sv->terminating, key) || cb_map_put(&sv->terminating, key, (void *)1) != CB_OK)
        return; /* appended already: waiting to read it back */
    CB_LOG_INF("sla", "%s: expired", id);
    (void)append(sv, 0, CB_EV_SLA_TERMINATED, a->tenant, CB_SLA_SUBJECT, id,
                 json_pack("{s:s, s:I, s:s}", "agreement", a->id, "version",
                           (json_int_t)a->version + 1, "reason", "expired"));
}

/* ---- Prometheus queries (sla/prom.h) -------------------------------------- */

typedef struct query {
    cb_sla_service *sv;
    uint64_t key;
    char tenant[CB_NAME_MAX + 1], agreement[CB_NAME_MAX + 1], guarantee[CB_NAME_MAX + 1];
    struct query *prev, *next;
} query;

static void query_free(cb_sla_service *sv, query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        sv->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    free(q);
}

static void answered(void *ctx, int ok, double value, const char *why)
{
    query *q = ctx;
    cb_sla_service *sv = q->sv;
    uintptr_t fails = (uintptr_t)cb_map_get(&sv->query_fails, q->key);
    if (ok > 0)
        cb_sla_evaluator_query(sv->ev, q->tenant, q->agreement, q->guarantee, value,
                               cb_time_now_ns());
    if (ok < 0) {
        if (fails % 100 == 0)
            CB_LOG_WRN("sla", "query of %s/%s/%s: %s (failures in a row: %lu)", q->tenant,
                       q->agreement, q->guarantee, why, (unsigned long)fails + 1);
        if (cb_map_put(&sv->query_fails, q->key, (void *)(fails + 1)) != CB_OK)
            sv->stats.errors++;
    } else if (fails) {
        CB_LOG_INF("sla", "query of %s/%s/%s answers again", q->tenant, q->agreement, q->guarantee);
        (void)cb_map_take(&sv->query_fails, q->key);
    }
    query_free(sv, q);
}

static int asking(const cb_sla_service *sv, uint64_t key)
{
    for (const query *q = sv->queries; q; q = q->next)
        if (q->key == key)
            return 1;
    return 0;
}

/* Ask the queries that are due (one in flight per guarantee). */
static void ask_queries(const cb_sla_agreement *a, void *ctx)
{
    cb_sla_service *sv = ctx;
    int64_t now = cb_time_now_ns();
    if (a->stopped || a->terminated || a->is_template)
        return;
    for (size_t i = 0; i < a->n; i++) {
        const cb_sla_guarantee *g = &a->g[i];
        char id[3 * CB_NAME_MAX + 3];
        int n;
        uint64_t key;
        query *q;
        if (!g->query)
            continue;
        n = snprintf(id, sizeof id, "%s/%s/%s", a->tenant, a->id, g->name);
        key = cb_hash64(id, (size_t)n);
        if (asking(sv, key) || now < (int64_t)(intptr_t)cb_map_get(&sv->next_query, key))
            continue;
        if (cb_map_put(&sv->next_query, key,
                       (void *)(intptr_t)(now + g->query_period_ms * 1000000)) != CB_OK ||
            !(q = cb_calloc(1, sizeof *q)))
            continue;
        q->sv = sv;
        q->key = key;
        snprintf(q->tenant, sizeof q->tenant, "%s", a->tenant);
        snprintf(q->agreement, sizeof q->agreement, "%s", a->id);
        snprintf(q->guarantee, sizeof q->guarantee, "%s", g->name);
        if (cb_sla_prom_query(sv->prom, g->query, answered, q) != CB_OK) {
            free(q);
            continue;
        }
        q->next = sv->queries;
        if (sv->queries)
            sv->queries->prev = q;
        sv->queries = q;
    }
}

/* Read a partition's log from its first event, or on after the last one
 * read. */
static cb_status read_log(part *pt)
{
    cb_read_opts o;
    cb_read_opts_init(&o);
    o.from = pt->last_seq ? CB_READ_SEQ : CB_READ_FIRST;
    o.seq = pt->last_seq + 1;
    o.partition = pt->k;
    return cb_broker_read(pt->sv->b, &o, on_read, pt, &pt->reader);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    cb_sla_service *sv = arg;
    int64_t now = cb_time_now_ns();
    (void)fd;
    (void)what;
    for (unsigned k = 0; k < sv->nparts; k++) {
        part *pt = &sv->parts[k];
        if (!pt->reader && cb_time_mono_ns() >= pt->reread_at_ns && read_log(pt) != CB_OK)
            pt->reread_at_ns = cb_time_mono_ns() + (int64_t)REREAD_MS * 1000000;
    }
    cb_sla_control_tick(sv->ctl, now);
    if (!sv->stats.caught_up)
        return; /* the log's own times first */
    cb_sla_evaluator_tick(sv->ev, now);
    cb_sla_evaluator_each(sv->ev, NULL, expire, sv);
    if (sv->prom)
        cb_sla_evaluator_each(sv->ev, NULL, ask_queries, sv);
}

cb_status cb_sla_service_start(struct event_base *base, cb_broker *b, const cb_schema *schema,
                               const json_t *secrets, const char *prometheus, unsigned partitions,
                               cb_sla_service **out)
{
    cb_sla_service *sv = cb_calloc(1, sizeof *sv);
    struct timeval tick = {0, TICK_MS * 1000};
    char err[256];
    cb_status s;
    *out = NULL;
    if (!sv)
        return CB_ENOMEM;
    sv->base = base;
    sv->b = b;
    sv->nparts = partitions < 1                   ? 1
                 : partitions > CB_PARTITIONS_MAX ? CB_PARTITIONS_MAX
                                                  : partitions;
    for (unsigned k = 0; k < sv->nparts; k++) {
        sv->parts[k].sv = sv;
        sv->parts[k].k = k;
    }
    cb_map_init(&sv->seen);
    cb_map_init(&sv->terminating);
    cb_map_init(&sv->next_query);
    cb_map_init(&sv->query_fails);
    if (!(sv->ev = cb_sla_evaluator_new(on_breach, sv)) ||
        !(sv->timer = event_new(base, -1, EV_PERSIST, on_tick, sv))) {
        cb_sla_service_stop(sv);
        return CB_ENOMEM;
    }
    if ((s = cb_sla_webhooks_new(base, secrets, &sv->hooks, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("sla", "cannot make the webhook client: %s", err);
        cb_sla_service_stop(sv);
        return s;
    }
    if (prometheus &&
        (s = cb_sla_prom_new(base, prometheus, &sv->prom, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("sla", "Prometheus %s: %s", prometheus, err);
        cb_sla_service_stop(sv);
        return s;
    }
    if ((s = cb_sla_control_start(b, sv->ev, schema, sv->prom != NULL, &sv->ctl)) != CB_OK) {
        cb_sla_service_stop(sv);
        return s;
    }
    for (unsigned k = 0; k < sv->nparts; k++)
        if ((s = read_log(&sv->parts[k])) != CB_OK) {
            cb_sla_service_stop(sv);
            return s;
        }
    event_add(sv->timer, &tick);
    *out = sv;
    return CB_OK;
}

void cb_sla_service_stop(cb_sla_service *sv)
{
    if (!sv)
        return;
    for (unsigned k = 0; k < sv->nparts; k++)
        cb_reader_close(sv->parts[k].reader);
    cb_sla_control_stop(sv->ctl);
    if (sv->timer)
        event_free(sv->timer);
    cb_sla_webhooks_free(sv->hooks);
    cb_sla_prom_free(sv->prom); /* its calls end without their callback */
    while (sv->queries)
        query_free(sv, sv->queries);
    cb_sla_evaluator_free(sv->ev);
    while (sv->wait) {
        pending *p = sv->wait;
        sv->wait = p->next;
        pending_free(p);
    }
    sv->stopped = 1;
    if (!sv->nops)
        service_free(sv);
}

const cb_sla_stats *cb_sla_service_stats(const cb_sla_service *sv)
{
    return &sv->stats;
}

const cb_sla_evaluator *cb_sla_service_evaluator(const cb_sla_service *sv)
{
    return sv->ev;
}

const cb_sla_webhook_stats *cb_sla_service_webhook_stats(const cb_sla_service *sv)
{
    return cb_sla_webhooks_stats(sv->hooks);
}
