/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of `meshctl analyze`'s checks: each finding on a crafted config and the look-alike
 * configs that must not raise it, with and without a registry; positions of field paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/analyze.h"
#include "core/xalloc.h"
#include "core/strbuf.h"
#include "mesh/virtual_service.h"
#include "model/model.h"

#define DOC "---\napiVersion: mesh.clusterdb.io/v1\n"

static const char *const services_yaml = DOC
    "kind: Service\nmetadata: {name: payment-v1}\nspec: {endpoints: [\"127.0.0.1:18081\"]}\n" DOC
    "kind: Service\nmetadata: {name: orders, namespace: shop}\n"
    "spec: {endpoints: [\"127.0.0.1:18085\"]}\n" DOC
    "kind: Service\nmetadata: {name: empty}\nspec: {}\n";

struct run {
    struct mesh_resource **res;
    size_t n;
    struct mesh_findings f;
};

static void parse(struct run *r, const char *yaml)
{
    struct mesh_diags diags = {0};
    memset(r, 0, sizeof(*r));
    if (mesh_parse_documents(yaml, strlen(yaml), "t.yaml", &r->res, &r->n, &diags) != MESH_OK)
        fail_msg("test input does not parse: %s", mesh_model_diags_text(&diags));
}

static void analyze(struct run *r, const char *yaml, const struct mesh_registry *reg)
{
    parse(r, yaml);
    struct mesh_analyze_live live = {.reg = reg};
    assert_int_equal(
        mesh_analyze((const struct mesh_resource *const *)r->res, r->n, reg ? &live : NULL, &r->f),
        MESH_OK);
}

static void run_free(struct run *r)
{
    mesh_findings_clear(&r->f);
    mesh_resource_list_free(r->res, r->n);
}

/* Every finding as "CODE kind-ns/name path: message", one per line, for failure messages. */
static char *dump(const struct run *r)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < r->f.len; i++) {
        const struct mesh_finding *f = &r->f.items[i];
        mesh_strbuf_printf(&sb, "%s %s/%s %s: %s\n", mesh_finding_code_id(f->code),
                           mesh_resource_namespace(r->res[f->resource]), r->res[f->resource]->name,
                           f->path, f->message);
    }
    return mesh_strbuf_take(&sb);
}

static void expect_none(const struct run *r)
{
    if (r->f.len)
        fail_msg("expected no finding, got:\n%s", dump(r));
}

/* Asserts that finding i is code on resource name at path, with msg_part in its message. */
static void expect(const struct run *r, size_t i, enum mesh_finding_code code, const char *name,
                   const char *path, const char *msg_part)
{
    if (i >= r->f.len)
        fail_msg("expected finding %zu (%s %s %s), got:\n%s", i, mesh_finding_code_id(code), name,
                 path, dump(r));
    const struct mesh_finding *f = &r->f.items[i];
    if (f->code != code || strcmp(r->res[f->resource]->name, name) != 0 ||
        strcmp(f->path, path) != 0 || !strstr(f->message, msg_part))
        fail_msg("finding %zu should be %s on %s at %s with \"%s\", got:\n%s", i,
                 mesh_finding_code_id(code), name, path, msg_part, dump(r));
}

static char *with_services(const char *yaml)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb, "%s%s", services_yaml, yaml);
    return mesh_strbuf_take(&sb);
}

static void register_sidecar(struct mesh_registry *reg, const char *id, const char *service,
                             const char *ns)
{
    struct mesh_proxy_registration p = {.id = id,
                                        .role = MESH_PROXY_SIDECAR,
                                        .service = service,
                                        .ns = ns,
                                        .address = "127.0.0.1:16006"};
    bool created;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(reg, &p, 1, 1, &created, &why), MESH_OK);
}

static void register_gateway(struct mesh_registry *reg, const char *id, const char *name,
                             const char *ns)
{
    struct mesh_proxy_registration p = {
        .id = id, .role = MESH_PROXY_GATEWAY, .gateway = name, .ns = ns};
    bool created;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(reg, &p, 1, 1, &created, &why), MESH_OK);
}

static const char *const split_yaml =
    DOC "kind: VirtualService\nmetadata: {name: payment-service}\n"
        "spec:\n  hosts: [payment.example.com]\n  http_routes:\n"
        "  - name: primary\n    destinations:\n"
        "    - {host: payment-v1, weight: 90}\n    - {host: payment-v2, weight: 10}\n";

