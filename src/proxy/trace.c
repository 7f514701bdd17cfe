/* SPDX-License-Identifier: Apache-2.0 */
/* The span rings the workers fill and the exporter thread that empties them into the
 * collector, in batches, dropping (and counting) what it cannot deliver. */
#include "trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/http_client.h"

#define CONNECT_TIMEOUT_MS 1000
#define EXPORT_TIMEOUT_MS  3000 /* a slow collector costs spans, never the request path */
#define FINAL_TIMEOUT_MS   1000 /* the flush at stop, so that a drain is not held up */
#define STOP_WAIT_MS       3000 /* the cancelled export (1 s), the final flush (1 s), and a margin */
#define EXPORT_MAX_BODY    (16u << 20)
#define ANSWER_MAX_BODY    (64u << 10)
#define RING_MASK          (MESH_TRACE_RING_SLOTS - 1)

_Static_assert((MESH_TRACE_RING_SLOTS & RING_MASK) == 0, "ring slots: a power of two");

/* One worker's spans: a single-producer (the worker), single-consumer (the exporter) ring.
 * head and tail only grow (mod 2^32); head - tail is the number of spans waiting. */
struct span_ring {
    _Atomic uint32_t head; /* written by the worker (release), after filling the slot */
    char pad1[60];         /* head and tail on their own cache lines */
    _Atomic uint32_t tail; /* written by the exporter (release), after reading the slot */
    char pad2[60];
    /* The worker's: its counters, resolved in its shard on first use. */
    struct mesh_stats_shard *shard;
    struct mesh_stats_counter *sampled, *full;
    struct mesh_span_record slots[MESH_TRACE_RING_SLOTS];
};

struct mesh_tracer {
    struct mesh_trace_resource res; /* strings owned (copies) */
    unsigned n_rings;
    _Atomic(struct span_ring *) *rings;
    pthread_t thread;
    bool started;
    bool abandoned; /* the thread did not stop in time (mesh_tracer_stop): never freed */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock: the settings in force, and stop. */
    bool enabled, stopping, exited;
    double rate; /* for the log line only: the workers read the rate from their snapshot */
    char url[MESH_TRACE_URL_MAX];
    atomic_int cancel; /* stops an export in flight (mesh_tracer_stop) */
    /* The exporter's own, single-writer (the thread; before it starts, whoever creates it). */
    struct mesh_stats_shard *stats;
    struct mesh_stats_counter *exported;
    struct mesh_stats_counter *req_ok, *req_failed;
    struct mesh_stats_counter *drop_failed, *drop_no_collector, *drop_no_memory;
    bool failing;       /* the last export failed: logged once per outage */
    unsigned next_ring; /* where the next batch starts, so that no worker starves another */
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void resource_free(struct mesh_trace_resource *r)
{
    free((char *)r->service);
    free((char *)r->ns);
    free((char *)r->instance);
    free((char *)r->mode);
    memset(r, 0, sizeof(*r));
}

enum mesh_err mesh_tracer_new(const struct mesh_trace_resource *res, unsigned n_workers,
                              struct mesh_tracer **out)
{
    enum mesh_err err = MESH_E_NOMEM;
    struct mesh_tracer *t = calloc(1, sizeof(*t));
    *out = NULL;
    if (!t)
        return MESH_E_NOMEM;
    t->res.service = dup_or_null(res->service ? res->service : "meshproxy");
    t->res.ns = dup_or_null(res->ns);
    t->res.instance = dup_or_null(res->instance);
    t->res.mode = dup_or_null(res->mode);
    t->n_rings = n_workers;
    t->rings = calloc(n_workers ? n_workers : 1, sizeof(*t->rings));
    if (!t->res.service || (res->ns && !t->res.ns) || (res->instance && !t->res.instance) ||
        (res->mode && !t->res.mode) || !t->rings)
        goto out;
    for (unsigned i = 0; i < n_workers; i++)
        atomic_init(&t->rings[i], NULL);
    atomic_init(&t->cancel, 0);
    if ((err = mesh_stats_shard_new(16, &t->stats)) != MESH_OK)
        goto out;
    mesh_stats_counter_get(t->stats, MESH_STATS_TRACE_SPANS_EXPORTED, NULL, &t->exported);
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &attr);
    pthread_condattr_destroy(&attr);
    *out = t;
    t = NULL;
    err = MESH_OK;
out:
    if (t) {
        resource_free(&t->res);
        free(t->rings);
        free(t);
    }
    return err;
}

