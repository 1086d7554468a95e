/* engine/result.c - a finished job's result (see result.h). */
#include "result.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_buf.h"
#include "cb_json.h"

/* How many items map task `t` covers. */
static uint64_t task_items(const cb_flow *f, uint32_t t)
{
    uint64_t first = (uint64_t)t * f->chunksize;
    uint64_t left = f->items > first ? f->items - first : 0;
    return left < f->chunksize ? left : f->chunksize;
}

static bool task_ok(const cb_task_state *ts)
{
    return ts && ts->status == CB_TASK_SUCCEEDED && json_is_array(ts->output);
}

/* List the items of lost task `t` in `failed` (up to the bound). */
static int note_lost(json_t *failed, const cb_flow *f, uint32_t t, const cb_task_state *ts)
{
    char why[CB_RESULT_MAX_ERROR + 1];
    uint64_t first = (uint64_t)t * f->chunksize, n = task_items(f, t);
    snprintf(why, sizeof why, "%s", ts && ts->error ? ts->error : "not run");
    for (uint64_t i = 0; i < n && json_array_size(failed) < CB_RESULT_MAX_FAILED; i++)
        if (json_array_append_new(
                failed, json_pack("{s:I, s:s}", "index", (json_int_t)(first + i), "error", why)))
            return -1;
    return 0;
}

/* The map outputs in item order; `holes`: null for lost items (else they are
 * left out); `failed`: where to list them (may be NULL). */
static json_t *collect(const cb_flow *f, const cb_task_view *v, bool holes, json_t *failed)
{
    json_t *all = json_array();
    for (uint32_t t = 0; all && t < f->map_tasks; t++) {
        const cb_task_state *ts = cb_task_view_get(v, t);
        int rc = 0;
        if (task_ok(ts)) {
            rc = json_array_extend(all, ts->output);
        } else {
            for (uint64_t i = 0, n = task_items(f, t); holes && i < n && rc == 0; i++)
                rc = json_array_append_new(all, json_null());
            if (rc == 0 && failed)
                rc = note_lost(failed, f, t, ts);
        }
        if (rc != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

/* The lost map items alone (a map_reduce's done message). */
static int list_lost(const cb_flow *f, const cb_task_view *v, json_t *failed)
{
    for (uint32_t t = 0; t < f->map_tasks; t++) {
        const cb_task_state *ts = cb_task_view_get(v, t);
        if (!task_ok(ts) && note_lost(failed, f, t, ts) != 0)
            return -1;
    }
    return 0;
}

json_t *cb_result_map_lost(const cb_flow *f, const cb_task_view *v)
{
    json_t *list = json_array();
    for (uint32_t t = 0; list && t < f->map_tasks; t++) {
        const cb_task_state *ts = cb_task_view_get(v, t);
        if ((!ts || ts->status != CB_TASK_SUCCEEDED) && note_lost(list, f, t, ts) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        list = NULL;
    }
    return list;
}

/* *failed: the list when it names an item, else NULL. */
static json_t *with_failed(json_t *result, json_t *list, json_t **failed)
{
    if (!result || !failed || json_array_size(list) == 0) {
        json_decref(list);
        list = NULL;
    }
    if (failed)
        *failed = list;
    return result;
}

json_t *cb_result_map_outputs(const cb_flow *f, const cb_task_view *v, json_t **failed)
{
    json_t *list = failed ? json_array() : NULL;
    if (failed && !list)
        return NULL;
    return with_failed(collect(f, v, true, list), list, failed);
}

json_t *cb_result_reduce_input(const cb_flow *f, const cb_task_view *v)
{
    return collect(f, v, false, NULL);
}

static json_t *dag_sinks(const cb_flow *f, const cb_task_view *v)
{
    json_t *r = json_object();
    for (size_t i = 0; r && i < f->nsteps; i++) {
        bool sink = true;
        for (size_t k = 0; sink && k < f->nsteps; k++)
            for (size_t d = 0; d < f->steps[k].ndeps; d++)
                if (f->steps[k].deps[d] == i)
                    sink = false;
        if (sink && json_object_set_new(r, f->steps[i].name,
                                        cb_sched_step_output(f, v, (uint32_t)i)) != 0) {
            json_decref(r);
            return NULL;
        }
    }
    return r;
}

json_t *cb_result_of(const cb_flow *f, const cb_task_view *v, json_t **failed)
{
    const cb_task_state *ts;
    json_t *list;
    if (failed)
        *failed = NULL;
    switch (f->kind) {
    case CB_FLOW_CALL:
        ts = cb_task_view_get(v, 0);
        return ts ? json_incref(json_array_get(ts->output, 0)) : NULL;
    case CB_FLOW_MAP:
        return cb_result_map_outputs(f, v, failed);
    case CB_FLOW_MAP_REDUCE:
        ts = cb_task_view_get(v, cb_flow_reduce_task(f));
        if (!ts || !json_array_get(ts->output, 0))
            return NULL;
        list = failed ? json_array() : NULL;
        if (list && list_lost(f, v, list) != 0) { /* the items the reduce did not see */
            json_decref(list);
            return NULL;
        }
        return with_failed(json_incref(json_array_get(ts->output, 0)), list, failed);
    case CB_FLOW_DAG:
        return dag_sinks(f, v);
    }
    return NULL;
}

/* ---- a map's result as text ----------------------------------------------- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The items of an output array's text (between its brackets, trimmed). */
static bool add_items(cb_buf *b, const char *t, size_t n, bool *first)
{
    while (n > 0 && is_space(t[0]))
        t++, n--;
    while (n > 0 && is_space(t[n - 1]))
        n--;
    if (n < 2 || t[0] != '[' || t[n - 1] != ']')
        return false;
    t++, n -= 2;
    while (n > 0 && is_space(t[0]))
        t++, n--;
    if (n == 0)
        return true;
    if (!*first)
        cb_buf_add(b, ",", 1);
    cb_buf_add(b, t, n);
    *first = false;
    return true;
}

char *cb_result_map_text(const cb_flow *f, const cb_task_view *v, cb_result_text_fn *kept,
                         void *arg, size_t *len)
{
    cb_buf b = {0};
    bool first = true;
    cb_buf_add(&b, "[", 1);
    for (uint32_t t = 0; !b.failed && t < f->map_tasks; t++) {
        const cb_task_state *ts = cb_task_view_get(v, t);
        const char *text = NULL;
        size_t n = 0;
        bool ok = true;
        if (ts && ts->status == CB_TASK_SUCCEEDED)
            text = kept ? kept(t, &n, arg) : NULL;
        if (text) {
            ok = add_items(&b, text, n, &first);
        } else if (task_ok(ts)) {
            char *dumped = cb_json_dumps(ts->output, JSON_COMPACT | JSON_ENCODE_ANY);
            ok = dumped && add_items(&b, dumped, strlen(dumped), &first);
            free(dumped);
        } else {
            for (uint64_t i = 0, k = task_items(f, t); i < k; i++) {
                cb_buf_add(&b, first ? "null" : ",null", first ? 4 : 5);
                first = false;
            }
        }
        if (!ok)
            b.failed = 1;
    }
    cb_buf_add(&b, "]", 1);
    return cb_buf_take(&b, len);
}
