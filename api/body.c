/* api/body.c - a job's result as the body of GET /v1/jobs/T/J/result,
 * streamed (docs/api.md): the result's text, with every reference to an
 * object in storage ({"$cb_ref": URL, "size", "sha256"}: a result kept as one
 * object, outputs kept apart) replaced by the object's bytes as they are
 * read, up to three references deep (as `cb result`). Nothing is held whole:
 * the server reads a chunk, writes it to the client, and reads the next
 * when the client took it, so a slow client slows the reads instead of
 * filling memory.
 *
 * A reference is found in the text without parsing the whole: in JSON text
 * the bytes `{"$cb_ref":` can only open an object whose first member is
 * "$cb_ref" (inside a string the quotes would be escaped), and the writers
 * (adapters/spill.c, the engine, the projector) put it first. Each object's
 * size and sha256 are checked as it streams; a mismatch, or a read that
 * fails once the reply started, closes the connection before the end of
 * the chunked body, so a client never takes a damaged result for a whole
 * one. Before the first byte, a failure is a JSON error (502). */
#define _GNU_SOURCE /* memmem */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_buf.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_ref.h"
#include "cb_storage.h"
#include "server_int.h"

#define LEVELS     4                   /* the result's text and three references deep */
#define READ_CHUNK ((uint64_t)1 << 20) /* bytes per storage read */
#define REF_MAX    4096                /* a reference's text is shorter */

static const char pattern[] = "{\"$cb_ref\":";
#define PATTERN_LEN (sizeof pattern - 1)

typedef struct level {
    int object; /* 1: an object read from storage; 0: text in memory */
    char url[CB_STORAGE_URL_MAX];
    uint64_t size, off; /* object: its size (from the reference) and bytes read */
    char sha256[65];    /* object: expected digest, "" when the reference has none */
    EVP_MD_CTX *md;
    cb_buf pend; /* read, not yet scanned and sent */
    size_t from; /* pend's first byte not yet sent */
    int eof;     /* everything is in pend */
} level;

struct body {
    level lv[LEVELS];
    int depth;   /* levels in use */
    int started; /* the reply's status and headers are out */
    int ended;   /* the closing newline is in out */
    struct evbuffer *out;
};

static void level_cleanup(level *l)
{
    if (l->md)
        EVP_MD_CTX_free(l->md);
    cb_buf_cleanup(&l->pend);
    memset(l, 0, sizeof *l);
}

static void body_free(struct body *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->depth; i++)
        level_cleanup(&b->lv[i]);
    if (b->out)
        evbuffer_free(b->out);
    cb_free(b);
}

/* p is done with: free it with its body (and its timer). */
static void finish(pending *p)
{
    body_free(p->out);
    p->out = NULL;
    if (p->later)
        event_free(p->later);
    p->later = NULL;
    cb_api_pending_free(p);
}

/* A failure: a JSON error when nothing was sent yet, else the connection is
 * closed mid-body (the client sees a body without its end). */
static void fail(pending *p, const char *why)
{
    struct evhttp_request *req = cb_api_pending_take(p);
    CB_LOG_WRN("api", "%s/%s result: %s", p->route.tenant, p->route.job, why);
    if (req && !p->out->started) {
        cb_api_send_error(req, 502, "storage", why, NULL);
    } else if (req && p->closed) {
        evhttp_send_reply_end(req); /* detached: this frees it */
    } else if (req) {
        evhttp_connection_free(evhttp_request_get_connection(req)); /* frees req */
    }
    finish(p);
}

static void pump(pending *p);

/* The server let go, or the client went: end the reply (which frees a
 * detached request) and p. */
static void let_go(pending *p)
{
    struct evhttp_request *req = cb_api_pending_take(p);
    if (req)
        evhttp_send_reply_end(req);
    finish(p);
}

static void written(struct evhttp_connection *conn, void *arg)
{
    pending *p = arg;
    (void)conn;
    p->phase = PHASE_WAIT;
    pump(p);
}

/* Send what is in out; pump goes on once the client took it. Returns 1 when
 * a write is under way. */
