/* common/cb_status.h - the one status type every cbcore function returns.
 * CB_OK is 0, failures are negative. cb_strerror() never returns NULL. */
#ifndef CB_STATUS_H
#define CB_STATUS_H

#if defined(__GNUC__)
#define CB_NODISCARD __attribute__((warn_unused_result))
#else
#define CB_NODISCARD
#endif

typedef enum cb_status {
    CB_OK = 0,
    CB_EINVAL = -1,      /* invalid argument or malformed input */
    CB_ENOMEM = -2,      /* allocation failed */
    CB_EIO = -3,         /* I/O or storage error */
    CB_ENOTFOUND = -4,   /* no such key, stream, queue, file */
    CB_ETIMEDOUT = -5,   /* a bounded wait ran out */
    CB_ECONN = -6,       /* broker connection lost or refused */
    CB_EPROTO = -7,      /* peer answered something we do not understand */
    CB_ESCHEMA = -8,     /* message does not satisfy its JSON Schema */
    CB_ECONFLICT = -9,   /* same id, different body */
    CB_ETOOBIG = -10,    /* message over the configured size limit */
    CB_ENORESP = -11,    /* a request found no responder */
    CB_EUNSUPP = -12,    /* the driver or backend cannot do this */
    CB_ECLOSED = -13,    /* the handle is closing or closed */
    CB_EBROKER = -14,    /* the broker refused the operation */
    CB_EDUPLICATE = -15, /* already applied / already stored */
    CB_ECORRUPT = -16,   /* stored data is damaged (e.g. a truncated store file) */
    CB_EDENIED = -17,    /* the peer refused the credentials or the access */
} cb_status;

/* A static, human-readable description of `s`. Never NULL. */
const char *cb_strerror(cb_status s);

#endif /* CB_STATUS_H */
