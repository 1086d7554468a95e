/* sla/service.h - cb-sla's loop (docs/sla.md): reads the event log from its
 * start, feeds the evaluator, appends each breach as cb.sla.violated and
 * notifies it on cb.sla.<tenant>.<agreement>.
 *
 * Each breach and each recovery (cb.sla.recovered) is also posted to the
 * agreement's webhooks (sla/webhook.h). A job's breaches go to the log of
 * its partition (the one whose log holds its events), the tenant's
 * (periodic guarantees, terminations) to partition 0. Every TICK the periodic guarantees
 * evaluate and agreements past their expiration are terminated
 * (cb.sla.terminated).
 *
 * Restart safety: breach ids are deterministic (tenant, agreement,
 * guarantee, ordinal) and the same log gives the same breaches. While it
 * catches up with the log's end it appends nothing: it keeps the breaches
 * it finds and drops those whose cb.sla.violated it then reads in the log;
 * at the end it appends the rest (those a crash lost between deciding and
 * appending). After that it appends as it decides. No breach is lost and
 * none is reported twice.
 *
 * Threading: the loop's. Ownership: start/stop. */
#ifndef CB_SLA_SERVICE_H
#define CB_SLA_SERVICE_H
#include <stdint.h>

#include <jansson.h>

#include "broker.h"
#include "cb_schema.h"
#include "cb_status.h"
#include "webhook.h"

struct event_base;

typedef struct cb_sla_service cb_sla_service;

typedef struct cb_sla_stats {
    uint64_t events;   /* read from the log */
    uint64_t passed;   /* of those, of jobs nothing watches: not decoded */
    uint64_t breaches; /* found (live or on the way to the end) */
    uint64_t appended; /* cb.sla.violated appended by this process */
    uint64_t errors;
    int caught_up;
} cb_sla_stats;

/* Start reading (cb_broker_read from the first event of each of the
 * deployment's `partitions` logs, 1..CB_PARTITIONS_MAX) and serving
 * cb.slactl.* (sla/control.h); schema is borrowed for its life, secrets
 * (the webhook secrets, {name: value}) copied; prometheus: the URL of the
 * Prometheus server that guarantees on [query] ask (NULL: none, and such
 * agreements are refused). CB_ENOMEM or the broker's
 * error. A failed read of a partition's log is made again after its last
 * event read (a broker node lost); it ends nothing. */
CB_NODISCARD cb_status cb_sla_service_start(struct event_base *base, cb_broker *b,
                                            const cb_schema *schema, const json_t *secrets,
                                            const char *prometheus, unsigned partitions,
                                            cb_sla_service **out);
/* Stops; the memory goes when the broker confirms or fails (its close) the
 * appends in flight. Accepts NULL. */
void cb_sla_service_stop(cb_sla_service *s);
const cb_sla_stats *cb_sla_service_stats(const cb_sla_service *s);
const cb_sla_webhook_stats *cb_sla_service_webhook_stats(const cb_sla_service *s);
/* The agreements under evaluation (borrowed; read on the loop). */
const struct cb_sla_evaluator *cb_sla_service_evaluator(const cb_sla_service *s);

#endif /* CB_SLA_SERVICE_H */
