/* tests/it_remote.c - the remote backends against real third-party peers
 * (tests/peers/, npm packages installed by tests/run.sh):
 *
 *   lambda     serverless-offline 13 (the AWS Lambda Invoke API)
 *   http       Node.js HTTP functions; CloudEvents checked on the receiving
 *              side by the `cloudevents` SDK; TLS with a CA made here
 *   openwhisk  a peer following the public OpenWhisk REST API documentation
 *
 * Backend tests drive one backend instance directly on the test's loop; the
 * engine tests run the real daemons (projector, engine, adapters) on the
 * test broker: 1,000 tasks on lambda under the account's max_concurrency
 * (measured by the handler on the peer), and a throttling peer whose 429s
 * are retried as throttles, not failures, within the configured rate
 * (measured from the peer's arrival times). */
#include <arpa/inet.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "cb_event.h"
#include "cb_stack.h"
#include "cb_test.h"
#include "cb_time.h"
#include "cb_httpc.h"
#include "cb_config.h"

#define OW_KEY                                                                                     \
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:"                                                        \
    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"

static struct {
    struct event_base *base;
    cb_stack *peers, *stack; /* stack: the daemons of the engine test */
    char dir[256], config[300];
    /* The engine test's accounts, this run's own: a broker shared with
     * earlier runs may hold unfinished jobs that the engine resumes, and
     * they must not reach this run's peers. */
    char lambda_acct[40], throttled_acct[40];
    int lambda, http, https, throttle, retry_after, always, ow, closed, busy;
    cb_config *reg;
} P;

/* ---- set-up -------------------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &l))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    a.sin_port = htons((uint16_t) * (int *)arg);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A CA and a server certificate for 127.0.0.1 signed by it, and a second,
 * unrelated CA. */
static int make_certs(const char *d)
{
    return sh("cd '%s' && "
              "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cbtest-ca "
              "-keyout ca.key -out ca.pem 2>/dev/null && "
              "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca "
              "-keyout other.key -out other.pem 2>/dev/null && "
              "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
              "-keyout srv.key -out srv.csr 2>/dev/null && "
              "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
              "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
              "-extfile san.ext -out srv.pem 2>/dev/null",
              d);
}

