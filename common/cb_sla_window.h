/* common/cb_sla_window.h - the values an SLA aggregate runs over
 * (docs/sla.md): the last `count` values, or those of the last `ms`
 * milliseconds before the newest; avg, min, max, sum, count and
 * percentiles (nearest rank) of them. Pure: time is the values' own (the
 * events' times), never a clock.
 *
 * Ownership: the caller owns the window (init/cleanup). Not thread-safe. */
#ifndef CB_SLA_WINDOW_H
#define CB_SLA_WINDOW_H
#include <stddef.h>
#include <stdint.h>

#include "cb_sla_expr.h"
#include "cb_status.h"

#define CB_SLA_WINDOW_MAX 100000 /* values kept at most (the schema's bound on count) */

typedef struct cb_sla_window {
    int64_t span_ns; /* > 0: keep the values of the last span_ns */
    size_t limit;    /* keep at most this many (count windows: the count) */
    int64_t *t;      /* ring of times and values */
    double *v;
    size_t cap, head, n; /* head: the oldest */
} cb_sla_window;

/* A window of the last `count` values (count > 0) or of the last span_ms
 * (then at most CB_SLA_WINDOW_MAX values, the oldest dropped first). */
void cb_sla_window_init(cb_sla_window *w, int64_t span_ms, size_t count);
void cb_sla_window_cleanup(cb_sla_window *w);

/* Add a value at time t_ns (values come in time order; an older one is
 * taken as of the newest time). CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_window_add(cb_sla_window *w, int64_t t_ns, double v);
/* Drop what is older than the span before now_ns (periodic evaluation). */
void cb_sla_window_trim(cb_sla_window *w, int64_t now_ns);

size_t cb_sla_window_size(const cb_sla_window *w);
/* The aggregate of the values now in the window: 0 and *out, or -1 when it
 * is empty (count of an empty window is 0). */
int cb_sla_window_agg(const cb_sla_window *w, cb_sla_agg agg, double *out);

#endif /* CB_SLA_WINDOW_H */
