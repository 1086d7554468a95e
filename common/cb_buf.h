/* common/cb_buf.h - a growing byte string, always NUL-terminated, whose
 * failure is sticky: add to it without checking each step, look at
 * `failed` once at the end (out of memory).
 *
 * A zeroed cb_buf is empty. Ownership: the buffer owns `p` until
 * cb_buf_take (or cb_buf_cleanup). Pure; one thread at a time. */
#ifndef CB_BUF_H
#define CB_BUF_H
#include <stddef.h>

typedef struct cb_buf {
    char *p; /* NULL until the first add */
    size_t len, cap;
    int failed; /* an add ran out of memory: everything after it was dropped */
} cb_buf;

/* Append n bytes (nothing once failed). */
void cb_buf_add(cb_buf *b, const void *s, size_t n);
/* Append a NUL-terminated string. */
void cb_buf_adds(cb_buf *b, const char *s);
/* Append printf-formatted text. */
void cb_buf_printf(cb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, NUL-terminated; free() it), its length in *len when
 * len is not NULL; NULL when an add failed (the bytes are freed). The
 * buffer is empty afterwards. An empty buffer gives "". */
char *cb_buf_take(cb_buf *b, size_t *len);
/* Free what it holds; empty afterwards. */
void cb_buf_cleanup(cb_buf *b);

#endif /* CB_BUF_H */
