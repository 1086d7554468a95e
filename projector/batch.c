/* projector/batch.c - working set over a write transaction; store views. */
#define _GNU_SOURCE
#include "batch.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_dedup.h"
#include "cb_log.h"
#include "cb_map.h"

#define MOD          "projector"
#define JOB_KEY_MAX  (2 * CB_NAME_MAX + 2)
#define TASK_KEY_MAX (JOB_KEY_MAX + 5)

typedef struct job_entry {
    struct job_entry *next_same_hash; /* 64-bit hash collisions chain here */
    struct job_entry *next_dirty;
    char key[JOB_KEY_MAX];
    size_t klen;
    cb_job_state js;
    cb_map tasks;       /* index -> cb_task_state* (loaded or created) */
    cb_map dirty_tasks; /* index -> (void *)1 */
    bool dirty;
    cb_batch *b;
} job_entry;

struct cb_batch {
    cb_txn *txn;
    cb_map jobs; /* hash(key) -> job_entry chain */
    job_entry *dirty;
    cb_batch_stats stats;
    uint64_t last_seq;
};

int cb_job_key(const char *tenant, const char *job, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", tenant, job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static size_t task_key(const job_entry *e, uint32_t idx, unsigned char *buf)
{
    memcpy(buf, e->key, e->klen);
    buf[e->klen] = '\0';
    buf[e->klen + 1] = (unsigned char)(idx >> 24);
    buf[e->klen + 2] = (unsigned char)(idx >> 16);
    buf[e->klen + 3] = (unsigned char)(idx >> 8);
    buf[e->klen + 4] = (unsigned char)idx;
    return e->klen + 5;
}

/* ---- loading records ------------------------------------------------- */

static cb_status load_json(cb_txn *t, cb_db db, const void *key, size_t klen, json_t **out)
{
    const void *val;
    size_t vlen;
    json_error_t je;
    cb_status s = cb_store_get(t, db, key, klen, &val, &vlen);
    if (s != CB_OK)
        return s;
    *out = json_loadb(val, vlen, 0, &je);
    return *out ? CB_OK : CB_EIO;
}

static cb_task_state *get_task(void *arg, uint32_t idx)
{
    job_entry *e = arg;
    cb_task_state *t = cb_map_get(&e->tasks, idx);
    unsigned char key[TASK_KEY_MAX];
    json_t *o = NULL;

    if (!t) {
        if (!(t = cb_calloc(1, sizeof *t)))
            return NULL;
        cb_status s = load_json(e->b->txn, CB_DB_TASKS, key, task_key(e, idx, key), &o);
        if (s == CB_OK) {
            s = cb_task_state_from_json(o, t);
            json_decref(o);
        } else if (s == CB_ENOTFOUND) {
            s = CB_OK; /* never left PENDING */
        }
        if (s != CB_OK || cb_map_put(&e->tasks, idx, t) != CB_OK) {
            cb_task_state_cleanup(t);
            cb_free(t);
            return NULL;
        }
    }
    /* Asked for means possibly changed: written back at commit. */
    if (cb_map_put(&e->dirty_tasks, idx, (void *)1) != CB_OK)
        return NULL;
    return t;
}

static cb_status get_job(cb_batch *b, const char *key, job_entry **out)
{
    size_t klen = strlen(key);
    uint64_t h = cb_hash64(key, klen);
    job_entry *head = cb_map_get(&b->jobs, h), *e;
    json_t *o = NULL;
    cb_status s;

    for (e = head; e; e = e->next_same_hash)
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *out = e;
            return CB_OK;
        }
    if (klen >= JOB_KEY_MAX || !(e = cb_calloc(1, sizeof *e)))
        return klen >= JOB_KEY_MAX ? CB_EINVAL : CB_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->klen = klen;
    e->b = b;
    cb_map_init(&e->tasks);
    cb_map_init(&e->dirty_tasks);
    s = load_json(b->txn, CB_DB_JOBS, key, klen, &o);
    if (s == CB_OK) {
        s = cb_job_state_from_json(o, &e->js);
        json_decref(o);
    } else if (s == CB_ENOTFOUND) {
        s = CB_OK;
    }
    if (s == CB_OK) {
        e->next_same_hash = head;
        s = cb_map_put(&b->jobs, h, e);
    }
    if (s != CB_OK) {
        cb_map_cleanup(&e->tasks);
        cb_map_cleanup(&e->dirty_tasks);
        cb_job_state_cleanup(&e->js);
        cb_free(e);
        return s;
    }
    *out = e;
    return CB_OK;
}

