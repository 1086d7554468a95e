/* common/cb_storage.h - object storage: one asynchronous interface, two
 * drivers (docs/storage.md).
 *
 * Objects are named s3://BUCKET/KEY whichever driver serves them: the
 * configuration decides where they live, so a job runs unchanged on the dev
 * stack and on a cloud.
 *
 *   file  a directory; a bucket is a sub-directory, a key a path under it
 *         ("a/b.csv" is ROOT/BUCKET/a/b.csv). The calls run on a helper
 *         thread (cb_offload), so the loop never waits for the disk. The
 *         etag is a digest of the file's size and modification time, so an
 *         object rewritten in place gets a new one.
 *   s3    any S3-compatible endpoint (AWS S3, IBM COS, Ceph, MinIO, s3rver):
 *         SigV4 (cb_sigv4) on the asynchronous HTTP client (cb_httpc), TLS
 *         verified, path-style or virtual-host addressing, ListObjectsV2.
 *         500/502/503/504 (503 SlowDown) and dropped connections are retried
 *         with exponential backoff (4 attempts; Retry-After honoured).
 *
 * The configuration (the "storage" object of the configuration file,
 * schemas/config.json):
 *
 *   {"driver": "file", "root": "DIR"}
 *   {"driver": "s3", "endpoint": "http://127.0.0.1:4568", "region": "us-east-1",
 *    "addressing": "path" | "virtual", "access_key_id": "...",
 *    "secret_access_key": "...", "session_token": "...", "ca_file": "...",
 *    "verify": true}
 *
 * Both take "list_page": the keys a listing asks for at once (1 to 1000,
 * default 1000); the engine also puts that many objects in one
 * cb.job.partitioned event; "results_bucket" (default "cbcore"): where the
 * adapters write outputs too large for the log; "inline_output_max"
 * (default 65536, at most 524288): the largest output text kept in an
 * event.
 *
 * s3 credentials and region not in the object come from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION (or
 * AWS_DEFAULT_REGION). Without an endpoint it is
 * https://s3.REGION.amazonaws.com with virtual-host addressing; with one,
 * path-style unless told otherwise.
 *
 * Results: every call that started (returned CB_OK) calls its callback
 * exactly once, on the loop, never from inside the call; cb_storage_free
 * ends the calls still in flight by calling theirs from inside it (status
 * CB_ECLOSED, or the file driver's result when it had one), so whoever
 * owns a callback's context frees it there. A failure names the object and says why in
 * the peer's own words ("s3://b/k: SignatureDoesNotMatch: The request
 * signature we calculated does not match ...").
 *
 * Threading: create, call and free on the loop thread that owns `base`
 * (made by cb_loop_new()). */
#ifndef CB_STORAGE_H
#define CB_STORAGE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_storage cb_storage;

#define CB_STORAGE_BUCKET_MAX 64   /* bucket names are 3..63 bytes */
#define CB_STORAGE_KEY_MAX    1024 /* keys are at most 1024 bytes */
#define CB_STORAGE_URL_MAX    (5 + CB_STORAGE_BUCKET_MAX + 1 + CB_STORAGE_KEY_MAX + 1)
/* The largest ranged get or put one call moves (the adapters' and the
 * partitioner's chunks are 64 MiB by default). */
#define CB_STORAGE_IO_MAX    ((size_t)512 << 20)
#define CB_STORAGE_RANGE_END UINT64_MAX /* a get to the end of the object */

typedef struct cb_storage_object {
    const char *key;
    uint64_t size;
    const char *etag;
} cb_storage_object;

typedef struct cb_storage_res {
    /* CB_OK; CB_ENOTFOUND: no such bucket or key; CB_EDENIED: the
     * credentials or the access were refused; CB_EINVAL: a range that starts
     * past the end, a name the driver cannot hold; CB_ETOOBIG: over
     * CB_STORAGE_IO_MAX; CB_EIO: anything else (error says). */
    cb_status status;
    const char *error; /* status != CB_OK: why, naming the object */
    uint64_t size;     /* head and get: the object's whole size; put: bytes written */
    const char *etag;  /* head, get, put (without quotes) */
    const char *data;  /* get: the bytes of the range asked for */
    size_t len;
    const cb_storage_object *objects; /* list: one page, in key order */
    size_t nobjects;
    const char *next; /* list: the token for the next page (the last key), NULL on the last */
} cb_storage_res;

