/* projector/fence.c - who decides for a partition (see fence.h). */
#include "fence.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

const char *cb_fence_claim_of(const char *source)
{
    size_t n = strlen(CB_ENGINE_SOURCE);
    if (!source || strncmp(source, CB_ENGINE_SOURCE, n) != 0 || source[n] != '/' || !source[n + 1])
        return NULL;
    return source + n + 1;
}

bool cb_fence_token_valid(const char *s)
{
    const char *dot = s ? strrchr(s, '.') : NULL;
    size_t name = dot ? (size_t)(dot - s) : 0, digits = dot ? strlen(dot + 1) : 0;
    if (!name || name > CB_CLAIM_ENGINE_MAX || !digits || digits > 20)
        return false;
    for (size_t i = 0; i < name; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    for (size_t i = 0; i < digits; i++)
        if (dot[1 + i] < '0' || dot[1 + i] > '9')
            return false;
    return true;
}

bool cb_fence_admits(const cb_fence *f, const cb_event *ev)
{
    const char *claim = cb_fence_claim_of(ev->source);
    return !claim || !f->claim[0] || !strcmp(claim, f->claim);
}

cb_status cb_fence_claim(cb_fence *f, const cb_event *ev, unsigned partition)
{
    const json_t *p = json_object_get(ev->data, "partition");
    const char *claim = json_string_value(json_object_get(ev->data, "claim"));
    if (ev->type != CB_EV_PARTITION_CLAIMED || !json_is_integer(p) ||
        json_integer_value(p) != (json_int_t)partition || !cb_fence_token_valid(claim))
        return CB_EINVAL;
    snprintf(f->claim, sizeof f->claim, "%s", claim);
    return CB_OK;
}
