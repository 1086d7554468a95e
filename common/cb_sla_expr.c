/* common/cb_sla_expr.c - the SLA constraint language (see cb_sla_expr.h):
 * a recursive-descent parser into a small tree, and its evaluation with
 * three-valued logic (a metric without a value yet is unknown; && and ||
 * decide when one side does). */
#include "cb_sla_expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

#define MAX_DEPTH 32  /* nesting of parentheses and ! */
#define MAX_NODES 128 /* a 512-byte constraint has far fewer */

static const cb_sla_metric_info metrics[] = {
    {"execution_time", CB_SLA_LEVEL_TASK, "ms"},   /* a task's started -> outcome */
    {"queue_time", CB_SLA_LEVEL_TASK, "ms"},       /* job submitted -> the task started */
    {"dispatch_latency", CB_SLA_LEVEL_TASK, "ms"}, /* dispatched -> started */
    {"task_retries", CB_SLA_LEVEL_TASK, "count"},  /* attempts - 1 */
    {"makespan", CB_SLA_LEVEL_JOB, "ms"},          /* submitted -> finished */
    {"job_queue_time", CB_SLA_LEVEL_JOB, "ms"},    /* submitted -> started */
    {"failure_rate", CB_SLA_LEVEL_JOB, "ratio"},   /* failed tasks / tasks */
    {"retries", CB_SLA_LEVEL_JOB, "count"},        /* the job's retries */
    {"throughput", CB_SLA_LEVEL_JOB, "tasks/s"},   /* tasks / makespan */
    {"task_cost", CB_SLA_LEVEL_TASK, "amount"},    /* the attempt's invocation (cb_cost.h) */
    {"cost", CB_SLA_LEVEL_JOB, "amount"},          /* the job's invocations, in prices' unit */
    {"query", CB_SLA_LEVEL_QUERY, "as queried"},   /* the guarantee's Prometheus query */
};

static const char *const agg_names[] = {"",      "avg", "min", "max", "sum",
                                        "count", "p50", "p90", "p95", "p99"};

const cb_sla_metric_info *cb_sla_metric_known(const char *name)
{
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        if (!strcmp(metrics[i].name, name))
            return &metrics[i];
    return NULL;
}

_Static_assert(sizeof metrics / sizeof metrics[0] == CB_SLA_NMETRICS, "CB_SLA_NMETRICS");

int cb_sla_metric_index(const char *name)
{
    const cb_sla_metric_info *m = cb_sla_metric_known(name);
    return m ? (int)(m - metrics) : -1;
}

const cb_sla_metric_info *cb_sla_metrics(size_t *n)
{
    *n = sizeof metrics / sizeof metrics[0];
    return metrics;
}

const char *cb_sla_agg_name(cb_sla_agg a)
{
    return (unsigned)a < sizeof agg_names / sizeof agg_names[0] ? agg_names[a] : "";
}

typedef enum kind { N_OR, N_AND, N_NOT, N_CMP } kind;
typedef enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE } op;

typedef struct operand {
    const cb_sla_metric_info *metric; /* NULL: a number */
    cb_sla_agg agg;
    double number;
} operand;

struct cb_sla_expr {
    kind k;
    op o;
    operand l, r;              /* N_CMP */
    struct cb_sla_expr *a, *b; /* N_OR, N_AND: both; N_NOT: a */
};

typedef struct parser {
    const char *s;
    size_t pos;
    int depth, nodes;
    char *err;
    size_t errlen;
    int failed;
} parser;

