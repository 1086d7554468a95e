/* tools/tls.h - the certificates of a `cb up --tls` stack (docs/security.md,
 * "TLS"): a private certificate authority and one server certificate that
 * the stack's nats-server and cb-api present, made with OpenSSL.
 *
 * DIR/tls/ (0700): ca.pem (the CA's certificate: what clients trust, via
 * $CB_BROKER_CA_FILE or curl --cacert), ca.key, server.pem (for the names
 * localhost and 127.0.0.1, signed by the CA), server.key; keys are mode
 * 0600, EC P-256, certificates valid for 825 days. Made once and kept: a
 * stack started again presents the same certificate.
 *
 * Not thread-safe (files); for the cb command only. */
#ifndef CB_TOOLS_TLS_H
#define CB_TOOLS_TLS_H
#include <stddef.h>

/* Make DIR/tls's files unless they are there. 0, or -1 with err. */
int cb_tls_make_dev(const char *dir, char *err, size_t errlen);

/* DIR/tls/NAME into out. */
void cb_tls_path(const char *dir, const char *name, char *out, size_t size);

/* When DIR's stack has a CA (it was started with --tls), trust it for its
 * broker and its API: $CB_BROKER_CA_FILE and $CB_API_CA_FILE name it unless
 * the environment names others. */
void cb_tls_trust_stack_ca(const char *dir);

#endif /* CB_TOOLS_TLS_H */
