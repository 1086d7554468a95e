/* tools/cmd_validate.c - `cb validate`: check JSON files against the schemas. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cb_cmd.h"
#include "cb_json.h"
#include "cb_schema.h"

static const char *usage =
    "usage: cb validate [--schema NAME] [--schemas DIR] [--json] FILE...\n"
    "Checks each FILE against a schema of schemas/ (NAME such as job.json or\n"
    "event.json#/$defs/cb.job.started). Without --schema the schema is taken from\n"
    "the file name's prefix (job-, event-, invoke-, done-, reply-, ctl-, agreement-), else\n"
    "job.json.\n"
    "Exit status: 0 all valid, 1 some invalid, 2 usage or I/O error.\n";

/* "schemas/examples/valid/event-x.json" -> "event.json" */
static void schema_for(const char *file, char *out, size_t size)
{
    static const char *const prefixes[] = {"job",   "event", "invoke",   "done",
                                           "reply", "ctl",   "agreement"};
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(base, prefixes[i], n) == 0 && base[n] == '-') {
            snprintf(out, size, "%s.json", prefixes[i]);
            return;
        }
    }
    snprintf(out, size, "job.json");
}

int cb_cmd_validate(int argc, char **argv)
{
    const char *schema = NULL, *dir = cb_schema_default_dir();
    int as_json = 0, i, rc = 0;
    cb_schema *s = NULL;
    char err[512];

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--schema") && i + 1 < argc)
            schema = argv[++i];
        else if (!strcmp(argv[i], "--schemas") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else {
            fputs(usage, strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (i == argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (cb_schema_load_dir(dir, &s, err, sizeof err) != CB_OK) {
        fprintf(stderr, "cb validate: %s\n", err);
        return 2;
    }
    for (; i < argc; i++) {
        json_error_t je;
        json_t *errors = NULL, *inst;
        char which[64];
        cb_status st;

        if (schema)
            snprintf(which, sizeof which, "%s", schema);
        else
            schema_for(argv[i], which, sizeof which);
        inst = json_load_file(argv[i], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if (!inst) {
            char msg[300];
            snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
            errors = json_pack("[s]", msg);
            st = CB_ESCHEMA;
        } else {
            st = cb_schema_validate(s, which, inst, 20, &errors);
            json_decref(inst);
        }
        if (st == CB_ENOTFOUND) {
            fprintf(stderr, "cb validate: no schema %s\n", which);
            cb_schema_free(s);
            return 2;
        }
        if (as_json) {
            json_t *o =
                json_pack("{s:s, s:s, s:b, s:o}", "file", argv[i], "schema", which, "valid",
                          st == CB_OK, "errors", errors ? json_incref(errors) : json_array());
            char *line = cb_json_dumps(o, JSON_COMPACT);
            printf("%s\n", line);
            free(line);
            json_decref(o);
        } else if (st == CB_OK) {
            printf("%s: valid (%s)\n", argv[i], which);
        } else {
            size_t k;
            json_t *e;
            printf("%s: invalid (%s)\n", argv[i], which);
            json_array_foreach(errors, k, e) printf("  %s\n", json_string_value(e));
        }
        if (st != CB_OK)
            rc = 1;
        json_decref(errors);
    }
    cb_schema_free(s);
    return rc;
}