static int flush(pending *p)
{
    struct body *b = p->out;
    if (evbuffer_get_length(b->out) == 0)
        return 0;
    if (!b->started) {
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type",
                          "application/json");
        evhttp_send_reply_start(p->req, 200, "OK");
        b->started = 1;
    }
    p->phase = PHASE_WRITE;
    evhttp_send_reply_chunk_with_cb(p->req, b->out, written, p);
    return 1;
}

static void got(const cb_storage_res *r, void *ctx)
{
    pending *p = ctx;
    level *l;
    char why[1200];
    p->phase = PHASE_WAIT;
    if (!p->req || p->closed) {
        let_go(p);
        return;
    }
    l = &p->out->lv[p->out->depth - 1];
    if (r->status != CB_OK) {
        fail(p, r->error ? r->error : cb_strerror(r->status));
        return;
    }
    if (r->size != l->size || r->len == 0) {
        snprintf(why, sizeof why, "%s: %llu bytes, the reference says %llu", l->url,
                 (unsigned long long)r->size, (unsigned long long)l->size);
        fail(p, why);
        return;
    }
    if (l->from > 0) { /* drop what was sent (the buffer only keeps the rest) */
        size_t keep = l->pend.len - l->from;
        memmove(l->pend.p, l->pend.p + l->from, keep);
        l->pend.len = keep;
        l->pend.p[keep] = '\0';
        l->from = 0;
    }
    cb_buf_add(&l->pend, r->data, r->len);
    if (l->pend.failed || EVP_DigestUpdate(l->md, r->data, r->len) != 1) {
        fail(p, "out of memory");
        return;
    }
    l->off += r->len;
    l->eof = l->off >= l->size;
    pump(p);
}

/* Start the next read of the top level's object. */
static void read_more(pending *p)
{
    level *l = &p->out->lv[p->out->depth - 1];
    uint64_t end = l->off + READ_CHUNK < l->size ? l->off + READ_CHUNK : l->size;
    char err[600];
    if (!p->a->o.storage) {
        fail(p, "the result holds references to storage and cb-api has none");
        return;
    }
    p->phase = PHASE_READ;
    if (cb_storage_get(p->a->o.storage, l->url, l->off, end, got, p, err, sizeof err) != CB_OK) {
        p->phase = PHASE_WAIT;
        fail(p, err);
    }
}

/* A reference at the top level's from (its text is complete in pend):
 * push a level for its object. Returns 0, 1 when the text is not a
 * reference after all (sent as it is), -1 on a failure (p is freed). */
static int push(pending *p, size_t *used)
{
    struct body *b = p->out;
    level *l = &b->lv[b->depth - 1], *n;
    json_error_t je;
    cb_status s;
    cb_ref ref;
    json_t *v =
        cb_json_loadb(l->pend.p + l->from, l->pend.len - l->from, JSON_DISABLE_EOF_CHECK, &je, &s);
    if (!v)
        return 1; /* incomplete (more to read) or not JSON: the caller decides */
    *used = (size_t)je.position;
    if (!cb_ref_parse(v, &ref) || ref.size < 0 || strlen(ref.url) >= sizeof n->url ||
        (ref.sha256 && strlen(ref.sha256) != 64)) {
        json_decref(v);
        return 1;
    }
    n = &b->lv[b->depth++];
    memset(n, 0, sizeof *n);
    n->object = 1;
    snprintf(n->url, sizeof n->url, "%s", ref.url);
    snprintf(n->sha256, sizeof n->sha256, "%s", ref.sha256 ? ref.sha256 : "");
    n->size = (uint64_t)ref.size;
    n->eof = n->size == 0;
    json_decref(v);
    if (!(n->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(n->md, EVP_sha256(), NULL) != 1) {
        fail(p, "out of memory");
        return -1;
    }
    return 0;
}

/* The top level ended: check its object, pop it. 0, or -1 (p is freed). */
static int pop(pending *p)
{
    struct body *b = p->out;
    level *l = &b->lv[b->depth - 1];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[65], why[1200];
    if (l->object && l->sha256[0]) {
        if (EVP_DigestFinal_ex(l->md, md, &mdlen) != 1 || mdlen != 32) {
            fail(p, "cannot take the digest");
            return -1;
        }
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strcmp(hex, l->sha256) != 0) {
            snprintf(why, sizeof why, "%s: sha256 %s, the reference says %s", l->url, hex,
                     l->sha256);
            fail(p, why);
            return -1;
        }
    }
    level_cleanup(l);
    b->depth--;
    return 0;
}

