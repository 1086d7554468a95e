/* tools/cmd_bench.c - `cb bench WORKLOAD`: run a workload, print JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cb_json.h"
#include "broker.h"
#include "cb_cmd.h"
#include "cb_log.h"

static const char *usage =
    "usage: cb bench WORKLOAD [--broker nats|amqp] [--url URL] [--n N] [--runs R]\n"
    "                [--partitions P] [--replicas R] [--json]\n"
    "Workloads:\n"
    "  broker   raw confirmed appends, ordered read and work-queue put/get/ack of the\n"
    "           broker through cbcore's driver (the limit the engine works under)\n"
    "  adapter  invocations/s through one cb-adapter (--backend local): the built-in\n"
    "           noop and a warm Python noop\n"
    "  replay   fold N stored events (--events N) into a fresh LMDB store\n"
    "  http     the remote backends' HTTP client: N POSTs (default 20,000), 16 at once\n"
    "           over keep-alive, to an evhttp server on loopback, plain and TLS (no broker)\n"
    "  api      N submissions (default 2,000) through cb-api, 16 at once, then N on\n"
    "           cb.submit: submissions/s and the latency the API adds (p50)\n"
    "  toolkit  the Python toolkit: FunctionExecutor.map of a trivial function over\n"
    "           1,000 and 10,000 items (or --n N), map() to results; $CB_PYTHON\n"
    "           (else python3) needs cloudpickle\n"
    "  fanout          one map of N noop tasks (default 10,000): tasks/s, p50/p99 latency\n"
    "  parallel-sleep  N tasks sleeping 1 s in parallel (default 80): overhead in ms\n"
    "  chain           a DAG of N sequential steps (default 80): ms per step\n"
    "  jobs            N jobs of 10 noop tasks at once (default 1,000): jobs/s\n"
    "  big-map         a map over range(N) in chunks of 100 (default 1,000,000): seconds\n"
    "  objects         a map over 8 objects of N MiB in all (default 1,024), 64 MiB\n"
    "                  ranges read by a Python function: MiB/s\n"
    "  objects-list    a map over a bucket of N objects (default 10,000): ms to list\n"
    "                  them and append the plan, from the submission to the start\n"
    "                  (objects*: the storage is $CB_BENCH_STORAGE, a \"storage\" object as\n"
    "                  JSON, else the stack's file driver)\n"
    "The engine workloads start a fresh stack (cb up: projector, engine, 2 adapters)\n"
    "per run set, measure the broker's raw append rate in the same run\n"
    "(vs_broker_limit) and report the daemons' CPU seconds and peak RSS.\n"
    "--partitions P (1..4): the stack has P partitions and P engines with names\n"
    "(cb up --engines P); fanout submits P maps of N/P tasks, one in each\n"
    "partition; the log of each is read back for the events and latencies.\n"
    "--replicas R (1..5): the streams' replicas (a NATS cluster given by --url as\n"
    "a list of its nodes; RabbitMQ's queues take the cluster's members).\n"
    "Without --url a private broker is started in a temp dir and stopped afterwards.\n"
    "Prints one JSON object with the per-run figures and their median.\n";

int cb_cmd_bench(int argc, char **argv)
{
    const char *driver = "nats", *url = NULL, *workload;
    long n = 0;
    int runs = 3, partitions = 1, replicas = 1, i;
    cb_bench_env env;
    json_t *report = NULL;
    cb_status st;

    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    workload = argv[1];
    for (i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            driver = argv[++i];
        else if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else if ((!strcmp(argv[i], "--n") || !strcmp(argv[i], "--events")) && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
            partitions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--replicas") && i + 1 < argc)
            replicas = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc && !strcmp(argv[i + 1], "local"))
            i++; /* the adapter workload's backend: local is the one measured here */
        else if (!strcmp(argv[i], "--json"))
            ; /* JSON is the only output format */
        else {
            fprintf(stderr, "cb bench: unknown option %s\n%s", argv[i], usage);
            return 2;
        }
    }
    cb_status (*run)(const cb_bench_env *, long, int, json_t **) = NULL;
    if (!strcmp(workload, "broker"))
        run = cb_bench_broker;
    else if (!strcmp(workload, "adapter"))
        run = cb_bench_adapter;
    else if (!strcmp(workload, "replay"))
        run = cb_bench_replay;
    else if (!strcmp(workload, "http"))
        run = cb_bench_http;
    else if (!strcmp(workload, "api"))
        run = cb_bench_api;
    else if (!strcmp(workload, "toolkit"))
        run = cb_bench_toolkit;
    if (!run && cb_bench_engine_known(workload))
        run = NULL; /* below */
    else if (n == 0 && run != cb_bench_toolkit)
        n = run == cb_bench_http ? 20000 : run == cb_bench_api ? 2000 : 100000;
    if (n < 0 || runs <= 0 || (!run && !cb_bench_engine_known(workload))) {
        fputs(usage, stderr);
        return 2;
    }
    if (partitions < 1 || partitions > 4 || (partitions > 1 && run)) {
        fprintf(stderr, "cb bench: --partitions is 1..4, for the engine workloads\n");
        return 2;
    }
    if (replicas < 1 || replicas > 5) {
        fprintf(stderr, "cb bench: --replicas is 1..5\n");
        return 2;
    }
    if (!getenv("CB_LOG_LEVEL"))
        cb_log_set_level(CB_LOG_WARN);
    memset(&env, 0, sizeof env);
    cb_bench_cleanup_install(); /* Ctrl-C, timeout: stop what the run started */
    if (run != cb_bench_http && (st = cb_bench_broker_up(driver, url, &env)) != CB_OK) {
        fprintf(stderr, "cb bench: no %s broker: %s\n", driver, cb_strerror(st));
        return 1;
    }
    env.partitions = partitions;
    env.replicas = replicas;
    st = run ? run(&env, n, runs, &report) : cb_bench_engine(workload, &env, n, runs, &report);
    if (run != cb_bench_http)
        cb_bench_broker_down(&env);
    if (st != CB_OK) {
        fprintf(stderr, "cb bench %s: %s\n", workload, cb_strerror(st));
        return 1;
    }
    char *s = cb_json_dumps(report, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(report);
    return 0;
}
