/* tools/cmd_up.c - `cb up`: the dev stack in one command, and `cb down`.
 *
 * Starts a private nats-server with JetStream (data under DIR/nats, on a free
 * or given loopback port) unless --broker names an existing broker, then
 * cb-projector, cb-engine and cb-adapter (local), each logging to
 * DIR/logs/NAME.log. A daemon that exits is restarted with a backoff (0.5 s
 * doubling to 10 s; reset after 30 s of good health) and the restart is
 * logged. Ready means the engine answers a submission. The broker URL is
 * written to DIR/url, where the other cb commands find it. SIGINT/SIGTERM
 * stop everything (daemons first, the broker last). --detach runs the same
 * in the background (pid in DIR/up.pid) and returns once ready; `cb down`
 * stops it. Each daemon's pid is in DIR/NAME.pid while it runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "cb_cmd.h"
#include "cb_log.h"
#include "cb_time.h"
#include "proc.h"

#define MAX_DAEMONS 16

typedef struct up up;

typedef struct daemon_t {
    up *u;
    char name[32], cmd[3000];
    cb_proc *proc;
    int running;
    int64_t started_ns, backoff_ms;
    struct event *restart;
} daemon_t;

struct up {
    struct event_base *base;
    char dir[512], url[256], bin[512];
    daemon_t d[MAX_DAEMONS];
    int n, stopping, ready, own_nats;
    cb_broker *b;
    struct event *probe;
    int64_t probe_deadline_ns;
};

static const char *usage =
    "usage: cb up [--dir DIR] [--broker URL] [--port N] [--config FILE] [--adapters N]\n"
    "             [--detach]\n"
    "       cb down [--dir DIR]\n"
    "Starts the dev stack: a private nats-server with JetStream under DIR (default\n"
    "./.cb; or the broker given with --broker nats://... or amqp://...),\n"
    "cb-projector, cb-engine, N cb-adapter workers of the local backend and one\n"
    "for each remote backend of FILE (FILE registers functions and backends, see\n"
    "docs/adapters.md). Prints where everything listens\n"
    "and writes the broker URL to DIR/url for the other cb commands. Ctrl-C stops\n"
    "it all; with --detach it runs in the background until `cb down`.\n";

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

static void start_daemon(daemon_t *d);

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_daemon(arg);
}

static void exit_cb(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    daemon_t *d = ctx;
    char how[128];
    struct timeval tv;
    (void)p;
    (void)s;
    d->running = 0;
    if (d->u->stopping)
        return;
    cb_proc_describe(wstatus, how, sizeof how);
    if (cb_time_mono_ns() - d->started_ns > 30 * 1000000000LL)
        d->backoff_ms = 500; /* it was healthy for a while: start over */
    say("%s exited (%s); restarting in %.1f s (log: %s/logs/%s.log)", d->name, how,
        (double)d->backoff_ms / 1000, d->u->dir, d->name);
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
    char path[700];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.pid", d->u->dir, d->name);
    if ((f = fopen(path, "w"))) {
        fprintf(f, "%d\n", (int)cb_proc_pid(d->proc));
        fclose(f);
    }
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

/* ---- readiness: the engine answers a submission ----------------------------- */

static void probe_reply(cb_status s, const void *data, size_t len, void *ctx)
{
    up *u = ctx;
    struct timeval tv = {0, 200000};
    (void)data;
    (void)len;
    if (s == CB_OK) {
        char path[600];
        FILE *f;
        u->ready = 1;
        snprintf(path, sizeof path, "%s/url", u->dir);
        if ((f = fopen(path, "w"))) {
            fprintf(f, "%s\n", u->url);
            fclose(f);
        }
        say("ready. broker %s%s; store %s/store; logs %s/logs", u->url,
            u->own_nats ? " (private nats-server, JetStream data in .../nats)" : "", u->dir,
            u->dir);
        printf("export CB_BROKER_URL=%s\n", u->url);
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
    int64_t until = cb_time_mono_ns() + 15 * 1000000000LL;
    cb_status s;
    cb_broker_opts_init(&o);
    o.url = u->url;
    o.name = "cb up";
    o.connect_timeout_ms = 2000;
    while ((s = cb_broker_open(u->base, &o, &u->b)) != CB_OK) {
        if (cb_time_mono_ns() > until) {
            say("cannot reach the broker %s: %s", u->url, cb_strerror(s));
            return -1;
        }
        struct timespec ts = {0, 200000000}; /* start-up: nothing else to do yet */
        nanosleep(&ts, NULL);
    }
    return 0;
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
                fprintf(stderr, "cb up: the stack did not start; see %s/logs/up.log\n", dir);
                exit(1);
            }
            if ((f = fopen(path, "r"))) {
                char url[256] = "";
                if (fgets(url, sizeof url, f))
                    printf("export CB_BROKER_URL=%s", url);
                fclose(f);
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
    snprintf(path, sizeof path, "%s/up.pid", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    return 0;
}

static int mkdirs(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "mkdir -p '%s/logs' '%s/store' '%s/nats'", dir, dir, dir);
    return system(p) == 0 ? 0 : -1;
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
        char dname[32];
        daemon_t *d;
        size_t used = strlen(names);
        if (!strcmp(name, "local") || u->n >= MAX_DAEMONS)
            continue;
        snprintf(dname, sizeof dname, "adapter-%.22s", name);
        d = add(u, dname);
        snprintf(d->cmd, sizeof d->cmd,
                 "exec '%s/cb-adapter' --broker '%s' --backend '%s' --id %s --config '%s' "
                 "2>>'%s/logs/%s.log'",
                 u->bin, u->url, name, dname, config, u->dir, dname);
        snprintf(names + used, sizeof names - used, " %s", name);
    }
    json_decref(root);
    return names;
}

