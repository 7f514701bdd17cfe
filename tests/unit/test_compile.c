/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of meshd's snapshot compiler: what a sidecar and a gateway get, registered
 * endpoints merged into Services (and Services made for registered-only services), canonical
 * order and stable versions, output that meshproxy decodes and compiles, and the trace
 * collector's ObservabilityConfig for every proxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "control/compile.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/model.h"
#include "proxy/snapshot.h"

#define DOC "apiVersion: mesh.clusterdb.io/v1\n"

/* Services, a sidecar-only VS, a gateway VS, a VS for both, policies and configs. */
static const char *const world_yaml =
    DOC "kind: Service\nmetadata: {name: payment-v1}\n"
        "spec: {endpoints: [{address: \"127.0.0.1:18081\", labels: {zone: a}}]}\n"
        "---\n" DOC "kind: Service\nmetadata: {name: payment-v2}\nspec: {}\n"
        "---\n" DOC "kind: VirtualService\nmetadata: {name: payment-service}\n"
        "spec:\n  hosts: [payment.example.com]\n  gateways: [external-gateway]\n"
        "  http_routes:\n  - destinations: [{host: payment-v1, weight: 90},"
        " {host: payment-v2.default.svc, weight: 10}]\n"
        "---\n" DOC "kind: VirtualService\nmetadata: {name: payment-internal}\n"
        "spec:\n  hosts: [payment]\n"
        "  http_routes:\n  - destinations: [{host: payment-v1.default}]\n"
        "---\n" DOC "kind: VirtualService\nmetadata: {name: both}\n"
        "spec:\n  hosts: [both.example.com]\n  gateways: [mesh, external-gateway]\n"
        "  http_routes:\n  - destinations: [{host: orders}]\n"
        "---\n" DOC "kind: VirtualService\nmetadata: {name: other-gw, namespace: shop}\n"
        "spec:\n  hosts: [shop.example.com]\n  gateways: [external-gateway]\n"
        "  http_routes:\n  - destinations: [{host: payment-v1.default}]\n"
        "---\n" DOC "kind: CircuitBreaker\nmetadata: {name: cb}\n"
        "spec: {service: payment-service, max_connections: 10}\n"
        "---\n" DOC "kind: FaultInjection\nmetadata: {name: fi}\n"
        "spec: {service: payment-v1, delay: 1s}\n"
        "---\n" DOC "kind: SecurityPolicy\nmetadata: {name: sp}\nspec: {mtls: {mode: strict}}\n"
        "---\n" DOC "kind: ObservabilityConfig\nmetadata: {name: obs}\n"
        "spec: {prometheus_endpoint: \"http://prometheus:9090\"}\n"
        "---\n" DOC "kind: KubernetesConfig\nmetadata: {name: kube}\nspec: {context: prod}\n"
        "---\nmesh: {provider: native}\n";

struct world {
    struct mesh_resource **res;
    size_t n;
    struct mesh_registry *reg;
};

static void world_load(struct world *w, const char *yaml)
{
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_parse_documents(yaml, strlen(yaml), "w.yaml", &w->res, &w->n, &diags);
    if (err != MESH_OK) {
        char *text = mesh_model_diags_text(&diags);
        fail_msg("world does not parse: %s", text);
    }
    w->reg = mesh_registry_new(3000);
}

static void world_free(struct world *w)
{
    mesh_resource_list_free(w->res, w->n);
    mesh_registry_free(w->reg);
}

static void add_sidecar(struct world *w, const char *id, const char *service, const char *ns,
                        const char *address, const char *version)
{
    struct mesh_labels labels = {0};
    if (version)
        mesh_labels_set(&labels, "version", version);
    struct mesh_proxy_registration r = {.id = id,
                                        .role = MESH_PROXY_SIDECAR,
                                        .service = service,
                                        .ns = ns,
                                        .address = address,
                                        .labels = &labels};
    bool created;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(w->reg, &r, 1, 1, &created, &why), MESH_OK);
    mesh_labels_clear(&labels);
}

