/* common/cb_s3xml.h - read the two XML documents an S3 endpoint answers with
 * that cbcore needs: a ListObjectsV2 page (ListBucketResult) and an error
 * (Error: Code, Message).
 *
 * Not a general XML parser: elements are found by name inside their parent's
 * text (S3 nests none of these names inside one another); character data is
 * unescaped (the five named entities and numeric references, as UTF-8);
 * CDATA, comments and processing instructions are skipped. Anything that does
 * not have the expected shape is CB_EPROTO with the reason in err, never a
 * crash (tests/fuzz/fuzz_s3xml.c).
 *
 * Pure: no I/O. Thread-safe. */
#ifndef CB_S3XML_H
#define CB_S3XML_H
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

typedef struct cb_s3_entry {
    char *key; /* unescaped */
    uint64_t size;
    char *etag; /* without its quotes; "" when absent */
} cb_s3_entry;

typedef struct cb_s3_list {
    cb_s3_entry *v;
    size_t n;
    int truncated;    /* IsTruncated was "true": ask again with next_token */
    char *next_token; /* NextContinuationToken, or NULL */
} cb_s3_list;

/* Parse one ListBucketResult page. On success the caller owns *out
 * (cb_s3_list_cleanup). Errors: CB_EPROTO (not a ListBucketResult, a Contents
 * without Key, a Size that is not a number, a truncated page without a next
 * token), CB_ENOMEM. */
CB_NODISCARD cb_status cb_s3xml_list(const char *xml, size_t len, cb_s3_list *out, char *err,
                                     size_t errlen);
void cb_s3_list_cleanup(cb_s3_list *l); /* accepts NULL; leaves it empty */

/* The Code and Message of an Error document, unescaped (each "" when
 * absent). Returns 0, or -1 when the text is not an Error document. */
int cb_s3xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg,
                   size_t msg_len);

#endif /* CB_S3XML_H */
