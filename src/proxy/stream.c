/* SPDX-License-Identifier: Apache-2.0 */
/* One request/response exchange: parse the head, route, inject faults, pick a destination and
 * an endpoint under the circuit breaker, send upstream, relay the response, retry on failure. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "framer.h"
#include "picker.h"
#include "proxy.h"
#include "stream.h"
#include "tap.h"

static void stream_pump(struct mesh_stream *s);
static void stream_attempt(struct mesh_stream *s);

/* --- life cycle --- */

static void on_route_timeout(struct mesh_timer *t, void *data);
static void on_try_timer(struct mesh_timer *t, void *data);

#define STREAM_FREE_LIST_MAX 256

/* Streams are recycled per worker: a request costs no allocation and no zeroing of the header
 * arrays (7 KiB), only of the fields before them. */
struct mesh_stream *mesh_stream_new(struct mesh_dconn *c)
{
    struct mesh_worker *w = c->w;
    struct mesh_stream *s = w->free_streams;
    if (s) {
        w->free_streams = s->free_next;
        w->n_free_streams--;
    } else if (!(s = malloc(sizeof(*s)))) {
        return NULL;
    } else {
        memset(&s->req_head, 0, sizeof(s->req_head));
    }
    memset(s, 0, offsetof(struct mesh_stream, req_head));
    mesh_wbuf_reset(&s->req_head);
    s->c = c;
    s->w = c->w;
    s->state = MESH_STREAM_HEAD;
    s->start_ms = mesh_loop_now_ms(&c->w->loop);
    s->start_us = mesh_now_us();
    mesh_h1_parser_init(&s->parser, MESH_H1_REQUEST, &c->w->proxy->opt.limits, s->req_headers,
                        MESH_PROXY_MAX_HEADERS);
    mesh_timer_init(&s->route_timer, on_route_timeout, s);
    mesh_timer_init(&s->try_timer, on_try_timer, s);
    c->w->active_streams++;
    return s;
}

static void release_breaker(struct mesh_stream *s)
{
    if (!s->cluster)
        return;
    struct mesh_breaker *b = &s->cluster->state->breaker;
    if (s->holds_request)
        mesh_breaker_release(b, MESH_BREAKER_REQUESTS);
    if (s->holds_retry)
        mesh_breaker_release(b, MESH_BREAKER_RETRIES);
    if (s->holds_pending)
        mesh_breaker_release(b, MESH_BREAKER_PENDING);
    s->holds_request = s->holds_retry = s->holds_pending = false;
}

static void leave_endpoint(struct mesh_stream *s)
{
    if (s->ep && s->ws) {
        s->ws->active[s->ep->id]--;
        atomic_fetch_sub_explicit(&s->cluster->state->active[s->ep_index], 1, memory_order_relaxed);
    }
    s->ep = NULL;
}

/* Hands the upstream connection back: to its pool when it is clean, else closed. */
static void drop_upstream(struct mesh_stream *s, bool reusable)
{
    struct mesh_uconn *u = s->u;
    if (!u)
        return;
    s->u = NULL;
    u->stream = NULL;
    mesh_uconn_release(u, reusable);
}

void mesh_stream_free(struct mesh_stream *s)
{
    struct mesh_worker *w = s->w;
    if (s->tapper)
        mesh_tap_detach(s);
    mesh_timer_stop(&w->loop, &s->route_timer);
    mesh_timer_stop(&w->loop, &s->try_timer);
    mesh_worker_unwait(w, s);
    drop_upstream(s, false);
    leave_endpoint(s);
    release_breaker(s);
    if (s->ws)
        mesh_worker_release_wsnap(w, s->ws);
    w->active_streams--;
    if (w->n_free_streams >= STREAM_FREE_LIST_MAX || s->req_head.cap > 65536) {
        mesh_wbuf_free(&s->req_head);
        free(s);
        return;
    }
    s->free_next = w->free_streams;
    w->free_streams = s;
    w->n_free_streams++;
}

void mesh_stream_free_list(struct mesh_worker *w)
{
    while (w->free_streams) {
        struct mesh_stream *s = w->free_streams;
        w->free_streams = s->free_next;
        mesh_wbuf_free(&s->req_head);
        free(s);
    }
    w->n_free_streams = 0;
}

/* The client went away mid-stream. */
void mesh_stream_abort(struct mesh_stream *s)
{
    if (s->status == 0)
        s->status = 499; /* as nginx logs it: the client closed first */
    mesh_stream_account(s);
    mesh_stream_free(s);
}

/* The exchange is over: account for it and give the connection its next request. */
static void stream_finish(struct mesh_stream *s, bool keep_alive)
{
    struct mesh_dconn *c = s->c;
    /* Clean: both messages complete and nothing extra waiting from the upstream. */
    bool reusable = s->u && mesh_framer_done(&s->resp_framer) && s->resp_keep_alive &&
                    mesh_framer_done(&s->req_framer) && !s->u->peer_closed &&
                    (!s->u->in || mesh_buf_readable(s->u->in) == 0);
    drop_upstream(s, reusable);
    mesh_stream_account(s);
    if (!mesh_framer_done(&s->req_framer))
        keep_alive = false; /* unread request body: the next request cannot be found */
    mesh_stream_free(s);
    mesh_dconn_stream_done(c, keep_alive);
}

/* --- local answers --- */

