/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Istio translator (src/provider/istio.c): the seed's examples, subsets, matches,
 * retries, faults, breakers, mTLS, authorization, API versions by Istio version, refusals, bad
 * references and a stable output, asserted on the manifests' node trees. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/document.h"
#include "mesh/resource.h"
#include "provider/translate.h"

#include "translation_check.h"

#define HDR "apiVersion: mesh.clusterdb.io/v1\n"

/* payment-v1/v2 are versions of the app payment; orders and orders-canary both run app orders
 * (no versions); web stands alone and balances round robin; cart lives in namespace shop. */
static const char services_yaml[] = HDR
    "kind: Service\nmetadata: {name: payment-v1, labels: {app: payment, version: v1}}\n"
    "spec: {endpoints: [\"127.0.0.1:18081\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: payment-v2, labels: {app: payment, version: v2}}\n"
    "spec: {endpoints: [\"127.0.0.1:18082\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: orders, labels: {app: orders}}\n"
    "spec: {endpoints: [\"127.0.0.1:18083\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: orders-canary, labels: {app: orders}}\n"
    "spec: {endpoints: [\"127.0.0.1:18084\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: web}\n"
    "spec: {load_balancer: round_robin, endpoints: [\"127.0.0.1:18085\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: cart, namespace: shop, labels: {app: cart}}\n"
    "spec: {endpoints: [\"127.0.0.1:18086\"]}\n";

#define MESH_ISTIO(extra)                                                                          \
    HDR "kind: MeshConfig\nmetadata: {name: istio}\nspec: {provider: istio, version: "             \
        "\"1.14\"" extra "}\n"

/* --- building the input --- */

static enum mesh_err translate_input(const struct input *in,
                                     const struct mesh_translate_options *opt,
                                     struct mesh_translation *t, char **err)
{
    memset(t, 0, sizeof(*t));
    *err = NULL;
    return mesh_translator_istio.translate((const struct mesh_resource *const *)in->res, in->n, opt,
                                           t, err);
}

/* Translates services_yaml + text; fails the test unless MESH_OK. */
static void translate_ok(const char *text, const struct mesh_translate_options *opt,
                         struct mesh_translation *t)
{
    struct input in = {0};
    input_add_text(&in, services_yaml, "services.yaml");
    input_add_text(&in, text, "t.yaml");
    char *err = NULL;
    enum mesh_err rc = translate_input(&in, opt, t, &err);
    if (rc != MESH_OK)
        fail_msg("translate: %s: %s", mesh_strerror(rc), err ? err : "?");
    input_free(&in);
}

/* Translates services_yaml + text expecting want; returns the message (caller frees). */
static char *translate_fails(const char *text, const struct mesh_translate_options *opt,
                             enum mesh_err want)
{
    struct input in = {0};
    input_add_text(&in, services_yaml, "services.yaml");
    input_add_text(&in, text, "t.yaml");
    struct mesh_translation t;
    char *err = NULL;
    enum mesh_err rc = translate_input(&in, opt, &t, &err);
    assert_int_equal(rc, want);
    assert_non_null(err);
    /* On error nothing is handed back. */
    assert_int_equal(t.n_objects, 0);
    assert_null(t.objects);
    assert_int_equal(t.warnings.len, 0);
    input_free(&in);
    return err;
}

/* --- looking into the manifests --- */

#define assert_text(node, path, want)                                                              \
    do {                                                                                           \
        const char *got_ = text_at((node), (path));                                                \
        if (!got_ || strcmp(got_, (want)) != 0)                                                    \
            fail_msg("%s: got %s%s%s, want \"%s\"", (path), got_ ? "\"" : "",                      \
                     got_ ? got_ : "none", got_ ? "\"" : "", (want));                              \
    } while (0)

#define assert_absent(node, path)                                                                  \
    do {                                                                                           \
        if (at((node), (path)))                                                                    \
            fail_msg("%s: present, want absent", (path));                                          \
    } while (0)

static const char *note_of(enum mesh_feature f)
{
    return mesh_translator_istio.caps[f].note;
}

/* "<prefix><the feature's note>": a refusal as the capability table words it. */
static char *with_note(const char *prefix, enum mesh_feature f)
{
    size_t len = strlen(prefix) + strlen(note_of(f)) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    snprintf(s, len, "%s%s", prefix, note_of(f));
    return s;
}

/* --- the seed's examples --- */

