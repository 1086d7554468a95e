/* tools/rabbit_admin.c - a stack's identities on RabbitMQ through its
 * management API (see rabbit_admin.h, docs/security.md). */
#define _GNU_SOURCE
#include "rabbit_admin.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_buf.h"
#include "cli.h"
#include "cb_url.h"
#include "identity.h"

#define DEFAULT_API_PORT 15672

/* A daemon's permissions: the stack's own exchange and queues (cb, cb.*)
 * and private server-named queues; replies through the default exchange.
 * What it may publish on `cb` is its topic permission. */
#define DAEMON_CONFIGURE "^(cb|cb\\..*|amq\\.gen-.*)$"
#define DAEMON_WRITE     "^(cb|cb\\..*|amq\\.gen-.*|amq\\.default)$"
#define DAEMON_READ      "^(cb|cb\\..*|amq\\.gen-.*)$"
/* Every reader of the log appends its end marker (broker/amqp_ep.c), on the
 * partition it reads (docs/scale.md). */
#define END_MARKER "|^cb\\.evt\\.~end$|^cb\\.evp\\.[0-9]+\\.~end$"

typedef struct rabbit_role {
    const char *name;
    const char *topic_write; /* routing keys it may publish on cb */
} rabbit_role;

/* The same division as the NATS users (identity.c). */
static const rabbit_role rabbit_roles[] = {
    {"cb-engine", "^cb\\.(evt|evp|invoke|done|progress|stats|engine)\\."},
    {"cb-projector", "^cb\\.(proj|stats)\\." END_MARKER},
    {"cb-sla", "^cb\\.(evt|evp|sla|stats)\\."},
    {"cb-api", "^cb\\.(submit|slactl)\\.[^.]+$|^cb\\.(ctl|stats)\\." END_MARKER},
};

