/* tools/cmd_sla.c - `cb sla`: the SLA service from the command line
 * (docs/sla.md): agreements managed through cb-sla (create, list, show,
 * delete, start, stop: requests on cb.slactl.<tenant>, sla/control.h) and
 * `watch`, the breaches of a tenant's agreements as they are notified on
 * cb.sla.<tenant>.<agreement>. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_event.h"
#include "cb_json.h"
#include "cli.h"

typedef struct sla_watch {
    struct event_base *base;
    long want, got;
    int timed_out;
} sla_watch;

static void note_cb(const cb_broker_msg *m, void *ctx)
{
    sla_watch *w = ctx;
    printf("%.*s\n", (int)m->len, (const char *)m->data);
    fflush(stdout);
    if (w->want > 0 && ++w->got >= w->want)
        event_base_loopbreak(w->base);
}

static void timeout_cb(evutil_socket_t fd, short what, void *ctx)
{
    sla_watch *w = ctx;
    (void)fd;
    (void)what;
    w->timed_out = 1;
    event_base_loopbreak(w->base);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: cb sla create FILE|- --tenant T          create or update an agreement\n"
            "       cb sla create --template TPL --id ID [--set NAME=VALUE]... --tenant T\n"
            "       cb sla list --tenant T [--json]\n"
            "       cb sla show ID --tenant T                  (JSON: state, counts, breaches)\n"
            "       cb sla delete|start|stop ID --tenant T\n"
            "       cb sla watch TENANT [--count N] [--timeout-ms MS]\n"
            "Every form takes --broker URL (default $CB_BROKER_URL). An agreement is\n"
            "schemas/agreement.json (docs/sla.md); a template is one with\n"
            "details.type \"template\" and {{NAME}} placeholders. watch prints each\n"
            "breach and recovery notified for the tenant's agreements (one JSON line\n"
            "each) as it comes: --count N exits 0 after N, --timeout-ms exits 1 if\n"
            "they did not come in time.\n");
    return 2;
}

static int watch(int argc, char **argv)
{
    const char *url = NULL, *tenant = NULL;
    char subject[CB_NAME_MAX + 16];
    long timeout_ms = 0;
    sla_watch w = {0};
    cb_broker *b = NULL;
    cb_sub *sub = NULL;
    struct event *timer = NULL;
    cb_status s;

    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            w.want = atol(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else if (!tenant && argv[i][0] != '-')
            tenant = argv[i];
        else
            return usage();
    }
    if (!tenant || !cb_name_valid(tenant))
        return usage();
    if (!(url = cb_cli_broker_url(url))) {
        fprintf(stderr, "cb sla: no broker: give --broker URL or set CB_BROKER_URL\n");
        return 2;
    }
    if (cb_cli_connect(url, "cb sla", 1, &w.base, &b) != 0)
        return 1;
    snprintf(subject, sizeof subject, "cb.sla.%s.>", tenant);
    if ((s = cb_broker_subscribe(b, subject, 0, note_cb, &w, &sub)) != CB_OK) {
        fprintf(stderr, "cb sla: cannot subscribe to %s: %s\n", subject, cb_strerror(s));
        cb_cli_disconnect(w.base, b);
        return 1;
    }
    fprintf(stderr, "cb sla: watching %s\n", subject); /* subscribed: breaches from now on */
    if (timeout_ms > 0 && (timer = evtimer_new(w.base, timeout_cb, &w))) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(timer, &tv);
    }
    event_base_dispatch(w.base);
    if (timer)
        event_free(timer);
    cb_sub_close(sub);
    cb_cli_disconnect(w.base, b);
    return w.timed_out ? 1 : 0;
}

/* ---- requests to cb-sla ------------------------------------------------ */

typedef struct ask {
    struct event_base *base;
    json_t *reply;
    cb_status s;
} ask;

static void reply_cb(cb_status s, const void *data, size_t len, void *ctx)
{
    ask *a = ctx;
    a->s = s;
    if (s == CB_OK)
        a->reply = json_loadb(data, len, 0, NULL);
    event_base_loopbreak(a->base);
}

/* Send body to cb.slactl.<tenant>; the reply (new reference) or NULL. */
static json_t *request(const char *url, const char *tenant, json_t *body)
{
    char subject[CB_NAME_MAX + 16], *text = cb_json_dumps(body, JSON_COMPACT);
    ask a = {0};
    cb_broker *b;
    if (!text)
        return NULL;
    if (cb_cli_connect(url, "cb sla", 1, &a.base, &b) != 0) {
        free(text);
        return NULL;
    }
    snprintf(subject, sizeof subject, "cb.slactl.%s", tenant);
    a.s = cb_broker_request(b, subject, text, strlen(text), 30000, reply_cb, &a);
    if (a.s == CB_OK)
        event_base_dispatch(a.base);
    if (a.s != CB_OK)
        fprintf(stderr, "cb sla: no answer on %s: %s%s\n", subject, cb_strerror(a.s),
                a.s == CB_ENORESP || a.s == CB_ETIMEDOUT ? " (is cb-sla running? cb up starts it)"
                                                         : "");
    free(text);
    cb_cli_disconnect(a.base, b);
    return a.reply;
}

