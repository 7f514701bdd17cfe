/* SPDX-License-Identifier: Apache-2.0 */
/* Growable buffer with a limit, so that no input can make us allocate without bound. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void mesh_strbuf_init(struct mesh_strbuf *sb, size_t max)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->max = max;
}

enum mesh_err mesh_strbuf_append(struct mesh_strbuf *sb, const void *p, size_t n)
{
    if (sb->max && sb->len + n > sb->max)
        return MESH_E_NOMEM;
    xgrow((void **)&sb->data, &sb->cap, sb->len + n + 1, 1);
    memcpy(sb->data + sb->len, p, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
    return MESH_OK;
}

enum mesh_err mesh_strbuf_puts(struct mesh_strbuf *sb, const char *s)
{
    return mesh_strbuf_append(sb, s, strlen(s));
}

enum mesh_err mesh_strbuf_printf(struct mesh_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MESH_E_INVALID;
    if (sb->max && sb->len + (size_t)n > sb->max)
        return MESH_E_NOMEM;
    xgrow((void **)&sb->data, &sb->cap, sb->len + (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return MESH_OK;
}

char *mesh_strbuf_take(struct mesh_strbuf *sb)
{
    char *p = sb->data ? sb->data : xstrdup("");
    mesh_strbuf_init(sb, sb->max);
    return p;
}

void mesh_strbuf_free(struct mesh_strbuf *sb)
{
    free(sb->data);
    mesh_strbuf_init(sb, sb->max);
}
