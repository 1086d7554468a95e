/* engine/control_int.h - inside the controllers (control.h): the job
 * controller's state, its invariants, and the contract between the files
 * that drive it. Nothing outside engine/control*.c, visit.c, shaping.c,
 * append.c, dispatch.c, completion.c and recovery.c includes this.
 *
 *   control.c     the job table, the log reader that feeds the mirror
 *                 (mirror.h), the short loop (its events) and the long loop
 *                 (reconcile), start and stop
 *   visit.c       one visit: the job from the mirror, wait until it holds
 *                 what the job appended, plan (scheduler.h), apply the plan
 *   shaping.c     traffic shaping between jobs: per-backend concurrency and
 *                 token bucket, capacity handed out by rank
 *   append.c      appends and puts the controller waits for (op), their
 *                 confirmations
 *   dispatch.c    the invocation commands of a plan's dispatches
 *   completion.c  the end of a job: result, done message, terminal event
 *   recovery.c    after a restart: the commands of dispatched tasks again
 *   partition.c   an objects input's plan: listed without blocking, appended
 *                 as cb.job.partitioned pages before the job starts
 *
 * Threading: everything here runs on the controller's loop. */
#ifndef CB_CONTROL_INT_H
#define CB_CONTROL_INT_H
#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

#include "cb_partition.h"
#include "cb_config.h"
#include "cb_map.h"
#include "control.h"
#include "flow.h"
#include "mirror.h"
#include "fold.h"
#include "owners.h"
#include "policy.h"
#include "pool.h"
#include "scheduler.h"
#include "tasklist.h"

#define CTL_KEY_MAX      (2 * CB_NAME_MAX + 2)
#define DISPATCH_CHUNK   10000 /* tasks per cb.tasks.dispatched (schema: <= 100000) */
#define CTL_BATCH_MAX    64    /* tasks per invocation command (<= CB_INVOKE_TASKS_MAX) */
#define CTL_BATCH_SPREAD 8     /* a plan makes at least this many commands before sharing */
#define CTL_BATCH_BUSY   64    /* ... while its backend has fewer other invocations in flight */

struct cjob;
typedef struct part_run part_run;

/* A backend's traffic limits and token bucket, shared by all its jobs, and
 * what capacity sharing needs without walking every job: the sum of its
 * jobs' `inflight`, and the list of its jobs that want more than they got
 * (`want` > 0). Kept by shaping.c: ctl_set_inflight, ctl_after_plan,
 * ctl_shaping_forget. */
/* A tenant's use of one backend: the fair share (docs/engine.md). */
typedef struct tenant_use {
    char tenant[CB_NAME_MAX + 1];
    double weight;     /* cb_config_tenant_weight */
    uint64_t inflight; /* sum of inflight over the tenant's jobs on the backend */
    unsigned jobs;     /* its jobs on the backend (freed at 0) */
    struct tenant_use *next;
} tenant_use;

/* A tenant's jobs in the controller, over every backend: its quotas
 * (docs/engine.md, "Quotas"). Made with its first job, freed with its last. */
typedef struct tenant_state {
    char tenant[CB_NAME_MAX + 1];
    unsigned jobs;      /* its cjobs (open jobs: a cjob lives until its job ends) */
    uint64_t inflight;  /* sum of inflight over them */
    uint64_t max_tasks; /* "max_concurrent_tasks"; 0: no limit */
    struct tenant_state *next;
} tenant_state;

