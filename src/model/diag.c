/* SPDX-License-Identifier: Apache-2.0 */
/* Diagnostics: the list of problems a parse or validation found, and their one-line form. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/xalloc.h"
#include "mesh/document.h"
#include "node.h"

#define DEFAULT_FILE "<input>"

void mesh_diags_add(struct mesh_diags *diags, const char *file, unsigned line, unsigned col,
                    const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *message = xmalloc((size_t)n + 1);
    message[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(message, (size_t)n + 1, fmt, ap);
    va_end(ap);

    /* Lists stay short (one parse's problems), so growing by one keeps the struct cap-free. */
    diags->items = xrealloc(diags->items, (diags->len + 1) * sizeof(*diags->items));
    diags->items[diags->len++] = (struct mesh_diag){
        .file = xstrdup(file ? file : DEFAULT_FILE),
        .line = line,
        .col = col,
        .path = xstrdup(path ? path : ""),
        .message = message,
    };
}

void mesh_diags_clear(struct mesh_diags *diags)
{
    if (!diags)
        return;
    for (size_t i = 0; i < diags->len; i++) {
        free(diags->items[i].file);
        free(diags->items[i].path);
        free(diags->items[i].message);
    }
    free(diags->items);
    diags->items = NULL;
    diags->len = 0;
}

char *mesh_diag_format(const struct mesh_diag *diag)
{
    const char *file = diag->file ? diag->file : DEFAULT_FILE;
    const char *path = diag->path ? diag->path : "";
    const char *message = diag->message ? diag->message : "";
    char pos[32] = "";
    if (diag->line && diag->col)
        snprintf(pos, sizeof(pos), ":%u:%u", diag->line, diag->col);
    else if (diag->line)
        snprintf(pos, sizeof(pos), ":%u", diag->line);
    return xasprintf("%s%s: %s%s%s", file, pos, path, *path ? ": " : "", message);
}
