/* tools/cmd_submit.c - `cb submit` and the lifecycle commands `cb cancel`,
 * `cb suspend`, `cb resume`: requests to the engine over the broker. `--wait`
 * listens on the job's completion topic (cb.done.<tenant>.<job>); nothing
 * here ever polls. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cb_json.h"
#include "cb_msg_reply.h"
#include "cb_msg_done.h"
#include "cb_cmd.h"
#include "cb_event.h"
#include "cb_log.h"
#include "cb_time.h"
#include "cli.h"

typedef struct req_state {
    struct event_base *base;
    cb_broker *b;
    cb_sub *sub;
    const char *tenant;
    char job[CB_NAME_MAX + 1];
    int wait, json, rc, finished;
    const char *verdict; /* "rejected" (a job) or "refused" (a command) */
} req_state;

static void done_cb(const cb_broker_msg *m, void *ctx)
{
    req_state *st = ctx;
    json_t *d = json_loadb(m->data, m->len, 0, NULL);
    cb_done_msg done;
    printf("%.*s\n", (int)m->len, (const char *)m->data);
    fflush(stdout);
    st->rc = cb_done_msg_parse(d, &done) == CB_OK && !strcmp(done.status, "succeeded") ? 0 : 1;
    st->finished = 1;
    json_decref(d);
    event_base_loopbreak(st->base);
}

