/* tools/cmd_up.c - `cb up`: the dev stack in one command, and `cb down`.
 *
 * Starts a private nats-server with JetStream (data under DIR/nats, on a free
 * or given loopback port) unless --broker names an existing broker, then
 * cb-projector, cb-engine, cb-adapter (local) and cb-api, each logging to
 * DIR/logs/NAME.log. A daemon that exits is restarted with a backoff (0.5 s
 * doubling to 10 s; reset after 30 s of good health) and the restart is
 * logged. Ready means the engine answers a submission and cb-api listens.
 * The broker URL is written to DIR/url, where the other cb commands find it,
 * and the API's to DIR/api_url. SIGINT/SIGTERM
 * stop everything (daemons first, the broker last). --detach runs the same
 * in the background (pid in DIR/up.pid) and returns once ready; `cb down`
 * stops it. Each daemon's pid is in DIR/NAME.pid while it runs.
 *
 * Safety: one stack per directory (DIR/up.lock, held while the supervisor
 * lives; a second `cb up` is refused with the running stack's pid and URL).
 * The daemons die with their supervisor (PR_SET_PDEATHSIG through setpriv:
 * SIGTERM when it is gone, even by SIGKILL), and `cb down` stops daemons a
 * vanished supervisor left behind. A daemon that exits says why at once (the
 * last line of its log); one that fails the same way CRASH_LIMIT times in a
 * row, each within CRASH_WINDOW_S of its start, is not restarted (before
 * the stack was ready, `cb up` then fails with that reason).
 *
 * Credentials: a password in --broker goes to DIR/broker.password (0600)
 * and reaches the daemons as $CB_BROKER_PASSWORD_FILE; command lines, DIR/url
 * and every message carry the URL without it (common/cb_url.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_file.h"
#include "cb_log.h"
#include "cb_loop.h"
#include "cb_time.h"
#include "cb_url.h"
#include "cb_proc.h"
#include "cli.h"
#include "identity.h"
#include "rabbit_admin.h"
#include "tls.h"

#define MAX_DAEMONS    16
#define MAX_ENGINES    4  /* --engines */
#define MAX_CLUSTER    5  /* --cluster */
#define CRASH_LIMIT    5  /* the same quick failure this many times in a row: give up */
#define CRASH_WINDOW_S 10 /* a failure this soon after the start is quick */
/* Every daemon's command starts so: it gets SIGTERM when the supervisor dies. */
#define EXEC "exec setpriv --pdeathsig TERM -- "

typedef struct up up;

typedef struct daemon_t {
    up *u;
    char name[32], cmd[8192];
    cb_proc *proc;
    int running, crashes;
    int64_t started_ns, backoff_ms;
    char last_how[128];
    struct event *restart;
} daemon_t;

struct up {
    struct event_base *base;
    char dir[512], url[1024], bin[512];
    int api_port;
    daemon_t d[MAX_DAEMONS];
    int n, stopping, ready, own_nats;
    int nats_port;              /* own_nats: its port (the first node's) */
    int cluster;                /* --cluster N: the private JetStream cluster's nodes, else 0 */
    int node_port[MAX_CLUSTER]; /* each node's client port (node_port[0] = nats_port) */
    cb_broker *b;
    struct event *probe;
    int64_t probe_deadline_ns;
    cb_rabbit_admin ra; /* rabbit_ids: the broker's administrator, for the identities */
    int rabbit_ids;     /* a RabbitMQ broker with a user per identity */
    int tls;            /* --tls: DIR/tls's certificate for nats-server and cb-api */
    int sla_checked;    /* cb-sla answered the readiness probe (or it timed out) */
    int no_sla;         /* cb-sla was not started */
};

static const char *usage =
    "usage: cb up [--dir DIR] [--broker URL] [--port N] [--config FILE] [--adapters N]\n"
    "             [--engines N] [--cluster 3|5] [--api-port N] [--rabbitmq-api URL] [--tls]\n"
    "             [--detach]\n"
    "       cb down [--dir DIR]\n"
    "Starts the dev stack: a private nats-server with JetStream under DIR (default\n"
    "$CB_DIR, else ./.cb; or the broker given with --broker nats://... or amqp://...),\n"
    "cb-projector, cb-engine, N cb-adapter workers of the local backend, one\n"
    "for each remote backend of FILE (FILE registers functions and backends, see\n"
    "docs/adapters.md) and cb-api, the HTTP API (on 127.0.0.1, port N or a free one;\n"
    "docs/api.md). --engines N (1..4): N cb-engine processes with names (engine,\n"
    "engine1, ...) that share the partitions of FILE's \"broker\": {\"partitions\": P}\n"
    "with failover (docs/scale.md); one engine, the default, drives them all.\n"
    "--cluster 3: a private JetStream cluster of 3 (or 5) nats-server nodes on\n"
    "loopback instead of one (DIR/nats-n1.conf...; data in DIR/nats/n1...), streams\n"
    "with a replica on each node, the broker URL the list of the nodes (kill one\n"
    "with its pid in DIR/nats2.pid to try a node failure; docs/broker.md).\n"
    "Every part connects with a broker identity of its own: users of\n"
    "the private nats-server, or, on RabbitMQ, users made through its management\n"
    "API (--rabbitmq-api, default $CB_RABBITMQ_API or http://HOST:15672) with the\n"
    "administrator given in the URL (docs/security.md). --tls: a private CA and a\n"
    "certificate (DIR/tls) with which the private nats-server takes TLS connections\n"
    "only (tls://localhost:PORT) and cb-api serves HTTPS; clients verify them with\n"
    "DIR/tls/ca.pem ($CB_BROKER_CA_FILE, $CB_API_CA_FILE).\n"
    "Prints where everything listens and writes the broker URL to\n"
    "DIR/url and the API's to DIR/api_url for the other cb commands and clients.\n"
    "Ctrl-C stops it all; with --detach it runs in the background until `cb down`.\n";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    char ts[40];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%H:%M:%S", localtime(&now));
    fprintf(stderr, "cb up %s: ", ts);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void write_pid(const char *dir, const char *name, pid_t pid)
{
    char path[700];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.pid", dir, name);
    if ((f = fopen(path, "w"))) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

static void start_daemon(daemon_t *d);

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_daemon(arg);
}

