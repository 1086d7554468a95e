/* engine/shaping.c - traffic shaping between jobs (see control_int.h):
 * per-backend max_concurrency over all jobs and a token bucket for
 * rate_per_s; free capacity goes to jobs in rank order (priority with aging,
 * deadline, submission), a held-back job reserving what it wants. */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_cost.h"
#include "pool.h"

#define POOL_LOOK_MS 250 /* a pool's job with no member free looks again */

/* The account's limits, its partitions' share of them (docs/scale.md). */
static void share_limits(cb_control *c, backend_state *bs)
{
    unsigned have = 0;
    cb_config_limits(c->reg, bs->name, &bs->lim);
    for (unsigned k = 0; k < c->o.partitions; k++)
        have += c->parts[k].owned != 0;
    if (have < c->o.partitions) {
        uint64_t most = bs->lim.max_concurrency;
        /* none yet (an engine that claims): as if one, so that its first
         * jobs are not held up */
        have = have ? have : 1;
        bs->lim.max_concurrency =
            most ? (uint32_t)((most * have + c->o.partitions - 1) / c->o.partitions) : 0;
        bs->lim.rate_per_s = bs->lim.rate_per_s * have / c->o.partitions;
    }
}

void ctl_shaping_reshare(cb_control *c)
{
    for (backend_state *bs = c->backends; bs; bs = bs->next)
        if (!bs->mixed)
            share_limits(c, bs);
}

backend_state *ctl_backend_of(cb_control *c, const char *name)
{
    backend_state *bs;
    for (bs = c->backends; bs; bs = bs->next)
        if (!strcmp(bs->name, name))
            return bs;
    if (!(bs = cb_calloc(1, sizeof *bs)))
        return NULL;
    snprintf(bs->name, sizeof bs->name, "%s", name);
    share_limits(c, bs);
    bs->tokens = bs->lim.rate_per_s; /* a one-second burst */
    bs->next = c->backends;
    c->backends = bs;
    if ((bs->pool = cb_config_pool(c->reg, name))) /* members are backends, never pools */
        for (size_t i = 0; i < bs->pool->n; i++)
            if (!(bs->members[i] = ctl_backend_of(c, bs->pool->members[i])))
                return NULL;
    return bs;
}

/* Account `name` among bs's members (added when new); -1: more than
 * CB_POOL_MAX, or out of memory. */
static int add_account(cb_control *c, backend_state *bs, const char *name)
{
    size_t a;
    for (a = 0; a < bs->lanes.n && strcmp(bs->lanes.members[a], name); a++)
        ;
    if (a < bs->lanes.n)
        return (int)a;
    if (a == CB_POOL_MAX || !(bs->members[a] = ctl_backend_of(c, name)))
        return -1;
    bs->lanes.members[a] = bs->members[a]->name;
    bs->lanes.weights[a] = 1;
    bs->lanes.n = a + 1;
    return (int)a;
}

backend_state *ctl_mixed_of(cb_control *c, const cb_flow *f)
{
    char name[sizeof((backend_state *)0)->name], all[CB_FLOW_LANES_MAX * 64] = "";
    size_t n = 0;
    backend_state *bs;
    for (uint8_t k = 0; k < f->nlanes; k++)
        n += (size_t)snprintf(all + n, n < sizeof all ? sizeof all - n : 0, "+%s", f->lanes[k]);
    if (n < sizeof name) /* "+local+lambda-us": the lanes in order */
        memcpy(name, all, n + 1);
    else
        snprintf(name, sizeof name, "+%016llx",
                 (unsigned long long)cb_hash64(all, n < sizeof all ? n : sizeof all - 1));
    for (bs = c->backends; bs; bs = bs->next)
        if (bs->mixed && !strcmp(bs->name, name))
            return bs;
    if (!(bs = cb_calloc(1, sizeof *bs)))
        return NULL;
    snprintf(bs->name, sizeof bs->name, "%s", name);
    bs->mixed = true;
    bs->lanes.name = bs->name;
    bs->lanes.policy = CB_POOL_ORDER;
    bs->pool = &bs->lanes;
    for (uint8_t k = 0; k < f->nlanes; k++) {
        const cb_pool *p = cb_config_pool(c->reg, f->lanes[k]);
        bs->lane_pool[k] = p;
        for (size_t i = 0; i < (p ? p->n : 1); i++) {
            int a = add_account(c, bs, p ? p->members[i] : f->lanes[k]);
            if (a < 0) { /* intake refuses more accounts than a job may have */
                free(bs);
                return NULL;
            }
            bs->lane_accts[k] |= (uint8_t)(1u << a);
        }
    }
    bs->nlanes = f->nlanes;
    bs->next = c->backends;
    c->backends = bs;
    return bs;
}

