/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of what sidecar and gateway modes add to meshproxy: the Kubernetes-style aliases
 * of VirtualService hosts, the inbound listener's fixed snapshot, the JSON config dump that
 * meshctl proxy-config reads, publication without workers, and proxy ids. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "proxy/control.h"
#include "proxy/proxy.h"
#include "proxy/snapshot.h"

static struct mesh_snapshot *build(const char *yaml)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    assert_int_equal(mesh_parse_documents(yaml, strlen(yaml), "t.yaml", &res, &n, &diags), MESH_OK);
    struct mesh_snapshot *s = NULL;
    char *why = NULL;
    assert_int_equal(mesh_snapshot_build(res, n, 1, &s, &why), MESH_OK);
    mesh_resource_list_free(res, n);
    return s;
}

static const char *vhost_of(const struct mesh_snapshot *s, const char *host)
{
    const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr(host));
    return vh ? vh->name : "(none)";
}

#define SVC(name, addr, extra)                                                                     \
    "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: " name extra "}\n"          \
    "spec: {endpoints: [\"" addr "\"]}\n---\n"

#define VS(name, ns, hosts, dest)                                                                  \
    "apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: " name               \
    ", namespace: " ns "}\nspec:\n  hosts: " hosts "\n"                                            \
    "  http_routes: [{destinations: [{host: " dest "}]}]\n---\n"

static void test_short_vs_host_answers_to_every_kubernetes_spelling(void **state)
{
    (void)state;
    struct mesh_snapshot *s = build(SVC("payment-v1", "127.0.0.1:1", "")
                                        VS("payment", "default", "[payment]", "payment-v1"));
    const char *names[] = {"payment",
                           "payment.default",
                           "payment.default.svc",
                           "payment.default.svc.cluster.local",
                           "payment:8080",
                           "PAYMENT.default.svc:80"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(vhost_of(s, names[i]), "payment.default");
    /* A Service is still reachable by its own names, with or without a port. */
    assert_string_equal(vhost_of(s, "payment-v1"), "payment-v1.default");
    assert_string_equal(vhost_of(s, "payment-v1.default.svc:9000"), "payment-v1.default");
    assert_string_equal(vhost_of(s, "payment.other"), "(none)");
    assert_string_equal(vhost_of(s, "payment.default.svc.example"), "(none)");
    /* The dump lists every host that leads to the virtual host, sorted. */
    const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr("payment"));
    assert_int_equal(vh->hosts.len, 4);
    assert_string_equal(vh->hosts.items[0], "payment");
    assert_string_equal(vh->hosts.items[3], "payment.default.svc.cluster.local");
    mesh_snapshot_unref(s);
}

static void test_fqdn_vs_host_and_dns_names(void **state)
{
    (void)state;
    struct mesh_snapshot *s = build(
        SVC("a", "127.0.0.1:1", "") VS("cart", "shop", "[cart.shop.svc.cluster.local]", "a.default")
            VS("pay", "default", "[payment.example.com, example.com]", "a"));
    assert_string_equal(vhost_of(s, "cart"), "cart.shop");
    assert_string_equal(vhost_of(s, "cart.shop"), "cart.shop");
    assert_string_equal(vhost_of(s, "cart.shop.svc"), "cart.shop");
    /* A DNS name is only itself: "example.com" is not name "example" of namespace "com". */
    assert_string_equal(vhost_of(s, "payment.example.com"), "pay.default");
    assert_string_equal(vhost_of(s, "payment"), "(none)");
    assert_string_equal(vhost_of(s, "example.com.svc"), "(none)");
    assert_string_equal(vhost_of(s, "example"), "(none)");
    mesh_snapshot_unref(s);
}

static void test_literal_host_beats_another_vs_alias(void **state)
{
    (void)state;
    /* first's alias payment.default must not take the host second names literally, nor may a
     * Service's own name take a VirtualService's alias. */
    struct mesh_snapshot *s =
        build(SVC("payment", "127.0.0.1:1", "") VS("first", "default", "[payment]", "payment")
                  VS("second", "default", "[payment.default]", "payment"));
    assert_string_equal(vhost_of(s, "payment"), "first.default");
    assert_string_equal(vhost_of(s, "payment.default"), "second.default");
    assert_string_equal(vhost_of(s, "payment.default.svc"), "first.default");
    mesh_snapshot_unref(s);
}

