/* engine/mirror.h - the controller's in-memory copy of the jobs it drives:
 * each unfinished job's state and task records, kept up to date by the
 * same pure fold as the projector's (fold.h), event by event in log order.
 *
 * The controller plans from here, not from the LMDB projection: an event
 * the broker has stored is durable already, so the commit of the projection
 * is no gate on a step. The mirror starts from one consistent snapshot of
 * the store (its unfinished jobs at the log position `seq` it reflects,
 * cb_mirror_load_job/_task) and folds every later event (cb_mirror_apply),
 * so after a restart it holds exactly what the projector would at the same
 * position. A job enters with its cb.job.submitted (or from the snapshot)
 * and leaves when the controller has finished with it (cb_mirror_drop);
 * events of jobs it does not hold are ignored, and a repeated submission of
 * a job it dropped a moment ago, or of one that ended before the snapshot
 * (cb_mirror_set_seen), is not taken for a new job.
 *
 * Pure: no I/O, no clock. Owns its jobs and their records; pointers it
 * returns stay valid until the next cb_mirror_apply, _load_* or _drop.
 * Not thread-safe: one loop. */
#ifndef CB_MIRROR_H
#define CB_MIRROR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "cb_map.h"
#include "cb_status.h"
#include "fence.h"
#include "fold.h"
#include "scheduler.h"
#include "tasklist.h"

#define CB_MIRROR_KEY_MAX (2 * CB_NAME_MAX + 2)

typedef struct cb_mirror cb_mirror;

typedef struct cb_mirror_job {
    char key[CB_MIRROR_KEY_MAX]; /* "tenant/job" */
    cb_job_state js;
    cb_task_list tasks;         /* every record of the job, ascending index */
    size_t done;                /* tasks.tasks[0 .. done) are all succeeded or skipped */
    cb_map kept;                /* task index -> its output as text, not yet parsed */
    size_t kept_bytes;          /* their length */
    struct cb_mirror_job *gone; /* the mirror's own: a list of jobs it is removing */
} cb_mirror_job;

/* NULL when out of memory. */
cb_mirror *cb_mirror_new(void);
void cb_mirror_free(cb_mirror *m); /* accepts NULL */

/* Whether job `key`, whose cb.job.submitted is at log position seq, was
 * submitted before (at an earlier position, so this one is a repeat the
 * mirror must not take for a new job). The mirror asks for every
 * submission of a job it neither holds nor dropped: a job that ended before
 * the snapshot is not in it. Without it every such submission is new. */
typedef bool cb_mirror_seen_fn(const char *key, uint64_t seq, void *arg);
void cb_mirror_set_seen(cb_mirror *m, cb_mirror_seen_fn *fn, void *arg);

/* Loading a snapshot: a job (its fields are taken: *js is zeroed), then its
 * records in ascending index order (copied). A job already held is replaced.
 * Errors: CB_ENOMEM, CB_EINVAL (key too long, record out of order). */
CB_NODISCARD cb_status cb_mirror_load_job(cb_mirror *m, const char *key, cb_job_state *js);
CB_NODISCARD cb_status cb_mirror_load_task(cb_mirror *m, const char *key, uint32_t index,
                                           const cb_task_state *t);

/* Fold `ev` at position `seq` of partition's log (> the last one; 0 if
 * unknown; docs/scale.md: a job's events are all in its partition). *job: the
 * job it concerned if held (else NULL); *applied as in cb_fold_apply.
 * Errors: CB_ENOMEM (the job may be partly updated: the caller must rebuild
 * from a snapshot); an event the fold rejects is ignored (CB_OK). */
CB_NODISCARD cb_status cb_mirror_apply(cb_mirror *m, unsigned partition, const cb_event *ev,
                                       uint64_t seq, cb_mirror_job **job, int *applied);

/* The last position of a partition's log folded (or loaded), 0 if none. */
uint64_t cb_mirror_seq(const cb_mirror *m, unsigned partition);
void cb_mirror_set_seq(cb_mirror *m, unsigned partition, uint64_t seq);
/* A partition's last claim folded (or loaded with its snapshot; fence.h):
 * the mirror folds a cb.partition.claimed into it (*applied = 1, *job
 * NULL) and ignores the events it does not admit, as the projector does. */
const cb_fence *cb_mirror_fence(const cb_mirror *m, unsigned partition);
void cb_mirror_set_fence(cb_mirror *m, unsigned partition, const cb_fence *f);
/* Forget every job of a partition (no tombstone: they may be loaded again
 * from a snapshot), its position and its fence: it is driven elsewhere. */
void cb_mirror_forget_partition(cb_mirror *m, unsigned partition);

cb_mirror_job *cb_mirror_get(cb_mirror *m, const char *key);
/* Forget a job; its later events are ignored, and so is a repeat of its
 * submission (the last CB_MIRROR_TOMBSTONES dropped jobs are remembered). */
#define CB_MIRROR_TOMBSTONES 4096
void cb_mirror_drop(cb_mirror *m, const char *key);
/* A job's status: as held, as it was when dropped (remembered for the last
 * CB_MIRROR_TOMBSTONES), else CB_JOB_ABSENT (unknown here). */
cb_job_status cb_mirror_status(cb_mirror *m, const char *key);
size_t cb_mirror_count(const cb_mirror *m);
/* fn(job, arg) for every job held; it must not drop or apply. */
void cb_mirror_each(cb_mirror *m, void (*fn)(cb_mirror_job *j, void *arg), void *arg);

/* Outputs kept as text until something needs them. A map's outputs matter
 * only for its result and a reduce's input, so the controller folds such a
 * job's outcome with the output left out (its record's output is then
 * null) and keeps the output's text here: parsing every output as it
 * arrives was a third of the engine's time on large maps, and the text
 * takes less memory than the parsed value. cb_mirror_keep_output copies
 * the text (a later one for the same task replaces it); cb_mirror_outputs
 * parses what is kept into the records, before the result or a reduce is
 * built. Errors: CB_ENOMEM (nothing lost: call again), CB_EINVAL (kept text
 * that is not JSON: that record's output stays null). */
CB_NODISCARD cb_status cb_mirror_keep_output(cb_mirror_job *j, uint32_t task, const char *text,
                                             size_t n);
CB_NODISCARD cb_status cb_mirror_outputs(cb_mirror_job *j);
/* The output text kept for `task` (borrowed: valid until the next
 * cb_mirror_keep_output or cb_mirror_outputs of the job), its length in *n;
 * NULL when none is kept. */
const char *cb_mirror_kept_output(cb_mirror_job *j, uint32_t task, size_t *n);

/* The job's records from the first one not yet succeeded or skipped: what
 * the scheduler needs of a call, map or map_reduce job (a DAG needs
 * cb_task_list_view of all). Borrowed, valid as the job's records. */
cb_task_view cb_mirror_open_view(cb_mirror_job *j);

#endif /* CB_MIRROR_H */