typedef struct backend_state {
    char name[40];
    tenant_use *tenants; /* those with jobs on it */
    cb_backend_limits lim;
    double tokens; /* rate_per_s > 0: starts allowed now (a one-second burst at most) */
    int64_t refilled_ns;
    uint64_t inflight;   /* sum of inflight over its jobs (a member's: pools' jobs too) */
    struct cjob *hungry; /* its jobs with want > 0 */
    /* A pool (docs/engine.md, "Pools"): its jobs' capacity is its members'
     * (each with its own limits); inflight and hungry are its own jobs'. */
    const cb_pool *pool;
    struct backend_state *members[CB_POOL_MAX];
    /* Jobs over several accounts (docs/engine.md, "Jobs over several
     * accounts"): shaped like a pool (pool is &lanes) whose members are the
     * accounts of the lanes in order, a pool lane's members each once; lane
     * k's accounts are the bits of lane_accts[k], lane_pool[k] the pool it
     * names or NULL. A task goes to its own lane's accounts. */
    bool mixed;
    cb_pool lanes;
    uint8_t nlanes;
    uint8_t lane_accts[CB_FLOW_LANES_MAX];
    const cb_pool *lane_pool[CB_FLOW_LANES_MAX];
    cb_learned learned; /* a member that throttles: what it takes (pool.h) */
    struct backend_state *next;
} backend_state;

/* One job the controller drives ("tenant/job"). Created by a touch, freed
 * when a visit finds it ended (or not projected) with nothing pending.
 *
 * Invariants:
 * - pending counts appends and puts of this job not yet confirmed; while it
 *   is > 0 (or `ending`) a visit plans nothing: the confirmations wake the
 *   job again, so it never decides twice on the same state.
 * - After a plan is applied the job is not planned again until the mirror
 *   has folded what it appended (behind() in visit.c): `expect` events
 *   counted, the log position `await_seq` folded (NATS), a flat job's
 *   frontier at `await_frontier`, a DAG's last dispatched task
 *   (`await_ref`: the first of the plan's last cb.tasks.dispatched, whose
 *   fold implies the earlier ones'); or until await_until_ns passes.
 * - `ending`: the done message is out or on its way (end_status says what it
 *   says); the terminal event follows its confirmation. A failed publish
 *   clears it and the next visit plans the same end again (same ids).
 * - `held`: the service is suspending the job: it dispatches nothing.
 * - `recovered`: 0 until the first visit after a start has re-sent the
 *   commands of tasks already dispatched (recovery.c); a failed put clears
 *   it again.
 * - `inflight` is the mirror's count of the job's running invocations
 *   as last read, plus what this controller dispatched since; `want` what
 *   its last plan could not dispatch for lack of capacity. Only shaping.c
 *   writes them (ctl_set_inflight, ctl_after_plan), so the backend's sum of
 *   inflight and its list of hungry jobs always agree with its jobs: a
 *   visit costs what is hungry on its backend, not every job in memory.
 * - have_flow: flow, policy, step_policy and reduce_policy are loaded from
 *   the descriptor (once; a descriptor never changes). */
typedef struct cjob {
    char key[CTL_KEY_MAX], tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    uint64_t hash;
    cb_flow flow;
    cb_policy policy;
    cb_policy *step_policy;  /* owned: DAG steps' retry and timeout */
    cb_policy reduce_policy; /* map_reduce: the reduce function's timeout */
    int have_flow, recovered, ending, held;
    const char *end_status; /* static: what the done message says */
    backend_state *backend; /* borrowed from the controller's list */
    tenant_use *use;        /* its tenant's on that backend (counted in use->jobs) */
    tenant_state *ts;       /* its tenant's (counted in ts->jobs) */
    int tenant_capped;      /* its last capacity was cut by its tenant's max_concurrent_tasks */
    int priority;
    int64_t deadline_ns, submitted_ns;
    uint32_t inflight;
    uint64_t want;
    int64_t hungry_since_ns; /* when want became > 0: aging */
    /* a pool's job: per member (the pool's order), its invocations in flight
     * (counted in the member's inflight too), the throttles seen in its
     * record, and its function with that member as backend (owned; made on
     * first use) */
    uint32_t minflight[CB_POOL_MAX];
    uint32_t mthrottled[CB_POOL_MAX];
    int mseen;    /* the throttles were read once (those before are not news) */
    json_t *mfns; /* "<member>:<function's address>" -> the copy (dispatch.c member_fn) */
    struct cjob *hungry_prev, *hungry_next; /* in backend->hungry while want > 0 */
    int pending;
    uint64_t gen; /* its controller's count of cjobs made: an op of an earlier one is not its */
    uint64_t expect;
    unsigned log_part; /* the partition whose log holds its events (docs/scale.md) */
    uint64_t await_seq;
    uint32_t await_frontier;
    cb_task_ref await_ref; /* a DAG's; attempt 0: none */
    int64_t await_until_ns;
    int unseen;          /* visits in a row that found the mirror behind past await_until_ns */
    int64_t progress_ns; /* the last progress message */
    struct event *wake;
    int64_t wake_at_ns; /* monotonic */
    part_run *part;     /* partition.c: a page of the plan under way, or NULL */
    struct cb_control *c;
} cjob;

