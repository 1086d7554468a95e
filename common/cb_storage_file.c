/* common/cb_storage_file.c - the `file` storage driver: ROOT/BUCKET/KEY,
 * every call on one helper thread (cb_offload), results on the loop.
 *
 * A put writes a temporary file (".cb-put-*", never listed) in the target
 * directory, syncs it and renames it into place, so a reader sees the old
 * object or the new one, never a part. Listing walks the bucket's directory,
 * descending only where the prefix may match, and sorts the keys (byte
 * order, as S3); a page goes on after the last key of the one before (the
 * token is that key). */
#define _DEFAULT_SOURCE /* d_type and DT_* of readdir */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cb_alloc.h"
#include "cb_digest.h"
#include "cb_mailbox.h"
#include "cb_offload.h"
#include "cb_storage_int.h"

#define TMP_PREFIX ".cb-put-"

typedef struct file_drv {
    char root[1024];
    cb_mailbox *mb;
    cb_offload *off;
} file_drv;

typedef struct key_list {
    char **v;
    size_t n, cap;
    int oom;
} key_list;

typedef struct file_job {
    cb_offload_job job; /* first */
    file_drv *d;
    cb_storage_call *c;
    cb_storage_res r;
    char why[600];
    char etag[40];
    char *buf;               /* get */
    key_list keys;           /* list */
    cb_storage_object *objs; /* list */
    char **etags;            /* list */
    char next[CB_STORAGE_KEY_MAX + 1];
} file_job;

/* ---- on the helper thread ------------------------------------------------------------ */

static void fail(file_job *j, cb_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(file_job *j, cb_status s, const char *fmt, ...)
{
    va_list ap;
    j->r.status = s;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof j->why, fmt, ap);
    va_end(ap);
}

static int key_ok(const char *key)
{
    const char *p = key;
    if (!*key || *key == '/')
        return 0;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
            strncmp(p, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
            return 0;
        p += n;
        if (*p == '/')
            p++;
        else
            break;
    }
    return key[strlen(key) - 1] != '/';
}

static int bucket_dir(file_job *j, char *path, size_t n)
{
    struct stat sb;
    snprintf(path, n, "%s/%s", j->d->root, j->c->bucket);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fail(j, CB_ENOTFOUND, "NoSuchBucket: no bucket \"%s\"", j->c->bucket);
        return -1;
    }
    return 0;
}

static void etag_of(const struct stat *sb, char out[40])
{
    char text[96], hex[65];
    snprintf(text, sizeof text, "%lld:%lld.%09ld:%llu", (long long)sb->st_size,
             (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec, (unsigned long long)sb->st_ino);
    if (cb_digest_hex(text, strlen(text), hex) != CB_OK)
        snprintf(hex, sizeof hex, "%llx", (unsigned long long)sb->st_mtim.tv_nsec);
    snprintf(out, 40, "%.32s", hex);
}

/* The object's path; 0, or -1 with the failure set. */
static int object_path(file_job *j, char *path, size_t n)
{
    if (!key_ok(j->c->key)) {
        fail(j, CB_EINVAL, "%s",
             "the file driver cannot hold this key (an empty, \".\" or \"..\" segment, a "
             "leading or trailing '/', or a name starting with \"" TMP_PREFIX "\")");
        return -1;
    }
    if (bucket_dir(j, path, n) != 0)
        return -1;
    if (snprintf(path, n, "%s/%s/%s", j->d->root, j->c->bucket, j->c->key) >= (int)n) {
        fail(j, CB_EINVAL, "%s", "the path is too long for this file system");
        return -1;
    }
    return 0;
}

static void do_head(file_job *j, struct stat *sb, int *fd_out)
{
    char path[2200];
    if (object_path(j, path, sizeof path) != 0)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (fd < 0 && e != ENOENT && e != ENOTDIR && e != EISDIR)
            fail(j, e == EACCES ? CB_EDENIED : CB_EIO, "cannot open: %s", strerror(e));
        else
            fail(j, CB_ENOTFOUND, "%s", "NoSuchKey: no such object");
        return;
    }
    j->r.size = (uint64_t)sb->st_size;
    etag_of(sb, j->etag);
    j->r.etag = j->etag;
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
}

