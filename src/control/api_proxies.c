/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's proxy routes: registration, heartbeats, status, and the config watch. Each proxy's
 * compiled config is cached until the store or the registry moves, once for every proxy that
 * gets the same config (every sidecar). A watch that has nothing new waits as a
 * deferred request and is answered from mesh_api_watches_notify the moment its proxy's config
 * changes, in the same turn of the loop as the change. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "compile.h"
#include "core/xalloc.h"
#include "model/schema.h"

#define WATCH_DEFAULT_MS 30000u
#define WATCH_MAX_MS     300000u

/* The config of every proxy with one compile key, as of a store version and a registry
 * generation. */
struct mesh_api_proxy_config {
    uint64_t store_version, reg_gen, ca_gen;
    struct mesh_proxy_config cfg;
};

struct mesh_api_watch {
    struct mesh_api_watch *prev, *next;
    struct mesh_api *api;
    struct mesh_httpd_req *req;
    char id[MESH_PROXY_ID_MAX + 1];
    char after[MESH_CONFIG_VERSION_LEN + 1];
    struct mesh_timer timer;
};

/* --- compiled configs --- */

/* What a proxy's config depends on besides the resources and the registry, by compile.h's
 * rule: its role, and a gateway's name and namespace. Every sidecar gets the same config, so
 * 50 sidecars cost one compilation per change, not 50. (Should the compiler ever tailor a
 * sidecar's config to its own service, this key must name the service too.) */
static void compile_key(const struct mesh_proxy_entry *e, char *buf, size_t size)
{
    if (e->role == MESH_PROXY_GATEWAY)
        snprintf(buf, size, "gateway %s/%s", e->ns ? e->ns : MESH_DEFAULT_NAMESPACE,
                 e->gateway ? e->gateway : "");
    else
        snprintf(buf, size, "sidecar");
}

static void config_free(void *p)
{
    struct mesh_api_proxy_config *pc = p;
    mesh_proxy_config_clear(&pc->cfg);
    free(pc);
}

/* The config of proxy e as of now. MESH_E_UNAVAILABLE while the store cannot be read (never an
 * empty config instead), MESH_E_NOMEM from the compiler. *out is borrowed until the next change
 * of the store or the registry. */
static enum mesh_err config_for(struct mesh_api *api, const struct mesh_proxy_entry *e,
                                const struct mesh_proxy_config **out)
{
    uint64_t gen = mesh_registry_generation(api->reg);
    uint64_t ca_gen = mesh_api_ca_generation(api);
    char key[2 * MESH_PROXY_ID_MAX + 256];
    if (!api->cache.loaded)
        return MESH_E_UNAVAILABLE;
    compile_key(e, key, sizeof(key));
    struct mesh_api_proxy_config *pc = mesh_api_map_get(&api->configs, key);
    if (pc && pc->store_version == api->cache.version && pc->reg_gen == gen &&
        pc->ca_gen == ca_gen) {
        *out = &pc->cfg;
        return MESH_OK;
    }
    struct mesh_proxy_config cfg = {0};
    enum mesh_err err =
        mesh_compile_proxy_config(api->cache.res, api->cache.n_res, api->reg, e, &cfg);
    if (err != MESH_OK) {
        mesh_proxy_config_clear(&cfg);
        return err;
    }
    /* The CA generation rides in every config: a new one wakes every watch, and the proxies
     * renew their certificates (ca_rotation.h). */
    mesh_proxy_config_set_ca_generation(&cfg, ca_gen);
    if (!pc) {
        pc = xcalloc(1, sizeof(*pc));
        mesh_api_map_put(&api->configs, key, pc);
    }
    mesh_proxy_config_clear(&pc->cfg);
    pc->cfg = cfg;
    pc->store_version = api->cache.version;
    pc->reg_gen = gen;
    pc->ca_gen = ca_gen;
    *out = &pc->cfg;
    return MESH_OK;
}

void mesh_api_configs_reset(struct mesh_api *api)
{
    /* Every compiled config is stale after a change; they are compiled again when asked for. */
    mesh_api_map_clear(&api->configs, config_free);
}

void mesh_api_proxies_free(struct mesh_api *api)
{
    /* The httpd went first and handed every waiting watch to watch_gone. */
    while (api->watches) {
        struct mesh_api_watch *w = api->watches;
        api->watches = w->next;
        mesh_timer_stop(api->loop, &w->timer);
        free(w);
    }
    mesh_api_configs_reset(api);
}

/* --- answers --- */

static void not_registered(struct mesh_httpd_req *req, const char *id)
{
    mesh_api_error(req, 404, NULL,
                   "proxy \"%s\" is not registered (meshd restarted, or its heartbeats lapsed): "
                   "register it with PUT /v1/proxies/%s",
                   id, id);
}

