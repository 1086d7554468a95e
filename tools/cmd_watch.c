/* tools/cmd_watch.c - `cb watch`: live progress from cb.progress.* and the
 * done topic (a bar on a terminal, plain lines otherwise). The store readers
 * are cmd_status.c (`cb status`, `cb jobs`) and cmd_result.c. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "views.h"
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
    if (cb_cli_connect(url, "cb watch", 0, &w.base, &b) != 0)
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
