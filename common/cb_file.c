/* common/cb_file.c - files written whole (see cb_file.h). */
#include "cb_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cb_file_write_whole(const char *path, const char *text)
{
    return cb_file_write_mode(path, text, 0666);
}

int cb_file_write_mode(const char *path, const char *text, int mode)
{
    char tmp[4200];
    FILE *f;
    int ok, saved, fd;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode)) < 0)
        return -1;
    if (!(f = fdopen(fd, "w"))) {
        saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
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

int cb_file_read_line(const char *path, char *out, size_t size)
{
    FILE *f;
    if (size == 0)
        return -1;
    out[0] = '\0';
    if ((f = fopen(path, "r"))) {
        if (size < 2 || !fgets(out, (int)(size > 65536 ? 65536 : size), f))
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}
