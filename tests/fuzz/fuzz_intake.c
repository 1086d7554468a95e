/* tests/fuzz/fuzz_intake.c - libFuzzer harness for the engine's intake: any
 * bytes as a submission on cb.submit.acme. Must never crash, leak or loop;
 * every verdict is either an accepted job with a digest or at least one
 * error naming a path ("/..."). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cb_schema *schemas;
static cb_config *reg;

static void free_all(void)
{
    cb_schema_free(schemas);
    cb_config_free(reg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_intake_cfg cfg;
    cb_intake in;
    cb_status s;

    if (!schemas) {
        char err[256];
        if (cb_schema_load_dir(cb_schema_default_dir(), &schemas, err, sizeof err) != CB_OK ||
            cb_config_load(NULL, &reg, err, sizeof err) != CB_OK) {
            fprintf(stderr, "fuzz_intake: %s\n", err);
            abort();
        }
        atexit(free_all);
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.schema = schemas;
    cfg.reg = reg;
    cfg.max_bytes = 65536;
    cfg.max_tasks = 100000;
    s = cb_intake_check(&cfg, "acme", data, size, "j-fuzz", &in);
    if (s == CB_OK) {
        if (!in.job || strlen(in.digest) != 64 || in.errors)
            abort();
    } else if (s != CB_ENOMEM) {
        const char *e0 = json_string_value(json_array_get(in.errors, 0));
        if (!e0 || e0[0] != '/')
            abort();
    }
    cb_intake_cleanup(&in);
    return 0;
}
