/* SPDX-License-Identifier: Apache-2.0 */
/* The span of a finished, sampled stream, copied into its worker's ring. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stream.h"
#include "trace.h"

static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void mesh_trace_record_stream(struct mesh_stream *s, uint64_t duration_us)
{
    struct mesh_worker *w = s->w;
    struct mesh_tracer *t = w->proxy->tracer;
    if (!t)
        return;
    struct mesh_span_record *sp = mesh_tracer_reserve(t, w->index, w->st.shard);
    if (!sp)
        return;
    const struct mesh_trace_span *tr = &s->trace;
    memcpy(sp->trace_id, tr->trace_id, sizeof(sp->trace_id));
    memcpy(sp->span_id, tr->span_id, sizeof(sp->span_id));
    memcpy(sp->parent_id, tr->parent_id, sizeof(sp->parent_id));
    sp->has_parent = tr->has_parent;
    /* A sidecar's outbound listener calls out for its app: the client side of the hop. */
    sp->kind = s->c->role == MESH_LISTENER_ROUTER && w->proxy->opt.mode == MESH_PROXY_SIDECAR
                   ? MESH_SPAN_KIND_CLIENT
                   : MESH_SPAN_KIND_SERVER;
    sp->status = s->status > 0 && s->status < 1000 ? (uint16_t)s->status : 0;
    sp->retries = s->attempts;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sp->end_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    sp->start_ns = sp->end_ns - duration_us * 1000u;
    sp->peer_port = s->c->peer_port;
    copy_str(sp->method, sizeof(sp->method), s->method);
    copy_str(sp->path, sizeof(sp->path), s->path);
    copy_str(sp->authority, sizeof(sp->authority), s->authority);
    copy_str(sp->destination, sizeof(sp->destination), s->service);
    copy_str(sp->route, sizeof(sp->route), s->route ? s->route->name : "");
    copy_str(sp->endpoint, sizeof(sp->endpoint), s->ep ? s->ep->name : "");
    copy_str(sp->peer, sizeof(sp->peer), s->c->peer);
    copy_str(sp->request_id, sizeof(sp->request_id), s->request_id);
    mesh_tracer_commit(t, w->index);
}
