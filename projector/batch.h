/* projector/batch.h - fold events into the store, a batch per write
 * transaction: the records a batch touches are loaded once into a working
 * set, folded in memory (fold.h), and written back with `applied_seq` in the
 * same transaction, so a crash never applies an event twice or skips one.
 * The read side is views.h, the layout layout.h, the format migrate.h.
 * Not thread-safe: one batch at a time per store, on one thread. */
#ifndef CB_BATCH_H
#define CB_BATCH_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_status.h"
#include "fold.h"
#include "store.h"

typedef struct cb_batch cb_batch;

/* What a store's batches keep between them (the working set of jobs not
 * ended): a batch takes a kept job's state from here instead of reading and
 * parsing its record again, and gives its jobs back at a successful commit
 * (with their open tasks only; ended jobs are not kept). An aborted or
 * failed batch gives nothing back, so what is kept always equals what is
 * stored. Bounded by jobs and by the size of their records: the oldest goes
 * first. Owned by the store's one writer; not thread-safe. Optional: a NULL
 * keep reads every job from the store. */
typedef struct cb_batch_keep cb_batch_keep;

#define CB_BATCH_KEEP_JOBS       16384              /* default bound: jobs kept */
#define CB_BATCH_KEEP_BYTES      (32 * 1024 * 1024) /* and the size of their records */
#define CB_BATCH_KEEP_TASK_BYTES 96                 /* an open task kept counts as this much */

/* NULL when out of memory. */
cb_batch_keep *cb_batch_keep_new(size_t max_jobs, size_t max_bytes);
void cb_batch_keep_free(cb_batch_keep *k);          /* accepts NULL */
size_t cb_batch_keep_jobs(const cb_batch_keep *k);  /* jobs kept now */
size_t cb_batch_keep_bytes(const cb_batch_keep *k); /* what they count against the bound */

typedef struct cb_batch_stats {
    uint64_t events;  /* folded into this batch */
    uint64_t applied; /* changed state */
    uint64_t ignored; /* duplicates, or not applicable to the state */
    uint64_t invalid; /* undecodable or schema-breaking: logged and skipped */
    uint64_t fenced;  /* decisions of an engine after another's claim (fence.h): skipped */
} cb_batch_stats;

/* Begin a batch (a write transaction) over st, with the jobs `keep` (NULL
 * or st's only keep) holds. On CB_OK *out is owned: end it with
 * cb_batch_commit() or cb_batch_abort(); keep outlives it. */
CB_NODISCARD cb_status cb_batch_begin(cb_store *st, cb_batch_keep *keep, cb_batch **out);
/* Decode and fold one log message at position seq (0: unknown). A message
 * that does not decode, or whose data breaks the rules, is counted invalid,
 * logged, and skipped: CB_OK. `partition`: the log it was read from. Errors: CB_ENOMEM, CB_EIO
 * (abort the batch). */
CB_NODISCARD cb_status cb_batch_apply_raw(cb_batch *b, unsigned partition, const void *data,
                                          size_t len, uint64_t seq);
/* Fold a decoded event read from the log of `partition`. *applied as in
 * cb_fold_apply; an event that does not belong in that log
 * (cb_fold_in_partition) is counted invalid, logged, and skipped (CB_EINVAL). */
CB_NODISCARD cb_status cb_batch_apply(cb_batch *b, unsigned partition, const cb_event *ev,
                                      uint64_t seq, int *applied);
const cb_batch_stats *cb_batch_stats_get(const cb_batch *b);
/* The "tenant/job" keys changed in this batch, as a new JSON array. */
json_t *cb_batch_changed_jobs(const cb_batch *b);
/* Partition k's (1 <= k < CB_PARTITIONS_MAX) position to write with the
 * batch: the last of its events applied (docs/scale.md). */
void cb_batch_position(cb_batch *b, unsigned partition, uint64_t seq);
/* Write the working set, applied_seq (partition 0's position, if not 0) and
 * the other partitions' positions given, commit, free b (also on failure).
 * Errors: CB_EIO, CB_ENOMEM. */
CB_NODISCARD cb_status cb_batch_commit(cb_batch *b, uint64_t applied_seq);
void cb_batch_abort(cb_batch *b); /* accepts NULL */

#endif /* CB_BATCH_H */
