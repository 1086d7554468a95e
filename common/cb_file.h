/* common/cb_file.h - small files that other processes read while they may
 * be written: DIR/url, DIR/api_url, a daemon's port file. Written whole under
 * a temporary name and renamed into place, so a reader sees no file or the
 * whole text, never a part; and read back by their first line.
 * Thread-safe (no shared state). */
#ifndef CB_FILE_H
#define CB_FILE_H
#include <stddef.h>

/* Write `text` to `path` as above (the temporary is "PATH.tmp.PID").
 * Returns 0, or -1 with errno set. */
int cb_file_write_whole(const char *path, const char *text);
/* The same, the file created with `mode` (less the umask) from the start:
 * 0600 for a file that holds secrets is never readable by others, not even
 * for a moment. */
int cb_file_write_mode(const char *path, const char *text, int mode);

/* The first line of `path`, without its line end, into out (cut at
 * size - 1; "" when the file is missing or empty). Returns 0 when the line
 * is not empty, else -1. */
int cb_file_read_line(const char *path, char *out, size_t size);

#endif /* CB_FILE_H */
