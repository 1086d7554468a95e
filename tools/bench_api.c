/* tools/bench_api.c - `cb bench api`: what the HTTP API costs a submission
 * (docs/BENCHMARKS.md). On a fresh stack (cb up: projector, engine, one
 * local adapter, cb-api), N submissions of a one-task noop job go through
 * cb-api (POST /v1/jobs, WINDOW at once over keep-alive connections, the
 * project's HTTP client), then N the direct way (requests on
 * cb.submit.<tenant>, WINDOW at once), each phase after the jobs of the one
 * before ended (their done messages counted), so the two see the same load.
 * Figures: submissions per second, and each submission's latency (request
 * to the accepted answer) p50/p99; added_p50_ms is the API's p50 minus the
 * direct one. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "broker.h"
#include "cb_file.h"
#include "cb_httpc.h"
#include "cb_json.h"
#include "cb_loop.h"
#include "cb_msg_reply.h"
#include "cb_time.h"

#define WINDOW 16

typedef struct phase phase;

typedef struct one {
    phase *ph;
    int64_t t0;
} one;

struct phase {
    struct event_base *base;
    cb_broker *b;
    cb_httpc *http;
    const char *api, *tenant;
    int via_api, run;
    long n, started, answered, accepted;
    double *lat_ms;
    one *slots;
};

static void answered(phase *ph, one *o, int ok);

static void http_done(const cb_http_resp *r, void *ctx)
{
    one *o = ctx;
    answered(o->ph, o, r->status == 201);
    if (r->status != 201)
        fprintf(stderr, "cb bench api: %d %.200s\n", r->status, r->error ? r->error : r->body);
}

static void broker_done(cb_status s, const void *data, size_t len, void *ctx)
{
    one *o = ctx;
    json_t *r = s == CB_OK ? json_loadb(data, len, 0, NULL) : NULL;
    cb_reply_msg m;
    answered(o->ph, o, r && cb_reply_msg_parse(r, &m) == CB_OK && m.accepted);
    json_decref(r);
}

static int start_one(phase *ph)
{
    long i = ph->started++;
    one *o = &ph->slots[i];
    char body[400], url[600];
    o->ph = ph;
    snprintf(body, sizeof body,
             "{\"tenant\": \"%s\", \"job_id\": \"%s-%d-%ld\", \"kind\": \"call\", \"function\": "
             "{\"backend\": \"local\", \"name\": \"noop\"}, \"input\": 1}",
             ph->tenant, ph->via_api ? "api" : "direct", ph->run, i);
    o->t0 = cb_time_mono_ns();
    if (ph->via_api) {
        cb_http_header h = {"Content-Type", "application/json"};
        cb_http_req req = {"POST", url, &h, 1, body, strlen(body), 0};
        char err[300];
        snprintf(url, sizeof url, "%s/v1/jobs", ph->api);
        return cb_httpc_request(ph->http, &req, http_done, o, NULL, err, sizeof err) == CB_OK ? 0
                                                                                              : -1;
    } else {
        char subject[200];
        snprintf(subject, sizeof subject, "cb.submit.%s", ph->tenant);
        return cb_broker_request(ph->b, subject, body, strlen(body), 60000, broker_done, o) == CB_OK
                   ? 0
                   : -1;
    }
}

static void answered(phase *ph, one *o, int ok)
{
    ph->lat_ms[ph->answered++] = (double)(cb_time_mono_ns() - o->t0) / 1e6;
    ph->accepted += ok;
    if (ph->started < ph->n && start_one(ph) != 0)
        ph->answered = ph->n; /* cannot go on: end the phase */
}

typedef struct ends {
    long count;
} ends;

static void done_cb(const cb_broker_msg *m, void *ctx)
{
    (void)m;
    ((ends *)ctx)->count++;
}

static double pct(double *v, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);
    return n ? v[i < n ? i : n - 1] : 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One phase: N submissions, WINDOW at once; then wait for their jobs' ends. */
