/* SPDX-License-Identifier: Apache-2.0 */
/* Statistics shards: insert-only series tables per worker, merged and rendered on demand. */
#include "stats.h"
#include "quantile.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request sets share the hash table with the series under a kind past the families. */
#define KIND_REQUESTS_SET MESH_STATS_FAMILY_COUNT

struct family_desc {
    const char *name;
    const char *help;
    enum mesh_stats_type type;
    unsigned nlabels;
    const char *labels[MESH_STATS_MAX_LABELS + 1];
};

static const struct family_desc families[MESH_STATS_FAMILY_COUNT] = {
    [MESH_STATS_REQUESTS] = {"mesh_requests_total",
                             "Requests answered, by destination service, route, upstream endpoint "
                             "and response status code.",
                             MESH_STATS_COUNTER,
                             4,
                             {"service", "route", "endpoint", "code", NULL}},
    [MESH_STATS_REQUEST_DURATION] = {"mesh_request_duration_seconds",
                                     "Time from the first byte of a request to the last byte of "
                                     "its response, by destination service and route.",
                                     MESH_STATS_HISTOGRAM,
                                     2,
                                     {"service", "route", NULL}},
    [MESH_STATS_UPSTREAM_CX_OPEN] = {"mesh_upstream_connections_open",
                                     "Established connections to upstream endpoints, in use or "
                                     "idle in a keep-alive pool.",
                                     MESH_STATS_GAUGE,
                                     2,
                                     {"service", "endpoint", NULL}},
    [MESH_STATS_UPSTREAM_CX_PENDING] = {"mesh_upstream_connections_pending",
                                        "Connections to upstream endpoints still being "
                                        "established.",
                                        MESH_STATS_GAUGE,
                                        2,
                                        {"service", "endpoint", NULL}},
    [MESH_STATS_RETRIES] = {"mesh_retries_total",
                            "Request attempts retried on another endpoint, by destination service.",
                            MESH_STATS_COUNTER,
                            1,
                            {"service", NULL}},
    [MESH_STATS_OVERFLOWS] = {"mesh_circuit_breaker_overflows_total",
                              "Requests refused by a circuit breaker limit, by destination service "
                              "and the limit that overflowed.",
                              MESH_STATS_COUNTER,
                              2,
                              {"service", "resource", NULL}},
    [MESH_STATS_EJECTIONS] = {"mesh_outlier_ejections_total",
                              "Endpoints ejected by outlier detection.",
                              MESH_STATS_COUNTER,
                              2,
                              {"service", "endpoint", NULL}},
    [MESH_STATS_FAULTS] = {"mesh_faults_injected_total",
                           "Faults injected into requests, by destination service and kind.",
                           MESH_STATS_COUNTER,
                           2,
                           {"service", "kind", NULL}},
    [MESH_STATS_PARSE_ERRORS] = {"mesh_parse_errors_total",
                                 "Requests or responses refused by the HTTP/1.1 parser, by error.",
                                 MESH_STATS_COUNTER,
                                 1,
                                 {"kind", NULL}},
    [MESH_STATS_DOWNSTREAM_CX_ACCEPTED] = {"mesh_downstream_connections_accepted_total",
                                           "Client connections accepted.",
                                           MESH_STATS_COUNTER,
                                           0,
                                           {NULL}},
    [MESH_STATS_DOWNSTREAM_CX_ACTIVE] = {"mesh_downstream_connections_active",
                                         "Client connections open now.",
                                         MESH_STATS_GAUGE,
                                         0,
                                         {NULL}},
    [MESH_STATS_DOWNSTREAM_RX_BYTES] = {"mesh_downstream_received_bytes_total",
                                        "Bytes read from clients.",
                                        MESH_STATS_COUNTER,
                                        0,
                                        {NULL}},
    [MESH_STATS_DOWNSTREAM_TX_BYTES] = {"mesh_downstream_sent_bytes_total",
                                        "Bytes written to clients.",
                                        MESH_STATS_COUNTER,
                                        0,
                                        {NULL}},
    [MESH_STATS_SERIES_DROPPED] = {"mesh_stats_series_dropped_total",
                                   "Series lookups that failed (bad label value, series cap or "
                                   "out of memory); their counts were not kept.",
                                   MESH_STATS_COUNTER,
                                   0,
                                   {NULL}},
    [MESH_STATS_CERT_EXPIRY] = {"mesh_certificate_expiry_timestamp_seconds",
                                "When the workload certificate expires, in unix seconds; 0 while "
                                "the proxy has none.",
                                MESH_STATS_GAUGE,
                                0,
                                {NULL}},
    [MESH_STATS_CERT_RENEWALS] = {"mesh_certificate_renewals_total",
                                  "Workload certificate requests to meshd (the first one "
                                  "included), by result: success or failure.",
                                  MESH_STATS_COUNTER,
                                  1,
                                  {"result", NULL}},
    [MESH_STATS_TLS_HANDSHAKES] = {"mesh_tls_handshakes_total",
                                   "TLS handshakes with clients of an HTTPS gateway, by result: "
                                   "success or failure.",
                                   MESH_STATS_COUNTER,
                                   1,
                                   {"result", NULL}},
    [MESH_STATS_MTLS_HANDSHAKES] = {"mesh_mtls_handshakes_total",
                                    "Mesh mTLS handshakes by direction (inbound: a peer calling "
                                    "this sidecar; outbound: this proxy calling a sidecar) and "
                                    "result: success, or the cause of the failure (expired, "
                                    "unknown_ca, wrong_identity, plaintext, no_certificate, "
                                    "other).",
                                    MESH_STATS_COUNTER,
                                    2,
                                    {"direction", "result", NULL}},
    [MESH_STATS_INBOUND_CONNECTIONS] = {"mesh_inbound_connections_total",
                                        "Connections a sidecar's inbound listener accepted, by "
                                        "security: mtls or plaintext.",
                                        MESH_STATS_COUNTER,
                                        1,
                                        {"security", NULL}},
    [MESH_STATS_AUTHZ] = {"mesh_authz_requests_total",
                          "Authorization decisions at a sidecar's inbound side, by source "
                          "identity (service.namespace, or unauthenticated), the rule that "
                          "decided (policy namespace/name#index, none, default-deny) and result.",
                          MESH_STATS_COUNTER,
                          3,
                          {"source", "rule", "result", NULL}},
    [MESH_STATS_TRACE_SPANS_SAMPLED] = {"mesh_trace_spans_sampled_total",
                                        "Spans recorded for sampled requests (one per request "
                                        "this proxy handled in a sampled trace).",
                                        MESH_STATS_COUNTER,
                                        0,
                                        {NULL}},
    [MESH_STATS_TRACE_SPANS_EXPORTED] = {"mesh_trace_spans_exported_total",
                                         "Spans the trace collector accepted.",
                                         MESH_STATS_COUNTER,
                                         0,
                                         {NULL}},
    [MESH_STATS_TRACE_SPANS_DROPPED] = {"mesh_trace_spans_dropped_total",
                                        "Spans dropped instead of exported, by reason: "
                                        "buffer_full, export_failed, no_collector or no_memory.",
                                        MESH_STATS_COUNTER,
                                        1,
                                        {"reason", NULL}},
    [MESH_STATS_TRACE_EXPORT_REQUESTS] = {"mesh_trace_export_requests_total",
                                          "Export requests (OTLP/HTTP POSTs) to the trace "
                                          "collector, by result: success or failure.",
                                          MESH_STATS_COUNTER,
                                          1,
                                          {"result", NULL}},
    [MESH_STATS_TAP_EVENTS] = {"mesh_tap_events_total",
                               "Requests sent to tap sessions (admin /tap), one per session that "
                               "matched it.",
                               MESH_STATS_COUNTER,
                               0,
                               {NULL}},
    [MESH_STATS_TAP_DROPPED] = {"mesh_tap_events_dropped_total",
                                "Tap events dropped so that requests never wait, by reason: "
                                "ring_full (a worker's tap ring was full), slow_tapper (a tap "
                                "session's client did not read fast enough) or no_memory.",
                                MESH_STATS_COUNTER,
                                1,
                                {"reason", NULL}},
    [MESH_STATS_TAP_SESSIONS] = {"mesh_tap_sessions_active",
                                 "Tap sessions (admin /tap) open now.",
                                 MESH_STATS_GAUGE,
                                 0,
                                 {NULL}},
};

