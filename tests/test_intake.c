/* tests/test_intake.c - the verdict on a submission: fields the schema
 * admits but this engine cannot honour yet are refused with their path,
 * never silently ignored. */
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "intake.h"
#include "registry.h"

static cb_intake_cfg cfg;
static cb_registry *reg;
static cb_schema *schema;

static int setup(void **state)
{
    char err[256];
    (void)state;
    if (cb_registry_load(CB_TESTS_DIR "/fixtures/functions.json", &reg, err, sizeof err) != CB_OK ||
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
    cb_registry_free(reg);
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
    assert_string_equal(verdict(MAP_REDUCE(", \"memory_mb\": 512", ""), &st, buf, sizeof buf),
                        "/function/memory_mb: function memory sizes are not supported by this "
                        "engine yet");
    assert_int_equal(st, CB_EUNSUPP);
    verdict(MAP_REDUCE("", ", \"early\": true"), &st, buf, sizeof buf);
    assert_int_equal(st, CB_EUNSUPP);
    assert_true(!strncmp(buf, "/reduce/early: an early reduce is not supported", 47));
    verdict("{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"local\", "
            "\"name\": \"add7\"}, \"input\": 1, \"sla\": {\"deadline_ms\": 1000, \"guarantees\": "
            "[{\"name\": \"rt\", \"constraint\": \"[execution_time] < 100\"}]}}",
            &st, buf, sizeof buf);
    assert_int_equal(st, CB_EUNSUPP);
    assert_true(!strncmp(buf, "/sla/guarantees: SLA guarantees are not supported", 49));
    verdict("{\"tenant\": \"acme\", \"kind\": \"dag\", \"tasks\": {\"a\": {\"function\": "
            "{\"backend\": \"local\", \"name\": \"add7\", \"memory_mb\": 256}}}}",
            &st, buf, sizeof buf);
    assert_true(!strncmp(buf, "/tasks/a/function/memory_mb: ", 29));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_without_effect_are_refused_with_their_path),
        cmocka_unit_test(what_has_its_effect_is_accepted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
