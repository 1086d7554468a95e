/* projector/jobfold.h - one job's state folded in memory from its events:
 * the job record and its task records, as the store would hold them, for
 * the state "at a point" (`cb replay --until`, the API's ?until=) without a
 * store. The same pure fold (fold.h) does the work.
 *
 * Ownership: the caller's struct; cb_jobfold_cleanup frees what it holds.
 * Not thread-safe (one owner). */
#ifndef CB_JOBFOLD_H
#define CB_JOBFOLD_H
#include <jansson.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_map.h"
#include "cb_status.h"
#include "fold.h"

typedef struct cb_jobfold {
    cb_job_state job;
    cb_map tasks; /* index -> cb_task_state* */
} cb_jobfold;

void cb_jobfold_init(cb_jobfold *f);
void cb_jobfold_cleanup(cb_jobfold *f);
/* Fold one event (at log position seq). Errors: CB_ENOMEM (the state is
 * then incomplete). An event the fold ignores is CB_OK. */
CB_NODISCARD cb_status cb_jobfold_apply(cb_jobfold *f, const cb_event *ev, uint64_t seq);
/* {"index": task record} of every task with a record (new reference, NULL
 * on ENOMEM). */
json_t *cb_jobfold_tasks_json(const cb_jobfold *f);

#endif /* CB_JOBFOLD_H */
