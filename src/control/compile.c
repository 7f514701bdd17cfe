/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's snapshot compiler: picks the resources one proxy needs, merges the registry's live
 * endpoints into Services, and prints them as canonical JSON with a content-derived version. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "compile.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "mesh/observability_config.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/model.h"

/* One resource of the config: borrowed from the caller, or a copy (or a synthesised Service)
 * that this compilation owns because registered endpoints were added to it. */
struct item {
    struct mesh_resource *res;
    bool owned;
};

struct items {
    struct item *v;
    size_t len, cap;
};

static void items_add(struct items *it, struct mesh_resource *res, bool owned)
{
    xgrow((void **)&it->v, &it->cap, it->len + 1, sizeof(*it->v));
    it->v[it->len].res = res;
    it->v[it->len].owned = owned;
    it->len++;
}

static void items_free(struct items *it)
{
    for (size_t i = 0; i < it->len; i++)
        if (it->v[i].owned)
            mesh_resource_free(it->v[i].res);
    free(it->v);
}

void mesh_proxy_config_clear(struct mesh_proxy_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->resources_json);
    memset(cfg, 0, sizeof(*cfg));
}

bool mesh_compile_gateway_ref_matches(const char *ref, const char *vs_ns, const char *gateway,
                                      const char *gateway_ns)
{
    const char *slash = strchr(ref, '/');
    if (!slash)
        return strcmp(ref, gateway) == 0 && strcmp(vs_ns, gateway_ns) == 0;
    return (size_t)(slash - ref) == strlen(gateway_ns) &&
           strncmp(ref, gateway_ns, (size_t)(slash - ref)) == 0 && strcmp(slash + 1, gateway) == 0;
}

bool mesh_compile_vs_serves(const struct mesh_virtual_service *vs,
                            const struct mesh_proxy_entry *proxy)
{
    const char *ns = mesh_resource_namespace(&vs->res);
    if (proxy->role == MESH_PROXY_SIDECAR) {
        if (vs->gateways.len == 0)
            return true;
        for (size_t i = 0; i < vs->gateways.len; i++)
            if (strcmp(vs->gateways.items[i], "mesh") == 0)
                return true;
        return false;
    }
    const char *gw_ns = proxy->ns ? proxy->ns : MESH_DEFAULT_NAMESPACE;
    for (size_t i = 0; proxy->gateway && i < vs->gateways.len; i++)
        if (mesh_compile_gateway_ref_matches(vs->gateways.items[i], ns, proxy->gateway, gw_ns))
            return true;
    return false;
}

static bool wanted(const struct mesh_resource *res, const struct mesh_proxy_entry *proxy)
{
    switch (res->kind) {
    case MESH_KIND_VIRTUAL_SERVICE:
        return mesh_compile_vs_serves((const struct mesh_virtual_service *)res, proxy);
    case MESH_KIND_SERVICE:
    case MESH_KIND_CIRCUIT_BREAKER:
    case MESH_KIND_FAULT_INJECTION:
    case MESH_KIND_SECURITY_POLICY:
    case MESH_KIND_MESH_CONFIG:
        return true;
    case MESH_KIND_OBSERVABILITY_CONFIG: {
        /* Its trace collector is where proxies send spans; its Prometheus and Grafana
         * endpoints mean nothing to them, so one without a collector wakes no proxy. */
        const struct mesh_observability_config *oc = (const struct mesh_observability_config *)res;
        return oc->jaeger_endpoint && oc->jaeger_endpoint[0];
    }
    default: /* KubernetesConfig: nothing a proxy uses */
        return false;
    }
}

