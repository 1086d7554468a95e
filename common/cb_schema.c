/* common/cb_schema.c - a validator for the JSON Schema subset in cb_schema.h. */
#define _GNU_SOURCE
#include "cb_schema.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_map.h"
#include "cb_pattern.h"
#include "cb_time.h"

#define MAX_DEPTH 64 /* $ref chains and nesting: deeper is a schema bug or an attack */

typedef struct doc {
    char *id;
    json_t *root;
} doc;

struct cb_schema {
    doc *docs;
    size_t ndocs;
    cb_map patterns; /* (uintptr_t)pattern json_t -> cb_pattern */
};

/* One validation run. */
typedef struct run {
    const cb_schema *s;
    json_t *errors; /* NULL: only the verdict is wanted */
    size_t max_errors;
    size_t nerrors;
    char path[1024];
    size_t path_len;
} run;

static const char *const known_keywords[] = {"$schema",
                                             "$id",
                                             "$defs",
                                             "$ref",
                                             "$comment",
                                             "title",
                                             "description",
                                             "default",
                                             "examples",
                                             "type",
                                             "enum",
                                             "const",
                                             "minimum",
                                             "maximum",
                                             "exclusiveMinimum",
                                             "exclusiveMaximum",
                                             "minLength",
                                             "maxLength",
                                             "pattern",
                                             "format",
                                             "items",
                                             "minItems",
                                             "maxItems",
                                             "uniqueItems",
                                             "properties",
                                             "required",
                                             "additionalProperties",
                                             "propertyNames",
                                             "minProperties",
                                             "maxProperties",
                                             "dependentSchemas",
                                             "allOf",
                                             "anyOf",
                                             "oneOf",
                                             "not",
                                             "if",
                                             "then",
                                             "else",
                                             NULL};

const char *cb_schema_default_dir(void)
{
    const char *env = getenv("CB_SCHEMA_DIR");
#ifdef CB_SCHEMA_DIR
    return env && *env ? env : CB_SCHEMA_DIR;
#else
    return env && *env ? env : "schemas";
#endif
}

/* ---- loading --------------------------------------------------------- */

static void free_pattern(uint64_t key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    cb_pattern_free(val);
}

void cb_schema_free(cb_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ndocs; i++) {
        cb_free(s->docs[i].id);
        json_decref(s->docs[i].root);
    }
    cb_free(s->docs);
    cb_map_each(&s->patterns, free_pattern, NULL);
    cb_map_cleanup(&s->patterns);
    cb_free(s);
}

