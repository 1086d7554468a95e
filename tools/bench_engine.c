/* tools/bench_engine.c - the workloads that measure the whole engine
 * (../shared/BENCHMARKS.md): fanout, parallel-sleep, chain, jobs, big-map.
 *
 * Each run starts a fresh stack with `cb up --detach` on the bench broker
 * (projector, engine, two local adapters, built-in functions), submits the
 * workload's jobs as requests on cb.submit.<tenant> from one client, and
 * times from the first request to the last done message (the client
 * subscribes to cb.done.<tenant>.>, nothing polls). After the timed part the
 * tenant's log is read back: it gives the event count (for vs_broker_limit)
 * and, for fanout, each task's dispatch-to-completion latency (the events'
 * own times). The same run measures the broker's raw confirmed append rate,
 * the limit the engine works under:
 *
 *   vs_broker_limit = (events appended + invocation commands put) / s
 *                     ÷ raw appends / s
 *
 * Resource use: CPU seconds (user + system, over the timed runs) and peak RSS
 * of every daemon, from /proc and the pid files `cb up` writes. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cb_json.h"
#include "cb_loop.h"
#include "cb_msg_reply.h"
#include "cb_msg_done.h"
#include "cb_partition.h"
#include "broker.h"
#include "cb_storage.h"
#include "cb_time.h"
#include "joblog.h"
#include "store.h"

#define STACK_ADAPTERS 2
static const char *const daemons[] = {"projector", "engine",   "engine1", "engine2",
                                      "engine3",   "adapter0", "adapter1"}; /* those running */
#define NDAEMONS (sizeof daemons / sizeof daemons[0])

/* ---- the stack ---------------------------------------------------------------- */

typedef struct stack {
    char dir[256], bin[512];
    int objects;        /* the objects workloads: a Python function and storage */
    char storage[1024]; /* $CB_BENCH_STORAGE (a "storage" object), or "" (cb up's default) */
    char fns[300];      /* objects: the Python module of its function (removed at the end) */
    int cleanup;        /* its cb_bench_cleanup slot */
    double cpu0[NDAEMONS];
} stack;

static int parts(const cb_bench_env *env)
{
    return env->partitions > 1 ? env->partitions : 1;
}

static cb_status stack_up(const cb_bench_env *env, stack *s, int objects)
{
    char config[2048];
    const char *storage = getenv("CB_BENCH_STORAGE");
    memset(s, 0, sizeof *s);
    s->objects = objects;
    snprintf(s->storage, sizeof s->storage, "%s", storage && *storage ? storage : "");
    /* the built-ins only, no limit but the adapters' own concurrency */
    snprintf(config, sizeof config,
             "{\"backends\": {\"local\": {\"functions\": {}}}, \"broker\": {\"partitions\": %d, "
             "\"replicas\": %d}}\n",
             parts(env), env->replicas > 1 ? env->replicas : 1);
    if (objects) { /* a function that reads its range, and the storage */
        FILE *py;
        char tmp[] = "/tmp/cbbench-fns.XXXXXX";
        int fd = mkstemp(tmp);
        if (fd < 0 || !(py = fdopen(fd, "w")))
            return CB_EIO;
        fputs("def read_range(obj):\n    return len(obj.read())\n", py);
        fclose(py);
        snprintf(s->fns, sizeof s->fns, "%s.py", tmp);
        if (rename(tmp, s->fns) != 0)
            return CB_EIO;
        snprintf(
            config, sizeof config,
            "{\"backends\": {\"local\": {\"functions\": {\"read_range\": {\"runtime\": "
            "\"python\", \"module\": \"%s\", \"handler\": \"read_range\", \"pool\": 2}}}}%s%s}\n",
            s->fns, *s->storage ? ", \"storage\": " : "", s->storage);
    }
    return cb_bench_stack_up(env, config, STACK_ADAPTERS, s->dir, sizeof s->dir, s->bin,
                             sizeof s->bin, &s->cleanup);
}

static void stack_down(stack *s)
{
    cb_bench_stack_down(s->dir, s->bin, s->cleanup);
    s->dir[0] = '\0';
    if (s->fns[0])
        unlink(s->fns);
}

