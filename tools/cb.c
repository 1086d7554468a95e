/* tools/cb.c - the cb command-line tool: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cb_cmd.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"submit", cb_cmd_submit, "submit a job; --wait prints its done message"},
    {"cancel", cb_cmd_lifecycle, "cancel a job: no new tasks, running results ignored"},
    {"suspend", cb_cmd_lifecycle, "suspend a job: no new tasks until resumed"},
    {"resume", cb_cmd_lifecycle, "resume a suspended job"},
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
