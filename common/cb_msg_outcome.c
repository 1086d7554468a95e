/* common/cb_msg_outcome.c - the outcome events' data (see cb_msg_outcome.h). */
#include "cb_msg_outcome.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_text.h"

static json_t *base(const cb_outcome_msg *m)
{
    json_t *d =
        json_pack("{s:I, s:I}", "task", (json_int_t)m->task, "attempt", (json_int_t)m->attempt);
    if (d && m->step && json_object_set_new(d, "step", json_string(m->step))) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* Set the counters every finished invocation has. */
static json_t *finish(json_t *d, const cb_outcome_msg *m)
{
    if (d && m->throttled && json_object_set_new(d, "throttled", json_integer(m->throttled)))
        goto fail;
    if (d && m->duration_ms >= 0 &&
        json_object_set_new(d, "duration_ms", json_integer((json_int_t)m->duration_ms)))
        goto fail;
    if (d && m->billed && json_object_set_new(d, "cost", cb_cost_invocation_json(&m->cost)))
        goto fail;
    return d;
fail:
    json_decref(d);
    return NULL;
}

/* text[from, from + n) as a UTF-8 JSON string (n < limit, bytes that are not
 * UTF-8 shown as '?'), or NULL. */
static json_t *text(const char *s, size_t from, size_t n)
{
    char *copy = cb_malloc(n + 1);
    json_t *j;
    if (!copy)
        return NULL;
    memcpy(copy, s + from, n);
    copy[n] = '\0';
    cb_utf8_scrub(copy);
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *cb_outcome_started(const cb_outcome_msg *m)
{
    json_t *d = base(m);
    if (d && json_object_set_new(d, "worker", json_string(m->worker ? m->worker : "?"))) {
        json_decref(d);
        return NULL;
    }
    return d;
}

json_t *cb_outcome_succeeded(const cb_outcome_msg *m)
{
    json_t *d = base(m);
    if (d && (json_object_set(d, "output", m->output ? (json_t *)m->output : json_null()) ||
              (m->memo && json_object_set_new(d, "memo", json_string(m->memo))) ||
              (m->memoized_job &&
               json_object_set_new(d, "memoized",
                                   json_pack("{s:s, s:I}", "job", m->memoized_job, "task",
                                             (json_int_t)m->memoized_task))))) {
        json_decref(d);
        return NULL;
    }
    return finish(d, m);
}

json_t *cb_outcome_failed(const cb_outcome_msg *m)
{
    json_t *d = base(m);
    const char *error = m->error && *m->error ? m->error : "failed";
    size_t n = strnlen(error, CB_OUTCOME_MAX_ERROR - 1);
    if (!d)
        return NULL;
    if (json_object_set_new(d, "error", text(error, 0, n)) ||
        json_object_set_new(d, "reason", json_string(m->reason ? m->reason : "backend")))
        goto fail;
    if (m->stderr_tail) {
        size_t len = strlen(m->stderr_tail);
        size_t from = len > CB_OUTCOME_MAX_STDERR - 1 ? len - (CB_OUTCOME_MAX_STDERR - 1) : 0;
        /* a cut inside a character leaves continuation bytes: skip them */
        while (from > 0 && from < len && ((unsigned char)m->stderr_tail[from] & 0xC0) == 0x80)
            from++;
        if (json_object_set_new(d, "stderr", text(m->stderr_tail, from, len - from)))
            goto fail;
    }
    return finish(d, m);
fail:
    json_decref(d);
    return NULL;
}

static int u32_field(const json_t *data, const char *key, uint32_t *out)
{
    const json_t *v = json_object_get(data, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

cb_status cb_outcome_parse(const json_t *data, cb_outcome_msg *m)
{
    const json_t *v;
    memset(m, 0, sizeof *m);
    m->duration_ms = -1;
    if (u32_field(data, "task", &m->task) || u32_field(data, "attempt", &m->attempt))
        return CB_EINVAL;
    m->step = json_string_value(json_object_get(data, "step"));
    m->worker = json_string_value(json_object_get(data, "worker"));
    m->output = json_object_get(data, "output");
    m->error = json_string_value(json_object_get(data, "error"));
    m->reason = json_string_value(json_object_get(data, "reason"));
    m->stderr_tail = json_string_value(json_object_get(data, "stderr"));
    m->memo = json_string_value(json_object_get(data, "memo"));
    if ((v = json_object_get(data, "memoized")) &&
        (m->memoized_job = json_string_value(json_object_get(v, "job"))) &&
        u32_field(v, "task", &m->memoized_task))
        m->memoized_job = NULL;
    if ((v = json_object_get(data, "throttled")) && json_is_integer(v) && json_integer_value(v) > 0)
        m->throttled = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(data, "duration_ms")) && json_is_integer(v))
        m->duration_ms = (int64_t)json_integer_value(v);
    m->billed =
        (v = json_object_get(data, "cost")) && cb_cost_invocation_parse(v, &m->cost) == CB_OK;
    return CB_OK;
}

json_t *cb_outcome_batch(json_t *const *each, size_t n)
{
    json_t *a = n >= 2 && n <= CB_OUTCOME_BATCH_MAX ? json_array() : NULL;
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append(a, each[i]) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a ? json_pack("{s:o}", "tasks", a) : NULL;
}