/* Walk a schema: refuse unknown keywords, compile patterns. */
static cb_status check_schema(cb_schema *s, json_t *sch, const char *file, char *err, size_t errlen,
                              int depth)
{
    const char *key;
    json_t *val;

    if (json_is_boolean(sch))
        return CB_OK;
    if (!json_is_object(sch) || depth > MAX_DEPTH) {
        snprintf(err, errlen, "%s: a schema must be an object or a boolean", file);
        return CB_EINVAL;
    }
    json_object_foreach(sch, key, val)
    {
        bool known = false;
        for (int i = 0; known_keywords[i]; i++)
            known = known || strcmp(key, known_keywords[i]) == 0;
        if (!known) {
            snprintf(err, errlen, "%s: unsupported keyword \"%s\"", file, key);
            return CB_EINVAL;
        }
        cb_status st = CB_OK;
        if (!strcmp(key, "pattern")) {
            cb_pattern *pat =
                json_is_string(val) ? cb_pattern_compile(json_string_value(val)) : NULL;
            if (!pat) {
                snprintf(err, errlen, "%s: bad pattern", file);
                return CB_EINVAL;
            }
            if (cb_map_put(&s->patterns, (uintptr_t)val, pat) != CB_OK) {
                cb_pattern_free(pat);
                return CB_ENOMEM;
            }
        } else if (!strcmp(key, "properties") || !strcmp(key, "$defs") ||
                   !strcmp(key, "dependentSchemas")) {
            const char *k2;
            json_t *v2;
            json_object_foreach(val, k2, v2)
            {
                if ((st = check_schema(s, v2, file, err, errlen, depth + 1)) != CB_OK)
                    return st;
            }
        } else if (!strcmp(key, "allOf") || !strcmp(key, "anyOf") || !strcmp(key, "oneOf")) {
            size_t i;
            json_t *v2;
            json_array_foreach(val, i, v2)
            {
                if ((st = check_schema(s, v2, file, err, errlen, depth + 1)) != CB_OK)
                    return st;
            }
        } else if (!strcmp(key, "items") || !strcmp(key, "additionalProperties") ||
                   !strcmp(key, "propertyNames") || !strcmp(key, "not") || !strcmp(key, "if") ||
                   !strcmp(key, "then") || !strcmp(key, "else")) {
            st = check_schema(s, val, file, err, errlen, depth + 1);
        }
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cb_status cb_schema_load_dir(const char *dir, cb_schema **out, char *err, size_t errlen)
{
    char dummy[8];
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    cb_status st = CB_OK;
    cb_schema *s;

    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!d) {
        snprintf(err, errlen, "cannot open schema directory %s", dir);
        return CB_ENOTFOUND;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            char **nn = cb_realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
            if (!nn) {
                st = CB_ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = cb_strdup(de->d_name))) {
            st = CB_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (st == CB_OK && !(s = cb_calloc(1, sizeof *s)))
        st = CB_ENOMEM;
    if (st != CB_OK)
        goto out_free_names;
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    cb_map_init(&s->patterns);
    s->docs = cb_calloc(n ? n : 1, sizeof *s->docs);
    if (!s->docs) {
        st = CB_ENOMEM;
        goto out_free_schema;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        json_error_t je;
        json_t *root, *id;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
            snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
            st = CB_EINVAL;
            goto out_free_schema;
        }
        if (json_object_get(root, "openapi")) { /* the HTTP API's description (docs/api.md) */
            json_decref(root);
            continue;
        }
        id = json_object_get(root, "$id");
        s->docs[s->ndocs].root = root;
        s->docs[s->ndocs].id = cb_strdup(json_is_string(id) ? json_string_value(id) : names[i]);
        s->ndocs++;
        if (!s->docs[s->ndocs - 1].id) {
            st = CB_ENOMEM;
            goto out_free_schema;
        }
        if ((st = check_schema(s, root, names[i], err, errlen, 0)) != CB_OK)
            goto out_free_schema;
    }
    *out = s;
    s = NULL;
out_free_schema:
    cb_schema_free(s);
out_free_names:
    for (size_t i = 0; i < n; i++)
        cb_free(names[i]);
    cb_free(names);
    return st;
}

/* ---- references ------------------------------------------------------ */

static const doc *find_doc(const cb_schema *s, const char *id, size_t len)
{
    for (size_t i = 0; i < s->ndocs; i++)
        if (strlen(s->docs[i].id) == len && memcmp(s->docs[i].id, id, len) == 0)
            return &s->docs[i];
    return NULL;
}

/* Resolve a JSON Pointer ("/a/b~1c") within root. */
static json_t *resolve_pointer(json_t *root, const char *ptr)
{
    json_t *cur = root;
    char tok[256];
    while (*ptr == '/' && cur) {
        size_t n = 0;
        ptr++;
        while (*ptr && *ptr != '/' && n < sizeof tok - 1) {
            if (ptr[0] == '~' && ptr[1] == '1') {
                tok[n++] = '/';
                ptr += 2;
            } else if (ptr[0] == '~' && ptr[1] == '0') {
                tok[n++] = '~';
                ptr += 2;
            } else {
                tok[n++] = *ptr++;
            }
        }
        tok[n] = '\0';
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
                                 : json_object_get(cur, tok);
    }
    return *ptr ? NULL : cur;
}

/* ref relative to the document `base`; sets *doc_out to the target's document. */
static json_t *resolve_ref(const cb_schema *s, const doc *base, const char *ref,
                           const doc **doc_out)
{
    const char *hash = strchr(ref, '#');
    size_t flen = hash ? (size_t)(hash - ref) : strlen(ref);
    const doc *d = flen ? find_doc(s, ref, flen) : base;
    if (!d)
        return NULL;
    *doc_out = d;
    return hash ? resolve_pointer(d->root, hash + 1) : d->root;
}

/* ---- errors ---------------------------------------------------------- */

static void fail(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(run *r, const char *fmt, ...)
{
    char msg[1600], rule[512];
    va_list ap;

    r->nerrors++;
    if (!r->errors || json_array_size(r->errors) >= r->max_errors)
        return;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", r->path_len ? r->path : "/", rule);
    json_array_append_new(r->errors, json_string(msg));
}

static size_t path_push(run *r, const char *tok)
{
    size_t old = r->path_len;
    size_t room = sizeof r->path - old;
    int n = snprintf(r->path + old, room, "/");
    size_t len = old + (size_t)n;
    for (const char *p = tok; *p && len + 3 < sizeof r->path; p++) {
        if (*p == '/' || *p == '~') { /* JSON Pointer escaping */
            r->path[len++] = '~';
            r->path[len++] = *p == '/' ? '1' : '0';
        } else {
            r->path[len++] = *p;
        }
    }
    r->path[len] = '\0';
    r->path_len = len;
    return old;
}

static size_t path_push_index(run *r, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return path_push(r, buf);
}

static void path_pop(run *r, size_t old)
{
    r->path_len = old;
    r->path[old] = '\0';
}

/* ---- the validator --------------------------------------------------- */

static bool validate(run *r, const doc *d, const json_t *sch, const json_t *inst, int depth);

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static bool is_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v) ||
               (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    return !strcmp(type_name(v), t);
}

/* JSON equality as JSON Schema means it: 1 == 1.0. */
static bool json_eq(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* UTF-8 code points, as minLength/maxLength count them. */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Run a subschema only for its verdict, without recording errors. */
static bool probe(run *r, const doc *d, const json_t *sch, const json_t *inst, int depth)
{
    run sub = *r;
    sub.errors = NULL;
    sub.nerrors = 0;
    return validate(&sub, d, sch, inst, depth);
}

static void dump_short(const json_t *v, char *buf, size_t size)
{
    char *s = cb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", s ? s : "?");
    if (s && strlen(s) >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    free(s);
}

static bool check_type(run *r, const json_t *t, const json_t *inst)
{
    if (json_is_string(t)) {
        if (is_type(inst, json_string_value(t)))
            return true;
        fail(r, "expected %s, got %s", json_string_value(t), type_name(inst));
        return false;
    }
    size_t i;
    json_t *x;
    json_array_foreach(t, i,
                       x) if (json_is_string(x) && is_type(inst, json_string_value(x))) return true;
    fail(r, "unexpected type %s", type_name(inst));
    return false;
}

static bool check_number(run *r, const json_t *sch, const json_t *inst)
{
    double v = json_number_value(inst);
    json_t *k;
    bool ok = true;
    if ((k = json_object_get(sch, "minimum")) && v < json_number_value(k)) {
        fail(r, "must be >= %g", json_number_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "maximum")) && v > json_number_value(k)) {
        fail(r, "must be <= %g", json_number_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "exclusiveMinimum")) && v <= json_number_value(k)) {
        fail(r, "must be > %g", json_number_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "exclusiveMaximum")) && v >= json_number_value(k)) {
        fail(r, "must be < %g", json_number_value(k));
        ok = false;
    }
    return ok;
}