/* ---- batch ----------------------------------------------------------- */

cb_status cb_batch_begin(cb_store *st, cb_batch **out)
{
    cb_batch *b = cb_calloc(1, sizeof *b);
    cb_status s;
    if (!b)
        return CB_ENOMEM;
    cb_map_init(&b->jobs);
    if ((s = cb_store_begin(st, 0, &b->txn)) != CB_OK) {
        cb_free(b);
        return s;
    }
    *out = b;
    return CB_OK;
}

cb_status cb_batch_apply(cb_batch *b, const cb_event *ev, uint64_t seq, int *applied)
{
    char key[JOB_KEY_MAX];
    job_entry *e = NULL;
    cb_fold_tasks tasks;
    cb_status s;

    *applied = 0;
    if (cb_job_key(ev->tenant, ev->job, key, sizeof key) != 0)
        return CB_EINVAL;
    if ((s = get_job(b, key, &e)) != CB_OK)
        return s;
    tasks.get = get_task;
    tasks.arg = e;
    s = cb_fold_apply(&e->js, &tasks, ev, seq, applied);
    if (s == CB_ENOMEM)
        return s;
    b->stats.events++;
    if (s == CB_EINVAL) {
        if (++b->stats.invalid <= 3)
            cb_log_job(CB_LOG_WARN, MOD, ev->tenant, ev->job, "event %s (%s) lacks required data",
                       ev->id, cb_event_type_name(ev->type));
    } else if (*applied) {
        b->stats.applied++;
    } else {
        b->stats.ignored++;
    }
    if (!e->dirty && (*applied || e->js.status != CB_JOB_ABSENT)) {
        e->dirty = true; /* counters moved even when ignored */
        e->next_dirty = b->dirty;
        b->dirty = e;
    }
    if (seq)
        b->last_seq = seq;
    return CB_OK;
}

cb_status cb_batch_apply_raw(cb_batch *b, const void *data, size_t len, uint64_t seq)
{
    cb_event ev;
    char err[256];
    int applied;
    cb_status s = cb_event_decode(data, len, &ev, err, sizeof err);

    if (s == CB_ENOMEM)
        return s;
    if (s != CB_OK) {
        b->stats.events++;
        /* A flood of garbage must not flood the log: the first few per batch. */
        if (++b->stats.invalid <= 3)
            CB_LOG_WRN(MOD, "skipping log entry %llu: %s", (unsigned long long)seq, err);
        if (seq)
            b->last_seq = seq;
        return CB_OK;
    }
    s = cb_batch_apply(b, &ev, seq, &applied);
    cb_event_cleanup(&ev);
    return s == CB_EINVAL ? CB_OK : s;
}

const cb_batch_stats *cb_batch_stats_get(const cb_batch *b)
{
    return &b->stats;
}

json_t *cb_batch_changed_jobs(const cb_batch *b)
{
    json_t *a = json_array();
    for (job_entry *e = b->dirty; a && e; e = e->next_dirty)
        json_array_append_new(a, json_stringn(e->key, e->klen));
    return a;
}

typedef struct write_ctx {
    job_entry *e;
    cb_status s;
} write_ctx;

static cb_status put_json(cb_txn *t, cb_db db, const void *key, size_t klen, json_t *o)
{
    char *s;
    cb_status st;
    if (!o)
        return CB_ENOMEM;
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        return CB_ENOMEM;
    st = cb_store_put(t, db, key, klen, s, strlen(s));
    free(s);
    return st;
}

