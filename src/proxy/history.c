/* SPDX-License-Identifier: Apache-2.0 */
/* The stats history: per-service readings of the request counters and latency buckets, and the
 * traffic of a window as their difference (admin /stats/window, meshctl stat). */
#include "history.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A reading of one service: requests, failures, then the duration buckets (not cumulative). */
#define V_REQUESTS 0
#define V_FAILURES 1
#define V_BUCKETS  2
#define N_VALUES   (V_BUCKETS + MESH_STATS_BUCKETS)

#define INDEX_SLOTS 512u /* twice MESH_HISTORY_MAX_SERVICES: probes stay short */

struct service {
    char *name;
    uint64_t cur[N_VALUES]; /* scratch: the totals being read now */
    uint64_t fine[MESH_HISTORY_FINE][N_VALUES];
    uint64_t coarse[MESH_HISTORY_COARSE][N_VALUES];
};

struct mesh_history {
    uint64_t start_ms;
    uint64_t fine_ms[MESH_HISTORY_FINE];
    uint64_t coarse_ms[MESH_HISTORY_COARSE];
    uint64_t samples; /* readings taken; the next one goes to fine[samples % FINE] */
    struct service *services[MESH_HISTORY_MAX_SERVICES];
    size_t n_services;
    uint16_t index[INDEX_SLOTS]; /* open addressing over services: position + 1, 0 = empty */
    uint64_t dropped;            /* lookups of services that could not be kept */
};

enum mesh_err mesh_history_new(uint64_t now_ms, struct mesh_history **out)
{
    struct mesh_history *h = calloc(1, sizeof(*h));
    *out = h;
    if (!h)
        return MESH_E_NOMEM;
    h->start_ms = now_ms;
    return MESH_OK;
}

void mesh_history_free(struct mesh_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_services; i++) {
        free(h->services[i]->name);
        free(h->services[i]);
    }
    free(h);
}

uint64_t mesh_history_samples(const struct mesh_history *h)
{
    return h->samples;
}

static uint32_t name_hash(const char *s)
{
    uint32_t x = 2166136261u;
    for (; *s; s++)
        x = (x ^ (unsigned char)*s) * 16777619u;
    return x;
}

/* The service named name, added when new; NULL (counted) when it cannot be kept. A service is
 * allocated zeroed: its readings from before it was first seen are zero, which they were, since
 * its counters were created after them. */
static struct service *service_get(struct mesh_history *h, const char *name)
{
    uint32_t slot = name_hash(name) & (INDEX_SLOTS - 1);
    for (;; slot = (slot + 1) & (INDEX_SLOTS - 1)) {
        uint16_t at = h->index[slot];
        if (!at)
            break;
        if (strcmp(h->services[at - 1]->name, name) == 0)
            return h->services[at - 1];
    }
    struct service *sv = NULL;
    if (h->n_services < MESH_HISTORY_MAX_SERVICES && (sv = calloc(1, sizeof(*sv))) &&
        (sv->name = strdup(name))) {
        h->services[h->n_services++] = sv;
        h->index[slot] = (uint16_t)h->n_services;
        return sv;
    }
    free(sv);
    h->dropped++;
    return NULL;
}

/* A status code label that counts as a failure: 5xx, and "000" (no response was sent). */
static bool is_failure(const char *code)
{
    return code[0] == '5' || strcmp(code, "000") == 0;
}

static void add_requests(void *ctx, const char *const *labels, uint64_t value,
                         const uint64_t *buckets)
{
    (void)buckets;
    struct service *sv = service_get(ctx, labels[0]);
    if (!sv)
        return;
    sv->cur[V_REQUESTS] += value;
    if (is_failure(labels[3]))
        sv->cur[V_FAILURES] += value;
}

static void add_durations(void *ctx, const char *const *labels, uint64_t value,
                          const uint64_t *buckets)
{
    (void)value;
    struct service *sv = service_get(ctx, labels[0]);
    if (!sv)
        return;
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++)
        sv->cur[V_BUCKETS + i] += buckets[i];
}