/* Prometheus `le` values of the buckets, and the same bounds in microseconds. */
static const char *const bucket_le[MESH_STATS_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf",
};

static const uint64_t bucket_bound_us[MESH_STATS_BUCKETS] = {
    500,    1000,   2500,    5000,    10000,   25000,    50000,      100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, UINT64_MAX,
};

/* One series or request set, allocated in one block: this header, the value (8-byte aligned:
 * the header's size is a multiple of 8), then the label strings. Everything but the value is
 * written before publication and never again. */
struct node {
    struct node *next; /* the next older series of the same family */
    uint64_t hash;
    unsigned kind; /* a family, or KIND_REQUESTS_SET */
    unsigned nlabels;
    const char *labels[MESH_STATS_MAX_LABELS];
};

struct mesh_stats_shard {
    /* Newest first. Only the owner stores (release); renderers load (acquire). */
    _Atomic(struct node *) heads[MESH_STATS_FAMILY_COUNT];
    /* Owner-only open-addressing table (linear probing) of every node, for lookups and free. */
    struct node **table;
    size_t table_cap; /* a power of two, kept at least twice size */
    size_t size;
    size_t max;
    struct mesh_stats_counter *dropped;
    struct mesh_stats_counter sink_counter;
    struct mesh_stats_gauge sink_gauge;
    struct mesh_stats_histogram sink_histogram;
    struct mesh_stats_requests sink_requests;
};

