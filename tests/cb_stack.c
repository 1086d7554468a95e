/* tests/cb_stack.c - the real daemons for end-to-end tests (see cb_stack.h). */
#include "cb_stack.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_test.h"
#include "cb_proc.h"

typedef struct daemon_t {
    char name[32];
    char cmd[2048]; /* a shell command line; output to the log */
    char log[512];
    cb_proc *proc;
    int running, wstatus;
} daemon_t;

struct cb_stack {
    struct event_base *base;
    char dir[256];
    daemon_t d[2 + CB_STACK_MAX_ADAPTERS + 6];
    int n;
};

static void on_exit_cb(cb_proc *p, int wstatus, cb_status s, void *ctx)
{
    daemon_t *d = ctx;
    (void)p;
    (void)s;
    d->wstatus = wstatus;
    d->running = 0;
}

static bool start(cb_stack *s, daemon_t *d)
{
    const char *argv[] = {"sh", "-c", d->cmd, NULL};
    cb_proc_opts o = {0};
    cb_proc_free(d->proc);
    d->proc = NULL;
    o.argv = argv;
    o.on_exit = on_exit_cb;
    o.ctx = d;
    if (cb_proc_spawn(s->base, &o, &d->proc) != CB_OK)
        return false;
    d->running = 1;
    return true;
}

static daemon_t *find(cb_stack *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->d[i].name, name))
            return &s->d[i];
    return NULL;
}

static void add(cb_stack *s, const char *name, const char *args);

cb_stack *cb_stack_new(struct event_base *base)
{
    cb_stack *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    snprintf(s->dir, sizeof s->dir, "/tmp/cbstack.XXXXXX");
    if (!mkdtemp(s->dir)) {
        free(s);
        return NULL;
    }
    return s;
}

bool cb_stack_add(cb_stack *s, const char *name, const char *cmd)
{
    if (!s || s->n >= (int)(sizeof s->d / sizeof s->d[0]))
        return false;
    add(s, name, cmd);
    return start(s, &s->d[s->n - 1]);
}

const char *cb_stack_dir(cb_stack *s)
{
    return s->dir;
}

static void add(cb_stack *s, const char *name, const char *args)
{
    daemon_t *d = &s->d[s->n++];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->log, sizeof d->log, "%s/%s.log", s->dir, name);
    snprintf(d->cmd, sizeof d->cmd, "exec %s 2>>'%s/%s.log' >&2", args, s->dir, name);
}

/* A copy of the configuration at `config` saying "partitions": n, written
 * into the stack's directory (its path into out), beside links to what the
 * original's directory holds (the functions' paths are relative to the
 * file); false on failure. */
static bool partitioned_config(cb_stack *s, const char *config, unsigned n, char *out, size_t size)
{
    json_t *root = json_load_file(config, 0, NULL), *bk;
    char from[400], *dir;
    struct dirent *e;
    DIR *d;
    bool ok;
    if (!root)
        return false;
    snprintf(from, sizeof from, "%s", config);
    dir = dirname(from);
    if ((d = opendir(dir))) {
        while ((e = readdir(d))) {
            char target[700], link[700];
            if (e->d_name[0] == '.')
                continue;
            snprintf(target, sizeof target, "%s/%s", dir, e->d_name);
            snprintf(link, sizeof link, "%s/%s", s->dir, e->d_name);
            if (symlink(target, link) != 0)
                fprintf(stderr, "cb_stack: cannot link %s: %s\n", link, strerror(errno));
        }
        closedir(d);
    }
    if (!json_is_object(bk = json_object_get(root, "broker")))
        json_object_set_new(root, "broker", bk = json_object());
    json_object_set_new(bk, "partitions", json_integer((json_int_t)n));
    snprintf(out, size, "%s/config.json", s->dir);
    ok = json_dump_file(root, out, JSON_INDENT(2)) == 0;
    json_decref(root);
    return ok;
}