/* Whether a task is open: not yet succeeded or skipped (see store.h). */
static bool task_open(cb_task_status s)
{
    return s != CB_TASK_PENDING && s != CB_TASK_SUCCEEDED && s != CB_TASK_SKIPPED;
}

/* The record into tasks, and into open while the task is open. */
/* The open database is an index (empty values): written only when a task
 * opens or closes, so a batch dirties few of its pages. */
static cb_status index_open(cb_txn *txn, const void *key, size_t klen, bool open)
{
    const void *v;
    size_t vlen;
    cb_status g = cb_store_get(txn, CB_DB_OPEN, key, klen, &v, &vlen);
    if (g != CB_OK && g != CB_ENOTFOUND)
        return g;
    if (open)
        return g == CB_OK ? CB_OK : cb_store_put(txn, CB_DB_OPEN, key, klen, "", 0);
    return g == CB_OK ? cb_store_del(txn, CB_DB_OPEN, key, klen) : CB_OK;
}

static cb_status put_task(cb_txn *txn, const unsigned char *key, size_t klen,
                          const cb_task_state *t)
{
    json_t *o = cb_task_state_to_json(t);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    cb_status st = s ? cb_store_put(txn, CB_DB_TASKS, key, klen, s, strlen(s)) : CB_ENOMEM;
    json_decref(o);
    free(s);
    return st == CB_OK ? index_open(txn, key, klen, task_open(t->status)) : st;
}

static void write_task(uint64_t idx, void *val, void *arg)
{
    write_ctx *w = arg;
    cb_task_state *t = cb_map_get(&w->e->tasks, idx);
    unsigned char key[TASK_KEY_MAX];
    (void)val;
    if (w->s != CB_OK || !t || t->status == CB_TASK_PENDING)
        return;
    w->s = put_task(w->e->b->txn, key, task_key(w->e, (uint32_t)idx, key), t);
}

/* The job's deadline (submission + timeout_ms), 0 if none: stored in
 * `active` so the long loop finds late jobs without reading every job. */
static int64_t job_deadline(const cb_job_state *js)
{
    json_t *t = json_object_get(js->spec, "timeout_ms");
    if (!json_is_integer(t) || !js->submitted_ns)
        return 0;
    return js->submitted_ns + json_integer_value(t) * 1000000;
}

static cb_status write_entry(cb_batch *b, job_entry *e)
{
    write_ctx w = {e, CB_OK};
    cb_status s = put_json(b->txn, CB_DB_JOBS, e->key, e->klen, cb_job_state_to_json(&e->js));
    if (s != CB_OK)
        return s;
    if (cb_job_terminal(e->js.status)) {
        s = cb_store_del(b->txn, CB_DB_ACTIVE, e->key, e->klen);
    } else {
        char when[32];
        int n = snprintf(when, sizeof when, "%lld", (long long)job_deadline(&e->js));
        s = cb_store_put(b->txn, CB_DB_ACTIVE, e->key, e->klen, when, (size_t)n);
    }
    if (s != CB_OK)
        return s;
    cb_map_each(&e->dirty_tasks, write_task, &w);
    return w.s;
}

static void free_task(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    cb_task_state_cleanup(val);
    cb_free(val);
}

static void free_chain(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    for (job_entry *e = val, *next; e; e = next) {
        next = e->next_same_hash;
        cb_map_each(&e->tasks, free_task, NULL);
        cb_map_cleanup(&e->tasks);
        cb_map_cleanup(&e->dirty_tasks);
        cb_job_state_cleanup(&e->js);
        cb_free(e);
    }
}

static void batch_free(cb_batch *b)
{
    cb_map_each(&b->jobs, free_chain, NULL);
    cb_map_cleanup(&b->jobs);
    cb_free(b);
}