void mesh_tracer_configure(struct mesh_tracer *t, const struct mesh_trace_config *cfg)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    /* The rings first: a worker that sees this config must find its ring. Under the lock, so
     * that two publishers never make the same one. */
    for (unsigned i = 0; cfg->enabled && i < t->n_rings; i++) {
        if (atomic_load_explicit(&t->rings[i], memory_order_relaxed))
            continue;
        /* Large and zeroed: calloc maps it, so untouched slots cost no memory. */
        struct span_ring *r = calloc(1, sizeof(*r));
        if (!r)
            break; /* the workers count their spans as dropped until a later config */
        atomic_init(&r->head, 0);
        atomic_init(&r->tail, 0);
        atomic_store_explicit(&t->rings[i], r, memory_order_release);
    }
    bool changed = t->enabled != cfg->enabled || strcmp(t->url, cfg->url) != 0 ||
                   (cfg->enabled && t->rate != cfg->sampling_rate);
    t->enabled = cfg->enabled;
    t->rate = cfg->sampling_rate;
    snprintf(t->url, sizeof(t->url), "%s", cfg->url);
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (changed && cfg->enabled)
        fprintf(stderr, "lvl=info msg=\"tracing on\" collector=%s sampling_rate=%g config=%s\n",
                cfg->url, cfg->sampling_rate, cfg->source);
    else if (changed)
        fprintf(stderr, "lvl=info msg=\"tracing off\"\n");
}

struct mesh_stats_shard *mesh_tracer_stats(struct mesh_tracer *t)
{
    return t ? t->stats : NULL;
}

/* --- the workers' side --- */

static struct mesh_stats_counter *counter(struct mesh_stats_shard *shard, enum mesh_stats_family f,
                                          const char *label)
{
    const char *labels[2] = {label, NULL};
    struct mesh_stats_counter *c = NULL;
    mesh_stats_counter_get(shard, f, label ? labels : NULL, &c); /* on error: the sink */
    return c;
}

struct mesh_span_record *mesh_tracer_reserve(struct mesh_tracer *t, unsigned worker,
                                             struct mesh_stats_shard *shard)
{
    struct span_ring *r =
        worker < t->n_rings ? atomic_load_explicit(&t->rings[worker], memory_order_acquire) : NULL;
    if (!r) {
        /* No ring (its allocation failed): rare enough for the lookups. */
        mesh_stats_counter_inc(counter(shard, MESH_STATS_TRACE_SPANS_SAMPLED, NULL));
        mesh_stats_counter_inc(counter(shard, MESH_STATS_TRACE_SPANS_DROPPED, "no_memory"));
        return NULL;
    }
    if (r->shard != shard) {
        r->shard = shard;
        r->sampled = counter(shard, MESH_STATS_TRACE_SPANS_SAMPLED, NULL);
        r->full = counter(shard, MESH_STATS_TRACE_SPANS_DROPPED, "buffer_full");
    }
    mesh_stats_counter_inc(r->sampled);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail >= MESH_TRACE_RING_SLOTS) {
        mesh_stats_counter_inc(r->full);
        return NULL;
    }
    return &r->slots[head & RING_MASK];
}

