/* sla/control.c - agreements managed by request (see control.h). */
#include "control.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_time.h"
#include "emit.h"

#define SERVE_PATTERN "cb.slactl.*"
#define READ_BACK_NS  (10 * 1000000000LL) /* a change not read back by then is answered */
#define DEFER_MAX     256                 /* requests held while catching up */

typedef struct waiter {
    struct cb_sla_control *c;
    char id[3 * CB_NAME_MAX + 40]; /* the event's */
    char tenant[CB_NAME_MAX + 1], agreement[CB_NAME_MAX + 1];
    cb_request *req; /* NULL once answered */
    int confirmed;   /* the append's callback came */
    int64_t since_ns;
    struct waiter *next;
} waiter;

typedef struct deferred {
    cb_request *req;
    char tenant[CB_NAME_MAX + 1];
    char *data;
    size_t len;
    struct deferred *next;
} deferred;

struct cb_sla_control {
    cb_broker *b;
    cb_sla_evaluator *ev;
    const cb_schema *schema;
    cb_sub *sub;
    waiter *waiters;
    deferred *head, **tail;
    size_t ndeferred;
    int ready, stopped;
    int has_prometheus;
    unsigned nops; /* appends not confirmed yet */
};

/* ---- answers ---------------------------------------------------------- */

static void respond(cb_request *req, json_t *o)
{
    char *text = o ? cb_json_dumps(o, JSON_COMPACT) : NULL;
    if (!text || cb_request_respond(req, text, strlen(text)) != CB_OK)
        CB_LOG_WRN("sla", "could not answer a request");
    if (!text)
        cb_request_drop(req);
    free(text);
    json_decref(o);
}

/* Why a request is refused: the answer's "code", which cb-api maps to an
 * HTTP status (docs/sla.md). */
typedef enum why {
    WHY_INVALID,     /* "invalid": the request is wrong */
    WHY_NOT_FOUND,   /* "not_found": no such agreement or template */
    WHY_CONFLICT,    /* "conflict": the agreement's state forbids it */
    WHY_UNAVAILABLE, /* "unavailable": try again later */
    WHY_INTERNAL     /* "internal": out of memory, the log refused */
} why;

static const char *const why_code[] = {"invalid", "not_found", "conflict", "unavailable",
                                       "internal"};

/* {"ok": false, "code": ..., "error": msg, "errors": errors (stolen, may be NULL)} */
static void refuse(cb_request *req, why w, json_t *errors, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(cb_request *req, why w, json_t *errors, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    json_t *o;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    CB_LOG_INF("sla", "request refused (%s): %s", why_code[w], msg);
    o = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", why_code[w], "error", msg);
    if (o && errors)
        json_object_set(o, "errors", errors);
    json_decref(errors);
    respond(req, o);
}

json_t *cb_sla_agreement_summary(const cb_sla_agreement *a, int detailed)
{
    json_t *gs = json_array(), *o;
    uint64_t breaches = 0;
    int compliant = 1;
    const char *state = a->terminated ? "terminated" : a->stopped ? "stopped" : "started";
    for (size_t i = 0; gs && i < a->n; i++) {
        const cb_sla_guarantee *g = &a->g[i];
        breaches += g->breaches;
        compliant &= !g->in_breach;
        json_array_append_new(gs, json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "name", g->name,
                                            "constraint", g->constraint, "evaluations",
                                            (json_int_t)g->evaluations, "violations",
                                            (json_int_t)g->violations, "breaches",
                                            (json_int_t)g->breaches, "compliant", !g->in_breach));
    }
    o = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:o, s:I, s:b}", "id", a->id, "name",
                  json_string_value(json_object_get(a->spec, "name")), "tenant", a->tenant, "type",
                  a->is_template ? "template" : "agreement", "state", state, "version",
                  (json_int_t)a->version, "guarantees", gs ? gs : json_array(), "breaches",
                  (json_int_t)breaches, "compliant", compliant);
    if (o && json_object_get(a->spec, "scope"))
        json_object_set(o, "scope", json_object_get(a->spec, "scope"));
    if (o && detailed) {
        json_object_set(o, "spec", a->spec);
        json_object_set_new(o, "recent", a->recent ? json_copy(a->recent) : json_array());
    }
    return o;
}

/* ---- appending a change ------------------------------------------------ */

