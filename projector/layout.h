/* projector/layout.h - how entities lie in the store's databases (store.h),
 * for the write batch (batch.c), the read views (views.c) and the format
 * migration (migrate.c):
 *
 *   jobs    "tenant/job"                       -> cb_job_state as JSON
 *   tasks   "tenant/job" NUL index (4 bytes BE) -> cb_task_state as JSON
 *   open    the same key, empty value, while the task is open (not yet
 *           succeeded or skipped): a job's open tasks without a full scan
 *   active  "tenant/job" -> its deadline in ns (decimal), while not finished
 *   meta    "applied_seq" (partition 0's position), "applied_seq.<k>" (partition
 *           k's: docs/scale.md), "format"
 *   memo    "tenant/<memo key>" -> {"at", "job", "task"}: the task of a cached
 *           job that succeeded with that memo key (docs/engine.md, Memoized
 *           tasks), and when; its output is in that task's record
 *   costs   "tenant/<tenant>", "backend/<account>" -> a cb_cost total (JSON,
 *           cb_cost.h): what the invocations of the tenant's jobs, of the
 *           account, have cost, summed as the outcomes are folded
 *
 * Index keys sort a job's tasks in index order. Pure apart from the reads
 * through a transaction it is given. */
#ifndef CB_LAYOUT_H
#define CB_LAYOUT_H
#define CB_LAYOUT_POSITION_KEY_MAX 24
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_status.h"
#include "fence.h"
#include "fold.h"
#include "store.h"

#define CB_JOB_KEY_MAX  (2 * CB_NAME_MAX + 2)
#define CB_TASK_KEY_MAX (CB_JOB_KEY_MAX + 5)

/* The tasks key of task idx of job `job` (klen bytes, < CB_JOB_KEY_MAX) into
 * buf (>= CB_TASK_KEY_MAX bytes). Returns its length. */
size_t cb_layout_task_key(const char *job, size_t klen, uint32_t idx, unsigned char *buf);
#define CB_MEMO_KEY_MAX (CB_NAME_MAX + 66)
/* The memo key of `hex` (64 hex digits) of `tenant` into buf (>=
 * CB_MEMO_KEY_MAX bytes). Returns its length, 0 if hex is not 64 digits. */
size_t cb_layout_memo_key(const char *tenant, const char *hex, char *buf);
#define CB_COST_KEY_MAX (CB_NAME_MAX + 16)
/* The costs key of a total: kind "tenant" or "backend" and its name into buf
 * (>= CB_COST_KEY_MAX bytes). Returns its length, 0 if it does not fit. */
size_t cb_layout_cost_key(const char *kind, const char *name, char *buf);
/* The index in a tasks key whose job part is plen bytes with its NUL. */
uint32_t cb_layout_task_index(const unsigned char *key, size_t plen);
/* Read and parse a JSON record. CB_ENOTFOUND, CB_EIO (not JSON). */
CB_NODISCARD cb_status cb_layout_load_json(cb_txn *t, cb_db db, const void *key, size_t klen,
                                           json_t **out);
/* Whether a task in this status is in the open index. */
bool cb_layout_task_open(cb_task_status s);

/* The meta key of a partition's position into buf (CB_LAYOUT_POSITION_KEY_MAX
 * bytes); returns its length. */
size_t cb_layout_position_key(unsigned partition, char *buf);
/* The meta key of a partition's last claim (fence.h; "claim", "claim.<k>";
 * the value is the claim's token) into buf (CB_LAYOUT_POSITION_KEY_MAX
 * bytes); returns its length. */
size_t cb_layout_claim_key(unsigned partition, char *buf);
/* The last claim of a partition as t sees it into f ("" when none). */
CB_NODISCARD cb_status cb_layout_load_fence(cb_txn *t, unsigned partition, cb_fence *f);

#endif /* CB_LAYOUT_H */