static void print_list(const json_t *list)
{
    size_t i;
    json_t *a;
    printf("%-24s %-10s %-10s %8s %9s  %s\n", "ID", "TYPE", "STATE", "BREACHES", "COMPLIANT",
           "NAME");
    json_array_foreach(list, i, a)
    {
        printf("%-24s %-10s %-10s %8lld %9s  %s\n", json_string_value(json_object_get(a, "id")),
               json_string_value(json_object_get(a, "type")),
               json_string_value(json_object_get(a, "state")),
               (long long)json_integer_value(json_object_get(a, "breaches")),
               json_is_true(json_object_get(a, "compliant")) ? "yes" : "no",
               json_string_value(json_object_get(a, "name")) ?: "");
    }
}

int cb_cmd_sla(int argc, char **argv)
{
    const char *url = NULL, *tenant = NULL, *op, *arg = NULL, *tpl = NULL, *id = NULL;
    json_t *body, *values, *reply;
    int as_json = 0, rc;

    if (argc < 2)
        return usage();
    op = argv[1];
    if (!strcmp(op, "watch"))
        return watch(argc, argv);
    if (strcmp(op, "create") && strcmp(op, "list") && strcmp(op, "show") && strcmp(op, "delete") &&
        strcmp(op, "start") && strcmp(op, "stop"))
        return usage();
    if (!(values = json_object()))
        return 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
            tenant = argv[++i];
        else if (!strcmp(argv[i], "--template") && i + 1 < argc)
            tpl = argv[++i];
        else if (!strcmp(argv[i], "--id") && i + 1 < argc)
            id = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (!eq) {
                json_decref(values);
                return usage();
            }
            *eq = '\0';
            json_object_set_new(values, argv[i], json_string(eq + 1));
        } else if (!arg && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
            arg = argv[i];
        else {
            json_decref(values);
            return usage();
        }
    }
    if (!tenant)
        tenant = getenv("CB_TENANT");
    if (!tenant || !cb_name_valid(tenant)) {
        fprintf(stderr, "cb sla: give --tenant T (or set CB_TENANT)\n");
        json_decref(values);
        return 2;
    }
    if (!(url = cb_cli_broker_url(url))) {
        fprintf(stderr, "cb sla: no broker: give --broker URL or set CB_BROKER_URL\n");
        json_decref(values);
        return 2;
    }
    if (!strcmp(op, "create")) {
        if (tpl) {
            if (!id) {
                fprintf(stderr, "cb sla: --template needs --id\n");
                json_decref(values);
                return 2;
            }
            body = json_pack("{s:s, s:s, s:s, s:O}", "op", "put", "template", tpl, "id", id,
                             "values", values);
        } else {
            json_error_t je;
            json_t *spec = !arg                ? NULL
                           : !strcmp(arg, "-") ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                                               : json_load_file(arg, JSON_REJECT_DUPLICATES, &je);
            if (!spec) {
                if (arg)
                    fprintf(stderr, "cb sla: %s: %s (line %d)\n", arg, je.text, je.line);
                json_decref(values);
                return arg ? 1 : usage();
            }
            body = json_pack("{s:s, s:o}", "op", "put", "agreement", spec);
        }
    } else if (!strcmp(op, "list")) {
        body = json_pack("{s:s}", "op", "list");
    } else {
        if (!arg) {
            json_decref(values);
            return usage();
        }
        body = json_pack("{s:s, s:s}", "op", op, "id", arg);
    }
    json_decref(values);
    reply = body ? request(url, tenant, body) : NULL;
    json_decref(body);
    if (!reply)
        return 1;
    if (!json_is_true(json_object_get(reply, "ok"))) {
        size_t i;
        json_t *e;
        fprintf(stderr, "cb sla: refused: %s\n",
                json_string_value(json_object_get(reply, "error")) ?: "(no reason given)");
        json_array_foreach(json_object_get(reply, "errors"), i, e)
            fprintf(stderr, "  %s\n", json_string_value(e) ?: "?");
        json_decref(reply);
        return 1;
    }
    if (!strcmp(op, "list") && !as_json) {
        print_list(json_object_get(reply, "agreements"));
    } else {
        const json_t *show = !strcmp(op, "list") ? json_object_get(reply, "agreements")
                             : json_object_get(reply, "agreement")
                                 ? json_object_get(reply, "agreement")
                                 : reply;
        char *text = cb_json_dumps(show, JSON_INDENT(2));
        if (text)
            printf("%s\n", text);
        free(text);
    }
    rc = 0;
    json_decref(reply);
    return rc;
}