static void do_get(file_job *j)
{
    struct stat sb;
    int fd = -1;
    uint64_t end;
    size_t want, got = 0;
    do_head(j, &sb, &fd);
    if (j->r.status != CB_OK)
        return;
    end = j->c->end < j->r.size ? j->c->end : j->r.size;
    if (j->c->start > j->r.size || (j->c->start == j->r.size && j->r.size > 0)) {
        fail(j, CB_EINVAL,
             "InvalidRange: the range starts at byte %llu (the object has %llu bytes)",
             (unsigned long long)j->c->start, (unsigned long long)j->r.size);
        close(fd);
        return;
    }
    if (end - j->c->start > CB_STORAGE_IO_MAX) {
        fail(j, CB_ETOOBIG, "%s", "the range is over the bytes one get may read");
        close(fd);
        return;
    }
    want = (size_t)(end - j->c->start);
    if (!(j->buf = cb_malloc(want + 1))) {
        fail(j, CB_ENOMEM, "%s", "out of memory");
        close(fd);
        return;
    }
    while (got < want) {
        ssize_t n = pread(fd, j->buf + got, want - got, (off_t)(j->c->start + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(j, CB_EIO, "cannot read: %s", n < 0 ? strerror(errno) : "the file shrank");
            close(fd);
            return;
        }
        got += (size_t)n;
    }
    close(fd);
    j->buf[want] = '\0';
    j->r.data = j->buf;
    j->r.len = want;
}

/* mkdir -p of the directories of path below its bucket's (which exists). */
static int make_parents(char *path, size_t bucket_len)
{
    for (char *p = path + bucket_len + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST)
            return -1;
    }
    return 0;
}

