/* api/auth.h - who a request of cb-api acts for (docs/api.md,
 * "Authentication"): bearer tokens mapped to tenants in the configuration
 * ("api": {"tokens": [{"tenant": "alice", "sha256": "<hex>"},
 * {"role": "operator", "sha256": "<hex>"}]}). Tokens are kept as their
 * SHA-256 only: the configuration never holds one that works when read.
 * A tenant token acts on its tenant only; an operator token on every tenant
 * and the metrics. With no token configured the API is open.
 *
 * Pure apart from the hashing; immutable after cb_api_auth_new, so readable
 * from any thread. */
#ifndef CB_API_AUTH_H
#define CB_API_AUTH_H
#include <jansson.h>
#include <stddef.h>

#include "cb_event.h"
#include "cb_status.h"

typedef struct cb_api_auth cb_api_auth;

typedef enum cb_api_scope {
    CB_SCOPE_NONE = 0, /* no token, or an unknown one: 401 */
    CB_SCOPE_TENANT,   /* one tenant's jobs */
    CB_SCOPE_ALL,      /* every tenant (an operator token, or an open API) */
} cb_api_scope;

typedef struct cb_api_who {
    cb_api_scope scope;
    char tenant[CB_NAME_MAX + 1]; /* CB_SCOPE_TENANT: whose */
} cb_api_who;

/* From the "tokens" array (NULL: none, an open API). On failure err says
 * which entry is wrong. Errors: CB_EINVAL, CB_ENOMEM. On CB_OK *out is
 * owned: cb_api_auth_free. */
CB_NODISCARD cb_status cb_api_auth_new(const json_t *tokens, cb_api_auth **out, char *err,
                                       size_t errlen);
void cb_api_auth_free(cb_api_auth *a); /* accepts NULL */
/* 1 when no token is configured. */
int cb_api_auth_open(const cb_api_auth *a);
/* Who the Authorization header's value (NULL: none) acts for. */
void cb_api_auth_check(const cb_api_auth *a, const char *authorization, cb_api_who *out);
/* May `who` act on tenant's jobs? */
int cb_api_may(const cb_api_who *who, const char *tenant);

#endif /* CB_API_AUTH_H */