int cb_cmd_up(int argc, char **argv)
{
    const char *broker = NULL, *config = NULL, *dir = ".cb";
    int port = 0, adapters = 1, want_detach = 0, rc = 1;
    const char *remotes = "";
    up *u;
    char abs_config[600] = "", path[700], self[512];
    struct event *sigint, *sigterm;
    ssize_t n;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--broker") && i + 1 < argc)
            broker = argv[++i];
        else if (!strcmp(a, "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(a, "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(a, "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(a, "--adapters") && i + 1 < argc)
            adapters = atoi(argv[++i]);
        else if (!strcmp(a, "--detach"))
            want_detach = 1;
        else {
            fputs(usage, strcmp(a, "--help") ? stderr : stdout);
            return strcmp(a, "--help") ? 2 : 0;
        }
    }
    if (adapters < 1 || adapters > MAX_DAEMONS - 3) {
        fprintf(stderr, "cb up: --adapters is 1..%d\n", MAX_DAEMONS - 3);
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
    snprintf(path, sizeof path, "%s/url", dir);
    unlink(path);
    if (want_detach && detach(dir) != 0)
        return 1;
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_WARN);
    if (!(u = calloc(1, sizeof *u)) || cb_broker_global_init() != CB_OK ||
        !(u->base = event_base_new()))
        return 1;
    if (!realpath(dir, u->dir))
        snprintf(u->dir, sizeof u->dir, "%s", dir);
    /* the daemons live next to this binary */
    if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
        self[n] = '\0';
        snprintf(u->bin, sizeof u->bin, "%s", self);
        *strrchr(u->bin, '/') = '\0';
    }
    if (broker) {
        snprintf(u->url, sizeof u->url, "%s", broker);
    } else {
        daemon_t *d = add(u, "nats");
        if (port <= 0 && (port = free_port()) <= 0) {
            say("no free port");
            goto out;
        }
        snprintf(u->url, sizeof u->url, "nats://127.0.0.1:%d", port);
        snprintf(d->cmd, sizeof d->cmd,
                 "exec nats-server -js -sd '%s/nats' -a 127.0.0.1 -p %d >>'%s/logs/nats.log' 2>&1",
                 u->dir, port, u->dir);
        u->own_nats = 1;
        start_daemon(d);
        say("nats-server (JetStream, data in %s/nats) on %s", u->dir, u->url);
    }
    if (connect_retry(u) != 0)
        goto out;
    {
        daemon_t *d = add(u, "projector");
        snprintf(
            d->cmd, sizeof d->cmd,
            "exec '%s/cb-projector' --broker '%s' --store '%s/store' 2>>'%s/logs/projector.log'",
            u->bin, u->url, u->dir, u->dir);
        d = add(u, "engine");
        snprintf(d->cmd, sizeof d->cmd,
                 "exec '%s/cb-engine' --broker '%s' --store '%s/store'%s%s%s "
                 "2>>'%s/logs/engine.log'",
                 u->bin, u->url, u->dir, *abs_config ? " --config '" : "", abs_config,
                 *abs_config ? "'" : "", u->dir);
        for (int i = 0; i < adapters; i++) {
            char name[24];
            snprintf(name, sizeof name, "adapter%d", i);
            d = add(u, name);
            snprintf(d->cmd, sizeof d->cmd,
                     "exec '%s/cb-adapter' --broker '%s' --backend local --id %s%s%s%s "
                     "2>>'%s/logs/%s.log'",
                     u->bin, u->url, name, *abs_config ? " --config '" : "", abs_config,
                     *abs_config ? "'" : "", u->dir, name);
        }
        remotes = add_remote_adapters(u, abs_config);
        for (int i = u->own_nats; i < u->n; i++)
            start_daemon(&u->d[i]);
    }
    say("cb-projector, cb-engine and %d cb-adapter (local) started%s%s; waiting for the engine",
        adapters, *remotes ? ", one for each of" : "", remotes);
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
    snprintf(path, sizeof path, "%s/up.pid", u->dir);
    unlink(path);
    say("stopped");
    event_base_free(u->base);
    free(u);
    return rc;
}

int cb_cmd_down(int argc, char **argv)
{
    const char *dir = ".cb";
    char path[600];
    FILE *f;
    int pid = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    snprintf(path, sizeof path, "%s/up.pid", dir);
    if (!(f = fopen(path, "r")) || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        if (f)
            fclose(f);
        fprintf(stderr, "cb down: no stack runs from %s (no %s)\n", dir, path);
        return 1;
    }
    fclose(f);
    if (kill(pid, SIGTERM) != 0) {
        fprintf(stderr, "cb down: process %d is gone; removing %s\n", pid, path);
        unlink(path);
        return 1;
    }
    for (int i = 0; i < 600 && kill(pid, 0) == 0; i++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    if (kill(pid, 0) == 0) {
        fprintf(stderr, "cb down: %d still runs after 60 s\n", pid);
        return 1;
    }
    fprintf(stderr, "cb down: stopped\n");
    return 0;
}