static void store_unavailable(struct mesh_httpd_req *req)
{
    mesh_api_error(req, 503, NULL,
                   "the store cannot be read, so no config can be compiled; "
                   "try again");
}

static void send_config(struct mesh_httpd_req *req, const char *id,
                        const struct mesh_proxy_config *cfg)
{
    char *body = mesh_proxy_config_body(cfg, id);
    if (!body) {
        mesh_api_error(req, 500, NULL, "out of memory printing the config of %s", id);
        return;
    }
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "x-mesh-version: %s\r\n", cfg->version);
    mesh_api_send(req, 200, "application/json", hdr, body);
    free(body);
}

static void send_not_modified(struct mesh_httpd_req *req, const char *version)
{
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "x-mesh-version: %s\r\n", version);
    mesh_httpd_respond(req, 304, hdr, NULL, 0);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The proxy status document of docs/api.md. */
static json_t *status_json(struct mesh_api *api, const struct mesh_proxy_entry *e)
{
    const struct mesh_proxy_config *cfg = NULL;
    const char *latest = config_for(api, e, &cfg) == MESH_OK ? cfg->version : NULL;
    json_t *labels = json_object();
    for (size_t i = 0; i < e->labels.len; i++)
        json_object_set_new(labels, e->labels.items[i].key, json_string(e->labels.items[i].value));
    return json_pack(
        "{s:s,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:I,s:I}", "id", e->id, "role",
        e->role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar", "service", str_or_null(e->service),
        "namespace", e->ns ? e->ns : MESH_DEFAULT_NAMESPACE, "gateway", str_or_null(e->gateway),
        "labels", labels, "address", str_or_null(e->address), "admin", str_or_null(e->admin),
        "acked_version", str_or_null(e->acked[0] ? e->acked : NULL), "latest_version",
        str_or_null(latest), "synced", latest && strcmp(e->acked, latest) == 0, "registered_ms",
        (json_int_t)e->registered_ms, "last_heartbeat_ms", (json_int_t)e->last_heartbeat_ms);
}

static void send_json(struct mesh_httpd_req *req, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    char *body = xasprintf("%s\n", text);
    mesh_api_send(req, status, "application/json", NULL, body);
    free(body);
    free(text);
    json_decref(doc);
}

/* --- the watch --- */

static void watch_unlink(struct mesh_api *api, struct mesh_api_watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        api->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    api->n_watches--;
    mesh_timer_stop(api->loop, &w->timer);
}

static void watch_gone(struct mesh_httpd_req *req, void *data)
{
    struct mesh_api_watch *w = data;
    (void)req;
    watch_unlink(w->api, w);
    free(w);
}

static void watch_timeout(struct mesh_timer *t, void *data)
{
    struct mesh_api_watch *w = data;
    struct mesh_api *api = w->api;
    (void)t;
    watch_unlink(api, w);
    const struct mesh_proxy_entry *e = mesh_registry_find(api->reg, w->id);
    const struct mesh_proxy_config *cfg = NULL;
    if (!e)
        not_registered(w->req, w->id);
    else if (config_for(api, e, &cfg) == MESH_OK && strcmp(cfg->version, w->after) != 0)
        send_config(w->req, w->id, cfg); /* moved without a notification reaching it */
    else
        send_not_modified(w->req, w->after);
    free(w);
}

void mesh_api_watches_notify(struct mesh_api *api)
{
    struct mesh_api_watch *next;
    for (struct mesh_api_watch *w = api->watches; w; w = next) {
        next = w->next;
        const struct mesh_proxy_entry *e = mesh_registry_find(api->reg, w->id);
        const struct mesh_proxy_config *cfg = NULL;
        if (!e) {
            watch_unlink(api, w);
            not_registered(w->req, w->id);
            free(w);
        } else if (config_for(api, e, &cfg) == MESH_OK && strcmp(cfg->version, w->after) != 0) {
            watch_unlink(api, w);
            send_config(w->req, w->id, cfg);
            free(w);
        }
    }
}