cb_status cb_batch_commit(cb_batch *b, uint64_t applied_seq)
{
    cb_status s = CB_OK;
    for (job_entry *e = b->dirty; e && s == CB_OK; e = e->next_dirty)
        s = write_entry(b, e);
    if (s == CB_OK && applied_seq) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)applied_seq);
        s = cb_store_put(b->txn, CB_DB_META, "applied_seq", 11, buf, (size_t)n);
    }
    if (s == CB_OK)
        s = cb_store_commit(b->txn);
    else
        cb_store_abort(b->txn);
    batch_free(b);
    return s;
}

void cb_batch_abort(cb_batch *b)
{
    if (!b)
        return;
    cb_store_abort(b->txn);
    batch_free(b);
}

/* ---- views ----------------------------------------------------------- */

cb_status cb_view_applied_seq(cb_store *st, uint64_t *seq)
{
    cb_txn *t;
    const void *val;
    size_t vlen;
    char buf[32];
    cb_status s = cb_store_begin(st, 1, &t);
    if (s != CB_OK)
        return s;
    s = cb_store_get(t, CB_DB_META, "applied_seq", 11, &val, &vlen);
    *seq = 0;
    if (s == CB_OK && vlen < sizeof buf) {
        memcpy(buf, val, vlen);
        buf[vlen] = '\0';
        *seq = strtoull(buf, NULL, 10);
    }
    cb_store_abort(t);
    return s == CB_ENOTFOUND ? CB_OK : s;
}

cb_status cb_view_job(cb_store *st, const char *key, cb_job_state *out)
{
    cb_txn *t;
    json_t *o = NULL;
    cb_status s = cb_store_begin(st, 1, &t);
    if (s != CB_OK)
        return s;
    s = load_json(t, CB_DB_JOBS, key, strlen(key), &o);
    cb_store_abort(t);
    if (s != CB_OK)
        return s;
    s = cb_job_state_from_json(o, out);
    json_decref(o);
    return s;
}

cb_status cb_view_task(cb_store *st, const char *key, uint32_t index, cb_task_state *out)
{
    job_entry e; /* only its key is used */
    unsigned char k[TASK_KEY_MAX];
    cb_txn *t;
    json_t *o = NULL;
    cb_status s;

    if (strlen(key) >= JOB_KEY_MAX)
        return CB_EINVAL;
    memset(out, 0, sizeof *out);
    e.klen = strlen(key);
    memcpy(e.key, key, e.klen + 1);
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    s = load_json(t, CB_DB_TASKS, k, task_key(&e, index, k), &o);
    cb_store_abort(t);
    if (s == CB_ENOTFOUND)
        return CB_OK; /* a task without a record is PENDING */
    if (s != CB_OK)
        return s;
    s = cb_task_state_from_json(o, out);
    json_decref(o);
    return s;
}

typedef struct tasks_ctx {
    cb_view_task_fn *fn;
    void *arg;
    size_t plen;
    cb_status s;
    cb_txn *txn;
} tasks_ctx;

static int each_task(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    tasks_ctx *c = arg;
    const unsigned char *k = key;
    cb_task_state ts;
    json_t *o;
    int stop;
    if (klen != c->plen + 4)
        return 0; /* another job whose key extends this one's: not ours */
    if (!(o = json_loadb(val, vlen, 0, NULL)) || cb_task_state_from_json(o, &ts) != CB_OK) {
        json_decref(o);
        c->s = CB_EIO;
        return 1;
    }
    json_decref(o);
    stop = c->fn((uint32_t)k[c->plen] << 24 | (uint32_t)k[c->plen + 1] << 16 |
                     (uint32_t)k[c->plen + 2] << 8 | k[c->plen + 3],
                 &ts, c->arg);
    cb_task_state_cleanup(&ts);
    return stop;
}