/* The canonical order: kind name, namespace, name, as the store lists them. */
static int compare_key(const struct mesh_resource *a, const struct mesh_resource *b)
{
    int c = strcmp(mesh_kind_name(a->kind), mesh_kind_name(b->kind));
    if (c)
        return c;
    c = strcmp(mesh_resource_namespace(a), mesh_resource_namespace(b));
    return c ? c : strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

static int compare_items(const void *a, const void *b)
{
    return compare_key(((const struct item *)a)->res, ((const struct item *)b)->res);
}

/* The item holding Service ns/name, or NULL; items are sorted. */
static struct item *find_service(struct items *it, const char *name, const char *ns)
{
    struct mesh_resource key = {.kind = MESH_KIND_SERVICE, .name = (char *)name, .ns = (char *)ns};
    struct item probe = {.res = &key};
    if (!it->len) /* bsearch wants a non-NULL base even for nothing */
        return NULL;
    return bsearch(&probe, it->v, it->len, sizeof(*it->v), compare_items);
}

static struct mesh_endpoint *find_endpoint(struct mesh_service *svc, const char *address)
{
    for (size_t i = 0; i < svc->n_endpoints; i++)
        if (strcmp(svc->endpoints[i].address, address) == 0)
            return &svc->endpoints[i];
    return NULL;
}

/* A live sidecar's inbound listener as an endpoint of its Service, labelled as a sidecar so that
 * callers know it speaks mesh mTLS. A static endpoint at the same address (the sidecar fronts
 * it) keeps its labels and gains that one. */
static enum mesh_err add_registered_endpoint(struct mesh_service *svc,
                                             const struct mesh_proxy_entry *e)
{
    struct mesh_endpoint *ep = find_endpoint(svc, e->address);
    if (ep)
        return mesh_labels_set(&ep->labels, MESH_LABEL_SIDECAR, "true");
    if (!(ep = mesh_service_add_endpoint(svc, e->address)))
        return MESH_E_NOMEM;
    for (size_t l = 0; l < e->labels.len; l++)
        if (mesh_labels_set(&ep->labels, e->labels.items[l].key, e->labels.items[l].value) !=
            MESH_OK)
            return MESH_E_NOMEM;
    return mesh_labels_set(&ep->labels, MESH_LABEL_SIDECAR, "true");
}

/* Adds every live sidecar's address to its Service: a copy of the stored one, or a new Service
 * for a service that only exists through its registrations. */
static enum mesh_err merge_registry(struct items *it, const struct mesh_registry *reg)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *proxies = reg ? mesh_registry_list(reg, &n) : NULL;
    struct items made = {0};
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < n && err == MESH_OK; i++) {
        const struct mesh_proxy_entry *e = proxies[i];
        if (e->role != MESH_PROXY_SIDECAR || !e->service || !e->address)
            continue;
        const char *ns = e->ns ? e->ns : MESH_DEFAULT_NAMESPACE;
        struct item *at = find_service(it, e->service, ns);
        if (!at) {
            for (size_t k = 0; k < made.len && !at; k++)
                if (strcmp(made.v[k].res->name, e->service) == 0 &&
                    strcmp(made.v[k].res->ns, ns) == 0)
                    at = &made.v[k];
        }
        if (!at) {
            struct mesh_service *svc = mesh_service_new(e->service, ns);
            if (!svc) {
                err = MESH_E_NOMEM;
                break;
            }
            items_add(&made, &svc->res, true);
            at = &made.v[made.len - 1];
        } else if (!at->owned) {
            struct mesh_resource *copy = mesh_resource_clone(at->res);
            if (!copy) {
                err = MESH_E_NOMEM;
                break;
            }
            at->res = copy;
            at->owned = true;
        }
        err = add_registered_endpoint((struct mesh_service *)at->res, e);
    }
    for (size_t k = 0; k < made.len; k++)
        items_add(it, made.v[k].res, true);
    free(made.v);
    if (made.len > 1 || (made.len && it->len > 1))
        qsort(it->v, it->len, sizeof(*it->v), compare_items);
    return err;
}

/* FNV-1a, 64 bits: stable across runs and builds, so equal content has an equal version after a
 * meshd restart. Not a defence against anyone: configs are not secret and not adversarial. */
static uint64_t fnv1a64_more(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static uint64_t fnv1a64(const char *p, size_t n)
{
    return fnv1a64_more(14695981039346656037ULL, p, n);
}

static enum mesh_err print_items(const struct items *it, struct mesh_strbuf *out)
{
    enum mesh_err err = mesh_strbuf_puts(out, "[");
    for (size_t i = 0; i < it->len && err == MESH_OK; i++) {
        char *doc = NULL;
        err = mesh_model_canonical_json(it->v[i].res, &doc);
        if (err == MESH_OK) {
            size_t len = strlen(doc);
            while (len && (doc[len - 1] == '\n' || doc[len - 1] == ' '))
                len--;
            if (i)
                err = mesh_strbuf_puts(out, ",\n");
            else
                err = mesh_strbuf_puts(out, "\n");
            if (err == MESH_OK)
                err = mesh_strbuf_append(out, doc, len);
        }
        free(doc);
    }
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, it->len ? "\n]" : "]");
    return err;
}

enum mesh_err mesh_compile_proxy_config(const struct mesh_resource *const *res, size_t n,
                                        const struct mesh_registry *reg,
                                        const struct mesh_proxy_entry *proxy,
                                        struct mesh_proxy_config *out)
{
    struct items it = {0};
    struct mesh_strbuf text;
    enum mesh_err err;

    mesh_strbuf_init(&text, 0);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        if (wanted(res[i], proxy))
            items_add(&it, (struct mesh_resource *)res[i], false);
    if (it.len > 1)
        qsort(it.v, it.len, sizeof(*it.v), compare_items);
    err = merge_registry(&it, reg);
    if (err != MESH_OK)
        goto out;
    err = print_items(&it, &text);
    if (err != MESH_OK)
        goto out;
    snprintf(out->version, sizeof(out->version), "%016" PRIx64, fnv1a64(text.data, text.len));
    out->resources_json = mesh_strbuf_take(&text);
out:
    mesh_strbuf_free(&text);
    items_free(&it);
    return err;
}

void mesh_proxy_config_set_ca_generation(struct mesh_proxy_config *cfg, uint64_t gen)
{
    const char *text = cfg->resources_json ? cfg->resources_json : "";
    char suffix[48];
    uint64_t h = fnv1a64(text, strlen(text));
    if (gen) {
        int n = snprintf(suffix, sizeof(suffix), "\nca_generation=%" PRIu64, gen);
        h = fnv1a64_more(h, suffix, (size_t)n);
    }
    snprintf(cfg->version, sizeof(cfg->version), "%016" PRIx64, h);
    cfg->ca_generation = gen;
}

char *mesh_proxy_config_body(const struct mesh_proxy_config *cfg, const char *proxy_id)
{
    json_t *id = json_string(proxy_id ? proxy_id : "");
    char *id_text = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
    json_decref(id);
    if (!id_text)
        return NULL;
    char *body = xasprintf("{\"proxy\": %s, \"version\": \"%s\", \"ca_generation\": %" PRIu64
                           ", \"resources\": %s}",
                           id_text, cfg->version, cfg->ca_generation,
                           cfg->resources_json ? cfg->resources_json : "[]");
    free(id_text);
    return body;
}
