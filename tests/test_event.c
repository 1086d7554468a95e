/* tests/test_event.c - the CloudEvents codec. */
#include "cb_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_event.h"
#include "cb_partition.h"

static const char *good =
    "{\"specversion\":\"1.0\",\"id\":\"acme/j1/3/1/succeeded\",\"source\":\"cbcore/adapter\","
    "\"type\":\"cb.task.succeeded\",\"subject\":\"j1/3\",\"time\":\"2026-11-27T04:02:22.123456Z\","
    "\"cbtenant\":\"acme\",\"cbjob\":\"j1\",\"datacontenttype\":\"application/json\","
    "\"data\":{\"task\":3,\"attempt\":1,\"output\":10}}";

static void test_decode_good_event(void **state)
{
    cb_event ev;
    char err[128];
    (void)state;
    assert_int_equal(cb_event_decode(good, strlen(good), &ev, err, sizeof err), CB_OK);
    assert_int_equal(ev.type, CB_EV_TASK_SUCCEEDED);
    assert_string_equal(ev.id, "acme/j1/3/1/succeeded");
    assert_string_equal(ev.tenant, "acme");
    assert_string_equal(ev.job, "j1");
    assert_string_equal(ev.subject, "j1/3");
    assert_true(ev.time_ns == 1795752142123456000LL);
    assert_int_equal(json_integer_value(json_object_get(ev.data, "output")), 10);
    cb_event_cleanup(&ev);
}

static void test_encode_then_decode_is_identity(void **state)
{
    cb_event ev, back;
    char *s1, *s2;
    size_t n1, n2;
    (void)state;
    assert_int_equal(cb_event_decode(good, strlen(good), &ev, NULL, 0), CB_OK);
    assert_int_equal(cb_event_encode(&ev, &s1, &n1), CB_OK);
    /* Same attribute order and values as the input, which is canonical. */
    assert_string_equal(s1, good);
    assert_int_equal(cb_event_decode(s1, n1, &back, NULL, 0), CB_OK);
    assert_int_equal(cb_event_encode(&back, &s2, &n2), CB_OK);
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);
    cb_event_cleanup(&ev);
    cb_event_cleanup(&back);
}

static void expect_bad(const char *json, cb_status want, const char *needle)
{
    cb_event ev;
    char err[256] = "";
    assert_int_equal(cb_event_decode(json, strlen(json), &ev, err, sizeof err), want);
    assert_non_null(strstr(err, needle));
    assert_int_equal(ev.type, CB_EV_UNKNOWN);
    assert_null(ev.data);
}

static char *with(const char *from, const char *to)
{
    const char *p = strstr(good, from);
    size_t n = strlen(good) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    assert_non_null(p);
    snprintf(s, n, "%.*s%s%s", (int)(p - good), good, to, p + strlen(from));
    return s;
}

static void test_decode_rejects_each_envelope_mistake(void **state)
{
    static const struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"\"specversion\":\"1.0\"", "\"specversion\":\"0.3\"", "/specversion"},
        {"\"cb.task.succeeded\"", "\"cb.task.exploded\"", "/type"},
        {"\"id\":\"acme/j1/3/1/succeeded\"", "\"id\":\"\"", "/id"},
        {"\"time\":\"2026-11-27T04:02:22.123456Z\"", "\"time\":\"yesterday\"", "/time"},
        {"\"cbtenant\":\"acme\"", "\"cbtenant\":\"ac me\"", "/cbtenant"},
        {"\"cbjob\":\"j1\"", "\"cbjob\":\"j.1\"", "/cbjob"},
        {"\"application/json\"", "\"text/plain\"", "/datacontenttype"},
        {"\"data\":{\"task\":3,\"attempt\":1,\"output\":10}", "\"data\":[1]", "/data"},
        {"\"source\":\"cbcore/adapter\",", "", "/source"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = with(cases[i].from, cases[i].to);
        expect_bad(s, CB_ESCHEMA, cases[i].needle);
        free(s);
    }
    expect_bad("{\"specversion\":", CB_EINVAL, "invalid JSON");
    expect_bad("[1,2]", CB_ESCHEMA, "expected an object");
    expect_bad("{\"a\":1,\"a\":2}", CB_EINVAL, "duplicate");
}

/* The fast decoder and the full one agree on every text: the same status,
 * the same error, the same event. */
