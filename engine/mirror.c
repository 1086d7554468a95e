/* engine/mirror.c - the controller's in-memory fold of its jobs (see mirror.h). */
#include "mirror.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_map.h"
#include "cb_partition.h"

struct cb_mirror {
    cb_map jobs;                       /* hash of key -> cb_mirror_job */
    uint64_t seq[CB_PARTITIONS_MAX];   /* each partition's last position */
    cb_fence fence[CB_PARTITIONS_MAX]; /* each partition's last claim (fence.h) */
    /* records an event creates, kept apart during the fold so that the
     * pointers handed to it stay valid; merged into the job afterwards */
    uint32_t *new_index;
    cb_task_state *new_tasks;
    size_t nnew, new_cap;
    int new_sorted;
    cb_mirror_job *folding;
    cb_mirror_seen_fn *seen;
    void *seen_arg;
    /* the last dropped jobs and how they ended: a ring, and a map from a
     * job's hash to its slot + 1 */
    struct tomb {
        uint64_t hash;
        cb_job_status status;
    } tomb[CB_MIRROR_TOMBSTONES];
    size_t tomb_next;
    cb_map tombs;
};

cb_mirror *cb_mirror_new(void)
{
    cb_mirror *m = cb_calloc(1, sizeof *m);
    if (m) {
        cb_map_init(&m->jobs);
        cb_map_init(&m->tombs);
    }
    return m;
}

static void free_kept(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    free(val);
}

static void job_free(cb_mirror_job *j)
{
    cb_map_each(&j->kept, free_kept, NULL);
    cb_map_cleanup(&j->kept);
    cb_job_state_cleanup(&j->js);
    cb_task_list_cleanup(&j->tasks);
    free(j);
}

static void free_each(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    job_free(val);
}

void cb_mirror_free(cb_mirror *m)
{
    if (!m)
        return;
    cb_map_each(&m->jobs, free_each, NULL);
    cb_map_cleanup(&m->jobs);
    cb_map_cleanup(&m->tombs);
    free(m->new_index);
    free(m->new_tasks);
    free(m);
}

void cb_mirror_set_seen(cb_mirror *m, cb_mirror_seen_fn *fn, void *arg)
{
    m->seen = fn;
    m->seen_arg = arg;
}

uint64_t cb_mirror_seq(const cb_mirror *m, unsigned partition)
{
    return partition < CB_PARTITIONS_MAX ? m->seq[partition] : 0;
}

static void job_remove(cb_mirror *m, cb_mirror_job *j);

const cb_fence *cb_mirror_fence(const cb_mirror *m, unsigned partition)
{
    return partition < CB_PARTITIONS_MAX ? &m->fence[partition] : NULL;
}

void cb_mirror_set_fence(cb_mirror *m, unsigned partition, const cb_fence *f)
{
    if (partition < CB_PARTITIONS_MAX)
        m->fence[partition] = *f;
}

typedef struct of_part {
    unsigned k;
    cb_mirror_job *list; /* linked through `gone` */
} of_part;

static void collect_part(uint64_t h, void *val, void *arg)
{
    cb_mirror_job *j = val;
    of_part *o = arg;
    (void)h;
    if (j->js.log_partition == o->k) {
        j->gone = o->list;
        o->list = j;
    }
}

void cb_mirror_forget_partition(cb_mirror *m, unsigned partition)
{
    of_part o = {partition, NULL};
    if (partition >= CB_PARTITIONS_MAX)
        return;
    cb_map_each(&m->jobs, collect_part, &o);
    while (o.list) {
        cb_mirror_job *j = o.list;
        o.list = j->gone;
        job_remove(m, j);
    }
    m->seq[partition] = 0;
    memset(&m->fence[partition], 0, sizeof m->fence[partition]);
}

void cb_mirror_set_seq(cb_mirror *m, unsigned partition, uint64_t seq)
{
    if (partition < CB_PARTITIONS_MAX)
        m->seq[partition] = seq;
}

size_t cb_mirror_count(const cb_mirror *m)
{
    return m->jobs.len;
}

cb_mirror_job *cb_mirror_get(cb_mirror *m, const char *key)
{
    cb_mirror_job *j = cb_map_get(&m->jobs, cb_hash64(key, strlen(key)));
    return j && !strcmp(j->key, key) ? j : NULL;
}