static void test_examples_translate_together(void **state)
{
    (void)state;
    struct input in = {0};
    input_add_examples(&in);
    struct mesh_translation t;
    char *err = NULL;
    assert_int_equal(translate_input(&in, NULL, &t, &err), MESH_OK);
    assert_null(err);

    /* What the seed becomes, exactly. */
    static const char *const want[][3] = {
        {"AuthorizationPolicy", "default", "payment-security"},
        {"DestinationRule", "default", "payment"},
        {"DestinationRule", "default", "payment-v1"},
        {"DestinationRule", "default", "payment-v2"},
        {"DestinationRule", "default", "web"},
        {"Gateway", "default", "external-gateway"},
        {"PeerAuthentication", "default", "payment-security"},
        {"Telemetry", "istio-system", "mesh-default"},
        {"VirtualService", "default", "payment"},
        {"VirtualService", "default", "payment-service"},
        {"VirtualService", "default", "web-service"},
    };
    size_t n_want = sizeof(want) / sizeof(want[0]);
    assert_int_equal(t.n_objects, n_want);
    for (size_t i = 0; i < n_want; i++) {
        /* In the stable order: kind, namespace, name. */
        assert_text(t.objects[i], "kind", want[i][0]);
        assert_text(t.objects[i], "metadata.namespace", want[i][1]);
        assert_text(t.objects[i], "metadata.name", want[i][2]);
        assert_text(t.objects[i], "metadata.labels[\"app.kubernetes.io/managed-by\"]",
                    "clusterdb-mesh");
        assert_non_null(
            text_at(t.objects[i], "metadata.annotations[\"mesh.clusterdb.io/source\"]"));
        /* The seed's version: 1.14 serves v1beta1 (and Telemetry v1alpha1). */
        const char *api = text_at(t.objects[i], "apiVersion");
        assert_true(strstr(api, "/v1beta1") || strcmp(api, "telemetry.istio.io/v1alpha1") == 0);
    }
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "payment-service");
    assert_text(vs, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "VirtualService/default/payment-service");
    assert_text(vs, "spec.hosts[0]", "payment.example.com");
    assert_text(vs, "spec.gateways[0]", "external-gateway");
    assert_text(vs, "spec.http[0].match[0].uri.prefix", "/api/v1/");
    /* The mesh route's short host is the Service's FQDN. */
    vs = must_find(&t, "VirtualService", "default", "payment");
    assert_text(vs, "spec.hosts[0]", "payment.default.svc.cluster.local");
    assert_absent(vs, "spec.gateways");
    /* The gateway, from ingress.enabled, serves the hosts of the routes naming it. */
    const struct mesh_node *gw = must_find(&t, "Gateway", "default", "external-gateway");
    assert_text(gw, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "MeshConfig/default/istio");
    assert_text(gw, "spec.selector.istio", "ingressgateway");
    assert_text(gw, "spec.servers[0].port.number", "80");
    assert_text(gw, "spec.servers[0].port.protocol", "HTTP");
    assert_int_equal(len_at(gw, "spec.servers[0].hosts"), 1);
    assert_text(gw, "spec.servers[0].hosts[0]", "payment.example.com");
    /* sampling_rate: 100 */
    const struct mesh_node *tel = must_find(&t, "Telemetry", "istio-system", "mesh-default");
    assert_text(tel, "spec.tracing[0].randomSamplingPercentage", "100");
    /* The seed's fault on web-service: 100ms for every request, 503 for 10%. */
    vs = must_find(&t, "VirtualService", "default", "web-service");
    assert_text(vs, "spec.http[0].match[0].uri.exact", "/api/v1");
    assert_text(vs, "spec.http[0].fault.delay.fixedDelay", "100ms");
    assert_text(vs, "spec.http[0].fault.delay.percentage.value", "100");
    assert_text(vs, "spec.http[0].fault.abort.httpStatus", "503");
    assert_text(vs, "spec.http[0].fault.abort.percentage.value", "10");
    /* The seed's policy: strict for the namespace, only orders may POST /api/v1/process. */
    const struct mesh_node *pa = must_find(&t, "PeerAuthentication", "default", "payment-security");
    assert_text(pa, "spec.mtls.mode", "STRICT");
    assert_absent(pa, "spec.selector");
    const struct mesh_node *ap =
        must_find(&t, "AuthorizationPolicy", "default", "payment-security");
    assert_text(ap, "spec.selector.matchLabels.app", "payment");
    assert_text(ap, "spec.action", "ALLOW");
    assert_int_equal(len_at(ap, "spec.rules[0].from[0].source.principals"), 1);
    assert_text(ap, "spec.rules[0].from[0].source.principals[0]",
                "cluster.local/ns/default/sa/orders");
    assert_text(ap, "spec.rules[0].to[0].operation.methods[0]", "POST");
    assert_text(ap, "spec.rules[0].to[0].operation.paths[0]", "/api/v1/process");
    /* Istio has one CA: internal-ca becomes a warning, not an error. */
    assert_int_equal(t.warnings.len, 1);
    assert_true(has_warning_part(&t, "every workload certificate comes from the mesh's one CA"));
    assert_non_null(
        strstr(t.warnings.items[0].message,
               "SecurityPolicy default/payment-security spec.mtls.certificate_authority: "
               "istio cannot express"));
    mesh_translation_clear(&t);
    input_free(&in);
}

/* Each example with what it refers to: the istio MeshConfig, the Services, and for the breaker
 * and the fault the VirtualServices they name. */
static void test_each_example_translates(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *with;
        size_t min_objects;
    } cases[] = {
        {"examples/mesh-istio.yaml", NULL, 1},
        {"examples/services.yaml", NULL, 0},
        {"examples/kubernetes.yaml", NULL, 1},
        {"examples/observability.yaml", NULL, 1},
        {"examples/mesh-linkerd.yaml", NULL, 1},
        {"examples/payment-virtual-service.yaml", NULL, 3},
        {"examples/payment-mesh-route.yaml", NULL, 3},
        {"examples/web-traffic-split.yaml", NULL, 3},
        {"examples/payment-security.yaml", NULL, 3},
        {"examples/payment-circuit-breaker.yaml", "examples/payment-virtual-service.yaml", 6},
        {"examples/web-fault-injection.yaml", "examples/web-traffic-split.yaml", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct input in = {0};
        input_add_file(&in, cases[i].file);
        input_add_file(&in, "examples/mesh-istio.yaml");
        input_add_file(&in, "examples/services.yaml");
        if (cases[i].with)
            input_add_file(&in, cases[i].with);
        struct mesh_translation t;
        char *err = NULL;
        enum mesh_err rc = translate_input(&in, NULL, &t, &err);
        if (rc != MESH_OK)
            fail_msg("%s: %s", cases[i].file, err ? err : "?");
        if (t.n_objects < cases[i].min_objects)
            fail_msg("%s: %zu objects, want at least %zu", cases[i].file, t.n_objects,
                     cases[i].min_objects);
        mesh_translation_clear(&t);
        input_free(&in);
    }
}

/* --- traffic --- */