static void control_free(cb_sla_control *c)
{
    while (c->waiters) {
        waiter *w = c->waiters;
        c->waiters = w->next;
        free(w);
    }
    free(c);
}

static void unlink_waiter(cb_sla_control *c, waiter *w)
{
    for (waiter **p = &c->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            free(w);
            return;
        }
}

static void appended(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    waiter *w = ctx;
    cb_sla_control *c = w->c;
    (void)seq;
    (void)duplicate; /* the event is in the log: reading it answers */
    c->nops--;
    w->confirmed = 1;
    if (s != CB_OK && w->req) {
        cb_request *req = w->req;
        w->req = NULL;
        if (c->stopped)
            cb_request_drop(req);
        else
            refuse(req, WHY_UNAVAILABLE, NULL, "cannot append %s: %s", w->id, cb_strerror(s));
    }
    if (!w->req)
        unlink_waiter(c, w);
    if (c->stopped && !c->nops)
        control_free(c);
}

/* Append the change (data stolen) and answer when it is read back. */
static void change(cb_sla_control *c, cb_request *req, cb_event_type type, const char *tenant,
                   const char *agreement, uint64_t version, json_t *data)
{
    waiter *w = cb_calloc(1, sizeof *w);
    cb_status s;
    if (!w) {
        json_decref(data);
        refuse(req, WHY_INTERNAL, NULL, "out of memory");
        return;
    }
    w->c = c;
    snprintf(w->id, sizeof w->id, "%s/%s/%llu/%s", tenant, agreement, (unsigned long long)version,
             cb_event_type_name(type) + strlen("cb.sla."));
    snprintf(w->tenant, sizeof w->tenant, "%s", tenant);
    snprintf(w->agreement, sizeof w->agreement, "%s", agreement);
    w->req = req;
    w->since_ns = cb_time_now_ns();
    if (json_object_set_new(data, "agreement", json_string(agreement)) != 0 ||
        json_object_set_new(data, "version", json_integer((json_int_t)version)) != 0) {
        json_decref(data);
        free(w);
        refuse(req, WHY_INTERNAL, NULL, "out of memory");
        return;
    }
    c->nops++;
    if ((s = cb_emit(c->b, 0, type, tenant, CB_SLA_SUBJECT, w->id, "cbcore/sla", data, appended,
                     w)) != CB_OK) {
        c->nops--;
        free(w);
        refuse(req, WHY_UNAVAILABLE, NULL, "cannot append the change: %s", cb_strerror(s));
        return;
    }
    CB_LOG_INF("sla", "%s", w->id);
    w->next = c->waiters;
    c->waiters = w;
}

void cb_sla_control_on_event(cb_sla_control *c, const cb_event *ev)
{
    if (ev->type < CB_EV_SLA_CREATED || ev->type > CB_EV_SLA_TERMINATED)
        return;
    for (waiter *w = c->waiters, *next; w; w = next) {
        next = w->next;
        if (!w->req || strcmp(w->id, ev->id))
            continue;
        {
            const cb_sla_agreement *a = cb_sla_evaluator_get(c->ev, w->tenant, w->agreement);
            json_t *o = json_pack("{s:b, s:s}", "ok", 1, "event", ev->id);
            if (o && a)
                json_object_set_new(o, "agreement", cb_sla_agreement_summary(a, 0));
            respond(w->req, o);
            w->req = NULL;
        }
        if (w->confirmed)
            unlink_waiter(c, w);
    }
}

void cb_sla_control_tick(cb_sla_control *c, int64_t now_ns)
{
    for (waiter *w = c->waiters, *next; w; w = next) {
        next = w->next;
        if (!w->req || now_ns - w->since_ns < READ_BACK_NS)
            continue;
        refuse(w->req, WHY_UNAVAILABLE, NULL,
               "%s was appended but not read back within 10 s; `cb sla show` tells whether it "
               "took effect",
               w->id);
        w->req = NULL;
        if (w->confirmed)
            unlink_waiter(c, w);
    }
}

/* ---- requests ---------------------------------------------------------- */

static const cb_sla_agreement *existing(cb_sla_control *c, cb_request *req, const char *tenant,
                                        const char *id)
{
    const cb_sla_agreement *a = id ? cb_sla_evaluator_get(c->ev, tenant, id) : NULL;
    if (!id)
        refuse(req, WHY_INVALID, NULL, "/id: the request names no agreement");
    else if (!a)
        refuse(req, WHY_NOT_FOUND, NULL, "/id: tenant \"%s\" has no agreement \"%s\"", tenant, id);
    return a;
}

