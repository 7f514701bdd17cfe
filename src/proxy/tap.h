/* SPDX-License-Identifier: Apache-2.0 */
/* Tap: a live stream of the requests a proxy serves (admin GET /tap, meshctl tap). Events, their
 * filters and JSON lines, the per-worker rings they cross, and the admin worker's sessions. */
#ifndef MESH_PROXY_TAP_H
#define MESH_PROXY_TAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "mesh/err.h"

/*
 * Cost. With no session open, the request path does one relaxed atomic load
 * (mesh_proxy.tap_sessions) per finished request and nothing else: no ring exists, no event is
 * made. With sessions open, each finished request is copied into its worker's ring, a
 * single-producer single-consumer queue of fixed slots: the worker is the only producer, the
 * admin worker the only consumer. A full ring drops the event (counted, reason ring_full): the
 * request path never waits and never allocates. The admin worker empties every ring every
 * MESH_TAP_DRAIN_MS, merging them in the order requests finished, offers each event to every
 * session whose filter it matches and writes it to the session's connection; a session whose client
 * has MESH_TAP_BUFFER_MAX bytes unread loses the event (counted, reason slow_tapper) and the others
 * go on. Rings are allocated at the first session and kept for the life of the process.
 */

#define MESH_TAP_RING_SLOTS         512u /* per worker; a power of two */
#define MESH_TAP_MAX_SESSIONS       16u
#define MESH_TAP_MAX_EVENTS         100000u /* per session: ?max= at most, and the default */
#define MESH_TAP_DEFAULT_TIMEOUT_MS (600u * 1000u)
#define MESH_TAP_MAX_TIMEOUT_MS     (3600u * 1000u)
#define MESH_TAP_BUFFER_MAX         (64u * 1024u) /* unread bytes a session may have queued */
#define MESH_TAP_DRAIN_MS           10u
#define MESH_TAP_REORDER_US         5000u /* how long an event waits for earlier ones */
#define MESH_TAP_EVENT_JSON_MAX     8192u /* a JSON line of any event fits */

/* One finished request, as a session sees it. Strings are NUL-terminated, cut to fit. */
struct mesh_tap_event {
    uint64_t done_us;    /* CLOCK_MONOTONIC when it finished: sessions see what finished after
                            they started, never earlier requests left in a ring */
    uint64_t unix_ms;    /* wall clock when it finished, for the timestamp */
    uint64_t latency_us; /* first request byte to last response byte */
    uint16_t status;     /* sent to the client; 499: the client left first */
    bool inbound;        /* a sidecar's inbound listener; else outbound (sidecar, gateway) */
    bool tls;            /* the client came over TLS or mTLS */
    char method[16];
    char path[256]; /* without the query */
    char authority[128];
    char service[128];         /* destination: the Service (cluster) name, "" when none */
    char route[64];            /* the route that matched, "" when none */
    char endpoint[64];         /* the upstream endpoint, "" when none was reached */
    char source[72];           /* the client's address and port */
    char source_identity[192]; /* its verified SPIFFE ID (inbound mTLS), "" when none */
    char request_id[40];
};

/* What a session wants: GET /tap?path=P&method=M&max=N&timeout=D (every parameter optional). */
struct mesh_tap_filter {
    char path[256];  /* a path prefix; "" matches every path */
    char method[16]; /* exact (case-sensitive); "" matches every method */
    uint64_t max_events;
    uint64_t timeout_ms;
};

/* Reads a /tap query string (percent-encoded values; '+' is a plus) into *f, with defaults for
 * what it leaves out (max MESH_TAP_MAX_EVENTS, timeout MESH_TAP_DEFAULT_TIMEOUT_MS).
 * MESH_E_INVALID, with why (why_len bytes) naming the parameter: an unknown parameter, a bad
 * escape, a path that does not start with '/' or is longer than 255 bytes, a method that is
 * not a token of at most 15 characters, max outside 1..MESH_TAP_MAX_EVENTS, a timeout outside
 * 1ms..1h. Any thread; allocates nothing. */
enum mesh_err mesh_tap_filter_parse(struct mesh_slice query, struct mesh_tap_filter *f, char *why,
                                    size_t why_len);

/* Whether ev is one f asks for (path prefix and method; max and timeout are the session's). */
bool mesh_tap_filter_match(const struct mesh_tap_filter *f, const struct mesh_tap_event *ev);

/* Writes ev as one JSON object and a line feed into buf (size bytes; MESH_TAP_EVENT_JSON_MAX is
 * always enough) and returns its length, 0 when it does not fit. Bytes that are not UTF-8
 * (a path is whatever the client sent) become U+FFFD. Fields: docs/meshproxy.md, /tap. */
size_t mesh_tap_event_json(const struct mesh_tap_event *ev, char *buf, size_t size);

/* A worker's ring. The producer (the worker) reserves a slot, fills it and commits; the consumer
 * (the admin worker) peeks at the oldest and pops it. head and tail sit on their own cache
 * lines: each is written by one side only. */
struct mesh_tap_ring {
    _Atomic uint32_t head; /* the producer's: slots committed */
    char pad_head[60];
    _Atomic uint32_t tail; /* the consumer's: slots consumed */
    char pad_tail[60];
    struct mesh_tap_event slots[MESH_TAP_RING_SLOTS];
};

/* An empty ring (*out; free() it). MESH_E_NOMEM. */
enum mesh_err mesh_tap_ring_new(struct mesh_tap_ring **out);
/* Producer: the next free slot to fill, or NULL when the ring is full (drop the event). */
struct mesh_tap_event *mesh_tap_ring_reserve(struct mesh_tap_ring *r);
/* Producer: publishes the slot mesh_tap_ring_reserve gave. */
void mesh_tap_ring_commit(struct mesh_tap_ring *r);
/* Consumer: the oldest committed event, or NULL when the ring is empty. */
const struct mesh_tap_event *mesh_tap_ring_peek(struct mesh_tap_ring *r);
/* Consumer: frees the slot of the event mesh_tap_ring_peek gave. */
void mesh_tap_ring_pop(struct mesh_tap_ring *r);

/* ---- sessions (tap_session.c): the admin worker's, on its loop ---- */

struct mesh_tap;
struct mesh_proxy;
struct mesh_worker;
struct mesh_stream;

/* Sets up tapping for p, served by the admin worker w (before w's thread starts; p->tap).
 * MESH_E_NOMEM. */
enum mesh_err mesh_tap_init(struct mesh_proxy *p, struct mesh_worker *w);
/* After every worker stopped: frees p->tap and its rings. */
void mesh_tap_free(struct mesh_proxy *p);

/* Admin worker: answers GET /tap on s: 400 for a bad query, 503 at MESH_TAP_MAX_SESSIONS or out
 * of memory; else a chunked 200 that streams one JSON line per matching request until max
 * events, the timeout, the client leaving or the proxy draining. */
void mesh_tap_start(struct mesh_stream *s);
/* Admin worker: the session stream s has an I/O event (stream.c's pump). */
void mesh_tap_pump(struct mesh_stream *s);
/* Admin worker: s (a session stream) is being freed: the session ends. */
void mesh_tap_detach(struct mesh_stream *s);

/* Any worker, for a finished request s that took latency_us, when p->tap_sessions is non-zero:
 * copies it into the worker's ring (or counts the drop). Never blocks or allocates. */
void mesh_tap_publish(struct mesh_stream *s, uint64_t latency_us);

#endif
