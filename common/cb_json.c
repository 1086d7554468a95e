/* common/cb_json.c - JSON dumps that fail instead of damaging text, and parse
 * failures told apart (see cb_json.h). */
#include "cb_json.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

typedef struct dumpbuf {
    char *p;
    size_t len, cap;
    int failed; /* sticky: jansson may go on after a failed write */
} dumpbuf;

static int dump_cb(const char *buf, size_t size, void *data)
{
    dumpbuf *d = data;
    if (d->failed)
        return -1;
    if (d->len + size + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 256;
        char *p;
        while (cap < d->len + size + 1)
            cap *= 2;
        if (!(p = cb_realloc(d->p, cap))) {
            d->failed = 1;
            return -1;
        }
        d->p = p;
        d->cap = cap;
    }
    memcpy(d->p + d->len, buf, size);
    d->len += size;
    return 0;
}

char *cb_json_dumps(const json_t *json, size_t flags)
{
    dumpbuf d = {0};
    unsigned long before = cb_alloc_failures();
    if (json_dump_callback(json, dump_cb, &d, flags) != 0 || d.failed || !d.p ||
        cb_alloc_failures() != before) {
        free(d.p);
        return NULL;
    }
    d.p[d.len] = '\0';
    return d.p;
}

json_t *cb_json_loadb(const void *buf, size_t len, size_t flags, json_error_t *je, cb_status *st)
{
    unsigned long before = cb_alloc_failures();
    json_t *j = json_loadb(buf, len, flags, je);
    if (cb_alloc_failures() != before) {
        /* jansson (2.14) can also go on after a failed allocation and return
         * a value with a character missing ("suceeded"): nothing parsed while
         * an allocation failed is trusted. */
        json_decref(j);
        *st = CB_ENOMEM;
        return NULL;
    }
    *st = j ? CB_OK : json_error_code(je) == json_error_out_of_memory ? CB_ENOMEM : CB_EINVAL;
    return j;
}
