/* common/cb_msg_invoke.c - the invocation command codec (see cb_msg_invoke.h). */
#include "cb_msg_invoke.h"

#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_schema.h"

json_t *cb_invoke_msg_build(const cb_invoke_msg *m)
{
    json_t *cmd = json_pack("{s:s, s:s, s:I, s:I, s:O, s:O}", "job_id", m->job_id, "tenant",
                            m->tenant, "task", (json_int_t)m->task, "attempt",
                            (json_int_t)m->attempt, "function", m->function, "items", m->items);
    if (!cmd)
        return NULL;
    if ((m->first_item >= 0 &&
         json_object_set_new(cmd, "first_item", json_integer((json_int_t)m->first_item))) ||
        (m->step && json_object_set_new(cmd, "step", json_string(m->step)))) {
        json_decref(cmd);
        return NULL;
    }
    return cmd;
}

cb_status cb_invoke_msg_parse(const cb_schema *schema, const void *data, size_t len, json_t **root,
                              cb_invoke_msg *m, char *why, size_t n)
{
    json_error_t je;
    json_t *cmd, *errors = NULL;
    const json_t *first;
    cb_status s;

    *root = NULL;
    memset(m, 0, sizeof *m);
    if (!(cmd = cb_json_loadb(data, len, 0, &je, &s))) {
        snprintf(why, n, "not JSON: %s (byte %d)", je.text, je.position);
        return s;
    }
    if (schema && (s = cb_schema_validate(schema, "invoke.json", cmd, 4, &errors)) != CB_OK) {
        const char *e0 = json_string_value(json_array_get(errors, 0));
        snprintf(why, n, "%s", e0 ? e0 : cb_strerror(s));
        json_decref(errors);
        json_decref(cmd);
        return s == CB_ENOMEM ? CB_ENOMEM : CB_ESCHEMA;
    }
    json_decref(errors);
    m->job_id = json_string_value(json_object_get(cmd, "job_id"));
    m->tenant = json_string_value(json_object_get(cmd, "tenant"));
    m->task = (uint32_t)json_integer_value(json_object_get(cmd, "task"));
    m->attempt = (uint32_t)json_integer_value(json_object_get(cmd, "attempt"));
    m->step = json_string_value(json_object_get(cmd, "step"));
    m->function = json_object_get(cmd, "function");
    m->items = json_object_get(cmd, "items");
    first = json_object_get(cmd, "first_item");
    m->first_item = json_is_integer(first) ? (int64_t)json_integer_value(first) : -1;
    if (!m->job_id || !m->tenant || !json_is_object(m->function) || !json_is_array(m->items)) {
        snprintf(why, n, "%s", "needs job_id, tenant, function and items");
        json_decref(cmd);
        memset(m, 0, sizeof *m);
        return CB_ESCHEMA;
    }
    *root = cmd;
    return CB_OK;
}

const char *cb_invoke_msg_function_name(const cb_invoke_msg *m)
{
    return json_string_value(json_object_get(m->function, "name"));
}

int64_t cb_invoke_msg_timeout_ms(const cb_invoke_msg *m)
{
    return (int64_t)json_integer_value(json_object_get(m->function, "timeout_ms"));
}
