/* common/cb_file.c - files written whole (see cb_file.h). */
#include "cb_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cb_file_write_whole(const char *path, const char *text)
{
    char tmp[4200];
    FILE *f;
    int ok, saved;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!(f = fopen(tmp, "w")))
        return -1;
    ok = fputs(text, f) >= 0;
    saved = errno;
    if (fclose(f) != 0 || !ok) {
        if (ok)
            saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}