static const struct mesh_proxy_entry *add_gateway(struct world *w, const char *id, const char *name,
                                                  const char *ns)
{
    struct mesh_proxy_registration r = {
        .id = id, .role = MESH_PROXY_GATEWAY, .gateway = name, .ns = ns};
    bool created;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(w->reg, &r, 1, 1, &created, &why), MESH_OK);
    return mesh_registry_find(w->reg, id);
}

static const struct mesh_proxy_entry *me(struct world *w)
{
    const struct mesh_proxy_entry *e = mesh_registry_find(w->reg, "me");
    if (!e) {
        add_sidecar(w, "me", "orders", NULL, "127.0.0.1:16100", NULL);
        e = mesh_registry_find(w->reg, "me");
    }
    return e;
}

static void compile(struct world *w, const struct mesh_proxy_entry *proxy,
                    struct mesh_proxy_config *cfg)
{
    assert_int_equal(mesh_compile_proxy_config((const struct mesh_resource *const *)w->res, w->n,
                                               w->reg, proxy, cfg),
                     MESH_OK);
    assert_non_null(cfg->resources_json);
    assert_int_equal(strlen(cfg->version), MESH_CONFIG_VERSION_LEN);
}

/* The compiled documents, decoded back through the model as meshproxy would. */
struct decoded {
    struct mesh_resource **res;
    size_t n;
};

static void decode(const struct mesh_proxy_config *cfg, struct decoded *out)
{
    json_error_t jerr;
    json_t *arr = json_loads(cfg->resources_json, 0, &jerr);
    if (!arr)
        fail_msg("resources_json is not JSON: %s", jerr.text);
    assert_true(json_is_array(arr));
    out->n = json_array_size(arr);
    out->res = calloc(out->n ? out->n : 1, sizeof(*out->res));
    for (size_t i = 0; i < out->n; i++) {
        char *doc = json_dumps(json_array_get(arr, i), 0);
        char *why = NULL;
        if (mesh_model_from_json(doc, &out->res[i], &why) != MESH_OK)
            fail_msg("document %zu does not decode: %s", i, why);
        free(doc);
    }
    json_decref(arr);
}

static void decoded_free(struct decoded *d)
{
    mesh_resource_list_free(d->res, d->n);
}

/* "Kind ns/name" of every document, joined by spaces. */
static char *keys(const struct decoded *d)
{
    size_t cap = 4096, len = 0;
    char *s = calloc(1, cap);
    for (size_t i = 0; i < d->n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s %s/%s", i ? " " : "",
                                mesh_kind_name(d->res[i]->kind), mesh_resource_namespace(d->res[i]),
                                d->res[i]->name);
    return s;
}

static const struct mesh_service *service(const struct decoded *d, const char *name, const char *ns)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->res[i]->kind == MESH_KIND_SERVICE && strcmp(d->res[i]->name, name) == 0 &&
            strcmp(mesh_resource_namespace(d->res[i]), ns) == 0)
            return (const struct mesh_service *)d->res[i];
    return NULL;
}

static const char *label(const struct mesh_labels *l, const char *key)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

static void test_sidecar_gets_mesh_virtual_services_and_policies(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    struct mesh_proxy_config cfg;
    compile(&w, me(&w), &cfg);
    struct decoded d;
    decode(&cfg, &d);
    char *k = keys(&d);
    /* Kind name order, then namespace, then name; observability and kube configs left out; the
     * sidecar's own registered service (orders) appears as a Service. */
    assert_string_equal(k, "CircuitBreaker default/cb FaultInjection default/fi "
                           "MeshConfig default/native SecurityPolicy default/sp "
                           "Service default/orders Service default/payment-v1 "
                           "Service default/payment-v2 VirtualService default/both "
                           "VirtualService default/payment-internal");
    free(k);
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);
    assert_null(cfg.resources_json);
    world_free(&w);
}

