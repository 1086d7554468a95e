/* api/metrics_text.h - cb-api's /metrics in the Prometheus text format
 * (version 0.0.4), from what cb-api knows (docs/api.md, "Metrics"): the last
 * report of each daemon (broker/report.h, cb.stats) and a summary of the
 * store. Pure: the same input gives the same text; thread-safe.
 *
 * reports: {"DAEMON/ID": {"report": {...as published...}, "age_s": seconds
 * since it came}} ; store: {"position": N, "jobs": {"TENANT": {"STATE": n}},
 * "tasks": {"TENANT": {"succeeded": n, "failed": n, "running": n,
 * "waiting": n, "skipped": n, "retries": n, "timeouts": n}}, "costs":
 * {"tenants": {"TENANT": cost}, "backends": {"ACCOUNT": cost}}} (cb_cost.h)
 * or NULL (no store yet). */
#ifndef CB_API_METRICS_TEXT_H
#define CB_API_METRICS_TEXT_H
#include <jansson.h>

/* A daemon whose last report is older than this many periods is down. */
#define CB_METRICS_DOWN_PERIODS 3

/* The text (malloc'd; free()), or NULL when out of memory. */
char *cb_metrics_text(const json_t *reports, const json_t *store);

#endif /* CB_API_METRICS_TEXT_H */
