/* tools/identity.h - the broker identities of a `cb up` stack and their
 * permissions (docs/security.md).
 *
 * Every daemon connects with an identity of its own (cb-engine,
 * cb-projector, cb-sla, cb-api, and cb-adapter-BACKEND per backend), the operator's commands with
 * cb-admin, and each tenant with its own name. A password per identity is
 * kept in DIR/identities/NAME.password (mode 0600, the directory 0700),
 * made once with 32 random hex digits; nothing puts it on a command line.
 * For the private nats-server of `cb up` these become the users of its
 * configuration, DIR/nats.conf (0600), each with the subjects it may
 * publish and subscribe to; `cb tenant add|remove` rewrites it and asks a
 * running server to reload it.
 *
 * Not thread-safe (files of one directory); for the cb command only. */
#ifndef CB_IDENTITY_H
#define CB_IDENTITY_H
#include <stddef.h>

#define CB_IDENT_ADMIN "cb-admin"

/* The daemons' identities, NULL-terminated: "cb-engine", ... (adapters
 * have one per backend, below). */
extern const char *const cb_ident_daemons[];

/* Adapters: "cb-adapter-<backend>", each allowed its backend's invocations
 * only. */
#define CB_IDENT_ADAPTER_PREFIX "cb-adapter-"
void cb_ident_adapter(const char *backend, char *out, size_t size);
int cb_ident_is_adapter(const char *name);
/* The adapters' identities made in DIR (sorted), one per line. */
void cb_ident_adapters(const char *dir, char *out, size_t size);

/* Whether NAME can be a tenant's identity: a tenant name (cb_name_valid)
 * that does not begin with "cb-" (the daemons') or "_". */
int cb_ident_tenant_name_ok(const char *name);

/* DIR/identities/NAME.password into path. */
void cb_ident_password_path(const char *dir, const char *name, char *path, size_t size);

/* NAME's password (its file's first line) into out: 0, or -1 when it has
 * none. */
int cb_ident_read_password(const char *dir, const char *name, char *out, size_t size);

/* Make NAME's password unless it has one. Returns 1 made, 0 had one, -1
 * error (said on stderr). */
int cb_ident_make(const char *dir, const char *name);

/* A tenant's (or cb-admin's) API token: DIR/identities/NAME.token (0600,
 * 64 random hex digits), made unless it is there. 1 made, 0 had one, -1. */
int cb_ident_make_token(const char *dir, const char *name);
void cb_ident_token_path(const char *dir, const char *name, char *path, size_t size);

/* DIR/api_tokens.json (0600), cb-api's --tokens file: the SHA-256 of each
 * tenant's token, and of the operator's (cb-admin's, made then) once a
 * tenant has one: {"tokens": [{"tenant": T, "sha256": H}, ...,
 * {"role": "operator", "sha256": H}]}. 0, or -1 (said on stderr). */
int cb_ident_write_api_tokens(const char *dir);

/* Every identity `cb up` needs (admin and daemons), made when missing.
 * 0, or -1 (said on stderr). */
int cb_ident_make_stack(const char *dir);

/* Remove a tenant's identity (its password and token): 0, or -1 when it
 * has none. */
int cb_ident_remove(const char *dir, const char *name);

/* The tenants' identities (sorted), one per line into out ("" for none). */
void cb_ident_tenants(const char *dir, char *out, size_t size);

/* Write DIR/nats.conf for a private nats-server listening on
 * 127.0.0.1:port with its JetStream data in DIR/nats (with tls: only TLS
 * connections, with DIR/tls's server certificate, tools/tls.h): the users
 * of every identity with their permissions. 0, or -1 (said on stderr). */
int cb_ident_write_nats_conf(const char *dir, int port, int tls);
/* The URL identity NAME connects to the private nats-server with. */
void cb_ident_nats_url(const char *name, int port, int tls, char *out, size_t size);
/* The URL identity NAME connects to the private nats-server of the stack
 * in DIR with: with cb up --cluster, the list of its nodes' (their
 * DIR/nats-n<k>.conf); "" when DIR has no private nats-server. */
void cb_ident_stack_nats_url(const char *dir, const char *name, char *out, size_t size);
/* Whether DIR/nats.conf has the server speak TLS (cb up --tls). */
int cb_ident_nats_tls(const char *dir);

/* The port DIR/nats.conf listens on, or 0 when there is none. */
int cb_ident_nats_port(const char *dir);

#endif /* CB_IDENTITY_H */
