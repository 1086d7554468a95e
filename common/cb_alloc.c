/* common/cb_alloc.c - allocation with optional fault injection for tests. */
#include "cb_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Process-wide test knob; -1 = off. Atomic so any thread may allocate. */
static atomic_long fail_countdown = -1;
/* Failed allocations of this thread (injected or real). */
static _Thread_local unsigned long failures;

static void *counted(void *p)
{
    if (!p)
        failures++;
    return p;
}

unsigned long cb_alloc_failures(void)
{
    return failures;
}

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

long cb_alloc_fail_remaining(void)
{
    return atomic_load(&fail_countdown);
}

void *cb_malloc(size_t n)
{
    return counted(should_fail() ? NULL : malloc(n ? n : 1));
}

void *cb_calloc(size_t count, size_t size)
{
    return counted(should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1));
}

void *cb_realloc(void *p, size_t n)
{
    return counted(should_fail() ? NULL : realloc(p, n ? n : 1));
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

static void *json_alloc(size_t n)
{
    return cb_malloc(n);
}

void cb_alloc_route_json(void)
{
    json_set_alloc_funcs(json_alloc, cb_free);
}
