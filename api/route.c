/* api/route.c - cb-api's routes (see route.h). */
#include "route.h"

#include <stdio.h>
#include <string.h>

/* The next segment of *p (after its '/') into seg; 0 at the end of the
 * path, -1 when a segment is too long. *p moves past it. */
static int segment(const char **p, char *seg, size_t n)
{
    const char *s = *p, *end;
    size_t len;
    if (*s != '/')
        return 0;
    s++;
    end = strchr(s, '/');
    len = end ? (size_t)(end - s) : strlen(s);
    if (len >= n)
        return -1;
    memcpy(seg, s, len);
    seg[len] = '\0';
    *p = s + len;
    return 1;
}

static void method(const char *m, int *post, int *get, int *del)
{
    *get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    *post = !strcmp(m, "POST");
    *del = !strcmp(m, "DELETE");
}

/* What a GET-only or POST-only route answers for the method. */
static int only(cb_route *out, cb_route_id id, int allowed)
{
    out->id = id;
    return allowed ? CB_ROUTE_MATCH : CB_ROUTE_BAD_METHOD;
}

/* /v1/jobs/T/J[/...] after "/v1/jobs". */
static int job_routes(const char *p, int get, int post, cb_route *out)
{
    char sub[16];
    int r;
    if (segment(&p, out->tenant, sizeof out->tenant) != 1 || !cb_name_valid(out->tenant) ||
        segment(&p, out->job, sizeof out->job) != 1 || !cb_name_valid(out->job))
        return CB_ROUTE_NO_SUCH;
    if ((r = segment(&p, sub, sizeof sub)) == 0)
        return only(out, CB_ROUTE_JOB, get);
    if (r < 0 || *p) /* nothing under a job's sub-resources */
        return CB_ROUTE_NO_SUCH;
    if (!strcmp(sub, "result"))
        return only(out, CB_ROUTE_RESULT, get);
    if (!strcmp(sub, "events"))
        return only(out, CB_ROUTE_EVENTS, get);
    if (!strcmp(sub, "tasks"))
        return only(out, CB_ROUTE_TASKS, get);
    if (!strcmp(sub, "stream"))
        return only(out, CB_ROUTE_JOB_STREAM, get);
    if (!strcmp(sub, "cancel") || !strcmp(sub, "suspend") || !strcmp(sub, "resume") ||
        !strcmp(sub, "retry")) {
        snprintf(out->action, sizeof out->action, "%s", sub);
        return only(out, CB_ROUTE_CONTROL, post);
    }
    return CB_ROUTE_NO_SUCH;
}

/* /v1/tenants/T/slas[/A[/start|stop]] after "/slas". */
static int sla_routes(const char *p, int get, int post, int del, cb_route *out)
{
    char sub[16];
    int r;
    if ((r = segment(&p, out->sla, sizeof out->sla)) == 0)
        return only(out, CB_ROUTE_SLAS, get || post);
    if (r < 0 || !cb_name_valid(out->sla))
        return CB_ROUTE_NO_SUCH;
    if ((r = segment(&p, sub, sizeof sub)) == 0)
        return only(out, CB_ROUTE_SLA, get || del);
    if (r < 0 || *p || (strcmp(sub, "start") && strcmp(sub, "stop")))
        return CB_ROUTE_NO_SUCH;
    snprintf(out->action, sizeof out->action, "%s", sub);
    return only(out, CB_ROUTE_SLA_STATE, post);
}

int cb_route_match(const char *m, const char *path, cb_route *out)
{
    char a[16], b[16], c[16];
    const char *p = path;
    int get, post, del;

    memset(out, 0, sizeof *out);
    method(m, &post, &get, &del);
    out->post = post;
    out->del = del;
    if (!strcmp(path, "/")) {
        out->file = "";
        return only(out, CB_ROUTE_UI, get);
    }
    if (!strncmp(path, "/ui/", 4) && path[4]) {
        out->file = path + 4;
        return only(out, CB_ROUTE_UI, get);
    }
    if (!strcmp(path, "/metrics"))
        return only(out, CB_ROUTE_METRICS, get);
    if (segment(&p, a, sizeof a) != 1 || strcmp(a, "v1") || segment(&p, b, sizeof b) != 1)
        return CB_ROUTE_NO_SUCH;
    if (!strcmp(b, "health") && !*p)
        return only(out, CB_ROUTE_HEALTH, get);
    if (!strcmp(b, "ready") && !*p)
        return only(out, CB_ROUTE_READY, get);
    if (!strcmp(b, "jobs"))
        return *p ? job_routes(p, get, post, out) : only(out, CB_ROUTE_JOBS, get || post);
    if (!strcmp(b, "daemons") && !*p)
        return only(out, CB_ROUTE_DAEMONS, get);
    if (!strcmp(b, "costs") && !*p)
        return only(out, CB_ROUTE_COSTS, get);
    if (!strcmp(b, "daemons") && segment(&p, c, sizeof c) == 1 && !strcmp(c, "stream") && !*p)
        return only(out, CB_ROUTE_DAEMONS_STREAM, get);
    if (!strcmp(b, "tenants") && segment(&p, out->tenant, sizeof out->tenant) == 1 &&
        cb_name_valid(out->tenant) && segment(&p, c, sizeof c) == 1) {
        if (!strcmp(c, "stream") && !*p)
            return only(out, CB_ROUTE_TENANT_STREAM, get);
        if (!strcmp(c, "cost") && !*p)
            return only(out, CB_ROUTE_TENANT_COST, get);
        if (!strcmp(c, "slas")) {
            int r = sla_routes(p, get, post, del, out);
            if (r != CB_ROUTE_NO_SUCH)
                return r;
        }
    }
    memset(out, 0, sizeof *out);
    return CB_ROUTE_NO_SUCH;
}
