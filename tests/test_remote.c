/* tests/test_remote.c - the remote backends' protocols without a network:
 * the requests they build (URL, headers, body, signature) and how they judge
 * responses (outputs, failures with reasons, throttling, polling). The
 * real peers are in it_remote.c. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_test.h"
#include "intake.h"
#include "cb_config.h"
#include "remote.h"

typedef struct resp {
    struct evkeyvalq h;
    cb_http_resp r;
} resp;

/* A response: status, body, then header name/value pairs, NULL-ended. */
static void mk(resp *x, int status, const char *body, ...)
{
    va_list ap;
    const char *k;
    memset(x, 0, sizeof *x);
    x->h.tqh_first = NULL;
    x->h.tqh_last = &x->h.tqh_first;
    va_start(ap, body);
    while ((k = va_arg(ap, const char *)))
        evhttp_add_header(&x->h, k, va_arg(ap, const char *));
    va_end(ap);
    x->r.status = status;
    x->r.body = body;
    x->r.body_len = strlen(body);
    x->r.headers = &x->h;
}

static void judge(const cb_remote_kind *k, void *st, int polling, resp *x, cb_remote_verdict *v)
{
    memset(v, 0, sizeof *v);
    k->judge(st, &x->r, polling, v);
    evhttp_clear_headers(&x->h);
}

/* The state borrows from *conf (as from the configuration): free it after. */
static void *configure(const cb_remote_kind *k, const char *conf_text, json_t **conf)
{
    void *st = NULL;
    char err[256] = "";
    *conf = json_loads(conf_text, 0, NULL);
    assert_non_null(*conf);
    if (k->configure(*conf, "acct", &st, err, sizeof err) != CB_OK)
        fail_msg("configure: %s", err);
    return st;
}

static const char *header(const cb_remote_req *rq, const char *name)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (!strcasecmp(rq->headers[i].name, name))
            return rq->headers[i].value;
    return NULL;
}

static void expect_output(cb_remote_verdict *v, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    assert_int_equal(v->kind, CB_RV_OUTPUT);
    assert_true(json_equal(v->output, w));
    json_decref(w);
    json_decref(v->output);
}

static void expect_fail(cb_remote_verdict *v, cb_fail_reason reason, const char *needle)
{
    if (v->kind != CB_RV_FAIL || v->reason != reason || !strstr(v->error, needle))
        fail_msg("want %s \"%s\", got kind %d %s \"%s\"", cb_fail_reason_name(reason), needle,
                 v->kind, cb_fail_reason_name(v->reason), v->error);
    free(v->detail);
}