static void reply_cb(cb_status s, const void *data, size_t len, void *ctx)
{
    req_state *st = ctx;
    json_t *r = s == CB_OK ? json_loadb(data, len, 0, NULL) : NULL, *e;
    cb_reply_msg rep;
    const char *id;
    size_t i;

    if (s == CB_OK && cb_reply_msg_parse(r, &rep) != CB_OK)
        s = CB_EPROTO;
    id = s == CB_OK ? rep.job_id : NULL;

    if (s == CB_EDENIED) {
        fprintf(stderr,
                "cb: the broker does not let this identity send that (%s): a tenant acts on its "
                "own jobs only (docs/security.md)\n",
                cb_strerror(s));
        st->rc = 1;
    } else if (s != CB_OK) {
        fprintf(stderr, "cb: no answer from the engine (%s)%s\n", cb_strerror(s),
                s == CB_ENORESP ? ": is cb-engine running? (cb up)" : "");
        st->rc = 1;
    } else if (!rep.accepted) {
        if (st->json)
            printf("%.*s\n", (int)len, (const char *)data);
        json_array_foreach(rep.errors, i, e) fprintf(
            stderr, "cb: %s: %s\n", st->verdict ? st->verdict : "rejected", json_string_value(e));
        st->rc = 1;
    } else {
        if (id)
            snprintf(st->job, sizeof st->job, "%s", id);
        if (st->json && !st->wait)
            printf("%.*s\n", (int)len, (const char *)data);
        else if (!st->json)
            printf("%s\n", st->job);
        fflush(stdout);
        st->rc = 0;
        if (st->wait && id) {
            char subject[320];
            snprintf(subject, sizeof subject, "cb.done.%s.%s", st->tenant, st->job);
            /* a new job's done message comes after this answer (a minute's
             * margin for clocks); a repeated one's may be old: all that is
             * kept (RabbitMQ reads its done stream from a time) */
            int64_t since = rep.repeated ? 0 : cb_time_now_ns() - 60 * 1000000000LL;
            if (cb_broker_subscribe(st->b, subject, since, done_cb, st, &st->sub) == CB_OK) {
                json_decref(r);
                return; /* the done message ends the loop */
            }
            fprintf(stderr, "cb: cannot listen on %s\n", subject);
            st->rc = 1;
        }
    }
    st->finished = 1;
    json_decref(r);
    event_base_loopbreak(st->base);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    size_t cap = 65536, n = 0;
    char *buf = f ? malloc(cap) : NULL;
    if (!buf) {
        if (f && f != stdin)
            fclose(f);
        return NULL;
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static int run_request(req_state *st, const char *subject, const void *data, size_t len,
                       long timeout_s)
{
    struct timeval limit = {timeout_s, 0};
    cb_status s = cb_broker_request(st->b, subject, data, len, 30000, reply_cb, st);
    if (s != CB_OK) {
        fprintf(stderr, "cb: cannot send the request: %s\n", cb_strerror(s));
        return 1;
    }
    if (timeout_s > 0)
        event_base_loopexit(st->base, &limit);
    event_base_dispatch(st->base);
    if (!st->finished) {
        fprintf(stderr, "cb: job %s not finished within %ld s\n", st->job, timeout_s);
        st->rc = 1;
    }
    return st->rc;
}

static void close_all(req_state *st)
{
    cb_sub_close(st->sub);
    cb_cli_disconnect(st->base, st->b);
}

int cb_cmd_submit(int argc, char **argv)
{
    const char *url = NULL, *file = NULL;
    req_state st = {.rc = 1};
    long timeout_s = 0;
    char *data, subject[200];
    size_t len;
    json_t *job;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--wait"))
            st.wait = 1;
        else if (!strcmp(argv[i], "--json"))
            st.json = 1;
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = atol(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: cb submit FILE|- [--broker URL] [--wait [--timeout S]] [--json]\n"
                   "Submits the job in FILE (- for stdin) on cb.submit.<tenant> and prints\n"
                   "its id once the engine has stored it. --wait then waits for the job's\n"
                   "done message and prints it as one JSON line (exit 0 when it\n"
                   "succeeded). The broker URL defaults to $CB_BROKER_URL.\n");
            return 0;
        } else if (!file && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
            file = argv[i];
        else {
            fprintf(stderr, "cb submit: unknown argument '%s' (cb submit --help)\n", argv[i]);
            return 2;
        }
    }
    url = cb_cli_broker_url(url);
    if (!file || !url) {
        fprintf(stderr, "cb submit: %s\n",
                !file ? "which job file? (cb submit FILE|-)"
                      : "no broker: give --broker URL or set "
                        "CB_BROKER_URL (or run cb up here)");
        return 2;
    }
    if (!(data = read_all(file, &len))) {
        fprintf(stderr, "cb submit: cannot read %s\n", file);
        return 1;
    }
    job = json_loadb(data, len, 0, NULL);
    st.tenant = json_string_value(json_object_get(job, "tenant"));
    if (!st.tenant || !cb_name_valid(st.tenant)) {
        fprintf(stderr, "cb submit: %s: %s\n", file,
                job ? "the job needs a valid \"tenant\"" : "not JSON");
        json_decref(job);
        free(data);
        return 1;
    }
    snprintf(subject, sizeof subject, "cb.submit.%s", st.tenant);
    if (cb_cli_connect(url, "cb submit", 1, &st.base, &st.b) == 0)
        run_request(&st, subject, data, len, timeout_s);
    close_all(&st);
    json_decref(job);
    free(data);
    return st.rc;
}

/* cb cancel|suspend|resume TENANT/JOB */
int cb_cmd_lifecycle(int argc, char **argv)
{
    const char *url = NULL, *target = NULL, *reason = NULL, *new_id = NULL, *slash;
    req_state st = {.rc = 1};
    char subject[320], tenant[CB_NAME_MAX + 1], *text;
    json_t *cmd;
    long timeout_s = 0;
    int retry = !strcmp(argv[0], "retry");

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--reason") && i + 1 < argc && !retry)
            reason = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            st.json = 1;
        else if (retry && !strcmp(argv[i], "--job-id") && i + 1 < argc)
            new_id = argv[++i];
        else if (retry && !strcmp(argv[i], "--wait"))
            st.wait = 1;
        else if (retry && !strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = atol(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            if (retry)
                printf("usage: cb retry TENANT/JOB [--job-id ID] [--broker URL] [--wait [--timeout "
                       "S]] [--json]\n"
                       "Runs a failed or cancelled job again as a new job (its id is printed;\n"
                       "--job-id names it): the tasks that succeeded take their outputs from\n"
                       "the old job, the others run (docs/engine.md, Re-running a job).\n"
                       "--wait then prints the new job's done message (exit 0 when it\n"
                       "succeeded).\n");
            else
                printf("usage: cb %s TENANT/JOB [--reason TEXT] [--broker URL] [--json]\n",
                       argv[0]);
            return 0;
        } else if (!target && argv[i][0] != '-')
            target = argv[i];
        else {
            fprintf(stderr, "cb %s: unknown argument '%s'\n", argv[0], argv[i]);
            return 2;
        }
    }
    url = cb_cli_broker_url(url);
    if (!target || !(slash = strchr(target, '/')) || (size_t)(slash - target) > CB_NAME_MAX ||
        !url) {
        fprintf(stderr, "cb %s: %s\n", argv[0],
                !url ? "no broker: give --broker URL or set CB_BROKER_URL"
                     : "name the job as TENANT/JOB");
        return 2;
    }
    snprintf(tenant, sizeof tenant, "%.*s", (int)(slash - target), target);
    snprintf(st.job, sizeof st.job, "%s", slash + 1);
    if (!cb_name_valid(tenant) || !cb_name_valid(st.job)) {
        fprintf(stderr, "cb %s: '%s' is not TENANT/JOB\n", argv[0], target);
        return 2;
    }
    st.tenant = tenant;
    st.verdict = "refused";
    snprintf(subject, sizeof subject, "cb.ctl.%s.%s", tenant, st.job);
    cmd = json_pack("{s:s}", "command", argv[0]);
    if (cmd && reason)
        json_object_set_new(cmd, "reason", json_string(reason));
    if (cmd && new_id)
        json_object_set_new(cmd, "job_id", json_string(new_id));
    text = cmd ? cb_json_dumps(cmd, JSON_COMPACT) : NULL;
    if (text && cb_cli_connect(url, "cb ctl", 1, &st.base, &st.b) == 0)
        run_request(&st, subject, text, strlen(text), timeout_s);
    close_all(&st);
    free(text);
    json_decref(cmd);
    return st.rc;
}