static bool start_peer(const char *name, int port, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool start_peer(const char *name, int port, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (!cb_stack_add(P.peers, name, cmd))
        return false;
    if (!cb_test_poll_until(P.base, port_open, &port, 60000, 20)) {
        fprintf(stderr, "peer %s did not open port %d\n", name, port);
        cb_stack_dump(P.peers);
        return false;
    }
    return true;
}

#define BUSY_RATE "40" /* the busy account's rate_per_s (the pool test) */

static int write_config(void)
{
    FILE *f;
    snprintf(P.lambda_acct, sizeof P.lambda_acct, "lambda-run%d", (int)(getpid() % 1000000));
    snprintf(P.throttled_acct, sizeof P.throttled_acct, "throttled-run%d",
             (int)(getpid() % 1000000));
    snprintf(P.config, sizeof P.config, "%s/backends.json", P.dir);
    if (!(f = fopen(P.config, "w")))
        return -1;
    fprintf(f,
            "{\"backends\": {\n"
            " \"lambda\": {\"endpoint\": \"http://127.0.0.1:%d\", \"region\": \"us-east-1\",\n"
            "   \"access_key_id\": \"AKIDEXAMPLE\",\n"
            "   \"secret_access_key\": \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\",\n"
            "   \"max_concurrency\": 8,\n"
            "   \"functions\": {\"add7\": {\"name\": \"cbpeer-dev-add7\"},\n"
            "                 \"boom\": {\"name\": \"cbpeer-dev-boom\"},\n"
            "                 \"track\": {\"name\": \"cbpeer-dev-track\"}}},\n"
            " \"http\": {\"url\": \"http://127.0.0.1:%d/fn/{name}\"},\n"
            " \"http-idle\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:%d/idle/{name}\",\n"
            "   \"idle_ms\": 150},\n"
            " \"knative\": {\"type\": \"http\", \"mode\": \"cloudevents\",\n"
            "   \"url\": \"http://localhost:%d/ce/{name}\", \"ce_type\": \"dev.cbcore.test\"},\n"
            " \"plain-to-ce\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:%d/ce/{name}\"},\n"
            " \"tls\": {\"type\": \"http\", \"url\": \"https://127.0.0.1:%d/fn/{name}\",\n"
            "   \"ca_file\": \"%s/ca.pem\"},\n"
            " \"tls-wrong-ca\": {\"type\": \"http\", \"url\": \"https://127.0.0.1:%d/fn/{name}\",\n"
            "   \"ca_file\": \"%s/other.pem\"},\n"
            " \"refused\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:%d/fn/{name}\"},\n"

            " \"retry-after\": {\"type\": \"http\",\n"
            "   \"url\": \"http://127.0.0.1:%d/throttled/{name}\"},\n"
            " \"always-429\": {\"type\": \"http\",\n"
            "   \"url\": \"http://127.0.0.1:%d/throttled/{name}\"},\n"
            " \"openwhisk\": {\"api_host\": \"http://127.0.0.1:%d\", \"namespace\": \"guest\",\n"
            "   \"api_key\": \"%s\", \"poll_ms\": 50,\n"
            "   \"functions\": {\"slow-nb\": {\"action\": \"slow\", \"blocking\": false}}},\n"
            " \"ow-bad-key\": {\"type\": \"openwhisk\", \"api_host\": \"http://127.0.0.1:%d\",\n"
            "   \"api_key\": \"00000000-0000-0000-0000-000000000000:wrong\"},\n"
            " \"%s\": {\"type\": \"lambda\", \"endpoint\": \"http://127.0.0.1:%d\",\n"
            "   \"access_key_id\": \"AKIDEXAMPLE\", \"secret_access_key\": \"x\",\n"
            "   \"max_concurrency\": 8,\n"
            "   \"functions\": {\"track\": {\"name\": \"cbpeer-dev-track\"}}},\n"
            " \"%s\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:%d/throttled/{name}\",\n"
            "   \"rate_per_s\": 20, \"max_concurrency\": 4},\n"
            " \"busy\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:%d/busy/{name}\",\n"
            "   \"rate_per_s\": " BUSY_RATE ", \"max_concurrency\": 6},\n"
            " \"narrow\": {\"type\": \"local\", \"max_concurrency\": 2},\n"
            " \"wide\": {\"type\": \"local\", \"max_concurrency\": 4}},\n"
            " \"pools\": {\"spill\": {\"members\": [\"busy\", \"narrow\", \"wide\"]},\n"
            "   \"pair\": {\"members\": [\"narrow\", \"wide\"]}}\n"
            "}\n",
            P.lambda, P.http, P.http, P.http, P.http, P.https, P.dir, P.https, P.dir, P.closed,
            P.retry_after, P.always, P.ow, OW_KEY, P.ow, P.lambda_acct, P.lambda, P.throttled_acct,
            P.throttle, P.busy);
    return fclose(f);
}

static int setup(void **state)
{
    char err[512];
    (void)state;
    if (access("tests/peers/node_modules/serverless-offline", F_OK) != 0) {
        fprintf(stderr, "tests/peers/node_modules is missing: (cd tests/peers && npm ci)\n");
        return -1;
    }
    P.base = cb_test_base();
    if (!(P.peers = cb_stack_new(P.base)))
        return -1;
    snprintf(P.dir, sizeof P.dir, "%s", cb_stack_dir(P.peers));
    if (make_certs(P.dir) != 0) {
        fprintf(stderr, "cannot make the test certificates (openssl)\n");
        return -1;
    }
    P.lambda = free_port();
    P.http = free_port();
    P.https = free_port();
    P.throttle = free_port();
    P.retry_after = free_port();
    P.always = free_port();
    P.ow = free_port();
    P.closed = free_port(); /* nobody listens there */
    P.busy = free_port();
    if (!start_peer("http", P.http, "node tests/peers/http_fn.js %d", P.http) ||
        !start_peer("https", P.https,
                    "node tests/peers/http_fn.js %d --tls '%s/srv.pem' '%s/srv.key'", P.https,
                    P.dir, P.dir) ||
        !start_peer("throttle", P.throttle, "node tests/peers/http_fn.js %d --throttle 3",
                    P.throttle) ||
        !start_peer("retry-after", P.retry_after,
                    "node tests/peers/http_fn.js %d --throttle 1 --retry-after 1", P.retry_after) ||
        !start_peer("always-429", P.always,
                    "node tests/peers/http_fn.js %d --throttle 1000000 --retry-after 1",
                    P.always) ||
        !start_peer("busy", P.busy, "node tests/peers/http_fn.js %d --concurrency 2", P.busy) ||
        !start_peer("openwhisk", P.ow, "node tests/peers/openwhisk.js %d '%s' 200", P.ow, OW_KEY) ||
        !start_peer("lambda", P.lambda,
                    "env CB_LAMBDA_PORT=%d CB_LAMBDA_HTTP_PORT=%d CB_LAMBDA_WS_PORT=%d "
                    "CB_PEER_LOG=%s/track.log sh -c 'cd tests/peers && "
                    "exec node node_modules/serverless/bin/serverless.js offline start'",
                    P.lambda, free_port(), free_port(), P.dir))
        return -1;
    if (write_config() != 0 || cb_config_load(P.config, &P.reg, err, sizeof err) != CB_OK) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cb_config_free(P.reg);
    cb_stack_stop(P.stack); /* a failed engine test leaves it running */
    cb_stack_stop(P.peers);
    event_base_free(P.base);
    return 0;
}

/* ---- one invocation on one backend ------------------------------------------------ */

typedef struct outcome {
    int done;
    cb_fail_reason reason;
    json_t *outputs;
    char error[1100];
    char detail[9000];
    uint32_t throttled;
    int64_t retry_after_ms;
} outcome;

static void on_done(const cb_inv_result *r, void *ctx)
{
    outcome *o = ctx;
    o->done = 1;
    o->reason = r->reason;
    o->outputs = r->outputs ? json_incref(r->outputs) : NULL;
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    snprintf(o->detail, sizeof o->detail, "%s", r->stderr_tail ? r->stderr_tail : "");
    o->throttled = r->throttled;
    o->retry_after_ms = r->retry_after_ms;
}

static bool is_done(void *arg)
{
    return ((outcome *)arg)->done;
}

/* Run `fn` on `account` over the items (JSON text); fills o. */
static void invoke(const char *account, const char *fn, const char *items, int64_t timeout_ms,
                   outcome *o)
{
    const cb_backend_ops *ops = cb_backend_find(cb_config_backend_type(P.reg, account));
    json_t *its = json_loads(items, 0, NULL);
    json_t *spec = json_pack("{s:s, s:s}", "backend", account, "name", fn);
    cb_invocation inv = {.tenant = "t1", .job = "j1", .task = 3, .attempt = 1};
    void *be = NULL;
    char err[512] = "";

    memset(o, 0, sizeof *o);
    assert_non_null(ops);
    assert_non_null(its);
    if (ops->create(P.base, P.reg, account, &be, err, sizeof err) != CB_OK)
        fail_msg("create %s: %s", account, err);
    inv.function = fn;
    inv.spec = spec;
    inv.items = its;
    inv.timeout_ms = timeout_ms;
    assert_int_equal(ops->invoke(be, &inv, on_done, o), CB_OK);
    assert_false(o->done); /* never from inside invoke */
    if (!cb_test_run_until(P.base, is_done, o, 60000)) {
        cb_stack_dump(P.peers);
        fail_msg("%s/%s: no outcome within 60 s", account, fn);
    }
    ops->destroy(be);
    json_decref(its);
    json_decref(spec);
}

static void expect_outputs(outcome *o, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    if (o->reason != CB_FAIL_NONE)
        fail_msg("failed (%s): %s", cb_fail_reason_name(o->reason), o->error);
    if (!json_equal(w, o->outputs)) {
        char *got = json_dumps(o->outputs, JSON_ENCODE_ANY);
        fail_msg("outputs %s, want %s", got, want);
    }
    json_decref(w);
    json_decref(o->outputs);
    o->outputs = NULL;
}

static void expect_failure(outcome *o, cb_fail_reason reason, const char *needle)
{
    json_decref(o->outputs);
    o->outputs = NULL;
    if (o->reason != reason || !strstr(o->error, needle))
        fail_msg("want %s with \"%s\", got %s: %s", cb_fail_reason_name(reason), needle,
                 cb_fail_reason_name(o->reason), o->error);
}

/* GET the peer's /stats. New reference. */
typedef struct got {
    int done;
    json_t *body;
} got;

static void stats_done(const cb_http_resp *r, void *ctx)
{
    got *g = ctx;
    g->done = 1;
    if (r->status == 200)
        g->body = json_loadb(r->body, r->body_len, 0, NULL);
}

static json_t *peer_stats(int port)
{
    cb_httpc *c;
    got g = {0};
    char url[128], err[256];
    cb_http_req rq = {.method = "GET", .url = url};
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stats", port);
    assert_int_equal(cb_httpc_new(P.base, NULL, &c, err, sizeof err), CB_OK);
    assert_int_equal(cb_httpc_request(c, &rq, stats_done, &g, NULL, err, sizeof err), CB_OK);
    assert_true(cb_test_run_until(P.base, (cb_test_pred *)is_done, &g, 10000));
    cb_httpc_free(c);
    assert_non_null(g.body);
    return g.body;
}

/* ---- lambda (serverless-offline) ---------------------------------------------------- */

static void lambda_success(void **state)
{
    outcome o;
    (void)state;
    invoke("lambda", "add7", "[1, 2, 35]", 20000, &o);
    expect_outputs(&o, "[8, 9, 42]");
}

static void lambda_handler_error(void **state)
{
    outcome o;
    (void)state;
    invoke("lambda", "boom", "[5]", 20000, &o);
    expect_failure(&o, CB_FAIL_EXIT, "Error: cannot take 5");
    assert_non_null(strstr(o.detail, "lambda_handler.js")); /* the trace */
}

static void lambda_unknown_function(void **state)
{
    outcome o;
    (void)state;
    invoke("lambda", "nope", "[5]", 20000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "unknown function: ResourceNotFoundException");
    assert_non_null(strstr(o.error, "Function not found: nope"));
}

/* ---- http -------------------------------------------------------------------------- */

/* The client ports the peer saw for `path`, in order (up to n). */
static size_t ports_of(int peer, const char *path, json_int_t *ports, size_t n)
{
    json_t *st = peer_stats(peer), *a;
    size_t i, k = 0;
    json_array_foreach(json_object_get(st, "arrivals"), i, a)
    {
        if (k < n && !strcmp(json_string_value(json_object_get(a, "path")), path))
            ports[k++] = json_integer_value(json_object_get(a, "port"));
    }
    json_decref(st);
    return k;
}

static void http_json(void **state)
{
    outcome o;
    json_int_t ports[4];
    (void)state;
    invoke("http", "add7", "[1, 2, 3]", 10000, &o);
    expect_outputs(&o, "[8, 9, 10]");
    /* One connection carried the three requests (keep-alive). */
    assert_int_equal(ports_of(P.http, "/fn/add7", ports, 4), 3);
    assert_int_equal(ports[1], ports[0]);
    assert_int_equal(ports[2], ports[0]);
    invoke("http", "fail", "[{\"x\": 1}]", 10000, &o);
    expect_failure(&o, CB_FAIL_EXIT, "HTTP 500: boom: {\"x\":1}");
    invoke("http", "missing", "[1]", 10000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "unknown function: HTTP 404");
}

static void http_idle_connections_are_not_reused(void **state)
{
    const cb_backend_ops *ops = cb_backend_find("http");
    json_t *items = json_pack("[i]", 1), *spec = json_pack("{s:s}", "name", "add7");
    cb_invocation inv = {.tenant = "t1",
                         .job = "j1",
                         .task = 0,
                         .attempt = 1,
                         .function = "add7",
                         .spec = spec,
                         .items = items};
    json_int_t ports[4];
    struct timeval tv = {0, 400000};
    outcome o;
    void *be;
    char err[256];
    (void)state;
    /* One backend instance, so one pool: two invocations 400 ms apart. */
    assert_int_equal(ops->create(P.base, P.reg, "http-idle", &be, err, sizeof err), CB_OK);
    memset(&o, 0, sizeof o);
    assert_int_equal(ops->invoke(be, &inv, on_done, &o), CB_OK);
    assert_true(cb_test_run_until(P.base, is_done, &o, 10000));
    expect_outputs(&o, "[8]");
    memset(&o, 0, sizeof o);
    assert_int_equal(ops->invoke(be, &inv, on_done, &o), CB_OK);
    assert_true(cb_test_run_until(P.base, is_done, &o, 10000));
    expect_outputs(&o, "[8]");
    event_base_loopexit(P.base, &tv); /* the time under test: past idle_ms */
    event_base_dispatch(P.base);
    memset(&o, 0, sizeof o);
    assert_int_equal(ops->invoke(be, &inv, on_done, &o), CB_OK);
    assert_true(cb_test_run_until(P.base, is_done, &o, 10000));
    expect_outputs(&o, "[8]");
    ops->destroy(be);
    assert_int_equal(ports_of(P.http, "/idle/add7", ports, 4), 3);
    assert_int_equal(ports[0], ports[1]); /* reused at once */
    assert_true(ports[2] != ports[1]);    /* not after 400 ms idle */
    json_decref(items);
    json_decref(spec);
}

static void http_cloudevents(void **state)
{
    outcome o;
    json_t *st, *ev = NULL, *e;
    size_t i;
    (void)state;
    invoke("knative", "add7", "[10, 20]", 10000, &o);
    expect_outputs(&o, "[17, 27]");
    /* The same endpoint refuses a request that is not a CloudEvent: the
     * peer's SDK check is real. */
    invoke("plain-to-ce", "add7", "[10]", 10000, &o);
    expect_failure(&o, CB_FAIL_EXIT, "HTTP 400");
    st = peer_stats(P.http);
    json_array_foreach(json_object_get(st, "events"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "id")), "t1/j1/3/1/1"))
            ev = e;
    }
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "source")), "/cbcore/t1/j1");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "dev.cbcore.test");
    assert_string_equal(json_string_value(json_object_get(ev, "subject")), "add7");
    assert_string_equal(json_string_value(json_object_get(ev, "specversion")), "1.0");
    json_decref(st);
}

