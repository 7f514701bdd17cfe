/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy statistics: per-worker shards of labelled counters, gauges and histograms. */
#ifndef MESH_PROXY_STATS_H
#define MESH_PROXY_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mesh/err.h"

/*
 * Threading model. Every thread that counts (each worker, and the main thread for outlier
 * sweeps) owns one shard and is the only thread that writes it: it alone creates series and
 * updates values. Any thread may render any set of shards at any time while the owners keep
 * writing. Owners update values with a relaxed load and a relaxed store (a plain add, no lock
 * prefix, since nobody else writes the word); renderers read them with relaxed loads, so a value
 * is never torn. A new series is published with a release store and found by renderers with an
 * acquire load, so a renderer sees it complete or not at all. Series are never removed while
 * the shard lives, which is what lets renderers walk them without a lock.
 *
 * Handles (the counter, gauge, histogram and request-set pointers below) stay valid until the
 * shard is freed. Lookups never leave the caller without a usable handle: when a series cannot
 * be created (a bad label value, the shard's series cap, out of memory) the handle points at a
 * per-shard sink that is never rendered, mesh_stats_series_dropped_total counts the failed
 * lookup, and the return value says why.
 */

/* Metric families. The comment gives the type and the label names, in the order lookups take
 * their values. */
enum mesh_stats_family {
    MESH_STATS_REQUESTS,               /* counter: service, route, endpoint, code */
    MESH_STATS_REQUEST_DURATION,       /* histogram: service, route */
    MESH_STATS_UPSTREAM_CX_OPEN,       /* gauge: service, endpoint */
    MESH_STATS_UPSTREAM_CX_PENDING,    /* gauge: service, endpoint */
    MESH_STATS_RETRIES,                /* counter: service */
    MESH_STATS_OVERFLOWS,              /* counter: service, resource */
    MESH_STATS_EJECTIONS,              /* counter: service, endpoint */
    MESH_STATS_FAULTS,                 /* counter: service, kind (delay|abort) */
    MESH_STATS_PARSE_ERRORS,           /* counter: kind */
    MESH_STATS_DOWNSTREAM_CX_ACCEPTED, /* counter, no labels */
    MESH_STATS_DOWNSTREAM_CX_ACTIVE,   /* gauge, no labels */
    MESH_STATS_DOWNSTREAM_RX_BYTES,    /* counter, no labels */
    MESH_STATS_DOWNSTREAM_TX_BYTES,    /* counter, no labels */
    MESH_STATS_SERIES_DROPPED,         /* counter, no labels; kept by the shard itself */
    MESH_STATS_CERT_EXPIRY,            /* gauge, no labels: unix seconds, 0 = no certificate */
    MESH_STATS_CERT_RENEWALS,          /* counter: result (success|failure) */
    MESH_STATS_TLS_HANDSHAKES,         /* counter: result (success|failure) */
    MESH_STATS_MTLS_HANDSHAKES,        /* counter: direction (inbound|outbound), result */
    MESH_STATS_INBOUND_CONNECTIONS,    /* counter: security (mtls|plaintext) */
    MESH_STATS_AUTHZ,                  /* counter: source, rule, result (allow|deny) */
    MESH_STATS_TRACE_SPANS_SAMPLED,    /* counter, no labels */
    MESH_STATS_TRACE_SPANS_EXPORTED,   /* counter, no labels */
    MESH_STATS_TRACE_SPANS_DROPPED,    /* counter: reason */
    MESH_STATS_TRACE_EXPORT_REQUESTS,  /* counter: result (success|failure) */
    MESH_STATS_TAP_EVENTS,             /* counter, no labels: events sent to tap sessions */
    MESH_STATS_TAP_DROPPED,            /* counter: reason (ring_full|slow_tapper|no_memory) */
    MESH_STATS_TAP_SESSIONS,           /* gauge, no labels: tap sessions open now */
    MESH_STATS_FAMILY_COUNT
};

enum mesh_stats_type {
    MESH_STATS_COUNTER,
    MESH_STATS_GAUGE,
    MESH_STATS_HISTOGRAM,
};

#define MESH_STATS_MAX_LABELS         4
#define MESH_STATS_DEFAULT_MAX_SERIES 100000u
#define MESH_STATS_LABEL_MAX          1024 /* longer label values are refused (MESH_E_INVALID) */

/* Request-duration buckets: upper bounds 0.5 ms .. 10 s (inclusive, as Prometheus `le`), then
 * +Inf. Values are counted per bucket (not cumulatively); rendering accumulates. */
#define MESH_STATS_BUCKETS 15

/* The handles. Their fields belong to this module: use the functions below. */
struct mesh_stats_counter {
    _Atomic uint64_t value;
};