static void http_requests_and_answers(void **state)
{
    json_t *conf =
        json_pack("{s:s, s:{s:s}, s:{s:{s:s, s:s}}}", "url", "http://gw:8080/function/{name}",
                  "headers", "Authorization", "Bearer t", "functions", "ce", "url",
                  "http://ce.example/", "mode", "cloudevents");
    void *st = NULL;
    char err[256];
    cb_remote_req rq;
    cb_invocation inv = {.tenant = "acme", .job = "j1", .task = 4, .attempt = 2, .function = "wc"};
    json_t *item = json_pack("{s:i}", "x", 1);
    cb_remote_verdict v;
    resp x;
    (void)state;

    assert_int_equal(cb_remote_http.configure(conf, "acct", &st, err, sizeof err), CB_OK);

    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_http.build(st, &inv, item, 0, &rq, err, sizeof err), CB_OK);
    assert_string_equal(rq.url, "http://gw:8080/function/wc");
    assert_string_equal(rq.method, "POST");
    assert_string_equal(rq.body, "{\"x\":1}");
    assert_string_equal(header(&rq, "Authorization"), "Bearer t");
    assert_null(header(&rq, "ce-id"));
    free(rq.body);

    inv.function = "ce";
    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_http.build(st, &inv, item, 7, &rq, err, sizeof err), CB_OK);
    assert_string_equal(rq.url, "http://ce.example/");
    assert_string_equal(header(&rq, "ce-specversion"), "1.0");
    assert_string_equal(header(&rq, "ce-id"), "acme/j1/4/2/7");
    assert_string_equal(header(&rq, "ce-source"), "/cbcore/acme/j1");
    assert_string_equal(header(&rq, "ce-type"), "dev.cbcore.invocation");
    assert_string_equal(header(&rq, "ce-subject"), "ce");
    free(rq.body);

    mk(&x, 200, "[1, 2]", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    expect_output(&v, "[1, 2]");
    mk(&x, 204, "", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    expect_output(&v, "null");
    mk(&x, 200, "<html>", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_INVALID_OUTPUT, "not JSON");
    mk(&x, 503, "", "Retry-After", "7", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    assert_int_equal(v.kind, CB_RV_THROTTLE);
    assert_int_equal(v.delay_ms, 7000);
    mk(&x, 429, "", "Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    assert_int_equal(v.kind, CB_RV_THROTTLE);
    assert_int_equal(v.delay_ms, 0); /* a date: back off instead */
    mk(&x, 500, "Traceback\nline 2", (const char *)NULL);
    judge(&cb_remote_http, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_EXIT, "HTTP 500: Traceback");

    cb_remote_http.release(st);
    json_decref(conf);
    json_decref(item);
}

/* A shipped function (the spec has "code"): the body is the function
 * server's envelope, the item's index in the job beside it; the account's
 * url serves the "python" runtime. */
static void http_shipped_envelope(void **state)
{
    json_t *conf = json_pack("{s:s, s:b}", "url", "http://fs:8080/", "shipped", 1);
    json_t *spec = json_pack("{s:s, s:s, s:{s:s, s:i, s:s}, s:s}", "backend", "py", "name",
                             "python", "code", "$cb_ref", "s3://cbcore/code/ab.pkl", "size", 3,
                             "sha256", "ab", "python", "3.11");
    json_t *item = json_pack("[i, i]", 1, 2);
    cb_invocation inv = {.tenant = "t",
                         .job = "j",
                         .task = 2,
                         .attempt = 1,
                         .function = "python",
                         .spec = spec,
                         .first_item = 40};
    void *st = NULL;
    char err[256];
    cb_remote_req rq;
    (void)state;
    assert_int_equal(cb_remote_http.configure(conf, "py", &st, err, sizeof err), CB_OK);
    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_http.build(st, &inv, item, 3, &rq, err, sizeof err), CB_OK);
    assert_string_equal(rq.url, "http://fs:8080/");
    assert_string_equal(rq.body, "{\"code\":{\"$cb_ref\":\"s3://cbcore/code/ab.pkl\",\"size\":3,"
                                 "\"sha256\":\"ab\"},\"python\":\"3.11\",\"item\":[1,2],"
                                 "\"index\":43}");
    free(rq.body);
    cb_remote_http.release(st);
    json_decref(conf);
    json_decref(spec);
    json_decref(item);
}

static void http_refuses_bad_configuration(void **state)
{
    static const char *bad[] = {
        "{}",                                                /* no url */
        "{\"url\": \"http://x/\", \"mode\": \"soap\"}",      /* mode */
        "{\"functions\": {\"f\": {}}}",                      /* no url for f */
        "{\"url\": \"http://x/{name}\", \"functions\": []}", /* functions */
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *conf = json_loads(bad[i], 0, NULL);
        void *st = NULL;
        char err[256] = "";
        assert_int_equal(cb_remote_http.configure(conf, "acct", &st, err, sizeof err), CB_EINVAL);
        assert_non_null(strstr(err, "/backends/acct"));
        json_decref(conf);
    }
}

static void lambda_requests_and_answers(void **state)
{
    json_t *conf;
    void *st = configure(&cb_remote_lambda,
                         "{\"region\": \"eu-west-1\", \"endpoint\": \"http://127.0.0.1:3002/\","
                         " \"access_key_id\": \"AKID\", \"secret_access_key\": \"SECRET\","
                         " \"functions\": {\"f\": {\"name\": \"svc-f\", \"qualifier\": \"live\"}}}",
                         &conf);
    cb_remote_req rq;
    cb_invocation inv = {.tenant = "t", .job = "j", .task = 1, .attempt = 1, .function = "f"};
    json_t *item = json_integer(5);
    char err[256];
    const char *auth;
    cb_remote_verdict v;
    resp x;
    (void)state;

    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_lambda.build(st, &inv, item, 0, &rq, err, sizeof err), CB_OK);
    assert_string_equal(
        rq.url, "http://127.0.0.1:3002/2015-03-31/functions/svc-f/invocations?Qualifier=live");
    assert_string_equal(header(&rq, "host"), "127.0.0.1:3002");
    assert_string_equal(header(&rq, "x-amz-invocation-type"), "RequestResponse");
    auth = header(&rq, "Authorization");
    assert_non_null(auth);
    assert_non_null(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKID/"));
    assert_non_null(strstr(auth, "/eu-west-1/lambda/aws4_request"));
    assert_non_null(
        strstr(auth, "SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type,"));
    assert_string_equal(rq.body, "5");
    free(rq.body);

    mk(&x, 200, "12", (const char *)NULL);
    judge(&cb_remote_lambda, st, 0, &x, &v);
    expect_output(&v, "12");
    mk(&x, 200,
       "{\"errorMessage\": \"bad\", \"errorType\": \"ValueError\", \"trace\": [\"a\", \"b\"]}",
       "X-Amz-Function-Error", "Unhandled", (const char *)NULL);
    judge(&cb_remote_lambda, st, 0, &x, &v);
    assert_string_equal(v.detail, "a\nb\n");
    expect_fail(&v, CB_FAIL_EXIT, "ValueError: bad");
    mk(&x, 429, "{\"Type\": \"User\", \"message\": \"Rate exceeded\"}", "x-amzn-ErrorType",
       "TooManyRequestsException", (const char *)NULL);
    judge(&cb_remote_lambda, st, 0, &x, &v);
    assert_int_equal(v.kind, CB_RV_THROTTLE);
    mk(&x, 404, "{\"Message\": \"Function not found: f\"}", "x-amzn-ErrorType",
       "ResourceNotFoundException", (const char *)NULL);
    judge(&cb_remote_lambda, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_BACKEND, "unknown function: ResourceNotFoundException: Function not");
    mk(&x, 403, "{\"message\": \"The security token included in the request is invalid.\"}",
       "x-amzn-ErrorType", "UnrecognizedClientException", (const char *)NULL);
    judge(&cb_remote_lambda, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_BACKEND, "HTTP 403: UnrecognizedClientException: The security");

    cb_remote_lambda.release(st);
    json_decref(conf);
    json_decref(item);
}

static void lambda_needs_credentials(void **state)
{
    json_t *conf = json_pack("{s:s}", "region", "us-east-1");
    void *st = NULL;
    char err[256] = "";
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(cb_remote_lambda.configure(conf, "acct", &st, err, sizeof err), CB_EINVAL);
    assert_non_null(strstr(err, "no credentials"));
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    assert_int_equal(cb_remote_lambda.configure(conf, "acct", &st, err, sizeof err), CB_OK);
    cb_remote_lambda.release(st);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    json_decref(conf);
}

static void openwhisk_requests_and_answers(void **state)
{
    json_t *conf;
    void *st =
        configure(&cb_remote_openwhisk,
                  "{\"api_host\": \"https://ow.example/\", \"namespace\": \"guest\","
                  " \"api_key\": \"uuid:key\", \"poll_ms\": 25,"
                  " \"functions\": {\"long\": {\"action\": \"pkg/long\", \"blocking\": false}}}",
                  &conf);
    cb_remote_req rq;
    cb_invocation inv = {.tenant = "t", .job = "j", .task = 1, .attempt = 1, .function = "add7"};
    json_t *item = json_integer(5);
    char err[256];
    cb_remote_verdict v;
    resp x;
    (void)state;

    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_openwhisk.build(st, &inv, item, 0, &rq, err, sizeof err), CB_OK);
    assert_string_equal(
        rq.url,
        "https://ow.example/api/v1/namespaces/guest/actions/add7?blocking=true&result=true");
    assert_string_equal(header(&rq, "Authorization"), "Basic dXVpZDprZXk="); /* uuid:key */
    assert_string_equal(rq.body, "{\"value\":5}");
    free(rq.body);
    inv.function = "long";
    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_openwhisk.build(st, &inv, item, 0, &rq, err, sizeof err), CB_OK);
    assert_string_equal(
        rq.url, "https://ow.example/api/v1/namespaces/guest/actions/pkg/long?blocking=false");
    free(rq.body);
    memset(&rq, 0, sizeof rq);
    assert_int_equal(cb_remote_openwhisk.build_poll(st, "abc123", &rq, err, sizeof err), CB_OK);
    assert_string_equal(rq.method, "GET");
    assert_string_equal(rq.url, "https://ow.example/api/v1/namespaces/guest/activations/abc123");

    mk(&x, 200, "{\"value\": 12}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    expect_output(&v, "{\"value\": 12}");
    mk(&x, 502, "{\"error\": \"cannot take 5\"}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_EXIT, "cannot take 5");
    mk(&x, 202, "{\"activationId\": \"abc123\"}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    assert_int_equal(v.kind, CB_RV_POLL);
    assert_string_equal(v.ref, "abc123");
    assert_int_equal(v.delay_ms, 25);
    mk(&x, 202, "{\"activationId\": \"../x\"}", (const char *)NULL); /* never put into a path */
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_BACKEND, "activationId");
    mk(&x, 404, "{\"error\": \"The requested resource does not exist.\"}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 1, &x, &v);
    assert_int_equal(v.kind, CB_RV_POLL);
    assert_string_equal(v.ref, ""); /* keep polling the same one */
    mk(&x, 200,
       "{\"response\": {\"status\": \"success\", \"success\": true, \"result\": {\"v\": 1}}}",
       (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 1, &x, &v);
    expect_output(&v, "{\"v\": 1}");
    mk(&x, 200,
       "{\"response\": {\"status\": \"action developer error\", \"success\": false,"
       " \"result\": {\"error\": {\"code\": 3}}}}",
       (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 1, &x, &v);
    expect_fail(&v, CB_FAIL_EXIT, "action action developer error: {\"code\":3}");
    mk(&x, 404, "{\"error\": \"The requested resource does not exist.\"}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    expect_fail(&v, CB_FAIL_BACKEND, "unknown action");
    mk(&x, 429, "{}", (const char *)NULL);
    judge(&cb_remote_openwhisk, st, 0, &x, &v);
    assert_int_equal(v.kind, CB_RV_THROTTLE);

    cb_remote_openwhisk.release(st);
    json_decref(conf);
    json_decref(item);
}

static void request_headers_are_bounded(void **state)
{
    cb_remote_req rq;
    char big[3000];
    (void)state;
    memset(&rq, 0, sizeof rq);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cb_remote_req_header(&rq, "X-A", big), CB_OK);
    assert_int_equal(cb_remote_req_header(&rq, "X-B", big), CB_ETOOBIG);
    assert_int_equal(rq.nheaders, 1);
    for (int i = 1; i < CB_REMOTE_MAX_HEADERS; i++)
        assert_int_equal(cb_remote_req_header(&rq, "X", "1"), CB_OK);
    assert_int_equal(cb_remote_req_header(&rq, "X", "1"), CB_ETOOBIG);
}

/* The engine's intake knows what a remote account can run. */
static const char *intake_error(const cb_intake_cfg *cfg, const char *backend, const char *fn,
                                char *buf, size_t n)
{
    char job[512];
    cb_intake in;
    cb_status st;
    snprintf(job, sizeof job,
             "{\"tenant\": \"acme\", \"kind\": \"call\", \"function\": {\"backend\": \"%s\","
             " \"name\": \"%s\"}, \"input\": 1}",
             backend, fn);
    memset(&in, 0, sizeof in);
    st = cb_intake_check(cfg, "acme", job, strlen(job), "j1", &in);
    snprintf(buf, n, "%s", st == CB_OK ? "" : json_string_value(json_array_get(in.errors, 0)));
    cb_intake_cleanup(&in);
    return buf;
}

static void intake_checks_remote_functions(void **state)
{
    char path[] = "/tmp/cbremoteXXXXXX", err[256], buf[400];
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    cb_intake_cfg cfg = {0};
    (void)state;
    assert_non_null(f);
    fputs("{\"backends\": {"
          " \"faas\": {\"type\": \"http\", \"functions\": {\"wc\": {\"url\": \"http://x/wc\"}}},"
          " \"gw\": {\"type\": \"http\", \"url\": \"http://gw/function/{name}\"},"
          " \"lam\": {\"type\": \"lambda\"},"
          " \"pyfs\": {\"type\": \"http\", \"url\": \"http://fs/\", \"shipped\": true},"
          " \"soap\": {\"type\": \"soap\"}}}",
          f);
    fclose(f);
    unsetenv("AWS_ACCESS_KEY_ID");
    assert_int_equal(cb_config_load(path, &reg, err, sizeof err), CB_OK);
    assert_int_equal(cb_schema_load_dir(cb_schema_default_dir(), &schema, err, sizeof err), CB_OK);
    cfg.schema = schema;
    cfg.reg = reg;
    cfg.max_bytes = 1 << 20;
    assert_string_equal(intake_error(&cfg, "faas", "wc", buf, sizeof buf), "");
    assert_string_equal(intake_error(&cfg, "faas", "nope", buf, sizeof buf),
                        "/function/name: backend \"faas\" has no function \"nope\"");
    assert_string_equal(intake_error(&cfg, "gw", "anything", buf, sizeof buf), "");
    /* credentials only the workers have: not judged here */
    assert_string_equal(intake_error(&cfg, "lam", "f", buf, sizeof buf), "");
    assert_string_equal(
        intake_error(&cfg, "soap", "f", buf, sizeof buf),
        "/function/name: backend \"soap\" is of type \"soap\", which this build does not have");
    assert_string_equal(intake_error(&cfg, "ghost", "f", buf, sizeof buf),
                        "/function/backend: unknown backend \"ghost\" (not configured)");
    /* an http account on a function server runs shipped code as "python" */
    assert_true(cb_config_runs_shipped(reg, "pyfs", "python"));
    assert_false(cb_config_runs_shipped(reg, "pyfs", "other"));
    assert_false(cb_config_runs_shipped(reg, "gw", "python"));
    assert_false(cb_config_runs_shipped(reg, "ghost", "python"));
    assert_string_equal(intake_error(&cfg, "pyfs", "python", buf, sizeof buf),
                        "/function/code: the \"python\" runtime runs shipped functions: the "
                        "function needs its code (docs/toolkit.md)");
    cb_schema_free(schema);
    cb_config_free(reg);
    unlink(path);
}

/* The example configuration in examples/remote-backends.json is valid for
 * every account (with credentials in the environment, as a worker has). */
static void the_example_configuration_loads(void **state)
{
    cb_config *reg = NULL;
    char err[256] = "";
    const char *names[] = {"faas", "knative", "lambda", "openwhisk"};
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKEXAMPLE", 1);
    if (cb_config_load(CB_TESTS_DIR "/../examples/remote-backends.json", &reg, err, sizeof err) !=
        CB_OK)
        fail_msg("%s", err);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cb_remote_kind *k = cb_remote_kind_find(cb_config_backend_type(reg, names[i]));
        void *st = NULL;
        assert_non_null(k);
        if (k->configure(cb_config_backend(reg, names[i]), names[i], &st, err, sizeof err) != CB_OK)
            fail_msg("%s: %s", names[i], err);
        k->release(st);
    }
    cb_config_free(reg);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_requests_and_answers),
        cmocka_unit_test(http_shipped_envelope),
        cmocka_unit_test(http_refuses_bad_configuration),
        cmocka_unit_test(lambda_requests_and_answers),
        cmocka_unit_test(lambda_needs_credentials),
        cmocka_unit_test(openwhisk_requests_and_answers),
        cmocka_unit_test(request_headers_are_bounded),
        cmocka_unit_test(intake_checks_remote_functions),
        cmocka_unit_test(the_example_configuration_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
