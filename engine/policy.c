/* engine/policy.c - retries, backoff, timeouts, tolerated failures. */
#include "policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_cost.h"
#include "cb_map.h"

void cb_policy_defaults_init(cb_policy_defaults *d)
{
    d->parallelism = 1000;
    d->retry_limit = 0;
    d->backoff_ms = 200;
    d->factor = 2.0;
    d->max_backoff_ms = 60000;
    d->task_timeout_ms = 300000;
}

static int64_t int_or(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

void cb_policy_from_spec(const json_t *job, const json_t *spec, const cb_policy_defaults *d,
                         cb_policy *out)
{
    const json_t *retry = json_object_get(spec, "retry");
    const json_t *fn = json_object_get(spec, "function");
    const json_t *tol = json_object_get(job, "tolerated_failures");
    const json_t *v;

    if (!retry)
        retry = json_object_get(job, "retry");
    memset(out, 0, sizeof *out);
    out->parallelism = (uint32_t)int_or(job, "parallelism", d->parallelism);
    out->retry_limit = (uint32_t)int_or(retry, "limit", d->retry_limit);
    out->backoff_ms = int_or(retry, "backoff_ms", d->backoff_ms);
    v = json_object_get(retry, "factor");
    out->factor = json_is_number(v) ? json_number_value(v) : d->factor;
    out->max_backoff_ms = int_or(retry, "max_backoff_ms", d->max_backoff_ms);
    out->jitter = json_is_true(json_object_get(retry, "jitter"));
    /* One attempt's limit: a step's own timeout_ms, else its function's, else
     * the default. (A job's own timeout_ms bounds the whole job instead.) */
    out->task_timeout_ms = int_or(fn, "timeout_ms", d->task_timeout_ms);
    if (spec != job)
        out->task_timeout_ms = int_or(spec, "timeout_ms", out->task_timeout_ms);
    out->job_timeout_ms = int_or(job, "timeout_ms", 0);
    if ((v = json_object_get(job, "backup"))) { /* docs/engine.md, "Straggler backups" */
        const json_t *a = json_object_get(v, "after"), *f = json_object_get(v, "factor");
        out->backup_after = json_is_number(a) ? json_number_value(a) : 0.9;
        out->backup_factor = json_is_number(f) ? json_number_value(f) : 3.0;
        out->backup_min_ms = int_or(v, "min_ms", 1000);
    }
    out->budget = json_number_value(json_object_get(job, "budget"));
    out->budget_nanos = out->budget > 0 ? cb_cost_nanos_of(out->budget) : 0;
    out->tolerated_pct = -1;
    if (json_is_integer(tol)) {
        out->tolerated_count = (uint64_t)json_integer_value(tol);
    } else if (json_is_string(tol)) {
        out->tolerated_pct = strtod(json_string_value(tol), NULL); /* "2.5%" */
    }
}

bool cb_policy_may_retry(const cb_policy *p, uint32_t attempt)
{
    return attempt <= p->retry_limit; /* attempt 1 failed: a retry if limit >= 1 */
}

int64_t cb_policy_backoff_ms(const cb_policy *p, const char *job_key, uint32_t task, uint32_t next)
{
    double wait = (double)p->backoff_ms * pow(p->factor, next >= 2 ? next - 2 : 0);
    if (wait > (double)p->max_backoff_ms)
        wait = (double)p->max_backoff_ms;
    if (p->jitter && wait > 1) {
        /* deterministic: the same job, task and attempt always wait the same */
        char buf[300];
        int n = snprintf(buf, sizeof buf, "%s/%u/%u", job_key, task, next);
        uint64_t h = cb_hash64(buf, (size_t)(n > 0 ? n : 0));
        wait = wait / 2 + (double)(h % 1000000) / 1000000.0 * (wait / 2);
    }
    return (int64_t)wait;
}

bool cb_policy_too_many_failures(const cb_policy *p, uint64_t failed, uint64_t total)
{
    if (p->tolerated_pct >= 0)
        return total > 0 && (double)failed * 100.0 > p->tolerated_pct * (double)total;
    return failed > p->tolerated_count;
}
