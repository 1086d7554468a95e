/* tools/bench_replay.c - the `replay` workload: fold N stored events into a
 * fresh LMDB store (read from the broker + decode + fold + batched commits),
 * the path of `cb replay --rebuild` and of a projector catching up. The log
 * holds jobs of 100 tasks run to success (104 events each). */
#define _GNU_SOURCE
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "broker.h"
#include "cb_event.h"
#include "cb_loop.h"
#include "cb_time.h"
#include "replay.h"

#define TASKS 100

typedef struct filler {
    struct event_base *base;
    cb_broker *b;
    long inflight, failed, confirmed;
} filler;

static void appended_cb(cb_status s, uint64_t seq, int dup, void *ctx)
{
    filler *f = ctx;
    (void)seq;
    (void)dup;
    f->inflight--;
    if (s == CB_OK)
        f->confirmed++;
    else
        f->failed++;
}

static cb_status put(filler *f, const char *tenant, const char *job, cb_event_type type, int n,
                     json_t *data)
{
    cb_event ev;
    char id[128], subject[300], *s;
    size_t len;
    cb_status st;
    snprintf(id, sizeof id, "%s/%s/%d", tenant, job, n);
    if ((st = cb_event_init(&ev, type, tenant, job, id, "cb-bench", cb_time_now_ns(), data)) !=
        CB_OK)
        return st;
    st = cb_event_encode(&ev, &s, &len);
    if (st == CB_OK && cb_event_log_subject(&ev, 0, subject, sizeof subject) == 0) {
        while (f->inflight >= 8192)
            event_base_loop(f->base, EVLOOP_ONCE);
        f->inflight++;
        st = cb_broker_append(f->b, subject, id, s, len, appended_cb, f);
        if (st != CB_OK)
            f->inflight--;
        free(s);
    }
    cb_event_cleanup(&ev);
    return st;
}

/* Append at least n events. */
static cb_status fill(filler *f, const char *tenant, long n)
{
    for (long j = 0, done = 0; done < n; j++) {
        char job[32];
        json_t *list = json_array();
        int k = 0;
        snprintf(job, sizeof job, "job%ld", j);
        cb_status s = put(f, tenant, job, CB_EV_JOB_SUBMITTED, k++,
                          json_pack("{s:{s:s}, s:s}", "job", "kind", "map", "digest", "0"));
        s = s ? s : put(f, tenant, job, CB_EV_JOB_STARTED, k++, json_pack("{s:i}", "tasks", TASKS));
        for (int t = 0; t < TASKS; t++)
            json_array_append_new(list, json_pack("{s:i, s:i}", "task", t, "attempt", 1));
        s = s ? s
              : put(f, tenant, job, CB_EV_TASKS_DISPATCHED, k++, json_pack("{s:o}", "tasks", list));
        for (int t = 0; t < TASKS && !s; t++)
            s = put(f, tenant, job, CB_EV_TASK_SUCCEEDED, k++,
                    json_pack("{s:i, s:i, s:i}", "task", t, "attempt", 1, "output", t));
        s = s ? s : put(f, tenant, job, CB_EV_JOB_SUCCEEDED, k++, json_pack("{s:i}", "result", 1));
        if (s != CB_OK)
            return s;
        done += k;
    }
    while (f->inflight > 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    return f->failed ? CB_EIO : CB_OK;
}

cb_status cb_bench_replay(const cb_bench_env *env, long n, int runs, json_t **report)
{
    filler f;
    cb_broker_opts o;
    char tenant[64];
    double *rates = calloc((size_t)runs, sizeof *rates);
    json_t *per_run = json_array();
    cb_status st;
    uint64_t events = 0;

    memset(&f, 0, sizeof f);
    if (!(f.base = cb_loop_new()) || !rates || !per_run)
        return CB_ENOMEM;
    cb_broker_opts_init(&o);
    o.url = env->url;
    o.op_timeout_ms = 120000;
    if ((st = cb_broker_open(f.base, &o, &f.b)) != CB_OK)
        goto out;
    snprintf(tenant, sizeof tenant, "bench%ld", (long)(cb_time_now_ns() / 1000000));
    if ((st = fill(&f, tenant, n)) != CB_OK)
        goto out;
    for (int r = 0; r < runs && st == CB_OK; r++) {
        char dir[] = "/tmp/cbreplay.XXXXXX", cmd[64];
        cb_proj_stats ps;
        if (!mkdtemp(dir)) {
            st = CB_EIO;
            break;
        }
        int undo = cb_bench_cleanup_push("rm -rf %s", dir);
        int64_t t0 = cb_time_mono_ns();
        st = cb_replay_rebuild(f.base, f.b, dir, 1, NULL, 3600 * 1000, &ps);
        double secs = (double)(cb_time_mono_ns() - t0) / 1e9;
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cb bench: could not remove %s\n", dir);
        cb_bench_cleanup_pop(undo);
        if (st != CB_OK)
            break;
        events = ps.events;
        rates[r] = (double)ps.events / secs;
        json_array_append_new(per_run, json_pack("{s:f, s:I, s:f}", "events_per_s", rates[r],
                                                 "events", (json_int_t)ps.events, "seconds", secs));
    }
    if (st == CB_OK) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        *report = json_pack("{s:s, s:s, s:I, s:I, s:i, s:o, s:f, s:I, s:o}", "workload", "replay",
                            "broker", env->driver, "n", (json_int_t)n, "events_in_log",
                            (json_int_t)events, "runs", runs, "machine", cb_bench_machine(),
                            "events_per_s", cb_bench_median(rates, runs), "peak_rss_kb",
                            (json_int_t)ru.ru_maxrss, "per_run", per_run);
        per_run = NULL;
    }
out:
    json_decref(per_run);
    free(rates);
    cb_broker_close(f.b);
    event_base_free(f.base);
    return st;
}
