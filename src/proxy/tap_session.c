/* SPDX-License-Identifier: Apache-2.0 */
/* Tap sessions: the admin worker's streaming answers to GET /tap, fed from every worker's ring,
 * and what a worker does with a finished request while a session is open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy.h"
#include "stream.h"
#include "tap.h"

/* One GET /tap: its filter and where it stands. */
struct mesh_tapper {
    struct mesh_tap *tap;
    struct mesh_stream *s;
    struct mesh_tap_filter filter;
    uint64_t start_us; /* events of requests that finished before are not its */
    uint64_t sent, dropped;
    bool finished; /* the last chunk is queued: the connection closes once it is written */
    struct mesh_timer deadline;
    struct mesh_tapper *prev, *next;
};

/* The proxy's tapping state: the admin worker's, but for the rings' contents (each worker
 * fills its own) and p->tap_sessions (read by every worker). */
struct mesh_tap {
    struct mesh_proxy *p;
    struct mesh_worker *w; /* the admin worker */
    /* Set once each, by the admin worker at the first session (release); read by workers. */
    _Atomic(struct mesh_tap_ring *) rings[MESH_PROXY_MAX_WORKERS];
    struct mesh_tapper *sessions;
    unsigned n_sessions;
    struct mesh_timer drain;
    /* The admin worker's handles in its own shard. */
    struct mesh_stats_counter *events, *slow, *no_memory;
    struct mesh_stats_gauge *active;
};

static void on_drain(struct mesh_timer *t, void *data);

static struct mesh_stats_counter *dropped_counter(struct mesh_worker *w, const char *reason)
{
    const char *labels[1] = {reason};
    struct mesh_stats_counter *c = NULL;
    mesh_stats_counter_get(w->st.shard, MESH_STATS_TAP_DROPPED, labels, &c);
    return c; /* on error: the shard's sink, which counts nothing */
}

enum mesh_err mesh_tap_init(struct mesh_proxy *p, struct mesh_worker *w)
{
    struct mesh_tap *tap = calloc(1, sizeof(*tap));
    if (!tap)
        return MESH_E_NOMEM;
    tap->p = p;
    tap->w = w;
    for (unsigned i = 0; i < MESH_PROXY_MAX_WORKERS; i++)
        atomic_init(&tap->rings[i], NULL);
    mesh_timer_init(&tap->drain, on_drain, tap);
    /* Both reasons exist from the start, at zero, so that a rate() over them always works. */
    tap->slow = dropped_counter(w, "slow_tapper");
    tap->no_memory = dropped_counter(w, "no_memory");
    dropped_counter(w, "ring_full");
    mesh_stats_counter_get(w->st.shard, MESH_STATS_TAP_EVENTS, NULL, &tap->events);
    mesh_stats_gauge_get(w->st.shard, MESH_STATS_TAP_SESSIONS, NULL, &tap->active);
    atomic_init(&p->tap_sessions, 0);
    p->tap = tap;
    return MESH_OK;
}

void mesh_tap_free(struct mesh_proxy *p)
{
    struct mesh_tap *tap = p->tap;
    if (!tap)
        return;
    for (unsigned i = 0; i < MESH_PROXY_MAX_WORKERS; i++)
        free(atomic_load_explicit(&tap->rings[i], memory_order_relaxed));
    free(tap);
    p->tap = NULL;
}

/* Every worker's ring, made at the first session. A worker without one yet (out of memory)
 * drops its events until a later session makes it. */
static enum mesh_err ensure_rings(struct mesh_tap *tap)
{
    for (unsigned i = 0; i < tap->p->n_workers && i < MESH_PROXY_MAX_WORKERS; i++) {
        if (atomic_load_explicit(&tap->rings[i], memory_order_relaxed))
            continue;
        struct mesh_tap_ring *r = NULL;
        if (mesh_tap_ring_new(&r) != MESH_OK)
            return MESH_E_NOMEM;
        atomic_store_explicit(&tap->rings[i], r, memory_order_release);
    }
    return MESH_OK;
}

/* --- a session's life --- */

/* Queues the last chunk; the connection closes once everything is written. */
static void finish(struct mesh_tapper *t)
{
    if (t->finished)
        return;
    t->finished = true;
    mesh_timer_stop(&t->tap->w->loop, &t->deadline);
    if (!mesh_wbuf_puts(&t->s->c->out, "0\r\n\r\n"))
        t->s->c->close_after = true; /* out of memory: the cut connection says it ended */
}

static void on_deadline(struct mesh_timer *timer, void *data)
{
    struct mesh_tapper *t = data;
    (void)timer;
    finish(t);
    mesh_tap_pump(t->s);
}

static void refuse(struct mesh_stream *s, int status, const char *msg)
{
    mesh_admin_respond(s, status, "text/plain", msg, strlen(msg));
}