static void agree(const char *text, size_t len)
{
    cb_event a, b;
    char ea[256] = "", eb[256] = "", *sa = NULL, *sb = NULL;
    size_t na, nb;
    cb_status x = cb_event_decode(text, len, &a, ea, sizeof ea);
    cb_status y = cb_event_decode_full(text, len, &b, eb, sizeof eb);
    if (x != y || strcmp(ea, eb) != 0)
        fprintf(stderr, "disagree on %.*s: %d %s / %d %s\n", (int)len, text, x, ea, y, eb);
    assert_int_equal(x, y);
    assert_string_equal(ea, eb);
    if (x == CB_OK) {
        assert_int_equal(cb_event_encode(&a, &sa, &na), CB_OK);
        assert_int_equal(cb_event_encode(&b, &sb, &nb), CB_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(sa, sb, na);
        assert_string_equal(a.subject, b.subject);
        free(sa);
        free(sb);
    }
    cb_event_cleanup(&a);
    cb_event_cleanup(&b);
}

static void test_fast_and_full_decoders_agree(void **state)
{
    static const char *const edits[][2] = {
        {"\"acme/j1/3/1/succeeded\"", "\"acme\\/j1\""},         /* an escape */
        {"\"cbcore/adapter\"", "\"caf\xc3\xa9\""},              /* UTF-8 */
        {"\"cbcore/adapter\"", "\"bad \xc3\""},                 /* broken UTF-8 */
        {"\"cbjob\":\"j1\"", "\"cbjob\":\"j1\",\"ext\":\"x\""}, /* an extension */
        {"\"cbjob\":\"j1\"", "\"cbjob\":\"j1\",\"cbjob\":\"j2\""},
        {"\"cbjob\":\"j1\"", "\"cbjob\":\"j\\u0000\""},
        {"\"cbjob\":\"j1\"", "\"cbjob\":null"},
        {"\"cbjob\":\"j1\"", "\"cbjob\":7"},
        {"\"output\":10", "\"output\":\"}{][\\\"\""}, /* brackets in a string */
        {"\"output\":10", "\"output\":{\"a\":[1,{\"b\":2}]}"},
        {"\"output\":10", "\"output\":10,\"output\":11"}, /* repeated in data */
        {"\"output\":10", "\"output\":tru"},
        {"\"output\":10}}", "\"output\":10}} x"}, /* trailing text */
        {"\"output\":10}}", "\"output\":10}}}"},
        {"\"output\":10}}", "\"output\":10}  \n"},
        {"{\"specversion\"", " \t{ \"specversion\" "},
        {":\"1.0\",", " : \"1.0\" , "},
        {"\"data\":{", "\"data\":{},\"x\":{"},
        {",\"data\":{\"task\":3,\"attempt\":1,\"output\":10}", ""},
        {"\"data\":{\"task\":3,\"attempt\":1,\"output\":10}", "\"data\":\"{}\""},
        {"\"id\":\"acme/j1/3/1/succeeded\"", "\"id\":\"\""},
    };
    unsigned seed = 12345;
    size_t n = strlen(good);
    char *buf = malloc(n + 64);
    (void)state;
    agree(good, n);
    agree("", 0);
    agree("{}", 2);
    agree("{\"data\":{}}", 12);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *s = with(edits[i][0], edits[i][1]);
        agree(s, strlen(s));
        free(s);
    }
    for (int i = 0; i < 20000; i++) { /* one to three bytes changed, dropped or added */
        size_t m = n;
        memcpy(buf, good, n);
        for (int k = 0, edits_n = 1 + (int)(rand_r(&seed) % 3); k < edits_n; k++) {
            size_t at = rand_r(&seed) % m;
            int how = (int)(rand_r(&seed) % 3);
            static const char pool[] = "{}[]\":,\\ 0a\x80\x01";
            char c = pool[rand_r(&seed) % (sizeof pool - 1)];
            if (how == 0) {
                buf[at] = c;
            } else if (how == 1 && m > 1) {
                memmove(buf + at, buf + at + 1, m - at - 1);
                m--;
            } else {
                memmove(buf + at + 1, buf + at, m - at);
                buf[at] = c;
                m++;
            }
        }
        agree(buf, m);
    }
    free(buf);
}

/* The partition function is part of the log's format: a job's partition is
 * recorded at intake and every later reader relies on the same answer. */
