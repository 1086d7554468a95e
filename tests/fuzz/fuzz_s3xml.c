/* tests/fuzz/fuzz_s3xml.c - libFuzzer harness for the S3 answer reader: any
 * input is a page, an error or a refusal; a page's entries are whole strings
 * and a truncated page always has its next token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_s3_list l;
    char err[256], code[64], msg[256];
    if (cb_s3xml_list((const char *)data, size, &l, err, sizeof err) == CB_OK) {
        for (size_t i = 0; i < l.n; i++)
            if (!l.v[i].key || !l.v[i].etag || strlen(l.v[i].key) > size)
                abort();
        if (l.truncated && (!l.next_token || !*l.next_token))
            abort();
        cb_s3_list_cleanup(&l);
    } else if (!err[0]) {
        abort(); /* a refusal says why */
    }
    if (cb_s3xml_error((const char *)data, size, code, sizeof code, msg, sizeof msg) == 0 &&
        (strlen(code) >= sizeof code || strlen(msg) >= sizeof msg))
        abort();
    return 0;
}
