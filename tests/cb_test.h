/* tests/cb_test.h - what every cbcore test includes: cmocka and the helpers
 * to run a libevent loop until something happened or a deadline passed. */
#ifndef CB_TEST_H
#define CB_TEST_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>

#include "cb_status.h"

struct event_base;

typedef bool cb_test_pred(void *arg);

/* Run `base` until pred(arg) is true (returns true) or timeout_ms passed
 * (returns false). Never sleeps: it waits on the loop's own events. */
bool cb_test_run_until(struct event_base *base, cb_test_pred *pred, void *arg, long timeout_ms);
/* Like cb_test_run_until, for a condition no loop event announces (another
 * process's progress): also wakes every interval_ms to check it. */
bool cb_test_poll_until(struct event_base *base, cb_test_pred *pred, void *arg, long timeout_ms,
                        long interval_ms);
/* A fresh event_base with pthread locking enabled. */
struct event_base *cb_test_base(void);
/* The value of environment variable `name`, or skip the test when unset. */
const char *cb_test_env(const char *name);
/* The partitions of the stack under test (docs/scale.md): $CB_TEST_PARTITIONS,
 * default 1. The partitioned runs of run.sh set it. */
unsigned cb_test_partitions(void);
/* Whether the stack runs two engines splitting the partitions:
 * $CB_TEST_ENGINES = 2 on a partitioned run (cb_stack.h). */
bool cb_test_two_engines(void);

/* A fresh unique name with prefix (for subjects/ids); static buffer per call site. */
void cb_test_unique(char *buf, size_t size, const char *prefix);

/* Publish confirmations, counted: pass cb_test_confirm_cb and a
 * cb_test_confirms as the callback and its ctx of cb_broker_append/put/notify. */
typedef struct cb_test_confirms {
    int n, failed;  /* confirmations, and how many were not CB_OK */
    cb_status last; /* the last one's status */
} cb_test_confirms;
void cb_test_confirm_cb(cb_status s, uint64_t seq, int dup, void *ctx);
/* A cb_test_pred: at least one confirmation came. */
bool cb_test_confirmed(void *confirms);

/* Fail unless `got` (a new reference, released here; NULL fails) equals the
 * JSON text `want` (any value). */
struct json_t;
void cb_test_expect_json(struct json_t *got, const char *want);

/* The project's schemas (schemas/), loaded once for the whole test program
 * and freed at exit; fails the test when they do not load. */
const struct cb_schema *cb_test_schemas(void);

#endif /* CB_TEST_H */
