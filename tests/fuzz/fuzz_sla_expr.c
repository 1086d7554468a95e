/* tests/fuzz/fuzz_sla_expr.c - libFuzzer harness for the SLA constraint
 * parser (common/cb_sla_expr.c): any input parses or is refused with a
 * position; what parses evaluates to one of the three verdicts with any
 * metric values, and a constant-free constraint never names a level it
 * does not have. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_sla_expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(void *ctx, const char *metric, cb_sla_agg agg, double *out)
{
    const uint8_t *seed = ctx;
    if (*seed % 5 == 0)
        return -1; /* some metrics have no value */
    *out = (double)(strlen(metric) * 17 + (size_t)agg) - (double)*seed;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[CB_SLA_EXPR_MAX + 2], err[300];
    cb_sla_expr *e = NULL;
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    uint8_t seed = size ? data[0] : 0;
    memcpy(text, data, n);
    text[n] = '\0';
    if (cb_sla_parse(text, &e, err, sizeof err) == CB_OK) {
        double obs;
        cb_sla_verdict v = cb_sla_eval(e, lookup, &seed, &obs, NULL);
        if (v != CB_SLA_UNKNOWN && v != CB_SLA_VIOLATED && v != CB_SLA_HOLDS)
            abort();
        if (v != CB_SLA_UNKNOWN && isnan(obs))
            abort(); /* a decided verdict says what it saw */
        if (cb_sla_expr_level(e) == CB_SLA_LEVEL_NONE)
            abort(); /* every comparison names a metric */
        cb_sla_expr_free(e);
    } else if (strncmp(err, "at ", 3) != 0) {
        abort(); /* a refusal says where */
    }
    return 0;
}
