/* common/cb_alloc.c - allocation with optional fault injection for tests. */
#include "cb_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide test knob; -1 = off. Atomic so any thread may allocate. */
static atomic_long fail_countdown = -1;

static int should_fail(void)
{
    long n = atomic_load(&fail_countdown);
    while (n >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
            return n == 0;
    }
    return 0;
}

void cb_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

void *cb_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *cb_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *cb_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *cb_strndup(const char *s, size_t len)
{
    char *d = cb_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *cb_strdup(const char *s)
{
    return cb_strndup(s, strlen(s));
}

void cb_free(void *p)
{
    free(p);
}
