/* tests/test_intake.c - the verdict on a submission: fields the schema
 * admits but this engine cannot honour yet are refused with their path,
 * never silently ignored. */
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "intake.h"
#include "cb_config.h"

static cb_intake_cfg cfg;
static cb_config *reg;
static cb_schema *schema;

static int setup(void **state)
{
    char err[256];
    (void)state;
    if (cb_config_load(CB_TESTS_DIR "/fixtures/functions.json", &reg, err, sizeof err) != CB_OK ||
        cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err) != CB_OK)
        return -1;
    cfg.schema = schema;
    cfg.reg = reg;
    cfg.max_bytes = 1 << 20;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb_schema_free(schema);
    cb_config_free(reg);
    return 0;
}

/* The verdict on `job` (tenant acme): "" when accepted, else every error
 * joined by "; ". */
static const char *verdict(const char *job, cb_status *st, char *buf, size_t n)
{
    cb_intake in;
    size_t i;
    json_t *e;
    *st = cb_intake_check(&cfg, "acme", job, strlen(job), "j1", &in);
    buf[0] = '\0';
    json_array_foreach(in.errors, i, e)
    {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", i ? "; " : "", json_string_value(e));
    }
    cb_intake_cleanup(&in);
    return buf;
}

#define MAP_REDUCE(fn, reduce_extra)                                                               \
    "{\"tenant\": \"acme\", \"kind\": \"map_reduce\", \"function\": {\"backend\": \"local\", "     \
    "\"name\": \"add7\"" fn "}, \"input\": {\"items\": [1, 2]}, \"reduce\": {\"function\": "       \
    "{\"backend\": \"local\", \"name\": \"sum\"}" reduce_extra "}}"

static void fields_without_effect_are_refused_with_their_path(void **state)
{
    char buf[1024];
    cb_status st;
    (void)state;
    /* memory_mb: a local function's process is limited; a built-in has none,
     * a remote backend's invocation takes no memory size */
    assert_string_equal(verdict(MAP_REDUCE(", \"memory_mb\": 512", ""), &st, buf, sizeof buf), "");
    assert_int_equal(st, CB_OK);
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"echo\", \"memory_mb\": 128}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/memory_mb: \"echo\" is built into the adapter and runs in no process of its "
        "own: there is nothing to limit");
    assert_int_equal(st, CB_EUNSUPP);
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": "
                "\"unreachable\", \"name\": \"f\", \"memory_mb\": 128}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/memory_mb: backend \"unreachable\" (http) takes no memory size with an "
        "invocation: the memory is the deployed function's own setting; set it there and leave "
        "memory_mb out");
    assert_int_equal(st, CB_EUNSUPP);
    verdict(MAP_REDUCE("", ", \"early\": true"), &st, buf, sizeof buf);
    assert_int_equal(st, CB_EUNSUPP);
    assert_true(!strncmp(buf, "/reduce/early: an early reduce is not supported", 47));
    /* SLA guarantees are evaluated by cb-sla: their constraints are checked here */
    assert_string_equal(
        verdict(
            "{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
            "\"name\": \"add7\"}, \"input\": 1, \"sla\": {\"deadline_ms\": 1000, "
            "\"guarantees\": [{\"name\": \"rt\", \"constraint\": \"[execution_time] < 100\"}]}}",
            &st, buf, sizeof buf),
        "");
    verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
            "\"name\": \"add7\"}, \"input\": 1, \"sla\": {\"guarantees\": [{\"name\": \"rt\", "
            "\"constraint\": \"[exec_time] < 100\"}, {\"name\": \"rt\", \"constraint\": "
            "\"[makespan] <\"}]}}",
            &st, buf, sizeof buf);
    assert_int_equal(st, CB_ESCHEMA);
    assert_true(
        !strncmp(buf, "/sla/guarantees/0/constraint: at 1: unknown metric \"exec_time\"", 62));
    assert_non_null(strstr(buf, "; /sla/guarantees/1/constraint: at 12: expected an operand"));
    assert_non_null(strstr(buf, "; /sla/guarantees/1/name: \"rt\" is guarantee 0's too"));
    verdict("{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
            "{\"backend\": \"local\", \"name\": \"noop\", \"memory_mb\": 256}}}}",
            &st, buf, sizeof buf);
    assert_true(!strncmp(buf, "/tasks/a/function/memory_mb: \"noop\" is built into", 49));
}

