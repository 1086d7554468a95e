/* engine/control.c - the controllers: the job table and the two loops (see
 * control.h; the parts are listed in control_int.h). */
#include "control_int.h"
#include "memo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "views.h"
#include "cb_alloc.h"
#include "cb_map.h"
#include "cb_log.h"
#include "cb_time.h"
#include "cb_event.h"
#include "cb_partition.h"
#include "cb_msg_outcome.h"
#include "mirror.h"

static void visit_cb(evutil_socket_t fd, short what, void *arg);

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

cjob *ctl_job_get(cb_control *c, const char *key)
{
    uint64_t h = cb_hash64(key, strlen(key));
    cjob *j = cb_map_get(&c->jobs, h);
    return j && !strcmp(j->key, key) ? j : NULL;
}

static cjob *job_add(cb_control *c, const char *key)
{
    const char *slash = strchr(key, '/');
    cjob *j;
    if (!slash || strlen(key) >= CTL_KEY_MAX || (size_t)(slash - key) > CB_NAME_MAX)
        return NULL;
    if (!(j = cb_calloc(1, sizeof *j)))
        return NULL;
    snprintf(j->key, sizeof j->key, "%s", key);
    snprintf(j->tenant, sizeof j->tenant, "%.*s", (int)(slash - key), key);
    snprintf(j->job, sizeof j->job, "%s", slash + 1);
    j->hash = cb_hash64(key, strlen(key));
    j->gen = ++c->jobs_made;
    j->c = c;
    {
        const cb_mirror_job *mj = cb_mirror_get(c->mirror, key);
        j->log_part = mj ? mj->js.log_partition : 0; /* visits keep it from the mirror */
    }
    if (!(j->wake = evtimer_new(c->base, visit_cb, j)) || ctl_tenant_add(c, j) != 0 ||
        cb_map_put(&c->jobs, j->hash, j) != CB_OK) {
        if (j->wake)
            event_free(j->wake);
        ctl_tenant_remove(c, j);
        free(j);
        return NULL;
    }
    c->stats.jobs++;
    return j;
}

static void job_free(cjob *j)
{
    ctl_partition_forget(j);
    if (j->have_flow)
        cb_flow_cleanup(&j->flow);
    free(j->step_policy);
    json_decref(j->mfns);
    event_free(j->wake);
    free(j);
}

void ctl_job_forget(cb_control *c, cjob *j)
{
    ctl_shaping_forget(j);
    ctl_tenant_remove(c, j);
    cb_map_take(&c->jobs, j->hash);
    c->stats.jobs--;
    job_free(j);
}

/* Visit `j` after delay_ms (0: on the next loop turn). An earlier request wins. */
void ctl_job_wake(cjob *j, int64_t delay_ms)
{
    struct timeval tv = tv_ms(delay_ms);
    int64_t at = cb_time_mono_ns() + delay_ms * 1000000;
    if (evtimer_pending(j->wake, NULL) && j->wake_at_ns <= at)
        return;
    j->wake_at_ns = at;
    evtimer_add(j->wake, &tv);
}

void cb_control_opts_init(cb_control_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reconcile_ms = 1000;
    o->await_ms = 2000;
    o->progress_ms = 200;
    o->inline_result_max = 256 * 1024;
    o->aging_ms = 10000;
    o->memo_ttl_s = CB_MEMO_TTL_S;
    o->partitions = 1;
    o->beat_ms = 1000;
    cb_policy_defaults_init(&o->policy);
}

const cb_control_stats *cb_control_stats_get(cb_control *c)
{
    c->stats.log_seq = 0; /* the partitions' positions together */
    for (unsigned k = 0; k < c->o.partitions; k++)
        c->stats.log_seq += cb_mirror_seq(c->mirror, k);
    return &c->stats;
}

int cb_control_drives(const cb_control *c, unsigned k)
{
    return k < c->o.partitions && c->parts[k].owned;
}

const char *cb_control_owner(const cb_control *c, unsigned k)
{
    return c->claims && k < c->o.partitions ? cb_owners_owner(&c->owners, k, c->o.partitions)
                                            : NULL;
}

const char *cb_control_name(const cb_control *c)
{
    return c->claims ? c->owners.self : NULL;
}

void cb_control_touch(cb_control *c, const char *key)
{
    cjob *j = ctl_job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    ctl_job_wake(j, 0);
}