static void test_split_uses_subsets_of_the_app_host(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR "kind: VirtualService\nmetadata: {name: pay}\n"
                     "spec:\n  hosts: [payment]\n  http_routes:\n"
                     "    - destinations: [{host: payment-v1, weight: 90}, "
                     "{host: payment-v2.default.svc, weight: 10}]\n"
                     "    - destinations: [{host: orders}]\n",
                 NULL, &t);
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "pay");
    /* No MeshConfig, no version: the newest API. */
    assert_text(vs, "apiVersion", "networking.istio.io/v1");
    assert_text(vs, "spec.hosts[0]", "payment.default.svc.cluster.local");
    assert_text(vs, "spec.http[0].route[0].destination.host", "payment.default.svc.cluster.local");
    assert_text(vs, "spec.http[0].route[0].destination.subset", "v1");
    assert_text(vs, "spec.http[0].route[0].weight", "90");
    assert_text(vs, "spec.http[0].route[1].destination.host", "payment.default.svc.cluster.local");
    assert_text(vs, "spec.http[0].route[1].destination.subset", "v2");
    assert_text(vs, "spec.http[0].route[1].weight", "10");
    assert_absent(vs, "spec.http[0].match");
    /* A Service that is no version of an app keeps its own host, and one destination no
     * weight. */
    assert_text(vs, "spec.http[1].route[0].destination.host", "orders.default.svc.cluster.local");
    assert_absent(vs, "spec.http[1].route[0].destination.subset");
    assert_absent(vs, "spec.http[1].route[0].weight");

    const struct mesh_node *dr = must_find(&t, "DestinationRule", "default", "payment");
    assert_text(dr, "spec.host", "payment.default.svc.cluster.local");
    assert_int_equal(len_at(dr, "spec.subsets"), 2);
    assert_text(dr, "spec.subsets[0].name", "v1");
    assert_text(dr, "spec.subsets[0].labels.version", "v1");
    assert_text(dr, "spec.subsets[1].name", "v2");
    assert_text(dr, "spec.subsets[1].labels.version", "v2");
    assert_absent(dr, "spec.trafficPolicy");
    /* Nothing asks anything of orders, or of the versions' own hosts. */
    assert_null(find(&t, "DestinationRule", "default", "orders"));
    assert_null(find(&t, "DestinationRule", "default", "payment-v1"));
    mesh_translation_clear(&t);
}

static void test_matches(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR "kind: VirtualService\nmetadata: {name: m}\n"
                     "spec:\n  hosts: [api.example.com]\n  http_routes:\n"
                     "    - matches:\n"
                     "        - path: /exact\n"
                     "        - path: {prefix: /pre/}\n"
                     "        - path: {regex: \"^/v[0-9]+/items$\"}\n"
                     "        - path: /a/*/b.json\n"
                     "        - path: /files*\n"
                     "          method: GET\n"
                     "          headers:\n"
                     "            X-User: alice\n"
                     "            x-tier: {prefix: gold}\n"
                     "            x-id: {regex: \"[0-9]+\"}\n"
                     "            X-Debug: {present: true}\n"
                     "      destinations: [{host: web}]\n"
                     "    - matches: [{path: /x}, {}]\n"
                     "      destinations: [{host: web}]\n",
                 NULL, &t);
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "m");
    assert_text(vs, "spec.hosts[0]", "api.example.com");
    assert_int_equal(len_at(vs, "spec.http[0].match"), 5);
    assert_text(vs, "spec.http[0].match[0].uri.exact", "/exact");
    assert_text(vs, "spec.http[0].match[1].uri.prefix", "/pre/");
    assert_text(vs, "spec.http[0].match[2].uri.regex", "^/v[0-9]+/items$");
    /* A glob with a * inside is a regex, its other characters literal. */
    assert_text(vs, "spec.http[0].match[3].uri.regex", "/a/.*/b\\.json");
    /* One * at the end is a prefix. */
    assert_text(vs, "spec.http[0].match[4].uri.prefix", "/files");
    assert_text(vs, "spec.http[0].match[4].method.exact", "GET");
    /* Header names in lower case, as Istio wants them. */
    const struct mesh_node *h = at(vs, "spec.http[0].match[4].headers");
    assert_int_equal(h->len, 4);
    assert_text(h, "x-user.exact", "alice");
    assert_text(h, "x-tier.prefix", "gold");
    assert_text(h, "x-id.regex", "[0-9]+");
    assert_text(h, "x-debug.regex", ".*");
    assert_absent(h, "X-User");
    /* A match that takes every request makes the route unconditional. */
    assert_absent(vs, "spec.http[1].match");
    /* web's own DestinationRule: its round-robin balancing. */
    const struct mesh_node *dr = must_find(&t, "DestinationRule", "default", "web");
    assert_text(dr, "spec.host", "web.default.svc.cluster.local");
    assert_text(dr, "spec.trafficPolicy.loadBalancer.simple", "ROUND_ROBIN");
    mesh_translation_clear(&t);
}

static void test_retries_and_timeouts(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR
                 "kind: VirtualService\nmetadata: {name: r}\n"
                 "spec:\n  hosts: [orders]\n  http_routes:\n"
                 "    - name: full\n      timeout: 2500ms\n"
                 "      retries: {attempts: 3, per_try_timeout: 500ms, retry_on: [5xx, reset]}\n"
                 "      destinations: [{host: orders}]\n"
                 "    - name: bare\n      timeout: 1m\n      retries: {attempts: 2}\n"
                 "      destinations: [{host: orders}]\n"
                 "    - name: none\n      destinations: [{host: orders}]\n",
                 NULL, &t);
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "r");
    assert_text(vs, "spec.http[0].name", "full");
    assert_text(vs, "spec.http[0].timeout", "2.5s");
    assert_text(vs, "spec.http[0].retries.attempts", "3");
    assert_text(vs, "spec.http[0].retries.perTryTimeout", "500ms");
    assert_text(vs, "spec.http[0].retries.retryOn", "5xx,reset");
    /* Retries without conditions retry on ours, spelled out. */
    assert_text(vs, "spec.http[1].timeout", "1m");
    assert_text(vs, "spec.http[1].retries.attempts", "2");
    assert_text(vs, "spec.http[1].retries.retryOn", "gateway-error,connect-failure,reset");
    assert_absent(vs, "spec.http[1].retries.perTryTimeout");
    /* No retries is said, or Istio would retry twice. */
    assert_text(vs, "spec.http[2].retries.attempts", "0");
    assert_int_equal(len_at(vs, "spec.http[2].retries"), 1);
    assert_absent(vs, "spec.http[2].timeout");
    mesh_translation_clear(&t);
}

