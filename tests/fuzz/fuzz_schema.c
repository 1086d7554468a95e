/* tests/fuzz/fuzz_schema.c - libFuzzer harness for message intake: parse any
 * bytes as JSON and validate them against every message schema. Must never
 * crash, leak or loop; the verdict with and without error messages agrees. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cb_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cb_schema *schemas;

static void free_schemas(void)
{
    cb_schema_free(schemas);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const refs[] = {"job.json",  "event.json", "invoke.json",
                                       "done.json", "reply.json", "ctl.json"};
    json_error_t je;
    json_t *inst;

    if (!schemas) {
        char err[256];
        if (cb_schema_load_dir(cb_schema_default_dir(), &schemas, err, sizeof err) != CB_OK) {
            fprintf(stderr, "fuzz_schema: %s\n", err);
            abort();
        }
        atexit(free_schemas);
    }
    inst = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!inst)
        return 0;
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        json_t *errors = NULL;
        cb_status a = cb_schema_validate(schemas, refs[i], inst, 5, &errors);
        cb_status b = cb_schema_validate(schemas, refs[i], inst, 1, NULL);
        if (a != b || (a == CB_ESCHEMA && json_array_size(errors) == 0))
            abort();
        json_decref(errors);
    }
    json_decref(inst);
    return 0;
}
