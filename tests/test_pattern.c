/* tests/test_pattern.c - cb_pattern gives regexec()'s answer: on every
 * pattern of the project's schemas and on hand-picked forms, for strings
 * built to match and mutated copies of them, random strings and long ones. */
#include "cb_test.h"

#include <dirent.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_pattern.h"

/* Forms the fast path takes and forms it leaves to regexec. */
static const char *const extra[] = {
    "^a*b*c*$",
    "^[^/]+/?$",
    "^x{2,4}y?$",
    "^.*$",
    "^\\.$",
    "^[a-]$",
    "^[]a]$",
    "^(a|b)$",
    "^a{0,0}$",
    "^[0-9]{1,2}%$",
    "^[[:alpha:]]+$",
    "^",
    "^$",
    "^a+a+a+a+b$",
    "^[^a-c]{2,}$",
    "abc",
    "^ab$c",
    "^\\/x\\-$",
    "^[\\.]$",
    "^a{3}$",
    "^.{0,5}x",
    "^[a-z]*[a-z]{2}$",
    "^[A-Za-z0-9_.:/@+=-]{1,256}$",
    "^https?://[^/]+/?$",
};

typedef struct patterns {
    char *v[256];
    int n;
} patterns;

static void collect(const json_t *j, patterns *ps)
{
    const char *k;
    const json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, v)
        {
            if (!strcmp(k, "pattern") && json_is_string(v) && ps->n < 256)
                ps->v[ps->n++] = strdup(json_string_value(v));
            else
                collect(v, ps);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) collect(v, ps);
    }
}

static void schema_patterns(patterns *ps)
{
    DIR *d = opendir(CB_SCHEMA_DIR);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d))) {
        char path[600];
        json_t *j;
        if (!strstr(e->d_name, ".json"))
            continue;
        snprintf(path, sizeof path, "%s/%s", CB_SCHEMA_DIR, e->d_name);
        j = json_load_file(path, 0, NULL);
        assert_non_null(j);
        collect(j, ps);
        json_decref(j);
    }
    closedir(d);
}

static long compared, matched, simple;

static void same_answer(const cb_pattern *p, const regex_t *re, const char *src, const char *s)
{
    bool fast = cb_pattern_match(p, s, strlen(s));
    bool slow = regexec(re, s, 0, NULL, 0) == 0;
    if (fast != slow)
        fail_msg("pattern %s on \"%s\": cb_pattern %d, regexec %d", src, s, fast, slow);
    compared++;
    matched += slow;
}

static void check_pattern(const char *src, unsigned *seed)
{
    regex_t re;
    cb_pattern *p = cb_pattern_compile(src);
    char s[2100];
    if (regcomp(&re, src, REG_EXTENDED | REG_NOSUB) != 0) {
        assert_null(p);
        return;
    }
    assert_non_null(p);
    simple += cb_pattern_is_simple(p);
    for (int i = 0; i < 3000; i++) {
        size_t n = cb_pattern_sample(p, seed, s, sizeof s);
        int how = rand_r(seed) % 6;
        if (!cb_pattern_is_simple(p) || how == 5) { /* random bytes, any length */
            n = (size_t)(rand_r(seed) % 300);
            for (size_t k = 0; k < n; k++)
                s[k] = (char)(1 + rand_r(seed) % 255);
            s[n] = '\0';
        } else if (how == 1 && n > 0) { /* one byte changed */
            s[rand_r(seed) % n] = (char)(1 + rand_r(seed) % 255);
        } else if (how == 2 && n + 1 < sizeof s) { /* one byte inserted */
            size_t at = (size_t)rand_r(seed) % (n + 1);
            memmove(s + at + 1, s + at, n - at + 1);
            s[at] = "a/-.:9Z_%"[rand_r(seed) % 9];
        } else if (how == 3 && n > 0) { /* one byte dropped */
            size_t at = (size_t)rand_r(seed) % n;
            memmove(s + at, s + at + 1, n - at);
        } else if (how == 4) { /* the sample repeated: a long string */
            size_t k = n;
            for (; k + 1 < sizeof s && k < n + 1500; k++)
                s[k] = n ? s[k - n] : 'a';
            s[k] = '\0';
        }
        same_answer(p, &re, src, s);
    }
    /* A NUL inside never matches, whatever precedes it. */
    assert_false(cb_pattern_match(p, "a\0b", 3));
    regfree(&re);
    cb_pattern_free(p);
}

static void test_fast_matcher_agrees_with_regexec(void **state)
{
    patterns ps = {.n = 0};
    unsigned seed = 20261203;
    (void)state;
    schema_patterns(&ps);
    assert_true(ps.n >= 10);
    for (int i = 0; i < ps.n; i++) {
        check_pattern(ps.v[i], &seed);
        free(ps.v[i]);
    }
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        check_pattern(extra[i], &seed);
    /* The comparison means something: both answers occur, and most of
     * the schemas' patterns take the fast path. */
    assert_true(matched > compared / 10);
    assert_true(matched < compared * 9 / 10);
    assert_true(simple >= 20);
}

static void test_schema_forms_take_the_fast_path(void **state)
{
    const char *fast[] = {"^[A-Za-z0-9_-]{1,128}$", "^[0-9a-f]{64}$", "^https?://",
                          "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "^3\\.[0-9]{1,2}$"};
    const char *slow[] = {"^(s3|https?)://", "^[[:digit:]]$", "a$"};
    (void)state;
    for (size_t i = 0; i < sizeof fast / sizeof *fast; i++) {
        cb_pattern *p = cb_pattern_compile(fast[i]);
        assert_true(cb_pattern_is_simple(p));
        cb_pattern_free(p);
    }
    for (size_t i = 0; i < sizeof slow / sizeof *slow; i++) {
        cb_pattern *p = cb_pattern_compile(slow[i]);
        assert_non_null(p);
        assert_false(cb_pattern_is_simple(p));
        cb_pattern_free(p);
    }
    assert_null(cb_pattern_compile("^[a-"));
    assert_null(cb_pattern_compile("^(a"));
}

/* A pattern whose backtracking would explode hands the input to regexec
 * and still answers. */
static void test_backtracking_is_bounded(void **state)
{
    cb_pattern *p = cb_pattern_compile("^a*a*a*a*a*a*a*a*b$");
    char s[4001];
    (void)state;
    memset(s, 'a', 4000);
    s[4000] = '\0';
    assert_true(cb_pattern_is_simple(p));
    assert_false(cb_pattern_match(p, s, 4000));
    s[3999] = 'b';
    assert_true(cb_pattern_match(p, s, 4000));
    cb_pattern_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_matcher_agrees_with_regexec),
        cmocka_unit_test(test_schema_forms_take_the_fast_path),
        cmocka_unit_test(test_backtracking_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