/* Everything in `r` is borrowed for the call. */
typedef void cb_storage_cb(const cb_storage_res *r, void *ctx);

/* A storage from its configuration (NULL: the file driver at default_root).
 * On failure err says which field is wrong. Errors: CB_EINVAL, CB_ENOMEM. */
CB_NODISCARD cb_status cb_storage_new(struct event_base *base, const json_t *conf,
                                      const char *default_root, cb_storage **out, char *err,
                                      size_t errlen);
/* The storage a function's runtime should read, as JSON text for its
 * $CB_STORAGE (adapters/runtimes/cbcore_objects.py): conf as given (the
 * file driver's root made absolute, default_root when it names none), or the
 * file driver at default_root; NULL when there is neither (or out of
 * memory). free() it. */
char *cb_storage_runtime_conf(const json_t *conf, const char *default_root);

/* Calls in flight end now, their callbacks run from inside (see above).
 * Accepts NULL. */
void cb_storage_free(cb_storage *st);
/* The configured "list_page" (1..1000). */
size_t cb_storage_list_page(const cb_storage *st);
/* The configured "results_bucket" and "inline_output_max". */
const char *cb_storage_results_bucket(const cb_storage *st);
size_t cb_storage_inline_max(const cb_storage *st);
/* Make the results bucket when it is missing (at a daemon's start); a
 * failure is logged as `who` (a static string), not returned: the writes
 * that need the bucket fail with their own reason. */
void cb_storage_make_results_bucket(cb_storage *st, const char *who);
/* "file" or "s3". */
const char *cb_storage_driver_name(const cb_storage *st);

/* Split "s3://bucket/key" (the key may be empty when allow_empty_key). 0, or
 * -1 with the reason in err. Pure. */
int cb_storage_parse_url(const char *url, int allow_empty_key, char bucket[CB_STORAGE_BUCKET_MAX],
                         char key[CB_STORAGE_KEY_MAX + 1], char *err, size_t errlen);

/* Whether url is http:// or https://: an object any web server holds,
 * which head and get read too (anonymously, with the configuration's
 * ca_file, verify and timeout_ms; Range requests; the etag is the ETag
 * header, else Last-Modified, else ""). Pure. */
int cb_storage_is_web_url(const char *url);

/* Each starts one call; errors returned here (the callback is then never
 * called): CB_EINVAL (a malformed URL: err says why; an http(s) URL given
 * to a call that writes), CB_ENOMEM. */

/* One page (at most max_keys, 0: 1000) of the keys under prefix in bucket,
 * in key order, after the key `token` (NULL: from the start). A page's
 * `next` is its last key when more follow (S3's start-after): so a reader
 * that kept only the keys it has can go on from the last one. */
CB_NODISCARD cb_status cb_storage_list(cb_storage *st, const char *bucket, const char *prefix,
                                       const char *token, size_t max_keys, cb_storage_cb *cb,
                                       void *ctx, char *err, size_t errlen);
/* Size and etag. */
CB_NODISCARD cb_status cb_storage_head(cb_storage *st, const char *url, cb_storage_cb *cb,
                                       void *ctx, char *err, size_t errlen);
/* Bytes [start, end) (end CB_STORAGE_RANGE_END or past the object: to its
 * end). A start past the end of a non-empty object is CB_EINVAL. */
CB_NODISCARD cb_status cb_storage_get(cb_storage *st, const char *url, uint64_t start, uint64_t end,
                                      cb_storage_cb *cb, void *ctx, char *err, size_t errlen);
/* Write (replace) the object with len bytes of data (copied). The bucket
 * must exist (file: its directory). */
CB_NODISCARD cb_status cb_storage_put(cb_storage *st, const char *url, const void *data, size_t len,
                                      cb_storage_cb *cb, void *ctx, char *err, size_t errlen);
/* Delete the object; deleting one that does not exist is CB_OK (as S3). */
CB_NODISCARD cb_status cb_storage_delete(cb_storage *st, const char *url, cb_storage_cb *cb,
                                         void *ctx, char *err, size_t errlen);

/* Create the bucket (s3: CreateBucket, with the region as its location
 * outside us-east-1; file: its directory). One that exists already and is
 * ours is CB_OK. */
CB_NODISCARD cb_status cb_storage_make_bucket(cb_storage *st, const char *bucket, cb_storage_cb *cb,
                                              void *ctx, char *err, size_t errlen);

#endif /* CB_STORAGE_H */
