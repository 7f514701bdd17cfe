/* SPDX-License-Identifier: Apache-2.0 */
/* Per-service traffic figures from meshproxy's admin /stats (docs/metrics.md): one answer read
 * into a reading (cumulative counters, reduced to what the figures need), and the figures over
 * two readings of the same proxy: requests, rate, success rate, latency percentiles. meshd's
 * dashboard uses it (ui.c); `meshctl stat` can use it as it is: read each proxy twice, a window
 * apart, and add the deltas up.
 *
 * Pure: no I/O, no clock, no global state; any thread. */
#ifndef MESH_CONTROL_UI_STATS_H
#define MESH_CONTROL_UI_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"
#include "proxy/stats.h" /* MESH_STATS_BUCKETS and the buckets' bounds */

/* The traffic of one (service, route) pair of one proxy since it started: mesh_requests_total
 * summed over endpoints and codes, and mesh_request_duration_seconds. */
struct mesh_ui_traffic {
    char *service;     /* the destination Service ("payment-v1"); "inbound|NAME" for what a
                          sidecar's inbound listener passed to its app; "" when unrouted */
    char *route;       /* the route label: its name, "route-N" when unnamed, "default" for a
                          Service named directly, "inbound"; "" when none matched */
    uint64_t requests; /* answered (every code, 000 included) */
    uint64_t failures; /* of those, answered 5xx, or never answered (code 000) */
    uint64_t buckets[MESH_STATS_BUCKETS]; /* durations per bucket (not cumulative) */
    double sum_s;                         /* total duration, seconds */
};

/* mesh_authz_requests_total of one (source, rule) at a sidecar's inbound side. */
struct mesh_ui_authz {
    char *source; /* "orders.default", a SPIFFE ID, or "unauthenticated" */
    char *rule;   /* "NAMESPACE/POLICY#INDEX" or "default-deny" */
    uint64_t allowed, denied;
};

/* One proxy's /stats answer. Arrays sorted by (service, route) and (source, rule). */
struct mesh_ui_reading {
    uint64_t at_ms; /* when it was read, on the caller's (monotonic) clock */
    struct mesh_ui_traffic *traffic;
    size_t n_traffic;
    struct mesh_ui_authz *authz;
    size_t n_authz;
};

/* Reads a /stats answer (json[0..len)) taken at at_ms into *out (cleared first; the caller
 * clears it after use). MESH_E_INVALID with *errmsg (caller frees) naming what is wrong when it
 * is not a meshproxy /stats document (not JSON, "requests" missing, a series without its labels
 * or value, buckets other than the proxy's); MESH_E_NOMEM. */
enum mesh_err mesh_ui_reading_parse(const char *json, size_t len, uint64_t at_ms,
                                    struct mesh_ui_reading *out, char **errmsg);
void mesh_ui_reading_clear(struct mesh_ui_reading *r);

/* The (service, route) entry of r, or NULL. Borrowed from r. */
const struct mesh_ui_traffic *mesh_ui_reading_find(const struct mesh_ui_reading *r,
                                                   const char *service, const char *route);
const struct mesh_ui_authz *mesh_ui_reading_find_authz(const struct mesh_ui_reading *r,
                                                       const char *source, const char *rule);

/* Whether later cannot follow earlier from the same process: some counter went down, or a
 * series disappeared (counters never go backwards and series are never removed while a proxy
 * runs), so the proxy restarted in between and deltas across the two mean nothing. */
bool mesh_ui_reading_restarted(const struct mesh_ui_reading *later,
                               const struct mesh_ui_reading *earlier);

/* Figures summed over any number of (traffic, proxy) deltas. Start from {0}. */
struct mesh_ui_figures {
    uint64_t requests, failures;
    uint64_t buckets[MESH_STATS_BUCKETS];
    double sum_s;
    double rps;    /* the sum of each delta's requests / its span */
    bool has_rate; /* some delta had a span (two readings): rps means something */
};

/* Adds now - base to f. base NULL counts now from zero: the series is newer than the earlier
 * reading (its counters started at zero when it appeared), or there is no earlier reading (a
 * count since the proxy started). span_ms: how long after the earlier reading now was taken;
 * 0 when there is none: no rate then. */
void mesh_ui_figures_add(struct mesh_ui_figures *f, const struct mesh_ui_traffic *now,
                         const struct mesh_ui_traffic *base, uint64_t span_ms);
/* Share of requests not failed (0..1); NAN without requests. */
double mesh_ui_figures_success_rate(const struct mesh_ui_figures *f);
/* Latency quantile q (0..1) in seconds, estimated from the buckets as the proxy estimates its
 * own p50/p95/p99 (linear inside the bucket; 10 s for the +Inf bucket); NAN without requests. */
double mesh_ui_figures_quantile(const struct mesh_ui_figures *f, double q);

#endif
