/* SPDX-License-Identifier: Apache-2.0 */
/* A worker thread: its loop, its listeners, adopting published snapshots, streams waiting for
 * an upstream connection, and draining on shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/sock.h"
#include "proxy.h"
#include "stream.h"

#define LOOP_MAX_WAIT_MS 100 /* also bounds how late a worker sees a new snapshot */
#define WAITER_POLL_MS   2

/* --- snapshots --- */

static struct mesh_wsnap *wsnap_new(struct mesh_worker *w, struct mesh_snapshot *snap)
{
    struct mesh_wsnap *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    ws->snap = snap;
    ws->swrr = calloc(snap->n_dests ? snap->n_dests : 1, sizeof(*ws->swrr));
    ws->active = calloc(snap->n_endpoints ? snap->n_endpoints : 1, sizeof(*ws->active));
    ws->lb = calloc(snap->n_clusters ? snap->n_clusters : 1, sizeof(*ws->lb));
    ws->stat_cache = calloc(MESH_STAT_CACHE_SLOTS, sizeof(*ws->stat_cache));
    if (!ws->swrr || !ws->active || !ws->lb || !ws->stat_cache) {
        free(ws->stat_cache);
        free(ws->swrr);
        free(ws->active);
        free(ws->lb);
        free(ws);
        return NULL;
    }
    for (size_t i = 0; i < snap->n_clusters; i++)
        mesh_lb_state_init(&ws->lb[i], mesh_rng_next(&w->rng));
    mesh_snapshot_ref(snap);
    return ws;
}

static void wsnap_free(struct mesh_wsnap *ws)
{
    mesh_snapshot_unref(ws->snap);
    free(ws->swrr);
    free(ws->active);
    free(ws->lb);
    free(ws->stat_cache);
    free(ws);
}

/* Makes cur (loaded from p->current) the worker's snapshot, unless it already is. */
static void switch_to(struct mesh_worker *w, struct mesh_snapshot *cur)
{
    if (w->wsnap && w->wsnap->snap == cur)
        return;
    struct mesh_wsnap *ws = wsnap_new(w, cur);
    if (!ws)
        return; /* out of memory: stay on the old one, try again later */
    struct mesh_wsnap *old = w->wsnap;
    w->wsnap = ws;
    if (old && old->users == 0)
        wsnap_free(old);
}

struct mesh_wsnap *mesh_worker_wsnap(struct mesh_worker *w, enum mesh_listener_role role)
{
    if (role == MESH_LISTENER_INBOUND && w->inbound) {
        w->inbound->users++;
        return w->inbound;
    }
    /* Safe without moving the epoch: this runs between two loop-top adoptions, and the
     * publisher frees nothing until the epoch has moved past its swap, by which time the
     * reference taken here exists. */
    switch_to(w, atomic_load_explicit(&w->proxy->current, memory_order_acquire));
    w->wsnap->users++;
    return w->wsnap;
}

const struct mesh_inbound_policy *mesh_worker_inbound_policy(struct mesh_worker *w)
{
    switch_to(w, atomic_load_explicit(&w->proxy->current, memory_order_acquire));
    return w->wsnap->snap->inbound_policy;
}

void mesh_worker_release_wsnap(struct mesh_worker *w, struct mesh_wsnap *ws)
{
    if (--ws->users == 0 && ws != w->wsnap && ws != w->inbound)
        wsnap_free(ws);
}

/* Takes the published snapshot when it changed. The reference is taken before the epoch moves,
 * so the publisher (which waits for every epoch to move) cannot free it under us. */
static void adopt_snapshot(struct mesh_worker *w)
{
    switch_to(w, atomic_load_explicit(&w->proxy->current, memory_order_acquire));
    atomic_fetch_add_explicit(&w->epoch, 1, memory_order_release);
}

/* --- waiting for a connection --- */

void mesh_worker_wait(struct mesh_worker *w, struct mesh_stream *s)
{
    struct mesh_stream **pp = &w->waiters;
    while (*pp)
        pp = &(*pp)->wait_next;
    s->wait_next = NULL;
    *pp = s;
}

void mesh_worker_unwait(struct mesh_worker *w, struct mesh_stream *s)
{
    for (struct mesh_stream **pp = &w->waiters; *pp; pp = &(*pp)->wait_next) {
        if (*pp == s) {
            *pp = s->wait_next;
            s->wait_next = NULL;
            return;
        }
    }
}

/* A slot freed by another worker raises no event here: waiting streams try again on every
 * loop iteration (the loop waits at most WAITER_POLL_MS while there are any). */
static void retry_waiters(struct mesh_worker *w)
{
    struct mesh_stream *list = w->waiters;
    w->waiters = NULL;
    while (list) {
        struct mesh_stream *s = list;
        list = s->wait_next;
        s->wait_next = NULL;
        mesh_stream_retry_connect(s); /* waits again (at the end) when still at the limit */
    }
}

void mesh_worker_wake_waiter(struct mesh_worker *w, struct mesh_cluster_state *state)
{
    for (struct mesh_stream *s = w->waiters; s; s = s->wait_next) {
        if (s->cluster && s->cluster->state == state) {
            mesh_worker_unwait(w, s);
            mesh_stream_retry_connect(s);
            return;
        }
    }
}

/* --- accepting --- */

