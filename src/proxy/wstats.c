/* SPDX-License-Identifier: Apache-2.0 */
/* What a worker counts, by service: the glue between the request path and its stats shard,
 * plus the access log line of each finished stream. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "stream.h"
#include "trace.h"
#include "tap.h"

static struct mesh_stats_counter *counter(struct mesh_worker *w, enum mesh_stats_family f,
                                          const char *a, const char *b)
{
    const char *labels[3] = {a, b, NULL};
    struct mesh_stats_counter *c = NULL;
    mesh_stats_counter_get(w->st.shard, f, labels, &c); /* on error: a sink that counts nothing */
    return c;
}

enum mesh_err mesh_wstats_init(struct mesh_worker *w)
{
    enum mesh_err err = mesh_stats_shard_new(MESH_STATS_DEFAULT_MAX_SERIES, &w->st.shard);
    if (err != MESH_OK)
        return err;
    w->st.accepted = counter(w, MESH_STATS_DOWNSTREAM_CX_ACCEPTED, NULL, NULL);
    w->st.rx = counter(w, MESH_STATS_DOWNSTREAM_RX_BYTES, NULL, NULL);
    w->st.tx = counter(w, MESH_STATS_DOWNSTREAM_TX_BYTES, NULL, NULL);
    /* Only an HTTPS gateway shows the family (with both results, 0 until the first). */
    if (w->proxy->tls_server) {
        w->st.tls_ok = counter(w, MESH_STATS_TLS_HANDSHAKES, "success", NULL);
        w->st.tls_failed = counter(w, MESH_STATS_TLS_HANDSHAKES, "failure", NULL);
    }
    return mesh_stats_gauge_get(w->st.shard, MESH_STATS_DOWNSTREAM_CX_ACTIVE, NULL, &w->st.active);
}

void mesh_wstats_parse_error(struct mesh_worker *w, const char *kind)
{
    mesh_stats_counter_inc(counter(w, MESH_STATS_PARSE_ERRORS, kind, NULL));
}

void mesh_wstats_fault(struct mesh_worker *w, const char *service, const char *kind)
{
    mesh_stats_counter_inc(counter(w, MESH_STATS_FAULTS, service, kind));
}

void mesh_wstats_overflow(struct mesh_worker *w, const char *service, const char *resource)
{
    mesh_stats_counter_inc(counter(w, MESH_STATS_OVERFLOWS, service, resource));
}

void mesh_wstats_retry(struct mesh_worker *w, const char *service)
{
    mesh_stats_counter_inc(counter(w, MESH_STATS_RETRIES, service, NULL));
}

void mesh_wstats_ejection(struct mesh_worker *w, const char *service, const char *endpoint)
{
    mesh_stats_counter_inc(counter(w, MESH_STATS_EJECTIONS, service, endpoint));
}

void mesh_wstats_mtls_handshake(struct mesh_worker *w, const char *direction,
                                enum mesh_tls_failure failure)
{
    const char *result = failure == MESH_TLS_FAIL_NONE ? "success" : mesh_tls_failure_str(failure);
    mesh_stats_counter_inc(counter(w, MESH_STATS_MTLS_HANDSHAKES, direction, result));
}

void mesh_wstats_inbound_connection(struct mesh_worker *w, bool mtls)
{
    mesh_stats_counter_inc(
        counter(w, MESH_STATS_INBOUND_CONNECTIONS, mtls ? "mtls" : "plaintext", NULL));
}

void mesh_wstats_authz(struct mesh_worker *w, const char *source, const char *rule, bool allowed)
{
    const char *labels[3] = {source, rule, allowed ? "allow" : "deny"};
    struct mesh_stats_counter *c = NULL;
    mesh_stats_counter_get(w->st.shard, MESH_STATS_AUTHZ, labels, &c);
    mesh_stats_counter_inc(c);
}

void mesh_wstats_upstream_cx(struct mesh_worker *w, const struct mesh_cluster_state *state,
                             const char *endpoint, bool pending, int delta)
{
    const char *labels[2] = {state->service, endpoint};
    struct mesh_stats_gauge *g = NULL;
    mesh_stats_gauge_get(w->st.shard,
                         pending ? MESH_STATS_UPSTREAM_CX_PENDING : MESH_STATS_UPSTREAM_CX_OPEN,
                         labels, &g);
    mesh_stats_gauge_add(g, delta);
}

void mesh_access_log(struct mesh_proxy *p, const char *line, size_t len)
{
    pthread_mutex_lock(&p->access_log_lock);
    fwrite(line, 1, len, p->access_log);
    fflush(p->access_log);
    pthread_mutex_unlock(&p->access_log_lock);
}

static void access_log(struct mesh_stream *s, uint64_t duration_ms)
{
    struct mesh_proxy *p = s->w->proxy;
    if (!p->access_log)
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line),
                     "{\"start_ms\":%llu,\"method\":\"%s\",\"path\":\"%s\",\"authority\":\"%s\","
                     "\"status\":%d,\"duration_ms\":%llu,\"service\":\"%s\",\"route\":\"%s\","
                     "\"endpoint\":\"%s\",\"attempts\":%u,\"request_id\":\"%s\","
                     "\"client\":\"%s\"}\n",
                     (unsigned long long)s->start_ms, s->method, s->path, s->authority, s->status,
                     (unsigned long long)duration_ms, s->service, s->route ? s->route->name : "",
                     s->ep ? s->ep->name : "", s->attempts + 1, s->request_id, s->c->peer);
    if (n > 0)
        mesh_access_log(p, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The handles for a (route, endpoint) pair: from the snapshot's cache, resolved on a miss. */
static struct mesh_stat_slot stat_slot(struct mesh_stream *s, const char *service,
                                       const char *route, const char *endpoint)
{
    struct mesh_stat_slot tmp = {0}, *slot = &tmp;
    if (s->ws && s->route) {
        uintptr_t key = (uintptr_t)s->route * 31u ^ (uintptr_t)s->ep;
        slot = &s->ws->stat_cache[(key >> 4) % MESH_STAT_CACHE_SLOTS];
        if (slot->requests && slot->route == s->route && slot->endpoint == s->ep)
            return *slot;
    }
    struct mesh_worker *w = s->w;
    const char *labels[2] = {service, route};
    mesh_stats_requests_get(w->st.shard, service, route, endpoint, &slot->requests);
    mesh_stats_histogram_get(w->st.shard, MESH_STATS_REQUEST_DURATION, labels, &slot->duration);
    slot->route = s->route;
    slot->endpoint = s->ep;
    return *slot;
}

void mesh_stream_account(struct mesh_stream *s)
{
    if (s->c->role == MESH_LISTENER_ADMIN || s->status == 0)
        return;
    uint64_t us = mesh_now_us() - s->start_us;
    const char *route = s->route ? s->route->name : "";
    const char *service = s->service[0] ? s->service : "";
    struct mesh_stat_slot slot = stat_slot(s, service, route, s->ep ? s->ep->name : "");
    mesh_stats_requests_count(slot.requests, (unsigned)s->status);
    mesh_stats_histogram_observe(slot.duration, us);
    /* Tapping's whole cost while nobody taps: this load. */
    if (atomic_load_explicit(&s->w->proxy->tap_sessions, memory_order_relaxed))
        mesh_tap_publish(s, us);
    access_log(s, us / 1000);
    if (s->trace.sampled)
        mesh_trace_record_stream(s, us);
}
