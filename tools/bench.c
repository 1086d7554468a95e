/* tools/bench.c - private broker, statistics and machine facts for cb bench. */
#define _GNU_SOURCE
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef CB_TOOLS_DIR
#define CB_TOOLS_DIR "tools"
#endif

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
    env->own_broker = 0;
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
