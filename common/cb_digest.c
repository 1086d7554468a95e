/* common/cb_digest.c - SHA-256 digests (see cb_digest.h). */
#include "cb_digest.h"
#include "cb_json.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char md[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

bool cb_digest_is_hex(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

cb_status cb_digest_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return CB_ENOMEM;
    to_hex(md, hex);
    return CB_OK;
}

cb_status cb_hmac_sha256_hex(const void *key, size_t klen, const void *data, size_t len,
                             char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, data, len, md, &n) || n != 32)
        return CB_ENOMEM;
    to_hex(md, hex);
    return CB_OK;
}

cb_status cb_digest_json(const json_t *v, char hex[65])
{
    char *text = cb_json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cb_status s;
    if (!text)
        return CB_ENOMEM;
    s = cb_digest_hex(text, strlen(text), hex);
    free(text);
    return s;
}
