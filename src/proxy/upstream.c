/* SPDX-License-Identifier: Apache-2.0 */
/* Upstream connections: keep-alive pools per endpoint address (per worker), non-blocking
 * connects under the circuit breaker's connection limit, mesh mTLS to sidecars through the TLS
 * plugin, reads and writes, idle timeouts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "identity.h"
#include "net/sock.h"
#include "proxy.h"
#include "stream.h"
#include "tls_plugin.h"

#define UPSTREAM_IDLE_TIMEOUT_MS 60000

static void uconn_on_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events);
static void release_slot(struct mesh_uconn *u);
static bool uconn_tcp_connected(struct mesh_uconn *u);

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
    if (u->tls) {
        if (u->connected && !u->peer_closed)
            w->proxy->tls_ops->shutdown(u->tls); /* close_notify when it fits; never waited for */
        w->proxy->tls_ops->conn_free(u->tls);
    }
    mesh_identity_unref(u->tls_id);
    free(u->peer_id);
    close(u->io.fd);
    if (u->in)
        mesh_bufpool_put(&w->bufs, u->in);
    release_slot(u);
    mesh_wstats_upstream_cx(w, st, u->pool->key, !u->tcp_connected, -1);
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

/* --- mesh mTLS (u->peer_id set; everything below is skipped for plaintext) --- */

/* "spiffe://TD" + path ("/ns/NS/sa/NAME"), TD being our own certificate's trust domain: the
 * mesh has one, and the peer's chain is verified against our bundle anyway. NULL when out of
 * memory or when our SPIFFE ID has no path. */
static char *expected_peer_id(const struct mesh_tls_identity *id, const char *path)
{
    const char *own = mesh_identity_facts(id)->spiffe_id;
    const char *td = strncmp(own, "spiffe://", 9) == 0 ? own + 9 : NULL;
    const char *end = td ? strchr(td, '/') : NULL;
    if (!end)
        return NULL;
    size_t head = (size_t)(end - own), len = head + strlen(path);
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, own, head);
        memcpy(out + head, path, strlen(path) + 1);
    }
    return out;
}

/* Drives the client handshake. True while it goes on or once it is done (u->connected); false
 * when it failed: counted and logged with its cause, u->tls_failure set. */
static bool uconn_tls_step(struct mesh_uconn *u)
{
    struct mesh_worker *w = u->w;
    const struct mesh_tls_ops *ops = w->proxy->tls_ops;
    switch (ops->handshake(u->tls)) {
    case MESH_TLS_DONE:
        u->connected = true;
        u->readable = true; /* the response may already sit decrypted in the library */
        u->writable = true;
        mesh_timer_stop(&w->loop, &u->timer);
        mesh_wstats_mtls_handshake(w, "outbound", MESH_TLS_FAIL_NONE);
        return true;
    case MESH_TLS_WANT_READ:
    case MESH_TLS_WANT_WRITE:
        return true;
    case MESH_TLS_CLOSED:
    case MESH_TLS_ERROR:
        break;
    }
    u->tls_failure = ops->conn_failure(u->tls);
    if (u->tls_failure == MESH_TLS_FAIL_NONE)
        u->tls_failure = MESH_TLS_FAIL_OTHER;
    const char *error = ops->conn_error(u->tls);
    mesh_wstats_mtls_handshake(w, "outbound", u->tls_failure);
    fprintf(stderr,
            "lvl=warn msg=\"TLS handshake failed\" direction=outbound endpoint=%s expected=%s "
            "cause=%s error=\"%s\"\n",
            u->pool->key, u->peer_id, mesh_tls_failure_str(u->tls_failure),
            error[0] ? error : "the server closed the connection during the handshake");
    return false;
}

/* TCP is up: a plaintext connection is ready, an mTLS one starts its handshake. False when the
 * handshake cannot start or failed at once. */
static bool uconn_tcp_connected(struct mesh_uconn *u)
{
    struct mesh_worker *w = u->w;
    u->tcp_connected = true;
    u->writable = true;
    mesh_wstats_upstream_cx(w, u->state, u->pool->key, true, -1);
    mesh_wstats_upstream_cx(w, u->state, u->pool->key, false, 1);
    if (!u->peer_id) {
        u->connected = true;
        mesh_timer_stop(&w->loop, &u->timer);
        return true;
    }
    const struct mesh_tls_ops *ops = w->proxy->tls_ops;
    if (ops->client_conn_new(ops->identity_client_ctx(u->tls_id), u->io.fd, u->peer_id, &u->tls) !=
        MESH_OK) {
        u->tls_failure = MESH_TLS_FAIL_OTHER;
        mesh_wstats_mtls_handshake(w, "outbound", u->tls_failure);
        fprintf(stderr,
                "lvl=warn msg=\"TLS handshake failed\" direction=outbound endpoint=%s "
                "cause=other error=\"cannot start a TLS connection (out of memory?)\"\n",
                u->pool->key);
        return false;
    }
    return uconn_tls_step(u);
}

