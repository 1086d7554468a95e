/* common/cb_mailbox.c - a mutex-protected FIFO woken by event_active(). */
#include "cb_mailbox.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cb_alloc.h"

struct cb_mailbox {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t drained; /* signalled when the queue falls to high_water */
    cb_mail *head, *tail;
    size_t count, high_water;
    bool closed;
    struct event *wake; /* loop-owned; NULL once closed */
};

static void cancel_list(cb_mail *m)
{
    while (m) {
        cb_mail *next = m->next;
        m->fn(m, 1);
        m = next;
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_mailbox *mb = arg; /* borrowed: the loop's reference outlives its event */
    cb_mail *m;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&mb->mu);
    m = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    pthread_cond_broadcast(&mb->drained);
    pthread_mutex_unlock(&mb->mu);
    /* Run outside the lock: handlers may post again or close the mailbox. */
    cb_mailbox_ref(mb);
    while (m) {
        cb_mail *next = m->next;
        bool closed;
        pthread_mutex_lock(&mb->mu);
        closed = mb->closed;
        pthread_mutex_unlock(&mb->mu);
        m->fn(m, closed);
        m = next;
    }
    cb_mailbox_unref(mb);
}

void cb_mailbox_drain(cb_mailbox *mb)
{
    while (cb_mailbox_pending(mb) > 0)
        wake_cb(-1, 0, mb);
}

cb_status cb_mailbox_create(struct event_base *base, size_t high_water, cb_mailbox **out)
{
    cb_mailbox *mb = cb_calloc(1, sizeof *mb);
    if (!mb)
        return CB_ENOMEM;
    mb->wake = event_new(base, -1, 0, wake_cb, mb);
    if (!mb->wake) {
        cb_free(mb);
        return CB_ENOMEM;
    }
    atomic_init(&mb->refs, 1);
    pthread_mutex_init(&mb->mu, NULL);
    pthread_cond_init(&mb->drained, NULL);
    mb->high_water = high_water;
    *out = mb;
    return CB_OK;
}

static void post_locked(cb_mailbox *mb, cb_mail *m)
{
    m->next = NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    if (mb->count++ == 0 && mb->wake)
        event_active(mb->wake, 0, 0);
}

void cb_mailbox_post(cb_mailbox *mb, cb_mail *m)
{
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->mu);
        m->fn(m, 1);
        return;
    }
    post_locked(mb, m);
    pthread_mutex_unlock(&mb->mu);
}

void cb_mailbox_post_wait(cb_mailbox *mb, cb_mail *m)
{
    pthread_mutex_lock(&mb->mu);
    while (!mb->closed && mb->high_water && mb->count >= mb->high_water)
        pthread_cond_wait(&mb->drained, &mb->mu);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->mu);
        m->fn(m, 1);
        return;
    }
    post_locked(mb, m);
    pthread_mutex_unlock(&mb->mu);
}

size_t cb_mailbox_pending(cb_mailbox *mb)
{
    size_t n;
    pthread_mutex_lock(&mb->mu);
    n = mb->count;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

void cb_mailbox_ref(cb_mailbox *mb)
{
    atomic_fetch_add(&mb->refs, 1);
}

void cb_mailbox_unref(cb_mailbox *mb)
{
    if (!mb || atomic_fetch_sub(&mb->refs, 1) != 1)
        return;
    cancel_list(mb->head);
    if (mb->wake)
        event_free(mb->wake);
    pthread_mutex_destroy(&mb->mu);
    pthread_cond_destroy(&mb->drained);
    cb_free(mb);
}

void cb_mailbox_close(cb_mailbox *mb)
{
    cb_mail *m;
    if (!mb)
        return;
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    event_free(mb->wake); /* on the loop thread, before the base can go */
    mb->wake = NULL;
    m = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    pthread_cond_broadcast(&mb->drained);
    pthread_mutex_unlock(&mb->mu);
    cancel_list(m);
    cb_mailbox_unref(mb);
}