static void fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (p->failed)
        return;
    p->failed = 1;
    n = snprintf(p->err, p->errlen, "at %zu: ", at);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void skip(parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static int eat(parser *p, const char *tok)
{
    size_t n = strlen(tok);
    skip(p);
    if (strncmp(p->s + p->pos, tok, n) != 0)
        return 0;
    p->pos += n;
    return 1;
}

static cb_sla_expr *node(parser *p, kind k)
{
    cb_sla_expr *e;
    if (++p->nodes > MAX_NODES) {
        fail(p, p->pos, "the constraint has more than %d parts", MAX_NODES);
        return NULL;
    }
    if (!(e = cb_calloc(1, sizeof *e)))
        fail(p, p->pos, "out of memory");
    else
        e->k = k;
    return e;
}

/* "[name]" at p->pos (after skip); fills o->metric. */
static int metric_ref(parser *p, operand *o)
{
    char name[64];
    size_t start, n = 0;
    if (!eat(p, "[")) {
        fail(p, p->pos, "expected \"[\" and a metric");
        return -1;
    }
    skip(p);
    start = p->pos;
    while (isalnum((unsigned char)p->s[p->pos]) || p->s[p->pos] == '_') {
        if (n + 1 < sizeof name)
            name[n++] = p->s[p->pos];
        p->pos++;
    }
    name[n] = '\0';
    if (!n) {
        fail(p, start, "expected a metric name");
        return -1;
    }
    if (p->pos - start >= sizeof name || !(o->metric = cb_sla_metric_known(name))) {
        char known[300] = "";
        size_t k = 0;
        for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
            k += (size_t)snprintf(known + k, k < sizeof known ? sizeof known - k : 0, "%s%s",
                                  i ? ", " : "", metrics[i].name);
        fail(p, start, "unknown metric \"%.*s\" (known: %s)", (int)(p->pos - start), p->s + start,
             known);
        return -1;
    }
    if (!eat(p, "]")) {
        fail(p, p->pos, "expected \"]\" after the metric");
        return -1;
    }
    return 0;
}

static int operand_of(parser *p, operand *o)
{
    size_t start;
    skip(p);
    start = p->pos;
    memset(o, 0, sizeof *o);
    if (p->s[p->pos] == '[')
        return metric_ref(p, o);
    if (isalpha((unsigned char)p->s[p->pos])) {
        size_t n = 0;
        while (isalnum((unsigned char)p->s[p->pos + n]))
            n++;
        for (size_t a = 1; a < sizeof agg_names / sizeof agg_names[0]; a++)
            if (strlen(agg_names[a]) == n && !strncmp(p->s + start, agg_names[a], n)) {
                o->agg = (cb_sla_agg)a;
                break;
            }
        if (!o->agg) {
            fail(p, start,
                 "unknown function \"%.*s\" (known: avg, min, max, sum, count, p50, p90, p95, "
                 "p99) or a metric without its brackets",
                 (int)n, p->s + start);
            return -1;
        }
        p->pos += n;
        if (!eat(p, "(")) {
            fail(p, p->pos, "expected \"(\" after %s", agg_names[o->agg]);
            return -1;
        }
        if (metric_ref(p, o) != 0)
            return -1;
        if (!eat(p, ")")) {
            fail(p, p->pos, "expected \")\" after %s's metric", agg_names[o->agg]);
            return -1;
        }
        return 0;
    }
    if (isdigit((unsigned char)p->s[p->pos]) || p->s[p->pos] == '-' || p->s[p->pos] == '+' ||
        p->s[p->pos] == '.') {
        char *end;
        errno = 0;
        o->number = strtod(p->s + start, &end);
        if (end == p->s + start || errno == ERANGE || !isfinite(o->number) ||
            (*end && (isalpha((unsigned char)*end) || *end == '_'))) {
            fail(p, start, "expected a number");
            return -1;
        }
        p->pos = (size_t)(end - p->s);
        return 0;
    }
    if (!p->s[p->pos])
        fail(p, start, "expected an operand, found the end");
    else
        fail(p, start,
             "expected an operand (a number, [metric] or avg([metric]) ...), found "
             "\"%c\"",
             p->s[p->pos]);
    return -1;
}

static cb_sla_expr *parse_or(parser *p);

static cb_sla_expr *parse_cmp(parser *p)
{
    static const struct {
        const char *tok;
        op o;
    } ops[] = {{"<=", OP_LE}, {">=", OP_GE}, {"==", OP_EQ},
               {"!=", OP_NE}, {"<", OP_LT},  {">", OP_GT}};
    cb_sla_expr *e = node(p, N_CMP);
    size_t i;
    if (!e)
        return NULL;
    if (operand_of(p, &e->l) != 0)
        goto bad;
    skip(p);
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (eat(p, ops[i].tok))
            break;
    if (i == sizeof ops / sizeof ops[0]) {
        fail(p, p->pos, "expected a comparison (< <= > >= == !=)");
        goto bad;
    }
    e->o = ops[i].o;
    if (operand_of(p, &e->r) != 0)
        goto bad;
    if (!e->l.metric && !e->r.metric) {
        fail(p, p->pos, "a comparison needs a metric on one side");
        goto bad;
    }
    return e;
bad:
    free(e);
    return NULL;
}

static cb_sla_expr *parse_not(parser *p)
{
    cb_sla_expr *e;
    size_t at;
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->pos, "nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    skip(p);
    at = p->pos;
    if (p->s[p->pos] == '!' && p->s[p->pos + 1] != '=') {
        p->pos++;
        if ((e = node(p, N_NOT)) && !(e->a = parse_not(p))) {
            free(e);
            e = NULL;
        }
    } else if (eat(p, "(")) {
        e = parse_or(p);
        if (e && !eat(p, ")")) {
            fail(p, p->pos, "expected \")\" to close the \"(\" at %zu", at);
            cb_sla_expr_free(e);
            e = NULL;
        }
    } else {
        e = parse_cmp(p);
    }
    p->depth--;
    return e;
}

static cb_sla_expr *parse_bin(parser *p, kind k)
{
    const char *tok = k == N_OR ? "||" : "&&";
    cb_sla_expr *e = k == N_OR ? parse_bin(p, N_AND) : parse_not(p);
    while (e && eat(p, tok)) {
        cb_sla_expr *n = node(p, k);
        if (!n) {
            cb_sla_expr_free(e);
            return NULL;
        }
        n->a = e;
        e = n;
        if (!(n->b = k == N_OR ? parse_bin(p, N_AND) : parse_not(p))) {
            cb_sla_expr_free(e);
            return NULL;
        }
    }
    return e;
}

static cb_sla_expr *parse_or(parser *p)
{
    return parse_bin(p, N_OR);
}

static int levels(const cb_sla_expr *e, cb_sla_level *seen)
{
    if (!e)
        return 0;
    if (e->k == N_CMP) {
        const operand *o[2] = {&e->l, &e->r};
        for (int i = 0; i < 2; i++) {
            if (!o[i]->metric)
                continue;
            if (*seen && *seen != o[i]->metric->level)
                return -1;
            *seen = o[i]->metric->level;
        }
        return 0;
    }
    return levels(e->a, seen) || levels(e->b, seen) ? -1 : 0;
}

cb_status cb_sla_parse(const char *text, cb_sla_expr **out, char *err, size_t errlen)
{
    parser p = {text, 0, 0, 0, err, errlen, 0};
    cb_sla_expr *e;
    cb_sla_level lv = CB_SLA_LEVEL_NONE;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!text || strlen(text) > CB_SLA_EXPR_MAX) {
        fail(&p, 0, "the constraint is empty or longer than %d bytes", CB_SLA_EXPR_MAX);
        return CB_EINVAL;
    }
    if (!(e = parse_or(&p)))
        return CB_EINVAL;
    skip(&p);
    if (text[p.pos]) {
        fail(&p, p.pos, "unexpected \"%.20s\"", text + p.pos);
        cb_sla_expr_free(e);
        return CB_EINVAL;
    }
    if (levels(e, &lv) != 0) {
        fail(&p, 0, "the constraint mixes metrics of different levels (task, job, query)");
        cb_sla_expr_free(e);
        return CB_EINVAL;
    }
    *out = e;
    return CB_OK;
}

