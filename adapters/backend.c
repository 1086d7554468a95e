/* adapters/backend.c - the table of backends the adapter worker can run. */
#include "backend.h"

#include <string.h>

extern const cb_backend_ops cb_backend_local, cb_backend_http, cb_backend_lambda,
    cb_backend_openwhisk;

static const cb_backend_ops *const backends[] = {&cb_backend_local, &cb_backend_http,
                                                 &cb_backend_lambda, &cb_backend_openwhisk};

const cb_backend_ops *cb_backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return NULL;
}

const char *cb_fail_reason_name(cb_fail_reason r)
{
    static const char *const names[] = {
        [CB_FAIL_NONE] = "none",
        [CB_FAIL_EXIT] = "exit",
        [CB_FAIL_SIGNAL] = "signal",
        [CB_FAIL_TIMEOUT] = "timeout",
        [CB_FAIL_INVALID_OUTPUT] = "invalid_output",
        [CB_FAIL_OVERSIZE] = "oversize_output",
        [CB_FAIL_THROTTLED] = "throttled",
        [CB_FAIL_BACKEND] = "backend",
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "backend";
}
