/* common/cb_msg_reply.h - the answer to a submission or lifecycle request
 * (schemas/reply.json), and the same verdict announced on the job's progress
 * topic for a fire-and-forget submission. Built by the engine's request
 * services, parsed by clients (cb submit, cb bench, the tests). The only
 * code that knows their fields.
 *
 *   reply:   {"job_id"?, "accepted", "errors", "repeated"?}
 *   verdict: {"job_id", "tenant", "status": accepted|refused, "accepted",
 *             "errors"}                     (cb.progress.<tenant>.<job_id>)
 *
 * Ownership: a cb_reply_msg borrows every pointer. Pure; thread-safe. */
#ifndef CB_MSG_REPLY_H
#define CB_MSG_REPLY_H
#include <jansson.h>

#include "cb_status.h"

typedef struct cb_reply_msg {
    const char *job_id; /* or NULL (a submission too broken to name its job) */
    const char *tenant; /* verdict only */
    int accepted;
    const json_t *errors; /* array of "path: rule" strings; NULL: none */
    int repeated;         /* reply: accepted before (the same job again): its done message
                           * may be old */
} cb_reply_msg;

/* The reply / the verdict as compact text (malloc'd; free()), or NULL. */
char *cb_reply_msg_text(const cb_reply_msg *m);
char *cb_verdict_msg_text(const cb_reply_msg *m);

/* Read a reply or a verdict (m borrows from root). CB_EINVAL when
 * "accepted" is not a boolean. */
CB_NODISCARD cb_status cb_reply_msg_parse(const json_t *root, cb_reply_msg *m);

#endif /* CB_MSG_REPLY_H */