static long daemon_pid(const stack *s, const char *name)
{
    char path[400];
    long pid = 0;
    FILE *f;
    snprintf(path, sizeof path, "%s/cb/%s.pid", s->dir, name);
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* CPU seconds (user + system) of a process, -1 if unknown. */
static double cpu_seconds(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    /* fields after the command's closing parenthesis: state is field 3 */
    if (!p || !(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Peak resident set in MB (VmHWM), -1 if unknown. */
static double peak_rss_mb(long pid)
{
    char path[64], line[256];
    double kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

static void usage_mark(stack *s)
{
    for (size_t i = 0; i < NDAEMONS; i++)
        s->cpu0[i] = cpu_seconds(daemon_pid(s, daemons[i]));
}

/* {"engine": {"cpu_s", "peak_rss_mb"}, ..., "total_peak_rss_mb"}: CPU since usage_mark. */
static json_t *usage_report(const stack *s)
{
    json_t *o = json_object();
    double total = 0;
    for (size_t i = 0; o && i < NDAEMONS; i++) {
        long pid = daemon_pid(s, daemons[i]);
        double cpu = cpu_seconds(pid), rss = peak_rss_mb(pid);
        if (pid <= 0)
            continue; /* engine1.. with one engine */
        if (rss > 0)
            total += rss;
        json_object_set_new(
            o, daemons[i],
            json_pack("{s:f, s:f}", "cpu_s", cpu >= 0 ? cpu - s->cpu0[i] : -1, "peak_rss_mb", rss));
    }
    json_object_set_new(o, "total_peak_rss_mb", json_real(total));
    return o;
}

/* ---- the client ------------------------------------------------------------------ */

typedef struct client {
    struct event_base *base;
    cb_broker *b;
    cb_sub *done;
    struct event *tick; /* wakes the loop so waits can give up */
    char tenant[64];
    int partitions; /* the stack's */
    long submitted, accepted, refused, ended, failed;
    int64_t t0, t_end;
    json_t *last_done;
    json_t *job_ids;   /* accepted jobs, in reply order */
    json_t *ended_ids; /* {job id: true} of those whose done message came */
} client;

static void done_cb(const cb_broker_msg *m, void *ctx)
{
    client *c = ctx;
    json_t *d = json_loadb(m->data, m->len, 0, NULL);
    cb_done_msg done;
    const char *status = cb_done_msg_parse(d, &done) == CB_OK ? done.status : NULL;
    c->ended++;
    if (status && done.job_id)
        json_object_set_new(c->ended_ids, done.job_id, json_true());
    if (!status || strcmp(status, "succeeded")) {
        c->failed++;
        fprintf(stderr, "cb bench: a job ended %s: %.300s\n", status ? status : "?",
                (const char *)m->data);
    }
    c->t_end = cb_time_mono_ns();
    json_decref(c->last_done);
    c->last_done = d;
}

static void reply_cb(cb_status s, const void *data, size_t len, void *ctx)
{
    client *c = ctx;
    json_t *r = s == CB_OK ? json_loadb(data, len, 0, NULL) : NULL;
    cb_reply_msg rep;
    if (r && cb_reply_msg_parse(r, &rep) == CB_OK && rep.accepted && rep.job_id) {
        c->accepted++;
        json_array_append_new(c->job_ids, json_string(rep.job_id));
    } else {
        c->refused++;
        fprintf(stderr, "cb bench: a job was not accepted: %s %.300s\n", cb_strerror(s),
                r ? (const char *)data : "");
    }
    json_decref(r);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static cb_status client_open(const cb_bench_env *env, const char *workload, int idx, client *c)
{
    cb_broker_opts o;
    char pattern[128];
    struct timeval tv = {0, 250000};
    cb_status st;
    memset(c, 0, sizeof *c);
    snprintf(c->tenant, sizeof c->tenant, "bench-%d-%s-%d", (int)getpid(), workload, idx);
    if (!(c->base = cb_loop_new()) || !(c->job_ids = json_array()) ||
        !(c->ended_ids = json_object()) ||
        !(c->tick = event_new(c->base, -1, EV_PERSIST, tick_cb, NULL)))
        return CB_ENOMEM;
    evtimer_add(c->tick, &tv);
    c->partitions = parts(env);
    cb_broker_opts_init(&o);
    o.url = env->url;
    o.op_timeout_ms = 60000;
    o.partitions = c->partitions; /* the stack's (else each open warns of the others) */
    o.replicas = env->replicas > 1 ? env->replicas : o.replicas;
    if ((st = cb_broker_open(c->base, &o, &c->b)) != CB_OK)
        return st;
    snprintf(pattern, sizeof pattern, "cb.done.%s.>", c->tenant);
    return cb_broker_subscribe(c->b, pattern, cb_time_now_ns(), done_cb, c, &c->done);
}

static void client_close(client *c)
{
    cb_sub_close(c->done);
    cb_broker_close(c->b);
    if (c->tick)
        event_free(c->tick);
    if (c->base)
        event_base_free(c->base);
    json_decref(c->last_done);
    json_decref(c->job_ids);
    json_decref(c->ended_ids);
}

/* Submit `job` (stolen; its tenant is set here). */
static cb_status client_submit(client *c, json_t *job)
{
    char subject[128], *text;
    cb_status st;
    json_object_set_new(job, "tenant", json_string(c->tenant));
    text = cb_json_dumps(job, JSON_COMPACT);
    json_decref(job);
    if (!text)
        return CB_ENOMEM;
    snprintf(subject, sizeof subject, "cb.submit.%s", c->tenant);
    if (!c->t0)
        c->t0 = cb_time_mono_ns();
    st = cb_broker_request(c->b, subject, text, strlen(text), 60000, reply_cb, c);
    free(text);
    if (st == CB_OK)
        c->submitted++;
    return st;
}

/* The first accepted job that has not ended ("?" if none is known). */
static const char *first_open(const client *c)
{
    size_t i;
    json_t *id;
    json_array_foreach(c->job_ids, i, id)
    {
        if (!json_object_get(c->ended_ids, json_string_value(id)))
            return json_string_value(id);
    }
    return "?";
}

/* Turn the loop until `jobs` ended and every submission's answer is in (a
 * short job's done message can come before the answer, whose job id the
 * read-back needs); give up after 120 s without one ending. */
static cb_status client_wait(client *c, long jobs)
{
    long last = -1;
    int64_t stall = 0;
    while ((c->ended < jobs || c->accepted + c->refused < c->submitted) && c->refused == 0) {
        if (c->ended != last) {
            last = c->ended;
            stall = cb_time_mono_ns() + 120 * 1000000000LL;
        } else if (cb_time_mono_ns() > stall) {
            fprintf(stderr, "cb bench: %ld of %ld jobs ended (%ld accepted); stalled\n", c->ended,
                    jobs, c->accepted);
            return CB_ETIMEDOUT;
        }
        event_base_loop(c->base, EVLOOP_ONCE);
    }
    return c->refused || c->failed ? CB_EBROKER : CB_OK;
}

/* ---- reading the tenant's log back --------------------------------------------------- */

typedef struct log_stats {
    int done;
    cb_status status;
    char prefix[200]; /* "cb.evt.<tenant>." (partition k: "cb.evp.<k>.<tenant>."): the run's */
    long base;        /* fanout: the number of the task 0 of the job being read, among all */
    long events, invocations, ended;
    uint64_t last_seq; /* of the partition being read */
    /* fanout: per task, the dispatch and completion times */
    int64_t *dispatched, *completed;
    long ntasks;
} log_stats;

static void task_time(const log_stats *ls, int64_t *arr, const json_t *task, int64_t t,
                      int first_only)
{
    json_int_t i = json_integer_value(task) + ls->base;
    long n = ls->ntasks;
    if (arr && i >= 0 && i < n && (!first_only || !arr[i]))
        arr[i] = t;
}

static void log_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    log_stats *ls = ctx;
    json_t *e, *d, *t;
    const char *type;
    int64_t at = 0;
    size_t i;
    if (!m) {
        ls->status = s;
        ls->done = 1;
        return;
    }
    if (m->seq > ls->last_seq)
        ls->last_seq = m->seq;
    if (!m->subject || strncmp(m->subject, ls->prefix, strlen(ls->prefix)))
        return; /* another tenant's */
    ls->events++;
    if (!(e = json_loadb(m->data, m->len, 0, NULL)))
        return;
    type = json_string_value(json_object_get(e, "type")) ?: "";
    d = json_object_get(e, "data");
    cb_time_parse(json_string_value(json_object_get(e, "time")) ?: "", &at);
    if (!strcmp(type, "cb.tasks.dispatched")) {
        ls->invocations += (long)json_array_size(json_object_get(d, "tasks"));
        json_array_foreach(json_object_get(d, "tasks"), i, t)
            task_time(ls, ls->dispatched, json_object_get(t, "task"), at, 1);
    } else if (!strcmp(type, "cb.task.succeeded")) {
        task_time(ls, ls->completed, json_object_get(d, "task"), at, 1);
    } else if (!strcmp(type, "cb.tasks.succeeded")) { /* several of one command */
        json_array_foreach(json_object_get(d, "tasks"), i, t)
            task_time(ls, ls->completed, json_object_get(t, "task"), at, 1);
    } else if (!strcmp(type, "cb.job.succeeded") || !strcmp(type, "cb.job.failed") ||
               !strcmp(type, "cb.job.cancelled")) {
        ls->ended++;
    }
    json_decref(e);
}

/* The run's events of one partition's log: from last_seq + 1 to its end,
 * unfiltered (the tenant is checked in log_cb: on nats-server 2.9 a read
 * filtered by a wildcard over a thousand subjects did not see its end, see
 * docs/broker.md). 0 when it got there; the reader's error, or
 * CB_ETIMEDOUT at the deadline. */
static cb_status read_partition(client *c, unsigned k, log_stats *ls, int64_t deadline)
{
    cb_read_opts ro;
    cb_reader *r = NULL;
    cb_status st;
    cb_read_opts_init(&ro);
    ro.partition = k;
    if (ls->last_seq) {
        ro.from = CB_READ_SEQ;
        ro.seq = ls->last_seq + 1;
    }
    ro.stop_at_end = 1;
    ls->done = 0;
    if ((st = cb_broker_read(c->b, &ro, log_cb, ls, &r)) != CB_OK)
        return st;
    while (!ls->done && cb_time_mono_ns() < deadline)
        event_base_loop(c->base, EVLOOP_ONCE);
    cb_reader_close(r);
    return !ls->done ? CB_ETIMEDOUT : ls->status;
}

/* The run's events: each partition's log from the first position of its
 * jobs there (the store knows where each began and in which partition),
 * then again from where each stopped until every job's terminal event is
 * in (it is appended after the done message the run waited for). One
 * reader per partition and pass: on RabbitMQ each reader's set-up costs
 * ~0.7 s. Fanout on P partitions has P maps, map k in partition k with the
 * tasks n*k/P .. n*(k+1)/P - 1 of the run. */
static cb_status read_back(client *c, const char *store_dir, log_stats *ls)
{
    size_t i;
    json_t *id;
    cb_store *store = NULL;
    unsigned np = c->partitions > 1 ? (unsigned)c->partitions : 1;
    uint64_t from[CB_PARTITIONS_MAX], last[CB_PARTITIONS_MAX];
    char rest[sizeof c->tenant + 1];
    long jobs = (long)json_array_size(c->job_ids);
    int64_t deadline = cb_time_mono_ns() + 60 * 1000000000LL;
    snprintf(rest, sizeof rest, "%s.", c->tenant);
    for (unsigned k = 0; k < np; k++)
        from[k] = UINT64_MAX; /* no job there: not read */
    if (cb_store_open(store_dir, 0, CB_STORE_RDONLY, &store) != CB_OK)
        store = NULL;
    json_array_foreach(c->job_ids, i, id)
    {
        unsigned part = 0;
        uint64_t f = cb_joblog_first_seq(store, c->tenant, json_string_value(id), np, &part);
        if (part < np && f < from[part])
            from[part] = f; /* 0 (unknown): from the first event kept */
    }
    cb_store_close(store);
    for (unsigned k = 0; k < np; k++)
        last[k] = from[k] > 0 && from[k] != UINT64_MAX ? from[k] - 1 : 0;
    while (ls->ended < jobs) {
        long seen = ls->events;
        for (unsigned k = 0; k < np; k++) {
            cb_status st;
            if (from[k] == UINT64_MAX)
                continue;
            if (cb_partition_pattern(k, rest, ls->prefix, sizeof ls->prefix) != 0)
                return CB_EINVAL;
            ls->base = np > 1 ? ls->ntasks * (long)k / (long)np : 0;
            ls->last_seq = last[k];
            st = read_partition(c, k, ls, deadline);
            last[k] = ls->last_seq;
            if (st != CB_OK) {
                fprintf(stderr,
                        "cb bench: reading the log of partition %u back stalled after %ld "
                        "events, %ld of %ld jobs ended\n",
                        k, ls->events, ls->ended, jobs);
                return st;
            }
        }
        if (ls->events == seen && ls->ended < jobs) { /* nothing new yet: a moment */
            struct timeval tv = {0, 50000};
            event_base_loopexit(c->base, &tv);
            event_base_dispatch(c->base);
        }
    }
    return CB_OK;
}

/* p-th percentile (0..100) of dispatch-to-completion latency in ms. */
static double latency_pct(const log_stats *ls, double p)
{
    double *v = malloc((size_t)ls->ntasks * sizeof *v), r = -1;
    long n = 0;
    for (long i = 0; v && i < ls->ntasks; i++)
        if (ls->dispatched[i] && ls->completed[i])
            v[n++] = (double)(ls->completed[i] - ls->dispatched[i]) / 1e6;
    if (n > 0) {
        cb_bench_median(v, (int)n); /* sorts */
        long k = (long)(p / 100.0 * (double)(n - 1) + 0.5);
        r = v[k];
    }
    free(v);
    return r;
}

/* ---- the workloads -------------------------------------------------------------------- */

typedef struct workload {
    const char *name;
    long default_n;
    const char *what; /* the figure's meaning, into the report */
    /* Submit run idx's jobs (n is the workload's size); returns how many jobs. */
    cb_status (*submit)(client *c, long n, long *jobs);
    /* The figure of one run from its seconds and the last done message. */
    double (*figure)(long n, double seconds, const json_t *done);
    const char *unit;
    /* Before the timed runs (NULL: nothing): the objects the workload maps over. */
    cb_status (*prepare)(const stack *s, long n);
} workload;

static json_t *noop_fn(const char *name)
{
    return json_pack("{s:s, s:s}", "backend", "local", "name", name);
}

/* One map of noop over range(n), with one more option (name: value); on a
 * stack of P partitions, P maps of about n/P tasks, one in each partition
 * (their ids chosen so). */
static cb_status submit_range_map(client *c, long n, const char *option, int value, long *jobs)
{
    unsigned p = (unsigned)c->partitions;
    cb_status st = CB_OK;
    *jobs = p;
    for (unsigned k = 0; k < p && st == CB_OK; k++) {
        long from = n * k / p, to = n * (k + 1) / p;
        json_t *job = json_pack("{s:s, s:o, s:{s:{s:I, s:I}}, s:i}", "kind", "map", "function",
                                noop_fn("noop"), "input", "range", "start", (json_int_t)from,
                                "stop", (json_int_t)to, option, value);
        if (p > 1) {
            char id[64];
            for (unsigned m = 0;; m++) {
                snprintf(id, sizeof id, "map-%u-%u", k, m);
                if (cb_partition_of(c->tenant, id, p) == k)
                    break;
            }
            json_object_set_new(job, "job_id", json_string(id));
        }
        st = client_submit(c, job);
    }
    return st;
}

static cb_status submit_fanout(client *c, long n, long *jobs)
{
    return submit_range_map(c, n, "parallelism", 1000, jobs);
}

static double per_second(long n, double seconds, const json_t *done)
{
    (void)done;
    return (double)n / seconds;
}

static cb_status submit_parallel_sleep(client *c, long n, long *jobs)
{
    json_t *items = json_array();
    for (long i = 0; i < n; i++)
        json_array_append_new(items, json_integer(1000));
    *jobs = 1;
    return client_submit(c, json_pack("{s:s, s:o, s:{s:o}, s:I}", "kind", "map", "function",
                                      noop_fn("sleep_ms"), "input", "items", items, "parallelism",
                                      (json_int_t)n));
}

static double overhead_ms(long n, double seconds, const json_t *done)
{
    (void)n;
    (void)done;
    return seconds * 1000 - 1000;
}

static cb_status submit_chain(client *c, long n, long *jobs)
{
    json_t *steps = json_object();
    char name[32], prev[32];
    for (long i = 0; i < n; i++) {
        json_t *step = json_pack("{s:o}", "function", noop_fn("echo"));
        snprintf(name, sizeof name, "s%05ld", i); /* steps are ordered by name */
        if (i == 0)
            json_object_set_new(step, "input", json_integer(0));
        else
            json_object_set_new(step, "input_from", json_string(prev));
        json_object_set_new(steps, name, step);
        memcpy(prev, name, sizeof prev);
    }
    *jobs = 1;
    return client_submit(c, json_pack("{s:s, s:o}", "kind", "dag", "tasks", steps));
}

static double per_step_ms(long n, double seconds, const json_t *done)
{
    (void)done;
    return seconds * 1000 / (double)n;
}

static cb_status submit_jobs(client *c, long n, long *jobs)
{
    cb_status st = CB_OK;
    for (long i = 0; i < n && st == CB_OK; i++)
        st = client_submit(c, json_pack("{s:s, s:o, s:{s:{s:i, s:i}}}", "kind", "map", "function",
                                        noop_fn("noop"), "input", "range", "start", 0, "stop", 10));
    *jobs = n;
    return st;
}

static cb_status submit_big_map(client *c, long n, long *jobs)
{
    return submit_range_map(c, n, "chunksize", 100, jobs);
}

static double seconds_of(long n, double seconds, const json_t *done)
{
    (void)n;
    (void)done;
    return seconds;
}

/* ---- the objects workloads ---------------------------------------------------------- */

typedef struct filler {
    int failed, done;
    long pending;
    char error[1400];
} filler;

static void filled(const cb_storage_res *r, void *ctx)
{
    filler *f = ctx;
    f->pending--;
    if (r->status != CB_OK && !f->failed) {
        f->failed = 1;
        snprintf(f->error, sizeof f->error, "%s", r->error);
    }
}

/* Put `count` objects BUCKET/o<i> of `size` bytes (a random block, shifted
 * per object), `window` at once, through the stack's storage. */
static cb_status fill(const stack *s, const char *bucket, long count, size_t size, int window)
{
    struct event_base *base = cb_loop_new();
    char root[300], err[600], url[200];
    json_t *conf = *s->storage ? json_loads(s->storage, 0, NULL) : NULL;
    cb_storage *st = NULL;
    char *block = NULL, *data = NULL;
    filler f = {0};
    cb_status rc = CB_EIO;
    snprintf(root, sizeof root, "%s/cb/objects", s->dir);
    if (!base || cb_storage_new(base, conf, root, &st, err, sizeof err) != CB_OK) {
        fprintf(stderr, "cb bench: storage: %s\n", err);
        goto out;
    }
    f.pending = 1;
    if (cb_storage_make_bucket(st, bucket, filled, &f, err, sizeof err) != CB_OK)
        goto out;
    while (f.pending > 0)
        event_base_loop(base, EVLOOP_ONCE);
    f.failed = 0; /* a bucket that exists is fine */
    if (!(block = malloc(1 << 20)) || !(data = malloc(size ? size : 1)))
        goto out;
    for (size_t i = 0; i < (1u << 20); i++)
        block[i] = (char)(' ' + (rand() % 94));
    for (long i = 0; i < count && !f.failed; i++) {
        for (size_t k = 0; k < size; k += 1 << 20) /* a different shift per object */
            memcpy(data + k, block + (size_t)i % 997,
                   size - k < (1u << 20) - 997 ? size - k : (1u << 20) - 997);
        snprintf(url, sizeof url, "s3://%s/o%06ld", bucket, i);
        if (cb_storage_put(st, url, data, size, filled, &f, err, sizeof err) != CB_OK) {
            fprintf(stderr, "cb bench: %s\n", err);
            goto out;
        }
        f.pending++;
        while (f.pending >= window)
            event_base_loop(base, EVLOOP_ONCE);
    }
    while (f.pending > 0)
        event_base_loop(base, EVLOOP_ONCE);
    if (f.failed)
        fprintf(stderr, "cb bench: cannot put the objects: %s\n", f.error);
    else
        rc = CB_OK;
out:
    free(block);
    free(data);
    cb_storage_free(st);
    json_decref(conf);
    if (base)
        event_base_free(base);
    return rc;
}

static cb_status prepare_objects(const stack *s, long n)
{
    return fill(s, "bench", 8, (size_t)n * (1 << 20) / 8, 2);
}

static cb_status prepare_listing(const stack *s, long n)
{
    return fill(s, "benchlist", n, 16, 64);
}

static cb_status submit_objects(client *c, long n, long *jobs)
{
    (void)n;
    *jobs = 1;
    return client_submit(c, json_pack("{s:s, s:o, s:{s:{s:s, s:I}}}", "kind", "map", "function",
                                      noop_fn("read_range"), "input", "objects", "bucket", "bench",
                                      "chunk_bytes", (json_int_t)64 << 20));
}

static double mib_per_second(long n, double seconds, const json_t *done)
{
    (void)done;
    return (double)n / seconds;
}

static cb_status submit_listing(client *c, long n, long *jobs)
{
    (void)n;
    *jobs = 1;
    return client_submit(c, json_pack("{s:s, s:o, s:{s:{s:s}}, s:i}", "kind", "map", "function",
                                      noop_fn("noop"), "input", "objects", "bucket", "benchlist",
                                      "chunksize", 1000));
}

static double listing_ms(long n, double seconds, const json_t *done)
{
    const json_t *t = json_object_get(done, "timings");
    int64_t a = 0, b = 0;
    (void)n;
    if (cb_time_parse(json_string_value(json_object_get(t, "submitted")), &a) != 0 ||
        cb_time_parse(json_string_value(json_object_get(t, "started")), &b) != 0)
        return seconds * 1000;
    return (double)(b - a) / 1e6;
}

static const workload workloads[] = {
    {"fanout", 10000, "one map of N noop tasks (parallelism 1000): tasks/s from submit to done",
     submit_fanout, per_second, "tasks_per_s", NULL},
    {"parallel-sleep", 80,
     "one map of N sleep_ms 1000 tasks, parallelism N: overhead = makespan - 1000 ms",
     submit_parallel_sleep, overhead_ms, "overhead_ms", NULL},
    {"chain", 80, "a dag of N sequential steps (echo of the previous output): makespan / N",
     submit_chain, per_step_ms, "ms_per_step", NULL},
    {"jobs", 1000, "N map jobs of 10 noop tasks submitted at once: jobs/s", submit_jobs, per_second,
     "jobs_per_s", NULL},
    {"big-map", 1000000, "one map over range(N), chunksize 100: seconds to done", submit_big_map,
     seconds_of, "seconds", NULL},
    {"objects", 1024,
     "one map over 8 objects of N MiB in all, 64 MiB ranges, a Python function reading its "
     "range (storage: $CB_BENCH_STORAGE, else the file driver): MiB/s from submit to done",
     submit_objects, mib_per_second, "mib_per_s", prepare_objects},
    {"objects-list", 10000,
     "one map over a bucket of N objects of 16 bytes, 1,000 a task: ms from the submission to "
     "the start (listing the bucket and appending the plan)",
     submit_listing, listing_ms, "listing_ms", prepare_listing},
};

static const workload *find(const char *name)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(workloads[i].name, name))
            return &workloads[i];
    return NULL;
}

int cb_bench_engine_known(const char *name)
{
    return find(name) != NULL;
}

/* One timed run on a running stack. */
static cb_status one_run(const cb_bench_env *env, const stack *s, const workload *w, long n,
                         int idx, json_t *per_run, double *figure, double *useful_per_s,
                         double *p50, double *p99)
{
    char store_dir[300];
    client c;
    log_stats ls;
    long jobs = 0;
    double seconds;
    cb_status st;

    memset(&ls, 0, sizeof ls);
    if ((st = client_open(env, w->name, idx, &c)) != CB_OK)
        goto out;
    if ((st = w->submit(&c, n, &jobs)) != CB_OK)
        goto out;
    if ((st = client_wait(&c, jobs)) != CB_OK) {
        if (st == CB_ETIMEDOUT)
            cb_bench_stack_explain(s->dir, s->bin, c.tenant, first_open(&c));
        goto out;
    }
    seconds = (double)(c.t_end - c.t0) / 1e9;
    *figure = w->figure(n, seconds, c.last_done);
    if (!strcmp(w->name, "fanout")) {
        ls.ntasks = n;
        ls.dispatched = calloc((size_t)n, sizeof *ls.dispatched);
        ls.completed = calloc((size_t)n, sizeof *ls.completed);
    }
    snprintf(store_dir, sizeof store_dir, "%s/cb/store", s->dir);
    if ((st = read_back(&c, store_dir, &ls)) != CB_OK)
        goto out;
    *useful_per_s = (double)(ls.events + ls.invocations) / seconds;
    *p50 = ls.ntasks ? latency_pct(&ls, 50) : -1;
    *p99 = ls.ntasks ? latency_pct(&ls, 99) : -1;
    json_array_append_new(per_run, json_pack("{s:f, s:f, s:I, s:I, s:f}", w->unit, *figure,
                                             "seconds", seconds, "events", (json_int_t)ls.events,
                                             "invocations", (json_int_t)ls.invocations,
                                             "useful_msgs_per_s", *useful_per_s));
    if (ls.ntasks)
        json_object_set_new(json_array_get(per_run, json_array_size(per_run) - 1), "latency_ms",
                            json_pack("{s:f, s:f}", "p50", *p50, "p99", *p99));
out:
    free(ls.dispatched);
    free(ls.completed);
    client_close(&c);
    return st;
}

cb_status cb_bench_engine(const char *name, const cb_bench_env *env, long n, int runs,
                          json_t **report)
{
    const workload *w = find(name);
    double *fig = calloc((size_t)runs, sizeof *fig), *useful = calloc((size_t)runs, sizeof *useful);
    double *p50 = calloc((size_t)runs, sizeof *p50), *p99 = calloc((size_t)runs, sizeof *p99);
    json_t *per_run = json_array(), *limit = NULL, *usage = NULL, *figures;
    double append_per_s;
    stack s;
    cb_status st;

    memset(&s, 0, sizeof s);
    if (!w || !fig || !useful || !p50 || !p99 || !per_run) {
        st = w ? CB_ENOMEM : CB_EINVAL;
        goto out;
    }
    if (n <= 0)
        n = w->default_n;
    if (parts(env) > 1 && w->prepare) { /* (their stack's configuration has no partitions) */
        fprintf(stderr, "cb bench: %s runs on one partition\n", w->name);
        st = CB_EINVAL;
        goto out;
    }
    /* the broker's own limit, in the same run and before the stack loads it */
    if ((st = cb_bench_broker(env, 20000, 1, &limit)) != CB_OK)
        goto out;
    append_per_s = json_real_value(json_object_get(limit, "append_per_s"));
    if ((st = stack_up(env, &s, w->prepare != NULL)) != CB_OK)
        goto out;
    /* a warm-up job: the stack's first plans, connections and caches */
    {
        double f, u, a, b;
        json_t *warm = json_array();
        st = one_run(env, &s, find("fanout"), 100, -1, warm, &f, &u, &a, &b);
        json_decref(warm);
        if (st != CB_OK)
            goto out;
    }
    if (w->prepare && (st = w->prepare(&s, n)) != CB_OK)
        goto out;
    usage_mark(&s);
    for (int i = 0; i < runs && st == CB_OK; i++)
        st = one_run(env, &s, w, n, i, per_run, &fig[i], &useful[i], &p50[i], &p99[i]);
    if (st != CB_OK)
        goto out;
    usage = usage_report(&s);
    double med = cb_bench_median(fig, runs); /* sorts: min first, max last */
    figures = json_pack("{s:f, s:f, s:f, s:f, s:f}", w->unit, med, "min", fig[0], "max",
                        fig[runs - 1], "useful_msgs_per_s", cb_bench_median(useful, runs),
                        "vs_broker_limit", cb_bench_median(useful, runs) / append_per_s);
    if (!strcmp(w->name, "fanout"))
        json_object_set_new(figures, "latency_ms",
                            json_pack("{s:f, s:f}", "p50", cb_bench_median(p50, runs), "p99",
                                      cb_bench_median(p99, runs)));
    *report = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:i, s:o, s:o, s:{s:f, s:O}, s:o, s:o}",
                        "workload", w->name, "definition", w->what, "broker", env->driver, "n",
                        (json_int_t)n, "runs", runs, "adapters", STACK_ADAPTERS, "partitions",
                        parts(env), "machine", cb_bench_machine(), "figures", figures,
                        "broker_limit", "append_per_s", append_per_s, "server",
                        json_object_get(limit, "server"), "per_run", per_run, "resources", usage);
    per_run = usage = NULL;
    st = *report ? CB_OK : CB_ENOMEM;
out:
    stack_down(&s);
    json_decref(limit);
    json_decref(per_run);
    json_decref(usage);
    free(fig);
    free(useful);
    free(p50);
    free(p99);
    return st;
}
