/* SPDX-License-Identifier: Apache-2.0 */
/* The admin listener: /metrics (Prometheus), /stats (JSON), /stats/window (the traffic of the
 * last minutes, from the stats history), /tap (a live stream of requests), /ready, /config_dump
 * (YAML, or JSON with ?format=json or as /config.json; both with the workload certificate in
 * sidecar and gateway modes). */
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "history.h"
#include "model/schema.h"
#include "procstat.h"
#include "proxy.h"
#include "stream.h"
#include "tap.h"
#include "trace.h"

#define ADMIN_MAX_BODY (64u << 20)

#define WINDOW_DEFAULT_MS 60000u
#define WINDOW_MIN_MS     1000u

/* What the admin worker keeps besides its connections. */
struct mesh_admin {
    struct mesh_worker *w;
    struct mesh_history *history;
    struct mesh_timer sample; /* every MESH_HISTORY_INTERVAL_MS */
};

static void respond_buf(struct mesh_stream *s, enum mesh_err err, struct mesh_strbuf *body,
                        const char *content_type)
{
    if (err != MESH_OK) {
        const char *msg = "cannot render: out of memory\n";
        mesh_admin_respond(s, 500, "text/plain", msg, strlen(msg));
    } else {
        mesh_admin_respond(s, 200, content_type, body->data ? body->data : "", body->len);
    }
    mesh_strbuf_free(body);
}

/* The workers' shards, the certificate renewal thread's (NULL in static mode: skipped) and the
 * trace exporter's; how many. */
static size_t shards(struct mesh_proxy *p, struct mesh_stats_shard **out)
{
    for (unsigned i = 0; i < p->n_workers; i++)
        out[i] = p->workers[i].st.shard;
    out[p->n_workers] = p->identity_stats;
    out[p->n_workers + 1] = mesh_tracer_stats(p->tracer);
    return p->n_workers + 2;
}

/* The value of query parameter name ("" when it has none), or NULL when absent. Copied into
 * buf (size bytes, cut to fit). */
static const char *query_param(struct mesh_slice query, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name), i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.p[end] != '&')
            end++;
        if (end - i >= nlen && memcmp(query.p + i, name, nlen) == 0 &&
            (end - i == nlen || query.p[i + nlen] == '=')) {
            size_t vstart = i + nlen + (end - i > nlen ? 1 : 0);
            size_t vlen = end - vstart < size - 1 ? end - vstart : size - 1;
            memcpy(buf, query.p + vstart, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        i = end + 1;
    }
    return NULL;
}

/* The service label's namespace for /stats/window: a sidecar's own for its inbound cluster, else
 * the namespace of the Service of that name in the config being served. */
struct ns_lookup {
    const struct mesh_proxy *p;
    const struct mesh_snapshot *snap;
};

static const char *ns_of(void *ctx, const char *service)
{
    const struct ns_lookup *l = ctx;
    if (strncmp(service, "inbound|", 8) == 0)
        return l->p->opt.ns ? l->p->opt.ns : MESH_DEFAULT_NAMESPACE;
    for (size_t i = 0; i < l->snap->n_clusters; i++)
        if (strcmp(l->snap->clusters[i].name, service) == 0)
            return l->snap->clusters[i].ns;
    return NULL;
}

static void stats_window(struct mesh_stream *s, struct mesh_stats_shard *const *all, size_t n)
{
    struct mesh_worker *w = s->w;
    struct mesh_admin *admin = w->proxy->admin;
    char text[64], why[200], msg[300];
    unsigned long long ms = WINDOW_DEFAULT_MS;
    if (!admin) {
        const char *m = "no stats history on this proxy\n";
        mesh_admin_respond(s, 503, "text/plain", m, strlen(m));
        return;
    }
    if (query_param(s->req.query, "window", text, sizeof(text)) &&
        (!mesh_duration_parse(text, &ms, why, sizeof(why)) || ms < WINDOW_MIN_MS ||
         ms > MESH_HISTORY_MAX_WINDOW_MS)) {
        snprintf(msg, sizeof(msg), "window \"%s\": a duration from 1s to 10m, like 30s or 1m\n",
                 text);
        mesh_admin_respond(s, 400, "text/plain", msg, strlen(msg));
        return;
    }
    struct mesh_wsnap *ws = mesh_worker_wsnap(w, MESH_LISTENER_ROUTER);
    struct ns_lookup lookup = {w->proxy, ws->snap};
    struct mesh_strbuf body;
    mesh_strbuf_init(&body, ADMIN_MAX_BODY);
    enum mesh_err err = mesh_history_render_window(admin->history, all, n, mesh_now_us() / 1000, ms,
                                                   ns_of, &lookup, &body);
    respond_buf(s, err, &body, "application/json");
    mesh_worker_release_wsnap(w, ws);
}

static void on_sample(struct mesh_timer *t, void *data)
{
    struct mesh_admin *admin = data;
    struct mesh_stats_shard *all[MESH_PROXY_MAX_WORKERS + 1];
    size_t n = shards(admin->w->proxy, all);
    mesh_history_sample(admin->history, all, n, mesh_now_us() / 1000);
    mesh_timer_start(&admin->w->loop, t, MESH_HISTORY_INTERVAL_MS);
}