/* The log of one partition the controller drives (docs/scale.md). */
typedef struct ctl_part {
    struct cb_control *c;
    unsigned k;
    cb_reader *reader;        /* folded into the mirror; NULL while a retry waits */
    int owned;                /* driven here (cb_control_opts.owned, or claimed: claim.c) */
    int caught_up;            /* its reader has caught up once */
    int claimed;              /* with a name: its claim is folded (claim.c); else 1 */
    int live;                 /* caught up and claimed: its jobs' visits may decide */
    char claim[CB_CLAIM_MAX]; /* with a name: the token of its claim ("" none) */
    int64_t lost_ns;          /* with a name: another engine claimed it then (monotonic) */
} ctl_part;

struct cb_control {
    struct event_base *base;
    cb_broker *b;
    cb_store *st;
    const cb_config *reg;
    cb_control_opts o;
    cb_map jobs; /* hash of key -> cjob */
    backend_state *backends;
    tenant_state *tenants;             /* those with jobs */
    cb_mirror *mirror;                 /* the jobs' state the visits plan from (mirror.h) */
    struct cb_memo *memo;              /* the recent successes of cached tasks (memo.h) */
    ctl_part parts[CB_PARTITIONS_MAX]; /* [0, o.partitions): the logs read */
    struct event *read_retry;
    int live;                  /* every partition's reader has caught up once */
    int reload;                /* the mirror must be loaded again before reading on */
    char loading[CTL_KEY_MAX]; /* the job a snapshot is loading */
    struct event *reconcile;
    /* with a name (claim.c): the live engines, their beats, claims made */
    int claims;
    cb_owners owners;
    cb_sub *beats;
    struct event *beat;
    uint64_t claim_n;
    int64_t assign_ns; /* monotonic: the first assignment, once others were heard */
    int64_t reset_ns;  /* monotonic: the last cb_broker_reset (visit.c) */
    cb_control_stats stats;
    int stopped; /* freed by the caller: the last outstanding op frees it */
    size_t nops;
    uint64_t jobs_made; /* cjob.gen */
};

/* One confirmation the controller waits for. */
typedef struct op {
    cb_control *c;
    char key[CTL_KEY_MAX];
    uint64_t gen;     /* the cjob's (a partition given up and taken again makes a new one) */
    int kind;         /* OP_EVENT, OP_DISPATCH, OP_PUT, OP_DONE, OP_RESULT (completion.c) */
    json_t *invokes;  /* OP_DISPATCH: commands to put once confirmed */
    json_t *terminal; /* OP_DONE: {type, data} to append once confirmed */
} op;

enum { OP_EVENT = 0, OP_DISPATCH, OP_PUT, OP_DONE, OP_RESULT };

/* control.c: the job table. */
cjob *ctl_job_get(cb_control *c, const char *key);
void ctl_job_forget(cb_control *c, cjob *j);
/* Visit j after delay_ms (0: on the next loop turn). An earlier request wins. */
void ctl_job_wake(cjob *j, int64_t delay_ms);
/* Free the controller once stopped and no op is outstanding. */
void ctl_release(cb_control *c);

