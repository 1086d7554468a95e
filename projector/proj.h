/* projector/proj.h - the projector: reads the log of each partition from its
 * position + 1 (applied_seq for partition 0),
 * folds it into the store in batches (bounded by count and time), and after
 * each commit announces the changed jobs on CB_PROJ_CHANGED (not persisted:
 * a lost announcement only delays a controller, whose long loop re-reads the
 * store). Runs on the caller's libevent loop; not thread-safe. */
#ifndef CB_PROJ_H
#define CB_PROJ_H
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "cb_partition.h"
#include "cb_status.h"
#include "store.h"

#define CB_PROJ_CHANGED "cb.proj.changed" /* {"seq": N, "jobs": ["tenant/job", ...]} */

struct event_base;
typedef struct cb_proj cb_proj;

typedef struct cb_proj_opts {
    size_t batch_max;    /* events per transaction; default 2000 */
    int batch_ms;        /* longest an applied event waits for its commit; default 20 */
    int gap_ms;          /* while the log is busy (over busy_rate events/s), the least
                          * time between two commits: one fsync for many events (group
                          * commit); a quiet log is committed as soon as it is read;
                          * default 10 */
    int busy_rate;       /* events/s above which the log counts as busy; default 2000 */
    int announce;        /* publish CB_PROJ_CHANGED after commits; default 1 */
    unsigned partitions; /* the deployment's (docs/scale.md): one reader per partition's
                          * log, all folded into the one store; default 1 */
    /* Called after each commit with the new applied_seq (tests, tools). */
    void (*on_commit)(uint64_t applied_seq, int caught_up, void *ctx);
    void *ctx;
} cb_proj_opts;

typedef struct cb_proj_stats {
    uint64_t applied_seq; /* partition 0's position */
    uint64_t events, applied, ignored, invalid, commits;
    uint64_t fenced;                       /* decisions after another engine's claim (fence.h) */
    uint64_t positions[CB_PARTITIONS_MAX]; /* each partition's position */
} cb_proj_stats;

void cb_proj_opts_init(cb_proj_opts *o);
/* Start folding. `b` and `st` are borrowed and must outlive the projector.
 * On CB_OK *out is owned: cb_proj_stop(). Errors: CB_EIO, CB_ENOMEM, broker errors. */
CB_NODISCARD cb_status cb_proj_start(struct event_base *base, cb_broker *b, cb_store *st,
                                     const cb_proj_opts *o, cb_proj **out);
/* Commit what is folded, stop reading, free. Accepts NULL. */
void cb_proj_stop(cb_proj *p);
const cb_proj_stats *cb_proj_stats_get(const cb_proj *p);

#endif /* CB_PROJ_H */
