/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer for the control plane and CLI, with a hard size limit. */
#ifndef MESH_CORE_STRBUF_H
#define MESH_CORE_STRBUF_H

#include <stddef.h>

#include "mesh/err.h"

struct mesh_strbuf {
    char *data; /* always NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    size_t max; /* appends beyond this fail with MESH_E_NOMEM; 0 = no limit */
};

void mesh_strbuf_init(struct mesh_strbuf *sb, size_t max);
enum mesh_err mesh_strbuf_append(struct mesh_strbuf *sb, const void *p, size_t n);
enum mesh_err mesh_strbuf_puts(struct mesh_strbuf *sb, const char *s);
enum mesh_err mesh_strbuf_printf(struct mesh_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the buffer over (NUL-terminated, "" when empty) and resets sb. Caller frees. */
char *mesh_strbuf_take(struct mesh_strbuf *sb);
void mesh_strbuf_free(struct mesh_strbuf *sb);

#endif