/* The mirror again from the store's snapshot, and the log read from its
 * position (at start, and after a fold ran out of memory). */
cb_status ctl_mirror_reload(cb_control *c);

/* visit.c */
void ctl_visit(cb_control *c, cjob *j);

/* shaping.c */
backend_state *ctl_backend_of(cb_control *c, const char *name);
/* The shaping of a job whose flow has several lanes, or a DAG's on a pool
 * (made on first use, shared by the jobs with those lanes in that order);
 * NULL on ENOMEM or when they run on more than CB_POOL_MAX accounts. */
backend_state *ctl_mixed_of(cb_control *c, const cb_flow *f);
/* n of j's dispatches went to member k of its backend (a pool's member, an
 * account of a job over several): counted in flight there, tokens spent. */
void ctl_lane_took(cjob *j, size_t k, uint64_t n);
/* Invocations j may start now; *retry_ms: when tokens come back; *free_out:
 * capacity free before better-ranked jobs' reservations. A job over several
 * accounts: lanes[k] (when not NULL) what lane k's account may take, at most
 * the result. */
uint32_t ctl_capacity(cb_control *c, cjob *j, int64_t now, int64_t *retry_ms, uint64_t *free_out,
                      uint32_t *lanes);
/* After a plan: what j still wants, tokens spent, hungry jobs woken when
 * capacity is left over. */
void ctl_after_plan(cb_control *c, cjob *j, const cb_sched_plan *p, uint64_t free_cap, int64_t now);
/* Count j in its tenant's jobs (made on first use). -1: ENOMEM. */
int ctl_tenant_add(cb_control *c, cjob *j);
/* j is gone: uncount it (its inflight is 0 already). */
void ctl_tenant_remove(cb_control *c, cjob *j);
/* Count j in its tenant's use of its backend (the fair share). -1: ENOMEM. */
int ctl_use_backend(cb_control *c, cjob *j);
/* j's invocations in flight are now n (the backend's and its tenant's sums follow). */
void ctl_set_inflight(cjob *j, uint32_t n);
/* j leaves the controller: its share of its backend goes. */
void ctl_shaping_forget(cjob *j);
/* A pool's job: its members' invocations in flight from its record, and
 * what they throttled since the last look (each throttling member learns). */
void ctl_pool_sync(cjob *j, const cb_job_state *js, int64_t now);
/* n invocations split across the members of `pool` (pool.h) by its policy:
 * j's own pool, or a pool lane's of a job over several accounts; into
 * out[i] for pool->members[i]; counted as theirs (in flight, tokens).
 * Returns the sum. */
uint64_t ctl_pool_split(cb_control *c, cjob *j, const cb_pool *pool, uint64_t n, int64_t now,
                        uint64_t *out);
/* The index of account `name` among j's backend's members, or -1. */
int ctl_member_index(const cjob *j, const char *name);

/* append.c: an op is owned by the caller until handed to the broker with
 * ctl_op_done as its callback; ctl_op_done frees it. */
op *ctl_op_new(cb_control *c, cjob *j, int kind);
void ctl_op_free(op *o);
/* The cjob o was made for, or NULL: stopped, or forgotten since. */
cjob *ctl_op_job(const op *o);
void ctl_op_done(cb_status s, uint64_t seq, int duplicate, void *ctx);
/* Append one event with id "<tenant>/<job>/<what>"; data is stolen; o (or a
 * new OP_EVENT op when NULL) is consumed either way. */
cb_status ctl_emit(cb_control *c, cjob *j, cb_event_type type, const char *what, json_t *data,
                   op *o);

