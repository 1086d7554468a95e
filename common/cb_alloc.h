/* common/cb_alloc.h - the allocation seam. All cbcore code allocates through
 * these so tests can inject failures (cb_alloc_fail_after). Thread-safe. */
#ifndef CB_ALLOC_H
#define CB_ALLOC_H
#include <stddef.h>

/* Like malloc/calloc/realloc/strdup; NULL on failure (or on injected failure). */
void *cb_malloc(size_t n);
void *cb_calloc(size_t count, size_t size);
void *cb_realloc(void *p, size_t n);
char *cb_strdup(const char *s);
/* Copy `len` bytes of `s` and a terminating NUL. */
char *cb_strndup(const char *s, size_t len);
void cb_free(void *p); /* accepts NULL */

/* Tests only: make the allocation after the next `n` succeed-ones fail.
 * n < 0 disables injection (the default). */
void cb_alloc_fail_after(long n);

#endif /* CB_ALLOC_H */
