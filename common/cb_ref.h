/* common/cb_ref.h - a reference to a value kept as an object in storage, in
 * place of the value inside a result or an output:
 *   {"$cb_ref": "s3://bucket/key", "size": N, "sha256": "<hex>"}
 * (adapters/spill.h writes them for outputs, the engine for a large result).
 * An object with other members is not a reference. Pure; thread-safe. */
#ifndef CB_REF_H
#define CB_REF_H
#include <jansson.h>
#include <stdint.h>

typedef struct cb_ref {
    const char *url;    /* borrowed from the value */
    int64_t size;       /* -1 when absent */
    const char *sha256; /* NULL when absent */
} cb_ref;

/* 1 and *out filled when v is a reference, else 0. */
int cb_ref_parse(const json_t *v, cb_ref *out);

#endif /* CB_REF_H */
