/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's API front door: the rate limit, the bearer token, routing to the resource and proxy
 * handlers, and the sweep that expires registrations and notices store changes made by
 * others (meshctl --store on the same directory). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "ca.h"
#include "core/xalloc.h"
#include "ui.h"

#define MAX_SEGMENTS    6
#define BUCKET_SWEEP_MS 10000u
#define SWEEP_MIN_MS    10u
#define SWEEP_MAX_MS    250u

uint64_t mesh_api_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Logs a store failure once, not at every sweep while it lasts. */
static void refresh_cache(struct mesh_api *api)
{
    bool moved = false;
    char *msg = NULL;
    enum mesh_err err = mesh_api_cache_refresh(&api->cache, api->store, &moved, &msg);
    if (err != MESH_OK && !api->store_failing)
        fprintf(stderr, "lvl=error msg=\"cannot read the store\" reason=\"%s\"\n",
                msg ? msg : mesh_strerror(err));
    else if (err == MESH_OK && api->store_failing)
        fprintf(stderr, "lvl=info msg=\"store readable again\" store_version=%" PRIu64 "\n",
                api->cache.version);
    api->store_failing = err != MESH_OK;
    free(msg);
}

void mesh_api_changed(struct mesh_api *api)
{
    refresh_cache(api);
    uint64_t gen = mesh_registry_generation(api->reg);
    uint64_t ca_gen = mesh_api_ca_generation(api);
    if (!api->cache.loaded)
        return; /* no config can be compiled without the resources: watches keep waiting */
    if (api->cache.version == api->notified_store && gen == api->notified_reg &&
        ca_gen == api->notified_ca)
        return;
    mesh_api_configs_reset(api);
    api->notified_store = api->cache.version;
    api->notified_reg = gen;
    api->notified_ca = ca_gen;
    mesh_api_watches_notify(api);
}

static void on_sweep(struct mesh_timer *t, void *data)
{
    struct mesh_api *api = data;
    (void)t;
    uint64_t now = mesh_loop_now_ms(api->loop);
    size_t n = mesh_registry_expire(api->reg, now);
    if (n)
        fprintf(stderr, "lvl=info msg=\"registrations expired\" count=%zu ttl_ms=%" PRIu64 "\n", n,
                api->opt.heartbeat_ttl_ms);
    mesh_api_changed(api);
    if (now >= api->next_bucket_sweep_ms) {
        mesh_api_rate_sweep(api);
        api->next_bucket_sweep_ms = now + BUCKET_SWEEP_MS;
    }
    mesh_timer_start(api->loop, &api->sweep, api->sweep_ms);
}

struct mesh_api *mesh_api_new(struct mesh_loop *loop, struct mesh_store *store,
                              const struct mesh_api_options *opt)
{
    struct mesh_api *api = xcalloc(1, sizeof(*api));
    api->loop = loop;
    api->store = store;
    api->opt = *opt;
    api->token = xstrdup(opt->token);
    api->opt.token = api->token;
    api->trust_domain =
        xstrdup(opt->trust_domain ? opt->trust_domain : MESH_CA_DEFAULT_TRUST_DOMAIN);
    api->opt.trust_domain = api->trust_domain;
    api->reg = mesh_registry_new(opt->heartbeat_ttl_ms);
    /* Expiry is checked at a tenth of the TTL: a lapsed proxy goes within 10% of its TTL. */
    api->sweep_ms = opt->heartbeat_ttl_ms / 10;
    if (api->sweep_ms < SWEEP_MIN_MS)
        api->sweep_ms = SWEEP_MIN_MS;
    if (api->sweep_ms > SWEEP_MAX_MS)
        api->sweep_ms = SWEEP_MAX_MS;
    mesh_timer_init(&api->sweep, on_sweep, api);
    mesh_timer_start(loop, &api->sweep, api->sweep_ms);
    refresh_cache(api);
    api->notified_store = api->cache.version;
    api->notified_ca = mesh_api_ca_generation(api);
    mesh_api_ca_rotation_start_timer(api);
    api->ui = mesh_ui_new(api);
    if (!api->ui)
        fprintf(stderr, "lvl=warn msg=\"the dashboard cannot read proxies: no eventfd\"\n");
    return api;
}

static void free_value(void *p)
{
    free(p);
}

void mesh_api_free(struct mesh_api *api)
{
    if (!api)
        return;
    mesh_timer_stop(api->loop, &api->sweep);
    mesh_api_ca_rotation_stop_timer(api);
    mesh_ui_free(api->ui);
    mesh_api_proxies_free(api);
    mesh_api_map_clear(&api->buckets, free_value);
    mesh_api_map_clear(&api->ca_warned, NULL);
    mesh_api_cache_free(&api->cache);
    mesh_registry_free(api->reg);
    free(api->token);
    free(api->trust_domain);
    free(api);
}