static void test_gateway_gets_its_virtual_services_only(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    const struct mesh_proxy_entry *gw = add_gateway(&w, "gw-1", "external-gateway", NULL);
    struct mesh_proxy_config cfg;
    compile(&w, gw, &cfg);
    struct decoded d;
    decode(&cfg, &d);
    char *k = keys(&d);
    /* shop/other-gw names "external-gateway" of its own namespace, shop: not this one. A
     * gateway is no endpoint. */
    assert_string_equal(k, "CircuitBreaker default/cb FaultInjection default/fi "
                           "MeshConfig default/native SecurityPolicy default/sp "
                           "Service default/payment-v1 Service default/payment-v2 "
                           "VirtualService default/both VirtualService default/payment-service");
    free(k);
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);

    /* The same gateway registered in shop serves shop/other-gw only. */
    gw = add_gateway(&w, "gw-2", "external-gateway", "shop");
    compile(&w, gw, &cfg);
    decode(&cfg, &d);
    k = keys(&d);
    assert_non_null(strstr(k, "VirtualService shop/other-gw"));
    assert_null(strstr(k, "VirtualService default/"));
    free(k);
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);

    /* Another gateway's name matches nothing. */
    gw = add_gateway(&w, "gw-3", "internal-gateway", NULL);
    compile(&w, gw, &cfg);
    assert_null(strstr(cfg.resources_json, "\"VirtualService\""));
    mesh_proxy_config_clear(&cfg);
    world_free(&w);
}

static void test_gateway_namespace_slash_name_form(void **state)
{
    (void)state;
    /* Built in code: NAMESPACE/NAME refers to a gateway in another namespace. */
    struct mesh_virtual_service *cross = mesh_virtual_service_new("cross", "shop");
    mesh_string_list_add(&cross->hosts, "cross.example.com");
    mesh_string_list_add(&cross->gateways, "edge/external-gateway");
    struct mesh_http_route *r = mesh_virtual_service_add_route(cross, "r");
    mesh_http_route_add_destination(r, "payment-v1.default", MESH_UNSET);
    struct mesh_virtual_service *local = mesh_virtual_service_new("local", "shop");
    mesh_string_list_add(&local->hosts, "local.example.com");
    mesh_string_list_add(&local->gateways, "external-gateway");
    struct mesh_virtual_service *wrong = mesh_virtual_service_new("wrong", "edge");
    mesh_string_list_add(&wrong->hosts, "wrong.example.com");
    mesh_string_list_add(&wrong->gateways, "shop/external-gateway");

    struct mesh_proxy_entry edge = {
        .role = MESH_PROXY_GATEWAY, .gateway = "external-gateway", .ns = "edge"};
    struct mesh_proxy_entry sidecar = {.role = MESH_PROXY_SIDECAR, .service = "x", .ns = "edge"};
    assert_true(mesh_compile_vs_serves(cross, &edge));
    assert_false(mesh_compile_vs_serves(local, &edge));
    assert_false(mesh_compile_vs_serves(wrong, &edge));
    assert_false(mesh_compile_vs_serves(cross, &sidecar));

    const struct mesh_resource *res[] = {&cross->res, &local->res, &wrong->res};
    struct mesh_proxy_config cfg;
    assert_int_equal(mesh_compile_proxy_config(res, 3, NULL, &edge, &cfg), MESH_OK);
    assert_non_null(strstr(cfg.resources_json, "\"cross\""));
    assert_null(strstr(cfg.resources_json, "\"local\""));
    assert_null(strstr(cfg.resources_json, "\"wrong\""));
    mesh_proxy_config_clear(&cfg);

    assert_true(mesh_compile_gateway_ref_matches("edge/gw", "any", "gw", "edge"));
    assert_true(mesh_compile_gateway_ref_matches("gw", "edge", "gw", "edge"));
    assert_false(mesh_compile_gateway_ref_matches("gw", "shop", "gw", "edge"));
    assert_false(mesh_compile_gateway_ref_matches("edg/gw", "any", "gw", "edge"));
    assert_false(mesh_compile_gateway_ref_matches("edgex/gw", "any", "gw", "edge"));
    assert_false(mesh_compile_gateway_ref_matches("edge/gw2", "edge", "gw", "edge"));
    assert_false(mesh_compile_gateway_ref_matches("/gw", "edge", "gw", "edge"));
    mesh_virtual_service_free(cross);
    mesh_virtual_service_free(local);
    mesh_virtual_service_free(wrong);
}