static void test_destination_without_service(void **state)
{
    (void)state;
    char *yaml = with_services(split_yaml);
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_SERVICE_NOT_FOUND, "payment-service",
           "spec.http_routes[0].destinations[1].host",
           "Service not found: payment-v2 has no registered endpoints");
    assert_int_equal(r.f.items[0].severity, MESH_SEVERITY_ERROR);
    assert_non_null(strstr(r.f.items[0].message, "apply a Service named payment-v2"));
    assert_int_equal(mesh_findings_count(&r.f, MESH_SEVERITY_ERROR), 1);
    assert_int_equal(mesh_findings_count(&r.f, MESH_SEVERITY_WARNING), 0);
    run_free(&r);

    /* A sidecar registered for it is an endpoint: no finding. */
    struct mesh_registry *reg = mesh_registry_new(3000);
    register_sidecar(reg, "p2", "payment-v2", NULL);
    analyze(&r, yaml, reg);
    expect_none(&r);
    run_free(&r);
    /* ...but one in another namespace is another service. */
    mesh_registry_free(reg);
    reg = mesh_registry_new(3000);
    register_sidecar(reg, "p2", "payment-v2", "shop");
    analyze(&r, yaml, reg);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_SERVICE_NOT_FOUND, "payment-service",
           "spec.http_routes[0].destinations[1].host", "or start a sidecar for it");
    run_free(&r);
    mesh_registry_free(reg);
    free(yaml);
}

static void test_destination_host_forms(void **state)
{
    (void)state;
    /* Every form the proxy resolves; then forms that resolve to nothing. */
    char *yaml = with_services(
        DOC "kind: VirtualService\nmetadata: {name: forms}\n"
            "spec:\n  hosts: [forms.example.com]\n  http_routes:\n"
            "  - matches: [{path: /a}]\n    destinations: [{host: payment-v1.default}]\n"
            "  - matches: [{path: /b}]\n    destinations: [{host: payment-v1.default.svc}]\n"
            "  - matches: [{path: /c}]\n"
            "    destinations: [{host: payment-v1.default.svc.cluster.local}]\n"
            "  - matches: [{path: /d}]\n    destinations: [{host: orders.shop}]\n"
            "  - matches: [{path: /e}]\n    destinations: [{host: orders}]\n"
            "  - matches: [{path: /f}]\n    destinations: [{host: payment-v1.shop}]\n"
            "  - matches: [{path: /g}]\n    destinations: [{host: payment-v1.default.example}]\n");
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 3);
    /* orders lives in shop; this VirtualService is in default. */
    expect(&r, 0, MESH_FINDING_SERVICE_NOT_FOUND, "forms",
           "spec.http_routes[4].destinations[0].host", "no Service default/orders");
    expect(&r, 1, MESH_FINDING_SERVICE_NOT_FOUND, "forms",
           "spec.http_routes[5].destinations[0].host", "no Service shop/payment-v1");
    expect(&r, 2, MESH_FINDING_SERVICE_NOT_FOUND, "forms",
           "spec.http_routes[6].destinations[0].host", "names no Service");
    run_free(&r);
    free(yaml);
}

static void test_service_without_endpoints_needs_a_registry_to_tell(void **state)
{
    (void)state;
    char *yaml = with_services(DOC "kind: VirtualService\nmetadata: {name: to-empty}\n"
                                   "spec:\n  hosts: [empty.example.com]\n"
                                   "  http_routes: [{destinations: [{host: empty}]}]\n");
    struct run r;
    /* A file alone: the endpoints may come from sidecars, nothing to say. */
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);

    struct mesh_registry *reg = mesh_registry_new(3000);
    analyze(&r, yaml, reg);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_SERVICE_NOT_FOUND, "to-empty",
           "spec.http_routes[0].destinations[0].host",
           "Service not found: empty has no registered endpoints: Service default/empty lists no "
           "endpoints");
    run_free(&r);

    register_sidecar(reg, "e1", "empty", NULL);
    analyze(&r, yaml, reg);
    expect_none(&r);
    run_free(&r);
    mesh_registry_free(reg);
    free(yaml);
}

static void test_registered_only_service_is_known(void **state)
{
    (void)state;
    const char *yaml = DOC "kind: VirtualService\nmetadata: {name: vs}\n"
                           "spec:\n  hosts: [a.example.com]\n"
                           "  http_routes: [{destinations: [{host: live.apps.svc}]}]\n";
    struct mesh_registry *reg = mesh_registry_new(3000);
    register_sidecar(reg, "l1", "live", "apps");
    struct run r;
    analyze(&r, yaml, reg);
    expect_none(&r);
    run_free(&r);
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    run_free(&r);
    mesh_registry_free(reg);
}