enum mesh_err mesh_admin_init(struct mesh_worker *w)
{
    struct mesh_proxy *p = w->proxy;
    struct mesh_admin *admin = calloc(1, sizeof(*admin));
    if (!admin)
        return MESH_E_NOMEM;
    admin->w = w;
    /* The start is the history's first reading: every counter is zero now. */
    enum mesh_err err = mesh_history_new(mesh_now_us() / 1000, &admin->history);
    if (err == MESH_OK)
        err = mesh_tap_init(p, w);
    if (err != MESH_OK) {
        mesh_history_free(admin->history);
        free(admin);
        return err;
    }
    mesh_timer_init(&admin->sample, on_sample, admin);
    /* Before the worker's thread starts, which then owns the timer like any other of its loop. */
    mesh_timer_start(&w->loop, &admin->sample, MESH_HISTORY_INTERVAL_MS);
    p->admin = admin;
    return MESH_OK;
}

void mesh_admin_free(struct mesh_proxy *p)
{
    mesh_tap_free(p);
    if (!p->admin)
        return;
    mesh_history_free(p->admin->history);
    free(p->admin);
    p->admin = NULL;
}

static void config_dump(struct mesh_stream *s, bool json)
{
    struct mesh_worker *w = s->w;
    /* The published snapshot, adopted now if this worker has not yet: a dump right after a
     * publication shows the new config. */
    struct mesh_wsnap *ws = mesh_worker_wsnap(w, MESH_LISTENER_ROUTER);
    if (json) {
        struct mesh_strbuf body;
        mesh_strbuf_init(&body, ADMIN_MAX_BODY);
        enum mesh_err err = mesh_config_dump_json(w->proxy, ws->snap, &body);
        respond_buf(s, err, &body, "application/json");
    } else if (w->proxy->opt.mode == MESH_PROXY_STATIC) {
        const char *yaml = ws->snap->source ? ws->snap->source : "";
        mesh_admin_respond(s, 200, "application/yaml", yaml, strlen(yaml));
    } else {
        /* The documents, then the workload certificate as a last document of its own. */
        struct mesh_strbuf body;
        mesh_strbuf_init(&body, ADMIN_MAX_BODY);
        enum mesh_err err = mesh_strbuf_puts(&body, ws->snap->source ? ws->snap->source : "");
        if (err == MESH_OK)
            err = mesh_config_dump_identity_yaml(w->proxy, &body);
        respond_buf(s, err, &body, "application/yaml");
    }
    mesh_worker_release_wsnap(w, ws);
}

void mesh_admin_handle(struct mesh_stream *s)
{
    struct mesh_proxy *p = s->w->proxy;
    struct mesh_stats_shard *all[MESH_PROXY_MAX_WORKERS + 2];
    struct mesh_strbuf body;
    mesh_strbuf_init(&body, ADMIN_MAX_BODY);
    size_t n_shards = shards(p, all);
    struct mesh_procstat ps;
    if (strcmp(s->path, "/metrics") == 0) {
        enum mesh_err err = mesh_stats_render_prometheus(all, n_shards, &body);
        mesh_procstat_read(&ps);
        if (err == MESH_OK)
            err = mesh_procstat_render_prometheus(&ps, &body);
        respond_buf(s, err, &body, "text/plain; version=0.0.4");
    } else if (strcmp(s->path, "/stats") == 0) {
        enum mesh_err err = mesh_stats_render_json(all, n_shards, &body);
        mesh_procstat_read(&ps);
        if (err == MESH_OK)
            err = mesh_procstat_append_json(&ps, &body);
        respond_buf(s, err, &body, "application/json");
    } else if (strcmp(s->path, "/stats/window") == 0) {
        mesh_strbuf_free(&body);
        stats_window(s, all, n_shards);
    } else if (strcmp(s->path, "/tap") == 0) {
        mesh_strbuf_free(&body);
        mesh_tap_start(s);
    } else if (strcmp(s->path, "/ready") == 0) {
        /* A sidecar or gateway is ready once it has a config from meshd: before, its outbound
         * listener only answers 503. */
        bool draining = atomic_load(&p->draining);
        bool awaiting = atomic_load(&p->current)->awaiting_config;
        const char *msg = draining ? "draining\n" : awaiting ? "no config yet\n" : "ready\n";
        mesh_admin_respond(s, draining || awaiting ? 503 : 200, "text/plain", msg, strlen(msg));
    } else if (strcmp(s->path, "/config_dump") == 0 || strcmp(s->path, "/config.json") == 0) {
        char format[16];
        const char *f = query_param(s->req.query, "format", format, sizeof(format));
        bool json = strcmp(s->path, "/config.json") == 0 || (f && strcmp(f, "json") == 0);
        if (f && strcmp(f, "json") != 0 && strcmp(f, "yaml") != 0) {
            const char *msg = "format must be yaml or json\n";
            mesh_admin_respond(s, 400, "text/plain", msg, strlen(msg));
        } else {
            config_dump(s, json);
        }
    } else {
        const char *msg = "not found: try /metrics, /stats, /stats/window?window=1m, /tap, /ready, "
                          "/config_dump or /config_dump?format=json\n";
        mesh_admin_respond(s, 404, "text/plain", msg, strlen(msg));
    }
}
