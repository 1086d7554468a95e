/* common/cb_url.h - URLs: percent-encoding, broker URLs and the
 * credentials in them. A password
 * never needs to be on a command line, in a file others can read, or in a
 * message: URLs are redacted wherever they are shown, and a process takes
 * the password from the URL, else $CB_BROKER_PASSWORD, else the file named
 * by $CB_BROKER_PASSWORD_FILE (first line).
 *
 * Works on "scheme://[user[:password]@]host..." and on comma-separated
 * lists of them (NATS). Pure but for cb_url_with_password (environment, a
 * file). Thread-safe. */
#ifndef CB_URL_H
#define CB_URL_H
#include <stddef.h>

#include "cb_buf.h"
#include "cb_status.h"

/* Percent-encoding (RFC 3986, as AWS SigV4 and query strings want it):
 * every byte but A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) becomes
 * %XX with upper-case hex. cb_url_encode returns the length the encoding
 * needs (without the NUL) and writes it into out when it fits in size
 * (NUL-terminated when size > 0; "" when it does not fit).
 * cb_url_encode_buf appends n bytes of s, encoded, to b. */
size_t cb_url_encode(const char *s, int keep_slash, char *out, size_t size);
void cb_url_encode_buf(cb_buf *b, const char *s, size_t n, int keep_slash);

/* `url` with every password replaced by "***" (truncated to fit). Returns buf. */
const char *cb_url_redact(const char *url, char *buf, size_t size);
/* `url` without its passwords into `out`; the first password (or "") into
 * `pass`. CB_ETOOBIG when a buffer is too small. */
CB_NODISCARD cb_status cb_url_split_password(const char *url, char *out, size_t size, char *pass,
                                             size_t pass_size);
/* A URL given on the command line: returns a copy (static storage: one per
 * process, taken at start-up) and overwrites the passwords of `arg` itself
 * with '*', so that ps and /proc/PID/cmdline stop showing them. */
const char *cb_url_from_argv(char *arg);
/* `url` into `out`, with the password from the environment (see above)
 * inserted into each "user@" that has none. CB_ETOOBIG, or CB_EIO when
 * $CB_BROKER_PASSWORD_FILE cannot be read. */
CB_NODISCARD cb_status cb_url_with_password(const char *url, char *out, size_t size);

#endif /* CB_URL_H */
