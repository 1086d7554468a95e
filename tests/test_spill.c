/* tests/test_spill.c - outputs too large for the log (adapters/spill.c) on
 * the real file storage driver in a temporary directory: the largest items
 * go to storage until what stays fits, each replaced by a reference whose
 * object holds exactly the item's JSON text (size and sha256 checked); a
 * storage that cannot take them fails with the object named. */
#include "cb_test.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cb_digest.h"
#include "cb_json.h"
#include "cb_storage.h"
#include "spill.h"

typedef struct got {
    int done;
    cb_status s;
    json_t *out;
    char error[1400];
} got;

static void spilled(cb_status s, json_t *outputs, const char *error, void *ctx)
{
    got *g = ctx;
    g->done = 1;
    g->s = s;
    g->out = outputs;
    snprintf(g->error, sizeof g->error, "%s", error ? error : "");
}

static bool is_done(void *arg)
{
    return ((got *)arg)->done;
}

static char *big_string(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_the_largest_go_until_the_rest_fits(void **state)
{
    char dir[] = "/tmp/cbspill.XXXXXX", path[600], hex[65], err[300];
    struct event_base *base = cb_test_base();
    json_t *conf, *outs;
    cb_storage *st;
    char *a = big_string(100000, 'a'), *b = big_string(70000, 'b');
    got g = {0};
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/cbcore", dir);
    conf = json_pack("{s:s, s:s}", "driver", "file", "root", dir);
    assert_int_equal(cb_storage_new(base, conf, NULL, &st, err, sizeof err), CB_OK);
    outs = json_pack("[i, s, s, s]", 7, a, "small", b);
    {
        json_t *small = json_pack("[i]", 1);
        assert_false(cb_spill_needed(st, small));
        json_decref(small);
    }
    assert_true(cb_spill_needed(st, outs));
    /* no results bucket yet: the writes fail, naming the object */
    assert_int_equal(cb_spill(st, "acme", "j1", 3, 2, outs, spilled, &g, err, sizeof err), CB_OK);
    assert_true(cb_test_run_until(base, is_done, &g, 5000));
    assert_int_equal(g.s, CB_ENOTFOUND);
    assert_null(g.out);
    assert_non_null(strstr(g.error, "cannot store an output: s3://cbcore/results/acme/j1/3.2."));
    assert_non_null(strstr(g.error, "NoSuchBucket"));
    /* with the bucket: items 1 (100,000) and 3 (70,000) go, 0 and 2 stay */
    assert_int_equal(mkdir(path, 0755), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(cb_spill(st, "acme", "j1", 3, 2, outs, spilled, &g, err, sizeof err), CB_OK);
    assert_true(cb_test_run_until(base, is_done, &g, 5000));
    assert_int_equal(g.s, CB_OK);
    assert_int_equal(json_array_size(g.out), 4);
    assert_int_equal(json_integer_value(json_array_get(g.out, 0)), 7);
    assert_string_equal(json_string_value(json_array_get(g.out, 2)), "small");
    for (size_t i = 1; i <= 3; i += 2) {
        const json_t *ref = json_array_get(g.out, i);
        const char *url = json_string_value(json_object_get(ref, "$cb_ref"));
        char want_url[200], *text, file[700];
        FILE *f;
        long n;
        snprintf(want_url, sizeof want_url, "s3://cbcore/results/acme/j1/3.2.%zu.json", i);
        assert_string_equal(url, want_url);
        text = cb_json_dumps(json_array_get(outs, i), JSON_COMPACT | JSON_ENCODE_ANY);
        assert_int_equal(json_integer_value(json_object_get(ref, "size")), strlen(text));
        assert_int_equal(cb_digest_hex(text, strlen(text), hex), CB_OK);
        assert_string_equal(json_string_value(json_object_get(ref, "sha256")), hex);
        snprintf(file, sizeof file, "%s/cbcore/results/acme/j1/3.2.%zu.json", dir, i);
        assert_non_null(f = fopen(file, "rb"));
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fclose(f);
        assert_int_equal(n, (long)strlen(text)); /* the item's JSON text, exactly */
        free(text);
    }
    {
        char *rest = cb_json_dumps(g.out, JSON_COMPACT);
        assert_true(strlen(rest) <= cb_storage_inline_max(st));
        free(rest);
    }
    json_decref(g.out);
    json_decref(outs);
    json_decref(conf);
    cb_storage_free(st);
    event_base_free(base);
    free(a);
    free(b);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_largest_go_until_the_rest_fits),
    };
    return cmocka_run_group_tests_name("spill", tests, NULL, NULL);
}
