/* projector/fold.c - job and task state machines (see fold.h). */
#include "fold.h"
#include "cb_partition.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_msg_outcome.h"
#include "cb_time.h"

static const char *const job_names[] = {"absent",    "submitted", "running",   "suspended",
                                        "succeeded", "failed",    "cancelled", "rejected"};
static const char *const task_names[] = {"pending",    "dispatched", "running",
                                         "succeeded",  "failed",     "timed_out",
                                         "retry_wait", "skipped",    "expanded"};
#define NTASK_NAMES ((int)(sizeof task_names / sizeof task_names[0]))

const char *cb_job_status_name(cb_job_status s)
{
    return (unsigned)s < sizeof job_names / sizeof job_names[0] ? job_names[s] : "?";
}

const char *cb_task_status_name(cb_task_status s)
{
    return (unsigned)s < sizeof task_names / sizeof task_names[0] ? task_names[s] : "?";
}

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

bool cb_job_terminal(cb_job_status s)
{
    return s == CB_JOB_SUCCEEDED || s == CB_JOB_FAILED || s == CB_JOB_CANCELLED ||
           s == CB_JOB_REJECTED;
}

void cb_job_state_cleanup(cb_job_state *j)
{
    json_decref(j->spec);
    json_decref(j->partition);
    json_decref(j->result);
    cb_free(j->digest);
    cb_free(j->error);
    memset(j, 0, sizeof *j);
}

void cb_task_state_cleanup(cb_task_state *t)
{
    json_decref(t->output);
    cb_free(t->error);
    memset(t, 0, sizeof *t);
}

/* ---- task counters --------------------------------------------------- */

static uint32_t *counter_for(cb_job_state *j, cb_task_status s)
{
    switch (s) {
    case CB_TASK_DISPATCHED:
    case CB_TASK_RUNNING:
        return &j->inflight;
    case CB_TASK_SUCCEEDED:
        return &j->succeeded;
    case CB_TASK_FAILED:
    case CB_TASK_TIMED_OUT:
        return &j->failed;
    case CB_TASK_RETRY_WAIT:
        return &j->waiting;
    case CB_TASK_SKIPPED:
        return &j->skipped;
    case CB_TASK_PENDING:
    case CB_TASK_EXPANDED:
        break;
    }
    return NULL;
}

uint32_t cb_duration_bucket(int64_t ms)
{
    double b;
    if (ms < 1)
        return 0;
    b = floor(3.0 * log2((double)ms)) + 1;
    return b >= CB_DUR_BUCKETS - 1 ? CB_DUR_BUCKETS - 1 : (uint32_t)b;
}

double cb_duration_bucket_ms(uint32_t b)
{
    return b == 0 ? 0.5 : exp2(((double)b - 0.5) / 3.0);
}

double cb_duration_median_ms(const uint32_t *buckets, uint64_t n)
{
    uint64_t seen = 0;
    for (uint32_t b = 0; n && b < CB_DUR_BUCKETS; b++)
        if ((seen += buckets[b]) * 2 >= n)
            return cb_duration_bucket_ms(b);
    return 0;
}

/* One invocation on member `m` (1-based; 0: none) ended or was dispatched. */
static void member_inflight(cb_job_state *j, uint8_t m, int delta)
{
    cb_member_use *u = m && m <= j->nmembers ? &j->members[m - 1] : NULL;
    if (u && delta > 0)
        u->inflight++;
    else if (u && u->inflight > 0)
        u->inflight--;
}

/* Move a task to `to`, keeping the job's counters in step. */
static void task_move(cb_job_state *j, cb_task_state *t, cb_task_status to, int64_t now)
{
    uint32_t *from_c = counter_for(j, t->status), *to_c = counter_for(j, to);
    if (from_c && *from_c > 0)
        (*from_c)--;
    if (from_c == &j->inflight && to_c != &j->inflight) /* not DISPATCHED -> RUNNING */
        member_inflight(j, t->member, -1);
    if (t->backup) { /* settled: its backup's invocation no longer counts */
        t->backup = false;
        if (j->inflight > 0)
            j->inflight--;
        member_inflight(j, t->backup_member, -1);
        t->backup_member = 0;
    }
    if (to_c)
        (*to_c)++;
    t->status = to;
    t->updated_ns = now;
}

/* ---- data accessors -------------------------------------------------- */

