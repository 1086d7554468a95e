/* common/cb_hist.c - latency histograms (see cb_hist.h). */
#include "cb_hist.h"

static const double bounds[CB_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 600};

double cb_hist_bound(int i)
{
    return i >= 0 && i < CB_HIST_BUCKETS ? bounds[i] : 0;
}

void cb_hist_observe(cb_hist *h, double seconds)
{
    int i = 0;
    if (seconds < 0)
        seconds = 0;
    while (i < CB_HIST_BUCKETS && seconds > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

json_t *cb_hist_json(const cb_hist *h)
{
    json_t *le = json_array(), *counts = json_array();
    uint64_t acc = 0;
    int bad = !le || !counts;
    for (int i = 0; !bad && i <= CB_HIST_BUCKETS; i++) {
        acc += h->counts[i];
        if (i < CB_HIST_BUCKETS)
            bad |= json_array_append_new(le, json_real(bounds[i])) != 0;
        bad |= json_array_append_new(counts, json_integer((json_int_t)acc)) != 0;
    }
    if (bad) {
        json_decref(le);
        json_decref(counts);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:f, s:I}", "le", le, "counts", counts, "sum", h->sum, "count",
                     (json_int_t)h->count);
}
