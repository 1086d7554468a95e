/* tools/cmd_replay.c - `cb replay`: what happened to a job, its state at a
 * point in time, and rebuilding or verifying the store from the log. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_loop.h"
#include "views.h"
#include "cb_json.h"
#include "broker.h"
#include "cb_partition.h"
#include "cb_url.h"
#include "cb_alloc.h"
#include "cb_cmd.h"
#include "cli.h"
#include "cb_partition.h"
#include "cb_event.h"
#include "cb_log.h"
#include "cb_time.h"
#include "fold.h"
#include "jobfold.h"
#include "replay.h"
#include "joblog.h"
#include "store.h"

static const char *usage =
    "usage: cb replay [--broker URL] --job TENANT/JOB [--json] [--to-end]\n"
    "                 [--until SEQ|RFC3339-TIME]\n"
    "       cb replay [--broker URL] --rebuild DIR [--partitions N]\n"
    "       cb replay [--broker URL] --verify --store DIR\n"
    "--job        the job's timeline from the log, from its submission to its end: time\n"
    "             since its first event, event type, task, attempt, detail (--json: the\n"
    "             events as JSON lines); starts where the store (--store DIR, else the\n"
    "             default store) says the job starts, else at the log's first event\n"
    "--to-end     with --job: read on to the log's end, past the job's end: also what\n"
    "             came after it (an SLA breach or recovery judged at its end, a late\n"
    "             duplicate); reads more of the log\n"
    "--until      with --job: the job's state as it was at that log position or time\n"
    "--rebuild    fold the whole log into a fresh store in DIR: the logs of N partitions\n"
    "             (docs/scale.md; default 1)\n"
    "--verify     rebuild up to the live store's positions (each partition's it holds)\n"
    "             and compare digests; prints the first differing entity; exit status 1\n"
    "             when they differ\n"
    "The broker URL defaults to $CB_BROKER_URL.\n";

typedef struct timeline {
    int json, until_is_time;
    uint64_t until_seq;
    int64_t until_ns, first_ns;
    long events;
    int done;
    cb_status status;
    cb_jobfold fold; /* --until */
} timeline;

static void print_line(timeline *t, const cb_event *ev, uint64_t seq)
{
    json_t *d = ev->data, *v;
    char detail[240] = "";
    if (!t->first_ns)
        t->first_ns = ev->time_ns;
    if ((v = json_object_get(d, "output"))) {
        char *s = cb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        const json_t *from = json_object_get(d, "memoized");
        if (from) /* taken from an earlier task instead of running */
            snprintf(detail, sizeof detail, "memoized from %.60s/%lld output=%.60s",
                     json_string_value(json_object_get(from, "job")) ?: "?",
                     (long long)json_integer_value(json_object_get(from, "task")), s ? s : "?");
        else
            snprintf(detail, sizeof detail, "output=%.60s", s ? s : "?");
        free(s);
    } else if ((v = json_object_get(d, "error"))) {
        snprintf(detail, sizeof detail, "error=%.100s", json_string_value(v));
    } else if (ev->type == CB_EV_TASKS_DISPATCHED) {
        size_t i, backups = 0;
        json_t *one;
        json_array_foreach(json_object_get(d, "tasks"), i, one)
        {
            backups += json_is_true(json_object_get(one, "backup"));
        }
        const char *pool = json_string_value(json_object_get(d, "pool"));
        char on[120] =
            ""; /* a pool's: the member they went to; a job over several accounts': which */
        if (pool)
            snprintf(on, sizeof on, " to %.40s of pool %.40s",
                     json_string_value(json_object_get(d, "backend")) ?: "?", pool);
        else if (json_is_true(json_object_get(d, "mixed")))
            snprintf(on, sizeof on, " to %.40s",
                     json_string_value(json_object_get(d, "backend")) ?: "?");
        snprintf(detail, sizeof detail, "%zu tasks%s%s",
                 json_array_size(json_object_get(d, "tasks")), on,
                 backups ? " (backups of tasks in flight: docs/engine.md)" : "");
    } else if (ev->type == CB_EV_JOB_STARTED) {
        snprintf(detail, sizeof detail, "%lld tasks",
                 (long long)json_integer_value(json_object_get(d, "tasks")));
    } else if (ev->type == CB_EV_JOB_PARTITIONED) {
        snprintf(detail, sizeof detail, "page %lld: %zu objects%s",
                 (long long)json_integer_value(json_object_get(d, "page")),
                 json_array_size(json_object_get(d, "objects")),
                 json_is_true(json_object_get(d, "last")) ? " (last)" : "");
    } else if ((v = json_object_get(d, "result"))) {
        char *s = cb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(detail, sizeof detail, "result=%.80s", s ? s : "?");
        free(s);
    }
    cb_cost cost;
    if ((v = json_object_get(d, "cost")) && cb_cost_invocation_parse(v, &cost) == CB_OK) {
        size_t n = strlen(detail); /* what the invocation cost (docs/engine.md, Cost) */
        snprintf(detail + n, sizeof detail - n, "%scost=%.9g (%.6g GB-s)", n ? " " : "",
                 cb_cost_amount(&cost), cb_cost_gb_s(&cost));
    }
    json_t *task = json_object_get(d, "task"), *attempt = json_object_get(d, "attempt");
    char ta[48] = "";
    if (task)
        snprintf(ta, sizeof ta, "task=%lld attempt=%lld", (long long)json_integer_value(task),
                 (long long)json_integer_value(attempt));
    printf("%8llu  +%9.3fs  %-24s %-22s %s\n", (unsigned long long)seq,
           (double)(ev->time_ns - t->first_ns) / 1e9, cb_event_type_name(ev->type), ta, detail);
}