/* --- faults --- */

/* A VirtualService with two routes, a fault for all of it and one for its checkout route. */
#define FAULT_ROUTES_YAML                                                                          \
    HDR "kind: VirtualService\nmetadata: {name: shop}\n"                                           \
        "spec:\n  hosts: [shop.example.com]\n  http_routes:\n"                                     \
        "    - name: checkout\n      destinations: [{host: orders}]\n"                             \
        "    - name: browse\n      destinations: [{host: web}]\n"                                  \
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: a-whole}\n"                            \
        "spec: {service: shop, delay: 2s, delay_percentage: 12.5}\n"                               \
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: b-checkout}\n"                         \
        "spec: {service: shop, route: checkout, abort: {http_status: 500}}\n"

static const char fault_routes_yaml[] = FAULT_ROUTES_YAML;

static void test_faults_on_routes_and_services(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(fault_routes_yaml, NULL, &t);
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "shop");
    /* The fault naming the route beats the VirtualService-wide one. */
    assert_text(vs, "spec.http[0].fault.abort.httpStatus", "500");
    assert_text(vs, "spec.http[0].fault.abort.percentage.value", "100");
    assert_absent(vs, "spec.http[0].fault.delay");
    assert_text(vs, "spec.http[1].fault.delay.fixedDelay", "2s");
    assert_text(vs, "spec.http[1].fault.delay.percentage.value", "12.5");
    assert_absent(vs, "spec.http[1].fault.abort");
    mesh_translation_clear(&t);

    /* A fault on a Service: on the routes that go only there, and on its own host for callers
     * that name it directly (no VirtualService of the mesh names it). */
    translate_ok(HDR "kind: VirtualService\nmetadata: {name: shop}\n"
                     "spec:\n  hosts: [shop.example.com]\n  http_routes:\n"
                     "    - destinations: [{host: web}]\n"
                     "---\n" HDR "kind: FaultInjection\nmetadata: {name: slow-web}\n"
                     "spec: {service: web, delay: 300ms}\n",
                 NULL, &t);
    vs = must_find(&t, "VirtualService", "default", "shop");
    assert_text(vs, "spec.http[0].fault.delay.fixedDelay", "300ms");
    const struct mesh_node *direct = must_find(&t, "VirtualService", "default", "slow-web");
    assert_text(direct, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "FaultInjection/default/slow-web");
    assert_text(direct, "spec.hosts[0]", "web.default.svc.cluster.local");
    assert_text(direct, "spec.http[0].route[0].destination.host", "web.default.svc.cluster.local");
    assert_text(direct, "spec.http[0].fault.delay.fixedDelay", "300ms");
    assert_text(direct, "spec.http[0].retries.attempts", "0");
    mesh_translation_clear(&t);

    /* A VirtualService of the mesh on the Service's own host carries it instead. */
    translate_ok(HDR "kind: VirtualService\nmetadata: {name: web-route}\n"
                     "spec:\n  hosts: [web.default.svc]\n  http_routes:\n"
                     "    - destinations: [{host: web}]\n"
                     "---\n" HDR "kind: FaultInjection\nmetadata: {name: web}\n"
                     "spec: {service: web, abort: {http_status: 503, percentage: 5}}\n",
                 NULL, &t);
    assert_int_equal(count_kind(&t, "VirtualService"), 1);
    vs = must_find(&t, "VirtualService", "default", "web-route");
    assert_text(vs, "spec.hosts[0]", "web.default.svc.cluster.local");
    assert_text(vs, "spec.http[0].fault.abort.percentage.value", "5");
    mesh_translation_clear(&t);
}

static const char split_fault_yaml[] =
    HDR "kind: VirtualService\nmetadata: {name: pay}\n"
        "spec:\n  hosts: [payment]\n  http_routes:\n"
        "    - destinations: [{host: payment-v1, weight: 90}, {host: payment-v2, weight: 10}]\n"
        "    - name: v2-only\n      matches: [{path: /v2/*}]\n"
        "      destinations: [{host: payment-v2}]\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: v2-slow}\n"
        "spec: {service: payment-v2, delay: 1s}\n";

static void test_fault_on_one_destination_of_a_split_is_refused(void **state)
{
    (void)state;
    char *err = translate_fails(split_fault_yaml, NULL, MESH_E_UNSUPPORTED);
    char *want =
        with_note("FaultInjection default/v2-slow spec.service: istio cannot express fault "
                  "injection: delay: ",
                  MESH_FEAT_FAULT_DELAY);
    assert_string_equal(err, want);
    free(want);
    free(err);

    /* Allowed partial: the split route goes without it, with the same sentence as a warning;
     * the route to v2 alone and v2's own host keep it. */
    struct mesh_translate_options opt = {.allow_partial = true};
    struct mesh_translation t;
    translate_ok(split_fault_yaml, &opt, &t);
    assert_int_equal(t.warnings.len, 1);
    assert_non_null(strstr(t.warnings.items[0].message,
                           "FaultInjection default/v2-slow spec.service: istio cannot express"));
    assert_string_equal(t.warnings.items[0].path, "spec.service");
    const struct mesh_node *vs = must_find(&t, "VirtualService", "default", "pay");
    assert_absent(vs, "spec.http[0].fault");
    assert_text(vs, "spec.http[1].fault.delay.fixedDelay", "1s");
    assert_text(vs, "spec.http[1].route[0].destination.subset", "v2");
    const struct mesh_node *direct = must_find(&t, "VirtualService", "default", "v2-slow");
    assert_text(direct, "spec.hosts[0]", "payment-v2.default.svc.cluster.local");
    mesh_translation_clear(&t);

    /* A route with a fault of its own and a Service's: one fault per route, refused. */
    err = translate_fails(HDR "kind: VirtualService\nmetadata: {name: w}\n"
                              "spec:\n  hosts: [w.example.com]\n  http_routes:\n"
                              "    - destinations: [{host: web}]\n"
                              "---\n" HDR "kind: FaultInjection\nmetadata: {name: on-route}\n"
                              "spec: {service: w, delay: 1s}\n"
                              "---\n" HDR "kind: FaultInjection\nmetadata: {name: on-web}\n"
                              "spec: {service: web, abort: {http_status: 502}}\n",
                          NULL, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(err, "FaultInjection default/on-web spec.service: istio cannot express "
                                "fault injection: abort: "));
    free(err);
}