void mesh_tap_start(struct mesh_stream *s)
{
    struct mesh_dconn *c = s->c;
    struct mesh_proxy *p = s->w->proxy;
    struct mesh_tap *tap = p->tap;
    struct mesh_tap_filter f;
    char why[300], msg[360];
    if (!tap) {
        refuse(s, 503, "tap is not available on this proxy\n");
        return;
    }
    if (mesh_tap_filter_parse(s->req.query, &f, why, sizeof(why)) != MESH_OK) {
        snprintf(msg, sizeof(msg), "%s\n", why);
        refuse(s, 400, msg);
        return;
    }
    if (tap->n_sessions >= MESH_TAP_MAX_SESSIONS) {
        snprintf(msg, sizeof(msg), "too many tap sessions: %u are open, the most a proxy serves\n",
                 MESH_TAP_MAX_SESSIONS);
        refuse(s, 503, msg);
        return;
    }
    struct mesh_tapper *t = NULL;
    if (ensure_rings(tap) != MESH_OK || !(t = calloc(1, sizeof(*t)))) {
        mesh_stats_counter_inc(tap->no_memory);
        refuse(s, 503, "tap: out of memory\n");
        return;
    }
    /* The head now, so that the client knows the session is open: every request that finishes
     * from here on and matches is its. */
    c->in->start += (uint32_t)s->req.head_len;
    c->close_after = true; /* the session ends with the connection */
    if (!mesh_wbuf_puts(&c->out, "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                                 "transfer-encoding: chunked\r\ncache-control: no-store\r\n"
                                 "connection: close\r\n\r\n")) {
        free(t);
        mesh_stats_counter_inc(tap->no_memory);
        mesh_dconn_close(c);
        return;
    }
    t->tap = tap;
    t->s = s;
    t->filter = f;
    t->start_us = mesh_now_us();
    mesh_timer_init(&t->deadline, on_deadline, t);
    mesh_timer_start(&s->w->loop, &t->deadline, f.timeout_ms);
    t->next = tap->sessions;
    if (tap->sessions)
        tap->sessions->prev = t;
    tap->sessions = t;
    tap->n_sessions++;
    mesh_stats_gauge_add(tap->active, 1);
    /* Release: a worker that sees the count sees the rings made above. */
    atomic_fetch_add_explicit(&p->tap_sessions, 1, memory_order_release);
    s->status = 200;
    s->state = MESH_STREAM_TAP;
    s->tapper = t;
    if (!mesh_timer_armed(&tap->drain))
        mesh_timer_start(&s->w->loop, &tap->drain, MESH_TAP_DRAIN_MS);
    mesh_tap_pump(s);
}

void mesh_tap_detach(struct mesh_stream *s)
{
    struct mesh_tapper *t = s->tapper;
    if (!t)
        return;
    struct mesh_tap *tap = t->tap;
    s->tapper = NULL;
    mesh_timer_stop(&tap->w->loop, &t->deadline);
    if (t->prev)
        t->prev->next = t->next;
    else
        tap->sessions = t->next;
    if (t->next)
        t->next->prev = t->prev;
    tap->n_sessions--;
    mesh_stats_gauge_add(tap->active, -1);
    atomic_fetch_sub_explicit(&tap->p->tap_sessions, 1, memory_order_relaxed);
    free(t);
}

void mesh_tap_pump(struct mesh_stream *s)
{
    struct mesh_dconn *c = s->c;
    /* The client has nothing more to say: what it sends is dropped, and its EOF (or reset)
     * ends the session. */
    for (;;) {
        if (c->in)
            c->in->start = c->in->end;
        ssize_t n = mesh_dconn_read(c);
        if (n > 0)
            continue;
        if (n < 0) {
            mesh_dconn_close(c);
            return;
        }
        break;
    }
    if (!mesh_dconn_flush(c)) {
        if (c->peer_closed)
            mesh_dconn_close(c);
        return; /* the next write event comes back here */
    }
    if (s->tapper && s->tapper->finished)
        mesh_dconn_close(c);
}

/* --- events --- */

/* ev as one chunk of the chunked answer: size line, JSON line, CRLF. Returns its length. */
static size_t make_chunk(const struct mesh_tap_event *ev, char *chunk, size_t size)
{
    char json[MESH_TAP_EVENT_JSON_MAX];
    size_t len = mesh_tap_event_json(ev, json, sizeof(json));
    int head = snprintf(chunk, size, "%zx\r\n", len);
    if (!len || head < 0 || (size_t)head + len + 2 > size)
        return 0; /* cannot happen: the buffers hold any event */
    memcpy(chunk + head, json, len);
    memcpy(chunk + head + len, "\r\n", 2);
    return (size_t)head + len + 2;
}

