/* SPDX-License-Identifier: Apache-2.0 */
/* Upstream connections: keep-alive pools per endpoint address (per worker), non-blocking
 * connects under the circuit breaker's connection limit, idle timeouts. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"
#include "proxy.h"
#include "stream.h"

#define UPSTREAM_IDLE_TIMEOUT_MS 60000

static void uconn_on_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events);
static void release_slot(struct mesh_uconn *u);

static struct mesh_pool *pool_for(struct mesh_worker *w, const char *key)
{
    struct mesh_pool *p = w->pools;
    while (p && strcmp(p->key, key) != 0)
        p = p->next;
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = w->pools;
    w->pools = p;
    return p;
}

static void pool_remove(struct mesh_uconn *u)
{
    struct mesh_uconn **pp = &u->pool->idle;
    while (*pp && *pp != u)
        pp = &(*pp)->pool_next;
    if (*pp)
        *pp = u->pool_next;
    u->pool_next = NULL;
}

static void uconn_close(struct mesh_uconn *u)
{
    struct mesh_worker *w = u->w;
    struct mesh_cluster_state *st = u->state;
    mesh_timer_stop(&w->loop, &u->timer);
    mesh_loop_del(&w->loop, &u->io);
    close(u->io.fd);
    if (u->in)
        mesh_bufpool_put(&w->bufs, u->in);
    release_slot(u);
    mesh_wstats_upstream_cx(w, st, u->pool->key, !u->connected, -1);
    free(u);
    mesh_worker_wake_waiter(w, st);
    mesh_cluster_state_unref(st);
}

static void uconn_on_timer(struct mesh_timer *t, void *data)
{
    struct mesh_uconn *u = data;
    (void)t;
    if (u->stream) {
        mesh_stream_upstream_failed(u->stream, MESH_FAIL_CONNECT); /* connect timeout */
        return;
    }
    pool_remove(u);
    uconn_close(u);
}

static enum mesh_err uconn_connect(struct mesh_worker *w, const struct mesh_endpoint_rt *ep,
                                   struct mesh_pool *pool, struct mesh_cluster_state *state,
                                   uint64_t connect_timeout_ms, struct mesh_uconn **out)
{
    char why[160];
    int fd = -1;
    enum mesh_err err =
        mesh_sock_connect((const struct sockaddr *)&ep->addr, ep->addrlen, &fd, why, sizeof(why));
    if (err != MESH_OK && err != MESH_E_AGAIN)
        return err;
    struct mesh_uconn *u = calloc(1, sizeof(*u));
    if (!u) {
        close(fd);
        return MESH_E_NOMEM;
    }
    u->w = w;
    u->io.fd = fd;
    u->io.cb = uconn_on_io;
    u->io.data = u;
    u->pool = pool;
    u->state = state;
    u->addr = ep->addr;
    u->addrlen = ep->addrlen;
    u->connected = err == MESH_OK;
    u->writable = u->connected;
    mesh_timer_init(&u->timer, uconn_on_timer, u);
    if (mesh_loop_add(&w->loop, &u->io) != MESH_OK) {
        close(fd);
        free(u);
        return MESH_E_IO;
    }
    mesh_cluster_state_ref(state);
    mesh_wstats_upstream_cx(w, state, pool->key, !u->connected, 1);
    if (!u->connected)
        mesh_timer_start(&w->loop, &u->timer, connect_timeout_ms);
    *out = u;
    return MESH_OK;
}

/* max_connections bounds the connections in use or being established: a connection holds a
 * breaker slot from its pick to its release into the pool. Idle pooled connections hold none,
 * so that a worker whose pool is empty is never starved by another worker's idle ones. */