static void http_tls(void **state)
{
    outcome o;
    (void)state;
    invoke("tls", "add7", "[1]", 10000, &o);
    expect_outputs(&o, "[8]");
    invoke("tls-wrong-ca", "add7", "[1]", 10000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "TLS: certificate verification failed");
}

static void http_connection_errors(void **state)
{
    outcome o;
    (void)state;
    invoke("refused", "add7", "[1]", 10000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "Connection refused");
    invoke("http", "sleep", "[3000]", 300, &o);
    expect_failure(&o, CB_FAIL_TIMEOUT, "within 300 ms");
}

/* ---- throttling ---------------------------------------------------------------------- */

static void retry_after_is_honoured(void **state)
{
    outcome o;
    json_t *st, *arr;
    int64_t t429, tnext;
    (void)state;
    invoke("retry-after", "add7", "[1]", 20000, &o);
    expect_outputs(&o, "[8]");
    assert_int_equal(o.throttled, 1);
    st = peer_stats(P.retry_after);
    arr = json_object_get(st, "arrivals");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "status")), 429);
    t429 = strtoll(json_string_value(json_object_get(json_array_get(arr, 0), "ns")), NULL, 10);
    tnext = strtoll(json_string_value(json_object_get(json_array_get(arr, 1), "ns")), NULL, 10);
    assert_true(tnext - t429 >= 1000000000LL); /* Retry-After: 1 */
    json_decref(st);
}

