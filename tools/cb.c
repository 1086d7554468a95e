/* tools/cb.c - the cb command line tool. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0) {
        printf("usage: cb COMMAND [ARGS]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "cb: unknown command '%s' (try 'cb help')\n", argv[1]);
    return 2;
}
