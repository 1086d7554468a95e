/* common/cb_dedup.c - a hash set plus a ring of insertion order for eviction. */
#include "cb_dedup.h"

#include "cb_alloc.h"
#include "cb_map.h"

struct cb_dedup {
    cb_map set;      /* hash -> (void *)1 */
    uint64_t *ring;  /* insertion order */
    size_t capacity; /* ring size */
    size_t head;     /* next slot to write */
    size_t len;
};

cb_status cb_dedup_create(size_t capacity, cb_dedup **out)
{
    cb_dedup *d;
    if (capacity == 0)
        return CB_EINVAL;
    d = cb_calloc(1, sizeof *d);
    if (!d)
        return CB_ENOMEM;
    d->ring = cb_calloc(capacity, sizeof *d->ring);
    if (!d->ring) {
        cb_free(d);
        return CB_ENOMEM;
    }
    cb_map_init(&d->set);
    d->capacity = capacity;
    *out = d;
    return CB_OK;
}

void cb_dedup_destroy(cb_dedup *d)
{
    if (!d)
        return;
    cb_map_cleanup(&d->set);
    cb_free(d->ring);
    cb_free(d);
}

int cb_dedup_check(cb_dedup *d, const void *id, size_t len)
{
    uint64_t h = cb_hash64(id, len);
    if (cb_map_get(&d->set, h))
        return 1;
    if (d->len == d->capacity) {
        cb_map_take(&d->set, d->ring[d->head]); /* forget the oldest */
        d->len--;
    }
    if (cb_map_put(&d->set, h, (void *)1) != CB_OK)
        return -1;
    d->ring[d->head] = h;
    d->head = (d->head + 1) % d->capacity;
    d->len++;
    return 0;
}
