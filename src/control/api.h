/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's REST API (docs/api.md) over the store and the proxy registry: the state the api*.c
 * files share and the calls between them. Everything runs on meshd's one loop thread.
 *
 *   api.c            state, the request handler: rate limit, auth, routing; the sweep timer
 *   api_http.c       answers (JSON, errors), paths and query strings
 *   api_limits.c     the bearer token check and the per-peer token buckets
 *   api_map.c        a string-keyed hash map
 *   api_cache.c      the decoded resources, refreshed when the store version moves
 *   api_resources.c  /v1/namespaces/..., /v1/{kind}, /v1/apply, /v1/restore, /v1/version,
 *                    /v1/health
 *   api_proxies.c    /v1/proxies...: registration, heartbeats, compiled configs, the watch
 *   api_certs.c      /v1/proxies/{id}/certificate (workload certificates), /v1/ca,
 *                    /v1/ca/rotate and the root rotation's timer
 *   api_prometheus.c /v1/prometheus/targets (Prometheus HTTP service discovery)
 *   ui.c             the dashboard: /ui and /v1/ui/summary (ui.h) */
#ifndef MESH_CONTROL_API_H
#define MESH_CONTROL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http/server.h"
#include "mesh/err.h"
#include "mesh/resource.h"
#include "net/loop.h"
#include "registry.h"
#include "store/store.h"

struct mesh_ca_set;
struct mesh_ca_rotation;
struct mesh_ui;

/* What meshd's flags set; main.c fills it. */
struct mesh_api_options {
    const char *token;              /* the admin token (copied) */
    bool auth_reads;                /* GET needs the token from loopback peers too */
    double rate;                    /* requests per second per peer; 0 = no limit */
    double burst;                   /* bucket size */
    uint64_t heartbeat_ttl_ms;      /* registrations lapse after this */
    uint64_t heartbeat_interval_ms; /* what proxies are told to heartbeat at */
    const struct mesh_ca_set *cas;  /* the CAs (borrowed, outlives the API); NULL: none */
    /* The root rotation over cas (borrowed, outlives the API); NULL: none (no POST /v1/ca/rotate,
     * CA generation 0). */
    struct mesh_ca_rotation *rotation;
    const char *trust_domain; /* of the SPIFFE ids (copied) */
    uint64_t cert_ttl_s;      /* lifetime of a workload certificate */
};

/* --- api_map.c: a string-keyed hash map (keys copied, values borrowed) --- */

struct mesh_api_map_entry {
    char *key;
    void *value;
    struct mesh_api_map_entry *next;
};

struct mesh_api_map {
    struct mesh_api_map_entry **slots;
    size_t n_slots, len;
};

void *mesh_api_map_get(const struct mesh_api_map *m, const char *key);
/* Sets key to value; returns the value it replaces (NULL when new). */
void *mesh_api_map_put(struct mesh_api_map *m, const char *key, void *value);
/* Removes key; returns its value (NULL when absent). */
void *mesh_api_map_remove(struct mesh_api_map *m, const char *key);
/* Calls fn for every entry; an entry for which fn returns true is removed (fn frees the value
 * then). */
void mesh_api_map_sweep(struct mesh_api_map *m, bool (*fn)(const char *key, void *value, void *arg),
                        void *arg);
/* Removes every entry, passing each value to free_value (may be NULL). */
void mesh_api_map_clear(struct mesh_api_map *m, void (*free_value)(void *value));

/* --- api_cache.c: every stored resource, decoded, sorted by (kind, namespace, name) --- */

struct mesh_api_cached;

struct mesh_api_cache {
    struct mesh_api_cached *items;
    size_t len, cap;
    const struct mesh_resource **res; /* items' readable resources in order, for the compiler */
    size_t n_res;
    uint64_t version; /* the store version the cache reflects */
    bool loaded;
};