static void job_read_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    timeline *t = ctx;
    cb_event ev;
    char err[256];

    if (t->done)
        return;
    if (!m) {
        t->done = 1;
        t->status = s;
        return;
    }
    if (cb_event_decode(m->data, m->len, &ev, err, sizeof err) != CB_OK) {
        if (!t->until_seq && !t->until_is_time)
            printf("%8llu  (not an event: %s)\n", (unsigned long long)m->seq, err);
        return;
    }
    if ((t->until_seq && m->seq > t->until_seq) || (t->until_is_time && ev.time_ns > t->until_ns)) {
        cb_event_cleanup(&ev);
        t->done = 1;
        return;
    }
    t->events++;
    if (t->until_seq || t->until_is_time) {
        if (cb_jobfold_apply(&t->fold, &ev, m->seq) == CB_ENOMEM)
            t->status = CB_ENOMEM;
    } else if (t->json) {
        printf("%.*s\n", (int)m->len, (const char *)m->data);
    } else {
        for (size_t i = 0, n = cb_event_outcomes(&ev); i < n; i++) {
            cb_event one; /* a batch of successes: a line each, at the same position */
            print_line(t, cb_event_outcome(&ev, i, &one), m->seq);
        }
    }
    cb_event_cleanup(&ev);
}

static int run_loop_until(struct event_base *base, int *done, int64_t timeout_ms)
{
    int64_t deadline = cb_time_mono_ns() + timeout_ms * 1000000;
    while (!*done && cb_time_mono_ns() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    return *done;
}

/* Where the job's events start in the log, from the store if there is one
 * (`--store`, else the default store when it exists): 0 reads from the first;
 * *partition: whose log holds them (partition 0 when no store knows). */
static uint64_t job_start(const char *store, const char *tenant, const char *job,
                          unsigned *partition)
{
    cb_store *st = NULL;
    uint64_t seq;
    *partition = 0;
    if (cb_store_open(cb_cli_store_dir(store), 0, CB_STORE_RDONLY, &st) != CB_OK)
        return 0;
    seq = cb_joblog_first_seq(st, tenant, job, 1, partition);
    cb_store_close(st);
    return seq;
}

static int replay_job(struct event_base *base, cb_broker *b, const char *key, int json, int to_end,
                      const char *until, const char *store)
{
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    const char *slash = strchr(key, '/');
    timeline t;
    cb_joblog *jl = NULL;
    unsigned partition;
    uint64_t from;
    int rc = 0;

    memset(&t, 0, sizeof t);
    cb_jobfold_init(&t.fold);
    if (!slash || (size_t)(slash - key) > CB_NAME_MAX) {
        fprintf(stderr, "cb replay: --job takes TENANT/JOB\n");
        return 2;
    }
    snprintf(tenant, sizeof tenant, "%.*s", (int)(slash - key), key);
    snprintf(job, sizeof job, "%s", slash + 1);
    if (!cb_name_valid(tenant) || !cb_name_valid(job)) {
        fprintf(stderr, "cb replay: tenant and job are [A-Za-z0-9_-]{1,128}\n");
        return 2;
    }
    if (until) {
        if (cb_time_parse(until, &t.until_ns) == 0)
            t.until_is_time = 1;
        else if (!(t.until_seq = strtoull(until, NULL, 10))) {
            fprintf(stderr, "cb replay: --until takes a log position or an RFC 3339 time\n");
            return 2;
        }
    }
    t.json = json;
    from = job_start(store, tenant, job, &partition);
    if (cb_joblog_read(b, partition, tenant, job, from, to_end, job_read_cb, &t, &jl) != CB_OK ||
        !run_loop_until(base, &t.done, 600000) || t.status != CB_OK) {
        fprintf(stderr, "cb replay: reading the log failed: %s\n", cb_strerror(t.status));
        rc = 1;
    } else if (t.events == 0) {
        fprintf(stderr, "cb replay: no events for %s/%s\n", tenant, job);
        rc = 1;
    } else if (until) {
        json_t *o =
            json_pack("{s:s, s:o, s:o}", "job", key, "state", cb_job_state_to_json(&t.fold.job),
                      "tasks", cb_jobfold_tasks_json(&t.fold));
        char *s = cb_json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    cb_joblog_close(jl);
    cb_jobfold_cleanup(&t.fold);
    return rc;
}

static int rebuild(struct event_base *base, cb_broker *b, const char *dir, unsigned partitions,
                   const uint64_t *until)
{
    cb_proj_stats st;
    int64_t t0 = cb_time_mono_ns();
    cb_status s = cb_replay_rebuild(base, b, dir, partitions, until, 3600 * 1000, &st);
    double secs = (double)(cb_time_mono_ns() - t0) / 1e9;
    if (s != CB_OK) {
        fprintf(stderr, "cb replay: rebuild into %s failed: %s\n", dir, cb_strerror(s));
        return 1;
    }
    fprintf(stderr,
            "rebuilt %s: %llu events up to position %llu (%llu applied, %llu ignored, "
            "%llu invalid) in %.2fs\n",
            dir, (unsigned long long)st.events, (unsigned long long)st.applied_seq,
            (unsigned long long)st.applied, (unsigned long long)st.ignored,
            (unsigned long long)st.invalid, secs);
    return 0;
}

static int verify(struct event_base *base, cb_broker *b, const char *store_dir)
{
    cb_store *live = NULL, *fresh = NULL;
    char tmp[] = "/tmp/cbverify.XXXXXX", a[65], c[65], diff[2048];
    uint64_t seq = 0, until[CB_PARTITIONS_MAX] = {0};
    unsigned parts = 0;
    int rc = 1;

    cb_status s = cb_store_open(store_dir, 0, CB_STORE_RDONLY, &live);
    if (s != CB_OK) {
        char why[1200];
        fprintf(stderr, "cb replay: %s\n", cb_store_open_error(store_dir, s, why, sizeof why));
        return 1;
    }
    if (cb_view_partitions(live, &parts) != CB_OK || !mkdtemp(tmp))
        goto out;
    for (unsigned k = 0; k < parts; k++) {
        if (cb_view_applied_seq(live, k, &until[k]) != CB_OK)
            goto out;
        seq += until[k];
    }
    if (seq == 0) {
        fprintf(stderr, "cb replay: the store has folded nothing yet\n");
        goto out;
    }
    seq = until[0];
    if (rebuild(base, b, tmp, parts, until) != 0 ||
        cb_store_open(tmp, 0, CB_STORE_RDONLY, &fresh) != CB_OK)
        goto out;
    if (cb_view_digest(live, a, NULL) != CB_OK || cb_view_digest(fresh, c, NULL) != CB_OK ||
        cb_view_first_difference(live, fresh, diff, sizeof diff) != CB_OK)
        goto out;
    if (!strcmp(a, c) && !diff[0]) {
        printf("verified: live store equals a rebuild up to position %llu (digest %s)\n",
               (unsigned long long)seq, a);
        rc = 0;
    } else {
        printf("DIFFERENT at position %llu: live %s, rebuilt %s\nfirst difference: %s\n",
               (unsigned long long)seq, a, c, diff);
    }
out:
    cb_store_close(fresh);
    cb_store_close(live);
    if (tmp[0] && strchr(tmp, 'X') == NULL) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cb replay: could not remove %s\n", tmp);
    }
    return rc;
}

int cb_cmd_replay(int argc, char **argv)
{
    const char *url = NULL, *job = NULL, *until = NULL, *rebuild_dir = NULL;
    const char *store = NULL;
    int json = 0, do_verify = 0, to_end = 0, rc;
    unsigned partitions = 1;
    struct event_base *base;
    cb_broker_opts o;
    cb_broker *b = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--job") && i + 1 < argc)
            job = argv[++i];
        else if (!strcmp(argv[i], "--until") && i + 1 < argc)
            until = argv[++i];
        else if (!strcmp(argv[i], "--rebuild") && i + 1 < argc)
            rebuild_dir = argv[++i];
        else if (!strcmp(argv[i], "--store") && i + 1 < argc)
            store = argv[++i];
        else if (!strcmp(argv[i], "--verify"))
            do_verify = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--to-end"))
            to_end = 1;
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc &&
                 (partitions = (unsigned)atoi(argv[i + 1])) >= 1 && partitions <= CB_PARTITIONS_MAX)
            i++;
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    url = cb_cli_broker_url(url);
    if (!url || (!job && !rebuild_dir && !do_verify) || (do_verify && !store)) {
        fputs(usage, stderr);
        return 2;
    }
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_WARN);
    if (!(base = cb_loop_new()))
        return 1;
    cb_broker_opts_init(&o);
    o.url = url;
    o.name = "cb-replay";
    if (cb_broker_open(base, &o, &b) != CB_OK) {
        char shown[1024];
        fprintf(stderr, "cb replay: cannot connect to %s\n",
                cb_url_redact(url, shown, sizeof shown));
        event_base_free(base);
        return 1;
    }
    if (job)
        rc = replay_job(base, b, job, json, to_end, until, store);
    else if (rebuild_dir)
        rc = rebuild(base, b, rebuild_dir, partitions, NULL);
    else
        rc = verify(base, b, store);
    cb_broker_close(b);
    event_base_free(base);
    return rc;
}
