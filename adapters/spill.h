/* adapters/spill.h - outputs too large for the log go to storage: the worker
 * hands a task's outputs (one per item) here before it records the
 * outcome; while their text is over the storage's inline limit
 * (cb_storage_inline_max, 64 KiB by default), the largest item is written
 * to
 *
 *     s3://RESULTS_BUCKET/results/TENANT/JOB/TASK.ATTEMPT.ITEM.json
 *
 * and replaced in the outputs by a reference (docs/storage.md):
 *
 *     {"$cb_ref": "s3://...", "size": BYTES, "sha256": "HEX"}
 *
 * The fold, the engine and the results carry references like any value;
 * the runtimes resolve them in a function's input, `cb result` in a result.
 * The results bucket is made on first use when missing.
 *
 * Ownership: the caller keeps `outputs`; the callback gets a new array it
 * owns (or NULL on failure, with the reason). The callback runs once, on
 * the loop, never from inside cb_spill(), once every write has ended.
 * Threading: the loop's. */
#ifndef CB_SPILL_H
#define CB_SPILL_H
#include <jansson.h>
#include <stdint.h>

#include "cb_status.h"

struct cb_storage;
struct event_base;

typedef void cb_spill_done(cb_status s, json_t *outputs, const char *error, void *ctx);

/* Whether outputs' text is over the inline limit (cheap for small ones). */
int cb_spill_needed(const struct cb_storage *st, const json_t *outputs);

/* Start writing (call it when cb_spill_needed). Errors here, with the
 * reason in err (the callback then never runs): no write could start
 * (CB_ENOMEM, or the storage refused the first: its status). */
CB_NODISCARD cb_status cb_spill(struct cb_storage *st, const char *tenant, const char *job,
                                uint32_t task, uint32_t attempt, const json_t *outputs,
                                cb_spill_done *done, void *ctx, char *err, size_t errlen);

#endif /* CB_SPILL_H */
