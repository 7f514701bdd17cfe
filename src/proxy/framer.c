/* SPDX-License-Identifier: Apache-2.0 */
/* Body framing for relays: which buffered bytes belong to the current body. */
#include "framer.h"

void mesh_framer_init(struct mesh_framer *f, enum mesh_framing kind, uint64_t length)
{
    f->kind = kind;
    f->unscanned = length;
    f->ready = 0;
    f->failed = false;
    f->complete = kind == MESH_FRAME_NONE || (kind == MESH_FRAME_LENGTH && length == 0);
    if (kind == MESH_FRAME_CHUNKED)
        mesh_h1_chunked_init(&f->chunked);
}

bool mesh_framer_scan(struct mesh_framer *f, const char *p, size_t len)
{
    if (f->complete || len <= f->ready)
        return !f->failed;
    size_t fresh = len - f->ready;
    switch (f->kind) {
    case MESH_FRAME_NONE:
        break;
    case MESH_FRAME_LENGTH: {
        size_t take = fresh < f->unscanned ? fresh : (size_t)f->unscanned;
        f->ready += take;
        f->unscanned -= take;
        f->complete = f->unscanned == 0;
        break;
    }
    case MESH_FRAME_CHUNKED: {
        size_t used = 0;
        enum mesh_err err = mesh_h1_chunked_feed(&f->chunked, p + f->ready, fresh, &used);
        f->ready += used;
        if (err == MESH_OK)
            f->complete = true;
        else if (err != MESH_E_AGAIN)
            f->failed = true;
        break;
    }
    case MESH_FRAME_UNTIL_CLOSE:
    case MESH_FRAME_RAW:
        f->ready = len;
        break;
    }
    return !f->failed;
}

void mesh_framer_eof(struct mesh_framer *f)
{
    if (f->kind == MESH_FRAME_UNTIL_CLOSE)
        f->complete = true;
    else if (!f->complete)
        f->failed = true;
}
