/* engine/intake.h - the verdict on one job submission, before anything is
 * written: size, JSON, schema (job.json), tenant, backends and functions
 * known, a flow that can be built (no cycle, no dangling step). Every error
 * names the JSON path and the rule ("/function/name: no local function
 * named \"x\""), so the sender can fix the job without reading our logs.
 *
 * Pure apart from reading the (immutable) schema and configuration: no I/O, no
 * clock. A job without job_id gets `fresh_id`. Thread-safe over distinct
 * outputs. */
#ifndef CB_INTAKE_H
#define CB_INTAKE_H
#include <jansson.h>
#include <stddef.h>

#include "cb_event.h"
#include "cb_schema.h"
#include "cb_status.h"
#include "cb_config.h"

typedef struct cb_intake_cfg {
    const cb_schema *schema;
    const cb_config *reg;
    size_t max_bytes;    /* larger submissions are rejected unread */
    uint32_t max_tasks;  /* 0: the flow's default */
    unsigned partitions; /* the deployment's (docs/scale.md): a new job's partition is
                          * cb_partition_of over them; 0 or 1: one */
} cb_intake_cfg;

typedef struct cb_intake {
    json_t *job;                  /* accepted: the descriptor with job_id and tenant set (owned) */
    json_t *errors;               /* rejected: array of "path: rule" strings (owned) */
    char job_id[CB_NAME_MAX + 1]; /* when known (also for many rejections) */
    char tenant[CB_NAME_MAX + 1];
    char digest[65]; /* accepted: of the descriptor */
} cb_intake;

/* Judge a submission on cb.submit.<tenant>. CB_OK: accepted (out->job).
 * Otherwise out->errors says why: CB_ETOOBIG, CB_EINVAL (not JSON),
 * CB_ESCHEMA (schema or rules), CB_EUNSUPP (valid but not runnable here),
 * CB_ENOMEM (any allocation failed while judging: no verdict, judge it again
 * later). Release with cb_intake_cleanup() either way. */
CB_NODISCARD cb_status cb_intake_check(const cb_intake_cfg *cfg, const char *tenant,
                                       const void *data, size_t len, const char *fresh_id,
                                       cb_intake *out);
void cb_intake_cleanup(cb_intake *in);

#endif /* CB_INTAKE_H */
