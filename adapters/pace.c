/* adapters/pace.c - an account's request pace (pace.h). */
#include "pace.h"

int64_t cb_pace_slot(cb_pace *p, int64_t at)
{
    if (!p->interval_ns)
        return at;
    if (p->next_slot_ns > at)
        at = p->next_slot_ns;
    p->next_slot_ns = at + p->interval_ns;
    return at;
}

int64_t cb_pace_start(cb_pace *p, int64_t now)
{
    if (p->interval_ns && p->last_start_ns && now < p->last_start_ns + p->interval_ns)
        return p->last_start_ns + p->interval_ns - now;
    if (p->interval_ns)
        p->last_start_ns = now;
    return 0;
}
