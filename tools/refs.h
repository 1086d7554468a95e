/* tools/refs.h - what the cb client commands share about object storage:
 * opening the configured storage, and resolving the references to outputs
 * kept there ({"$cb_ref": "s3://...", "size", "sha256"}: adapters/spill.h)
 * in a result before it is printed. */
#ifndef CB_REFS_H
#define CB_REFS_H
#include <jansson.h>

struct event_base;
struct cb_storage;

/* The storage of --config FILE (`config`, else $CB_CONFIG): its "storage"
 * object, else the file driver at $CB_DIR/objects (default ./.cb/objects,
 * made when missing). On failure prints "cb CMD: why" and returns NULL.
 * `base` is made by cb_loop_new(). */
struct cb_storage *cb_cli_open_storage(const char *cmd, const char *config,
                                       struct event_base *base);

/* Whether v holds a reference anywhere. */
int cb_cli_has_refs(const json_t *v);
/* Replace every reference in *v (a new value may take its place) by the
 * value it stands for, read from the configured storage (`config` as for
 * cb_cli_open_storage), checking its size and sha256. 0, or -1 with the
 * reason printed as "cb CMD: ...". */
int cb_cli_resolve_refs(const char *cmd, const char *config, json_t **v);

#endif /* CB_REFS_H */