static void throttled_past_the_deadline(void **state)
{
    outcome o;
    (void)state;
    /* The peer asks for 1 s; 300 ms are left: give the command back after
     * that second, without counting a failure (the worker's part). */
    invoke("always-429", "add7", "[1]", 300, &o);
    expect_failure(&o, CB_FAIL_THROTTLED, "throttled by always-429 1 times");
    assert_int_equal(o.retry_after_ms, 1000);
    assert_int_equal(o.throttled, 1);
}

/* ---- openwhisk ----------------------------------------------------------------------- */

static void openwhisk_actions(void **state)
{
    outcome o;
    json_t *st, *r;
    size_t i;
    int posts = 0, polls = 0;
    (void)state;
    invoke("openwhisk", "add7", "[5, {\"value\": 1}]", 10000, &o);
    expect_outputs(&o, "[{\"value\": 12}, {\"value\": 8}]");
    invoke("openwhisk", "boom", "[5]", 10000, &o);
    expect_failure(&o, CB_FAIL_EXIT, "cannot take 5");
    invoke("openwhisk", "nope", "[5]", 10000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "unknown action");
    invoke("ow-bad-key", "add7", "[5]", 10000, &o);
    expect_failure(&o, CB_FAIL_BACKEND, "refused the API key (HTTP 401)");
    /* Past the server's blocking wait (200 ms): 202, then polling. */
    invoke("openwhisk", "slow", "[{\"value\": 3, \"ms\": 500}]", 10000, &o);
    expect_outputs(&o, "[{\"value\": 3}]");
    /* Non-blocking: 202 at once, then polling until the record is there. */
    invoke("openwhisk", "slow-nb", "[{\"value\": 4, \"ms\": 300}]", 10000, &o);
    expect_outputs(&o, "[{\"value\": 4}]");
    st = peer_stats(P.ow);
    json_array_foreach(st, i, r)
    {
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *q = json_string_value(json_object_get(r, "query"));
        if (!strcmp(path, "/api/v1/namespaces/guest/actions/add7")) {
            posts++;
            assert_string_equal(q, "?blocking=true&result=true");
            assert_true(json_is_true(json_object_get(r, "auth")));
        }
        if (!strcmp(path, "/api/v1/namespaces/guest/actions/slow") && strstr(q, "blocking=false"))
            posts += 100;
        if (!strncmp(path, "/api/v1/namespaces/guest/activations/", 37))
            polls++;
    }
    assert_int_equal(posts, 102); /* two add7 items, one non-blocking slow */
    assert_true(polls >= 2);      /* at least one poll for each 202 */
    json_decref(st);
}

/* ---- through the engine ----------------------------------------------------------------- */