/* Offers ev to every session; its chunk is made at the first session that wants it. */
static void deliver(struct mesh_tap *tap, const struct mesh_tap_event *ev)
{
    char chunk[MESH_TAP_EVENT_JSON_MAX + 32];
    size_t len = 0;
    for (struct mesh_tapper *t = tap->sessions; t; t = t->next) {
        if (t->finished || ev->done_us < t->start_us || !mesh_tap_filter_match(&t->filter, ev))
            continue;
        struct mesh_wbuf *out = &t->s->c->out;
        if (mesh_wbuf_pending(out) >= MESH_TAP_BUFFER_MAX) {
            /* Its client reads slower than requests come: this one is lost to it, not to the
             * others, and nothing waits. */
            t->dropped++;
            mesh_stats_counter_inc(tap->slow);
            continue;
        }
        if (!len && !(len = make_chunk(ev, chunk, sizeof(chunk))))
            return;
        if (!mesh_wbuf_append(out, chunk, len)) { /* all of it or nothing */
            t->dropped++;
            mesh_stats_counter_inc(tap->no_memory);
            continue;
        }
        t->sent++;
        mesh_stats_counter_inc(tap->events);
        if (t->sent >= t->filter.max_events)
            finish(t);
    }
}

/* The ring whose oldest event finished first, and that event; NULL when every ring is empty. */
static struct mesh_tap_ring *oldest(struct mesh_tap *tap, const struct mesh_tap_event **out)
{
    struct mesh_tap_ring *best = NULL;
    *out = NULL;
    for (unsigned i = 0; i < tap->p->n_workers && i < MESH_PROXY_MAX_WORKERS; i++) {
        struct mesh_tap_ring *r = atomic_load_explicit(&tap->rings[i], memory_order_relaxed);
        const struct mesh_tap_event *ev = r ? mesh_tap_ring_peek(r) : NULL;
        if (ev && (!*out || ev->done_us < (*out)->done_us)) {
            best = r;
            *out = ev;
        }
    }
    return best;
}

static void on_drain(struct mesh_timer *timer, void *data)
{
    struct mesh_tap *tap = data;
    (void)timer;
    bool draining = atomic_load(&tap->p->draining);
    /* Sessions see requests in the order they finished, whichever worker served them: the rings
     * are merged by finish time, and the events of the last MESH_TAP_REORDER_US wait for the
     * next turn, so that one a worker is still committing can take its place before them. At
     * most a ring's worth per worker per turn, so that busy workers cannot keep this one here. */
    uint64_t now = mesh_now_us();
    uint64_t horizon = now > MESH_TAP_REORDER_US ? now - MESH_TAP_REORDER_US : 0;
    unsigned budget = tap->p->n_workers * MESH_TAP_RING_SLOTS;
    for (unsigned k = 0; k < budget; k++) {
        const struct mesh_tap_event *ev;
        struct mesh_tap_ring *r = oldest(tap, &ev);
        if (!r || (ev->done_us > horizon && !draining))
            break;
        deliver(tap, ev);
        mesh_tap_ring_pop(r);
    }
    struct mesh_tapper *next;
    for (struct mesh_tapper *t = tap->sessions; t; t = next) {
        next = t->next; /* pumping may end t */
        struct mesh_dconn *c = t->s->c;
        if (draining) {
            /* The proxy is stopping: the last chunk goes out if the socket takes it now. */
            finish(t);
            mesh_dconn_flush(c);
            mesh_dconn_close(c);
            continue;
        }
        if (mesh_wbuf_pending(&c->out))
            mesh_tap_pump(t->s);
    }
    if (tap->n_sessions)
        mesh_timer_start(&tap->w->loop, &tap->drain, MESH_TAP_DRAIN_MS);
}

static void copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void mesh_tap_publish(struct mesh_stream *s, uint64_t latency_us)
{
    struct mesh_worker *w = s->w;
    struct mesh_tap *tap = w->proxy->tap;
    if (!tap || w->index >= MESH_PROXY_MAX_WORKERS)
        return;
    struct mesh_tap_ring *r = atomic_load_explicit(&tap->rings[w->index], memory_order_acquire);
    if (!r)
        return;
    struct mesh_tap_event *ev = mesh_tap_ring_reserve(r);
    if (!ev) {
        mesh_stats_counter_inc(dropped_counter(w, "ring_full"));
        return;
    }
    struct mesh_dconn *c = s->c;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ev->done_us = s->start_us + latency_us;
    ev->unix_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    ev->latency_us = latency_us;
    ev->status = (uint16_t)s->status;
    ev->inbound = c->role == MESH_LISTENER_INBOUND;
    ev->tls = c->tls != NULL;
    copy(ev->method, sizeof(ev->method), s->method);
    copy(ev->path, sizeof(ev->path), s->path);
    copy(ev->authority, sizeof(ev->authority), s->authority);
    copy(ev->service, sizeof(ev->service), s->service);
    copy(ev->route, sizeof(ev->route), s->route ? s->route->name : "");
    copy(ev->endpoint, sizeof(ev->endpoint), s->ep ? s->ep->name : "");
    mesh_dconn_peer_text(c, ev->source, sizeof(ev->source));
    copy(ev->source_identity, sizeof(ev->source_identity), c->peer_id ? c->peer_id : "");
    copy(ev->request_id, sizeof(ev->request_id), s->request_id);
    mesh_tap_ring_commit(r);
}
