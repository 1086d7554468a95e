/* engine/control.c - the controllers: the job table and the two loops (see
 * control.h; the parts are listed in control_int.h). */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "views.h"
#include "cb_alloc.h"
#include "cb_map.h"
#include "cb_log.h"
#include "cb_time.h"
#include "proj.h"

static void visit_cb(evutil_socket_t fd, short what, void *arg);

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

cjob *ctl_job_get(cb_control *c, const char *key)
{
    uint64_t h = cb_hash64(key, strlen(key));
    cjob *j = cb_map_get(&c->jobs, h);
    return j && !strcmp(j->key, key) ? j : NULL;
}

static cjob *job_add(cb_control *c, const char *key)
{
    const char *slash = strchr(key, '/');
    cjob *j;
    if (!slash || strlen(key) >= CTL_KEY_MAX || (size_t)(slash - key) > CB_NAME_MAX)
        return NULL;
    if (!(j = cb_calloc(1, sizeof *j)))
        return NULL;
    snprintf(j->key, sizeof j->key, "%s", key);
    snprintf(j->tenant, sizeof j->tenant, "%.*s", (int)(slash - key), key);
    snprintf(j->job, sizeof j->job, "%s", slash + 1);
    j->hash = cb_hash64(key, strlen(key));
    j->c = c;
    if (!(j->wake = evtimer_new(c->base, visit_cb, j)) ||
        cb_map_put(&c->jobs, j->hash, j) != CB_OK) {
        if (j->wake)
            event_free(j->wake);
        free(j);
        return NULL;
    }
    c->stats.jobs++;
    return j;
}

static void job_free(cjob *j)
{
    if (j->have_flow)
        cb_flow_cleanup(&j->flow);
    free(j->step_policy);
    event_free(j->wake);
    free(j);
}

void ctl_job_forget(cb_control *c, cjob *j)
{
    ctl_shaping_forget(j);
    cb_map_take(&c->jobs, j->hash);
    c->stats.jobs--;
    job_free(j);
}

/* Visit `j` after delay_ms (0: on the next loop turn). An earlier request wins. */
void ctl_job_wake(cjob *j, int64_t delay_ms)
{
    struct timeval tv = tv_ms(delay_ms);
    int64_t at = cb_time_mono_ns() + delay_ms * 1000000;
    if (evtimer_pending(j->wake, NULL) && j->wake_at_ns <= at)
        return;
    j->wake_at_ns = at;
    evtimer_add(j->wake, &tv);
}

void cb_control_opts_init(cb_control_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reconcile_ms = 1000;
    o->await_ms = 2000;
    o->progress_ms = 200;
    o->inline_result_max = 256 * 1024;
    o->aging_ms = 10000;
    cb_policy_defaults_init(&o->policy);
}

const cb_control_stats *cb_control_stats_get(const cb_control *c)
{
    return &c->stats;
}

void cb_control_touch(cb_control *c, const char *key)
{
    cjob *j = ctl_job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    ctl_job_wake(j, 0);
}

void cb_control_hold(cb_control *c, const char *key, int held)
{
    cjob *j = ctl_job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    j->held = held;
    ctl_job_wake(j, 0);
}

const char *cb_control_ending(cb_control *c, const char *key)
{
    cjob *j = ctl_job_get(c, key);
    return j && j->ending ? j->end_status : NULL;
}

static void visit_cb(evutil_socket_t fd, short what, void *arg)
{
    cjob *j = arg;
    (void)fd;
    (void)what;
    ctl_visit(j->c, j);
}

static void changed_cb(const cb_broker_msg *m, void *ctx)
{
    cb_control *c = ctx;
    json_error_t je;
    cb_status st;
    json_t *o = cb_json_loadb(m->data, m->len, 0, &je, &st); /* lost: the long loop covers it */
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(o, "jobs"), i, k)
    {
        if (json_is_string(k))
            cb_control_touch(c, json_string_value(k));
    }
    json_decref(o);
}

static int touch_active(const char *key, int64_t deadline_ns, void *arg)
{
    (void)deadline_ns;
    cb_control_touch(arg, key);
    return 0;
}

static void reconcile_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_control *c = arg;
    cb_status s;
    (void)fd;
    (void)what;
    if ((s = cb_view_active(c->st, touch_active, c)) != CB_OK)
        CB_LOG_WRN("control", "cannot list active jobs: %s", cb_strerror(s));
}

cb_status cb_control_start(struct event_base *base, cb_broker *b, cb_store *st,
                           const cb_config *reg, const cb_control_opts *o, cb_control **out)
{
    cb_control *c = cb_calloc(1, sizeof *c);
    struct timeval tv;
    cb_status s;
    if (!c)
        return CB_ENOMEM;
    c->base = base;
    c->b = b;
    c->st = st;
    c->reg = reg;
    if (o)
        c->o = *o;
    else
        cb_control_opts_init(&c->o);
    cb_map_init(&c->jobs);
    if (!(c->reconcile = event_new(base, -1, EV_PERSIST, reconcile_cb, c))) {
        free(c);
        return CB_ENOMEM;
    }
    if ((s = cb_broker_subscribe(b, CB_PROJ_CHANGED, 0, changed_cb, c, &c->changed)) != CB_OK) {
        event_free(c->reconcile);
        free(c);
        return s;
    }
    tv = tv_ms(c->o.reconcile_ms);
    evtimer_add(c->reconcile, &tv);
    reconcile_cb(-1, 0, c); /* the first pass now: recover what a previous run left */
    *out = c;
    return CB_OK;
}

static void stop_job(uint64_t k, void *val, void *arg)
{
    cjob *j = val;
    (void)k;
    (void)arg;
    evtimer_del(j->wake);
}

static void free_job(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    job_free(val);
}

void ctl_release(cb_control *c)
{
    cb_map_each(&c->jobs, free_job, NULL);
    cb_map_cleanup(&c->jobs);
    while (c->backends) {
        backend_state *bs = c->backends;
        c->backends = bs->next;
        free(bs);
    }
    free(c);
}

void cb_control_free(cb_control *c)
{
    if (!c)
        return;
    cb_sub_close(c->changed);
    c->changed = NULL;
    event_free(c->reconcile);
    c->reconcile = NULL;
    /* Job timers stop now; confirmations still due find c->stopped. */
    c->stopped = 1;
    cb_map_each(&c->jobs, stop_job, NULL);
    if (c->nops == 0)
        ctl_release(c);
}