static int submit_wait(const char *url, const char *job_text, char *id, size_t idlen, json_t **done)
{
    char path[400], out[400], line[1 << 16];
    FILE *f;
    int rc;
    snprintf(path, sizeof path, "%s/job.json", P.dir);
    snprintf(out, sizeof out, "%s/job.out", P.dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs(job_text, f);
    fclose(f);
    /* The engine may still be starting (no responders): ask again, waiting
     * on the loop, until the job has an id. */
    for (int attempt = 0; attempt < 60; attempt++) {
        struct timeval tv = {0, 500000};
        rc = sh("CB_BROKER_URL='%s' '%s/cb' submit --wait --timeout 300 '%s' >'%s' 2>'%s.err'", url,
                getenv("CB_TEST_BIN"), path, out, out);
        if (rc == 0 || sh("test -s '%s'", out) == 0)
            break;
        event_base_loopexit(P.base, &tv);
        event_base_dispatch(P.base);
    }
    if (rc != 0) /* a job that failed exits 1: its done line says why */
        sh("cat '%s.err' '%s' >&2", out, out);
    if (!(f = fopen(out, "r")))
        return -1;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    line[strcspn(line, "\n")] = '\0';
    snprintf(id, idlen, "%.200s", line);
    *done = fgets(line, sizeof line, f) ? json_loads(line, 0, NULL) : NULL;
    fclose(f);
    return *done ? 0 : -1;
}

/* The most handlers that ran at once, from the peer's B/E log; *starts:
 * how many started with an input in [lo, hi), each input once at most
 * (-1 if one ran twice). Every line counts for the overlap: all are load
 * on the account. */
static int max_overlap(const char *log, long long lo, long long hi, int *starts)
{
    FILE *f = fopen(log, "r");
    char kind;
    long long ns, input;
    int n = 0, cur = 0, best = 0, cap = 0;
    unsigned char *seen;
    struct ev {
        long long ns;
        int d;
    } *evs = NULL, tmp;
    *starts = 0;
    if (!f)
        return -1;
    seen = calloc((size_t)(hi - lo), 1);
    while (fscanf(f, " %c %lld %lld", &kind, &ns, &input) == 3) {
        if (n == cap) {
            struct ev *more = realloc(evs, (size_t)(cap = cap ? cap * 2 : 1024) * sizeof *evs);
            if (!more)
                break;
            evs = more;
        }
        evs[n].ns = ns;
        evs[n++].d = kind == 'B' ? 1 : -1;
        if (kind == 'B' && input >= lo && input < hi && seen && *starts >= 0)
            *starts = seen[input - lo]++ ? -1 : *starts + 1;
    }
    free(seen);
    fclose(f);
    for (int i = 1; i < n; i++) /* insertion sort: the log is nearly in order */
        for (int j = i; j > 0 && (evs[j - 1].ns > evs[j].ns ||
                                  (evs[j - 1].ns == evs[j].ns && evs[j - 1].d < evs[j].d));
             j--) {
            tmp = evs[j];
            evs[j] = evs[j - 1];
            evs[j - 1] = tmp;
        }
    for (int i = 0; i < n; i++) {
        cur += evs[i].d;
        if (cur > best)
            best = cur;
    }
    free(evs);
    return best;
}

/* A peer's arrivals (in order) never more than rate + 1 in any second (the
 * pace allows one per 1/rate s, so a window holds rate starts and may
 * touch one more). */
static void expect_rate(const json_t *arr, int rate)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        long long ta =
            strtoll(json_string_value(json_object_get(json_array_get(arr, i), "ns")), NULL, 10);
        size_t k = i;
        while (k + 1 < json_array_size(arr) &&
               strtoll(json_string_value(json_object_get(json_array_get(arr, k + 1), "ns")), NULL,
                       10) < ta + 1000000000LL)
            k++;
        if (k - i + 1 > (size_t)rate + 1)
            fail_msg("%zu arrivals within one second from arrival %zu (rate %d/s)", k - i + 1, i,
                     rate);
    }
}

/* A job that succeeded with n outputs, the last one `last`; done is freed. */
static void expect_result(json_t *done, size_t n, json_int_t last)
{
    const json_t *result = json_object_get(done, "result");
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    assert_int_equal(json_array_size(result), n);
    assert_int_equal(json_integer_value(json_array_get(result, n - 1)), last);
    json_decref(done);
}

/* The job's events (cb replay --job --json), in log order. */
static json_t *job_events(const char *url, const char *tenant, const char *id)
{
    char cmd[1200], path[400], line[1 << 16];
    json_t *lines = json_array();
    FILE *f;
    snprintf(path, sizeof path, "%s/ev.out", P.dir);
    snprintf(cmd, sizeof cmd, "CB_BROKER_URL='%s' '%s/cb' replay --job '%s/%s' --json >'%s'", url,
             getenv("CB_TEST_BIN"), tenant, id, path);
    assert_int_equal(sh("%s", cmd), 0);
    assert_non_null(f = fopen(path, "r"));
    while (fgets(line, sizeof line, f)) {
        json_t *e = json_loads(line, 0, NULL);
        json_array_append_new(lines, e ? e : json_null());
    }
    fclose(f);
    return lines;
}

/* An outcome event's tasks (cb.task.succeeded / failed: itself; a command's
 * cb.tasks.succeeded: its parts), or NULL for other events. New reference. */
static json_t *outcomes_of(const json_t *e)
{
    const char *type = json_string_value(json_object_get(e, "type")) ?: "";
    json_t *d = json_object_get(e, "data");
    if (!strcmp(type, "cb.task.succeeded") || !strcmp(type, "cb.task.failed"))
        return json_pack("[O]", d);
    if (!strcmp(type, "cb.tasks.succeeded"))
        return json_incref(json_object_get(d, "tasks"));
    return NULL;
}

