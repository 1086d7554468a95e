/* engine/owners.c - which engine owns which partition (see owners.h). */
#include "owners.h"

#include <stdio.h>
#include <string.h>

#include "cb_event.h"
#include "cb_map.h"

static bool name_ok(const char *s)
{
    return s && strlen(s) <= CB_CLAIM_ENGINE_MAX && cb_name_valid(s);
}

int cb_owners_init(cb_owners *o, const char *self, int64_t dead_ns)
{
    memset(o, 0, sizeof *o);
    if (!name_ok(self))
        return -1;
    snprintf(o->self, sizeof o->self, "%s", self);
    o->dead_ns = dead_ns;
    return 0;
}

int cb_owners_heard(cb_owners *o, const char *name, int64_t now)
{
    if (!name_ok(name))
        return -1;
    if (!strcmp(name, o->self))
        return 0;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->peer[i].name, name)) {
            o->peer[i].seen_ns = now;
            return 0;
        }
    if (o->n == CB_OWNERS_MAX)
        return -1;
    snprintf(o->peer[o->n].name, sizeof o->peer[o->n].name, "%s", name);
    o->peer[o->n++].seen_ns = now;
    return 1;
}

size_t cb_owners_expire(cb_owners *o, int64_t now)
{
    size_t kept = 0, n = o->n;
    for (size_t i = 0; i < n; i++)
        if (now - o->peer[i].seen_ns <= o->dead_ns)
            o->peer[kept++] = o->peer[i];
    o->n = kept;
    return n - kept;
}

static uint64_t weight(const char *name, unsigned k)
{
    char buf[CB_CLAIM_ENGINE_MAX + 16];
    int n = snprintf(buf, sizeof buf, "%s/%u", name, k);
    return cb_hash64(buf, (size_t)n);
}

const char *cb_owners_owner(const cb_owners *o, unsigned k)
{
    const char *best = o->self;
    uint64_t top = weight(o->self, k);
    for (size_t i = 0; i < o->n; i++) {
        uint64_t w = weight(o->peer[i].name, k);
        if (w > top || (w == top && strcmp(o->peer[i].name, best) < 0)) {
            top = w;
            best = o->peer[i].name;
        }
    }
    return best;
}

bool cb_owners_mine(const cb_owners *o, unsigned k)
{
    return cb_owners_owner(o, k) == o->self;
}

size_t cb_owners_live(const cb_owners *o)
{
    return o->n + 1;
}