static void test_registered_endpoints_merge_into_services(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    add_sidecar(&w, "payment-v1-b", "payment-v1", NULL, "127.0.0.1:16006", "v1");
    /* The static endpoint's address, registered again: kept once, with the static labels. */
    add_sidecar(&w, "payment-v1-a", "payment-v1", NULL, "127.0.0.1:18081", "v1");
    add_sidecar(&w, "payment-v1-c", "payment-v1", "default", "127.0.0.1:16007", "v1");
    /* Two sidecars on one address: one endpoint. */
    add_sidecar(&w, "payment-v1-d", "payment-v1", NULL, "127.0.0.1:16007", "v9");
    /* Another namespace's payment-v1 is another service. */
    add_sidecar(&w, "payment-v1-shop", "payment-v1", "shop", "127.0.0.1:16008", NULL);
    add_sidecar(&w, "payment-v2-a", "payment-v2", NULL, "127.0.0.1:16009", "v2");
    add_gateway(&w, "gw", "external-gateway", NULL);

    struct mesh_proxy_config cfg;
    compile(&w, me(&w), &cfg);
    struct decoded d;
    decode(&cfg, &d);
    const struct mesh_service *p1 = service(&d, "payment-v1", "default");
    assert_non_null(p1);
    assert_int_equal(p1->n_endpoints, 3);
    /* Static ones first, then the registered ones by proxy id. */
    assert_string_equal(p1->endpoints[0].address, "127.0.0.1:18081");
    assert_string_equal(label(&p1->endpoints[0].labels, "zone"), "a");
    assert_null(label(&p1->endpoints[0].labels, "version"));
    /* A sidecar fronts it: it gains the mark that calls to it may use mTLS, as registered
     * endpoints have. */
    assert_string_equal(label(&p1->endpoints[0].labels, MESH_LABEL_SIDECAR), "true");
    assert_string_equal(p1->endpoints[1].address, "127.0.0.1:16006");
    assert_string_equal(label(&p1->endpoints[1].labels, "version"), "v1");
    assert_string_equal(label(&p1->endpoints[1].labels, MESH_LABEL_SIDECAR), "true");
    assert_string_equal(p1->endpoints[2].address, "127.0.0.1:16007");
    assert_string_equal(label(&p1->endpoints[2].labels, "version"), "v1");
    assert_string_equal(label(&p1->endpoints[2].labels, MESH_LABEL_SIDECAR), "true");

    const struct mesh_service *shop = service(&d, "payment-v1", "shop");
    assert_non_null(shop);
    assert_int_equal(shop->n_endpoints, 1);
    assert_string_equal(shop->endpoints[0].address, "127.0.0.1:16008");
    assert_int_equal(shop->endpoints[0].labels.len, 1);
    assert_string_equal(label(&shop->endpoints[0].labels, MESH_LABEL_SIDECAR), "true");

    const struct mesh_service *p2 = service(&d, "payment-v2", "default");
    assert_non_null(p2);
    assert_int_equal(p2->n_endpoints, 1);
    assert_string_equal(p2->endpoints[0].address, "127.0.0.1:16009");
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);

    /* The stored resources were not touched: copies carry the added endpoints. */
    for (size_t i = 0; i < w.n; i++) {
        if (w.res[i]->kind == MESH_KIND_SERVICE && strcmp(w.res[i]->name, "payment-v1") == 0)
            assert_int_equal(((struct mesh_service *)w.res[i])->n_endpoints, 1);
        if (w.res[i]->kind == MESH_KIND_SERVICE && strcmp(w.res[i]->name, "payment-v2") == 0)
            assert_int_equal(((struct mesh_service *)w.res[i])->n_endpoints, 0);
    }
    world_free(&w);
}