void cb_control_hold(cb_control *c, const char *key, int held)
{
    cjob *j = ctl_job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    j->held = held;
    ctl_job_wake(j, 0);
}

const char *cb_control_ending(cb_control *c, const char *key)
{
    cjob *j = ctl_job_get(c, key);
    return j && j->ending ? j->end_status : NULL;
}

unsigned cb_control_open_jobs(cb_control *c, const char *tenant)
{
    for (const tenant_state *t = c->tenants; t; t = t->next)
        if (!strcmp(t->tenant, tenant))
            return t->jobs;
    return 0;
}

int cb_control_brief_of(cb_control *c, const char *key, cb_control_brief *out)
{
    cb_mirror_job *mj;
    memset(out, 0, sizeof *out);
    if ((mj = cb_mirror_get(c->mirror, key))) {
        if (mj->js.log_partition >= CB_PARTITIONS_MAX || !c->parts[mj->js.log_partition].live)
            return 0;
        out->status = mj->js.status;
        out->cancel_requested = mj->js.cancel_requested;
        out->applied = mj->js.applied;
        out->log_partition = mj->js.log_partition;
        out->has_partition = true;
        return 1;
    }
    if (!c->live)
        return 0;
    out->status = cb_mirror_status(c->mirror, key);
    return out->status != CB_JOB_ABSENT;
}

static void visit_cb(evutil_socket_t fd, short what, void *arg)
{
    cjob *j = arg;
    (void)fd;
    (void)what;
    ctl_visit(j->c, j);
}

static void touch_each(cb_mirror_job *mj, void *arg)
{
    cb_control_touch(arg, mj->key);
}

static void start_reading(ctl_part *pt);
static void read_later(cb_control *c, ctl_part *pt);
static int all_live(const cb_control *c);

static void read_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_control *c = arg;
    (void)fd;
    (void)what;
    if (c->reload) {
        if (ctl_mirror_reload(c) != CB_OK)
            read_later(c, NULL);
        return;
    }
    for (unsigned k = 0; k < c->o.partitions; k++)
        if (c->parts[k].owned && !c->parts[k].reader)
            start_reading(&c->parts[k]);
}

/* Read pt's log again in a second (NULL: reload everything then). */
static void read_later(cb_control *c, ctl_part *pt)
{
    struct timeval tv = tv_ms(1000);
    if (pt) {
        cb_reader_close(pt->reader);
        pt->reader = NULL;
    }
    evtimer_add(c->read_retry, &tv);
}

void ctl_part_check_live(cb_control *c, ctl_part *pt)
{
    if (pt->live || !pt->owned || !pt->caught_up || !pt->claimed)
        return;
    pt->live = 1; /* caught up with the log once (and claimed): decisions may start */
    c->live = all_live(c);
    if (c->o.partitions > 1)
        CB_LOG_INF("control", "folded the log of partition %u to position %llu: %zu jobs in memory",
                   pt->k, (unsigned long long)cb_mirror_seq(c->mirror, pt->k),
                   cb_mirror_count(c->mirror));
    else
        CB_LOG_INF("control", "folded the log to position %llu: %zu jobs to drive",
                   (unsigned long long)cb_mirror_seq(c->mirror, pt->k), cb_mirror_count(c->mirror));
    cb_mirror_each(c->mirror, touch_each, c);
}

typedef struct of_part {
    unsigned k;
    cjob *list[256];
    size_t n;
    int more;
} of_part;

static void collect_jobs(uint64_t h, void *val, void *arg)
{
    cjob *j = val;
    of_part *o = arg;
    (void)h;
    if (j->log_part != o->k)
        return;
    if (o->n < sizeof o->list / sizeof *o->list)
        o->list[o->n++] = j;
    else
        o->more = 1;
}

void ctl_part_drop(cb_control *c, ctl_part *pt)
{
    of_part o;
    cb_reader_close(pt->reader);
    pt->reader = NULL;
    pt->owned = pt->caught_up = pt->claimed = pt->live = 0;
    do { /* its jobs: what they still wait for finds them gone */
        o.k = pt->k;
        o.n = 0;
        o.more = 0;
        cb_map_each(&c->jobs, collect_jobs, &o);
        for (size_t i = 0; i < o.n; i++)
            ctl_job_forget(c, o.list[i]);
    } while (o.more);
    cb_mirror_forget_partition(c->mirror, pt->k);
    c->live = all_live(c);
    ctl_shaping_reshare(c);
}