static cb_status run_phase(phase *ph, ends *e, long ends_before, json_t *out, const char *prefix)
{
    int64_t t0 = cb_time_mono_ns(), deadline;
    double secs;
    char key[64];
    for (long i = 0; i < WINDOW && ph->started < ph->n; i++)
        if (start_one(ph) != 0)
            return CB_EIO;
    deadline = cb_time_mono_ns() + 300 * 1000000000LL;
    while (ph->answered < ph->n && cb_time_mono_ns() < deadline)
        event_base_loop(ph->base, EVLOOP_ONCE);
    secs = (double)(cb_time_mono_ns() - t0) / 1e9;
    if (ph->answered < ph->n || ph->accepted < ph->n) {
        fprintf(stderr, "cb bench api: %ld of %ld accepted\n", ph->accepted, ph->n);
        return CB_EBROKER;
    }
    while (e->count < ends_before + ph->n && cb_time_mono_ns() < deadline)
        event_base_loop(ph->base, EVLOOP_ONCE);
    qsort(ph->lat_ms, (size_t)ph->n, sizeof *ph->lat_ms, cmp);
    snprintf(key, sizeof key, "%s_per_s", prefix);
    json_object_set_new(out, key, json_real((double)ph->n / secs));
    snprintf(key, sizeof key, "%s_p50_ms", prefix);
    json_object_set_new(out, key, json_real(pct(ph->lat_ms, ph->n, 0.5)));
    snprintf(key, sizeof key, "%s_p99_ms", prefix);
    json_object_set_new(out, key, json_real(pct(ph->lat_ms, ph->n, 0.99)));
    return e->count >= ends_before + ph->n ? CB_OK : CB_ETIMEDOUT;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

cb_status cb_bench_api(const cb_bench_env *env, long n, int runs, json_t **report)
{
    char dir[256], bin[512], api[200] = "", path[400], tenant[64], pattern[100];
    int slot;
    cb_status st;
    struct event_base *base = NULL;
    struct event *wake = NULL;
    struct timeval tv = {0, 200000};
    cb_broker *b = NULL;
    cb_broker_opts bo;
    cb_httpc *http = NULL;
    cb_httpc_opts ho;
    cb_sub *sub = NULL;
    ends e = {0};
    json_t *per_run = json_array();
    double *api_ps = calloc((size_t)runs, sizeof(double)),
           *dir_ps = calloc((size_t)runs, sizeof(double)),
           *added = calloc((size_t)runs, sizeof(double));

    if (n <= 0)
        n = 2000;
    *report = NULL;
    if (!api_ps || !dir_ps || !added || !per_run) {
        st = CB_ENOMEM;
        goto out;
    }
    if ((st = cb_bench_stack_up(env, "{\"backends\": {\"local\": {\"functions\": {}}}}\n", 1, dir,
                                sizeof dir, bin, sizeof bin, &slot)) != CB_OK)
        goto out_stack;
    snprintf(path, sizeof path, "%s/cb/api_url", dir);
    cb_file_read_line(path, api, sizeof api);
    snprintf(tenant, sizeof tenant, "bench-api-%d", (int)getpid());
    cb_broker_opts_init(&bo);
    bo.url = env->url;
    cb_httpc_opts_init(&ho);
    ho.max_conns = WINDOW;
    snprintf(pattern, sizeof pattern, "cb.done.%s.>", tenant);
    if (!api[0] || !(base = cb_loop_new()) ||
        !(wake = event_new(base, -1, EV_PERSIST, tick, NULL)) ||
        (st = cb_broker_open(base, &bo, &b)) != CB_OK ||
        cb_httpc_new(base, &ho, &http, path, sizeof path) != CB_OK ||
        (st = cb_broker_subscribe(b, pattern, cb_time_now_ns(), done_cb, &e, &sub)) != CB_OK) {
        st = st != CB_OK ? st : CB_EIO;
        goto out_stack;
    }
    evtimer_add(wake, &tv); /* the loop wakes to look at the deadlines */
    for (int r = 0; r < runs; r++) {
        phase pa = {base, b, http, api, tenant, 1, r, n, 0, 0, 0, NULL, NULL};
        phase pd = {base, b, http, api, tenant, 0, r, n, 0, 0, 0, NULL, NULL};
        json_t *one_run = json_object();
        pa.lat_ms = calloc((size_t)n, sizeof(double));
        pa.slots = calloc((size_t)n, sizeof(one));
        pd.lat_ms = calloc((size_t)n, sizeof(double));
        pd.slots = calloc((size_t)n, sizeof(one));
        if (!pa.lat_ms || !pa.slots || !pd.lat_ms || !pd.slots || !one_run)
            st = CB_ENOMEM;
        else if ((st = run_phase(&pa, &e, e.count, one_run, "api")) == CB_OK)
            st = run_phase(&pd, &e, e.count, one_run, "direct");
        free(pa.lat_ms);
        free(pa.slots);
        free(pd.lat_ms);
        free(pd.slots);
        if (st != CB_OK) {
            json_decref(one_run);
            goto out_stack;
        }
        api_ps[r] = json_real_value(json_object_get(one_run, "api_per_s"));
        dir_ps[r] = json_real_value(json_object_get(one_run, "direct_per_s"));
        added[r] = json_real_value(json_object_get(one_run, "api_p50_ms")) -
                   json_real_value(json_object_get(one_run, "direct_p50_ms"));
        json_object_set_new(one_run, "added_p50_ms", json_real(added[r]));
        json_array_append_new(per_run, one_run);
    }
    *report = json_pack("{s:s, s:s, s:I, s:i, s:o, s:{s:f, s:f, s:f}, s:o}", "workload", "api",
                        "broker", env->driver, "n", (json_int_t)n, "window", WINDOW, "runs",
                        per_run, "median", "api_per_s", cb_bench_median(api_ps, runs),
                        "direct_per_s", cb_bench_median(dir_ps, runs), "added_p50_ms",
                        cb_bench_median(added, runs), "machine", cb_bench_machine());
    per_run = NULL;
    st = *report ? CB_OK : CB_ENOMEM;
out_stack:
    cb_sub_close(sub);
    cb_httpc_free(http);
    cb_broker_close(b);
    if (wake)
        event_free(wake);
    if (base)
        event_base_free(base);
    cb_bench_stack_down(dir, bin, slot);
out:
    json_decref(per_run);
    free(api_ps);
    free(dir_ps);
    free(added);
    return st;
}
