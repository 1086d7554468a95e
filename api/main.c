/* api/main.c - cb-api: the HTTP API (docs/api.md). */
#include <arpa/inet.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "broker.h"
#include "cb_alloc.h"
#include "cb_config.h"
#include "cb_daemon.h"
#include "cb_file.h"
#include "cb_log.h"
#include "cb_loop.h"
#include "cb_schema.h"
#include "cb_storage.h"
#include "cb_url.h"
#include "server.h"
#include "store.h"

static const char *usage =
    "usage: cb-api --broker URL --store DIR [--listen HOST:PORT] [--config FILE]\n"
    "              [--objects DIR] [--port-file FILE] [--tokens FILE] [--open]\n"
    "              [--tls-cert FILE --tls-key FILE]\n"
    "Serves the HTTP API of docs/api.md on HOST:PORT (default 127.0.0.1:8080; port 0:\n"
    "a free one, written to FILE with --port-file once listening). It submits and\n"
    "sends lifecycle commands through the broker, as every client does, and reads\n"
    "the projector's store DIR (read only; until the projector made it, the routes\n"
    "that read it answer 503). FILE's \"api\" holds the bearer tokens and its\n"
    "\"storage\" (or --objects DIR, the file driver) where results kept as objects\n"
    "are. --tokens FILE: more tokens, {\"tokens\": [...]} as in \"api\" (cb tenant add\n"
    "writes it), read again whenever it changes. --tls-cert/--tls-key (PEM): HTTPS\n"
    "instead of HTTP. Without tokens the API is open, which it serves on a loopback\n"
    "address only, unless --open (behind a proxy that authenticates, or in a container\n"
    "whose port is published on the host's loopback). Logs JSON lines on stderr;\n"
    "SIGINT/SIGTERM stop it.\n";

/* FILE holds the port, written whole (a reader never sees a part). */
static int write_port(const char *file, int port)
{
    char text[16];
    snprintf(text, sizeof text, "%d\n", port);
    return cb_file_write_whole(file, text);
}

