/* common/cb_status.c - status descriptions. */
#include "cb_status.h"

const char *cb_strerror(cb_status s)
{
    switch (s) {
    case CB_OK:
        return "ok";
    case CB_EINVAL:
        return "invalid argument";
    case CB_ENOMEM:
        return "out of memory";
    case CB_EIO:
        return "i/o error";
    case CB_ENOTFOUND:
        return "not found";
    case CB_ETIMEDOUT:
        return "timed out";
    case CB_ECONN:
        return "broker connection unavailable";
    case CB_EPROTO:
        return "protocol error";
    case CB_ESCHEMA:
        return "schema validation failed";
    case CB_ECONFLICT:
        return "conflict";
    case CB_ETOOBIG:
        return "message too big";
    case CB_ENORESP:
        return "no responders";
    case CB_EUNSUPP:
        return "not supported";
    case CB_ECLOSED:
        return "closed";
    case CB_EBROKER:
        return "rejected by broker";
    case CB_EDUPLICATE:
        return "duplicate";
    case CB_ECORRUPT:
        return "damaged data";
    case CB_EDENIED:
        return "access denied";
    }
    return "unknown status";
}