/* Brings the cache to the store's current version: the changes since the cached version when
 * the store's change log has them all, else a full reload. *changed tells whether anything
 * moved. On error *errmsg (caller frees) says why and the cache keeps what it had (possibly
 * part of the changes, never fewer resources than a consistent state had: a store failure must
 * not look like an empty store to the proxies); the next call tries again. */
enum mesh_err mesh_api_cache_refresh(struct mesh_api_cache *c, struct mesh_store *st, bool *changed,
                                     char **errmsg);
void mesh_api_cache_free(struct mesh_api_cache *c);

/* --- the API's state --- */

struct mesh_api_watch;

struct mesh_api {
    struct mesh_loop *loop;
    struct mesh_store *store;
    struct mesh_registry *reg;
    struct mesh_api_options opt;
    char *token;
    struct mesh_api_cache cache;
    struct mesh_api_map configs; /* compile key -> struct mesh_api_proxy_config */
    struct mesh_api_map buckets; /* peer address -> struct mesh_api_bucket */
    struct mesh_api_watch *watches;
    size_t n_watches;
    uint64_t notified_store, notified_reg; /* the versions the watches were last checked at */
    uint64_t notified_ca;                  /* and the CA generation */
    struct mesh_timer sweep;
    uint64_t sweep_ms;
    uint64_t next_bucket_sweep_ms;
    bool store_failing; /* the last cache refresh failed (logged once) */
    char *trust_domain;
    struct mesh_api_map ca_warned;    /* CA names policies use that meshd lacks, warned about */
    struct mesh_timer rotation_timer; /* advances a root rotation, every heartbeat interval */
    uint64_t rotation_hold_until_ms;  /* no rotation phase ends before this (monotonic) */
    bool rotation_failing;            /* the last tick failed (logged once) */
    struct mesh_ui *ui;               /* the dashboard (ui.h); NULL when it could not start */
};

/* Creates the API over loop, store and a new registry. The caller keeps ownership of loop and
 * store; both must outlive the API. */
struct mesh_api *mesh_api_new(struct mesh_loop *loop, struct mesh_store *store,
                              const struct mesh_api_options *opt);
/* Frees the API; requests it deferred must be gone already (free the httpd first). */
void mesh_api_free(struct mesh_api *api);

/* The httpd handler (data: the api). */
void mesh_api_handle(struct mesh_httpd_req *req, void *data);
/* The httpd error_body hook: the JSON error document. */
char *mesh_api_error_body(int status, const char *message, const char **content_type, void *data);

/* Called after anything that can change a compiled config: a store commit, a registry change.
 * Refreshes the resource cache and answers, before returning, every waiting watch whose
 * proxy's config moved past what it holds (or whose proxy is gone). */
void mesh_api_changed(struct mesh_api *api);

/* Monotonic and wall-clock milliseconds. */
uint64_t mesh_api_wall_ms(void);

/* --- api_http.c: answers and request parts --- */