static void respond_local(struct mesh_stream *s, int status, const char *headers, const char *body)
{
    struct mesh_dconn *c = s->c;
    s->status = status;
    s->state = MESH_STREAM_LOCAL;
    mesh_timer_stop(&s->w->loop, &s->try_timer);
    drop_upstream(s, false);
    mesh_dconn_respond(c, status, headers, body);
    stream_pump(s);
}

static void respond_error(struct mesh_stream *s, int status, const char *error)
{
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "x-mesh-error: %s\r\ncontent-type: text/plain\r\n", error);
    char body[160];
    snprintf(body, sizeof(body), "%s\n", error);
    respond_local(s, status, hdr, body);
}

/* A request body whose chunked framing is broken: refused, counted, the connection closed. */
static void refuse_bad_body(struct mesh_stream *s)
{
    const char *kind = mesh_h1_error_name(s->req_framer.chunked.error);
    mesh_wstats_parse_error(s->w, kind);
    s->req_framer.complete = true;
    s->c->close_after = true;
    respond_error(s, 400, kind);
}

/* --- the request head --- */

/* A sidecar's inbound request against its service's authorization rules (pol), with the peer's
 * verified identity (none over plaintext). Decisions are counted when the service has rules;
 * denials are logged with the peer. */
static bool inbound_authorized(struct mesh_stream *s, const struct mesh_inbound_policy *pol)
{
    const char *rule = NULL;
    const char *peer_id = s->c->peer_id;
    bool allowed = mesh_authz_check(pol, peer_id, s->req.method, s->req.path, &rule);
    if (!pol->authz)
        return allowed;
    char source[192];
    mesh_authz_source(peer_id, source, sizeof(source));
    mesh_wstats_authz(s->w, source, rule, allowed);
    if (!allowed) {
        char peer[80];
        mesh_dconn_peer_text(s->c, peer, sizeof(peer));
        fprintf(stderr,
                "lvl=warn msg=\"request denied by authorization\" peer=%s identity=%s method=%.*s "
                "path=\"%.*s\" rule=%s\n",
                peer, peer_id ? peer_id : "none (plaintext)", (int)s->req.method.len,
                s->req.method.p, (int)(s->req.path.len > 200 ? 200 : s->req.path.len),
                s->req.path.p, rule);
    }
    return allowed;
}

/* Whether the comma-separated token list holds name (case-insensitive), as in Connection. */
static bool token_list_has(struct mesh_slice list, struct mesh_slice name)
{
    size_t i = 0;
    while (i < list.len) {
        while (i < list.len && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t start = i;
        while (i < list.len && list.p[i] != ',' && list.p[i] != ' ' && list.p[i] != '\t')
            i++;
        if (i > start && mesh_slice_eq_nocase(mesh_slice_make(list.p + start, i - start), name))
            return true;
    }
    return false;
}

static bool is_hop_by_hop(struct mesh_slice name, struct mesh_slice connection_tokens)
{
    /* By length first: this runs for every header of every request and response. */
    switch (name.len) {
    case 2:
        if (mesh_slice_eq_cstr_nocase(name, "te"))
            return true;
        break;
    case 7:
        if (mesh_slice_eq_cstr_nocase(name, "trailer") ||
            mesh_slice_eq_cstr_nocase(name, "upgrade"))
            return true;
        break;
    case 10:
        if (mesh_slice_eq_cstr_nocase(name, "connection") ||
            mesh_slice_eq_cstr_nocase(name, "keep-alive"))
            return true;
        break;
    case 16:
        if (mesh_slice_eq_cstr_nocase(name, "proxy-connection"))
            return true;
        break;
    default:
        break;
    }
    return connection_tokens.len && token_list_has(connection_tokens, name);
}

static struct mesh_slice header_value(const struct mesh_h1_message *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++)
        if (mesh_slice_eq_cstr_nocase(m->headers[i].name, name))
            return m->headers[i].value;
    return (struct mesh_slice){NULL, 0};
}

static void make_request_id(struct mesh_stream *s)
{
    static const char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; half++) {
        uint64_t v = mesh_rng_next(&s->w->rng);
        for (int i = 0; i < 16; i++, v >>= 4)
            s->request_id[half * 16 + i] = hex[v & 0xf];
    }
    s->request_id[32] = '\0';
}

static bool put_request_line(struct mesh_wbuf *out, const struct mesh_h1_message *m)
{
    bool ok = mesh_wbuf_put_slice(out, m->method) && mesh_wbuf_puts(out, " ");
    if (m->target_form == MESH_H1_T_ABSOLUTE) /* upstreams expect the origin form */
        ok = ok && mesh_wbuf_put_slice(out, m->path) &&
             (!m->query.len || (mesh_wbuf_puts(out, "?") && mesh_wbuf_put_slice(out, m->query)));
    else
        ok = ok && mesh_wbuf_put_slice(out, m->target);
    return ok && mesh_wbuf_puts(out, " HTTP/1.1\r\n");
}

/* The tracing settings in force for the stream: its snapshot's, except on a sidecar's inbound
 * listener, whose fixed snapshot knows nothing of them: there, the published one's (which
 * mesh_worker_inbound_policy has just adopted). NULL when tracing does not apply. */
static const struct mesh_trace_config *trace_config(const struct mesh_stream *s)
{
    if (!s->w->proxy->tracer)
        return NULL;
    const struct mesh_wsnap *ws = s->c->role == MESH_LISTENER_INBOUND ? s->w->wsnap : s->ws;
    return ws && ws->snap->trace.enabled ? &ws->snap->trace : NULL;
}