static void test_a_job_s_partition_is_fixed_and_spread(void **state)
{
    unsigned count[8] = {0};
    (void)state;
    assert_int_equal(cb_partition_of("acme", "j1", 0), 0);
    assert_int_equal(cb_partition_of("acme", "j1", 1), 0);
    /* pinned: FNV-1a 64 of "acme/j1" is 0x7a11096c7f317fbd */
    assert_int_equal(cb_partition_of("acme", "j1", 64), 61);
    assert_int_equal(cb_partition_of("acme", "j1", 7), 1);
    /* "a/bc" and "ab/c" are different jobs */
    assert_true(cb_partition_of("a", "bc", 64) != cb_partition_of("ab", "c", 64) ||
                cb_partition_of("a", "bc", 63) != cb_partition_of("ab", "c", 63));
    for (int i = 0; i < 8000; i++) {
        char job[16];
        snprintf(job, sizeof job, "job-%d", i);
        count[cb_partition_of("acme", job, 8)]++;
    }
    for (int k = 0; k < 8; k++) /* ~1000 each: none starved, none doubled */
        assert_in_range(count[k], 850, 1150);
    assert_int_equal(cb_partition_of_pattern("cb.evt.acme.>"), 0);
    assert_int_equal(cb_partition_of_pattern("cb.evp.3.*.*"), 3);
    assert_int_equal(cb_partition_of_pattern("cb.evp.x.>"), -1);
    assert_int_equal(cb_partition_of_pattern("cb.done.acme.j"), -1);
    assert_string_equal(cb_partition_rest("cb.evp.12.~end"), "~end");
    assert_string_equal(cb_partition_rest("cb.evt.~end"), "~end");
    {
        uint64_t set = 0;
        char text[64];
        assert_int_equal(cb_partition_set_parse("0,2", 4, &set), 0);
        assert_int_equal(set, 0x5);
        assert_int_equal(cb_partition_set_parse("1-3,5", 8, &set), 0);
        assert_int_equal(set, 0x2e);
        assert_string_equal(cb_partition_set_text(set, text, sizeof text), "1-3,5");
        assert_int_equal(cb_partition_set_count(set), 4);
        assert_int_equal(cb_partition_set_parse("63", 64, &set), 0);
        assert_int_equal(set, 1ULL << 63);
        assert_int_equal(cb_partition_set_parse("4", 4, &set), -1); /* beyond the count */
        assert_int_equal(cb_partition_set_parse("3-1", 4, &set), -1);
        assert_int_equal(cb_partition_set_parse("", 4, &set), -1);
        assert_int_equal(cb_partition_set_parse("1,", 4, &set), 0); /* a trailing comma */
        assert_int_equal(cb_partition_set_parse("a", 4, &set), -1);
        assert_int_equal(cb_partition_set_parse("1;2", 4, &set), -1);
        assert_int_equal(cb_partition_set_parse("99999999999", 64, &set), -1);
    }
    {
        char buf[32];
        assert_int_equal(cb_partition_pattern(5, "#", buf, sizeof buf), 0);
        assert_string_equal(buf, "cb.evp.5.#");
        assert_int_equal(cb_partition_pattern(0, ">", buf, sizeof buf), 0);
        assert_string_equal(buf, "cb.evt.>");
    }
}

static void test_init_validates_names_and_steals_data(void **state)
{
    cb_event ev;
    char subj[64];
    (void)state;
    assert_int_equal(cb_event_init(&ev, CB_EV_JOB_STARTED, "acme", "j1", "acme/j1/started",
                                   "cbcore/engine", 0, json_pack("{s:i}", "tasks", 4)),
                     CB_OK);
    assert_int_equal(cb_event_log_subject(&ev, 0, subj, sizeof subj), 0);
    assert_string_equal(subj, "cb.evt.acme.j1");
    {
        cb_log_subject ls;
        assert_true(cb_partition_parse(subj, &ls));
        assert_int_equal(ls.partition, 0);
        assert_int_equal(ls.tenant_len, 4);
        assert_memory_equal(ls.tenant, "acme", 4);
        assert_string_equal(ls.job, "j1");
        assert_int_equal(cb_event_log_subject(&ev, 17, subj, sizeof subj), 0);
        assert_string_equal(subj, "cb.evp.17.acme.j1");
        assert_true(cb_partition_parse(subj, &ls));
        assert_int_equal(ls.partition, 17);
        assert_int_equal(ls.tenant_len, 4);
        assert_memory_equal(ls.tenant, "acme", 4);
        assert_string_equal(ls.job, "j1");
        assert_false(cb_partition_parse(NULL, &ls));
        assert_false(cb_partition_parse("cb.cmd.acme.j1", &ls));
        assert_false(cb_partition_parse("cb.evt.acme", &ls));
        assert_false(cb_partition_parse("cb.evt..j1", &ls));
        assert_false(cb_partition_parse("cb.evt.acme.", &ls));
        assert_false(cb_partition_parse("cb.evt.acme.j1.x", &ls));
        assert_false(cb_partition_parse("cb.evp.0.acme.j1", &ls));  /* 0 has no token */
        assert_false(cb_partition_parse("cb.evp.64.acme.j1", &ls)); /* beyond the most */
        assert_false(cb_partition_parse("cb.evp.07.acme.j1", &ls));
        assert_false(cb_partition_parse("cb.evp.3", &ls));
        assert_false(cb_partition_parse("cb.evp.acme.j1", &ls));
    }
    assert_int_equal(cb_event_log_subject(&ev, 0, subj, 5), -1);
    cb_event_cleanup(&ev);
    /* bad tenant: data is still consumed (no leak under ASan) */
    assert_int_equal(cb_event_init(&ev, CB_EV_JOB_STARTED, "a.b", "j1", "x", NULL, 0,
                                   json_pack("{s:i}", "tasks", 4)),
                     CB_EINVAL);
    assert_int_equal(cb_event_init(&ev, CB_EV__COUNT, "a", "j1", "x", NULL, 0, NULL), CB_EINVAL);
}

