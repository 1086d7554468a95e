/* common/cb_url.c - percent-encoding, broker URLs and their credentials
 * (see cb_url.h). */
#include "cb_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hex[] = "0123456789ABCDEF";

static int kept(unsigned char c, int keep_slash)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
}

size_t cb_url_encode(const char *s, int keep_slash, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += kept(*p, keep_slash) ? 1 : 3;
    if (size == 0)
        return n;
    if (n >= size) {
        out[0] = '\0';
        return n;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (kept(*p, keep_slash)) {
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

void cb_url_encode_buf(cb_buf *b, const char *s, size_t n, int keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (kept(c, keep_slash)) {
            cb_buf_add(b, s + i, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            cb_buf_add(b, e, 3);
        }
    }
}

/* Walk the URLs of a list: for each, where its userinfo is ([ui, at) with
 * `colon` at the ':' before the password, or NULL). */
typedef void url_part_fn(const char *start, const char *end, const char *ui, const char *colon,
                         const char *at, void *arg);

static void each_url(const char *list, url_part_fn *fn, void *arg)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        const char *scheme, *ui = NULL, *at = NULL, *colon = NULL;
        if (!end)
            end = p + strlen(p);
        scheme = strstr(p, "://");
        if (scheme && scheme < end) {
            ui = scheme + 3;
            for (const char *q = ui; q < end && *q != '/'; q++)
                if (*q == '@')
                    at = q; /* the last '@' before the path ends the userinfo */
            if (at)
                for (const char *q = ui; q < at; q++)
                    if (*q == ':') {
                        colon = q;
                        break;
                    }
        }
        fn(p, end, at ? ui : NULL, colon, at, arg);
        p = *end ? end + 1 : end;
    }
}

typedef struct builder {
    char *out;
    size_t size, len;
    int overflow;
    const char *insert; /* with_password: the password for "user@" */
    char *pass;         /* split: the first password found */
    size_t pass_size;
    int redact;
} builder;

static void put(builder *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->size) {
        b->overflow = 1;
        n = b->len + 1 < b->size ? b->size - b->len - 1 : 0;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
    b->out[b->len] = '\0';
}

static void rebuild(const char *start, const char *end, const char *ui, const char *colon,
                    const char *at, void *arg)
{
    builder *b = arg;
    if (b->len > 0)
        put(b, ",", 1);
    if (!ui) {
        put(b, start, (size_t)(end - start));
        return;
    }
    if (colon) {
        put(b, start, (size_t)(colon - start)); /* through the user */
        if (b->redact)
            put(b, ":***", 4);
        else if (!b->pass) /* with_password: a password the URL has stays */
            put(b, colon, (size_t)(at - colon));
        else if (!b->pass[0] && (size_t)(at - colon - 1) >= b->pass_size)
            b->overflow = 1;
        else if (!b->pass[0]) /* split: the first one is kept aside */
            snprintf(b->pass, b->pass_size, "%.*s", (int)(at - colon - 1), colon + 1);
    } else {
        put(b, start, (size_t)(at - start));
        if (b->insert && *b->insert) {
            put(b, ":", 1);
            put(b, b->insert, strlen(b->insert));
        }
    }
    put(b, at, (size_t)(end - at));
}

const char *cb_url_redact(const char *url, char *buf, size_t size)
{
    builder b = {buf, size, 0, 0, NULL, NULL, 0, 1};
    if (size)
        buf[0] = '\0';
    if (url && size)
        each_url(url, rebuild, &b);
    return buf;
}

static void scrub(const char *start, const char *end, const char *ui, const char *colon,
                  const char *at, void *arg)
{
    (void)start;
    (void)end;
    (void)ui;
    (void)arg;
    if (colon)
        memset((char *)colon + 1, '*', (size_t)(at - colon - 1));
}

const char *cb_url_from_argv(char *arg)
{
    static char copy[2048];
    snprintf(copy, sizeof copy, "%s", arg);
    each_url(arg, scrub, NULL);
    return copy;
}

cb_status cb_url_split_password(const char *url, char *out, size_t size, char *pass,
                                size_t pass_size)
{
    builder b = {out, size, 0, 0, NULL, pass, pass_size, 0};
    if (!size || !pass_size)
        return CB_ETOOBIG;
    out[0] = pass[0] = '\0';
    each_url(url, rebuild, &b);
    return b.overflow ? CB_ETOOBIG : CB_OK;
}

/* The password from the environment, or "" when it gives none. */
static cb_status env_password(char *pass, size_t size)
{
    const char *v = getenv("CB_BROKER_PASSWORD"), *file = getenv("CB_BROKER_PASSWORD_FILE");
    FILE *f;
    pass[0] = '\0';
    if (v && *v) {
        snprintf(pass, size, "%s", v);
        return CB_OK;
    }
    if (!file || !*file)
        return CB_OK;
    if (!(f = fopen(file, "r")))
        return CB_EIO;
    if (!fgets(pass, (int)size, f))
        pass[0] = '\0';
    fclose(f);
    pass[strcspn(pass, "\r\n")] = '\0';
    return CB_OK;
}

cb_status cb_url_with_password(const char *url, char *out, size_t size)
{
    char pass[512];
    cb_status s = env_password(pass, sizeof pass);
    builder b = {out, size, 0, 0, pass, NULL, 0, 0};
    if (s != CB_OK)
        return s;
    if (!size)
        return CB_ETOOBIG;
    out[0] = '\0';
    each_url(url, rebuild, &b);
    return b.overflow ? CB_ETOOBIG : CB_OK;
}