/* The head sent upstream: hop-by-hop headers removed, x-forwarded-for and x-request-id added.
 * At the edge (a gateway, a static proxy) x-forwarded-proto says how the client came, https or
 * http, replacing whatever the client claimed; sidecars pass on the value the edge set.
 * With tracing on, the trace headers are taken out as they are met and this hop's written
 * instead (trace_context.h); with it off they pass like any other header, at no cost.
 * Rendered once, so that retries resend it and the client buffer can move on. */
static bool render_request_head(struct mesh_stream *s)
{
    const struct mesh_h1_message *m = &s->req;
    struct mesh_wbuf *out = &s->req_head;
    struct mesh_slice conn = header_value(m, "connection");
    struct mesh_slice xff = header_value(m, "x-forwarded-for");
    struct mesh_slice rid = header_value(m, "x-request-id");
    bool edge = s->w->proxy->opt.mode != MESH_PROXY_SIDECAR;
    const struct mesh_trace_config *tc = trace_config(s);
    struct mesh_trace_headers th;
    if (tc)
        memset(&th, 0, sizeof(th));
    bool ok = put_request_line(out, m);
    for (size_t i = 0; ok && i < m->n_headers; i++) {
        const struct mesh_h1_header *h = &m->headers[i];
        if (tc && mesh_trace_headers_add(&th, h->name, h->value))
            continue;
        if (!is_hop_by_hop(h->name, conn) &&
            !mesh_slice_eq_cstr_nocase(h->name, "x-forwarded-for") &&
            !(edge && mesh_slice_eq_cstr_nocase(h->name, "x-forwarded-proto")))
            ok = mesh_wbuf_put_header(out, h->name, h->value);
    }
    ok = ok && mesh_wbuf_puts(out, "x-forwarded-for: ");
    if (ok && xff.len)
        ok = mesh_wbuf_put_slice(out, xff) && mesh_wbuf_puts(out, ", ");
    ok = ok && mesh_wbuf_puts(out, s->c->peer) && mesh_wbuf_puts(out, "\r\n");
    if (edge)
        ok = ok && mesh_wbuf_puts(out, s->c->tls ? "x-forwarded-proto: https\r\n"
                                                 : "x-forwarded-proto: http\r\n");
    if (rid.len) {
        size_t n = rid.len < sizeof(s->request_id) - 1 ? rid.len : sizeof(s->request_id) - 1;
        memcpy(s->request_id, rid.p, n);
        s->request_id[n] = '\0';
    } else {
        make_request_id(s);
        ok = ok && mesh_wbuf_puts(out, "x-request-id: ") && mesh_wbuf_puts(out, s->request_id) &&
             mesh_wbuf_puts(out, "\r\n");
    }
    if (tc) {
        mesh_trace_begin(&th, tc->sampling_rate, &s->w->rng, &s->trace);
        ok = ok && mesh_trace_put_headers(out, &s->trace, &th);
    }
    if (ok && m->upgrade)
        ok = mesh_wbuf_puts(out, "connection: upgrade\r\nupgrade: ") &&
             mesh_wbuf_put_slice(out, header_value(m, "upgrade")) && mesh_wbuf_puts(out, "\r\n");
    return ok && mesh_wbuf_puts(out, "\r\n");
}

/* Copies len bytes of p into dst (size bytes), cut to fit, NUL-terminated. */
static void copy_text(char *dst, size_t size, const char *p, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
}

static void copy_for_log(struct mesh_stream *s)
{
    const struct mesh_h1_message *m = &s->req;
    copy_text(s->method, sizeof(s->method), m->method.p, m->method.len);
    copy_text(s->path, sizeof(s->path), m->path.p, m->path.len);
    copy_text(s->authority, sizeof(s->authority), m->host.p, m->host.len);
}

/* Parses the request head; on success routes it. Returns false when more bytes are needed. */
static bool stream_read_head(struct mesh_stream *s)
{
    struct mesh_dconn *c = s->c;
    for (;;) {
        const char *p = c->in ? c->in->data + c->in->start : "";
        size_t len = c->in ? mesh_buf_readable(c->in) : 0;
        enum mesh_err err = len ? mesh_h1_parse(&s->parser, p, len, &s->req) : MESH_E_AGAIN;
        if (err == MESH_OK)
            return true;
        if (err != MESH_E_AGAIN) {
            mesh_wstats_parse_error(s->w, mesh_h1_error_name(s->parser.error));
            s->req_framer.complete = true;
            c->close_after = true;
            respond_error(s, mesh_h1_error_status(s->parser.error),
                          mesh_h1_error_name(s->parser.error));
            return false;
        }
        if (c->in && c->in->start == 0 && c->in->end == c->in->cap) {
            /* The buffer is as large as the head may be: it is too large. */
            mesh_wstats_parse_error(s->w, "headers_too_large");
            s->req_framer.complete = true;
            c->close_after = true;
            respond_error(s, 431, "headers_too_large");
            return false;
        }
        ssize_t n = mesh_dconn_read(c);
        if (n > 0)
            continue;
        if (n < 0) {
            /* EOF before a complete head: nothing to answer. */
            s->req_framer.complete = true;
            c->close_after = true;
            s->status = 0;
            stream_finish(s, false);
            return false;
        }
        return false; /* wait for more */
    }
}

