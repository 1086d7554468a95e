/* tools/identity.c - the broker identities of a `cb up` stack (see
 * identity.h, docs/security.md). */
#include "identity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cb_buf.h"
#include "cb_digest.h"
#include "cb_event.h"
#include "cb_file.h"

/* What a daemon may do besides its own subjects: use JetStream (streams,
 * consumers, acks, flow control) but never delete or purge what the log
 * holds; read the replies to its own requests; answer requests it serves. */
#define JS_PUB "\"$JS.API.>\", \"$JS.ACK.>\", \"$JS.FC.>\""
#define JS_DENY                                                                                    \
    "\"$JS.API.STREAM.DELETE.>\", \"$JS.API.STREAM.PURGE.>\", \"$JS.API.STREAM.MSG.DELETE.>\", "   \
    "\"$JS.API.STREAM.RESTORE.>\""

typedef struct role {
    const char *name;
    const char *pub; /* its own subjects, besides JS_PUB */
    const char *sub; /* besides _INBOX.<name>.> */
} role;

/* Only the engine, the adapters and cb-sla (its agreements and breaches)
 * append to the log (cb.evt.>, and cb.evp.> for partitions 1 and up:
 * docs/scale.md); engines beat and pass commands on to each other on
 * cb.engine.>; only the engine takes submissions and puts
 * invocations; adapters take invocations (through JetStream) and append
 * their outcomes; cb-api speaks for the tenants it has checked. */
static const role roles[] = {
    {"cb-engine",
     "\"cb.evt.>\", \"cb.evp.>\", \"cb.invoke.>\", \"cb.done.>\", \"cb.progress.>\", "
     "\"cb.stats.>\", \"cb.engine.>\"",
     "\"cb.submit.*\", \"cb.ctl.*.*\", \"cb.engine.>\""},
    {"cb-projector", "\"cb.proj.>\", \"cb.stats.>\"", ""},
    {"cb-sla", "\"cb.evt.>\", \"cb.evp.>\", \"cb.sla.>\", \"cb.stats.>\"", "\"cb.slactl.*\""},
    {"cb-api", "\"cb.submit.*\", \"cb.ctl.*.*\", \"cb.slactl.*\", \"cb.stats.>\"",
     "\"cb.done.>\", \"cb.progress.>\", \"cb.sla.>\", \"cb.stats.>\", \"cb.proj.>\""},
};

const char *const cb_ident_daemons[] = {"cb-engine", "cb-projector", "cb-sla", "cb-api", NULL};

/* An adapter's JetStream rights: the streams' set-up at connect (info,
 * create, update), and of CB_INVOKE only its own backend's consumer
 * (durable cb_invoke_<backend>: broker/nats_ep.c), which it may not delete. */
#define ADAPTER_PUB                                                                                \
    "\"cb.evt.>\", \"cb.evp.>\", \"cb.progress.>\", \"cb.stats.>\", \"$JS.API.INFO\", "            \
    "\"$JS.API.STREAM.INFO.*\", \"$JS.API.STREAM.CREATE.*\", \"$JS.API.STREAM.UPDATE.*\", "        \
    "\"$JS.API.CONSUMER.*.CB_INVOKE.%s\", \"$JS.API.CONSUMER.*.CB_INVOKE.%s.>\", "                 \
    "\"$JS.API.CONSUMER.DURABLE.CREATE.CB_INVOKE.%s\", "                                           \
    "\"$JS.API.CONSUMER.MSG.NEXT.CB_INVOKE.%s\", "                                                 \
    "\"$JS.ACK.CB_INVOKE.%s.>\", \"$JS.FC.>\""

void cb_ident_adapter(const char *backend, char *out, size_t size)
{
    snprintf(out, size, "%s%s", CB_IDENT_ADAPTER_PREFIX, backend);
}

int cb_ident_is_adapter(const char *name)
{
    return !strncmp(name, CB_IDENT_ADAPTER_PREFIX, strlen(CB_IDENT_ADAPTER_PREFIX)) &&
           cb_name_valid(name + strlen(CB_IDENT_ADAPTER_PREFIX));
}

