/* tests/test_flow.c - job descriptor -> flow: task counts, chunking, ranges,
 * reduce, DAG order, and the rejections (cycles, unknown steps, limits). */
#include "cb_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    assert_non_null(o);
    return o;
}

static void build_ok(const char *json, cb_flow *f)
{
    char err[256] = "";
    json_t *spec = parse(json);
    cb_status s = cb_flow_build(spec, 0, f, err, sizeof err);
    if (s != CB_OK)
        fprintf(stderr, "unexpected: %s\n", err);
    assert_int_equal(s, CB_OK);
    json_decref(spec); /* the flow keeps its own reference */
}

static void build_fails(const char *json, uint32_t max, const char *message)
{
    char err[256] = "";
    cb_flow f;
    json_t *spec = parse(json);
    assert_int_equal(cb_flow_build(spec, max, &f, err, sizeof err), CB_EINVAL);
    if (strcmp(err, message) != 0)
        fprintf(stderr, "got: %s\n", err);
    assert_string_equal(err, message);
    json_decref(spec);
}

static char *items_json(const cb_flow *f, uint32_t task)
{
    json_t *a = cb_flow_map_items(f, task);
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static void expect_items(const cb_flow *f, uint32_t task, const char *want)
{
    char *s = items_json(f, task);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_call_is_one_task(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"call\",\"input\":7}", &f);
    assert_int_equal(f.kind, CB_FLOW_CALL);
    assert_int_equal(f.tasks, 1);
    cb_flow_cleanup(&f);
}

static void test_map_chunks_items(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"map\",\"chunksize\":3,\"input\":{\"items\":[1,2,3,4,5,6,7,8,9,10]}}", &f);
    assert_int_equal(f.items, 10);
    assert_int_equal(f.map_tasks, 4);
    assert_int_equal(f.tasks, 4);
    expect_items(&f, 0, "[1,2,3]");
    expect_items(&f, 3, "[10]");
    assert_null(cb_flow_map_items(&f, 4));
    cb_flow_cleanup(&f);

    build_ok("{\"kind\":\"map\",\"input\":{\"items\":[]}}", &f);
    assert_int_equal(f.tasks, 0); /* nothing to do: the job succeeds with [] */
    cb_flow_cleanup(&f);
}

static void test_ranges_are_not_materialised(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"map\",\"chunksize\":100,\"input\":{\"range\":{\"start\":0,"
             "\"stop\":1000000}}}",
             &f);
    assert_int_equal(f.items, 1000000);
    assert_int_equal(f.map_tasks, 10000);
    assert_null(f.item_array);
    json_t *last = cb_flow_item(&f, 999999);
    assert_int_equal(json_integer_value(last), 999999);
    json_decref(last);
    cb_flow_cleanup(&f);

    build_ok("{\"kind\":\"map\",\"chunksize\":2,\"input\":{\"range\":{\"start\":10,\"stop\":3,"
             "\"step\":-3}}}",
             &f);
    assert_int_equal(f.items, 3); /* 10, 7, 4 */
    expect_items(&f, 0, "[10,7]");
    expect_items(&f, 1, "[4]");
    cb_flow_cleanup(&f);

    build_ok("{\"kind\":\"map\",\"input\":{\"range\":{\"start\":5,\"stop\":5}}}", &f);
    assert_int_equal(f.items, 0);
    cb_flow_cleanup(&f);

    build_ok("{\"kind\":\"map\",\"input\":{\"range\":{\"start\":-9223372036854775807,"
             "\"stop\":9223372036854775807,\"step\":4611686018427387904}}}",
             &f);
    assert_int_equal(f.items, 4); /* no overflow at the extremes */
    cb_flow_cleanup(&f);
}

static void test_map_reduce_adds_the_reduce_task(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"map_reduce\",\"input\":{\"items\":[1,2,3,4]},\"reduce\":{}}", &f);
    assert_int_equal(f.map_tasks, 4);
    assert_int_equal(f.tasks, 5);
    assert_int_equal(cb_flow_reduce_task(&f), 4);
    cb_flow_cleanup(&f);
}

