/* common/cb_digest.c - SHA-256 digests (see cb_digest.h). */
#include "cb_digest.h"
#include "cb_json.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

cb_status cb_digest_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return CB_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
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
