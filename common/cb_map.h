/* common/cb_map.h - an open-addressing hash map from uint64_t keys (ids,
 * tokens, pointers cast to uintptr_t) to borrowed void * values.
 * Not thread-safe: one owner, or the owner's lock. */
#ifndef CB_MAP_H
#define CB_MAP_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

typedef struct cb_map {
    uint64_t *keys;
    void **vals; /* NULL marks an empty slot: values must not be NULL */
    size_t cap;  /* power of two, or 0 before the first put */
    size_t len;
} cb_map;

void cb_map_init(cb_map *m);
void cb_map_cleanup(cb_map *m); /* frees the table, not the values */
/* Insert or replace. Errors: CB_EINVAL (val NULL), CB_ENOMEM. */
CB_NODISCARD cb_status cb_map_put(cb_map *m, uint64_t key, void *val);
/* The value for key, or NULL. */
void *cb_map_get(const cb_map *m, uint64_t key);
/* Remove key and return its value, or NULL if absent. */
void *cb_map_take(cb_map *m, uint64_t key);
/* Call fn for every entry (order unspecified). fn must not modify the map. */
void cb_map_each(const cb_map *m, void (*fn)(uint64_t key, void *val, void *arg), void *arg);

/* 64-bit FNV-1a hash of the bytes, with a final mix: the keys of string-
 * named entries (jobs, ids). */
uint64_t cb_hash64(const void *data, size_t len);

#endif /* CB_MAP_H */