static void on_accept(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct mesh_listener *l = io->data;
    struct mesh_worker *w = l->w;
    (void)loop;
    (void)events;
    /* The admin listener takes fewer per wake-up, and keeps accepting while draining so that
     * /ready can say so to the end. */
    bool admin = l->role == MESH_LISTENER_ADMIN;
    for (int i = 0; i < (admin ? 16 : 64) && (admin || !w->draining); i++) {
        int fd = -1;
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (mesh_sock_accept(io->fd, &fd, &peer, &plen) != MESH_OK)
            return;
        mesh_dconn_accept(w, fd, &peer, l->role);
    }
}

enum mesh_err mesh_worker_add_listener(struct mesh_worker *w, enum mesh_listener_role role, int fd)
{
    struct mesh_listener *l = &w->listeners[role];
    l->io.fd = fd;
    l->io.cb = on_accept;
    l->io.data = l;
    enum mesh_err err = mesh_loop_add_listener(&w->loop, &l->io);
    if (err != MESH_OK) {
        close(fd);
        l->io.fd = -1;
    }
    return err;
}

static void close_listener(struct mesh_worker *w, enum mesh_listener_role role)
{
    struct mesh_listener *l = &w->listeners[role];
    if (l->io.fd >= 0) {
        mesh_loop_del(&w->loop, &l->io);
        close(l->io.fd);
        l->io.fd = -1;
    }
}

/* --- wake-ups --- */

static void on_wake(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    uint64_t n;
    (void)loop;
    (void)events;
    /* Just empties the counter: the loop adopts the snapshot at the top of its next turn. */
    while (read(io->fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
        ;
}

void mesh_worker_wake(struct mesh_worker *w)
{
    uint64_t one = 1;
    if (w->wake.fd >= 0 && write(w->wake.fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is saturated, so a wake-up is pending anyway. */
    }
}

/* --- the thread --- */

/* Draining: no new connections on the traffic listeners; the admin one stays. */
static void stop_listening(struct mesh_worker *w)
{
    close_listener(w, MESH_LISTENER_ROUTER);
    close_listener(w, MESH_LISTENER_INBOUND);
}

static void *worker_main(void *arg)
{
    struct mesh_worker *w = arg;
    struct mesh_proxy *p = w->proxy;
    uint64_t drain_deadline = 0;
    for (;;) {
        adopt_snapshot(w);
        if (!w->draining && atomic_load(&p->draining)) {
            w->draining = true;
            stop_listening(w);
            mesh_pools_close_idle(w);
            drain_deadline = mesh_loop_now_ms(&w->loop) + p->opt.drain_timeout_ms;
        }
        if (w->draining) {
            mesh_dconns_close_idle(w);
            bool others_done = w->index != 0 || atomic_load(&p->workers_running) == 1;
            if ((w->active_streams == 0 && others_done) ||
                mesh_loop_now_ms(&w->loop) >= drain_deadline)
                break;
        }
        if (w->waiters)
            retry_waiters(w);
        mesh_loop_run_once(&w->loop, w->waiters ? WAITER_POLL_MS : LOOP_MAX_WAIT_MS);
    }
    mesh_dconns_close_all(w);
    mesh_pools_free(w);
    mesh_stream_free_list(w);
    atomic_fetch_sub(&p->workers_running, 1);
    return NULL;
}

enum mesh_err mesh_worker_init(struct mesh_worker *w, struct mesh_proxy *p, unsigned index)
{
    memset(w, 0, sizeof(*w));
    w->proxy = p;
    w->index = index;
    for (int r = 0; r < MESH_LISTENER_N_ROLES; r++) {
        w->listeners[r].io.fd = -1;
        w->listeners[r].w = w;
        w->listeners[r].role = (enum mesh_listener_role)r;
    }
    w->wake.fd = -1;
    enum mesh_err err = mesh_loop_init(&w->loop);
    if (err == MESH_OK) {
        w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->wake.cb = on_wake;
        w->wake.data = w;
        err = w->wake.fd < 0 ? MESH_E_IO : mesh_loop_add(&w->loop, &w->wake);
    }
    if (err == MESH_OK)
        err = mesh_bufpool_init(&w->bufs, MESH_BUF_DEFAULT_SIZE, 65536, 256);
    if (err == MESH_OK && mesh_rng_init(&w->rng) == MESH_E_IO)
        err = MESH_OK; /* no getrandom entropy: seeded from the clock, still fine for picks */
    if (err == MESH_OK)
        err = mesh_wstats_init(w);
    if (err == MESH_OK && p->inbound) {
        w->inbound = wsnap_new(w, p->inbound);
        err = w->inbound ? MESH_OK : MESH_E_NOMEM;
    }
    return err;
}

enum mesh_err mesh_worker_start(struct mesh_worker *w)
{
    atomic_fetch_add(&w->proxy->workers_running, 1);
    if (pthread_create(&w->thread, NULL, worker_main, w) == 0)
        return MESH_OK;
    atomic_fetch_sub(&w->proxy->workers_running, 1);
    return MESH_E_NOMEM;
}

void mesh_worker_join(struct mesh_worker *w)
{
    pthread_join(w->thread, NULL);
    if (w->wsnap && w->wsnap->users == 0)
        wsnap_free(w->wsnap);
    w->wsnap = NULL;
    if (w->inbound && w->inbound->users == 0)
        wsnap_free(w->inbound);
    w->inbound = NULL;
    for (int r = 0; r < MESH_LISTENER_N_ROLES; r++)
        close_listener(w, (enum mesh_listener_role)r);
    if (w->wake.fd >= 0) {
        mesh_loop_del(&w->loop, &w->wake);
        close(w->wake.fd);
        w->wake.fd = -1;
    }
    mesh_loop_close(&w->loop);
    mesh_bufpool_destroy(&w->bufs);
}
