/* tests/it_projector.c - the projector against a real broker (run once per
 * driver): folding a log, and kill -9 of cb-projector while it folds
 * 200,000 events, after which the state equals a clean rebuild and no event
 * was applied twice. Needs CB_TEST_BROKER_URL and CB_TEST_PROJECTOR. */
#define _GNU_SOURCE
#include "cb_test.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "views.h"
#include "broker.h"
#include "cb_partition.h"
#include "cb_event.h"
#include "cb_time.h"
#include "joblog.h"
#include "proj.h"
#include "replay.h"
#include "store.h"

extern char **environ;

#define TASKS_PER_JOB  100
#define EVENTS_PER_JOB (TASKS_PER_JOB + 4) /* submitted, started, dispatched, N succeeded, done */

typedef struct fixture {
    struct event_base *base;
    cb_broker *b;
    const char *url;
    char dir[64];
    char tenant[32];
    long confirmed, failed, inflight;
    unsigned partitions; /* > 1: each job's events on its partition's log */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    cb_broker_opts o;
    f->url = getenv("CB_TEST_BROKER_URL");
    if (!f->url) {
        free(f);
        return -1;
    }
    f->base = cb_test_base();
    cb_broker_opts_init(&o);
    o.url = f->url;
    o.op_timeout_ms = 60000;
    if (cb_broker_open(f->base, &o, &f->b) != CB_OK) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "/tmp/cbproj.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    cb_test_unique(f->tenant, sizeof f->tenant, "t");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    cb_broker_close(f->b);
    event_base_free(f->base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void appended(cb_status s, uint64_t seq, int dup, void *ctx)
{
    fixture *f = ctx;
    (void)seq;
    (void)dup;
    f->inflight--;
    if (s == CB_OK)
        f->confirmed++;
    else
        f->failed++;
}

static bool drained(void *arg)
{
    return ((fixture *)arg)->inflight == 0;
}

static bool below_window(void *arg)
{
    return ((fixture *)arg)->inflight < 4096;
}

static void append_event(fixture *f, const char *job, cb_event_type type, int n, json_t *data)
{
    cb_event ev;
    char id[160], subject[200], *s;
    size_t len;
    snprintf(id, sizeof id, "%s/%s/%d", f->tenant, job, n);
    assert_int_equal(cb_event_init(&ev, type, f->tenant, job, id, "it_projector",
                                   1795752142000000000LL + (int64_t)n * 1000, data),
                     CB_OK);
    assert_int_equal(cb_event_encode(&ev, &s, &len), CB_OK);
    assert_int_equal(cb_event_log_subject(&ev, cb_partition_of(f->tenant, job, f->partitions),
                                          subject, sizeof subject),
                     0);
    if (!below_window(f))
        assert_true(cb_test_run_until(f->base, below_window, f, 60000));
    f->inflight++;
    assert_int_equal(cb_broker_append(f->b, subject, id, s, len, appended, f), CB_OK);
    free(s);
    cb_event_cleanup(&ev);
}

/* The whole life of one job: EVENTS_PER_JOB events. */
static void append_job(fixture *f, int j)
{
    char job[32];
    json_t *tasks = json_array();
    int n = 0;
    snprintf(job, sizeof job, "job%d", j);
    append_event(f, job, CB_EV_JOB_SUBMITTED, n++,
                 json_pack("{s:{s:s, s:s}, s:s, s:i}", "job", "tenant", f->tenant, "kind", "map",
                           "digest", "0000", "partition",
                           (int)cb_partition_of(f->tenant, job, f->partitions)));
    append_event(f, job, CB_EV_JOB_STARTED, n++, json_pack("{s:i}", "tasks", TASKS_PER_JOB));
    for (int t = 0; t < TASKS_PER_JOB; t++)
        json_array_append_new(tasks, json_pack("{s:i, s:i}", "task", t, "attempt", 1));
    append_event(f, job, CB_EV_TASKS_DISPATCHED, n++, json_pack("{s:o}", "tasks", tasks));
    for (int t = 0; t < TASKS_PER_JOB; t++)
        append_event(f, job, CB_EV_TASK_SUCCEEDED, n++,
                     json_pack("{s:i, s:i, s:i}", "task", t, "attempt", 1, "output", t + 7));
    append_event(f, job, CB_EV_JOB_SUCCEEDED, n++, json_pack("{s:i}", "result", 42));
}

static void append_jobs(fixture *f, int from, int to)
{
    for (int j = from; j < to; j++)
        append_job(f, j);
    assert_true(cb_test_run_until(f->base, drained, f, 300000));
    assert_int_equal(f->failed, 0);
}

typedef struct waiter {
    int caught_up;
    uint64_t seq;
} waiter;

static void on_commit(uint64_t seq, int caught_up, void *ctx)
{
    waiter *w = ctx;
    w->seq = seq;
    w->caught_up |= caught_up;
}

static bool caught_up(void *arg)
{
    return ((waiter *)arg)->caught_up;
}

/* Fold in-process until the projector has caught up with the log (of every
 * partition). */
static void fold_until_caught_up(fixture *f, cb_store *st)
{
    cb_proj_opts po;
    cb_proj *p;
    waiter w = {0};
    cb_proj_opts_init(&po);
    po.partitions = f->partitions ? f->partitions : 1;
    po.on_commit = on_commit;
    po.ctx = &w;
    assert_int_equal(cb_proj_start(f->base, f->b, st, &po, &p), CB_OK);
    assert_true(cb_test_run_until(f->base, caught_up, &w, 600000));
    cb_proj_stop(p);
}

/* Every job of ours folded exactly once: all its events applied, none ignored. */
static void check_jobs(fixture *f, cb_store *st, int jobs)
{
    for (int j = 0; j < jobs; j++) {
        char key[96];
        cb_job_state js;
        snprintf(key, sizeof key, "%s/job%d", f->tenant, j);
        assert_int_equal(cb_view_job(st, key, &js), CB_OK);
        if (js.applied != EVENTS_PER_JOB || js.ignored != 0)
            fprintf(stderr, "%s: applied %llu ignored %llu\n", key, (unsigned long long)js.applied,
                    (unsigned long long)js.ignored);
        assert_int_equal(js.status, CB_JOB_SUCCEEDED);
        assert_int_equal(js.succeeded, TASKS_PER_JOB);
        assert_int_equal(js.applied, EVENTS_PER_JOB);
        assert_int_equal(js.ignored, 0);
        cb_job_state_cleanup(&js);
    }
}

typedef struct heard {
    const char *want; /* a job key an announcement must name */
    int seen;
} heard;

static void changed_cb(const cb_broker_msg *m, void *ctx)
{
    heard *h = ctx;
    json_error_t je;
    json_t *o = json_loadb(m->data, m->len, 0, &je), *k;
    size_t i;
    json_array_foreach(json_object_get(o, "jobs"), i, k) if (!strcmp(json_string_value(k), h->want))
        h->seen = 1;
    json_decref(o);
}

static bool heard_it(void *arg)
{
    return ((heard *)arg)->seen;
}

static void test_projector_folds_the_log(void **state)
{
    fixture *f = *state;
    cb_store *st;
    cb_task_state t;
    cb_sub *sub = NULL;
    char key[96];
    heard h = {key, 0};

    /* Controllers learn what changed from announcements (the fast path). */
    snprintf(key, sizeof key, "%s/job4", f->tenant);
    assert_int_equal(cb_broker_subscribe(f->b, CB_PROJ_CHANGED, 0, changed_cb, &h, &sub), CB_OK);
    append_jobs(f, 0, 5);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_until_caught_up(f, st);
    check_jobs(f, st, 5);
    assert_true(cb_test_run_until(f->base, heard_it, &h, 10000));
    cb_sub_close(sub);
    snprintf(key, sizeof key, "%s/job3", f->tenant);
    assert_int_equal(cb_view_task(st, key, 10, &t), CB_OK);
    assert_int_equal(t.status, CB_TASK_SUCCEEDED);
    assert_int_equal(json_integer_value(t.output), 17);
    cb_task_state_cleanup(&t);
    cb_store_close(st);
}

typedef struct jl_reader {
    long events;
    uint64_t min_seq;
    cb_event_type first;
    int done;
    cb_status status;
} jl_reader;

static void jl_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    jl_reader *r = ctx;
    cb_event ev;
    if (!m) {
        r->done++;
        r->status = s;
        return;
    }
    if (!r->events && cb_event_decode(m->data, m->len, &ev, NULL, 0) == CB_OK) {
        r->first = ev.type;
        cb_event_cleanup(&ev);
    }
    if (!r->min_seq || m->seq < r->min_seq)
        r->min_seq = m->seq;
    r->events++;
}

static bool jl_done(void *arg)
{
    return ((jl_reader *)arg)->done > 0;
}

static jl_reader read_job_log(fixture *f, const char *job, uint64_t from, int to_end)
{
    jl_reader r = {0};
    cb_joblog *jl = NULL;
    assert_int_equal(cb_joblog_read(f->b, 0, f->tenant, job, from, to_end, jl_cb, &r, &jl), CB_OK);
    assert_true(cb_test_run_until(f->base, jl_done, &r, 60000));
    cb_joblog_close(jl);
    assert_int_equal(r.done, 1); /* the end is said once */
    assert_int_equal(r.status, CB_OK);
    return r;
}

/* One job's events are read from where the store says the job starts to its
 * terminal event (a late report after it only with to_end); a position that
 * does not start the job falls back to reading from the log's start. */
static void test_job_log_from_its_first_position(void **state)
{
    fixture *f = *state;
    cb_store *st;
    uint64_t first2, first4;
    unsigned part;
    jl_reader r;

    append_jobs(f, 0, 5);
    { /* a late report for job2, after its end */
        cb_event ev;
        char id[160], subject[200], *text;
        size_t len;
        snprintf(id, sizeof id, "%s/job2/late", f->tenant);
        assert_int_equal(
            cb_event_init(&ev, CB_EV_TASK_SUCCEEDED, f->tenant, "job2", id, "it",
                          1795752142000000000LL,
                          json_pack("{s:i, s:i, s:i}", "task", 0, "attempt", 2, "output", 1)),
            CB_OK);
        assert_int_equal(cb_event_encode(&ev, &text, &len), CB_OK);
        assert_int_equal(cb_event_log_subject(&ev, 0, subject, sizeof subject), 0);
        f->inflight++;
        assert_int_equal(cb_broker_append(f->b, subject, id, text, len, appended, f), CB_OK);
        free(text);
        cb_event_cleanup(&ev);
        assert_true(cb_test_run_until(f->base, drained, f, 60000));
    }
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_until_caught_up(f, st);
    first2 = cb_joblog_first_seq(st, f->tenant, "job2", 1, &part);
    first4 = cb_joblog_first_seq(st, f->tenant, "job4", 1, &part);
    assert_true(first2 > 0);
    assert_true(first4 > first2 + EVENTS_PER_JOB - 1);
    assert_int_equal(cb_joblog_first_seq(st, f->tenant, "nosuchjob", 1, &part), 0);
    assert_int_equal(cb_joblog_first_seq(NULL, f->tenant, "job2", 1, &part), 0);

    r = read_job_log(f, "job2", first2, 0);
    assert_int_equal(r.events, EVENTS_PER_JOB); /* submitted .. succeeded, not the late one */
    assert_int_equal(r.first, CB_EV_JOB_SUBMITTED);
    assert_int_equal(r.min_seq, first2);
    r = read_job_log(f, "job2", first2, 1);
    assert_int_equal(r.events, EVENTS_PER_JOB + 1);
    /* positions that do not start the job: after it, inside it, unknown */
    assert_int_equal(read_job_log(f, "job2", first4, 0).events, EVENTS_PER_JOB);
    r = read_job_log(f, "job2", first2 + 5, 0);
    assert_int_equal(r.events, EVENTS_PER_JOB);
    assert_int_equal(r.first, CB_EV_JOB_SUBMITTED);
    assert_int_equal(read_job_log(f, "job2", 0, 0).events, EVENTS_PER_JOB);
    cb_store_close(st);
}

static pid_t start_projector(fixture *f, const char *bin)
{
    pid_t pid;
    const char *argv[] = {bin, "--broker", f->url, "--store", f->dir, NULL};
    assert_int_equal(posix_spawn(&pid, bin, NULL, NULL, (char *const *)argv, environ), 0);
    return pid;
}

static void kill_hard(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

typedef struct progress {
    cb_store *st;
    uint64_t above, step;
} progress;

static bool applied_moved(void *arg)
{
    progress *p = arg;
    uint64_t seq = 0;
    return cb_view_applied_seq(p->st, 0, &seq) == CB_OK && seq > p->above + p->step;
}

static void test_kill9_while_folding_200k_events(void **state)
{
    fixture *f = *state;
    const char *bin = cb_test_env("CB_TEST_PROJECTOR");
    const int jobs = 2000; /* 2000 x 104 = 208,000 events */
    cb_store *st;
    char rebuilt[80], live_digest[65], rebuilt_digest[65], diff[1024];
    uint64_t live_n, rebuilt_n, seq = 0;
    cb_proj_stats rs;
    int kills = 0;

    append_jobs(f, 0, jobs);
    fprintf(stderr, "appended %ld events\n", f->confirmed);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    /* Kill -9 the daemon each time it has committed something new, a little
     * later each round so the kills land at different points of a batch. */
    for (int round = 0; round < 16; round++) {
        progress p = {st, 0, 20000 + 3001 * (uint64_t)round}; /* spread over the log */
        assert_int_equal(cb_view_applied_seq(st, 0, &p.above), CB_OK);
        pid_t pid = start_projector(f, bin);
        bool moved = cb_test_poll_until(f->base, applied_moved, &p, 15000, 2);
        struct timespec ts = {0, (long)(round % 4) * 7000000L};
        nanosleep(&ts, NULL); /* varies where the kill lands; not a synchronisation */
        kill_hard(pid);
        if (!moved)
            break; /* near the end already */
        kills++;
    }
    assert_true(kills >= 3);
    assert_int_equal(cb_view_applied_seq(st, 0, &seq), CB_OK);
    fprintf(stderr, "%d kills; folded up to %llu before the last start\n", kills,
            (unsigned long long)seq);
    /* The final run, in-process, to the end of the log. */
    fold_until_caught_up(f, st);
    check_jobs(f, st, jobs);
    assert_int_equal(cb_view_digest(st, live_digest, &live_n), CB_OK);

    /* A clean rebuild of the same log gives the same state. */
    snprintf(rebuilt, sizeof rebuilt, "%s/rebuilt", f->dir);
    assert_int_equal(cb_replay_rebuild(f->base, f->b, rebuilt, 1, NULL, 600000, &rs), CB_OK);
    cb_store *rb;
    assert_int_equal(cb_store_open(rebuilt, 0, CB_STORE_RDONLY, &rb), CB_OK);
    assert_int_equal(cb_view_digest(rb, rebuilt_digest, &rebuilt_n), CB_OK);
    assert_int_equal(cb_view_first_difference(st, rb, diff, sizeof diff), CB_OK);
    if (diff[0])
        fprintf(stderr, "first difference: %s\n", diff);
    assert_string_equal(live_digest, rebuilt_digest);
    assert_int_equal(live_n, rebuilt_n);
    cb_store_close(rb);

    /* Determinism: a second rebuild of the same log, byte for byte the same. */
    char again[80], again_digest[65];
    snprintf(again, sizeof again, "%s/again", f->dir);
    assert_int_equal(cb_replay_rebuild(f->base, f->b, again, 1, &rs.applied_seq, 600000, NULL),
                     CB_OK);
    assert_int_equal(cb_store_open(again, 0, CB_STORE_RDONLY, &rb), CB_OK);
    assert_int_equal(cb_view_digest(rb, again_digest, NULL), CB_OK);
    assert_string_equal(again_digest, rebuilt_digest);
    cb_store_close(rb);
    cb_store_close(st);
}

/* Anonymous resident memory (heap, not LMDB's mapped file) of a process, kB. */
static long rss_anon_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void test_projector_memory_stays_bounded(void **state)
{
    fixture *f = *state;
    const char *bin = cb_test_env("CB_TEST_PROJECTOR");
    cb_store *st;
    long early, late;

#ifdef __SANITIZE_ADDRESS__
    /* ASan keeps freed memory in quarantine: RSS says nothing about leaks
     * there (LeakSanitizer checks those). Measured in the plain build. */
    fprintf(stderr, "memory figures are not meaningful under AddressSanitizer: skipped\n");
    skip();
#endif
    /* The log holds the 208,000 events of the kill test (same broker) and more. */
    append_jobs(f, 0, 100);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    pid_t pid = start_projector(f, bin);
    progress p = {st, 0, 40000};
    assert_true(cb_test_poll_until(f->base, applied_moved, &p, 60000, 5));
    early = rss_anon_kb(pid);
    p.step = 200000;
    assert_true(cb_test_poll_until(f->base, applied_moved, &p, 120000, 5));
    late = rss_anon_kb(pid);
    kill_hard(pid);
    cb_store_close(st);
    fprintf(stderr, "cb-projector anonymous RSS: %ld kB after 40k events, %ld kB after 200k\n",
            early, late);
    assert_true(early > 0 && late > 0);
    /* 160,000 more events may not cost more than 8 MB: nothing grows per event. */
    assert_true(late - early < 8 * 1024);
}

/* Run a shell command, return its stdout (malloc'd) and exit status. */
static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 20, n = 0;
    char *buf = calloc(1, cap);
    assert_non_null(p);
    while (n + 1 < cap && fgets(buf + n, (int)(cap - n), p))
        n += strlen(buf + n);
    *status = pclose(p);
    return buf;
}

static void test_replay_and_inspect_commands(void **state)
{
    fixture *f = *state;
    const char *cb = cb_test_env("CB_TEST_CB");
    cb_store *st;
    char cmd[1024], first4[32] = "";
    int status, lines = 0;
    char *out;

    append_jobs(f, 0, 1);
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_until_caught_up(f, st);
    cb_store_close(st);

    /* the timeline: one line per event, in order */
    snprintf(cmd, sizeof cmd, "%s replay --broker '%s' --job %s/job0", cb, f->url, f->tenant);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    for (char *l = out; (l = strchr(l, '\n')); l++)
        if (++lines == 3) /* the 4th line, the first success: its position */
            sscanf(l + 1, "%31s", first4);
    assert_int_equal(lines, EVENTS_PER_JOB);
    assert_non_null(strstr(out, "cb.job.submitted"));
    assert_non_null(strstr(out, "task=99 attempt=1"));
    free(out);

    /* time travel: the state right after the first task succeeded */
    snprintf(cmd, sizeof cmd, "%s replay --broker '%s' --job %s/job0 --until %s", cb, f->url,
             f->tenant, first4);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    json_t *jstate = json_object_get(o, "state");
    assert_string_equal(json_string_value(json_object_get(jstate, "status")), "running");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(jstate, "tasks"), "succeeded")), 1);
    json_decref(o);
    free(out);

    /* the live store equals a rebuild */
    snprintf(cmd, sizeof cmd, "%s replay --broker '%s' --verify --store %s 2>/dev/null", cb, f->url,
             f->dir);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "verified"));
    free(out);

    /* inspect reads the store */
    snprintf(cmd, sizeof cmd, "%s inspect task %s/job0 42 --store %s", cb, f->tenant, f->dir);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    o = json_loads(out, 0, &je);
    assert_int_equal(json_integer_value(json_object_get(o, "output")), 49);
    json_decref(o);
    free(out);
    snprintf(cmd, sizeof cmd, "%s inspect job %s/nope --store %s 2>/dev/null", cb, f->tenant,
             f->dir);
    out = run(cmd, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    free(out);
}