/* Every service's totals now, into its cur. */
static void read_totals(struct mesh_history *h, struct mesh_stats_shard *const *shards, size_t n)
{
    for (size_t i = 0; i < h->n_services; i++)
        memset(h->services[i]->cur, 0, sizeof(h->services[i]->cur));
    mesh_stats_visit(shards, n, MESH_STATS_REQUESTS, add_requests, h);
    mesh_stats_visit(shards, n, MESH_STATS_REQUEST_DURATION, add_durations, h);
}

void mesh_history_sample(struct mesh_history *h, struct mesh_stats_shard *const *shards, size_t n,
                         uint64_t now_ms)
{
    read_totals(h, shards, n);
    size_t fine = h->samples % MESH_HISTORY_FINE;
    bool coarse = h->samples % MESH_HISTORY_COARSE_EVERY == 0;
    size_t cslot = h->samples / MESH_HISTORY_COARSE_EVERY % MESH_HISTORY_COARSE;
    h->fine_ms[fine] = now_ms;
    if (coarse)
        h->coarse_ms[cslot] = now_ms;
    for (size_t i = 0; i < h->n_services; i++) {
        struct service *sv = h->services[i];
        memcpy(sv->fine[fine], sv->cur, sizeof(sv->cur));
        if (coarse)
            memcpy(sv->coarse[cslot], sv->cur, sizeof(sv->cur));
    }
    h->samples++;
}

/* Which reading a window starts from: the one closest to now - window, among those older than
 * now; the start when the window reaches back to it. */
struct baseline {
    uint64_t ms;
    int ring; /* 0: the start (all zero), 1: fine, 2: coarse */
    size_t slot;
};

static void consider(struct baseline *best, uint64_t *best_dist, uint64_t target, uint64_t now,
                     uint64_t ms, int ring, size_t slot)
{
    if (ms >= now)
        return;
    uint64_t dist = ms > target ? ms - target : target - ms;
    if (dist < *best_dist) {
        *best_dist = dist;
        *best = (struct baseline){ms, ring, slot};
    }
}

static struct baseline find_baseline(const struct mesh_history *h, uint64_t now, uint64_t window)
{
    struct baseline best = {h->start_ms, 0, 0};
    if (now <= h->start_ms || now - h->start_ms <= window)
        return best;
    uint64_t target = now - window;
    uint64_t best_dist = target - h->start_ms;
    size_t n_fine = h->samples < MESH_HISTORY_FINE ? (size_t)h->samples : MESH_HISTORY_FINE;
    uint64_t n_coarse_taken =
        (h->samples + MESH_HISTORY_COARSE_EVERY - 1) / MESH_HISTORY_COARSE_EVERY;
    size_t n_coarse =
        n_coarse_taken < MESH_HISTORY_COARSE ? (size_t)n_coarse_taken : MESH_HISTORY_COARSE;
    for (size_t i = 0; i < n_fine; i++)
        consider(&best, &best_dist, target, now, h->fine_ms[i], 1, i);
    for (size_t i = 0; i < n_coarse; i++)
        consider(&best, &best_dist, target, now, h->coarse_ms[i], 2, i);
    return best;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const struct service *const *)a)->name,
                  (*(const struct service *const *)b)->name);
}

/* A JSON string; labels are valid UTF-8 already (the stats lookups refuse anything else). */
static enum mesh_err put_json_string(struct mesh_strbuf *out, const char *s)
{
    enum mesh_err err = mesh_strbuf_puts(out, "\"");
    for (; err == MESH_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            err = mesh_strbuf_printf(out, "\\%c", c);
        else if (c < 0x20)
            err = mesh_strbuf_printf(out, "\\u%04x", c);
        else
            err = mesh_strbuf_append(out, s, 1);
    }
    return err == MESH_OK ? mesh_strbuf_puts(out, "\"") : err;
}

static enum mesh_err put_seconds(struct mesh_strbuf *out, const char *key, uint64_t ms)
{
    return mesh_strbuf_printf(out, "\"%s\":%" PRIu64 ".%03" PRIu64, key, ms / 1000, ms % 1000);
}

