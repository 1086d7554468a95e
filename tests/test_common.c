/* tests/test_common.c - the small shared modules: map, dedup, time, mailbox,
 * offload, the broker's subject rules, the JSON member scan. */
#include "cb_test.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker_int.h"
#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_hist.h"
#include "cb_dedup.h"
#include "cb_file.h"
#include "cb_json.h"
#include "cb_mailbox.h"
#include "cb_map.h"
#include "cb_offload.h"
#include "cb_time.h"
#include "cb_url.h"

static void test_map_put_get_take_many(void **state)
{
    cb_map m;
    (void)state;
    cb_map_init(&m);
    for (uintptr_t k = 1; k <= 10000; k++)
        assert_int_equal(cb_map_put(&m, k * 7919, (void *)k), CB_OK);
    assert_int_equal(m.len, 10000);
    /* Take every other key: the remaining ones are still found (backward shift). */
    for (uintptr_t k = 1; k <= 10000; k += 2)
        assert_ptr_equal(cb_map_take(&m, k * 7919), (void *)k);
    for (uintptr_t k = 1; k <= 10000; k++)
        assert_ptr_equal(cb_map_get(&m, k * 7919), (k % 2) ? NULL : (void *)k);
    assert_int_equal(m.len, 5000);
    assert_null(cb_map_take(&m, 3));
    assert_int_equal(cb_map_put(&m, 1, NULL), CB_EINVAL);
    assert_int_equal(cb_map_put(&m, 2 * 7919, (void *)9), CB_OK); /* replace */
    assert_ptr_equal(cb_map_get(&m, 2 * 7919), (void *)9);
    assert_int_equal(m.len, 5000);
    cb_map_cleanup(&m);
}

static void test_map_put_fails_cleanly_without_memory(void **state)
{
    cb_map m;
    (void)state;
    cb_map_init(&m);
    cb_alloc_fail_after(0);
    assert_int_equal(cb_map_put(&m, 1, (void *)1), CB_ENOMEM);
    cb_alloc_fail_after(-1);
    assert_null(cb_map_get(&m, 1));
    cb_map_cleanup(&m);
}

static void test_dedup_remembers_the_most_recent(void **state)
{
    cb_dedup *d;
    char id[32];
    (void)state;
    assert_int_equal(cb_dedup_create(0, &d), CB_EINVAL);
    assert_int_equal(cb_dedup_create(100, &d), CB_OK);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "job/%d", i);
        assert_int_equal(cb_dedup_check(d, id, strlen(id)), 0);
    }
    assert_int_equal(cb_dedup_check(d, "job/5", 5), 1);
    assert_int_equal(cb_dedup_check(d, "job/new", 7), 0); /* evicts job/0 */
    assert_int_equal(cb_dedup_check(d, "job/0", 5), 0);
    assert_int_equal(cb_dedup_check(d, "job/99", 6), 1);
    cb_dedup_destroy(d);
    assert_true(cb_hash64("a", 1) != cb_hash64("b", 1));
}