/* An idle pooled mTLS connection got bytes: TLS records that carry no data (a TLS 1.3 session
 * ticket) keep it; data, a close or an error end it. */
static bool uconn_tls_idle_ok(struct mesh_uconn *u)
{
    char byte;
    size_t got = 0;
    return u->w->proxy->tls_ops->read(u->tls, &byte, 1, &got) == MESH_TLS_WANT_READ;
}

ssize_t mesh_uconn_read(struct mesh_uconn *u)
{
    if (!u->readable)
        return 0;
    if (!u->in && !(u->in = mesh_bufpool_get(&u->w->bufs)))
        return 0;
    mesh_buf_compact(u->in);
    size_t room = mesh_buf_writable(u->in);
    if (room == 0)
        return 0;
    if (u->tls) {
        size_t got = 0;
        switch (u->w->proxy->tls_ops->read(u->tls, u->in->data + u->in->end, room, &got)) {
        case MESH_TLS_DONE:
            u->in->end += (uint32_t)got;
            /* Readable stays set while the library or the socket may hold more: see
             * mesh_dconn_read for why a needless read is worth skipping. */
            if (!u->hup && u->w->proxy->tls_ops->conn_drained(u->tls))
                u->readable = false;
            return (ssize_t)got;
        case MESH_TLS_WANT_WRITE:
            u->tls_read_wants_write = true;
            /* fall through */
        case MESH_TLS_WANT_READ:
            u->readable = false;
            return 0;
        case MESH_TLS_CLOSED:
        case MESH_TLS_ERROR:
            break;
        }
        u->readable = false;
        u->peer_closed = true;
        return -1;
    }
    ssize_t n = read(u->io.fd, u->in->data + u->in->end, room);
    if (n > 0) {
        u->in->end += (uint32_t)n;
        if ((size_t)n < room && !u->hup)
            u->readable = false; /* emptied: see mesh_dconn_read */
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        u->readable = false;
        return 0;
    }
    u->readable = false;
    u->peer_closed = true;
    return -1;
}

ssize_t mesh_uconn_writev(struct mesh_uconn *u, const struct iovec *iov, int n)
{
    if (!u->tls)
        return writev(u->io.fd, iov, n);
    size_t written = 0;
    if (n > 1 && iov[n - 1].iov_len == 0)
        n--; /* a head without body bytes: the library is given no empty (NULL) piece */
    switch (u->w->proxy->tls_ops->writev(u->tls, iov, n, &written)) {
    case MESH_TLS_DONE:
        break;
    case MESH_TLS_WANT_READ:
        u->tls_write_wants_read = true;
        /* fall through */
    case MESH_TLS_WANT_WRITE:
        if (written == 0) {
            errno = EAGAIN;
            return -1;
        }
        break;
    case MESH_TLS_CLOSED:
    case MESH_TLS_ERROR:
        errno = EPIPE;
        return -1;
    }
    return (ssize_t)written;
}

static enum mesh_err uconn_connect(struct mesh_worker *w, const struct mesh_endpoint_rt *ep,
                                   struct mesh_pool *pool, struct mesh_cluster_state *state,
                                   uint64_t connect_timeout_ms, char *peer_id,
                                   struct mesh_tls_identity *id, struct mesh_uconn **out)
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
    u->peer_id = peer_id; /* ours from here on, as is the reference on id */
    u->tls_id = id;
    u->w = w;
    u->io.fd = fd;
    u->io.cb = uconn_on_io;
    u->io.data = u;
    u->pool = pool;
    u->state = state;
    u->addr = ep->addr;
    u->addrlen = ep->addrlen;
    mesh_timer_init(&u->timer, uconn_on_timer, u);
    if (mesh_loop_add(&w->loop, &u->io) != MESH_OK) {
        close(fd);
        mesh_identity_unref(u->tls_id);
        free(u->peer_id);
        free(u);
        return MESH_E_IO;
    }
    mesh_cluster_state_ref(state);
    mesh_wstats_upstream_cx(w, state, pool->key, true, 1);
    mesh_timer_start(&w->loop, &u->timer, connect_timeout_ms);
    *out = u;
    if (err == MESH_OK && !uconn_tcp_connected(u)) {
        *out = NULL;
        uconn_close(u);
        return MESH_E_TLS;
    }
    return MESH_OK;
}

/* max_connections bounds the connections in use or being established: a connection holds a
 * breaker slot from its pick to its release into the pool. Idle pooled connections hold none,
 * so that a worker whose pool is empty is never starved by another worker's idle ones. */
