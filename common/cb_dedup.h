/* common/cb_dedup.h - a bounded set of recently seen ids (the most recent
 * `capacity` ones), for de-duplicating at-least-once deliveries by their
 * de-duplication id. Ids are hashed to 64 bits: a false "seen" needs a 64-bit
 * collision among `capacity` ids (~capacity^2 / 2^65). Not thread-safe. */
#ifndef CB_DEDUP_H
#define CB_DEDUP_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

typedef struct cb_dedup cb_dedup;

/* On CB_OK *out is owned: release with cb_dedup_destroy(). Errors: CB_EINVAL
 * (capacity 0), CB_ENOMEM. */
CB_NODISCARD cb_status cb_dedup_create(size_t capacity, cb_dedup **out);
void cb_dedup_destroy(cb_dedup *d); /* accepts NULL */
/* Record `id` (len bytes). Returns 1 if it was already among the recent ids,
 * 0 if new (it is remembered, evicting the oldest when full), -1 on ENOMEM. */
int cb_dedup_check(cb_dedup *d, const void *id, size_t len);

#endif /* CB_DEDUP_H */