void cb_sla_expr_free(cb_sla_expr *e)
{
    if (!e)
        return;
    cb_sla_expr_free(e->a);
    cb_sla_expr_free(e->b);
    free(e);
}

cb_sla_level cb_sla_expr_level(const cb_sla_expr *e)
{
    cb_sla_level lv = CB_SLA_LEVEL_NONE;
    (void)levels(e, &lv);
    return lv;
}

int cb_sla_expr_aggregates(const cb_sla_expr *e)
{
    if (!e)
        return 0;
    if (e->k == N_CMP)
        return e->l.agg != CB_SLA_AGG_NONE || e->r.agg != CB_SLA_AGG_NONE;
    return cb_sla_expr_aggregates(e->a) || cb_sla_expr_aggregates(e->b);
}

static int is_metric(const operand *o, const char *metric)
{
    return o->metric && o->agg == CB_SLA_AGG_NONE && !strcmp(o->metric->name, metric);
}

double cb_sla_expr_bound(const cb_sla_expr *e, const char *metric)
{
    double a, b;
    if (!e)
        return INFINITY;
    switch (e->k) {
    case N_CMP:
        if (is_metric(&e->l, metric) && !e->r.metric && (e->o == OP_LT || e->o == OP_LE))
            return e->r.number;
        if (is_metric(&e->r, metric) && !e->l.metric && (e->o == OP_GT || e->o == OP_GE))
            return e->l.number;
        return INFINITY;
    case N_AND:
        a = cb_sla_expr_bound(e->a, metric);
        b = cb_sla_expr_bound(e->b, metric);
        return a < b ? a : b;
    case N_OR:
        a = cb_sla_expr_bound(e->a, metric);
        b = cb_sla_expr_bound(e->b, metric);
        return a > b ? a : b;
    default:
        return INFINITY; /* a negation bounds nothing we can use */
    }
}

