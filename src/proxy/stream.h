/* SPDX-License-Identifier: Apache-2.0 */
/* A request/response exchange on a client connection, as the request path sees it. */
#ifndef MESH_PROXY_STREAM_H
#define MESH_PROXY_STREAM_H

#include <time.h>

#include "framer.h"
#include "proxy.h"
#include "trace_context.h"

struct mesh_tapper;

enum mesh_stream_state {
    MESH_STREAM_HEAD = 0,  /* reading the request head */
    MESH_STREAM_DELAY,     /* a fault delay is running */
    MESH_STREAM_WAIT_CONN, /* pending: the cluster is at max_connections */
    MESH_STREAM_UPSTREAM,  /* sending the request, waiting for the response head */
    MESH_STREAM_RESPONSE,  /* relaying the response body (or a tunnel) */
    MESH_STREAM_LOCAL,     /* writing an answer of our own */
    MESH_STREAM_TAP,       /* an admin GET /tap session streaming events (tap.h) */
};

enum mesh_fail {
    MESH_FAIL_CONNECT = 0,
    MESH_FAIL_RESET,
    MESH_FAIL_TIMEOUT,
    MESH_FAIL_STATUS,
    MESH_FAIL_PROTOCOL,
    MESH_FAIL_TLS, /* the mTLS handshake failed, or cannot be made yet (a connect failure) */
};

struct mesh_stream {
    struct mesh_dconn *c;
    struct mesh_worker *w;
    struct mesh_wsnap *ws;
    enum mesh_stream_state state;
    struct mesh_h1_parser parser;
    struct mesh_h1_message req;
    struct mesh_framer req_framer;
    const struct mesh_route_rt *route;
    const struct mesh_cluster *cluster;
    const struct mesh_endpoint_rt *ep;
    size_t ep_index;
    struct mesh_uconn *u;
    struct mesh_h1_parser rparser;
    struct mesh_h1_message resp;
    struct mesh_framer resp_framer;
    struct mesh_timer route_timer;
    struct mesh_timer try_timer;   /* per-try timeout, or a fault delay */
    struct mesh_stream *wait_next; /* in the worker's list of streams waiting for a connection */
    uint64_t start_ms;
    uint64_t start_us; /* CLOCK_MONOTONIC, for the duration histogram */
    uint32_t attempts; /* retries done */
    uint32_t pending_abort;
    size_t drained; /* request body bytes skipped after a local answer */
    int status;
    bool keep_alive, resp_keep_alive, routed, delayed, fault_checked;
    bool resp_head_seen, resp_started, req_body_sent;
    bool holds_request, holds_retry, holds_pending;
    bool on_reused, stale_retried; /* the try runs on a pooled connection; retried once already */
    char method[16];
    char path[256];
    char authority[128];
    char service[128];
    char request_id[40];
    struct mesh_trace_span trace; /* this hop's span; trace.on only when tracing applies */
    struct mesh_tapper *tapper;   /* a /tap session's (tap_session.c), else NULL */
    /* Below: kept when a stream is recycled (not zeroed): its buffer, and header storage that
     * the parsers fill before anything reads it. */
    struct mesh_wbuf req_head; /* the head as sent upstream */
    struct mesh_h1_header req_headers[MESH_PROXY_MAX_HEADERS];
    struct mesh_h1_header resp_headers[MESH_PROXY_MAX_HEADERS];
    struct mesh_stream *free_next;
};

/* Frees the worker's recycled streams (at exit). */
void mesh_stream_free_list(struct mesh_worker *w);

static inline uint64_t mesh_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void mesh_stream_abort(struct mesh_stream *s);
void mesh_stream_upstream_failed(struct mesh_stream *s, enum mesh_fail cause);
void mesh_stream_route(struct mesh_stream *s);
void mesh_stream_retry_connect(struct mesh_stream *s);
void mesh_stream_on_timeout_head(struct mesh_stream *s);
/* stats + access log for a finished stream (stream_log.c). */
void mesh_stream_account(struct mesh_stream *s);

/* worker.c: streams waiting for an upstream connection of their cluster. */
void mesh_worker_wait(struct mesh_worker *w, struct mesh_stream *s);
void mesh_worker_unwait(struct mesh_worker *w, struct mesh_stream *s);
void mesh_worker_wake_waiter(struct mesh_worker *w, struct mesh_cluster_state *state);

/* admin.c: answers a request on the admin listener. */
void mesh_admin_handle(struct mesh_stream *s);
void mesh_admin_respond(struct mesh_stream *s, int status, const char *content_type,
                        const char *body, size_t len);

#endif