static int get_index(const json_t *data, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(data, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static cb_status set_str(char **dst, const char *src)
{
    char *copy = src ? cb_strdup(src) : NULL;
    if (src && !copy)
        return CB_ENOMEM;
    cb_free(*dst);
    *dst = copy;
    return CB_OK;
}

/* ---- per event type -------------------------------------------------- */

typedef struct fold_ctx {
    cb_job_state *j;
    const cb_fold_tasks *tasks;
    const cb_event *ev;
    const json_t *data;
    int64_t now;
} fold_ctx;

/* Returns 1 applied, 0 ignored, or a negative cb_status. */
typedef int fold_fn(fold_ctx *c);

/* A submission's recorded partition (absent: 0) into *out; false when it is
 * not an integer of [0, CB_PARTITIONS_MAX). */
static bool partition_of(const json_t *data, uint32_t *out)
{
    const json_t *p = json_object_get(data, "partition");
    json_int_t v = json_integer_value(p);
    if (p && (!json_is_integer(p) || v < 0 || v >= CB_PARTITIONS_MAX))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool cb_fold_in_partition(const cb_event *ev, unsigned partition)
{
    uint32_t part = 0;
    return ev->type != CB_EV_JOB_SUBMITTED || (partition_of(ev->data, &part) && part == partition);
}

static int fold_submitted(fold_ctx *c)
{
    json_t *spec = json_object_get(c->data, "job");
    uint32_t part = 0;
    if (c->j->status != CB_JOB_ABSENT)
        return 0; /* a repeat of the submission */
    if (!json_is_object(spec))
        return CB_EINVAL;
    if (set_str(&c->j->digest, json_string_value(json_object_get(c->data, "digest"))) != CB_OK)
        return CB_ENOMEM;
    if (!partition_of(c->data, &part))
        return CB_EINVAL; /* no log has it: a job nobody would drive */
    c->j->spec = json_incref(spec);
    c->j->log_partition = part;
    c->j->status = CB_JOB_SUBMITTED;
    c->j->submitted_ns = c->now;
    return 1;
}

static int fold_rejected(fold_ctx *c)
{
    json_t *errors = json_object_get(c->data, "errors");
    char *joined;
    size_t i, len = 0;
    json_t *e;

    if (c->j->status != CB_JOB_ABSENT && c->j->status != CB_JOB_SUBMITTED)
        return 0;
    json_array_foreach(errors, i, e) len += strlen(json_string_value(e) ?: "") + 2;
    if (!(joined = cb_calloc(1, len + 1)))
        return CB_ENOMEM;
    json_array_foreach(errors, i, e)
    {
        if (i)
            strcat(joined, "; ");
        strcat(joined, json_string_value(e) ?: "");
    }
    cb_free(c->j->error);
    c->j->error = joined;
    c->j->status = CB_JOB_REJECTED;
    c->j->finished_ns = c->now;
    return 1;
}

static int fold_started(fold_ctx *c)
{
    uint32_t total;
    cb_job_state *j = c->j;
    bool suspended_before_start =
        j->status == CB_JOB_SUSPENDED && j->suspended_from == CB_JOB_SUBMITTED;
    if (j->status != CB_JOB_SUBMITTED && !suspended_before_start)
        return 0;
    if (get_index(c->data, "tasks", &total))
        return CB_EINVAL;
    j->total = total;
    j->started_ns = c->now;
    if (suspended_before_start)
        j->suspended_from = CB_JOB_RUNNING;
    else
        j->status = CB_JOB_RUNNING;
    return 1;
}

static bool job_accepts_tasks(const cb_job_state *j)
{
    return j->status == CB_JOB_RUNNING || j->status == CB_JOB_SUSPENDED;
}

/* The member a pool's dispatch names, or the account of a job over several
 * ("mixed"; 1-based; added on its first dispatch), or 0: neither, or more
 * members than kept. */
static uint8_t member_of(cb_job_state *j, const json_t *data)
{
    const char *b = json_string_value(json_object_get(data, "backend"));
    uint32_t i;
    if (!(json_object_get(data, "pool") || json_is_true(json_object_get(data, "mixed"))) || !b ||
        strlen(b) >= CB_MEMBER_NAME_MAX)
        return 0;
    for (i = 0; i < j->nmembers && strcmp(j->members[i].backend, b); i++)
        ;
    if (i == CB_MEMBERS_MAX)
        return 0;
    if (i == j->nmembers)
        snprintf(j->members[j->nmembers++].backend, CB_MEMBER_NAME_MAX, "%s", b);
    return (uint8_t)(i + 1);
}

static int fold_dispatched(fold_ctx *c)
{
    json_t *list = json_object_get(c->data, "tasks"), *item;
    size_t i;
    int any = 0;
    uint8_t member;

    if (!json_is_array(list))
        return CB_EINVAL;
    if (!job_accepts_tasks(c->j) || c->j->cancel_requested)
        return 0;
    member = member_of(c->j, c->data);
    json_array_foreach(list, i, item)
    {
        uint32_t idx, attempt;
        cb_task_state *t;
        if (get_index(item, "task", &idx) || get_index(item, "attempt", &attempt) ||
            idx >= c->j->total)
            continue;
        if (!(t = c->tasks->get(c->tasks->arg, idx)))
            return CB_ENOMEM;
        if (json_is_true(json_object_get(item, "backup"))) {
            /* a backup of the attempt in flight: both run, the first success wins */
            if ((t->status == CB_TASK_DISPATCHED || t->status == CB_TASK_RUNNING) && !t->backup &&
                attempt == t->attempt + 1) {
                t->attempt = attempt;
                t->backup = true;
                t->backup_member = member;
                t->updated_ns = c->now; /* the backup's own timeout runs from now */
                c->j->inflight++;
                c->j->backups++;
                member_inflight(c->j, member, 1);
                if (member)
                    c->j->members[member - 1].dispatched++;
                any = 1;
            }
            continue;
        }
        if (attempt == 1 && t->status != CB_TASK_PENDING && idx >= c->j->frontier) {
            /* reported before this dispatch (adopt_dispatch): settled, it
             * moves the frontier only */
            c->j->frontier = idx + 1;
            any = 1;
        } else if ((t->status == CB_TASK_PENDING && attempt == 1) ||
                   (t->status == CB_TASK_RETRY_WAIT && attempt == t->attempt)) {
            if (idx >= c->j->frontier)
                c->j->frontier = idx + 1;
            t->attempt = attempt;
            t->due_ns = 0;
            t->member = member;
            task_move(c->j, t, CB_TASK_DISPATCHED, c->now);
            member_inflight(c->j, member, 1);
            if (member)
                c->j->members[member - 1].dispatched++;
            any = 1;
        }
    }
    return any;
}

/* Task idx of the job, if the job can take task events: 1 (and *t), 0
 * (ignore the event), CB_ENOMEM. */
static int task_at(fold_ctx *c, uint32_t idx, cb_task_state **t)
{
    if (!job_accepts_tasks(c->j) || idx >= c->j->total)
        return 0;
    if (!(*t = c->tasks->get(c->tasks->arg, idx)))
        return CB_ENOMEM;
    return 1;
}

/* The task an engine's task event names. */
static int task_of(fold_ctx *c, cb_task_state **t, uint32_t *attempt)
{
    uint32_t idx;
    if (get_index(c->data, "task", &idx) || get_index(c->data, "attempt", attempt))
        return CB_EINVAL;
    return task_at(c, idx, t);
}

/* The task an adapter's outcome event names (common/cb_msg_outcome.h). */
static int outcome_of(fold_ctx *c, cb_task_state **t, cb_outcome_msg *m)
{
    if (cb_outcome_parse(c->data, m) != CB_OK)
        return CB_EINVAL;
    return task_at(c, m->task, t);
}

/* What the invocation an outcome reports cost, into task t and its job (see
 * fold.h), unless it repeats the success already folded. */
static void count_cost(fold_ctx *c, cb_task_state *t, const cb_outcome_msg *m, bool success)
{
    if (success && t->status == CB_TASK_SUCCEEDED && t->attempt == m->attempt)
        return; /* its success is folded: this repeats it */
    cb_cost_add(&t->cost, &m->cost);
    cb_cost_add(&c->j->cost, &m->cost);
}

/* An adapter's outcome (common/cb_msg_outcome.h) into *m, its task into *t
 * when the job takes task events (1), else 0; its cost counted either way
 * (a job that has ended: into its record all the same); CB_EINVAL,
 * CB_ENOMEM. */
/* A pool's job: the throttling answers an outcome reports, on the member
 * that ran it (the adapter's account, from the event's source). */
static void count_throttles(fold_ctx *c, const cb_task_state *t, const cb_outcome_msg *m)
{
    char b[CB_MEMBER_NAME_MAX];
    uint32_t i = c->j->nmembers;
    if (!m->throttled || !c->j->nmembers)
        return;
    if (cb_event_source_backend(c->ev->source, b, sizeof b))
        for (i = 0; i < c->j->nmembers && strcmp(c->j->members[i].backend, b); i++)
            ;
    if (i == c->j->nmembers && t->member) /* not an adapter's: the attempt's member */
        i = t->member - 1u;
    if (i < c->j->nmembers)
        c->j->members[i].throttled += m->throttled;
}

static int outcome_task(fold_ctx *c, cb_outcome_msg *m, cb_task_state **t, bool success)
{
    int r = cb_outcome_parse(c->data, m) != CB_OK ? CB_EINVAL : task_at(c, m->task, t);
    if (r == 1)
        count_throttles(c, *t, m);
    if (r < 0 || !m->billed)
        return r;
    if (r == 0 && (c->j->status == CB_JOB_ABSENT || m->task >= c->j->total))
        return 0;
    if (r == 0 && !(*t = c->tasks->get(c->tasks->arg, m->task)))
        return CB_ENOMEM;
    count_cost(c, *t, m, success);
    return r;
}

/* An adapter reports attempt 1 of a task the log shows pending: the
 * dispatch is not in the log, yet it happened (an adapter runs only what
 * the engine put once the broker confirmed the dispatch). A broker can
 * lose an append it confirmed when a node fails (docs/broker.md, "Node
 * failure"); the report stands for its dispatch, so the task's outcome
 * counts and the job goes on. The frontier stays: the tasks below it were
 * all dispatched, and the engine's next dispatch of this one moves it
 * (fold_dispatched) without running it again (it sends no command for an
 * attempt already settled). */
static void adopt_dispatch(fold_ctx *c, cb_task_state *t, uint32_t attempt)
{
    if (t->status != CB_TASK_PENDING || attempt != 1 || c->j->cancel_requested)
        return;
    t->attempt = 1;
    t->due_ns = 0;
    t->member = 0;
    task_move(c->j, t, CB_TASK_DISPATCHED, c->now);
}

static int fold_task_started(fold_ctx *c)
{
    cb_task_state *t;
    cb_outcome_msg m;
    int r = outcome_of(c, &t, &m);
    if (r <= 0)
        return r;
    adopt_dispatch(c, t, m.attempt);
    if (t->status != CB_TASK_DISPATCHED || m.attempt != t->attempt)
        return 0;
    task_move(c->j, t, CB_TASK_RUNNING, c->now);
    return 1;
}

static int fold_task_succeeded(fold_ctx *c)
{
    cb_task_state *t = NULL;
    cb_outcome_msg m;
    int r = outcome_task(c, &m, &t, true);
    if (r <= 0)
        return r;
    if (!m.output)
        return CB_EINVAL;
    adopt_dispatch(c, t, m.attempt);
    /* The first success wins, also a late one from an earlier attempt: the
     * function did produce that output. */
    if (t->status == CB_TASK_PENDING || t->status == CB_TASK_SUCCEEDED || m.attempt > t->attempt)
        return 0;
    json_decref(t->output);
    t->output = json_incref((json_t *)m.output);
    t->due_ns = 0;
    if (m.memoized_job)
        c->j->memoized++;
    else if (m.duration_ms >= 0 && json_object_get(c->j->spec, "backup")) {
        c->j->durations[cb_duration_bucket(m.duration_ms)]++; /* for the backups' median */
        c->j->ndurations++;
    }
    task_move(c->j, t, CB_TASK_SUCCEEDED, c->now);
    return 1;
}

/* Attempt `attempt` of task t ended without an output. */
static int task_failed(fold_ctx *c, cb_task_state *t, uint32_t attempt, cb_task_status to,
                       const char *error)
{
    if ((t->status != CB_TASK_DISPATCHED && t->status != CB_TASK_RUNNING) || attempt != t->attempt)
        return 0; /* a late report of an attempt already settled */
    if (set_str(&t->error, error) != CB_OK)
        return CB_ENOMEM;
    if (to == CB_TASK_TIMED_OUT)
        c->j->timeouts++;
    task_move(c->j, t, to, c->now);
    return 1;
}

static int fold_failed(fold_ctx *c)
{
    cb_task_state *t = NULL;
    cb_outcome_msg m;
    int r = outcome_task(c, &m, &t, false);
    if (r <= 0)
        return r;
    adopt_dispatch(c, t, m.attempt);
    return task_failed(c, t, m.attempt, CB_TASK_FAILED, m.error);
}

static int fold_timed_out(fold_ctx *c)
{
    cb_task_state *t;
    uint32_t attempt;
    int r = task_of(c, &t, &attempt);
    if (r <= 0)
        return r;
    return task_failed(c, t, attempt, CB_TASK_TIMED_OUT, "timed out");
}

static int fold_retry(fold_ctx *c)
{
    cb_task_state *t;
    uint32_t attempt;
    int64_t at;
    int r = task_of(c, &t, &attempt);
    if (r <= 0)
        return r;
    if (cb_time_parse(json_string_value(json_object_get(c->data, "at")) ?: "", &at) != 0)
        return CB_EINVAL;
    if ((t->status != CB_TASK_FAILED && t->status != CB_TASK_TIMED_OUT) ||
        attempt != t->attempt + 1)
        return 0;
    t->attempt = attempt;
    t->due_ns = at;
    c->j->retries++;
    task_move(c->j, t, CB_TASK_RETRY_WAIT, c->now);
    return 1;
}

/* The step an engine decision names (no attempt), if the job takes task events. */
static int step_of(fold_ctx *c, cb_task_state **t)
{
    uint32_t idx;
    if (get_index(c->data, "task", &idx))
        return CB_EINVAL;
    if (!job_accepts_tasks(c->j) || c->j->cancel_requested || idx >= c->j->total)
        return 0;
    if (!(*t = c->tasks->get(c->tasks->arg, idx)))
        return CB_ENOMEM;
    return 1;
}

static int fold_skipped(fold_ctx *c)
{
    cb_task_state *t;
    int r = step_of(c, &t);
    if (r <= 0)
        return r;
    if (t->status != CB_TASK_PENDING)
        return 0;
    if (set_str(&t->error, json_string_value(json_object_get(c->data, "reason"))) != CB_OK)
        return CB_ENOMEM;
    task_move(c->j, t, CB_TASK_SKIPPED, c->now);
    return 1;
}

static int fold_expanded(fold_ctx *c)
{
    cb_task_state *t;
    uint32_t first, count;
    int r = step_of(c, &t);
    if (r <= 0)
        return r;
    if (get_index(c->data, "first", &first) || get_index(c->data, "count", &count))
        return CB_EINVAL;
    /* Children take the next indices: anything else is not this job's history. */
    if (t->status != CB_TASK_PENDING || first != c->j->total || count > UINT32_MAX - first)
        return 0;
    t->attempt = 1;
    t->first = first;
    t->count = count;
    c->j->total += count;
    task_move(c->j, t, CB_TASK_EXPANDED, c->now);
    return 1;
}

static int fold_suspended(fold_ctx *c)
{
    if (c->j->status != CB_JOB_RUNNING && c->j->status != CB_JOB_SUBMITTED)
        return 0;
    c->j->suspended_from = c->j->status;
    c->j->status = CB_JOB_SUSPENDED;
    return 1;
}

static int fold_resumed(fold_ctx *c)
{
    if (c->j->status != CB_JOB_SUSPENDED)
        return 0;
    c->j->status = c->j->suspended_from;
    c->j->suspended_from = CB_JOB_ABSENT;
    return 1;
}

static int fold_cancel_requested(fold_ctx *c)
{
    if (cb_job_terminal(c->j->status) || c->j->cancel_requested)
        return 0;
    c->j->cancel_requested = true;
    return 1;
}

/* cancelled, succeeded, failed: the end of a job that had not ended. */
static int fold_end(fold_ctx *c, cb_job_status to)
{
    if (cb_job_terminal(c->j->status))
        return 0;
    if (to == CB_JOB_SUCCEEDED) {
        json_t *result = json_incref(json_object_get(c->data, "result"));
        const char *ref = json_string_value(json_object_get(c->data, "result_ref"));
        const json_t *size = json_object_get(c->data, "result_size");
        const char *sha = json_string_value(json_object_get(c->data, "result_sha256"));
        /* a result kept as one object is recorded as a reference to it
         * (the shape of every reference to a value in storage) */
        if (!result && ref && strncmp(ref, "s3://", 5) == 0 && json_is_integer(size) && sha &&
            !(result = json_pack("{s:s, s:O, s:s}", "$cb_ref", ref, "size", size, "sha256", sha)))
            return CB_ENOMEM;
        json_decref(c->j->result);
        c->j->result = result;
    } else if (to == CB_JOB_FAILED) {
        if (set_str(&c->j->error, json_string_value(json_object_get(c->data, "error"))) != CB_OK)
            return CB_ENOMEM;
    }
    c->j->status = to;
    c->j->suspended_from = CB_JOB_ABSENT;
    c->j->finished_ns = c->now;
    return 1;
}

static int fold_cancelled(fold_ctx *c)
{
    return fold_end(c, CB_JOB_CANCELLED);
}

static int fold_job_succeeded(fold_ctx *c)
{
    return fold_end(c, CB_JOB_SUCCEEDED);
}

static int fold_job_failed(fold_ctx *c)
{
    return fold_end(c, CB_JOB_FAILED);
}

/* A page of the partition plan: taken in order before the job starts; a
 * repeated or out-of-order page is ignored. */
static int fold_partitioned(fold_ctx *c)
{
    cb_job_state *j = c->j;
    const json_t *objs = json_object_get(c->data, "objects");
    json_t *p = j->partition, *have;
    uint32_t page;
    bool before_start = j->status == CB_JOB_SUBMITTED ||
                        (j->status == CB_JOB_SUSPENDED && j->suspended_from == CB_JOB_SUBMITTED);
    if (!before_start || (p && json_is_true(json_object_get(p, "done"))))
        return 0;
    if (get_index(c->data, "page", &page) || !json_is_array(objs))
        return CB_EINVAL;
    if (page != (p ? (uint32_t)json_integer_value(json_object_get(p, "pages")) : 0))
        return 0;
    if (!p) {
        if (!(p = json_pack("{s:i, s:b, s:[]}", "pages", 0, "done", 0, "objects")))
            return CB_ENOMEM;
    } else if (p->refcount > 1) { /* shared with a reader: change a copy */
        if (!(p = json_deep_copy(p)))
            return CB_ENOMEM;
        json_decref(j->partition);
    }
    j->partition = p;
    have = json_object_get(p, "objects");
    if (json_array_extend(have, (json_t *)objs) != 0 ||
        json_object_set_new(p, "pages", json_integer((json_int_t)page + 1)) != 0 ||
        json_object_set_new(p, "done",
                            json_boolean(json_is_true(json_object_get(c->data, "last")))) != 0)
        return CB_ENOMEM;
    return 1;
}

static int fold_sla(fold_ctx *c)
{
    c->j->sla_violations++;
    return 1;
}

/* Agreement events (on the tenant's _sla subject, never a job) and
 * recoveries change no job. */
static int fold_nothing(fold_ctx *c)
{
    (void)c;
    return 0;
}

static fold_fn *const fold_table[CB_EV__COUNT] = {
    [CB_EV_JOB_SUBMITTED] = fold_submitted,
    [CB_EV_JOB_REJECTED] = fold_rejected,
    [CB_EV_JOB_STARTED] = fold_started,
    [CB_EV_TASKS_DISPATCHED] = fold_dispatched,
    [CB_EV_TASK_STARTED] = fold_task_started,
    [CB_EV_TASK_SUCCEEDED] = fold_task_succeeded,
    [CB_EV_TASK_FAILED] = fold_failed,
    [CB_EV_TASK_RETRY_SCHEDULED] = fold_retry,
    [CB_EV_TASK_TIMED_OUT] = fold_timed_out,
    [CB_EV_TASK_SKIPPED] = fold_skipped,
    [CB_EV_TASK_EXPANDED] = fold_expanded,
    [CB_EV_JOB_SUSPENDED] = fold_suspended,
    [CB_EV_JOB_RESUMED] = fold_resumed,
    [CB_EV_JOB_CANCEL_REQUESTED] = fold_cancel_requested,
    [CB_EV_JOB_CANCELLED] = fold_cancelled,
    [CB_EV_JOB_SUCCEEDED] = fold_job_succeeded,
    [CB_EV_JOB_FAILED] = fold_job_failed,
    [CB_EV_SLA_VIOLATED] = fold_sla,
    [CB_EV_JOB_PARTITIONED] = fold_partitioned,
    [CB_EV_SLA_CREATED] = fold_nothing,
    [CB_EV_SLA_UPDATED] = fold_nothing,
    [CB_EV_SLA_DELETED] = fold_nothing,
    [CB_EV_SLA_STARTED] = fold_nothing,
    [CB_EV_SLA_STOPPED] = fold_nothing,
    [CB_EV_SLA_TERMINATED] = fold_nothing,
    [CB_EV_SLA_RECOVERED] = fold_nothing,
    [CB_EV_SLA_AT_RISK] = fold_nothing,
    [CB_EV_PARTITION_CLAIMED] = fold_nothing, /* the batch's and the mirror's (fence.h) */
    [CB_EV_TASKS_SUCCEEDED] = fold_nothing,   /* folded as its parts (fold_parts) */
};

/* A cb.tasks.succeeded event: its parts in turn. */
static cb_status fold_parts(cb_job_state *job, const cb_fold_tasks *tasks, const cb_event *ev,
                            uint64_t seq, int *applied)
{
    size_t n = cb_event_outcomes(ev);
    cb_status s = n ? CB_OK : CB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        cb_event one;
        int a = 0;
        cb_status r = cb_fold_apply(job, tasks, cb_event_outcome(ev, i, &one), seq, &a);
        if (r == CB_ENOMEM)
            return r;
        if (r != CB_OK)
            s = r;
        *applied |= a;
    }
    return s;
}

cb_status cb_fold_apply(cb_job_state *job, const cb_fold_tasks *tasks, const cb_event *ev,
                        uint64_t seq, int *applied)
{
    fold_ctx c = {job, tasks, ev, ev->data, ev->time_ns};
    int r;
    bool was_absent = job->status == CB_JOB_ABSENT;

    *applied = 0;
    if (ev->type < 0 || ev->type >= CB_EV__COUNT)
        return CB_EINVAL;
    if (ev->type == CB_EV_TASKS_SUCCEEDED)
        return fold_parts(job, tasks, ev, seq, applied);
    if (was_absent && ev->type != CB_EV_JOB_SUBMITTED && ev->type != CB_EV_JOB_REJECTED)
        return CB_OK; /* nothing to apply to */
    r = fold_table[ev->type](&c);
    if (r < 0 && r != CB_EINVAL)
        return (cb_status)r;
    if (r == 1) {
        job->applied++;
        job->updated_ns = ev->time_ns;
        if (seq)
            job->last_seq = seq;
        if (seq && !job->first_seq)
            job->first_seq = seq;
        *applied = 1;
    } else if (!(was_absent && job->status == CB_JOB_ABSENT)) {
        job->ignored++;
    }
    return r == CB_EINVAL ? CB_EINVAL : CB_OK;
}

/* ---- canonical JSON -------------------------------------------------- */

/* A job's durations (the backups' median), or NULL when it has none. */
static json_t *durations_json(const cb_job_state *j)
{
    json_t *a;
    if (!j->ndurations || !(a = json_array()))
        return NULL;
    for (uint32_t b = 0; b < CB_DUR_BUCKETS; b++)
        json_array_append_new(a, json_integer(j->durations[b]));
    return a;
}

/* A pool's job: its members' counters, or NULL when it has none. */
static json_t *members_json(const cb_job_state *j)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < j->nmembers; i++) {
        const cb_member_use *u = &j->members[i];
        if (json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I}", "backend", u->backend,
                                               "inflight", (json_int_t)u->inflight, "dispatched",
                                               (json_int_t)u->dispatched, "throttled",
                                               (json_int_t)u->throttled))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *cb_job_state_to_json(const cb_job_state *j)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, "
        "s:{s:o, s:o, s:o, s:o}, s:I, s:I, s:O?, s:s?, s:O?, s:s?, s:O*, s:o}",
        "status", cb_job_status_name(j->status), "suspended_from",
        cb_job_status_name(j->suspended_from), "cancel_requested", j->cancel_requested, "tasks",
        "total", (json_int_t)j->total, "inflight", (json_int_t)j->inflight, "succeeded",
        (json_int_t)j->succeeded, "failed", (json_int_t)j->failed, "waiting",
        (json_int_t)j->waiting, "skipped", (json_int_t)j->skipped, "frontier",
        (json_int_t)j->frontier, "retries", (json_int_t)j->retries, "timeouts",
        (json_int_t)j->timeouts, "sla_violations", (json_int_t)j->sla_violations, "memoized",
        (json_int_t)j->memoized, "events", "applied", (json_int_t)j->applied, "ignored",
        (json_int_t)j->ignored, "times", "submitted", cb_json_time(j->submitted_ns), "started",
        cb_json_time(j->started_ns), "finished", cb_json_time(j->finished_ns), "updated",
        cb_json_time(j->updated_ns), "first_seq", (json_int_t)j->first_seq, "last_seq",
        (json_int_t)j->last_seq, "spec", j->spec, "digest", j->digest, "result", j->result, "error",
        j->error, "partition", j->partition, "cost", cb_cost_record_json(&j->cost));
    if (o && j->log_partition &&
        json_object_set_new(o, "log_partition", json_integer(j->log_partition))) {
        json_decref(o);
        return NULL;
    }
    if (o && j->backups &&
        json_object_set_new(json_object_get(o, "tasks"), "backups", json_integer(j->backups))) {
        json_decref(o);
        return NULL;
    }
    if (o && j->ndurations && json_object_set_new(o, "durations", durations_json(j))) {
        json_decref(o);
        return NULL;
    }
    if (o && j->nmembers && json_object_set_new(o, "members", members_json(j))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cb_task_state_to_json(const cb_task_state *t)
{
    json_t *o =
        json_pack("{s:s, s:I, s:o, s:o, s:O?, s:s?}", "status", cb_task_status_name(t->status),
                  "attempt", (json_int_t)t->attempt, "updated", cb_json_time(t->updated_ns), "due",
                  cb_json_time(t->due_ns), "output", t->output, "error", t->error);
    if (o && t->backup && json_object_set_new(o, "backup", json_true())) {
        json_decref(o);
        return NULL;
    }
    if (o && t->member && json_object_set_new(o, "member", json_integer(t->member - 1))) {
        json_decref(o);
        return NULL;
    }
    if (o && t->backup_member &&
        json_object_set_new(o, "backup_member", json_integer(t->backup_member - 1))) {
        json_decref(o);
        return NULL;
    }
    if (o && (t->first || t->count) &&
        json_object_set_new(o, "children",
                            json_pack("{s:I, s:I}", "first", (json_int_t)t->first, "count",
                                      (json_int_t)t->count)) != 0) {
        json_decref(o);
        return NULL;
    }
    if (o && !cb_cost_none(&t->cost) &&
        json_object_set_new(o, "cost", cb_cost_record_json(&t->cost))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A JSON value as compact text with sorted keys, or null. */
static void add_json(cb_buf *out, const json_t *v)
{
    char *s;
    if (!v) {
        cb_buf_adds(out, "null");
    } else if (json_is_integer(v)) {
        cb_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if ((s = cb_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY))) {
        cb_buf_adds(out, s);
        free(s);
    } else {
        out->failed = 1;
    }
}

static void add_time(cb_buf *out, int64_t ns)
{
    char ts[40];
    if (ns)
        cb_buf_printf(out, "\"%s\"", cb_time_format(ns, ts, sizeof ts));
    else
        cb_buf_adds(out, "null");
}

cb_status cb_task_state_text(const cb_task_state *t, cb_buf *out)
{
    json_t *err = NULL;
    cb_buf_printf(out, "{\"attempt\":%u,", t->attempt);
    if (t->backup)
        cb_buf_adds(out, "\"backup\":true,");
    if (t->backup_member)
        cb_buf_printf(out, "\"backup_member\":%u,", t->backup_member - 1u);
    if (t->first || t->count)
        cb_buf_printf(out, "\"children\":{\"count\":%u,\"first\":%u},", t->count, t->first);
    if (!cb_cost_none(&t->cost)) /* as cb_cost_record_json */
        cb_buf_printf(out, "\"cost\":{\"invocations\":%llu,\"mb_ms\":%llu,\"nanos\":%llu},",
                      (unsigned long long)t->cost.invocations, (unsigned long long)t->cost.mb_ms,
                      (unsigned long long)t->cost.nanos);
    cb_buf_adds(out, "\"due\":");
    add_time(out, t->due_ns);
    cb_buf_adds(out, ",\"error\":");
    if (t->error && !(err = json_string(t->error)))
        return CB_ENOMEM; /* as cb_task_state_to_json: not UTF-8, or no memory */
    add_json(out, err);
    json_decref(err);
    if (t->member)
        cb_buf_printf(out, ",\"member\":%u", t->member - 1u);
    cb_buf_adds(out, ",\"output\":");
    add_json(out, t->output);
    cb_buf_printf(out, ",\"status\":\"%s\",\"updated\":", cb_task_status_name(t->status));
    add_time(out, t->updated_ns);
    cb_buf_adds(out, "}");
    return out->failed ? CB_ENOMEM : CB_OK;
}

static int64_t time_of(const json_t *v)
{
    int64_t ns = 0;
    if (json_is_string(v))
        cb_time_parse(json_string_value(v), &ns);
    return ns;
}

static uint32_t u32_of(const json_t *o, const char *k)
{
    return (uint32_t)json_integer_value(json_object_get(o, k));
}

cb_status cb_job_state_from_json(const json_t *o, cb_job_state *out)
{
    json_t *tasks = json_object_get(o, "tasks"), *times = json_object_get(o, "times");
    json_t *events = json_object_get(o, "events");
    int st = parse_name(json_string_value(json_object_get(o, "status")), job_names, 8);
    int sf = parse_name(json_string_value(json_object_get(o, "suspended_from")), job_names, 8);
    const char *digest = json_string_value(json_object_get(o, "digest"));
    const char *error = json_string_value(json_object_get(o, "error"));

    memset(out, 0, sizeof *out);
    if (st < 0 || sf < 0 || !json_is_object(tasks) || !json_is_object(times))
        return CB_EINVAL;
    out->status = (cb_job_status)st;
    out->suspended_from = (cb_job_status)sf;
    out->cancel_requested = json_is_true(json_object_get(o, "cancel_requested"));
    out->total = u32_of(tasks, "total");
    out->inflight = u32_of(tasks, "inflight");
    out->succeeded = u32_of(tasks, "succeeded");
    out->failed = u32_of(tasks, "failed");
    out->waiting = u32_of(tasks, "waiting");
    out->skipped = u32_of(tasks, "skipped");
    out->frontier = u32_of(tasks, "frontier");
    out->retries = u32_of(tasks, "retries");
    out->timeouts = u32_of(tasks, "timeouts");
    out->sla_violations = u32_of(tasks, "sla_violations");
    out->memoized = u32_of(tasks, "memoized");
    out->backups = u32_of(tasks, "backups");
    {
        const json_t *d = json_object_get(o, "durations"), *v;
        size_t i;
        json_array_foreach(d, i, v)
        {
            if (i < CB_DUR_BUCKETS && json_is_integer(v) && json_integer_value(v) > 0) {
                out->durations[i] = (uint32_t)json_integer_value(v);
                out->ndurations += out->durations[i];
            }
        }
    }
    if (cb_cost_parse(json_object_get(o, "cost"), &out->cost) != CB_OK)
        memset(&out->cost, 0, sizeof out->cost); /* a record from before costs were kept */
    {
        const json_t *ms = json_object_get(o, "members"), *m;
        size_t i;
        json_array_foreach(ms, i, m)
        {
            const char *b = json_string_value(json_object_get(m, "backend"));
            cb_member_use *u = &out->members[out->nmembers];
            if (i >= CB_MEMBERS_MAX || !b || strlen(b) >= CB_MEMBER_NAME_MAX)
                break;
            snprintf(u->backend, sizeof u->backend, "%s", b);
            u->inflight = u32_of(m, "inflight");
            u->dispatched = u32_of(m, "dispatched");
            u->throttled = u32_of(m, "throttled");
            out->nmembers++;
        }
    }
    out->applied = (uint64_t)json_integer_value(json_object_get(events, "applied"));
    out->ignored = (uint64_t)json_integer_value(json_object_get(events, "ignored"));
    out->submitted_ns = time_of(json_object_get(times, "submitted"));
    out->started_ns = time_of(json_object_get(times, "started"));
    out->finished_ns = time_of(json_object_get(times, "finished"));
    out->updated_ns = time_of(json_object_get(times, "updated"));
    out->first_seq = (uint64_t)json_integer_value(json_object_get(o, "first_seq"));
    out->last_seq = (uint64_t)json_integer_value(json_object_get(o, "last_seq"));
    out->log_partition = u32_of(o, "log_partition");
    out->spec = json_incref(json_object_get(o, "spec"));
    out->partition = json_incref(json_object_get(o, "partition"));
    out->result = json_incref(json_object_get(o, "result"));
    if ((digest && !(out->digest = cb_strdup(digest))) ||
        (error && !(out->error = cb_strdup(error)))) {
        cb_job_state_cleanup(out);
        return CB_ENOMEM;
    }
    return CB_OK;
}

cb_status cb_task_state_from_json(const json_t *o, cb_task_state *out)
{
    int st = parse_name(json_string_value(json_object_get(o, "status")), task_names, NTASK_NAMES);
    const char *error = json_string_value(json_object_get(o, "error"));

    memset(out, 0, sizeof *out);
    if (st < 0)
        return CB_EINVAL;
    out->status = (cb_task_status)st;
    out->attempt = u32_of(o, "attempt");
    out->updated_ns = time_of(json_object_get(o, "updated"));
    out->due_ns = time_of(json_object_get(o, "due"));
    out->first = u32_of(json_object_get(o, "children"), "first");
    out->count = u32_of(json_object_get(o, "children"), "count");
    out->output = json_incref(json_object_get(o, "output"));
    out->backup = json_is_true(json_object_get(o, "backup"));
    {
        const json_t *m = json_object_get(o, "member"), *bm = json_object_get(o, "backup_member");
        if (json_is_integer(m) && json_integer_value(m) >= 0 &&
            json_integer_value(m) < CB_MEMBERS_MAX)
            out->member = (uint8_t)(json_integer_value(m) + 1);
        if (json_is_integer(bm) && json_integer_value(bm) >= 0 &&
            json_integer_value(bm) < CB_MEMBERS_MAX)
            out->backup_member = (uint8_t)(json_integer_value(bm) + 1);
    }
    if (cb_cost_parse(json_object_get(o, "cost"), &out->cost) != CB_OK)
        memset(&out->cost, 0, sizeof out->cost); /* none: nothing invoked (or an older record) */
    if (error && !(out->error = cb_strdup(error))) {
        cb_task_state_cleanup(out);
        return CB_ENOMEM;
    }
    return CB_OK;
}
