/* tests/test_api_auth.c - cb-api's bearer tokens (api/auth.c): a token is
 * known by its SHA-256 only; a tenant token acts on its tenant, an operator
 * token on all; an unknown, missing or malformed header acts on none; no
 * token configured is an open API; bad entries are refused with where. */
#include "cb_test.h"

#include <string.h>

#include "auth.h"
#include "cb_digest.h"

static json_t *tokens(void)
{
    char a[65], o[65];
    assert_int_equal(cb_digest_hex("alice-secret", 12, a), CB_OK);
    assert_int_equal(cb_digest_hex("ops-secret", 10, o), CB_OK);
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "tenant", "alice", "sha256", a, "role", "operator",
                     "sha256", o);
}

static void a_token_acts_for_its_tenant_only(void **state)
{
    json_t *t = tokens();
    cb_api_auth *a;
    cb_api_who w;
    char err[200];
    (void)state;
    assert_int_equal(cb_api_auth_new(t, &a, err, sizeof err), CB_OK);
    assert_false(cb_api_auth_open(a));
    cb_api_auth_check(a, "Bearer alice-secret", &w);
    assert_int_equal(w.scope, CB_SCOPE_TENANT);
    assert_string_equal(w.tenant, "alice");
    assert_true(cb_api_may(&w, "alice"));
    assert_false(cb_api_may(&w, "bob"));
    assert_false(cb_api_may(&w, NULL));
    cb_api_auth_check(a, "bearer   ops-secret", &w); /* the scheme is case-insensitive */
    assert_int_equal(w.scope, CB_SCOPE_ALL);
    assert_true(cb_api_may(&w, "bob"));
    cb_api_auth_free(a);
    json_decref(t);
}

static void unknown_missing_and_malformed_act_for_nobody(void **state)
{
    json_t *t = tokens();
    cb_api_auth *a;
    cb_api_who w;
    char err[200], hex[65];
    const char *bad[] = {NULL,
                         "",
                         "Bearer ",
                         "Bearer wrong",
                         "Basic YWxpY2U6eA==",
                         "alice-secret",
                         "Bearer alice-secretX",
                         NULL};
    (void)state;
    assert_int_equal(cb_api_auth_new(t, &a, err, sizeof err), CB_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cb_api_auth_check(a, bad[i], &w);
        assert_int_equal(w.scope, CB_SCOPE_NONE);
        assert_false(cb_api_may(&w, "alice"));
    }
    /* the hash itself is not a token */
    assert_int_equal(cb_digest_hex("alice-secret", 12, hex), CB_OK);
    {
        char header[80];
        snprintf(header, sizeof header, "Bearer %s", hex);
        cb_api_auth_check(a, header, &w);
        assert_int_equal(w.scope, CB_SCOPE_NONE);
    }
    cb_api_auth_free(a);
    json_decref(t);
}

static void no_tokens_is_an_open_api(void **state)
{
    cb_api_auth *a;
    cb_api_who w;
    char err[200];
    json_t *empty = json_array();
    (void)state;
    assert_int_equal(cb_api_auth_new(NULL, &a, err, sizeof err), CB_OK);
    assert_true(cb_api_auth_open(a));
    cb_api_auth_check(a, NULL, &w);
    assert_int_equal(w.scope, CB_SCOPE_ALL);
    cb_api_auth_free(a);
    assert_int_equal(cb_api_auth_new(empty, &a, err, sizeof err), CB_OK);
    assert_true(cb_api_auth_open(a));
    cb_api_auth_free(a);
    json_decref(empty);
}

static void bad_entries_are_refused_with_where(void **state)
{
    const char *cases[][2] = {
        {"[{\"tenant\":\"a\",\"sha256\":\"abc\"}]", "/api/tokens/0/sha256"},
        {"[{\"tenant\":\"a\",\"sha256\":\"ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
         "0123456789\"}]",
         "/api/tokens/0/sha256"},
        {"[{\"sha256\":\"" /* neither tenant nor role */
         "0000000000000000000000000000000000000000000000000000000000000000\"},{}]",
         "/api/tokens/0"},
        {"[{\"tenant\":\"a b\",\"sha256\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\"}]",
         "/api/tokens/0"},
        {"[{\"role\":\"root\",\"sha256\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\"}]",
         "/api/tokens/0"},
        {"{}", "/api/tokens: not an array"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *t = json_loads(cases[i][0], 0, NULL);
        cb_api_auth *a = (cb_api_auth *)1;
        char err[200] = "";
        assert_non_null(t);
        assert_int_equal(cb_api_auth_new(t, &a, err, sizeof err), CB_EINVAL);
        assert_null(a);
        if (!strstr(err, cases[i][1]))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i][1]);
        json_decref(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_token_acts_for_its_tenant_only),
        cmocka_unit_test(unknown_missing_and_malformed_act_for_nobody),
        cmocka_unit_test(no_tokens_is_an_open_api),
        cmocka_unit_test(bad_entries_are_refused_with_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