static void do_put(file_job *j)
{
    char path[2200], tmp[2300], *slash;
    struct stat sb;
    size_t off = 0;
    int fd;
    if (object_path(j, path, sizeof path) != 0)
        return;
    if (make_parents(path, strlen(j->d->root) + 1 + strlen(j->c->bucket)) != 0) {
        fail(j, errno == EACCES ? CB_EDENIED : CB_EIO, "cannot make its directory: %s",
             strerror(errno));
        return;
    }
    slash = strrchr(path, '/');
    snprintf(tmp, sizeof tmp, "%.*s/" TMP_PREFIX "XXXXXX", (int)(slash - path), path);
    if ((fd = mkstemp(tmp)) < 0) {
        fail(j, errno == EACCES ? CB_EDENIED : CB_EIO, "cannot write: %s", strerror(errno));
        return;
    }
    while (off < j->c->len) {
        ssize_t n = write(fd, j->c->data + off, j->c->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (off < j->c->len || fchmod(fd, 0644) != 0 || fdatasync(fd) != 0 || fstat(fd, &sb) != 0) {
        fail(j, CB_EIO, "cannot write: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        return;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        fail(j, CB_EIO, "cannot write: %s", strerror(errno));
        unlink(tmp);
        return;
    }
    j->r.size = (uint64_t)sb.st_size;
    etag_of(&sb, j->etag);
    j->r.etag = j->etag;
}

static void do_delete(file_job *j)
{
    char path[2200];
    size_t stop;
    if (object_path(j, path, sizeof path) != 0)
        return;
    if (unlink(path) != 0 && errno != ENOENT && errno != ENOTDIR) {
        fail(j, errno == EACCES ? CB_EDENIED : CB_EIO, "cannot delete: %s", strerror(errno));
        return;
    }
    /* Directories the key made and nothing else uses go with it. */
    stop = strlen(j->d->root) + 1 + strlen(j->c->bucket);
    for (char *s = strrchr(path, '/'); s && (size_t)(s - path) > stop; s = strrchr(path, '/')) {
        *s = '\0';
        if (rmdir(path) != 0)
            break;
    }
}

static void keys_add(key_list *l, const char *k)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        char **v = cb_realloc(l->v, nc * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = nc;
    }
    if (!(l->v[l->n] = cb_strdup(k)))
        l->oom = 1;
    else
        l->n++;
}

/* Whether the entry rel (its name just put at the end) is a directory (1),
 * a regular file (0) or neither (-1): from readdir's type, stat only when
 * it does not say (a symbolic link is followed). */
static int entry_kind(const struct dirent *e, const char *bucket_path, const char *rel)
{
    char path[2400];
    struct stat sb;
    if (e->d_type == DT_DIR)
        return 1;
    if (e->d_type == DT_REG)
        return 0;
    if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
        return -1;
    snprintf(path, sizeof path, "%s/%s", bucket_path, rel);
    if (stat(path, &sb) != 0)
        return -1;
    return S_ISDIR(sb.st_mode) ? 1 : S_ISREG(sb.st_mode) ? 0 : -1;
}

/* Walk dir (the bucket's directory + rel, rel "" or ending in '/'): the keys
 * under prefix after `after` (NULL: all). A page costs a readdir of the
 * directories where such keys can be, not a stat of every object: only the
 * page's own objects are looked at (do_list). */
static int walk(const char *bucket_path, char *rel, size_t rel_len, const char *prefix,
                const char *after, key_list *out)
{
    char path[2400];
    size_t pl = strlen(prefix);
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "%s/%s", bucket_path, rel);
    if (!(d = opendir(path)))
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        int kind;
        if (e->d_name[0] == '.' && (nl == 1 || (nl == 2 && e->d_name[1] == '.')))
            continue;
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
            continue;
        if (rel_len + nl + 2 > CB_STORAGE_KEY_MAX + 1)
            continue;
        memcpy(rel + rel_len, e->d_name, nl + 1);
        if ((kind = entry_kind(e, bucket_path, rel)) == 1) {
            size_t l = rel_len + nl;
            rel[l] = '/';
            rel[l + 1] = '\0';
            /* only where a key under it can start with the prefix and come
             * after `after` (every key under "a/" is before "b") */
            if (strncmp(rel, prefix, l + 1 < pl ? l + 1 : pl) == 0 &&
                (!after || strncmp(rel, after, l + 1) >= 0) &&
                walk(bucket_path, rel, l + 1, prefix, after, out) != 0) {
                closedir(d);
                return -1;
            }
        } else if (kind == 0 && strncmp(rel, prefix, pl) == 0 &&
                   (!after || strcmp(rel, after) > 0)) {
            keys_add(out, rel);
        }
    }
    rel[rel_len] = '\0';
    closedir(d);
    return 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_list(file_job *j)
{
    char bpath[1200], rel[CB_STORAGE_KEY_MAX + 2] = "", opath[2400];
    size_t n;
    if (bucket_dir(j, bpath, sizeof bpath) != 0)
        return;
    if (walk(bpath, rel, 0, j->c->key, j->c->token, &j->keys) != 0 || j->keys.oom) {
        fail(j, j->keys.oom ? CB_ENOMEM : CB_EIO, "cannot list: %s",
             j->keys.oom ? "out of memory" : strerror(errno));
        return;
    }
    if (j->keys.n > 1) /* an empty listing has no array (qsort takes none) */
        qsort(j->keys.v, j->keys.n, sizeof *j->keys.v, by_key);
    n = j->keys.n < j->c->max_keys ? j->keys.n : j->c->max_keys;
    j->objs = cb_calloc(n ? n : 1, sizeof *j->objs);
    j->etags = cb_calloc(n ? n : 1, sizeof *j->etags);
    if (!j->objs || !j->etags) {
        fail(j, CB_ENOMEM, "%s", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        cb_storage_object *o = &j->objs[j->r.nobjects];
        snprintf(opath, sizeof opath, "%s/%s", bpath, j->keys.v[i]);
        if (stat(opath, &sb) != 0) /* deleted meanwhile */
            continue;
        if (!(j->etags[j->r.nobjects] = cb_malloc(40))) {
            fail(j, CB_ENOMEM, "%s", "out of memory");
            return;
        }
        etag_of(&sb, j->etags[j->r.nobjects]);
        o->key = j->keys.v[i];
        o->size = (uint64_t)sb.st_size;
        o->etag = j->etags[j->r.nobjects];
        j->r.nobjects++;
    }
    j->r.objects = j->objs;
    if (n < j->keys.n && n > 0) {
        snprintf(j->next, sizeof j->next, "%s", j->keys.v[n - 1]);
        j->r.next = j->next;
    }
}

static void do_mkbucket(file_job *j)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", j->d->root, j->c->bucket);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fail(j, errno == EACCES ? CB_EDENIED : CB_EIO, "cannot make the bucket: %s",
             strerror(errno));
}