static void what_has_its_effect_is_accepted(void **state)
{
    char buf[1024];
    cb_status st;
    (void)state;
    assert_string_equal(
        verdict(MAP_REDUCE(", \"timeout_ms\": 1000", ", \"early\": false"), &st, buf, sizeof buf),
        "");
    assert_int_equal(st, CB_OK);
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"add7\"}, \"input\": 1, \"sla\": {\"deadline_ms\": 1000}}",
                &st, buf, sizeof buf),
        "");
    assert_int_equal(st, CB_OK);
}

/* A submission that is not JSON is refused with the parser's reason even
 * when the reason quotes bytes that are not UTF-8 (the error used to be
 * dropped: the reply carried no error at all; found by fuzz_intake). */
static void not_json_with_invalid_utf8_still_says_why(void **state)
{
    char buf[1024];
    cb_status st;
    /* jansson quotes the bad token cut inside a character: "near '\"job_id\\\xdf'" */
    const char job[] = "{\"job_id\\\xdf\xa9(\": 1}";
    (void)state;
    verdict(job, &st, buf, sizeof buf);
    assert_int_equal(st, CB_EINVAL);
    assert_true(!strncmp(buf, "/: not JSON: ", 13));
    verdict("\xff\xfe{", &st, buf, sizeof buf);
    assert_int_equal(st, CB_EINVAL);
    assert_true(!strncmp(buf, "/: not JSON: ", 13));
}

/* Which functions an account runs is read from the configuration. */
static void functions_are_checked_against_the_configuration(void **state)
{
    char buf[1024];
    cb_status st;
    (void)state;
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"nope\"}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/name: no local function named \"nope\"");
    assert_int_equal(st, CB_ESCHEMA);
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"gcp\", "
                "\"name\": \"f\"}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/backend: unknown backend \"gcp\" (not configured)");
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": "
                "\"unreachable\", \"name\": \"any\"}, \"input\": 1}",
                &st, buf, sizeof buf),
        ""); /* an http account with a {name} URL runs any name */
}

/* A pool's function must run on every member (a map's, a reduce's, a DAG
 * step's); memory_mb must suit every member. */
static void a_pool_s_function_runs_on_every_member(void **state)
{
    char buf[1024];
    cb_status st;
    (void)state;
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"map\", \"function\": {\"backend\": "
                "\"spread\", \"name\": \"add7\"}, \"input\": {\"items\": [1]}}",
                &st, buf, sizeof buf),
        "");
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"map\", \"function\": {\"backend\": "
                "\"spread\", \"name\": \"nope\"}, \"input\": {\"items\": [1]}}",
                &st, buf, sizeof buf),
        "/function/name: on \"local\" of pool \"spread\": no local function named \"nope\"");
    assert_int_equal(st, CB_ESCHEMA);
    assert_non_null(strstr(
        verdict("{\"tenant\": \"acme\", \"kind\": \"map\", \"function\": {\"backend\": "
                "\"spread\", \"name\": \"add7\", \"memory_mb\": 256}, \"input\": {\"items\": [1]}}",
                &st, buf, sizeof buf),
        "/function/memory_mb: backend \"unreachable\" (http) takes no memory size"));
    /* a reduce's or a DAG step's pool: its function on every member too */
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"map_reduce\", \"function\": {\"backend\": "
                "\"local\", \"name\": \"add7\"}, \"input\": {\"items\": [1, 2]}, \"reduce\": "
                "{\"function\": {\"backend\": \"spread\", \"name\": \"sum\"}}}",
                &st, buf, sizeof buf),
        "");
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
                "{\"backend\": \"spread\", \"name\": \"nope\"}, \"input\": 1}, \"b\": "
                "{\"function\": {\"backend\": \"local\", \"name\": \"add7\"}, \"input_from\": "
                "\"a\"}}}",
                &st, buf, sizeof buf),
        "/tasks/a/function/name: on \"local\" of pool \"spread\": no local function named "
        "\"nope\"");
}