static void decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < n && sscanf(s + i + 1, "%2x", &v) == 1) {
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

int cb_rabbit_admin_init(cb_rabbit_admin *a, const char *broker_url, const char *api, char *err,
                         size_t errlen)
{
    char url[1024], *p, *at, *slash, *colon;
    int tls;
    memset(a, 0, sizeof *a);
    if (cb_url_with_password(broker_url, url, sizeof url) != CB_OK) {
        snprintf(err, errlen, "cannot read the broker's password");
        return -1;
    }
    a->tls = tls = !strncmp(url, "amqps://", 8);
    if (strncmp(url, "amqp://", 7) && !tls) {
        snprintf(err, errlen, "not a RabbitMQ URL");
        return -1;
    }
    p = url + (tls ? 8 : 7);
    if ((slash = strchr(p, ','))) { /* a cluster: the others' host:port */
        *slash = '\0';
        for (char *o = slash + 1, *end; o && *o; o = end ? end + 1 : NULL) {
            char *h, *hend;
            size_t len = strlen(a->others);
            end = strchr(o, ',');
            if (end)
                *end = '\0';
            h = strstr(o, "://") ? strstr(o, "://") + 3 : o;
            h = strrchr(h, '@') ? strrchr(h, '@') + 1 : h;
            hend = h + strcspn(h, "/");
            snprintf(a->others + len, sizeof a->others - len, "%s%.*s", len ? "," : "",
                     (int)(hend - h), h);
        }
    }
    if ((slash = strchr(p, '/')))
        *slash++ = '\0';
    if ((at = strrchr(p, '@'))) {
        *at = '\0';
        colon = strchr(p, ':');
        decode(p, colon ? (size_t)(colon - p) : strlen(p), a->user, sizeof a->user);
        if (colon)
            decode(colon + 1, strlen(colon + 1), a->pass, sizeof a->pass);
        p = at + 1;
    } else {
        snprintf(a->user, sizeof a->user, "guest");
        snprintf(a->pass, sizeof a->pass, "guest");
    }
    a->port = tls ? 5671 : 5672;
    if ((colon = strrchr(p, ':'))) {
        *colon = '\0';
        a->port = atoi(colon + 1);
    }
    snprintf(a->host, sizeof a->host, "%s", *p ? p : "localhost");
    decode(slash ? slash : "", slash ? strlen(slash) : 0, a->vhost, sizeof a->vhost);
    if (!a->vhost[0])
        snprintf(a->vhost, sizeof a->vhost, "/");
    if (!api || !*api)
        api = getenv("CB_RABBITMQ_API");
    if (api && *api)
        snprintf(a->api, sizeof a->api, "%s", api);
    else
        snprintf(a->api, sizeof a->api, "http://%s:%d", a->host, DEFAULT_API_PORT);
    while (*a->api && a->api[strlen(a->api) - 1] == '/')
        a->api[strlen(a->api) - 1] = '\0';
    return 0;
}

void cb_rabbit_user(const cb_rabbit_admin *a, const char *ident, char *out, size_t size)
{
    if (!strcmp(a->vhost, "/"))
        snprintf(out, size, "%s", ident);
    else
        snprintf(out, size, "%s.%s", a->vhost, ident);
}

void cb_rabbit_ident_url(const cb_rabbit_admin *a, const char *ident, char *out, size_t size)
{
    char user[300], euser[900], evhost[400];
    cb_rabbit_user(a, ident, user, sizeof user);
    cb_url_encode(user, 0, euser, sizeof euser);
    cb_url_encode(a->vhost, 0, evhost, sizeof evhost);
    size_t len = (size_t)snprintf(out, size, "%s://%s@%s:%d/%s", a->tls ? "amqps" : "amqp", euser,
                                  a->host, a->port, evhost);
    for (const char *o = a->others; *o && len < size;) { /* and each other node of a cluster */
        size_t n = strcspn(o, ",");
        len += (size_t)snprintf(out + len, size - len, ",%s://%s@%.*s/%s",
                                a->tls ? "amqps" : "amqp", euser, (int)n, o, evhost);
        o += n + (o[n] == ',');
    }
}

/* ---- one request at a time ------------------------------------------- */

typedef struct call {
    int status;
    char body[1024];
} call;

/* METHOD API/api/PATH with a JSON body (or NULL). The HTTP status (body in
 * c->body), or 0 (why in c->body). */
static int request(const cb_rabbit_admin *a, const char *method, const char *path, const char *json,
                   call *c)
{
    char url[1024], userpass[300], auth[440];
    unsigned char b64[420];
    int n = snprintf(userpass, sizeof userpass, "%s:%s", a->user, a->pass);
    snprintf(url, sizeof url, "%s/api/%s", a->api, path);
    EVP_EncodeBlock(b64, (const unsigned char *)userpass,
                    n < (int)sizeof userpass ? n : (int)sizeof userpass - 1);
    snprintf(auth, sizeof auth, "Basic %s", b64);
    c->status = cb_cli_http(method, url, auth, json, 10000, c->body, sizeof c->body);
    OPENSSL_cleanse(userpass, sizeof userpass);
    OPENSSL_cleanse(auth, sizeof auth);
    return c->status;
}

/* A request that must succeed (2xx): 0, or -1 with err. */
static int must(const cb_rabbit_admin *a, const char *method, const char *path, json_t *body,
                char *err, size_t errlen)
{
    call c;
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int st = request(a, method, path, json, &c);
    free(json);
    json_decref(body);
    if (st >= 200 && st < 300)
        return 0;
    if (st == 0)
        snprintf(err, errlen, "RabbitMQ's management API at %s: %s", a->api, c.body);
    else
        snprintf(err, errlen, "RabbitMQ's management API: %s /api/%s: %d %s", method, path, st,
                 c.body);
    return -1;
}

int cb_rabbit_admin_check(const cb_rabbit_admin *a, char *err, size_t errlen)
{
    call c;
    int st = request(a, "GET", "whoami", NULL, &c);
    json_t *who;
    const char *tags;
    int admin;
    if (st == 0) {
        snprintf(err, errlen, "RabbitMQ's management API at %s did not answer: %s", a->api, c.body);
        return -1;
    }
    if (st == 401) {
        snprintf(err, errlen, "RabbitMQ's management API at %s refused %s's credentials", a->api,
                 a->user);
        return -1;
    }
    who = json_loads(c.body, 0, NULL);
    tags = json_string_value(json_object_get(who, "tags"));
    /* 3.10 gives the tags as a comma-separated string, later ones as a list */
    admin = tags ? strstr(tags, "administrator") != NULL : 0;
    for (size_t i = 0; !tags && i < json_array_size(json_object_get(who, "tags")); i++)
        admin |= !strcmp("administrator",
                         json_string_value(json_array_get(json_object_get(who, "tags"), i)) ?: "");
    json_decref(who);
    if (st != 200 || !admin) {
        snprintf(err, errlen, "%s is not an administrator of RabbitMQ at %s (%d)", a->user, a->api,
                 st);
        return -1;
    }
    return 0;
}

static const rabbit_role *role_of(const char *ident)
{
    for (size_t i = 0; i < sizeof rabbit_roles / sizeof rabbit_roles[0]; i++)
        if (!strcmp(rabbit_roles[i].name, ident))
            return &rabbit_roles[i];
    return NULL;
}

int cb_rabbit_admin_put(const cb_rabbit_admin *a, const char *dir, const char *ident, char *err,
                        size_t errlen)
{
    const rabbit_role *r = role_of(ident);
    char user[300], euser[900], vh[400], path[1500], pass[128], conf[300], wr[300], rd[400],
        twr[400], trd[300], queue[200];
    if (cb_ident_read_password(dir, ident, pass, sizeof pass) != 0) {
        snprintf(err, errlen, "%s has no password in %s/identities", ident, dir);
        return -1;
    }
    if (!r && !cb_ident_tenant_name_ok(ident) && !cb_ident_is_adapter(ident)) {
        snprintf(err, errlen, "%s is neither a daemon's nor a tenant's identity", ident);
        return -1;
    }
    cb_rabbit_user(a, ident, user, sizeof user);
    cb_url_encode(user, 0, euser, sizeof euser);
    cb_url_encode(a->vhost, 0, vh, sizeof vh);
    if (r) {
        snprintf(conf, sizeof conf, "%s", DAEMON_CONFIGURE);
        snprintf(wr, sizeof wr, "%s", DAEMON_WRITE);
        snprintf(rd, sizeof rd, "%s", DAEMON_READ);
        snprintf(twr, sizeof twr, "%s", r->topic_write);
        snprintf(trd, sizeof trd, "^cb\\.");
    } else if (cb_ident_is_adapter(ident)) { /* its backend's invocations only */
        snprintf(conf, sizeof conf, "%s", DAEMON_CONFIGURE);
        snprintf(wr, sizeof wr, "%s", DAEMON_WRITE);
        snprintf(rd, sizeof rd, "^(cb|amq\\.gen-.*|cb\\.invoke\\.%s)$",
                 ident + strlen(CB_IDENT_ADAPTER_PREFIX));
        snprintf(twr, sizeof twr, "^cb\\.(evt|evp|progress|stats)\\.");
        snprintf(trd, sizeof trd, "^cb\\.");
    } else { /* tenant names are [A-Za-z0-9_-]: nothing to escape */
        snprintf(conf, sizeof conf, "^amq\\.gen-.*$");
        snprintf(wr, sizeof wr, "^(cb|amq\\.gen-.*)$");
        snprintf(rd, sizeof rd, "^(cb|amq\\.gen-.*|cb\\.done\\.%s)$", ident);
        snprintf(twr, sizeof twr, "^cb\\.(submit|enqueue|slactl)\\.%s$|^cb\\.ctl\\.%s\\.[^.]+$",
                 ident, ident);
        snprintf(trd, sizeof trd, "^cb\\.(done|progress|sla)\\.%s\\.", ident);
    }
    snprintf(path, sizeof path, "users/%s", euser);
    if (must(a, "PUT", path, json_pack("{s:s, s:s}", "password", pass, "tags", ""), err, errlen))
        return -1;
    snprintf(path, sizeof path, "permissions/%s/%s", vh, euser);
    if (must(a, "PUT", path,
             json_pack("{s:s, s:s, s:s}", "configure", conf, "write", wr, "read", rd), err, errlen))
        return -1;
    snprintf(path, sizeof path, "topic-permissions/%s/%s", vh, euser);
    if (must(a, "PUT", path,
             json_pack("{s:s, s:s, s:s}", "exchange", "cb", "write", twr, "read", trd), err,
             errlen))
        return -1;
    if (r || cb_ident_is_adapter(ident))
        return 0;
    /* the tenant's done stream, as the driver declares it (broker/amqp_pub.c) */
    snprintf(path, sizeof path, "exchanges/%s/cb", vh);
    if (must(a, "PUT", path, json_pack("{s:s, s:b}", "type", "topic", "durable", 1), err, errlen))
        return -1;
    snprintf(queue, sizeof queue, "cb.done.%s", ident);
    snprintf(path, sizeof path, "queues/%s/%s", vh, queue);
    if (must(a, "PUT", path,
             json_pack("{s:b, s:{s:s}}", "durable", 1, "arguments", "x-queue-type", "stream"), err,
             errlen))
        return -1;
    snprintf(path, sizeof path, "bindings/%s/e/cb/q/%s", vh, queue);
    snprintf(twr, sizeof twr, "%s.#", queue);
    return must(a, "POST", path, json_pack("{s:s}", "routing_key", twr), err, errlen);
}

int cb_rabbit_admin_remove(const cb_rabbit_admin *a, const char *ident, char *err, size_t errlen)
{
    char user[300], euser[900], path[1000];
    call c;
    int st;
    cb_rabbit_user(a, ident, user, sizeof user);
    cb_url_encode(user, 0, euser, sizeof euser);
    snprintf(path, sizeof path, "users/%s", euser);
    st = request(a, "DELETE", path, NULL, &c);
    if ((st >= 200 && st < 300) || st == 404)
        return 0;
    snprintf(err, errlen, "RabbitMQ's management API: DELETE /api/%s: %d %s", path, st, c.body);
    return -1;
}