int ctl_member_index(const cjob *j, const char *name)
{
    const cb_pool *pool = j->backend ? j->backend->pool : NULL;
    for (size_t a = 0; pool && name && a < pool->n; a++)
        if (!strcmp(pool->members[a], name))
            return (int)a;
    return -1;
}

int ctl_tenant_add(cb_control *c, cjob *j)
{
    tenant_state *t;
    for (t = c->tenants; t && strcmp(t->tenant, j->tenant); t = t->next)
        ;
    if (!t) {
        if (!(t = cb_calloc(1, sizeof *t)))
            return -1;
        snprintf(t->tenant, sizeof t->tenant, "%s", j->tenant);
        t->max_tasks = (uint64_t)cb_config_tenant_limit(c->reg, j->tenant, "max_concurrent_tasks");
        t->next = c->tenants;
        c->tenants = t;
    }
    t->jobs++;
    j->ts = t;
    return 0;
}

void ctl_tenant_remove(cb_control *c, cjob *j)
{
    tenant_state *t = j->ts;
    if (!t)
        return;
    j->ts = NULL;
    if (--t->jobs)
        return;
    for (tenant_state **p = &c->tenants; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            free(t);
            return;
        }
}

/* What j's tenant may still start under its max_concurrent_tasks. */
static uint64_t headroom(const cjob *j)
{
    const tenant_state *t = j->ts;
    if (!t || !t->max_tasks)
        return UINT32_MAX;
    return t->inflight >= t->max_tasks ? 0 : t->max_tasks - t->inflight;
}

/* j's tenant's use of j's backend (made on first use; counted per job). */
int ctl_use_backend(cb_control *c, cjob *j)
{
    backend_state *bs = j->backend;
    tenant_use *u;
    if (!bs || j->use)
        return 0;
    for (u = bs->tenants; u && strcmp(u->tenant, j->tenant); u = u->next)
        ;
    if (!u) {
        if (!(u = cb_calloc(1, sizeof *u)))
            return -1;
        snprintf(u->tenant, sizeof u->tenant, "%s", j->tenant);
        u->weight = cb_config_tenant_weight(c->reg, j->tenant);
        u->next = bs->tenants;
        bs->tenants = u;
    }
    u->jobs++;
    j->use = u;
    return 0;
}

static void unuse(cjob *j)
{
    tenant_use *u = j->use;
    if (!u)
        return;
    j->use = NULL;
    if (--u->jobs)
        return;
    for (tenant_use **p = &j->backend->tenants; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            free(u);
            return;
        }
}

static cb_rank rank_of(const cjob *j, int64_t now)
{
    cb_rank r = {j->priority, j->deadline_ns, j->submitted_ns,
                 j->want ? now - j->hungry_since_ns : 0};
    return r;
}

void ctl_set_inflight(cjob *j, uint32_t n)
{
    if (j->backend)
        j->backend->inflight = j->backend->inflight - j->inflight + n;
    if (j->use)
        j->use->inflight = j->use->inflight - j->inflight + n;
    if (j->ts)
        j->ts->inflight = j->ts->inflight - j->inflight + n;
    j->inflight = n;
}

/* Keep j in its backend's hungry list exactly while it wants more. */
static void set_want(cjob *j, uint64_t want)
{
    backend_state *bs = j->backend;
    int was = j->want > 0;
    j->want = want;
    if (!bs || was == (want > 0))
        return;
    if (want) {
        j->hungry_prev = NULL;
        j->hungry_next = bs->hungry;
        if (bs->hungry)
            bs->hungry->hungry_prev = j;
        bs->hungry = j;
    } else {
        if (j->hungry_prev)
            j->hungry_prev->hungry_next = j->hungry_next;
        else
            bs->hungry = j->hungry_next;
        if (j->hungry_next)
            j->hungry_next->hungry_prev = j->hungry_prev;
        j->hungry_prev = j->hungry_next = NULL;
    }
}

/* j's invocations in flight on its pool's member k are now n. */
static void set_member_inflight(cjob *j, size_t k, uint32_t n)
{
    backend_state *m = j->backend->members[k];
    m->inflight = m->inflight - j->minflight[k] + n;
    j->minflight[k] = n;
}

void ctl_shaping_forget(cjob *j)
{
    set_want(j, 0);
    ctl_set_inflight(j, 0);
    for (size_t k = 0; j->backend && j->backend->pool && k < j->backend->pool->n; k++)
        set_member_inflight(j, k, 0);
    unuse(j);
}

/* ---- pools (docs/engine.md, "Pools") ------------------------------------------ */

