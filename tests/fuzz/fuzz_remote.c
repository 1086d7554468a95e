/* tests/fuzz/fuzz_remote.c - libFuzzer harness for the remote backends'
 * response judges: any bytes as the answer of an http, lambda or openwhisk
 * server (the first byte picks the protocol, the status, whether it answers
 * a poll, and which headers come with it; the rest is the body). Must never
 * crash or leak; every verdict is well formed: an output, a failure with a
 * reason and a message, a throttle with a sane delay, or a poll with a
 * reference that is safe in a URL path. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {200, 202, 204, 404, 429, 502};

static void *states[3];
static json_t *confs[3];
static const cb_remote_kind *const kinds[3] = {&cb_remote_http, &cb_remote_lambda,
                                               &cb_remote_openwhisk};

static void free_all(void)
{
    for (int i = 0; i < 3; i++) {
        kinds[i]->release(states[i]);
        json_decref(confs[i]);
    }
}

static void init(void)
{
    static const char *texts[3] = {
        "{\"url\": \"http://h/{name}\"}",
        "{\"endpoint\": \"http://h:1\", \"access_key_id\": \"a\", \"secret_access_key\": \"s\"}",
        "{\"api_host\": \"http://h\", \"api_key\": \"u:k\"}"};
    char err[256];
    for (int i = 0; i < 3; i++) {
        confs[i] = json_loads(texts[i], 0, NULL);
        if (!confs[i] || kinds[i]->configure(confs[i], "f", &states[i], err, sizeof err) != CB_OK)
            abort();
    }
    atexit(free_all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evkeyvalq h;
    cb_http_resp r;
    cb_remote_verdict v;
    char *body;
    uint8_t sel;
    int k, polling;

    if (!states[0])
        init();
    if (size < 1)
        return 0;
    sel = data[0];
    k = sel % 3;
    polling = (sel >> 2) & 1;
    h.tqh_first = NULL;
    h.tqh_last = &h.tqh_first;
    if (sel & 0x08)
        evhttp_add_header(&h, "X-Amz-Function-Error", "Unhandled");
    if (sel & 0x10)
        evhttp_add_header(&h, "Retry-After", (sel & 0x20) ? "3" : "soon");
    if (sel & 0x40)
        evhttp_add_header(&h, "x-amzn-ErrorType", "TooManyRequestsException");
    body = malloc(size); /* NUL-terminated, as the client gives it */
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    memset(&r, 0, sizeof r);
    r.status = statuses[(sel >> 5) % (sizeof statuses / sizeof statuses[0])];
    r.body = body;
    r.body_len = size - 1;
    r.headers = &h;
    memset(&v, 0, sizeof v);
    kinds[k]->judge(states[k], &r, polling, &v);
    switch (v.kind) {
    case CB_RV_OUTPUT:
        if (!v.output)
            abort();
        json_decref(v.output);
        break;
    case CB_RV_FAIL:
        if (!v.error[0] || v.reason == CB_FAIL_NONE)
            abort();
        break;
    case CB_RV_THROTTLE:
        if (v.delay_ms < 0 || v.delay_ms > 86400000)
            abort();
        break;
    case CB_RV_POLL:
        if (strpbrk(v.ref, "/?#"))
            abort();
        break;
    default:
        abort();
    }
    free(v.detail);
    free(body);
    evhttp_clear_headers(&h);
    return 0;
}
