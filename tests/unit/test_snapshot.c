/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of snapshots: the route trie of large route tables picks exactly the route a plain
 * first-match scan picks; host lookup by exact name, wildcard and Service; shared cluster state
 * kept across rebuilds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
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

/* A VirtualService whose routes mix every indexable and non-indexable kind of path. */
static char *many_routes_yaml(void)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb,
                     "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: a}\n"
                     "spec: {endpoints: [\"127.0.0.1:1\"]}\n---\n"
                     "apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\n"
                     "metadata: {name: vs}\nspec:\n  hosts: [x.example.com]\n  http_routes:\n");
    const char *paths[] = {"/svc-1/*",
                           "{prefix: /svc-2/}",
                           "/svc-3",
                           "{regex: \"/r[0-9]+\"}",
                           "{prefix: /sv}",
                           "/api/v2/*",
                           "/api/v1/pay",
                           "/api/v1/*",
                           "/*",
                           "/api"};
    for (size_t i = 0; i < 40; i++)
        mesh_strbuf_printf(&sb,
                           "  - name: r%zu\n    matches: [{path: %s}]\n"
                           "    destinations: [{host: a}]\n",
                           i, paths[i % 10]);
    return mesh_strbuf_take(&sb);
}

static const struct mesh_route_rt *linear(const struct mesh_vhost *vh,
                                          const struct mesh_h1_message *m)
{
    struct mesh_vhost plain = *vh;
    plain.index = NULL;
    return mesh_vhost_match(&plain, m);
}

static void test_route_index_agrees_with_first_match_scan(void **state)
{
    (void)state;
    char *yaml = many_routes_yaml();
    struct mesh_snapshot *s = build(yaml);
    const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr("x.example.com"));
    assert_non_null(vh);
    assert_non_null(vh->index);
    const char *paths[] = {"/svc-1/a", "/svc-2/b",  "/svc-3",      "/svc-3/x",      "/r12",
                           "/svx",     "/api/v2/q", "/api/v1/pay", "/api/v1/other", "/api",
                           "/",        "/nothing",  "/api/",       "/svc-1",        ""};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct mesh_h1_message m = {0};
        m.method = mesh_slice_cstr("GET");
        m.path = mesh_slice_cstr(paths[i]);
        const struct mesh_route_rt *want = linear(vh, &m);
        const struct mesh_route_rt *got = mesh_vhost_match(vh, &m);
        if (want != got)
            print_error("path %s: want %s got %s\n", paths[i], want ? want->name : "none",
                        got ? got->name : "none");
        assert_ptr_equal(want, got);
    }
    mesh_snapshot_unref(s);
    free(yaml);
}

static void test_hosts_exact_wildcard_and_service_names(void **state)
{
    (void)state;
    struct mesh_snapshot *s =
        build("apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: pay}\n"
              "spec: {endpoints: [\"127.0.0.1:1\"]}\n---\n"
              "apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: w}\n"
              "spec:\n  hosts: [\"*.example.com\", api.example.com]\n"
              "  http_routes: [{destinations: [{host: pay}]}]\n");
    const struct mesh_vhost *w = mesh_snapshot_find_vhost(s, mesh_slice_cstr("API.example.com:80"));
    assert_non_null(w);
    assert_string_equal(w->name, "w.default");
    assert_ptr_equal(mesh_snapshot_find_vhost(s, mesh_slice_cstr("a.b.example.com")), w);
    assert_null(mesh_snapshot_find_vhost(s, mesh_slice_cstr("example.com")));
    const char *names[] = {"pay", "pay.default", "pay.default.svc",
                           "pay.default.svc.cluster.local"};
    for (size_t i = 0; i < 4; i++) {
        const struct mesh_vhost *vh = mesh_snapshot_find_vhost(s, mesh_slice_cstr(names[i]));
        assert_non_null(vh);
        assert_string_equal(vh->name, "pay.default");
    }
    mesh_snapshot_unref(s);
}

static const char two_services[] =
    "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: pay}\n"
    "spec: {endpoints: [\"127.0.0.1:1\", \"127.0.0.1:2\"]}\n---\n"
    "apiVersion: mesh.clusterdb.io/v1\nkind: CircuitBreaker\nmetadata: {name: pay}\n"
    "spec: {service: pay, max_requests: 7, detection: {consecutive_errors: 2}}\n";

static void test_reload_keeps_breaker_and_outlier_state(void **state)
{
    (void)state;
    struct mesh_snapshot *a = build(two_services);
    struct mesh_cluster *ca = &a->clusters[0];
    assert_int_equal(ca->limits.max_requests, 7);
    assert_true(ca->outlier_enabled);
    assert_true(mesh_breaker_try_acquire(&ca->state->breaker, &ca->limits, MESH_BREAKER_REQUESTS));
    struct mesh_snapshot *b = build(two_services);
    /* Same Service, same endpoints: the same shared state, with its count. */
    assert_ptr_equal(b->clusters[0].state, ca->state);
    assert_int_equal(mesh_breaker_active(&b->clusters[0].state->breaker, MESH_BREAKER_REQUESTS), 1);
    mesh_snapshot_unref(a);
    assert_int_equal(mesh_breaker_active(&b->clusters[0].state->breaker, MESH_BREAKER_REQUESTS), 1);
    mesh_snapshot_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_index_agrees_with_first_match_scan),
        cmocka_unit_test(test_hosts_exact_wildcard_and_service_names),
        cmocka_unit_test(test_reload_keeps_breaker_and_outlier_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