static void test_inbound_snapshot_sends_everything_to_the_app(void **state)
{
    (void)state;
    struct mesh_snapshot *s = NULL;
    char *why = NULL;
    assert_int_equal(
        mesh_snapshot_build_inbound("payment-v1", "default", "127.0.0.1:18081", &s, &why), MESH_OK);
    const char *hosts[] = {"", "payment-v1", "anything.example.com:443", "10.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr(hosts[i]));
        assert_non_null(vh);
        struct mesh_h1_message m = {0};
        m.method = mesh_slice_cstr("POST");
        m.path = mesh_slice_cstr("/any/path");
        const struct mesh_route_rt *rt = mesh_vhost_match(vh, &m);
        assert_non_null(rt);
        assert_string_equal(rt->name, "inbound");
        assert_int_equal(rt->n_dests, 1);
        assert_non_null(rt->dests[0].cluster);
        assert_string_equal(rt->dests[0].cluster->name, "inbound|payment-v1");
        assert_int_equal(rt->dests[0].cluster->n_endpoints, 1);
        assert_string_equal(rt->dests[0].cluster->endpoints[0].name, "127.0.0.1:18081");
        assert_int_equal(rt->retry_attempts, 1);
        assert_int_equal(rt->retry_on, MESH_RETRY_ON_CONNECT_FAILURE);
    }
    /* Its metrics are labelled with the cluster's name. */
    assert_string_equal(s->clusters[0].state->service, "inbound|payment-v1");
    mesh_snapshot_unref(s);

    assert_int_equal(mesh_snapshot_build_inbound("x", "default", "not an address", &s, &why),
                     MESH_E_INVALID);
    assert_null(s);
    assert_non_null(why);
    assert_non_null(strstr(why, "inbound|x"));
    free(why);
}

static void test_publish_without_workers_swaps_and_frees(void **state)
{
    (void)state;
    struct mesh_proxy p = {0};
    pthread_mutex_init(&p.publish_lock, NULL);
    struct mesh_snapshot *a = build(SVC("a", "127.0.0.1:1", ""));
    struct mesh_snapshot *b = build(SVC("b", "127.0.0.1:2", ""));
    atomic_init(&p.current, a);
    mesh_snapshot_ref(a); /* keep a to look at it after the swap */
    mesh_proxy_publish(&p, b);
    assert_ptr_equal(atomic_load(&p.current), b);
    assert_int_equal(atomic_load(&a->refs), 1); /* the proxy's reference is gone */
    mesh_snapshot_unref(a);
    mesh_snapshot_unref(b);
    pthread_mutex_destroy(&p.publish_lock);
}

static json_t *find_by(json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        json_t *v = json_object_get(item, key);
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
            return item;
    }
    return NULL;
}

static const char dump_config[] =
    "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: payment-v1}\n"
    "spec: {endpoints: [{address: \"127.0.0.1:1\", labels: {version: v1}}], "
    "load_balancer: round_robin}\n---\n"
    "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: payment-v2}\n"
    "spec: {endpoints: [\"127.0.0.1:2\"]}\n---\n"
    "apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: payment}\n"
    "spec:\n  hosts: [payment]\n  http_routes:\n"
    "  - name: canary\n    matches: [{path: {prefix: /v2/}, headers: {x-user: {exact: ann}}, "
    "method: GET}]\n    destinations: [{host: payment-v2}]\n"
    "    retries: {attempts: 2, per_try_timeout: 250ms, retry_on: [5xx]}\n"
    "  - name: primary\n    timeout: 2s\n"
    "    destinations: [{host: payment-v1, weight: 90}, {host: payment-v2, weight: 10}]\n---\n"
    "apiVersion: mesh.clusterdb.io/v1\nkind: CircuitBreaker\nmetadata: {name: cb}\n"
    "spec: {service: payment-v1, max_requests: 7, detection: {consecutive_errors: 3}}\n---\n"
    "apiVersion: mesh.clusterdb.io/v1\nkind: FaultInjection\nmetadata: {name: fi}\n"
    "spec: {service: payment-v2, abort: {http_status: 503, percentage: 5}}\n";

