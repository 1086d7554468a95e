/* sla/prom.h - the Prometheus adaptor of the SLA evaluator (docs/sla.md):
 * a guarantee on [query] takes its value from a Prometheus server's HTTP
 * API (GET /api/v1/query?query=PROMQL, an instant query). The first sample
 * of a vector answer, or a scalar, is the value; an empty vector has none
 * (no evaluation); an error answer is logged by the caller.
 *
 * Ownership: the adaptor owns its calls in flight (cancelled, without their
 * callback, by cb_sla_prom_free). Threading: the loop's. */
#ifndef CB_SLA_PROM_H
#define CB_SLA_PROM_H
#include <stddef.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_sla_prom cb_sla_prom;

/* ok 1: value is the answer; ok 0: none (an empty vector); ok -1: the
 * query failed (why says how). */
typedef void cb_sla_prom_cb(void *ctx, int ok, double value, const char *why);

/* A client of the server at url (http://host:port). CB_EINVAL (err says
 * why), CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_prom_new(struct event_base *base, const char *url, cb_sla_prom **out,
                                       char *err, size_t errlen);
void cb_sla_prom_free(cb_sla_prom *p); /* accepts NULL */

/* Ask promql; cb is called once on the loop (never from inside this call).
 * CB_ENOMEM, CB_EINVAL (cb is then never called). */
CB_NODISCARD cb_status cb_sla_prom_query(cb_sla_prom *p, const char *promql, cb_sla_prom_cb *cb,
                                         void *ctx);

/* The value of a query's answer (the API's JSON): 1 and *out, 0 for an
 * empty vector, -1 with why (not success, not JSON, no number). Pure. */
int cb_sla_prom_value(const char *body, size_t len, double *out, char *why, size_t whylen);

#endif /* CB_SLA_PROM_H */