static bool check_string(run *r, const json_t *sch, const json_t *inst)
{
    const char *v = json_string_value(inst);
    size_t len = utf8_len(v);
    json_t *k;
    bool ok = true;
    if ((k = json_object_get(sch, "minLength")) && len < (size_t)json_integer_value(k)) {
        fail(r, "must be at least %lld characters", (long long)json_integer_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "maxLength")) && len > (size_t)json_integer_value(k)) {
        fail(r, "must be at most %lld characters", (long long)json_integer_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "pattern"))) {
        const cb_pattern *pat = cb_map_get(&r->s->patterns, (uintptr_t)k);
        /* A string with a NUL inside never matches. */
        if (!pat || !cb_pattern_match(pat, v, json_string_length(inst))) {
            fail(r, "must match pattern %s", json_string_value(k));
            ok = false;
        }
    }
    if ((k = json_object_get(sch, "format")) && !strcmp(json_string_value(k), "date-time")) {
        int64_t ns;
        if (cb_time_parse(v, &ns) != 0) {
            fail(r, "must be an RFC 3339 date-time");
            ok = false;
        }
    }
    return ok;
}

static bool check_array(run *r, const doc *d, const json_t *sch, const json_t *inst, int depth)
{
    size_t n = json_array_size(inst), i, j;
    json_t *k, *x;
    bool ok = true;

    if ((k = json_object_get(sch, "minItems")) && n < (size_t)json_integer_value(k)) {
        fail(r, "must have at least %lld items", (long long)json_integer_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "maxItems")) && n > (size_t)json_integer_value(k)) {
        fail(r, "must have at most %lld items", (long long)json_integer_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "uniqueItems")) && json_is_true(k)) {
        /* O(n^2): only used on short arrays (depends, input_from) */
        for (i = 0; i < n && ok; i++)
            for (j = i + 1; j < n; j++)
                if (json_eq(json_array_get(inst, i), json_array_get(inst, j))) {
                    fail(r, "items %zu and %zu are equal; they must be unique", i, j);
                    ok = false;
                    break;
                }
    }
    if ((k = json_object_get(sch, "items"))) {
        json_array_foreach(inst, i, x)
        {
            size_t old = path_push_index(r, i);
            ok = validate(r, d, k, x, depth + 1) && ok;
            path_pop(r, old);
            if (!ok && !r->errors)
                return false;
        }
    }
    return ok;
}

