/* common/cb_cost.h - what invocations cost (docs/engine.md, "Cost").
 *
 * An invocation is billed as FaaS platforms bill it: its duration times its
 * memory, in GB-seconds (memory_mb / 1024 x seconds), at the account's price
 * per GB-second, plus its price per request ("price" of a backend in the
 * configuration). Amounts are kept as integers of 1e-9 of the prices' unit
 * ("nanos"), memory-time as MB-milliseconds: each invocation's figure is
 * rounded once, where it ran, and every total is an exact sum of those, so
 * task, job, tenant and backend figures add up to the last digit.
 *
 * Forms (one each, everywhere):
 *   an invocation's, in its outcome event:  [mb_ms, nanos] (the account is the
 *                                            adapter's: the event's source; two
 *                                            numbers, not an object: every outcome
 *                                            has it and every reader decodes it)
 *   a total (task, job, tenant, backend):   {"invocations", "mb_ms", "nanos",
 *                                            "gb_s", "amount"}
 *     (gb_s and amount are the integers in their units, for people; a reader
 *     takes the integers); the store's records keep the integers alone
 *
 * Pure; thread-safe. */
#ifndef CB_COST_H
#define CB_COST_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cb_status.h"

struct cb_config;

/* A memory size billed when neither the function nor the account says. */
#define CB_COST_MEMORY_MB 128

typedef struct cb_price {
    double per_gb_s;    /* per GB-second; 0: free */
    double per_request; /* per invocation; 0: free */
    uint32_t memory_mb; /* billed when the function has no memory_mb (the size the
                         * function is deployed with); default CB_COST_MEMORY_MB */
} cb_price;

typedef struct cb_cost {
    uint64_t invocations;
    uint64_t mb_ms; /* memory x duration, MB-milliseconds */
    uint64_t nanos; /* amount, 1e-9 of the prices' unit */
} cb_cost;

/* The "price" of `backend` in the configuration (all zero but memory_mb
 * when it has none). */
void cb_price_of(const struct cb_config *c, const char *backend, cb_price *out);

/* One invocation of memory_mb (0: the price's memory_mb) that ran
 * duration_ms (< 0 taken as 0). */
cb_cost cb_cost_of(const cb_price *p, uint32_t memory_mb, int64_t duration_ms);
void cb_cost_add(cb_cost *into, const cb_cost *c);
static inline bool cb_cost_none(const cb_cost *c)
{
    return !c->invocations && !c->mb_ms && !c->nanos;
}
double cb_cost_gb_s(const cb_cost *c);
double cb_cost_amount(const cb_cost *c);

/* A total's JSON (new reference, NULL on ENOMEM): with gb_s and amount, or
 * (record) the integers alone; and back from either: CB_EINVAL when v is
 * not one (out zeroed). */
json_t *cb_cost_json(const cb_cost *c);
json_t *cb_cost_record_json(const cb_cost *c);
/* Set member `name` of the JSON object `obj` to c's total JSON (a
 * cb_view_costs callback); non-zero when out of memory. */
int cb_cost_put(const char *name, const cb_cost *c, void *obj);
CB_NODISCARD cb_status cb_cost_parse(const json_t *v, cb_cost *out);

/* An invocation's JSON (new reference, NULL on ENOMEM); and back: CB_EINVAL
 * when v is not one. */
json_t *cb_cost_invocation_json(const cb_cost *c);
CB_NODISCARD cb_status cb_cost_invocation_parse(const json_t *v, cb_cost *out);

/* An amount given in the prices' unit (a job's "budget") in nanos, rounded
 * up so that a budget is never exceeded by rounding. */
uint64_t cb_cost_nanos_of(double amount);

#endif /* CB_COST_H */