static void on_head_complete(struct mesh_stream *s)
{
    struct mesh_dconn *c = s->c;
    struct mesh_worker *w = s->w;
    mesh_timer_stop(&w->loop, &c->timer);
    copy_for_log(s);
    s->keep_alive = s->req.keep_alive;
    enum mesh_framing kind = s->req.chunked              ? MESH_FRAME_CHUNKED
                             : s->req.content_length > 0 ? MESH_FRAME_LENGTH
                                                         : MESH_FRAME_NONE;
    mesh_framer_init(&s->req_framer, kind,
                     s->req.content_length > 0 ? (uint64_t)s->req.content_length : 0);
    if (c->role == MESH_LISTENER_ADMIN) {
        mesh_admin_handle(s);
        return;
    }
    s->ws = mesh_worker_wsnap(w, c->role);
    const struct mesh_inbound_policy *policy =
        c->role == MESH_LISTENER_INBOUND ? mesh_worker_inbound_policy(w) : NULL;
    bool unknown_policy =
        c->role == MESH_LISTENER_INBOUND && !policy && w->proxy->opt.mode == MESH_PROXY_SIDECAR;
    bool denied = policy && !inbound_authorized(s, policy);
    const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s->ws->snap, s->req.host);
    s->route = vh ? mesh_vhost_match(vh, &s->req) : NULL;
    if (!render_request_head(s)) {
        respond_error(s, 500, "out of memory");
        return;
    }
    c->in->start += (uint32_t)s->req.head_len; /* the head is rendered; slices die here */
    memset(&s->req.headers, 0, sizeof(s->req.headers));
    s->req.n_headers = 0;
    /* What of the body is already here is checked before anything goes upstream. */
    if (!mesh_framer_scan(&s->req_framer, c->in->data + c->in->start, mesh_buf_readable(c->in))) {
        refuse_bad_body(s);
        return;
    }
    if (unknown_policy) {
        respond_error(s, 503, "no config yet"); /* its policy may be strict: not a byte through */
        return;
    }
    if (denied) {
        /* Envoy's words, which clients of an Istio mesh may already look for. */
        respond_local(s, 403, "content-type: text/plain\r\n", "RBAC: access denied");
        return;
    }
    if (s->ws->snap->awaiting_config) {
        /* A sidecar or gateway that has not heard from meshd yet knows no route at all: say so
         * rather than a 404 that would read as "this host does not exist". */
        respond_error(s, 503, "no config yet");
        return;
    }
    if (!s->route) {
        respond_error(s, 404, "no route");
        return;
    }
    s->routed = true;
    uint64_t timeout = s->route->timeout_ms ? s->route->timeout_ms : w->proxy->opt.route_timeout_ms;
    mesh_timer_start(&w->loop, &s->route_timer, timeout);
    mesh_stream_route(s);
}

/* --- routing decisions: fault, destination, breaker --- */

static bool apply_fault(struct mesh_stream *s, const struct mesh_fault_rt *f)
{
    struct mesh_fault_decision d;
    if (!mesh_fault_decide(f, &s->w->rng, &d))
        return false;
    if (d.delay_ms && !s->delayed) {
        s->delayed = true;
        s->pending_abort = d.abort_status;
        mesh_wstats_fault(s->w, s->service, "delay");
        s->state = MESH_STREAM_DELAY;
        mesh_timer_start(&s->w->loop, &s->try_timer, d.delay_ms);
        return true;
    }
    if (d.abort_status) {
        mesh_wstats_fault(s->w, s->service, "abort");
        respond_local(s, (int)d.abort_status, "x-mesh-fault: abort\r\n", "fault filter abort\n");
        return true;
    }
    return false;
}

static bool endpoint_usable(void *ctx, size_t i)
{
    const struct mesh_cluster *cl = ctx;
    return !cl->outlier_enabled || !mesh_outlier_ejected(&cl->state->outlier, i);
}

void mesh_stream_route(struct mesh_stream *s)
{
    const struct mesh_route_rt *rt = s->route;
    if (rt->has_fault && !s->fault_checked) {
        s->fault_checked = true;
        copy_text(s->service, sizeof(s->service), rt->vhost->name, strlen(rt->vhost->name));
        if (apply_fault(s, &rt->fault))
            return;
    }
    if (s->pending_abort) {
        mesh_wstats_fault(s->w, s->service, "abort");
        respond_local(s, (int)s->pending_abort, "x-mesh-fault: abort\r\n", "fault filter abort\n");
        return;
    }
    if (!s->cluster) {
        size_t d = mesh_swrr_pick(s->ws->swrr + rt->dest_base, rt->weights, rt->n_dests);
        const struct mesh_cluster *cl = d < rt->n_dests ? rt->dests[d].cluster : NULL;
        if (!cl) {
            respond_error(s, 503, "no healthy upstream");
            return;
        }
        s->cluster = cl;
        copy_text(s->service, sizeof(s->service), cl->name, strlen(cl->name));
        if (cl->has_fault && apply_fault(s, &cl->fault))
            return;
    }
    if (!s->holds_request) {
        if (!mesh_breaker_try_acquire(&s->cluster->state->breaker, &s->cluster->limits,
                                      MESH_BREAKER_REQUESTS)) {
            mesh_wstats_overflow(s->w, s->service, "requests");
            respond_local(s, 503, "x-mesh-overflow: requests\r\n", "circuit breaker overflow\n");
            return;
        }
        s->holds_request = true;
    }
    stream_attempt(s);
}