/* An entry of the open index: the task's record is in tasks. */
static int each_open(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    tasks_ctx *c = arg;
    const void *rec;
    size_t rlen;
    cb_status s;
    (void)val;
    (void)vlen;
    if (klen != c->plen + 4)
        return 0;
    if ((s = cb_store_get(c->txn, CB_DB_TASKS, key, klen, &rec, &rlen)) != CB_OK) {
        c->s = s == CB_ENOTFOUND ? CB_EIO : s; /* an index entry without its record */
        return 1;
    }
    return each_task(key, klen, rec, rlen, arg);
}

static cb_status view_tasks(cb_store *st, cb_db db, const char *key, cb_view_task_fn *fn, void *arg)
{
    unsigned char prefix[JOB_KEY_MAX + 1];
    size_t n = strlen(key);
    tasks_ctx c = {fn, arg, n + 1, CB_OK, NULL};
    cb_txn *t;
    cb_status s;
    if (n >= JOB_KEY_MAX)
        return CB_EINVAL;
    memcpy(prefix, key, n);
    prefix[n] = '\0';
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    c.txn = t;
    s = cb_store_scan(t, db, prefix, n + 1, db == CB_DB_OPEN ? each_open : each_task, &c);
    cb_store_abort(t);
    return s != CB_OK ? s : c.s;
}

cb_status cb_view_job_tasks(cb_store *st, const char *key, cb_view_task_fn *fn, void *arg)
{
    return view_tasks(st, CB_DB_TASKS, key, fn, arg);
}

cb_status cb_view_job_open_tasks(cb_store *st, const char *key, cb_view_task_fn *fn, void *arg)
{
    return view_tasks(st, CB_DB_OPEN, key, fn, arg);
}

/* ---- the store's format ------------------------------------------------ */

#define FORMAT "2" /* 2: the open database */

static int reopen_task(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    cb_txn *t = arg;
    cb_task_state ts;
    json_t *o = json_loadb(val, vlen, 0, NULL);
    int parsed = o && cb_task_state_from_json(o, &ts) == CB_OK;
    int open = parsed && task_open(ts.status);
    if (parsed)
        cb_task_state_cleanup(&ts);
    json_decref(o);
    return open && cb_store_put(t, CB_DB_OPEN, key, klen, "", 0) != CB_OK;
}

cb_status cb_batch_prepare_store(cb_store *st)
{
    const void *val;
    size_t vlen;
    cb_txn *t;
    cb_status s;
    if ((s = cb_store_begin(st, 0, &t)) != CB_OK)
        return s;
    s = cb_store_get(t, CB_DB_META, "format", 6, &val, &vlen);
    if (s == CB_OK && vlen == 1 && !memcmp(val, FORMAT, 1)) {
        cb_store_abort(t);
        return CB_OK;
    }
    /* A store of format 1 (no open database) gets it from its task records. */
    s = cb_store_scan(t, CB_DB_TASKS, NULL, 0, reopen_task, t);
    if (s == CB_OK)
        s = cb_store_put(t, CB_DB_META, "format", 6, FORMAT, 1);
    if (s != CB_OK) {
        cb_store_abort(t);
        return s;
    }
    return cb_store_commit(t);
}

typedef struct active_ctx {
    cb_view_active_fn *fn;
    void *arg;
} active_ctx;

static int each_active(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    active_ctx *c = arg;
    char k[JOB_KEY_MAX], v[32];
    if (klen >= sizeof k || vlen >= sizeof v)
        return 0;
    memcpy(k, key, klen);
    k[klen] = '\0';
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    return c->fn(k, strtoll(v, NULL, 10), c->arg);
}

cb_status cb_view_active(cb_store *st, cb_view_active_fn *fn, void *arg)
{
    active_ctx c = {fn, arg};
    cb_txn *t;
    cb_status s = cb_store_begin(st, 1, &t);
    if (s != CB_OK)
        return s;
    s = cb_store_scan(t, CB_DB_ACTIVE, NULL, 0, each_active, &c);
    cb_store_abort(t);
    return s;
}