int cb_ident_tenant_name_ok(const char *name)
{
    return cb_name_valid(name) && strncmp(name, "cb-", 3) != 0 && name[0] != '_';
}

void cb_ident_password_path(const char *dir, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/identities/%s.password", dir, name);
}

static int ident_dir(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/identities", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cb: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* DIR/identities/NAME.EXT with 2*n random hex digits unless it is there. */
static int make_secret(const char *dir, const char *name, const char *ext, size_t n)
{
    char path[700], pass[65];
    unsigned char raw[32];
    int fd;
    FILE *r = NULL;
    if (ident_dir(dir) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/identities/%s.%s", dir, name, ext);
    if (access(path, F_OK) == 0)
        return 0;
    if (n > sizeof raw || !(r = fopen("/dev/urandom", "rb")) || fread(raw, 1, n, r) != n) {
        fprintf(stderr, "cb: cannot read /dev/urandom\n");
        if (r)
            fclose(r);
        return -1;
    }
    fclose(r);
    for (size_t i = 0; i < n; i++)
        snprintf(pass + 2 * i, 3, "%02x", raw[i]);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        write(fd, pass, 2 * n) != (ssize_t)(2 * n) || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "cb: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 1;
}

int cb_ident_make(const char *dir, const char *name)
{
    return make_secret(dir, name, "password", 16);
}

int cb_ident_make_token(const char *dir, const char *name)
{
    return make_secret(dir, name, "token", 32);
}

void cb_ident_token_path(const char *dir, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/identities/%s.token", dir, name);
}

/* The SHA-256 of NAME's token into hex: 0, or -1 when it has none. */
static int token_hash(const char *dir, const char *name, char hex[65])
{
    char path[700], tok[128] = "";
    cb_ident_token_path(dir, name, path, sizeof path);
    return cb_file_read_line(path, tok, sizeof tok) == 0 &&
                   cb_digest_hex(tok, strlen(tok), hex) == CB_OK
               ? 0
               : -1;
}

int cb_ident_write_api_tokens(const char *dir)
{
    char tenants[16384], *t, *save = NULL, hex[65], path[700];
    json_t *list = json_array(), *doc;
    int rc = 0;
    cb_ident_tenants(dir, tenants, sizeof tenants);
    for (t = strtok_r(tenants, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        if (token_hash(dir, t, hex) == 0)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "tenant", t, "sha256", hex,
                                                  "name", "cb tenant add"));
    /* with a tenant's token the API is no longer open: the operator's too */
    if (json_array_size(list) > 0 &&
        (cb_ident_make_token(dir, CB_IDENT_ADMIN) < 0 || token_hash(dir, CB_IDENT_ADMIN, hex) != 0))
        rc = -1;
    else if (json_array_size(list) > 0)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "role", "operator", "sha256", hex,
                                              "name", CB_IDENT_ADMIN));
    doc = json_pack("{s:o}", "tokens", list);
    snprintf(path, sizeof path, "%s/api_tokens.json", dir);
    if (rc == 0) {
        char *text = json_dumps(doc, JSON_INDENT(2));
        if (!text || cb_file_write_mode(path, text, 0600) != 0) {
            fprintf(stderr, "cb: cannot write %s: %s\n", path, strerror(errno));
            rc = -1;
        }
        free(text);
    }
    json_decref(doc);
    return rc;
}

int cb_ident_make_stack(const char *dir)
{
    if (cb_ident_make(dir, CB_IDENT_ADMIN) < 0)
        return -1;
    for (int i = 0; cb_ident_daemons[i]; i++)
        if (cb_ident_make(dir, cb_ident_daemons[i]) < 0)
            return -1;
    return 0;
}

