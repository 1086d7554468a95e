/* common/cb_map.c - linear probing with backward-shift deletion. */
#include "cb_map.h"

#include "cb_alloc.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33; /* murmur3 finalizer: pointers and counters spread well */
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void cb_map_init(cb_map *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}

void cb_map_cleanup(cb_map *m)
{
    cb_free(m->keys);
    cb_free(m->vals);
    cb_map_init(m);
}

static cb_status grow(cb_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    uint64_t *nk = cb_calloc(ncap, sizeof *nk);
    void **nv = cb_calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        cb_free(nk);
        cb_free(nv);
        return CB_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        size_t j = slot_of(m->keys[i], ncap);
        while (nv[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    cb_free(m->keys);
    cb_free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return CB_OK;
}

cb_status cb_map_put(cb_map *m, uint64_t key, void *val)
{
    if (!val)
        return CB_EINVAL;
    if ((m->len + 1) * 4 > m->cap * 3) { /* keep load under 3/4 */
        cb_status s = grow(m);
        if (s != CB_OK)
            return s;
    }
    size_t i = slot_of(key, m->cap);
    while (m->vals[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->vals[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
    return CB_OK;
}

void *cb_map_get(const cb_map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(key, m->cap); m->vals[i]; i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == key)
            return m->vals[i];
    return NULL;
}

void *cb_map_take(cb_map *m, uint64_t key)
{
    size_t i, j, mask = m->cap - 1;
    void *val;

    if (!m->cap)
        return NULL;
    for (i = slot_of(key, m->cap); m->vals[i]; i = (i + 1) & mask)
        if (m->keys[i] == key)
            break;
    if (!m->vals[i])
        return NULL;
    val = m->vals[i];
    m->vals[i] = NULL;
    m->len--;
    /* Shift later members of the probe run back so lookups never stop early. */
    for (j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* Move j to i if its home is not cyclically within (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return val;
}

void cb_map_each(const cb_map *m, void (*fn)(uint64_t key, void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i])
            fn(m->keys[i], m->vals[i], arg);
}

uint64_t cb_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}
