/* tools/bench.h - shared parts of `cb bench`: a private broker for a run,
 * statistics, and the machine description. Each workload is a file. */
#ifndef CB_BENCH_H
#define CB_BENCH_H
#include <jansson.h>

#include "cb_status.h"

typedef struct cb_bench_env {
    char driver[8];   /* "nats" | "amqp" */
    char url[512];    /* the broker used */
    char tmpdir[256]; /* private broker's data, when we started one */
    int own_broker;   /* 1 if we started it (and must stop it) */
    int cleanup;      /* its cb_bench_cleanup slot */
    int partitions;   /* the engine workloads: P partitions, one engine each (default 1) */
    int replicas;     /* the streams' replicas on a NATS cluster (0: the default, 1) */
} cb_bench_env;

/* Use `url` if not NULL, else start a private server for `driver` with
 * tools/brokers.sh in a temp dir. Errors: CB_EINVAL, CB_ECONN. */
CB_NODISCARD cb_status cb_bench_broker_up(const char *driver, const char *url, cb_bench_env *env);
/* Stop the private server, remove its data. */
void cb_bench_broker_down(cb_bench_env *env);

/* What to undo if the bench is stopped by a signal (SIGINT, SIGTERM,
 * SIGHUP): shell commands, run in reverse order of pushing by the handler
 * cb_bench_cleanup_install() sets, before the process dies of the signal.
 * push returns a slot (-1 when full) for pop, which forgets the command once
 * the bench has undone it itself. Main thread only. */
void cb_bench_cleanup_install(void);
int cb_bench_cleanup_push(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cb_bench_cleanup_pop(int slot);

/* A fresh stack: `cb up --detach` (projector, engine, `adapters` local
 * adapters, cb-api) on env's broker with `config` (JSON text) as its
 * --config, in a new temp directory: dir gets it (cb up's own is DIR/cb:
 * DIR/cb/api_url, DIR/cb/NAME.pid; with env->partitions P > 1, P engines
 * with names: `--engines P`), bin the directory of the cb binaries,
 * *slot the cleanup slot. Errors: CB_EIO, CB_ECONN (it did not start: DIR/up.out). */
CB_NODISCARD cb_status cb_bench_stack_up(const cb_bench_env *env, const char *config, int adapters,
                                         char *dir, size_t dirlen, char *bin, size_t binlen,
                                         int *slot);
/* Stop it (`cb down`) and remove its directory. Accepts an empty dir. */
/* What a stalled run leaves to look at, on stderr: `cb status TENANT/JOB`
 * against the stack, the end of the job's log (cb replay) and of its
 * daemons' logs. */
void cb_bench_stack_explain(const char *dir, const char *bin, const char *tenant, const char *job);
void cb_bench_stack_down(const char *dir, const char *bin, int slot);

/* Median of v[0..n) (sorts v). */
double cb_bench_median(double *v, int n);
/* {"cores": N, "os": "..."} new reference. */
json_t *cb_bench_machine(void);

/* Workloads: fill *report (new reference) with the workload's figures. */
CB_NODISCARD cb_status cb_bench_broker(const cb_bench_env *env, long n, int runs, json_t **report);
CB_NODISCARD cb_status cb_bench_adapter(const cb_bench_env *env, long n, int runs, json_t **report);
/* The remote backends' HTTP client against a local evhttp server (no broker). */
CB_NODISCARD cb_status cb_bench_http(const cb_bench_env *env, long n, int runs, json_t **report);
CB_NODISCARD cb_status cb_bench_replay(const cb_bench_env *env, long n, int runs, json_t **report);
/* The whole-engine workloads (bench_engine.c): fanout, parallel-sleep, chain,
 * jobs, big-map. n <= 0: the workload's standard size. */
int cb_bench_engine_known(const char *name);
CB_NODISCARD cb_status cb_bench_engine(const char *name, const cb_bench_env *env, long n, int runs,
                                       json_t **report);
/* Submissions through cb-api (bench_api.c) against the same on the broker. */
CB_NODISCARD cb_status cb_bench_api(const cb_bench_env *env, long n, int runs, json_t **report);
/* The Python toolkit end to end (bench_toolkit.c, tools/bench_toolkit.py):
 * n <= 0: maps of 1,000 and 10,000 calls. */
CB_NODISCARD cb_status cb_bench_toolkit(const cb_bench_env *env, long n, int runs, json_t **report);

#endif /* CB_BENCH_H */