static void test_task_limit(void **state)
{
    (void)state;
    build_fails("{\"kind\":\"map\",\"input\":{\"range\":{\"start\":0,\"stop\":1001}}}", 1000,
                "/input: 1001 tasks, more than the limit of 1000");
}

/* An objects input has no tasks until its plan; then one item per range,
 * objects in plan order, the last range of each cut at its size, an empty
 * object one empty range, chunksize grouping ranges as it groups items. */
static void test_objects_input_takes_its_ranges_from_the_plan(void **state)
{
    cb_flow f;
    char err[200];
    json_t *plan =
               json_loads("[{\"url\":\"s3://b/a\",\"etag\":\"e1\",\"size\":2500,\"chunk\":1000},"
                          " {\"url\":\"s3://b/empty\",\"etag\":\"e2\",\"size\":0,\"chunk\":1000},"
                          " {\"url\":\"s3://b/c\",\"etag\":\"e3\",\"size\":1000,\"chunk\":1000}]",
                          0, NULL),
           *it;
    (void)state;
    build_ok("{\"kind\":\"map_reduce\",\"chunksize\":2,\"reduce\":{},"
             "\"input\":{\"objects\":{\"bucket\":\"b\",\"split\":\"lines\"}}}",
             &f);
    assert_true(f.objects && !f.partitioned && f.split_lines);
    assert_int_equal(f.tasks, 0);
    assert_null(cb_flow_item(&f, 0));
    assert_int_equal(cb_flow_set_partition(&f, plan, 0, err, sizeof err), CB_OK);
    assert_int_equal(f.items, 5); /* 3 + 1 + 1 */
    assert_int_equal(f.map_tasks, 3);
    assert_int_equal(f.tasks, 4);
    it = cb_flow_item(&f, 2);
    cb_test_expect_json(it, "{\"url\":\"s3://b/a\",\"etag\":\"e1\",\"size\":2500,"
                            "\"range\":[2000,2500],\"part\":2,\"split\":\"lines\"}");
    it = cb_flow_item(&f, 3);
    cb_test_expect_json(it, "{\"url\":\"s3://b/empty\",\"etag\":\"e2\",\"size\":0,"
                            "\"range\":[0,0],\"part\":0,\"split\":\"lines\"}");
    it = cb_flow_item(&f, 4);
    cb_test_expect_json(it, "{\"url\":\"s3://b/c\",\"etag\":\"e3\",\"size\":1000,"
                            "\"range\":[0,1000],\"part\":0,\"split\":\"lines\"}");
    assert_null(cb_flow_item(&f, 5));
    it = cb_flow_map_items(&f, 1); /* items 2 and 3 */
    assert_int_equal(json_array_size(it), 2);
    json_decref(it);
    assert_int_equal(cb_flow_set_partition(&f, plan, 0, err, sizeof err), CB_EINVAL);
    cb_flow_cleanup(&f);
    /* an empty plan, a bad entry, too many ranges: refused with the reason */
    build_ok("{\"kind\":\"map\",\"input\":{\"objects\":{\"urls\":[\"s3://b/k\"]}}}", &f);
    it = json_array();
    assert_int_equal(cb_flow_set_partition(&f, it, 0, err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/input/objects: no objects to map over");
    json_decref(it);
    it = json_loads("[{\"url\":\"s3://b/a\",\"size\":-1,\"chunk\":1}]", 0, NULL);
    assert_int_equal(cb_flow_set_partition(&f, it, 0, err, sizeof err), CB_EINVAL);
    json_decref(it);
    assert_int_equal(cb_flow_set_partition(&f, plan, 2, err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/input: 5 tasks, more than the limit of 2");
    cb_flow_cleanup(&f);
    json_decref(plan);
    /* the range size of one object */
    it = json_loads("{\"chunk_number\":4}", 0, NULL);
    assert_true(cb_flow_object_chunk(it, 10) == 3);
    assert_true(cb_flow_object_chunk(it, 0) == 1);
    json_decref(it);
    assert_true(cb_flow_object_chunk(NULL, 5) == CB_FLOW_CHUNK_BYTES);
    assert_true(cb_flow_object_parts(0, 10) == 1 && cb_flow_object_parts(10, 10) == 1 &&
                cb_flow_object_parts(11, 10) == 2);
}

static void test_dag_diamond_order_and_implicit_deps(void **state)
{
    cb_flow f;
    int pos[4];
    (void)state;
    build_ok("{\"kind\":\"dag\",\"tasks\":{"
             "\"D\":{\"input_from\":[\"B\",\"C\"]},"
             "\"B\":{\"input_from\":\"A\"},"
             "\"C\":{\"depends\":[\"A\"],\"when\":{\"step\":\"A\",\"op\":\"truthy\"}},"
             "\"A\":{\"input\":1}}}",
             &f);
    assert_int_equal(f.tasks, 4);
    /* task indices follow the names */
    assert_int_equal(cb_flow_step_index(&f, "A"), 0);
    assert_int_equal(cb_flow_step_index(&f, "D"), 3);
    assert_int_equal(cb_flow_step_index(&f, "E"), -1);
    assert_int_equal(f.steps[3].ndeps, 2);
    assert_int_equal(f.steps[2].ndeps, 1); /* depends + when on the same step: once */
    for (int i = 0; i < 4; i++)
        pos[f.order[i]] = i;
    assert_true(pos[0] < pos[1] && pos[0] < pos[2]);
    assert_true(pos[1] < pos[3] && pos[2] < pos[3]);
    cb_flow_cleanup(&f);
}

/* The account whose capacity shapes a job: its function's; a DAG's, the
 * one most of its steps name (it used to be "local", the job-level
 * function a DAG has not, whatever its steps ran on). */
static void test_the_backend_that_shapes_a_job(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"map\",\"function\":{\"backend\":\"lambda\",\"name\":\"f\"},"
             "\"input\":{\"items\":[1]}}",
             &f);
    assert_string_equal(cb_flow_backend(&f), "lambda");
    cb_flow_cleanup(&f);
    build_ok("{\"kind\":\"dag\",\"tasks\":{"
             "\"a\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"input\":1},"
             "\"b\":{\"function\":{\"backend\":\"ow\",\"name\":\"f\"},\"input_from\":\"a\"},"
             "\"c\":{\"function\":{\"backend\":\"ow\",\"name\":\"f\"},\"input_from\":\"b\"}}}",
             &f);
    assert_string_equal(cb_flow_backend(&f), "ow");
    cb_flow_cleanup(&f);
    build_ok("{\"kind\":\"dag\",\"tasks\":{\"a\":{\"input\":1}}}", &f); /* none named */
    assert_string_equal(cb_flow_backend(&f), "local");
    cb_flow_cleanup(&f);
}

static void test_the_lanes_of_a_job_over_several_accounts(void **state)
{
    cb_flow f;
    char dag[1024];
    size_t n;
    (void)state;
    build_ok("{\"kind\":\"map\",\"function\":{\"backend\":\"lambda\",\"name\":\"f\"},"
             "\"input\":{\"items\":[1]}}",
             &f);
    assert_int_equal(f.nlanes, 1);
    assert_string_equal(f.lanes[0], "lambda");
    assert_int_equal(cb_flow_lane(&f, 0, -1), 0);
    cb_flow_cleanup(&f);
    build_ok("{\"kind\":\"map_reduce\",\"function\":{\"backend\":\"lambda\",\"name\":\"f\"},"
             "\"input\":{\"items\":[1,2]},\"reduce\":{\"function\":{\"backend\":\"ow\","
             "\"name\":\"g\"}}}",
             &f);
    assert_int_equal(f.nlanes, 2);
    assert_string_equal(f.lanes[1], "ow");
    assert_int_equal(cb_flow_lane(&f, 1, -1), 0);                       /* a map task */
    assert_int_equal(cb_flow_lane(&f, cb_flow_reduce_task(&f), -1), 1); /* the reduce */
    cb_flow_cleanup(&f);
    /* steps in index (name) order: a local, b ow, c local (no backend), d ow */
    build_ok("{\"kind\":\"dag\",\"tasks\":{"
             "\"a\":{\"function\":{\"backend\":\"local\",\"name\":\"f\"},\"input\":[1]},"
             "\"b\":{\"function\":{\"backend\":\"ow\",\"name\":\"f\"},\"foreach\":\"a\"},"
             "\"c\":{\"input\":1},"
             "\"d\":{\"function\":{\"backend\":\"ow\",\"name\":\"f\"},\"input\":1}}}",
             &f);
    assert_int_equal(f.nlanes, 2);
    assert_string_equal(f.lanes[0], "local");
    assert_string_equal(f.lanes[1], "ow");
    assert_int_equal(f.steps[cb_flow_step_index(&f, "c")].lane, 0);
    assert_int_equal(f.steps[cb_flow_step_index(&f, "d")].lane, 1);
    assert_int_equal(cb_flow_lane(&f, 9, cb_flow_step_index(&f, "b")), 1); /* b's child */
    cb_flow_cleanup(&f);
    /* nine accounts: refused */
    n = (size_t)snprintf(dag, sizeof dag, "{\"kind\":\"dag\",\"tasks\":{");
    for (int i = 0; i < 9; i++)
        n += (size_t)snprintf(dag + n, sizeof dag - n,
                              "%s\"s%d\":{\"function\":{\"backend\":\"b%d\",\"name\":\"f\"},"
                              "\"input\":1}",
                              i ? "," : "", i, i);
    snprintf(dag + n, sizeof dag - n, "}}");
    build_fails(dag, 0, "/: the job's functions name more than 8 backends or pools");
}

static void test_dag_foreach(void **state)
{
    cb_flow f;
    (void)state;
    build_ok("{\"kind\":\"dag\",\"tasks\":{\"list\":{\"input\":[1,2]},"
             "\"each\":{\"foreach\":\"list\"}}}",
             &f);
    int32_t each = cb_flow_step_index(&f, "each");
    assert_int_equal(f.steps[each].foreach, cb_flow_step_index(&f, "list"));
    assert_int_equal(f.steps[each].ndeps, 1);
    cb_flow_cleanup(&f);
}

static void test_dag_rejections(void **state)
{
    (void)state;
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{\"depends\":[\"B\"]},"
                "\"B\":{\"depends\":[\"C\"]},\"C\":{\"depends\":[\"A\"]}}}",
                0, "/tasks/A: the steps' dependencies form a cycle");
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{},\"B\":{\"depends\":[\"X\"]}}}", 0,
                "/tasks/B/depends: no step named \"X\"");
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{\"input_from\":\"A\"}}}", 0,
                "/tasks/A/input_from: a step cannot depend on itself");
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{\"foreach\":\"nope\"}}}", 0,
                "/tasks/A/foreach: no step named \"nope\"");
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{},\"B\":{\"when\":{\"step\":\"Z\"}}}}", 0,
                "/tasks/B/when/step: no step named \"Z\"");
    build_fails("{\"kind\":\"dag\",\"tasks\":{\"A\":{\"depends\":[\"B\"]},\"B\":{\"depends\":"
                "[\"A\"]},\"C\":{}}}",
                0, "/tasks/A: the steps' dependencies form a cycle");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_is_one_task),
        cmocka_unit_test(test_map_chunks_items),
        cmocka_unit_test(test_ranges_are_not_materialised),
        cmocka_unit_test(test_map_reduce_adds_the_reduce_task),
        cmocka_unit_test(test_task_limit),
        cmocka_unit_test(test_objects_input_takes_its_ranges_from_the_plan),
        cmocka_unit_test(test_dag_diamond_order_and_implicit_deps),
        cmocka_unit_test(test_dag_foreach),
        cmocka_unit_test(test_the_backend_that_shapes_a_job),
        cmocka_unit_test(test_the_lanes_of_a_job_over_several_accounts),
        cmocka_unit_test(test_dag_rejections),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
