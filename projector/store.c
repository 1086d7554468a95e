/* projector/store.c - LMDB environment, named databases, transactions. */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cb_alloc.h"
#include "cb_log.h"

#define MOD "store"

static const char *const db_names[CB_DB__COUNT] = {"jobs", "tasks", "active", "meta",
                                                   "open", "memo",  "costs"};

struct cb_store {
    MDB_env *env;
    MDB_dbi dbi[CB_DB__COUNT];
    bool missing[CB_DB__COUNT]; /* read-only, and the writer has not made it yet */
    unsigned flags;
};

struct cb_txn {
    cb_store *st;
    MDB_txn *txn;
};

static cb_status from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return CB_OK;
    case MDB_NOTFOUND:
        return CB_ENOTFOUND;
    case ENOMEM:
        return CB_ENOMEM;
    case EINVAL:
        return CB_EINVAL;
    default:
        return CB_EIO;
    }
}

/* Whether data.mdb is shorter than the pages its meta page says it has: the
 * first read of a missing page would kill the process with SIGBUS, so such
 * a store is refused before any page is touched (the meta pages themselves
 * were read by mdb_env_open, with read()). Logs the fix. */
static bool truncated(MDB_env *env, const char *dir)
{
    MDB_envinfo info;
    MDB_stat ms;
    struct stat sb;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &ms) != 0 || stat(path, &sb) != 0)
        return false;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    if ((uint64_t)sb.st_size >= need)
        return false;
    CB_LOG_ERR(MOD,
               "the store %s is damaged: data.mdb has %lld bytes, its pages need %llu "
               "(truncated); stop the stack, move the directory away and rebuild it from the "
               "log: cb replay --rebuild %s",
               dir, (long long)sb.st_size, (unsigned long long)need, dir);
    return true;
}

cb_status cb_store_open(const char *dir, size_t map_bytes, unsigned flags, cb_store **out)
{
    cb_store *st = cb_calloc(1, sizeof *st);
    MDB_txn *txn = NULL;
    unsigned env_flags = MDB_NOTLS; /* readers may live in any thread */
    int rc;

    if (!st)
        return CB_ENOMEM;
    st->flags = flags;
    if (!(flags & CB_STORE_RDONLY) && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        CB_LOG_ERR(MOD, "create %s: %s", dir, strerror(errno));
        cb_free(st);
        return CB_EIO;
    }
    if (flags & CB_STORE_RDONLY)
        env_flags |= MDB_RDONLY;
    if (flags & CB_STORE_NOSYNC)
        env_flags |= MDB_NOSYNC;
    if ((rc = mdb_env_create(&st->env)) != 0)
        goto out_fail;
    if ((rc = mdb_env_set_maxdbs(st->env, CB_DB__COUNT)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, map_bytes ? map_bytes : (size_t)8 << 30)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, 256)) != 0 ||
        (rc = mdb_env_open(st->env, dir, env_flags, 0644)) != 0)
        goto out_close_env;
    if (truncated(st->env, dir)) {
        mdb_env_close(st->env);
        cb_free(st);
        return CB_ECORRUPT;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, flags & CB_STORE_RDONLY ? MDB_RDONLY : 0, &txn)) != 0)
        goto out_close_env;
    for (int i = 0; i < CB_DB__COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], flags & CB_STORE_RDONLY ? 0 : MDB_CREATE, &st->dbi[i]);
        if (rc == MDB_NOTFOUND && (flags & CB_STORE_RDONLY) && i >= CB_DB_MEMO) {
            st->missing[i] = true; /* a store the projector has not opened since */
            rc = 0;
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            goto out_close_env;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto out_close_env;
    *out = st;
    return CB_OK;

out_close_env:
    mdb_env_close(st->env);
out_fail:
    if (rc == EAGAIN) /* LMDB locks its reader slot by pid: another holds this pid */
        CB_LOG_ERR(MOD,
                   "open %s: another process with this pid (%d) uses the store: processes in "
                   "containers that share a store need one pid namespace (docker-compose.yml: "
                   "pid: host; README \"Docker\")",
                   dir, (int)getpid());
    else if (rc != ENOENT && rc != MDB_NOTFOUND)
        CB_LOG_ERR(MOD, "open %s: %s", dir, mdb_strerror(rc));
    cb_free(st);
    return rc == ENOENT || rc == MDB_NOTFOUND ? CB_ENOTFOUND : from_mdb(rc);
}