int cb_ident_remove(const char *dir, const char *name)
{
    char path[700];
    cb_ident_token_path(dir, name, path, sizeof path);
    unlink(path);
    cb_ident_password_path(dir, name, path, sizeof path);
    return unlink(path) == 0 ? 0 : -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* The identities in DIR/identities that `want` takes, one per line. */
static void scan(const char *dir, int (*want)(const char *), char *out, size_t size)
{
    char path[700];
    struct dirent **list = NULL;
    size_t used = 0;
    int n;
    out[0] = '\0';
    snprintf(path, sizeof path, "%s/identities", dir);
    if ((n = scandir(path, &list, NULL, by_name)) < 0)
        return;
    for (int i = 0; i < n; i++) {
        char name[256];
        const char *dot = strrchr(list[i]->d_name, '.');
        if (dot && !strcmp(dot, ".password")) {
            snprintf(name, sizeof name, "%.*s", (int)(dot - list[i]->d_name), list[i]->d_name);
            if (want(name) && used + strlen(name) + 2 < size)
                used += (size_t)snprintf(out + used, size - used, "%s\n", name);
        }
        free(list[i]);
    }
    free(list);
}

int cb_ident_read_password(const char *dir, const char *name, char *out, size_t size)
{
    char path[700];
    cb_ident_password_path(dir, name, path, sizeof path);
    return cb_file_read_line(path, out, size);
}

/* One user of the configuration: NAME with its password and permissions
 * (pub/sub lists without brackets; NULL: everything). */
static int add_user(cb_buf *b, const char *dir, const char *name, const char *pub, const char *deny,
                    const char *sub, int responses)
{
    char pass[128];
    if (cb_ident_read_password(dir, name, pass, sizeof pass) != 0) {
        fprintf(stderr, "cb: %s has no password in %s/identities\n", name, dir);
        return -1;
    }
    cb_buf_printf(b, "    {user: \"%s\", password: \"%s\"", name, pass);
    if (pub)
        cb_buf_printf(b,
                      ",\n     permissions: {publish: {allow: [%s]%s%s%s}, subscribe: {allow: "
                      "[%s%s\"_INBOX.%s.>\"]}%s}",
                      pub, deny ? ", deny: [" : "", deny ? deny : "", deny ? "]" : "", sub,
                      *sub ? ", " : "", name, responses ? ", allow_responses: true" : "");
    cb_buf_adds(b, "}\n");
    return 0;
}

void cb_ident_tenants(const char *dir, char *out, size_t size)
{
    scan(dir, cb_ident_tenant_name_ok, out, size);
}

void cb_ident_adapters(const char *dir, char *out, size_t size)
{
    scan(dir, cb_ident_is_adapter, out, size);
}

int cb_ident_write_nats_conf(const char *dir, int port, int tls)
{
    cb_buf b = {0};
    char path[700], tenants[16384], *t, *save = NULL;
    int rc = 0;
    if (strchr(dir, '"') || strchr(dir, '\\')) {
        fprintf(stderr, "cb: %s: a directory with '\"' or '\\' cannot be in nats.conf\n", dir);
        return -1;
    }
    cb_buf_printf(&b,
                  "# written by cb (tools/identity.c): the private nats-server of the stack in\n"
                  "# %s and its users; docs/security.md. Rewritten by cb up and cb tenant.\n"
                  "listen: \"127.0.0.1:%d\"\n"
                  "jetstream {store_dir: \"%s/nats\"}\n",
                  dir, port, dir);
    if (tls) /* cb up --tls: clients verify it with DIR/tls/ca.pem */
        cb_buf_printf(&b,
                      "tls {cert_file: \"%s/tls/server.pem\", key_file: \"%s/tls/server.key\", "
                      "timeout: 5}\n",
                      dir, dir);
    cb_buf_adds(&b, "authorization {\n  users: [\n");
    rc |= add_user(&b, dir, CB_IDENT_ADMIN, NULL, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char pub[512];
        snprintf(pub, sizeof pub, "%s, %s", roles[i].pub, JS_PUB);
        rc |= add_user(&b, dir, roles[i].name, pub, JS_DENY, roles[i].sub, 1);
    }
    cb_ident_adapters(dir, tenants, sizeof tenants);
    for (t = strtok_r(tenants, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        const char *backend = t + strlen(CB_IDENT_ADAPTER_PREFIX);
        char pub[1400], durable[200];
        snprintf(durable, sizeof durable, "cb_invoke_%s", backend);
        snprintf(pub, sizeof pub, ADAPTER_PUB, durable, durable, durable, durable, durable);
        rc |= add_user(&b, dir, t, pub, JS_DENY ", \"$JS.API.CONSUMER.DELETE.>\"", "", 1);
    }
    save = NULL;
    cb_ident_tenants(dir, tenants, sizeof tenants);
    for (t = strtok_r(tenants, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        /* its own subjects; its done messages also through JetStream, a
         * consumer whose filter (in the API subject) is its own */
        char pub[1024], sub[512];
        snprintf(pub, sizeof pub,
                 "\"cb.submit.%s\", \"cb.enqueue.%s\", \"cb.ctl.%s.*\", \"cb.slactl.%s\", "
                 "\"$JS.API.CONSUMER.CREATE.CB_DONE.*.cb.done.%s.>\"",
                 t, t, t, t, t);
        snprintf(sub, sizeof sub, "\"cb.done.%s.>\", \"cb.progress.%s.>\", \"cb.sla.%s.>\"", t, t,
                 t);
        rc |= add_user(&b, dir, t, pub, NULL, sub, 0);
    }
    cb_buf_adds(&b, "  ]\n}\n");
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    if (rc == 0 && (b.failed || cb_file_write_mode(path, b.p, 0600) != 0)) {
        fprintf(stderr, "cb: cannot write %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    cb_buf_cleanup(&b);
    return rc ? -1 : 0;
}

void cb_ident_nats_url(const char *name, int port, int tls, char *out, size_t size)
{
    if (tls) /* the name the server's certificate has */
        snprintf(out, size, "tls://%s@localhost:%d", name, port);
    else
        snprintf(out, size, "nats://%s@127.0.0.1:%d", name, port);
}

/* What a server configuration file says: its listen port (0: no file, or
 * none) and whether it has TLS. 0, or -1 when there is no such file. */
static int read_conf_file(const char *path, int *port, int *tls)
{
    char line[512];
    FILE *f;
    *port = *tls = 0;
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (!*port && sscanf(line, "listen: \"127.0.0.1:%d\"", port) != 1)
            *port = 0;
        *tls |= !strncmp(line, "tls {", 5);
    }
    fclose(f);
    return 0;
}

/* What DIR/nats.conf says. */
static void read_conf(const char *dir, int *port, int *tls)
{
    char path[700];
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    (void)read_conf_file(path, port, tls);
}

void cb_ident_stack_nats_url(const char *dir, const char *name, char *out, size_t size)
{
    int port, tls;
    size_t len = 0;
    read_conf(dir, &port, &tls);
    out[0] = '\0';
    for (int k = 1; k <= 9 && len < size; k++) { /* cb up --cluster: DIR/nats-n<k>.conf */
        char path[700], one[300];
        int node, node_tls; /* (a node includes nats.conf: its TLS is nats.conf's) */
        snprintf(path, sizeof path, "%s/nats-n%d.conf", dir, k);
        if (read_conf_file(path, &node, &node_tls) != 0)
            break;
        cb_ident_nats_url(name, node, tls, one, sizeof one);
        len += (size_t)snprintf(out + len, size - len, "%s%s", len ? "," : "", one);
    }
    if (!len && port)
        cb_ident_nats_url(name, port, tls, out, size);
}

int cb_ident_nats_tls(const char *dir)
{
    int port, tls;
    read_conf(dir, &port, &tls);
    return tls;
}

int cb_ident_nats_port(const char *dir)
{
    int port, tls;
    read_conf(dir, &port, &tls);
    return port;
}