static void *node_value(struct node *n)
{
    return (char *)n + sizeof(*n);
}

static const void *node_value_const(const struct node *n)
{
    return (const char *)n + sizeof(*n);
}

static size_t kind_value_size(unsigned kind)
{
    if (kind == KIND_REQUESTS_SET)
        return sizeof(struct mesh_stats_requests);
    switch (families[kind].type) {
    case MESH_STATS_COUNTER:
        return sizeof(struct mesh_stats_counter);
    case MESH_STATS_GAUGE:
        return sizeof(struct mesh_stats_gauge);
    case MESH_STATS_HISTOGRAM:
        return sizeof(struct mesh_stats_histogram);
    }
    return 0;
}

/* FNV-1a over the kind and the NUL-terminated values: the terminators keep ("ab","c") and
 * ("a","bc") apart. Keys come from the config, not from clients, so no seed is needed. Also
 * hands back each value's length, for the miss path. */
static uint64_t key_hash(unsigned kind, const char *const *labels, unsigned n, size_t *lens)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = (h ^ kind) * 0x100000001b3ull;
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)labels[i];
        do {
            h = (h ^ *p) * 0x100000001b3ull;
        } while (*p++);
        lens[i] = (size_t)((const char *)p - labels[i]) - 1;
    }
    return h;
}

static bool key_equal(const struct node *nd, uint64_t hash, unsigned kind,
                      const char *const *labels, unsigned n)
{
    if (nd->hash != hash || nd->kind != kind)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(nd->labels[i], labels[i]) != 0)
            return false;
    return true;
}

static struct node *table_find(const struct mesh_stats_shard *sh, uint64_t hash, unsigned kind,
                               const char *const *labels, unsigned n)
{
    size_t mask = sh->table_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct node *nd = sh->table[i];
        if (!nd)
            return NULL;
        if (key_equal(nd, hash, kind, labels, n))
            return nd;
    }
}

static void table_put(struct node **table, size_t cap, struct node *nd)
{
    size_t mask = cap - 1;
    size_t i = nd->hash & mask;
    while (table[i])
        i = (i + 1) & mask;
    table[i] = nd;
}

static enum mesh_err table_reserve(struct mesh_stats_shard *sh, size_t want)
{
    if (want * 2 <= sh->table_cap)
        return MESH_OK;
    size_t cap = sh->table_cap ? sh->table_cap : 64;
    while (want * 2 > cap)
        cap *= 2;
    struct node **t = calloc(cap, sizeof(*t));
    if (!t)
        return MESH_E_NOMEM;
    for (size_t i = 0; i < sh->table_cap; i++)
        if (sh->table[i])
            table_put(t, cap, sh->table[i]);
    free(sh->table);
    sh->table = t;
    sh->table_cap = cap;
    return MESH_OK;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF): both output formats need it. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t extra;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

/* Finds or creates the node of kind with labels. A new node is initialised but not published:
 * the caller publishes series (request sets are never rendered). */
static enum mesh_err node_get(struct mesh_stats_shard *sh, unsigned kind, const char *const *labels,
                              unsigned n, struct node **out, bool *created)
{
    size_t lens[MESH_STATS_MAX_LABELS];
    size_t strings = 0;
    *created = false;
    for (unsigned i = 0; i < n; i++)
        if (!labels || !labels[i])
            return MESH_E_INVALID;
    uint64_t hash = key_hash(kind, labels, n, lens);
    if (sh->table_cap) {
        struct node *found = table_find(sh, hash, kind, labels, n);
        if (found) {
            *out = found;
            return MESH_OK;
        }
    }
    /* Only new values are checked: what is in the table passed already. */
    for (unsigned i = 0; i < n; i++) {
        if (lens[i] > MESH_STATS_LABEL_MAX ||
            !utf8_valid((const unsigned char *)labels[i], lens[i]))
            return MESH_E_INVALID;
        strings += lens[i] + 1;
    }
    if (sh->size >= sh->max)
        return MESH_E_NOMEM;
    if (table_reserve(sh, sh->size + 1) != MESH_OK)
        return MESH_E_NOMEM;
    size_t vsize = kind_value_size(kind);
    struct node *nd = malloc(sizeof(*nd) + vsize + strings);
    if (!nd)
        return MESH_E_NOMEM;
    memset(nd, 0, sizeof(*nd) + vsize);
    nd->hash = hash;
    nd->kind = kind;
    nd->nlabels = n;
    char *p = (char *)node_value(nd) + vsize;
    for (unsigned i = 0; i < n; i++) {
        memcpy(p, labels[i], lens[i] + 1);
        nd->labels[i] = p;
        p += lens[i] + 1;
    }
    table_put(sh->table, sh->table_cap, nd);
    sh->size++;
    *out = nd;
    *created = true;
    return MESH_OK;
}