static void test_init_survives_allocation_failures(void **state)
{
    (void)state;
    for (long n = 0; n < 4; n++) {
        cb_event ev;
        cb_alloc_fail_after(n);
        cb_status s = cb_event_init(&ev, CB_EV_JOB_STARTED, "acme", "j1", "id", "src", 0, NULL);
        cb_alloc_fail_after(-1);
        assert_true(s == CB_OK || s == CB_ENOMEM);
        cb_event_cleanup(&ev);
    }
}

static void test_type_names_round_trip(void **state)
{
    (void)state;
    for (int t = 0; t < CB_EV__COUNT; t++)
        assert_int_equal(cb_event_type_parse(cb_event_type_name((cb_event_type)t)), t);
    assert_int_equal(cb_event_type_parse("cb.job"), CB_EV_UNKNOWN);
    assert_int_equal(cb_event_type_parse(NULL), CB_EV_UNKNOWN);
    assert_true(cb_name_valid("a-Z_9"));
    assert_false(cb_name_valid(""));
    char long_name[130];
    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    assert_false(cb_name_valid(long_name));
    long_name[128] = '\0';
    assert_true(cb_name_valid(long_name));
    /* a host's name as a name: what the daemons' report ids and cb health
     * both begin with (a dotted host name once made cb health miss them) */
    char out[64];
    assert_string_equal(cb_name_from("vm.example.com", out, sizeof out), "vm_example_com");
    assert_true(cb_name_valid(out));
    assert_string_equal(cb_name_from("a-b_C9", out, sizeof out), "a-b_C9");
    assert_string_equal(cb_name_from("", out, sizeof out), "host");
    assert_string_equal(cb_name_from(NULL, out, sizeof out), "host");
    assert_string_equal(cb_name_from("abcdef", out, 4), "abc");
    assert_true(cb_name_valid(cb_name_from(long_name, out, sizeof out)));
}

/* The type a scan finds is the type a decode finds, for every type and
 * wherever the member lies; no type member, a bad one or other text: unknown. */
static void test_peek_type_agrees_with_a_decode(void **state)
{
    (void)state;
    for (int t = 0; t < CB_EV__COUNT; t++) {
        cb_event ev, back;
        char *text;
        size_t len;
        assert_int_equal(cb_event_init(&ev, (cb_event_type)t, "acme", "j1", "acme/j1/x", "test",
                                       1000, json_pack("{s:s}", "type", "cb.job.failed")),
                         CB_OK);
        assert_int_equal(cb_event_encode(&ev, &text, &len), CB_OK);
        assert_int_equal(cb_event_decode(text, len, &back, NULL, 0), CB_OK);
        assert_int_equal(cb_event_peek_type(text, len), back.type);
        assert_int_equal(back.type, t);
        free(text);
        cb_event_cleanup(&back);
        cb_event_cleanup(&ev);
    }
    assert_int_equal(cb_event_peek_type(good, strlen(good)), CB_EV_TASK_SUCCEEDED);
    assert_int_equal(cb_event_peek_type("{\"data\": {\"type\": \"cb.job.failed\"}}", 34),
                     CB_EV_UNKNOWN);
    assert_int_equal(cb_event_peek_type("{\"type\": \"cb.job\"}", 18), CB_EV_UNKNOWN);
    assert_int_equal(cb_event_peek_type("{\"type\": 5}", 11), CB_EV_UNKNOWN);
    assert_int_equal(cb_event_peek_type("[1]", 3), CB_EV_UNKNOWN);
    assert_int_equal(cb_event_peek_type("", 0), CB_EV_UNKNOWN);
}

