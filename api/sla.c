/* api/sla.c - the SLA routes of cb-api (docs/api.md, "Agreements"):
 * /v1/tenants/T/slas[/A[/start|stop]] as requests to cb-sla on
 * cb.slactl.<tenant> (sla/control.h), its answer passed on:
 *
 *   GET    /v1/tenants/T/slas            200 {"agreements": [...]}
 *   POST   /v1/tenants/T/slas            201 an agreement, or a template's
 *                                        instance {"template", "id", "values"}
 *   GET    /v1/tenants/T/slas/A          200 the agreement, its counts, its
 *                                        recent breaches
 *   DELETE /v1/tenants/T/slas/A          200
 *   POST   /v1/tenants/T/slas/A/start|stop  200
 *
 * cb-sla's refusal is 404 (no such agreement) or 400 (the rest) with its
 * reason; no cb-sla is 503. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "cb_json.h"
#include "server_int.h"

/* The HTTP status of cb-sla's refusal code (sla/control.c, docs/sla.md). */
static int refusal_status(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {{"not_found", 404}, {"conflict", 409}, {"unavailable", 503}, {"internal", 500}};
    for (size_t i = 0; code && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(code, map[i].code))
            return map[i].status;
    return 400;
}

static void answered(cb_status s, const void *data, size_t len, void *ctx)
{
    pending *p = ctx;
    struct evhttp_request *req = cb_api_pending_take(p);
    json_t *reply, *body;
    const char *error, *code;
    json_error_t je;
    cb_status ps;
    if (!req) {
        cb_api_pending_free(p);
        return;
    }
    if (s == CB_ENORESP || s == CB_ETIMEDOUT)
        cb_api_send_error(req, 503, "no_sla",
                          "the SLA service did not answer (is cb-sla up? cb up starts it)", NULL);
    else if (s != CB_OK)
        cb_api_send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    else if (!(reply = cb_json_loadb(data, len, 0, &je, &ps)) || !json_is_object(reply)) {
        json_decref(reply);
        cb_api_send_error(req, 502, "internal", "cb-sla's answer is not understood", NULL);
    } else if (json_is_true(json_object_get(reply, "ok"))) {
        json_object_del(reply, "ok");
        body = json_incref(json_object_get(reply, "agreement"));
        if (!body)
            body = json_incref(reply); /* a list, or a deletion */
        cb_api_send_json(req, p->route.id == CB_ROUTE_SLAS && p->route.post ? 201 : 200, body);
        json_decref(reply);
    } else {
        error = json_string_value(json_object_get(reply, "error"));
        json_t *extra = json_object_get(reply, "errors")
                            ? json_pack("{s:O}", "errors", json_object_get(reply, "errors"))
                            : NULL;
        code = json_string_value(json_object_get(reply, "code"));
        cb_api_send_error(req, refusal_status(code),
                          code && strcmp(code, "invalid") ? code : "refused",
                          error ? error : "refused", extra);
        json_decref(reply);
    }
    cb_api_pending_free(p);
}

static void ask(cb_api *a, struct evhttp_request *req, const cb_route *r, json_t *body)
{
    char subject[CB_NAME_MAX + 16], *text = body ? cb_json_dumps(body, JSON_COMPACT) : NULL;
    pending *p = text ? cb_api_pending_new(a, req, r) : NULL;
    cb_status s;
    json_decref(body);
    if (!p) {
        free(text);
        cb_api_send_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    snprintf(subject, sizeof subject, "cb.slactl.%s", r->tenant);
    if ((s = cb_broker_request(a->b, subject, text, strlen(text), a->o.request_timeout_ms, answered,
                               p)) != CB_OK) {
        cb_api_pending_take(p);
        cb_api_pending_free(p);
        cb_api_send_error(req, 503, "unavailable", cb_strerror(s), NULL);
    }
    free(text);
}

void cb_api_sla(cb_api *a, struct evhttp_request *req, const cb_route *r)
{
    if (r->id == CB_ROUTE_SLAS && !r->post) {
        ask(a, req, r, json_pack("{s:s}", "op", "list"));
    } else if (r->id == CB_ROUTE_SLAS) {
        size_t len = 0;
        char *text = cb_api_body_text(a, req, &len), msg[300];
        json_error_t je;
        cb_status ps;
        json_t *in = text ? cb_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je, &ps) : NULL;
        free(text);
        if (!text)
            return; /* answered */
        if (!json_is_object(in)) {
            snprintf(msg, sizeof msg, "the body is not a JSON object%s%s", in ? "" : ": ",
                     in ? "" : je.text);
            json_decref(in);
            cb_api_send_error(req, 400, "bad_json", msg, NULL);
            return;
        }
        if (json_object_get(in, "template"))
            ask(a, req, r,
                json_pack("{s:s, s:O, s:O?, s:O?}", "op", "put", "template",
                          json_object_get(in, "template"), "id", json_object_get(in, "id"),
                          "values", json_object_get(in, "values")));
        else
            ask(a, req, r, json_pack("{s:s, s:O}", "op", "put", "agreement", in));
        json_decref(in);
    } else if (r->id == CB_ROUTE_SLA) {
        ask(a, req, r, json_pack("{s:s, s:s}", "op", r->del ? "delete" : "show", "id", r->sla));
    } else {
        ask(a, req, r, json_pack("{s:s, s:s}", "op", r->action, "id", r->sla));
    }
}
