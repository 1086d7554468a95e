/* common/cb_msg_reply.c - the reply and verdict codec (see cb_msg_reply.h). */
#include "cb_msg_reply.h"
#include "cb_json.h"

#include <string.h>

static json_t *errors_of(const cb_reply_msg *m)
{
    return m->errors ? json_incref((json_t *)m->errors) : json_array();
}

static char *dump(json_t *m)
{
    char *text = m ? cb_json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return text;
}

char *cb_reply_msg_text(const cb_reply_msg *m)
{
    json_t *o = json_pack("{s:s?, s:b, s:o}", "job_id", m->job_id, "accepted", m->accepted,
                          "errors", errors_of(m));
    if (o && m->repeated)
        json_object_set_new(o, "repeated", json_true());
    return dump(o);
}

char *cb_verdict_msg_text(const cb_reply_msg *m)
{
    if (!m->job_id || !m->tenant)
        return NULL;
    return dump(json_pack("{s:s, s:s, s:s, s:b, s:o}", "job_id", m->job_id, "tenant", m->tenant,
                          "status", m->accepted ? "accepted" : "refused", "accepted", m->accepted,
                          "errors", errors_of(m)));
}

cb_status cb_reply_msg_parse(const json_t *root, cb_reply_msg *m)
{
    const json_t *acc = json_object_get(root, "accepted");
    memset(m, 0, sizeof *m);
    if (!json_is_boolean(acc))
        return CB_EINVAL;
    m->accepted = json_is_true(acc);
    m->job_id = json_string_value(json_object_get(root, "job_id"));
    m->tenant = json_string_value(json_object_get(root, "tenant"));
    m->errors = json_object_get(root, "errors");
    m->repeated = json_is_true(json_object_get(root, "repeated"));
    return CB_OK;
}
