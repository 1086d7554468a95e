/* common/cb_sigv4.c - AWS Signature Version 4 (see cb_sigv4.h). */
#include "cb_sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_digest.h"

/* ---- a growing string --------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = cb_realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encode n bytes of s; keep '/' when keep_slash. */
static void encode(sbuf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

/* ---- canonical parts ---------------------------------------------------------- */

typedef struct param {
    sbuf k, v; /* encoded */
} param;

static int by_param(const void *a, const void *b)
{
    const param *x = a, *y = b;
    int c = strcmp(x->k.s ? x->k.s : "", y->k.s ? y->k.s : "");
    return c ? c : strcmp(x->v.s ? x->v.s : "", y->v.s ? y->v.s : "");
}

static void copy(sbuf *b, const char *s, size_t n, int keep_slash)
{
    (void)keep_slash;
    put(b, s, n);
}

size_t cb_sigv4_encode(const char *s, int keep_slash, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += unreserved(*p) || (keep_slash && *p == '/') ? 1 : 3;
    if (size == 0)
        return n;
    if (n >= size) {
        out[0] = '\0';
        return n;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *out++ = (char)*p;
        } else {
            *out++ = '%';
            *out++ = hex[*p >> 4];
            *out++ = hex[*p & 15];
        }
    }
    *out = '\0';
    return n;
}

static void canonical_query(sbuf *b, const char *q, int encoded)
{
    void (*enc)(sbuf *, const char *, size_t, int) = encoded ? copy : encode;
    size_t n = 0, i = 0;
    param *ps;
    if (!q || !*q)
        return;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    if (!(ps = cb_calloc(n + 1, sizeof *ps))) {
        b->oom = 1;
        return;
    }
    for (const char *p = q; *p; i++) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        enc(&ps[i].k, p, klen, 0);
        put(&ps[i].k, "", 0);
        if (eq)
            enc(&ps[i].v, eq + 1, len - klen - 1, 0);
        put(&ps[i].v, "", 0);
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(ps, i, sizeof *ps, by_param);
    for (size_t k = 0; k < i; k++) {
        if (k)
            put(b, "&", 1);
        puts_(b, ps[k].k.s ? ps[k].k.s : "");
        put(b, "=", 1);
        puts_(b, ps[k].v.s ? ps[k].v.s : "");
        b->oom |= ps[k].k.oom | ps[k].v.oom;
        free(ps[k].k.s);
        free(ps[k].v.s);
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
static void trimmed(sbuf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        if ((v[i] == ' ' || v[i] == '\t') && i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
            continue;
        put(b, v[i] == '\t' ? " " : v + i, 1);
    }
}

/* Canonical headers and the signed header list; -1 without host/x-amz-date. */
static int canonical_headers(const cb_sigv4_req *r, sbuf *canon, sbuf *signed_names)
{
    hdr *hs = cb_calloc(r->nheaders ? r->nheaders : 1, sizeof *hs);
    int host = 0, date = 0;
    if (!hs) {
        canon->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!(hs[i].name = cb_strdup(r->headers[i].name))) {
            canon->oom = 1;
            break;
        }
        for (char *p = hs[i].name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        hs[i].value = r->headers[i].value ? r->headers[i].value : "";
        host |= !strcmp(hs[i].name, "host");
        date |= !strcmp(hs[i].name, "x-amz-date");
    }
    if (!canon->oom)
        qsort(hs, r->nheaders, sizeof *hs, by_name);
    for (size_t i = 0; i < r->nheaders && !canon->oom; i++) {
        puts_(canon, hs[i].name);
        put(canon, ":", 1);
        trimmed(canon, hs[i].value);
        put(canon, "\n", 1);
        if (i)
            put(signed_names, ";", 1);
        puts_(signed_names, hs[i].name);
    }
    for (size_t i = 0; i < r->nheaders; i++)
        free(hs[i].name);
    free(hs);
    return host && date ? 0 : -1;
}

static int build(const cb_sigv4_req *r, sbuf *cr, sbuf *signed_names)
{
    char hash[65];
    sbuf headers = {0};
    const char *p = r->path && *r->path ? r->path : "/";
    if (!r->method || canonical_headers(r, &headers, signed_names) != 0) {
        free(headers.s);
        return -1;
    }
    puts_(cr, r->method);
    put(cr, "\n", 1);
    encode(cr, p, strlen(p), 1);
    put(cr, "\n", 1);
    canonical_query(cr, r->query, r->query_encoded);
    put(cr, "\n", 1);
    puts_(cr, headers.s ? headers.s : "");
    put(cr, "\n", 1);
    puts_(cr, signed_names->s ? signed_names->s : "");
    put(cr, "\n", 1);
    cr->oom |= headers.oom | signed_names->oom;
    free(headers.s);
    if (cb_digest_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hash) != CB_OK)
        cr->oom = 1;
    else
        put(cr, hash, 64);
    return 0;
}

char *cb_sigv4_canonical_request(const cb_sigv4_req *r)
{
    sbuf cr = {0}, names = {0};
    int rc = build(r, &cr, &names);
    free(names.s);
    if (rc != 0 || cr.oom) {
        free(cr.s);
        return NULL;
    }
    return cr.s;
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
    sbuf cr = {0}, names = {0}, sts = {0};
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
    if (cr.oom || cb_digest_hex(cr.s, cr.len, crhash) != CB_OK)
        goto out;
    n = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, r->region, r->service);
    if (n < 0 || (size_t)n >= sizeof scope) {
        st = CB_EINVAL;
        goto out;
    }
    puts_(&sts, "AWS4-HMAC-SHA256\n");
    puts_(&sts, r->amz_date);
    put(&sts, "\n", 1);
    puts_(&sts, scope);
    put(&sts, "\n", 1);
    put(&sts, crhash, 64);
    if (sts.oom || !(key0 = cb_calloc(1, strlen(r->secret_key) + 5)))
        goto out;
    memcpy(key0, "AWS4", 4);
    strcpy(key0 + 4, r->secret_key);
    if (hmac(key0, strlen(key0), date, k) || hmac(k, 32, r->region, k) ||
        hmac(k, 32, r->service, k) || hmac(k, 32, "aws4_request", k) || hmac(k, 32, sts.s, mac)) {
        st = CB_EINVAL;
        goto out;
    }
    for (int i = 0; i < 32; i++)
        snprintf(sig + 2 * i, 3, "%02x", mac[i]);
    n = snprintf(out, size, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 r->access_key, scope, names.s ? names.s : "", sig);
    st = n < 0 || (size_t)n >= size ? CB_ETOOBIG : CB_OK;
out:
    if (key0) {
        memset(key0, 0, strlen(key0));
        free(key0);
    }
    memset(k, 0, sizeof k);
    free(cr.s);
    free(names.s);
    free(sts.s);
    return st;
}