static void init_value(struct node *nd)
{
    switch (families[nd->kind].type) {
    case MESH_STATS_COUNTER: {
        struct mesh_stats_counter *c = node_value(nd);
        atomic_init(&c->value, 0);
        break;
    }
    case MESH_STATS_GAUGE: {
        struct mesh_stats_gauge *g = node_value(nd);
        atomic_init(&g->value, 0);
        break;
    }
    case MESH_STATS_HISTOGRAM: {
        struct mesh_stats_histogram *h = node_value(nd);
        for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++)
            atomic_init(&h->buckets[i], 0);
        atomic_init(&h->sum_us, 0);
        break;
    }
    }
}

/* The lookup behind the three typed getters: *out is the value of the series, or NULL on error
 * (the caller substitutes its sink and the drop has been counted). */
static enum mesh_err series_get(struct mesh_stats_shard *sh, enum mesh_stats_family family,
                                enum mesh_stats_type type, const char *const *labels, void **out)
{
    enum mesh_err err = MESH_E_INVALID;
    struct node *nd = NULL;
    bool created = false;
    *out = NULL;
    if ((unsigned)family >= MESH_STATS_FAMILY_COUNT || families[family].type != type)
        goto out;
    err = node_get(sh, family, labels, families[family].nlabels, &nd, &created);
    if (err != MESH_OK)
        goto out;
    if (created) {
        init_value(nd);
        nd->next = atomic_load_explicit(&sh->heads[family], memory_order_relaxed);
        /* Release: a renderer that sees the node sees its labels, zeroed value and next. */
        atomic_store_explicit(&sh->heads[family], nd, memory_order_release);
    }
    *out = node_value(nd);
out:
    if (err != MESH_OK && sh->dropped)
        mesh_stats_counter_inc(sh->dropped);
    return err;
}

enum mesh_err mesh_stats_counter_get(struct mesh_stats_shard *shard, enum mesh_stats_family family,
                                     const char *const *labels, struct mesh_stats_counter **out)
{
    void *v;
    enum mesh_err err = series_get(shard, family, MESH_STATS_COUNTER, labels, &v);
    *out = v ? v : &shard->sink_counter;
    return err;
}

enum mesh_err mesh_stats_gauge_get(struct mesh_stats_shard *shard, enum mesh_stats_family family,
                                   const char *const *labels, struct mesh_stats_gauge **out)
{
    void *v;
    enum mesh_err err = series_get(shard, family, MESH_STATS_GAUGE, labels, &v);
    *out = v ? v : &shard->sink_gauge;
    return err;
}

enum mesh_err mesh_stats_histogram_get(struct mesh_stats_shard *shard,
                                       enum mesh_stats_family family, const char *const *labels,
                                       struct mesh_stats_histogram **out)
{
    void *v;
    enum mesh_err err = series_get(shard, family, MESH_STATS_HISTOGRAM, labels, &v);
    *out = v ? v : &shard->sink_histogram;
    return err;
}

enum mesh_err mesh_stats_requests_get(struct mesh_stats_shard *shard, const char *service,
                                      const char *route, const char *endpoint,
                                      struct mesh_stats_requests **out)
{
    const char *labels[3] = {service, route, endpoint};
    struct node *nd = NULL;
    bool created = false;
    enum mesh_err err = node_get(shard, KIND_REQUESTS_SET, labels, 3, &nd, &created);
    if (err != MESH_OK) {
        mesh_stats_counter_inc(shard->dropped);
        *out = &shard->sink_requests;
        return err;
    }
    struct mesh_stats_requests *rs = node_value(nd);
    if (created) {
        rs->used = 0;
        rs->shard = shard;
        for (unsigned i = 0; i < 3; i++)
            rs->labels[i] = nd->labels[i];
    }
    *out = rs;
    return MESH_OK;
}