void ctl_pool_sync(cjob *j, const cb_job_state *js, int64_t now)
{
    const cb_pool *pool = j->backend ? j->backend->pool : NULL;
    for (size_t k = 0; pool && k < pool->n; k++) {
        uint32_t inflight = 0, throttled = 0;
        for (uint32_t i = 0; i < js->nmembers; i++)
            if (!strcmp(js->members[i].backend, pool->members[k])) {
                inflight = js->members[i].inflight;
                throttled = js->members[i].throttled;
            }
        set_member_inflight(j, k, inflight);
        if (j->mseen && throttled > j->mthrottled[k])
            cb_learn_throttled(&j->backend->members[k]->learned, j->backend->members[k]->inflight,
                               now);
        j->mthrottled[k] = throttled;
    }
    j->mseen = 1;
}

#define MAX_SHARERS 64 /* tenants weighed at once on one backend (cb_sched_fair_share) */

/* The slots of `free` that j's tenant gets in the fair share with the other
 * tenants whose jobs wait for the backend (cb_sched_fair_share). */
static uint64_t tenant_slots(const cb_control *c, const cjob *j, uint64_t free, int64_t now)
{
    cb_share_in t[MAX_SHARERS];
    const tenant_use *who[MAX_SHARERS];
    size_t n = 1;
    if (!j->use)
        return free;
    memset(t, 0, sizeof t);
    who[0] = j->use;
    t[0] = (cb_share_in){j->use->inflight, j->use->weight, 0, rank_of(j, now), true};
    for (const cjob *o = j->backend->hungry; o; o = o->hungry_next) {
        size_t i;
        cb_rank r;
        if (o == j || !o->use || o->use == j->use)
            continue;
        for (i = 1; i < n && who[i] != o->use; i++)
            ;
        r = rank_of(o, now);
        if (i == n) {
            if (n == MAX_SHARERS)
                continue;
            who[n] = o->use;
            t[n++] = (cb_share_in){o->use->inflight, o->use->weight, 0, r, false};
        } else if (cb_sched_rank_before(&r, &t[i].best, c->o.aging_ms)) {
            t[i].best = r;
        }
        t[i].demand += o->want;
        if (t[i].demand > headroom(o)) /* a tenant at its quota wants no more */
            t[i].demand = headroom(o);
    }
    return n == 1 ? free : cb_sched_fair_share(t, n, free, c->o.aging_ms);
}

/* What backend bs may start now under its max_concurrency (over all its
 * jobs), its tokens and what it learned from throttles; *retry_ms: when
 * tokens come back (0: no sooner than an invocation ends). */
static uint64_t backend_free(backend_state *bs, int64_t now, int64_t *retry_ms)
{
    uint64_t cap = UINT32_MAX;
    if (bs->lim.max_concurrency) {
        uint64_t all = bs->inflight; /* j's own included */
        cap = all >= bs->lim.max_concurrency ? 0 : bs->lim.max_concurrency - all;
    }
    if (bs->lim.rate_per_s > 0) {
        double rate = bs->lim.rate_per_s;
        bs->tokens += rate * (double)(now - bs->refilled_ns) / 1e9;
        bs->refilled_ns = now;
        if (bs->tokens > rate)
            bs->tokens = rate;
        if ((uint64_t)bs->tokens < cap)
            cap = (uint64_t)bs->tokens;
        if (cap == 0)
            *retry_ms = (int64_t)(1000.0 / rate) + 1;
    }
    cb_learn_recover(&bs->learned, bs->lim.max_concurrency, now);
    if (bs->learned.limit) {
        uint64_t lim = bs->learned.limit, room = lim > bs->inflight ? lim - bs->inflight : 0;
        if (room < cap)
            cap = room;
        if (cap == 0 && (!*retry_ms || *retry_ms > CB_LEARN_STEP_MS))
            *retry_ms = CB_LEARN_STEP_MS;
    }
    return cap;
}

/* A pool: what its members may start now, together (each[k]: member k's).
 * With none free it looks again soon: a member's capacity may free up by
 * another job's end (which wakes that job's backend's hungry jobs, not the
 * pool's). */
static uint64_t pool_free(backend_state *bs, int64_t now, int64_t *retry_ms, uint64_t *each)
{
    uint64_t cap = 0;
    for (size_t k = 0; k < bs->pool->n; k++) {
        int64_t r = 0;
        uint64_t f = backend_free(bs->members[k], now, &r);
        each[k] = f;
        cap = cap + f > UINT32_MAX ? UINT32_MAX : cap + f;
        if (r > 0 && (!*retry_ms || r < *retry_ms))
            *retry_ms = r;
    }
    if (cap == 0 && (!*retry_ms || *retry_ms > POOL_LOOK_MS))
        *retry_ms = POOL_LOOK_MS;
    return cap;
}

