/* common/cb_json.h - what every JSON parser of the project needs to say
 * about a failed parse. jansson reports running out of memory as a parse
 * error; a parser that calls that "malformed" turns a transient shortage into
 * a permanent verdict (a job rejected as "not JSON", an event skipped as
 * invalid). Thread-safe. */
#ifndef CB_JSON_H
#define CB_JSON_H
#include <jansson.h>

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
json_t *cb_json_loadb(const void *buf, size_t len, size_t flags, json_error_t *je, cb_status *st);

#endif /* CB_JSON_H */
