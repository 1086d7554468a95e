/* tools/bench_toolkit.c - `cb bench toolkit`: the Python toolkit end to end
 * (docs/BENCHMARKS.md). On a fresh stack (cb up: projector, engine, two
 * local adapters, cb-api), tools/bench_toolkit.py maps a trivial Python
 * function over 1,000 and 10,000 items (or --n N) through
 * cbcore.FunctionExecutor, from map() to the results in the client, after
 * one warm-up call. The interpreter is $CB_PYTHON (else python3), the
 * stack's runtimes' too: it needs cloudpickle. Figures per size: seconds
 * and calls/s, median over the runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cb_config.h"
#include "cb_json.h"

#ifndef CB_TOOLS_DIR
#define CB_TOOLS_DIR "tools"
#endif

#define MAX_SIZES 2

/* One run of the client: its JSON lines into secs[k] per size. */
static cb_status one_run(const char *dir, const long *sizes, int nsizes, double *secs,
                         json_t *per_run)
{
    char cmd[2048], line[1024], args[64] = "";
    const char *py = getenv("CB_PYTHON");
    int got = 0;
    FILE *p;
    for (int k = 0; k < nsizes; k++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %ld", sizes[k]);
    /* the runtime directory holds the cbcore package (a link to the toolkit) */
    snprintf(cmd, sizeof cmd,
             "CB_DIR='%s/cb' CB_NO_PROGRESS=1 PYTHONPATH='%s' '%s' '%s/bench_toolkit.py'%s", dir,
             cb_config_runtime_dir(), py && *py ? py : "python3", CB_TOOLS_DIR, args);
    if (!(p = popen(cmd, "r")))
        return CB_EIO;
    while (got < nsizes && fgets(line, sizeof line, p)) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        secs[got++] = json_real_value(json_object_get(o, "seconds"));
        json_array_append_new(per_run, o);
    }
    return pclose(p) == 0 && got == nsizes ? CB_OK : CB_EIO;
}

cb_status cb_bench_toolkit(const cb_bench_env *env, long n, int runs, json_t **report)
{
    long sizes[MAX_SIZES] = {1000, 10000};
    int nsizes = n > 0 ? 1 : 2, slot = -1;
    char dir[512] = "", bin[512] = "";
    double *secs = calloc((size_t)(runs * MAX_SIZES), sizeof(double)), col[64];
    json_t *per_run = json_array(), *med = json_object();
    cb_status st = CB_OK;

    *report = NULL;
    if (n > 0)
        sizes[0] = n;
    if (!secs || !per_run || !med || runs > 64) {
        st = runs > 64 ? CB_EINVAL : CB_ENOMEM;
        goto out;
    }
    if ((st = cb_bench_stack_up(env, "{\"backends\": {\"local\": {\"functions\": {}}}}\n", 2, dir,
                                sizeof dir, bin, sizeof bin, &slot)) != CB_OK)
        goto out_stack;
    for (int r = 0; r < runs && st == CB_OK; r++)
        st = one_run(dir, sizes, nsizes, secs + r * MAX_SIZES, per_run);
    if (st != CB_OK) {
        fprintf(stderr,
                "cb bench toolkit: the client failed (is cloudpickle there for $CB_PYTHON? "
                "logs in %s)\n",
                dir);
        goto out_stack;
    }
    for (int k = 0; k < nsizes; k++) {
        char key[64];
        double m;
        for (int r = 0; r < runs; r++)
            col[r] = secs[r * MAX_SIZES + k];
        m = cb_bench_median(col, runs);
        snprintf(key, sizeof key, "%ld", sizes[k]);
        json_object_set_new(med, key,
                            json_pack("{s:f, s:f}", "seconds", m, "calls_per_s",
                                      m > 0 ? (double)sizes[k] / m : 0.0));
    }
    *report =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:O, s:o}", "workload", "toolkit", "definition",
                  "FunctionExecutor.map of a trivial Python function over N items "
                  "(chunksize 1), from map() to the results in the client",
                  "broker", env->driver, "adapters", 2, "runs", runs, "per_run", per_run, "median",
                  med, "machine", cb_bench_machine());
    per_run = NULL;
    st = *report ? CB_OK : CB_ENOMEM;
out_stack:
    cb_bench_stack_down(dir, bin, slot);
out:
    json_decref(per_run);
    json_decref(med);
    free(secs);
    return st;
}
