/* tests/test_loop.c - a loop made by cb_loop_new() is woken by another
 * thread's mail (common/cb_loop.h). Its own process: the first loop of the
 * process is the one that would miss the wake-ups if the threads were set up
 * after it (the defect: cb bench's read-back crawled, one event per wake-up
 * of some unrelated timer). */
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cb_loop.h"
#include "cb_mailbox.h"
#include "cb_test.h"

enum { ROUNDS = 300 };

typedef struct ping {
    cb_mail mail;
    struct shared *sh;
} ping;

typedef struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ran; /* mails run by the loop */
    cb_mailbox *mb;
} shared;

static void ping_fn(cb_mail *m, int cancelled)
{
    ping *p = (ping *)m;
    if (!cancelled) {
        pthread_mutex_lock(&p->sh->mu);
        p->sh->ran++;
        pthread_cond_signal(&p->sh->cv);
        pthread_mutex_unlock(&p->sh->mu);
    }
    free(p);
}

/* One mail at a time, each after the loop ran the one before: most posts
 * find the loop asleep with nothing else to wake it. */
static void *pinger(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < ROUNDS; i++) {
        ping *p = calloc(1, sizeof *p);
        p->mail.fn = ping_fn;
        p->sh = sh;
        cb_mailbox_post(sh->mb, &p->mail);
        pthread_mutex_lock(&sh->mu);
        while (sh->ran <= i)
            pthread_cond_wait(&sh->cv, &sh->mu);
        pthread_mutex_unlock(&sh->mu);
    }
    return NULL;
}

static bool all_ran(void *arg)
{
    shared *sh = arg;
    int ran;
    pthread_mutex_lock(&sh->mu);
    ran = sh->ran;
    pthread_mutex_unlock(&sh->mu);
    return ran >= ROUNDS;
}

static void test_another_threads_mail_wakes_the_loop(void **state)
{
    struct event_base *base = cb_loop_new();
    shared sh = {.ran = 0};
    pthread_t t;
    (void)state;
    assert_non_null(base);
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    assert_int_equal(cb_mailbox_create(base, 0, &sh.mb), CB_OK);
    assert_int_equal(pthread_create(&t, NULL, pinger, &sh), 0);
    /* Each round trip takes microseconds when the loop is woken; 10 s for
     * all of them fails only when wake-ups are lost. */
    assert_true(cb_test_run_until(base, all_ran, &sh, 10000));
    pthread_join(t, NULL);
    cb_mailbox_close(sh.mb);
    event_base_free(base);
    pthread_cond_destroy(&sh.cv);
    pthread_mutex_destroy(&sh.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_another_threads_mail_wakes_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
