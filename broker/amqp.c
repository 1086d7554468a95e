/* broker/amqp.c - RabbitMQ driver (placeholder while being written). */
#include "broker_int.h"

static cb_status amqp_open(struct event_base *base, const cb_broker_opts *o, cb_broker **out)
{
    (void)base;
    (void)o;
    (void)out;
    return CB_EUNSUPP;
}

const cb__broker_vt cb__amqp_vt = {
    .name = "amqp",
    .open = amqp_open,
};