static bool valid_version(const char *v)
{
    if (strlen(v) != MESH_CONFIG_VERSION_LEN)
        return false;
    for (const char *p = v; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* ?timeout=: default 30 s, at most 5 m; false (answered) when malformed. */
static bool watch_timeout_ms(struct mesh_httpd_req *req, uint64_t *ms)
{
    bool bad = false;
    char *v = mesh_api_query(req, "timeout", &bad);
    char why[256] = "malformed escape";
    unsigned long long x = WATCH_DEFAULT_MS;
    bool ok = !bad && (!v || mesh_duration_parse(v, &x, why, sizeof(why)));
    if (!ok)
        mesh_api_error(req, 400, NULL, "timeout: %s", why);
    else if (x > WATCH_MAX_MS)
        mesh_api_error(req, 400, NULL, "timeout: \"%s\" is longer than the longest wait, 5m", v);
    free(v);
    *ms = x;
    return ok && x <= WATCH_MAX_MS;
}

static void watch(struct mesh_api *api, struct mesh_httpd_req *req, const char *id)
{
    const struct mesh_proxy_entry *e = mesh_registry_find(api->reg, id);
    bool bad = false;
    uint64_t timeout_ms;
    const struct mesh_proxy_config *cfg = NULL;

    if (!e) {
        not_registered(req, id);
        return;
    }
    char *after = mesh_api_query(req, "after", &bad);
    if (bad || (after && after[0] && !valid_version(after))) {
        mesh_api_error(req, 400, NULL,
                       "after: \"%s\" is not a config version (16 lower-case hex digits)",
                       after ? after : "");
        goto out;
    }
    if (!watch_timeout_ms(req, &timeout_ms))
        goto out;
    if (after && after[0])
        mesh_registry_ack(api->reg, id, after); /* what the proxy serves now */
    enum mesh_err err = config_for(api, e, &cfg);
    if (err == MESH_E_UNAVAILABLE) {
        store_unavailable(req);
    } else if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "cannot compile the config of %s: %s", id,
                       mesh_strerror(err));
    } else if (!after || strcmp(after, cfg->version) != 0) {
        send_config(req, id, cfg);
    } else if (timeout_ms == 0) {
        send_not_modified(req, after);
    } else {
        struct mesh_api_watch *w = xcalloc(1, sizeof(*w));
        w->api = api;
        w->req = req;
        snprintf(w->id, sizeof(w->id), "%s", id);
        snprintf(w->after, sizeof(w->after), "%s", after);
        mesh_timer_init(&w->timer, watch_timeout, w);
        mesh_timer_start(api->loop, &w->timer, timeout_ms);
        w->next = api->watches;
        if (api->watches)
            api->watches->prev = w;
        api->watches = w;
        api->n_watches++;
        mesh_httpd_defer(req, watch_gone, w);
    }
out:
    free(after);
}

/* --- registration --- */

/* A string member of the registration body; false (answered) when it is not a string. */
static bool body_string(struct mesh_httpd_req *req, json_t *root, const char *key, const char **out)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        mesh_api_error(req, 400, NULL, "request body: %s: must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool body_labels(struct mesh_httpd_req *req, json_t *root, struct mesh_labels *labels)
{
    json_t *v = json_object_get(root, "labels");
    const char *key;
    json_t *value;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        mesh_api_error(req, 400, NULL, "request body: labels: must be an object of strings");
        return false;
    }
    json_object_foreach(v, key, value)
    {
        if (!json_is_string(value)) {
            mesh_api_error(req, 400, NULL, "request body: labels.%s: must be a string", key);
            return false;
        }
        if (mesh_labels_set(labels, key, json_string_value(value)) != MESH_OK)
            abort(); /* control plane: out of memory is fatal, as with xalloc */
    }
    return true;
}

/* Parses the registration body into r (strings borrowed from *root). false when answered. */
static bool read_registration(struct mesh_httpd_req *req, json_t **root,
                              struct mesh_proxy_registration *r, struct mesh_labels *labels)
{
    static const char *const keys[] = {"role",    "service", "namespace", "gateway",
                                       "address", "admin",   "labels",    NULL};
    const char *role = NULL;

    *root = mesh_api_body_object(req, keys,
                                 "with role, service or gateway, namespace, labels, address and "
                                 "admin");
    if (!*root)
        return false;
    if (!body_string(req, *root, "role", &role) ||
        !body_string(req, *root, "service", &r->service) ||
        !body_string(req, *root, "namespace", &r->ns) ||
        !body_string(req, *root, "gateway", &r->gateway) ||
        !body_string(req, *root, "address", &r->address) ||
        !body_string(req, *root, "admin", &r->admin) || !body_labels(req, *root, labels))
        return false;
    if (!role) {
        mesh_api_error(req, 400, NULL, "request body: role: required (sidecar or gateway)");
        return false;
    }
    if (strcmp(role, "sidecar") == 0) {
        r->role = MESH_PROXY_SIDECAR;
    } else if (strcmp(role, "gateway") == 0) {
        r->role = MESH_PROXY_GATEWAY;
    } else {
        mesh_api_error(req, 400, NULL, "request body: role: must be sidecar or gateway, not \"%s\"",
                       role);
        return false;
    }
    r->labels = labels;
    return true;
}

