/* api/main.c - cb-api: the HTTP API (docs/api.md). */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cb_alloc.h"
#include "cb_daemon.h"
#include "cb_log.h"
#include "cb_url.h"
#include "server.h"
#include "store.h"

static const char *usage =
    "usage: cb-api --broker URL --store DIR [--listen HOST:PORT] [--port-file FILE]\n"
    "Serves the HTTP API of docs/api.md on HOST:PORT (default 127.0.0.1:8080; port 0:\n"
    "a free one, written to FILE with --port-file once listening). It submits and\n"
    "sends lifecycle commands through the broker, as every client does, and reads\n"
    "the projector's store DIR (read only). Logs JSON lines on stderr; SIGINT/SIGTERM\n"
    "stop it.\n";

/* FILE holds the port, written whole (a reader never sees a part). */
static int write_port(const char *file, int port)
{
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    if (!(f = fopen(tmp, "w")))
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, file);
}

int main(int argc, char **argv)
{
    const char *url = getenv("CB_BROKER_URL"), *dir = NULL, *port_file = NULL;
    cb_api_opts ao;
    cb_broker_opts bo;
    struct event_base *base = NULL;
    cb_store *st = NULL;
    cb_broker *b = NULL;
    cb_api *api = NULL;
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
    if ((s = cb_store_open(dir, 0, CB_STORE_RDONLY, &st)) != CB_OK) {
        char why[1200];
        CB_LOG_ERR("api", "%s", cb_store_open_error(dir, s, why, sizeof why));
        goto out;
    }
    if (cb_broker_global_init() != CB_OK || !(base = event_base_new()))
        goto out;
    bo.url = url;
    bo.name = "cb-api";
    if ((s = cb_broker_open(base, &bo, &b)) != CB_OK) {
        char shown[1024];
        CB_LOG_ERR("api", "cannot connect to %s: %s", cb_url_redact(url, shown, sizeof shown),
                   cb_strerror(s));
        goto out;
    }
    if ((s = cb_api_start(base, b, st, &ao, &api, err, sizeof err)) != CB_OK) {
        CB_LOG_ERR("api", "%s", err);
        goto out;
    }
    if (port_file && write_port(port_file, cb_api_port(api)) != 0) {
        CB_LOG_ERR("api", "cannot write the port to %s", port_file);
        goto out;
    }
    CB_LOG_INF("api", "serving http://%.*s:%d/v1 on %s", (int)(strrchr(ao.listen, ':') - ao.listen),
               ao.listen, cb_api_port(api), cb_broker_driver(b));
    rc = cb_daemon_run(base, "api", NULL, NULL) == 0 ? 0 : 1;
out:
    cb_api_free(api);
    cb_broker_close(b); /* answers still due arrive now, as CB_ECLOSED */
    if (base)
        event_base_free(base);
    cb_store_close(st);
    return rc;
}
