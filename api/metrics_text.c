/* api/metrics_text.c - /metrics as text (see metrics_text.h). Each family
 * is written whole (HELP, TYPE, then its samples) as the format asks;
 * label values are escaped (backslash, quote, newline). */
#include "metrics_text.h"

#include <stdio.h>
#include <string.h>

#include "cb_buf.h"

/* ---- writing ----------------------------------------------------------------- */

static void family(cb_buf *b, const char *name, const char *type, const char *help)
{
    cb_buf_adds(b, "# HELP ");
    cb_buf_adds(b, name);
    cb_buf_adds(b, " ");
    cb_buf_adds(b, help);
    cb_buf_adds(b, "\n# TYPE ");
    cb_buf_adds(b, name);
    cb_buf_adds(b, " ");
    cb_buf_adds(b, type);
    cb_buf_adds(b, "\n");
}

static void label_value(cb_buf *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\')
            cb_buf_adds(b, "\\\\");
        else if (*v == '"')
            cb_buf_adds(b, "\\\"");
        else if (*v == '\n')
            cb_buf_adds(b, "\\n");
        else
            cb_buf_add(b, v, 1);
    }
}

/* name{k1="v1",k2="v2"} value: labels is a NULL-terminated list of pairs */
static void sample(cb_buf *b, const char *name, const char *const *labels, double value)
{
    char num[64];
    cb_buf_adds(b, name);
    if (labels && labels[0]) {
        cb_buf_adds(b, "{");
        for (int i = 0; labels[i]; i += 2) {
            if (i)
                cb_buf_adds(b, ",");
            cb_buf_adds(b, labels[i]);
            cb_buf_adds(b, "=\"");
            label_value(b, labels[i + 1]);
            cb_buf_adds(b, "\"");
        }
        cb_buf_adds(b, "}");
    }
    if (value == (double)(long long)value && value < 9e15 && value > -9e15)
        snprintf(num, sizeof num, " %lld\n", (long long)value);
    else
        snprintf(num, sizeof num, " %.9g\n", value);
    cb_buf_adds(b, num);
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* ---- the store ------------------------------------------------------------------- */

/* A gauge per tenant: `member` of its task figures. */
static void per_tenant(cb_buf *b, const json_t *store, const char *name, const char *help,
                       const char *member)
{
    const char *tenant;
    json_t *states;
    family(b, name, "gauge", help);
    json_object_foreach((json_t *)json_object_get(store, "tasks"), tenant, states)
    {
        const char *l[] = {"tenant", tenant, NULL};
        sample(b, name, l, num(states, member));
    }
}

/* The cost totals (cb_cost.h) of each tenant or backend (`label`). */
static void costs(cb_buf *b, const json_t *totals, const char *label)
{
    static const char *const what[][3] = {
        {"invocations", "invocations_total", "Invocations billed"},
        {"gb_s", "gigabyte_seconds_total", "Memory x duration billed, in GB-seconds"},
        {"amount", "cost_total", "What invocations cost, in the unit of the accounts' prices"},
    };
    char name[64], help[128];
    const char *key;
    json_t *total;
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
        snprintf(name, sizeof name, "cbcore_%s_%s", label, what[i][1]);
        snprintf(help, sizeof help, "%s, by %s (docs/engine.md, Cost).", what[i][2], label);
        family(b, name, "counter", help);
        json_object_foreach((json_t *)totals, key, total)
        {
            const char *l[] = {label, key, NULL};
            sample(b, name, l, num(total, what[i][0]));
        }
    }
}

static void store_families(cb_buf *b, const json_t *store)
{
    static const char *const task_states[] = {"succeeded", "failed",  "running",
                                              "waiting",   "skipped", NULL};
    const char *tenant, *state;
    json_t *states, *v;
    if (!store)
        return;
    family(b, "cbcore_jobs", "gauge", "Jobs in the store by tenant and state.");
    json_object_foreach((json_t *)json_object_get(store, "jobs"), tenant, states)
    {
        json_object_foreach(states, state, v)
        {
            const char *l[] = {"tenant", tenant, "state", state, NULL};
            sample(b, "cbcore_jobs", l, json_number_value(v));
        }
    }
    family(b, "cbcore_job_tasks", "gauge",
           "Tasks of the store's jobs by tenant and state (running: dispatched or running; "
           "waiting: for a retry).");
    json_object_foreach((json_t *)json_object_get(store, "tasks"), tenant, states)
    {
        for (int i = 0; task_states[i]; i++) {
            const char *l[] = {"tenant", tenant, "state", task_states[i], NULL};
            sample(b, "cbcore_job_tasks", l, num(states, task_states[i]));
        }
    }
    per_tenant(b, store, "cbcore_job_task_retries", "Retries of the store's jobs' tasks by tenant.",
               "retries");
    per_tenant(b, store, "cbcore_job_task_timeouts",
               "Timed-out attempts of the store's jobs' tasks by tenant.", "timeouts");
    costs(b, json_object_get(json_object_get(store, "costs"), "tenants"), "tenant");
    costs(b, json_object_get(json_object_get(store, "costs"), "backends"), "backend");
    family(b, "cbcore_store_position", "gauge", "The last log position folded into the store.");
    sample(b, "cbcore_store_position", NULL, num(store, "position"));
}

