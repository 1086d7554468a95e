/* common/cb_log.c - JSON-lines logger. */
#include "cb_log.h"

#include "cb_secret.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_time.h"

/* -1 = not yet read from the environment. */
static atomic_int log_level = -1;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void cb_log_set_level(cb_log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

int cb_log_enabled(cb_log_level lvl)
{
    int cur = atomic_load(&log_level);
    if (cur < 0) {
        const char *env = getenv("CB_LOG_LEVEL");
        cur = CB_LOG_INFO;
        for (int i = 0; env && i <= CB_LOG_OFF; i++)
            if (strcmp(env, level_names[i]) == 0)
                cur = i;
        atomic_store(&log_level, cur);
    }
    return (int)lvl >= cur;
}

static void log_emit(cb_log_level lvl, const char *mod, const char *tenant, const char *job,
                     const char *fmt, va_list ap)
{
    char msg[1024];
    char ts[40];
    json_t *o;
    char *line;

    vsnprintf(msg, sizeof msg, fmt, ap);
    cb_secret_redact(msg); /* a credential the process holds never reaches a log */
    o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "ts", json_string(cb_time_format(cb_time_now_ns(), ts, sizeof ts)));
    json_object_set_new(o, "level", json_string(level_names[lvl]));
    json_object_set_new(o, "mod", json_string(mod));
    json_object_set_new(o, "msg", json_string(msg));
    if (tenant)
        json_object_set_new(o, "tenant", json_string(tenant));
    if (job)
        json_object_set_new(o, "job", json_string(job));
    line = cb_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* overwrite the NUL; we write exactly n + 1 bytes */
    fwrite(line, 1, n + 1, stderr);
    free(line);
}

void cb_log(cb_log_level lvl, const char *mod, const char *fmt, ...)
{
    va_list ap;
    if (!cb_log_enabled(lvl))
        return;
    va_start(ap, fmt);
    log_emit(lvl, mod, NULL, NULL, fmt, ap);
    va_end(ap);
}

void cb_log_job(cb_log_level lvl, const char *mod, const char *tenant, const char *job,
                const char *fmt, ...)
{
    va_list ap;
    if (!cb_log_enabled(lvl))
        return;
    va_start(ap, fmt);
    log_emit(lvl, mod, tenant, job, fmt, ap);
    va_end(ap);
}
