/* tools/cmd_tenant.c - `cb tenant add|list|remove NAME`: a tenant's broker
 * identity (tools/identity.h, docs/security.md).
 *
 * add makes the tenant's password (DIR/identities/NAME.password, 0600) and
 * API token (NAME.token; DIR/api_tokens.json holds its SHA-256 for cb-api),
 * then, when DIR's stack has its own nats-server, rewrites its users
 * (DIR/nats.conf) and has the running server reload them, or, on a
 * RabbitMQ stack whose users cb up made (DIR/rabbitmq_api), makes the
 * tenant's user through the management API; it returns once the identity
 * connects and cb-api takes the token (at most 10 s each), and prints the
 * lines a tenant's shell needs. remove takes it away the same way. With a
 * broker of your own (cb up --broker without users), configure the user as
 * docs/security.md shows. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_file.h"
#include "cb_log.h"
#include "cb_loop.h"
#include "cb_time.h"
#include "cli.h"
#include "identity.h"
#include "rabbit_admin.h"
#include "tls.h"

static const char *usage =
    "usage: cb tenant add NAME [--dir DIR]\n"
    "       cb tenant list [--dir DIR]\n"
    "       cb tenant remove NAME [--dir DIR]\n"
    "A tenant's identity on the broker of the stack in DIR (default $CB_DIR or\n"
    "./.cb): it may submit, control and read its own jobs only (docs/security.md).\n"
    "add prints the CB_BROKER_URL and CB_BROKER_PASSWORD_FILE its commands use,\n"
    "and its cb-api token's file (CB_API_TOKEN_FILE): with a tenant's token, cb-api\n"
    "asks every request for one (the operator's: DIR/identities/cb-admin.token).\n";

/* Whether `name` can connect with `url`. */
static int connects(const char *dir, const char *name, const char *url)
{
    char pass[700];
    struct event_base *base = cb_loop_new();
    cb_broker_opts o;
    cb_broker *b = NULL;
    int ok;
    cb_ident_password_path(dir, name, pass, sizeof pass);
    setenv("CB_BROKER_PASSWORD_FILE", pass, 1);
    cb_broker_opts_init(&o);
    o.url = url;
    o.name = "cb tenant";
    o.client = 1;
    o.connect_timeout_ms = 1000;
    ok = base && cb_broker_open(base, &o, &b) == CB_OK;
    cb_broker_close(b);
    if (base)
        event_base_free(base);
    return ok;
}

/* Rewrite the users of the private nats-server and have it reload them.
 * want: 1 until `name` connects, 0 until it no longer does. 0, or -1. */
