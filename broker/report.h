/* broker/report.h - a daemon's figures, published every period on
 * cb.stats.<daemon>.<id> (not persisted) for cb-api's /metrics
 * (docs/api.md, "Metrics"): {"daemon", "id", "time", "period_ms", "broker":
 * the connection's health, and the members the daemon's `fill` adds}. The
 * first report goes out at once, then one per period ($CB_STATS_MS, default
 * 5000). Knows nothing of what the figures mean.
 *
 * Threading: the loop's. */
#ifndef CB_REPORT_H
#define CB_REPORT_H
#include <jansson.h>

#include "broker.h"
#include "cb_status.h"

struct event_base;
typedef struct cb_report cb_report;

/* Add the daemon's figures to `into` (an object). */
typedef void cb_report_fill_fn(json_t *into, void *arg);

/* `daemon` and `id` are names ([A-Za-z0-9_-]; id NULL: HOST-PID); copied. On CB_OK *out is
 * owned: cb_report_free(). Errors: CB_EINVAL, CB_ENOMEM. */
CB_NODISCARD cb_status cb_report_start(struct event_base *base, cb_broker *b, const char *daemon,
                                       const char *id, cb_report_fill_fn *fill, void *arg,
                                       cb_report **out);
void cb_report_free(cb_report *r); /* accepts NULL */

#endif /* CB_REPORT_H */
