/* common/cb_buf.c - a growing byte string (see cb_buf.h). */
#include "cb_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

void cb_buf_add(cb_buf *b, const void *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(p = cb_realloc(b->p, cap))) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cb_buf_adds(cb_buf *b, const char *s)
{
    cb_buf_add(b, s, strlen(s));
}

void cb_buf_printf(cb_buf *b, const char *fmt, ...)
{
    char small[512], *big;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        cb_buf_add(b, small, (size_t)n);
        return;
    }
    if (!(big = malloc((size_t)n + 1))) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cb_buf_add(b, big, (size_t)n);
    free(big);
}

char *cb_buf_take(cb_buf *b, size_t *len)
{
    char *p;
    if (!b->failed && !b->p)
        cb_buf_add(b, "", 0);
    if (b->failed) {
        cb_buf_cleanup(b);
        return NULL;
    }
    p = b->p;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void cb_buf_cleanup(cb_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