/* Whether every partition it drives has caught up once. */
static int all_live(const cb_control *c)
{
    for (unsigned k = 0; k < c->o.partitions; k++)
        if (c->parts[k].owned && !c->parts[k].live)
            return 0;
    return 1;
}

static void close_readers(cb_control *c)
{
    for (unsigned k = 0; k < c->o.partitions; k++) {
        cb_reader_close(c->parts[k].reader);
        c->parts[k].reader = NULL;
    }
}

/* Whether the job's outputs matter only at its end (a call, map or
 * map_reduce: its result, the reduce's input), so that they can stay text
 * until then (cb_mirror_keep_output); a DAG's steps read them as it goes. */
static bool outputs_wait(const cb_mirror_job *mj)
{
    const char *kind = json_string_value(json_object_get(mj->js.spec, "kind"));
    return kind && strcmp(kind, "dag") != 0;
}

/* Where the outputs of a task outcome lie in its message: one for
 * cb.task.succeeded, one per part for cb.tasks.succeeded (in order). */
typedef struct out_spans {
    size_t n;                         /* parts */
    size_t off[CB_OUTCOME_BATCH_MAX]; /* each output's offset in the message */
    size_t len[CB_OUTCOME_BATCH_MAX]; /* its length; 0: not left out (short) */
} out_spans;

/* Whether the event in buf is a task's success (single or shared): only
 * those have outputs to leave out (a job's own `data.output` stays). */
static bool is_success(const char *buf, size_t len)
{
    cb_event_type t = cb_event_peek_type(buf, len);
    return t == CB_EV_TASK_SUCCEEDED || t == CB_EV_TASKS_SUCCEEDED;
}

#define SHORT_OUTPUT 8 /* bytes: parsed at once, not worth keeping as text */

/* A task outcome of such a job, with its outputs left out: a copy of the
 * message with `null` in their place (*cut, to free; its length in *len) and
 * where they were in *sp. NULL when there is none to leave out. */
static char *without_output(cb_control *c, const cb_broker_msg *m, out_spans *sp, size_t *len)
{
    char key[CTL_KEY_MAX], *cut, *to;
    const char *data = m->data;
    const cb_mirror_job *mj;
    cb_log_subject ls;
    size_t at = 0, n = 0, from = 0, keep = 0;
    int kn;
    if (!cb_partition_parse(m->subject, &ls))
        return NULL;
    kn = snprintf(key, sizeof key, "%.*s/%s", (int)ls.tenant_len, ls.tenant, ls.job);
    if (kn < 0 || (size_t)kn >= sizeof key)
        return NULL;
    if (!(mj = cb_mirror_get(c->mirror, key)) || !outputs_wait(mj) || !is_success(data, m->len))
        return NULL;
    if (cb_json_member_span(data, m->len, "data", "output", &sp->off[0], &sp->len[0]))
        sp->n = 1;
    else if (cb_json_member_span(data, m->len, "data", "tasks", &at, &n))
        sp->n = cb_json_each_member_span(data, m->len, at, "output", sp->off, sp->len,
                                         CB_OUTCOME_BATCH_MAX);
    else
        return NULL;
    for (size_t i = 0; i < sp->n; i++) {
        if (sp->len[i] <= SHORT_OUTPUT)
            sp->len[i] = 0;
        keep += sp->len[i];
    }
    if (!keep || !(cut = cb_malloc(m->len - keep + 4 * sp->n)))
        return NULL;
    to = cut;
    for (size_t i = 0; i < sp->n; i++) {
        if (!sp->len[i])
            continue;
        memcpy(to, data + from, sp->off[i] - from);
        to += sp->off[i] - from;
        memcpy(to, "null", 4);
        to += 4;
        from = sp->off[i] + sp->len[i];
    }
    memcpy(to, data + from, m->len - from);
    *len = (size_t)(to - cut) + m->len - from;
    return cut;
}

/* A cached task's success that j's mirror just folded: its output is
 * remembered under its memo key (memo.h), as the mirror holds it. */