static bool check_object(run *r, const doc *d, const json_t *sch, const json_t *inst, int depth)
{
    json_t *props = json_object_get(sch, "properties");
    json_t *addl = json_object_get(sch, "additionalProperties");
    json_t *names = json_object_get(sch, "propertyNames");
    json_t *deps = json_object_get(sch, "dependentSchemas");
    json_t *k, *v;
    const char *key;
    size_t i, n = json_object_size(inst);
    bool ok = true;

    if ((k = json_object_get(sch, "required"))) {
        json_array_foreach(k, i, v) if (!json_object_get(inst, json_string_value(v)))
        {
            fail(r, "missing required property \"%s\"", json_string_value(v));
            ok = false;
        }
    }
    if ((k = json_object_get(sch, "minProperties")) && n < (size_t)json_integer_value(k)) {
        fail(r, "must have at least %lld properties", (long long)json_integer_value(k));
        ok = false;
    }
    if ((k = json_object_get(sch, "maxProperties")) && n > (size_t)json_integer_value(k)) {
        fail(r, "must have at most %lld properties", (long long)json_integer_value(k));
        ok = false;
    }
    json_object_foreach((json_t *)inst, key, v)
    {
        json_t *ps = props ? json_object_get(props, key) : NULL;
        size_t old = path_push(r, key);
        if (names) {
            json_t *kn = json_string(key);
            if (kn && !probe(r, d, names, kn, depth + 1)) {
                fail(r, "property name \"%s\" is not allowed", key);
                ok = false;
            }
            json_decref(kn);
        }
        if (ps) {
            if (json_is_false(ps)) {
                fail(r, "property not allowed here");
                ok = false;
            } else {
                ok = validate(r, d, ps, v, depth + 1) && ok;
            }
        } else if (addl) {
            if (json_is_false(addl)) {
                fail(r, "unknown property");
                ok = false;
            } else {
                ok = validate(r, d, addl, v, depth + 1) && ok;
            }
        }
        path_pop(r, old);
        if (!ok && !r->errors)
            return false;
    }
    if (deps) {
        json_object_foreach(deps, key, v) if (json_object_get(inst, key))
        {
            ok = validate(r, d, v, inst, depth + 1) && ok;
        }
    }
    return ok;
}