static char *two_vs(const char *a_extra, const char *a_hosts, const char *b_extra,
                    const char *b_hosts, const char *b_ns)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb,
                       "%s" DOC "kind: VirtualService\nmetadata: {name: b, namespace: %s}\n"
                       "spec:\n  hosts: %s\n%s"
                       "  http_routes: [{destinations: [{host: payment-v1.default}]}]\n" DOC
                       "kind: VirtualService\nmetadata: {name: a}\n"
                       "spec:\n  hosts: %s\n%s"
                       "  http_routes: [{destinations: [{host: payment-v1}]}]\n",
                       services_yaml, b_ns, b_hosts, b_extra, a_hosts, a_extra);
    return mesh_strbuf_take(&sb);
}

static void test_two_virtual_services_claim_one_host(void **state)
{
    (void)state;
    struct run r;
    /* b is written first, but a wins (default/a before default/b): the finding is b's. */
    char *yaml = two_vs("", "[x.example.com, a.example.com]", "", "[b.example.com, x.example.com]",
                        "default");
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_HOST_CONFLICT, "b", "spec.hosts[1]",
           "host x.example.com is also claimed for the sidecars by VirtualService default/a");
    assert_int_equal(r.f.items[0].severity, MESH_SEVERITY_ERROR);
    run_free(&r);
    free(yaml);

    /* Another namespace sorts after default: b in zone loses too. */
    yaml = two_vs("", "[x.example.com]", "", "[x.example.com]", "zone");
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_HOST_CONFLICT, "b", "spec.hosts[0]", "default/a");
    run_free(&r);
    free(yaml);

    /* One for the sidecars, one for a gateway: different proxies, no conflict. */
    yaml = two_vs("  gateways: [edge]\n", "[x.example.com]", "", "[x.example.com]", "default");
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);
    free(yaml);

    /* Both on one gateway; "mesh" plus no gateways; a wildcard is not the same host. */
    yaml = two_vs("  gateways: [edge]\n", "[x.example.com]", "  gateways: [edge]\n",
                  "[x.example.com]", "default");
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_HOST_CONFLICT, "b", "spec.hosts[0]", "on gateway default/edge");
    run_free(&r);
    free(yaml);
    yaml =
        two_vs("  gateways: [mesh, edge]\n", "[x.example.com]", "", "[x.example.com]", "default");
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_HOST_CONFLICT, "b", "spec.hosts[0]", "for the sidecars");
    run_free(&r);
    free(yaml);
    yaml = two_vs("", "[\"*.example.com\"]", "", "[x.example.com]", "default");
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);
    free(yaml);
    /* The gateway "edge" of namespace zone is not default's edge. */
    yaml = two_vs("  gateways: [edge]\n", "[x.example.com]", "  gateways: [edge]\n",
                  "[x.example.com]", "zone");
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);
    free(yaml);
}

static void test_host_conflict_namespace_slash_gateway(void **state)
{
    (void)state;
    /* Built in code: zone/b names default's edge as default/edge, as a wins there. */
    struct mesh_virtual_service *a = mesh_virtual_service_new("a", "default");
    mesh_string_list_add(&a->hosts, "x.example.com");
    mesh_string_list_add(&a->gateways, "edge");
    struct mesh_virtual_service *b = mesh_virtual_service_new("b", "zone");
    mesh_string_list_add(&b->hosts, "x.example.com");
    mesh_string_list_add(&b->gateways, "default/edge");
    struct mesh_virtual_service *c = mesh_virtual_service_new("c", "zone");
    mesh_string_list_add(&c->hosts, "x.example.com");
    const struct mesh_resource *res[] = {&b->res, &c->res, &a->res};
    struct mesh_findings f = {0};
    assert_int_equal(mesh_analyze(res, 3, NULL, &f), MESH_OK);
    assert_int_equal(f.len, 1);
    assert_int_equal(f.items[0].code, MESH_FINDING_HOST_CONFLICT);
    assert_int_equal(f.items[0].resource, 0);
    mesh_findings_clear(&f);
    mesh_virtual_service_free(a);
    mesh_virtual_service_free(b);
    mesh_virtual_service_free(c);
}

static void test_three_claims_two_findings(void **state)
{
    (void)state;
    char *yaml = with_services(
        DOC "kind: VirtualService\nmetadata: {name: c}\nspec:\n  hosts: [h.example.com]\n"
            "  http_routes: [{destinations: [{host: payment-v1}]}]\n" DOC
            "kind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [h.example.com]\n"
            "  http_routes: [{destinations: [{host: payment-v1}]}]\n" DOC
            "kind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: [h.example.com]\n"
            "  http_routes: [{destinations: [{host: payment-v1}]}]\n");
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 2);
    /* In resource order (c is written first), each naming the winner a. */
    expect(&r, 0, MESH_FINDING_HOST_CONFLICT, "c", "spec.hosts[0]", "default/a");
    expect(&r, 1, MESH_FINDING_HOST_CONFLICT, "b", "spec.hosts[0]", "default/a");
    run_free(&r);
    free(yaml);
}

