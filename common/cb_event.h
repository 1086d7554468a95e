/* common/cb_event.h - the CloudEvents 1.0 JSON codec for cbcore events.
 * Decoding checks the envelope (required attributes, specversion, known type,
 * RFC 3339 time, tenant/job names, object data); the rules for each type's
 * `data` live in schemas/event.json (cb_schema_validate). Pure: no I/O. */
#ifndef CB_EVENT_H
#define CB_EVENT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

/* The "job" of a tenant's agreement events (cb.evt.<tenant>._sla): job ids
 * that begin with "_" are refused at intake (schemas/job.json). */
#define CB_SLA_SUBJECT "_sla"
#define CB_NAME_MAX    128 /* job ids, tenants, step names: [A-Za-z0-9_-]{1,128} */

typedef enum cb_event_type {
    CB_EV_UNKNOWN = -1,
    CB_EV_JOB_SUBMITTED = 0,
    CB_EV_JOB_REJECTED,
    CB_EV_JOB_STARTED,
    CB_EV_TASKS_DISPATCHED,
    CB_EV_TASK_STARTED,
    CB_EV_TASK_SUCCEEDED,
    CB_EV_TASK_FAILED,
    CB_EV_TASK_RETRY_SCHEDULED,
    CB_EV_TASK_TIMED_OUT,
    CB_EV_TASK_SKIPPED,  /* a DAG step whose `when` is false */
    CB_EV_TASK_EXPANDED, /* a DAG `foreach` step fanned out into child tasks */
    CB_EV_JOB_SUSPENDED,
    CB_EV_JOB_RESUMED,
    CB_EV_JOB_CANCEL_REQUESTED,
    CB_EV_JOB_CANCELLED,
    CB_EV_JOB_SUCCEEDED,
    CB_EV_JOB_FAILED,
    CB_EV_SLA_VIOLATED,
    CB_EV_JOB_PARTITIONED, /* a page of an objects input's partition plan */
    /* An SLA agreement's life (docs/sla.md), on the tenant's subject
     * CB_SLA_SUBJECT; and a guarantee back in compliance after a breach. */
    CB_EV_SLA_CREATED,
    CB_EV_SLA_UPDATED,
    CB_EV_SLA_DELETED,
    CB_EV_SLA_STARTED,
    CB_EV_SLA_STOPPED,
    CB_EV_SLA_TERMINATED,
    CB_EV_SLA_RECOVERED,
    CB_EV_SLA_AT_RISK,     /* a running job predicted to miss a makespan bound */
    CB_EV_TASKS_SUCCEEDED, /* several tasks of one command succeeded (cb_event_outcome) */
    /* An engine takes a partition (docs/scale.md, "Ownership"): appended
     * on CB_CLAIM_TENANT/CB_CLAIM_JOB of that partition's log; the fold's
     * fence (projector/fence.h) ignores other engines' decisions after it. */
    CB_EV_PARTITION_CLAIMED,
    CB_EV__COUNT
} cb_event_type;

typedef struct cb_event {
    cb_event_type type;
    char *id;      /* deterministic, also the broker de-duplication id */
    char *source;  /* e.g. "cbcore/engine" */
    char *subject; /* CloudEvents subject: the job id, or "<job>/<task>" */
    int64_t time_ns;
    char tenant[CB_NAME_MAX + 1];
    char job[CB_NAME_MAX + 1];
    json_t *data; /* owned reference; always an object */
} cb_event;

/* "cb.job.submitted" for CB_EV_JOB_SUBMITTED. Static; "?" if out of range. */
const char *cb_event_type_name(cb_event_type t);
/* CB_EV_UNKNOWN if `s` names no event type. */
cb_event_type cb_event_type_parse(const char *s);
/* The type of the encoded event in buf, found by a scan (nothing parsed or
 * allocated), so that a reader can pass over events it has no use for;
 * CB_EV_UNKNOWN when there is no such member (decode it to know why). */
