/* SPDX-License-Identifier: Apache-2.0 */
/* A text table whose columns are as wide as their widest cell, as kubectl prints them. */
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define COLUMN_GAP 3

void cli_table_init(struct cli_table *t, size_t ncols)
{
    t->ncols = ncols;
    t->cells = NULL;
    t->n = 0;
    t->cap = 0;
}

void cli_table_add(struct cli_table *t, const char *cell)
{
    xgrow((void **)&t->cells, &t->cap, t->n + 1, sizeof(*t->cells));
    t->cells[t->n++] = xstrdup(cell ? cell : "");
}

void cli_table_addf(struct cli_table *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *cell = xmalloc(len < 0 ? 1 : (size_t)len + 1);
    cell[0] = '\0';
    if (len >= 0) {
        va_start(ap, fmt);
        vsnprintf(cell, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    xgrow((void **)&t->cells, &t->cap, t->n + 1, sizeof(*t->cells));
    t->cells[t->n++] = cell;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
    if (t->ncols == 0)
        return;
    size_t *width = xcalloc(t->ncols, sizeof(*width));
    for (size_t i = 0; i < t->n; i++) {
        size_t len = strlen(t->cells[i]);
        if (len > width[i % t->ncols])
            width[i % t->ncols] = len;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t col = i % t->ncols;
        bool last = col + 1 == t->ncols || i + 1 == t->n;
        if (last)
            fprintf(out, "%s\n", t->cells[i]);
        else
            fprintf(out, "%-*s", (int)(width[col] + COLUMN_GAP), t->cells[i]);
    }
    free(width);
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n = 0;
    t->cap = 0;
}
