/* tools/cmd_result.c - `cb result TENANT/JOB`: a job's result as JSON.
 *
 * Waits for the job's end by default (its done message, kept by the broker,
 * so a finished job answers at once); --no-wait asks the store now. A
 * result too large for the done message (result_ref) is read from its object
 * in storage (s3://), or assembled from the
 * task records in the store with the engine's own code (engine/result.c),
 * once the store shows the job's end (the done message can come first).
 * "No result yet" is never printed as a result: it is exit code 3.
 *
 * Exit codes: 0 the result is on stdout (it may be null); 1 the job did not
 * succeed (failed, cancelled, rejected: the reason on stderr), does not
 * exist, or cannot be read; 2 usage; 3 not finished (with --no-wait, or
 * when --timeout passed). */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "views.h"
#include "cb_json.h"
#include "cb_time.h"
#include "cb_msg_done.h"
#include "broker.h"
#include "cb_cmd.h"
#include "cli.h"
#include "assemble.h"
#include "refs.h"
#include "fold.h"
#include "store.h"

#define RC_NOT_FINISHED 3
#define UNKNOWN_JOB_S   10 /* a job neither stored nor done is waited for this long */
#define STORE_LAG_S     30 /* the longest wait for the store to show a job's end */

typedef struct done_wait {
    struct event_base *base;
    json_t *done;
} done_wait;

static void got_done(const cb_broker_msg *m, void *ctx)
{
    done_wait *w = ctx;
    if (!w->done)
        w->done = json_loadb(m->data, m->len, 0, NULL);
    event_base_loopbreak(w->base);
}

/* The job's done message (kept, so also after the fact), waiting at most
 * timeout_s (0: no limit). *rc = 1 when the broker cannot be reached. */
static json_t *wait_done(const char *url, const char *tenant, const char *job, long timeout_s,
                         int *rc)
{
    char subject[320];
    done_wait w = {0};
    cb_broker *b = NULL;
    cb_sub *sub = NULL;
    struct timeval limit = {timeout_s, 0};
    if (!url) {
        fprintf(stderr, "cb result: no broker to wait on (--broker URL, $CB_BROKER_URL or "
                        "cb up's .cb/url)\n");
        *rc = 1;
        return NULL;
    }
    if (cb_cli_connect(url, "cb result", 1, &w.base, &b) != 0) {
        *rc = 1;
        return NULL;
    }
    snprintf(subject, sizeof subject, "cb.done.%s.%s", tenant, job);
    if (cb_broker_subscribe(b, subject, 0, got_done, &w, &sub) == CB_OK) {
        if (timeout_s > 0)
            event_base_loopexit(w.base, &limit);
        event_base_dispatch(w.base);
    } else {
        fprintf(stderr, "cb result: cannot subscribe to %s\n", subject);
        *rc = 1;
    }
    cb_sub_close(sub);
    cb_cli_disconnect(w.base, b);
    return w.done;
}

/* Assemble the result of finished job `ref` from its task records. */
static json_t *assemble(cb_store *st, const char *ref, const cb_job_state *js)
{
    char err[300];
    json_t *r = cb_result_assemble(st, ref, js, err, sizeof err);
    if (!r)
        fprintf(stderr, "cb result: %s: %s\n", ref, err);
    return r;
}

typedef struct result_opts {
    const char *dir, *url, *ref;
    const char *config; /* where the storage is (refs.h); NULL: $CB_CONFIG */
    long timeout_s;     /* 0: wait without limit */
    int no_wait;
} result_opts;

/* The result, with the outputs kept in storage put back in (refs.h). */
static int print_json(const result_opts *o, const json_t *r)
{
    json_t *v = json_incref((json_t *)r);
    char *text;
    if (cb_cli_resolve_refs("result", o->config, &v) != 0) {
        json_decref(v);
        return 1;
    }
    text = cb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!text)
        return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

static int not_succeeded(const char *ref, const char *status, const char *error)
{
    fprintf(stderr, "cb result: %s has no result: it %s%s%s\n", ref, status, error ? ": " : "",
            error ? error : "");
    return 1;
}

/* The job as the store has it now; *found = 0 when the store has none. */
static int read_job(cb_store *st, const char *ref, cb_job_state *js, int *found)
{
    cb_status s = cb_view_job(st, ref, js);
    *found = s == CB_OK;
    if (s != CB_OK && s != CB_ENOTFOUND) {
        fprintf(stderr, "cb result: %s: %s\n", ref, cb_strerror(s));
        return 1;
    }
    return 0;
}

/* The job as the store has it once it shows the job's end, waiting up to
 * STORE_LAG_S for the projector (reading the store every 20 ms). */
static int stored_end(cb_store *st, const char *ref, cb_job_state *js, int *found)
{
    int64_t deadline = cb_time_mono_ns() + (int64_t)STORE_LAG_S * 1000000000;
    struct timespec pause = {0, 20 * 1000000};
    for (;;) {
        if (read_job(st, ref, js, found) != 0)
            return 1;
        if ((*found && cb_job_terminal(js->status)) || cb_time_mono_ns() >= deadline)
            return 0;
        if (*found)
            cb_job_state_cleanup(js);
        nanosleep(&pause, NULL);
    }
}

/* The end as the store has it: a succeeded job's stored result when it is
 * not null (a null may be a result too large to inline), else its tasks'. */
