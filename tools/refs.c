/* tools/refs.c - the configured storage and references in results (refs.h). */
#include "refs.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cb_config.h"
#include "cb_digest.h"
#include "cb_json.h"
#include "cb_loop.h"
#include "cb_ref.h"
#include "cb_storage.h"

struct cb_storage *cb_cli_open_storage(const char *cmd, const char *config, struct event_base *base)
{
    char err[600], root[600];
    const char *dir = getenv("CB_DIR");
    cb_config *cfg = NULL;
    cb_storage *st = NULL;
    if (!config)
        config = getenv("CB_CONFIG");
    if (config && *config && cb_config_load(config, &cfg, err, sizeof err) != CB_OK) {
        fprintf(stderr, "cb %s: %s\n", cmd, err);
        return NULL;
    }
    snprintf(root, sizeof root, "%s/objects", dir && *dir ? dir : ".cb");
    if (!cb_config_storage(cfg) ||
        !json_object_get(cb_config_storage(cfg), "root")) { /* the default directory */
        char parent[600];
        snprintf(parent, sizeof parent, "%s", dir && *dir ? dir : ".cb");
        (void)mkdir(parent, 0755);
        (void)mkdir(root, 0755);
    }
    if (cb_storage_new(base, cb_config_storage(cfg), root, &st, err, sizeof err) != CB_OK)
        fprintf(stderr, "cb %s: %s%s%s\n", cmd, config ? config : "", config ? ": " : "", err);
    cb_config_free(cfg);
    return st;
}

static int is_ref(const json_t *v)
{
    return cb_ref_parse(v, NULL);
}

int cb_cli_has_refs(const json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (is_ref(v))
        return 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) if (cb_cli_has_refs(x)) return 1;
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) if (cb_cli_has_refs(x)) return 1;
    }
    return 0;
}

typedef struct fetch {
    struct event_base *base;
    int done;
    json_t *value;
    char error[1400];
    const json_t *ref;
} fetch;

static void got(const cb_storage_res *r, void *ctx)
{
    fetch *f = ctx;
    const char *url = json_string_value(json_object_get(f->ref, "$cb_ref"));
    json_int_t size = json_integer_value(json_object_get(f->ref, "size"));
    const char *want = json_string_value(json_object_get(f->ref, "sha256"));
    char hex[65];
    json_error_t je;
    cb_status s;
    f->done = 1;
    if (r->status != CB_OK) {
        snprintf(f->error, sizeof f->error, "%s", r->error);
    } else if ((json_int_t)r->len != size) {
        snprintf(f->error, sizeof f->error, "%s: %zu bytes, the reference says %lld", url, r->len,
                 (long long)size);
    } else if (want && (cb_digest_hex(r->data, r->len, hex) != CB_OK || strcmp(hex, want))) {
        snprintf(f->error, sizeof f->error, "%s: sha256 %s, the reference says %s", url, hex, want);
    } else if (!(f->value = cb_json_loadb(r->data, r->len, JSON_DECODE_ANY, &je, &s))) {
        snprintf(f->error, sizeof f->error, "%s: not JSON: %s", url, je.text);
    }
}

/* depth: a reference's value may hold references (a result kept as one
 * object names the outputs kept apart), resolved in turn up to a bound. */
static int resolve(const char *cmd, struct event_base *base, cb_storage *st, json_t **v, int depth)
{
    const char *k;
    json_t *x;
    size_t i;
    if (is_ref(*v)) {
        fetch f = {base, 0, NULL, "", *v};
        char err[600];
        if (cb_storage_get(st, json_string_value(json_object_get(*v, "$cb_ref")), 0,
                           CB_STORAGE_RANGE_END, got, &f, err, sizeof err) != CB_OK) {
            fprintf(stderr, "cb %s: %s\n", cmd, err);
            return -1;
        }
        while (!f.done)
            if (event_base_loop(base, EVLOOP_ONCE) < 0)
                return -1;
        if (!f.value) {
            fprintf(stderr, "cb %s: %s\n", cmd, f.error);
            return -1;
        }
        json_decref(*v);
        *v = f.value;
        return depth < 2 ? resolve(cmd, base, st, v, depth + 1) : 0;
    }
    if (json_is_array(*v)) {
        json_array_foreach(*v, i, x)
        {
            json_t *y = json_incref(x);
            if (resolve(cmd, base, st, &y, depth) != 0 || json_array_set_new(*v, i, y) != 0)
                return -1;
        }
    } else if (json_is_object(*v)) {
        json_object_foreach(*v, k, x)
        {
            json_t *y = json_incref(x);
            if (resolve(cmd, base, st, &y, depth) != 0 || json_object_set_new(*v, k, y) != 0)
                return -1;
        }
    }
    return 0;
}

int cb_cli_resolve_refs(const char *cmd, const char *config, json_t **v)
{
    struct event_base *base;
    cb_storage *st;
    int rc;
    json_t *copy;
    if (!cb_cli_has_refs(*v))
        return 0;
    if (!(copy = json_deep_copy(*v))) /* the caller's value may be shared */
        return -1;
    json_decref(*v);
    *v = copy;
    if (!(base = cb_loop_new()))
        return -1;
    if (!(st = cb_cli_open_storage(cmd, config, base))) {
        event_base_free(base);
        return -1;
    }
    rc = resolve(cmd, base, st, v, 0);
    cb_storage_free(st);
    event_base_free(base);
    return rc;
}
