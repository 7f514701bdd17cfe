/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the resource model: decoding every kind, the validation rules with their exact
 * messages, printing, and parse -> print -> parse identity. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh.h"
#include "model/model.h"

static const char seed_vs[] = "apiVersion: mesh.clusterdb.io/v1\n"
                              "kind: VirtualService\n"
                              "metadata:\n"
                              "  name: payment-service\n"
                              "  namespace: default\n"
                              "spec:\n"
                              "  hosts: [payment.example.com]\n"
                              "  gateways: [external-gateway]\n"
                              "  http_routes:\n"
                              "    - name: primary\n"
                              "      matches:\n"
                              "        - path: /api/v1/*\n"
                              "          headers:\n"
                              "            x-canary: {exact: \"true\"}\n"
                              "      destinations:\n"
                              "        - host: payment-v1\n"
                              "          weight: 90\n"
                              "        - host: payment-v2\n"
                              "          weight: 10\n";

static struct mesh_resource **parse_ok(const char *text, size_t *n)
{
    struct mesh_resource **res = NULL;
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_parse_documents(text, strlen(text), "t.yaml", &res, n, &diags);
    if (err != MESH_OK) {
        for (size_t i = 0; i < diags.len; i++) {
            char *line = mesh_diag_format(&diags.items[i]);
            print_error("%s\n", line);
            free(line);
        }
    }
    assert_int_equal(err, MESH_OK);
    mesh_diags_clear(&diags);
    return res;
}

/* Parses text, expecting failure whose first message is exactly want. */
static bool error_is(const char *text, const char *want)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_parse_documents(text, strlen(text), "t.yaml", &res, &n, &diags);
    assert_int_equal(err, MESH_E_INVALID);
    assert_null(res);
    assert_true(diags.len >= 1);
    char *got = mesh_diag_format(&diags.items[0]);
    bool same = strcmp(got, want) == 0;
    if (!same)
        print_error("want: %s\n got: %s\n", want, got);
    free(got);
    mesh_diags_clear(&diags);
    return same;
}

static void test_model_decodes_seed_virtual_service(void **state)
{
    (void)state;
    size_t n = 0;
    struct mesh_resource **res = parse_ok(seed_vs, &n);
    assert_int_equal(n, 1);
    assert_int_equal(res[0]->kind, MESH_KIND_VIRTUAL_SERVICE);
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)res[0];
    assert_string_equal(vs->res.name, "payment-service");
    assert_string_equal(vs->hosts.items[0], "payment.example.com");
    assert_string_equal(vs->gateways.items[0], "external-gateway");
    assert_int_equal(vs->n_http_routes, 1);
    const struct mesh_http_route *r = &vs->http_routes[0];
    assert_string_equal(r->name, "primary");
    assert_int_equal(r->matches[0].path.kind, MESH_PATH_GLOB);
    assert_string_equal(r->matches[0].path.value, "/api/v1/*");
    assert_int_equal(r->matches[0].n_headers, 1);
    assert_string_equal(r->matches[0].headers[0].name, "x-canary");
    assert_int_equal(r->matches[0].headers[0].kind, MESH_HEADER_EXACT);
    assert_string_equal(r->matches[0].headers[0].value, "true");
    assert_int_equal(r->n_destinations, 2);
    assert_string_equal(r->destinations[1].host, "payment-v2");
    assert_int_equal(r->destinations[0].weight, 90);
    assert_int_equal(r->destinations[1].weight, 10);
    mesh_resource_list_free(res, n);
}