static void test_time_parse_and_format(void **state)
{
    int64_t ns;
    char buf[40];
    (void)state;
    assert_int_equal(cb_time_parse("1970-01-01T00:00:00Z", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(cb_time_parse("2026-11-27T04:02:22.5+01:00", &ns), 0);
    assert_string_equal(cb_time_format(ns, buf, sizeof buf), "2026-11-27T03:02:22.500000Z");
    assert_int_equal(cb_time_parse("2026-11-27T04:02:22", &ns), -1); /* no offset */
    assert_int_equal(cb_time_parse("2026-11-27 04:02:22Z", &ns), 0);
    assert_int_equal(cb_time_parse("2026-13-27T04:02:22Z", &ns), -1);
    /* beyond what 64-bit nanoseconds hold (found by the fuzzer: UBSan overflow) */
    assert_int_equal(cb_time_parse("9999-12-31T23:59:59Z", &ns), -1);
    assert_int_equal(cb_time_parse("2262-01-01T00:00:00Z", &ns), 0);
    assert_int_equal(cb_time_parse("2026-11-27T04:02:22.Z", &ns), -1);
    assert_int_equal(cb_time_parse("2026-11-27T04:02:22Zjunk", &ns), -1);
    assert_int_equal(cb_time_parse("", &ns), -1);
}

static void test_subjects(void **state)
{
    (void)state;
    assert_true(cb__subject_valid("cb.evt.acme.j-1", 0));
    assert_false(cb__subject_valid("cb.evt..j", 0));
    assert_false(cb__subject_valid("cb.evt.a b", 0));
    assert_false(cb__subject_valid("cb.evt.*", 0));
    assert_true(cb__subject_valid("cb.evt.*", 1));
    assert_true(cb__subject_valid("cb.>", 1));
    assert_false(cb__subject_valid("cb.>.x", 1));
    assert_false(cb__subject_valid("", 1));
    assert_true(cb__subject_match("cb.evt.*.j1", "cb.evt.acme.j1"));
    assert_false(cb__subject_match("cb.evt.*.j1", "cb.evt.acme.j2"));
    assert_true(cb__subject_match("cb.evt.>", "cb.evt.acme.j1"));
    assert_false(cb__subject_match("cb.evt.>", "cb.evt"));
    assert_false(cb__subject_match("cb.evt.*", "cb.evt.acme.j1"));
    assert_true(cb__subject_match("cb.evt.acme.j1", "cb.evt.acme.j1"));
    assert_false(cb__subject_match("cb.evt.acme.j1", "cb.evt.acme.j10"));
    assert_false(cb__subject_match("cb.evt.acme.j10", "cb.evt.acme.j1"));
}

/* ---- mailbox and offload across threads ------------------------------ */

typedef struct counter_mail {
    cb_mail mail;
    int *ran, *cancelled;
    int value;
    int *last;
    int *in_order;
} counter_mail;

static void counter_fn(cb_mail *m, int cancelled)
{
    counter_mail *c = (counter_mail *)m;
    if (cancelled) {
        (*c->cancelled)++;
    } else {
        (*c->ran)++;
        if (c->value != *c->last + 1)
            *c->in_order = 0;
        *c->last = c->value;
    }
    free(c);
}

typedef struct producer {
    cb_mailbox *mb;
    int n, *ran, *cancelled, *last, *in_order;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 1; i <= p->n; i++) {
        counter_mail *c = calloc(1, sizeof *c);
        c->mail.fn = counter_fn;
        c->ran = p->ran;
        c->cancelled = p->cancelled;
        c->last = p->last;
        c->in_order = p->in_order;
        c->value = i;
        cb_mailbox_post_wait(p->mb, &c->mail);
    }
    return NULL;
}

typedef struct until_n {
    int *ran;
    int n;
} until_n;

static bool ran_n(void *arg)
{
    until_n *u = arg;
    return *u->ran >= u->n;
}

static void test_mailbox_delivers_in_order_with_backpressure(void **state)
{
    struct event_base *base = cb_test_base();
    cb_mailbox *mb;
    int ran = 0, cancelled = 0, last = 0, in_order = 1;
    producer p = {NULL, 50000, &ran, &cancelled, &last, &in_order};
    until_n u = {&ran, 50000};
    pthread_t t;
    (void)state;

    assert_int_equal(cb_mailbox_create(base, 64, &mb), CB_OK);
    p.mb = mb;
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    assert_true(cb_test_run_until(base, ran_n, &u, 30000));
    pthread_join(t, NULL);
    assert_int_equal(ran, 50000);
    assert_true(in_order);
    assert_int_equal(cancelled, 0);
    cb_mailbox_close(mb);
    event_base_free(base);
}

static void test_mailbox_cancels_after_close(void **state)
{
    struct event_base *base = cb_test_base();
    cb_mailbox *mb;
    int ran = 0, cancelled = 0, last = 0, in_order = 1;
    (void)state;

    assert_int_equal(cb_mailbox_create(base, 0, &mb), CB_OK);
    cb_mailbox_ref(mb); /* a producer still holding it */
    for (int i = 1; i <= 3; i++) {
        counter_mail *c = calloc(1, sizeof *c);
        *c = (counter_mail){{NULL, counter_fn}, &ran, &cancelled, i, &last, &in_order};
        cb_mailbox_post(mb, &c->mail);
    }
    cb_mailbox_close(mb); /* queued mails are cancelled */
    assert_int_equal(cancelled, 3);
    counter_mail *c = calloc(1, sizeof *c);
    *c = (counter_mail){{NULL, counter_fn}, &ran, &cancelled, 4, &last, &in_order};
    cb_mailbox_post(mb, &c->mail); /* after close: cancelled at once */
    assert_int_equal(cancelled, 4);
    assert_int_equal(ran, 0);
    cb_mailbox_unref(mb);
    event_base_free(base);
}

typedef struct sq_job {
    cb_offload_job job;
    int in, out;
    int *done;
} sq_job;

static void sq_work(cb_offload_job *j)
{
    sq_job *s = (sq_job *)j;
    s->out = s->in * s->in;
}

static void sq_done(cb_mail *m, int cancelled)
{
    sq_job *s = (sq_job *)m;
    if (!cancelled && s->out == s->in * s->in)
        (*s->done)++;
    free(s);
}

static bool done_10(void *arg)
{
    return *(int *)arg == 10;
}

static void test_offload_runs_jobs_and_reports_on_the_loop(void **state)
{
    struct event_base *base = cb_test_base();
    cb_mailbox *mb;
    cb_offload *o;
    int done = 0;
    (void)state;
    assert_int_equal(cb_mailbox_create(base, 0, &mb), CB_OK);
    assert_int_equal(cb_offload_create(mb, &o), CB_OK);
    for (int i = 0; i < 10; i++) {
        sq_job *j = calloc(1, sizeof *j);
        j->job.mail.fn = sq_done;
        j->job.work = sq_work;
        j->in = i;
        j->done = &done;
        cb_offload_submit(o, &j->job);
    }
    assert_true(cb_test_run_until(base, done_10, &done, 10000));
    cb_offload_destroy(o);
    cb_mailbox_close(mb);
    event_base_free(base);
}

static void test_urls_never_show_passwords(void **state)
{
    char buf[256], pass[64], path[] = "/tmp/cb-pass-XXXXXX";
    char arg[] = "amqp://guest:s3cret@127.0.0.1:5672/vh";
    FILE *f;
    int fd;
    (void)state;
    assert_string_equal(cb_url_redact("amqp://guest:s3cret@h:5672/", buf, sizeof buf),
                        "amqp://guest:***@h:5672/");
    assert_string_equal(
        cb_url_redact("nats://a:p1@h1:4222,nats://h2:4222,nats://b:p@2@h3", buf, sizeof buf),
        "nats://a:***@h1:4222,nats://h2:4222,nats://b:***@h3");
    assert_string_equal(cb_url_redact("nats://127.0.0.1:4222", buf, sizeof buf),
                        "nats://127.0.0.1:4222");
    assert_int_equal(
        cb_url_split_password("amqp://guest:s3cret@h:5672/", buf, sizeof buf, pass, sizeof pass),
        CB_OK);
    assert_string_equal(buf, "amqp://guest@h:5672/");
    assert_string_equal(pass, "s3cret");
    /* the password from the environment or a file goes where a user has none */
    unsetenv("CB_BROKER_PASSWORD");
    unsetenv("CB_BROKER_PASSWORD_FILE");
    assert_int_equal(cb_url_with_password("amqp://guest@h/", buf, sizeof buf), CB_OK);
    assert_string_equal(buf, "amqp://guest@h/");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("fromfile\n", f);
    fclose(f);
    setenv("CB_BROKER_PASSWORD_FILE", path, 1);
    assert_int_equal(cb_url_with_password("amqp://guest@h/", buf, sizeof buf), CB_OK);
    assert_string_equal(buf, "amqp://guest:fromfile@h/");
    assert_int_equal(cb_url_with_password("amqp://guest:own@h/,nats://h2", buf, sizeof buf), CB_OK);
    assert_string_equal(buf, "amqp://guest:own@h/,nats://h2"); /* a URL's own stays */
    setenv("CB_BROKER_PASSWORD", "fromenv", 1);
    assert_int_equal(cb_url_with_password("amqp://guest@h/", buf, sizeof buf), CB_OK);
    assert_string_equal(buf, "amqp://guest:fromenv@h/");
    unsetenv("CB_BROKER_PASSWORD");
    setenv("CB_BROKER_PASSWORD_FILE", "/nonexistent/pw", 1);
    assert_int_equal(cb_url_with_password("amqp://guest@h/", buf, sizeof buf), CB_EIO);
    unsetenv("CB_BROKER_PASSWORD_FILE");
    unlink(path);
    /* a command-line argument keeps its length and loses its secret */
    assert_string_equal(cb_url_from_argv(arg), "amqp://guest:s3cret@127.0.0.1:5672/vh");
    assert_string_equal(arg, "amqp://guest:******@127.0.0.1:5672/vh");
}

/* A random JSON value: nested arrays and objects, strings with quotes,
 * escapes and braces in them, numbers, literals. */
static json_t *random_value(unsigned *seed, int depth)
{
    static const char *const strs[] = {"plain", "with \"quotes\"", "br{ace}s[]",    "back\\slash",
                                       "",      "output",          "\u00e9t\u00e9", "a,b:c"};
    int kind = (int)(rand_r(seed) % (depth > 3 ? 4 : 6));
    json_t *v;
    switch (kind) {
    case 0:
        return json_integer(rand_r(seed) % 100000 - 50000);
    case 1:
        return json_string(strs[rand_r(seed) % 8]);
    case 2:
        return rand_r(seed) % 2 ? json_true() : json_null();
    case 3:
        return json_real((double)(rand_r(seed) % 1000) / 7.0);
    case 4:
        v = json_array();
        for (unsigned i = 0, n = rand_r(seed) % 5; i < n; i++)
            json_array_append_new(v, random_value(seed, depth + 1));
        return v;
    default:
        v = json_object();
        for (unsigned i = 0, n = rand_r(seed) % 5; i < n; i++)
            json_object_set_new(v, strs[rand_r(seed) % 8], random_value(seed, depth + 1));
        return v;
    }
}

/* The span the scan finds is exactly the value a parse finds, whatever
 * surrounds it and however the text is laid out; absent or cut text is 0. */
static void test_json_member_span_agrees_with_a_parse(void **state)
{
    unsigned seed = 20261201;
    size_t flags[] = {JSON_COMPACT, JSON_INDENT(2), 0, JSON_COMPACT | JSON_SORT_KEYS};
    size_t off, len;
    (void)state;
    for (int r = 0; r < 2000; r++) {
        json_t *want = random_value(&seed, 0), *data = json_object(), *doc = json_object();
        json_object_set_new(data, "task", json_integer(r));
        json_object_set_new(data, "before", random_value(&seed, 1));
        json_object_set(data, "output", want);
        json_object_set_new(data, "after", random_value(&seed, 1));
        json_object_set_new(doc, "type", json_string("cb.task.succeeded"));
        json_object_set_new(doc, "output", json_string("not this one: top level"));
        json_object_set_new(doc, "data", data);
        json_object_set_new(doc, "z", random_value(&seed, 1));
        char *text = json_dumps(doc, flags[r % 4]);
        assert_non_null(text);
        assert_int_equal(cb_json_member_span(text, strlen(text), "data", "output", &off, &len), 1);
        json_t *got = json_loadb(text + off, len, JSON_DECODE_ANY, NULL);
        if (!json_equal(got, want))
            fail_msg("run %d: span \"%.*s\" in %s", r, (int)len, text + off, text);
        /* cut short anywhere before the value ends: never a span past the text */
        size_t cut = (size_t)rand_r(&seed) % (off + len);
        if (cb_json_member_span(text, cut, "data", "output", &off, &len))
            assert_true(off + len <= cut);
        assert_int_equal(cb_json_member_span(text, strlen(text), "data", "missing", &off, &len), 0);
        /* no inner member: the top-level value itself */
        assert_int_equal(cb_json_member_span(text, strlen(text), "output", NULL, &off, &len), 1);
        assert_int_equal(len, strlen("\"not this one: top level\""));
        assert_memory_equal(text + off, "\"not this one: top level\"", len);
        json_decref(got);
        json_decref(want);
        json_decref(doc);
        free(text);
    }
    assert_int_equal(cb_json_member_span("{\"data\": 5}", 11, "data", "output", &off, &len), 0);
    assert_int_equal(cb_json_member_span("[1, 2]", 6, "data", "output", &off, &len), 0);
    assert_int_equal(cb_json_member_span("", 0, "data", "output", &off, &len), 0);
}

/* Each part's span in an array of outcomes is what a parse finds; a part
 * without the member, a non-object, too many parts or cut text give 0. */
static void test_json_each_member_span_agrees_with_a_parse(void **state)
{
    unsigned seed = 20261203;
    size_t off[8], len[8], at = 0, alen = 0;
    (void)state;
    for (int r = 0; r < 500; r++) {
        json_t *parts = json_array(), *doc;
        size_t n = 1 + (size_t)rand_r(&seed) % 8;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(parts, json_pack("{s:i, s:o, s:o}", "task", (int)i, "before",
                                                   random_value(&seed, 1), "output",
                                                   random_value(&seed, 0)));
        doc = json_pack("{s:s, s:{s:o}}", "type", "cb.tasks.succeeded", "data", "tasks", parts);
        char *text = json_dumps(doc, r % 2 ? JSON_COMPACT : JSON_INDENT(1));
        assert_int_equal(cb_json_member_span(text, strlen(text), "data", "tasks", &at, &alen), 1);
        assert_int_equal(cb_json_each_member_span(text, strlen(text), at, "output", off, len, 8),
                         n);
        for (size_t i = 0; i < n; i++) {
            json_t *got = json_loadb(text + off[i], len[i], JSON_DECODE_ANY, NULL);
            if (!json_equal(got, json_object_get(json_array_get(parts, i), "output")))
                fail_msg("run %d part %zu: span \"%.*s\" in %s", r, i, (int)len[i], text + off[i],
                         text);
            json_decref(got);
        }
        if (n > 1)
            assert_int_equal(
                cb_json_each_member_span(text, strlen(text), at, "output", off, len, n - 1), 0);
        assert_int_equal(cb_json_each_member_span(text, at + alen - 1, at, "output", off, len, 8),
                         0);
        assert_int_equal(cb_json_each_member_span(text, strlen(text), at, "missing", off, len, 8),
                         0);
        json_decref(doc);
        free(text);
    }
    assert_int_equal(cb_json_each_member_span("[{\"output\":1}, 2]", 17, 0, "output", off, len, 8),
                     0);
    assert_int_equal(cb_json_each_member_span("[]", 2, 0, "output", off, len, 8), 0);
    assert_int_equal(cb_json_each_member_span("{}", 2, 0, "output", off, len, 8), 0);
}

/* cb_buf: grows past its first capacity, stays NUL-terminated, and a
 * failed add is sticky (nothing after it is kept; take gives NULL). */
static void test_buf_grows_and_fails_stickily(void **state)
{
    cb_buf b = {0};
    char *p;
    size_t len = 0;
    (void)state;
    p = cb_buf_take(&b, &len);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
    for (int i = 0; i < 1000; i++)
        cb_buf_adds(&b, "abc");
    assert_int_equal(b.len, 3000);
    assert_int_equal(b.p[3000], '\0');
    p = cb_buf_take(&b, &len);
    assert_int_equal(len, 3000);
    assert_memory_equal(p + 2997, "abc", 4);
    assert_null(b.p);
    free(p);
    cb_buf_adds(&b, "x");
    cb_alloc_fail_after(0); /* the next growth fails */
    for (int i = 0; i < 300; i++)
        cb_buf_adds(&b, "y");
    cb_alloc_fail_after(-1);
    assert_true(b.failed);
    cb_buf_adds(&b, "z"); /* dropped: the failure is sticky */
    assert_true(b.failed);
    assert_null(cb_buf_take(&b, &len));
    assert_null(b.p);
}

/* A value on a bound falls in that bucket (le: less or equal); the JSON's
 * counts are cumulative, the last one is +Inf and equals the count. */
static void test_hist_buckets_are_le_and_cumulative(void **state)
{
    cb_hist h = {0};
    json_t *j;
    (void)state;
    cb_hist_observe(&h, 0.001); /* on the first bound */
    cb_hist_observe(&h, 0.0011);
    cb_hist_observe(&h, 0.3);
    cb_hist_observe(&h, 1000); /* above all */
    cb_hist_observe(&h, -1);   /* a clock step: counted as 0 */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[CB_HIST_BUCKETS], 1);
    j = cb_hist_json(&h);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "le")), CB_HIST_BUCKETS);
    assert_int_equal(json_array_size(json_object_get(j, "counts")), CB_HIST_BUCKETS + 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "counts"), 0)), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "counts"), 7)), 3);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(j, "counts"), CB_HIST_BUCKETS - 1)), 4);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(j, "counts"), CB_HIST_BUCKETS)), 5);
    assert_true(json_real_value(json_object_get(j, "sum")) > 1000.3);
    for (int i = 1; i < CB_HIST_BUCKETS; i++)
        assert_true(cb_hist_bound(i) > cb_hist_bound(i - 1));
    json_decref(j);
}

