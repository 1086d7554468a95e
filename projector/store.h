/* projector/store.h - the LMDB entity store (the only includer of lmdb.h).
 *
 * Named databases (DESIGN.md): jobs ("tenant/job" -> job JSON), tasks
 * ("tenant/job" NUL be32(index) -> task JSON, so a job's tasks are one cursor
 * range), active ("tenant/job" -> "" for jobs not yet finished), meta
 * ("applied_seq" -> decimal, "format" -> "2") and open (an index, empty values, of
 * tasks not yet succeeded or skipped, keyed like tasks: what a controller
 * visit reads, so its cost follows the tasks in flight, not the job's size). The projector is the
 * only writer; readers in other processes open the same directory read-only.
 *
 * Threading: a cb_store may be shared by threads; a transaction belongs to
 * the thread that began it, and a thread has one transaction at a time. */
#ifndef CB_STORE_H
#define CB_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

typedef struct cb_store cb_store;
typedef struct cb_txn cb_txn;

typedef enum cb_db {
    CB_DB_JOBS = 0,
    CB_DB_TASKS,
    CB_DB_ACTIVE,
    CB_DB_META,
    CB_DB_OPEN,
    CB_DB_MEMO,  /* added after format 2: a reader of an older store finds it empty */
    CB_DB_COSTS, /* the same */
    CB_DB__COUNT
} cb_db;

#define CB_STORE_RDONLY 1u /* open for reading only (other processes' views) */
#define CB_STORE_NOSYNC 2u /* no fsync at commit (rebuilds into a scratch dir) */

/* Open (create if absent unless RDONLY) the store in directory `dir`, with a
 * map of map_bytes (0: 8 GiB; it is address space, not memory). On CB_OK *out
 * is owned: release with cb_store_close(). Errors: CB_ENOTFOUND (RDONLY and
 * absent), CB_ECORRUPT (data.mdb shorter than its pages: refused before any
 * page is read, with the fix logged), CB_EIO. */
CB_NODISCARD cb_status cb_store_open(const char *dir, size_t map_bytes, unsigned flags,
                                     cb_store **out);
/* One line saying why cb_store_open(dir) failed with `s` and, for a damaged
 * store, how to mend it. Returns buf. */
const char *cb_store_open_error(const char *dir, cb_status s, char *buf, size_t size);
void cb_store_close(cb_store *st); /* accepts NULL */

/* Begin a transaction (write unless rdonly). End it with commit or abort. */
CB_NODISCARD cb_status cb_store_begin(cb_store *st, int rdonly, cb_txn **out);
CB_NODISCARD cb_status cb_store_commit(cb_txn *t); /* frees t, also on failure */
void cb_store_abort(cb_txn *t);                    /* accepts NULL */

/* On CB_OK *val is borrowed: valid until the next write in `t` or its end.
 * Errors: CB_ENOTFOUND, CB_EIO. */
CB_NODISCARD cb_status cb_store_get(cb_txn *t, cb_db db, const void *key, size_t klen,
                                    const void **val, size_t *vlen);
/* Errors: CB_EIO (including a full map: raise map_bytes). */
CB_NODISCARD cb_status cb_store_put(cb_txn *t, cb_db db, const void *key, size_t klen,
                                    const void *val, size_t vlen);
/* Deleting an absent key is CB_OK. */
CB_NODISCARD cb_status cb_store_del(cb_txn *t, cb_db db, const void *key, size_t klen);

/* Call fn for each entry whose key starts with prefix (all if plen is 0), in
 * key order. fn returns 0 to go on, non-zero to stop. Key and value are
 * borrowed for the call. */
typedef int cb_store_scan_fn(const void *key, size_t klen, const void *val, size_t vlen, void *arg);
CB_NODISCARD cb_status cb_store_scan(cb_txn *t, cb_db db, const void *prefix, size_t plen,
                                     cb_store_scan_fn *fn, void *arg);
/* The same from the first key >= `from` (flen bytes; 0: the prefix's
 * first): a page of a listing that starts where the last one stopped. */
CB_NODISCARD cb_status cb_store_scan_from(cb_txn *t, cb_db db, const void *prefix, size_t plen,
                                          const void *from, size_t flen, cb_store_scan_fn *fn,
                                          void *arg);

#endif /* CB_STORE_H */