static const char all_kinds[] =
    "apiVersion: mesh.clusterdb.io/v1\nkind: SecurityPolicy\nmetadata: {name: payment-security}\n"
    "spec:\n  mtls: {mode: STRICT, certificate_authority: internal-ca}\n"
    "  authorization:\n  - from: [orders.default.svc]\n    to: [payment.default.svc]\n"
    "    methods: [POST]\n    paths: [/api/v1/process]\n"
    "---\napiVersion: mesh.clusterdb.io/v1\nkind: CircuitBreaker\nmetadata: {name: "
    "payment-service}\n"
    "spec:\n  service: payment-service\n  max_connections: 100\n  max_pending_requests: 100\n"
    "  max_requests: 1000\n  max_retries: 3\n"
    "  detection: {consecutive_errors: 5, interval: 10s, base_ejection_time: 30s}\n"
    "---\napiVersion: mesh.clusterdb.io/v1\nkind: FaultInjection\nmetadata: {name: web-service}\n"
    "spec: {service: web-service, delay: 100ms, abort: {http_status: 503, percentage: 10.5}}\n"
    "---\napiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: payment-v1, labels: "
    "{app: payment}}\n"
    "spec:\n  protocol: http\n  endpoints: [\"127.0.0.1:18081\", {address: \"[::1]:18082\", "
    "labels: {version: v1}}]\n"
    "---\nmesh:\n  provider: istio\n  version: 1.14\n  mtls: {enabled: true, auto_upgrade: true}\n"
    "  telemetry: {enabled: true, sampling_rate: 100}\n  ingress: {enabled: true, gateway_class: "
    "istio}\n"
    "---\nmesh:\n  provider: linkerd\n  version: 2.10\n  proxy: {resources: {cpu: 100m, memory: "
    "128Mi}}\n"
    "  dashboard: {enabled: false}\n  ha: {enabled: true, replicas: 3}\n"
    "---\napiVersion: mesh.clusterdb.io/v1\nkind: ObservabilityConfig\nmetadata: {name: default}\n"
    "spec: {prometheus_endpoint: \"http://prometheus:9090\", grafana_endpoint: "
    "\"http://grafana:3000\","
    " jaeger_endpoint: \"http://jaeger:16686\"}\n"
    "---\napiVersion: mesh.clusterdb.io/v1\nkind: KubernetesConfig\nmetadata: {name: production}\n"
    "spec: {context: production, namespace: default}\n";

static void test_model_decodes_every_kind(void **state)
{
    (void)state;
    size_t n = 0;
    struct mesh_resource **res = parse_ok(all_kinds, &n);
    assert_int_equal(n, 8);
    const struct mesh_security_policy *sp = (const void *)res[0];
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_string_equal(sp->authorization[0].paths.items[0], "/api/v1/process");
    const struct mesh_circuit_breaker *cb = (const void *)res[1];
    assert_int_equal(cb->config.max_requests, 1000);
    assert_int_equal(cb->config.detection.interval_ms, 10000);
    assert_int_equal(cb->config.detection.base_ejection_time_ms, 30000);
    assert_int_equal(cb->config.detection.max_ejection_percent, MESH_UNSET);
    const struct mesh_fault_injection *fi = (const void *)res[2];
    assert_int_equal(fi->fault.delay_ms, 100);
    assert_int_equal(fi->fault.abort.http_status, 503);
    assert_true(fi->fault.abort.percentage == 10.5);
    const struct mesh_service *svc = (const void *)res[3];
    assert_int_equal(svc->n_endpoints, 2);
    assert_string_equal(svc->endpoints[1].address, "[::1]:18082");
    assert_string_equal(svc->endpoints[1].labels.items[0].value, "v1");
    const struct mesh_mesh_config *istio = (const void *)res[4];
    assert_string_equal(istio->res.name, "istio");
    assert_string_equal(istio->version, "1.14");
    assert_int_equal(istio->mtls.auto_upgrade, MESH_TRI_TRUE);
    const struct mesh_mesh_config *linkerd = (const void *)res[5];
    assert_string_equal(linkerd->version, "2.10"); /* as written, not the float 2.1 */
    assert_string_equal(linkerd->proxy.resources.memory, "128Mi");
    assert_int_equal(linkerd->dashboard.enabled, MESH_TRI_FALSE);
    assert_int_equal(linkerd->ha.replicas, 3);
    const struct mesh_kubernetes_config *kc = (const void *)res[7];
    assert_string_equal(kc->target_namespace, "default");
    mesh_resource_list_free(res, n);
}