uint64_t ctl_pool_split(cb_control *c, cjob *j, const cb_pool *pool, uint64_t n, int64_t now,
                        uint64_t *out)
{
    backend_state *bs = j->backend;
    cb_pool_member_in in[CB_POOL_MAX];
    int acct[CB_POOL_MAX];
    uint64_t placed;
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < pool->n; i++) {
        int64_t r = 0;
        cb_price pr;
        acct[i] = ctl_member_index(j, pool->members[i]); /* j's own pool: i */
        if (acct[i] < 0)
            continue; /* not one of j's accounts: no room */
        cb_price_of(c->reg, pool->members[i], &pr);
        in[i].free = backend_free(bs->members[acct[i]], now, &r);
        in[i].weight = pool->weights[i];
        in[i].per_gb_s = pr.per_gb_s;
        in[i].per_request = pr.per_request;
    }
    placed = cb_pool_split(pool->policy, in, pool->n, n, out);
    for (size_t i = 0; i < pool->n; i++)
        if (acct[i] >= 0)
            ctl_lane_took(j, (size_t)acct[i], out[i]);
    return placed;
}

void ctl_lane_took(cjob *j, size_t k, uint64_t n)
{
    backend_state *m = j->backend->members[k];
    set_member_inflight(j, k, j->minflight[k] + (uint32_t)n);
    if (m->lim.rate_per_s > 0)
        m->tokens -= (double)n;
}

/* Invocations `j` may start now; *retry_ms says when tokens come back. The
 * free capacity is shared between tenants first (the fair share), then
 * within j's tenant by rank: what its better-ranked jobs wait for is
 * theirs (priority with aging, deadline, submission). *free_out: capacity
 * free before either. */
uint32_t ctl_capacity(cb_control *c, cjob *j, int64_t now, int64_t *retry_ms, uint64_t *free_out,
                      uint32_t *lanes)
{
    backend_state *bs = j->backend;
    uint64_t cap = UINT32_MAX, reserved = 0, mine, room = headroom(j), each[CB_POOL_MAX];
    cb_rank rank = rank_of(j, now);
    *retry_ms = 0;
    *free_out = UINT32_MAX;
    j->tenant_capped = 0;
    if (!bs || (!bs->pool && !bs->lim.max_concurrency && bs->lim.rate_per_s <= 0)) {
        j->tenant_capped = room == 0;
        return (uint32_t)room;
    }
    /* what better-ranked jobs of the tenant wait for is theirs */
    for (const cjob *o = bs->hungry; o; o = o->hungry_next) {
        cb_rank r;
        if (o == j || o->use != j->use)
            continue;
        r = rank_of(o, now);
        if (cb_sched_rank_before(&r, &rank, c->o.aging_ms))
            reserved += o->want;
    }
    cap = bs->pool ? pool_free(bs, now, retry_ms, each) : backend_free(bs, now, retry_ms);
    *free_out = cap;
    mine = tenant_slots(c, j, cap, now);
    mine = mine > reserved ? mine - reserved : 0;
    if (room == 0 || mine > room) { /* its tenant's max_concurrent_tasks cuts it */
        j->tenant_capped = 1;
        mine = room;
    }
    for (size_t k = 0; lanes && bs->mixed && k < bs->nlanes; k++) {
        uint64_t sum = 0; /* a pool lane's members together */
        for (size_t a = 0; a < bs->pool->n; a++)
            if (bs->lane_accts[k] & (1u << a))
                sum += each[a];
        lanes[k] = (uint32_t)(sum < mine ? sum : mine);
    }
    return (uint32_t)mine;
}

/* After a plan: spend its tokens; remember what j wants; if capacity is left
 * over, the jobs waiting for it get a look. A held job only spends. */
void ctl_after_plan(cb_control *c, cjob *j, const cb_sched_plan *p, uint64_t free_cap, int64_t now)
{
    uint64_t want;
    (void)c;
    if (j->backend && !j->backend->pool && j->backend->lim.rate_per_s > 0)
        j->backend->tokens -= (double)p->ndispatch; /* a pool's members spend theirs */
    if (j->held)
        return;
    want = p->end == CB_END_NONE ? p->want : 0;
    if (want && !j->want)
        j->hungry_since_ns = now;
    set_want(j, want);
    /* What it left is the others' to take; unless its tenant's quota held
     * it back and it started nothing: nothing changed for them, and two such
     * jobs would wake each other without end */
    if (j->backend && !(j->tenant_capped && p->ndispatch == 0) && free_cap != UINT32_MAX &&
        free_cap > p->ndispatch)
        for (cjob *o = j->backend->hungry; o; o = o->hungry_next)
            if (o != j)
                ctl_job_wake(o, 0);
}