void mesh_stats_requests_count_slow(struct mesh_stats_requests *rs, unsigned code)
{
    struct mesh_stats_shard *sh = rs->shard;
    if (rs == &sh->sink_requests) {
        mesh_stats_counter_inc(&sh->sink_counter);
        return;
    }
    if (code < 100 || code > 999)
        code = 0;
    char code_str[4] = {(char)('0' + code / 100), (char)('0' + code / 10 % 10),
                        (char)('0' + code % 10), '\0'};
    const char *labels[4] = {rs->labels[0], rs->labels[1], rs->labels[2], code_str};
    struct mesh_stats_counter *c;
    enum mesh_err err = mesh_stats_counter_get(sh, MESH_STATS_REQUESTS, labels, &c);
    /* "000" stays off the slots: no fast-path code compares equal to it. */
    if (err == MESH_OK && code != 0 && rs->used < MESH_STATS_CODE_SLOTS) {
        rs->codes[rs->used] = (uint16_t)code;
        rs->counters[rs->used] = c;
        rs->used++;
    }
    mesh_stats_counter_inc(c);
}

enum mesh_err mesh_stats_shard_new(size_t max_series, struct mesh_stats_shard **out)
{
    enum mesh_err err = MESH_OK;
    struct mesh_stats_shard *sh = calloc(1, sizeof(*sh));
    *out = NULL;
    if (!sh)
        return MESH_E_NOMEM;
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++)
        atomic_init(&sh->heads[f], NULL);
    atomic_init(&sh->sink_counter.value, 0);
    atomic_init(&sh->sink_gauge.value, 0);
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++)
        atomic_init(&sh->sink_histogram.buckets[i], 0);
    atomic_init(&sh->sink_histogram.sum_us, 0);
    sh->sink_requests.shard = sh;
    /* The unlabelled families first, so that they always render, even at zero; they do not
     * count against the cap. */
    sh->max = SIZE_MAX;
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++) {
        if (families[f].nlabels)
            continue;
        void *v;
        err = series_get(sh, f, families[f].type, NULL, &v);
        if (err != MESH_OK)
            goto out;
        if (f == MESH_STATS_SERIES_DROPPED)
            sh->dropped = v;
    }
    sh->max = sh->size + (max_series ? max_series : MESH_STATS_DEFAULT_MAX_SERIES);
    *out = sh;
    sh = NULL;
out:
    mesh_stats_shard_free(sh);
    return err;
}

void mesh_stats_shard_free(struct mesh_stats_shard *shard)
{
    if (!shard)
        return;
    for (size_t i = 0; i < shard->table_cap; i++)
        free(shard->table[i]);
    free(shard->table);
    free(shard);
}

size_t mesh_stats_shard_size(const struct mesh_stats_shard *shard)
{
    return shard->size;
}

int64_t mesh_stats_gauge_value(const struct mesh_stats_gauge *g)
{
    uint64_t v = atomic_load_explicit(&g->value, memory_order_relaxed);
    /* Two's complement back to signed without the implementation-defined conversion. */
    return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

uint64_t mesh_stats_bucket_bound_us(unsigned i)
{
    return i < MESH_STATS_BUCKETS ? bucket_bound_us[i] : UINT64_MAX;
}

double mesh_stats_quantile(const uint64_t counts[MESH_STATS_BUCKETS], double q)
{
    /* One estimate everywhere: the proxy's /stats, the dashboard and meshctl stat all answer
     * what PromQL's histogram_quantile() would for the same buckets. */
    struct mesh_quantile_bucket b[MESH_STATS_BUCKETS];
    uint64_t cumulative = 0;
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++) {
        cumulative += counts[i];
        b[i].upper_bound =
            i == MESH_STATS_BUCKETS - 1 ? INFINITY : (double)bucket_bound_us[i] / 1e6;
        b[i].count = (double)cumulative;
    }
    return mesh_quantile(q, b, MESH_STATS_BUCKETS);
}

const char *mesh_stats_family_name(enum mesh_stats_family family)
{
    return (unsigned)family < MESH_STATS_FAMILY_COUNT ? families[family].name : "";
}

enum mesh_stats_type mesh_stats_family_type(enum mesh_stats_family family)
{
    return (unsigned)family < MESH_STATS_FAMILY_COUNT ? families[family].type : MESH_STATS_COUNTER;
}

const char *const *mesh_stats_family_labels(enum mesh_stats_family family)
{
    static const char *const none[] = {NULL};
    return (unsigned)family < MESH_STATS_FAMILY_COUNT ? families[family].labels : none;
}

