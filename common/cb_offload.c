/* common/cb_offload.c - one helper thread draining a job queue. */
#include "cb_offload.h"

#include <pthread.h>
#include <stdbool.h>

#include "cb_alloc.h"

struct cb_offload {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cb_offload_job *head, *tail;
    bool stop;
    cb_mailbox *mb;
};

static void *offload_main(void *arg)
{
    cb_offload *o = arg;

    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->head && !o->stop)
            pthread_cond_wait(&o->cv, &o->mu);
        if (!o->head)
            break; /* stopping, and everything queued has run */
        cb_offload_job *j = o->head;
        o->head = j->qnext;
        if (!o->head)
            o->tail = NULL;
        pthread_mutex_unlock(&o->mu);
        j->work(j);
        cb_mailbox_post(o->mb, &j->mail);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

cb_status cb_offload_create(cb_mailbox *mb, cb_offload **out)
{
    cb_offload *o = cb_calloc(1, sizeof *o);
    if (!o)
        return CB_ENOMEM;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->mb = mb;
    cb_mailbox_ref(mb);
    if (pthread_create(&o->thread, NULL, offload_main, o) != 0) {
        cb_mailbox_unref(mb);
        pthread_mutex_destroy(&o->mu);
        pthread_cond_destroy(&o->cv);
        cb_free(o);
        return CB_ENOMEM;
    }
    *out = o;
    return CB_OK;
}

void cb_offload_submit(cb_offload *o, cb_offload_job *j)
{
    j->qnext = NULL;
    pthread_mutex_lock(&o->mu);
    if (o->stop) {
        pthread_mutex_unlock(&o->mu);
        j->mail.fn(&j->mail, 1);
        return;
    }
    if (o->tail)
        o->tail->qnext = j;
    else
        o->head = j;
    o->tail = j;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void cb_offload_destroy(cb_offload *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    cb_mailbox_unref(o->mb);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    cb_free(o);
}
