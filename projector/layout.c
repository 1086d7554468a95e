/* projector/layout.c - keys and records of the store (see layout.h). */
#include "layout.h"
#include "cb_json.h"
#include "cb_digest.h"

#include <stdio.h>
#include <string.h>

size_t cb_layout_task_key(const char *job, size_t klen, uint32_t idx, unsigned char *buf)
{
    memcpy(buf, job, klen);
    buf[klen] = '\0';
    buf[klen + 1] = (unsigned char)(idx >> 24);
    buf[klen + 2] = (unsigned char)(idx >> 16);
    buf[klen + 3] = (unsigned char)(idx >> 8);
    buf[klen + 4] = (unsigned char)idx;
    return klen + 5;
}

uint32_t cb_layout_task_index(const unsigned char *k, size_t plen)
{
    return (uint32_t)k[plen] << 24 | (uint32_t)k[plen + 1] << 16 | (uint32_t)k[plen + 2] << 8 |
           k[plen + 3];
}

cb_status cb_layout_load_json(cb_txn *t, cb_db db, const void *key, size_t klen, json_t **out)
{
    const void *val;
    size_t vlen;
    json_error_t je;
    cb_status s = cb_store_get(t, db, key, klen, &val, &vlen);
    if (s != CB_OK)
        return s;
    *out = cb_json_loadb(val, vlen, 0, &je, &s);
    return s == CB_EINVAL ? CB_EIO : s;
}

/* Whether a task is open: not yet succeeded or skipped (see store.h). */
bool cb_layout_task_open(cb_task_status s)
{
    return s != CB_TASK_PENDING && s != CB_TASK_SUCCEEDED && s != CB_TASK_SKIPPED;
}

size_t cb_layout_cost_key(const char *kind, const char *name, char *buf)
{
    int n = snprintf(buf, CB_COST_KEY_MAX, "%s/%s", kind, name);
    return n > 0 && n < CB_COST_KEY_MAX ? (size_t)n : 0;
}

size_t cb_layout_memo_key(const char *tenant, const char *hex, char *buf)
{
    int n;
    if (!cb_digest_is_hex(hex))
        return 0;
    n = snprintf(buf, CB_MEMO_KEY_MAX, "%s/%s", tenant, hex);
    return n > 0 && n < CB_MEMO_KEY_MAX ? (size_t)n : 0;
}

size_t cb_layout_claim_key(unsigned partition, char *buf)
{
    int n = partition ? snprintf(buf, CB_LAYOUT_POSITION_KEY_MAX, "claim.%u", partition)
                      : snprintf(buf, CB_LAYOUT_POSITION_KEY_MAX, "claim");
    return n > 0 && n < CB_LAYOUT_POSITION_KEY_MAX ? (size_t)n : 0;
}

cb_status cb_layout_load_fence(cb_txn *t, unsigned partition, cb_fence *f)
{
    char key[CB_LAYOUT_POSITION_KEY_MAX];
    size_t klen = cb_layout_claim_key(partition, key), vlen = 0;
    const void *val;
    cb_status s = cb_store_get(t, CB_DB_META, key, klen, &val, &vlen);
    memset(f, 0, sizeof *f);
    if (s == CB_OK && vlen < sizeof f->claim)
        memcpy(f->claim, val, vlen);
    return s == CB_ENOTFOUND ? CB_OK : s;
}

size_t cb_layout_position_key(unsigned partition, char *buf)
{
    int n = partition ? snprintf(buf, CB_LAYOUT_POSITION_KEY_MAX, "applied_seq.%u", partition)
                      : snprintf(buf, CB_LAYOUT_POSITION_KEY_MAX, "applied_seq");
    return n > 0 && n < CB_LAYOUT_POSITION_KEY_MAX ? (size_t)n : 0;
}
