/* common/cb_s3xml.c - ListBucketResult and Error documents (cb_s3xml.h). */
#include "cb_s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

typedef struct span {
    const char *a, *b; /* [a, b) */
} span;

/* Skip what is not an element tag at p ("<!--", "<![CDATA[", "<?", "<!").
 * Returns the first byte after it, or NULL when p starts an element tag. */
static const char *skip_special(const char *p, const char *end)
{
    static const struct {
        const char *open, *close;
    } sp[] = {{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}, {"<!", ">"}};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        size_t ol = strlen(sp[i].open), cl = strlen(sp[i].close);
        if ((size_t)(end - p) >= ol && memcmp(p, sp[i].open, ol) == 0) {
            for (const char *q = p + ol; q + cl <= end; q++)
                if (memcmp(q, sp[i].close, cl) == 0)
                    return q + cl;
            return end;
        }
    }
    return NULL;
}

static int name_ends(char c)
{
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first element `name` in [from, end): its content in *in (empty for
 * <name/>) and the first byte after it in *after. 0, or -1 when absent or
 * unclosed. */
static int find_elem(const char *from, const char *end, const char *name, span *in,
                     const char **after)
{
    size_t nl = strlen(name);
    const char *p = from;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p)), *skip, *gt;
        if (!lt)
            return -1;
        if ((skip = skip_special(lt, end))) {
            p = skip;
            continue;
        }
        p = lt + 1;
        if ((size_t)(end - p) <= nl || memcmp(p, name, nl) != 0 || !name_ends(p[nl]))
            continue;
        if (!(gt = memchr(p, '>', (size_t)(end - p))))
            return -1;
        if (gt[-1] == '/') { /* <name/> */
            in->a = in->b = gt + 1;
            *after = gt + 1;
            return 0;
        }
        in->a = gt + 1;
        for (const char *q = in->a; q < end; q++) {
            if (*q != '<')
                continue;
            if ((skip = skip_special(q, end))) {
                q = skip - 1;
                continue;
            }
            if ((size_t)(end - q) >= nl + 3 && q[1] == '/' && memcmp(q + 2, name, nl) == 0 &&
                (q[2 + nl] == '>' || q[2 + nl] == ' ')) {
                const char *c = memchr(q, '>', (size_t)(end - q));
                if (!c)
                    return -1;
                in->b = q;
                *after = c + 1;
                return 0;
            }
        }
        return -1;
    }
    return -1;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One entity at p ('&'), decoded into o (at most 4 bytes). Returns the bytes
 * of input it took, or 0 when it is not one we know (then '&' stays). */
static size_t entity(const char *p, const char *end, char *o, size_t *olen)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t l = strlen(named[i].name);
        if ((size_t)(end - p) >= l && memcmp(p, named[i].name, l) == 0) {
            o[0] = named[i].c;
            *olen = 1;
            return l;
        }
    }
    if (end - p >= 4 && p[1] == '#') {
        int hex = p[2] == 'x' || p[2] == 'X';
        const char *q = p + 2 + hex;
        unsigned long cp = 0;
        size_t digits = 0;
        for (; q < end && digits < 8; q++, digits++) {
            int d;
            if (*q >= '0' && *q <= '9')
                d = *q - '0';
            else if (hex && *q >= 'a' && *q <= 'f')
                d = *q - 'a' + 10;
            else if (hex && *q >= 'A' && *q <= 'F')
                d = *q - 'A' + 10;
            else
                break;
            cp = cp * (hex ? 16 : 10) + (unsigned long)d;
        }
        if (digits == 0 || q >= end || *q != ';' || cp == 0 || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        *olen = put_utf8(o, cp);
        return (size_t)(q + 1 - p);
    }
    return 0;
}

/* The unescaped text of s into out (size > 0; cut to fit). */
static void text_into(span s, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = s.a; p < s.b && n + 1 < size;) {
        char e[4];
        size_t el = 0, took = *p == '&' ? entity(p, s.b, e, &el) : 0;
        if (took) {
            if (n + el + 1 > size)
                break;
            memcpy(out + n, e, el);
            n += el;
            p += took;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

/* The unescaped text of s as a new string, or NULL (out of memory). */
static char *text_dup(span s)
{
    size_t size = (size_t)(s.b - s.a) + 1; /* unescaping never lengthens */
    char *out = cb_malloc(size);
    if (out)
        text_into(s, out, size);
    return out;
}

static int parse_u64(span s, uint64_t *v)
{
    uint64_t x = 0;
    while (s.a < s.b && (*s.a == ' ' || *s.a == '\n' || *s.a == '\r' || *s.a == '\t'))
        s.a++;
    if (s.a == s.b)
        return -1;
    for (const char *p = s.a; p < s.b; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *v = x;
    return 0;
}

void cb_s3_list_cleanup(cb_s3_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].etag);
    }
    free(l->v);
    free(l->next_token);
    memset(l, 0, sizeof *l);
}

