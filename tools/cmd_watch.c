/* tools/cmd_watch.c - `cb watch` (live progress from cb.progress.* and the
 * done topic: a bar on a terminal, plain lines otherwise), and the store
 * readers `cb status` and `cb jobs` (`cb result`: cmd_result.c). */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cb_msg_done.h"
#include "broker.h"
#include "cb_cmd.h"
#include "cb_event.h"
#include "cb_log.h"
#include "cb_time.h"
#include "cli.h"
#include "fold.h"
#include "store.h"

typedef struct watch {
    struct event_base *base;
    int tty, json, rc, finished;
    int64_t first_ns, last_line_ns;
    json_int_t first_done;
    char ref[300];
} watch;

static void bar(watch *w, json_int_t done, json_int_t total, json_int_t failed, int final)
{
    int64_t now = cb_time_mono_ns();
    double secs = (double)(now - w->first_ns) / 1e9, rate = 0;
    char eta[32] = "";
    if (secs > 0.2 && done > w->first_done)
        rate = (double)(done - w->first_done) / secs;
    if (rate > 0 && total > done)
        snprintf(eta, sizeof eta, "  ETA %.0fs", (double)(total - done) / rate);
    if (w->tty) {
        int width = 30, fill = total > 0 ? (int)(width * done / total) : 0;
        char b[64];
        for (int i = 0; i < width; i++)
            b[i] = i < fill ? '#' : '.';
        b[width] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld  failed %lld  %.0f/s%s   ", w->ref, b,
                total > 0 ? (int)(100 * done / total) : 0, (long long)done, (long long)total,
                (long long)failed, rate, eta);
        if (final)
            fputc('\n', stderr);
    } else if (final || now - w->last_line_ns > 1000000000LL) {
        fprintf(stderr, "%s %lld/%lld done, %lld failed, %.0f/s%s\n", w->ref, (long long)done,
                (long long)total, (long long)failed, rate, eta);
        w->last_line_ns = now;
    }
    fflush(stderr);
}

static void progress_cb(const cb_broker_msg *m, void *ctx)
{
    watch *w = ctx;
    json_t *p = json_loadb(m->data, m->len, 0, NULL);
    json_int_t done = json_integer_value(json_object_get(p, "succeeded"));
    if (!p || w->finished) {
        json_decref(p);
        return;
    }
    if (!w->first_ns) {
        w->first_ns = cb_time_mono_ns();
        w->first_done = done;
    }
    bar(w, done, json_integer_value(json_object_get(p, "total")),
        json_integer_value(json_object_get(p, "failed")), 0);
    json_decref(p);
}

static void done_cb(const cb_broker_msg *m, void *ctx)
{
    watch *w = ctx;
    json_t *d = json_loadb(m->data, m->len, 0, NULL);
    cb_done_msg done;
    int ok_msg = cb_done_msg_parse(d, &done) == CB_OK;
    const char *status = ok_msg ? done.status : "?";
    double ms = ok_msg && done.makespan_ms > 0 ? done.makespan_ms : 0;
    long long total = ok_msg ? (long long)done.counts.total : 0;
    long long ok = ok_msg ? (long long)done.counts.succeeded : 0;
    if (!w->first_ns)
        w->first_ns = cb_time_mono_ns();
    bar(w, ok, total, ok_msg ? done.counts.failed : 0, 1);
    if (w->json)
        printf("%.*s\n", (int)m->len, (const char *)m->data);
    else
        printf("%s %s: %lld/%lld tasks in %.2f s (%.0f tasks/s)%s%s\n", w->ref, status, ok, total,
               ms / 1000, ms > 0 ? (double)ok * 1000 / ms : 0.0, ok_msg && done.error ? ": " : "",
               ok_msg && done.error ? done.error : "");
    fflush(stdout);
    w->rc = ok_msg && !strcmp(status, "succeeded") ? 0 : 1;
    w->finished = 1;
    json_decref(d);
    event_base_loopbreak(w->base);
}

int cb_cmd_watch(int argc, char **argv)
{
    const char *url = NULL, *ref = NULL;
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1], subject[320];
    watch w = {.rc = 1};
    cb_broker *b = NULL;
    cb_sub *ps = NULL, *ds = NULL;
    cb_status s;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            w.json = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: cb watch TENANT/JOB [--broker URL] [--json]\n"
                   "Shows the job's progress (a bar on a terminal, a line a second\n"
                   "otherwise) until its done message, then a summary line (--json: the\n"
                   "done message). Exit 0 when the job succeeded.\n");
            return 0;
        } else if (!ref && argv[i][0] != '-')
            ref = argv[i];
        else {
            fprintf(stderr, "cb watch: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!ref || cb_cli_job_ref(ref, tenant, job, sizeof tenant) != 0) {
        fprintf(stderr, "cb watch: name the job as TENANT/JOB\n");
        return 2;
    }
    if (!(url = cb_cli_broker_url(url))) {
        fprintf(stderr, "cb watch: no broker: give --broker URL or set CB_BROKER_URL\n");
        return 2;
    }
    snprintf(w.ref, sizeof w.ref, "%s", ref);
    w.tty = isatty(2);
    if (cb_cli_connect(url, "cb watch", &w.base, &b) != 0)
        return 1;
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", tenant, job);
    if ((s = cb_broker_subscribe(b, subject, 0, progress_cb, &w, &ps)) == CB_OK) {
        snprintf(subject, sizeof subject, "cb.done.%s.%s", tenant, job);
        s = cb_broker_subscribe(b, subject, 0, done_cb, &w, &ds);
    }
    if (s == CB_OK)
        event_base_dispatch(w.base);
    else
        fprintf(stderr, "cb watch: cannot subscribe: %s\n", cb_strerror(s));
    cb_sub_close(ps);
    cb_sub_close(ds);
    cb_cli_disconnect(w.base, b);
    return w.rc;
}

