/* tools/cmd_health.c - `cb health DAEMON`: whether a daemon lives and is
 * connected, from the figures it reports on cb.stats.<daemon>.<id>
 * (broker/report.h). What a container's health check runs
 * (docker-compose.yml): the report proves the daemon's loop turns and its
 * broker connection is up, which a process check does not. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_event.h"
#include "cb_time.h"
#include "cli.h"

static const char *usage =
    "usage: cb health DAEMON [--broker URL] [--id ID] [--timeout-ms N]\n"
    "       cb health api --url URL [--timeout-ms N]\n"
    "Waits for a figures report of DAEMON (engine, projector, adapter, sla:\n"
    "cb.stats.DAEMON.ID, sent every $CB_STATS_MS, default 5000 ms) that says its\n"
    "broker connection is up. Exit 0 when one comes within N ms (default\n"
    "12000), else 1 with the reason. The report's id must be ID (default: one\n"
    "of a daemon on this host, whose id begins with the host's name; '*':\n"
    "any daemon's). cb-api: GET URL/v1/health must answer 200.\n";

typedef struct health {
    const char *want; /* the id asked for, or NULL: any */
    char prefix[80];  /* or this prefix ("<host>-"), when not empty */
    int got, stale;   /* a live report came; one came that said "not connected" */
} health;

static void report_cb(const cb_broker_msg *m, void *ctx)
{
    health *h = ctx;
    json_t *r = json_loadb(m->data, m->len, 0, NULL);
    const char *id = json_string_value(json_object_get(r, "id"));
    json_t *conn = json_object_get(json_object_get(r, "broker"), "connected");
    if (id && ((h->want && !strcmp(id, h->want)) ||
               (!h->want && (!*h->prefix || !strncmp(id, h->prefix, strlen(h->prefix)))))) {
        if (json_is_true(conn))
            h->got = 1;
        else
            h->stale = 1;
    }
    json_decref(r);
}

int cb_cmd_health(int argc, char **argv)
{
    const char *url = NULL, *http = NULL, *daemon;
    long timeout_ms = 12000;
    char pattern[200], host[64] = "", name[64];
    struct event_base *base = NULL;
    cb_broker *b = NULL;
    cb_sub *sub = NULL;
    health h;
    int64_t end;
    memset(&h, 0, sizeof h);
    if (argc < 2 || argv[1][0] == '-') {
        fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    daemon = argv[1];
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--url") && i + 1 < argc)
            http = argv[++i];
        else if (!strcmp(argv[i], "--id") && i + 1 < argc)
            h.want = argv[++i];
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else {
            fprintf(stderr, "cb health: unknown option %s\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!cb_name_valid(daemon) || timeout_ms <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (http) { /* cb-api answers for itself */
        char target[1024], body[512];
        int code;
        snprintf(target, sizeof target, "%s/v1/health", http);
        if ((code = cb_cli_http("GET", target, NULL, NULL, (int)timeout_ms, body, sizeof body)) ==
            200)
            return 0;
        if (code)
            fprintf(stderr, "cb health: GET %s: HTTP %d: %s\n", target, code, body);
        else
            fprintf(stderr, "cb health: GET %s: %s\n", target, body);
        return 1;
    }
    if (h.want && !strcmp(h.want, "*"))
        h.want = NULL;
    else if (!h.want) {
        (void)gethostname(host, sizeof host - 1); /* as the daemons' reports name it */
        snprintf(h.prefix, sizeof h.prefix, "%s-", cb_name_from(host, name, sizeof name));
    }
    if (!(url = cb_cli_broker_url(url))) {
        fprintf(stderr, "cb health: no broker (--broker URL or $CB_BROKER_URL)\n");
        return 1;
    }
    if (cb_cli_connect(url, "cb-health", 1, &base, &b) != 0)
        return 1;
    snprintf(pattern, sizeof pattern, "cb.stats.%s.*", daemon);
    if (cb_broker_subscribe(b, pattern, 0, report_cb, &h, &sub) != CB_OK) {
        fprintf(stderr, "cb health: cannot subscribe to %s\n", pattern);
        cb_cli_disconnect(base, b);
        return 1;
    }
    end = cb_time_mono_ns() + timeout_ms * 1000000LL;
    while (!h.got && cb_time_mono_ns() < end) {
        struct timeval tv = {0, 100000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    cb_sub_close(sub);
    cb_cli_disconnect(base, b);
    if (h.got)
        return 0;
    if (h.stale)
        fprintf(stderr, "cb health: %s reports its broker connection down\n", daemon);
    else if (h.want)
        fprintf(stderr, "cb health: no report of %s %s within %ld ms\n", daemon, h.want,
                timeout_ms);
    else
        fprintf(stderr, "cb health: no report of %s%s%s within %ld ms\n", daemon,
                *h.prefix ? " on this host, " : "", host, timeout_ms);
    return 1;
}