static char *print(struct mesh_resource **res, size_t n, enum mesh_format f)
{
    char *out = NULL;
    assert_int_equal(mesh_print_documents((const struct mesh_resource *const *)res, n, f, &out),
                     MESH_OK);
    return out;
}

static void round_trip(const char *text, enum mesh_format f)
{
    size_t n1 = 0, n2 = 0;
    struct mesh_resource **a = parse_ok(text, &n1);
    char *once = print(a, n1, f);
    struct mesh_resource **b = parse_ok(once, &n2);
    assert_int_equal(n1, n2);
    for (size_t i = 0; i < n1; i++)
        assert_true(mesh_model_same_content(a[i], b[i]));
    char *twice = print(b, n2, f);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
    mesh_resource_list_free(a, n1);
    mesh_resource_list_free(b, n2);
}

static void test_model_round_trips_yaml_and_json(void **state)
{
    (void)state;
    round_trip(seed_vs, MESH_FORMAT_YAML);
    round_trip(seed_vs, MESH_FORMAT_JSON);
    round_trip(all_kinds, MESH_FORMAT_YAML);
    round_trip(all_kinds, MESH_FORMAT_JSON);
}

static void test_model_canonical_json_ignores_versions(void **state)
{
    (void)state;
    size_t n = 0;
    struct mesh_resource **res = parse_ok(seed_vs, &n);
    char *before = NULL, *after = NULL;
    assert_int_equal(mesh_model_canonical_json(res[0], &before), MESH_OK);
    res[0]->resource_version = 42;
    res[0]->generation = 3;
    assert_int_equal(mesh_model_canonical_json(res[0], &after), MESH_OK);
    assert_string_equal(before, after);
    assert_null(strstr(after, "resource_version"));
    struct mesh_resource *back = NULL;
    assert_int_equal(mesh_model_from_json(after, &back, NULL), MESH_OK);
    assert_true(mesh_model_same_content(back, res[0]));
    mesh_resource_free(back);
    free(before);
    free(after);
    mesh_resource_list_free(res, n);
}

#define VS_HEAD                                                                                    \
    "apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\nspec:\n"       \
    "  hosts: [a.example.com]\n  http_routes:\n"

struct rule_case {
    const char *text;
    const char *message;
};

