/* engine/flow.c - job descriptor -> tasks and dependencies. */
#include "flow.h"

#include "cb_storage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

#define DEFAULT_MAX_TASKS 10000000u

static cb_status fail(char *err, size_t errlen, cb_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cb_status fail(char *err, size_t errlen, cb_status s, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

void cb_flow_cleanup(cb_flow *f)
{
    for (size_t i = 0; i < f->nsteps; i++)
        cb_free(f->steps[i].deps);
    cb_free(f->steps);
    cb_free(f->order);
    cb_free(f->part_base);
    json_decref(f->partition);
    json_decref(f->spec);
    memset(f, 0, sizeof *f);
}

/* ---- map inputs ------------------------------------------------------ */

/* Number of values in range(start, stop, step), Python semantics. */
static uint64_t range_len(int64_t start, int64_t stop, int64_t step)
{
    /* unsigned arithmetic: no overflow for any int64 bounds */
    if (step > 0 && stop > start)
        return ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    if (step < 0 && stop < start)
        return ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    return 0;
}

static cb_status set_tasks(cb_flow *f, uint32_t max_tasks, char *err, size_t errlen);

static cb_status build_map(cb_flow *f, const json_t *spec, uint32_t max_tasks, char *err,
                           size_t errlen)
{
    const json_t *input = json_object_get(spec, "input");
    const json_t *items = json_object_get(input, "items");
    const json_t *range = json_object_get(input, "range");
    const json_t *cs = json_object_get(spec, "chunksize");

    f->chunksize = cs ? (uint32_t)json_integer_value(cs) : 1;
    if (items) {
        f->item_array = items;
        f->items = json_array_size(items);
    } else if (range) {
        const json_t *st = json_object_get(range, "step");
        f->range_start = json_integer_value(json_object_get(range, "start"));
        f->range_step = st ? json_integer_value(st) : 1;
        f->items = range_len(f->range_start, json_integer_value(json_object_get(range, "stop")),
                             f->range_step);
    } else {
        /* the sizes come later, with the partition plan (cb_flow_set_partition) */
        const json_t *objs = json_object_get(input, "objects");
        const json_t *urls = json_object_get(objs, "urls");
        for (size_t i = 0; i < json_array_size(urls); i++) {
            const char *u = json_string_value(json_array_get(urls, i)) ?: "";
            if (strncmp(u, "s3://", 5) != 0 && !cb_storage_is_web_url(u))
                return fail(err, errlen, CB_EINVAL,
                            "/input/objects/urls/%zu: \"%.200s\" is neither an s3:// object nor "
                            "an http(s):// URL",
                            i, u);
        }
        f->objects = true;
        f->split_lines = json_is_string(json_object_get(objs, "split")) &&
                         strcmp(json_string_value(json_object_get(objs, "split")), "lines") == 0;
        f->items = 0;
        f->map_tasks = 0;
        f->tasks = 0;
        return CB_OK;
    }
    return set_tasks(f, max_tasks, err, errlen);
}

static cb_status set_tasks(cb_flow *f, uint32_t max_tasks, char *err, size_t errlen)
{
    uint64_t tasks = (f->items + f->chunksize - 1) / f->chunksize;
    if (tasks > max_tasks) {
        char n[32], m[32];
        snprintf(n, sizeof n, "%llu", (unsigned long long)tasks);
        snprintf(m, sizeof m, "%u", max_tasks);
        return fail(err, errlen, CB_EINVAL, "/input: %s tasks, more than the limit of %s", n, m);
    }
    f->map_tasks = (uint32_t)tasks;
    f->tasks = f->map_tasks + (f->kind == CB_FLOW_MAP_REDUCE ? 1 : 0);
    return CB_OK;
}

uint64_t cb_flow_object_chunk(const json_t *objects, uint64_t size)
{
    const json_t *cb = json_object_get(objects, "chunk_bytes");
    const json_t *cn = json_object_get(objects, "chunk_number");
    if (json_is_integer(cb) && json_integer_value(cb) > 0)
        return (uint64_t)json_integer_value(cb);
    if (json_is_integer(cn) && json_integer_value(cn) > 0) {
        uint64_t n = (uint64_t)json_integer_value(cn), c = (size + n - 1) / n;
        return c ? c : 1;
    }
    return CB_FLOW_CHUNK_BYTES;
}

uint64_t cb_flow_object_parts(uint64_t size, uint64_t chunk)
{
    return size == 0 || chunk == 0 ? 1 : (size - 1) / chunk + 1;
}

cb_status cb_flow_set_partition(cb_flow *f, const json_t *objects, uint32_t max_tasks, char *err,
                                size_t errlen)
{
    size_t n = json_array_size(objects);
    uint64_t *base;
    uint64_t items = 0;
    if (!f->objects || f->partitioned)
        return fail(err, errlen, CB_EINVAL, "/input: not an objects input waiting for its plan");
    if (n == 0)
        return fail(err, errlen, CB_EINVAL, "/input/objects: no objects to map over");
    if (!(base = cb_calloc(n + 1, sizeof *base)))
        return CB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(objects, i);
        const json_t *size = json_object_get(o, "size"), *chunk = json_object_get(o, "chunk");
        if (!json_is_string(json_object_get(o, "url")) || !json_is_integer(size) ||
            json_integer_value(size) < 0 || !json_is_integer(chunk) ||
            json_integer_value(chunk) < 1) {
            cb_free(base);
            return fail(err, errlen, CB_EINVAL, "/partition/%zu: not {url, etag, size, chunk}", i);
        }
        base[i] = items;
        items += cb_flow_object_parts((uint64_t)json_integer_value(size),
                                      (uint64_t)json_integer_value(chunk));
    }
    base[n] = items;
    f->part_base = base;
    f->nobjects = n;
    f->items = items;
    f->partition = json_incref((json_t *)objects);
    f->partitioned = true;
    return set_tasks(f, max_tasks ? max_tasks : DEFAULT_MAX_TASKS, err, errlen);
}

/* Item i of an objects input: its object by binary search over part_base;
 * "part" is the range's index within its object. */
static json_t *object_item(const cb_flow *f, uint64_t i)
{
    size_t lo = 0, hi = f->nobjects;
    const json_t *o;
    uint64_t size, chunk, start, end;
    json_t *item;
    while (hi - lo > 1) { /* the last object whose first item is <= i */
        size_t mid = (lo + hi) / 2;
        if (f->part_base[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    o = json_array_get(f->partition, lo);
    size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    chunk = (uint64_t)json_integer_value(json_object_get(o, "chunk"));
    start = (i - f->part_base[lo]) * chunk;
    end = start + chunk < size ? start + chunk : size;
    item =
        json_pack("{s:O, s:O, s:I, s:[I, I], s:I}", "url", json_object_get(o, "url"), "etag",
                  json_object_get(o, "etag"), "size", (json_int_t)size, "range", (json_int_t)start,
                  (json_int_t)end, "part", (json_int_t)(i - f->part_base[lo]));
    if (item && f->split_lines && json_object_set_new(item, "split", json_string("lines")) != 0) {
        json_decref(item);
        return NULL;
    }
    return item;
}

json_t *cb_flow_item(const cb_flow *f, uint64_t i)
{
    if (i >= f->items)
        return NULL;
    if (f->objects)
        return object_item(f, i);
    if (f->item_array)
        return json_incref(json_array_get(f->item_array, (size_t)i));
    return json_integer(f->range_start + (int64_t)i * f->range_step);
}

json_t *cb_flow_map_items(const cb_flow *f, uint32_t task)
{
    json_t *a;
    uint64_t from = (uint64_t)task * f->chunksize, to = from + f->chunksize;
    if ((f->kind != CB_FLOW_MAP && f->kind != CB_FLOW_MAP_REDUCE) || task >= f->map_tasks)
        return NULL;
    if (to > f->items)
        to = f->items;
    if (!(a = json_array()))
        return NULL;
    for (uint64_t i = from; i < to; i++)
        if (json_array_append_new(a, cb_flow_item(f, i)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

uint32_t cb_flow_reduce_task(const cb_flow *f)
{
    return f->map_tasks;
}

/* ---- dags ------------------------------------------------------------ */

int32_t cb_flow_step_index(const cb_flow *f, const char *name)
{
    /* steps are sorted by name: binary search */
    size_t lo = 0, hi = f->nsteps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->steps[mid].name, name);
        if (c == 0)
            return (int32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const cb_flow_step *)a)->name, ((const cb_flow_step *)b)->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Add the step named by `ref` (at JSON path step/field) as a dependency. */
static cb_status add_dep(cb_flow *f, cb_flow_step *s, uint32_t self, const json_t *ref,
                         const char *field, char *err, size_t errlen)
{
    const char *name = json_string_value(ref);
    int32_t idx = name ? cb_flow_step_index(f, name) : -1;
    char path[300];
    snprintf(path, sizeof path, "/tasks/%s/%s", s->name, field);
    if (idx < 0)
        return fail(err, errlen, CB_EINVAL, "%s: no step named \"%s\"", path, name ? name : "");
    if ((uint32_t)idx == self)
        return fail(err, errlen, CB_EINVAL, "%s: a step cannot depend on itself", path);
    for (size_t i = 0; i < s->ndeps; i++)
        if (s->deps[i] == (uint32_t)idx)
            return CB_OK;
    uint32_t *d = cb_realloc(s->deps, (s->ndeps + 1) * sizeof *d);
    if (!d)
        return CB_ENOMEM;
    s->deps = d;
    s->deps[s->ndeps++] = (uint32_t)idx;
    return CB_OK;
}

static cb_status collect_deps(cb_flow *f, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < f->nsteps; i++) {
        cb_flow_step *s = &f->steps[i];
        const json_t *v, *x;
        size_t k;
        cb_status st = CB_OK;

        json_array_foreach(json_object_get(s->spec, "depends"), k, x) if (st == CB_OK) st =
            add_dep(f, s, i, x, "depends", err, errlen);
        v = json_object_get(s->spec, "input_from");
        if (st == CB_OK && json_is_string(v))
            st = add_dep(f, s, i, v, "input_from", err, errlen);
        json_array_foreach(json_is_array(v) ? v : NULL, k, x) if (st == CB_OK) st =
            add_dep(f, s, i, x, "input_from", err, errlen);
        if (st == CB_OK && (v = json_object_get(s->spec, "foreach"))) {
            st = add_dep(f, s, i, v, "foreach", err, errlen);
            s->foreach = cb_flow_step_index(f, json_string_value(v));
        }
        if (st == CB_OK && (v = json_object_get(json_object_get(s->spec, "when"), "step")))
            st = add_dep(f, s, i, v, "when/step", err, errlen);
        if (st != CB_OK)
            return st;
        if (s->ndeps > 1)
            qsort(s->deps, s->ndeps, sizeof *s->deps, cmp_u32);
    }
    return CB_OK;
}

/* Kahn's algorithm; on a cycle, name one of its steps. */
static cb_status topo_sort(cb_flow *f, char *err, size_t errlen)
{
    size_t n = f->nsteps, head = 0, tail = 0;
    uint32_t *indeg = cb_calloc(n, sizeof *indeg);
    f->order = cb_calloc(n, sizeof *f->order);
    if (!indeg || !f->order) {
        cb_free(indeg);
        return CB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        indeg[i] = (uint32_t)f->steps[i].ndeps;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            f->order[tail++] = (uint32_t)i;
    while (head < tail) {
        uint32_t done = f->order[head++];
        /* O(n * deps): DAGs are small next to map jobs */
        for (size_t i = 0; i < n; i++)
            for (size_t d = 0; d < f->steps[i].ndeps; d++)
                if (f->steps[i].deps[d] == done && --indeg[i] == 0)
                    f->order[tail++] = (uint32_t)i;
    }
    if (tail < n) {
        size_t stuck = 0;
        while (indeg[stuck] == 0)
            stuck++;
        cb_free(indeg);
        char path[200];
        snprintf(path, sizeof path, "/tasks/%s", f->steps[stuck].name);
        return fail(err, errlen, CB_EINVAL, "%s: the steps' dependencies form a cycle", path);
    }
    cb_free(indeg);
    return CB_OK;
}

static cb_status build_dag(cb_flow *f, const json_t *spec, uint32_t max_tasks, char *err,
                           size_t errlen)
{
    const json_t *tasks = json_object_get(spec, "tasks"), *v;
    const char *name;
    size_t i = 0;

    size_t n = json_object_size(tasks);
    if (n == 0 || n > max_tasks)
        return fail(err, errlen, CB_EINVAL, "/tasks: between 1 and %u steps", max_tasks);
    /* nsteps only once steps exists: cb_flow_cleanup walks steps[0, nsteps) */
    if (!(f->steps = cb_calloc(n, sizeof *f->steps)))
        return CB_ENOMEM;
    f->nsteps = n;
    json_object_foreach((json_t *)tasks, name, v)
    {
        f->steps[i].name = name;
        f->steps[i].spec = v;
        f->steps[i].foreach = -1;
        i++;
    }
    /* Task indices follow the names' order: stable whatever the JSON order. */
    qsort(f->steps, f->nsteps, sizeof *f->steps, by_name);
    f->tasks = (uint32_t)f->nsteps;
    cb_status s = collect_deps(f, err, errlen);
    return s == CB_OK ? topo_sort(f, err, errlen) : s;
}

static const char *backend_of(const json_t *holder)
{
    return json_string_value(json_object_get(json_object_get(holder, "function"), "backend"));
}

/* The lane of account `b` ("local" when NULL), added on first use; -1:
 * already CB_FLOW_LANES_MAX others. */
static int lane_add(cb_flow *f, const char *b)
{
    uint8_t k;
    b = b ? b : "local";
    for (k = 0; k < f->nlanes && strcmp(f->lanes[k], b); k++)
        ;
    if (k == CB_FLOW_LANES_MAX)
        return -1;
    if (k == f->nlanes)
        f->lanes[f->nlanes++] = b;
    return k;
}

static cb_status build_lanes(cb_flow *f, char *err, size_t errlen)
{
    int k = 0;
    if (f->kind != CB_FLOW_DAG)
        k = lane_add(f, backend_of(f->spec));
    if (f->kind == CB_FLOW_MAP_REDUCE && k >= 0 &&
        (k = lane_add(f, backend_of(json_object_get(f->spec, "reduce")))) >= 0)
        f->reduce_lane = (uint8_t)k;
    for (size_t i = 0; i < f->nsteps && k >= 0; i++)
        if ((k = lane_add(f, backend_of(f->steps[i].spec))) >= 0)
            f->steps[i].lane = (uint8_t)k;
    if (k < 0)
        return fail(err, errlen, CB_EINVAL,
                    "/: the job's functions name more than %d backends or pools",
                    CB_FLOW_LANES_MAX);
    return CB_OK;
}

uint8_t cb_flow_lane(const cb_flow *f, uint32_t task, int32_t step)
{
    if (f->nlanes < 2)
        return 0;
    if (f->kind == CB_FLOW_DAG)
        return step >= 0 && (size_t)step < f->nsteps ? f->steps[step].lane : 0;
    return f->kind == CB_FLOW_MAP_REDUCE && task == cb_flow_reduce_task(f) ? f->reduce_lane : 0;
}

cb_status cb_flow_build(const json_t *spec, uint32_t max_tasks, cb_flow *out, char *err,
                        size_t errlen)
{
    const char *kind = json_string_value(json_object_get(spec, "kind"));
    cb_status s;

    memset(out, 0, sizeof *out);
    if (!max_tasks)
        max_tasks = DEFAULT_MAX_TASKS;
    if (!kind)
        return fail(err, errlen, CB_EINVAL, "/kind: missing");
    out->spec = json_incref((json_t *)spec);
    if (!strcmp(kind, "call")) {
        out->kind = CB_FLOW_CALL;
        out->tasks = 1;
        s = CB_OK;
    } else if (!strcmp(kind, "map") || !strcmp(kind, "map_reduce")) {
        out->kind = !strcmp(kind, "map") ? CB_FLOW_MAP : CB_FLOW_MAP_REDUCE;
        s = build_map(out, spec, max_tasks, err, errlen);
    } else if (!strcmp(kind, "dag")) {
        out->kind = CB_FLOW_DAG;
        s = build_dag(out, spec, max_tasks, err, errlen);
    } else {
        s = fail(err, errlen, CB_EINVAL, "/kind: unknown kind \"%s\"", kind);
    }
    if (s == CB_OK)
        s = build_lanes(out, err, errlen);
    if (s != CB_OK)
        cb_flow_cleanup(out);
    return s;
}

const char *cb_flow_backend(const cb_flow *f)
{
    enum { SEEN_MAX = 32 }; /* distinct backends counted; more are rare (accounts) */
    const char *seen[SEEN_MAX], *best = NULL;
    size_t count[SEEN_MAX], nseen = 0, most = 0;
    if (f->kind != CB_FLOW_DAG)
        return backend_of(f->spec) ?: "local";
    for (size_t i = 0; i < f->nsteps; i++) {
        const char *b = backend_of(f->steps[i].spec);
        size_t k = 0;
        while (b && k < nseen && strcmp(seen[k], b) != 0)
            k++;
        if (!b || (k == nseen && nseen == SEEN_MAX))
            continue;
        if (k == nseen) {
            seen[nseen] = b;
            count[nseen++] = 0;
        }
        if (++count[k] > most) {
            most = count[k];
            best = b;
        }
    }
    return best ?: "local";
}