static enum mesh_err put_service(struct mesh_strbuf *out, const struct service *sv,
                                 const uint64_t *base, const char *ns, bool first)
{
    uint64_t d[N_VALUES];
    for (unsigned i = 0; i < N_VALUES; i++)
        d[i] = sv->cur[i] >= base[i] ? sv->cur[i] - base[i] : 0; /* counters never go down */
    bool inbound = strncmp(sv->name, "inbound|", 8) == 0;
    enum mesh_err err = mesh_strbuf_puts(out, first ? "{\"service\":" : ",{\"service\":");
    if (err == MESH_OK)
        err = put_json_string(out, sv->name);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, ",\"namespace\":");
    if (err == MESH_OK)
        err = ns ? put_json_string(out, ns) : mesh_strbuf_puts(out, "null");
    if (err == MESH_OK)
        err = mesh_strbuf_printf(out,
                                 ",\"direction\":\"%s\",\"requests\":%" PRIu64
                                 ",\"failures\":%" PRIu64 ",\"buckets\":{",
                                 inbound ? "inbound" : "outbound", d[V_REQUESTS], d[V_FAILURES]);
    uint64_t cum = 0;
    for (unsigned i = 0; err == MESH_OK && i < MESH_STATS_BUCKETS; i++) {
        uint64_t bound = mesh_stats_bucket_bound_us(i);
        cum += d[V_BUCKETS + i];
        if (bound == UINT64_MAX)
            err = mesh_strbuf_printf(out, "%s\"+Inf\":%" PRIu64, i ? "," : "", cum);
        else
            err = mesh_strbuf_printf(out, "%s\"%g\":%" PRIu64, i ? "," : "", (double)bound / 1e6,
                                     cum);
    }
    return err == MESH_OK ? mesh_strbuf_puts(out, "}}") : err;
}

enum mesh_err mesh_history_render_window(struct mesh_history *h,
                                         struct mesh_stats_shard *const *shards, size_t n,
                                         uint64_t now_ms, uint64_t window_ms,
                                         mesh_history_ns_fn ns_of, void *ctx,
                                         struct mesh_strbuf *out)
{
    static const uint64_t zero[N_VALUES];
    if (window_ms == 0 || window_ms > MESH_HISTORY_MAX_WINDOW_MS)
        return MESH_E_INVALID;
    read_totals(h, shards, n);
    struct baseline b = find_baseline(h, now_ms, window_ms);
    uint64_t uptime = now_ms > h->start_ms ? now_ms - h->start_ms : 0;
    enum mesh_err err = mesh_strbuf_puts(out, "{");
    if (err == MESH_OK)
        err = put_seconds(out, "window_seconds", window_ms);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, ",");
    if (err == MESH_OK)
        err = put_seconds(out, "span_seconds", now_ms > b.ms ? now_ms - b.ms : 0);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, ",");
    if (err == MESH_OK)
        err = put_seconds(out, "uptime_seconds", uptime);
    if (err == MESH_OK)
        err = mesh_strbuf_printf(out,
                                 ",\"from_start\":%s,\"sample_interval_seconds\":%u,"
                                 "\"services_dropped\":%" PRIu64 ",\"services\":[",
                                 b.ring == 0 ? "true" : "false", MESH_HISTORY_INTERVAL_MS / 1000,
                                 h->dropped);
    /* Sorted by name, for diffable answers; the order of h->services is the index's. */
    struct service *sorted[MESH_HISTORY_MAX_SERVICES];
    memcpy(sorted, h->services, h->n_services * sizeof(*sorted));
    qsort(sorted, h->n_services, sizeof(*sorted), by_name);
    for (size_t i = 0; err == MESH_OK && i < h->n_services; i++) {
        const struct service *sv = sorted[i];
        const uint64_t *base = b.ring == 1   ? sv->fine[b.slot]
                               : b.ring == 2 ? sv->coarse[b.slot]
                                             : zero;
        err = put_service(out, sv, base, ns_of ? ns_of(ctx, sv->name) : NULL, i == 0);
    }
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "]}\n");
    return err;
}