static void test_registered_only_services_are_synthesised(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    add_sidecar(&w, "zeta-2", "zeta", NULL, "127.0.0.1:16202", "v2");
    add_sidecar(&w, "zeta-1", "zeta", NULL, "127.0.0.1:16201", "v1");
    add_sidecar(&w, "alpha", "alpha", "apps", "127.0.0.1:16203", NULL);
    struct mesh_proxy_config cfg;
    compile(&w, me(&w), &cfg);
    struct decoded d;
    decode(&cfg, &d);
    char *k = keys(&d);
    assert_non_null(strstr(k, "SecurityPolicy default/sp Service apps/alpha "
                              "Service default/orders Service default/payment-v1 "
                              "Service default/payment-v2 Service default/zeta VirtualService"));
    free(k);
    const struct mesh_service *zeta = service(&d, "zeta", "default");
    assert_int_equal(zeta->n_endpoints, 2);
    assert_string_equal(zeta->endpoints[0].address, "127.0.0.1:16201");
    assert_string_equal(label(&zeta->endpoints[0].labels, "version"), "v1");
    assert_string_equal(zeta->endpoints[1].address, "127.0.0.1:16202");
    assert_null(zeta->protocol);
    assert_int_equal(zeta->res.labels.len, 0);
    const struct mesh_service *orders = service(&d, "orders", "default");
    assert_int_equal(orders->n_endpoints, 1);
    assert_string_equal(orders->endpoints[0].address, "127.0.0.1:16100");
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);

    /* With no resources at all, a registry alone still makes a config. */
    struct mesh_proxy_config only;
    assert_int_equal(mesh_compile_proxy_config(NULL, 0, w.reg, me(&w), &only), MESH_OK);
    decode(&only, &d);
    assert_int_equal(d.n, 3);
    decoded_free(&d);
    mesh_proxy_config_clear(&only);
    world_free(&w);
}

static void test_empty_config(void **state)
{
    (void)state;
    struct mesh_proxy_entry sidecar = {.role = MESH_PROXY_SIDECAR, .service = "x"};
    struct mesh_proxy_config cfg;
    assert_int_equal(mesh_compile_proxy_config(NULL, 0, NULL, &sidecar, &cfg), MESH_OK);
    assert_string_equal(cfg.resources_json, "[]");
    assert_string_equal(cfg.version, "09612b07b5ecb5a5"); /* FNV-1a 64 of "[]" */
    mesh_proxy_config_clear(&cfg);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void test_same_input_same_bytes_and_version(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    add_sidecar(&w, "payment-v1-b", "payment-v1", NULL, "127.0.0.1:16006", "v1");
    add_sidecar(&w, "zeta-1", "zeta", NULL, "127.0.0.1:16201", "v1");
    struct mesh_proxy_config a, b;
    compile(&w, me(&w), &a);
    char want[17];
    snprintf(want, sizeof(want), "%016llx", (unsigned long long)fnv1a(a.resources_json));
    assert_string_equal(a.version, want);

    /* Reversed input order: the same bytes. */
    for (size_t i = 0; i < w.n / 2; i++) {
        struct mesh_resource *t = w.res[i];
        w.res[i] = w.res[w.n - 1 - i];
        w.res[w.n - 1 - i] = t;
    }
    compile(&w, me(&w), &b);
    assert_string_equal(a.resources_json, b.resources_json);
    assert_string_equal(a.version, b.version);
    mesh_proxy_config_clear(&b);

    /* Heartbeats and acks change nothing. */
    assert_int_equal(mesh_registry_heartbeat(w.reg, "payment-v1-b", 99, 99), MESH_OK);
    assert_int_equal(mesh_registry_ack(w.reg, "payment-v1-b", a.version), MESH_OK);
    compile(&w, me(&w), &b);
    assert_string_equal(a.version, b.version);
    mesh_proxy_config_clear(&b);

    /* A new endpoint changes the version; removing it brings the old one back. */
    add_sidecar(&w, "payment-v1-c", "payment-v1", NULL, "127.0.0.1:16007", "v1");
    compile(&w, me(&w), &b);
    assert_string_not_equal(a.version, b.version);
    mesh_proxy_config_clear(&b);
    assert_int_equal(mesh_registry_remove(w.reg, "payment-v1-c"), MESH_OK);
    compile(&w, me(&w), &b);
    assert_string_equal(a.version, b.version);
    mesh_proxy_config_clear(&b);

    /* A changed resource changes it too. */
    for (size_t i = 0; i < w.n; i++)
        if (w.res[i]->kind == MESH_KIND_CIRCUIT_BREAKER)
            mesh_labels_set(&w.res[i]->labels, "team", "pay");
    compile(&w, me(&w), &b);
    assert_string_not_equal(a.version, b.version);
    mesh_proxy_config_clear(&b);
    /* resource_version and generation are bookkeeping, not content. */
    for (size_t i = 0; i < w.n; i++)
        if (w.res[i]->kind == MESH_KIND_CIRCUIT_BREAKER)
            mesh_labels_clear(&w.res[i]->labels);
    for (size_t i = 0; i < w.n; i++) {
        w.res[i]->resource_version = 1000 + i;
        w.res[i]->generation = 7;
    }
    compile(&w, me(&w), &b);
    assert_string_equal(a.resources_json, b.resources_json);
    mesh_proxy_config_clear(&b);
    mesh_proxy_config_clear(&a);
    world_free(&w);
}

static void test_body(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    struct mesh_proxy_config cfg;
    compile(&w, me(&w), &cfg);
    char *body = mesh_proxy_config_body(&cfg, "orders.default-42");
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "proxy")), "orders.default-42");
    assert_string_equal(json_string_value(json_object_get(root, "version")), cfg.version);
    json_t *resources = json_object_get(root, "resources");
    assert_true(json_is_array(resources));
    assert_int_equal(json_array_size(resources), 9);
    assert_string_equal(json_string_value(json_object_get(json_array_get(resources, 0), "kind")),
                        "CircuitBreaker");
    json_decref(root);
    free(body);
    mesh_proxy_config_clear(&cfg);
    world_free(&w);
}