void mesh_stats_visit(struct mesh_stats_shard *const *shards, size_t n,
                      enum mesh_stats_family family, mesh_stats_visit_fn fn, void *ctx)
{
    if ((unsigned)family >= MESH_STATS_FAMILY_COUNT)
        return;
    bool histogram = families[family].type == MESH_STATS_HISTOGRAM;
    for (size_t s = 0; s < n; s++) {
        if (!shards[s])
            continue;
        for (const struct node *nd =
                 atomic_load_explicit(&shards[s]->heads[family], memory_order_acquire);
             nd; nd = nd->next) {
            const void *v = node_value_const(nd);
            if (histogram) {
                const struct mesh_stats_histogram *h = v;
                uint64_t buckets[MESH_STATS_BUCKETS];
                for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++)
                    buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
                fn(ctx, nd->labels, 0, buckets);
            } else if (families[family].type == MESH_STATS_GAUGE) {
                const struct mesh_stats_gauge *g = v;
                fn(ctx, nd->labels, atomic_load_explicit(&g->value, memory_order_relaxed), NULL);
            } else {
                const struct mesh_stats_counter *c = v;
                fn(ctx, nd->labels, atomic_load_explicit(&c->value, memory_order_relaxed), NULL);
            }
        }
    }
}

/* ---- rendering ---- */

/* One label set's values summed over the shards. */
struct merged {
    const char *const *labels;
    uint64_t value; /* counters and gauges (gauges as two's complement) */
    uint64_t buckets[MESH_STATS_BUCKETS];
    uint64_t sum_us;
    uint64_t count;
};

typedef enum mesh_err (*row_fn)(struct mesh_strbuf *out, const struct family_desc *fd,
                                const struct merged *m, bool first);

