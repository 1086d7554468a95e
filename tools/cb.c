/* tools/cb.c - the cb command-line tool: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_cmd.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"up", cb_cmd_up, "start the dev stack (nats-server, projector, engine, adapter)"},
    {"down", cb_cmd_down, "stop a stack started with cb up --detach"},
    {"submit", cb_cmd_submit, "submit a job; --wait prints its done message"},
    {"cancel", cb_cmd_lifecycle, "cancel a job: no new tasks, running results ignored"},
    {"suspend", cb_cmd_lifecycle, "suspend a job: no new tasks until resumed"},
    {"resume", cb_cmd_lifecycle, "resume a suspended job"},
    {"retry", cb_cmd_lifecycle, "run a failed or cancelled job again: only what did not succeed"},
    {"watch", cb_cmd_watch, "live progress of a job until it ends"},
    {"status", cb_cmd_status, "a job's state"},
    {"result", cb_cmd_result, "a job's result as JSON (waits for its end)"},
    {"jobs", cb_cmd_jobs, "list the jobs and their state"},
    {"storage", cb_cmd_storage, "objects in the configured storage: ls, put, get, rm, mb"},
    {"tenant", cb_cmd_tenant, "a tenant's broker identity: add, list, remove"},
    {"sla", cb_cmd_sla, "SLA agreements: create, list, show, delete, start, stop, watch"},
    {"health", cb_cmd_health, "whether a daemon lives and is connected (container health checks)"},
    {"doctor", cb_cmd_doctor, "the broker's durability (read from the server) and the store"},
    {"validate", cb_cmd_validate, "check JSON files against the message schemas"},
    {"replay", cb_cmd_replay, "a job's timeline or past state from the log; rebuild, verify"},
    {"inspect", cb_cmd_inspect, "print a job or task from the store as JSON"},
    {"bench", cb_cmd_bench, "run a benchmark and print its figures as JSON"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: cb COMMAND [ARGS]   (cb COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    cb_alloc_route_json(); /* JSON allocates through cb_alloc.h too */
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cb: unknown command '%s' (try 'cb help')\n", argv[1]);
    return 2;
}
