/* engine/pool.c - a pool's split (see pool.h). */
#include "pool.h"

#include <string.h>

/* Is a cheaper than b (by price, then by the pool's order)? */
static int cheaper(const cb_pool_member_in *a, const cb_pool_member_in *b)
{
    if (a->per_gb_s != b->per_gb_s)
        return a->per_gb_s < b->per_gb_s;
    return a->per_request < b->per_request;
}

/* Fill the members in `order` up to their free capacity. */
static uint64_t fill(const cb_pool_member_in *m, const size_t *order, size_t k, uint64_t n,
                     uint64_t *out)
{
    uint64_t placed = 0;
    for (size_t i = 0; i < k && placed < n; i++) {
        uint64_t take = n - placed < m[order[i]].free ? n - placed : m[order[i]].free;
        out[order[i]] = take;
        placed += take;
    }
    return placed;
}

/* One at a time to the member with free capacity whose (count + 1) / weight
 * is the least: each gets its weight's share, a full one's goes to the rest. */
static uint64_t weighted(const cb_pool_member_in *m, size_t k, uint64_t n, uint64_t *out)
{
    uint64_t placed = 0;
    while (placed < n) {
        size_t best = k;
        double best_v = 0;
        for (size_t i = 0; i < k; i++) {
            double v;
            if (out[i] >= m[i].free || m[i].weight <= 0)
                continue;
            v = ((double)out[i] + 1) / m[i].weight;
            if (best == k || v < best_v) {
                best = i;
                best_v = v;
            }
        }
        if (best == k)
            break; /* every member is full */
        out[best]++;
        placed++;
    }
    return placed;
}

uint64_t cb_pool_split(cb_pool_policy policy, const cb_pool_member_in *m, size_t k, uint64_t n,
                       uint64_t *out)
{
    size_t order[CB_POOL_MAX];
    if (k > CB_POOL_MAX)
        k = CB_POOL_MAX;
    memset(out, 0, k * sizeof *out);
    if (policy == CB_POOL_WEIGHTED)
        return weighted(m, k, n, out);
    for (size_t i = 0; i < k; i++) { /* stable insertion: ties keep the pool's order */
        size_t j = i;
        for (; j > 0 && policy == CB_POOL_CHEAPEST && cheaper(&m[i], &m[order[j - 1]]); j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    return fill(m, order, k, n, out);
}

void cb_learn_throttled(cb_learned *l, uint64_t inflight, int64_t now)
{
    uint64_t had = inflight ? inflight : 1;
    if (l->limit && now - l->cut_ns < CB_LEARN_HOLD_MS * 1000000LL)
        return;
    if (l->limit && l->limit < had)
        had = l->limit;
    l->limit = had > 1 ? had / 2 : 1;
    l->at_ns = l->cut_ns = now;
}

void cb_learn_recover(cb_learned *l, uint64_t top, int64_t now)
{
    if (!top)
        top = CB_LEARN_MAX;
    while (l->limit && now - l->at_ns >= CB_LEARN_STEP_MS * 1000000LL) {
        l->limit += l->limit / 4 ? l->limit / 4 : 1;
        l->at_ns += CB_LEARN_STEP_MS * 1000000LL;
        if (l->limit >= top)
            l->limit = 0;
    }
}