/* One VirtualService with two routes: earlier, then later (YAML flow mappings of a route's
 * matches, or "" for none). Returns whether the later one was reported unreachable. */
static bool shadowed(const char *earlier, const char *later)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb,
                       "%s" DOC "kind: VirtualService\nmetadata: {name: vs}\n"
                       "spec:\n  hosts: [s.example.com]\n  http_routes:\n"
                       "  - name: first\n%s%s%s    destinations: [{host: payment-v1}]\n"
                       "  - name: second\n%s%s%s    destinations: [{host: payment-v1}]\n",
                       services_yaml, *earlier ? "    matches: " : "", earlier,
                       *earlier ? "\n" : "", *later ? "    matches: " : "", later,
                       *later ? "\n" : "");
    char *yaml = mesh_strbuf_take(&sb);
    struct run r;
    analyze(&r, yaml, NULL);
    bool found = false;
    for (size_t i = 0; i < r.f.len; i++) {
        if (r.f.items[i].code != MESH_FINDING_UNREACHABLE_ROUTE)
            fail_msg("unexpected finding:\n%s", dump(&r));
        assert_string_equal(r.f.items[i].path, "spec.http_routes[1]");
        assert_int_equal(r.f.items[i].severity, MESH_SEVERITY_WARNING);
        assert_non_null(strstr(r.f.items[i].message, "route 1 (\"second\") is never used"));
        found = true;
    }
    run_free(&r);
    free(yaml);
    return found;
}

#define SHADOWED(a, b)                                                                             \
    do {                                                                                           \
        if (!shadowed(a, b))                                                                       \
            fail_msg("%s should shadow %s", a, b);                                                 \
    } while (0)
#define REACHABLE(a, b)                                                                            \
    do {                                                                                           \
        if (shadowed(a, b))                                                                        \
            fail_msg("%s should not shadow %s", a, b);                                             \
    } while (0)

static void test_unreachable_route_paths(void **state)
{
    (void)state;
    /* A catch-all first hides everything after it. */
    SHADOWED("", "[{path: /api}]");
    SHADOWED("", "");
    SHADOWED("[{path: {prefix: /}}, {path: /x}]", "[{path: /api, method: GET}]");
    SHADOWED("[{path: {prefix: /}}]", "[{path: \"/a*b\"}]");
    /* Conservative: a request target need not start with '/' ("OPTIONS *"). */
    REACHABLE("[{path: {prefix: /}}]", "");
    REACHABLE("[{path: \"/*\"}]", "");
    SHADOWED("[{method: GET}]", "[{method: GET, path: /a}]");
    /* Identical conditions. */
    SHADOWED("[{path: /api}]", "[{path: /api}]");
    SHADOWED("[{path: {regex: \"/v[0-9]+\"}}]", "[{path: {regex: \"/v[0-9]+\"}}]");
    SHADOWED("[{path: \"/a/*/b\"}]", "[{path: \"/a/*/b\"}]");
    /* A prefix covers exact paths, prefixes and globs that start with it. */
    SHADOWED("[{path: {prefix: /api}}]", "[{path: /api/v1}]");
    SHADOWED("[{path: {prefix: /api}}]", "[{path: /api}]");
    SHADOWED("[{path: {prefix: /api}}]", "[{path: {prefix: /api/v1}}]");
    SHADOWED("[{path: {prefix: /api}}]", "[{path: \"/api/*/x\"}]");
    REACHABLE("[{path: {prefix: /api/}}]", "[{path: /apx}]");
    REACHABLE("[{path: {prefix: /api/v1}}]", "[{path: {prefix: /api}}]");
    REACHABLE("[{path: {prefix: /api/}}]", "[{path: \"/a*\"}]");
    REACHABLE("[{path: {prefix: /api}}]", "[{path: {regex: \"/api.*\"}}]");
    /* A glob ending in its only '*' is a prefix; others decide exact paths only. */
    SHADOWED("[{path: \"/api/*\"}]", "[{path: /api/v1/x}]");
    SHADOWED("[{path: \"/api/*\"}]", "[{path: {prefix: /api/v}}]");
    SHADOWED("[{path: \"/a/*/b\"}]", "[{path: /a/x/y/b}]");
    REACHABLE("[{path: \"/a/*/b\"}]", "[{path: /a/x/c}]");
    REACHABLE("[{path: \"/a/*/b\"}]", "[{path: {prefix: /a/}}]");
    REACHABLE("[{path: \"/api/*\"}]", "[{path: /api}]");
    /* A regex decides exact paths only. */
    SHADOWED("[{path: {regex: \"/v[0-9]+\"}}]", "[{path: /v12}]");
    REACHABLE("[{path: {regex: \"/v[0-9]+\"}}]", "[{path: /v12/x}]");
    REACHABLE("[{path: {regex: \"/v.*\"}}]", "[{path: {prefix: /v1}}]");
    /* A later catch-all is not covered by a narrower route. */
    REACHABLE("[{path: /api}]", "");
    REACHABLE("[{path: /a}]", "[{path: /b}]");
    REACHABLE("[{path: {exact: /a}}]", "[{path: {prefix: /a}}]");
}

