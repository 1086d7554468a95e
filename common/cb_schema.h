/* common/cb_schema.h - JSON Schema (2020-12) validation against the files in
 * schemas/, so the rules live in one place.
 *
 * Supported keywords (the subset the project's schemas use; a schema using
 * any other keyword is refused at load, never silently ignored):
 *   $schema $id $defs $ref $comment title description default examples
 *   type enum const
 *   minimum maximum exclusiveMinimum exclusiveMaximum
 *   minLength maxLength pattern format (date-time)
 *   items minItems maxItems uniqueItems
 *   properties required additionalProperties propertyNames
 *   minProperties maxProperties dependentSchemas
 *   allOf anyOf oneOf not if then else
 * $ref is "#/json/pointer", "file.json" or "file.json#/json/pointer", resolved
 * among the loaded files by their $id. `pattern` is matched as a POSIX
 * extended regular expression: keep patterns to the common subset of ERE and
 * ECMA-262 (anchors, classes, {m,n}, groups, alternation; no \d, \s, \w).
 *
 * Error messages name the instance path (JSON Pointer) and the rule:
 * "/input/items: expected array".
 *
 * Thread-safety: loading is not; a loaded cb_schema is read-only and may be
 * used from any number of threads at once. */
#ifndef CB_SCHEMA_H
#define CB_SCHEMA_H
#include <jansson.h>
#include <stddef.h>

#include "cb_status.h"

typedef struct cb_schema cb_schema;

/* The directory compiled in as the default (the source tree's schemas/), or
 * $CB_SCHEMA_DIR when set. Borrowed, static or from the environment. */
const char *cb_schema_default_dir(void);

/* Load every *.json file of `dir` (but an OpenAPI document, one with an
 * "openapi" member: schemas/openapi.json). On CB_OK *out is owned: release with
 * cb_schema_free(). On failure err (if not NULL) gets a one-line reason.
 * Errors: CB_ENOTFOUND (no directory), CB_EINVAL (bad schema), CB_ENOMEM. */
CB_NODISCARD cb_status cb_schema_load_dir(const char *dir, cb_schema **out, char *err,
                                          size_t errlen);
void cb_schema_free(cb_schema *s); /* accepts NULL */

/* Validate `instance` against `ref` ("job.json", "event.json#/$defs/x").
 * CB_OK: valid. CB_ESCHEMA: invalid; if errors is not NULL, *errors is a new
 * reference to an array of message strings (at most max_errors, >= 1).
 * CB_ENOTFOUND: unknown ref. */
CB_NODISCARD cb_status cb_schema_validate(const cb_schema *s, const char *ref,
                                          const json_t *instance, size_t max_errors,
                                          json_t **errors);

#endif /* CB_SCHEMA_H */