/* --- circuit breakers --- */

static void test_breaker_and_outlier_detection(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR "kind: VirtualService\nmetadata: {name: pay}\n"
                     "spec:\n  hosts: [payment]\n  http_routes:\n"
                     "    - destinations: [{host: payment-v1, weight: 50}, "
                     "{host: payment-v2, weight: 50}]\n"
                     "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: v1-limits}\n"
                     "spec:\n  service: payment-v1\n  max_connections: 10\n"
                     "  max_pending_requests: 20\n  max_requests: 30\n  max_retries: 4\n"
                     "  detection: {consecutive_errors: 7, interval: 5s, base_ejection_time: 1m,"
                     " max_ejection_percent: 20}\n"
                     "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: orders}\n"
                     "spec: {service: orders, max_connections: 5}\n",
                 NULL, &t);
    /* Only v1 has limits: they go on its subset, not on the whole host. */
    const struct mesh_node *dr = must_find(&t, "DestinationRule", "default", "payment");
    assert_absent(dr, "spec.trafficPolicy");
    assert_text(dr, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "CircuitBreaker/default/v1-limits");
    const struct mesh_node *tp = at(dr, "spec.subsets[0].trafficPolicy");
    assert_non_null(tp);
    assert_text(dr, "spec.subsets[0].name", "v1");
    assert_text(tp, "connectionPool.tcp.maxConnections", "10");
    assert_text(tp, "connectionPool.http.http1MaxPendingRequests", "20");
    assert_text(tp, "connectionPool.http.http2MaxRequests", "30");
    assert_text(tp, "connectionPool.http.maxRetries", "4");
    assert_text(tp, "outlierDetection.consecutive5xxErrors", "7");
    assert_text(tp, "outlierDetection.interval", "5s");
    assert_text(tp, "outlierDetection.baseEjectionTime", "1m");
    assert_text(tp, "outlierDetection.maxEjectionPercent", "20");
    assert_absent(dr, "spec.subsets[1].trafficPolicy");
    /* Callers naming payment-v1 itself get the same limits. */
    dr = must_find(&t, "DestinationRule", "default", "payment-v1");
    assert_text(dr, "spec.host", "payment-v1.default.svc.cluster.local");
    assert_text(dr, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "10");
    assert_null(find(&t, "DestinationRule", "default", "payment-v2"));
    /* A limit alone: no http pool, no outlier detection. */
    dr = must_find(&t, "DestinationRule", "default", "orders");
    assert_text(dr, "spec.host", "orders.default.svc.cluster.local");
    assert_text(dr, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "5");
    assert_absent(dr, "spec.trafficPolicy.connectionPool.http");
    assert_absent(dr, "spec.trafficPolicy.outlierDetection");
    mesh_translation_clear(&t);

    /* The seed's breaker names the VirtualService: both versions share it, so it sits at the top
     * of the app's rule, with our 50% ejection cap spelled out (Istio's would be 10%). */
    struct input in = {0};
    input_add_file(&in, "examples/services.yaml");
    input_add_file(&in, "examples/payment-virtual-service.yaml");
    input_add_file(&in, "examples/payment-circuit-breaker.yaml");
    char *err = NULL;
    assert_int_equal(translate_input(&in, NULL, &t, &err), MESH_OK);
    dr = must_find(&t, "DestinationRule", "default", "payment");
    assert_text(dr, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "100");
    assert_text(dr, "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", "100");
    assert_text(dr, "spec.trafficPolicy.connectionPool.http.http2MaxRequests", "1000");
    assert_text(dr, "spec.trafficPolicy.connectionPool.http.maxRetries", "3");
    assert_text(dr, "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", "5");
    assert_text(dr, "spec.trafficPolicy.outlierDetection.interval", "10s");
    assert_text(dr, "spec.trafficPolicy.outlierDetection.baseEjectionTime", "30s");
    assert_text(dr, "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "50");
    assert_absent(dr, "spec.subsets[0].trafficPolicy");
    assert_absent(dr, "spec.subsets[1].trafficPolicy");
    assert_int_equal(count_kind(&t, "DestinationRule"), 3);
    mesh_translation_clear(&t);
    input_free(&in);
}

/* --- mTLS --- */

