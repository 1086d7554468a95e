/* engine/control.h - the controllers: drive every active job to its end.
 *
 * The controller plans from memory (mirror.h): it loads the store's
 * unfinished jobs once at start, then folds every event of the log as its
 * own reader delivers it. Short loop: each event wakes its job, visited on
 * the next loop turn. Long loop: every reconcile_ms every job held is
 * visited (due retries, timeouts). A visit asks the scheduler (scheduler.h)
 * for a plan and appends the plan as events with deterministic ids; only
 * when cb.tasks.dispatched is confirmed are the invocation commands put on
 * cb.invoke.<backend>. After appending, a job is not planned again until
 * the mirror has folded those events (or await_ms passed), so it never
 * decides twice on the same state. Nothing is decided before the reader has
 * caught up with the log once after a start.
 *
 * On a terminal plan the done message (cb.done.<tenant>.<job>) is published
 * first and the terminal event appended once it is confirmed: a crash in
 * between re-plans the same end and repeats both (same ids).
 *
 * Traffic shaping: per backend, max_concurrency (invocations in flight over
 * all jobs) and rate_per_s (token bucket) from the configuration. When jobs
 * compete for a backend, free capacity goes to them in rank order: priority
 * (raised by aging while a job waits), then deadline (sla.deadline_ms, else
 * timeout_ms), then submission (cb_sched_rank_before): a job's plan that was
 * held back records what it wants, and worse-ranked jobs leave that much.
 *
 * Threading: the caller's loop; not thread-safe. */
#ifndef CB_CONTROL_H
#define CB_CONTROL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "fold.h"
#include "cb_status.h"
#include "policy.h"
#include "cb_config.h"
#include "store.h"

struct event_base;
struct cb_storage;
typedef struct cb_control cb_control;

typedef struct cb_control_opts {
    int64_t reconcile_ms;       /* long loop period; default 1000 */
    int64_t await_ms;           /* longest wait for the mirror to fold our appends; default 2000 */
    int64_t progress_ms;        /* least time between progress messages of a job; default 200 */
    size_t inline_result_max;   /* larger results are referenced, not inlined; default 256 KiB */
    int64_t aging_ms;           /* a job waiting for capacity gains one priority level per
                                 * aging_ms, so none starves; default 10000 (0: no aging) */
    int64_t memo_ttl_s;         /* a cached task reuses outputs at most this old; default
                                 * CB_MEMO_TTL_S (7 days; 0: never reuse) */
    cb_policy_defaults policy;  /* for what descriptors leave out */
    struct cb_storage *storage; /* borrowed: where objects inputs are listed; NULL: such
                                 * jobs fail with the reason */
    unsigned partitions;        /* the deployment's (docs/scale.md); default 1 */
    uint64_t owned;             /* the partitions it drives (bit k: partition k): it reads
                                 * their logs into its mirror and shapes each account
                                 * with their share of its limits; 0: all of them */
    const char *name;           /* borrowed: this engine's name among engines that share
                                 * the partitions with failover (docs/scale.md,
                                 * "Ownership"); NULL: it drives `owned`, fixed */
    int64_t beat_ms;            /* with a name: its beat period; an engine not heard for
                                 * three is gone; default 1000 */
} cb_control_opts;

typedef struct cb_control_stats {
    uint64_t visits, plans, events, dispatched, invokes, done, errors;
    uint64_t memoized; /* tasks that took an earlier output instead of an invocation */
    uint64_t resets;   /* broker connections dropped: confirmed appends never came back */
    size_t jobs;       /* in memory now */
    uint64_t log_seq;  /* the last log position read (cb_control_stats_get fills it) */
} cb_control_stats;

void cb_control_opts_init(cb_control_opts *o);
/* Load the store's unfinished jobs (before the loop serves: this reads the
 * store) and start the reader and both loops. b, st and reg are borrowed
 * and outlive the controller.
 * On CB_OK *out is owned: cb_control_free(). */
CB_NODISCARD cb_status cb_control_start(struct event_base *base, cb_broker *b, cb_store *st,
                                        const cb_config *reg, const cb_control_opts *o,
                                        cb_control **out);
/* Whether it drives partition k (cb_control_opts.owned, or claimed). */
int cb_control_drives(const cb_control *c, unsigned k);
/* With a name (cb_control_opts.name): the engine that owns partition k as
 * this one sees the live engines (docs/scale.md), its own name included;
 * NULL without a name. Borrowed until the next loop turn. */
const char *cb_control_owner(const cb_control *c, unsigned k);
/* Its name, or NULL. */
const char *cb_control_name(const cb_control *c);
/* Visit job "tenant/job" soon (after a submission or a lifecycle command). */
void cb_control_touch(cb_control *c, const char *key);
/* Dispatch nothing for the job from now on (held = 1) or again (0): the
 * service holds a job before it appends cb.job.suspended, so no dispatch
 * follows the suspension in the log even before the mirror has it. */
void cb_control_hold(cb_control *c, const char *key, int held);
/* The job's end when it is decided (its done message is out or on the way)
 * but the log may not show it yet: "succeeded", "failed",
 * "cancelled"; else NULL. Static string. */
const char *cb_control_ending(cb_control *c, const char *key);
/* What the controller knows of job "tenant/job" (its mirror, which is often
 * ahead of the store): 1 and *out filled, or 0 when it does not hold it
 * (then ask the store). A job it finished a moment ago is known by status
 * only (applied 0, cancel_requested false). */
typedef struct cb_control_brief {
    cb_job_status status;
    bool cancel_requested;
    uint64_t applied;       /* events applied to it */
    uint32_t log_partition; /* the partition whose log holds it, */
    bool has_partition;     /* if known (an ended job's status alone does not say) */
} cb_control_brief;
int cb_control_brief_of(cb_control *c, const char *key, cb_control_brief *out);
const cb_control_stats *cb_control_stats_get(cb_control *c);
/* The tenant's jobs the controller drives, that is its open jobs (a job is
 * driven from its acceptance until it ends): for "max_open_jobs". */
unsigned cb_control_open_jobs(cb_control *c, const char *tenant);
/* Stop the loops and free; appends still in flight complete without it. */
void cb_control_free(cb_control *c);

#endif /* CB_CONTROL_H */