/* Whether calls to ep go over mTLS, and as whom: *peer_id (the caller's) is the SPIFFE ID the
 * server must have, NULL for plaintext. False when the endpoint wants mTLS the proxy cannot do
 * yet (no workload certificate) and plaintext would be refused (a strict peer). */
static bool pick_security(struct mesh_worker *w, const struct mesh_cluster *cl,
                          const struct mesh_endpoint_rt *ep, char **peer_id,
                          struct mesh_tls_identity **id)
{
    *peer_id = NULL;
    *id = NULL;
    if (!cl->mtls || !ep->sidecar)
        return true;
    *id = mesh_identity_acquire(w->proxy);
    if (*id && (*peer_id = expected_peer_id(*id, cl->peer_path)) != NULL)
        return true;
    mesh_identity_unref(*id);
    *id = NULL;
    if (!cl->peer_strict)
        return true; /* a permissive peer takes plaintext until we have a certificate */
    fprintf(stderr,
            "lvl=warn msg=\"no mTLS to a strict peer yet\" endpoint=%s service=%s/%s "
            "error=\"this proxy has no workload certificate from meshd yet\"\n",
            ep->name, cl->ns, cl->name);
    return false;
}

enum mesh_err mesh_uconn_acquire(struct mesh_worker *w, const struct mesh_cluster *cl,
                                 const struct mesh_endpoint_rt *ep, uint64_t connect_timeout_ms,
                                 struct mesh_uconn **out, bool *reused)
{
    struct mesh_cluster_state *state = cl->state;
    struct mesh_pool *pool = pool_for(w, ep->name);
    bool want_tls = cl->mtls && ep->sidecar;
    *out = NULL;
    *reused = false;
    if (!pool)
        return MESH_E_NOMEM;
    if (!mesh_breaker_try_acquire(&state->breaker, &cl->limits, MESH_BREAKER_CONNECTIONS))
        return MESH_E_AGAIN;
    for (struct mesh_uconn **pp = &pool->idle; *pp;) {
        struct mesh_uconn *u = *pp;
        /* Another Service on the same address, or the other security: a policy changed. */
        if (u->state != state || (u->peer_id != NULL) != want_tls) {
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
    char *peer_id = NULL;
    struct mesh_tls_identity *id = NULL;
    enum mesh_err err =
        pick_security(w, cl, ep, &peer_id, &id)
            ? uconn_connect(w, ep, pool, state, connect_timeout_ms, peer_id, id, out)
            : MESH_E_TLS;
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

/* An event while connecting (TCP, then the TLS handshake). True once the connection is ready
 * for the stream; false while it is not, or when it failed (the stream was told, or the idle
 * connection closed). */
static bool uconn_on_connecting(struct mesh_uconn *u, uint32_t events)
{
    struct mesh_stream *s = u->stream;
    bool ok = true;
    if (!u->tcp_connected) {
        if (!(events & (MESH_IO_WRITE | MESH_IO_ERROR | MESH_IO_HUP)))
            return false;
        char why[160];
        enum mesh_err err = mesh_sock_connect_finish(u->io.fd, (const struct sockaddr *)&u->addr,
                                                     u->addrlen, why, sizeof(why));
        if (err == MESH_E_AGAIN)
            return false; /* still connecting */
        ok = err == MESH_OK && uconn_tcp_connected(u);
    } else {
        ok = uconn_tls_step(u);
    }
    if (!ok) {
        if (s)
            mesh_stream_upstream_failed(s, u->tls ? MESH_FAIL_TLS : MESH_FAIL_CONNECT);
        else
            uconn_close(u);
        return false;
    }
    return u->connected;
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
    if (!u->connected) {
        if (!uconn_on_connecting(u, events))
            return;
    } else if (u->tls) {
        /* A TLS call may wait on the other direction: the event it waited for retries it. */
        if ((events & MESH_IO_WRITE) && u->tls_read_wants_write)
            u->readable = true, u->tls_read_wants_write = false;
        if ((events & MESH_IO_READ) && u->tls_write_wants_read)
            u->writable = true, u->tls_write_wants_read = false;
    }
    if (u->stream) {
        mesh_stream_on_upstream(u->stream);
        return;
    }
    /* Idle in the pool: the upstream closed it (or sent what it should not have). Only this
     * event counts: the remembered flag may still be set from the last response. */
    if (events & (MESH_IO_READ | MESH_IO_HUP | MESH_IO_ERROR)) {
        if (u->tls && !(events & (MESH_IO_HUP | MESH_IO_ERROR)) && uconn_tls_idle_ok(u))
            return;
        pool_remove(u);
        uconn_close(u);
    }
}
