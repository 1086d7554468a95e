/* common/cb_sigv4.h - AWS Signature Version 4 (HMAC-SHA256 with OpenSSL), for
 * the lambda backend: the Authorization header of one HTTP request.
 *
 *   canonical request = METHOD \n canonical URI \n canonical query \n
 *                       canonical headers \n signed headers \n hex(SHA256(body))
 *   string to sign    = AWS4-HMAC-SHA256 \n amz_date \n scope \n hex(SHA256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 *                       "aws4_request")
 *
 * The canonical URI percent-encodes every byte of each path segment but the
 * unreserved ones (A-Z a-z 0-9 - _ . ~), once; the canonical query sorts the
 * parameters by name, then value, each percent-encoded; header names are
 * lowercased and sorted, values trimmed with inner runs of spaces collapsed.
 * Checked against AWS's published test-suite vectors (tests/test_sigv4.c).
 *
 * Pure: no I/O, no clock (the date is an argument). Thread-safe. */
#ifndef CB_SIGV4_H
#define CB_SIGV4_H
#include <stddef.h>

#include "cb_status.h"

typedef struct cb_sigv4_header {
    const char *name, *value;
} cb_sigv4_header;

typedef struct cb_sigv4_req {
    const char *method;             /* "POST" */
    const char *path;               /* not encoded: "/2015-03-31/functions/f/invocations" */
    const char *query;              /* not encoded "a=1&b=2", or NULL */
    int query_encoded;              /* 1: query is already percent-encoded as cb_url_encode
                                     * does (so a value may hold '&' or '='): sorted, not
                                     * encoded again */
    const cb_sigv4_header *headers; /* every header to sign; must hold host and x-amz-date */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *access_key, *secret_key;
    const char *region, *service; /* "us-east-1", "lambda" */
    const char *amz_date;         /* "20150830T123600Z": the x-amz-date header's value */
} cb_sigv4_req;

/* The Authorization header's value into out. Errors: CB_EINVAL (a field
 * missing, a malformed date, no host or x-amz-date header), CB_ETOOBIG (out
 * too small), CB_ENOMEM. */
CB_NODISCARD cb_status cb_sigv4_authorization(const cb_sigv4_req *r, char *out, size_t size);

/* The canonical request (for tests and debugging). New string: free(). */
char *cb_sigv4_canonical_request(const cb_sigv4_req *r);

#endif /* CB_SIGV4_H */
