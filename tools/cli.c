/* tools/cli.c - defaults shared by the cb client commands (see cli.h). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker.h"
#include "cb_file.h"
#include "cb_httpc.h"
#include "cb_loop.h"
#include "cb_url.h"
#include "cb_event.h"
#include "cb_log.h"
#include "store.h"
#include "tls.h"

const char *cb_cli_dir(void)
{
    const char *d = getenv("CB_DIR");
    return d && *d ? d : ".cb";
}

/* The password `cb up` keeps for its stack (DIR/broker.password), unless
 * the environment names one already. */
static void stack_password(void)
{
    char path[600];
    cb_tls_trust_stack_ca(cb_cli_dir());
    if (getenv("CB_BROKER_PASSWORD") || getenv("CB_BROKER_PASSWORD_FILE"))
        return;
    snprintf(path, sizeof path, "%s/broker.password", cb_cli_dir());
    if (access(path, R_OK) == 0)
        setenv("CB_BROKER_PASSWORD_FILE", path, 0);
}

const char *cb_cli_broker_url(const char *given)
{
    static char url[512];
    const char *env = getenv("CB_BROKER_URL");
    char path[600];
    stack_password();
    if (given)
        return given;
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/url", cb_cli_dir());
    return cb_file_read_line(path, url, sizeof url) == 0 ? url : NULL;
}

const char *cb_cli_store_dir(const char *given)
{
    static char dir[600];
    const char *env = getenv("CB_STORE");
    if (given)
        return given;
    if (env && *env)
        return env;
    snprintf(dir, sizeof dir, "%s/store", cb_cli_dir());
    return dir;
}

int cb_cli_job_ref(const char *ref, char *tenant, char *job, size_t size)
{
    const char *slash = strchr(ref, '/');
    if (!slash || (size_t)(slash - ref) >= size || strlen(slash + 1) >= size)
        return -1;
    snprintf(tenant, size, "%.*s", (int)(slash - ref), ref);
    snprintf(job, size, "%s", slash + 1);
    return cb_name_valid(tenant) && cb_name_valid(job) ? 0 : -1;
}

int cb_cli_connect(const char *url, const char *name, int client, struct event_base **base,
                   cb_broker **b)
{
    cb_broker_opts o;
    cb_status s;
    *base = NULL;
    *b = NULL;
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_ERROR);
    if (!(*base = cb_loop_new()))
        return -1;
    cb_broker_opts_init(&o);
    o.url = url;
    o.name = name;
    o.client = client;
    if ((s = cb_broker_open(*base, &o, b)) != CB_OK) {
        char shown[1024];
        fprintf(stderr, "cb: cannot connect to %s: %s\n", cb_url_redact(url, shown, sizeof shown),
                cb_strerror(s));
        event_base_free(*base);
        *base = NULL;
        return -1;
    }
    return 0;
}

int cb_cli_read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

void cb_cli_disconnect(struct event_base *base, cb_broker *b)
{
    cb_broker_close(b);
    if (base)
        event_base_free(base);
}

cb_store *cb_cli_open_store(const char *cmd, const char *dir)
{
    cb_store *st = NULL;
    char why[1200];
    cb_status s = cb_store_open(dir, 0, CB_STORE_RDONLY, &st);
    if (s != CB_OK)
        fprintf(stderr, "cb %s: %s\n", cmd, cb_store_open_error(dir, s, why, sizeof why));
    return s == CB_OK ? st : NULL;
}

typedef struct http_wait {
    struct event_base *base;
    int status;
    char *body;
    size_t size;
} http_wait;

static void http_done(const cb_http_resp *r, void *ctx)
{
    http_wait *w = ctx;
    w->status = r->status;
    if (r->status == 0)
        snprintf(w->body, w->size, "%s", r->error ? r->error : "no answer");
    else
        snprintf(w->body, w->size, "%.*s", (int)r->body_len, r->body ? r->body : "");
    event_base_loopbreak(w->base);
}

int cb_cli_http(const char *method, const char *url, const char *authorization, const char *json,
                int timeout_ms, char *body, size_t size)
{
    http_wait w = {NULL, 0, body, size};
    cb_httpc *h = NULL;
    cb_httpc_opts o;
    cb_http_header hdr[2];
    cb_http_req req = {0};
    size_t n = 0;
    body[0] = '\0';
    if (authorization)
        hdr[n++] = (cb_http_header){"Authorization", authorization};
    if (json)
        hdr[n++] = (cb_http_header){"Content-Type", "application/json"};
    cb_httpc_opts_init(&o);
    if (getenv("CB_API_CA_FILE") && *getenv("CB_API_CA_FILE"))
        o.ca_file = getenv("CB_API_CA_FILE");
    o.connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000;
    o.timeout_ms = timeout_ms;
    req.method = method;
    req.url = url;
    req.headers = hdr;
    req.nheaders = n;
    req.body = json;
    req.body_len = json ? strlen(json) : 0;
    if (!(w.base = cb_loop_new()) || cb_httpc_new(w.base, &o, &h, body, size) != CB_OK ||
        cb_httpc_request(h, &req, http_done, &w, NULL, body, size) != CB_OK) {
        if (!body[0])
            snprintf(body, size, "out of memory");
    } else {
        event_base_dispatch(w.base);
    }
    cb_httpc_free(h);
    if (w.base)
        event_base_free(w.base);
    return w.status;
}