static const struct mesh_cluster *host_cluster(const struct mesh_snapshot *s, const char *host)
{
    const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr(host));
    if (!vh)
        fail_msg("no virtual host for %s", host);
    assert_true(vh->n_routes > 0);
    return vh->routes[0].dests[0].cluster;
}

static void test_output_builds_a_proxy_snapshot(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, world_yaml);
    add_sidecar(&w, "payment-v1-b", "payment-v1", NULL, "127.0.0.1:16006", "v1");
    add_sidecar(&w, "payment-v2-a", "payment-v2", NULL, "[::1]:16009", "v2");
    add_sidecar(&w, "zeta-1", "zeta", "apps", "127.0.0.1:16201", NULL);
    const struct mesh_proxy_entry *gw = add_gateway(&w, "gw", "external-gateway", NULL);
    const struct mesh_proxy_entry *proxies[] = {me(&w), gw};

    for (size_t p = 0; p < 2; p++) {
        struct mesh_proxy_config cfg;
        compile(&w, proxies[p], &cfg);
        struct decoded d;
        decode(&cfg, &d);
        struct mesh_snapshot *snap = NULL;
        char *why = NULL;
        if (mesh_snapshot_build(d.res, d.n, 1, &snap, &why) != MESH_OK)
            fail_msg("snapshot does not build: %s", why);

        /* Every way a destination names a Service reaches its cluster, with the merged
         * endpoints. */
        const struct mesh_cluster *c = host_cluster(snap, "payment-v1.default.svc");
        assert_non_null(c);
        assert_string_equal(c->name, "payment-v1");
        assert_int_equal(c->n_endpoints, 2);
        assert_ptr_equal(host_cluster(snap, "payment-v1"), c);
        assert_ptr_equal(host_cluster(snap, "payment-v1.default"), c);
        const struct mesh_cluster *z = host_cluster(snap, "zeta.apps.svc");
        assert_non_null(z);
        assert_int_equal(z->n_endpoints, 1);
        assert_int_equal(host_cluster(snap, "payment-v2.default")->n_endpoints, 1);

        const struct mesh_vhost *vh =
            mesh_snapshot_find_vhost(snap, mesh_slice_cstr("payment.example.com"));
        const struct mesh_vhost *both =
            mesh_snapshot_find_vhost(snap, mesh_slice_cstr("both.example.com"));
        assert_non_null(both);
        assert_non_null(both->routes[0].dests[0].cluster); /* orders: registered only */
        if (p == 0) {
            assert_null(vh); /* gateway-only VirtualService */
            const struct mesh_vhost *internal =
                mesh_snapshot_find_vhost(snap, mesh_slice_cstr("payment"));
            assert_non_null(internal);
            assert_ptr_equal(internal->routes[0].dests[0].cluster, c);
        } else {
            assert_non_null(vh);
            assert_int_equal(vh->routes[0].n_dests, 2);
            assert_ptr_equal(vh->routes[0].dests[0].cluster, c);
            assert_non_null(vh->routes[0].dests[1].cluster); /* payment-v2.default.svc */
            assert_null(mesh_snapshot_find_vhost(snap, mesh_slice_cstr("payment")));
        }
        mesh_snapshot_unref(snap);

        /* The array also reads as one multi-document input, as a static config file does. */
        struct mesh_resource **res = NULL;
        size_t n = 0;
        struct mesh_diags diags = {0};
        assert_int_equal(mesh_parse_documents(cfg.resources_json, strlen(cfg.resources_json),
                                              "config", &res, &n, &diags),
                         MESH_OK);
        assert_int_equal(n, d.n);
        for (size_t i = 0; i < n; i++)
            assert_true(mesh_model_same_content(res[i], d.res[i]));
        mesh_resource_list_free(res, n);
        decoded_free(&d);
        mesh_proxy_config_clear(&cfg);
    }
    world_free(&w);
}

