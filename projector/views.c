/* projector/views.c - read views of the store (see views.h). */
#include "views.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_time.h"
#include "layout.h"
#include "cb_partition.h"

/* A partition's position as transaction t sees it (0 when none is stored). */
static cb_status applied_seq_in(cb_txn *t, unsigned partition, uint64_t *seq)
{
    const void *val;
    size_t vlen;
    char buf[32], key[CB_LAYOUT_POSITION_KEY_MAX];
    size_t klen = cb_layout_position_key(partition, key);
    cb_status s = cb_store_get(t, CB_DB_META, key, klen, &val, &vlen);
    *seq = 0;
    if (s == CB_OK && vlen < sizeof buf) {
        memcpy(buf, val, vlen);
        buf[vlen] = '\0';
        *seq = strtoull(buf, NULL, 10);
    }
    return s == CB_ENOTFOUND ? CB_OK : s;
}

static int each_position(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    unsigned *n = arg, k;
    char buf[CB_LAYOUT_POSITION_KEY_MAX];
    (void)val;
    (void)vlen;
    if (klen <= 12 || klen >= sizeof buf) /* "applied_seq." and a number */
        return 0;
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    k = (unsigned)strtoul(buf + 12, NULL, 10);
    if (k < CB_PARTITIONS_MAX && k + 1 > *n)
        *n = k + 1;
    return 0;
}

cb_status cb_view_partitions(cb_store *st, unsigned *n)
{
    cb_txn *t;
    cb_status s = cb_store_begin(st, 1, &t);
    *n = 1;
    if (s != CB_OK)
        return s;
    s = cb_store_scan(t, CB_DB_META, "applied_seq.", 12, each_position, n);
    cb_store_abort(t);
    return s;
}

cb_status cb_view_applied_seq(cb_store *st, unsigned partition, uint64_t *seq)
{
    cb_txn *t;
    cb_status s = cb_store_begin(st, 1, &t);
    if (s != CB_OK)
        return s;
    s = applied_seq_in(t, partition, seq);
    cb_store_abort(t);
    return s;
}

cb_status cb_view_job(cb_store *st, const char *key, cb_job_state *out)
{
    cb_txn *t;
    json_t *o = NULL;
    cb_status s = cb_store_begin(st, 1, &t);
    if (s != CB_OK)
        return s;
    s = cb_layout_load_json(t, CB_DB_JOBS, key, strlen(key), &o);
    cb_store_abort(t);
    if (s != CB_OK)
        return s;
    s = cb_job_state_from_json(o, out);
    json_decref(o);
    return s;
}

cb_status cb_view_cost(cb_store *st, const char *kind, const char *name, cb_cost *out)
{
    char key[CB_COST_KEY_MAX];
    size_t klen = cb_layout_cost_key(kind, name, key);
    json_t *o = NULL;
    cb_txn *t;
    cb_status s;
    memset(out, 0, sizeof *out);
    if (!klen)
        return CB_OK;
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    s = cb_layout_load_json(t, CB_DB_COSTS, key, klen, &o);
    cb_store_abort(t);
    if (s == CB_OK && cb_cost_parse(o, out) != CB_OK)
        memset(out, 0, sizeof *out);
    json_decref(o);
    return s == CB_ENOMEM ? s : CB_OK; /* none, or unreadable: nothing counted */
}

typedef struct cost_scan {
    size_t plen;
    cb_view_cost_fn *fn;
    void *arg;
} cost_scan;

static int cost_entry(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    cost_scan *c = arg;
    char name[CB_COST_KEY_MAX];
    cb_cost total;
    cb_status st;
    json_t *o = cb_json_loadb(val, vlen, 0, NULL, &st);
    int r = 0;
    if (o && klen > c->plen && klen - c->plen < sizeof name && cb_cost_parse(o, &total) == CB_OK) {
        memcpy(name, (const char *)key + c->plen, klen - c->plen);
        name[klen - c->plen] = '\0';
        r = c->fn(name, &total, c->arg);
    }
    json_decref(o);
    return r;
}

cb_status cb_view_costs(cb_store *st, const char *kind, cb_view_cost_fn *fn, void *arg)
{
    char prefix[CB_COST_KEY_MAX];
    cost_scan c = {cb_layout_cost_key(kind, "", prefix), fn, arg};
    cb_txn *t;
    cb_status s;
    if (!c.plen || (s = cb_store_begin(st, 1, &t)) != CB_OK)
        return c.plen ? s : CB_EINVAL;
    s = cb_store_scan(t, CB_DB_COSTS, prefix, c.plen, cost_entry, &c);
    cb_store_abort(t);
    return s;
}