/* ---- the daemons' reports ----------------------------------------------------- */

typedef struct counter {
    const char *member, *name, *type, *help;
} counter;

static const counter engine_counters[] = {
    {"submitted", "cbcore_engine_jobs_submitted_total", "counter", "Submissions taken."},
    {"accepted", "cbcore_engine_jobs_accepted_total", "counter", "Submissions accepted."},
    {"rejected", "cbcore_engine_jobs_rejected_total", "counter", "Submissions rejected."},
    {"commands", "cbcore_engine_commands_total", "counter", "Lifecycle commands taken."},
    {"refused", "cbcore_engine_commands_refused_total", "counter", "Lifecycle commands refused."},
    {"dispatched", "cbcore_engine_tasks_dispatched_total", "counter", "Task attempts dispatched."},
    {"events", "cbcore_engine_events_total", "counter", "Log events read."},
    {"jobs_done", "cbcore_engine_jobs_done_total", "counter", "Jobs ended (done messages)."},
    {"errors", "cbcore_engine_errors_total", "counter", "Errors (see its log)."},
    {"jobs_in_memory", "cbcore_engine_jobs_in_memory", "gauge", "Unfinished jobs it holds."},
    {"log_seq", "cbcore_engine_log_position", "gauge", "The last log position it read."},
    {NULL, NULL, NULL, NULL}};

static const counter adapter_counters[] = {
    {"received", "cbcore_adapter_commands_received_total", "counter",
     "Invocation commands taken (a command carries one task or several)."},
    {"tasks", "cbcore_adapter_tasks_received_total", "counter", "Tasks taken, over every command."},
    {"succeeded", "cbcore_adapter_tasks_succeeded_total", "counter", "Invocations succeeded."},
    {"failed", "cbcore_adapter_tasks_failed_total", "counter",
     "Invocations failed (the engine retries or fails the task)."},
    {"throttled", "cbcore_adapter_tasks_throttled_total", "counter",
     "Invocations the backend throttled (429 and the like)."},
    {"redelivered", "cbcore_adapter_tasks_redelivered_total", "counter",
     "Commands delivered again (an adapter died or gave them back)."},
    {"invalid", "cbcore_adapter_tasks_invalid_total", "counter", "Commands that were not valid."},
    {"running", "cbcore_adapter_invocations_in_flight", "gauge", "Invocations running now."},
    {"max_concurrency", "cbcore_adapter_max_concurrency", "gauge",
     "The backend account's limit on invocations in flight (0: none)."},
    {"rate_per_s", "cbcore_adapter_rate_limit_per_second", "gauge",
     "The backend account's limit on invocations started per second (0: none)."},
    {NULL, NULL, NULL, NULL}};

static const counter projector_counters[] = {
    {"applied_seq", "cbcore_projector_position", "gauge", "The last log position it folded."},
    {"events", "cbcore_projector_events_total", "counter", "Log events read."},
    {"applied", "cbcore_projector_events_applied_total", "counter", "Events that changed state."},
    {"ignored", "cbcore_projector_events_ignored_total", "counter",
     "Events that changed nothing (duplicates, late reports)."},
    {"invalid", "cbcore_projector_events_invalid_total", "counter", "Entries that are no event."},
    {"commits", "cbcore_projector_commits_total", "counter", "Store commits."},
    {NULL, NULL, NULL, NULL}};

static const counter sla_counters[] = {
    {"events", "cbcore_sla_events_total", "counter", "Log events the SLA evaluator read."},
    {"breaches", "cbcore_sla_breaches_found_total", "counter",
     "Breaches the evaluator found since it started (a restart finds them again)."},
    {"appended", "cbcore_sla_events_appended_total", "counter",
     "Breaches, recoveries and warnings this evaluator appended to the log."},
    {"errors", "cbcore_sla_errors_total", "counter", "Appends or notifications that failed."},
    {NULL, NULL, NULL, NULL}};