/* One try: an endpoint, a connection, the head. */
static void stream_attempt(struct mesh_stream *s)
{
    const struct mesh_cluster *cl = s->cluster;
    struct mesh_worker *w = s->w;
    /* A cluster's endpoints have consecutive ids: its slice of the worker's counts. */
    const uint32_t *active = cl->n_endpoints ? s->ws->active + cl->endpoints[0].id : NULL;
    int i = mesh_lb_pick(cl->lb, &s->ws->lb[cl->id], active, cl->n_endpoints, endpoint_usable,
                         (void *)cl);
    if (i < 0) {
        respond_error(s, 503, "no healthy upstream");
        return;
    }
    leave_endpoint(s);
    s->ep = &cl->endpoints[i];
    s->ep_index = (size_t)i;
    s->ws->active[s->ep->id]++;
    atomic_fetch_add_explicit(&cl->state->active[i], 1, memory_order_relaxed);
    struct mesh_uconn *u = NULL;
    bool reused = false;
    enum mesh_err err =
        mesh_uconn_acquire(w, cl, s->ep, w->proxy->opt.connect_timeout_ms, &u, &reused);
    if (err == MESH_E_AGAIN) {
        /* At max_connections: wait for one, if the pending limit allows. */
        if (!s->holds_pending &&
            !mesh_breaker_try_acquire(&cl->state->breaker, &cl->limits, MESH_BREAKER_PENDING)) {
            mesh_wstats_overflow(w, s->service, "pending_requests");
            respond_local(s, 503, "x-mesh-overflow: pending_requests\r\n",
                          "circuit breaker overflow\n");
            return;
        }
        s->holds_pending = true;
        s->state = MESH_STREAM_WAIT_CONN;
        mesh_worker_wait(w, s);
        return;
    }
    if (s->holds_pending) {
        mesh_breaker_release(&cl->state->breaker, MESH_BREAKER_PENDING);
        s->holds_pending = false;
    }
    if (err != MESH_OK) {
        mesh_stream_upstream_failed(s, err == MESH_E_TLS ? MESH_FAIL_TLS : MESH_FAIL_CONNECT);
        return;
    }
    s->u = u;
    s->on_reused = reused;
    u->stream = s;
    s->state = MESH_STREAM_UPSTREAM;
    s->req_head.off = 0;
    s->resp_head_seen = false;
    mesh_h1_parser_init(&s->rparser, MESH_H1_RESPONSE, &w->proxy->opt.limits, s->resp_headers,
                        MESH_PROXY_MAX_HEADERS);
    uint64_t per_try = s->route ? s->route->per_try_timeout_ms : 0;
    if (per_try)
        mesh_timer_start(&w->loop, &s->try_timer, per_try);
    stream_pump(s);
}

/* Called by the worker when a connection of this stream's cluster frees up. */
void mesh_stream_retry_connect(struct mesh_stream *s)
{
    stream_attempt(s);
}

/* --- failures and retries --- */

static bool may_retry(struct mesh_stream *s, enum mesh_fail cause, int status)
{
    const struct mesh_route_rt *rt = s->route;
    if (!rt || s->attempts >= rt->retry_attempts || s->resp_started || s->req_body_sent)
        return false;
    uint32_t on = rt->retry_on;
    bool connect = cause == MESH_FAIL_CONNECT || cause == MESH_FAIL_TLS;
    bool wanted = (connect && (on & MESH_RETRY_ON_CONNECT_FAILURE)) ||
                  (cause == MESH_FAIL_RESET && (on & MESH_RETRY_ON_RESET)) ||
                  (cause == MESH_FAIL_TIMEOUT && (on & MESH_RETRY_ON_5XX)) ||
                  (cause == MESH_FAIL_STATUS && (on & MESH_RETRY_ON_5XX) && status >= 500) ||
                  (cause == MESH_FAIL_STATUS && (on & MESH_RETRY_ON_GATEWAY_ERROR) &&
                   status >= 502 && status <= 504) ||
                  (cause != MESH_FAIL_STATUS && (on & MESH_RETRY_ON_GATEWAY_ERROR));
    if (!wanted)
        return false;
    if (!s->holds_retry) {
        if (!mesh_breaker_try_acquire(&s->cluster->state->breaker, &s->cluster->limits,
                                      MESH_BREAKER_RETRIES)) {
            mesh_wstats_overflow(s->w, s->service, "retries");
            return false;
        }
        s->holds_retry = true;
    }
    return true;
}

static void report_outlier(struct mesh_stream *s, bool failure)
{
    const struct mesh_cluster *cl = s->cluster;
    if (!cl || !s->ep || !cl->outlier_enabled)
        return;
    if (mesh_outlier_report(&cl->state->outlier, &cl->outlier, s->ep_index, failure,
                            mesh_loop_now_ms(&s->w->loop)))
        mesh_wstats_ejection(s->w, cl->name, s->ep->name);
}

