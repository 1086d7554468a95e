/* common/cb_secret.c - credentials by name, and redaction (see cb_secret.h). */
#include "cb_secret.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_event.h"

#define MAX_SECRETS 256
#define MIN_LEN     6

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *known[MAX_SECRETS];
static size_t nknown;

void cb_secret_remember(const char *value)
{
    if (!value || strlen(value) < MIN_LEN)
        return;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nknown; i++)
        if (!strcmp(known[i], value)) {
            pthread_mutex_unlock(&mu);
            return;
        }
    if (nknown < MAX_SECRETS && (known[nknown] = strdup(value)))
        __atomic_store_n(&nknown, nknown + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
}

void cb_secret_reset(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nknown; i++)
        free(known[i]);
    __atomic_store_n(&nknown, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mu);
}

static int read_first_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(out, (int)size, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

const char *cb_secret_value(const json_t *v, char *out, size_t size, char *err, size_t errlen)
{
    const char *name, *env, *dir;
    char var[200], path[1200];
    size_t i;
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
        cb_secret_remember(out);
        return out;
    }
    name = json_string_value(json_object_get(v, "secret"));
    if (!name || !cb_name_valid(name)) {
        snprintf(err, errlen, "a credential is a string or {\"secret\": NAME}");
        return NULL;
    }
    snprintf(var, sizeof var, "CB_SECRET_%s", name);
    for (i = 10; var[i]; i++)
        var[i] = var[i] == '-' ? '_' : (char)toupper((unsigned char)var[i]);
    if ((env = getenv(var)) && *env) {
        snprintf(out, size, "%s", env);
    } else {
        if ((dir = getenv("CB_SECRETS_DIR")) && *dir)
            snprintf(path, sizeof path, "%s/%s", dir, name);
        else
            snprintf(path, sizeof path, "%s/secrets/%s",
                     getenv("CB_DIR") && *getenv("CB_DIR") ? getenv("CB_DIR") : ".cb", name);
        if (read_first_line(path, out, size) != 0 || !out[0]) {
            snprintf(err, errlen, "secret \"%s\": not in $%s nor %s", name, var, path);
            return NULL;
        }
    }
    cb_secret_remember(out);
    return out;
}

static int is_credential_key(const char *k)
{
    static const char *const keys[] = {"access_key_id", "secret_access_key", "session_token",
                                       "api_key"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i]))
            return 1;
    return 0;
}

/* Resolve j in place (a private copy); cred: j's strings are credentials. */
static int resolve_in(json_t *j, int cred, const char *path, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    void *tmp;
    char sub[512], buf[4096];
    if (!json_is_object(j))
        return 0;
    json_object_foreach_safe(j, tmp, k, v)
    {
        int c = cred || is_credential_key(k);
        snprintf(sub, sizeof sub, "%s/%s", path, k);
        if (json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "secret")) {
            char why[1400];
            if (!cb_secret_value(v, buf, sizeof buf, why, sizeof why)) {
                snprintf(err, errlen, "%s: %s", sub, why);
                return -1;
            }
            if (json_object_set_new(j, k, json_string(buf)) != 0)
                return -1;
        } else if (json_is_string(v) && c) {
            cb_secret_remember(json_string_value(v));
        } else if (resolve_in(v, !strcmp(k, "headers"), sub, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

json_t *cb_secret_resolve(const json_t *conf, char *err, size_t errlen)
{
    json_t *copy = json_deep_copy(conf);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (resolve_in(copy, 0, "", err, errlen) != 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

size_t cb_secret_redact(char *s)
{
    size_t found = 0;
    if (!s || !__atomic_load_n(&nknown, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nknown; i++) {
        size_t n = strlen(known[i]);
        for (char *p = strstr(s, known[i]); p; p = strstr(p + n, known[i])) {
            memset(p, '*', n);
            found++;
        }
    }
    pthread_mutex_unlock(&mu);
    return found;
}

/* v redacted as a new string, or NULL when it is not a string holding a
 * credential. */
static json_t *redacted(const json_t *v)
{
    char *c = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_t *r = c && cb_secret_redact(c) ? json_string(c) : NULL;
    free(c);
    return r;
}

/* Redact j's strings in place: each is replaced in its object or array. */
static void redact_in(json_t *j)
{
    json_t *v, *r;
    if (json_is_object(j)) {
        const char *k;
        void *tmp;
        json_object_foreach_safe(j, tmp, k, v)
        {
            if ((r = redacted(v)))
                json_object_set_new(j, k, r);
            else
                redact_in(v);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_array_foreach(j, i, v)
        {
            if ((r = redacted(v)))
                json_array_set_new(j, i, r);
            else
                redact_in(v);
        }
    }
}

json_t *cb_secret_redact_json(json_t *j)
{
    json_t *r;
    if (!j || !__atomic_load_n(&nknown, __ATOMIC_ACQUIRE))
        return j;
    if ((r = redacted(j))) {
        json_decref(j);
        return r;
    }
    redact_in(j);
    return j;
}
