/* common/cb_cost.c - what invocations cost (see cb_cost.h). */
#include "cb_cost.h"

#include <math.h>

#include "cb_config.h"

void cb_price_of(const struct cb_config *c, const char *backend, cb_price *out)
{
    const json_t *p = json_object_get(cb_config_backend(c, backend), "price");
    json_int_t mb = json_integer_value(json_object_get(p, "memory_mb"));
    out->per_gb_s = json_number_value(json_object_get(p, "per_gb_s"));
    out->per_request = json_number_value(json_object_get(p, "per_request"));
    if (!(out->per_gb_s >= 0)) /* also NaN */
        out->per_gb_s = 0;
    if (!(out->per_request >= 0))
        out->per_request = 0;
    out->memory_mb = mb > 0 && mb <= UINT32_MAX ? (uint32_t)mb : CB_COST_MEMORY_MB;
}

cb_cost cb_cost_of(const cb_price *p, uint32_t memory_mb, int64_t duration_ms)
{
    cb_cost c = {.invocations = 1};
    uint64_t mb = memory_mb ? memory_mb : p->memory_mb ? p->memory_mb : CB_COST_MEMORY_MB;
    uint64_t ms = duration_ms > 0 ? (uint64_t)duration_ms : 0;
    c.mb_ms = mb * ms;
    /* GB-s = mb_ms / 1024 / 1000; nanos = GB-s x price x 1e9 */
    c.nanos = (uint64_t)llround((double)c.mb_ms / 1024000.0 * p->per_gb_s * 1e9) +
              (uint64_t)llround(p->per_request * 1e9);
    return c;
}

void cb_cost_add(cb_cost *into, const cb_cost *c)
{
    into->invocations += c->invocations;
    into->mb_ms += c->mb_ms;
    into->nanos += c->nanos;
}

double cb_cost_gb_s(const cb_cost *c)
{
    return (double)c->mb_ms / 1024000.0;
}

double cb_cost_amount(const cb_cost *c)
{
    return (double)c->nanos / 1e9;
}

json_t *cb_cost_json(const cb_cost *c)
{
    return json_pack("{s:I, s:I, s:I, s:f, s:f}", "invocations", (json_int_t)c->invocations,
                     "mb_ms", (json_int_t)c->mb_ms, "nanos", (json_int_t)c->nanos, "gb_s",
                     cb_cost_gb_s(c), "amount", cb_cost_amount(c));
}

int cb_cost_put(const char *name, const cb_cost *c, void *obj)
{
    return json_object_set_new(obj, name, cb_cost_json(c)) != 0;
}

json_t *cb_cost_record_json(const cb_cost *c)
{
    return json_pack("{s:I, s:I, s:I}", "invocations", (json_int_t)c->invocations, "mb_ms",
                     (json_int_t)c->mb_ms, "nanos", (json_int_t)c->nanos);
}

static int u64_field(const json_t *v, const char *key, uint64_t *out)
{
    const json_t *f = json_object_get(v, key);
    if (!json_is_integer(f) || json_integer_value(f) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(f);
    return 0;
}

cb_status cb_cost_parse(const json_t *v, cb_cost *out)
{
    cb_cost c = {0};
    *out = c;
    if (u64_field(v, "invocations", &c.invocations) || u64_field(v, "mb_ms", &c.mb_ms) ||
        u64_field(v, "nanos", &c.nanos))
        return CB_EINVAL;
    *out = c;
    return CB_OK;
}

json_t *cb_cost_invocation_json(const cb_cost *c)
{
    return json_pack("[I, I]", (json_int_t)c->mb_ms, (json_int_t)c->nanos);
}

cb_status cb_cost_invocation_parse(const json_t *v, cb_cost *out)
{
    cb_cost c = {.invocations = 1};
    const json_t *mb = json_array_get(v, 0), *n = json_array_get(v, 1);
    if (json_array_size(v) != 2 || !json_is_integer(mb) || json_integer_value(mb) < 0 ||
        !json_is_integer(n) || json_integer_value(n) < 0)
        return CB_EINVAL;
    c.mb_ms = (uint64_t)json_integer_value(mb);
    c.nanos = (uint64_t)json_integer_value(n);
    *out = c;
    return CB_OK;
}

uint64_t cb_cost_nanos_of(double amount)
{
    double n = ceil(amount * 1e9);
    return !(n > 0) ? 0 : n >= 1.8e19 ? UINT64_MAX : (uint64_t)n;
}