static void remember_memo(cb_control *c, cb_mirror_job *j, const cb_event *e)
{
    const char *memo = json_string_value(json_object_get(e->data, "memo")), *text;
    uint32_t task = (uint32_t)json_integer_value(json_object_get(e->data, "task"));
    const cb_task_state *t;
    char *dumped = NULL;
    size_t n = 0;
    if (!memo || !(t = cb_task_list_get(&j->tasks, task)) || t->status != CB_TASK_SUCCEEDED)
        return;
    if (!(text = cb_mirror_kept_output(j, task, &n))) {
        if (!t->output || !(dumped = cb_json_dumps(t->output, JSON_COMPACT | JSON_ENCODE_ANY)))
            return;
        text = dumped;
        n = strlen(dumped);
    }
    if (cb_memo_put(c->memo, e->tenant, memo, e->job, task, e->time_ns, text, n) == CB_ENOMEM)
        c->stats.errors++; /* the store still has it once the projector folds it */
    free(dumped);
}

/* Fold one event into the mirror and wake its job. */
static void read_cb(const cb_broker_msg *m, cb_status s, void *ctx)
{
    ctl_part *pt = ctx;
    cb_control *c = pt->c;
    cb_mirror_job *mj = NULL;
    cb_event ev;
    out_spans sp;
    char err[256], *cut;
    size_t len = m ? m->len : 0, parts = 0;

    if (!m) {
        if (s == CB_OK) {
            pt->caught_up = 1; /* decisions may start once claimed too */
            ctl_part_check_live(c, pt);
            return;
        }
        CB_LOG_WRN("control", "reading the log of partition %u failed: %s; retrying", pt->k,
                   cb_strerror(s));
        read_later(c, pt);
        return;
    }
    if (m->seq && m->seq <= cb_mirror_seq(c->mirror, pt->k))
        return; /* folded already (a resumed read can repeat the edge) */
    if (!(cut = without_output(c, m, &sp, &len)))
        sp.n = 0; /* nothing left out: the outputs are parsed with the rest */
    s = cb_event_decode(cut ? cut : m->data, len, &ev, err, sizeof err);
    free(cut);
    if (s == CB_OK && !(parts = cb_event_outcomes(&ev))) {
        cb_event_cleanup(&ev);
        s = CB_EINVAL; /* a batch without parts: nothing of its job changes */
    }
    if (s != CB_OK) {
        if (m->seq)
            cb_mirror_set_seq(c->mirror, pt->k, m->seq);
        if (s != CB_ENOMEM)
            return; /* the projector logs it: nothing of a job it names changes */
        CB_LOG_ERR("control", "out of memory decoding entry %llu", (unsigned long long)m->seq);
        c->stats.errors++;
        return;
    }
    for (size_t i = 0; i < parts && s == CB_OK; i++) { /* a batch's successes one by one */
        cb_event one;
        const cb_event *e = cb_event_outcome(&ev, i, &one);
        int applied = 0;
        s = cb_mirror_apply(c->mirror, pt->k, e, m->seq, &mj, &applied);
        if (s == CB_OK && mj && applied && e->type == CB_EV_TASK_SUCCEEDED && i < sp.n && sp.len[i])
            s = cb_mirror_keep_output(
                mj, (uint32_t)json_integer_value(json_object_get(e->data, "task")),
                (const char *)m->data + sp.off[i], sp.len[i]);
        if (s == CB_OK && mj && applied && e->type == CB_EV_TASK_SUCCEEDED)
            remember_memo(c, mj, e);
    }
    if (s == CB_OK && mj && ev.type == CB_EV_JOB_RESUMED) {
        cjob *held = ctl_job_get(c, mj->key); /* resumed, whichever engine held it */
        if (held)
            held->held = 0;
    }
    if (s == CB_OK && ev.type == CB_EV_PARTITION_CLAIMED) {
        cb_event_cleanup(&ev);
        ctl_claim_folded(c, pt); /* may close this reader */
        return;
    }
    cb_event_cleanup(&ev);
    if (s != CB_OK) {
        /* the mirror may be partly updated: start again from the store */
        CB_LOG_ERR("control", "folding entry %llu: %s; reloading the jobs from the store",
                   (unsigned long long)m->seq, cb_strerror(s));
        c->stats.errors++;
        if (ctl_mirror_reload(c) != CB_OK)
            read_later(c, NULL); /* and reload again then */
        return;
    }
    if (mj && pt->live)
        cb_control_touch(c, mj->key);
    else if (mj && cb_job_terminal(mj->js.status))
        cb_mirror_drop(c->mirror, mj->key); /* catching up: an ended job needs nothing more */
}