void mesh_tracer_commit(struct mesh_tracer *t, unsigned worker)
{
    struct span_ring *r = atomic_load_explicit(&t->rings[worker], memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* Release: the exporter that sees the new head sees the slot filled. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

/* --- the exporter --- */

static void ensure_series(struct mesh_tracer *t)
{
    if (t->req_ok)
        return;
    t->req_ok = counter(t->stats, MESH_STATS_TRACE_EXPORT_REQUESTS, "success");
    t->req_failed = counter(t->stats, MESH_STATS_TRACE_EXPORT_REQUESTS, "failure");
    t->drop_failed = counter(t->stats, MESH_STATS_TRACE_SPANS_DROPPED, "export_failed");
    t->drop_no_collector = counter(t->stats, MESH_STATS_TRACE_SPANS_DROPPED, "no_collector");
    t->drop_no_memory = counter(t->stats, MESH_STATS_TRACE_SPANS_DROPPED, "no_memory");
}

static bool rings_empty(struct mesh_tracer *t)
{
    for (unsigned i = 0; i < t->n_rings; i++) {
        struct span_ring *r = atomic_load_explicit(&t->rings[i], memory_order_acquire);
        if (r && atomic_load_explicit(&r->head, memory_order_acquire) !=
                     atomic_load_explicit(&r->tail, memory_order_relaxed))
            return false;
    }
    return true;
}

/* Takes up to MESH_TRACE_BATCH_MAX spans off the rings into body (when encode) and frees their
 * slots. *n: how many; *err: an encoding failure (the batch is then unusable). */
static void take_batch(struct mesh_tracer *t, struct mesh_strbuf *body, bool encode, size_t *n,
                       enum mesh_err *err)
{
    *n = 0;
    *err = encode ? mesh_trace_otlp_begin(body, &t->res) : MESH_OK;
    for (unsigned k = 0; k < t->n_rings && *n < MESH_TRACE_BATCH_MAX; k++) {
        unsigned i = (t->next_ring + k) % t->n_rings;
        struct span_ring *r = atomic_load_explicit(&t->rings[i], memory_order_acquire);
        if (!r)
            continue;
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        while (tail != head && *n < MESH_TRACE_BATCH_MAX) {
            if (encode && *err == MESH_OK)
                *err = mesh_trace_otlp_span(body, &r->slots[tail & RING_MASK], *n == 0);
            tail++;
            (*n)++;
        }
        /* Release: the worker reuses the slots only after we are done reading them. */
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    t->next_ring = t->n_rings ? (t->next_ring + 1) % t->n_rings : 0;
    if (encode && *err == MESH_OK)
        *err = mesh_trace_otlp_end(body);
}

/* POSTs body to url. True when the collector took it (2xx); else *why (caller frees). */
static bool post(struct mesh_http_client *h, const char *url, const struct mesh_strbuf *body,
                 long timeout_ms, const atomic_int *cancel, char **why)
{
    struct mesh_http_request req = {
        .method = "POST",
        .url = url,
        .peer_name = "the trace collector",
        .body = body->data,
        .body_len = body->len,
        .content_type = "application/json",
        .connect_timeout_ms = timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS,
        .timeout_ms = timeout_ms,
        .max_body = ANSWER_MAX_BODY,
        .cancel = cancel,
    };
    struct mesh_http_response resp = {0};
    enum mesh_err err =
        h ? mesh_http_client_do(h, &req, &resp, why) : mesh_http_do(&req, &resp, why);
    if (err != MESH_OK)
        return false;
    bool ok = resp.status >= 200 && resp.status < 300;
    if (!ok)
        *why = mesh_http_error_message(resp.status, resp.body, resp.body_len);
    mesh_http_response_clear(&resp);
    return ok;
}

/* Sends everything the rings hold, batch by batch; what cannot go is dropped and counted. */
static void flush(struct mesh_tracer *t, struct mesh_http_client *h, const char *url, bool enabled,
                  long timeout_ms, const atomic_int *cancel)
{
    struct mesh_strbuf body;
    mesh_strbuf_init(&body, EXPORT_MAX_BODY);
    for (;;) {
        size_t n = 0;
        enum mesh_err err;
        body.len = 0;
        take_batch(t, &body, enabled, &n, &err);
        if (n == 0)
            break;
        if (!enabled) {
            mesh_stats_counter_add(t->drop_no_collector, n);
            continue;
        }
        if (err != MESH_OK) {
            mesh_stats_counter_add(t->drop_no_memory, n);
            continue;
        }
        char *why = NULL;
        if (post(h, url, &body, timeout_ms, cancel, &why)) {
            mesh_stats_counter_add(t->exported, n);
            mesh_stats_counter_inc(t->req_ok);
            if (t->failing)
                fprintf(stderr, "lvl=info msg=\"trace collector reachable again\" url=%s\n", url);
            t->failing = false;
        } else {
            mesh_stats_counter_add(t->drop_failed, n);
            mesh_stats_counter_inc(t->req_failed);
            /* Cancelled by a stop: no fault of the collector, which the final flush tries. */
            bool stopped = cancel && atomic_load(cancel);
            if (!t->failing && !stopped)
                fprintf(stderr,
                        "lvl=warn msg=\"trace export failed: dropping spans until the collector "
                        "answers\" url=%s error=\"%s\"\n",
                        url, why ? why : "out of memory");
            t->failing = t->failing || !stopped;
        }
        free(why);
        if (n < MESH_TRACE_BATCH_MAX || (cancel && atomic_load(cancel)))
            break;
    }
    mesh_strbuf_free(&body);
}

static struct timespec deadline_in(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *exporter_main(void *arg)
{
    struct mesh_tracer *t = arg;
    struct mesh_http_client *h = NULL;
    char url[MESH_TRACE_URL_MAX];
    bool enabled = false;
    if (mesh_http_client_new(&h) != MESH_OK)
        h = NULL; /* a fresh connection per export then */
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        if (t->enabled || !rings_empty(t)) {
            struct timespec until = deadline_in(MESH_TRACE_FLUSH_INTERVAL_MS);
            pthread_cond_timedwait(&t->cond, &t->lock, &until);
        } else {
            pthread_cond_wait(&t->cond, &t->lock); /* nothing to do until tracing is on */
        }
        if (t->stopping)
            break;
        enabled = t->enabled;
        snprintf(url, sizeof(url), "%s", t->url);
        pthread_mutex_unlock(&t->lock);
        /* A config without tracing wakes us too: then there is nothing to count or send. */
        if (enabled || !rings_empty(t)) {
            ensure_series(t);
            flush(t, h, url, enabled, EXPORT_TIMEOUT_MS, &t->cancel);
        }
        pthread_mutex_lock(&t->lock);
    }
    enabled = t->enabled;
    snprintf(url, sizeof(url), "%s", t->url);
    pthread_mutex_unlock(&t->lock);
    /* The workers have stopped: what they left goes once more, unless the collector is down. */
    if (!t->failing && !rings_empty(t)) {
        ensure_series(t);
        flush(t, h, url, enabled, FINAL_TIMEOUT_MS, NULL);
    }
    mesh_http_client_free(h);
    pthread_mutex_lock(&t->lock);
    t->exited = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

enum mesh_err mesh_tracer_start(struct mesh_tracer *t)
{
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0)
        return MESH_E_NOMEM;
    t->started = true;
    return MESH_OK;
}

void mesh_tracer_stop(struct mesh_tracer *t)
{
    if (!t || !t->started)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    atomic_store(&t->cancel, 1);
    pthread_cond_broadcast(&t->cond);
    /* An export ends within a second of the cancel and the final flush within another, but a
     * resolver stuck on the collector's name knows no timeout of ours: a drain is not held up
     * by it. */
    struct timespec until = deadline_in(STOP_WAIT_MS);
    while (!t->exited && pthread_cond_timedwait(&t->cond, &t->lock, &until) == 0)
        ;
    bool exited = t->exited;
    pthread_mutex_unlock(&t->lock);
    t->started = false;
    if (exited) {
        pthread_join(t->thread, NULL);
        return;
    }
    /* The thread still uses the tracer: it is left to the process's exit. */
    pthread_detach(t->thread);
    t->abandoned = true;
    fprintf(stderr, "lvl=warn msg=\"trace exporter did not stop in time: left behind\"\n");
}

void mesh_tracer_free(struct mesh_tracer *t)
{
    if (!t || t->abandoned)
        return;
    for (unsigned i = 0; i < t->n_rings; i++)
        free(atomic_load(&t->rings[i]));
    free(t->rings);
    mesh_stats_shard_free(t->stats);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    resource_free(&t->res);
    free(t);
}