static int reload(const char *dir, const char *name, int want)
{
    int port = cb_ident_nats_port(dir), pid;
    int64_t until = cb_time_mono_ns() + 10 * 1000000000LL;
    char url[300];
    cb_ident_nats_url(name, port, cb_ident_nats_tls(dir), url, sizeof url);
    if (!port)
        return 0; /* no private nats-server (yet): cb up writes it */
    if (cb_ident_write_nats_conf(dir, port, cb_ident_nats_tls(dir)) != 0)
        return -1;
    char path[700];
    /* the other nodes of a cb up --cluster stack include the same users */
    for (int k = 2; k <= 5; k++) {
        int other;
        snprintf(path, sizeof path, "%s/nats%d.pid", dir, k);
        if ((other = cb_cli_read_pid(path)) > 0)
            kill(other, SIGHUP);
    }
    snprintf(path, sizeof path, "%s/nats.pid", dir);
    if ((pid = cb_cli_read_pid(path)) <= 0 || kill(pid, SIGHUP) != 0)
        return 0; /* not running: read at its next start */
    while (connects(dir, name, url) != want) {
        struct timespec ts = {0, 100000000};
        if (cb_time_mono_ns() > until) {
            fprintf(stderr, "cb tenant: the nats-server (pid %d) has not %s %s within 10 s\n", pid,
                    want ? "taken" : "dropped", name);
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* A stack on RabbitMQ whose users cb up made (DIR/rabbitmq_api): make or
 * remove the tenant's user with the administrator's credentials (DIR/url,
 * DIR/broker.password). 1 not such a stack, 0 done (url: the tenant's),
 * -1 failed (said). */
static int rabbit(const char *dir, const char *name, int add, char *url, size_t size)
{
    char path[700], api[300] = "", broker[600] = "", err[600];
    cb_rabbit_admin ra;
    int64_t until = cb_time_mono_ns() + 10 * 1000000000LL;
    snprintf(path, sizeof path, "%s/rabbitmq_api", dir);
    if (access(path, R_OK) != 0)
        return 1;
    cb_file_read_line(path, api, sizeof api);
    snprintf(path, sizeof path, "%s/url", dir);
    if (cb_file_read_line(path, broker, sizeof broker) != 0)
        return 1; /* not running: cb up makes the users at its start */
    snprintf(path, sizeof path, "%s/broker.password", dir);
    setenv("CB_BROKER_PASSWORD_FILE", path, 1);
    if (cb_rabbit_admin_init(&ra, broker, api, err, sizeof err) != 0 ||
        (add ? cb_rabbit_admin_put(&ra, dir, name, err, sizeof err)
             : cb_rabbit_admin_remove(&ra, name, err, sizeof err)) != 0) {
        fprintf(stderr, "cb tenant: %s\n", err);
        return -1;
    }
    cb_rabbit_ident_url(&ra, name, url, size);
    while (add && !connects(dir, name, url)) {
        struct timespec ts = {0, 100000000};
        if (cb_time_mono_ns() > until) {
            fprintf(stderr, "cb tenant: RabbitMQ has not taken %s within 10 s\n", name);
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Wait until the stack's cb-api (DIR/api_url), when it runs, has read the
 * tokens file again: NAME's token is taken and a request without one is
 * not (an open API takes both); at most 10 s. 0, or -1 (said). */
static int api_takes(const char *dir, const char *name, char *api, size_t size)
{
    char path[700], tok[128] = "", auth[200], url[900], body[512];
    int64_t until = cb_time_mono_ns() + 10 * 1000000000LL;
    int st;
    api[0] = '\0';
    snprintf(path, sizeof path, "%s/api_url", dir);
    cb_file_read_line(path, api, size);
    cb_ident_token_path(dir, name, path, sizeof path);
    cb_file_read_line(path, tok, sizeof tok);
    if (!api[0] || !tok[0])
        return 0; /* not running: cb-api reads the file at its start */
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    snprintf(url, sizeof url, "%s/v1/jobs?tenant=%s&limit=1", api, name);
    while ((st = cb_cli_http("GET", url, auth, NULL, 2000, body, sizeof body)) != 200 ||
           cb_cli_http("GET", url, NULL, NULL, 2000, body, sizeof body) == 200) {
        struct timespec ts = {0, 100000000};
        if (st == 0)
            return 0; /* cb-api is not there */
        if (cb_time_mono_ns() > until) {
            fprintf(stderr, "cb tenant: cb-api at %s has not taken %s's token within 10 s (%d)\n",
                    api, name, st);
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

int cb_cmd_tenant(int argc, char **argv)
{
    const char *op = argc > 1 ? argv[1] : NULL, *name = NULL;
    const char *dir = getenv("CB_DIR") && *getenv("CB_DIR") ? getenv("CB_DIR") : ".cb";
    char path[700], abs[4096], list[16384], rurl[700], api[512];
    int made, port, rb;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "cb tenant: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!op || !strcmp(op, "--help") || !strcmp(op, "-h")) {
        fputs(usage, op ? stdout : stderr);
        return op ? 0 : 2;
    }
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_ERROR);
    if (!strcmp(op, "list")) {
        cb_ident_tenants(dir, list, sizeof list);
        fputs(list, stdout);
        return 0;
    }
    if (strcmp(op, "add") && strcmp(op, "remove")) {
        fprintf(stderr, "cb tenant: unknown operation '%s'\n%s", op, usage);
        return 2;
    }
    if (!name) {
        fprintf(stderr, "cb tenant %s: which tenant?\n%s", op, usage);
        return 2;
    }
    if (!cb_ident_tenant_name_ok(name)) {
        fprintf(stderr,
                "cb tenant: \"%s\" cannot be a tenant's name ([A-Za-z0-9_-], at most 128, not "
                "beginning with cb- or _)\n",
                name);
        return 2;
    }
    cb_tls_trust_stack_ca(dir);
    if (!strcmp(op, "remove")) {
        if (cb_ident_remove(dir, name) != 0) {
            fprintf(stderr, "cb tenant: %s has no identity in %s\n", name, dir);
            return 1;
        }
        if (cb_ident_write_api_tokens(dir) != 0)
            return 1;
        if ((rb = rabbit(dir, name, 0, rurl, sizeof rurl)) != 1)
            return rb == 0 ? 0 : 1;
        return reload(dir, name, 0) == 0 ? 0 : 1;
    }
    if ((made = cb_ident_make(dir, name)) < 0 || cb_ident_make_token(dir, name) < 0 ||
        cb_ident_write_api_tokens(dir) != 0)
        return 1;
    if ((rb = rabbit(dir, name, 1, rurl, sizeof rurl)) == -1 || (rb == 1 && reload(dir, name, 1)) ||
        api_takes(dir, name, api, sizeof api) != 0)
        return 1;
    cb_ident_password_path(dir, name, path, sizeof path);
    if (!realpath(path, abs))
        snprintf(abs, sizeof abs, "%s", path);
    port = rb == 0 ? 0 : cb_ident_nats_port(dir);
    fprintf(stderr, "cb tenant: %s %s a broker identity%s\n", name, made ? "has" : "already had",
            port || rb == 0 ? ""
                            : " (cb up makes it on the stack's broker at its start; a broker "
                              "of your own needs the user configured: docs/security.md)");
    if (rb == 0)
        printf("export CB_BROKER_URL=%s\n", rurl);
    else if (port) {
        cb_ident_stack_nats_url(dir, name, rurl, sizeof rurl);
        printf("export CB_BROKER_URL=%s\n", rurl);
    }
    printf("export CB_BROKER_PASSWORD_FILE=%s\n", abs);
    cb_tls_path(dir, "ca.pem", path, sizeof path);
    if (port && cb_ident_nats_tls(dir) && realpath(path, abs))
        printf("export CB_BROKER_CA_FILE=%s\n", abs);
    if (!strncmp(api, "https:", 6) && realpath(path, abs))
        printf("export CB_API_CA_FILE=%s\n", abs);
    cb_ident_token_path(dir, name, path, sizeof path);
    if (!realpath(path, abs))
        snprintf(abs, sizeof abs, "%s", path);
    if (api[0])
        printf("export CB_API_URL=%s\n", api);
    printf("export CB_API_TOKEN_FILE=%s\n", abs);
    return 0;
}