static cb_mirror_job *job_new(cb_mirror *m, const char *key)
{
    cb_mirror_job *j;
    size_t n = strlen(key);
    if (n >= CB_MIRROR_KEY_MAX || !(j = cb_calloc(1, sizeof *j)))
        return NULL;
    memcpy(j->key, key, n + 1);
    cb_map_init(&j->kept);
    if (cb_map_put(&m->jobs, cb_hash64(key, n), j) != CB_OK) {
        free(j);
        return NULL;
    }
    return j;
}

static void job_remove(cb_mirror *m, cb_mirror_job *j)
{
    cb_map_take(&m->jobs, cb_hash64(j->key, strlen(j->key)));
    job_free(j);
}

static const struct tomb *tomb_of(const cb_mirror *m, uint64_t h)
{
    uintptr_t slot = (uintptr_t)cb_map_get(&m->tombs, h);
    return slot ? &m->tomb[slot - 1] : NULL;
}

static void tomb_add(cb_mirror *m, uint64_t h, cb_job_status status)
{
    size_t slot = m->tomb_next++ % CB_MIRROR_TOMBSTONES;
    struct tomb *t = &m->tomb[slot];
    if (t->hash && (uintptr_t)cb_map_get(&m->tombs, t->hash) == slot + 1)
        cb_map_take(&m->tombs, t->hash); /* the oldest leaves the ring */
    t->hash = h;
    t->status = status;
    if (cb_map_put(&m->tombs, h, (void *)(uintptr_t)(slot + 1)) != CB_OK)
        t->hash = 0; /* out of memory: only forgotten sooner */
}

void cb_mirror_drop(cb_mirror *m, const char *key)
{
    cb_mirror_job *j = cb_mirror_get(m, key);
    if (!j)
        return;
    tomb_add(m, cb_hash64(key, strlen(key)), j->js.status);
    job_remove(m, j);
}

cb_job_status cb_mirror_status(cb_mirror *m, const char *key)
{
    cb_mirror_job *j = cb_mirror_get(m, key);
    const struct tomb *t;
    if (j)
        return j->js.status;
    t = tomb_of(m, cb_hash64(key, strlen(key)));
    return t ? t->status : CB_JOB_ABSENT;
}

typedef struct each_ctx {
    void (*fn)(cb_mirror_job *j, void *arg);
    void *arg;
} each_ctx;

static void each_job(uint64_t k, void *val, void *arg)
{
    each_ctx *e = arg;
    (void)k;
    e->fn(val, e->arg);
}

void cb_mirror_each(cb_mirror *m, void (*fn)(cb_mirror_job *j, void *arg), void *arg)
{
    each_ctx e = {fn, arg};
    cb_map_each(&m->jobs, each_job, &e);
}

cb_status cb_mirror_load_job(cb_mirror *m, const char *key, cb_job_state *js)
{
    cb_mirror_job *j = cb_mirror_get(m, key);
    if (j)
        job_remove(m, j);
    if (!(j = job_new(m, key)))
        return strlen(key) >= CB_MIRROR_KEY_MAX ? CB_EINVAL : CB_ENOMEM;
    j->js = *js;
    memset(js, 0, sizeof *js);
    return CB_OK;
}

cb_status cb_mirror_load_task(cb_mirror *m, const char *key, uint32_t index, const cb_task_state *t)
{
    cb_mirror_job *j = cb_mirror_get(m, key);
    cb_task_list *l;
    if (!j)
        return CB_EINVAL;
    l = &j->tasks;
    if (l->n > 0 && l->index[l->n - 1] >= index)
        return CB_EINVAL;
    if (cb_task_list_add(index, t, l) != 0)
        return CB_ENOMEM;
    return CB_OK;
}

/* ---- the fold's access to a job's records -------------------------------- */

static cb_task_state *new_find(cb_mirror *m, uint32_t index)
{
    if (m->new_sorted) {
        size_t lo = 0, hi = m->nnew;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (m->new_index[mid] < index)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < m->nnew && m->new_index[lo] == index ? &m->new_tasks[lo] : NULL;
    }
    for (size_t i = 0; i < m->nnew; i++)
        if (m->new_index[i] == index)
            return &m->new_tasks[i];
    return NULL;
}

/* A record never moves while the fold holds it: existing ones stay where
 * they are (nothing is inserted before the fold returns), new ones go to the
 * side array reserved for the event. */