static void put(cb_sla_control *c, cb_request *req, const char *tenant, const json_t *body)
{
    const char *tname = json_string_value(json_object_get(body, "template"));
    json_t *spec, *errors = NULL;
    const cb_sla_agreement *old;
    cb_sla_agreement a;
    char err[600];
    cb_status s;

    if (tname) {
        const cb_sla_agreement *t = cb_sla_evaluator_get(c->ev, tenant, tname);
        const char *id = json_string_value(json_object_get(body, "id"));
        if (!t || !t->is_template) {
            refuse(req, WHY_NOT_FOUND, NULL, "/template: tenant \"%s\" has no template \"%s\"",
                   tenant, tname);
            return;
        }
        if (!id || !cb_name_valid(id)) {
            refuse(req, WHY_INVALID, NULL,
                   "/id: an agreement from a template needs an id ([A-Za-z0-9_-])");
            return;
        }
        if (!(spec = cb_sla_template_fill(t->spec, id, json_object_get(body, "values"), err,
                                          sizeof err))) {
            refuse(req, WHY_INVALID, NULL, "%s", err);
            return;
        }
    } else if (json_is_object(json_object_get(body, "agreement"))) {
        spec = json_incref(json_object_get(body, "agreement"));
    } else {
        refuse(req, WHY_INVALID, NULL,
               "/agreement: a put needs an agreement (an object) or a template");
        return;
    }
    if ((s = cb_schema_validate(c->schema, "agreement.json", spec, 16, &errors)) != CB_OK) {
        json_decref(spec);
        if (s == CB_ESCHEMA)
            refuse(req, WHY_INVALID, errors, "the agreement does not match schemas/agreement.json");
        else
            refuse(req, WHY_INTERNAL, errors, "cannot check the agreement: %s", cb_strerror(s));
        return;
    }
    if ((s = cb_sla_agreement_init(&a, spec, tenant, err, sizeof err)) != CB_OK) {
        cb_sla_agreement_cleanup(&a);
        json_decref(spec);
        if (s == CB_ENOMEM)
            refuse(req, WHY_INTERNAL, NULL, "out of memory");
        else
            refuse(req, WHY_INVALID, NULL, "%s", err);
        return;
    }
    for (size_t i = 0; i < a.n && !c->has_prometheus; i++)
        if (a.g[i].query) {
            refuse(req, WHY_INVALID, NULL,
                   "/details/guarantees/%zu/query: cb-sla has no Prometheus server to ask (start "
                   "it with --prometheus URL or $CB_PROMETHEUS_URL)",
                   i);
            cb_sla_agreement_cleanup(&a);
            json_decref(spec);
            return;
        }
    old = cb_sla_evaluator_get(c->ev, tenant, a.id);
    change(c, req, old ? CB_EV_SLA_UPDATED : CB_EV_SLA_CREATED, tenant, a.id,
           old ? old->version + 1 : 1, json_pack("{s:o}", "spec", spec));
    cb_sla_agreement_cleanup(&a);
}

static void state_change(cb_sla_control *c, cb_request *req, const char *tenant, const char *op,
                         const json_t *body)
{
    const cb_sla_agreement *a =
        existing(c, req, tenant, json_string_value(json_object_get(body, "id")));
    cb_event_type t = !strcmp(op, "delete")  ? CB_EV_SLA_DELETED
                      : !strcmp(op, "start") ? CB_EV_SLA_STARTED
                                             : CB_EV_SLA_STOPPED;
    if (!a)
        return;
    if (t != CB_EV_SLA_DELETED && (a->is_template || a->terminated)) {
        refuse(req, WHY_CONFLICT, NULL, "/id: \"%s\" is %s: it is never evaluated", a->id,
               a->is_template ? "a template" : "terminated");
        return;
    }
    change(c, req, t, tenant, a->id, a->version + 1, json_object());
}

typedef struct listing {
    json_t *list;
} listing;

static void add_summary(const cb_sla_agreement *a, void *ctx)
{
    listing *l = ctx;
    json_array_append_new(l->list, cb_sla_agreement_summary(a, 0));
}