static void test_peer_authentication_modes(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR
                 "kind: SecurityPolicy\nmetadata: {name: ns-strict}\nspec: {mtls: {mode: strict}}\n"
                 "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: a-ns-permissive}\n"
                 "spec: {mtls: {mode: permissive}}\n"
                 "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: legacy}\n"
                 "spec: {services: [orders, payment-v1, cart.shop], mtls: {mode: disable}}\n"
                 "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: orders-permissive}\n"
                 "spec: {services: [orders.default.svc], mtls: {mode: permissive}}\n",
                 NULL, &t);
    /* Of two namespace-wide policies the strictest is the one Istio gets. */
    const struct mesh_node *pa = must_find(&t, "PeerAuthentication", "default", "ns-strict");
    assert_text(pa, "apiVersion", "security.istio.io/v1");
    assert_text(pa, "spec.mtls.mode", "STRICT");
    assert_absent(pa, "spec.selector");
    assert_null(find(&t, "PeerAuthentication", "default", "a-ns-permissive"));
    /* One policy for three services: one PeerAuthentication each, named for its workloads. A
     * version selects app and version; another namespace gets its own. */
    pa = must_find(&t, "PeerAuthentication", "default", "legacy-payment-v1");
    assert_text(pa, "spec.mtls.mode", "DISABLE");
    assert_text(pa, "spec.selector.matchLabels.app", "payment");
    assert_text(pa, "spec.selector.matchLabels.version", "v1");
    pa = must_find(&t, "PeerAuthentication", "shop", "legacy-cart");
    assert_text(pa, "spec.selector.matchLabels.app", "cart");
    assert_text(pa, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "SecurityPolicy/default/legacy");
    /* orders is named twice: the strictest (permissive) wins, and only it is written. */
    assert_null(find(&t, "PeerAuthentication", "default", "legacy-orders"));
    pa = must_find(&t, "PeerAuthentication", "default", "orders-permissive");
    assert_text(pa, "spec.mtls.mode", "PERMISSIVE");
    assert_text(pa, "spec.selector.matchLabels.app", "orders");
    assert_int_equal(count_kind(&t, "PeerAuthentication"), 4);
    /* No MeshConfig: no mesh-wide objects, and no DestinationRule TLS (auto-mTLS is on). */
    assert_null(find(&t, "PeerAuthentication", "istio-system", "default"));
    assert_null(find(&t, "DestinationRule", "default", "orders"));
    mesh_translation_clear(&t);
}

static void test_mesh_wide_mtls_and_auto_mtls_off(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(
        MESH_ISTIO(
            ", mtls: {enabled: false, auto_upgrade: false}") "---\n" HDR
                                                             "kind: SecurityPolicy\nmetadata: "
                                                             "{name: pay-strict}\n"
                                                             "spec: {services: [payment], mtls: "
                                                             "{mode: strict}}\n",
        NULL, &t);
    /* mtls.enabled: false is a mesh-wide DISABLE in the root namespace. */
    const struct mesh_node *pa = must_find(&t, "PeerAuthentication", "istio-system", "default");
    assert_text(pa, "apiVersion", "security.istio.io/v1beta1");
    assert_text(pa, "spec.mtls.mode", "DISABLE");
    assert_text(pa, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                "MeshConfig/default/istio");
    pa = must_find(&t, "PeerAuthentication", "default", "pay-strict");
    assert_text(pa, "spec.selector.matchLabels.app", "payment");
    assert_absent(pa, "spec.selector.matchLabels.version");
    /* With auto-mTLS off, clients of the strict versions must ask for ISTIO_MUTUAL; the others
     * are left alone. */
    const struct mesh_node *dr = must_find(&t, "DestinationRule", "default", "payment-v1");
    assert_text(dr, "spec.trafficPolicy.tls.mode", "ISTIO_MUTUAL");
    dr = must_find(&t, "DestinationRule", "default", "payment-v2");
    assert_text(dr, "spec.trafficPolicy.tls.mode", "ISTIO_MUTUAL");
    assert_null(find(&t, "DestinationRule", "default", "orders"));
    /* Round robin is spelled the same in every version. */
    dr = must_find(&t, "DestinationRule", "default", "web");
    assert_text(dr, "spec.trafficPolicy.loadBalancer.simple", "ROUND_ROBIN");
    assert_absent(dr, "spec.trafficPolicy.tls");
    mesh_translation_clear(&t);
}

/* --- authorization --- */

static void test_authorization_policies(void **state)
{
    (void)state;
    struct mesh_translation t;
    translate_ok(HDR "kind: SecurityPolicy\nmetadata: {name: access}\nspec:\n  authorization:\n"
                     "    - from: [orders.default.svc, spiffe://example.org/ns/ops/sa/admin]\n"
                     "      to: [payment, web]\n"
                     "      methods: [GET, POST]\n"
                     "      paths: [/api/*, /health]\n"
                     "    - from: [\"*\"]\n      to: [web]\n      paths: [\"*\"]\n"
                     "    - from: [nobody.default.example]\n      to: [cart.shop]\n",
                 NULL, &t);
    /* One policy per workload the rules cover, named for it. */
    assert_int_equal(count_kind(&t, "AuthorizationPolicy"), 3);
    const struct mesh_node *ap = must_find(&t, "AuthorizationPolicy", "default", "access-payment");
    assert_text(ap, "apiVersion", "security.istio.io/v1");
    assert_text(ap, "spec.action", "ALLOW");
    assert_text(ap, "spec.selector.matchLabels.app", "payment");
    assert_int_equal(len_at(ap, "spec.rules"), 1);
    /* orders names its service account and those of every Service labelled app: orders;
     * a SPIFFE ID is taken as it is, without its scheme. Sorted. */
    const struct mesh_node *p = at(ap, "spec.rules[0].from[0].source.principals");
    assert_int_equal(p->len, 3);
    assert_text(p, "[0]", "cluster.local/ns/default/sa/orders");
    assert_text(p, "[1]", "cluster.local/ns/default/sa/orders-canary");
    assert_text(p, "[2]", "example.org/ns/ops/sa/admin");
    assert_text(ap, "spec.rules[0].to[0].operation.methods[1]", "POST");
    assert_text(ap, "spec.rules[0].to[0].operation.paths[0]", "/api/*");
    assert_text(ap, "spec.rules[0].to[0].operation.paths[1]", "/health");
    /* web gets both rules; "*" is anyone (plaintext too): no from; path "*" is any path. */
    ap = must_find(&t, "AuthorizationPolicy", "default", "access-web");
    assert_text(ap, "spec.selector.matchLabels.app", "web");
    assert_int_equal(len_at(ap, "spec.rules"), 2);
    assert_non_null(at(ap, "spec.rules[0].from"));
    assert_absent(ap, "spec.rules[1].from");
    assert_absent(ap, "spec.rules[1].to");
    assert_int_equal(len_at(ap, "spec.rules[1]"), 0);
    /* A rule whose from names nobody matches nothing: the policy then denies everything. */
    ap = must_find(&t, "AuthorizationPolicy", "shop", "access-cart");
    assert_text(ap, "spec.selector.matchLabels.app", "cart");
    assert_absent(ap, "spec.rules");
    mesh_translation_clear(&t);

    /* A trust domain of its own. */
    struct mesh_translate_options opt = {.cluster_domain = "corp.example"};
    translate_ok(HDR "kind: SecurityPolicy\nmetadata: {name: one}\nspec:\n  authorization:\n"
                     "    - {from: [web.default], to: [payment-v2]}\n",
                 &opt, &t);
    ap = must_find(&t, "AuthorizationPolicy", "default", "one");
    assert_text(ap, "spec.selector.matchLabels.app", "payment");
    assert_text(ap, "spec.selector.matchLabels.version", "v2");
    assert_text(ap, "spec.rules[0].from[0].source.principals[0]", "corp.example/ns/default/sa/web");
    mesh_translation_clear(&t);
}

