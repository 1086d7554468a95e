/* engine/service.h - the engine's request services: job submissions on
 * cb.submit.<tenant> (requests) and cb.enqueue.<tenant> (queued), and
 * lifecycle commands on cb.ctl.<tenant>.<job>.
 *
 * A submission is judged (intake.h); an accepted one is appended as
 * cb.job.submitted and answered {job_id, accepted: true, errors: []} only
 * once the broker confirmed it, so "accepted" means durable. The same job_id
 * with the same body is answered the same way again without a second event;
 * with a different body it is refused as a conflict. A rejected job is
 * answered with the reasons and, when it names a job_id not used before,
 * recorded (cb.job.rejected) and announced on cb.done.<tenant>.<job> with
 * status "rejected", so a client that only listens there learns it too.
 *
 * Submissions queued on cb.enqueue.<tenant> (kept by the broker while no
 * engine runs) are judged the same way; the verdict goes to the job's
 * progress topic (accepted) or done topic (rejected), then the message is
 * acked; one that cannot be stored now is given back to the queue.
 *
 * Lifecycle commands append cb.job.cancel_requested, cb.job.suspended or
 * cb.job.resumed and answer once confirmed; a command for an unknown or
 * finished job is refused with the reason.
 *
 * Threading: the caller's loop; not thread-safe. */
#ifndef CB_SERVICE_H
#define CB_SERVICE_H
#include "broker.h"
#include "cb_status.h"
#include "control.h"
#include "intake.h"
#include "store.h"

struct event_base;
typedef struct cb_service cb_service;

typedef struct cb_service_stats {
    uint64_t submitted, accepted, repeated, rejected, commands, refused;
} cb_service_stats;

/* Serve both subjects. Everything is borrowed and outlives the service; the
 * intake configuration is copied. On CB_OK *out is owned: cb_service_free(). */
CB_NODISCARD cb_status cb_service_start(struct event_base *base, cb_broker *b, cb_store *st,
                                        cb_control *ctl, const cb_intake_cfg *cfg,
                                        cb_service **out);
const cb_service_stats *cb_service_stats_get(const cb_service *s);
/* Stop serving; answers still waiting for a confirmation are dropped (the
 * requester times out and retries; the job id makes that safe). */
void cb_service_free(cb_service *s);

#endif /* CB_SERVICE_H */
