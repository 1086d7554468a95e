/* engine/claim.c - an engine with a name takes and gives up partitions as
 * the live engines agree (owners.h), and claims each in its log (fence.h);
 * docs/scale.md, "Ownership with failover". See control_int.h.
 *
 * Every beat (beat_ms) the engine publishes cb.engine.beat.<name>, forgets the
 * engines not heard for three beats, and compares what it drives with what
 * the rendezvous gives it: a partition it wins is loaded from the store's
 * snapshot, its log read, and its claim appended; it decides nothing there
 * until both the log has caught up and its own claim is folded. A partition
 * it loses (another engine is now its owner, or the log shows another
 * engine's claim) is dropped at once: its reader closed, its jobs
 * forgotten. A claim of another engine also holds the partition back for
 * two beats, so that two engines with different views do not take it from
 * each other at every beat. An older claim of its own (an earlier start's,
 * or one whose append failed and was made again) is no loss: the newest is
 * awaited, or made again when the older came after it. */
#include "control_int.h"

#include <stdio.h>
#include <string.h>

#include "cb_log.h"
#include "cb_time.h"
#include "emit.h"

#define BEAT_PREFIX "cb.engine.beat."

static void claim_done(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    ctl_part *pt = ctx;
    cb_control *c = pt->c;
    (void)seq;
    (void)duplicate;
    if (s != CB_OK && !c->stopped) {
        CB_LOG_WRN("control",
                   "the claim of partition %u was not confirmed: %s; again at the next "
                   "beat",
                   pt->k, cb_strerror(s));
        if (pt->owned && !pt->claimed)
            pt->claim[0] = '\0'; /* claimed anew (should this one come after all, it is older) */
    }
    if (--c->nops == 0 && c->stopped)
        ctl_release(c);
}

/* Whether a claim token is one of this engine's ("<name>.<n>"). */
static bool own_token(const cb_control *c, const char *claim)
{
    size_t n = strlen(c->owners.self);
    return !strncmp(claim, c->owners.self, n) && claim[n] == '.';
}

/* Append pt's claim with a new token. */
static void claim(cb_control *c, ctl_part *pt)
{
    char id[CB_CLAIM_MAX + 16], source[CB_CLAIM_MAX + 32];
    json_t *data;
    cb_status s;
    snprintf(pt->claim, sizeof pt->claim, "%s.%llu", c->owners.self,
             (unsigned long long)++c->claim_n);
    snprintf(id, sizeof id, "%s/claimed", pt->claim);
    snprintf(source, sizeof source, CB_ENGINE_SOURCE "/%s", pt->claim);
    data = json_pack("{s:s, s:s, s:i}", "claim", pt->claim, "engine", c->owners.self, "partition",
                     (int)pt->k);
    s = data ? cb_emit(c->b, pt->k, CB_EV_PARTITION_CLAIMED, CB_CLAIM_TENANT, CB_CLAIM_JOB, id,
                       source, data, claim_done, pt)
             : CB_ENOMEM;
    if (s != CB_OK) {
        CB_LOG_WRN("control", "cannot claim partition %u: %s; again at the next beat", pt->k,
                   cb_strerror(s));
        pt->claim[0] = '\0';
        return;
    }
    c->nops++;
    CB_LOG_INF("control", "claiming partition %u as %s", pt->k, pt->claim);
}

static void take(cb_control *c, ctl_part *pt)
{
    pt->owned = 1;
    pt->claim[0] = '\0';
    ctl_shaping_reshare(c);
    if (ctl_part_load(c, pt) != CB_OK) {
        ctl_part_drop(c, pt); /* again at the next beat */
        return;
    }
    claim(c, pt);
}

/* Take the partitions it wins, give up those it lost; claim again those
 * whose claim has not come back in two beats. */