/* --- versions --- */

static void check_api_versions(const char *version, const char *net, const char *sec,
                               const char *tel, const char *lb)
{
    struct mesh_translate_options opt = {.version = version};
    struct mesh_translation t;
    translate_ok(
        MESH_ISTIO(
            ", telemetry: {sampling_rate: 12.5}") "---\n" HDR
                                                  "kind: VirtualService\nmetadata: {name: v}\n"
                                                  "spec: {hosts: [orders], http_routes: "
                                                  "[{destinations: [{host: orders}]}]}\n"
                                                  "---\n" HDR
                                                  "kind: SecurityPolicy\nmetadata: {name: s}\n"
                                                  "spec: {mtls: {mode: strict}, authorization: "
                                                  "[{to: [orders]}]}\n"
                                                  "---\n" HDR
                                                  "kind: Service\nmetadata: {name: lr}\n"
                                                  "spec: {load_balancer: least_request, endpoints: "
                                                  "[\"127.0.0.1:1\"]}\n",
        &opt, &t);
    assert_text(must_find(&t, "VirtualService", "default", "v"), "apiVersion", net);
    assert_text(must_find(&t, "PeerAuthentication", "default", "s"), "apiVersion", sec);
    assert_text(must_find(&t, "AuthorizationPolicy", "default", "s"), "apiVersion", sec);
    const struct mesh_node *tel_obj = must_find(&t, "Telemetry", "istio-system", "mesh-default");
    assert_text(tel_obj, "apiVersion", tel);
    assert_text(tel_obj, "spec.tracing[0].randomSamplingPercentage", "12.5");
    const struct mesh_node *dr = must_find(&t, "DestinationRule", "default", "lr");
    assert_text(dr, "apiVersion", net);
    assert_text(dr, "spec.trafficPolicy.loadBalancer.simple", lb);
    mesh_translation_clear(&t);
}

static void test_api_versions_follow_the_istio_version(void **state)
{
    (void)state;
    /* NULL: the MeshConfig's 1.14. */
    check_api_versions(NULL, "networking.istio.io/v1beta1", "security.istio.io/v1beta1",
                       "telemetry.istio.io/v1alpha1", "LEAST_CONN");
    check_api_versions("1.21.4", "networking.istio.io/v1beta1", "security.istio.io/v1beta1",
                       "telemetry.istio.io/v1alpha1", "LEAST_CONN");
    check_api_versions("1.22", "networking.istio.io/v1", "security.istio.io/v1",
                       "telemetry.istio.io/v1", "LEAST_REQUEST");
    check_api_versions("v1.30", "networking.istio.io/v1", "security.istio.io/v1",
                       "telemetry.istio.io/v1", "LEAST_REQUEST");
    check_api_versions("2.0", "networking.istio.io/v1", "security.istio.io/v1",
                       "telemetry.istio.io/v1", "LEAST_REQUEST");

    struct mesh_translate_options opt = {.version = "1.13"};
    char *err = translate_fails(MESH_ISTIO(""), &opt, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(err, "istio 1.13 is older than 1.14"));
    free(err);
    opt.version = "latest";
    err = translate_fails(MESH_ISTIO(""), &opt, MESH_E_INVALID);
    assert_non_null(strstr(err, "\"latest\" is not a version"));
    free(err);
    /* The MeshConfig's own version counts when none is asked for. */
    err = translate_fails(HDR "kind: MeshConfig\nmetadata: {name: istio}\n"
                              "spec: {provider: istio, version: \"1.9\"}\n",
                          NULL, MESH_E_UNSUPPORTED);
    free(err);
}

/* --- refusals and warnings --- */

static void test_proxy_resources_refused_or_warned(void **state)
{
    (void)state;
    const char *yaml = MESH_ISTIO(", proxy: {resources: {cpu: 100m, memory: 128Mi}},"
                                  " ha: {enabled: true, replicas: 3}");
    char *err = translate_fails(yaml, NULL, MESH_E_UNSUPPORTED);
    char *want = with_note("MeshConfig default/istio spec.proxy.resources: istio cannot express "
                           "proxy resources (cpu, memory): ",
                           MESH_FEAT_PROXY_RESOURCES);
    assert_string_equal(err, want);
    free(err);

    struct mesh_translate_options opt = {.allow_partial = true};
    struct mesh_translation t;
    translate_ok(yaml, &opt, &t);
    assert_int_equal(t.warnings.len, 2);
    assert_string_equal(t.warnings.items[0].message, want);
    assert_non_null(strstr(t.warnings.items[1].message,
                           "MeshConfig default/istio spec.ha: istio cannot express"));
    free(want);
    mesh_translation_clear(&t);
}

