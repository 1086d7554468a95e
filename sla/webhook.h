/* sla/webhook.h - breach notifications to webhooks (docs/sla.md): an HTTP
 * POST of the notification's JSON with
 *
 *   Content-Type: application/json
 *   X-Cb-Delivery: the breach's event id (the same on every retry)
 *   X-Cb-Event: violated | recovered
 *   X-Cb-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>
 *
 * The secret is named by the agreement and held in cb-sla's secrets file
 * (a JSON object of name: value, mode 0600), never in the log. A POST
 * without an answer, or answered 408, 429 or 5xx, is tried again after
 * 0.5, 1, 2, 4 and 8 s (six attempts), then given up and logged; any other
 * answer ends it (2xx delivered, else refused). A receiver may get one
 * delivery twice: X-Cb-Delivery tells them apart.
 *
 * Ownership: the hooks own their deliveries in flight (freed with them).
 * Threading: the loop's. */
#ifndef CB_SLA_WEBHOOK_H
#define CB_SLA_WEBHOOK_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_sla_webhooks cb_sla_webhooks;

typedef struct cb_sla_webhook_stats {
    uint64_t delivered, refused, given_up, retries, unsigned_refused;
} cb_sla_webhook_stats;

/* secrets: {name: value} (borrowed during the call; copied). CB_ENOMEM,
 * CB_EINVAL (err says why). */
CB_NODISCARD cb_status cb_sla_webhooks_new(struct event_base *base, const json_t *secrets,
                                           cb_sla_webhooks **out, char *err, size_t errlen);
void cb_sla_webhooks_free(cb_sla_webhooks *w); /* accepts NULL; drops deliveries in flight */

/* Deliver body (copied) to url, signed with the secret named `secret`
 * (NULL: unsigned). A secret name the file does not hold: not sent
 * (logged, counted in unsigned_refused). */
void cb_sla_webhooks_post(cb_sla_webhooks *w, const char *url, const char *secret,
                          const char *delivery, const char *kind, const char *body, size_t len);
const cb_sla_webhook_stats *cb_sla_webhooks_stats(const cb_sla_webhooks *w);

#endif /* CB_SLA_WEBHOOK_H */
