/* common/cb_storage_int.h - what cb_storage.c and its drivers
 * (cb_storage_file.c, cb_storage_s3.c) share; not for other modules.
 * http(s):// URLs (head and get only) go to the "web" driver of
 * cb_storage_s3.c (unsigned requests, same retries), made on first use.
 *
 * cb_storage.c checks a call's names and builds a cb_storage_call; the
 * driver's start() owns it from then on and ends it with
 * cb_storage_call_done() (the callback runs, the call is freed); release()
 * ends the calls in flight the same way (CB_ECLOSED). */
#ifndef CB_STORAGE_INT_H
#define CB_STORAGE_INT_H
#include "cb_storage.h"

typedef enum cb_storage_op {
    CB_ST_LIST,
    CB_ST_HEAD,
    CB_ST_GET,
    CB_ST_PUT,
    CB_ST_DELETE,
    CB_ST_MKBUCKET,
} cb_storage_op;

typedef struct cb_storage_call {
    cb_storage_op op;
    char bucket[CB_STORAGE_BUCKET_MAX];
    char key[CB_STORAGE_KEY_MAX + 1]; /* list: the prefix */
    char *url;                        /* web: the http(s) URL (owned); bucket and key "" */
    char *token;                      /* list: where to go on, or NULL */
    size_t max_keys;                  /* list */
    uint64_t start, end;              /* get */
    char *data;                       /* put: owned copy */
    size_t len;
    cb_storage_cb *cb;
    void *ctx;
} cb_storage_call;

typedef struct cb_storage_driver {
    const char *name;
    /* Take the call (always: on failure end it with cb_storage_call_done). */
    void (*start)(void *drv, cb_storage_call *c);
    /* End every call in flight (its callback runs: CB_ECLOSED, or a result
     * already there), free drv. */
    void (*release)(void *drv);
} cb_storage_driver;

/* Driver constructors (their configuration checks name the field). */
CB_NODISCARD cb_status cb_storage_file_new(struct event_base *base, const char *root, void **drv,
                                           char *err, size_t errlen);
CB_NODISCARD cb_status cb_storage_s3_new(struct event_base *base, const json_t *conf, void **drv,
                                         char *err, size_t errlen);
/* http(s) URLs read anonymously; conf gives ca_file, verify, timeout_ms. */
CB_NODISCARD cb_status cb_storage_web_new(struct event_base *base, const json_t *conf, void **drv,
                                          char *err, size_t errlen);
extern const cb_storage_driver cb_storage_file_driver, cb_storage_s3_driver, cb_storage_web_driver;

/* Run the call's callback with r (r->status and, on failure, r->error set by
 * the driver; the object's URL is put in front of the error here) and free
 * the call. */
void cb_storage_call_done(cb_storage_call *c, cb_storage_res *r);
/* A failure in one step: status and a printf message. */
void cb_storage_call_fail(cb_storage_call *c, cb_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Free without calling back (after cb_storage_call_done's callback). */
void cb_storage_call_drop(cb_storage_call *c);

#endif /* CB_STORAGE_INT_H */
