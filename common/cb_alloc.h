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

/* Route jansson's allocations (every json_t, json_dumps' text) through
 * cb_malloc/cb_free, so injected failures reach JSON code too. Process-wide;
 * call once at start, before any JSON value exists (every daemon and the CLI
 * do; so do the tests that inject failures). */
void cb_alloc_route_json(void);

/* How many allocations of the calling thread have failed so far: a parser
 * that fails can tell "out of memory" from "malformed" (cb_json_loadb). */
unsigned long cb_alloc_failures(void);

/* Tests only: make the allocation after the next `n` succeed-ones fail.
 * n < 0 disables injection (the default). */
void cb_alloc_fail_after(long n);
/* Tests only: allocations left before the injected failure; -1 once it has
 * happened (or when injection is off). */
long cb_alloc_fail_remaining(void);

#endif /* CB_ALLOC_H */
