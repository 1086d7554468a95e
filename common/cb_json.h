/* common/cb_json.h - what every JSON parser of the project needs to say
 * about a failed parse. jansson reports running out of memory as a parse
 * error; a parser that calls that "malformed" turns a transient shortage into
 * a permanent verdict (a job rejected as "not JSON", an event skipped as
 * invalid). Thread-safe. */
#ifndef CB_JSON_H
#define CB_JSON_H
#include <jansson.h>
#include <stdint.h>

#include "cb_status.h"

/* json_dumps() that never returns damaged text: jansson (2.14) ignores a
 * failed allocation while writing an object's key and goes on, so under
 * memory pressure json_dumps() can return `{":false,...}` (a record the store
 * could not read back, an event the log would keep). This writes through a
 * callback into its own buffer and fails (NULL) if any write failed. Same
 * flags; free() the result. */
char *cb_json_dumps(const json_t *json, size_t flags);

/* json_loadb(), telling why it failed in *st: CB_ENOMEM when any allocation
 * failed while parsing - jansson reports some of those as syntax errors
 * ("string or '}' expected") and goes on after others, returning a string
 * with a character missing, so such a result is discarded too - else
 * CB_EINVAL (the text is not the JSON asked for; je says where). CB_OK on
 * success. Needs cb_alloc_route_json() for jansson's allocations. */
/* A time (ns since the epoch) as an RFC 3339 string, or null for 0 (not
 * known). New reference (NULL only when out of memory). */
json_t *cb_json_time(int64_t ns);

json_t *cb_json_loadb(const void *buf, size_t len, size_t flags, json_error_t *je, cb_status *st);

/* Where the value of member `inner` of the object that is member `outer` of
 * the top-level object lies in the JSON text buf (for "data" / "output" of
 * an event): 1 with the value's offset and length, 0 when there is no such
 * member (or the text is not well formed that far: then parse it in full).
 * A scan, not a parse: nothing is allocated, so a caller can leave a large
 * value unparsed until it is needed. Keys are compared as written (a key
 * spelled with escapes does not match). With inner NULL: where the value of
 * member `outer` itself lies. Pure. */
int cb_json_member_span(const char *buf, size_t len, const char *outer, const char *inner,
                        size_t *off, size_t *vlen);

/* For the array at buf[at] == '[' whose elements are objects (the outcomes
 * of a cb.tasks.succeeded event), where member `key` of each lies: up to max
 * offsets and lengths into off[] and vlen[]. Returns the number of elements,
 * 0 when the array is empty, longer than max, an element is not an object
 * with that member, or the text is not well formed that far (then parse it
 * in full). A scan like cb_json_member_span. Pure. */
size_t cb_json_each_member_span(const char *buf, size_t len, size_t at, const char *key,
                                size_t *off, size_t *vlen, size_t max);

/* Scanning helpers of the above (pure, nothing allocated): the index of the
 * first non-blank byte at or after i; the end (one past) of the JSON value
 * starting at b[i], strings skipped and brackets counted but the text not
 * checked, 0 if it does not end. */
size_t cb_json_skip_ws(const char *b, size_t len, size_t i);
size_t cb_json_value_end(const char *b, size_t len, size_t i);

#endif /* CB_JSON_H */
