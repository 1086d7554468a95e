/* engine/flow.h - translate a job descriptor (already schema-valid) into a
 * flow: the tasks the engine runs and how they depend on each other.
 *
 *   call        one task, its input the job's input
 *   map         ceil(items / chunksize) tasks; task t covers items
 *               [t*chunksize, min(items, (t+1)*chunksize)); `range` inputs are
 *               never materialised (items are computed from start/step);
 *               `objects` inputs have no items until their partition plan
 *               is known (cb_flow_set_partition): then one item per byte
 *               range, {"url", "etag", "size", "range": [start, end)} (and
 *               "split": "lines"), objects in plan order
 *   map_reduce  the map tasks, then one reduce task (index = map tasks) that
 *               depends on all of them and gets their outputs in item order
 *   dag         one task per step, in the order of the steps' names; a step
 *               depends on its `depends` and, implicitly, on the steps its
 *               `input_from`, `foreach` and `when` name. Cycles and names of
 *               steps that do not exist are rejected with the path.
 *
 * Pure: no I/O, no clock. A cb_flow borrows nothing: it keeps its own
 * reference to the descriptor. Not thread-safe per flow; flows are
 * independent. */
#ifndef CB_FLOW_H
#define CB_FLOW_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

typedef enum cb_flow_kind {
    CB_FLOW_CALL = 0,
    CB_FLOW_MAP,
    CB_FLOW_MAP_REDUCE,
    CB_FLOW_DAG,
} cb_flow_kind;

typedef struct cb_flow_step {
    const char *name;   /* borrowed from the flow's descriptor */
    const json_t *spec; /* borrowed: the step's object */
    uint32_t *deps;     /* step indices this step waits for (sorted, unique) */
    size_t ndeps;
    int32_t foreach; /* step index whose output it fans out over, or -1 */
    uint8_t lane;    /* its function's account in the flow's lanes */
} cb_flow_step;

#define CB_FLOW_LANES_MAX 8 /* accounts one job's functions may name (= CB_POOL_MAX) */

typedef struct cb_flow {
    cb_flow_kind kind;
    json_t *spec; /* owned reference to the descriptor */
    /* map / map_reduce */
    uint64_t items;
    uint32_t chunksize;
    uint32_t map_tasks;
    const json_t *item_array; /* borrowed from spec when the input is `items` */
    int64_t range_start, range_step;
    /* objects input */
    bool objects;        /* items come from the partition plan */
    bool partitioned;    /* cb_flow_set_partition was given it */
    bool split_lines;    /* "split": "lines" */
    json_t *partition;   /* owned reference: the plan's objects array */
    uint64_t *part_base; /* owned: the first item of each object; [nobjects] = items */
    size_t nobjects;
    /* dag */
    cb_flow_step *steps; /* owned; steps[i] is task i */
    size_t nsteps;
    uint32_t *order; /* owned: a topological order of the steps */
    /* all kinds */
    uint32_t tasks; /* static task count (foreach children come at run time) */
    /* The accounts (backends or pools) its functions name, each once, in
     * the order of first use: the function's, the map's then the reduce's,
     * the steps' in index order (docs/engine.md, "Jobs over several
     * accounts"). Borrowed from the descriptor; "local" when none is named. */
    const char *lanes[CB_FLOW_LANES_MAX];
    uint8_t nlanes;
    uint8_t reduce_lane; /* map_reduce: the reduce function's */
} cb_flow;

/* Build the flow of `spec` (a schema-valid job descriptor; a reference is
 * taken). max_tasks bounds the static task count (0: 10,000,000). On failure
 * err gets "/path: reason". Errors: CB_EINVAL (cycle, unknown step, too many
 * tasks, functions on more than CB_FLOW_LANES_MAX accounts), CB_ENOMEM. */
CB_NODISCARD cb_status cb_flow_build(const json_t *spec, uint32_t max_tasks, cb_flow *out,
                                     char *err, size_t errlen);
void cb_flow_cleanup(cb_flow *f); /* accepts a zeroed flow */

#define CB_FLOW_CHUNK_BYTES ((uint64_t)64 << 20) /* an objects input's default range */

/* The range size of one object of `size` bytes under an objects input
 * (`objects` is the input's "objects" member): chunk_bytes (default 64
 * MiB), or ceil(size / chunk_number) (at least 1). */
uint64_t cb_flow_object_chunk(const json_t *objects, uint64_t size);
/* The ranges an object has: ceil(size / chunk), and 1 for an empty one. */
uint64_t cb_flow_object_parts(uint64_t size, uint64_t chunk);
/* Give an objects flow its plan (the "objects" array of the job state's
 * partition: [{url, etag, size, chunk}], a reference is taken); the flow then
 * has its items and tasks. max_tasks as for cb_flow_build. Errors: CB_EINVAL
 * (no objects, a malformed entry, too many tasks: err says), CB_ENOMEM. */
CB_NODISCARD cb_status cb_flow_set_partition(cb_flow *f, const json_t *objects, uint32_t max_tasks,
                                             char *err, size_t errlen);

/* The input items of map task `task` as a new JSON array (NULL on ENOMEM or
 * an index out of range). */
json_t *cb_flow_map_items(const cb_flow *f, uint32_t task);
/* Item `i` of a map input as a new reference (NULL if out of range). */
json_t *cb_flow_item(const cb_flow *f, uint64_t i);
/* The index of the reduce task of a map_reduce flow. */
uint32_t cb_flow_reduce_task(const cb_flow *f);
/* The step index named `name` in a dag flow, or -1. */
int32_t cb_flow_step_index(const cb_flow *f, const char *name);
/* The account whose capacity shapes a job of one lane (docs/engine.md,
 * "Traffic shaping"): its function's backend; a DAG's, the backend most of
 * its steps name (on a tie, the first such step's); "local" when none is
 * named. Borrowed from the descriptor. */
const char *cb_flow_backend(const cb_flow *f);
/* The lane of task `task`'s function: a map_reduce's reduce its own, a DAG
 * step's its step's (a foreach child: pass its step as `step`), else 0. */
uint8_t cb_flow_lane(const cb_flow *f, uint32_t task, int32_t step);

#endif /* CB_FLOW_H */
