/* SPDX-License-Identifier: Apache-2.0 */
/* The stats history: each service's request totals and latency buckets sampled every second, so
 * that the admin listener's /stats/window answers rates over the last minutes at once. */
#ifndef MESH_PROXY_HISTORY_H
#define MESH_PROXY_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mesh/err.h"
#include "stats.h"

/*
 * Counters only grow (they start at zero with the process and are never reset), so the traffic
 * of a window is the difference of two readings of them. The history keeps readings, summed
 * over every shard by the `service` label: mesh_requests_total (all codes, and the failures:
 * 5xx and "000") and the mesh_request_duration_seconds buckets. A window's answer subtracts the
 * reading closest to "now - window" from the totals read at the moment of the question, and
 * says how far apart the two really are (span), so that a rate is exact over the span it names.
 *
 * Readings: one a second for the last minute, and one every ten seconds for the last ten
 * minutes; before the first, the process start, when every counter was zero, is a reading too.
 * A window longer than the uptime is the whole uptime.
 *
 * Memory: about 16 KiB per service (MESH_HISTORY_MAX_SERVICES at most; the services past that
 * are left out of every answer and counted as services_dropped), allocated when a service is
 * first seen. Never aborts: a service that cannot be allocated is dropped the same way.
 *
 * One thread (the admin worker) does everything here; the shards are read while their owners
 * keep writing, as the renderers read them.
 */

#define MESH_HISTORY_INTERVAL_MS 1000u
/* One more reading than the minute (the ten minutes) has seconds (tens of seconds): a window of
 * a whole minute (ten minutes) then always finds one within half an interval of its start. */
#define MESH_HISTORY_FINE          61u /* the last minute, one reading a second */
#define MESH_HISTORY_COARSE        61u /* the last ten minutes, one reading every ten seconds */
#define MESH_HISTORY_COARSE_EVERY  10u
#define MESH_HISTORY_MAX_SERVICES  256u
#define MESH_HISTORY_MAX_WINDOW_MS (600u * 1000u)

struct mesh_history;

/* A new history whose first reading is the process start at now_ms (CLOCK_MONOTONIC ms; every
 * time given to this module is on that clock). MESH_E_NOMEM: *out is NULL. */
enum mesh_err mesh_history_new(uint64_t now_ms, struct mesh_history **out);
/* NULL is a no-op. */
void mesh_history_free(struct mesh_history *h);

/* Takes a reading of shards[0..n) at now_ms: call it every MESH_HISTORY_INTERVAL_MS. */
void mesh_history_sample(struct mesh_history *h, struct mesh_stats_shard *const *shards, size_t n,
                         uint64_t now_ms);

/* How many readings were taken (not counting the start). */
uint64_t mesh_history_samples(const struct mesh_history *h);

/* The namespace of the Service a `service` label value names, for the answer (NULL: unknown). */
typedef const char *(*mesh_history_ns_fn)(void *ctx, const char *service);

/* Appends to out the traffic of the last window_ms (1 ms .. MESH_HISTORY_MAX_WINDOW_MS), as
 * the JSON object documented in docs/meshproxy.md (/stats/window): the span really covered, the
 * uptime, and per service its requests, failures and cumulative latency buckets in that span.
 * The totals are read from shards[0..n) now. ns_of (may be NULL) names namespaces. A label
 * "inbound|NAME" is a sidecar's inbound traffic (direction "inbound"), any other outbound.
 * MESH_E_INVALID: window_ms out of range (nothing appended). MESH_E_NOMEM: out is full. */
enum mesh_err mesh_history_render_window(struct mesh_history *h,
                                         struct mesh_stats_shard *const *shards, size_t n,
                                         uint64_t now_ms, uint64_t window_ms,
                                         mesh_history_ns_fn ns_of, void *ctx,
                                         struct mesh_strbuf *out);

#endif
