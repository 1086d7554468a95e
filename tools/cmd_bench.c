/* tools/cmd_bench.c - `cb bench`: placeholder until the workloads land. */
#include <stdio.h>

#include "cb_cmd.h"

int cb_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cb bench: not yet\n");
    return 2;
}