static void test_unreachable_route_headers_methods_and_matches(void **state)
{
    (void)state;
    SHADOWED("[{path: /a}]", "[{path: /a, headers: {x-user: alice}}]");
    REACHABLE("[{path: /a, headers: {x-user: alice}}]", "[{path: /a}]");
    SHADOWED("[{headers: {x-user: alice}}]", "[{path: /a, headers: {X-User: alice, x-b: c}}]");
    REACHABLE("[{headers: {x-user: alice}}]", "[{headers: {x-user: bob}}]");
    SHADOWED("[{headers: {x-user: {present: true}}}]", "[{headers: {x-user: {regex: \"a.*\"}}}]");
    REACHABLE("[{headers: {x-user: {present: true}}}]", "[{headers: {x-other: a}}]");
    SHADOWED("[{headers: {x-user: {prefix: ab}}}]", "[{headers: {x-user: abc}}]");
    SHADOWED("[{headers: {x-user: {prefix: ab}}}]", "[{headers: {x-user: {prefix: abc}}}]");
    REACHABLE("[{headers: {x-user: abc}}]", "[{headers: {x-user: {prefix: ab}}}]");
    REACHABLE("[{headers: {x-user: {prefix: abc}}}]", "[{headers: {x-user: {prefix: ab}}}]");
    SHADOWED("[{headers: {x-user: {regex: \"a.*\"}}}]", "[{headers: {x-user: abc}}]");
    REACHABLE("[{headers: {x-user: {regex: \"a.*\"}}}]", "[{headers: {x-user: bc}}]");
    REACHABLE("[{headers: {x-user: {regex: \"a.*\"}}}]", "[{headers: {x-user: {prefix: a}}}]");
    REACHABLE("[{headers: {x-user: {exact: a}}}]", "[{headers: {x-user: {present: true}}}]");

    SHADOWED("[{path: /a}]", "[{path: /a, method: POST}]");
    SHADOWED("[{path: /a, method: POST}]", "[{path: /a, method: POST}]");
    REACHABLE("[{path: /a, method: POST}]", "[{path: /a}]");
    REACHABLE("[{path: /a, method: POST}]", "[{path: /a, method: GET}]");

    /* Every match of the later route must be covered, each by some earlier match. */
    SHADOWED("[{path: /a}, {path: {prefix: /b}}]", "[{path: /b/1}, {path: /a}]");
    REACHABLE("[{path: /a}, {path: {prefix: /b}}]", "[{path: /b/1}, {path: /c}]");
}

static void test_unreachable_route_reported_once_naming_first_cover(void **state)
{
    (void)state;
    char *yaml = with_services(
        DOC "kind: VirtualService\nmetadata: {name: vs}\n"
            "spec:\n  hosts: [s.example.com]\n  http_routes:\n"
            "  - matches: [{path: /a}]\n    destinations: [{host: payment-v1}]\n"
            "  - destinations: [{host: payment-v1}]\n"
            "  - matches: [{path: /a}]\n    destinations: [{host: payment-v1}]\n"
            "  - name: last\n    matches: [{path: /b}]\n    destinations: [{host: payment-v1}]\n");
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 2);
    expect(&r, 0, MESH_FINDING_UNREACHABLE_ROUTE, "vs", "spec.http_routes[2]",
           "route 2 is never used: the earlier route 0 matches every request this one matches");
    expect(&r, 1, MESH_FINDING_UNREACHABLE_ROUTE, "vs", "spec.http_routes[3]",
           "route 3 (\"last\") is never used: the earlier route 1 matches every request");
    run_free(&r);
    free(yaml);
}

static const char *const gateway_vs_yaml =
    DOC "kind: VirtualService\nmetadata: {name: edge-vs}\n"
        "spec:\n  hosts: [payment.example.com]\n  gateways: [mesh, external-gateway]\n"
        "  http_routes: [{destinations: [{host: payment-v1}]}]\n";