static int value(const operand *o, cb_sla_lookup lookup, void *ctx, double *v)
{
    if (!o->metric) {
        *v = o->number;
        return 0;
    }
    return lookup(ctx, o->metric->name, o->agg, v) == 0 && !isnan(*v) ? 0 : -1;
}

/* obs[0]: the metric side of the deciding comparison, obs[1]: the other */
static cb_sla_verdict eval(const cb_sla_expr *e, cb_sla_lookup lookup, void *ctx, double obs[2])
{
    cb_sla_verdict a, b;
    double l, r, oa[2] = {NAN, NAN}, ob[2] = {NAN, NAN};
    int holds = 0;
    switch (e->k) {
    case N_CMP:
        if (value(&e->l, lookup, ctx, &l) != 0 || value(&e->r, lookup, ctx, &r) != 0)
            return CB_SLA_UNKNOWN;
        switch (e->o) {
        case OP_LT:
            holds = l < r;
            break;
        case OP_LE:
            holds = l <= r;
            break;
        case OP_GT:
            holds = l > r;
            break;
        case OP_GE:
            holds = l >= r;
            break;
        case OP_EQ:
            holds = l == r;
            break;
        case OP_NE:
            holds = l != r;
            break;
        }
        obs[0] = e->l.metric ? l : r;
        obs[1] = e->l.metric ? r : l;
        return holds ? CB_SLA_HOLDS : CB_SLA_VIOLATED;
    case N_NOT:
        a = eval(e->a, lookup, ctx, obs);
        return a == CB_SLA_UNKNOWN ? a : a == CB_SLA_HOLDS ? CB_SLA_VIOLATED : CB_SLA_HOLDS;
    case N_AND:
    case N_OR:
        a = eval(e->a, lookup, ctx, oa);
        b = eval(e->b, lookup, ctx, ob);
        {
            /* the side that decides: for &&, a violated one; for ||, a holding one */
            cb_sla_verdict decide = e->k == N_AND ? CB_SLA_VIOLATED : CB_SLA_HOLDS;
            if (a == decide || b == decide) {
                memcpy(obs, a == decide ? oa : ob, sizeof oa);
                return decide;
            }
            if (a == CB_SLA_UNKNOWN || b == CB_SLA_UNKNOWN)
                return CB_SLA_UNKNOWN;
            memcpy(obs, oa, sizeof oa);
            return a; /* both the other way */
        }
    }
    return CB_SLA_UNKNOWN;
}

cb_sla_verdict cb_sla_eval(const cb_sla_expr *e, cb_sla_lookup lookup, void *ctx, double *observed,
                           double *threshold)
{
    double obs[2] = {NAN, NAN};
    cb_sla_verdict v = e ? eval(e, lookup, ctx, obs) : CB_SLA_UNKNOWN;
    if (observed)
        *observed = obs[0];
    if (threshold)
        *threshold = obs[1];
    return v;
}
