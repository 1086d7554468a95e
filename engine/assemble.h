/* engine/assemble.h - a finished job's result put together from its task
 * records in the store: for a result too large for the done message when no
 * storage held it as one object (its done message then carries a cb://
 * reference). The same pure code as the engine's end (result.h) over the
 * store's records. For `cb result` and cb-api.
 *
 * Thread-safe (a store read transaction; no shared state). */
#ifndef CB_ASSEMBLE_H
#define CB_ASSEMBLE_H
#include <jansson.h>
#include <stddef.h>

#include "fold.h"
#include "store.h"

/* The result of job `key` ("tenant/job", state js), a new reference, or
 * NULL with err saying why (a descriptor that does not build, a store that
 * cannot be read, out of memory). */
json_t *cb_result_assemble(cb_store *st, const char *key, const cb_job_state *js, char *err,
                           size_t errlen);

#endif /* CB_ASSEMBLE_H */