/* The memo entry of mkey in t: its job, task and time. */
static cb_status memo_entry(cb_txn *t, const char *mkey, size_t mlen, char *job, uint32_t *task,
                            int64_t *at)
{
    json_t *o = NULL;
    const char *j, *when;
    cb_status s = cb_layout_load_json(t, CB_DB_MEMO, mkey, mlen, &o);
    if (s != CB_OK)
        return s;
    j = json_string_value(json_object_get(o, "job"));
    when = json_string_value(json_object_get(o, "at"));
    s = CB_EIO;
    if (j && strlen(j) <= CB_NAME_MAX && when && cb_time_parse(when, at) == 0 &&
        json_is_integer(json_object_get(o, "task"))) {
        snprintf(job, CB_NAME_MAX + 1, "%s", j);
        *task = (uint32_t)json_integer_value(json_object_get(o, "task"));
        s = CB_OK;
    }
    json_decref(o);
    return s;
}

cb_status cb_view_memo(cb_store *st, const char *tenant, const char *hex, int64_t not_before_ns,
                       char *job, uint32_t *task, json_t **output)
{
    char mkey[CB_MEMO_KEY_MAX], jkey[CB_JOB_KEY_MAX];
    unsigned char k[CB_TASK_KEY_MAX];
    size_t mlen = cb_layout_memo_key(tenant, hex, mkey);
    int64_t at = 0;
    json_t *o = NULL;
    cb_txn *t;
    cb_status s;

    *output = NULL;
    if (!mlen)
        return CB_EINVAL;
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    if ((s = memo_entry(t, mkey, mlen, job, task, &at)) == CB_OK && at < not_before_ns)
        s = CB_ENOTFOUND; /* expired */
    if (s == CB_OK && cb_job_key(tenant, job, jkey, sizeof jkey) != 0)
        s = CB_EINVAL;
    if (s == CB_OK)
        s = cb_layout_load_json(t, CB_DB_TASKS, k, cb_layout_task_key(jkey, strlen(jkey), *task, k),
                                &o);
    cb_store_abort(t);
    if (s != CB_OK)
        return s == CB_EIO ? CB_ENOTFOUND : s; /* an entry that does not parse: none */
    if (!strcmp(json_string_value(json_object_get(o, "status")) ?: "", "succeeded") &&
        json_object_get(o, "output"))
        *output = json_incref(json_object_get(o, "output"));
    json_decref(o);
    return *output ? CB_OK : CB_ENOTFOUND;
}