static void work(cb_offload_job *oj)
{
    file_job *j = (file_job *)oj;
    switch (j->c->op) {
    case CB_ST_LIST:
        do_list(j);
        break;
    case CB_ST_HEAD:
        do_head(j, &(struct stat){0}, NULL);
        break;
    case CB_ST_GET:
        do_get(j);
        break;
    case CB_ST_PUT:
        do_put(j);
        break;
    case CB_ST_DELETE:
        do_delete(j);
        break;
    case CB_ST_MKBUCKET:
        do_mkbucket(j);
        break;
    }
}

/* ---- on the loop ------------------------------------------------------------------ */

static void job_free(file_job *j)
{
    for (size_t i = 0; i < j->keys.n; i++)
        free(j->keys.v[i]);
    free(j->keys.v);
    for (size_t i = 0; j->etags && i < j->r.nobjects; i++)
        free(j->etags[i]);
    free(j->etags);
    free(j->objs);
    free(j->buf);
    free(j);
}

static void finished(cb_mail *m, int cancelled)
{
    file_job *j = (file_job *)m;
    if (cancelled) { /* the loop is gone (never after file_release's drain) */
        cb_storage_call_drop(j->c);
    } else {
        if (j->r.status != CB_OK)
            j->r.error = j->why;
        cb_storage_call_done(j->c, &j->r);
    }
    job_free(j);
}

static void file_start(void *drv, cb_storage_call *c)
{
    file_drv *d = drv;
    file_job *j = cb_calloc(1, sizeof *j);
    if (!j) {
        cb_storage_call_fail(c, CB_ENOMEM, "out of memory");
        return;
    }
    j->d = d;
    j->c = c;
    j->job.work = work;
    j->job.mail.fn = finished;
    cb_offload_submit(d->off, &j->job);
}

static void file_release(void *drv)
{
    file_drv *d = drv;
    cb_offload_destroy(d->off); /* runs what is queued; the results wait in the mailbox */
    cb_mailbox_drain(d->mb);    /* their callbacks, on this (the loop's) thread */
    cb_mailbox_close(d->mb);
    free(d);
}

cb_status cb_storage_file_new(struct event_base *base, const char *root, void **drv, char *err,
                              size_t errlen)
{
    file_drv *d;
    struct stat sb;
    cb_status s;
    if (!root || !*root) {
        snprintf(err, errlen, "/storage/root: the file driver needs a directory");
        return CB_EINVAL;
    }
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "/storage/root: \"%s\" is not a directory", root);
        return CB_EINVAL;
    }
    if (!(d = cb_calloc(1, sizeof *d)))
        return CB_ENOMEM;
    snprintf(d->root, sizeof d->root, "%s", root);
    while (strlen(d->root) > 1 && d->root[strlen(d->root) - 1] == '/')
        d->root[strlen(d->root) - 1] = '\0';
    if ((s = cb_mailbox_create(base, 0, &d->mb)) != CB_OK) {
        free(d);
        return s;
    }
    if ((s = cb_offload_create(d->mb, &d->off)) != CB_OK) {
        cb_mailbox_close(d->mb);
        free(d);
        return s;
    }
    *drv = d;
    return CB_OK;
}

const cb_storage_driver cb_storage_file_driver = {"file", file_start, file_release};
