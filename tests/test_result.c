/* tests/test_result.c - a finished job's result assembled from its task
 * records (engine/result.c): item order, chunks, lost items, the bound on
 * the list of lost items, DAG sinks; a map's result as text from the
 * outputs kept as text (cb_result_map_text) equal to the parsed one. */
#include "cb_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "result.h"

#define MAXT 4096

typedef struct recs {
    cb_flow flow;
    uint32_t index[MAXT];
    cb_task_state tasks[MAXT];
    size_t n;
} recs;

static void build(recs *r, const char *spec)
{
    char err[200];
    json_t *j = json_loads(spec, 0, NULL);
    assert_non_null(j);
    memset(r, 0, sizeof *r);
    assert_int_equal(cb_flow_build(j, 0, &r->flow, err, sizeof err), CB_OK);
    json_decref(j);
}

/* Task `t` ended: with `output` (JSON text) or, when NULL, failed with `error`. */
static void ended(recs *r, uint32_t t, const char *output, const char *error)
{
    cb_task_state *s = &r->tasks[r->n];
    r->index[r->n++] = t;
    s->status = output ? CB_TASK_SUCCEEDED : CB_TASK_FAILED;
    s->output = output ? json_loads(output, JSON_DECODE_ANY, NULL) : NULL;
    s->error = error ? strdup(error) : NULL;
}

static cb_task_view view(const recs *r)
{
    cb_task_view v = {r->index, r->tasks, r->n};
    return v;
}

static void cleanup(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        cb_task_state_cleanup(&r->tasks[i]);
    cb_flow_cleanup(&r->flow);
}

static void a_lost_chunk_is_null_at_each_of_its_items(void **state)
{
    recs r;
    json_t *failed;
    (void)state;
    build(&r, "{\"kind\":\"map\",\"chunksize\":2,\"function\":{\"backend\":\"local\",\"name\":"
              "\"f\"},\"input\":{\"items\":[1,2,3,4,5]}}");
    ended(&r, 0, "[10, 20]", NULL);
    ended(&r, 1, NULL, "ValueError: no");
    ended(&r, 2, "[50]", NULL);
    cb_task_view v = view(&r);
    cb_test_expect_json(cb_result_of(&r.flow, &v, &failed), "[10, 20, null, null, 50]");
    cb_test_expect_json(failed, "[{\"index\": 2, \"error\": \"ValueError: no\"},"
                                " {\"index\": 3, \"error\": \"ValueError: no\"}]");
    cb_test_expect_json(cb_result_reduce_input(&r.flow, &v), "[10, 20, 50]");
    cleanup(&r);
}

static void nothing_lost_lists_nothing_and_null_outputs_stay(void **state)
{
    recs r;
    json_t *failed = json_true();
    (void)state;
    build(&r, "{\"kind\":\"map\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
              "\"input\":{\"range\":{\"start\":0,\"stop\":2}}}");
    ended(&r, 0, "[null]", NULL);
    ended(&r, 1, "[1]", NULL);
    cb_task_view v = view(&r);
    cb_test_expect_json(cb_result_of(&r.flow, &v, &failed), "[null, 1]");
    assert_null(failed);
    cleanup(&r);
}

static void the_list_of_lost_items_and_their_reasons_is_bounded(void **state)
{
    recs r;
    json_t *failed, *all;
    char long_error[1000];
    (void)state;
    memset(long_error, 'e', sizeof long_error - 1);
    long_error[sizeof long_error - 1] = '\0';
    build(&r, "{\"kind\":\"map\",\"chunksize\":1000,\"function\":{\"backend\":\"local\","
              "\"name\":\"f\"},\"input\":{\"range\":{\"start\":0,\"stop\":3000}}}");
    ended(&r, 0, NULL, long_error);
    ended(&r, 1, NULL, long_error);
    cb_task_view v = view(&r); /* task 2 never ran: pending */
    all = cb_result_map_outputs(&r.flow, &v, &failed);
    assert_int_equal(json_array_size(all), 3000);
    assert_true(json_is_null(json_array_get(all, 2999)));
    assert_int_equal(json_array_size(failed), CB_RESULT_MAX_FAILED);
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(failed, 0), "error"))),
                     CB_RESULT_MAX_ERROR);
    json_decref(all);
    json_decref(failed);
    cleanup(&r);
}

