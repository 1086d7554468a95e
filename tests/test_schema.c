/* tests/test_schema.c - the JSON Schema validator: each keyword, $ref across
 * files, error paths and messages, and the project's own schemas. */
#define _GNU_SOURCE
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cb_schema.h"

typedef struct fixture {
    char dir[64];
    cb_schema *s;
} fixture;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *k_defs = "{\"$id\":\"defs.json\",\"$defs\":{"
                            "\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z]{1,4}$\"}}}";
static const char *k_main =
    "{\"$id\":\"main.json\",\"type\":\"object\",\"required\":[\"n\"],"
    "\"additionalProperties\":false,\"properties\":{"
    "\"n\":{\"$ref\":\"defs.json#/$defs/name\"},"
    "\"i\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
    "\"x\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1},"
    "\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":3},"
    "\"a\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3,"
    "\"uniqueItems\":true},"
    "\"e\":{\"enum\":[\"x\",1]},\"c\":{\"const\":{\"k\":1}},"
    "\"t\":{\"format\":\"date-time\"},"
    "\"o\":{\"type\":\"object\",\"minProperties\":1,\"maxProperties\":2,"
    "\"propertyNames\":{\"pattern\":\"^k\"},\"additionalProperties\":{\"type\":\"boolean\"}},"
    "\"one\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":5}]},"
    "\"any\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},"
    "\"no\":{\"not\":{\"const\":0}},"
    "\"cond\":{\"if\":{\"properties\":{\"k\":{\"const\":\"a\"}}},\"then\":{\"required\":[\"a\"]},"
    "\"else\":{\"required\":[\"b\"]}},"
    "\"dep\":{\"dependentSchemas\":{\"p\":{\"required\":[\"q\"]}}},"
    "\"local\":{\"$ref\":\"#/$defs/pos\"}},"
    "\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":0}}}";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/cbschema.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    write_file(f->dir, "defs.json", k_defs);
    write_file(f->dir, "main.json", k_main);
    if (cb_schema_load_dir(f->dir, &f->s, err, sizeof err) != CB_OK) {
        fprintf(stderr, "load: %s\n", err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    cb_schema_free(f->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Validate `json` against main.json; expect valid (NULL) or the first error. */
static void check(fixture *f, const char *json, const char *first_error)
{
    json_error_t je;
    json_t *inst = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je), *errors = NULL;
    assert_non_null(inst);
    cb_status s = cb_schema_validate(f->s, "main.json", inst, 10, &errors);
    if (!first_error) {
        if (s != CB_OK)
            fprintf(stderr, "unexpected: %s\n", json_string_value(json_array_get(errors, 0)));
        assert_int_equal(s, CB_OK);
    } else {
        assert_int_equal(s, CB_ESCHEMA);
        assert_true(json_array_size(errors) >= 1);
        if (strcmp(json_string_value(json_array_get(errors, 0)), first_error) != 0)
            fprintf(stderr, "got: %s\n", json_string_value(json_array_get(errors, 0)));
        assert_string_equal(json_string_value(json_array_get(errors, 0)), first_error);
        /* The verdict alone agrees. */
        assert_int_equal(cb_schema_validate(f->s, "main.json", inst, 1, NULL), CB_ESCHEMA);
    }
    json_decref(errors);
    json_decref(inst);
}

static void test_each_keyword_accepts_and_rejects(void **state)
{
    fixture *f = *state;
    check(f, "{\"n\":\"ab\"}", NULL);
    check(f,
          "{\"n\":\"ab\",\"i\":10,\"x\":0.5,\"s\":\"abc\",\"a\":[1,2],\"e\":1,"
          "\"c\":{\"k\":1},\"t\":\"2026-01-01T00:00:00+01:00\",\"o\":{\"k1\":true},"
          "\"one\":1,\"any\":null,\"no\":1,\"cond\":{\"k\":\"a\",\"a\":1},"
          "\"dep\":{\"p\":1,\"q\":2},\"local\":0}",
          NULL);
    check(f, "{}", "/: missing required property \"n\"");
    check(f, "{\"n\":\"ABC\"}", "/n: must match pattern ^[a-z]{1,4}$");
    check(f, "{\"n\":5}", "/n: expected string, got integer");
    check(f, "{\"n\":\"a\",\"zz\":1}", "/zz: unknown property");
    check(f, "{\"n\":\"a\",\"i\":0}", "/i: must be >= 1");
    check(f, "{\"n\":\"a\",\"i\":11}", "/i: must be <= 10");
    check(f, "{\"n\":\"a\",\"i\":1.5}", "/i: expected integer, got number");
    check(f, "{\"n\":\"a\",\"i\":2.0}", NULL); /* 2.0 is an integer in JSON Schema */
    check(f, "{\"n\":\"a\",\"x\":0}", "/x: must be > 0");
    check(f, "{\"n\":\"a\",\"x\":1}", "/x: must be < 1");
    check(f, "{\"n\":\"a\",\"s\":\"a\"}", "/s: must be at least 2 characters");
    check(f, "{\"n\":\"a\",\"s\":\"\xc3\xa9\xc3\xa9\"}", NULL); /* two code points */
    check(f, "{\"n\":\"a\",\"s\":\"abcd\"}", "/s: must be at most 3 characters");
    check(f, "{\"n\":\"a\",\"a\":[]}", "/a: must have at least 1 items");
    check(f, "{\"n\":\"a\",\"a\":[1,2,3,4]}", "/a: must have at most 3 items");
    check(f, "{\"n\":\"a\",\"a\":[1,\"x\"]}", "/a/1: expected integer, got string");
    check(f, "{\"n\":\"a\",\"a\":[1,1.0]}", "/a: items 0 and 1 are equal; they must be unique");
    check(f, "{\"n\":\"a\",\"e\":\"y\"}", "/e: must be one of [\"x\",1]");
    check(f, "{\"n\":\"a\",\"c\":{\"k\":2}}", "/c: must be {\"k\":1}");
    check(f, "{\"n\":\"a\",\"t\":\"2026-13-01T00:00:00Z\"}", "/t: must be an RFC 3339 date-time");
    check(f, "{\"n\":\"a\",\"o\":{}}", "/o: must have at least 1 properties");
    check(f, "{\"n\":\"a\",\"o\":{\"k1\":true,\"k2\":true,\"k3\":true}}",
          "/o: must have at most 2 properties");
    check(f, "{\"n\":\"a\",\"o\":{\"x\":true}}", "/o/x: property name \"x\" is not allowed");
    check(f, "{\"n\":\"a\",\"o\":{\"k\":1}}", "/o/k: expected boolean, got integer");
    check(f, "{\"n\":\"a\",\"one\":7}",
          "/one: matches 2 of the allowed forms, exactly one is required (oneOf)");
    check(f, "{\"n\":\"a\",\"any\":1}", "/any: matches none of the 2 allowed forms (anyOf)");
    check(f, "{\"n\":\"a\",\"no\":0}", "/no: must not be 0");
    check(f, "{\"n\":\"a\",\"cond\":{\"k\":\"a\"}}", "/cond: missing required property \"a\"");
    check(f, "{\"n\":\"a\",\"cond\":{\"k\":\"z\"}}", "/cond: missing required property \"b\"");
    check(f, "{\"n\":\"a\",\"dep\":{\"p\":1}}", "/dep: missing required property \"q\"");
    check(f, "{\"n\":\"a\",\"local\":-1}", "/local: must be >= 0");
    check(f, "[]", "/: expected object, got array");
}

static void test_paths_escape_json_pointer(void **state)
{
    fixture *f = *state;
    check(f, "{\"n\":\"a\",\"o\":{\"k/~\":1}}", "/o/k~1~0: expected boolean, got integer");
}

static void test_string_with_nul_never_matches_pattern(void **state)
{
    fixture *f = *state;
    check(f, "{\"n\":\"ab\\u0000cd\"}", "/n: must match pattern ^[a-z]{1,4}$");
}

static void test_unknown_ref_and_unknown_keyword(void **state)
{
    fixture *f = *state;
    json_t *inst = json_object();
    char dir[64] = "/tmp/cbschema2.XXXXXX", err[256] = "";
    cb_schema *s = NULL;

    assert_int_equal(cb_schema_validate(f->s, "nope.json", inst, 1, NULL), CB_ENOTFOUND);
    json_decref(inst);
    assert_non_null(mkdtemp(dir));
    write_file(dir, "x.json",
               "{\"$id\":\"x.json\",\"type\":\"object\",\"unevaluatedProperties\":false}");
    assert_int_equal(cb_schema_load_dir(dir, &s, err, sizeof err), CB_EINVAL);
    assert_non_null(strstr(err, "unsupported keyword \"unevaluatedProperties\""));
    write_file(dir, "x.json", "{\"pattern\":\"(\"}");
    assert_int_equal(cb_schema_load_dir(dir, &s, err, sizeof err), CB_EINVAL);
    write_file(dir, "x.json", "{\"a\":");
    assert_int_equal(cb_schema_load_dir(dir, &s, err, sizeof err), CB_EINVAL);
    assert_int_equal(cb_schema_load_dir("/nonexistent/dir", &s, err, sizeof err), CB_ENOTFOUND);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_project_schemas_load_and_judge_a_job(void **state)
{
    cb_schema *s = NULL;
    char err[256];
    json_t *errors = NULL;
    json_t *job =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[i,i]}}", "tenant", "acme", "kind", "map",
                  "function", "backend", "local", "name", "add7", "input", "items", 1, 2);
    (void)state;
    assert_int_equal(cb_schema_load_dir(cb_schema_default_dir(), &s, err, sizeof err), CB_OK);
    assert_int_equal(cb_schema_validate(s, "job.json", job, 5, NULL), CB_OK);
    json_object_set_new(json_object_get(job, "input"), "items", json_string("oops"));
    assert_int_equal(cb_schema_validate(s, "job.json", job, 5, &errors), CB_ESCHEMA);
    assert_string_equal(json_string_value(json_array_get(errors, 0)),
                        "/input/items: expected array, got string");
    json_decref(errors);
    json_decref(job);
    cb_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_keyword_accepts_and_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths_escape_json_pointer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_with_nul_never_matches_pattern, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_ref_and_unknown_keyword, setup, teardown),
        cmocka_unit_test(test_project_schemas_load_and_judge_a_job),
    };
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
