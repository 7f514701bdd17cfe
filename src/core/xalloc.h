/* SPDX-License-Identifier: Apache-2.0 */
/* Aborting allocators for the control plane and the CLI (never for the data plane). */
#ifndef MESH_CORE_XALLOC_H
#define MESH_CORE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows *items (of *cap elements of size each) to hold at least want elements. */
void xgrow(void **items, size_t *cap, size_t want, size_t size);
char *xstrdup(const char *s); /* NULL stays NULL */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