static bool check_combinators(run *r, const doc *d, const json_t *sch, const json_t *inst,
                              int depth)
{
    json_t *k, *x;
    size_t i;
    bool ok = true;

    if ((k = json_object_get(sch, "allOf"))) {
        json_array_foreach(k, i, x) ok = validate(r, d, x, inst, depth + 1) && ok;
    }
    if ((k = json_object_get(sch, "anyOf"))) {
        bool any = false;
        json_array_foreach(k, i, x) if (probe(r, d, x, inst, depth + 1))
        {
            any = true;
            break;
        }
        if (!any) {
            fail(r, "matches none of the %zu allowed forms (anyOf)", json_array_size(k));
            ok = false;
        }
    }
    if ((k = json_object_get(sch, "oneOf"))) {
        size_t matched = 0;
        json_array_foreach(k, i, x) matched += probe(r, d, x, inst, depth + 1);
        if (matched != 1) {
            fail(r, "matches %zu of the allowed forms, exactly one is required (oneOf)", matched);
            ok = false;
        }
    }
    if ((k = json_object_get(sch, "not")) && probe(r, d, k, inst, depth + 1)) {
        char buf[96];
        json_t *c = json_object_get(k, "const");
        if (c) {
            dump_short(c, buf, sizeof buf);
            fail(r, "must not be %s", buf);
        } else {
            fail(r, "matches a form that is not allowed (not)");
        }
        ok = false;
    }
    if ((k = json_object_get(sch, "if"))) {
        json_t *branch = probe(r, d, k, inst, depth + 1) ? json_object_get(sch, "then")
                                                         : json_object_get(sch, "else");
        if (branch)
            ok = validate(r, d, branch, inst, depth + 1) && ok;
    }
    return ok;
}

static bool validate(run *r, const doc *d, const json_t *sch, const json_t *inst, int depth)
{
    json_t *k;
    bool ok = true;

    if (json_is_true(sch))
        return true;
    if (json_is_false(sch)) {
        fail(r, "not allowed");
        return false;
    }
    if (depth > MAX_DEPTH) {
        fail(r, "nested too deeply");
        return false;
    }
    if ((k = json_object_get(sch, "$ref"))) {
        const doc *td = d;
        json_t *target = resolve_ref(r->s, d, json_string_value(k), &td);
        if (!target) {
            fail(r, "schema error: unresolved $ref %s", json_string_value(k));
            return false;
        }
        ok = validate(r, td, target, inst, depth + 1);
        if (!ok && !r->errors)
            return false;
    }
    if ((k = json_object_get(sch, "type")) && !check_type(r, k, inst))
        return false; /* the other rules would only repeat the type mismatch */
    if ((k = json_object_get(sch, "const")) && !json_eq(k, inst)) {
        char buf[96];
        dump_short(k, buf, sizeof buf);
        fail(r, "must be %s", buf);
        ok = false;
    }
    if ((k = json_object_get(sch, "enum"))) {
        size_t i;
        json_t *x;
        bool found = false;
        json_array_foreach(k, i, x) found = found || json_eq(x, inst);
        if (!found) {
            char buf[256];
            dump_short(k, buf, sizeof buf);
            fail(r, "must be one of %s", buf);
            ok = false;
        }
    }
    if (json_is_number(inst))
        ok = check_number(r, sch, inst) && ok;
    else if (json_is_string(inst))
        ok = check_string(r, sch, inst) && ok;
    else if (json_is_array(inst))
        ok = check_array(r, d, sch, inst, depth) && ok;
    else if (json_is_object(inst))
        ok = check_object(r, d, sch, inst, depth) && ok;
    if (!ok && !r->errors)
        return false;
    return check_combinators(r, d, sch, inst, depth) && ok;
}

cb_status cb_schema_validate(const cb_schema *s, const char *ref, const json_t *instance,
                             size_t max_errors, json_t **errors)
{
    const doc *d = NULL;
    json_t *target = resolve_ref(s, NULL, ref, &d);
    run r;

    if (!target || !d)
        return CB_ENOTFOUND;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.max_errors = max_errors ? max_errors : 1;
    if (errors && !(r.errors = json_array()))
        return CB_ENOMEM;
    if (validate(&r, d, target, instance, 0)) {
        json_decref(r.errors);
        return CB_OK;
    }
    if (errors)
        *errors = r.errors;
    return CB_ESCHEMA;
}