/* Per guarantee of every agreement: cb-sla's accounting (sla/main.c). */
static void sla_guarantees(cb_buf *b, const json_t *reports)
{
    static const struct {
        const char *member, *name, *type, *help;
    } fams[] = {
        {"evaluations", "cbcore_sla_evaluations_total", "counter",
         "Evaluations of the guarantee with a verdict."},
        {"violations", "cbcore_sla_violations_total", "counter",
         "Evaluations that found the constraint violated."},
        {"breaches", "cbcore_sla_guarantee_breaches_total", "counter",
         "Breaches: repetitions violations in a row (cb.sla.violated)."},
        {"compliant", "cbcore_sla_compliant", "gauge",
         "1 unless the guarantee is breached and no evaluation has held since."},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        const char *key;
        json_t *e;
        int any = 0;
        json_object_foreach((json_t *)reports, key, e)
        {
            const json_t *sla = json_object_get(json_object_get(e, "report"), "sla"), *g;
            size_t i;
            json_array_foreach(json_object_get(sla, "guarantees"), i, g)
            {
                const char *l[] = {"tenant",    json_string_value(json_object_get(g, "tenant")),
                                   "agreement", json_string_value(json_object_get(g, "agreement")),
                                   "guarantee", json_string_value(json_object_get(g, "guarantee")),
                                   "state",     json_string_value(json_object_get(g, "state")),
                                   NULL};
                const json_t *v = json_object_get(g, fams[f].member);
                if (!l[1] || !l[3] || !l[5] || !l[7])
                    continue;
                if (!any++)
                    family(b, fams[f].name, fams[f].type, fams[f].help);
                sample(b, fams[f].name, l,
                       json_is_boolean(v) ? json_is_true(v) : num(g, fams[f].member));
            }
        }
    }
}

/* The report's labels: daemon and id, and backend for an adapter. */
static void labels_of(const json_t *rep, const char *section, const char *l[7])
{
    int n = 0;
    l[n++] = "daemon";
    l[n++] = json_string_value(json_object_get(rep, "daemon"));
    l[n++] = "id";
    l[n++] = json_string_value(json_object_get(rep, "id"));
    if (!strcmp(section, "adapter")) {
        l[n++] = "backend";
        l[n++] = json_string_value(json_object_get(json_object_get(rep, "adapter"), "backend"));
    }
    l[n] = NULL;
}

static void counters(cb_buf *b, const json_t *reports, const char *section, const counter *cs)
{
    const char *key;
    json_t *e;
    for (const counter *c = cs; c->member; c++) {
        int any = 0;
        json_object_foreach((json_t *)reports, key, e)
        {
            const json_t *rep = json_object_get(e, "report");
            const json_t *sec = json_object_get(rep, section);
            const char *l[7];
            if (!json_is_number(json_object_get(sec, c->member)))
                continue;
            if (!any++)
                family(b, c->name, c->type, c->help);
            labels_of(rep, section, l);
            sample(b, c->name, l, num(sec, c->member));
        }
    }
}

static void histogram(cb_buf *b, const json_t *reports, const char *member, const char *name,
                      const char *help)
{
    const char *key;
    json_t *e;
    int any = 0;
    json_object_foreach((json_t *)reports, key, e)
    {
        const json_t *rep = json_object_get(e, "report");
        const json_t *h = json_object_get(json_object_get(rep, "adapter"), member);
        const json_t *le = json_object_get(h, "le"), *cnt = json_object_get(h, "counts");
        const char *l[9];
        char bound[32], bucket[128], sum[128], count[128];
        if (!json_is_array(le) || json_array_size(cnt) != json_array_size(le) + 1)
            continue;
        if (!any++)
            family(b, name, "histogram", help);
        labels_of(rep, "adapter", l);
        snprintf(bucket, sizeof bucket, "%s_bucket", name);
        snprintf(sum, sizeof sum, "%s_sum", name);
        snprintf(count, sizeof count, "%s_count", name);
        l[6] = "le";
        l[8] = NULL;
        for (size_t i = 0; i <= json_array_size(le); i++) {
            if (i < json_array_size(le))
                snprintf(bound, sizeof bound, "%g", json_number_value(json_array_get(le, i)));
            else
                snprintf(bound, sizeof bound, "+Inf");
            l[7] = bound;
            sample(b, bucket, l, json_number_value(json_array_get(cnt, i)));
        }
        l[6] = NULL;
        sample(b, sum, l, num(h, "sum"));
        sample(b, count, l, num(h, "count"));
    }
}

