/* projector/joblog.h - one job's events from the log, without reading the
 * whole log: from the job's first position (first_seq in its record in the
 * store) to its terminal event. On RabbitMQ a filtered read still passes
 * every event of the stream through the client (the filter is applied
 * there), so where the job starts and ends is what bounds the cost; on NATS
 * the filter is the server's and the start spares the server the scan.
 * For `cb replay --job`, the benchmarks' read-back and the API's timeline.
 *
 * Threading: the broker's loop, like cb_broker_read. */
#ifndef CB_JOBLOG_H
#define CB_JOBLOG_H
#include <stdint.h>

#include "broker.h"
#include "cb_status.h"
#include "store.h"

typedef struct cb_joblog cb_joblog;

/* The job's first log position from its record in `st` (NULL: no store),
 * or 0 when unknown (no store, no record, or a job folded before positions
 * were kept): the read then starts at the first event kept. *partition: the
 * partition whose log holds it (docs/scale.md), from its record, else where
 * a job of that name lands among `partitions`. */
uint64_t cb_joblog_first_seq(cb_store *st, const char *tenant, const char *job, unsigned partitions,
                             unsigned *partition);

/* Read job tenant/job's events, in the log of `partition`, from position `from_seq` (0: the first
 * event kept): fn(m, CB_OK, ctx) for each, in log order, then fn(NULL, s, ctx) once: CB_OK after
 * its terminal event (succeeded, failed, cancelled, rejected) or, when `to_end` or the job has not
 * ended, at the end of the log as it was when the read started; an error otherwise. Late reports
 * that follow the terminal event are read only with `to_end`. On CB_OK *out is owned:
 * cb_joblog_close() once, from inside any call of fn (no call follows then) or after the final one.
 */
CB_NODISCARD cb_status cb_joblog_read(cb_broker *b, unsigned partition, const char *tenant,
                                      const char *job, uint64_t from_seq, int to_end,
                                      cb_read_cb *fn, void *ctx, cb_joblog **out);
/* A page after a previous one: the job's events at positions after
 * `after_seq`, as above (to its terminal event, or the end of the log as it
 * was), without the check that the read starts the job. */
CB_NODISCARD cb_status cb_joblog_read_after(cb_broker *b, unsigned partition, const char *tenant,
                                            const char *job, uint64_t after_seq, cb_read_cb *fn,
                                            void *ctx, cb_joblog **out);
void cb_joblog_close(cb_joblog *l); /* accepts NULL */

#endif /* CB_JOBLOG_H */