/* A job's functions may run on at most 8 accounts, a pool's members counted
 * once each (docs/engine.md, "Jobs over several accounts"). */
static void a_job_runs_on_at_most_eight_accounts(void **state)
{
    char path[] = "/tmp/cb-intake-accounts-XXXXXX", err[256], buf[1024];
    const cb_config *fixture = cfg.reg;
    cb_config *wide;
    cb_status st;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    (void)state;
    assert_non_null(f);
    fputs("{\"backends\": {", f);
    for (int i = 1; i <= 9; i++)
        fprintf(f, "%s\"h%d\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:9/%d/{name}\"}",
                i > 1 ? ", " : "", i, i);
    fputs("}, \"pools\": {\"p8\": {\"members\": [\"h1\", \"h2\", \"h3\", \"h4\", \"h5\", "
          "\"h6\", \"h7\", \"h8\"]}}}",
          f);
    fclose(f);
    assert_int_equal(cb_config_load(path, &wide, err, sizeof err), CB_OK);
    unlink(path);
    cfg.reg = wide;
    /* the pool's 8 and h1 again: 8 accounts */
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
                "{\"backend\": \"p8\", \"name\": \"f\"}, \"input\": 1}, \"b\": {\"function\": "
                "{\"backend\": \"h1\", \"name\": \"f\"}, \"input_from\": \"a\"}}}",
                &st, buf, sizeof buf),
        "");
    /* and h9: 9 */
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
                "{\"backend\": \"p8\", \"name\": \"f\"}, \"input\": 1}, \"b\": {\"function\": "
                "{\"backend\": \"h9\", \"name\": \"f\"}, \"input_from\": \"a\"}}}",
                &st, buf, sizeof buf),
        "/: the job's functions run on 9 accounts (a pool's members counted), more than the 8 "
        "one job may use");
    assert_int_equal(st, CB_EUNSUPP);
    cfg.reg = fixture;
    cb_config_free(wide);
}

#define SHIPPED_CODE                                                                               \
    "{\"$cb_ref\": \"s3://cbcore/code/x.pkl\", \"size\": 10, \"sha256\": "                         \
    "\"0000000000000000000000000000000000000000000000000000000000000000\"}"

/* Shipped code runs on the local backend's "python" runtime only, and that
 * runtime needs code (docs/toolkit.md). */
static void shipped_code_only_on_the_python_runtime(void **state)
{
    char buf[1024];
    cb_status st;
    (void)state;
    assert_string_equal(
        verdict("{\"tenant\": \"acme\", \"kind\": \"map\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"python\", \"code\": " SHIPPED_CODE ", \"python\": \"3.11\"}, "
                "\"input\": {\"items\": [1]}}",
                &st, buf, sizeof buf),
        "");
    assert_int_equal(st, CB_OK);
    assert_non_null(strstr(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"add7\", \"code\": " SHIPPED_CODE "}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/code: shipped functions run on the local backend's \"python\" runtime"));
    assert_int_equal(st, CB_ESCHEMA);
    assert_non_null(strstr(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"python\"}, \"input\": 1}",
                &st, buf, sizeof buf),
        "/function/code: the \"python\" runtime runs shipped functions"));
    /* a reference without its digest is the schema's refusal */
    assert_non_null(strstr(
        verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
                "\"name\": \"python\", \"code\": {\"$cb_ref\": \"s3://b/k\", \"size\": 1}}, "
                "\"input\": 1}",
                &st, buf, sizeof buf),
        "/function/code"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_without_effect_are_refused_with_their_path),
        cmocka_unit_test(what_has_its_effect_is_accepted),
        cmocka_unit_test(not_json_with_invalid_utf8_still_says_why),
        cmocka_unit_test(functions_are_checked_against_the_configuration),
        cmocka_unit_test(a_pool_s_function_runs_on_every_member),
        cmocka_unit_test(a_job_runs_on_at_most_eight_accounts),
        cmocka_unit_test(shipped_code_only_on_the_python_runtime),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