static void through_the_engine(void **state)
{
    const char *url = cb_test_env("CB_TEST_BROKER_URL");
    char tenant[64], job[1024], id[256], log[400], adapter[1200];
    json_t *done = NULL, *result, *st, *arr, *lines, *e;
    cb_stack *s;
    int starts, most, failed = 0, attempts_over_1 = 0;
    long long throttled = 0, base;
    int64_t t0;
    double secs;
    size_t i;
    (void)state;

    snprintf(log, sizeof log, "%s/track.log", P.dir);
    unlink(log);
    assert_non_null(s = P.stack = cb_stack_start(P.base, url, P.config, 1, NULL));
    snprintf(adapter, sizeof adapter,
             "'%s/cb-adapter' --config '%s' --backend %s --id al --broker '%s'",
             getenv("CB_TEST_BIN"), P.config, P.lambda_acct, url);
    assert_true(cb_stack_add(s, "adapter-lambda", adapter));
    snprintf(adapter, sizeof adapter,
             "'%s/cb-adapter' --config '%s' --backend %s --id at --broker '%s'",
             getenv("CB_TEST_BIN"), P.config, P.throttled_acct, url);
    assert_true(cb_stack_add(s, "adapter-throttled", adapter));

    /* 1,000 tasks on lambda; the account allows 8 at once. The inputs are
     * this run's own (a log shared with earlier runs may hold unfinished
     * jobs that the engine resumes on this peer). */
    cb_test_unique(tenant, sizeof tenant, "rl");
    base = (long long)(getpid() % 100000) * 10000;
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"map\", \"function\": {\"backend\": \"%s\","
             " \"name\": \"track\"}, \"input\": {\"range\": {\"start\": %lld, \"stop\": %lld}},"
             " \"parallelism\": 100}",
             tenant, P.lambda_acct, base, base + 1000);
    t0 = cb_time_mono_ns();
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        cb_stack_dump(P.peers);
        fail_msg("the lambda job did not finish");
    }
    secs = (double)(cb_time_mono_ns() - t0) / 1e9;
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    result = json_object_get(done, "result");
    assert_int_equal(json_array_size(result), 1000);
    for (i = 0; i < 1000; i++)
        assert_int_equal(json_integer_value(json_array_get(result, i)), base + (json_int_t)i + 7);
    json_decref(done);
    most = max_overlap(log, base, base + 1000, &starts);
    fprintf(stderr,
            "lambda: %d handler runs, at most %d at once (max_concurrency 8), %.1f s from "
            "submit to done\n",
            starts, most, secs);
    assert_int_equal(starts, 1000);
    assert_true(most <= 8);
    assert_true(most >= 2); /* it did run in parallel */

    /* A peer that answers 429 to the first 3 requests; 20 requests/s. */
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"map\", \"function\": {\"backend\": \"%s\","
             " \"name\": \"add7\"}, \"input\": {\"range\": {\"start\": 0, \"stop\": 30}}}",
             tenant, P.throttled_acct);
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        fail_msg("the throttled job did not finish");
    }
    expect_result(done, 30, 36);
    /* In the log: no failure, every task on attempt 1, 3 throttles. */
    lines = job_events(url, tenant, id);
    json_array_foreach(lines, i, e)
    {
        json_t *outs = outcomes_of(e), *one;
        size_t k;
        failed += !strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.task.failed");
        json_array_foreach(outs, k, one)
        {
            throttled += json_integer_value(json_object_get(one, "throttled"));
            attempts_over_1 += json_integer_value(json_object_get(one, "attempt")) != 1;
        }
        json_decref(outs);
    }
    assert_true(json_array_size(lines) > 30);
    json_decref(lines);
    assert_int_equal(failed, 0);
    assert_int_equal(attempts_over_1, 0);
    assert_int_equal(throttled, 3);
    /* At the peer: 33 arrivals (3 refused), never more than 20 + 1 in any
     * second (the pace allows one per 50 ms). */
    st = peer_stats(P.throttle);
    arr = json_object_get(st, "arrivals");
    assert_int_equal(json_array_size(arr), 33);
    expect_rate(arr, 20);
    json_decref(st);
    cb_stack_stop(s);
    P.stack = NULL;
}

/* ---- pools -------------------------------------------------------------------------- */

/* A stack with no local adapter, one adapter per account named. */
static cb_stack *start_accounts(const char *url, const char *const *names, int n)
{
    cb_stack *s = P.stack = cb_stack_start(P.base, url, P.config, 0, NULL);
    assert_non_null(s);
    for (int m = 0; m < n; m++) {
        char name[40], adapter[1200];
        snprintf(adapter, sizeof adapter,
                 "'%s/cb-adapter' --config '%s' --backend %s --id a%d --broker '%s'",
                 getenv("CB_TEST_BIN"), P.config, names[m], m, url);
        snprintf(name, sizeof name, "adapter-%s", names[m]);
        assert_true(cb_stack_add(s, name, adapter));
    }
    return s;
}

static int member_index(const char *backend)
{
    static const char *const members[] = {"busy", "narrow", "wide"};
    for (int m = 0; m < 3; m++)
        if (backend && !strcmp(backend, members[m]))
            return m;
    return -1;
}

/* Pool "spill" fills "busy" first (order), then "narrow" (2 at once), then
 * "wide" (4). busy's configuration allows 6 at once, but its peer answers
 * 429 above 2: the job finishes, no member ever has more in flight than
 * its max_concurrency nor busy more requests in a second than its rate,
 * and once busy's throttles are in the log its share of the dispatches
 * falls (the engine learned what it takes). */
