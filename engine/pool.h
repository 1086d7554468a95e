/* engine/pool.h - a pool's split (docs/engine.md, "Pools"): how many of a
 * plan's invocations each member account gets, by the pool's policy,
 * never more than a member's free capacity.
 *
 * Pure: no I/O, no clock, no allocation; thread-safe. */
#ifndef CB_POOL_H
#define CB_POOL_H
#include <stddef.h>
#include <stdint.h>

#include "cb_config.h"

typedef struct cb_pool_member_in {
    uint64_t free;      /* invocations it may start now */
    double weight;      /* weighted: its share (> 0) */
    double per_gb_s;    /* cheapest: its price, then */
    double per_request; /* ... its price per request */
} cb_pool_member_in;

/* Split n invocations over k members (k <= CB_POOL_MAX) into out[0..k):
 *   order     fills member 0 up to its free capacity, then 1, ...;
 *   cheapest  the same in order of price (per_gb_s, then per_request,
 *             then the pool's order);
 *   weighted  keeps each member's share of what it gets proportional to its
 *             weight, among the members with free capacity (a full member's
 *             share goes to the others).
 * Returns the invocations placed: min(n, the sum of free). */
uint64_t cb_pool_split(cb_pool_policy policy, const cb_pool_member_in *m, size_t k, uint64_t n,
                       uint64_t *out);

/* What a member that throttles was found to take: the concurrency it
 * had in flight halved on a throttle (at most once per CB_LEARN_HOLD_MS:
 * a burst of reports is one), then a quarter more (at least 1) every
 * CB_LEARN_STEP_MS without one, until `top` (its max_concurrency, or
 * CB_LEARN_MAX) holds again and nothing is learned any more. */
#define CB_LEARN_HOLD_MS 1000
#define CB_LEARN_STEP_MS 500
#define CB_LEARN_MAX     (1u << 20)
typedef struct cb_learned {
    uint64_t limit; /* 0: none learned */
    int64_t at_ns;  /* its last change (any clock, the same every call) */
    int64_t cut_ns; /* its last decrease */
} cb_learned;

void cb_learn_throttled(cb_learned *l, uint64_t inflight, int64_t now);
void cb_learn_recover(cb_learned *l, uint64_t top, int64_t now);

#endif /* CB_POOL_H */
