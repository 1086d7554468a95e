/* engine/owners.h - which engine owns which partition (docs/scale.md,
 * "Ownership with failover"). Pure: no I/O, no clock (the caller passes
 * monotonic nanoseconds), no allocation.
 *
 * Every engine that takes part publishes a beat; the live set is this
 * engine and every other heard within dead_ns. The owners of the P
 * partitions are chosen among the E live engines by rendezvous hashing
 * with a cap: each (partition, engine) pair weighs cb_hash64("<name>/<k>");
 * the heaviest pairs are taken first (ties: the smaller name), an engine
 * taking at most ceil(P/E) partitions, so the shares are even (with P = E,
 * one each; plain rendezvous gave both of P = 2 to one of two engines half
 * the time). Engines with the same live set agree without talking; an
 * engine's death or arrival moves its own partitions and, as the cap
 * changes, a few others to even the shares. Agreement is not
 * safety: two engines with different views may both claim a partition for
 * a moment; the claims in the log (projector/fence.h) decide.
 *
 * Thread-safety: a cb_owners belongs to its caller. */
#ifndef CB_OWNERS_H
#define CB_OWNERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fence.h"

#define CB_OWNERS_MAX 64 /* other engines remembered */

typedef struct cb_owners {
    char self[CB_CLAIM_ENGINE_MAX + 1];
    int64_t dead_ns;
    size_t n;
    struct {
        char name[CB_CLAIM_ENGINE_MAX + 1];
        int64_t seen_ns;
    } peer[CB_OWNERS_MAX];
} cb_owners;

/* `self`: this engine's name (1..64 of [A-Za-z0-9_-]); -1 if it is not one. */
int cb_owners_init(cb_owners *o, const char *self, int64_t dead_ns);
/* A beat of engine `name` at `now`. Returns 1 when it was not live before,
 * 0 when it was, -1 when it is not a name or there is no room. */
int cb_owners_heard(cb_owners *o, const char *name, int64_t now);
/* Forget the engines not heard since now - dead_ns; returns how many. */
size_t cb_owners_expire(cb_owners *o, int64_t now);
/* The owners of partitions 0..parts-1 (parts <= CB_PARTITIONS_MAX) among
 * the live engines: out[k], borrowed from o. */
void cb_owners_assign(const cb_owners *o, unsigned parts, const char **out);
/* The owner of partition k of parts (borrowed from o; NULL if k >= parts). */
const char *cb_owners_owner(const cb_owners *o, unsigned k, unsigned parts);
/* Whether that is self. */
bool cb_owners_mine(const cb_owners *o, unsigned k, unsigned parts);
/* How many engines are live (self included). */
size_t cb_owners_live(const cb_owners *o);

#endif /* CB_OWNERS_H */