static void a_pool_spills_over_and_learns_from_throttles(void **state)
{
    static const int limit[3] = {6, 2, 4};
    static const char *const names[] = {"busy", "narrow", "wide"};
    const char *url = cb_test_env("CB_TEST_BROKER_URL");
    char tenant[64], job[1024], id[256], items[512] = "";
    json_t *done = NULL, *lines, *e, *st;
    int inflight[3] = {0}, most[3] = {0}, disp[2][3] = {{0}}, throttled = 0, failed = 0;
    int after = 0, ndisp = 0, first[3] = {0};
    double after_share;
    cb_stack *s;
    size_t i;
    (void)state;

    s = start_accounts(url, names, 3);
    cb_test_unique(tenant, sizeof tenant, "pool");
    for (int k = 0; k < 80; k++) /* 80 items of 100 ms */
        snprintf(items + strlen(items), sizeof items - strlen(items), "%s100", k ? ", " : "");
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"map\", \"function\": {\"backend\": \"spill\","
             " \"name\": \"sleep_ms\"}, \"input\": {\"items\": [%s]}}",
             tenant, items);
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        cb_stack_dump(P.peers);
        fail_msg("the pool's job did not finish");
    }
    expect_result(done, 80, 100);

    /* The log, in order: each member's invocations in flight (dispatched to
     * it, not yet reported by its adapter), and the dispatches before and
     * after busy's first throttles were reported. */
    lines = job_events(url, tenant, id);
    json_array_foreach(lines, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        const json_t *d = json_object_get(e, "data");
        json_t *outs = outcomes_of(e), *one;
        size_t k;
        char b[64] = "";
        if (!strcmp(type, "cb.tasks.dispatched")) {
            int m = member_index(json_string_value(json_object_get(d, "backend")));
            assert_string_equal(json_string_value(json_object_get(d, "pool")), "spill");
            assert_true(m >= 0);
            for (k = 0; k < json_array_size(json_object_get(d, "tasks")); k++, ndisp++)
                first[m] += ndisp < 12; /* the first plan: every member's whole limit */
            inflight[m] += (int)json_array_size(json_object_get(d, "tasks"));
            disp[after][m] += (int)json_array_size(json_object_get(d, "tasks"));
            if (inflight[m] > most[m])
                most[m] = inflight[m];
        }
        failed += !strcmp(type, "cb.task.failed");
        if (outs) { /* the adapter's account is the member that ran it */
            const char *src = json_string_value(json_object_get(e, "source")) ?: "";
            int m;
            assert_true(cb_event_source_backend(src, b, sizeof b));
            assert_true((m = member_index(b)) >= 0);
            json_array_foreach(outs, k, one)
            {
                int n = (int)json_integer_value(json_object_get(one, "throttled"));
                inflight[m]--;
                throttled += n;
                if (n > 0 && m == 0)
                    after = 1; /* what comes next was decided knowing it (or soon) */
            }
        }
        json_decref(outs);
    }
    json_decref(lines);
    after_share = disp[1][0] + disp[1][1] + disp[1][2]
                      ? (double)disp[1][0] / (disp[1][0] + disp[1][1] + disp[1][2])
                      : 1;
    fprintf(stderr,
            "pool: the first plan %d/%d/%d to busy/narrow/wide; %d/%d/%d before busy's first "
            "throttle, %d/%d/%d after (busy's share %.2f); most at once %d/%d/%d; %d throttles\n",
            first[0], first[1], first[2], disp[0][0], disp[0][1], disp[0][2], disp[1][0],
            disp[1][1], disp[1][2], after_share, most[0], most[1], most[2], throttled);
    assert_int_equal(failed, 0);
    for (int m = 0; m < 3; m++) {
        assert_true(most[m] <= limit[m]);         /* each member's own limit */
        assert_true(disp[0][m] + disp[1][m] > 0); /* each got work: it spilled over */
    }
    /* in order, each to its limit: busy's share of the first plan is 6/12;
     * once it throttled it gets less than that */
    assert_true(first[0] == 6 && first[1] == 2 && first[2] == 4);
    assert_true(throttled > 0);
    assert_true(after_share < 0.5);
    st = peer_stats(P.busy);
    expect_rate(json_object_get(st, "arrivals"), atoi(BUSY_RATE));
    json_decref(st);

    /* A map_reduce on the pool: its reduce goes to the reduce function's
     * own backend, not to a member of the pool. */
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"map_reduce\", \"function\": {\"backend\": "
             "\"spill\", \"name\": \"sleep_ms\"}, \"input\": {\"items\": [5, 5, 5, 5]},"
             " \"reduce\": {\"function\": {\"backend\": \"wide\", \"name\": \"echo\"}}}",
             tenant);
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        fail_msg("the pool's map_reduce did not finish");
    }
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    json_decref(done);
    lines = job_events(url, tenant, id);
    {
        int reduce_dispatches = 0;
        json_array_foreach(lines, i, e)
        {
            const json_t *d = json_object_get(e, "data"), *t0;
            if (strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.tasks.dispatched"))
                continue;
            t0 = json_array_get(json_object_get(d, "tasks"), 0);
            if (json_integer_value(json_object_get(t0, "task")) == 4) { /* the reduce */
                reduce_dispatches++;
                assert_string_equal(json_string_value(json_object_get(d, "backend")), "wide");
                assert_null(json_object_get(d, "pool"));
            } else {
                assert_string_equal(json_string_value(json_object_get(d, "pool")), "spill");
            }
        }
        assert_int_equal(reduce_dispatches, 1);
    }
    json_decref(lines);
    cb_stack_stop(s);
    P.stack = NULL;
}

/* A DAG whose steps are on two accounts, "narrow" (2 at once) and "wide"
 * (4): a fan-out of 12 on each at the same time. Each account's own limit
 * holds and each is used to its width (the job is not shaped by one of
 * them); the log names each dispatch's account. */