static void test_capability_table(void **state)
{
    (void)state;
    assert_string_equal(mesh_translator_istio.name, "istio");
    assert_int_equal(mesh_translator_istio.n_caps, MESH_FEAT_COUNT);
    for (size_t i = 0; i < mesh_translator_istio.n_caps; i++) {
        const struct mesh_capability *cap = &mesh_translator_istio.caps[i];
        assert_int_equal(cap->feature, (enum mesh_feature)i);
        assert_non_null(cap->note);
        assert_true(strlen(cap->note) > 10);
        assert_null(strchr(cap->note, '\n'));
    }
    /* What Istio really cannot do: proxy resources; faults only per route. */
    assert_int_equal(mesh_translator_istio.caps[MESH_FEAT_PROXY_RESOURCES].support,
                     MESH_SUPPORT_NONE);
    assert_int_equal(mesh_translator_istio.caps[MESH_FEAT_FAULT_DELAY].support,
                     MESH_SUPPORT_PARTIAL);
    assert_int_equal(mesh_translator_istio.caps[MESH_FEAT_WEIGHTED_SPLIT].support,
                     MESH_SUPPORT_FULL);
}

static void test_unresolvable_references_are_invalid(void **state)
{
    (void)state;
    char *err = translate_fails(HDR "kind: VirtualService\nmetadata: {name: lost}\n"
                                    "spec:\n  hosts: [x.example.com]\n  http_routes:\n"
                                    "    - destinations: [{host: orders}]\n"
                                    "    - destinations: [{host: payment-v3, weight: 100}]\n",
                                NULL, MESH_E_INVALID);
    assert_non_null(strstr(err, "VirtualService default/lost "
                                "spec.http_routes[1].destinations[0].host: \"payment-v3\" names "
                                "no Service"));
    free(err);
    err = translate_fails(HDR "kind: CircuitBreaker\nmetadata: {name: cb}\n"
                              "spec: {service: nothing, max_connections: 1}\n",
                          NULL, MESH_E_INVALID);
    assert_non_null(strstr(err, "CircuitBreaker default/cb spec.service: \"nothing\" names no "
                                "Service or VirtualService"));
    free(err);
    err = translate_fails(FAULT_ROUTES_YAML "---\n" HDR
                                            "kind: FaultInjection\nmetadata: {name: c-typo}\n"
                                            "spec: {service: shop, route: chekout, delay: 1s}\n",
                          NULL, MESH_E_INVALID);
    assert_non_null(strstr(err, "has no route named \"chekout\""));
    free(err);
}

/* --- a stable output --- */

static char *render(struct input *in)
{
    struct mesh_translation t;
    char *err = NULL;
    assert_int_equal(translate_input(in, NULL, &t, &err), MESH_OK);
    char *yaml = NULL;
    assert_int_equal(mesh_translation_print(&t, MESH_FORMAT_YAML, &yaml), MESH_OK);
    mesh_translation_clear(&t);
    return yaml;
}

static void test_output_is_deterministic(void **state)
{
    (void)state;
    struct input in = {0};
    input_add_examples(&in);
    input_add_text(&in, fault_routes_yaml, "faults.yaml");
    input_add_text(&in,
                   HDR "kind: SecurityPolicy\nmetadata: {name: z-access}\nspec:\n"
                       "  services: [orders]\n  mtls: {mode: permissive}\n  authorization:\n"
                       "    - {from: [orders.default, web.default], to: [orders, web, cart.shop]}\n"
                       "---\n" HDR "kind: Service\nmetadata: {name: web}\n"
                       "spec: {endpoints: [\"127.0.0.1:9\"]}\n"
                       "---\n" HDR "kind: Service\nmetadata: {name: cart, namespace: shop}\n"
                       "spec: {endpoints: [\"127.0.0.1:9\"]}\n",
                   "more.yaml");
    char *first = render(&in);
    char *again = render(&in);
    assert_string_equal(first, again);
    free(again);
    /* Reversed, then rotated: the same bytes. */
    for (size_t i = 0; i < in.n / 2; i++) {
        struct mesh_resource *tmp = in.res[i];
        in.res[i] = in.res[in.n - 1 - i];
        in.res[in.n - 1 - i] = tmp;
    }
    char *reversed = render(&in);
    assert_string_equal(first, reversed);
    free(reversed);
    for (size_t r = 0; r < 7; r++) {
        struct mesh_resource *head = in.res[0];
        memmove(in.res, in.res + 1, (in.n - 1) * sizeof(*in.res));
        in.res[in.n - 1] = head;
    }
    char *rotated = render(&in);
    assert_string_equal(first, rotated);
    free(rotated);
    /* And it is what the pieces say: the stable order is kind, namespace, name. */
    assert_non_null(strstr(first, "kind: AuthorizationPolicy"));
    assert_true(strstr(first, "kind: AuthorizationPolicy") < strstr(first, "kind: VirtualService"));
    free(first);
    input_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_translate_together),
        cmocka_unit_test(test_each_example_translates),
        cmocka_unit_test(test_split_uses_subsets_of_the_app_host),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_retries_and_timeouts),
        cmocka_unit_test(test_faults_on_routes_and_services),
        cmocka_unit_test(test_fault_on_one_destination_of_a_split_is_refused),
        cmocka_unit_test(test_breaker_and_outlier_detection),
        cmocka_unit_test(test_peer_authentication_modes),
        cmocka_unit_test(test_mesh_wide_mtls_and_auto_mtls_off),
        cmocka_unit_test(test_authorization_policies),
        cmocka_unit_test(test_api_versions_follow_the_istio_version),
        cmocka_unit_test(test_proxy_resources_refused_or_warned),
        cmocka_unit_test(test_capability_table),
        cmocka_unit_test(test_unresolvable_references_are_invalid),
        cmocka_unit_test(test_output_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