static int hash_entry(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    EVP_MD_CTX *md = ((void **)arg)[0];
    uint64_t *n = ((void **)arg)[1];
    uint64_t lens[2] = {klen, vlen};
    EVP_DigestUpdate(md, lens, sizeof lens);
    EVP_DigestUpdate(md, key, klen);
    EVP_DigestUpdate(md, val, vlen);
    (*n)++;
    return 0;
}

cb_status cb_view_digest(cb_store *st, char hex[65], uint64_t *entities)
{
    static const cb_db dbs[] = {CB_DB_JOBS, CB_DB_TASKS, CB_DB_ACTIVE};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char out[32];
    unsigned int olen = 0;
    uint64_t n = 0;
    void *arg[2] = {md, &n};
    cb_txn *t;
    cb_status s;

    if (!md)
        return CB_ENOMEM;
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK) {
        EVP_MD_CTX_free(md);
        return s;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && s == CB_OK; i++) {
        EVP_DigestUpdate(md, &dbs[i], sizeof dbs[i]);
        s = cb_store_scan(t, dbs[i], NULL, 0, hash_entry, arg);
    }
    cb_store_abort(t);
    EVP_DigestFinal_ex(md, out, &olen);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    if (entities)
        *entities = n;
    return s;
}

/* Collect every entry of a db as (key, value) JSON pairs; simple and
 * adequate for verification, which is an operator's tool. */
static int collect(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    json_t *a = arg;
    json_array_append_new(a, json_pack("[s%s%]", (const char *)key, klen, (const char *)val, vlen));
    return 0;
}

static void printable_key(const char *k, size_t n, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 12 < size; i++) {
        if (k[i] == '\0' && i + 5 == n) { /* a task key: job NUL be32 */
            const unsigned char *u = (const unsigned char *)k + i + 1;
            j += (size_t)snprintf(out + j, size - j, "#%u",
                                  (unsigned)u[0] << 24 | u[1] << 16 | u[2] << 8 | u[3]);
            break;
        }
        out[j++] = k[i];
    }
    out[j] = '\0';
}

cb_status cb_view_first_difference(cb_store *a, cb_store *b, char *out, size_t size)
{
    static const cb_db dbs[] = {CB_DB_JOBS, CB_DB_TASKS, CB_DB_ACTIVE};
    static const char *const names[] = {"jobs", "tasks", "active"};
    cb_txn *ta = NULL, *tb = NULL;
    cb_status s;

    out[0] = '\0';
    if ((s = cb_store_begin(a, 1, &ta)) != CB_OK)
        return s;
    if ((s = cb_store_begin(b, 1, &tb)) != CB_OK) {
        cb_store_abort(ta);
        return s;
    }
    for (size_t d = 0; d < 3 && !out[0] && s == CB_OK; d++) {
        json_t *ea = json_array(), *eb = json_array();
        s = cb_store_scan(ta, dbs[d], NULL, 0, collect, ea);
        if (s == CB_OK)
            s = cb_store_scan(tb, dbs[d], NULL, 0, collect, eb);
        size_t na = json_array_size(ea), nb = json_array_size(eb);
        for (size_t i = 0; s == CB_OK && i < (na > nb ? na : nb); i++) {
            json_t *x = json_array_get(ea, i), *y = json_array_get(eb, i);
            if (x && y && json_equal(x, y))
                continue;
            json_t *k = json_array_get(x ? x : y, 0);
            char key[300];
            printable_key(json_string_value(k), json_string_length(k), key, sizeof key);
            snprintf(out, size, "%s %s: %s | %s", names[d], key,
                     x ? json_string_value(json_array_get(x, 1)) : "(absent)",
                     y && (!x || json_equal(json_array_get(x, 0), json_array_get(y, 0)))
                         ? json_string_value(json_array_get(y, 1))
                         : "(absent)");
            break;
        }
        json_decref(ea);
        json_decref(eb);
    }
    cb_store_abort(ta);
    cb_store_abort(tb);
    return s;
}