/* ---- from the store ------------------------------------------------------- */

static cb_store *open_store(const char *cmd, const char *dir)
{
    cb_store *st = NULL;
    cb_status s = cb_store_open(dir, 0, CB_STORE_RDONLY, &st);
    char why[1200];
    if (s != CB_OK)
        fprintf(stderr, "cb %s: %s\n", cmd, cb_store_open_error(dir, s, why, sizeof why));
    return st;
}

typedef struct oldest {
    int64_t since_ns; /* the longest-running invocation's last change */
    uint32_t task, attempt;
} oldest;

static int note_oldest(uint32_t index, const cb_task_state *t, void *arg)
{
    oldest *o = arg;
    if ((t->status == CB_TASK_RUNNING || t->status == CB_TASK_DISPATCHED) &&
        (o->since_ns == 0 || t->updated_ns < o->since_ns)) {
        o->since_ns = t->updated_ns;
        o->task = index;
        o->attempt = t->attempt;
    }
    return 0;
}

/* The invocation in flight for longest, so one that hangs (its worker alive
 * and renewing it, no outcome) shows: "; longest in flight: task 3 (attempt
 * 1), 125 s". "" when none is. */
static void longest_in_flight(cb_store *st, const char *ref, char *out, size_t size)
{
    oldest o = {0};
    out[0] = '\0';
    if (cb_view_job_open_tasks(st, ref, note_oldest, &o) == CB_OK && o.since_ns > 0)
        snprintf(out, size, "; longest in flight: task %u (attempt %u), %.0f s", o.task, o.attempt,
                 (double)(cb_time_now_ns() - o.since_ns) / 1e9);
}

/* cb status TENANT/JOB */
int cb_cmd_status(int argc, char **argv)
{
    const char *dir = NULL, *ref = NULL;
    int json = 0, rc = 1;
    cb_store *st;
    cb_job_state j;
    cb_status s;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: cb status TENANT/JOB [--store DIR] [--json]\n"
                   "Prints the job's state in the store (--json: its full record).\n");
            return 0;
        } else if (!ref && argv[i][0] != '-')
            ref = argv[i];
        else {
            fprintf(stderr, "cb status: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!ref || !strchr(ref, '/')) {
        fprintf(stderr, "cb status: name the job as TENANT/JOB\n");
        return 2;
    }
    if (!(st = open_store("status", cb_cli_store_dir(dir))))
        return 1;
    if ((s = cb_view_job(st, ref, &j)) != CB_OK) {
        fprintf(stderr, "cb status: %s: %s\n", ref,
                s == CB_ENOTFOUND ? "no such job (yet)" : cb_strerror(s));
        cb_store_close(st);
        return 1;
    }
    if (json) {
        json_t *o = cb_job_state_to_json(&j);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
        rc = 0;
    } else {
        char flight[120];
        longest_in_flight(st, ref, flight, sizeof flight);
        printf("%s %s: %u/%u tasks succeeded, %u running, %u failed, %u retries%s%s%s\n", ref,
               cb_job_status_name(j.status), j.succeeded, j.total, j.inflight, j.failed, j.retries,
               flight, j.error ? "; " : "", j.error ? j.error : "");
        rc = 0;
    }
    cb_job_state_cleanup(&j);
    cb_store_close(st);
    return rc;
}

static int list_job(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    json_t *o = json_loadb(val, vlen, 0, NULL);
    cb_job_state j;
    int *json = arg;
    if (o && cb_job_state_from_json(o, &j) == CB_OK) {
        if (*json) {
            char *text = json_dumps(o, JSON_COMPACT);
            printf("%s\n", text ? text : "{}");
            free(text);
        } else {
            printf("%-50.*s %-10s %u/%u\n", (int)klen, (const char *)key,
                   cb_job_status_name(j.status), j.succeeded, j.total);
        }
        cb_job_state_cleanup(&j);
    }
    json_decref(o);
    return 0;
}

int cb_cmd_jobs(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    cb_store *st;
    cb_txn *t;
    cb_status s;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            int help = !strcmp(argv[i], "--help");
            fprintf(help ? stdout : stderr,
                    "usage: cb jobs [--store DIR] [--json]\nLists the jobs with their state "
                    "(--json: one record per line).\n");
            return help ? 0 : 2;
        }
    }
    if (!(st = open_store("jobs", cb_cli_store_dir(dir))))
        return 1;
    if ((s = cb_store_begin(st, 1, &t)) == CB_OK) {
        s = cb_store_scan(t, CB_DB_JOBS, NULL, 0, list_job, &json);
        cb_store_abort(t);
    }
    cb_store_close(st);
    if (s != CB_OK)
        fprintf(stderr, "cb jobs: %s\n", cb_strerror(s));
    return s == CB_OK ? 0 : 1;
}
