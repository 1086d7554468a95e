/* common/cb_digest.h - content digests: SHA-256 (OpenSSL) in lowercase hex.
 * The digest of a JSON value is taken over its canonical text (compact,
 * keys sorted), so two equal documents have the same digest whatever their
 * key order or spacing. And HMAC-SHA256 signatures. Pure, thread-safe. */
#ifndef CB_DIGEST_H
#define CB_DIGEST_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cb_status.h"

/* hex gets 64 characters and a NUL. Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_digest_hex(const void *data, size_t len, char hex[65]);
CB_NODISCARD cb_status cb_digest_json(const json_t *v, char hex[65]);
/* Whether s is a digest as these functions write it: 64 lowercase hex
 * digits and nothing else (false for NULL). */
bool cb_digest_is_hex(const char *s);
/* HMAC-SHA256 of data under key, in hex (what a webhook's signature header
 * carries). Errors: CB_ENOMEM. */
CB_NODISCARD cb_status cb_hmac_sha256_hex(const void *key, size_t klen, const void *data,
                                          size_t len, char hex[65]);

#endif /* CB_DIGEST_H */