static const struct rule_case rule_cases[] = {
    {"apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata:\n  name: Payment_1\nspec: "
     "{}\n",
     "t.yaml:4:9: metadata.name: \"Payment_1\" is not a valid name: use at most 63 lower-case "
     "letters, digits and '-', starting and ending with a letter or digit (RFC 1123)"},
    {VS_HEAD "  - destinations: []\n",
     "t.yaml:8:19: spec.http_routes[0].destinations: needs at least one destination"},
    {VS_HEAD "  - destinations:\n    - {host: a, weight: 101}\n",
     "t.yaml:9:25: spec.http_routes[0].destinations[0].weight: must be between 0 and 100, got 101"},
    {VS_HEAD "  - destinations:\n    - {host: a, weight: 90}\n    - {host: b, weight: 5}\n",
     "t.yaml:9:5: spec.http_routes[0].destinations: weights sum to 95, must be 100"},
    {VS_HEAD "  - matches: [{path: api}]\n    destinations: [{host: a}]\n",
     "t.yaml:8:22: spec.http_routes[0].matches[0].path: path \"api\" must start with \"/\""},
    {VS_HEAD "  - matches: [{path: {regex: \"([a-z\"}}]\n    destinations: [{host: a}]\n",
     "t.yaml:8:30: spec.http_routes[0].matches[0].path.regex: regex \"([a-z\" does not compile: "
     "Unmatched [, [^, [:, [., or [="},
    {VS_HEAD "  - matches: [{path: {prefx: /a}}]\n    destinations: [{host: a}]\n",
     "t.yaml:8:23: spec.http_routes[0].matches[0].path.prefx: unknown path match \"prefx\" (did "
     "you mean \"prefix\"?), must be exact, prefix or regex"},
    {VS_HEAD "  - matches: [{headers: {x-a: {suffix: b}}}]\n    destinations: [{host: a}]\n",
     "t.yaml:8:32: spec.http_routes[0].matches[0].headers.x-a.suffix: unknown header match "
     "\"suffix\", must be exact, prefix, regex or present"},
    {VS_HEAD "  - matches: [{method: FETCH}]\n    destinations: [{host: a}]\n",
     "t.yaml:8:24: spec.http_routes[0].matches[0].method: unknown HTTP method \"FETCH\", must be "
     "one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH"},
    {VS_HEAD "  - timeout: 0s\n    destinations: [{host: a}]\n",
     "t.yaml:8:14: spec.http_routes[0].timeout: duration must be positive, got 0s"},
    {VS_HEAD "  - timeout: 25h\n    destinations: [{host: a}]\n",
     "t.yaml:8:14: spec.http_routes[0].timeout: duration 25h is too long, at most 24h"},
    {VS_HEAD "  - timeout: soon\n    destinations: [{host: a}]\n",
     "t.yaml:8:14: spec.http_routes[0].timeout: invalid duration \"soon\": use a number and a unit "
     "(ms, s, m, h), like 100ms, 10s or 1m30s"},
    {VS_HEAD "  - name: primary\n    destinations: [{host: a}]\n  - name: primary\n"
             "    destinations: [{host: b}]\n",
     "t.yaml:10:11: spec.http_routes[1].name: duplicate route name \"primary\" (first at "
     "spec.http_routes[0])"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n"
     "  hosts: [a.example.com]\n  gateways: [edge/Public]\n"
     "  http_routes: [{destinations: [{host: a}]}]\n",
     "t.yaml:6:14: spec.gateways[0]: \"edge/Public\" is not a valid gateway: use NAME or "
     "NAMESPACE/NAME, each an RFC 1123 label (lower-case letters, digits and '-')"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n"
     "  hostz: [a]\n",
     "t.yaml:5:3: spec.hostz: unknown field \"hostz\" (did you mean \"hosts\"?)"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: SecurityPolicy\nmetadata: {name: sp}\nspec:\n"
     "  mtls: {mode: loose}\n",
     "t.yaml:5:16: spec.mtls.mode: unknown value \"loose\", must be one of strict, permissive, "
     "disable"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: FaultInjection\nmetadata: {name: fi}\nspec:\n"
     "  service: web\n  abort: {http_status: 700}\n",
     "t.yaml:6:24: spec.abort.http_status: must be between 200 and 599, got 700"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: FaultInjection\nmetadata: {name: fi}\nspec:\n"
     "  service: web\n  abort: {http_status: 503, percentage: 120}\n",
     "t.yaml:6:41: spec.abort.percentage: percentage must be between 0 and 100, got 120"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: CircuitBreaker\nmetadata: {name: cb}\nspec:\n"
     "  service: web\n  max_connections: 0\n",
     "t.yaml:6:20: spec.max_connections: must be positive, got 0"},
    {"apiVersion: mesh.clusterdb.io/v1\nkind: VirtualServce\nmetadata: {name: x}\nspec: {}\n",
     "t.yaml:2:7: kind: unknown kind \"VirtualServce\" (did you mean \"VirtualService\"?)"},
    {"apiVersion: v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {}\n",
     "t.yaml:1:13: apiVersion: unsupported apiVersion \"v1\", must be \"mesh.clusterdb.io/v1\""},
};