static void test_gateway_not_served(void **state)
{
    (void)state;
    char *yaml = with_services(gateway_vs_yaml);
    struct run r;
    /* Without a registry nobody knows which gateways run. */
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);

    struct mesh_registry *reg = mesh_registry_new(3000);
    register_sidecar(reg, "p1", "payment-v1", NULL);
    analyze(&r, yaml, reg);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_GATEWAY_NOT_FOUND, "edge-vs", "spec.gateways[1]",
           "gateway default/external-gateway is not served by any registered gateway proxy");
    assert_non_null(strstr(r.f.items[0].message, "--gateway external-gateway --namespace default"));
    assert_int_equal(r.f.items[0].severity, MESH_SEVERITY_ERROR);
    run_free(&r);

    /* A gateway of that name in another namespace does not serve it... */
    register_gateway(reg, "g-zone", "external-gateway", "zone");
    analyze(&r, yaml, reg);
    assert_int_equal(r.f.len, 1);
    run_free(&r);
    /* ...one in the VirtualService's namespace does. */
    register_gateway(reg, "g1", "external-gateway", NULL);
    analyze(&r, yaml, reg);
    expect_none(&r);
    run_free(&r);
    mesh_registry_free(reg);
    free(yaml);
}

static void test_policies_naming_unknown_services(void **state)
{
    (void)state;
    char *yaml;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(
        &sb,
        "%s" DOC "kind: VirtualService\nmetadata: {name: web}\n"
        "spec:\n  hosts: [web.example.com]\n"
        "  http_routes: [{name: main, destinations: [{host: payment-v1}]}]\n" DOC
        "kind: CircuitBreaker\nmetadata: {name: cb-ok-service}\n"
        "spec: {service: payment-v1.default.svc, max_connections: 1}\n" DOC
        "kind: CircuitBreaker\nmetadata: {name: cb-ok-vs}\nspec: {service: web, max_connections: "
        "1}\n" DOC "kind: CircuitBreaker\nmetadata: {name: cb-bad}\n"
        "spec: {service: payment-svc, max_connections: 1}\n" DOC
        "kind: CircuitBreaker\nmetadata: {name: cb-other-ns, namespace: shop}\n"
        "spec: {service: web, max_connections: 1}\n" DOC
        "kind: FaultInjection\nmetadata: {name: fi-ok}\nspec: {service: web, route: main, delay: "
        "1s}\n" DOC "kind: FaultInjection\nmetadata: {name: fi-bad-route}\n"
        "spec: {service: web, route: other, delay: 1s}\n" DOC
        "kind: FaultInjection\nmetadata: {name: fi-bad}\nspec: {service: nothing, delay: 1s}\n" DOC
        "kind: SecurityPolicy\nmetadata: {name: sp}\n"
        "spec:\n  services: [payment-v1, ghost]\n  authorization:\n"
        "  - from: [orders.shop.svc]\n    to: [orders.shop.svc, payment.default.svc]\n",
        services_yaml);
    yaml = mesh_strbuf_take(&sb);
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 6);
    expect(&r, 0, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "cb-bad", "spec.service",
           "CircuitBreaker names payment-svc, but there is no Service payment-svc and no "
           "VirtualService payment-svc in namespace default");
    expect(&r, 1, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "cb-other-ns", "spec.service",
           "in namespace shop");
    expect(&r, 2, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "fi-bad-route", "spec.route",
           "VirtualService default/web has no route named other");
    expect(&r, 3, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "fi-bad", "spec.service",
           "the fault injection applies to nothing");
    expect(&r, 4, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "sp", "spec.services[1]",
           "SecurityPolicy names service ghost, but there is no Service default/ghost");
    expect(&r, 5, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "sp", "spec.authorization[0].to[1]",
           "no Service default/payment");
    for (size_t i = 0; i < r.f.len; i++)
        assert_int_equal(r.f.items[i].severity, MESH_SEVERITY_WARNING);
    assert_int_equal(mesh_findings_count(&r.f, MESH_SEVERITY_ERROR), 0);
    run_free(&r);

    /* A registered sidecar makes a service known. */
    struct mesh_registry *reg = mesh_registry_new(3000);
    register_sidecar(reg, "g", "ghost", NULL);
    register_sidecar(reg, "p", "payment-svc", NULL);
    analyze(&r, yaml, reg);
    assert_int_equal(r.f.len, 4);
    expect(&r, 0, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "cb-other-ns", "spec.service",
           "(nor a registered sidecar)");
    run_free(&r);
    mesh_registry_free(reg);
    free(yaml);
}

/* A policy may name an application, the `app` label its versioned Services share. */
static void test_policy_may_name_an_app_label(void **state)
{
    (void)state;
    char *yaml = with_services(DOC "kind: Service\nmetadata: {name: cart-v1, labels: {app: cart}}\n"
                                   "spec: {endpoints: [\"127.0.0.1:18090\"]}\n" DOC
                                   "kind: SecurityPolicy\nmetadata: {name: sp}\n"
                                   "spec:\n  authorization:\n  - from: [orders.default.svc]\n"
                                   "    to: [cart.default.svc, cart-v1, shop]\n");
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_POLICY_TARGET_NOT_FOUND, "sp", "spec.authorization[0].to[2]",
           "no Service default/shop and no Service labelled app: shop");
    run_free(&r);
    free(yaml);
}