cb_status cb_view_task(cb_store *st, const char *key, uint32_t index, cb_task_state *out)
{
    unsigned char k[CB_TASK_KEY_MAX];
    cb_txn *t;
    json_t *o = NULL;
    cb_status s;

    if (strlen(key) >= CB_JOB_KEY_MAX)
        return CB_EINVAL;
    memset(out, 0, sizeof *out);
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    s = cb_layout_load_json(t, CB_DB_TASKS, k, cb_layout_task_key(key, strlen(key), index, k), &o);
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
    json_error_t je;
    cb_status st = CB_OK;
    json_t *o;
    int stop;
    if (klen != c->plen + 4)
        return 0; /* another job whose key extends this one's: not ours */
    if (!(o = cb_json_loadb(val, vlen, 0, &je, &st)) || cb_task_state_from_json(o, &ts) != CB_OK) {
        json_decref(o);
        c->s = st == CB_ENOMEM ? CB_ENOMEM : CB_EIO;
        return 1;
    }
    json_decref(o);
    stop = c->fn(cb_layout_task_index(k, c->plen), &ts, c->arg);
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

/* The task records of job `key` from index `from` through db (tasks, or
 * the open index), in transaction t. */
static cb_status scan_tasks(cb_txn *t, cb_db db, const char *key, uint32_t from,
                            cb_view_task_fn *fn, void *arg)
{
    unsigned char prefix[CB_JOB_KEY_MAX + 1], start[CB_TASK_KEY_MAX];
    size_t n = strlen(key), slen = 0;
    tasks_ctx c = {fn, arg, n + 1, CB_OK, t};
    cb_status s;
    if (n >= CB_JOB_KEY_MAX)
        return CB_EINVAL;
    memcpy(prefix, key, n);
    prefix[n] = '\0';
    if (from)
        slen = cb_layout_task_key(key, n, from, start);
    s = cb_store_scan_from(t, db, prefix, n + 1, start, slen,
                           db == CB_DB_OPEN ? each_open : each_task, &c);
    return s != CB_OK ? s : c.s;
}

static cb_status view_tasks(cb_store *st, cb_db db, const char *key, uint32_t from,
                            cb_view_task_fn *fn, void *arg)
{
    cb_txn *t;
    cb_status s;
    if (strlen(key) >= CB_JOB_KEY_MAX)
        return CB_EINVAL;
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    s = scan_tasks(t, db, key, from, fn, arg);
    cb_store_abort(t);
    return s;
}

cb_status cb_view_job_tasks(cb_store *st, const char *key, cb_view_task_fn *fn, void *arg)
{
    return view_tasks(st, CB_DB_TASKS, key, 0, fn, arg);
}

cb_status cb_view_job_tasks_from(cb_store *st, const char *key, uint32_t from, cb_view_task_fn *fn,
                                 void *arg)
{
    return view_tasks(st, CB_DB_TASKS, key, from, fn, arg);
}

typedef struct jobs_ctx {
    cb_view_job_fn *fn;
    void *arg;
} jobs_ctx;

static int each_job(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    jobs_ctx *c = arg;
    char k[CB_JOB_KEY_MAX];
    json_error_t je;
    cb_status st;
    cb_job_state js;
    json_t *o;
    int stop = 0;
    if (klen >= sizeof k)
        return 0;
    memcpy(k, key, klen);
    k[klen] = '\0';
    if ((o = cb_json_loadb(val, vlen, 0, &je, &st)) && cb_job_state_from_json(o, &js) == CB_OK) {
        stop = c->fn(k, &js, c->arg);
        cb_job_state_cleanup(&js);
    }
    json_decref(o);
    return stop;
}

cb_status cb_view_jobs(cb_store *st, const char *tenant, const char *after, cb_view_job_fn *fn,
                       void *arg)
{
    char prefix[CB_NAME_MAX + 2], from[CB_JOB_KEY_MAX + 1];
    size_t plen = 0, flen = 0;
    jobs_ctx c = {fn, arg};
    cb_txn *t;
    cb_status s;
    if (tenant && (plen = (size_t)snprintf(prefix, sizeof prefix, "%s/", tenant)) >= sizeof prefix)
        return CB_EINVAL;
    if (after) { /* the first key after `after` is `after` with a NUL */
        if ((flen = strlen(after)) >= CB_JOB_KEY_MAX)
            return CB_EINVAL;
        memcpy(from, after, flen);
        from[flen++] = '\0';
    }
    if ((s = cb_store_begin(st, 1, &t)) != CB_OK)
        return s;
    s = cb_store_scan_from(t, CB_DB_JOBS, prefix, plen, from, flen, each_job, &c);
    cb_store_abort(t);
    return s;
}

cb_status cb_view_job_open_tasks(cb_store *st, const char *key, cb_view_task_fn *fn, void *arg)
{
    return view_tasks(st, CB_DB_OPEN, key, 0, fn, arg);
}

typedef struct active_ctx {
    cb_view_active_fn *fn;
    void *arg;
} active_ctx;

static int each_active(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    active_ctx *c = arg;
    char k[CB_JOB_KEY_MAX], v[32];
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

typedef struct snap_ctx {
    unsigned partition;
    cb_view_snap_job_fn *job_fn;
    cb_view_task_fn *task_fn;
    void *arg;
    cb_txn *txn;
    cb_status s;
} snap_ctx;

static int each_snap(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    snap_ctx *c = arg;
    char k[CB_JOB_KEY_MAX];
    cb_job_state js;
    json_t *o = NULL;
    (void)val;
    (void)vlen;
    if (klen >= sizeof k)
        return 0;
    memcpy(k, key, klen);
    k[klen] = '\0';
    if ((c->s = cb_layout_load_json(c->txn, CB_DB_JOBS, k, klen, &o)) != CB_OK) {
        if (c->s == CB_ENOTFOUND)
            c->s = CB_EIO; /* active without its record */
        return 1;
    }
    c->s = cb_job_state_from_json(o, &js);
    json_decref(o);
    if (c->s != CB_OK)
        return 1;
    if (js.log_partition != c->partition) { /* another partition's: not asked for */
        cb_job_state_cleanup(&js);
        return 0;
    }
    if (c->job_fn(k, &js, c->arg)) {
        c->s = CB_ENOMEM;
        return 1;
    }
    if ((c->s = scan_tasks(c->txn, CB_DB_TASKS, k, 0, c->task_fn, c->arg)) != CB_OK)
        return 1;
    return 0;
}

cb_status cb_view_active_snapshot(cb_store *st, unsigned partition, cb_view_snap_job_fn *job_fn,
                                  cb_view_task_fn *task_fn, void *arg, uint64_t *applied_seq,
                                  cb_fence *fence)
{
    snap_ctx c = {partition, job_fn, task_fn, arg, NULL, CB_OK};
    cb_status s = cb_store_begin(st, 1, &c.txn);
    if (s != CB_OK)
        return s;
    if ((s = applied_seq_in(c.txn, partition, applied_seq)) == CB_OK && fence)
        s = cb_layout_load_fence(c.txn, partition, fence);
    if (s == CB_OK)
        s = cb_store_scan(c.txn, CB_DB_ACTIVE, NULL, 0, each_snap, &c);
    cb_store_abort(c.txn);
    return s != CB_OK ? s : c.s;
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