enum mesh_err mesh_uconn_acquire(struct mesh_worker *w, const struct mesh_endpoint_rt *ep,
                                 struct mesh_cluster_state *state,
                                 const struct mesh_breaker_limits *limits,
                                 uint64_t connect_timeout_ms, struct mesh_uconn **out, bool *reused)
{
    struct mesh_pool *pool = pool_for(w, ep->name);
    *out = NULL;
    *reused = false;
    if (!pool)
        return MESH_E_NOMEM;
    if (!mesh_breaker_try_acquire(&state->breaker, limits, MESH_BREAKER_CONNECTIONS))
        return MESH_E_AGAIN;
    for (struct mesh_uconn **pp = &pool->idle; *pp;) {
        struct mesh_uconn *u = *pp;
        if (u->state != state) { /* another Service on the same address */
            pp = &u->pool_next;
            continue;
        }
        *pp = u->pool_next;
        u->pool_next = NULL;
        mesh_timer_stop(&w->loop, &u->timer);
        if (u->peer_closed) {
            uconn_close(u);
            continue;
        }
        u->holds_slot = true;
        *out = u;
        *reused = true;
        return MESH_OK;
    }
    enum mesh_err err = uconn_connect(w, ep, pool, state, connect_timeout_ms, out);
    if (err != MESH_OK) {
        mesh_breaker_release(&state->breaker, MESH_BREAKER_CONNECTIONS);
        return err;
    }
    (*out)->holds_slot = true;
    return MESH_OK;
}

static void release_slot(struct mesh_uconn *u)
{
    if (!u->holds_slot)
        return;
    u->holds_slot = false;
    mesh_breaker_release(&u->state->breaker, MESH_BREAKER_CONNECTIONS);
}

void mesh_uconn_release(struct mesh_uconn *u, bool reusable)
{
    struct mesh_worker *w = u->w;
    u->stream = NULL;
    if (!reusable || w->draining || u->peer_closed) {
        uconn_close(u);
        return;
    }
    if (u->in && mesh_buf_readable(u->in) == 0) {
        mesh_bufpool_put(&w->bufs, u->in);
        u->in = NULL;
    }
    u->readable = false; /* the next response's bytes arrive as a new edge */
    u->pool_next = u->pool->idle;
    u->pool->idle = u;
    mesh_timer_start(&w->loop, &u->timer, UPSTREAM_IDLE_TIMEOUT_MS);
    release_slot(u);
    mesh_worker_wake_waiter(w, u->state);
}

void mesh_pools_close_idle(struct mesh_worker *w)
{
    for (struct mesh_pool *p = w->pools; p; p = p->next) {
        while (p->idle) {
            struct mesh_uconn *u = p->idle;
            p->idle = u->pool_next;
            uconn_close(u);
        }
    }
}

void mesh_pools_free(struct mesh_worker *w)
{
    mesh_pools_close_idle(w);
    while (w->pools) {
        struct mesh_pool *p = w->pools;
        w->pools = p->next;
        free(p);
    }
}

static void uconn_on_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct mesh_uconn *u = io->data;
    (void)loop;
    if (events & MESH_IO_WRITE)
        u->writable = true;
    if (events & MESH_IO_READ)
        u->readable = true;
    if (events & (MESH_IO_HUP | MESH_IO_ERROR)) {
        u->readable = true;
        u->hup = true;
    }
    if (!u->connected && (events & (MESH_IO_WRITE | MESH_IO_ERROR | MESH_IO_HUP))) {
        char why[160];
        struct mesh_stream *s = u->stream;
        enum mesh_err err = mesh_sock_connect_finish(u->io.fd, (const struct sockaddr *)&u->addr,
                                                     u->addrlen, why, sizeof(why));
        if (err == MESH_E_AGAIN)
            return; /* still connecting */
        if (err != MESH_OK) {
            if (s)
                mesh_stream_upstream_failed(s, MESH_FAIL_CONNECT);
            else
                uconn_close(u);
            return;
        }
        mesh_timer_stop(&u->w->loop, &u->timer);
        mesh_wstats_upstream_cx(u->w, u->state, u->pool->key, true, -1);
        mesh_wstats_upstream_cx(u->w, u->state, u->pool->key, false, 1);
        u->connected = true;
    }
    if (u->stream) {
        mesh_stream_on_upstream(u->stream);
        return;
    }
    /* Idle in the pool: the upstream closed it (or sent what it should not have). Only this
     * event counts: the remembered flag may still be set from the last response. */
    if (events & (MESH_IO_READ | MESH_IO_HUP | MESH_IO_ERROR)) {
        pool_remove(u);
        uconn_close(u);
    }
}
