/* common/cb_sigv4.c - AWS Signature Version 4 (see cb_sigv4.h). */
#include "cb_sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_digest.h"
#include "cb_url.h"

/* ---- canonical parts ---------------------------------------------------------- */

typedef struct param {
    cb_buf k, v; /* encoded */
} param;

static int by_param(const void *a, const void *b)
{
    const param *x = a, *y = b;
    int c = strcmp(x->k.p ? x->k.p : "", y->k.p ? y->k.p : "");
    return c ? c : strcmp(x->v.p ? x->v.p : "", y->v.p ? y->v.p : "");
}

static void copy(cb_buf *b, const char *s, size_t n, int keep_slash)
{
    (void)keep_slash;
    cb_buf_add(b, s, n);
}

static void canonical_query(cb_buf *b, const char *q, int encoded)
{
    void (*enc)(cb_buf *, const char *, size_t, int) = encoded ? copy : cb_url_encode_buf;
    size_t n = 0, i = 0;
    param *ps;
    if (!q || !*q)
        return;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    if (!(ps = cb_calloc(n + 1, sizeof *ps))) {
        b->failed = 1;
        return;
    }
    for (const char *p = q; *p; i++) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        enc(&ps[i].k, p, klen, 0);
        cb_buf_add(&ps[i].k, "", 0);
        if (eq)
            enc(&ps[i].v, eq + 1, len - klen - 1, 0);
        cb_buf_add(&ps[i].v, "", 0);
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(ps, i, sizeof *ps, by_param);
    for (size_t k = 0; k < i; k++) {
        if (k)
            cb_buf_add(b, "&", 1);
        cb_buf_adds(b, ps[k].k.p ? ps[k].k.p : "");
        cb_buf_add(b, "=", 1);
        cb_buf_adds(b, ps[k].v.p ? ps[k].v.p : "");
        b->failed |= ps[k].k.failed | ps[k].v.failed;
        free(ps[k].k.p);
        free(ps[k].v.p);
    }
    free(ps);
}

typedef struct hdr {
    char *name; /* lowercased copy */
    const char *value;
} hdr;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const hdr *)a)->name, ((const hdr *)b)->name);
}

/* The value trimmed, inner runs of spaces as one. */
static void trimmed(cb_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        if ((v[i] == ' ' || v[i] == '\t') && i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
            continue;
        cb_buf_add(b, v[i] == '\t' ? " " : v + i, 1);
    }
}

/* Canonical headers and the signed header list; -1 without host/x-amz-date. */
static int canonical_headers(const cb_sigv4_req *r, cb_buf *canon, cb_buf *signed_names)
{
    hdr *hs = cb_calloc(r->nheaders ? r->nheaders : 1, sizeof *hs);
    int host = 0, date = 0;
    if (!hs) {
        canon->failed = 1;
        return 0;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!(hs[i].name = cb_strdup(r->headers[i].name))) {
            canon->failed = 1;
            break;
        }
        for (char *p = hs[i].name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        hs[i].value = r->headers[i].value ? r->headers[i].value : "";
        host |= !strcmp(hs[i].name, "host");
        date |= !strcmp(hs[i].name, "x-amz-date");
    }
    if (!canon->failed)
        qsort(hs, r->nheaders, sizeof *hs, by_name);
    for (size_t i = 0; i < r->nheaders && !canon->failed; i++) {
        cb_buf_adds(canon, hs[i].name);
        cb_buf_add(canon, ":", 1);
        trimmed(canon, hs[i].value);
        cb_buf_add(canon, "\n", 1);
        if (i)
            cb_buf_add(signed_names, ";", 1);
        cb_buf_adds(signed_names, hs[i].name);
    }
    for (size_t i = 0; i < r->nheaders; i++)
        free(hs[i].name);
    free(hs);
    return host && date ? 0 : -1;
}

static int build(const cb_sigv4_req *r, cb_buf *cr, cb_buf *signed_names)
{
    char hash[65];
    cb_buf headers = {0};
    const char *p = r->path && *r->path ? r->path : "/";
    if (!r->method || canonical_headers(r, &headers, signed_names) != 0) {
        free(headers.p);
        return -1;
    }
    cb_buf_adds(cr, r->method);
    cb_buf_add(cr, "\n", 1);
    cb_url_encode_buf(cr, p, strlen(p), 1);
    cb_buf_add(cr, "\n", 1);
    canonical_query(cr, r->query, r->query_encoded);
    cb_buf_add(cr, "\n", 1);
    cb_buf_adds(cr, headers.p ? headers.p : "");
    cb_buf_add(cr, "\n", 1);
    cb_buf_adds(cr, signed_names->p ? signed_names->p : "");
    cb_buf_add(cr, "\n", 1);
    cr->failed |= headers.failed | signed_names->failed;
    free(headers.p);
    if (cb_digest_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hash) != CB_OK)
        cr->failed = 1;
    else
        cb_buf_add(cr, hash, 64);
    return 0;
}

char *cb_sigv4_canonical_request(const cb_sigv4_req *r)
{
    cb_buf cr = {0}, names = {0};
    int rc = build(r, &cr, &names);
    free(names.p);
    if (rc != 0 || cr.failed) {
        free(cr.p);
        return NULL;
    }
    return cr.p;
}

/* ---- signing ------------------------------------------------------------------ */

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n) &&
                   n == 32
               ? 0
               : -1;
}

cb_status cb_sigv4_authorization(const cb_sigv4_req *r, char *out, size_t size)
{
    cb_buf cr = {0}, names = {0}, sts = {0};
    char date[9], scope[256], crhash[65], sig[65], *key0 = NULL;
    unsigned char k[32], mac[32];
    cb_status st = CB_EINVAL;
    int n;

    if (!r->access_key || !r->secret_key || !r->region || !r->service || !r->amz_date ||
        strlen(r->amz_date) != 16 || r->amz_date[8] != 'T')
        return CB_EINVAL;
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    if (build(r, &cr, &names) != 0)
        goto out;
    st = CB_ENOMEM;
    if (cr.failed || cb_digest_hex(cr.p, cr.len, crhash) != CB_OK)
        goto out;
    n = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, r->region, r->service);
    if (n < 0 || (size_t)n >= sizeof scope) {
        st = CB_EINVAL;
        goto out;
    }
    cb_buf_adds(&sts, "AWS4-HMAC-SHA256\n");
    cb_buf_adds(&sts, r->amz_date);
    cb_buf_add(&sts, "\n", 1);
    cb_buf_adds(&sts, scope);
    cb_buf_add(&sts, "\n", 1);
    cb_buf_add(&sts, crhash, 64);
    if (sts.failed || !(key0 = cb_calloc(1, strlen(r->secret_key) + 5)))
        goto out;
    memcpy(key0, "AWS4", 4);
    strcpy(key0 + 4, r->secret_key);
    if (hmac(key0, strlen(key0), date, k) || hmac(k, 32, r->region, k) ||
        hmac(k, 32, r->service, k) || hmac(k, 32, "aws4_request", k) || hmac(k, 32, sts.p, mac)) {
        st = CB_EINVAL;
        goto out;
    }
    for (int i = 0; i < 32; i++)
        snprintf(sig + 2 * i, 3, "%02x", mac[i]);
    n = snprintf(out, size, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 r->access_key, scope, names.p ? names.p : "", sig);
    st = n < 0 || (size_t)n >= size ? CB_ETOOBIG : CB_OK;
out:
    if (key0) {
        memset(key0, 0, strlen(key0));
        free(key0);
    }
    memset(k, 0, sizeof k);
    free(cr.p);
    free(names.p);
    free(sts.p);
    return st;
}