/* "Invalid", "NotFound", ... for an error status. */
const char *mesh_api_reason(int status);
/* {"error": {"status", "reason", "message"}}; malloc'ed. */
char *mesh_api_error_json(int status, const char *message);
/* Answers an error; extra_headers may be NULL. */
void mesh_api_error(struct mesh_httpd_req *req, int status, const char *extra_headers,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The request body as a JSON object whose fields are all among keys (NULL-ended); NULL after
 * answering 400 (bad JSON with its line and column, not an object: "must be a JSON object
 * " + shape, an unknown field). The caller owns the object. */
json_t *mesh_api_body_object(struct mesh_httpd_req *req, const char *const *keys,
                             const char *shape);
/* Answers 405 with an Allow header ("GET, HEAD"). */
void mesh_api_method_not_allowed(struct mesh_httpd_req *req, const char *allow);
/* Answers text (NUL-terminated) with content_type. */
void mesh_api_send(struct mesh_httpd_req *req, int status, const char *content_type,
                   const char *extra_headers, const char *text);

/* The path's segments after "/v1/", percent-decoded, at most max (more: *n = max + 1). false
 * for a path outside /v1/ or a bad escape. Segments are malloc'ed (free with
 * mesh_api_segments_free). */
bool mesh_api_split_path(struct mesh_slice path, char **segs, size_t max, size_t *n);
void mesh_api_segments_free(char **segs, size_t n);
/* The value of query parameter name, percent-decoded (malloc'ed), or NULL when absent. *bad is
 * set for a malformed escape. */
char *mesh_api_query(const struct mesh_httpd_req *req, const char *name, bool *bad);

/* --- api_limits.c --- */

/* True when req carries "Authorization: Bearer <the token>". */
bool mesh_api_token_ok(const struct mesh_api *api, const struct mesh_httpd_req *req);
/* Takes one token from the peer's bucket. false when empty: *retry_after_s says when to retry. */
bool mesh_api_rate_take(struct mesh_api *api, const char *peer, uint64_t *retry_after_s);
/* Forgets the buckets of peers quiet long enough to be full again. */
void mesh_api_rate_sweep(struct mesh_api *api);

/* --- api_resources.c --- */

/* segs: the path after /v1/. Answers req. */
void mesh_api_resources(struct mesh_api *api, struct mesh_httpd_req *req, char **segs, size_t n);
void mesh_api_apply(struct mesh_api *api, struct mesh_httpd_req *req);
/* POST /v1/restore: the body as for /v1/apply, written by mesh_store_restore's rule. */
void mesh_api_restore(struct mesh_api *api, struct mesh_httpd_req *req);
void mesh_api_version(struct mesh_api *api, struct mesh_httpd_req *req);
void mesh_api_health(struct mesh_api *api, struct mesh_httpd_req *req);

/* --- api_proxies.c --- */

/* segs[0] is "proxies". Answers req (or defers it: the watch). */
void mesh_api_proxies(struct mesh_api *api, struct mesh_httpd_req *req, char **segs, size_t n);
/* Answers every watch whose proxy's config moved (see mesh_api_changed). */
void mesh_api_watches_notify(struct mesh_api *api);
/* Frees the watch list and the compiled configs; the httpd must be freed first (its waiting
 * watches are handed back to the API as their clients go). */
void mesh_api_proxies_free(struct mesh_api *api);
/* Forgets every compiled config (after a change of the store or the registry). */
void mesh_api_configs_reset(struct mesh_api *api);
/* The proxy status document of docs/api.md for e (GET /v1/proxies/{id}); the caller owns it. */
json_t *mesh_api_proxy_status_json(struct mesh_api *api, const struct mesh_proxy_entry *e);

/* --- api_certs.c --- */

/* POST /v1/proxies/{id}/certificate: signs the proxy's CSR. Answers req. */
void mesh_api_certificate(struct mesh_api *api, struct mesh_httpd_req *req, const char *id);
/* GET /v1/ca: the trust domain, the trust bundle, its roots and the rotation. Answers req. */
void mesh_api_ca(struct mesh_api *api, struct mesh_httpd_req *req);
/* POST /v1/ca/rotate: starts a root rotation. Answers req. */
void mesh_api_ca_rotate(struct mesh_api *api, struct mesh_httpd_req *req);
/* The CA generation every config carries (0 without a rotation object). */
uint64_t mesh_api_ca_generation(const struct mesh_api *api);
/* Starts and stops the rotation's timer (mesh_api_new, mesh_api_free). */
void mesh_api_ca_rotation_start_timer(struct mesh_api *api);
void mesh_api_ca_rotation_stop_timer(struct mesh_api *api);

/* --- api_prometheus.c --- */

/* GET /v1/prometheus/targets: every live proxy's admin /metrics as Prometheus http_sd_config
 * target groups. Answers req. */
void mesh_api_prometheus_targets(struct mesh_api *api, struct mesh_httpd_req *req);

#endif
