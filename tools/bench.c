/* tools/bench.c - private broker, statistics and machine facts for cb bench. */
#define _GNU_SOURCE
#include "bench.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CB_TOOLS_DIR
#define CB_TOOLS_DIR "tools"
#endif

/* ---- undo on a signal ----------------------------------------------------- */

#define CLEANUP_SLOTS 8
static char cleanup_cmd[CLEANUP_SLOTS][1200]; /* "" = free */

static void cleanup_on_signal(int sig)
{
    /* fork, execve and waitpid are async-signal-safe; the commands were
     * formatted before. */
    for (int i = CLEANUP_SLOTS - 1; i >= 0; i--) {
        if (!cleanup_cmd[i][0])
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", cleanup_cmd[i], (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void cb_bench_cleanup_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cleanup_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int cb_bench_cleanup_push(const char *fmt, ...)
{
    char cmd[sizeof cleanup_cmd[0]];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    for (int i = 0; i < CLEANUP_SLOTS; i++)
        if (!cleanup_cmd[i][0]) {
            sigset_t block, old;
            sigemptyset(&block);
            sigaddset(&block, SIGINT);
            sigaddset(&block, SIGTERM);
            sigaddset(&block, SIGHUP);
            sigprocmask(SIG_BLOCK, &block, &old); /* the handler never sees half a command */
            memcpy(cleanup_cmd[i], cmd, (size_t)n + 1);
            sigprocmask(SIG_SETMASK, &old, NULL);
            return i;
        }
    return -1;
}

void cb_bench_cleanup_pop(int slot)
{
    if (slot >= 0 && slot < CLEANUP_SLOTS)
        cleanup_cmd[slot][0] = '\0';
}

/* ---- a private broker ------------------------------------------------------- */

cb_status cb_bench_broker_up(const char *driver, const char *url, cb_bench_env *env)
{
    char cmd[1024];
    FILE *p;

    memset(env, 0, sizeof *env);
    if (strcmp(driver, "nats") && strcmp(driver, "amqp"))
        return CB_EINVAL;
    snprintf(env->driver, sizeof env->driver, "%s", driver);
    if (url) {
        snprintf(env->url, sizeof env->url, "%s", url);
        return CB_OK;
    }
    snprintf(env->tmpdir, sizeof env->tmpdir, "/tmp/cbbench.XXXXXX");
    if (!mkdtemp(env->tmpdir))
        return CB_EINVAL;
    env->cleanup = cb_bench_cleanup_push("%s/brokers.sh stop %s %s >/dev/null 2>&1; rm -rf %s",
                                         CB_TOOLS_DIR, driver, env->tmpdir, env->tmpdir);
    snprintf(cmd, sizeof cmd, "%s/brokers.sh start %s %s", CB_TOOLS_DIR, driver, env->tmpdir);
    if (!(p = popen(cmd, "r")))
        return CB_ECONN;
    if (!fgets(env->url, sizeof env->url, p))
        env->url[0] = '\0';
    env->url[strcspn(env->url, "\n")] = '\0';
    env->own_broker = 1;
    if (pclose(p) != 0 || !env->url[0]) {
        cb_bench_broker_down(env);
        return CB_ECONN;
    }
    return CB_OK;
}

void cb_bench_broker_down(cb_bench_env *env)
{
    char cmd[1024];
    if (!env->own_broker)
        return;
    snprintf(cmd, sizeof cmd, "%s/brokers.sh stop %s %s >/dev/null 2>&1; rm -rf %s", CB_TOOLS_DIR,
             env->driver, env->tmpdir, env->tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cb bench: could not clean up %s\n", env->tmpdir);
    cb_bench_cleanup_pop(env->cleanup);
    env->own_broker = 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

cb_status cb_bench_stack_up(const cb_bench_env *env, const char *config, int adapters, char *dir,
                            size_t dirlen, char *bin, size_t binlen, int *slot)
{
    char self[512], path[600];
    ssize_t n;
    FILE *f;
    *slot = -1;
    if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) <= 0)
        return CB_ENOTFOUND;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(bin, binlen, "%s", self);
    snprintf(dir, dirlen, "/tmp/cbbench-stack.XXXXXX");
    if (!mkdtemp(dir))
        return CB_EIO;
    *slot = cb_bench_cleanup_push("'%s/cb' down --dir '%s/cb' >/dev/null 2>&1; rm -rf '%s'", bin,
                                  dir, dir);
    snprintf(path, sizeof path, "%s/cb.json", dir);
    if (!(f = fopen(path, "w")))
        return CB_EIO;
    fputs(config, f);
    if (fclose(f) != 0)
        return CB_EIO;
    if (sh("CB_LOG_LEVEL=warn '%s/cb' up --detach --dir '%s/cb' --broker '%s' --config '%s' "
           "--adapters %d --engines %d >'%s/up.out' 2>&1",
           bin, dir, env->url, path, adapters, env->partitions > 1 ? env->partitions : 1,
           dir) != 0) {
        fprintf(stderr, "cb bench: the stack did not start (see %s/up.out)\n", dir);
        return CB_ECONN;
    }
    return CB_OK;
}

void cb_bench_stack_explain(const char *dir, const char *bin, const char *tenant, const char *job)
{
    if (!dir[0])
        return;
    fprintf(stderr, "cb bench: the stack in %s/cb; cb status %s/%s, its log, the daemons' logs:\n",
            dir, tenant, job);
    fflush(stderr);
    sh("CB_DIR='%s/cb' '%s/cb' status '%s/%s' >&2 2>&1; CB_DIR='%s/cb' '%s/cb' replay --job "
       "'%s/%s' 2>&1 | tail -n 40 >&2; tail -n 12 '%s'/cb/logs/*.log >&2",
       dir, bin, tenant, job, dir, bin, tenant, job, dir);
}

void cb_bench_stack_down(const char *dir, const char *bin, int slot)
{
    if (!dir[0])
        return;
    if (sh("'%s/cb' down --dir '%s/cb' >/dev/null 2>&1", bin, dir) == 0)
        sh("rm -rf '%s'", dir);
    cb_bench_cleanup_pop(slot);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cb_bench_median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

json_t *cb_bench_machine(void)
{
    struct utsname u;
    uname(&u);
    return json_pack("{s:i, s:s, s:s}", "cores", (int)sysconf(_SC_NPROCESSORS_ONLN), "os",
                     u.sysname, "kernel", u.release);
}
