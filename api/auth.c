/* api/auth.c - bearer tokens to tenants (see auth.h). */
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cb_alloc.h"
#include "cb_digest.h"

typedef struct entry {
    char sha256[65];
    cb_api_who who;
} entry;

struct cb_api_auth {
    size_t n;
    entry e[];
};

static int is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return i == 64;
}

cb_status cb_api_auth_new(const json_t *tokens, cb_api_auth **out, char *err, size_t errlen)
{
    size_t n = json_array_size(tokens);
    cb_api_auth *a;
    *out = NULL;
    if (tokens && !json_is_array(tokens)) {
        snprintf(err, errlen, "/api/tokens: not an array");
        return CB_EINVAL;
    }
    if (!(a = cb_calloc(1, sizeof *a + n * sizeof a->e[0])))
        return CB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tokens, i);
        const char *hash = json_string_value(json_object_get(t, "sha256"));
        const char *tenant = json_string_value(json_object_get(t, "tenant"));
        const char *role = json_string_value(json_object_get(t, "role"));
        entry *e = &a->e[i];
        if (!hash || !is_hex64(hash)) {
            snprintf(err, errlen, "/api/tokens/%zu/sha256: not 64 lowercase hex digits", i);
            cb_api_auth_free(a);
            return CB_EINVAL;
        }
        if (!!tenant == !!role || (tenant && !cb_name_valid(tenant)) ||
            (role && strcmp(role, "operator") != 0)) {
            snprintf(err, errlen,
                     "/api/tokens/%zu: either \"tenant\" (a name) or \"role\": \"operator\"", i);
            cb_api_auth_free(a);
            return CB_EINVAL;
        }
        memcpy(e->sha256, hash, 65);
        e->who.scope = tenant ? CB_SCOPE_TENANT : CB_SCOPE_ALL;
        if (tenant)
            snprintf(e->who.tenant, sizeof e->who.tenant, "%s", tenant);
    }
    a->n = n;
    *out = a;
    return CB_OK;
}

void cb_api_auth_free(cb_api_auth *a)
{
    cb_free(a);
}

int cb_api_auth_open(const cb_api_auth *a)
{
    return !a || a->n == 0;
}

/* Equal without telling where they differ (no early exit). */
static int same64(const char *x, const char *y)
{
    unsigned char d = 0;
    for (int i = 0; i < 64; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}

void cb_api_auth_check(const cb_api_auth *a, const char *authorization, cb_api_who *out)
{
    char hex[65];
    const char *token;
    int found = -1;
    memset(out, 0, sizeof *out);
    if (cb_api_auth_open(a)) {
        out->scope = CB_SCOPE_ALL;
        return;
    }
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return;
    for (token = authorization + 7; *token == ' '; token++)
        ;
    if (!*token || cb_digest_hex(token, strlen(token), hex) != CB_OK)
        return;
    for (size_t i = 0; i < a->n; i++) /* every entry, whichever matches */
        if (same64(hex, a->e[i].sha256))
            found = (int)i;
    if (found >= 0)
        *out = a->e[found].who;
}

int cb_api_may(const cb_api_who *who, const char *tenant)
{
    return who->scope == CB_SCOPE_ALL ||
           (who->scope == CB_SCOPE_TENANT && tenant && !strcmp(who->tenant, tenant));
}
