/* api/ui.c - the dashboard's files by name (see ui.h). */
#include "ui.h"

#include <string.h>

const cb_ui_file *cb_ui_find(const char *name)
{
    if (!*name)
        name = "index.html";
    for (unsigned i = 0; i < cb_ui_nfiles; i++)
        if (!strcmp(cb_ui_files[i].name, name))
            return &cb_ui_files[i];
    return NULL;
}