/* With meshd's CA list: a certificate_authority it does not have is reported; one it has, or
 * none named, is not; without the list nothing is said. */
static void test_certificate_authority_known_to_meshd(void **state)
{
    (void)state;
    char *yaml = with_services(
        DOC "kind: SecurityPolicy\nmetadata: {name: sp-missing}\n"
            "spec: {services: [payment-v1], mtls: {mode: strict, certificate_authority: "
            "internal-ca}}\n" DOC "kind: SecurityPolicy\nmetadata: {name: sp-known}\n"
            "spec: {services: [payment-v1], mtls: {mode: strict, certificate_authority: "
            "corp-ca}}\n" DOC "kind: SecurityPolicy\nmetadata: {name: sp-default}\n"
            "spec: {services: [payment-v1], mtls: {mode: permissive}}\n");
    struct run r;
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);

    static const char *const cas[] = {"mesh-root", "corp-ca", NULL};
    struct mesh_analyze_live live = {.ca_names = cas};
    parse(&r, yaml);
    assert_int_equal(mesh_analyze((const struct mesh_resource *const *)r.res, r.n, &live, &r.f),
                     MESH_OK);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_CA_NOT_FOUND, "sp-missing", "spec.mtls.certificate_authority",
           "names certificate_authority internal-ca, but meshd has no CA by that name");
    assert_int_equal(r.f.items[0].severity, MESH_SEVERITY_WARNING);
    assert_string_equal(mesh_finding_code_id(MESH_FINDING_CA_NOT_FOUND), "MESH0106");
    run_free(&r);
    free(yaml);
}

/* Rules that admit only identities, for services whose callers come in plaintext: every request
 * would be denied. Not for strict services, nor rules that admit "*". */
static void test_authorization_needs_mtls(void **state)
{
    (void)state;
    char *yaml = with_services(
        DOC "kind: Service\nmetadata: {name: cart-v1, labels: {app: cart}}\n"
            "spec: {endpoints: [\"127.0.0.1:18090\"]}\n" DOC
            "kind: SecurityPolicy\nmetadata: {name: off}\n"
            "spec:\n  services: [cart]\n  mtls: {mode: disable}\n  authorization:\n"
            "  - {from: [orders.default.svc], to: [cart]}\n"
            "  - {from: [\"*\"], to: [cart], methods: [GET]}\n" DOC
            "kind: SecurityPolicy\nmetadata: {name: tight}\n"
            "spec:\n  services: [payment-v1]\n  mtls: {mode: strict}\n  authorization:\n"
            "  - {from: [orders.default.svc], to: [payment-v1]}\n");
    struct run r;
    analyze(&r, yaml, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_AUTHZ_WITHOUT_MTLS, "off", "spec.authorization[0].from",
           "default/cart-v1's mtls mode is disable, so its callers come in plaintext");
    assert_int_equal(r.f.items[0].severity, MESH_SEVERITY_ERROR);
    run_free(&r);
    free(yaml);

    /* Permissive is fine, unless the MeshConfig turns auto_upgrade off. */
    yaml = with_services(DOC "kind: SecurityPolicy\nmetadata: {name: sp}\n"
                             "spec:\n  authorization:\n"
                             "  - {from: [orders.default.svc], to: [payment-v1]}\n");
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);
    char *off = xasprintf("%s---\nmesh: {provider: native, mtls: {auto_upgrade: false}}\n", yaml);
    analyze(&r, off, NULL);
    assert_int_equal(r.f.len, 1);
    expect(&r, 0, MESH_FINDING_AUTHZ_WITHOUT_MTLS, "sp", "spec.authorization[0].from",
           "mtls mode is permissive and the MeshConfig turns mtls.auto_upgrade");
    run_free(&r);
    free(off);
    free(yaml);
}

static void test_examples_like_config_is_clean(void **state)
{
    (void)state;
    char *yaml = with_services(
        DOC
        "kind: Service\nmetadata: {name: payment-v2}\nspec: {endpoints: [\"127.0.0.1:18082\"]}\n"
        "---\nmesh: {provider: istio}\n" DOC
        "kind: VirtualService\nmetadata: {name: payment-service}\n"
        "spec:\n  hosts: [payment.example.com]\n  gateways: [external-gateway]\n"
        "  http_routes:\n  - name: primary\n    matches: [{path: \"/api/v1/*\"}]\n"
        "    destinations: [{host: payment-v1, weight: 90}, {host: payment-v2, weight: 10}]\n" DOC
        "kind: CircuitBreaker\nmetadata: {name: payment-service}\n"
        "spec: {service: payment-service, max_connections: 100}\n");
    struct run r;
    analyze(&r, yaml, NULL);
    expect_none(&r);
    run_free(&r);
    free(yaml);
}