static int from_store(const result_opts *o, cb_store *st, const char *ref, const cb_job_state *js)
{
    json_t *r;
    int rc;
    if (js->status != CB_JOB_SUCCEEDED)
        return not_succeeded(ref, cb_job_status_name(js->status), js->error);
    if (js->result && !json_is_null(js->result))
        return print_json(o, js->result);
    if (!(r = assemble(st, ref, js)))
        return 1;
    rc = print_json(o, r);
    json_decref(r);
    return rc;
}

/* The end as the done message says it. */
static int from_done(const result_opts *o, cb_store *st, const char *ref, const json_t *done)
{
    cb_done_msg d;
    cb_job_state js;
    int found, rc;
    if (cb_done_msg_parse(done, &d) != CB_OK)
        return not_succeeded(ref, "?", "the done message is malformed");
    if (strcmp(d.status, "succeeded"))
        return not_succeeded(ref, d.status,
                             d.error ? d.error : json_string_value(json_array_get(d.errors, 0)));
    if (d.result) /* inline, null included */
        return print_json(o, d.result);
    if (d.result_ref && strncmp(d.result_ref, "s3://", 5) == 0) { /* one object in storage */
        json_t *r = json_pack("{s:s, s:I, s:s?}", "$cb_ref", d.result_ref, "size",
                              (json_int_t)d.result_size, "sha256", d.result_sha256);
        if (!r || d.result_size < 0) {
            json_decref(r);
            return not_succeeded(ref, "?", "the done message's result_ref has no result_size");
        }
        rc = print_json(o, r);
        json_decref(r);
        return rc;
    }
    /* result_ref: the outputs are in the store's task records once the
     * projector has folded the job's end (the engine decides from its own
     * copy of the log and may be ahead of the store): wait for that */
    if (stored_end(st, ref, &js, &found) != 0)
        return 1;
    if (found && !cb_job_terminal(js.status)) {
        fprintf(stderr, "cb result: %s: the store has not folded the job's end within %d s\n", ref,
                STORE_LAG_S);
        cb_job_state_cleanup(&js);
        return 1;
    }
    if (!found) {
        fprintf(stderr,
                "cb result: %s: the result is too large for the done message and "
                "this store does not have the job (--store DIR)\n",
                ref);
        return 1;
    }
    rc = from_store(o, st, ref, &js);
    cb_job_state_cleanup(&js);
    return rc;
}

static int usage(FILE *out, int rc)
{
    fprintf(out,
            "usage: cb result TENANT/JOB [--store DIR] [--broker URL] [--timeout S] [--no-wait]\n"
            "                 [--config FILE]\n"
            "Prints the job's result as JSON once the job has ended (waits for it; a\n"
            "result too large for the done message is assembled from the store; outputs\n"
            "kept in object storage are read back from the storage of FILE, default\n"
            "$CB_CONFIG, else $CB_DIR/objects: docs/storage.md).\n"
            "  --no-wait   answer now: exit 3 if the job has not finished\n"
            "  --timeout S wait at most S seconds, then exit 3 (default: no limit)\n"
            "Exit codes: 0 result printed, 1 the job failed, was cancelled or rejected,\n"
            "or is unknown, 2 usage, 3 not finished.\n");
    return rc;
}

static int parse(int argc, char **argv, result_opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            o->dir = argv[++i];
        else if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            o->url = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            o->timeout_s = atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-wait"))
            o->no_wait = 1;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            o->config = argv[++i];
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout, 0);
            return -1; /* done: exit 0 */
        } else if (!o->ref && argv[i][0] != '-')
            o->ref = argv[i];
        else {
            fprintf(stderr, "cb result: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!o->ref) {
        fprintf(stderr, "cb result: name the job as TENANT/JOB\n");
        return 2;
    }
    return 0;
}

int cb_cmd_result(int argc, char **argv)
{
    result_opts o = {0};
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    cb_store *st = NULL;
    cb_job_state js;
    json_t *done;
    int rc = parse(argc, argv, &o), found = 0;

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (cb_cli_job_ref(o.ref, tenant, job, sizeof tenant) != 0) {
        fprintf(stderr, "cb result: name the job as TENANT/JOB\n");
        return 2;
    }
    if (!(st = cb_cli_open_store("result", cb_cli_store_dir(o.dir))))
        return 1;
    if ((rc = read_job(st, o.ref, &js, &found)) == 0 && found && cb_job_terminal(js.status)) {
        rc = from_store(&o, st, o.ref, &js);
    } else if (rc == 0 && o.no_wait) {
        if (found)
            fprintf(stderr, "cb result: %s has not finished: it is %s (%u/%u tasks succeeded)\n",
                    o.ref, cb_job_status_name(js.status), js.succeeded, js.total);
        else
            fprintf(stderr, "cb result: %s: no such job in the store (yet)\n", o.ref);
        rc = found ? RC_NOT_FINISHED : 1;
    } else if (rc == 0) {
        long limit = o.timeout_s > 0 || found ? o.timeout_s : UNKNOWN_JOB_S;
        if ((done = wait_done(cb_cli_broker_url(o.url), tenant, job, limit, &rc))) {
            rc = from_done(&o, st, o.ref, done);
            json_decref(done);
        } else if (rc == 0 && found) {
            fprintf(stderr, "cb result: %s has not finished within %ld s\n", o.ref, limit);
            rc = RC_NOT_FINISHED;
        } else if (rc == 0) {
            fprintf(stderr,
                    "cb result: %s: no such job (not in the store, no done message "
                    "within %ld s)\n",
                    o.ref, limit);
            rc = 1;
        }
    }
    if (found)
        cb_job_state_cleanup(&js);
    cb_store_close(st);
    return rc;
}
