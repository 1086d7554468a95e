/* common/cb_json.c - JSON dumps that fail instead of damaging text, parse
 * failures told apart, a member found without parsing (see cb_json.h). */
#include "cb_json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_time.h"

/* jansson may go on after a failed write: the buffer's failure is sticky. */
static int dump_cb(const char *buf, size_t size, void *data)
{
    cb_buf *d = data;
    cb_buf_add(d, buf, size);
    return d->failed ? -1 : 0;
}

char *cb_json_dumps(const json_t *json, size_t flags)
{
    cb_buf d = {0};
    unsigned long before = cb_alloc_failures();
    if (json_dump_callback(json, dump_cb, &d, flags) != 0 || d.failed || !d.p ||
        cb_alloc_failures() != before) {
        cb_buf_cleanup(&d);
        return NULL;
    }
    return cb_buf_take(&d, NULL);
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

/* ---- scanning without parsing ------------------------------------------- */

size_t cb_json_skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* The end (one past the closing quote) of the string starting at b[i] == '"';
 * 0 if it does not end. */
static size_t skip_string(const char *b, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return 0;
}

/* The end of the value starting at b[i]; 0 if it does not end. */
size_t cb_json_value_end(const char *b, size_t len, size_t i)
{
    int depth = 0;
    if (i >= len)
        return 0;
    if (b[i] != '{' && b[i] != '[') { /* a scalar: up to the next delimiter */
        if (b[i] == '"')
            return skip_string(b, len, i);
        while (i < len && !strchr(",}] \t\n\r", b[i]))
            i++;
        return i < len ? i : 0;
    }
    for (; i < len; i++) {
        if (b[i] == '"') {
            if (!(i = skip_string(b, len, i)))
                return 0;
            i--;
        } else if (b[i] == '{' || b[i] == '[') {
            depth++;
        } else if ((b[i] == '}' || b[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* In the object starting at b[i] == '{', the value of member `key`: its
 * start in *at and its end returned; 0 when absent or malformed. */
static size_t find_member(const char *b, size_t len, size_t i, const char *key, size_t *at)
{
    size_t klen = strlen(key);
    if (i >= len || b[i] != '{')
        return 0;
    i = cb_json_skip_ws(b, len, i + 1);
    while (i < len && b[i] == '"') {
        size_t kend = skip_string(b, len, i), vend;
        bool match;
        if (!kend)
            return 0;
        match = kend - i - 2 == klen && memcmp(b + i + 1, key, klen) == 0;
        i = cb_json_skip_ws(b, len, kend);
        if (i >= len || b[i] != ':')
            return 0;
        i = cb_json_skip_ws(b, len, i + 1);
        if (!(vend = cb_json_value_end(b, len, i)))
            return 0;
        if (match) {
            *at = i;
            return vend;
        }
        i = cb_json_skip_ws(b, len, vend);
        if (i >= len || b[i] != ',')
            return 0;
        i = cb_json_skip_ws(b, len, i + 1);
    }
    return 0;
}

int cb_json_member_span(const char *buf, size_t len, const char *outer, const char *inner,
                        size_t *off, size_t *vlen)
{
    size_t at = 0, end = find_member(buf, len, cb_json_skip_ws(buf, len, 0), outer, &at);
    if (!end || (inner && !(end = find_member(buf, len, at, inner, &at))))
        return 0;
    *off = at;
    *vlen = end - at;
    return 1;
}

size_t cb_json_each_member_span(const char *buf, size_t len, size_t at, const char *key,
                                size_t *off, size_t *vlen, size_t max)
{
    size_t n = 0, i = at;
    if (i >= len || buf[i] != '[')
        return 0;
    i = cb_json_skip_ws(buf, len, i + 1);
    while (i < len && buf[i] != ']') {
        size_t end = cb_json_value_end(buf, len, i), v = 0, vend;
        if (!end || n == max || !(vend = find_member(buf, len, i, key, &v)))
            return 0;
        off[n] = v;
        vlen[n++] = vend - v;
        i = cb_json_skip_ws(buf, len, end);
        if (i < len && buf[i] == ',')
            i = cb_json_skip_ws(buf, len, i + 1);
        else if (i >= len || buf[i] != ']')
            return 0;
    }
    return i < len ? n : 0;
}

json_t *cb_json_time(int64_t ns)
{
    char buf[40];
    return ns ? json_string(cb_time_format(ns, buf, sizeof buf)) : json_null();
}
