/* tools/cmd_inspect.c - `cb inspect`: entities from the LMDB store as JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views.h"
#include "cb_json.h"
#include "cb_cmd.h"
#include "cli.h"
#include "fold.h"
#include "store.h"

static const char *usage = "usage: cb inspect job TENANT/JOB [--store DIR]\n"
                           "       cb inspect task TENANT/JOB INDEX [--store DIR]\n"
                           "Prints the entity from the store as JSON (read-only; the store\n"
                           "defaults to $CB_STORE, else $CB_DIR/store, else ./.cb/store,\n"
                           "as for the other commands).\n";

int cb_cmd_inspect(int argc, char **argv)
{
    const char *dir = cb_cli_store_dir(NULL);
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0, rc = 1;
    cb_store *st = NULL;
    json_t *out = NULL;
    cb_status s;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-' && npos < 3)
            pos[npos++] = argv[i];
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (npos < 2 || (!strcmp(pos[0], "task") && npos != 3) ||
        (strcmp(pos[0], "task") && strcmp(pos[0], "job"))) {
        fputs(usage, stderr);
        return 2;
    }
    if (!(st = cb_cli_open_store("inspect", dir)))
        return 1;
    if (!strcmp(pos[0], "job")) {
        cb_job_state j;
        if ((s = cb_view_job(st, pos[1], &j)) == CB_OK) {
            out = cb_job_state_to_json(&j);
            cb_job_state_cleanup(&j);
        }
    } else {
        cb_task_state t;
        char *end;
        unsigned long idx = strtoul(pos[2], &end, 10);
        if (*end || idx > UINT32_MAX) {
            fprintf(stderr, "cb inspect: INDEX is a task number\n");
            cb_store_close(st);
            return 2;
        }
        if ((s = cb_view_task(st, pos[1], (uint32_t)idx, &t)) == CB_OK) {
            out = cb_task_state_to_json(&t);
            cb_task_state_cleanup(&t);
        }
    }
    if (out) {
        char *text = cb_json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
        json_decref(out);
        rc = 0;
    } else {
        fprintf(stderr, "cb inspect: %s %s: %s\n", pos[0], pos[1], cb_strerror(s));
    }
    cb_store_close(st);
    return rc;
}