const char *cb_store_open_error(const char *dir, cb_status s, char *buf, size_t size)
{
    if (s == CB_ECORRUPT)
        snprintf(buf, size,
                 "the store %s is damaged (data.mdb is truncated); stop the stack, move the "
                 "directory away and rebuild it from the log: cb replay --rebuild %s",
                 dir, dir);
    else
        snprintf(buf, size, "cannot open the store %s: %s", dir,
                 s == CB_ENOTFOUND ? "no store there" : cb_strerror(s));
    return buf;
}

void cb_store_close(cb_store *st)
{
    if (!st)
        return;
    mdb_env_close(st->env);
    cb_free(st);
}

cb_status cb_store_begin(cb_store *st, int rdonly, cb_txn **out)
{
    cb_txn *t = cb_calloc(1, sizeof *t);
    int rc;
    if (!t)
        return CB_ENOMEM;
    t->st = st;
    rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn);
    if (rc != 0) {
        cb_free(t);
        return from_mdb(rc);
    }
    *out = t;
    return CB_OK;
}

cb_status cb_store_commit(cb_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    if (rc != 0)
        CB_LOG_ERR(MOD, "commit: %s", mdb_strerror(rc));
    cb_free(t);
    return from_mdb(rc);
}

void cb_store_abort(cb_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    cb_free(t);
}

cb_status cb_store_get(cb_txn *t, cb_db db, const void *key, size_t klen, const void **val,
                       size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = t->st->missing[db] ? MDB_NOTFOUND : mdb_get(t->txn, t->st->dbi[db], &k, &v);
    if (rc != 0)
        return from_mdb(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return CB_OK;
}

cb_status cb_store_put(cb_txn *t, cb_db db, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(t->txn, t->st->dbi[db], &k, &v, 0);
    if (rc != 0)
        CB_LOG_ERR(MOD, "put into %s: %s", db_names[db], mdb_strerror(rc));
    return from_mdb(rc);
}

cb_status cb_store_del(cb_txn *t, cb_db db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(t->txn, t->st->dbi[db], &k, NULL);
    return rc == MDB_NOTFOUND ? CB_OK : from_mdb(rc);
}

cb_status cb_store_scan(cb_txn *t, cb_db db, const void *prefix, size_t plen, cb_store_scan_fn *fn,
                        void *arg)
{
    return cb_store_scan_from(t, db, prefix, plen, NULL, 0, fn, arg);
}

cb_status cb_store_scan_from(cb_txn *t, cb_db db, const void *prefix, size_t plen, const void *from,
                             size_t flen, cb_store_scan_fn *fn, void *arg)
{
    MDB_cursor *c;
    MDB_val k = {plen, (void *)prefix}, v;
    int rc;
    if (t->st->missing[db])
        return CB_OK;
    rc = mdb_cursor_open(t->txn, t->st->dbi[db], &c);
    if (rc != 0)
        return from_mdb(rc);
    if (flen) { /* the later of the prefix and `from` */
        size_t m = flen < plen ? flen : plen;
        int cmp = memcmp(from, prefix, m);
        if (cmp > 0 || (cmp == 0 && flen >= plen))
            k = (MDB_val){flen, (void *)from};
    }
    rc = mdb_cursor_get(c, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        if (fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg) != 0)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? CB_OK : from_mdb(rc);
}