static void call_and_dag_results(void **state)
{
    recs r;
    json_t *failed;
    (void)state;
    build(&r, "{\"kind\":\"call\",\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
              "\"input\":1}");
    ended(&r, 0, "[null]", NULL);
    cb_task_view v = view(&r);
    cb_test_expect_json(cb_result_of(&r.flow, &v, &failed), "null"); /* a null result, not none */
    assert_null(failed);
    cleanup(&r);

    build(&r, "{\"kind\":\"dag\",\"tasks\":{\"a\":{\"function\":{\"backend\":\"local\","
              "\"name\":\"f\"}},\"b\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},"
              "\"depends\":[\"a\"]},\"c\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"}}}}");
    ended(&r, 0, "[1]", NULL);
    ended(&r, 1, "[2]", NULL);
    ended(&r, 2, "[3]", NULL);
    v = view(&r);
    cb_test_expect_json(cb_result_of(&r.flow, &v, NULL), "{\"b\": 2, \"c\": 3}");
    cleanup(&r);
}

/* Kept texts by task (NULL: none kept, the record's parsed output is used). */
static const char *kept_of(uint32_t task, size_t *n, void *arg)
{
    const char *const *kept = arg;
    if (task >= 4 || !kept[task])
        return NULL;
    *n = strlen(kept[task]);
    return kept[task];
}

static void a_maps_result_text_joins_kept_and_parsed_outputs(void **state)
{
    recs r;
    const char *kept[4] = {" [ 1 , {\"a\": [2]} ] \n", NULL, NULL, "[[]]"};
    char *text;
    size_t len = 0;
    json_t *parsed, *whole;
    (void)state;
    build(&r, "{\"kind\":\"map\",\"chunksize\":2,\"function\":{\"backend\":\"local\",\"name\":"
              "\"f\"},\"input\":{\"range\":{\"start\":0,\"stop\":7}}}");
    ended(&r, 0, "null", NULL); /* succeeded, its output only kept as text */
    ended(&r, 1, "[\"x\", 3.5]", NULL);
    ended(&r, 2, NULL, "lost");
    ended(&r, 3, "null", NULL);
    cb_task_view v = view(&r);
    text = cb_result_map_text(&r.flow, &v, kept_of, (void *)kept, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    parsed = json_loads(text, JSON_DECODE_ANY, NULL);
    cb_test_expect_json(parsed, "[1, {\"a\": [2]}, \"x\", 3.5, null, null, []]");
    free(text);
    /* the same as the parsed result once the kept texts are parsed */
    json_decref(r.tasks[0].output);
    r.tasks[0].output = json_loads(kept[0], 0, NULL);
    json_decref(r.tasks[3].output);
    r.tasks[3].output = json_loads(kept[3], 0, NULL);
    whole = cb_result_of(&r.flow, &v, NULL);
    text = cb_result_map_text(&r.flow, &v, NULL, NULL, &len);
    assert_non_null(text);
    parsed = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_true(json_equal(parsed, whole));
    json_decref(parsed);
    json_decref(whole);
    free(text);
    /* a kept text that is not an array is refused, not half-joined */
    kept[1] = "{\"a\": 1}";
    assert_null(cb_result_map_text(&r.flow, &v, kept_of, (void *)kept, &len));
    cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_lost_chunk_is_null_at_each_of_its_items),
        cmocka_unit_test(nothing_lost_lists_nothing_and_null_outputs_stay),
        cmocka_unit_test(the_list_of_lost_items_and_their_reasons_is_bounded),
        cmocka_unit_test(call_and_dag_results),
        cmocka_unit_test(a_maps_result_text_joins_kept_and_parsed_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
