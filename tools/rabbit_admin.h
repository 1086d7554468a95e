/* tools/rabbit_admin.h - the identities of a `cb up` stack on a RabbitMQ
 * broker (docs/security.md), made through RabbitMQ's management HTTP API
 * with the administrator's credentials the stack was given.
 *
 * Each identity of tools/identity.h becomes a RabbitMQ user with the
 * password of DIR/identities/NAME.password, permissions on the stack's
 * virtual host (configure, write, read: which exchanges and queues) and
 * topic permissions on the exchange `cb` (which routing keys it may
 * publish, and bind its own queues to):
 *   - daemons may declare and use the stack's queues; each publishes only
 *     its own subjects (the engine: events, invocations, done, progress;
 *     adapters: events, progress; cb-sla: events, notices; cb-api:
 *     submissions and controls; the projector: its announcements); an
 *     adapter (cb-adapter-BACKEND) reads only its backend's invocation
 *     queue, cb.invoke.BACKEND;
 *   - a tenant may publish only cb.submit/enqueue/slactl.<tenant> and
 *     cb.ctl.<tenant>.*, make only server-named private queues, bind them
 *     only to cb.done/progress/sla.<tenant>.*, and read only its own done
 *     stream, cb.done.<tenant> (made here, and by the engine's driver).
 * User names are the identities' on the virtual host "/", and
 * "<vhost>.<identity>" on any other, so that stacks on two virtual hosts of
 * one broker do not share users.
 *
 * Blocking (each call runs its own event loop); for the cb command only. */
#ifndef CB_RABBIT_ADMIN_H
#define CB_RABBIT_ADMIN_H
#include <stddef.h>

typedef struct cb_rabbit_admin {
    char api[256];  /* the management API, http://host:port */
    char user[128]; /* an administrator of the broker */
    char pass[128];
    char vhost[128];
    char host[128]; /* the broker's AMQP host and port, for the identities' URLs */
    int port;
    int tls;           /* amqps:// */
    char others[1024]; /* a cluster's other nodes: "host:port,..." from the URL list, or "" */
} cb_rabbit_admin;

/* From the stack's broker URL (amqp://user[:password]@host[:port][/vhost],
 * or a cluster's list of such URLs: the first names the administrator and
 * the vhost, the others add their nodes to the identities' URLs;
 * a password not in it comes from $CB_BROKER_PASSWORD or
 * $CB_BROKER_PASSWORD_FILE) and the API's URL (NULL: $CB_RABBITMQ_API,
 * else http://HOST:15672). 0, or -1 with err. */
int cb_rabbit_admin_init(cb_rabbit_admin *a, const char *broker_url, const char *api, char *err,
                         size_t errlen);

/* Whether the API answers and the user is an administrator. 0, or -1 with
 * err (no answer, refused credentials, not an administrator). */
int cb_rabbit_admin_check(const cb_rabbit_admin *a, char *err, size_t errlen);

/* The user of identity `ident` (see above). */
void cb_rabbit_user(const cb_rabbit_admin *a, const char *ident, char *out, size_t size);

/* The URL identity `ident` connects with: amqp[s]://USER@host:port/vhost
 * (the scheme of the stack's URL). */
void cb_rabbit_ident_url(const cb_rabbit_admin *a, const char *ident, char *out, size_t size);

/* Make or update the user of `ident` (a daemon's, cb_ident_daemons, or a
 * tenant's) with its password from DIR and its permissions; for a tenant
 * also its done stream. 0, or -1 with err. */
int cb_rabbit_admin_put(const cb_rabbit_admin *a, const char *dir, const char *ident, char *err,
                        size_t errlen);

/* Delete the user of `ident` (its permissions go with it; a tenant's done
 * stream stays). 0 (also when there was none), or -1 with err. */
int cb_rabbit_admin_remove(const cb_rabbit_admin *a, const char *ident, char *err, size_t errlen);

#endif /* CB_RABBIT_ADMIN_H */