static void test_codes_and_names(void **state)
{
    (void)state;
    const char *ids[] = {"MESH0101", "MESH0102", "MESH0103", "MESH0104",
                         "MESH0105", "MESH0106", "MESH0107"};
    const char *names[] = {"ServiceNotFound",         "HostConflict",
                           "UnreachableRoute",        "GatewayNotFound",
                           "PolicyTargetNotFound",    "CertificateAuthorityNotFound",
                           "AuthorizationWithoutMTLS"};
    assert_int_equal(MESH_FINDING_COUNT, sizeof(ids) / sizeof(ids[0]));
    for (int c = 0; c < MESH_FINDING_COUNT; c++) {
        assert_string_equal(mesh_finding_code_id((enum mesh_finding_code)c), ids[c]);
        assert_string_equal(mesh_finding_code_name((enum mesh_finding_code)c), names[c]);
    }
    assert_string_equal(mesh_severity_name(MESH_SEVERITY_ERROR), "Error");
    assert_string_equal(mesh_severity_name(MESH_SEVERITY_WARNING), "Warning");
}

static void test_locate_field_paths(void **state)
{
    (void)state;
    const char *yaml = "apiVersion: mesh.clusterdb.io/v1\n" /* 1 */
                       "kind: VirtualService\n"             /* 2 */
                       "metadata: {name: vs}\n"             /* 3 */
                       "spec:\n"                            /* 4 */
                       "  hosts:\n"                         /* 5 */
                       "    - a.example.com\n"              /* 6 */
                       "    - b.example.com\n"              /* 7 */
                       "  http_routes:\n"                   /* 8 */
                       "    - destinations:\n"              /* 9 */
                       "        - host: x\n"                /* 10 */
                       "        - {host: y, weight: 0}\n";  /* 11 */
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    assert_int_equal(mesh_yaml_read(yaml, strlen(yaml), "t.yaml", &docs, &diags), MESH_OK);
    const struct mesh_node *root = docs.items[0].root;
    unsigned line = 0, col = 0;
    assert_true(mesh_analyze_locate(root, "spec.hosts[1]", &line, &col));
    assert_int_equal(line, 7);
    assert_int_equal(col, 7);
    assert_true(mesh_analyze_locate(root, "spec.http_routes[0].destinations[1].host", &line, &col));
    assert_int_equal(line, 11);
    assert_int_equal(col, 18);
    assert_true(mesh_analyze_locate(root, "spec.http_routes[0]", &line, &col));
    assert_int_equal(line, 9);
    /* The deepest part that exists: the destinations list, for a missing index in it. */
    assert_true(mesh_analyze_locate(root, "spec.http_routes[0].destinations[7].host", &line, &col));
    assert_int_equal(line, 10);
    assert_true(mesh_analyze_locate(root, "", &line, &col));
    assert_int_equal(line, 1);
    assert_true(mesh_analyze_locate(root, "spec.nothing", &line, &col));
    assert_int_equal(line, 5); /* spec's value starts at its first key */
    mesh_node_docs_free(&docs);

    struct mesh_node *built = mesh_node_map();
    assert_false(mesh_analyze_locate(built, "spec", &line, &col));
    mesh_node_free(built);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destination_without_service),
        cmocka_unit_test(test_destination_host_forms),
        cmocka_unit_test(test_service_without_endpoints_needs_a_registry_to_tell),
        cmocka_unit_test(test_registered_only_service_is_known),
        cmocka_unit_test(test_two_virtual_services_claim_one_host),
        cmocka_unit_test(test_host_conflict_namespace_slash_gateway),
        cmocka_unit_test(test_three_claims_two_findings),
        cmocka_unit_test(test_unreachable_route_paths),
        cmocka_unit_test(test_unreachable_route_headers_methods_and_matches),
        cmocka_unit_test(test_unreachable_route_reported_once_naming_first_cover),
        cmocka_unit_test(test_gateway_not_served),
        cmocka_unit_test(test_policies_naming_unknown_services),
        cmocka_unit_test(test_policy_may_name_an_app_label),
        cmocka_unit_test(test_certificate_authority_known_to_meshd),
        cmocka_unit_test(test_authorization_needs_mtls),
        cmocka_unit_test(test_examples_like_config_is_clean),
        cmocka_unit_test(test_codes_and_names),
        cmocka_unit_test(test_locate_field_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