cb_stack *cb_stack_start(struct event_base *base, const char *url, const char *config, int adapters,
                         const char *extra)
{
    const char *bin = getenv("CB_TEST_BIN");
    cb_stack *s;
    char args[1500], store[300], parted[400];
    if (!bin || adapters > CB_STACK_MAX_ADAPTERS || !(s = cb_stack_new(base)))
        return NULL;
    if (cb_test_partitions() > 1) {
        if (!partitioned_config(s, config, cb_test_partitions(), parted, sizeof parted)) {
            cb_stack_stop(s);
            return NULL;
        }
        config = parted;
    }
    snprintf(store, sizeof store, "%s/store", s->dir);
    snprintf(args, sizeof args, "'%s/cb-projector' --broker '%s' --store '%s' --config '%s'", bin,
             url, store, config);
    add(s, "projector", args);
    if (cb_test_two_engines()) { /* two engines sharing the partitions with failover */
        for (int e = 0; e < 2; e++) {
            snprintf(args, sizeof args,
                     "'%s/cb-engine' --config '%s' --broker '%s' --store '%s' --reconcile-ms 500 "
                     "--name %s --beat-ms %d",
                     bin, config, url, store, e ? "engine1" : "engine", CB_STACK_BEAT_MS);
            add(s, e ? "engine1" : "engine", args);
        }
    } else {
        snprintf(args, sizeof args,
                 "'%s/cb-engine' --config '%s' --broker '%s' --store '%s' --reconcile-ms 500", bin,
                 config, url, store);
        add(s, "engine", args);
    }
    for (int i = 0; i < adapters; i++) {
        char name[24];
        snprintf(name, sizeof name, "adapter%d", i);
        snprintf(args, sizeof args, "'%s/cb-adapter' --config '%s' --id %s --broker '%s' %s", bin,
                 config, name, url, extra ? extra : "");
        add(s, name, args);
    }
    for (int i = 0; i < s->n; i++)
        if (!start(s, &s->d[i])) {
            cb_stack_stop(s);
            return NULL;
        }
    return s;
}

static bool ended(void *arg)
{
    return !((daemon_t *)arg)->running;
}

bool cb_stack_signal(cb_stack *s, const char *name, int sig)
{
    daemon_t *d = find(s, name);
    if (!d || !d->proc || !d->running)
        return false;
    cb_proc_kill(d->proc, sig);
    return true;
}

bool cb_stack_kill(cb_stack *s, const char *name, int sig)
{
    daemon_t *d = find(s, name);
    if (!d || !d->proc)
        return false;
    if (d->running)
        cb_proc_kill(d->proc, sig);
    return cb_test_run_until(s->base, ended, d, 20000);
}

int cb_stack_exit_status(cb_stack *s, const char *name)
{
    daemon_t *d = find(s, name);
    return !d || d->running ? -1 : d->wstatus;
}

bool cb_stack_restart(cb_stack *s, const char *name)
{
    daemon_t *d = find(s, name);
    return d && !d->running && start(s, d);
}

const char *cb_stack_log(cb_stack *s, const char *name)
{
    daemon_t *d = find(s, name);
    return d ? d->log : NULL;
}

void cb_stack_dump(cb_stack *s)
{
    for (int i = 0; s && i < s->n; i++) {
        char cmd[700];
        fprintf(stderr, "---- %s (%s), last lines:\n", s->d[i].name, s->d[i].log);
        fflush(stderr);
        snprintf(cmd, sizeof cmd, "tail -n 15 '%s' >&2", s->d[i].log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
}

void cb_stack_stop(cb_stack *s)
{
    char cmd[300];
    if (!s)
        return;
    for (int i = s->n - 1; i >= 0; i--) {
        daemon_t *d = &s->d[i];
        if (d->proc && d->running) {
            cb_proc_kill(d->proc, SIGTERM);
            if (!cb_test_run_until(s->base, ended, d, 15000))
                fprintf(stderr, "cb_stack: %s did not stop on SIGTERM\n", d->name);
        }
        cb_proc_free(d->proc);
    }
    if (!getenv("CB_TEST_KEEP")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cb_stack: cannot remove %s\n", s->dir);
    }
    free(s);
}
