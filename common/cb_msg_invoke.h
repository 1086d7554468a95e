/* common/cb_msg_invoke.h - the invocation command (schemas/invoke.json), on
 * cb.invoke.<backend>: built by the engine's dispatch, parsed by the adapter
 * worker. The only code that knows its fields.
 *
 * One task:      {"job_id", "tenant", "partition"?, "task", "attempt", "step"?,
 *                 "function", "items", "first_item"?, "memo"?}
 * Several tasks: {"job_id", "tenant", "partition"?, "step"?, "function",
 *                 "tasks": [{"task", "attempt", "items", "first_item"?, "memo"?}, ...]}
 *                (2 to CB_INVOKE_TASKS_MAX tasks of one job and function;
 *                each runs as its own invocation with its own outcome)
 *
 * Ownership: a cb_invoke_msg borrows every pointer (from the caller when
 * building, from the parsed document when parsing). Pure; thread-safe. */
#ifndef CB_MSG_INVOKE_H
#define CB_MSG_INVOKE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_status.h"

struct cb_schema;

#define CB_INVOKE_TASKS_MAX 64 /* tasks in one command (schema: tasks.maxItems) */

typedef struct cb_invoke_task {
    uint32_t task, attempt;
    const json_t *items; /* array of >= 1 item: the function runs once per item */
    int64_t first_item;  /* index of items[0] in the job's input; -1: not a map */
    const char *memo;    /* a cached job's task: its memo key (64 hex), or NULL */
} cb_invoke_task;

typedef struct cb_invoke_msg {
    const char *job_id, *tenant;
    unsigned partition;     /* the job's (docs/scale.md): its outcomes go to that log;
                             * 0 is left out of the command */
    const char *step;       /* a DAG step's name, or NULL */
    const json_t *function; /* the job's function object: backend, name, timeout_ms, ... */
    size_t ntasks;          /* 1 .. CB_INVOKE_TASKS_MAX */
    cb_invoke_task tasks[CB_INVOKE_TASKS_MAX];
} cb_invoke_msg;

/* The command as a new JSON object (the one-task form when m->ntasks is 1),
 * or NULL (out of memory, or ntasks out of range). Nothing in m is stolen. */
json_t *cb_invoke_msg_build(const cb_invoke_msg *m);

/* Parse a command of either form from the wire and check it against
 * invoke.json. CB_OK: *root is the document (owned by the caller) and m
 * borrows from it. CB_EINVAL (not JSON) or CB_ESCHEMA (the first schema
 * error): why says it, *root is NULL. `schema` may be NULL only in tests of
 * well-formed input. */
CB_NODISCARD cb_status cb_invoke_msg_parse(const struct cb_schema *schema, const void *data,
                                           size_t len, json_t **root, cb_invoke_msg *m, char *why,
                                           size_t n);

/* The function's name and per-invocation timeout (0: none), from m->function. */
const char *cb_invoke_msg_function_name(const cb_invoke_msg *m);
int64_t cb_invoke_msg_timeout_ms(const cb_invoke_msg *m);

#endif /* CB_MSG_INVOKE_H */
