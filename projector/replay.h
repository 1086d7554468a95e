/* projector/replay.h - fold the log from the start into a fresh store (the
 * same fold and batches as the live projector), for `cb replay --rebuild`,
 * `--verify` and the crash tests. Runs the caller's loop until done: call it
 * from a tool's main, not from inside a loop callback. */
#ifndef CB_REPLAY_H
#define CB_REPLAY_H
#include <stdint.h>

#include "broker.h"
#include "cb_status.h"
#include "proj.h"

struct event_base;

/* Fold every event of the logs of `partitions` partitions (docs/scale.md)
 * up to their ends as they are when each is read (and at most up to position
 * until[k] of partition k when `until` is not NULL and that is not 0) into a
 * store created in `dir` (which must not hold one). Fills *stats. Errors:
 * CB_EINVAL, CB_EIO, CB_ETIMEDOUT (no end after timeout_ms), broker errors. */
CB_NODISCARD cb_status cb_replay_rebuild(struct event_base *base, cb_broker *b, const char *dir,
                                         unsigned partitions, const uint64_t *until,
                                         int64_t timeout_ms, cb_proj_stats *stats);

#endif /* CB_REPLAY_H */