struct mesh_stats_gauge {
    _Atomic uint64_t value; /* an int64_t in two's complement; sums wrap back to the truth */
};

struct mesh_stats_histogram {
    _Atomic uint64_t buckets[MESH_STATS_BUCKETS];
    _Atomic uint64_t sum_us; /* the count is the sum of the buckets, so _count == +Inf always */
};

struct mesh_stats_shard;

/* The requests counters of one (service, route, endpoint), by status code. The owner keeps the
 * handle (resolved once, e.g. when it adopts a snapshot) and counts through it: the first codes
 * seen get a slot each, so counting a request is a scan of a few 16-bit codes, with no string
 * hashing. Codes past the slots are still counted exactly, through a hashed lookup. */
#define MESH_STATS_CODE_SLOTS 8
struct mesh_stats_requests {
    uint16_t codes[MESH_STATS_CODE_SLOTS]; /* codes[0..used) hold 100..999 */
    unsigned used;
    struct mesh_stats_counter *counters[MESH_STATS_CODE_SLOTS];
    struct mesh_stats_shard *shard;
    const char *labels[3]; /* service, route, endpoint; owned by the shard */
};

/* ---- shards (any thread creates; the owner writes; free when nobody uses it any more) ---- */

/* Creates an empty shard holding at most max_series series and request sets (0 means
 * MESH_STATS_DEFAULT_MAX_SERIES). The unlabelled families exist from the start, so they always
 * render. MESH_E_NOMEM: nothing allocated. The caller owns *out. */
enum mesh_err mesh_stats_shard_new(size_t max_series, struct mesh_stats_shard **out);
/* Frees the shard and every handle into it. Only when no thread writes or renders it any more.
 * NULL is a no-op. */
void mesh_stats_shard_free(struct mesh_stats_shard *shard);
/* How many series and request sets the shard holds (owner thread, or after the owner stopped). */
size_t mesh_stats_shard_size(const struct mesh_stats_shard *shard);

/* ---- lookups (owner thread only; they hash strings, so resolve once and keep the handle) ---- */

/* labels: exactly the family's label values, in the order of the enum comment (NULL for the
 * unlabelled families). Values are copied; the caller keeps its strings.
 * MESH_OK: *out is the family's series for those values, created if new.
 * MESH_E_INVALID: the family is not of the handle's type, or a value is NULL, not UTF-8 or
 * longer than MESH_STATS_LABEL_MAX bytes. MESH_E_NOMEM: the shard is full or malloc failed.
 * On any error *out is the shard's sink (safe to update, never rendered) and
 * mesh_stats_series_dropped_total counts one. */
enum mesh_err mesh_stats_counter_get(struct mesh_stats_shard *shard, enum mesh_stats_family family,
                                     const char *const *labels, struct mesh_stats_counter **out);
enum mesh_err mesh_stats_gauge_get(struct mesh_stats_shard *shard, enum mesh_stats_family family,
                                   const char *const *labels, struct mesh_stats_gauge **out);
enum mesh_err mesh_stats_histogram_get(struct mesh_stats_shard *shard,
                                       enum mesh_stats_family family, const char *const *labels,
                                       struct mesh_stats_histogram **out);
/* The request set of (service, route, endpoint); the same handle every time for the same values,
 * so re-resolving after a reload costs no memory. Errors as above; on error *out is a sink set
 * (its counts go to the sink). */
enum mesh_err mesh_stats_requests_get(struct mesh_stats_shard *shard, const char *service,
                                      const char *route, const char *endpoint,
                                      struct mesh_stats_requests **out);

/* The slow path of mesh_stats_requests_count; use that. */
void mesh_stats_requests_count_slow(struct mesh_stats_requests *rs, unsigned code);

/* ---- updates (owner thread only; no lock, no atomic read-modify-write) ---- */

/* A single-writer add: the owner is the only writer, so load + store cannot lose an update, and
 * being atomic (relaxed) the value is never torn for a concurrent renderer. */
static inline void mesh_stats_add_(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void mesh_stats_counter_add(struct mesh_stats_counter *c, uint64_t n)
{
    mesh_stats_add_(&c->value, n);
}

static inline void mesh_stats_counter_inc(struct mesh_stats_counter *c)
{
    mesh_stats_add_(&c->value, 1);
}

static inline void mesh_stats_gauge_add(struct mesh_stats_gauge *g, int64_t delta)
{
    mesh_stats_add_(&g->value, (uint64_t)delta);
}

static inline void mesh_stats_gauge_set(struct mesh_stats_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, (uint64_t)v, memory_order_relaxed);
}