static int cmp_nodes(const void *a, const void *b)
{
    const struct node *x = *(const struct node *const *)a;
    const struct node *y = *(const struct node *const *)b;
    for (unsigned i = 0; i < x->nlabels; i++) {
        int c = strcmp(x->labels[i], y->labels[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Gathers the family's published series of every shard, sorted by label values (every node of
 * a family has the same label count). Each list is walked from one acquire load, so it is a
 * consistent prefix of what the owner has published. */
static enum mesh_err collect(struct mesh_stats_shard *const *shards, size_t n, unsigned family,
                             struct node ***items, size_t *count)
{
    size_t len = 0, cap = 0;
    struct node **v = NULL;
    for (size_t s = 0; s < n; s++) {
        if (!shards[s])
            continue;
        for (struct node *nd =
                 atomic_load_explicit(&shards[s]->heads[family], memory_order_acquire);
             nd; nd = nd->next) {
            if (len == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct node **nv = realloc(v, ncap * sizeof(*nv));
                if (!nv) {
                    free(v);
                    return MESH_E_NOMEM;
                }
                v = nv;
                cap = ncap;
            }
            v[len++] = nd;
        }
    }
    if (len > 1)
        qsort(v, len, sizeof(*v), cmp_nodes);
    *items = v;
    *count = len;
    return MESH_OK;
}

static bool same_labels(const struct node *x, const struct node *y)
{
    for (unsigned i = 0; i < x->nlabels; i++)
        if (strcmp(x->labels[i], y->labels[i]) != 0)
            return false;
    return true;
}

static void merge_into(struct merged *m, const struct node *nd)
{
    const void *v = node_value_const(nd);
    switch (families[nd->kind].type) {
    case MESH_STATS_COUNTER:
        m->value += atomic_load_explicit(&((const struct mesh_stats_counter *)v)->value,
                                         memory_order_relaxed);
        break;
    case MESH_STATS_GAUGE:
        m->value += atomic_load_explicit(&((const struct mesh_stats_gauge *)v)->value,
                                         memory_order_relaxed);
        break;
    case MESH_STATS_HISTOGRAM: {
        const struct mesh_stats_histogram *h = v;
        for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++) {
            uint64_t c = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
            m->buckets[i] += c;
            m->count += c;
        }
        m->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
        break;
    }
    }
}

static enum mesh_err render_family(struct mesh_stats_shard *const *shards, size_t n,
                                   unsigned family, struct mesh_strbuf *out, row_fn row)
{
    const struct family_desc *fd = &families[family];
    struct node **items = NULL;
    size_t count = 0;
    enum mesh_err err = collect(shards, n, family, &items, &count);
    if (err != MESH_OK)
        goto out;
    for (size_t i = 0; i < count;) {
        struct merged m;
        memset(&m, 0, sizeof(m));
        m.labels = items[i]->labels;
        size_t j = i;
        while (j < count && same_labels(items[i], items[j]))
            merge_into(&m, items[j++]);
        err = row(out, fd, &m, i == 0);
        if (err != MESH_OK)
            goto out;
        i = j;
    }
    if (count == 0 && fd->nlabels == 0) {
        /* No shard at all: an unlabelled family still shows its zero. */
        struct merged zero;
        memset(&zero, 0, sizeof(zero));
        err = row(out, fd, &zero, true);
    }
out:
    free(items);
    return err;
}

static enum mesh_err put_u64(struct mesh_strbuf *out, uint64_t v)
{
    return mesh_strbuf_printf(out, "%" PRIu64, v);
}

static int64_t as_signed(uint64_t v)
{
    return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

/* Seconds with microsecond precision, printed exactly from the integer. */
static enum mesh_err put_seconds(struct mesh_strbuf *out, uint64_t us)
{
    return mesh_strbuf_printf(out, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

/* Prometheus label value escaping: backslash, double quote and line feed. */
static enum mesh_err put_prom_escaped(struct mesh_strbuf *out, const char *s)
{
    enum mesh_err err = MESH_OK;
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        if ((err = mesh_strbuf_append(out, run, (size_t)(s - run))) != MESH_OK ||
            (err = mesh_strbuf_puts(out, esc)) != MESH_OK)
            return err;
        run = s + 1;
    }
    return mesh_strbuf_append(out, run, (size_t)(s - run));
}

/* name{a="x",b="y"[,le="..."]} — the braces only when there is a label. */
static enum mesh_err put_prom_series(struct mesh_strbuf *out, const char *name, const char *suffix,
                                     const struct family_desc *fd, const struct merged *m,
                                     const char *le)
{
    enum mesh_err err;
    if ((err = mesh_strbuf_puts(out, name)) != MESH_OK ||
        (err = mesh_strbuf_puts(out, suffix)) != MESH_OK)
        return err;
    if (fd->nlabels == 0 && !le)
        return mesh_strbuf_puts(out, " ");
    if ((err = mesh_strbuf_puts(out, "{")) != MESH_OK)
        return err;
    for (unsigned i = 0; i < fd->nlabels; i++) {
        if ((err = mesh_strbuf_printf(out, "%s%s=\"", i ? "," : "", fd->labels[i])) != MESH_OK ||
            (err = put_prom_escaped(out, m->labels[i])) != MESH_OK ||
            (err = mesh_strbuf_puts(out, "\"")) != MESH_OK)
            return err;
    }
    if (le && (err = mesh_strbuf_printf(out, "%sle=\"%s\"", fd->nlabels ? "," : "", le)) != MESH_OK)
        return err;
    return mesh_strbuf_puts(out, "} ");
}

static enum mesh_err prom_row(struct mesh_strbuf *out, const struct family_desc *fd,
                              const struct merged *m, bool first)
{
    enum mesh_err err;
    (void)first;
    switch (fd->type) {
    case MESH_STATS_COUNTER:
        if ((err = put_prom_series(out, fd->name, "", fd, m, NULL)) != MESH_OK ||
            (err = put_u64(out, m->value)) != MESH_OK)
            return err;
        break;
    case MESH_STATS_GAUGE:
        if ((err = put_prom_series(out, fd->name, "", fd, m, NULL)) != MESH_OK ||
            (err = mesh_strbuf_printf(out, "%" PRId64, as_signed(m->value))) != MESH_OK)
            return err;
        break;
    case MESH_STATS_HISTOGRAM: {
        uint64_t cum = 0;
        for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++) {
            cum += m->buckets[i];
            if ((err = put_prom_series(out, fd->name, "_bucket", fd, m, bucket_le[i])) != MESH_OK ||
                (err = put_u64(out, cum)) != MESH_OK ||
                (err = mesh_strbuf_puts(out, "\n")) != MESH_OK)
                return err;
        }
        if ((err = put_prom_series(out, fd->name, "_sum", fd, m, NULL)) != MESH_OK ||
            (err = put_seconds(out, m->sum_us)) != MESH_OK ||
            (err = mesh_strbuf_puts(out, "\n")) != MESH_OK ||
            (err = put_prom_series(out, fd->name, "_count", fd, m, NULL)) != MESH_OK ||
            (err = put_u64(out, m->count)) != MESH_OK)
            return err;
        break;
    }
    }
    return mesh_strbuf_puts(out, "\n");
}

static const char *type_name(enum mesh_stats_type t)
{
    return t == MESH_STATS_COUNTER ? "counter" : t == MESH_STATS_GAUGE ? "gauge" : "histogram";
}

enum mesh_err mesh_stats_render_prometheus(struct mesh_stats_shard *const *shards, size_t n,
                                           struct mesh_strbuf *out)
{
    enum mesh_err err = MESH_OK;
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++) {
        const struct family_desc *fd = &families[f];
        err = mesh_strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fd->name, fd->help, fd->name,
                                 type_name(fd->type));
        if (err != MESH_OK)
            return err;
        err = render_family(shards, n, f, out, prom_row);
        if (err != MESH_OK)
            return err;
    }
    return err;
}

/* A JSON string: quote, backslash and control characters escaped; the rest is UTF-8 already
 * (lookups refuse anything else). */
static enum mesh_err put_json_string(struct mesh_strbuf *out, const char *s)
{
    enum mesh_err err = mesh_strbuf_puts(out, "\"");
    const char *run = s;
    for (; err == MESH_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if ((err = mesh_strbuf_append(out, run, (size_t)(s - run))) != MESH_OK)
            break;
        if (c == '"' || c == '\\')
            err = mesh_strbuf_printf(out, "\\%c", c);
        else if (c == '\n')
            err = mesh_strbuf_puts(out, "\\n");
        else
            err = mesh_strbuf_printf(out, "\\u%04x", c);
        run = s + 1;
    }
    if (err == MESH_OK)
        err = mesh_strbuf_append(out, run, (size_t)(s - run));
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "\"");
    return err;
}