static void assign(cb_control *c, int64_t now)
{
    const char *owner[CB_PARTITIONS_MAX];
    cb_owners_assign(&c->owners, c->o.partitions, owner);
    for (unsigned k = 0; k < c->o.partitions; k++) {
        ctl_part *pt = &c->parts[k];
        bool mine = owner[k] == c->owners.self;
        if (mine && !pt->owned && (!pt->lost_ns || now - pt->lost_ns > 2 * c->o.beat_ms * 1000000))
            take(c, pt);
        else if (!mine && pt->owned) {
            CB_LOG_INF("control", "partition %u goes to another engine: giving it up", k);
            ctl_part_drop(c, pt);
        } else if (mine && pt->owned && !pt->claimed && !pt->claim[0])
            claim(c, pt); /* the last one failed */
    }
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_control *c = arg;
    char subject[sizeof BEAT_PREFIX + CB_CLAIM_ENGINE_MAX], body[128];
    int64_t now = cb_time_mono_ns();
    size_t gone;
    int n;
    (void)fd;
    (void)what;
    snprintf(subject, sizeof subject, BEAT_PREFIX "%s", c->owners.self);
    n = snprintf(body, sizeof body, "{\"engine\":\"%s\"}", c->owners.self);
    if (cb_broker_notify(c->b, subject, NULL, body, (size_t)n, NULL, NULL) != CB_OK)
        c->stats.errors++;
    if ((gone = cb_owners_expire(&c->owners, now)))
        CB_LOG_INF("control", "%zu engine(s) not heard for %lld ms: %zu live", gone,
                   (long long)(3 * c->o.beat_ms), cb_owners_live(&c->owners));
    if (now >= c->assign_ns)
        assign(c, now);
}

static void heard_cb(const cb_broker_msg *m, void *ctx)
{
    cb_control *c = ctx;
    const char *name = m->subject + strlen(BEAT_PREFIX);
    int64_t now = cb_time_mono_ns();
    if (strncmp(m->subject, BEAT_PREFIX, strlen(BEAT_PREFIX)) != 0)
        return;
    if (cb_owners_heard(&c->owners, name, now) == 1) {
        CB_LOG_INF("control", "engine %s is live: %zu live", name, cb_owners_live(&c->owners));
        if (now >= c->assign_ns)
            assign(c, now);
    }
}

cb_status ctl_claims_start(cb_control *c)
{
    struct timeval tv = {(time_t)(c->o.beat_ms / 1000), (suseconds_t)(c->o.beat_ms % 1000) * 1000};
    cb_status s;
    /* a token new to the log: the first claim counts on from the clock */
    c->claim_n = (uint64_t)(cb_time_now_ns() / 1000000);
    /* the others are heard for a beat before anything is taken */
    c->assign_ns = cb_time_mono_ns() + c->o.beat_ms * 1000000;
    if (!(c->beat = event_new(c->base, -1, EV_PERSIST, beat_cb, c)))
        return CB_ENOMEM;
    if ((s = cb_broker_subscribe(c->b, BEAT_PREFIX "*", 0, heard_cb, c, &c->beats)) != CB_OK) {
        event_free(c->beat);
        c->beat = NULL;
        return s;
    }
    evtimer_add(c->beat, &tv);
    beat_cb(-1, 0, c); /* the first beat now */
    CB_LOG_INF("control", "engine %s: partitions are claimed with failover, beat %lld ms",
               c->owners.self, (long long)c->o.beat_ms);
    return CB_OK;
}

void ctl_claims_stop(cb_control *c)
{
    cb_sub_close(c->beats);
    c->beats = NULL;
    if (c->beat)
        event_free(c->beat);
    c->beat = NULL;
}

void ctl_claim_folded(cb_control *c, ctl_part *pt)
{
    const cb_fence *f = cb_mirror_fence(c->mirror, pt->k);
    if (!c->claims || !pt->owned)
        return;
    if (pt->claim[0] && !strcmp(f->claim, pt->claim)) {
        pt->claimed = 1;
        CB_LOG_INF("control", "partition %u is claimed as %s", pt->k, pt->claim);
        ctl_part_check_live(c, pt);
        return;
    }
    if (own_token(c, f->claim)) { /* an older claim of its own (an earlier start's, a retry's) */
        if (pt->claimed) {        /* it came after the newest: what it decides now is fenced */
            CB_LOG_WRN("control", "partition %u: an older claim %s came after %s; claiming again",
                       pt->k, f->claim, pt->claim);
            pt->claimed = pt->live = 0;
            c->live = 0;
            claim(c, pt);
        }
        return; /* its newest is on its way */
    }
    CB_LOG_WRN("control", "partition %u was claimed by %s: giving it up", pt->k, f->claim);
    pt->lost_ns = cb_time_mono_ns();
    ctl_part_drop(c, pt);
}

void ctl_source(const cb_control *c, unsigned k, char *source, size_t size, char *suffix,
                size_t ssize)
{
    const char *claim = c->claims && k < c->o.partitions ? c->parts[k].claim : "";
    if (claim[0]) {
        snprintf(source, size, CB_ENGINE_SOURCE "/%s", claim);
        snprintf(suffix, ssize, "@%s", claim);
    } else {
        snprintf(source, size, CB_ENGINE_SOURCE);
        snprintf(suffix, ssize, "%s", "");
    }
}