/* A deployment of 3 partitions (docs/scale.md): one store folds every
 * partition's log, each job once; each partition keeps its own position, and
 * a projector started again goes on from each; the store equals a rebuild of
 * the three logs; a job's events are read back from its partition. */
static void test_partitions_fold_into_one_store(void **state)
{
    fixture *f = *state;
    cb_broker_opts o;
    cb_store *st, *rb;
    uint64_t pos[3], before[3], first;
    unsigned jobs_in[3] = {0}, k, got;
    char rebuilt[96], live_digest[65], rebuilt_digest[65], diff[2048];
    jl_reader r;

    cb_broker_close(f->b); /* a daemon's connection that makes the three logs */
    cb_broker_opts_init(&o);
    o.url = f->url;
    o.op_timeout_ms = 60000;
    o.partitions = 3;
    assert_int_equal(cb_broker_open(f->base, &o, &f->b), CB_OK);
    f->partitions = 3;
    append_jobs(f, 0, 9);
    for (int j = 0; j < 9; j++) {
        char job[32];
        snprintf(job, sizeof job, "job%d", j);
        jobs_in[cb_partition_of(f->tenant, job, 3)]++;
    }
    assert_int_equal(cb_store_open(f->dir, 0, 0, &st), CB_OK);
    fold_until_caught_up(f, st);
    check_jobs(f, st, 9);
    assert_int_equal(cb_view_partitions(st, &got), CB_OK);
    for (k = 0; k < 3; k++) {
        assert_int_equal(cb_view_applied_seq(st, k, &before[k]), CB_OK);
        if (jobs_in[k]) { /* the partition's own position: at least its events */
            assert_true(before[k] >= (uint64_t)jobs_in[k] * EVENTS_PER_JOB - 1);
            assert_true(got > k);
        }
    }
    for (int j = 0; j < 9; j++) {
        char key[96];
        cb_job_state js;
        snprintf(key, sizeof key, "%s/job%d", f->tenant, j);
        assert_int_equal(cb_view_job(st, key, &js), CB_OK);
        assert_int_equal(js.log_partition,
                         cb_partition_of(f->tenant, key + strlen(f->tenant) + 1, 3));
        cb_job_state_cleanup(&js);
    }
    /* more jobs, folded by a projector started again: each partition goes on */
    append_jobs(f, 9, 15);
    fold_until_caught_up(f, st);
    check_jobs(f, st, 15); /* every event once: none folded again */
    for (k = 0; k < 3; k++) {
        assert_int_equal(cb_view_applied_seq(st, k, &pos[k]), CB_OK);
        assert_true(pos[k] >= before[k]);
    }
    /* the three logs rebuilt into a fresh store give the same state */
    snprintf(rebuilt, sizeof rebuilt, "%s/rebuilt", f->dir);
    assert_int_equal(cb_replay_rebuild(f->base, f->b, rebuilt, 3, pos, 600000, NULL), CB_OK);
    assert_int_equal(cb_store_open(rebuilt, 0, CB_STORE_RDONLY, &rb), CB_OK);
    assert_int_equal(cb_view_digest(st, live_digest, NULL), CB_OK);
    assert_int_equal(cb_view_digest(rb, rebuilt_digest, NULL), CB_OK);
    assert_int_equal(cb_view_first_difference(st, rb, diff, sizeof diff), CB_OK);
    if (diff[0])
        fprintf(stderr, "first difference: %s\n", diff);
    assert_string_equal(live_digest, rebuilt_digest);
    cb_store_close(rb);
    /* a job of a partition but 0's, read from its log where the store says it starts */
    for (int j = 0; j < 15; j++) {
        char job[32];
        snprintf(job, sizeof job, "job%d", j);
        if (!cb_partition_of(f->tenant, job, 3))
            continue;
        first = cb_joblog_first_seq(st, f->tenant, job, 1, &k);
        assert_int_equal(k, cb_partition_of(f->tenant, job, 3));
        assert_true(first > 0);
        {
            jl_reader rr = {0};
            cb_joblog *jl = NULL;
            assert_int_equal(cb_joblog_read(f->b, k, f->tenant, job, first, 0, jl_cb, &rr, &jl),
                             CB_OK);
            assert_true(cb_test_run_until(f->base, jl_done, &rr, 60000));
            cb_joblog_close(jl);
            r = rr;
        }
        assert_int_equal(r.status, CB_OK);
        assert_int_equal(r.events, EVENTS_PER_JOB);
        break;
    }
    cb_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_projector_folds_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_inspect_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_log_from_its_first_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions_fold_into_one_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_while_folding_200k_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projector_memory_stays_bounded, setup, teardown),
    };
    const char *driver = getenv("CB_TEST_DRIVER");
    char name[64];
    if (getenv("CB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CB_TEST_FILTER"));
    snprintf(name, sizeof name, "projector[%s]", driver ? driver : "?");
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}