/* A file written whole is read back by its first line, without the line
 * end; a missing or empty file is -1 and "". */
static void test_file_written_whole_reads_back_its_first_line(void **state)
{
    char dir[] = "/tmp/cb-file.XXXXXX", path[200], out[8];
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/url", dir);
    assert_int_equal(cb_file_read_line(path, out, sizeof out), -1);
    assert_string_equal(out, "");
    assert_int_equal(cb_file_write_whole(path, "nats\r\nsecond line\n"), 0);
    assert_int_equal(cb_file_read_line(path, out, sizeof out), 0);
    assert_string_equal(out, "nats");
    assert_int_equal(cb_file_write_mode(path, "a-longer-line\n", 0600), 0);
    assert_int_equal(cb_file_read_line(path, out, sizeof out), 0);
    assert_string_equal(out, "a-longe"); /* cut at the buffer */
    assert_int_equal(cb_file_write_whole(path, ""), 0);
    assert_int_equal(cb_file_read_line(path, out, sizeof out), -1);
    assert_string_equal(out, "");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_put_get_take_many),
        cmocka_unit_test(test_hist_buckets_are_le_and_cumulative),
        cmocka_unit_test(test_buf_grows_and_fails_stickily),
        cmocka_unit_test(test_map_put_fails_cleanly_without_memory),
        cmocka_unit_test(test_dedup_remembers_the_most_recent),
        cmocka_unit_test(test_time_parse_and_format),
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_urls_never_show_passwords),
        cmocka_unit_test(test_json_member_span_agrees_with_a_parse),
        cmocka_unit_test(test_json_each_member_span_agrees_with_a_parse),
        cmocka_unit_test(test_mailbox_delivers_in_order_with_backpressure),
        cmocka_unit_test(test_mailbox_cancels_after_close),
        cmocka_unit_test(test_file_written_whole_reads_back_its_first_line),
        cmocka_unit_test(test_offload_runs_jobs_and_reports_on_the_loop),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