static bool is_read(const struct mesh_httpd_req *req)
{
    enum mesh_h1_method m = req->head->method_id;
    return m == MESH_H1_M_GET || m == MESH_H1_M_HEAD;
}

static bool rate_ok(struct mesh_api *api, struct mesh_httpd_req *req)
{
    uint64_t retry = 0;
    if (mesh_api_rate_take(api, req->peer, &retry))
        return true;
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "retry-after: %" PRIu64 "\r\n", retry);
    mesh_api_error(req, 429, hdr,
                   "too many requests from %s: the limit is %g per second with bursts of %g; "
                   "retry in %" PRIu64 " s",
                   req->peer, api->opt.rate, api->opt.burst, retry);
    return false;
}

static bool auth_ok(struct mesh_api *api, struct mesh_httpd_req *req)
{
    bool need = !is_read(req) || api->opt.auth_reads || !req->peer_loopback;
    if (!need || mesh_api_token_ok(api, req))
        return true;
    const char *what = !is_read(req) ? "writes need" : "reads from this address need";
    if (mesh_httpd_header(req, "authorization").p)
        mesh_api_error(req, 401, "www-authenticate: Bearer\r\n",
                       "the bearer token is wrong: %s meshd's admin token (DATA_DIR/token)", what);
    else
        mesh_api_error(req, 401, "www-authenticate: Bearer\r\n",
                       "no bearer token: %s \"Authorization: Bearer TOKEN\" with meshd's admin "
                       "token (DATA_DIR/token)",
                       what);
    return false;
}

void mesh_api_handle(struct mesh_httpd_req *req, void *data)
{
    struct mesh_api *api = data;
    const struct mesh_h1_message *m = req->head;
    char *segs[MAX_SEGMENTS] = {0};
    size_t n = 0;

    if (!rate_ok(api, req))
        return;
    /* The dashboard's files hold no data (that comes from /v1/ui/summary, under the usual
     * rule), and a browser cannot send a bearer token when it opens a page. */
    if (mesh_ui_is_page_path(m->path)) {
        mesh_ui_page(api, req);
        return;
    }
    if (!auth_ok(api, req))
        return;
    if (!mesh_api_split_path(m->path, segs, MAX_SEGMENTS, &n) || n > MAX_SEGMENTS) {
        mesh_api_error(req, 404, NULL, "no such path: %.*s", (int)m->path.len, m->path.p);
        goto out;
    }
    if (n == 1 && strcmp(segs[0], "apply") == 0) {
        if (m->method_id == MESH_H1_M_POST)
            mesh_api_apply(api, req);
        else
            mesh_api_method_not_allowed(req, "POST");
    } else if (n == 1 && strcmp(segs[0], "restore") == 0) {
        if (m->method_id == MESH_H1_M_POST)
            mesh_api_restore(api, req);
        else
            mesh_api_method_not_allowed(req, "POST");
    } else if (n == 1 && (strcmp(segs[0], "version") == 0 || strcmp(segs[0], "health") == 0)) {
        if (!is_read(req))
            mesh_api_method_not_allowed(req, "GET, HEAD");
        else if (segs[0][0] == 'v')
            mesh_api_version(api, req);
        else
            mesh_api_health(api, req);
    } else if (n == 1 && strcmp(segs[0], "ca") == 0) {
        if (is_read(req))
            mesh_api_ca(api, req);
        else
            mesh_api_method_not_allowed(req, "GET, HEAD");
    } else if (n == 2 && strcmp(segs[0], "ca") == 0 && strcmp(segs[1], "rotate") == 0) {
        if (m->method_id == MESH_H1_M_POST)
            mesh_api_ca_rotate(api, req);
        else
            mesh_api_method_not_allowed(req, "POST");
    } else if (n == 2 && strcmp(segs[0], "prometheus") == 0 && strcmp(segs[1], "targets") == 0) {
        if (is_read(req))
            mesh_api_prometheus_targets(api, req);
        else
            mesh_api_method_not_allowed(req, "GET, HEAD");
    } else if (n == 3 && strcmp(segs[0], "proxies") == 0 && strcmp(segs[2], "certificate") == 0) {
        if (m->method_id == MESH_H1_M_POST)
            mesh_api_certificate(api, req, segs[1]);
        else
            mesh_api_method_not_allowed(req, "POST");
    } else if (strcmp(segs[0], "proxies") == 0) {
        mesh_api_proxies(api, req, segs, n);
    } else if (n == 2 && strcmp(segs[0], "ui") == 0 && strcmp(segs[1], "summary") == 0) {
        mesh_ui_summary(api, req);
    } else {
        mesh_api_resources(api, req, segs, n);
    }
out:
    mesh_api_segments_free(segs, n < MAX_SEGMENTS ? n : MAX_SEGMENTS);
}
