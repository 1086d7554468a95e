/* tests/test_secret.c - credentials by name and their redaction
 * (common/cb_secret.c). */
#include "cb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_secret.h"

static char dir[64];

static int setup(void **state)
{
    char path[128];
    FILE *f;
    (void)state;
    cb_secret_reset();
    snprintf(dir, sizeof dir, "/tmp/cbsecret.%d", (int)getpid());
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    if (system(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/faas-token", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("Bearer from-the-file-123\n", f);
    fclose(f);
    setenv("CB_SECRETS_DIR", dir, 1);
    unsetenv("CB_SECRET_FAAS_TOKEN");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cb_secret_reset();
    return system(cmd) == 0 ? 0 : -1;
}

static void test_resolve_reads_named_secrets(void **state)
{
    char err[512] = "";
    json_t *conf = json_pack("{s:s, s:{s:{s:s}}, s:{s:{s:{s:{s:s}}}}, s:{s:s}}", "url", "http://x",
                             "headers", "Authorization", "secret", "faas-token", "tenants", "alice",
                             "headers", "Authorization", "secret", "faas-token", "functions",
                             "api_key", "inline-key-456");
    json_t *r = cb_secret_resolve(conf, err, sizeof err);
    (void)state;
    assert_non_null(r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "headers"), "Authorization")),
        "Bearer from-the-file-123");
    /* the original is untouched (it is the configuration everyone reads) */
    assert_true(json_is_object(json_object_get(json_object_get(conf, "headers"), "Authorization")));
    /* the environment wins over the file */
    setenv("CB_SECRET_FAAS_TOKEN", "Bearer from-the-env-789", 1);
    json_decref(r);
    r = cb_secret_resolve(conf, err, sizeof err);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(r, "tenants"), "alice"), "headers"),
            "Authorization")),
        "Bearer from-the-env-789");
    json_decref(r);
    json_decref(conf);
}

static void test_a_missing_secret_is_named_with_its_path(void **state)
{
    char err[512] = "";
    json_t *conf = json_pack("{s:{s:{s:s}}}", "headers", "X-Key", "secret", "nowhere");
    (void)state;
    assert_null(cb_secret_resolve(conf, err, sizeof err));
    assert_non_null(strstr(err, "/headers/X-Key: secret \"nowhere\": not in $CB_SECRET_NOWHERE"));
    json_decref(conf);
    conf = json_pack("{s:{s:{s:i}}}", "headers", "X-Key", "secret", 3);
    assert_null(cb_secret_resolve(conf, err, sizeof err));
    json_decref(conf);
}

static void test_redaction_blanks_every_credential_used(void **state)
{
    char err[512], text[200];
    json_t *conf = json_pack("{s:{s:{s:s}}, s:s}", "headers", "Authorization", "secret",
                             "faas-token", "secret_access_key", "inline-key-456");
    json_t *r = cb_secret_resolve(conf, err, sizeof err), *out;
    (void)state;
    assert_non_null(r);
    snprintf(text, sizeof text, "401: denied for Bearer from-the-file-123 (inline-key-456)");
    assert_int_equal(cb_secret_redact(text), 2);
    assert_string_equal(text, "401: denied for ************************ (**************)");
    out = cb_secret_redact_json(json_pack("{s:s, s:[s, i], s:{s:s}}", "error",
                                          "echo Bearer from-the-file-123", "stderr",
                                          "x inline-key-456 y", 7, "output", "ok", "fine"));
    assert_string_equal(json_string_value(json_object_get(out, "error")),
                        "echo ************************");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "stderr"), 0)),
                        "x ************** y");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "output"), "ok")),
                        "fine");
    /* short texts are not taken for credentials: they would blank words */
    cb_secret_remember("abc");
    snprintf(text, sizeof text, "abc");
    assert_int_equal(cb_secret_redact(text), 0);
    json_decref(out);
    json_decref(r);
    json_decref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_reads_named_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_missing_secret_is_named_with_its_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redaction_blanks_every_credential_used, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
