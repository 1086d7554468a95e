/* tools/cli.c - defaults shared by the cb client commands (see cli.h). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_event.h"

static const char *cb_dir(void)
{
    const char *d = getenv("CB_DIR");
    return d && *d ? d : ".cb";
}

const char *cb_cli_broker_url(const char *given)
{
    static char url[512];
    const char *env = getenv("CB_BROKER_URL");
    char path[600];
    FILE *f;
    if (given)
        return given;
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/url", cb_dir());
    if (!(f = fopen(path, "r")))
        return NULL;
    if (!fgets(url, sizeof url, f))
        url[0] = '\0';
    fclose(f);
    url[strcspn(url, "\r\n")] = '\0';
    return url[0] ? url : NULL;
}

const char *cb_cli_store_dir(const char *given)
{
    static char dir[600];
    const char *env = getenv("CB_STORE");
    if (given)
        return given;
    if (env && *env)
        return env;
    snprintf(dir, sizeof dir, "%s/store", cb_dir());
    return dir;
}

int cb_cli_job_ref(const char *ref, char *tenant, char *job, size_t size)
{
    const char *slash = strchr(ref, '/');
    if (!slash || (size_t)(slash - ref) >= size || strlen(slash + 1) >= size)
        return -1;
    snprintf(tenant, size, "%.*s", (int)(slash - ref), ref);
    snprintf(job, size, "%s", slash + 1);
    return cb_name_valid(tenant) && cb_name_valid(job) ? 0 : -1;
}
