/* engine/owners.c - which engine owns which partition (see owners.h). */
#include "owners.h"

#include <stdio.h>
#include <string.h>

#include "cb_event.h"
#include "cb_map.h"
#include "cb_partition.h"

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

/* Engine i of the live set: 0 is self, then the peers. */
static const char *engine_name(const cb_owners *o, size_t i)
{
    return i ? o->peer[i - 1].name : o->self;
}

void cb_owners_assign(const cb_owners *o, unsigned parts, const char **out)
{
    uint64_t w[CB_PARTITIONS_MAX][CB_OWNERS_MAX + 1];
    unsigned load[CB_OWNERS_MAX + 1] = {0};
    size_t e = o->n + 1;
    unsigned cap;
    if (parts > CB_PARTITIONS_MAX)
        parts = CB_PARTITIONS_MAX;
    cap = (unsigned)((parts + e - 1) / e);
    for (unsigned k = 0; k < parts; k++) {
        out[k] = NULL;
        for (size_t i = 0; i < e; i++)
            w[k][i] = weight(engine_name(o, i), k);
    }
    /* the strongest (partition, engine) pair left, of an engine with room,
     * until every partition has its engine (cap * e >= parts) */
    for (unsigned step = 0; step < parts; step++) {
        unsigned bk = 0;
        size_t bi = 0;
        bool found = false;
        for (unsigned k = 0; k < parts; k++) {
            if (out[k])
                continue;
            for (size_t i = 0; i < e; i++) {
                if (load[i] >= cap)
                    continue;
                if (!found || w[k][i] > w[bk][bi] ||
                    (w[k][i] == w[bk][bi] && strcmp(engine_name(o, i), engine_name(o, bi)) < 0)) {
                    bk = k;
                    bi = i;
                    found = true;
                }
            }
        }
        out[bk] = engine_name(o, bi);
        load[bi]++;
    }
}

const char *cb_owners_owner(const cb_owners *o, unsigned k, unsigned parts)
{
    const char *out[CB_PARTITIONS_MAX];
    if (k >= parts || k >= CB_PARTITIONS_MAX)
        return NULL;
    cb_owners_assign(o, parts, out);
    return out[k];
}

bool cb_owners_mine(const cb_owners *o, unsigned k, unsigned parts)
{
    return cb_owners_owner(o, k, parts) == o->self;
}

size_t cb_owners_live(const cb_owners *o)
{
    return o->n + 1;
}