static enum mesh_err put_json_quantile(struct mesh_strbuf *out, const char *key,
                                       const uint64_t buckets[MESH_STATS_BUCKETS], double q)
{
    double v = mesh_stats_quantile(buckets, q);
    if (isnan(v))
        return mesh_strbuf_printf(out, ",\"%s\":null", key);
    return mesh_strbuf_printf(out, ",\"%s\":%.6f", key, v);
}

static enum mesh_err json_row(struct mesh_strbuf *out, const struct family_desc *fd,
                              const struct merged *m, bool first)
{
    enum mesh_err err;
    if (fd->nlabels == 0) /* a scalar: the value alone */
        return fd->type == MESH_STATS_GAUGE
                   ? mesh_strbuf_printf(out, "%" PRId64, as_signed(m->value))
                   : put_u64(out, m->value);
    if ((err = mesh_strbuf_puts(out, first ? "{" : ",{")) != MESH_OK)
        return err;
    for (unsigned i = 0; i < fd->nlabels; i++) {
        if ((err = mesh_strbuf_printf(out, "%s\"%s\":", i ? "," : "", fd->labels[i])) != MESH_OK ||
            (err = put_json_string(out, m->labels[i])) != MESH_OK)
            return err;
    }
    switch (fd->type) {
    case MESH_STATS_COUNTER:
        err = mesh_strbuf_printf(out, ",\"value\":%" PRIu64, m->value);
        break;
    case MESH_STATS_GAUGE:
        err = mesh_strbuf_printf(out, ",\"value\":%" PRId64, as_signed(m->value));
        break;
    case MESH_STATS_HISTOGRAM:
        if ((err = mesh_strbuf_printf(out, ",\"count\":%" PRIu64 ",\"sum\":", m->count)) !=
                MESH_OK ||
            (err = put_seconds(out, m->sum_us)) != MESH_OK ||
            (err = put_json_quantile(out, "p50", m->buckets, 0.50)) != MESH_OK ||
            (err = put_json_quantile(out, "p95", m->buckets, 0.95)) != MESH_OK ||
            (err = put_json_quantile(out, "p99", m->buckets, 0.99)) != MESH_OK ||
            (err = mesh_strbuf_puts(out, ",\"buckets\":{")) != MESH_OK)
            return err;
        uint64_t cum = 0;
        for (unsigned i = 0; i < MESH_STATS_BUCKETS && err == MESH_OK; i++) {
            cum += m->buckets[i];
            err = mesh_strbuf_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", bucket_le[i], cum);
        }
        if (err == MESH_OK)
            err = mesh_strbuf_puts(out, "}");
        break;
    }
    if (err != MESH_OK)
        return err;
    return mesh_strbuf_puts(out, "}");
}

/* The family's JSON key: the name without "mesh_" and without a trailing "_total". */
static enum mesh_err put_json_key(struct mesh_strbuf *out, const char *name, bool first)
{
    const char *k = name + strlen("mesh_");
    size_t len = strlen(k);
    if (len > 6 && strcmp(k + len - 6, "_total") == 0)
        len -= 6;
    return mesh_strbuf_printf(out, "%s\"%.*s\":", first ? "" : ",", (int)len, k);
}

enum mesh_err mesh_stats_render_json(struct mesh_stats_shard *const *shards, size_t n,
                                     struct mesh_strbuf *out)
{
    enum mesh_err err = mesh_strbuf_puts(out, "{");
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT && err == MESH_OK; f++) {
        const struct family_desc *fd = &families[f];
        if ((err = put_json_key(out, fd->name, f == 0)) != MESH_OK)
            break;
        if (fd->nlabels && (err = mesh_strbuf_puts(out, "[")) != MESH_OK)
            break;
        if ((err = render_family(shards, n, f, out, json_row)) != MESH_OK)
            break;
        if (fd->nlabels)
            err = mesh_strbuf_puts(out, "]");
    }
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "}\n");
    return err;
}