static cb_task_state *get_rec(void *arg, uint32_t index)
{
    cb_mirror *m = arg;
    cb_mirror_job *j = m->folding;
    cb_task_view v = cb_task_list_view(&j->tasks);
    cb_task_state *t = (cb_task_state *)cb_task_view_get(&v, index);
    if (t || (t = new_find(m, index)))
        return t;
    if (m->nnew == m->new_cap)
        return NULL; /* more than reserved: cannot happen (one record per task named) */
    if (m->nnew > 0 && m->new_index[m->nnew - 1] > index)
        m->new_sorted = 0;
    m->new_index[m->nnew] = index;
    t = &m->new_tasks[m->nnew++];
    memset(t, 0, sizeof *t);
    return t;
}

static cb_status reserve_new(cb_mirror *m, size_t n)
{
    if (n > m->new_cap) {
        uint32_t *ix = cb_realloc(m->new_index, n * sizeof *ix);
        cb_task_state *ts;
        if (!ix)
            return CB_ENOMEM;
        m->new_index = ix;
        if (!(ts = cb_realloc(m->new_tasks, n * sizeof *ts)))
            return CB_ENOMEM;
        m->new_tasks = ts;
        m->new_cap = n;
    }
    m->nnew = 0;
    m->new_sorted = 1;
    return CB_OK;
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Move the new records (never PENDING ones: the fold left them untouched)
 * into the job's list, keeping it in index order. */
static cb_status merge_into(cb_mirror *m, cb_mirror_job *j);

static cb_status merge_new(cb_mirror *m, cb_mirror_job *j)
{
    cb_status s = merge_into(m, j);
    if (s != CB_OK) { /* the records not merged are lost: the caller rebuilds */
        for (size_t i = 0; i < m->nnew; i++)
            cb_task_state_cleanup(&m->new_tasks[i]);
    }
    m->nnew = 0;
    return s;
}

static cb_status merge_into(cb_mirror *m, cb_mirror_job *j)
{
    cb_task_list *l = &j->tasks;
    size_t keep = 0, need;
    for (size_t i = 0; i < m->nnew; i++) {
        if (m->new_tasks[i].status == CB_TASK_PENDING) {
            cb_task_state_cleanup(&m->new_tasks[i]);
            continue;
        }
        m->new_index[keep] = m->new_index[i];
        m->new_tasks[keep++] = m->new_tasks[i];
    }
    m->nnew = keep;
    if (keep == 0)
        return CB_OK;
    if (!m->new_sorted) { /* rare (a plan's retries before new tasks): sort by index */
        struct pair {
            uint32_t index;
            cb_task_state t;
        } *p = cb_malloc(keep * sizeof *p);
        if (!p)
            return CB_ENOMEM;
        for (size_t i = 0; i < keep; i++)
            p[i] = (struct pair){m->new_index[i], m->new_tasks[i]};
        qsort(p, keep, sizeof *p, by_index);
        for (size_t i = 0; i < keep; i++) {
            m->new_index[i] = p[i].index;
            m->new_tasks[i] = p[i].t;
        }
        free(p);
    }
    need = l->n + keep;
    if (cb_task_list_reserve(l, need) != CB_OK)
        return CB_ENOMEM;
    /* merge from the back: both runs are ascending */
    size_t a = l->n, b = keep, out = need;
    while (b > 0) {
        if (a > 0 && l->index[a - 1] > m->new_index[b - 1]) {
            l->index[--out] = l->index[--a];
            l->tasks[out] = l->tasks[a];
        } else {
            l->index[--out] = m->new_index[--b];
            l->tasks[out] = m->new_tasks[b];
        }
    }
    l->n = need;
    m->nnew = 0;
    if (out < j->done) /* something was inserted before the prefix of ended ones */
        j->done = out;
    return CB_OK;
}

/* Records an event may create: one per task it names. */
static size_t names(const cb_event *ev)
{
    return 1 + json_array_size(json_object_get(ev->data, "tasks"));
}

cb_status cb_mirror_apply(cb_mirror *m, unsigned partition, const cb_event *ev, uint64_t seq,
                          cb_mirror_job **job, int *applied)
{
    char key[CB_MIRROR_KEY_MAX];
    cb_fold_tasks ft = {get_rec, m};
    cb_mirror_job *j;
    cb_status s, ms;
    int created = 0;

    *job = NULL;
    *applied = 0;
    if (partition >= CB_PARTITIONS_MAX)
        return CB_EINVAL;
    if (seq)
        m->seq[partition] = seq;
    if (ev->type == CB_EV_PARTITION_CLAIMED) {
        *applied = cb_fence_claim(&m->fence[partition], ev, partition) == CB_OK;
        return CB_OK;
    }
    if (cb_job_key(ev->tenant, ev->job, key, sizeof key) != 0 ||
        !cb_fold_in_partition(ev, partition) || !cb_fence_admits(&m->fence[partition], ev))
        return CB_OK;
    if (!(j = cb_mirror_get(m, key))) {
        if (ev->type != CB_EV_JOB_SUBMITTED || tomb_of(m, cb_hash64(key, strlen(key))) ||
            (m->seen && m->seen(key, seq, m->seen_arg)))
            return CB_OK; /* not one of ours, or a repeat of one that ended */
        if (!(j = job_new(m, key)))
            return CB_ENOMEM;
        created = 1;
    }
    if ((s = reserve_new(m, names(ev))) != CB_OK)
        return s;
    m->folding = j;
    s = cb_fold_apply(&j->js, &ft, ev, seq, applied);
    m->folding = NULL;
    ms = merge_new(m, j);
    if (s == CB_EINVAL) /* data the fold cannot use: ignored, as by the projector */
        s = CB_OK;
    if (s == CB_OK)
        s = ms;
    if (created && j->js.status == CB_JOB_ABSENT) {
        job_remove(m, j); /* a submission the fold did not take */
        return s;
    }
    *job = j;
    return s;
}

cb_task_view cb_mirror_open_view(cb_mirror_job *j)
{
    cb_task_list *l = &j->tasks;
    cb_task_view v;
    while (j->done < l->n && (l->tasks[j->done].status == CB_TASK_SUCCEEDED ||
                              l->tasks[j->done].status == CB_TASK_SKIPPED))
        j->done++;
    v.index = l->index + j->done;
    v.tasks = l->tasks + j->done;
    v.n = l->n - j->done;
    return v;
}

/* ---- outputs kept as text ------------------------------------------------ */

typedef struct kept_text {
    size_t n;
    char text[];
} kept_text;

cb_status cb_mirror_keep_output(cb_mirror_job *j, uint32_t task, const char *text, size_t n)
{
    kept_text *k = cb_malloc(sizeof *k + n), *old;
    if (!k)
        return CB_ENOMEM;
    k->n = n;
    memcpy(k->text, text, n);
    old = cb_map_get(&j->kept, task);
    if (cb_map_put(&j->kept, task, k) != CB_OK) {
        free(k);
        return CB_ENOMEM;
    }
    j->kept_bytes += n - (old ? old->n : 0);
    free(old);
    return CB_OK;
}

const char *cb_mirror_kept_output(cb_mirror_job *j, uint32_t task, size_t *n)
{
    const kept_text *k = cb_map_get(&j->kept, task);
    if (!k)
        return NULL;
    *n = k->n;
    return k->text;
}

typedef struct parse_ctx {
    cb_mirror_job *j;
    cb_status s;
} parse_ctx;

static void parse_kept(uint64_t task, void *val, void *arg)
{
    parse_ctx *c = arg;
    kept_text *k = val;
    cb_task_view v = cb_task_list_view(&c->j->tasks);
    cb_task_state *t = (cb_task_state *)cb_task_view_get(&v, (uint32_t)task);
    json_error_t je;
    cb_status st = CB_OK;
    json_t *o;
    if (c->s == CB_ENOMEM || !t)
        return;
    if (!(o = cb_json_loadb(k->text, k->n, JSON_DECODE_ANY, &je, &st))) {
        if (st == CB_ENOMEM)
            c->s = CB_ENOMEM;
        else
            c->s = CB_EINVAL;
        return;
    }
    json_decref(t->output);
    t->output = o;
}

cb_status cb_mirror_outputs(cb_mirror_job *j)
{
    parse_ctx c = {j, CB_OK};
    if (j->kept.len == 0)
        return CB_OK;
    cb_map_each(&j->kept, parse_kept, &c);
    if (c.s == CB_ENOMEM)
        return c.s; /* all kept: the parsed ones are parsed again then */
    cb_map_each(&j->kept, free_kept, NULL);
    cb_map_cleanup(&j->kept);
    cb_map_init(&j->kept);
    j->kept_bytes = 0;
    return c.s;
}
