/* sla/agreement.h - an agreement under evaluation (docs/sla.md): who it is
 * for, what it watches (its scope and validity), its guarantees. Pure.
 *
 * Ownership: the caller owns the struct (init/cleanup); it owns its
 * guarantees and a reference to its JSON. Not thread-safe. */
#ifndef CB_SLA_AGREEMENT_H
#define CB_SLA_AGREEMENT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_event.h"
#include "guarantee.h"

typedef struct cb_sla_agreement {
    char id[CB_NAME_MAX + 1];
    char tenant[CB_NAME_MAX + 1];
    int stopped;      /* kept, not evaluated */
    int terminated;   /* past its expiration (or ended): never evaluated again */
    int is_template;  /* details.type "template": instantiated, not evaluated */
    uint64_t version; /* its last event's number (cb.sla.*), 0: not from the log */
    int64_t creation_ns, expiration_ns; /* 0: not given */
    char job[CB_NAME_MAX + 1];          /* scope: one job, or "" */
    char function[257], backend[CB_NAME_MAX + 1];
    const json_t *labels; /* scope labels (in spec), or NULL */
    size_t n;
    cb_sla_guarantee *g;
    json_t *spec;   /* owned reference */
    json_t *recent; /* its last breaches and recoveries, newest last (owned; NULL: none) */
} cb_sla_agreement;

/* From an agreement of schemas/agreement.json (schema-valid) of `tenant`
 * (the agreement's own "tenant" must match when it has one). A template's
 * guarantees are not parsed (their placeholders are filled in by
 * cb_sla_template_fill). Errors name
 * the path: "/details/guarantees/1/constraint: at 0: ...". CB_EINVAL,
 * CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_agreement_init(cb_sla_agreement *a, const json_t *spec,
                                             const char *tenant, char *err, size_t errlen);
/* The implicit agreement of a job's own `sla.guarantees` (id "job-<job>",
 * scope the job). CB_EINVAL (with the path under /sla), CB_ENOMEM. */
CB_NODISCARD cb_status cb_sla_agreement_of_job(cb_sla_agreement *a, const char *tenant,
                                               const char *job, const json_t *sla, char *err,
                                               size_t errlen);
void cb_sla_agreement_cleanup(cb_sla_agreement *a);

/* An agreement from a template (an agreement of details.type "template"):
 * a deep copy with each "{{name}}" in its strings replaced by values' name
 * (a string, or a number written as JSON), given the id `id` (also
 * details.id) and details.type "agreement". NULL with err on a placeholder
 * without a value ("template \"t\": no value for {{threshold}}"), a value
 * that is not a string or a number, or out of memory. */
json_t *cb_sla_template_fill(const json_t *tpl, const char *id, const json_t *values, char *err,
                             size_t errlen);

/* Does it watch this job (the job descriptor of its cb.job.submitted),
 * submitted at t_ns? Its tenant, scope, state and validity window (never
 * a template, a stopped or a terminated agreement). */
int cb_sla_agreement_watches(const cb_sla_agreement *a, const char *tenant, const char *job,
                             const json_t *descriptor, int64_t t_ns);

#endif /* CB_SLA_AGREEMENT_H */