static void test_json_dump_shows_routes_clusters_endpoints(void **state)
{
    (void)state;
    struct mesh_proxy p = {0};
    p.opt.mode = MESH_PROXY_SIDECAR;
    p.opt.id = "orders.default-1";
    p.opt.service = "orders";
    p.opt.ns = "default";
    p.opt.control_url = "http://127.0.0.1:15010";
    p.opt.route_timeout_ms = 15000;
    p.addrs[MESH_LISTENER_ROUTER].enabled = true;
    snprintf(p.addrs[MESH_LISTENER_ROUTER].text, sizeof(p.addrs[0].text), "127.0.0.1:15001");
    struct mesh_snapshot *s = build(dump_config);
    snprintf(s->version_text, sizeof(s->version_text), "9f1c0a7e3b2d4c11");
    s->from_control = true;
    char *why = NULL;
    assert_int_equal(
        mesh_snapshot_build_inbound("orders", "default", "127.0.0.1:9", &p.inbound, &why), MESH_OK);
    /* One request in flight on payment-v1's endpoint, as a worker counts it. */
    atomic_fetch_add(&s->clusters[0].state->active[0], 1);

    struct mesh_strbuf out;
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_config_dump_json(&p, s, &out), MESH_OK);
    json_error_t jerr;
    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "mode")), "sidecar");
    json_t *cfg = json_object_get(root, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "version")), "9f1c0a7e3b2d4c11");
    assert_string_equal(json_string_value(json_object_get(cfg, "source")), "meshd");
    assert_true(json_is_null(json_object_get(root, "control"))); /* no control thread here */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "listeners"), "outbound")),
        "127.0.0.1:15001");

    json_t *routes = json_object_get(root, "routes");
    json_t *canary = find_by(routes, "name", "canary");
    assert_non_null(canary);
    assert_string_equal(json_string_value(json_object_get(canary, "virtual_host")),
                        "payment.default");
    assert_int_equal(json_array_size(json_object_get(canary, "hosts")), 4);
    json_t *m0 = json_array_get(json_object_get(canary, "matches"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m0, "path"), "prefix")),
                        "/v2/");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(m0, "headers"), "x-user"), "exact")),
                        "ann");
    assert_string_equal(json_string_value(json_object_get(m0, "method")), "GET");
    json_t *retries = json_object_get(canary, "retries");
    assert_int_equal(json_integer_value(json_object_get(retries, "attempts")), 2);
    assert_int_equal(json_integer_value(json_object_get(retries, "per_try_timeout_ms")), 250);
    assert_string_equal(json_string_value(json_array_get(json_object_get(retries, "retry_on"), 0)),
                        "5xx");
    assert_int_equal(json_integer_value(json_object_get(canary, "timeout_ms")), 15000);
    json_t *primary = find_by(routes, "name", "primary");
    assert_int_equal(json_integer_value(json_object_get(primary, "timeout_ms")), 2000);
    assert_int_equal(json_array_size(json_object_get(primary, "matches")), 0);
    json_t *d1 = json_array_get(json_object_get(primary, "destinations"), 1);
    assert_string_equal(json_string_value(json_object_get(d1, "host")), "payment-v2");
    assert_string_equal(json_string_value(json_object_get(d1, "service")), "payment-v2.default");
    assert_int_equal(json_integer_value(json_object_get(d1, "weight")), 10);

    json_t *clusters = json_object_get(root, "clusters");
    json_t *v1 = find_by(clusters, "name", "payment-v1");
    assert_string_equal(json_string_value(json_object_get(v1, "lb_policy")), "round_robin");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v1, "circuit_breaker"), "max_requests")),
        7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v1, "outlier_detection"),
                                                        "consecutive_errors")),
                     3);
    json_t *v2 = find_by(clusters, "name", "payment-v2");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v2, "fault"), "abort_status")), 503);
    assert_true(json_is_null(json_object_get(v2, "outlier_detection")));
    json_t *in = find_by(clusters, "name", "inbound|orders");
    assert_string_equal(json_string_value(json_object_get(in, "direction")), "inbound");

    json_t *endpoints = json_object_get(root, "endpoints");
    json_t *e1 = find_by(endpoints, "address", "127.0.0.1:1");
    assert_string_equal(json_string_value(json_object_get(e1, "cluster")), "payment-v1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e1, "labels"), "version")), "v1");
    assert_string_equal(json_string_value(json_object_get(e1, "health")), "healthy");
    assert_int_equal(json_integer_value(json_object_get(e1, "active_requests")), 1);
    json_t *app = find_by(endpoints, "address", "127.0.0.1:9");
    assert_string_equal(json_string_value(json_object_get(app, "direction")), "inbound");

    atomic_fetch_sub(&s->clusters[0].state->active[0], 1);
    json_decref(root);
    mesh_strbuf_free(&out);
    mesh_snapshot_unref(s);
    mesh_snapshot_unref(p.inbound);
}

static void test_proxy_ids(void **state)
{
    (void)state;
    assert_true(mesh_control_id_valid("payment-v1.default-4242"));
    assert_true(mesh_control_id_valid("0gw"));
    assert_false(mesh_control_id_valid(""));
    assert_false(mesh_control_id_valid(NULL));
    assert_false(mesh_control_id_valid("-x"));
    assert_false(mesh_control_id_valid("Payment"));
    assert_false(mesh_control_id_valid("a/b"));
    char long_id[65];
    memset(long_id, 'a', 64);
    long_id[64] = '\0';
    assert_false(mesh_control_id_valid(long_id));
    long_id[63] = '\0';
    assert_true(mesh_control_id_valid(long_id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_vs_host_answers_to_every_kubernetes_spelling),
        cmocka_unit_test(test_fqdn_vs_host_and_dns_names),
        cmocka_unit_test(test_literal_host_beats_another_vs_alias),
        cmocka_unit_test(test_inbound_snapshot_sends_everything_to_the_app),
        cmocka_unit_test(test_publish_without_workers_swaps_and_frees),
        cmocka_unit_test(test_json_dump_shows_routes_clusters_endpoints),
        cmocka_unit_test(test_proxy_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