void mesh_stream_upstream_failed(struct mesh_stream *s, enum mesh_fail cause)
{
    /* A kept-alive connection the upstream closed just as we reused it: not the endpoint's
     * fault, and nothing was answered. Try once more on a fresh connection, as nginx does. */
    if (cause == MESH_FAIL_RESET && s->on_reused && !s->stale_retried && !s->resp_started &&
        !s->req_body_sent) {
        s->stale_retried = true;
        drop_upstream(s, false);
        stream_attempt(s);
        return;
    }
    enum mesh_tls_failure tls_failure = s->u ? s->u->tls_failure : MESH_TLS_FAIL_NONE;
    report_outlier(s, true);
    drop_upstream(s, false);
    mesh_timer_stop(&s->w->loop, &s->try_timer);
    if (may_retry(s, cause, 0)) {
        s->attempts++;
        mesh_wstats_retry(s->w, s->service);
        stream_attempt(s);
        return;
    }
    switch (cause) {
    case MESH_FAIL_CONNECT:
        respond_error(s, 503, "upstream connect error");
        break;
    case MESH_FAIL_RESET:
        respond_error(s, 502, "upstream reset");
        break;
    case MESH_FAIL_TIMEOUT:
        respond_error(s, 504, "upstream request timeout");
        break;
    case MESH_FAIL_TLS: {
        char why[96] = "upstream mTLS unavailable: no workload certificate yet";
        if (tls_failure != MESH_TLS_FAIL_NONE)
            snprintf(why, sizeof(why), "upstream TLS handshake failed: %s",
                     mesh_tls_failure_str(tls_failure));
        respond_error(s, 503, why);
        break;
    }
    default:
        respond_error(s, 502, "upstream error");
        break;
    }
}

static void on_try_timer(struct mesh_timer *t, void *data)
{
    struct mesh_stream *s = data;
    (void)t;
    if (s->state == MESH_STREAM_DELAY) {
        s->state = MESH_STREAM_HEAD; /* the delay is over: route on */
        mesh_stream_route(s);
        return;
    }
    mesh_stream_upstream_failed(s, MESH_FAIL_TIMEOUT);
}

static void on_route_timeout(struct mesh_timer *t, void *data)
{
    struct mesh_stream *s = data;
    (void)t;
    if (s->resp_started) {
        /* Part of the response is out: all we can do is cut the connection. */
        s->c->close_after = true;
        s->status = 504;
        mesh_dconn_close(s->c);
        return;
    }
    mesh_worker_unwait(s->w, s);
    s->attempts = UINT32_MAX; /* no retry after the route's own timeout */
    drop_upstream(s, false);
    respond_error(s, 504, "upstream request timeout");
}

/* Called by admin.c / the header timer for a head that never completed. */
void mesh_stream_on_timeout_head(struct mesh_stream *s)
{
    s->req_framer.complete = true;
    s->c->close_after = true;
    mesh_wstats_parse_error(s->w, "header_timeout");
    respond_error(s, 408, "request header timeout");
}

/* --- relaying --- */

/* Sends what it can of the request: the rendered head, then body bytes from the client. */
static bool pump_request(struct mesh_stream *s)
{
    struct mesh_uconn *u = s->u;
    struct mesh_dconn *c = s->c;
    if (!u->connected)
        return true;
    for (;;) {
        size_t head = mesh_wbuf_pending(&s->req_head);
        const char *body = c->in ? c->in->data + c->in->start : NULL;
        if (c->in && !mesh_framer_scan(&s->req_framer, body, mesh_buf_readable(c->in))) {
            drop_upstream(s, false);
            refuse_bad_body(s);
            return false;
        }
        size_t ready = s->req_framer.ready;
        if (head == 0 && ready == 0) {
            if (s->req_framer.complete)
                return true;
            ssize_t n = mesh_dconn_read(c);
            if (n > 0)
                continue;
            if (n < 0) {
                mesh_framer_eof(&s->req_framer);
                if (s->req_framer.failed) {
                    s->status = 499;
                    mesh_dconn_close(c); /* the client left mid-body */
                    return false;
                }
            }
            return true;
        }
        if (!u->writable)
            return true;
        struct iovec iov[2] = {{s->req_head.p + s->req_head.off, head}, {(void *)body, ready}};
        int first = head ? 0 : 1;
        ssize_t n = mesh_uconn_writev(u, iov + first, 2 - first);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                u->writable = false;
                return true;
            }
            mesh_stream_upstream_failed(s, MESH_FAIL_RESET);
            return false;
        }
        size_t h = (size_t)n < head ? (size_t)n : head;
        s->req_head.off += h;
        size_t b = (size_t)n - h;
        if (b) {
            s->req_body_sent = true;
            c->in->start += (uint32_t)b;
            mesh_framer_sent(&s->req_framer, b);
        }
        if ((size_t)n < head + ready)
            u->writable = false;
    }
}

static bool is_response_hop_by_hop(struct mesh_slice name, struct mesh_slice conn, int status)
{
    if (status == 101 && (mesh_slice_eq_cstr_nocase(name, "upgrade") ||
                          mesh_slice_eq_cstr_nocase(name, "connection")))
        return false;
    return is_hop_by_hop(name, conn);
}