/* dispatch.c */
/* The invocation commands of refs[0..n) appended to `into` (an array), each
 * as {"id": message id, "command": the command}: a command takes up to
 * batch-size tasks in a row of one function and step (n / CTL_BATCH_SPREAD,
 * at most CTL_BATCH_MAX; one for a plan of fewer than 2 * CTL_BATCH_SPREAD;
 * up to CTL_BATCH_MAX whatever n while the job's backend has CTL_BATCH_BUSY
 * other invocations in flight, unless the job is a DAG), so the same plan
 * on a backend as busy
 * makes the same commands and ids
 * (<tenant>/<job>/<task>/<attempt>, "+<n>" for n tasks from that one). A
 * task whose input cannot be made is left out (logged by nobody: its attempt
 * times out like a lost command). */
/* member: a pool's job, the pool index of the member the commands go to
 * (their function names it as backend); -1: the function's own backend. */
void ctl_invoke_cmds(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                     const cb_task_ref *refs, size_t n, int member, json_t *into);
/* A pool's job: the pool index of a task record's member (its backup's
 * when `backup`), or -1 (not a pool's job; no member: 0 then). */
int ctl_task_member(const cjob *j, const cb_job_state *js, const cb_task_state *t, bool backup);
/* Put each command of ctl_invoke_cmds (borrowed array) on cb.invoke.<its
 * backend>. A cached task (memo.h) whose memo key matches an earlier
 * success is no command: ctl_invoke_cmds adds {"what", "memoized": the
 * success's data} instead, and this appends that success (id
 * "<tenant>/<job>/<task>/<attempt>/memoized"); the others carry their key. */
void ctl_put_invokes(cb_control *c, cjob *j, json_t *invokes);
/* Append the plan's dispatches (cb.tasks.dispatched, in chunks); their
 * commands are put once each append is confirmed. */
void ctl_dispatch(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                  const cb_sched_plan *p);

/* completion.c */
/* Publish the done message, then (on its confirmation) the terminal event.
 * by_ref: a map's result is too large to inline and its outputs are not
 * parsed (mirror.h): reference it without building it. */
void ctl_end_job(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                 const cb_sched_plan *p, int64_t now, bool by_ref);
cb_status ctl_emit_terminal(cb_control *c, cjob *j, json_t *terminal);

/* partition.c */
/* An objects input's flow before it has its plan: true when the mirror has
 * the whole plan and the flow now has it (plan the job); false while a page
 * is under way or the job failed (no objects, storage refused: its end is
 * on its way). */
bool ctl_partition(cb_control *c, cjob *j, const cb_job_state *js);
/* Drop j's run (a storage call in flight frees it when it comes back). */
void ctl_partition_forget(cjob *j);

/* claim.c: partitions taken and given up with failover (docs/scale.md,
 * "Ownership"), when the engine has a name. */
cb_status ctl_claims_start(cb_control *c);
void ctl_claims_stop(cb_control *c);
/* pt's log folded a claim (cb_mirror_fence): its own (pt goes live once
 * caught up) or another engine's (pt is given up at once). */
void ctl_claim_folded(cb_control *c, ctl_part *pt);
/* The source and the id suffix of the controller's decisions in partition
 * k: "cbcore/engine" and "" without a name; "cbcore/engine/<claim>" and
 * "@<claim>" with one (so that a decision a fenced owner appended never
 * de-duplicates its successor's). */
void ctl_source(const cb_control *c, unsigned k, char *source, size_t size, char *suffix,
                size_t ssize);

/* control.c: a partition's jobs into the mirror from the store's snapshot
 * (its position and its fence with them); its log read from there. */
cb_status ctl_part_load(cb_control *c, ctl_part *pt);
/* pt's reader has caught up, or its claim is folded: live when both. */
void ctl_part_check_live(cb_control *c, ctl_part *pt);
/* Stop driving pt: its reader closed, its jobs forgotten (here and in the
 * mirror), its accounts' shares given back. */
void ctl_part_drop(cb_control *c, ctl_part *pt);
/* The accounts' limits again for the partitions it now drives. */
void ctl_shaping_reshare(cb_control *c);

/* recovery.c */
void ctl_recover(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb);

#endif /* CB_CONTROL_INT_H */
