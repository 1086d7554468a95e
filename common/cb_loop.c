/* common/cb_loop.c - loops made after libevent's threading (cb_loop.h). */
#include "cb_loop.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_rc;

static void threads_init_once(void)
{
    threads_rc = evthread_use_pthreads();
}

cb_status cb_loop_threads_init(void)
{
    pthread_once(&threads_once, threads_init_once);
    return threads_rc == 0 ? CB_OK : CB_ENOMEM;
}

struct event_base *cb_loop_new(void)
{
    if (cb_loop_threads_init() != CB_OK)
        return NULL;
    return event_base_new();
}