/* The last size - 1 bytes of the file at `path` into buf (NUL-terminated);
 * returns how many (0 when it cannot be read). */
static size_t read_tail(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        if (fseek(f, -(long)(size - 1), SEEK_END) != 0)
            rewind(f);
        n = fread(buf, 1, size - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return n;
}

/* The last line a daemon logged (its "msg" when it is a JSON log line), so a
 * failure is explained where it is reported. "" when there is none. */
static void last_words(const up *u, const daemon_t *d, char *out, size_t size)
{
    char path[700], buf[4096], *line;
    size_t n;
    json_t *j;
    const char *msg;
    out[0] = '\0';
    snprintf(path, sizeof path, "%s/logs/%s.log", u->dir, d->name);
    n = read_tail(path, buf, sizeof buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    j = json_loads(line, 0, NULL);
    msg = json_string_value(json_object_get(j, "msg"));
    snprintf(out, size, "%.*s", (int)(size - 1), msg ? msg : line); /* cut if long */
    json_decref(j);
}

/* Whether d failed the same quick way CRASH_LIMIT times in a row. */
static int crash_looping(daemon_t *d, const char *how)
{
    int quick = cb_time_mono_ns() - d->started_ns < CRASH_WINDOW_S * 1000000000LL;
    d->crashes = !quick ? 0 : !strcmp(how, d->last_how) ? d->crashes + 1 : 1;
    snprintf(d->last_how, sizeof d->last_how, "%s", how);
    return d->crashes >= CRASH_LIMIT;
}

static void exit_cb(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    daemon_t *d = ctx;
    char how[128], why[600];
    struct timeval tv;
    (void)p;
    (void)s;
    d->running = 0;
    if (d->u->stopping)
        return;
    cb_proc_describe(wstatus, how, sizeof how);
    last_words(d->u, d, why, sizeof why);
    if (crash_looping(d, how)) {
        say("%s failed %d times in a row within %d s of its start (%s)%s%s; not restarting it "
            "(log: %s/logs/%s.log)",
            d->name, d->crashes, CRASH_WINDOW_S, how, *why ? "; its last log line: " : "", why,
            d->u->dir, d->name);
        if (!d->u->ready)
            event_base_loopbreak(d->u->base); /* the stack cannot start: say so now */
        return;
    }
    if (cb_time_mono_ns() - d->started_ns > 30 * 1000000000LL)
        d->backoff_ms = 500; /* it was healthy for a while: start over */
    say("%s exited (%s)%s%s; restarting in %.1f s (log: %s/logs/%s.log)", d->name, how,
        *why ? "; its last log line: " : "", why, (double)d->backoff_ms / 1000, d->u->dir, d->name);
    tv.tv_sec = (time_t)(d->backoff_ms / 1000);
    tv.tv_usec = (suseconds_t)(d->backoff_ms % 1000) * 1000;
    evtimer_add(d->restart, &tv);
    d->backoff_ms = d->backoff_ms * 2 > 10000 ? 10000 : d->backoff_ms * 2;
}

static void start_daemon(daemon_t *d)
{
    const char *argv[] = {"sh", "-c", d->cmd, NULL};
    cb_proc_opts o = {0};
    cb_status s;
    cb_proc_free(d->proc);
    d->proc = NULL;
    o.argv = argv;
    o.on_exit = exit_cb;
    o.ctx = d;
    if ((s = cb_proc_spawn(d->u->base, &o, &d->proc)) != CB_OK) {
        say("cannot start %s: %s", d->name, cb_strerror(s));
        return;
    }
    d->running = 1;
    d->started_ns = cb_time_mono_ns();
    /* DIR/NAME.pid: who is who, for tools that watch the daemons (cb bench) */
    write_pid(d->u->dir, d->name, cb_proc_pid(d->proc));
}

static daemon_t *add(up *u, const char *name)
{
    daemon_t *d = &u->d[u->n++];
    d->u = u;
    d->backoff_ms = 500;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->restart = evtimer_new(u->base, restart_cb, d);
    return d;
}

static void stop_all(up *u)
{
    u->stopping = 1;
    for (int i = u->n - 1; i >= 0; i--) {
        daemon_t *d = &u->d[i];
        evtimer_del(d->restart);
        if (d->proc && d->running) {
            int64_t until = cb_time_mono_ns() + 15 * 1000000000LL;
            cb_proc_kill(d->proc, SIGTERM);
            while (d->running && cb_time_mono_ns() < until)
                event_base_loop(u->base, EVLOOP_ONCE);
            if (d->running)
                say("%s did not stop within 15 s: killed", d->name);
        }
        cb_proc_free(d->proc); /* kills and reaps what is left */
        d->proc = NULL;
        char path[700];
        snprintf(path, sizeof path, "%s/%s.pid", u->dir, d->name);
        unlink(path);
        event_free(d->restart);
    }
}

/* For clients outside DIR: where the broker's password is kept, if
 * anywhere, and the CA that verifies the broker and the API under --tls. */
static void print_password_file(const char *dir)
{
    char path[600], abs[PATH_MAX], url[300] = "";
    snprintf(path, sizeof path, "%s/broker.password", dir);
    if (access(path, R_OK) == 0 && realpath(path, abs))
        printf("export CB_BROKER_PASSWORD_FILE=%s\n", abs);
    cb_tls_path(dir, "ca.pem", path, sizeof path);
    if (access(path, R_OK) != 0 || !realpath(path, abs))
        return;
    if (cb_ident_nats_tls(dir))
        printf("export CB_BROKER_CA_FILE=%s\n", abs);
    snprintf(path, sizeof path, "%s/api_url", dir);
    if (cb_file_read_line(path, url, sizeof url) == 0 && !strncmp(url, "https:", 6))
        printf("export CB_API_CA_FILE=%s\n", abs);
}

/* The API's URL: https://localhost:PORT under --tls (the certificate's
 * name), else http://127.0.0.1:PORT. */
static void api_url(const up *u, char *out, size_t size)
{
    if (u->tls)
        snprintf(out, size, "https://localhost:%d", u->api_port);
    else
        snprintf(out, size, "http://127.0.0.1:%d", u->api_port);
}

/* ---- readiness: the engine answers a submission ----------------------------- */

static void probe_reply(cb_status s, const void *data, size_t len, void *ctx);

/* cb-sla answers (cb sla, the API's SLA routes): it answers once it has
 * read the log to its end (it holds requests until then; on NATS "no
 * responders" until it has subscribed), so that breaches of jobs submitted
 * after `cb up` are found as they happen. Asked again until the deadline;
 * then the stack is ready without it (said). */
static void sla_reply(cb_status s, const void *data, size_t len, void *ctx)
{
    up *u = ctx;
    struct timeval tv = {0, 200000};
    if (s != CB_OK && cb_time_mono_ns() < u->probe_deadline_ns) {
        evtimer_add(u->probe, &tv);
        return;
    }
    if (s != CB_OK)
        say("cb-sla has not answered (%s); see %s/logs/sla.log", cb_strerror(s), u->dir);
    u->sla_checked = 1;
    probe_reply(CB_OK, data, len, u);
}

static void probe_reply(cb_status s, const void *data, size_t len, void *ctx)
{
    up *u = ctx;
    struct timeval tv = {0, 200000};
    (void)data;
    (void)len;
    if (s == CB_OK && !u->sla_checked && !u->no_sla) {
        static const char ask[] = "{\"op\": \"list\"}";
        if (cb_broker_request(u->b, "cb.slactl.cb-up-probe", ask, sizeof ask - 1, 5000, sla_reply,
                              u) != CB_OK)
            evtimer_add(u->probe, &tv);
        return;
    }
    if (s == CB_OK) {
        char path[600], api[64], line[sizeof u->url + 2];
        /* cb-api writes its port file once it listens */
        snprintf(path, sizeof path, "%s/api.port", u->dir);
        if (access(path, R_OK) != 0) {
            if (cb_time_mono_ns() > u->probe_deadline_ns) {
                say("cb-api did not listen within 60 s; see %s/logs/api.log", u->dir);
                event_base_loopbreak(u->base);
                return;
            }
            evtimer_add(u->probe, &tv);
            return;
        }
        u->ready = 1;
        /* Written whole (cb_file.h): a reader (the detached parent, another
         * cb command) sees no file or the whole line. */
        api_url(u, api, sizeof api);
        snprintf(path, sizeof path, "%s/api_url", u->dir);
        snprintf(line, sizeof line, "%s\n", api);
        if (cb_file_write_whole(path, line) != 0)
            say("cannot write %s: %s", path, strerror(errno));
        snprintf(path, sizeof path, "%s/url", u->dir);
        snprintf(line, sizeof line, "%s\n", u->url);
        if (cb_file_write_whole(path, line) != 0)
            say("cannot write %s: %s", path, strerror(errno));
        say("ready. broker %s%s; API %s/v1; store %s/store; logs %s/logs", u->url,
            u->own_nats ? " (private nats-server, JetStream data in .../nats)" : "", api, u->dir,
            u->dir);
        printf("export CB_BROKER_URL=%s\n", u->url);
        printf("export CB_API_URL=%s\n", api);
        print_password_file(u->dir);
        fflush(stdout);
        return;
    }
    if (cb_time_mono_ns() > u->probe_deadline_ns) {
        say("the engine did not answer within 60 s; see %s/logs/engine.log", u->dir);
        event_base_loopbreak(u->base);
        return;
    }
    evtimer_add(u->probe, &tv);
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    up *u = arg;
    (void)fd;
    (void)what;
    if (cb_broker_request(u->b, "cb.submit.cb-up-probe", "{}", 2, 2000, probe_reply, u) != CB_OK) {
        struct timeval tv = {0, 200000};
        evtimer_add(u->probe, &tv);
    }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    say("signal %d: stopping", (int)sig);
    event_base_loopbreak(arg);
}

static int connect_retry(up *u)
{
    cb_broker_opts o;
    /* a new JetStream cluster elects its leaders first (a few seconds) */
    int64_t until = cb_time_mono_ns() + (u->cluster ? 60 : 15) * 1000000000LL;
    cb_status s;
    cb_broker_opts_init(&o);
    o.url = u->url;
    o.name = "cb up";
    o.connect_timeout_ms = 2000;
    for (int tries = 1; (s = cb_broker_open(u->base, &o, &u->b)) != CB_OK; tries++) {
        if (s != CB_ECONN && !(u->cluster && s == CB_ETIMEDOUT)) {
            /* refused (a login) or invalid: asking again will not help */
            say("the broker %s refused the connection: %s (the reason is on the line above)",
                u->url, cb_strerror(s));
            return -1;
        }
        if (cb_time_mono_ns() > until) {
            say("cannot reach the broker %s: %s", u->url, cb_strerror(s));
            return -1;
        }
        if (tries == 1 && !u->own_nats) /* say so now, not after 15 s of silence */
            say("cannot reach the broker %s yet; trying for %d s", u->url, u->cluster ? 60 : 15);
        struct timespec ts = {0, 200000000}; /* start-up: nothing else to do yet */
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The last n lines of DIR/logs/up.log on stderr (why a detached start failed). */
static void print_tail(const char *dir, int n)
{
    char path[600], buf[8192];
    size_t len;
    snprintf(path, sizeof path, "%s/logs/up.log", dir);
    len = read_tail(path, buf, sizeof buf);
    size_t i = len > 0 && buf[len - 1] == '\n' ? len - 1 : len;
    for (int lines = 0; i > 0; i--)
        if (buf[i - 1] == '\n' && ++lines == n)
            break;
    fputs(buf + i, stderr);
}

/* One stack per directory: DIR/up.lock stays locked while the supervisor
 * lives (a forked supervisor inherits the lock; daemons do not: close on
 * exec). Returns the descriptor (kept open for the process's life), or -1
 * after saying which stack runs there. */
static int lock_dir(const char *dir)
{
    char path[600], url[256] = "?";
    int fd;
    snprintf(path, sizeof path, "%s/up.lock", dir);
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        fprintf(stderr, "cb up: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    close(fd);
    snprintf(path, sizeof path, "%s/url", dir);
    if (cb_file_read_line(path, url, sizeof url) != 0)
        snprintf(url, sizeof url, "?");
    snprintf(path, sizeof path, "%s/up.pid", dir);
    fprintf(stderr,
            "cb up: a stack already runs from %s (pid %d, broker %s); `cb down --dir %s` "
            "stops it\n",
            dir, cb_cli_read_pid(path), url, dir);
    return -1;
}

static int detach(const char *dir)
{
    char path[600], logp[600];
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    snprintf(path, sizeof path, "%s/url", dir);
    if (pid > 0) { /* the caller: wait until the stack says it is ready */
        int64_t until = cb_time_mono_ns() + 90 * 1000000000LL;
        int status;
        while (cb_time_mono_ns() < until) {
            FILE *f;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                fprintf(stderr, "cb up: the stack did not start:\n");
                print_tail(dir, 4);
                exit(1);
            }
            if ((f = fopen(path, "r"))) {
                char url[256] = "";
                int whole = fgets(url, sizeof url, f) && strchr(url, '\n');
                fclose(f);
                if (!whole) { /* an older writer that has not finished: look again */
                    struct timespec ts = {0, 20000000};
                    nanosleep(&ts, NULL);
                    continue;
                }
                printf("export CB_BROKER_URL=%s", url);
                snprintf(path, sizeof path, "%s/api_url", dir);
                if ((f = fopen(path, "r"))) { /* written before DIR/url */
                    if (fgets(url, sizeof url, f) && strchr(url, '\n'))
                        printf("export CB_API_URL=%s", url);
                    fclose(f);
                }
                print_password_file(dir);
                fprintf(stderr, "cb up: running in the background (pid %d); `cb down` stops it\n",
                        (int)pid);
                exit(0);
            }
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
        fprintf(stderr, "cb up: not ready after 90 s; see %s/logs/up.log\n", dir);
        exit(1);
    }
    setsid();
    snprintf(logp, sizeof logp, "%s/logs/up.log", dir);
    if (!freopen("/dev/null", "r", stdin) || !freopen(logp, "a", stdout) ||
        !freopen(logp, "a", stderr))
        _exit(1);
    setvbuf(stderr, NULL, _IONBF, 0); /* the log is read while we run */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return 0;
}

/* u->url: `broker` without its password, which goes to DIR/broker.password
 * (0600) for the daemons ($CB_BROKER_PASSWORD_FILE, inherited) and clients. */
static int keep_password(up *u, const char *broker)
{
    char pass[512], path[600];
    int fd;
    if (cb_url_split_password(broker, u->url, sizeof u->url, pass, sizeof pass) != CB_OK) {
        say("--broker: the URL is too long");
        return -1;
    }
    snprintf(path, sizeof path, "%s/broker.password", u->dir);
    if (!pass[0]) {
        unlink(path);
        return 0;
    }
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        write(fd, pass, strlen(pass)) != (ssize_t)strlen(pass) || write(fd, "\n", 1) != 1) {
        say("cannot keep the broker password in %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    setenv("CB_BROKER_PASSWORD_FILE", path, 1);
    return 0;
}

static int mkdirs(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "mkdir -p '%s/logs' '%s/store' '%s/nats' '%s/objects'", dir, dir, dir,
             dir);
    return system(p) == 0 ? 0 : -1;
}

/* The admin's password is the stack's for the cb commands
 * (DIR/broker.password, a link to identities/cb-admin.password) and this
 * supervisor's. */
static int admin_password(up *u)
{
    char link[700], target[700];
    snprintf(link, sizeof link, "%s/broker.password", u->dir);
    unlink(link);
    if (symlink("identities/" CB_IDENT_ADMIN ".password", link) != 0) {
        say("cannot link %s: %s", link, strerror(errno));
        return -1;
    }
    cb_ident_password_path(u->dir, CB_IDENT_ADMIN, target, sizeof target);
    setenv("CB_BROKER_PASSWORD_FILE", target, 1);
    return 0;
}

/* --cluster N: node k's configuration, DIR/nats-n<k+1>.conf: the users and
 * settings of DIR/nats.conf (which `cb tenant` rewrites) with the node's
 * own name, port, JetStream directory and routes (later keys win). */
static int write_node_conf(const up *u, int k, const int *route)
{
    char path[700];
    FILE *f;
    snprintf(path, sizeof path, "%s/nats-n%d.conf", u->dir, k + 1);
    if (!(f = fopen(path, "w")))
        return -1;
    fprintf(f,
            "# written by cb up --cluster: node %d of the private JetStream cluster\n"
            "include \"nats.conf\"\n"
            "server_name: n%d\n"
            "listen: \"127.0.0.1:%d\"\n"
            "jetstream {store_dir: \"%s/nats/n%d\"}\n"
            "cluster {\n  name: cb\n  listen: \"127.0.0.1:%d\"\n  routes: [",
            k + 1, k + 1, u->node_port[k], u->dir, k + 1, route[k]);
    for (int j = 0; j < u->cluster; j++)
        fprintf(f, "%s\"nats-route://127.0.0.1:%d\"", j ? ", " : "", route[j]);
    fprintf(f, "]\n}\n");
    return fclose(f);
}

/* A daemon's command as identity `ident` when the stack has identities (its
 * own nats-server, or users on RabbitMQ): its URL names the user, its
 * password file is in its environment. `cmd` was written with u->url. */
static void as_identity(up *u, daemon_t *d, const char *ident)
{
    char cmd[sizeof d->cmd], url[1024], *at;
    size_t ulen = strlen(u->url);
    if (u->own_nats)
        cb_ident_stack_nats_url(u->dir, ident, url, sizeof url);
    else if (u->rabbit_ids)
        cb_rabbit_ident_url(&u->ra, ident, url, sizeof url);
    else
        return;
    snprintf(cmd, sizeof cmd, "CB_BROKER_PASSWORD_FILE='%s/identities/%s.password' ", u->dir,
             ident);
    for (const char *p = d->cmd; *p;) { /* u->url -> url */
        size_t used = strlen(cmd);
        if (!strncmp(p, u->url, ulen)) {
            snprintf(cmd + used, sizeof cmd - used, "%s", url);
            p += ulen;
        } else {
            at = cmd + used;
            if (used + 1 < sizeof cmd) {
                at[0] = *p;
                at[1] = '\0';
            }
            p++;
        }
    }
    snprintf(d->cmd, sizeof d->cmd, "%s", cmd);
}

/* An identity per adapter's backend (cb-adapter-local and one for each
 * backend of the configuration): each may take only its backend's
 * invocations. 0, or -1 (said). */
static int make_adapter_identities(const up *u, const char *config)
{
    json_t *root = *config ? json_load_file(config, 0, NULL) : NULL;
    const char *name;
    json_t *b;
    char ident[200];
    int rc = 0;
    cb_ident_adapter("local", ident, sizeof ident);
    rc |= cb_ident_make(u->dir, ident) < 0;
    json_object_foreach(json_object_get(root, "backends"), name, b)
    {
        cb_ident_adapter(name, ident, sizeof ident);
        rc |= cb_ident_make(u->dir, ident) < 0;
    }
    json_decref(root);
    return rc ? -1 : 0;
}

/* On RabbitMQ: a user per identity, made through the management API with
 * the administrator of the URL the stack was given (tools/rabbit_admin.h).
 * Without an API that answers, the daemons share that user (said); with
 * one named by --rabbitmq-api that does not answer, cb up stops. */
static int rabbit_identities(up *u, const char *api, const char *config)
{
    char err[600], path[700], tenants[16384], *t, *save = NULL;
    if (strncmp(u->url, "amqp", 4))
        return 0;
    if (cb_rabbit_admin_init(&u->ra, u->url, api, err, sizeof err) != 0 ||
        cb_rabbit_admin_check(&u->ra, err, sizeof err) != 0) {
        if (api) {
            say("--rabbitmq-api: %s", err);
            return -1;
        }
        say("%s: every part connects as %s (docs/security.md)", err, u->ra.user);
        return 0;
    }
    if (cb_ident_make_stack(u->dir) != 0 || make_adapter_identities(u, config) != 0)
        return -1;
    for (int i = 0; cb_ident_daemons[i]; i++)
        if (cb_rabbit_admin_put(&u->ra, u->dir, cb_ident_daemons[i], err, sizeof err) != 0) {
            say("%s", err);
            return -1;
        }
    for (int pass = 0; pass < 2; pass++) { /* the adapters, then the tenants */
        save = NULL;
        if (pass == 0)
            cb_ident_adapters(u->dir, tenants, sizeof tenants);
        else
            cb_ident_tenants(u->dir, tenants, sizeof tenants);
        for (t = strtok_r(tenants, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
            if (cb_rabbit_admin_put(&u->ra, u->dir, t, err, sizeof err) != 0) {
                say("%s", err);
                return -1;
            }
    }
    snprintf(path, sizeof path, "%s/rabbitmq_api", u->dir); /* for cb tenant */
    if (cb_file_write_mode(path, u->ra.api, 0600) != 0) {
        say("cannot write %s", path);
        return -1;
    }
    u->rabbit_ids = 1;
    say("RabbitMQ users for every part made through %s (vhost %s)", u->ra.api, u->ra.vhost);
    return 0;
}

/* One adapter for each backend of the configuration other than local
 * ("adapter-NAME"). Returns their names, " a b", for the banner. */
static const char *add_remote_adapters(up *u, const char *config)
{
    static char names[512];
    json_t *root = *config ? json_load_file(config, 0, NULL) : NULL;
    const char *name;
    json_t *b;
    names[0] = '\0';
    json_object_foreach(json_object_get(root, "backends"), name, b)
    {
        char dname[32], ident[200];
        daemon_t *d;
        size_t used = strlen(names);
        if (!strcmp(name, "local") || u->n >= MAX_DAEMONS - 2) /* for cb-sla and cb-api */
            continue;
        snprintf(dname, sizeof dname, "adapter-%.22s", name);
        d = add(u, dname);
        snprintf(d->cmd, sizeof d->cmd,
                 EXEC "'%s/cb-adapter' --broker '%s' --backend '%s' --id %s --config '%s' "
                      "2>>'%s/logs/%s.log'",
                 u->bin, u->url, name, dname, config, u->dir, dname);
        cb_ident_adapter(name, ident, sizeof ident);
        as_identity(u, d, ident);
        snprintf(names + used, sizeof names - used, " %s", name);
    }
    json_decref(root);
    return names;
}

int cb_cmd_up(int argc, char **argv)
{
    const char *broker = NULL, *config = NULL, *dir = cb_cli_dir(), *rabbitmq_api = NULL;
    int port = 0, adapters = 1, engines = 1, cluster = 0, api_port = 0, want_detach = 0,
        want_tls = 0, rc = 1;
    const char *remotes = "";
    up *u;
    char abs_config[600] = "", path[700], self[512];
    struct event *sigint, *sigterm;
    ssize_t n;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--broker") && i + 1 < argc)
            broker = cb_url_from_argv(argv[++i]);
        else if (!strcmp(a, "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(a, "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(a, "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(a, "--adapters") && i + 1 < argc)
            adapters = atoi(argv[++i]);
        else if (!strcmp(a, "--engines") && i + 1 < argc)
            engines = atoi(argv[++i]);
        else if (!strcmp(a, "--cluster") && i + 1 < argc)
            cluster = atoi(argv[++i]);
        else if (!strcmp(a, "--api-port") && i + 1 < argc)
            api_port = atoi(argv[++i]);
        else if (!strcmp(a, "--rabbitmq-api") && i + 1 < argc)
            rabbitmq_api = argv[++i];
        else if (!strcmp(a, "--tls"))
            want_tls = 1;
        else if (!strcmp(a, "--detach"))
            want_detach = 1;
        else {
            fputs(usage, strcmp(a, "--help") ? stderr : stdout);
            return strcmp(a, "--help") ? 2 : 0;
        }
    }
    if (broker && !cb_broker_url_known(broker)) {
        fprintf(stderr,
                "cb up: --broker: unknown scheme in \"%.*s...\" (nats://, tls://, "
                "amqp:// or amqps://)\n",
                (int)strcspn(broker, ":"), broker);
        return 2;
    }
    if (engines < 1 || engines > MAX_ENGINES) {
        fprintf(stderr, "cb up: --engines is 1..%d\n", MAX_ENGINES);
        return 2;
    }
    if (cluster && (cluster != 3 && cluster != 5)) {
        fprintf(stderr, "cb up: --cluster is 3 or 5 (nodes of a private JetStream cluster)\n");
        return 2;
    }
    if (cluster && (broker || want_tls)) {
        fprintf(stderr,
                "cb up: --cluster starts its own nats-server nodes, without TLS: not with "
                "%s\n",
                broker ? "--broker" : "--tls");
        return 2;
    }
    /* nats (each node), projector, sla, api */
    if (adapters < 1 || adapters > MAX_DAEMONS - 3 - engines - (cluster ? cluster : 1)) {
        fprintf(stderr, "cb up: --adapters is 1..%d here\n",
                MAX_DAEMONS - 3 - engines - (cluster ? cluster : 1));
        return 2;
    }
    if (api_port < 0 || api_port > 65535) {
        fprintf(stderr, "cb up: --api-port is 0 (a free one) to 65535\n");
        return 2;
    }
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "cb up: cannot create %s\n", dir);
        return 1;
    }
    if (config && !realpath(config, abs_config)) {
        fprintf(stderr, "cb up: %s: %s\n", config, strerror(errno));
        return 1;
    }
    if (lock_dir(dir) < 0)
        return 1;
    snprintf(path, sizeof path, "%s/url", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/api_url", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/api.port", dir);
    unlink(path);
    if (want_detach && detach(dir) != 0)
        return 1;
    write_pid(dir, "up", getpid());
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_WARN);
    if (!(u = calloc(1, sizeof *u)) || !(u->base = cb_loop_new()))
        return 1;
    if (!realpath(dir, u->dir))
        snprintf(u->dir, sizeof u->dir, "%s", dir);
    /* the daemons live next to this binary */
    if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
        self[n] = '\0';
        snprintf(u->bin, sizeof u->bin, "%s", self);
        *strrchr(u->bin, '/') = '\0';
    }
    if ((u->tls = want_tls)) {
        char err[600];
        if (cb_tls_make_dev(u->dir, err, sizeof err) != 0) {
            say("--tls: %s", err);
            goto out;
        }
        /* the supervisor, the daemons and the functions trust the stack's CA */
        cb_tls_path(u->dir, "ca.pem", path, sizeof path);
        if (!broker)
            setenv("CB_BROKER_CA_FILE", path, 1);
        setenv("CB_API_CA_FILE", path, 1);
    }
    if (broker) {
        if (keep_password(u, broker) != 0)
            goto out;
    } else {
        daemon_t *d = add(u, "nats");
        if (port <= 0 && (port = free_port()) <= 0) {
            say("no free port");
            goto out;
        }
        /* every part with an identity of its own (tools/identity.h) */
        if (cb_ident_make_stack(u->dir) != 0 || make_adapter_identities(u, abs_config) != 0 ||
            cb_ident_write_nats_conf(u->dir, port, u->tls) != 0 || admin_password(u) != 0)
            goto out;
        u->nats_port = port;
        u->own_nats = 1;
        if (cluster) {
            int route[MAX_CLUSTER];
            u->cluster = cluster;
            u->node_port[0] = port;
            for (int k = 0; k < cluster; k++)
                if ((k && (u->node_port[k] = free_port()) <= 0) || (route[k] = free_port()) <= 0) {
                    say("no free port");
                    goto out;
                }
            for (int k = 0; k < cluster; k++) {
                char name[16];
                if (write_node_conf(u, k, route) != 0) {
                    say("cannot write %s/nats-n%d.conf: %s", u->dir, k + 1, strerror(errno));
                    goto out;
                }
                snprintf(name, sizeof name, k ? "nats%d" : "nats", k + 1);
                d = k ? add(u, name) : d;
                snprintf(d->cmd, sizeof d->cmd,
                         EXEC "nats-server -c '%s/nats-n%d.conf' >>'%s/logs/%s.log' 2>&1", u->dir,
                         k + 1, u->dir, name);
                start_daemon(d);
            }
            say("a JetStream cluster of %d nats-server nodes (data in %s/nats/n1..n%d; users in "
                "%s/nats.conf) on 127.0.0.1:%d..., streams with %d replicas",
                cluster, u->dir, cluster, u->dir, port, cluster);
        } else {
            for (int k = 1; k <= MAX_CLUSTER; k++) { /* a cluster's from an earlier start */
                char conf[700];
                snprintf(conf, sizeof conf, "%s/nats-n%d.conf", u->dir, k);
                unlink(conf);
            }
            snprintf(d->cmd, sizeof d->cmd,
                     EXEC "nats-server -c '%s/nats.conf' >>'%s/logs/nats.log' 2>&1", u->dir,
                     u->dir);
            start_daemon(d);
            say("nats-server (JetStream, data in %s/nats; users in %s/nats.conf) on "
                "127.0.0.1:%d%s",
                u->dir, u->dir, port, u->tls ? ", TLS only" : "");
        }
        cb_ident_stack_nats_url(u->dir, CB_IDENT_ADMIN, u->url, sizeof u->url);
    }
    if (connect_retry(u) != 0 || rabbit_identities(u, rabbitmq_api, abs_config) != 0)
        goto out;
    {
        /* --cluster: the projector raises the streams to a replica per node;
         * the others, started with the default, keep what a stream has */
        char replicas[32] = "";
        if (u->cluster)
            snprintf(replicas, sizeof replicas, " --replicas %d", u->cluster);
        daemon_t *d = add(u, "projector");
        snprintf(d->cmd, sizeof d->cmd,
                 EXEC "'%s/cb-projector' --broker '%s' --store '%s/store'%s%s%s%s "
                      "2>>'%s/logs/projector.log'",
                 u->bin, u->url, u->dir, *abs_config ? " --config '" : "", abs_config,
                 *abs_config ? "'" : "", replicas, u->dir);
        as_identity(u, d, "cb-projector");
        for (int i = 0; i < engines; i++) {
            /* one engine drives every partition; several share them with
             * failover, each with a name (docs/scale.md) */
            char name[24], named[48];
            snprintf(name, sizeof name, i ? "engine%d" : "engine", i);
            snprintf(named, sizeof named, engines > 1 ? " --name %s" : "", name);
            d = add(u, name);
            snprintf(d->cmd, sizeof d->cmd,
                     EXEC "'%s/cb-engine' --broker '%s' --store '%s/store' --objects "
                          "'%s/objects'%s%s%s%s 2>>'%s/logs/%s.log'",
                     u->bin, u->url, u->dir, u->dir, named, *abs_config ? " --config '" : "",
                     abs_config, *abs_config ? "'" : "", u->dir, name);
            as_identity(u, d, "cb-engine");
        }
        for (int i = 0; i < adapters; i++) {
            char name[24];
            snprintf(name, sizeof name, "adapter%d", i);
            d = add(u, name);
            snprintf(d->cmd, sizeof d->cmd,
                     EXEC "'%s/cb-adapter' --broker '%s' --backend local --id %s --objects "
                          "'%s/objects' --cache-dir '%s/cache/%s'%s%s%s 2>>'%s/logs/%s.log'",
                     u->bin, u->url, name, u->dir, u->dir, name, *abs_config ? " --config '" : "",
                     abs_config, *abs_config ? "'" : "", u->dir, name);
            as_identity(u, d, CB_IDENT_ADAPTER_PREFIX "local");
        }
        remotes = add_remote_adapters(u, abs_config);
        u->no_sla = u->n >= MAX_DAEMONS - 1;
        if (!u->no_sla) {
            d = add(u, "sla"); /* the SLA evaluator (docs/sla.md) */
            snprintf(d->cmd, sizeof d->cmd,
                     EXEC "'%s/cb-sla' --broker '%s'%s%s%s 2>>'%s/logs/sla.log'", u->bin, u->url,
                     *abs_config ? " --config '" : "", abs_config, *abs_config ? "'" : "", u->dir);
            as_identity(u, d, "cb-sla");
        }
        if (u->n < MAX_DAEMONS) {
            /* the same port on every restart: clients keep DIR/api_url */
            if (!(u->api_port = api_port) && (u->api_port = free_port()) <= 0) {
                say("no free port for cb-api");
                goto out;
            }
            /* the functions' environment: a function may run jobs itself
             * (the Python toolkit finds the API and the stack by these) */
            api_url(u, path, sizeof path);
            setenv("CB_API_URL", path, 1);
            setenv("CB_DIR", u->dir, 1);
            d = add(u, "api");
            snprintf(d->cmd, sizeof d->cmd,
                     EXEC "'%s/cb-api' --broker '%s' --store '%s/store' --objects '%s/objects' "
                          "--listen 127.0.0.1:%d --port-file '%s/api.port' --tokens "
                          "'%s/api_tokens.json'%s%s%s%s%s%s%s%s 2>>'%s/logs/api.log'",
                     u->bin, u->url, u->dir, u->dir, u->api_port, u->dir, u->dir,
                     u->tls ? " --tls-cert '" : "", u->tls ? u->dir : "",
                     u->tls ? "/tls/server.pem' --tls-key '" : "", u->tls ? u->dir : "",
                     u->tls ? "/tls/server.key'" : "", *abs_config ? " --config '" : "", abs_config,
                     *abs_config ? "'" : "", u->dir);
            as_identity(u, d, "cb-api");
        }
        for (int i = u->own_nats ? (u->cluster ? u->cluster : 1) : 0; i < u->n; i++)
            start_daemon(&u->d[i]);
    }
    say("cb-projector, %d cb-engine, %d cb-adapter (local)%s%s, cb-sla and cb-api started; "
        "waiting for the engine",
        engines, adapters, *remotes ? ", one for each of" : "", remotes);
    u->probe = evtimer_new(u->base, probe_cb, u);
    u->probe_deadline_ns = cb_time_mono_ns() + 60 * 1000000000LL;
    probe_cb(-1, 0, u);
    sigint = evsignal_new(u->base, SIGINT, signal_cb, u->base);
    sigterm = evsignal_new(u->base, SIGTERM, signal_cb, u->base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    event_base_dispatch(u->base);
    rc = u->ready ? 0 : 1;
    event_free(sigint);
    event_free(sigterm);
out:
    if (u->probe)
        event_free(u->probe);
    cb_broker_close(u->b);
    stop_all(u);
    snprintf(path, sizeof path, "%s/url", u->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/api_url", u->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/api.port", u->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/up.pid", u->dir);
    unlink(path);
    say("stopped");
    event_base_free(u->base);
    free(u);
    return rc;
}

/* Whether `pid` is a daemon of the stack in `dir`: its stderr goes to
 * DIR/logs/ (a recycled pid would not). */
static int daemon_of(int pid, const char *dir)
{
    char fd2[64], target[700], logs[620], abs[600];
    ssize_t n;
    snprintf(fd2, sizeof fd2, "/proc/%d/fd/2", pid);
    if (!realpath(dir, abs) || (n = readlink(fd2, target, sizeof target - 1)) < 0)
        return 0;
    target[n] = '\0';
    snprintf(logs, sizeof logs, "%s/logs/", abs);
    return strncmp(target, logs, strlen(logs)) == 0;
}

static int wait_gone(int pid, int tenths)
{
    for (int i = 0; i < tenths && kill(pid, 0) == 0; i++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return kill(pid, 0) != 0;
}

/* Stop the daemons a vanished supervisor left (DIR/NAME.pid). Returns how many. */
static int stop_leftovers(const char *dir)
{
    char pattern[600];
    glob_t g;
    int stopped = 0;
    snprintf(pattern, sizeof pattern, "%s/*.pid", dir);
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int pid = cb_cli_read_pid(g.gl_pathv[i]);
        if (pid > 0 && daemon_of(pid, dir) && kill(pid, SIGTERM) == 0) {
            if (!wait_gone(pid, 150))
                kill(pid, SIGKILL);
            stopped++;
        }
        unlink(g.gl_pathv[i]);
    }
    globfree(&g);
    return stopped;
}

int cb_cmd_down(int argc, char **argv)
{
    const char *dir = cb_cli_dir();
    char path[600];
    int pid, left;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    snprintf(path, sizeof path, "%s/up.pid", dir);
    pid = cb_cli_read_pid(path);
    if (pid <= 0 || kill(pid, SIGTERM) != 0) {
        /* no supervisor: stop what it may have left running */
        left = stop_leftovers(dir);
        if (left > 0) {
            fprintf(stderr, "cb down: no supervisor; stopped %d daemon(s) it left running\n", left);
            return 0;
        }
        fprintf(stderr, "cb down: no stack runs from %s\n", dir);
        return 1;
    }
    if (!wait_gone(pid, 600)) {
        fprintf(stderr, "cb down: %d still runs after 60 s\n", pid);
        return 1;
    }
    stop_leftovers(dir);
    fprintf(stderr, "cb down: stopped\n");
    return 0;
}
