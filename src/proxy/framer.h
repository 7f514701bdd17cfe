/* SPDX-License-Identifier: Apache-2.0 */
/* Finds how much of a buffer belongs to the body being relayed (content-length, chunked,
 * until-close or raw tunnel), so bodies stream through unchanged and stop exactly at their end. */
#ifndef MESH_PROXY_FRAMER_H
#define MESH_PROXY_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_parse.h"

enum mesh_framing {
    MESH_FRAME_NONE = 0, /* no body */
    MESH_FRAME_LENGTH,
    MESH_FRAME_CHUNKED,
    MESH_FRAME_UNTIL_CLOSE, /* response without length: ends when the upstream closes */
    MESH_FRAME_RAW,         /* a tunnel after 101: never ends by itself */
};

struct mesh_framer {
    enum mesh_framing kind;
    uint64_t unscanned; /* MESH_FRAME_LENGTH: body bytes not yet seen */
    struct mesh_h1_chunked chunked;
    size_t ready;  /* bytes at the front of the buffer that are body, not yet sent */
    bool complete; /* the end of the body has been seen */
    bool failed;   /* bad chunked framing */
};

void mesh_framer_init(struct mesh_framer *f, enum mesh_framing kind, uint64_t length);
/* Looks at the bytes after the ready ones (p points at the buffer front, len its size) and
 * extends ready. Returns false on bad framing. */
bool mesh_framer_scan(struct mesh_framer *f, const char *p, size_t len);
/* n bytes of the ready ones were sent and consumed from the buffer front. */
static inline void mesh_framer_sent(struct mesh_framer *f, size_t n)
{
    f->ready -= n;
}
/* The source closed: the end of an until-close body; an error for the others. */
void mesh_framer_eof(struct mesh_framer *f);
static inline bool mesh_framer_done(const struct mesh_framer *f)
{
    return f->complete && f->ready == 0;
}

#endif
