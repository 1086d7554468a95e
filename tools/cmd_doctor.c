/* tools/cmd_doctor.c - `cb doctor`: what the stack stands on, as the servers
 * report it. The broker: reachable, and its durability read from the server
 * (NATS: the streams' replicas and placed peers, storage; RabbitMQ: what a
 * client can know) with a plain statement of when an acknowledged event can
 * be lost. The store: opens, not damaged, how far it has folded the log.
 * Exit 0 when both are sound, 1 otherwise, 2 on usage. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views.h"
#include "cb_json.h"
#include "broker.h"
#include "cb_cmd.h"
#include "cli.h"
#include "store.h"

static const char *usage_text =
    "usage: cb doctor [--broker URL] [--store DIR] [--json]\n"
    "Checks the broker (reachable; durability as the server reports it: storage,\n"
    "replicas, when an acknowledged event can be lost) and the store (opens, not\n"
    "damaged, its log position). Exit 0 when both are sound.\n";

/* The store's part; *ok = 0 when it is there but cannot be read. */
static json_t *check_store(const char *dir, int given, int *ok)
{
    cb_store *st = NULL;
    uint64_t seq = 0;
    char why[1200];
    cb_status s = cb_store_open(dir, 0, CB_STORE_RDONLY, &st);
    json_t *o;
    if (s == CB_ENOTFOUND && !given)
        return json_pack("{s:s, s:b, s:s}", "dir", dir, "ok", 1, "note", "no store here");
    if (s != CB_OK) {
        *ok = 0;
        return json_pack("{s:s, s:b, s:s}", "dir", dir, "ok", 0, "error",
                         cb_store_open_error(dir, s, why, sizeof why));
    }
    s = cb_view_applied_seq(st, 0, &seq);
    o = json_pack("{s:s, s:b, s:I}", "dir", dir, "ok", s == CB_OK, "applied_seq", (json_int_t)seq);
    *ok &= s == CB_OK;
    cb_store_close(st);
    return o;
}

static void print_text(const json_t *r)
{
    const json_t *b = json_object_get(r, "broker"), *d = json_object_get(b, "durability");
    const json_t *st = json_object_get(r, "store");
    if (json_object_get(b, "error"))
        printf("broker: %s\n", json_string_value(json_object_get(b, "error")));
    else
        printf("broker %s (%s): %s\n  durability: storage %s; replicas %lld; fsync: %s\n  %s\n",
               json_string_value(json_object_get(b, "server")) ?: "?",
               json_string_value(json_object_get(b, "driver")) ?: "?",
               json_is_true(json_object_get(b, "connected")) ? "connected" : "not connected",
               json_string_value(json_object_get(d, "storage")) ?: "?",
               (long long)json_integer_value(json_object_get(d, "replicas")),
               json_string_value(json_object_get(d, "fsync")) ?: "?",
               json_string_value(json_object_get(d, "note")) ?: "");
    if (json_object_get(st, "error"))
        printf("store: %s\n", json_string_value(json_object_get(st, "error")));
    else if (json_object_get(st, "note"))
        printf("store %s: %s\n", json_string_value(json_object_get(st, "dir")),
               json_string_value(json_object_get(st, "note")));
    else
        printf("store %s: readable, log position %lld\n",
               json_string_value(json_object_get(st, "dir")),
               (long long)json_integer_value(json_object_get(st, "applied_seq")));
}

int cb_cmd_doctor(int argc, char **argv)
{
    const char *url = NULL, *dir = NULL;
    int json = 0, ok = 1;
    struct event_base *base = NULL;
    cb_broker *b = NULL;
    json_t *r;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            int help = !strcmp(argv[i], "--help");
            fputs(usage_text, help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    r = json_object();
    url = cb_cli_broker_url(url);
    if (!url) {
        ok = 0;
        json_object_set_new(r, "broker",
                            json_pack("{s:s}", "error",
                                      "no broker URL (--broker, "
                                      "$CB_BROKER_URL, .cb/url)"));
    } else if (cb_cli_connect(url, "cb doctor", 0, &base, &b) != 0) {
        ok = 0;
        json_object_set_new(r, "broker", json_pack("{s:s}", "error", "cannot connect"));
    } else {
        json_object_set_new(r, "broker", cb_broker_health(b));
        cb_cli_disconnect(base, b);
    }
    json_object_set_new(r, "store", check_store(cb_cli_store_dir(dir), dir != NULL, &ok));
    if (json) {
        char *text = cb_json_dumps(r, JSON_COMPACT);
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        print_text(r);
    }
    json_decref(r);
    return ok ? 0 : 1;
}
