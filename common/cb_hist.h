/* common/cb_hist.h - a latency histogram with fixed buckets (1 ms to 10 min),
 * the shape Prometheus histograms take: a daemon observes, reports it as
 * JSON (cb.stats), and cb-api renders it (docs/api.md, "Metrics").
 * Pure; one thread at a time (the owner's). */
#ifndef CB_HIST_H
#define CB_HIST_H
#include <jansson.h>
#include <stdint.h>

#define CB_HIST_BUCKETS 17

typedef struct cb_hist {
    uint64_t counts[CB_HIST_BUCKETS + 1]; /* per bucket (not cumulative); the last: above all */
    uint64_t count;
    double sum; /* seconds */
} cb_hist;

/* The buckets' upper bounds in seconds, ascending: i in [0, CB_HIST_BUCKETS). */
double cb_hist_bound(int i);
void cb_hist_observe(cb_hist *h, double seconds);
/* {"le": [bounds...], "counts": [cumulative per bound, then +Inf], "sum", "count"}
 * (new reference; NULL on ENOMEM). */
json_t *cb_hist_json(const cb_hist *h);

#endif /* CB_HIST_H */
