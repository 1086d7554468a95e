/* api/route.h - which route of cb-api a request names (docs/api.md): the
 * method and the path (without the query) in, the route and its path
 * parameters out. Knows every route and nothing else: no I/O, no
 * allocation. Pure; thread-safe.
 *
 *   GET  /v1/health                         CB_ROUTE_HEALTH
 *   GET  /v1/ready                          CB_ROUTE_READY
 *   GET  /v1/jobs  POST /v1/jobs            CB_ROUTE_JOBS (list, submit)
 *   GET  /v1/jobs/T/J                       CB_ROUTE_JOB
 *   GET  /v1/jobs/T/J/result                CB_ROUTE_RESULT
 *   GET  /v1/jobs/T/J/events                CB_ROUTE_EVENTS
 *   GET  /v1/jobs/T/J/tasks                 CB_ROUTE_TASKS
 *   GET  /v1/jobs/T/J/stream                CB_ROUTE_JOB_STREAM
 *   POST /v1/jobs/T/J/cancel|suspend|resume CB_ROUTE_CONTROL (action)
 *   GET  /v1/tenants/T/stream               CB_ROUTE_TENANT_STREAM
 *   GET  /v1/tenants/T/cost                 CB_ROUTE_TENANT_COST
 *   GET  /v1/costs                          CB_ROUTE_COSTS
 *   GET  /v1/tenants/T/slas  POST ...       CB_ROUTE_SLAS (list, create or update)
 *   GET  /v1/tenants/T/slas/A  DELETE ...   CB_ROUTE_SLA (show, delete)
 *   POST /v1/tenants/T/slas/A/start|stop    CB_ROUTE_SLA_STATE (action)
 *   GET  /v1/daemons                        CB_ROUTE_DAEMONS
 *   GET  /v1/daemons/stream                 CB_ROUTE_DAEMONS_STREAM
 *   GET  /metrics                           CB_ROUTE_METRICS
 *   GET  / and /ui/FILE                     CB_ROUTE_UI (file: "" for /)
 *
 * Tenants and jobs must be names (cb_name_valid: [A-Za-z0-9_-]{1,128});
 * a path with another segment there matches nothing. HEAD is taken where
 * GET is. */
#ifndef CB_API_ROUTE_H
#define CB_API_ROUTE_H
#include "cb_event.h"

typedef enum cb_route_id {
    CB_ROUTE_NONE = 0,
    CB_ROUTE_HEALTH,
    CB_ROUTE_READY,
    CB_ROUTE_JOBS,
    CB_ROUTE_JOB,
    CB_ROUTE_RESULT,
    CB_ROUTE_EVENTS,
    CB_ROUTE_TASKS,
    CB_ROUTE_JOB_STREAM,
    CB_ROUTE_CONTROL,
    CB_ROUTE_TENANT_STREAM,
    CB_ROUTE_DAEMONS,
    CB_ROUTE_DAEMONS_STREAM,
    CB_ROUTE_METRICS,
    CB_ROUTE_UI,
    CB_ROUTE_SLAS,
    CB_ROUTE_SLA,
    CB_ROUTE_SLA_STATE,
    CB_ROUTE_TENANT_COST,
    CB_ROUTE_COSTS,
} cb_route_id;

typedef struct cb_route {
    cb_route_id id;
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    char sla[CB_NAME_MAX + 1]; /* SLA, SLA_STATE: the agreement */
    char action[16];  /* CONTROL: "cancel", "suspend" or "resume"; SLA_STATE: "start", "stop" */
    const char *file; /* UI: the path after "/ui/" (borrowed from the path), "" for "/" */
    int post;         /* the method was POST */
    int del;          /* the method was DELETE */
} cb_route;

/* CB_ROUTE_MATCH: *out is the route; CB_ROUTE_NO_SUCH: no route has this
 * path (404); CB_ROUTE_BAD_METHOD: the path is a route, not with this
 * method (405; *out->id says which route). */
enum { CB_ROUTE_MATCH = 0, CB_ROUTE_NO_SUCH = 404, CB_ROUTE_BAD_METHOD = 405 };
int cb_route_match(const char *method, const char *path, cb_route *out);

#endif /* CB_API_ROUTE_H */
