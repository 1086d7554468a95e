/* common/cb_ref.c - references to objects (see cb_ref.h). */
#include "cb_ref.h"

#include <string.h>

int cb_ref_parse(const json_t *v, cb_ref *out)
{
    const char *k;
    json_t *x, *size, *sha;
    if (!json_is_string(json_object_get(v, "$cb_ref")))
        return 0;
    json_object_foreach((json_t *)v, k, x)
    {
        if (strcmp(k, "$cb_ref") && strcmp(k, "size") && strcmp(k, "sha256"))
            return 0;
    }
    size = json_object_get(v, "size");
    sha = json_object_get(v, "sha256");
    if ((size && !json_is_integer(size)) || (sha && !json_is_string(sha)))
        return 0;
    if (out) {
        out->url = json_string_value(json_object_get(v, "$cb_ref"));
        out->size = size ? (int64_t)json_integer_value(size) : -1;
        out->sha256 = json_string_value(sha);
    }
    return 1;
}
