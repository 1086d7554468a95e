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
    int stopped;                        /* kept, not evaluated */
    int64_t creation_ns, expiration_ns; /* 0: not given */
    char job[CB_NAME_MAX + 1];          /* scope: one job, or "" */
    char function[257], backend[CB_NAME_MAX + 1];
    const json_t *labels; /* scope labels (in spec), or NULL */
    size_t n;
    cb_sla_guarantee *g;
    json_t *spec; /* owned reference */
} cb_sla_agreement;

/* From an agreement of schemas/agreement.json (schema-valid) of `tenant`
 * (the agreement's own "tenant" must match when it has one). Errors name
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

/* Does it watch this job (the job descriptor of its cb.job.submitted),
 * submitted at t_ns? Its tenant, scope, state and validity window. */
int cb_sla_agreement_watches(const cb_sla_agreement *a, const char *tenant, const char *job,
                             const json_t *descriptor, int64_t t_ns);

#endif /* CB_SLA_AGREEMENT_H */
