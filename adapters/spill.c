/* adapters/spill.c - outputs too large for the log go to storage (spill.h). */
#include "spill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_json.h"
#include "cb_storage.h"

#define REF_BYTES 256 /* what a reference costs in the outputs' text, at most */

typedef struct spill {
    json_t *out;  /* the new outputs */
    char **texts; /* items' texts (NULL: kept inline) */
    size_t n, pending;
    cb_status status;
    char error[1200];
    cb_spill_done *done;
    void *ctx;
} spill;

typedef struct put_ctx {
    spill *sp;
    size_t index;
    char url[CB_STORAGE_URL_MAX];
    char sha[65];
    size_t size;
} put_ctx;

int cb_spill_needed(const cb_storage *st, const json_t *outputs)
{
    char *text;
    size_t len;
    if (!st || !outputs)
        return 0;
    if (!(text = cb_json_dumps(outputs, JSON_COMPACT | JSON_ENCODE_ANY)))
        return 0; /* the emit fails on it the same way */
    len = strlen(text);
    free(text);
    return len > cb_storage_inline_max(st);
}

/* Free sp; its new outputs too unless `keep_out`. */
static void spill_free(spill *sp, int keep_out)
{
    for (size_t i = 0; sp->texts && i < sp->n; i++)
        free(sp->texts[i]);
    free(sp->texts);
    if (!keep_out)
        json_decref(sp->out);
    free(sp);
}

static void finish(spill *sp)
{
    if (sp->status == CB_OK)
        sp->done(CB_OK, sp->out, NULL, sp->ctx);
    else
        sp->done(sp->status, NULL, sp->error, sp->ctx);
    spill_free(sp, sp->status == CB_OK);
}

static void put_done(const cb_storage_res *r, void *ctx)
{
    put_ctx *p = ctx;
    spill *sp = p->sp;
    if (r->status != CB_OK) {
        if (sp->status == CB_OK) {
            sp->status = r->status;
            snprintf(sp->error, sizeof sp->error, "cannot store an output: %s", r->error);
        }
    } else {
        json_t *ref = json_pack("{s:s, s:I, s:s}", "$cb_ref", p->url, "size", (json_int_t)p->size,
                                "sha256", p->sha);
        if (!ref || json_array_set_new(sp->out, p->index, ref) != 0) {
            sp->status = CB_ENOMEM;
            snprintf(sp->error, sizeof sp->error, "out of memory");
        }
    }
    free(p);
    if (--sp->pending == 0)
        finish(sp);
}

typedef struct by_size {
    size_t index, size;
} by_size;

static int larger_first(const void *a, const void *b)
{
    const by_size *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

cb_status cb_spill(cb_storage *st, const char *tenant, const char *job, uint32_t task,
                   uint32_t attempt, const json_t *outputs, cb_spill_done *done, void *ctx,
                   char *err, size_t errlen)
{
    size_t n = json_array_size(outputs), total = 2, limit = cb_storage_inline_max(st);
    spill *sp = cb_calloc(1, sizeof *sp);
    by_size *order = NULL;
    cb_status s = CB_OK;
    if (!sp || !(sp->texts = cb_calloc(n ? n : 1, sizeof *sp->texts)) ||
        !(order = cb_calloc(n ? n : 1, sizeof *order)) || !(sp->out = json_array())) {
        s = CB_ENOMEM;
        goto fail;
    }
    sp->n = n;
    sp->done = done;
    sp->ctx = ctx;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(outputs, i);
        if (json_array_append((json_t *)sp->out, (json_t *)v) != 0 ||
            !(sp->texts[i] = cb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
            s = CB_ENOMEM;
            goto fail;
        }
        order[i] = (by_size){i, strlen(sp->texts[i])};
        total += order[i].size + 1;
    }
    qsort(order, n, sizeof *order, larger_first);
    /* the largest first, until what stays inline fits (always at least one) */
    sp->pending = 1; /* held until every put has started */
    for (size_t k = 0; k < n && (k == 0 || total > limit); k++) {
        put_ctx *p = cb_calloc(1, sizeof *p);
        char why[300];
        size_t i = order[k].index;
        if (!p) {
            s = CB_ENOMEM;
            break;
        }
        p->sp = sp;
        p->index = i;
        p->size = order[k].size;
        snprintf(p->url, sizeof p->url, "s3://%s/results/%s/%s/%u.%u.%zu.json",
                 cb_storage_results_bucket(st), tenant, job, task, attempt, i);
        if ((s = cb_digest_hex(sp->texts[i], p->size, p->sha)) != CB_OK ||
            (s = cb_storage_put(st, p->url, sp->texts[i], p->size, put_done, p, why, sizeof why)) !=
                CB_OK) {
            if (sp->status == CB_OK) {
                sp->status = s;
                snprintf(sp->error, sizeof sp->error, "cannot store an output: %s", why);
            }
            free(p);
            s = CB_OK; /* reported through the callback */
            break;
        }
        sp->pending++;
        total -= order[k].size > REF_BYTES ? order[k].size - REF_BYTES : 0;
    }
    free(order);
    if (s != CB_OK && sp->status == CB_OK) {
        sp->status = s;
        snprintf(sp->error, sizeof sp->error, "out of memory");
    }
    if (--sp->pending > 0)
        return CB_OK; /* the last put's callback reports */
    /* no put started: nothing will call back */
    snprintf(err, errlen, "%s", sp->error);
    s = sp->status != CB_OK ? sp->status : CB_ENOMEM;
    spill_free(sp, 0);
    return s;
fail:
    snprintf(err, errlen, "out of memory");
    free(order);
    if (sp)
        spill_free(sp, 0);
    return s;
}