static void test_model_rejects_each_rule_with_its_message(void **state)
{
    (void)state;
    size_t wrong = 0;
    for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++)
        wrong += !error_is(rule_cases[i].text, rule_cases[i].message);
    assert_int_equal(wrong, 0);
}

/* Istio's gateway spellings: NAME, NAMESPACE/NAME, and "mesh" for the sidecars. */
static void test_model_accepts_gateway_references(void **state)
{
    (void)state;
    size_t n = 0;
    struct mesh_resource **res =
        parse_ok("apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
                 "spec:\n  hosts: [a.example.com]\n  gateways: [edge, istio-system/public, mesh]\n"
                 "  http_routes: [{destinations: [{host: a}]}]\n",
                 &n);
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)res[0];
    assert_int_equal(vs->gateways.len, 3);
    assert_string_equal(vs->gateways.items[1], "istio-system/public");
    mesh_resource_list_free(res, n);
}

static void test_model_validates_code_built_resources(void **state)
{
    (void)state;
    struct mesh_virtual_service *vs = mesh_virtual_service_new("web-service", "default");
    mesh_string_list_add(&vs->hosts, "web.example.com");
    struct mesh_http_route *r = mesh_virtual_service_add_route(vs, NULL);
    mesh_http_route_add_match(r, "/api/v1");
    mesh_http_route_add_destination(r, "web-v1", 80);
    mesh_http_route_add_destination(r, "web-v2", 10);
    struct mesh_diags diags = {0};
    assert_int_equal(mesh_validate_resource(&vs->res, &diags), MESH_E_INVALID);
    char *msg = mesh_diag_format(&diags.items[0]);
    assert_string_equal(msg, "VirtualService default/web-service: "
                             "spec.http_routes[0].destinations: weights sum to 90, must be 100");
    free(msg);
    mesh_diags_clear(&diags);
    r->destinations[1].weight = 20;
    assert_int_equal(mesh_validate_resource(&vs->res, &diags), MESH_OK);
    assert_int_equal(diags.len, 0);
    mesh_virtual_service_free(vs);
}

static void test_model_clone_is_deep_and_equal(void **state)
{
    (void)state;
    size_t n = 0;
    struct mesh_resource **res = parse_ok(all_kinds, &n);
    for (size_t i = 0; i < n; i++) {
        struct mesh_resource *copy = mesh_resource_clone(res[i]);
        assert_non_null(copy);
        assert_true(mesh_model_same_content(copy, res[i]));
        mesh_resource_free(copy);
    }
    mesh_resource_list_free(res, n);
}

static void test_model_kind_names_and_aliases(void **state)
{
    (void)state;
    enum mesh_kind k;
    assert_int_equal(mesh_kind_parse("vs", &k), MESH_OK);
    assert_int_equal(k, MESH_KIND_VIRTUAL_SERVICE);
    assert_int_equal(mesh_kind_parse("SecurityPolicies", &k), MESH_OK);
    assert_int_equal(k, MESH_KIND_SECURITY_POLICY);
    assert_int_equal(mesh_kind_parse("svc", &k), MESH_OK);
    assert_int_equal(k, MESH_KIND_SERVICE);
    assert_int_equal(mesh_kind_parse("nope", &k), MESH_E_NOTFOUND);
    assert_string_equal(mesh_kind_name(MESH_KIND_FAULT_INJECTION), "FaultInjection");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_decodes_seed_virtual_service),
        cmocka_unit_test(test_model_decodes_every_kind),
        cmocka_unit_test(test_model_round_trips_yaml_and_json),
        cmocka_unit_test(test_model_canonical_json_ignores_versions),
        cmocka_unit_test(test_model_rejects_each_rule_with_its_message),
        cmocka_unit_test(test_model_accepts_gateway_references),
        cmocka_unit_test(test_model_validates_code_built_resources),
        cmocka_unit_test(test_model_clone_is_deep_and_equal),
        cmocka_unit_test(test_model_kind_names_and_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
