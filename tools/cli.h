/* tools/cli.h - what the cb client commands share: where the broker and the
 * store are when the command line does not say. */
#ifndef CB_CLI_H
#define CB_CLI_H
#include <stddef.h>

/* The stack's directory: $CB_DIR, else ".cb" (cb up, cb down and every
 * client command default to it). Borrowed. */
const char *cb_cli_dir(void);
/* `given`, else $CB_BROKER_URL, else the URL `cb up` wrote to $CB_DIR/url
 * (default ./.cb/url), else NULL. Borrowed (static storage). When `cb up`
 * keeps the broker's password (DIR/broker.password, mode 0600) and the
 * environment names none, $CB_BROKER_PASSWORD_FILE is pointed at it. */
const char *cb_cli_broker_url(const char *given);
/* `given`, else $CB_STORE, else $CB_DIR/store (default ./.cb/store). */
const char *cb_cli_store_dir(const char *given);
/* Open the store at dir read-only; on failure print "cb CMD: why" (what to
 * do about it) and return NULL. Close with cb_store_close(). */
struct cb_store *cb_cli_open_store(const char *cmd, const char *dir);
struct event_base;
struct cb_broker;

/* A loop and a broker connection for a client command named `name` (logs
 * quieted to errors unless $CB_LOG_LEVEL says otherwise). client: 1 for a
 * command a tenant runs (submit, result, sla: it neither makes nor checks
 * the streams and queues, which a tenant may not see), 0 for an operator's
 * (doctor, watch). On failure prints "cb: cannot connect to URL: reason",
 * leaves nothing to free, returns -1. */
int cb_cli_connect(const char *url, const char *name, int client, struct event_base **base,
                   struct cb_broker **b);
/* The pid in the file at `path` (a DIR/NAME.pid of cb up), or 0. */
int cb_cli_read_pid(const char *path);
/* Close what cb_cli_connect opened (either may be NULL). */
void cb_cli_disconnect(struct event_base *base, struct cb_broker *b);

/* One HTTP request, waited for (at most timeout_ms, on a loop of its own):
 * METHOD url with an Authorization header (NULL: none) and a JSON body
 * (NULL: none). Returns the HTTP status with the body (truncated) in
 * `body`, or 0 with why there was no answer in `body`. */
int cb_cli_http(const char *method, const char *url, const char *authorization, const char *json,
                int timeout_ms, char *body, size_t size);

/* Split "TENANT/JOB" into its names. Returns 0, or -1 if it is not that. */
int cb_cli_job_ref(const char *ref, char *tenant, char *job, size_t size);

#endif /* CB_CLI_H */