/* Proxies need the trace collector and the sampling rate: an ObservabilityConfig that names a
 * collector reaches every proxy, and the snapshot they build traces with the MeshConfig's rate;
 * one with only Prometheus or Grafana endpoints wakes none. */
static void test_trace_collector_reaches_proxies(void **state)
{
    (void)state;
    struct world w;
    world_load(&w, DOC "kind: ObservabilityConfig\nmetadata: {name: tracing}\n"
                       "spec: {jaeger_endpoint: \"http://127.0.0.1:4318\"}\n"
                       "---\n" DOC "kind: ObservabilityConfig\nmetadata: {name: obs}\n"
                       "spec: {prometheus_endpoint: \"http://prometheus:9090\"}\n"
                       "---\nmesh: {provider: native, telemetry: {sampling_rate: 10}}\n");
    const struct mesh_proxy_entry *gw = add_gateway(&w, "gw", "external-gateway", NULL);
    const struct mesh_proxy_entry *proxies[] = {me(&w), gw};
    for (size_t p = 0; p < 2; p++) {
        struct mesh_proxy_config cfg;
        compile(&w, proxies[p], &cfg);
        struct decoded d;
        decode(&cfg, &d);
        char *k = keys(&d);
        assert_non_null(strstr(k, "ObservabilityConfig default/tracing"));
        assert_null(strstr(k, "ObservabilityConfig default/obs"));
        free(k);
        struct mesh_snapshot *snap = NULL;
        char *why = NULL;
        if (mesh_snapshot_build(d.res, d.n, 1, &snap, &why) != MESH_OK)
            fail_msg("snapshot does not build: %s", why);
        assert_true(snap->trace.enabled);
        assert_string_equal(snap->trace.url, "http://127.0.0.1:4318/v1/traces");
        assert_true(snap->trace.sampling_rate == 10);
        mesh_snapshot_unref(snap);
        decoded_free(&d);
        mesh_proxy_config_clear(&cfg);
    }
    world_free(&w);

    /* Without a collector the snapshot does not trace. */
    world_load(&w, world_yaml);
    struct mesh_proxy_config cfg;
    compile(&w, me(&w), &cfg);
    struct decoded d;
    decode(&cfg, &d);
    struct mesh_snapshot *snap = NULL;
    char *why = NULL;
    assert_int_equal(mesh_snapshot_build(d.res, d.n, 1, &snap, &why), MESH_OK);
    assert_false(snap->trace.enabled);
    mesh_snapshot_unref(snap);
    decoded_free(&d);
    mesh_proxy_config_clear(&cfg);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sidecar_gets_mesh_virtual_services_and_policies),
        cmocka_unit_test(test_gateway_gets_its_virtual_services_only),
        cmocka_unit_test(test_gateway_namespace_slash_name_form),
        cmocka_unit_test(test_registered_endpoints_merge_into_services),
        cmocka_unit_test(test_registered_only_services_are_synthesised),
        cmocka_unit_test(test_empty_config),
        cmocka_unit_test(test_same_input_same_bytes_and_version),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_output_builds_a_proxy_snapshot),
        cmocka_unit_test(test_trace_collector_reaches_proxies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