/* Scan, send and read until a read or a write is under way, or the end. */
static void pump(pending *p)
{
    struct body *b = p->out;
    for (;;) {
        level *l;
        const char *at, *start;
        size_t avail, send;
        if (!p->req || p->closed) {
            let_go(p);
            return;
        }
        if (b->depth == 0) { /* the end */
            if (!b->ended) { /* a newline after the text, as every answer */
                b->ended = 1;
                evbuffer_add(b->out, "\n", 1);
            }
            if (flush(p))
                return;
            struct evhttp_request *req = cb_api_pending_take(p);
            if (req && b->started)
                evhttp_send_reply_end(req);
            else if (req) /* an empty result cannot be: JSON text is never empty */
                cb_api_send_error(req, 502, "storage", "the result is empty", NULL);
            finish(p);
            return;
        }
        l = &b->lv[b->depth - 1];
        start = l->pend.p ? l->pend.p + l->from : "";
        avail = l->pend.len - l->from;
        at = b->depth < LEVELS && avail >= PATTERN_LEN ? memmem(start, avail, pattern, PATTERN_LEN)
                                                       : NULL;
        if (at) {
            size_t used = 0;
            int rc;
            evbuffer_add(b->out, start, (size_t)(at - start));
            l->from += (size_t)(at - start);
            rc = push(p, &used);
            if (rc < 0)
                return;
            if (rc == 0) {
                l->from += used;
                continue;
            }
            /* not a complete reference: more to read, or text that only
             * looks like one (sent as it is) */
            if (!l->eof && l->pend.len - l->from < REF_MAX) {
                if (!flush(p))
                    read_more(p);
                return;
            }
            evbuffer_add(b->out, l->pend.p + l->from, PATTERN_LEN);
            l->from += PATTERN_LEN;
            continue;
        }
        /* no reference in what is there: send it, but for a tail that may
         * be the start of one */
        send = l->eof ? avail : (avail > PATTERN_LEN ? avail - PATTERN_LEN : 0);
        evbuffer_add(b->out, start, send);
        l->from += send;
        if (l->eof) {
            if (pop(p) != 0)
                return;
            continue;
        }
        if (!flush(p))
            read_more(p);
        return;
    }
}

void cb_api_body_start(pending *p)
{
    struct body *b = cb_calloc(1, sizeof *b);
    json_t *result = p->body;
    cb_ref ref;
    p->body = NULL;
    if (!b || !(b->out = evbuffer_new())) {
        cb_free(b);
        json_decref(result);
        p->status = 500;
        cb_api_pending_answer(p);
        return;
    }
    p->out = b;
    if (!p->a->o.storage && cb_ref_parse(result, &ref)) {
        struct evhttp_request *req = cb_api_pending_take(p);
        json_decref(result);
        if (req)
            cb_api_send_error(req, 503, "unavailable",
                              "the result is kept in storage and cb-api has none (--objects DIR "
                              "or \"storage\" in --config)",
                              NULL);
        finish(p);
        return;
    }
    b->depth = 1;
    /* the result's text: the reference of a result kept whole is its only content */
    {
        char *text = cb_json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(result);
        if (!text) {
            fail(p, "out of memory");
            return;
        }
        cb_buf_adds(&b->lv[0].pend, text);
        free(text);
        b->lv[0].eof = 1;
    }
    if (b->lv[0].pend.failed) {
        fail(p, "out of memory");
        return;
    }
    pump(p);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    let_go(arg);
}

void cb_api_body_closed(pending *p)
{
    /* While a chunk is being written the write callback will not come:
     * finish on the next loop turn. A read in flight finishes in got(). */
    if (p->phase == PHASE_WRITE && !p->later) {
        struct timeval now = {0, 0};
        if ((p->later = evtimer_new(p->a->base, later_cb, p)))
            evtimer_add(p->later, &now);
    }
}

void cb_api_body_drop(pending *p)
{
    /* the request is let go already (attached ones go with their
     * connections); a read in flight ends with the storage, in got() */
    if (p->phase != PHASE_READ)
        finish(p);
}
