/* common/cb_secret.h - credentials by name, and keeping them out of what
 * cbcore writes (docs/security.md, "Secrets").
 *
 * A credential in the configuration is a string or {"secret": "NAME"}. A
 * secret NAME is read from $CB_SECRET_<NAME> (upper case, '-' as '_'),
 * else the file $CB_SECRETS_DIR/NAME, else $CB_DIR/secrets/NAME (its first
 * line). Every credential a process has used (named or inline) is
 * remembered, and cb_secret_redact() blanks it out of a text: the adapters
 * pass their outcomes through it (a backend that echoes its Authorization
 * header in an error does not put it in the log), and so does the log.
 *
 * Thread-safe (one process-wide list behind a mutex). */
#ifndef CB_SECRET_H
#define CB_SECRET_H
#include <jansson.h>
#include <stddef.h>

/* The credential `v` (a string, or {"secret": NAME}) into out, remembered
 * for redaction. Returns out, or NULL when v is neither or the secret
 * cannot be read (then err says why, naming the secret, never a value). */
const char *cb_secret_value(const json_t *v, char *out, size_t size, char *err, size_t errlen);

/* A deep copy of a configuration object (a backend account) with every
 * {"secret": NAME} replaced by the secret's text, and every credential in
 * it remembered for redaction: the values of "headers" objects and of
 * access_key_id, secret_access_key, session_token, api_key, wherever they
 * are (an account's own, a function's, a tenant's). NULL when a secret
 * cannot be read (err names it, with the JSON path) or out of memory. */
json_t *cb_secret_resolve(const json_t *conf, char *err, size_t errlen);

/* Remember a credential read some other way (from the environment). Texts
 * shorter than 6 bytes are not remembered (they would blank common words). */
void cb_secret_remember(const char *value);

/* Overwrite with '*' every remembered credential in s (in place, the same
 * length). Returns how many were found. */
size_t cb_secret_redact(char *s);

/* `j` with every string that holds a credential redacted, in place (its
 * strings replaced in their object or array; a string j itself by a new
 * one). Steals j's reference; returns the result's. */
json_t *cb_secret_redact_json(json_t *j);

/* Forget every credential (tests). */
void cb_secret_reset(void);

#endif /* CB_SECRET_H */