static cb_status add_entry(cb_s3_list *l, size_t *cap, span body, char *err, size_t errlen)
{
    span key, size, etag;
    const char *after;
    cb_s3_entry *e;
    if (find_elem(body.a, body.b, "Key", &key, &after) != 0) {
        snprintf(err, errlen, "a Contents entry without a Key");
        return CB_EPROTO;
    }
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        cb_s3_entry *v = cb_realloc(l->v, nc * sizeof *v);
        if (!v)
            return CB_ENOMEM;
        l->v = v;
        *cap = nc;
    }
    e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    if (find_elem(body.a, body.b, "Size", &size, &after) != 0 || parse_u64(size, &e->size) != 0) {
        snprintf(err, errlen, "a Contents entry without a Size that is a number");
        return CB_EPROTO;
    }
    if (find_elem(body.a, body.b, "ETag", &etag, &after) != 0)
        etag.a = etag.b = body.a;
    if (!(e->key = text_dup(key)) || !(e->etag = text_dup(etag))) {
        free(e->key);
        free(e->etag);
        return CB_ENOMEM;
    }
    if (e->etag[0] == '"') { /* "\"abc\"" -> "abc" */
        size_t n = strlen(e->etag);
        memmove(e->etag, e->etag + 1, n);
        if (n >= 2 && e->etag[n - 2] == '"')
            e->etag[n - 2] = '\0';
    }
    l->n++;
    return CB_OK;
}

cb_status cb_s3xml_list(const char *xml, size_t len, cb_s3_list *out, char *err, size_t errlen)
{
    const char *end = xml + len, *after, *p;
    span root, c, t;
    size_t cap = 0;
    cb_status s = CB_OK;
    memset(out, 0, sizeof *out);
    if (find_elem(xml, end, "ListBucketResult", &root, &after) != 0) {
        snprintf(err, errlen, "not a ListBucketResult document");
        return CB_EPROTO;
    }
    for (p = root.a; s == CB_OK && find_elem(p, root.b, "Contents", &c, &after) == 0; p = after)
        s = add_entry(out, &cap, c, err, errlen);
    if (s != CB_OK) {
        cb_s3_list_cleanup(out);
        return s;
    }
    /* The page's own fields are outside every Contents: look after the last
     * one and before the first (S3 puts them first, others last). */
    for (int pass = 0; pass < 2; pass++) {
        span area = {pass ? p : root.a, root.b};
        if (!pass && find_elem(root.a, root.b, "Contents", &c, &after) == 0)
            area.b = c.a;
        if (find_elem(area.a, area.b, "IsTruncated", &t, &after) == 0) {
            char v[8];
            text_into(t, v, sizeof v);
            out->truncated |= strcmp(v, "true") == 0;
        }
        if (!out->next_token &&
            find_elem(area.a, area.b, "NextContinuationToken", &t, &after) == 0 &&
            !(out->next_token = text_dup(t))) {
            cb_s3_list_cleanup(out);
            return CB_ENOMEM;
        }
    }
    if (out->truncated && (!out->next_token || !*out->next_token)) {
        snprintf(err, errlen, "a truncated page without a NextContinuationToken");
        cb_s3_list_cleanup(out);
        return CB_EPROTO;
    }
    return CB_OK;
}

int cb_s3xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg,
                   size_t msg_len)
{
    const char *end = xml + len, *after;
    span root, t;
    if (code_len)
        code[0] = '\0';
    if (msg_len)
        msg[0] = '\0';
    if (find_elem(xml, end, "Error", &root, &after) != 0)
        return -1;
    if (code_len && find_elem(root.a, root.b, "Code", &t, &after) == 0)
        text_into(t, code, code_len);
    if (msg_len && find_elem(root.a, root.b, "Message", &t, &after) == 0)
        text_into(t, msg, msg_len);
    return 0;
}