cb_event_type cb_event_peek_type(const char *buf, size_t len);
/* 1 if `s` is a valid name ([A-Za-z0-9_-], 1..128 characters). */
int cb_name_valid(const char *s);
/* `s` (a host's name, say) as a name into out: each other character '_',
 * cut to size - 1 and to 128; "host" when s is NULL or empty. Returns out. */
char *cb_name_from(const char *s, char *out, size_t size);
/* A job's key, "tenant/job", into buf (the store's and the engine's name for
 * it). Returns 0, -1 if it does not fit. */
int cb_job_key(const char *tenant, const char *job, char *buf, size_t size);

/* Fill `ev`: copies the strings, steals `data` (even on failure; NULL means
 * an empty object). Release with cb_event_cleanup(). Errors: CB_EINVAL (bad
 * tenant/job/type, empty id), CB_ENOMEM. */
CB_NODISCARD cb_status cb_event_init(cb_event *ev, cb_event_type type, const char *tenant,
                                     const char *job, const char *id, const char *source,
                                     int64_t time_ns, json_t *data);
void cb_event_cleanup(cb_event *ev); /* accepts a zeroed or cleaned event */

/* The outcomes an event reports, one at a time: a cb.tasks.succeeded event
 * holds several tasks' successes, each the data of a cb.task.succeeded
 * event, in data.tasks; a reader that follows tasks takes them as if each
 * had come as its own event:
 *
 *     for (size_t i = 0, n = cb_event_outcomes(ev); i < n; i++) {
 *         cb_event one;
 *         const cb_event *e = cb_event_outcome(ev, i, &one);
 *         ...
 *     }
 *
 * Any other event is its own one outcome (cb_event_outcome returns ev). A
 * part is a shallow copy in *one: it borrows ev's strings and its i-th
 * element as data; valid while ev is, never cleaned up. A batch whose
 * data.tasks is not an array of objects reports 0 outcomes. */
size_t cb_event_outcomes(const cb_event *ev);
const cb_event *cb_event_outcome(const cb_event *ev, size_t i, cb_event *one);

/* Decode one event. On CB_OK ev owns its fields (cb_event_cleanup). On failure
 * ev is zeroed and err (if not NULL) holds a reason naming the attribute.
 * Errors: CB_EINVAL (not JSON), CB_ESCHEMA (bad envelope), CB_ENOMEM. */
/* Decode one event from the log or the wire. The envelope the engine writes
 * (its attributes as plain ASCII strings, each once, and "data") is read by
 * a scan and only "data" is parsed; any other text goes through
 * cb_event_decode_full, with the same result and errors. */
CB_NODISCARD cb_status cb_event_decode(const void *buf, size_t len, cb_event *ev, char *err,
                                       size_t errlen);
/* The reference decoder: the whole text parsed by jansson (tests compare). */
CB_NODISCARD cb_status cb_event_decode_full(const void *buf, size_t len, cb_event *ev, char *err,
                                            size_t errlen);
/* Encode as compact JSON with the attributes in a fixed order. On CB_OK *out
 * is owned (release with free()) and *len is its length. Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_event_encode(const cb_event *ev, char **out, size_t *len);
/* The event's subject in the log of `partition` (cb_partition.h:
 * "cb.evt.<tenant>.<job>" for partition 0) into buf. Returns 0, or -1 if it
 * does not fit. The reverse is cb_partition_parse. */
int cb_event_log_subject(const cb_event *ev, unsigned partition, char *buf, size_t size);

/* An adapter's events have source "cbcore/adapter/<backend>/<worker>": the
 * account whose invocations they report (docs/adapters.md). Into buf:
 * returns 0, -1 if it does not fit. The reverse: the backend into buf (size
 * bytes) from such a source; false if source (may be NULL) is not one. */
int cb_event_adapter_source(const char *backend, const char *worker, char *buf, size_t size);
bool cb_event_source_backend(const char *source, char *buf, size_t size);

#endif /* CB_EVENT_H */
