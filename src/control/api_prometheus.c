/* SPDX-License-Identifier: Apache-2.0 */
/* GET /v1/prometheus/targets: Prometheus HTTP service discovery (http_sd_config) over meshd's
 * registry, so that a Prometheus pointed at meshd scrapes every live proxy's admin /metrics
 * and follows proxies as they come and go, with no list of addresses to keep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "core/xalloc.h"
#include "model/schema.h"

/* A registration label key as a Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, prefixed
 * mesh_label_ ("app.kubernetes.io/version" -> mesh_label_app_kubernetes_io_version). */
static char *label_name(const char *key)
{
    char *name = xasprintf("mesh_label_%s", key);
    for (char *p = name + strlen("mesh_label_"); *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!ok)
            *p = '_';
    }
    return name;
}

/* One target group: the proxy's admin address, and labels that say which proxy it is. Every
 * series Prometheus scrapes from it carries them, beside the proxy's own labels (service, the
 * destination, is the proxy's; mesh_service is the service the sidecar fronts). */
static json_t *target_group(const struct mesh_proxy_entry *e)
{
    json_t *labels = json_object();
    json_object_set_new(labels, "__metrics_path__", json_string("/metrics"));
    json_object_set_new(labels, "mesh_proxy", json_string(e->id));
    json_object_set_new(labels, "mesh_role",
                        json_string(e->role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar"));
    json_object_set_new(labels, "mesh_namespace",
                        json_string(e->ns ? e->ns : MESH_DEFAULT_NAMESPACE));
    if (e->role == MESH_PROXY_GATEWAY && e->gateway)
        json_object_set_new(labels, "mesh_gateway", json_string(e->gateway));
    if (e->role == MESH_PROXY_SIDECAR && e->service)
        json_object_set_new(labels, "mesh_service", json_string(e->service));
    for (size_t i = 0; i < e->labels.len; i++) {
        char *name = label_name(e->labels.items[i].key);
        /* Two keys that differ only in punctuation would collide: the first (sorted) wins. */
        if (!json_object_get(labels, name))
            json_object_set_new(labels, name, json_string(e->labels.items[i].value));
        free(name);
    }
    return json_pack("{s:[s],s:o}", "targets", e->admin, "labels", labels);
}

void mesh_api_prometheus_targets(struct mesh_api *api, struct mesh_httpd_req *req)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(api->reg, &n);
    uint64_t now = mesh_loop_now_ms(api->loop);
    json_t *groups = json_array();

    for (size_t i = 0; i < n; i++) {
        const struct mesh_proxy_entry *e = list[i];
        /* A proxy that registered no admin listener has nothing to scrape. One whose heartbeat
         * lapsed but that the sweep has not removed yet is left out too: it is not live. */
        if (!e->admin || !e->admin[0])
            continue;
        if (now > e->seen_ms && now - e->seen_ms > api->opt.heartbeat_ttl_ms)
            continue;
        json_array_append_new(groups, target_group(e));
    }
    char *text = json_dumps(groups, JSON_INDENT(2));
    json_decref(groups);
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    char *body = xasprintf("%s\n", text);
    mesh_api_send(req, 200, "application/json", NULL, body);
    free(body);
    free(text);
}