/* A cb.tasks.succeeded event reads as its parts, each a cb.task.succeeded
 * event with the batch's envelope; any other event as itself. */
static void test_a_batch_reads_as_its_outcomes(void **state)
{
    cb_event ev, one;
    const cb_event *e;
    (void)state;
    assert_int_equal(cb_event_init(&ev, CB_EV_TASKS_SUCCEEDED, "acme", "j1",
                                   "acme/j1/4/1/succeeded+2", "cbcore/adapter/local/a0", 42,
                                   json_pack("{s:[{s:i, s:i, s:i}, {s:i, s:i, s:s}]}", "tasks",
                                             "task", 4, "attempt", 1, "output", 16, "task", 5,
                                             "attempt", 2, "output", "x")),
                     CB_OK);
    assert_int_equal(cb_event_outcomes(&ev), 2);
    e = cb_event_outcome(&ev, 1, &one);
    assert_ptr_equal(e, &one);
    assert_int_equal(e->type, CB_EV_TASK_SUCCEEDED);
    assert_string_equal(e->tenant, "acme");
    assert_string_equal(e->job, "j1");
    assert_string_equal(e->id, ev.id);
    assert_int_equal(e->time_ns, 42);
    assert_int_equal(json_integer_value(json_object_get(e->data, "task")), 5);
    assert_int_equal(json_integer_value(json_object_get(e->data, "attempt")), 2);
    cb_event_cleanup(&ev); /* the parts borrowed: nothing of theirs to free */
    assert_int_equal(cb_event_init(&ev, CB_EV_TASKS_SUCCEEDED, "acme", "j1", "i", "s", 1,
                                   json_pack("{s:[i, i]}", "tasks", 1, 2)),
                     CB_OK);
    assert_int_equal(cb_event_outcomes(&ev), 0); /* parts that are not objects: none */
    cb_event_cleanup(&ev);
    assert_int_equal(cb_event_init(&ev, CB_EV_TASK_FAILED, "acme", "j1", "i", "s", 1, NULL), CB_OK);
    assert_int_equal(cb_event_outcomes(&ev), 1);
    assert_ptr_equal(cb_event_outcome(&ev, 0, &one), &ev);
    cb_event_cleanup(&ev);
}

/* An adapter's source names its account (the account of the costs its
 * outcomes report); any other source names none. */
static void test_an_adapter_s_source_names_its_account(void **state)
{
    char src[64], b[33];
    (void)state;
    assert_int_equal(cb_event_adapter_source("lambda-eu", "host-12", src, sizeof src), 0);
    assert_string_equal(src, "cbcore/adapter/lambda-eu/host-12");
    assert_true(cb_event_source_backend(src, b, sizeof b));
    assert_string_equal(b, "lambda-eu");
    assert_int_equal(cb_event_adapter_source("local", "w", src, 10), -1); /* does not fit */
    assert_false(cb_event_source_backend("cbcore/engine", b, sizeof b));
    assert_false(cb_event_source_backend("cbcore/adapter/local", b, sizeof b)); /* no worker */
    assert_false(cb_event_source_backend("cbcore/adapter//w", b, sizeof b));
    assert_false(cb_event_source_backend(NULL, b, sizeof b));
    assert_false(cb_event_source_backend("cbcore/adapter/local/w", b, 5)); /* too long for b */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_good_event),
        cmocka_unit_test(test_encode_then_decode_is_identity),
        cmocka_unit_test(test_decode_rejects_each_envelope_mistake),
        cmocka_unit_test(test_fast_and_full_decoders_agree),
        cmocka_unit_test(test_init_validates_names_and_steals_data),
        cmocka_unit_test(test_a_job_s_partition_is_fixed_and_spread),
        cmocka_unit_test(test_init_survives_allocation_failures),
        cmocka_unit_test(test_type_names_round_trip),
        cmocka_unit_test(test_peek_type_agrees_with_a_decode),
        cmocka_unit_test(test_a_batch_reads_as_its_outcomes),
        cmocka_unit_test(test_an_adapter_s_source_names_its_account),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
