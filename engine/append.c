/* engine/append.c - what the controller appends and puts, and their
 * confirmations (see control_int.h). */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_log.h"
#include "emit.h"

op *ctl_op_new(cb_control *c, cjob *j, int kind)
{
    op *o = cb_calloc(1, sizeof *o);
    if (o) {
        c->nops++;
        o->c = c;
        o->kind = kind;
        o->gen = j->gen;
        snprintf(o->key, sizeof o->key, "%s", j->key);
    }
    return o;
}

cjob *ctl_op_job(const op *o)
{
    cjob *j = o->c->stopped ? NULL : ctl_job_get(o->c, o->key);
    return j && j->gen == o->gen ? j : NULL; /* not one forgotten since (a partition given up) */
}

void ctl_op_free(op *o)
{
    cb_control *c = o->c;
    json_decref(o->invokes);
    json_decref(o->terminal);
    free(o);
    if (--c->nops == 0 && c->stopped)
        ctl_release(c);
}

void ctl_op_done(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    op *o = ctx;
    cb_control *c = o->c;
    cjob *j = ctl_op_job(o);
    (void)seq;
    if (!j) {
        ctl_op_free(o);
        return;
    }
    j->pending--;
    if (s != CB_OK) {
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "%s not confirmed: %s",
                   o->kind == OP_PUT    ? "an invocation command"
                   : o->kind == OP_DONE ? "the done message"
                                        : "an event",
                   cb_strerror(s));
        if (o->kind == OP_PUT)
            j->recovered = 0; /* re-send the commands of dispatched tasks */
        j->ending = 0;
        ctl_job_wake(j, 500);
        ctl_op_free(o);
        return;
    }
    if (o->kind != OP_PUT && o->kind != OP_DONE && !duplicate)
        j->expect++;
    if (o->kind != OP_PUT && o->kind != OP_DONE && seq > j->await_seq)
        j->await_seq = seq;
    if (o->kind == OP_DISPATCH && o->invokes)
        ctl_put_invokes(c, j, o->invokes);
    if (o->kind == OP_DONE) {
        c->stats.done++;
        if (ctl_emit_terminal(c, j, o->terminal) != CB_OK)
            ctl_job_wake(j, 500);
    }
    if (j->pending == 0)
        ctl_job_wake(j, 0); /* the mirror may already have it */
    ctl_op_free(o);
}

/* Append one event of the plan; the id is "<tenant>/<job>/<what>" (and the
 * claim it is decided under: ctl_source). */
cb_status ctl_emit(cb_control *c, cjob *j, cb_event_type type, const char *what, json_t *data,
                   op *o)
{
    char id[512], source[CB_CLAIM_MAX + 32], suffix[CB_CLAIM_MAX + 2];
    cb_status s;
    if (!o && !(o = ctl_op_new(c, j, OP_EVENT))) {
        json_decref(data);
        return CB_ENOMEM;
    }
    ctl_source(c, j->log_part, source, sizeof source, suffix, sizeof suffix);
    snprintf(id, sizeof id, "%s/%s/%s%s", j->tenant, j->job, what, suffix);
    if ((s = cb_emit(c->b, j->log_part, type, j->tenant, j->job, id, source, data, ctl_op_done,
                     o)) != CB_OK) {
        ctl_op_free(o);
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot append %s: %s",
                   cb_event_type_name(type), cb_strerror(s));
        return s;
    }
    j->pending++;
    c->stats.events++;
    return CB_OK;
}
