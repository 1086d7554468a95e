/* tools/cmd_storage.c - `cb storage ls|put|get|rm|mb`: objects in the
 * configured storage (docs/storage.md), for users and tests.
 *
 *   cb storage ls s3://BUCKET[/PREFIX] [--json]     every page
 *   cb storage put LOCAL_FILE|- s3://BUCKET/KEY
 *   cb storage get s3://BUCKET/KEY|http(s)://URL [LOCAL_FILE|-] [--range START-END]
 *   cb storage rm s3://BUCKET/KEY... | --prefix s3://BUCKET/PREFIX
 *   cb storage mb s3://BUCKET
 *
 * Where: the "storage" object of --config FILE (or $CB_CONFIG); without one,
 * the file driver at $CB_DIR/objects (default ./.cb/objects, made on
 * demand), which is what `cb up` gives its daemons. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_cmd.h"
#include "cb_config.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_loop.h"
#include "cb_storage.h"
#include "refs.h"

typedef struct st_run {
    struct event_base *base;
    cb_storage *st;
    int done, failed, json;
    FILE *out;
    /* ls */
    char bucket[CB_STORAGE_BUCKET_MAX], prefix[CB_STORAGE_KEY_MAX + 1];
    char *token;
    json_t *listed;
    size_t count;
    /* rm --prefix */
    char **urls;
    size_t nurls, capurls;
    const char *what;
} st_run;

static int usage(void)
{
    fprintf(
        stderr,
        "usage: cb storage [--config FILE] ls s3://BUCKET[/PREFIX] [--json]\n"
        "       cb storage [--config FILE] put LOCAL_FILE|- s3://BUCKET/KEY\n"
        "       cb storage [--config FILE] get s3://BUCKET/KEY|URL [LOCAL_FILE|-] [--range S-E]\n"
        "       cb storage [--config FILE] rm s3://BUCKET/KEY... | --prefix s3://BUCKET/P\n"
        "       cb storage [--config FILE] mb s3://BUCKET\n"
        "The storage is the \"storage\" object of the configuration (--config, $CB_CONFIG),\n"
        "else the file driver at $CB_DIR/objects (default ./.cb/objects).\n");
    return 2;
}

static int failed(st_run *r, const cb_storage_res *res)
{
    if (res->status == CB_OK)
        return 0;
    fprintf(stderr, "cb storage %s: %s\n", r->what, res->error);
    r->failed = 1;
    r->done = 1;
    return 1;
}

static int run(st_run *r)
{
    while (!r->done)
        if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
            return -1;
    return 0;
}

/* ---- ls ------------------------------------------------------------------------ */

static void list_page(const cb_storage_res *res, void *ctx);

static void list_next(st_run *r)
{
    char err[512];
    /* pages of the configuration's list_page keys (1,000 by default) */
    if (cb_storage_list(r->st, r->bucket, r->prefix, r->token, cb_storage_list_page(r->st),
                        list_page, r, err, sizeof err) != CB_OK) {
        fprintf(stderr, "cb storage %s: %s\n", r->what, err);
        r->failed = r->done = 1;
    }
}

static void list_page(const cb_storage_res *res, void *ctx)
{
    st_run *r = ctx;
    if (failed(r, res))
        return;
    for (size_t i = 0; i < res->nobjects; i++) {
        const cb_storage_object *o = &res->objects[i];
        r->count++;
        if (r->json) {
            char url[CB_STORAGE_URL_MAX];
            snprintf(url, sizeof url, "s3://%s/%s", r->bucket, o->key);
            json_array_append_new(r->listed,
                                  json_pack("{s:s,s:s,s:I,s:s}", "url", url, "key", o->key, "size",
                                            (json_int_t)o->size, "etag", o->etag));
        } else if (r->urls) {
            char url[CB_STORAGE_URL_MAX], **v;
            snprintf(url, sizeof url, "s3://%s/%s", r->bucket, o->key);
            if (r->nurls == r->capurls) {
                r->capurls = r->capurls ? r->capurls * 2 : 256;
                if (!(v = cb_realloc(r->urls, r->capurls * sizeof *v))) {
                    r->failed = r->done = 1;
                    return;
                }
                r->urls = v;
            }
            if (!(r->urls[r->nurls] = cb_strdup(url))) {
                r->failed = r->done = 1;
                return;
            }
            r->nurls++;
        } else {
            printf("%12llu  %s  s3://%s/%s\n", (unsigned long long)o->size, o->etag, r->bucket,
                   o->key);
        }
    }
    free(r->token);
    r->token = NULL;
    if (res->next && res->nobjects > 0) {
        if (!(r->token = cb_strdup(res->next))) {
            r->failed = r->done = 1;
            return;
        }
        list_next(r);
        return;
    }
    r->done = 1;
}

