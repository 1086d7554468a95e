/* tests/test_config.c - the backends configuration (common/cb_config.c):
 * load errors that name the place, the schema check, and which functions an
 * account runs, decided from the configuration alone (the engine's intake
 * asks this; it links no backend code). */
#include "cb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cb_config.h"
#include "cb_cost.h"
#include "cb_schema.h"

#define FIXTURES CB_TESTS_DIR "/fixtures"

/* Load a configuration from text (through a temporary file, as daemons do). */
static cb_config *load_text(const char *text)
{
    char err[512] = "", path[] = "/tmp/cb-conf-XXXXXX";
    int fd = mkstemp(path);
    cb_config *c = NULL;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    if (cb_config_load(path, &c, err, sizeof err) != CB_OK)
        fail_msg("load: %s", err);
    unlink(path);
    return c;
}

/* Every backend type the configuration accepts has a backend in this build
 * and every backend of the build is a type the configuration knows. */
static void test_types_agree_with_the_backends(void **state)
{
    (void)state;
    assert_true(cb_config_type_count() >= 4);
    for (size_t i = 0; i < cb_config_type_count(); i++) {
        const cb_backend_ops *ops = cb_backend_find(cb_config_type_at(i));
        assert_non_null(ops);
        assert_string_equal(ops->name, cb_config_type_at(i));
    }
    assert_null(cb_config_type_at(cb_config_type_count()));
}

static void expect_runs(const cb_config *c, const char *acct, const char *fn, const char *why)
{
    char got[300] = "";
    cb_status s = cb_config_runs(c, acct, fn, got, sizeof got);
    if (!why) {
        assert_int_equal(s, CB_OK);
        return;
    }
    assert_int_equal(s, CB_ENOTFOUND);
    assert_string_equal(got, why);
}

static void test_which_functions_an_account_runs(void **state)
{
    cb_config *c =
        load_text("{\"backends\": {\"local\": {\"functions\": {\"wc\": {\"command\": [\"wc\"]}}},"
                  " \"gw\": {\"type\": \"http\", \"url\": \"http://gw/function/{name}\"},"
                  " \"fixed\": {\"type\": \"http\", \"url\": \"http://h/\","
                  "   \"functions\": {\"ce\": {\"url\": \"http://ce/\"}}},"
                  " \"lambda\": {\"region\": \"eu-west-1\"},"
                  " \"ow\": {\"type\": \"openwhisk\", \"url\": \"http://ow/\"},"
                  " \"gcf\": {\"type\": \"gcf\"}}}");
    (void)state;
    expect_runs(c, "local", "wc", NULL);
    expect_runs(c, "local", "noop", NULL); /* a built-in */
    expect_runs(c, "local", "nope", "no local function named \"nope\"");
    expect_runs(c, "gw", "anything", NULL); /* {name} URL */
    expect_runs(c, "fixed", "ce", NULL);
    expect_runs(c, "fixed", "other", "backend \"fixed\" has no function \"other\"");
    expect_runs(c, "lambda", "resize", NULL);
    expect_runs(c, "ow", "hello", NULL);
    expect_runs(c, "gcf", "f",
                "backend \"gcf\" is of type \"gcf\", which this build does not have");
    expect_runs(c, "azure", "f", "backend \"azure\" is not configured");
    cb_config_free(c);
}

static void test_config_errors_name_the_place(void **state)
{
    cb_config *r = NULL;
    char err[256] = "", path[] = "/tmp/cb-conf-XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "{\"backends\": {\"local\": {\"functions\": {\"f\": {\"mode\": \"hot\", "
                      "\"command\": [\"x\"]}}}}}";
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(cb_config_load(path, &r, err, sizeof err), CB_EINVAL);
    assert_string_equal(err, "/backends/local/functions/f/mode: must be \"warm\" or \"cold\"");
    unlink(path);
    assert_int_equal(cb_config_load("/nonexistent.json", &r, err, sizeof err), CB_ENOTFOUND);
    assert_int_equal(cb_config_load(NULL, &r, err, sizeof err), CB_OK);
    assert_non_null(cb_config_local_fn(r, "noop"));
    assert_null(cb_config_local_fn(r, "add7"));
    assert_true(cb_config_has_backend(r, "local"));
    assert_false(cb_config_has_backend(r, "lambda"));
    cb_config_free(r);
}

/* A daemon refuses a configuration whose keys have the wrong type or are
 * unknown, naming each path (it used to start with "lots" as 0: unlimited). */
static void test_configuration_is_checked_against_its_schema(void **state)
{
    cb_config *r = NULL;
    cb_schema *schema = NULL;
    char err[512] = "", path[] = "/tmp/cb-conf-XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "{\"backends\": {\"local\": {\"max_concurrency\": \"lots\", "
                      "\"max_concurency\": 4}}}";
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(cb_config_load(path, &r, err, sizeof err), CB_OK); /* it parses */
    assert_int_equal(cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err), CB_OK);
    assert_int_equal(cb_config_check(r, schema, err, sizeof err), CB_ESCHEMA);
    assert_non_null(strstr(err, "/backends/local/max_concurrency: expected integer, got string"));
    assert_non_null(strstr(err, "max_concurency"));
    cb_config_free(r);
    r = NULL;
    assert_int_not_equal(cb_config_daemon_load(path, "test", &r, &(cb_schema *){NULL}), 0);
    assert_null(r);
    unlink(path);
    /* the shipped configurations pass */
    assert_int_equal(cb_config_load(FIXTURES "/functions.json", &r, err, sizeof err), CB_OK);
    assert_int_equal(cb_config_check(r, schema, err, sizeof err), CB_OK);
    cb_config_free(r);
    cb_schema_free(schema);
}

/* An account's price (docs/engine.md, Cost): what it gives, zero for what
 * it does not, the default billed memory; a negative price is refused by
 * the schema and read as free. */
static void test_an_account_s_price(void **state)
{
    cb_config *c =
        load_text("{\"backends\": {"
                  "\"local\": {\"price\": {\"per_gb_s\": 0.5, \"per_request\": 0.25, "
                  "\"memory_mb\": 2048}},"
                  "\"fn\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:1/{name}\", "
                  "\"price\": {\"per_request\": 1}},"
                  "\"odd\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:1/{name}\", "
                  "\"price\": {\"per_gb_s\": -1}}}}");
    cb_schema *schema = NULL;
    char err[512];
    cb_price p;
    (void)state;
    cb_price_of(c, "local", &p);
    assert_true(p.per_gb_s == 0.5 && p.per_request == 0.25);
    assert_int_equal(p.memory_mb, 2048);
    cb_price_of(c, "fn", &p);
    assert_true(p.per_gb_s == 0 && p.per_request == 1);
    assert_int_equal(p.memory_mb, CB_COST_MEMORY_MB);
    cb_price_of(c, "odd", &p);
    assert_true(p.per_gb_s == 0);
    cb_price_of(c, "nosuch", &p);
    assert_true(p.per_gb_s == 0 && p.per_request == 0);
    assert_int_equal(cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err), CB_OK);
    assert_int_equal(cb_config_check(c, schema, err, sizeof err), CB_ESCHEMA);
    assert_non_null(strstr(err, "/backends/odd/price/per_gb_s"));
    cb_schema_free(schema);
    cb_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_agree_with_the_backends),
        cmocka_unit_test(test_which_functions_an_account_runs),
        cmocka_unit_test(test_config_errors_name_the_place),
        cmocka_unit_test(test_configuration_is_checked_against_its_schema),
        cmocka_unit_test(test_an_account_s_price),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
