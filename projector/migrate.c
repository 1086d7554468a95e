/* projector/migrate.c - the store's format (see migrate.h). */
#include "migrate.h"

#include <string.h>

#include "cb_json.h"
#include "layout.h"

#define FORMAT "2" /* 2: the open database */

typedef struct reopen_ctx {
    cb_txn *t;
    cb_status s; /* the first failure: the format is then not recorded */
} reopen_ctx;

/* A task record's entry in the open index, if it is open. */
static int reopen_task(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    reopen_ctx *c = arg;
    cb_task_state ts;
    json_error_t je;
    json_t *o = cb_json_loadb(val, vlen, 0, &je, &c->s);
    if (o && (c->s = cb_task_state_from_json(o, &ts)) == CB_OK) {
        if (cb_layout_task_open(ts.status))
            c->s = cb_store_put(c->t, CB_DB_OPEN, key, klen, "", 0);
        cb_task_state_cleanup(&ts);
    }
    json_decref(o);
    if (c->s == CB_EINVAL)
        c->s = CB_EIO; /* a damaged record */
    return c->s != CB_OK;
}

cb_status cb_store_migrate(cb_store *st)
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
    reopen_ctx c = {t, CB_OK};
    s = cb_store_scan(t, CB_DB_TASKS, NULL, 0, reopen_task, &c);
    if (s == CB_OK)
        s = c.s;
    if (s == CB_OK)
        s = cb_store_put(t, CB_DB_META, "format", 6, FORMAT, 1);
    if (s != CB_OK) {
        cb_store_abort(t);
        return s;
    }
    return cb_store_commit(t);
}