/* Writes the response head for the client into its output buffer. */
static bool render_response_head(struct mesh_stream *s)
{
    const struct mesh_h1_message *m = &s->resp;
    struct mesh_wbuf *out = &s->c->out;
    struct mesh_slice conn = header_value(m, "connection");
    bool ok = mesh_wbuf_puts(out, "HTTP/1.1 ") && mesh_wbuf_put_uint(out, (unsigned)m->status) &&
              mesh_wbuf_puts(out, " ") && mesh_wbuf_put_slice(out, m->reason) &&
              mesh_wbuf_puts(out, "\r\n");
    for (size_t i = 0; ok && i < m->n_headers; i++) {
        const struct mesh_h1_header *h = &m->headers[i];
        if (!is_response_hop_by_hop(h->name, conn, m->status))
            ok = mesh_wbuf_put_header(out, h->name, h->value);
    }
    if (ok && m->status >= 200 && !s->keep_alive)
        ok = mesh_wbuf_puts(out, "connection: close\r\n");
    else if (ok && m->status >= 200 && s->req.version_minor == 0)
        ok = mesh_wbuf_puts(out, "connection: keep-alive\r\n");
    return ok && mesh_wbuf_puts(out, "\r\n");
}

static enum mesh_framing response_framing(const struct mesh_stream *s)
{
    switch (mesh_h1_response_body(&s->resp, strcmp(s->method, "HEAD") == 0)) {
    case MESH_H1_BODY_NONE:
        return MESH_FRAME_NONE;
    case MESH_H1_BODY_LENGTH:
        return MESH_FRAME_LENGTH;
    case MESH_H1_BODY_CHUNKED:
        return MESH_FRAME_CHUNKED;
    case MESH_H1_BODY_UNTIL_CLOSE:
        return MESH_FRAME_UNTIL_CLOSE;
    }
    return MESH_FRAME_UNTIL_CLOSE;
}

/* A complete response head from upstream: retry, forward an interim 1xx, or start relaying. */
static bool on_response_head(struct mesh_stream *s)
{
    struct mesh_uconn *u = s->u;
    int status = s->resp.status;
    if (status >= 100 && status < 200 && status != 101) {
        /* 100 Continue and friends: pass them on, then wait for the final answer. */
        bool ok = render_response_head(s);
        u->in->start += (uint32_t)s->resp.head_len;
        mesh_h1_parser_init(&s->rparser, MESH_H1_RESPONSE, &s->w->proxy->opt.limits,
                            s->resp_headers, MESH_PROXY_MAX_HEADERS);
        return ok;
    }
    report_outlier(s, status >= 500);
    if (status >= 500 && may_retry(s, MESH_FAIL_STATUS, status)) {
        s->attempts++;
        mesh_wstats_retry(s->w, s->service);
        drop_upstream(s, false);
        mesh_timer_stop(&s->w->loop, &s->try_timer);
        stream_attempt(s);
        return false;
    }
    mesh_timer_stop(&s->w->loop, &s->try_timer);
    s->status = status;
    s->resp_keep_alive = s->resp.keep_alive;
    enum mesh_framing kind = status == 101 ? MESH_FRAME_RAW : response_framing(s);
    if (kind == MESH_FRAME_UNTIL_CLOSE || kind == MESH_FRAME_RAW)
        s->keep_alive = s->keep_alive && kind != MESH_FRAME_UNTIL_CLOSE;
    if (kind == MESH_FRAME_RAW) {
        s->keep_alive = false;
        mesh_framer_init(&s->req_framer, MESH_FRAME_RAW, 0);
    }
    if (!render_response_head(s)) {
        respond_error(s, 500, "out of memory");
        return false;
    }
    u->in->start += (uint32_t)s->resp.head_len;
    mesh_framer_init(&s->resp_framer, kind,
                     s->resp.content_length > 0 ? (uint64_t)s->resp.content_length : 0);
    s->resp_head_seen = true;
    s->resp_started = true;
    s->state = MESH_STREAM_RESPONSE;
    return true;
}

static bool pump_response_head(struct mesh_stream *s)
{
    struct mesh_uconn *u = s->u;
    while (!s->resp_head_seen) {
        size_t len = u->in ? mesh_buf_readable(u->in) : 0;
        enum mesh_err err =
            len ? mesh_h1_parse(&s->rparser, u->in->data + u->in->start, len, &s->resp)
                : MESH_E_AGAIN;
        if (err == MESH_OK) {
            if (!on_response_head(s))
                return false;
            if (!s->u) /* retried */
                return false;
            continue;
        }
        if (err != MESH_E_AGAIN) {
            mesh_wstats_parse_error(s->w, "upstream_bad_response");
            s->attempts = UINT32_MAX;
            mesh_stream_upstream_failed(s, MESH_FAIL_PROTOCOL);
            return false;
        }
        ssize_t n = mesh_uconn_read(u);
        if (n > 0)
            continue;
        if (n < 0) {
            mesh_stream_upstream_failed(s, MESH_FAIL_RESET);
            return false;
        }
        return true; /* wait */
    }
    return true;
}

