/* SPDX-License-Identifier: Apache-2.0 */
/* Fixed-size I/O buffers from a per-worker free list, with a hard cap on how many exist. */
#ifndef MESH_CORE_BUFPOOL_H
#define MESH_CORE_BUFPOOL_H

#include <stdint.h>
#include <string.h>

#include "mesh/err.h"

#define MESH_BUF_DEFAULT_SIZE (16u * 1024u)

/* A buffer: bytes [start, end) of data are readable, [end, cap) writable. `next` is free for the
 * holder to chain buffers while it owns one (the pool uses it for its free list). */
struct mesh_buf {
    char *data;
    uint32_t start, end, cap;
    struct mesh_buf *next;
};

/* Not thread-safe: one pool per worker, used from that worker's thread only. */
struct mesh_bufpool {
    struct mesh_buf *free_list; /* idle buffers, most recently returned first (cache-warm) */
    uint32_t buf_size;          /* bytes of data per buffer */
    uint32_t max_bufs;          /* hard cap on buffers in existence (idle + in use) */
    uint32_t max_idle;          /* idle buffers kept beyond this are freed on put */
    uint32_t allocated;         /* buffers in existence */
    uint32_t idle;              /* buffers on free_list */
    uint64_t failures;          /* gets answered NULL (cap reached or malloc failed) */
};

/* Sets up an empty pool; nothing is allocated until the first get. buf_size must be 1..2 GiB,
 * max_bufs at least 1 (MESH_E_INVALID otherwise). max_idle bounds the free list so memory
 * returns to the allocator after a burst. */
enum mesh_err mesh_bufpool_init(struct mesh_bufpool *pool, uint32_t buf_size, uint32_t max_bufs,
                                uint32_t max_idle);
/* Frees the idle buffers. Buffers still held by callers stay theirs: put them back first (put
 * after destroy frees them directly). */
void mesh_bufpool_destroy(struct mesh_bufpool *pool);
/* An empty buffer (start = end = 0, cap = buf_size), or NULL when max_bufs exist already or
 * malloc failed: the caller fails that one connection. The caller owns it until put. */
struct mesh_buf *mesh_bufpool_get(struct mesh_bufpool *pool);
/* Returns b (NULL is a no-op) to the pool, which owns it again. */
void mesh_bufpool_put(struct mesh_bufpool *pool, struct mesh_buf *b);
/* Buffers currently handed out. */
static inline uint32_t mesh_bufpool_in_use(const struct mesh_bufpool *pool)
{
    return pool->allocated - pool->idle;
}

static inline uint32_t mesh_buf_readable(const struct mesh_buf *b)
{
    return b->end - b->start;
}

static inline uint32_t mesh_buf_writable(const struct mesh_buf *b)
{
    return b->cap - b->end;
}

static inline char *mesh_buf_rptr(const struct mesh_buf *b)
{
    return b->data + b->start;
}

static inline char *mesh_buf_wptr(const struct mesh_buf *b)
{
    return b->data + b->end;
}

/* Marks n bytes written at mesh_buf_wptr as readable; n <= mesh_buf_writable. */
static inline void mesh_buf_commit(struct mesh_buf *b, uint32_t n)
{
    b->end += n;
}

/* Drops n readable bytes (n <= mesh_buf_readable); an emptied buffer rewinds to the start so
 * the whole capacity is writable again without a copy. */
static inline void mesh_buf_consume(struct mesh_buf *b, uint32_t n)
{
    b->start += n;
    if (b->start == b->end) {
        b->start = 0;
        b->end = 0;
    }
}

/* Moves the readable bytes to the front, making all free space writable. */
static inline void mesh_buf_compact(struct mesh_buf *b)
{
    if (b->start == 0)
        return;
    uint32_t n = b->end - b->start;
    if (n > 0)
        memmove(b->data, b->data + b->start, n);
    b->start = 0;
    b->end = n;
}

static inline void mesh_buf_reset(struct mesh_buf *b)
{
    b->start = 0;
    b->end = 0;
}

#endif
