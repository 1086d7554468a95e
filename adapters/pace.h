/* adapters/pace.h - an account's request pace: at most one request started
 * per `interval` (1 / (rate_per_s / workers), adapters/remote.h), measured
 * between the requests' actual starts.
 *
 * Two steps, because requests wait on timers that may fire late:
 *   cb_pace_slot()  when a request is queued: the time its timer is set for
 *                   (a slot one interval after the previous one reserved);
 *   cb_pace_start() when its timer fired: 0 if it may start now (and it is
 *                   recorded as started), else how long to wait still.
 * A late timer followed by an on-time one would otherwise start two
 * requests less than an interval apart (more than the limit in some
 * one-second window); cb_pace_start() holds the second back.
 *
 * Pure (times in, times out: monotonic nanoseconds), no allocation; not
 * thread-safe (one per account, on its loop). */
#ifndef CB_PACE_H
#define CB_PACE_H
#include <stdint.h>

typedef struct cb_pace {
    int64_t interval_ns;   /* 0: no pace */
    int64_t next_slot_ns;  /* the next free slot */
    int64_t last_start_ns; /* the last request started; 0: none yet */
} cb_pace;

/* The time a request that could start at `at` is to be started at (≥ at). */
int64_t cb_pace_slot(cb_pace *p, int64_t at);

/* At `now`: 0 if a request may start (recorded), else the nanoseconds to wait. */
int64_t cb_pace_start(cb_pace *p, int64_t now);

#endif
