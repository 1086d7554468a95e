/* tools/cmd_status.c - the store readers `cb status TENANT/JOB` (a job's
 * state, counts and the invocation in flight for longest) and `cb jobs`
 * (every job with its state). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_cmd.h"
#include "cb_json.h"
#include "cb_event.h"
#include "cb_time.h"
#include "cli.h"
#include "fold.h"
#include "store.h"
#include "views.h"

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

/* One total (cb_cost.h) as a line. */
static void print_cost(const char *what, const cb_cost *c)
{
    printf("%s: %.9g (%llu invocations, %.6g GB-s)\n", what, cb_cost_amount(c),
           (unsigned long long)c->invocations, cb_cost_gb_s(c));
}

static int cost_line(const char *name, const cb_cost *total, void *arg)
{
    char what[CB_NAME_MAX + 16];
    if (arg) /* --json */
        return cb_cost_put(name, total, arg);
    snprintf(what, sizeof what, "  %s", name);
    print_cost(what, total);
    return 0;
}

/* A tenant's cost total, or (tenant "") every tenant's and account's. */
static int print_costs(cb_store *st, const char *tenant, int json)
{
    static const char *const kinds[] = {"tenant", "backend"};
    json_t *o = json ? json_object() : NULL;
    cb_status s = CB_OK;
    cb_cost c;
    char *text;
    if (*tenant) {
        if ((s = cb_view_cost(st, "tenant", tenant, &c)) == CB_OK && !json) {
            char what[CB_NAME_MAX + 16];
            snprintf(what, sizeof what, "%s cost", tenant);
            print_cost(what, &c);
        } else if (s == CB_OK) {
            json_object_set_new(o, "tenant", json_string(tenant));
            json_object_set_new(o, "cost", cb_cost_json(&c));
        }
    }
    for (size_t i = 0; !*tenant && s == CB_OK && i < 2; i++) {
        json_t *all = json ? json_object() : NULL;
        if (!json)
            printf("%ss:\n", kinds[i]);
        s = cb_view_costs(st, kinds[i], cost_line, all);
        if (json)
            json_object_set_new(o, i ? "backends" : "tenants", all);
    }
    if (s != CB_OK) {
        fprintf(stderr, "cb status: %s\n", cb_strerror(s));
        json_decref(o);
        return 1;
    }
    if (json) {
        text = cb_json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    }
    return 0;
}

/* cb status TENANT/JOB | TENANT | --costs */
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
        else if (!strcmp(argv[i], "--costs"))
            ref = "";
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: cb status TENANT/JOB|TENANT|--costs [--store DIR] [--json]\n"
                   "Prints the job's state in the store (--json: its full record); for a\n"
                   "tenant, what its jobs' invocations have cost; --costs: every tenant's and\n"
                   "account's (docs/engine.md, Cost).\n");
            return 0;
        } else if (!ref && argv[i][0] != '-')
            ref = argv[i];
        else {
            fprintf(stderr, "cb status: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!ref || (*ref && !strchr(ref, '/') && !cb_name_valid(ref))) {
        fprintf(stderr, "cb status: name the job as TENANT/JOB (or a tenant, or --costs)\n");
        return 2;
    }
    if (!(st = cb_cli_open_store("status", cb_cli_store_dir(dir))))
        return 1;
    if (!strchr(ref, '/')) {
        rc = print_costs(st, ref, json);
        cb_store_close(st);
        return rc;
    }
    if ((s = cb_view_job(st, ref, &j)) != CB_OK) {
        fprintf(stderr, "cb status: %s: %s\n", ref,
                s == CB_ENOTFOUND ? "no such job (yet)" : cb_strerror(s));
        cb_store_close(st);
        return 1;
    }
    if (json) {
        json_t *o = cb_job_state_to_json(&j);
        char *text = o ? cb_json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
        rc = 0;
    } else {
        char flight[120];
        longest_in_flight(st, ref, flight, sizeof flight);
        char reuse[CB_NAME_MAX + 80] = "";
        const char *of = json_string_value(json_object_get(j.spec, "retry_of"));
        if (j.memoized || of) /* outputs taken from earlier tasks (docs/engine.md) */
            snprintf(reuse, sizeof reuse, " (%u memoized%s%s)", j.memoized,
                     of ? "; a re-run of " : "", of ? of : "");
        printf("%s %s: %u/%u tasks succeeded%s, %u running, %u failed, %u retries%s%s%s\n", ref,
               cb_job_status_name(j.status), j.succeeded, j.total, reuse, j.inflight, j.failed,
               j.retries, flight, j.error ? "; " : "", j.error ? j.error : "");
        print_cost("  cost", &j.cost);
        for (uint32_t i = 0; i < j.nmembers; i++) /* a pool's job (docs/engine.md, "Pools") */
            printf("  on %s: %u dispatched, %u running, %u throttled\n", j.members[i].backend,
                   j.members[i].dispatched, j.members[i].inflight, j.members[i].throttled);
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
            char *text = cb_json_dumps(o, JSON_COMPACT);
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
    if (!(st = cb_cli_open_store("jobs", cb_cli_store_dir(dir))))
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