/* Whether HOST (of --listen) is a loopback address. */
static int loopback(const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct in_addr a4;
    struct in6_addr a6;
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    if (n >= sizeof host)
        return 0;
    snprintf(host, sizeof host, "%.*s", (int)n, listen);
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    if (!strcmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* The tokens of the configuration and of the --tokens file, which is read
 * again when it changes (checked every second): a tenant added by cb tenant
 * add gets in without a restart. */
typedef struct tokens {
    const json_t *conf; /* the configuration's "tokens" (borrowed) */
    const char *file;   /* NULL: none */
    struct stat seen;   /* the file as last read (st_ino 0: absent) */
    cb_api_auth *auth;
    cb_api *api;
    struct event *timer;
} tokens;

/* conf's tokens and FILE's into a new auth. CB_OK, or an error with err. */
static cb_status tokens_load(tokens *t, cb_api_auth **out, char *err, size_t errlen)
{
    json_t *all = json_array(), *doc = NULL;
    json_error_t je;
    cb_status s;
    json_array_extend(all, (json_t *)t->conf);
    if (t->file && access(t->file, F_OK) == 0) {
        if (!(doc = json_load_file(t->file, 0, &je)) ||
            (json_object_get(doc, "tokens") && !json_is_array(json_object_get(doc, "tokens")))) {
            snprintf(err, errlen, "%s: %s", t->file, doc ? "\"tokens\" is not an array" : je.text);
            json_decref(doc);
            json_decref(all);
            return CB_EINVAL;
        }
        json_array_extend(all, json_object_get(doc, "tokens"));
    }
    s = cb_api_auth_new(all, out, err, errlen);
    json_decref(doc);
    json_decref(all);
    return s;
}

static void tokens_check(evutil_socket_t fd, short what, void *arg)
{
    tokens *t = arg;
    struct timeval again = {1, 0};
    struct stat now = {0};
    cb_api_auth *next = NULL;
    char err[600];
    (void)fd;
    (void)what;
    if (stat(t->file, &now) != 0)
        memset(&now, 0, sizeof now);
    if (now.st_ino != t->seen.st_ino || now.st_size != t->seen.st_size ||
        now.st_mtim.tv_sec != t->seen.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != t->seen.st_mtim.tv_nsec) {
        if (tokens_load(t, &next, err, sizeof err) != CB_OK) {
            CB_LOG_ERR("api", "the tokens stay as they were: %s", err);
        } else {
            cb_api_set_auth(t->api, next);
            cb_api_auth_free(t->auth);
            t->auth = next;
            CB_LOG_INF("api", "tokens read again from %s", t->file);
        }
        t->seen = now;
    }
    evtimer_add(t->timer, &again);
}

typedef struct store_wait {
    const char *dir;
    cb_api *api;
    cb_store *st;
    struct event *timer;
    int told;
} store_wait;

/* The projector makes the store: until it is there, look again every
 * 250 ms (cb up starts every daemon at once). */
static void store_try(evutil_socket_t fd, short what, void *arg)
{
    store_wait *w = arg;
    struct timeval again = {0, 250000};
    cb_status s = cb_store_open(w->dir, 0, CB_STORE_RDONLY, &w->st);
    (void)fd;
    (void)what;
    if (s == CB_OK) {
        cb_api_set_store(w->api, w->st);
        if (w->told)
            CB_LOG_INF("api", "the store %s is there: serving it", w->dir);
        return;
    }
    if (s != CB_ENOTFOUND) {
        char why[1200];
        CB_LOG_ERR("api", "%s", cb_store_open_error(w->dir, s, why, sizeof why));
    } else if (!w->told) {
        CB_LOG_INF("api", "the store %s is not there yet; waiting for the projector", w->dir);
    }
    w->told = 1;
    evtimer_add(w->timer, &again);
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *dir = NULL, *port_file = NULL, *config = NULL,
               *objects = NULL;
    int open_ok = 0;
    cb_api_opts ao;
    cb_broker_opts bo;
    struct event_base *base = NULL;
    store_wait w = {0};
    cb_broker *b = NULL;
    cb_api *api = NULL;
    cb_config *reg = NULL;
    cb_schema *schema = NULL;
    tokens tk = {0};
    cb_storage *storage = NULL;
    char err[600];
    cb_status s;
    int rc = 1;

    cb_alloc_route_json();
    cb_api_opts_init(&ao);
    cb_broker_opts_init(&bo);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--broker") && val)
            url = cb_url_from_argv(argv[++i]);
        else if (!strcmp(arg, "--store") && val)
            dir = argv[++i];
        else if (!strcmp(arg, "--listen") && val)
            ao.listen = argv[++i];
        else if (!strcmp(arg, "--port-file") && val)
            port_file = argv[++i];
        else if (!strcmp(arg, "--config") && val)
            config = argv[++i];
        else if (!strcmp(arg, "--objects") && val)
            objects = argv[++i];
        else if (!strcmp(arg, "--tokens") && val)
            tk.file = argv[++i];
        else if (!strcmp(arg, "--tls-cert") && val)
            ao.tls_cert = argv[++i];
        else if (!strcmp(arg, "--tls-key") && val)
            ao.tls_key = argv[++i];
        else if (!strcmp(arg, "--open"))
            open_ok = 1;
        else {
            int help = !strcmp(arg, "--help");
            fputs(usage, help ? stdout : stderr);
            return help ? 0 : 2;
        }
    }
    if (!url || !dir) {
        fputs(usage, stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is an error, not a death */
    if (cb_config_daemon_load(config, "api", &reg, &schema) != 0)
        return 1;
    tk.conf = json_object_get(cb_config_api(reg), "tokens");
    if (tk.file && stat(tk.file, &tk.seen) != 0)
        memset(&tk.seen, 0, sizeof tk.seen);
    if ((s = tokens_load(&tk, &tk.auth, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("api", "%s: %s", config ? config : "the configuration", err);
        goto out;
    }
    if (cb_api_auth_open(tk.auth) && !open_ok && !loopback(ao.listen)) {
        CB_LOG_ERR("api",
                   "no API token is configured (\"api\": {\"tokens\": ...} in --config): an "
                   "open API is served on a loopback address only (--listen 127.0.0.1:PORT), "
                   "or with --open");
        goto out;
    }
    if (!(base = cb_loop_new()))
        goto out;
    if (cb_config_storage(reg) || objects) {
        if ((s = cb_storage_new(base, cb_config_storage(reg), objects, &storage, err,
                                sizeof err)) != CB_OK) {
            CB_LOG_ERR("api", "object storage: %s", err);
            goto out;
        }
    }
    bo.url = url;
    bo.name = "cb-api";
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("api", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out;
    }
    ao.auth = tk.auth;
    ao.storage = storage;
    if ((s = cb_api_start(base, b, NULL, &ao, &api, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("api", "%s", err);
        goto out;
    }
    tk.api = api;
    if (tk.file) {
        if (!(tk.timer = evtimer_new(base, tokens_check, &tk)))
            goto out;
        tokens_check(-1, 0, &tk);
    }
    w.dir = dir;
    w.api = api;
    if (!(w.timer = evtimer_new(base, store_try, &w)))
        goto out;
    store_try(-1, 0, &w);
    if (port_file && write_port(port_file, cb_api_port(api)) != 0) {
        CB_LOG_ERR("api", "cannot write the port to %s", port_file);
        goto out;
    }
    CB_LOG_INF("api", "serving %s://%.*s:%d/v1 on %s%s", ao.tls_cert ? "https" : "http",
               (int)(strrchr(ao.listen, ':') - ao.listen), ao.listen, cb_api_port(api),
               cb_broker_driver(b),
               cb_api_auth_open(tk.auth) ? " (open: no token configured)" : "");
    rc = cb_daemon_run(base, "api", NULL, NULL) == 0 ? 0 : 1;
out:
    cb_api_free(api);
    cb_storage_free(storage); /* after the server: reads in flight end unanswered */
    cb_broker_close(b);       /* answers still due arrive now, as CB_ECLOSED */
    if (w.timer)
        event_free(w.timer);
    if (tk.timer)
        event_free(tk.timer);
    if (base)
        event_base_free(base);
    cb_store_close(w.st);
    cb_api_auth_free(tk.auth);
    cb_schema_free(schema);
    cb_config_free(reg);
    return rc;
}