/* The bucket a duration in microseconds falls in (0 .. MESH_STATS_BUCKETS - 1). */
static inline unsigned mesh_stats_bucket_index(uint64_t us)
{
    static const uint32_t bounds_us[MESH_STATS_BUCKETS - 1] = {
        500,    1000,   2500,   5000,    10000,   25000,   50000,
        100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
    };
    unsigned i = 0;
    /* Linear, not binary: proxied latencies sit in the first few buckets, so this exits early. */
    while (i < MESH_STATS_BUCKETS - 1 && us > bounds_us[i])
        i++;
    return i;
}

static inline void mesh_stats_histogram_observe(struct mesh_stats_histogram *h, uint64_t us)
{
    mesh_stats_add_(&h->buckets[mesh_stats_bucket_index(us)], 1);
    mesh_stats_add_(&h->sum_us, us);
}

/* Counts one request answered with status code (100..999; anything else counts as "000", e.g.
 * a request that got no response). */
static inline void mesh_stats_requests_count(struct mesh_stats_requests *rs, unsigned code)
{
    for (unsigned i = 0; i < rs->used; i++) {
        if (rs->codes[i] == code) {
            mesh_stats_counter_inc(rs->counters[i]);
            return;
        }
    }
    mesh_stats_requests_count_slow(rs, code);
}

/* ---- reading (any thread) ---- */

static inline uint64_t mesh_stats_counter_value(const struct mesh_stats_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

int64_t mesh_stats_gauge_value(const struct mesh_stats_gauge *g);

/* The upper bound of bucket i in microseconds; UINT64_MAX for the +Inf bucket. */
uint64_t mesh_stats_bucket_bound_us(unsigned i);

/* Estimates quantile q (0..1) in seconds from per-bucket counts with mesh_quantile() (quantile.h,
 * Prometheus' histogram_quantile): linear inside the bucket the rank falls in (from 0 for the
 * first bucket); a rank in the +Inf bucket answers the highest finite bound (10 s). NAN when the
 * counts are all zero, q is NAN, or q is 0 and the first bucket is empty; -INFINITY for q < 0 and
 * +INFINITY for q > 1. */
double mesh_stats_quantile(const uint64_t counts[MESH_STATS_BUCKETS], double q);

/* What mesh_stats_visit hands its callback for one series: labels are the family's values
 * (borrowed for the call); value is a counter's value or a gauge's (two's complement), buckets
 * a histogram's per-bucket counts (not cumulative; NULL for counters and gauges). */
typedef void (*mesh_stats_visit_fn)(void *ctx, const char *const *labels, uint64_t value,
                                    const uint64_t *buckets);

/* Calls fn for every published series of family in shards[0..n) (a NULL entry is skipped), shard
 * by shard and unmerged: a label set counted by two shards comes twice. Values are read as the
 * renderers read them, while the owners keep writing. Allocates nothing, so it cannot fail: for
 * a periodic job (the stats history) that must not add failure paths. Any thread. */
void mesh_stats_visit(struct mesh_stats_shard *const *shards, size_t n,
                      enum mesh_stats_family family, mesh_stats_visit_fn fn, void *ctx);

/* The family's Prometheus name ("mesh_requests_total"), type and label names (NULL-terminated);
 * for docs, tests and the admin server. */
const char *mesh_stats_family_name(enum mesh_stats_family family);
enum mesh_stats_type mesh_stats_family_type(enum mesh_stats_family family);
const char *const *mesh_stats_family_labels(enum mesh_stats_family family);

/* Appends the merged contents of shards[0..n) to out in the Prometheus text exposition format
 * 0.0.4: # HELP and # TYPE once per family (every family, even without samples), series with
 * equal labels summed over the shards, sorted by label values so that the output is diffable.
 * Runs concurrently with the owners' writes. shards are borrowed; a NULL entry is skipped (an
 * unlabelled family renders 0 when there is no shard at all). MESH_E_NOMEM: out hit its
 * limit or an allocation failed; out then holds a truncated text the caller must not serve. */
enum mesh_err mesh_stats_render_prometheus(struct mesh_stats_shard *const *shards, size_t n,
                                           struct mesh_strbuf *out);

/* Same data as one JSON object for /stats: unlabelled families as numbers; labelled ones as
 * arrays of objects with their labels and "value", histograms with "count", "sum" (seconds),
 * "p50", "p95", "p99" (seconds, null when empty) and cumulative "buckets" keyed by `le`.
 * Keys are the family names without the "mesh_" prefix and "_total" suffix. Errors as above. */
enum mesh_err mesh_stats_render_json(struct mesh_stats_shard *const *shards, size_t n,
                                     struct mesh_strbuf *out);

#endif
