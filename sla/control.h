/* sla/control.h - agreements managed by request (docs/sla.md): cb-sla
 * serves cb.slactl.<tenant> with JSON requests
 *
 *   {"op": "put", "agreement": {...}}                 create or update
 *   {"op": "put", "template": T, "id": A, "values": {...}}   from a template
 *   {"op": "delete" | "start" | "stop", "id": A}
 *   {"op": "list"}  {"op": "show", "id": A}
 *
 * and answers {"ok": true, ...} or {"ok": false, "error": "...", "errors":
 * [...]}. A change is checked (schemas/agreement.json, then each
 * constraint), appended as cb.sla.created/updated/deleted/started/stopped
 * on cb.evt.<tenant>._sla (id <tenant>/<agreement>/<version>/<verb>), and
 * answered once cb-sla has read it back from the log: the log is the only
 * state, and a `show` after the answer sees the change.
 *
 * Requests that come while cb-sla is catching up with the log wait for the
 * end (cb_sla_control_ready). Ownership: the service creates and frees it;
 * it borrows the broker, the evaluator and the schemas. Threading: the
 * loop's. */
#ifndef CB_SLA_CONTROL_H
#define CB_SLA_CONTROL_H
#include <jansson.h>
#include <stdint.h>

#include "broker.h"
#include "cb_event.h"
#include "cb_schema.h"
#include "evaluator.h"

typedef struct cb_sla_control cb_sla_control;

/* Serve cb.slactl.*. Without a Prometheus server (has_prometheus 0) an
 * agreement with a query is refused. CB_ENOMEM or the broker's error. */
CB_NODISCARD cb_status cb_sla_control_start(cb_broker *b, cb_sla_evaluator *ev,
                                            const cb_schema *schema, int has_prometheus,
                                            cb_sla_control **out);
/* Answers nothing more; frees itself once its appends in flight are
 * confirmed (or failed by the broker's close). Accepts NULL. */
void cb_sla_control_stop(cb_sla_control *c);

/* The service read this event (after the evaluator applied it). */
void cb_sla_control_on_event(cb_sla_control *c, const cb_event *ev);
/* Caught up with the log: handle the requests that waited. */
void cb_sla_control_ready(cb_sla_control *c);
/* Time passes: answer the changes not read back within 10 s. */
void cb_sla_control_tick(cb_sla_control *c, int64_t now_ns);

/* An agreement as list and show give it (show: with its spec and its
 * recent breaches). New reference or NULL. */
json_t *cb_sla_agreement_summary(const cb_sla_agreement *a, int detailed);

#endif /* CB_SLA_CONTROL_H */
