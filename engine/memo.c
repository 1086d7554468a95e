/* engine/memo.c - memo keys and the recent successes of cached tasks (see
 * memo.h). */
#include "memo.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_event.h"
#include "cb_map.h"

bool cb_memo_wanted(const json_t *spec, const json_t *step_spec)
{
    const json_t *v = step_spec ? json_object_get(step_spec, "cache") : NULL;
    if (!json_is_boolean(v))
        v = json_object_get(spec, "cache");
    return json_is_true(v);
}

cb_status cb_memo_key(const json_t *function, const json_t *items, char hex[65])
{
    const json_t *code = json_object_get(function, "code");
    json_t *id =
        json_pack("{s:O*, s:O*, s:O*, s:O*}", "backend", json_object_get(function, "backend"),
                  "name", json_object_get(function, "name"), "code",
                  json_object_get(code, "sha256"), "python", json_object_get(function, "python"));
    json_t *all = id ? json_pack("{s:o, s:O}", "function", id, "items", items) : NULL;
    cb_status s = all ? cb_digest_json(all, hex) : CB_ENOMEM;
    json_decref(all);
    return s;
}

static void strip_function(json_t *fn)
{
    json_object_del(fn, "timeout_ms");
    json_object_del(fn, "memory_mb");
}

cb_status cb_memo_work_digest(const json_t *spec, char hex[65])
{
    static const char *const policy[] = {
        "job_id",   "retry_of",           "cache", "retry",  "timeout_ms", "parallelism",
        "priority", "tolerated_failures", "sla",   "labels", "budget",     "backup"};
    json_t *w = json_deep_copy(spec), *step;
    const char *name;
    cb_status s;
    if (!w)
        return CB_ENOMEM;
    for (size_t i = 0; i < sizeof policy / sizeof policy[0]; i++)
        json_object_del(w, policy[i]);
    strip_function(json_object_get(w, "function"));
    strip_function(json_object_get(json_object_get(w, "reduce"), "function"));
    json_object_foreach(json_object_get(w, "tasks"), name, step)
    {
        json_object_del(step, "retry");
        json_object_del(step, "timeout_ms");
        json_object_del(step, "cache");
        strip_function(json_object_get(step, "function"));
    }
    s = cb_digest_json(w, hex);
    json_decref(w);
    return s;
}

typedef struct entry {
    char tenant[CB_NAME_MAX + 1], hex[65], job[CB_NAME_MAX + 1];
    uint32_t task;
    int64_t at_ns;
    uint64_t hash;
    char *text;
    size_t n;
    struct entry *older, *newer;
} entry;

struct cb_memo {
    cb_map by_key; /* hash(tenant, hex) -> entry (one per hash) */
    entry *oldest, *newest;
    size_t count, bytes, max_entries, max_bytes;
};

static uint64_t key_hash(const char *tenant, const char *hex)
{
    return cb_hash64(tenant, strlen(tenant)) ^ cb_hash64(hex, 64);
}

cb_memo *cb_memo_new(size_t max_entries, size_t max_bytes)
{
    cb_memo *m = cb_calloc(1, sizeof *m);
    if (m) {
        cb_map_init(&m->by_key);
        m->max_entries = max_entries;
        m->max_bytes = max_bytes;
    }
    return m;
}

static void unlink_entry(cb_memo *m, entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    (void)cb_map_take(&m->by_key, e->hash);
    m->count--;
    m->bytes -= e->n;
    free(e->text);
    free(e);
}

void cb_memo_free(cb_memo *m)
{
    if (!m)
        return;
    while (m->oldest)
        unlink_entry(m, m->oldest);
    cb_map_cleanup(&m->by_key);
    free(m);
}

cb_status cb_memo_put(cb_memo *m, const char *tenant, const char *hex, const char *job,
                      uint32_t task, int64_t at_ns, const char *text, size_t n)
{
    entry *e, *old;
    if (!cb_digest_is_hex(hex) || strlen(tenant) > CB_NAME_MAX || strlen(job) > CB_NAME_MAX)
        return CB_EINVAL;
    if (n > m->max_bytes || m->max_entries == 0)
        return CB_OK; /* not kept: the store still has it */
    if (!(e = cb_calloc(1, sizeof *e)) || !(e->text = cb_malloc(n + 1))) {
        free(e);
        return CB_ENOMEM;
    }
    memcpy(e->text, text, n);
    e->text[n] = '\0';
    e->n = n;
    strcpy(e->tenant, tenant);
    strcpy(e->hex, hex);
    strcpy(e->job, job);
    e->task = task;
    e->at_ns = at_ns;
    e->hash = key_hash(tenant, hex);
    if ((old = cb_map_get(&m->by_key, e->hash)))
        unlink_entry(m, old); /* the same key again, or (rarely) another with its hash */
    while (m->oldest && (m->count >= m->max_entries || m->bytes + n > m->max_bytes))
        unlink_entry(m, m->oldest);
    if (cb_map_put(&m->by_key, e->hash, e) != CB_OK) {
        free(e->text);
        free(e);
        return CB_ENOMEM;
    }
    e->older = m->newest;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
    m->count++;
    m->bytes += n;
    return CB_OK;
}

const char *cb_memo_get(const cb_memo *m, const char *tenant, const char *hex,
                        int64_t not_before_ns, const char **job, uint32_t *task, size_t *n)
{
    const entry *e;
    if (!cb_digest_is_hex(hex))
        return NULL;
    e = cb_map_get(&m->by_key, key_hash(tenant, hex));
    if (!e || strcmp(e->tenant, tenant) != 0 || strcmp(e->hex, hex) != 0 ||
        e->at_ns < not_before_ns)
        return NULL;
    *job = e->job;
    *task = e->task;
    *n = e->n;
    return e->text;
}

size_t cb_memo_count(const cb_memo *m)
{
    return m->count;
}
