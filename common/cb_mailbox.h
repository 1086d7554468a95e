/* common/cb_mailbox.h - hand work from any thread to one libevent loop.
 *
 * Driver threads (the NATS client's callback threads, helper threads) post
 * cb_mail items; the loop thread runs them in post order, many per wake-up.
 * The mailbox is reference counted so that a thread still holding it after
 * its owner closed it can post safely: such mail is cancelled, not run.
 * The event_base must come from cb_loop_new() (cb_loop.h). */
#ifndef CB_MAILBOX_H
#define CB_MAILBOX_H
#include <stddef.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_mailbox cb_mailbox;
typedef struct cb_mail cb_mail;

/* Called exactly once per posted mail: on the loop thread with cancelled = 0,
 * or with cancelled = 1 (on any thread) when the mailbox was closed first.
 * Either way the function owns the mail and must free it. */
typedef void cb_mail_fn(cb_mail *m, int cancelled);

/* Embed as the first member of your own message struct. */
struct cb_mail {
    cb_mail *next;
    cb_mail_fn *fn;
};

/* Create a mailbox delivering on `base`. `high_water` bounds the queue for
 * cb_mailbox_post_wait() (0 = unbounded). On CB_OK *out holds one reference. */
CB_NODISCARD cb_status cb_mailbox_create(struct event_base *base, size_t high_water,
                                         cb_mailbox **out);
/* Post from any thread; never blocks. Steals `m` (cancelled if closed). */
void cb_mailbox_post(cb_mailbox *mb, cb_mail *m);
/* Post from a non-loop thread, first waiting while the queue holds more than
 * high_water mails: back-pressure for a producer faster than the loop. */
void cb_mailbox_post_wait(cb_mailbox *mb, cb_mail *m);
/* Number of mails waiting (a snapshot). */
size_t cb_mailbox_pending(cb_mailbox *mb);
void cb_mailbox_ref(cb_mailbox *mb);
/* Drop a reference; the last one frees (pending mails are cancelled). */
void cb_mailbox_unref(cb_mailbox *mb);
/* Loop thread only: run the mails queued now, as the loop would. Used while
 * shutting down, after the producers have stopped, to settle what they posted. */
void cb_mailbox_drain(cb_mailbox *mb);
/* Loop thread only: stop delivering, cancel queued and future mails, wake
 * waiting producers, and drop the caller's reference. Accepts NULL. */
void cb_mailbox_close(cb_mailbox *mb);

#endif /* CB_MAILBOX_H */