static void handle(cb_sla_control *c, cb_request *req, const char *tenant, const void *data,
                   size_t len)
{
    json_error_t je;
    cb_status s;
    json_t *body = cb_json_loadb(data, len, JSON_REJECT_DUPLICATES, &je, &s);
    const char *op = json_string_value(json_object_get(body, "op"));
    if (!body) {
        refuse(req, WHY_INVALID, NULL, "/: not JSON: %s (line %d, column %d)", je.text, je.line,
               je.column);
        return;
    }
    if (!op) {
        refuse(req, WHY_INVALID, NULL,
               "/op: a request needs an op (put, delete, start, stop, list, show)");
    } else if (!strcmp(op, "put")) {
        put(c, req, tenant, body);
    } else if (!strcmp(op, "delete") || !strcmp(op, "start") || !strcmp(op, "stop")) {
        state_change(c, req, tenant, op, body);
    } else if (!strcmp(op, "list")) {
        listing l = {json_array()};
        cb_sla_evaluator_each(c->ev, tenant, add_summary, &l);
        respond(req, json_pack("{s:b, s:o}", "ok", 1, "agreements", l.list));
    } else if (!strcmp(op, "show")) {
        const cb_sla_agreement *a =
            existing(c, req, tenant, json_string_value(json_object_get(body, "id")));
        if (a)
            respond(req,
                    json_pack("{s:b, s:o}", "ok", 1, "agreement", cb_sla_agreement_summary(a, 1)));
    } else {
        refuse(req, WHY_INVALID, NULL,
               "/op: \"%s\" is not one of put, delete, start, stop, list, show", op);
    }
    json_decref(body);
}

static void on_request(cb_request *req, const cb_broker_msg *m, void *ctx)
{
    cb_sla_control *c = ctx;
    const char *tenant = m->subject + strlen("cb.slactl.");
    deferred *d = NULL;
    if (strncmp(m->subject, "cb.slactl.", 10) || !cb_name_valid(tenant)) {
        refuse(req, WHY_INVALID, NULL, "%s: not cb.slactl.<tenant>", m->subject);
        return;
    }
    if (c->ready) {
        handle(c, req, tenant, m->data, m->len);
        return;
    }
    if (c->ndeferred >= DEFER_MAX || !(d = cb_calloc(1, sizeof *d)) ||
        !(d->data = cb_malloc(m->len + 1))) {
        free(d);
        refuse(req, WHY_UNAVAILABLE, NULL,
               "the SLA service is catching up with the log; try again");
        return;
    }
    memcpy(d->data, m->data, m->len);
    d->len = m->len;
    d->req = req;
    snprintf(d->tenant, sizeof d->tenant, "%s", tenant);
    *c->tail = d;
    c->tail = &d->next;
    c->ndeferred++;
}

void cb_sla_control_ready(cb_sla_control *c)
{
    c->ready = 1;
    while (c->head) {
        deferred *d = c->head;
        c->head = d->next;
        handle(c, d->req, d->tenant, d->data, d->len);
        free(d->data);
        free(d);
    }
    c->tail = &c->head;
    c->ndeferred = 0;
}

cb_status cb_sla_control_start(cb_broker *b, cb_sla_evaluator *ev, const cb_schema *schema,
                               int has_prometheus, cb_sla_control **out)
{
    cb_sla_control *c = cb_calloc(1, sizeof *c);
    cb_status s;
    *out = NULL;
    if (!c)
        return CB_ENOMEM;
    c->b = b;
    c->ev = ev;
    c->schema = schema;
    c->has_prometheus = has_prometheus;
    c->tail = &c->head;
    if ((s = cb_broker_serve(b, SERVE_PATTERN, on_request, c, &c->sub)) != CB_OK) {
        free(c);
        return s;
    }
    *out = c;
    return CB_OK;
}

void cb_sla_control_stop(cb_sla_control *c)
{
    if (!c)
        return;
    cb_sub_close(c->sub);
    c->sub = NULL;
    while (c->head) {
        deferred *d = c->head;
        c->head = d->next;
        cb_request_drop(d->req);
        free(d->data);
        free(d);
    }
    for (waiter *w = c->waiters, *next; w; w = next) {
        next = w->next;
        if (w->req)
            cb_request_drop(w->req);
        w->req = NULL;
        if (w->confirmed)
            unlink_waiter(c, w);
    }
    c->stopped = 1;
    if (!c->nops)
        control_free(c);
}
