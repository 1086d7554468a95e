/* engine/result.h - a finished job's result, assembled from its flow and its
 * task records. The engine builds the done message with it and `cb result`
 * assembles a result too large to inline with the same code.
 *
 *   call        the task's output
 *   map         the outputs in item order; an item whose task was lost (a
 *               tolerated failure) is null at its position
 *   map_reduce  the reduce's output; the reduce is given only the outputs
 *               that exist, in item order (cb_result_reduce_input)
 *   dag         an object of the sink steps' outputs (steps nothing depends on)
 *
 * Lost items (map and map_reduce) are listed as {"index": item, "error":
 * reason}, at most CB_RESULT_MAX_FAILED of them, each reason at most
 * CB_RESULT_MAX_ERROR bytes. Pure: no I/O. Every function returns a new
 * reference, NULL on ENOMEM (or, for a call, no output). */
#ifndef CB_RESULT_H
#define CB_RESULT_H
#include <jansson.h>

#include "flow.h"
#include "scheduler.h"

#define CB_RESULT_MAX_FAILED 1000
#define CB_RESULT_MAX_ERROR  256

/* The map tasks' outputs in item order, null for the items of a task that
 * did not succeed. With failed != NULL, *failed gets the list of lost items
 * (NULL when none was lost). */
json_t *cb_result_map_outputs(const cb_flow *f, const cb_task_view *v, json_t **failed);
/* The outputs of the map items that succeeded, in item order. */
json_t *cb_result_reduce_input(const cb_flow *f, const cb_task_view *v);
/* A map's lost items by its records' status alone (their outputs need not
 * be at hand: a result too large to inline): the list, or NULL when none
 * was lost (or on ENOMEM). */
json_t *cb_result_map_lost(const cb_flow *f, const cb_task_view *v);
/* The result of a job whose tasks have ended; *failed as above (map and
 * map_reduce; NULL otherwise). */
json_t *cb_result_of(const cb_flow *f, const cb_task_view *v, json_t **failed);

/* A map's result as JSON text, without parsing its outputs: the tasks'
 * output arrays joined in item order, `null` for the items of a task that
 * did not succeed, as cb_result_map_outputs would give once dumped.
 * kept(task, &n, arg) gives a succeeded task's output array as text
 * (borrowed until the next call) or NULL, and then the record's parsed
 * output is used. Returns the text (malloc'd, NUL-terminated, its length in
 * *len), or NULL: out of memory, or a kept text that is not an array. */
typedef const char *cb_result_text_fn(uint32_t task, size_t *n, void *arg);
char *cb_result_map_text(const cb_flow *f, const cb_task_view *v, cb_result_text_fn *kept,
                         void *arg, size_t *len);

#endif /* CB_RESULT_H */
