/* engine/memo.h - memoized tasks (docs/engine.md, "Memoized tasks").
 *
 * A task of a cached job (`"cache": true`, or a DAG step's own `cache`) has
 * a memo key: the SHA-256 of its function's identity and its input. Its
 * invocation command carries the key, the adapter reports it with the
 * success, and the projector records which task succeeded with it
 * (projector/layout.h, "memo"). Before the engine sends such a task, it
 * looks the key up among the tenant's earlier successes; on a hit it
 * appends the success itself, with that output and "memoized", instead of
 * invoking.
 *
 * The store lags the log (docs/engine.md), so the controller also keeps the
 * recent successes it folded (cb_memo): a job submitted just after an
 * identical one ended finds its outputs although the projector may not have
 * them yet. Bounded in entries and bytes, the oldest going first.
 *
 * Pure: no I/O, no clock. cb_memo is not thread-safe (the controller's loop);
 * the functions without one are. */
#ifndef CB_ENGINE_MEMO_H
#define CB_ENGINE_MEMO_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

#define CB_MEMO_RECENT_MAX   65536              /* successes kept in memory */
#define CB_MEMO_RECENT_BYTES (32 * 1024 * 1024) /* and the size of their outputs' text */
#define CB_MEMO_TTL_S        (7 * 24 * 3600)    /* default: how long an output may be reused */

/* Whether a task of job `spec` (a DAG step's tasks: with that step's spec,
 * else NULL) is cached: the step's "cache" when it has one, else the job's. */
bool cb_memo_wanted(const json_t *spec, const json_t *step_spec);

/* The memo key of running `function` (a job's function object) on `items`
 * (the task's input, as its command carries it): SHA-256 in hex over the
 * canonical JSON (keys sorted, compact) of the function's identity — its
 * backend, name, shipped code's sha256 and Python version; not its timeout
 * or memory, which do not change a successful output — and the items.
 * Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_memo_key(const json_t *function, const json_t *items, char hex[65]);

/* The digest of a job's work, for a re-run (`retry_of`, docs/engine.md):
 * the descriptor without what may change between a job and its re-run —
 * job_id, retry_of, cache, retry, timeout_ms, parallelism, priority,
 * tolerated_failures, sla and labels; its functions' timeout_ms and
 * memory_mb; its steps' retry, timeout_ms and cache. Equal digests: the
 * same tasks, with the same indices and inputs. Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_memo_work_digest(const json_t *spec, char hex[65]);

typedef struct cb_memo cb_memo;

/* NULL when out of memory. */
cb_memo *cb_memo_new(size_t max_entries, size_t max_bytes);
void cb_memo_free(cb_memo *m); /* accepts NULL */

/* Remember that task `task` of job `job` of `tenant` succeeded at at_ns with
 * memo key `hex` and this output text (copied). A later one for the same
 * key replaces it. An output larger than the byte bound is not kept.
 * Errors: CB_ENOMEM, CB_EINVAL (hex is not 64 hex digits). */
CB_NODISCARD cb_status cb_memo_put(cb_memo *m, const char *tenant, const char *hex, const char *job,
                                   uint32_t task, int64_t at_ns, const char *text, size_t n);

/* The output text remembered for the tenant's `hex`, if it succeeded no
 * earlier than not_before_ns: borrowed until the next cb_memo_put; its length
 * in *n, the task it came from in *job (borrowed too) and *task. NULL when
 * none is remembered. */
const char *cb_memo_get(const cb_memo *m, const char *tenant, const char *hex,
                        int64_t not_before_ns, const char **job, uint32_t *task, size_t *n);

size_t cb_memo_count(const cb_memo *m);

#endif /* CB_ENGINE_MEMO_H */
