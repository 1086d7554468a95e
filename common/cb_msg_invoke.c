/* common/cb_msg_invoke.c - the invocation command codec (see cb_msg_invoke.h). */
#include "cb_msg_invoke.h"

#include <stdio.h>
#include <string.h>

#include "cb_json.h"
#include "cb_schema.h"

/* A task's members into `o`: task, attempt, items, first_item, memo. */
static int put_task(json_t *o, const cb_invoke_task *t)
{
    return json_object_set_new(o, "task", json_integer((json_int_t)t->task)) ||
           json_object_set_new(o, "attempt", json_integer((json_int_t)t->attempt)) ||
           json_object_set(o, "items", (json_t *)t->items) ||
           (t->first_item >= 0 &&
            json_object_set_new(o, "first_item", json_integer((json_int_t)t->first_item))) ||
           (t->memo && json_object_set_new(o, "memo", json_string(t->memo)));
}

json_t *cb_invoke_msg_build(const cb_invoke_msg *m)
{
    json_t *cmd, *tasks = NULL;
    if (m->ntasks < 1 || m->ntasks > CB_INVOKE_TASKS_MAX)
        return NULL;
    cmd = json_pack("{s:s, s:s, s:O}", "job_id", m->job_id, "tenant", m->tenant, "function",
                    m->function);
    if (!cmd || (m->step && json_object_set_new(cmd, "step", json_string(m->step))) ||
        (m->partition &&
         json_object_set_new(cmd, "partition", json_integer((json_int_t)m->partition))))
        goto fail;
    if (m->ntasks == 1) {
        if (put_task(cmd, &m->tasks[0]))
            goto fail;
        return cmd;
    }
    if (!(tasks = json_array()) || json_object_set_new(cmd, "tasks", tasks))
        goto fail;
    for (size_t i = 0; i < m->ntasks; i++) {
        json_t *t = json_object();
        if (!t || put_task(t, &m->tasks[i]) || json_array_append_new(tasks, t))
            goto fail;
    }
    return cmd;
fail:
    json_decref(cmd);
    return NULL;
}

/* A task's members from `o` (checked by the schema, or by hand without one). */
static int get_task(const json_t *o, cb_invoke_task *t)
{
    const json_t *first = json_object_get(o, "first_item");
    t->task = (uint32_t)json_integer_value(json_object_get(o, "task"));
    t->attempt = (uint32_t)json_integer_value(json_object_get(o, "attempt"));
    t->items = json_object_get(o, "items");
    t->first_item = json_is_integer(first) ? (int64_t)json_integer_value(first) : -1;
    t->memo = json_string_value(json_object_get(o, "memo"));
    return json_is_array(t->items) && json_array_size(t->items) > 0;
}

cb_status cb_invoke_msg_parse(const cb_schema *schema, const void *data, size_t len, json_t **root,
                              cb_invoke_msg *m, char *why, size_t n)
{
    json_error_t je;
    json_t *cmd, *errors = NULL;
    const json_t *tasks;
    cb_status s;
    int ok;

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
    m->step = json_string_value(json_object_get(cmd, "step"));
    m->partition = (unsigned)json_integer_value(json_object_get(cmd, "partition"));
    m->function = json_object_get(cmd, "function");
    tasks = json_object_get(cmd, "tasks");
    if (tasks) {
        m->ntasks = json_array_size(tasks);
        ok = json_is_array(tasks) && m->ntasks >= 1 && m->ntasks <= CB_INVOKE_TASKS_MAX &&
             !json_object_get(cmd, "items");
        for (size_t i = 0; ok && i < m->ntasks; i++)
            ok = get_task(json_array_get(tasks, i), &m->tasks[i]);
    } else {
        m->ntasks = 1;
        ok = get_task(cmd, &m->tasks[0]);
    }
    if (!ok || !m->job_id || !m->tenant || !json_is_object(m->function)) {
        snprintf(why, n, "%s", "needs job_id, tenant, function and items, or tasks");
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
