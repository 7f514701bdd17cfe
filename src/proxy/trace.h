/* SPDX-License-Identifier: Apache-2.0 */
/* Spans: recorded by the workers into bounded per-worker rings, and exported by one background
 * thread as OTLP/HTTP JSON (ExportTraceServiceRequest) to the configured collector.
 *
 * Threads. Each worker is the only producer of its ring and the exporter its only consumer: a
 * span costs the worker a copy into a slot and one release store, no lock and no allocation. A
 * full ring drops the span (counted); nothing waits on the collector. Rings are allocated by
 * whoever publishes the first config that enables tracing (mesh_tracer_configure), before any
 * worker can see that config, and live until mesh_tracer_free.
 *
 * Metrics (docs/metrics.md): mesh_trace_spans_sampled_total (workers' shards),
 * mesh_trace_spans_dropped_total{reason} (buffer_full: workers' shards; export_failed,
 * no_collector: the exporter's), mesh_trace_spans_exported_total and
 * mesh_trace_export_requests_total{result} (the exporter's shard, mesh_tracer_stats). */
#ifndef MESH_PROXY_TRACE_H
#define MESH_PROXY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mesh/err.h"
#include "stats.h"
#include "trace_config.h"

/* Spans each worker's ring holds; the exporter empties the rings every
 * MESH_TRACE_FLUSH_INTERVAL_MS, in POSTs of at most MESH_TRACE_BATCH_MAX spans. */
#define MESH_TRACE_RING_SLOTS        1024u
#define MESH_TRACE_FLUSH_INTERVAL_MS 100u
#define MESH_TRACE_BATCH_MAX         512u

/* OTLP span kinds. */
#define MESH_SPAN_KIND_SERVER 2
#define MESH_SPAN_KIND_CLIENT 3

/* One finished span, as the worker copies it (strings cut to fit, NUL-terminated). */
struct mesh_span_record {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    uint8_t kind;       /* MESH_SPAN_KIND_* */
    uint16_t status;    /* the HTTP status sent to the client; 0 when none */
    uint16_t peer_port; /* the client's */
    uint32_t retries;   /* attempts retried */
    uint64_t start_ns;  /* unix time */
    uint64_t end_ns;
    char method[16];
    char path[256];        /* without the query */
    char authority[128];   /* the Host */
    char destination[128]; /* the destination Service ("inbound|NAME" for a sidecar's app) */
    char route[128];       /* the route's name; empty when none matched */
    char endpoint[64];     /* the upstream endpoint, host:port; empty when none was reached */
    char peer[64];         /* the client's address */
    char request_id[40];
};

/* Who the spans come from: the OTLP resource (service.name and friends). Borrowed strings. */
struct mesh_trace_resource {
    const char *service;  /* service.name: the sidecar's service, the gateway's name, or
                             "meshproxy" for a static proxy */
    const char *ns;       /* service.namespace; NULL: none */
    const char *instance; /* service.instance.id: the proxy id; NULL: none */
    const char *mode;     /* "sidecar", "gateway", "static" */
};

struct mesh_tracer;
struct mesh_stream;

/* A tracer for n_workers rings, exporting as res (copied). Nothing runs until
 * mesh_tracer_start. MESH_E_NOMEM. The caller owns *out. Main thread. */
enum mesh_err mesh_tracer_new(const struct mesh_trace_resource *res, unsigned n_workers,
                              struct mesh_tracer **out);

/* Takes cfg (copied) as the settings in force: the collector URL for the next exports, and, the
 * first time tracing is enabled, the rings (when they cannot be allocated, workers count their
 * spans as dropped, reason no_memory, and the next configure tries again). Call it before the
 * snapshot holding cfg is published. Any thread but a worker's; t NULL is a no-op. */
void mesh_tracer_configure(struct mesh_tracer *t, const struct mesh_trace_config *cfg);

/* Starts the exporter thread. MESH_E_NOMEM when it cannot. */
enum mesh_err mesh_tracer_start(struct mesh_tracer *t);

/* Stops the exporter: an export in flight is cancelled, then what the rings hold is sent once
 * more (unless the collector was failing), within about two seconds. Call after the workers
 * stopped. NULL or a tracer never started: no-op. */
void mesh_tracer_stop(struct mesh_tracer *t);

/* Frees the tracer and its rings (after mesh_tracer_stop, with no worker running). NULL ok. */
void mesh_tracer_free(struct mesh_tracer *t);

/* The exporter's stats shard, for the admin listener to render with the workers'. Borrowed;
 * NULL when t is NULL. */
struct mesh_stats_shard *mesh_tracer_stats(struct mesh_tracer *t);

/* Worker side: a slot of ring `worker` to fill, or NULL when the ring is full or missing (the
 * drop is counted in shard, the worker's own). Then mesh_tracer_commit publishes it. Only the
 * worker of that index. */
struct mesh_span_record *mesh_tracer_reserve(struct mesh_tracer *t, unsigned worker,
                                             struct mesh_stats_shard *shard);
void mesh_tracer_commit(struct mesh_tracer *t, unsigned worker);

/* stream_trace.c: records the span of a finished, sampled stream that lasted duration_us, into
 * its worker's ring. Its worker only. */
void mesh_trace_record_stream(struct mesh_stream *s, uint64_t duration_us);

/* OTLP/HTTP JSON encoding, one ExportTraceServiceRequest with one resource and one scope:
 * begin, a span per call (first: the first of the request), end. Strings are escaped and
 * invalid UTF-8 is replaced, so that the body is always valid JSON. MESH_E_NOMEM when out hits
 * its limit. Any thread. */
enum mesh_err mesh_trace_otlp_begin(struct mesh_strbuf *out, const struct mesh_trace_resource *res);
enum mesh_err mesh_trace_otlp_span(struct mesh_strbuf *out, const struct mesh_span_record *span,
                                   bool first);
enum mesh_err mesh_trace_otlp_end(struct mesh_strbuf *out);

#endif