static void start_reading(ctl_part *pt)
{
    cb_control *c = pt->c;
    cb_read_opts ro;
    cb_status s;
    uint64_t seq = cb_mirror_seq(c->mirror, pt->k);
    cb_read_opts_init(&ro);
    ro.partition = pt->k;
    if (seq) {
        ro.from = CB_READ_SEQ;
        ro.seq = seq + 1;
    }
    if ((s = cb_broker_read(c->b, &ro, read_cb, pt, &pt->reader)) != CB_OK) {
        CB_LOG_WRN("control", "cannot read the log of partition %u: %s; retrying", pt->k,
                   cb_strerror(s));
        pt->reader = NULL;
        read_later(c, pt);
    }
}

static int snap_job(const char *key, cb_job_state *js, void *arg)
{
    cb_control *c = arg;
    snprintf(c->loading, sizeof c->loading, "%s", key);
    return cb_mirror_load_job(c->mirror, key, js) != CB_OK;
}

static int snap_task(uint32_t index, const cb_task_state *t, void *arg)
{
    cb_control *c = arg;
    return cb_mirror_load_task(c->mirror, c->loading, index, t) != CB_OK;
}

/* A submission of a job the mirror does not hold is new unless the store has
 * the job from an earlier log position (a repeat of a job that ended before
 * the snapshot; the store may be ahead of the mirror, when it has it from
 * this very position). A store that does not know where the job began:
 * ended there means a repeat. */
static bool seen_before(const char *key, uint64_t seq, void *arg)
{
    cb_control *c = arg;
    cb_job_state js;
    bool seen;
    memset(&js, 0, sizeof js);
    if (cb_view_job(c->st, key, &js) != CB_OK)
        return false;
    seen = js.first_seq && seq ? js.first_seq < seq : cb_job_terminal(js.status);
    cb_job_state_cleanup(&js);
    return seen;
}

/* Partition pt's unfinished jobs from the store into the mirror, with the
 * position and the claim they are at. */
static cb_status load_snapshot(cb_control *c, ctl_part *pt)
{
    uint64_t seq = 0;
    size_t before = cb_mirror_count(c->mirror);
    cb_fence fence;
    cb_status s = cb_view_active_snapshot(c->st, pt->k, snap_job, snap_task, c, &seq, &fence);
    if (s != CB_OK) {
        CB_LOG_ERR("control", "cannot load the unfinished jobs: %s", cb_strerror(s));
        return s;
    }
    cb_mirror_set_seq(c->mirror, pt->k, seq);
    cb_mirror_set_fence(c->mirror, pt->k, &fence);
    /* without a name nothing is claimed; with one, the store may have its
     * claim folded already (the log from there on will not bring it) */
    pt->claimed = !c->claims || (pt->claim[0] && !strcmp(fence.claim, pt->claim));
    if (c->o.partitions > 1)
        CB_LOG_INF("control",
                   "partition %u: %zu unfinished jobs at position %llu; folding its log from there",
                   pt->k, cb_mirror_count(c->mirror) - before, (unsigned long long)seq);
    else
        CB_LOG_INF("control",
                   "%zu unfinished jobs at log position %llu; folding the log from there",
                   cb_mirror_count(c->mirror), (unsigned long long)seq);
    return CB_OK;
}

/* The mirror from the store's unfinished jobs, then the log from there on. */
cb_status ctl_mirror_reload(cb_control *c)
{
    cb_mirror *m = cb_mirror_new();
    cb_status s;
    if (!m)
        return CB_ENOMEM;
    close_readers(c);
    cb_mirror_free(c->mirror);
    c->mirror = m;
    cb_mirror_set_seen(m, seen_before, c);
    c->live = 0; /* nothing is decided until the mirror has caught up again */
    c->reload = 1;
    for (unsigned k = 0; k < c->o.partitions; k++) {
        c->parts[k].live = c->parts[k].caught_up = 0;
        if (c->parts[k].owned && (s = load_snapshot(c, &c->parts[k])) != CB_OK)
            return s;
    }
    c->reload = 0;
    for (unsigned k = 0; k < c->o.partitions; k++)
        if (c->parts[k].owned)
            start_reading(&c->parts[k]);
    return CB_OK;
}

