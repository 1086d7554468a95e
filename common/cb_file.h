/* common/cb_file.h - small files that other processes read while they may
 * be written: DIR/url, DIR/api_url, a daemon's port file. Written whole under
 * a temporary name and renamed into place, so a reader sees no file or the
 * whole text, never a part. Thread-safe (no shared state). */
#ifndef CB_FILE_H
#define CB_FILE_H

/* Write `text` to `path` as above (the temporary is "PATH.tmp.PID").
 * Returns 0, or -1 with errno set. */
int cb_file_write_whole(const char *path, const char *text);
/* The same, the file created with `mode` (less the umask) from the start:
 * 0600 for a file that holds secrets is never readable by others, not even
 * for a moment. */
int cb_file_write_mode(const char *path, const char *text, int mode);

#endif /* CB_FILE_H */
