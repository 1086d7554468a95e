/* projector/fence.h - who decides for a partition, as its log says
 * (docs/scale.md, "Ownership with failover"). Pure: no I/O, no allocation.
 *
 * An engine that takes partition k appends cb.partition.claimed {claim,
 * engine, partition} to k's log (subject CB_CLAIM_TENANT.CB_CLAIM_JOB);
 * `claim` is its token "<engine>.<number>", new for every claim it makes,
 * and every decision it appends there has source "cbcore/engine/<claim>".
 * Every fold of a partition's log (the projector's batch, the engine's
 * mirror, a replay) keeps one cb_fence for it and asks cb_fence_admits()
 * before an event: from a claim on, the decisions of any other claim are
 * ignored. The log orders them, so every reader ignores the same events: a
 * stale owner (paused, cut off) that appends after its successor's claim
 * changes nothing anywhere. Events without a claim in their source (intake
 * "cbcore/engine", adapters, cb-sla, an engine with a fixed set of
 * partitions) are always admitted.
 *
 * Thread-safety: a cb_fence is a value; the functions touch only what they
 * are given. */
#ifndef CB_FENCE_H
#define CB_FENCE_H
#include <stdbool.h>
#include <stddef.h>

#include "cb_event.h"
#include "cb_status.h"

#define CB_CLAIM_TENANT     "_cb" /* reserved: tenant names may not begin with '_' */
#define CB_CLAIM_JOB        "claims"
#define CB_CLAIM_ENGINE_MAX 64 /* an engine's name in a claim (schemas/event.json) */
#define CB_CLAIM_MAX        (CB_CLAIM_ENGINE_MAX + 22) /* "<engine>.<number>" and NUL */
#define CB_ENGINE_SOURCE    "cbcore/engine"

typedef struct cb_fence {
    char claim[CB_CLAIM_MAX]; /* the last claim folded; "": none yet */
} cb_fence;

/* The claim a source speaks for: "cbcore/engine/<claim>" -> "<claim>";
 * NULL for any other source (may be NULL). Borrowed from source. */
const char *cb_fence_claim_of(const char *source);
/* Whether ev may be folded after f's claim. */
bool cb_fence_admits(const cb_fence *f, const cb_event *ev);
/* Fold a cb.partition.claimed event read from the log of `partition`: f
 * takes its claim. CB_EINVAL (f unchanged) when it is not a claim of that
 * partition (wrong type, partition, or a token that is not one). */
CB_NODISCARD cb_status cb_fence_claim(cb_fence *f, const cb_event *ev, unsigned partition);
/* Whether s is a claim token: "<name of 1..64>.<1..20 digits>". */
bool cb_fence_token_valid(const char *s);

#endif /* CB_FENCE_H */