/* Relays response body bytes from upstream to the client. Returns false when the stream ended. */
static bool pump_response(struct mesh_stream *s)
{
    struct mesh_uconn *u = s->u;
    struct mesh_dconn *c = s->c;
    for (;;) {
        const char *p = u->in ? u->in->data + u->in->start : NULL;
        size_t len = u->in ? mesh_buf_readable(u->in) : 0;
        if (!mesh_framer_scan(&s->resp_framer, p, len)) {
            mesh_dconn_close(c); /* bad framing mid-response: the client must see a cut */
            return false;
        }
        bool blocked = false;
        size_t ready = s->resp_framer.ready;
        size_t sent = mesh_dconn_writev(c, p, ready, &blocked);
        if (sent) {
            u->in->start += (uint32_t)sent;
            mesh_framer_sent(&s->resp_framer, sent);
        }
        if (c->peer_closed) {
            mesh_dconn_close(c);
            return false;
        }
        if (blocked)
            return true; /* the client's next write event resumes us */
        if (mesh_framer_done(&s->resp_framer) && s->resp_framer.kind != MESH_FRAME_RAW) {
            if (s->keep_alive && !mesh_framer_done(&s->req_framer)) {
                /* The upstream answered before it had the whole body (an early 403 or 413).
                 * The head promised the client a kept-alive connection: the rest of the body is
                 * read and dropped, as after an answer of our own, so that the promise holds. */
                drop_upstream(s, false);
                s->state = MESH_STREAM_LOCAL;
                stream_pump(s);
                return false;
            }
            stream_finish(s, s->keep_alive && mesh_framer_done(&s->req_framer));
            return false;
        }
        ssize_t n = mesh_uconn_read(u);
        if (n > 0)
            continue;
        if (n < 0) {
            mesh_framer_eof(&s->resp_framer);
            if (s->resp_framer.kind == MESH_FRAME_RAW || s->resp_framer.failed) {
                c->close_after = true;
                stream_finish(s, false);
                return false;
            }
            continue; /* until-close body: now complete */
        }
        return true;
    }
}

/* A tunnel after 101: client bytes go upstream as they come. */
static bool pump_tunnel_up(struct mesh_stream *s)
{
    if (s->c->peer_closed && (!s->c->in || mesh_buf_readable(s->c->in) == 0)) {
        stream_finish(s, false);
        return false;
    }
    return pump_request(s);
}

#define DRAIN_MAX_BYTES (256u * 1024u)

/* After an answer of our own, the request body nobody will read is skipped, so that the
 * connection can carry the next request; a large one is not worth it: the connection closes.
 * Returns false while more body is to come. */
static bool drain_request_body(struct mesh_stream *s)
{
    struct mesh_dconn *c = s->c;
    while (!mesh_framer_done(&s->req_framer)) {
        if (c->in && !mesh_framer_scan(&s->req_framer, c->in->data + c->in->start,
                                       mesh_buf_readable(c->in))) {
            c->close_after = true;
            return true;
        }
        size_t ready = s->req_framer.ready;
        if (ready) {
            c->in->start += (uint32_t)ready;
            mesh_framer_sent(&s->req_framer, ready);
            s->drained += ready;
            continue;
        }
        if (s->drained > DRAIN_MAX_BYTES) {
            c->close_after = true;
            return true;
        }
        ssize_t n = mesh_dconn_read(c);
        if (n > 0)
            continue;
        if (n < 0) {
            c->close_after = true;
            return true;
        }
        return false;
    }
    return true;
}

static void stream_pump(struct mesh_stream *s)
{
    switch (s->state) {
    case MESH_STREAM_HEAD:
        if (stream_read_head(s))
            on_head_complete(s);
        return;
    case MESH_STREAM_DELAY:
    case MESH_STREAM_WAIT_CONN:
        return;
    case MESH_STREAM_LOCAL: {
        struct mesh_dconn *c = s->c;
        if (!mesh_dconn_flush(c)) {
            if (c->peer_closed)
                mesh_dconn_close(c);
            return;
        }
        if (!c->close_after && !drain_request_body(s))
            return; /* more of the unread body to come */
        stream_finish(s, s->keep_alive && !c->close_after);
        return;
    }
    case MESH_STREAM_UPSTREAM:
        if (!pump_request(s) || !pump_response_head(s))
            return;
        if (s->state == MESH_STREAM_UPSTREAM && mesh_wbuf_pending(&s->c->out) &&
            !mesh_dconn_flush(s->c) && s->c->peer_closed) {
            mesh_dconn_close(s->c); /* an interim 100 Continue could not be delivered */
            return;
        }
        if (s->state != MESH_STREAM_RESPONSE)
            return;
        __attribute__((fallthrough)); /* the head is in: relay what follows */
    case MESH_STREAM_RESPONSE:
        if (s->resp_framer.kind == MESH_FRAME_RAW && !pump_tunnel_up(s))
            return;
        if (!mesh_framer_done(&s->req_framer) && s->resp_framer.kind != MESH_FRAME_RAW &&
            !pump_request(s))
            return;
        pump_response(s);
        return;
    case MESH_STREAM_TAP:
        mesh_tap_pump(s);
        return;
    }
}

void mesh_stream_on_downstream(struct mesh_stream *s)
{
    stream_pump(s);
}

void mesh_stream_on_upstream(struct mesh_stream *s)
{
    stream_pump(s);
}

/* --- answers of the admin listener --- */

void mesh_admin_respond(struct mesh_stream *s, int status, const char *content_type,
                        const char *body, size_t len)
{
    struct mesh_dconn *c = s->c;
    s->status = status;
    s->state = MESH_STREAM_LOCAL;
    c->in->start += (uint32_t)s->req.head_len;
    if (!s->req_framer.complete)
        c->close_after = true;
    bool ok = mesh_wbuf_printf(
                  &c->out, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s\r\n",
                  status, status == 200 ? "OK" : "Error", content_type, len,
                  c->close_after ? "connection: close\r\n" : "") &&
              mesh_wbuf_append(&c->out, body, len);
    if (!ok)
        c->close_after = true;
    stream_pump(s);
}
