/* SPDX-License-Identifier: Apache-2.0 */
/* The buffer pool: one malloc per buffer (header and data together), recycled via a free list. */
#include "core/bufpool.h"

#include <stdlib.h>

enum mesh_err mesh_bufpool_init(struct mesh_bufpool *pool, uint32_t buf_size, uint32_t max_bufs,
                                uint32_t max_idle)
{
    if (buf_size == 0 || buf_size > (UINT32_C(1) << 31) || max_bufs == 0)
        return MESH_E_INVALID;
    pool->free_list = NULL;
    pool->buf_size = buf_size;
    pool->max_bufs = max_bufs;
    pool->max_idle = max_idle;
    pool->allocated = 0;
    pool->idle = 0;
    pool->failures = 0;
    return MESH_OK;
}

void mesh_bufpool_destroy(struct mesh_bufpool *pool)
{
    while (pool->free_list != NULL) {
        struct mesh_buf *b = pool->free_list;
        pool->free_list = b->next;
        free(b);
        pool->allocated--;
        pool->idle--;
    }
    /* A later put of a buffer still out frees it rather than keeping it. */
    pool->max_idle = 0;
}

struct mesh_buf *mesh_bufpool_get(struct mesh_bufpool *pool)
{
    struct mesh_buf *b = pool->free_list;
    if (b != NULL) {
        pool->free_list = b->next;
        pool->idle--;
    } else {
        if (pool->allocated >= pool->max_bufs) {
            pool->failures++;
            return NULL;
        }
        b = malloc(sizeof(*b) + pool->buf_size);
        if (b == NULL) {
            pool->failures++;
            return NULL;
        }
        b->data = (char *)(b + 1);
        b->cap = pool->buf_size;
        pool->allocated++;
    }
    b->start = 0;
    b->end = 0;
    b->next = NULL;
    return b;
}

void mesh_bufpool_put(struct mesh_bufpool *pool, struct mesh_buf *b)
{
    if (b == NULL)
        return;
    if (pool->idle >= pool->max_idle) {
        free(b);
        pool->allocated--;
        return;
    }
    b->next = pool->free_list;
    pool->free_list = b;
    pool->idle++;
}