/* A family with one sample per daemon: `member` of the report's `section`
 * (NULL: of the entry itself, as age_s); true is 1. */
static void per_daemon(cb_buf *b, const json_t *reports, const char *name, const char *type,
                       const char *help, const char *section, const char *member)
{
    const char *key;
    json_t *e;
    family(b, name, type, help);
    json_object_foreach((json_t *)reports, key, e)
    {
        const json_t *rep = json_object_get(e, "report");
        const json_t *v = json_object_get(section ? json_object_get(rep, section) : e, member);
        const char *l[7];
        labels_of(rep, "", l);
        sample(b, name, l, json_is_true(v) ? 1 : json_number_value(v));
    }
}

static void daemons(cb_buf *b, const json_t *reports)
{
    const char *key;
    json_t *e;
    family(b, "cbcore_daemon_up", "gauge",
           "1 while the daemon reports (cb.stats), 0 once its last report is 3 periods old.");
    json_object_foreach((json_t *)reports, key, e)
    {
        const json_t *rep = json_object_get(e, "report");
        double period = num(rep, "period_ms") / 1000.0;
        const char *l[7];
        labels_of(rep, "", l);
        sample(b, "cbcore_daemon_up", l,
               num(e, "age_s") <= CB_METRICS_DOWN_PERIODS * (period > 0 ? period : 5) ? 1 : 0);
    }
    per_daemon(b, reports, "cbcore_daemon_report_age_seconds", "gauge",
               "Seconds since the daemon's last report.", NULL, "age_s");
    per_daemon(b, reports, "cbcore_broker_connected", "gauge",
               "1 while the daemon's broker connection is up.", "broker", "connected");
    per_daemon(b, reports, "cbcore_broker_reconnects_total", "counter",
               "The daemon's broker reconnections.", "broker", "reconnects");
    family(b, "cbcore_broker_durability_info", "gauge",
           "The broker's durability as the daemon sees it (driver, storage, replicas), 1.");
    json_object_foreach((json_t *)reports, key, e)
    {
        const json_t *rep = json_object_get(e, "report"), *br = json_object_get(rep, "broker");
        const json_t *du = json_object_get(br, "durability");
        char replicas[24];
        const char *l[13];
        labels_of(rep, "", l);
        snprintf(replicas, sizeof replicas, "%lld",
                 (long long)json_integer_value(json_object_get(du, "replicas")));
        l[4] = "driver";
        l[5] = json_string_value(json_object_get(br, "driver"));
        l[6] = "storage";
        l[7] = json_string_value(json_object_get(du, "storage"));
        l[8] = "replicas";
        l[9] = replicas;
        l[10] = NULL;
        sample(b, "cbcore_broker_durability_info", l, 1);
    }
}

/* The newest log position an engine has read: the log's end, near enough. */
static void lag(cb_buf *b, const json_t *reports, const json_t *store)
{
    const char *key;
    json_t *e;
    double end = -1;
    json_object_foreach((json_t *)reports, key, e)
    {
        const json_t *eng = json_object_get(json_object_get(e, "report"), "engine");
        if (json_is_number(json_object_get(eng, "log_seq")) && num(eng, "log_seq") > end)
            end = num(eng, "log_seq");
    }
    if (!store || end < 0)
        return;
    family(b, "cbcore_projector_lag_events", "gauge",
           "Log events the store is behind the newest position an engine has read.");
    sample(b, "cbcore_projector_lag_events", NULL,
           end > num(store, "position") ? end - num(store, "position") : 0);
}

char *cb_metrics_text(const json_t *reports, const json_t *store)
{
    cb_buf b = {0};
    store_families(&b, store);
    lag(&b, reports, store);
    daemons(&b, reports);
    counters(&b, reports, "engine", engine_counters);
    counters(&b, reports, "adapter", adapter_counters);
    histogram(&b, reports, "duration", "cbcore_adapter_invocation_duration_seconds",
              "From an invocation command's delivery to its outcome in the log.");
    histogram(&b, reports, "since_dispatch", "cbcore_task_dispatch_to_outcome_seconds",
              "From a task's dispatch (the command's publication) to its outcome in the log.");
    counters(&b, reports, "projector", projector_counters);
    counters(&b, reports, "sla", sla_counters);
    sla_guarantees(&b, reports);
    return cb_buf_take(&b, NULL);
}
