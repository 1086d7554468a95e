/* api/ui.h - the dashboard's files, compiled into cb-api (tools/embed.py
 * makes them from api/ui/ at build time: no build step for users, nothing
 * read from the disk or fetched from the internet). Immutable; thread-safe. */
#ifndef CB_API_UI_H
#define CB_API_UI_H
#include <stddef.h>

typedef struct cb_ui_file {
    const char *name; /* "index.html", "app.js", ... */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} cb_ui_file;

extern const cb_ui_file cb_ui_files[];
extern const unsigned cb_ui_nfiles;

/* The file `name` ("" is index.html), or NULL. */
const cb_ui_file *cb_ui_find(const char *name);

#endif /* CB_API_UI_H */