static void register_proxy(struct mesh_api *api, struct mesh_httpd_req *req, const char *id)
{
    struct mesh_proxy_registration r = {.id = id};
    struct mesh_labels labels = {0};
    json_t *root = NULL;
    char *errmsg = NULL;
    bool created = false;

    if (!mesh_proxy_id_valid(id)) {
        mesh_api_error(req, 400, NULL,
                       "proxy id \"%s\": use lower-case letters, digits, '.' and '-', starting "
                       "with a letter or digit, at most %d characters",
                       id, MESH_PROXY_ID_MAX);
        goto out;
    }
    if (!read_registration(req, &root, &r, &labels))
        goto out;
    uint64_t gen = mesh_registry_generation(api->reg);
    if (mesh_registry_register(api->reg, &r, mesh_loop_now_ms(api->loop), mesh_api_wall_ms(),
                               &created, &errmsg) != MESH_OK) {
        mesh_api_error(req, 400, NULL, "request body: %s", errmsg ? errmsg : "invalid");
        goto out;
    }
    if (mesh_registry_generation(api->reg) != gen) {
        fprintf(stderr, "lvl=info msg=\"proxy registered\" id=%s role=%s namespace=%s %s=%s%s%s\n",
                id, r.role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar",
                r.ns ? r.ns : MESH_DEFAULT_NAMESPACE,
                r.role == MESH_PROXY_GATEWAY ? "gateway" : "service",
                r.role == MESH_PROXY_GATEWAY ? r.gateway : r.service, r.address ? " address=" : "",
                r.address ? r.address : "");
        mesh_api_changed(api);
    }
    send_json(req, created ? 201 : 200,
              json_pack("{s:s,s:I,s:I}", "id", id, "heartbeat_interval_ms",
                        (json_int_t)api->opt.heartbeat_interval_ms, "ttl_ms",
                        (json_int_t)api->opt.heartbeat_ttl_ms));
out:
    free(errmsg);
    mesh_labels_clear(&labels);
    json_decref(root);
}

static void deregister_proxy(struct mesh_api *api, struct mesh_httpd_req *req, const char *id)
{
    const struct mesh_proxy_entry *e = mesh_registry_find(api->reg, id);
    if (!e) {
        not_registered(req, id);
        return;
    }
    json_t *status = status_json(api, e);
    mesh_registry_remove(api->reg, id);
    fprintf(stderr, "lvl=info msg=\"proxy deregistered\" id=%s\n", id);
    mesh_api_changed(api);
    send_json(req, 200, status);
}

static void heartbeat(struct mesh_api *api, struct mesh_httpd_req *req, const char *id)
{
    if (mesh_registry_heartbeat(api->reg, id, mesh_loop_now_ms(api->loop), mesh_api_wall_ms()) !=
        MESH_OK)
        not_registered(req, id);
    else
        mesh_httpd_respond(req, 204, NULL, NULL, 0);
}

static void list_proxies(struct mesh_api *api, struct mesh_httpd_req *req)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(api->reg, &n);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, status_json(api, list[i]));
    send_json(req, 200, json_pack("{s:o}", "items", items));
}

void mesh_api_proxies(struct mesh_api *api, struct mesh_httpd_req *req, char **segs, size_t n)
{
    enum mesh_h1_method m = req->head->method_id;
    bool read = m == MESH_H1_M_GET || m == MESH_H1_M_HEAD;

    if (n == 1) {
        if (read)
            list_proxies(api, req);
        else
            mesh_api_method_not_allowed(req, "GET, HEAD");
    } else if (n == 2) {
        const struct mesh_proxy_entry *e = NULL;
        if (m == MESH_H1_M_PUT) {
            register_proxy(api, req, segs[1]);
        } else if (m == MESH_H1_M_DELETE) {
            deregister_proxy(api, req, segs[1]);
        } else if (!read) {
            mesh_api_method_not_allowed(req, "GET, HEAD, PUT, DELETE");
        } else if (!(e = mesh_registry_find(api->reg, segs[1]))) {
            not_registered(req, segs[1]);
        } else {
            send_json(req, 200, status_json(api, e));
        }
    } else if (n == 3 && strcmp(segs[2], "heartbeat") == 0) {
        if (m == MESH_H1_M_POST)
            heartbeat(api, req, segs[1]);
        else
            mesh_api_method_not_allowed(req, "POST");
    } else if (n == 3 && strcmp(segs[2], "config") == 0) {
        if (read)
            watch(api, req, segs[1]);
        else
            mesh_api_method_not_allowed(req, "GET, HEAD");
    } else {
        mesh_api_error(req, 404, NULL, "no such path: %.*s", (int)req->head->path.len,
                       req->head->path.p);
    }
}

json_t *mesh_api_proxy_status_json(struct mesh_api *api, const struct mesh_proxy_entry *e)
{
    return status_json(api, e);
}