static void a_dag_s_steps_are_shaped_by_their_own_accounts(void **state)
{
    static const char *const names[] = {"narrow", "wide"};
    static const int limit[2] = {2, 4};
    const char *url = cb_test_env("CB_TEST_BROKER_URL");
    char tenant[64], job[1400], id[256];
    json_t *done = NULL, *lines, *e;
    int inflight[2] = {0}, most[2] = {0}, tasks[2] = {0}, failed = 0, wrong = 0;
    unsigned sent[28] = {0}; /* task -> attempts dispatched */
    json_t *ids = json_object();
    cb_stack *s;
    size_t i;
    (void)state;

    s = start_accounts(url, names, 2);
    cb_test_unique(tenant, sizeof tenant, "lanes");
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"dag\", \"parallelism\": 50, \"tasks\": {"
             "\"list\": {\"function\": {\"backend\": \"wide\", \"name\": \"echo\"},"
             " \"input\": [150, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150]},"
             "\"narrow_each\": {\"function\": {\"backend\": \"narrow\", \"name\": \"sleep_ms\"},"
             " \"foreach\": \"list\"},"
             "\"wide_each\": {\"function\": {\"backend\": \"wide\", \"name\": \"sleep_ms\"},"
             " \"foreach\": \"list\"},"
             "\"z_join\": {\"function\": {\"backend\": \"wide\", \"name\": \"echo\"},"
             " \"input_from\": [\"narrow_each\", \"wide_each\"]}}}",
             tenant);
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        fail_msg("the DAG did not finish");
    }
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    json_decref(done);
    /* The log, in order: each account's invocations in flight (dispatched
     * to it, not yet reported). The account of a task by its index: list 0,
     * z_join 3, narrow_each's children 4..15, wide_each's 16..27. */
    lines = job_events(url, tenant, id);
    json_array_foreach(lines, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type")) ?: "";
        const json_t *d = json_object_get(e, "data"), *t;
        json_t *outs = outcomes_of(e);
        size_t k;
        const char *eid = json_string_value(json_object_get(e, "id")) ?: "?";
        if (json_object_get(ids, eid))
            fprintf(stderr, "lanes: event %s twice in the log (at %zu and %zu)\n", eid,
                    (size_t)json_integer_value(json_object_get(ids, eid)), i);
        json_object_set_new(ids, eid, json_integer((json_int_t)i));
        if (!strcmp(type, "cb.tasks.dispatched")) {
            const char *backend = json_string_value(json_object_get(d, "backend"));
            json_array_foreach(json_object_get(d, "tasks"), k, t)
            {
                json_int_t task = json_integer_value(json_object_get(t, "task"));
                json_int_t attempt = json_integer_value(json_object_get(t, "attempt"));
                int m = task >= 4 && task < 16 ? 0 : 1;
                assert_true(task >= 0 && task < 28 && attempt >= 1 && attempt <= 8);
                if (sent[task] & (1u << attempt)) { /* the state has it once */
                    fprintf(stderr, "lanes: task %d attempt %d dispatched again (%s)\n", (int)task,
                            (int)attempt, json_string_value(json_object_get(e, "id")) ?: "?");
                    continue;
                }
                sent[task] |= 1u << attempt;
                if (++inflight[m] > most[m])
                    most[m] = inflight[m];
                tasks[m]++;
                if (!backend || strcmp(backend, names[m]) ||
                    !json_is_true(json_object_get(d, "mixed")))
                    wrong++; /* the dispatch must name its account */
            }
        }
        failed += !strcmp(type, "cb.task.failed");
        json_array_foreach(outs, k, t)
        {
            json_int_t task = json_integer_value(json_object_get(t, "task"));
            if (task != 1 && task != 2) /* not a foreach step collected by the engine */
                inflight[task >= 4 && task < 16 ? 0 : 1]--;
        }
        json_decref(outs);
    }
    json_decref(lines);
    json_decref(ids);
    fprintf(stderr, "lanes: %d/%d tasks to narrow/wide, at most %d/%d at once (limits 2/4)\n",
            tasks[0], tasks[1], most[0], most[1]);
    assert_int_equal(failed, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(tasks[0], 12); /* narrow_each's children */
    assert_int_equal(tasks[1], 14); /* list, wide_each's children, z_join */
    for (int m = 0; m < 2; m++)
        assert_int_equal(most[m], limit[m]); /* its own limit, reached and held */

    /* A step on a pool ("pair": narrow, then wide) beside a step on wide
     * itself: the pool's children go to its members, and no account ever
     * has more in flight than its limit, whoever sent the tasks. */
    snprintf(job, sizeof job,
             "{\"tenant\": \"%s\", \"kind\": \"dag\", \"parallelism\": 50, \"tasks\": {"
             "\"a_list\": {\"function\": {\"backend\": \"narrow\", \"name\": \"echo\"},"
             " \"input\": [150, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150]},"
             "\"b_pool\": {\"function\": {\"backend\": \"pair\", \"name\": \"sleep_ms\"},"
             " \"foreach\": \"a_list\"},"
             "\"c_wide\": {\"function\": {\"backend\": \"wide\", \"name\": \"sleep_ms\"},"
             " \"foreach\": \"a_list\"},"
             "\"d_join\": {\"function\": {\"backend\": \"pair\", \"name\": \"echo\"},"
             " \"input_from\": [\"b_pool\", \"c_wide\"]}}}",
             tenant);
    if (submit_wait(url, job, id, sizeof id, &done) != 0) {
        cb_stack_dump(s);
        fail_msg("the DAG with a pool did not finish");
    }
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    json_decref(done);
    memset(inflight, 0, sizeof inflight);
    memset(most, 0, sizeof most);
    memset(tasks, 0, sizeof tasks);
    lines = job_events(url, tenant, id);
    json_array_foreach(lines, i, e)
    {
        const json_t *d = json_object_get(e, "data");
        json_t *outs = outcomes_of(e);
        char b[64] = "";
        if (!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "cb.tasks.dispatched")) {
            const char *backend = json_string_value(json_object_get(d, "backend")) ?: "";
            const char *pool = json_string_value(json_object_get(d, "pool"));
            json_int_t first = json_integer_value(
                json_object_get(json_array_get(json_object_get(d, "tasks"), 0), "task"));
            int m = !strcmp(backend, "narrow") ? 0 : !strcmp(backend, "wide") ? 1 : -1;
            int n = (int)json_array_size(json_object_get(d, "tasks"));
            assert_true(m >= 0);
            /* b_pool's children (4..15) and d_join (3) through the pool */
            if ((first == 3 || (first >= 4 && first < 16)) != (pool && !strcmp(pool, "pair")))
                fail_msg("task %d: dispatched with pool %s", (int)first, pool ? pool : "none");
            tasks[m] += n;
            if ((inflight[m] += n) > most[m])
                most[m] = inflight[m];
        }
        if (outs && cb_event_source_backend(json_string_value(json_object_get(e, "source")) ?: "",
                                            b, sizeof b))
            inflight[!strcmp(b, "narrow") ? 0 : 1] -= (int)json_array_size(outs);
        json_decref(outs);
    }
    json_decref(lines);
    fprintf(stderr, "lanes with a pool: %d/%d tasks to narrow/wide, at most %d/%d at once\n",
            tasks[0], tasks[1], most[0], most[1]);
    assert_int_equal(tasks[0] + tasks[1], 26);
    for (int m = 0; m < 2; m++)
        assert_true(most[m] <= limit[m]);
    cb_stack_stop(s);
    P.stack = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lambda_success),
        cmocka_unit_test(lambda_handler_error),
        cmocka_unit_test(lambda_unknown_function),
        cmocka_unit_test(http_json),
        cmocka_unit_test(http_idle_connections_are_not_reused),
        cmocka_unit_test(http_cloudevents),
        cmocka_unit_test(http_tls),
        cmocka_unit_test(http_connection_errors),
        cmocka_unit_test(retry_after_is_honoured),
        cmocka_unit_test(throttled_past_the_deadline),
        cmocka_unit_test(openwhisk_actions),
        cmocka_unit_test(through_the_engine),
        cmocka_unit_test(a_pool_spills_over_and_learns_from_throttles),
        cmocka_unit_test(a_dag_s_steps_are_shaped_by_their_own_accounts),
    };
    if (getenv("CB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
