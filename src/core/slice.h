/* SPDX-License-Identifier: Apache-2.0 */
/* Non-owning views of bytes (pointer + length) and the few comparisons the hot path needs. */
#ifndef MESH_CORE_SLICE_H
#define MESH_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Borrowed bytes, not NUL-terminated. Whoever hands a slice out says how long it stays valid
 * (for the HTTP parser: as long as the buffer it parsed). p may be NULL only when len is 0. */
struct mesh_slice {
    const char *p;
    size_t len;
};

#define MESH_SLICE_LIT(s) ((struct mesh_slice){(s), sizeof(s) - 1})

static inline struct mesh_slice mesh_slice_make(const char *p, size_t len)
{
    return (struct mesh_slice){p, len};
}

/* A view of a NUL-terminated string (without its NUL). */
static inline struct mesh_slice mesh_slice_cstr(const char *s)
{
    return (struct mesh_slice){s, strlen(s)};
}

static inline bool mesh_slice_empty(struct mesh_slice s)
{
    return s.len == 0;
}

/* ASCII only: HTTP tokens are case-insensitive in ASCII, never by locale. */
static inline unsigned char mesh_ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static inline bool mesh_slice_eq(struct mesh_slice a, struct mesh_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool mesh_slice_eq_nocase(struct mesh_slice a, struct mesh_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (mesh_ascii_lower((unsigned char)a.p[i]) != mesh_ascii_lower((unsigned char)b.p[i]))
            return false;
    return true;
}

/* Compares with a NUL-terminated string: mesh_slice_eq_cstr(method, "GET"). */
static inline bool mesh_slice_eq_cstr(struct mesh_slice a, const char *s)
{
    return mesh_slice_eq(a, mesh_slice_cstr(s));
}

static inline bool mesh_slice_eq_cstr_nocase(struct mesh_slice a, const char *s)
{
    return mesh_slice_eq_nocase(a, mesh_slice_cstr(s));
}

static inline bool mesh_slice_starts_with(struct mesh_slice a, struct mesh_slice prefix)
{
    return a.len >= prefix.len && (prefix.len == 0 || memcmp(a.p, prefix.p, prefix.len) == 0);
}

#endif