cb_status ctl_part_load(cb_control *c, ctl_part *pt)
{
    cb_status s;
    pt->live = pt->caught_up = 0;
    if ((s = load_snapshot(c, pt)) != CB_OK)
        return s;
    start_reading(pt);
    return CB_OK;
}

static void reconcile_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_control *c = arg;
    (void)fd;
    (void)what;
    if (c->live)
        cb_mirror_each(c->mirror, touch_each, c);
}

cb_status cb_control_start(struct event_base *base, cb_broker *b, cb_store *st,
                           const cb_config *reg, const cb_control_opts *o, cb_control **out)
{
    cb_control *c = cb_calloc(1, sizeof *c);
    struct timeval tv;
    cb_status s = CB_ENOMEM;
    if (!c)
        return CB_ENOMEM;
    c->base = base;
    c->b = b;
    c->st = st;
    c->reg = reg;
    if (o)
        c->o = *o;
    else
        cb_control_opts_init(&c->o);
    cb_map_init(&c->jobs);
    if (c->o.partitions < 1 || c->o.partitions > CB_PARTITIONS_MAX)
        c->o.partitions = 1;
    c->o.owned &= cb_partition_set_all(c->o.partitions);
    if (!c->o.owned)
        c->o.owned = cb_partition_set_all(c->o.partitions);
    if (c->o.name) { /* the partitions are claimed as the live engines agree (claim.c) */
        if (c->o.beat_ms <= 0)
            c->o.beat_ms = 1000;
        if (cb_owners_init(&c->owners, c->o.name, 3 * c->o.beat_ms * 1000000) != 0) {
            free(c);
            return CB_EINVAL;
        }
        c->claims = 1;
        c->o.owned = 0;
    }
    for (unsigned k = 0; k < c->o.partitions; k++)
        c->parts[k] = (ctl_part){.c = c, .k = k, .owned = (c->o.owned >> k & 1) != 0};
    if (!(c->memo = cb_memo_new(CB_MEMO_RECENT_MAX, CB_MEMO_RECENT_BYTES)) ||
        !(c->reconcile = event_new(base, -1, EV_PERSIST, reconcile_cb, c))) {
        cb_memo_free(c->memo);
        free(c);
        return CB_ENOMEM;
    }
    if (!(c->read_retry = evtimer_new(base, read_retry_cb, c)) ||
        (s = ctl_mirror_reload(c)) != CB_OK || (c->claims && (s = ctl_claims_start(c)) != CB_OK)) {
        ctl_claims_stop(c);
        if (c->read_retry)
            event_free(c->read_retry);
        event_free(c->reconcile);
        close_readers(c);
        cb_mirror_free(c->mirror);
        cb_memo_free(c->memo);
        free(c);
        return s;
    }
    tv = tv_ms(c->o.reconcile_ms);
    evtimer_add(c->reconcile, &tv);
    *out = c;
    return CB_OK;
}

static void stop_job(uint64_t k, void *val, void *arg)
{
    cjob *j = val;
    (void)k;
    (void)arg;
    evtimer_del(j->wake);
}

static void free_job(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    job_free(val);
}

void ctl_release(cb_control *c)
{
    cb_map_each(&c->jobs, free_job, NULL);
    cb_map_cleanup(&c->jobs);
    cb_mirror_free(c->mirror);
    cb_memo_free(c->memo);
    while (c->backends) {
        backend_state *bs = c->backends;
        c->backends = bs->next;
        while (bs->tenants) {
            tenant_use *u = bs->tenants;
            bs->tenants = u->next;
            free(u);
        }
        free(bs);
    }
    while (c->tenants) { /* those of the jobs still in memory at the stop */
        tenant_state *ts = c->tenants;
        c->tenants = ts->next;
        free(ts);
    }
    free(c);
}

void cb_control_free(cb_control *c)
{
    if (!c)
        return;
    ctl_claims_stop(c);
    close_readers(c);
    event_free(c->read_retry);
    c->read_retry = NULL;
    event_free(c->reconcile);
    c->reconcile = NULL;
    /* Job timers stop now; confirmations still due find c->stopped. */
    c->stopped = 1;
    cb_map_each(&c->jobs, stop_job, NULL);
    if (c->nops == 0)
        ctl_release(c);
}
