/* common/cb_offload.h - run blocking calls (broker admin RPCs, connects) on a
 * helper thread and get the result back on the loop. One thread, FIFO.
 * Create/submit/destroy on the loop thread. */
#ifndef CB_OFFLOAD_H
#define CB_OFFLOAD_H
#include "cb_mailbox.h"
#include "cb_status.h"

typedef struct cb_offload cb_offload;
typedef struct cb_offload_job cb_offload_job;

/* Embed first in your job struct. `work` runs on the helper thread; then
 * `mail.fn` runs on the loop (cancelled = 0), or with cancelled = 1 if the
 * offload or its mailbox was closed first. mail.fn owns and frees the job. */
struct cb_offload_job {
    cb_mail mail;
    cb_offload_job *qnext;
    void (*work)(cb_offload_job *j);
};

/* Results are posted to `mb` (a reference is taken). */
CB_NODISCARD cb_status cb_offload_create(cb_mailbox *mb, cb_offload **out);
/* Queue a job. Steals j. */
void cb_offload_submit(cb_offload *o, cb_offload_job *j);
/* Run every job already queued (blocks until they are done), then join the
 * thread. Their results are posted as usual. Jobs submitted afterwards are
 * cancelled. Accepts NULL. */
void cb_offload_destroy(cb_offload *o);

#endif /* CB_OFFLOAD_H */