static int split_prefix(st_run *r, const char *url)
{
    char err[512];
    if (cb_storage_parse_url(url, 1, r->bucket, r->prefix, err, sizeof err) != 0) {
        fprintf(stderr, "cb storage %s: %s\n", r->what, err);
        return -1;
    }
    return 0;
}

static int do_ls(st_run *r, const char *url)
{
    if (split_prefix(r, url) != 0)
        return 2;
    if (r->json && !(r->listed = json_array()))
        return 1;
    list_next(r);
    if (run(r) != 0 || r->failed)
        return 1;
    if (r->json) {
        char *s = cb_json_dumps(r->listed, JSON_INDENT(1));
        if (!s)
            return 1;
        printf("%s\n", s);
        free(s);
    }
    return 0;
}

/* ---- put, get, rm, mb -------------------------------------------------------------- */

static void put_done(const cb_storage_res *res, void *ctx)
{
    st_run *r = ctx;
    if (failed(r, res))
        return;
    fprintf(stderr, "%llu bytes, etag %s\n", (unsigned long long)res->size, res->etag);
    r->done = 1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf = f ? cb_malloc(cap) : NULL;
    if (!f)
        fprintf(stderr, "cb storage put: %s: %s\n", path, strerror(errno));
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb;
            if (cap > CB_STORAGE_IO_MAX) {
                fprintf(stderr, "cb storage put: %s: over %zu bytes\n", path, CB_STORAGE_IO_MAX);
                free(buf);
                buf = NULL;
                break;
            }
            if (!(nb = cb_realloc(buf, cap * 2))) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        fprintf(stderr, "cb storage put: %s: %s\n", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    if (f && f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static void get_done(const cb_storage_res *res, void *ctx)
{
    st_run *r = ctx;
    if (failed(r, res))
        return;
    if (res->len && fwrite(res->data, 1, res->len, r->out) != res->len) {
        fprintf(stderr, "cb storage get: cannot write: %s\n", strerror(errno));
        r->failed = 1;
    }
    r->done = 1;
}

static void rm_done(const cb_storage_res *res, void *ctx)
{
    st_run *r = ctx;
    if (failed(r, res))
        return;
    r->done = 1;
}

static int one(st_run *r, cb_status s, const char *err)
{
    if (s != CB_OK) {
        fprintf(stderr, "cb storage %s: %s\n", r->what, err);
        return s == CB_EINVAL ? 2 : 1;
    }
    r->done = 0;
    if (run(r) != 0 || r->failed)
        return 1;
    return 0;
}

static int do_rm(st_run *r, int argc, char **argv)
{
    char err[512];
    int rc = 0;
    if (argc == 2 && strcmp(argv[0], "--prefix") == 0) {
        char **v = cb_calloc(1, sizeof *v);
        if (!v || split_prefix(r, argv[1]) != 0) {
            free(v);
            return 2;
        }
        r->urls = v;
        r->capurls = 1;
        list_next(r);
        if (run(r) != 0 || r->failed)
            rc = 1;
        for (size_t i = 0; i < r->nurls; i++) {
            if (!rc)
                rc = one(r, cb_storage_delete(r->st, r->urls[i], rm_done, r, err, sizeof err), err);
            free(r->urls[i]);
        }
        if (!rc)
            fprintf(stderr, "%zu objects deleted\n", r->nurls);
        free(r->urls);
        return rc;
    }
    for (int i = 0; i < argc && !rc; i++)
        rc = one(r, cb_storage_delete(r->st, argv[i], rm_done, r, err, sizeof err), err);
    return rc;
}

static int parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    char *end;
    unsigned long long x = strtoull(s, &end, 10), y;
    if (end == s || *end != '-')
        return -1;
    s = end + 1;
    if (!*s) {
        *a = x;
        *b = CB_STORAGE_RANGE_END;
        return 0;
    }
    y = strtoull(s, &end, 10);
    if (end == s || *end || y < x)
        return -1;
    *a = x;
    *b = y;
    return 0;
}

int cb_cmd_storage(int argc, char **argv)
{
    const char *config = NULL, *op;
    st_run r;
    char err[512] = "";
    int rc = 2, i = 1;

    memset(&r, 0, sizeof r);
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--help"))
            return usage(), 0;
        else
            break;
    }
    if (i >= argc)
        return usage();
    op = argv[i++];
    argc -= i;
    argv += i;
    r.what = op;
    cb_log_set_level(CB_LOG_ERROR);
    if (!(r.base = cb_loop_new()))
        return 1;
    if (!(r.st = cb_cli_open_storage("storage", config, r.base))) {
        event_base_free(r.base);
        return 1;
    }
    if (!strcmp(op, "ls") && argc >= 1) {
        r.json = argc == 2 && !strcmp(argv[1], "--json");
        rc = argc == 1 || r.json ? do_ls(&r, argv[0]) : usage();
    } else if (!strcmp(op, "put") && argc == 2) {
        size_t len;
        char *data = slurp(argv[0], &len);
        rc = data ? one(&r, cb_storage_put(r.st, argv[1], data, len, put_done, &r, err, sizeof err),
                        err)
                  : 1;
        free(data);
    } else if (!strcmp(op, "get") && argc >= 1 && argc <= 4) {
        uint64_t a = 0, b = CB_STORAGE_RANGE_END;
        const char *local = "-";
        rc = 0;
        for (int k = 1; k < argc && !rc; k++) {
            if (!strcmp(argv[k], "--range") && k + 1 < argc) {
                if (parse_range(argv[++k], &a, &b) != 0)
                    rc = usage();
            } else {
                local = argv[k];
            }
        }
        if (!rc) {
            r.out = strcmp(local, "-") ? fopen(local, "wb") : stdout;
            if (!r.out) {
                fprintf(stderr, "cb storage get: %s: %s\n", local, strerror(errno));
                rc = 1;
            } else {
                rc = one(&r, cb_storage_get(r.st, argv[0], a, b, get_done, &r, err, sizeof err),
                         err);
                if (r.out != stdout && fclose(r.out) != 0 && !rc) {
                    fprintf(stderr, "cb storage get: %s: %s\n", local, strerror(errno));
                    rc = 1;
                }
            }
        }
    } else if (!strcmp(op, "rm") && argc >= 1) {
        rc = do_rm(&r, argc, argv);
    } else if (!strcmp(op, "mb") && argc == 1) {
        char bucket[CB_STORAGE_BUCKET_MAX], key[CB_STORAGE_KEY_MAX + 1];
        if (cb_storage_parse_url(argv[0], 1, bucket, key, err, sizeof err) != 0 || *key) {
            fprintf(stderr, "cb storage mb: %s\n", *err ? err : "give s3://BUCKET only");
            rc = 2;
        } else {
            rc = one(&r, cb_storage_make_bucket(r.st, bucket, rm_done, &r, err, sizeof err), err);
        }
    } else {
        rc = usage();
    }
    free(r.token);
    json_decref(r.listed);
    cb_storage_free(r.st);
    event_base_free(r.base);
    return rc;
}
