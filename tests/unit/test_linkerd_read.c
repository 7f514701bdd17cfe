/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Linkerd reader (src/provider/linkerd_read.c): the round trip of every example
 * and of the translator's own cases (translate, read back with the Services as Kubernetes holds
 * them, translate again: the same bytes), what the read-back resources say, hand-written objects,
 * and malformed ones. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/circuit_breaker.h"
#include "mesh/document.h"
#include "mesh/fault_injection.h"
#include "mesh/mesh_config.h"
#include "mesh/resource.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/model.h"
#include "model/node.h"
#include "provider/translate.h"

#include "translation_check.h"

#define HDR            "apiVersion: mesh.clusterdb.io/v1\n"
#define VS(name, body) HDR "kind: VirtualService\nmetadata: {name: " name "}\nspec:\n" body
#define SP(name, body) HDR "kind: SecurityPolicy\nmetadata: {name: " name "}\nspec:\n" body

/* --- the round trip --- */

/* x, t1 = translate(x), the objects read (t1's and x's Services as v1 Services), y = read(them),
 * t2 = translate(y), both printed. */
struct trip {
    struct input x;
    struct mesh_translation t1, t2;
    struct mesh_node **svc_objs;
    size_t n_svc;
    struct mesh_resource **y;
    size_t ny;
    struct mesh_diags warnings;
    char *p1, *p2;
};

static void trip_clear(struct trip *t)
{
    input_free(&t->x);
    mesh_translation_clear(&t->t1);
    mesh_translation_clear(&t->t2);
    for (size_t i = 0; i < t->n_svc; i++)
        mesh_node_free(t->svc_objs[i]);
    free(t->svc_objs);
    mesh_resource_list_free(t->y, t->ny);
    mesh_diags_clear(&t->warnings);
    free(t->p1);
    free(t->p2);
    memset(t, 0, sizeof(*t));
}

static void translate(const struct mesh_resource *const *res, size_t n, const char *version,
                      struct mesh_translation *out, const char *what)
{
    struct mesh_translate_options opt = {.version = version, .allow_partial = true};
    char *errmsg = NULL;
    enum mesh_err err = mesh_translator_linkerd.translate(res, n, &opt, out, &errmsg);
    if (err != MESH_OK)
        fail_msg("%s: translate: %s: %s", what, mesh_err_name(err), errmsg ? errmsg : "");
}

/* Reads objs (borrowed) back; fails the test unless MESH_OK. */
static void read_back(struct mesh_node *const *objs, size_t n, const char *version,
                      struct mesh_resource ***out, size_t *n_out, struct mesh_diags *warnings)
{
    struct mesh_translate_options opt = {.version = version, .allow_partial = true};
    assert_non_null(mesh_translator_linkerd.read);
    assert_int_equal(mesh_translator_linkerd.read(objs, n, &opt, out, n_out, warnings), MESH_OK);
}

/* The whole round trip of t->x; services_first puts the v1 Services before the translation's
 * objects (the partial Service objects it writes meet the full ones in either order). */
static void trip_run(struct trip *t, const char *version, bool services_first, const char *what)
{
    translate((const struct mesh_resource *const *)t->x.res, t->x.n, version, &t->t1, what);
    for (size_t i = 0; i < t->x.n; i++) {
        if (t->x.res[i]->kind != MESH_KIND_SERVICE)
            continue;
        t->svc_objs = realloc(t->svc_objs, (t->n_svc + 1) * sizeof(*t->svc_objs));
        assert_non_null(t->svc_objs);
        t->svc_objs[t->n_svc++] =
            mesh_kube_service_object((const struct mesh_service *)t->x.res[i]);
    }
    size_t n = t->t1.n_objects + t->n_svc;
    struct mesh_node **objs = calloc(n + 1, sizeof(*objs));
    assert_non_null(objs);
    size_t k = 0;
    for (size_t i = 0; services_first && i < t->n_svc; i++)
        objs[k++] = t->svc_objs[i];
    for (size_t i = 0; i < t->t1.n_objects; i++)
        objs[k++] = t->t1.objects[i];
    for (size_t i = 0; !services_first && i < t->n_svc; i++)
        objs[k++] = t->svc_objs[i];
    read_back(objs, n, version, &t->y, &t->ny, &t->warnings);
    free(objs);
    translate((const struct mesh_resource *const *)t->y, t->ny, version, &t->t2, what);
    t->p1 = translation_yaml(&t->t1);
    t->p2 = translation_yaml(&t->t2);
    if (strcmp(t->p1, t->p2) != 0) {
        char *ys = NULL;
        mesh_print_documents((const struct mesh_resource *const *)t->y, t->ny, MESH_FORMAT_YAML,
                             &ys);
        for (size_t i = 0; i < t->warnings.len; i++)
            print_message("read warning: %s\n", t->warnings.items[i].message);
        fail_msg("%s at linkerd %s: the round trip differs\n--- translate(x):\n%s\n--- read "
                 "back:\n%s\n--- translate(read back):\n%s",
                 what, version, t->p1, ys ? ys : "", t->p2);
    }
}

/* The resource of that kind and name read back (any namespace), or NULL. */
static const struct mesh_resource *found(const struct trip *t, enum mesh_kind kind,
                                         const char *name)
{
    return find_resource(t->y, t->ny, kind, NULL, name);
}

static const struct mesh_resource *must_read(const struct trip *t, enum mesh_kind kind,
                                             const char *name)
{
    return must_find_resource(t->y, t->ny, kind, NULL, name);
}

static void assert_warned(const struct mesh_diags *w, const char *part)
{
    if (diags_has_part(w, part))
        return;
    for (size_t i = 0; i < w->len; i++)
        print_message("warning: %s\n", w->items[i].message);
    fail_msg("no warning with \"%s\" among %zu", part, w->len);
}

static void example_input(struct input *in, const char *path)
{
    if (strcmp(path, "examples/mesh-linkerd.yaml"))
        input_add_file(in, "examples/mesh-linkerd.yaml");
    if (strcmp(path, "examples/services.yaml"))
        input_add_file(in, "examples/services.yaml");
    if (example_context(path))
        input_add_file(in, example_context(path));
    input_add_file(in, path);
}

static const char *const versions[] = {"2.20", "2.11"};

static void test_linkerd_read_examples_round_trip(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 10);
    size_t objects_2_20 = 0;
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            for (int first = 0; first < 2; first++) {
                struct trip t = {0};
                example_input(&t.x, g.gl_pathv[i]);
                trip_run(&t, versions[v], first, g.gl_pathv[i]);
                if (!v && !first)
                    objects_2_20 += t.t1.n_objects;
                trip_clear(&t);
            }
        }
        /* The whole directory at once. */
        for (int first = 0; first < 2; first++) {
            struct trip t = {0};
            for (size_t i = 0; i < g.gl_pathc; i++)
                input_add_file(&t.x, g.gl_pathv[i]);
            trip_run(&t, versions[v], first, "examples/");
            if (!v)
                assert_int_equal(t.t1.n_objects, 11); /* tests/golden/linkerd-2.20/examples.yaml */
            trip_clear(&t);
        }
    }
    /* Not a trip of empty translations: the examples give routes, policies and breakers. */
    assert_true(objects_2_20 >= 20);
    globfree(&g);
}

/* The translator's own cases (tests/unit/test_linkerd.c), each a round trip. */
static const char services_yaml[] = HDR
    "kind: Service\nmetadata: {name: payment-v1, labels: {app: payment, version: v1}}\n"
    "spec: {endpoints: [\"10.0.0.1:8081\", \"10.0.0.2:8081\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: payment-v2, labels: {app: payment, version: v2}}\n"
    "spec: {protocol: http2, endpoints: [\"10.0.0.3:8082\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: orders}\n"
    "spec: {endpoints: [\"10.0.0.4:8083\", \"10.0.0.5:9999\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: cart, namespace: shop, labels: {app: cart}}\n"
    "spec: {endpoints: [\"10.0.1.1:8080\"]}\n";

static const char fault_vs_yaml[] =
    VS("web", "  hosts: [web]\n"
              "  http_routes:\n"
              "    - name: api\n"
              "      matches: [{path: /api}]\n"
              "      destinations: [{host: web-v1, weight: 80}, {host: web-v2, weight: 20}]\n"
              "    - name: rest\n"
              "      destinations: [{host: web-v1}]\n");

/* One route's fault; three faults on one route; per-service modes; authorization rules of
 * every kind; a per-service strict mode that only the rules' authentication shows. */
static const char route_fault_yaml[] =
    HDR "kind: FaultInjection\nmetadata: {name: web-rest}\n"
        "spec: {service: web, route: rest, abort: {http_status: 500}}\n";
static const char three_faults_yaml[] =
    HDR "kind: FaultInjection\nmetadata: {name: whole}\n"
        "spec: {service: web, abort: {http_status: 503, percentage: 10}}\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: api}\n"
        "spec: {service: web, route: api, abort: {http_status: 500, percentage: 50}}\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: v2}\n"
        "spec: {service: web-v2, abort: {http_status: 502, percentage: 25}}\n";
static const char modes_yaml[] =
    SP("pay-strict", "  services: [payment]\n  mtls: {mode: strict}\n") "---\n" SP(
        "orders-perm", "  services: [orders]\n  mtls: {mode: permissive}\n");
static const char authz_yaml[] =
    SP("p", "  authorization:\n"
            "    - from: [orders.default, \"spiffe://example.org/ns/ops/sa/admin\", "
            "payment.default.svc]\n"
            "      to: [payment-v1]\n"
            "      methods: [GET, POST]\n"
            "      paths: [/items, \"/items/*\"]\n"
            "    - from: [\"*\"]\n"
            "      to: [payment-v1]\n"
            "    - from: [orders.default]\n"
            "      to: [payment-v1]\n"
            "      methods: [DELETE]\n"
            "      paths: [\"/items/*\"]\n");
static const char strict_rules_yaml[] =
    SP("q", "  services: [db]\n  mtls: {mode: strict}\n"
            "  authorization:\n    - to: [db]\n      methods: [GET]\n");

static const char *const cases[] = {
    /* matches: every path and header form, nine matches (two rules of 8 and 1) */
    VS("shop", "  hosts: [shop, shop.default.svc.cluster.local]\n"
               "  http_routes:\n"
               "    - matches:\n"
               "        - path: /exact\n"
               "        - path: {prefix: /pre.fix}\n"
               "        - path: \"/a/*/b\"\n"
               "        - path: {regex: \"^/v[0-9]+/(x|y)$\"}\n"
               "        - path: {regex: \"/a|/b\"}\n"
               "        - path: {prefix: /}\n"
               "        - path: /no-star-glob\n"
               "        - headers:\n"
               "            x-exact: {exact: \"yes\"}\n"
               "            x-re: {regex: \"a|b\"}\n"
               "            x-any: {present: true}\n"
               "            x-empty: {exact: \"\"}\n"
               "            x-pre: {prefix: \"a.b*(c)\"}\n"
               "          method: POST\n"
               "        - path: /ninth\n"
               "      destinations: [{host: cart.shop}]\n"
               "    - matches: [{path: /one}]\n"
               "      destinations: [{host: cart.shop, weight: 100}]\n"),
    /* two routes of 8 matches and 2 with the same backends, then one of its own */
    VS("many", "  hosts: [many]\n  http_routes:\n    - matches:\n"
               "        - {path: /p0}\n        - {path: /p1}\n        - {path: /p2}\n"
               "        - {path: /p3}\n        - {path: /p4}\n        - {path: /p5}\n"
               "        - {path: /p6}\n        - {path: /p7}\n        - {path: /p8}\n"
               "        - {path: /p9}\n"
               "      destinations: [{host: a, weight: 50}, {host: b, weight: 50}]\n"
               "    - matches: [{path: /q}]\n"
               "      destinations: [{host: a, weight: 50}, {host: b, weight: 50}]\n"),
    /* timeouts, and a per-try timeout without retries */
    VS("t", "  hosts: [t]\n"
            "  http_routes:\n"
            "    - matches: [{path: /a}]\n      timeout: 1500ms\n      destinations: [{host: t1}]\n"
            "    - matches: [{path: /b}]\n      timeout: 2h30m\n      destinations: [{host: t1}]\n"
            "    - matches: [{path: /c}]\n      timeout: 10s\n"
            "      retries: {per_try_timeout: 250ms}\n      destinations: [{host: t1}]\n"
            "    - destinations: [{host: t1}]\n"),
    /* retries */
    VS("r",
       "  hosts: [r]\n"
       "  http_routes:\n"
       "    - matches: [{path: /a}]\n"
       "      retries: {attempts: 3, per_try_timeout: 1500ms, retry_on: [5xx, gateway-error]}\n"
       "      destinations: [{host: r1}]\n"
       "    - retries: {attempts: 3, per_try_timeout: 1500ms, retry_on: [5xx, gateway-error]}\n"
       "      destinations: [{host: r1}]\n"),
    VS("d", "  hosts: [d]\n  http_routes:\n"
            "    - retries: {attempts: 2}\n      destinations: [{host: d1}]\n"),
    /* faults: the whole VirtualService, one route, a Service with and without a route of its
     * own, another namespace */
    HDR "kind: FaultInjection\nmetadata: {name: web}\n"
        "spec: {service: web, delay: 100ms, abort: {http_status: 503, percentage: 10}}\n",
    route_fault_yaml,
    HDR "kind: FaultInjection\nmetadata: {name: v1}\n"
        "spec: {service: web-v1, abort: {http_status: 500, percentage: 12.5}}\n",
    three_faults_yaml,
    /* faults of every request: the weights they leave are all 0 */
    HDR "kind: FaultInjection\nmetadata: {name: all-api}\n"
        "spec: {service: web, route: api, abort: {http_status: 500}}\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: all-v2}\n"
        "spec: {service: web-v2, abort: {http_status: 504, percentage: 100}}\n",
    VS("w", "  hosts: [w]\n  http_routes:\n"
            "    - destinations: [{host: cart.shop, weight: 50}, {host: w1, weight: 50}]\n"
            "---\n" HDR "kind: FaultInjection\nmetadata: {name: cart, namespace: shop}\n"
            "spec: {service: cart, abort: {http_status: 500, percentage: 50}}\n"),
    /* breakers: on a VirtualService (and a penalty above 60s), on a Service alone */
    VS("pay", "  hosts: [pay]\n  http_routes:\n"
              "    - destinations: [{host: pay-v1, weight: 50}, {host: pay-v2, weight: 50}]\n"
              "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: cb}\n"
              "spec: {service: pay, detection: {consecutive_errors: 3, "
              "base_ejection_time: 2m}}\n"),
    HDR "kind: CircuitBreaker\nmetadata: {name: payment-service}\n"
        "spec: {service: payment-service, detection: {consecutive_errors: 5}}\n"
        "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: other}\n"
        "spec: {service: payment-v1, detection: {consecutive_errors: 2, base_ejection_time: 5s}}\n",
    /* mTLS: per service and namespace-wide */
    modes_yaml,
    SP("ns-perm", "  mtls: {mode: permissive}\n"),
    /* authorization: identities of every form, methods x paths, a rule for every request */
    authz_yaml,
    /* a per-service strict mode that only the rules' authentication shows */
    strict_rules_yaml,
    SP("perm",
       "  services: [payment-v2]\n  mtls: {mode: permissive}\n"
       "  authorization:\n    - to: [payment-v2]\n      paths: [/x]\n") "---\n" SP("ns",
                                                                                   "  mtls: {mode: "
                                                                                   "strict}\n"),
    /* the proxy's resources in every namespace */
    "mesh:\n  provider: linkerd\n  proxy: {resources: {cpu: 250m, memory: 64Mi}}\n",
};

static void test_linkerd_read_translator_cases_round_trip(void **state)
{
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            for (int with_services = 0; with_services < 2; with_services++) {
                struct trip t = {0};
                char what[64];
                snprintf(what, sizeof(what), "case %zu%s", i, with_services ? " + services" : "");
                if (with_services)
                    input_add_text(&t.x, services_yaml, "services");
                /* The faults need the VirtualService they name. */
                if (strstr(cases[i], "kind: FaultInjection") && !strstr(cases[i], "name: w}"))
                    input_add_text(&t.x, fault_vs_yaml, "fault-vs");
                input_add_text(&t.x, cases[i], what);
                trip_run(&t, versions[v], with_services, what);
                trip_clear(&t);
            }
        }
    }
    /* Linkerd 2.16: Servers without accessPolicy. */
    struct trip t = {0};
    input_add_text(&t.x, SP("s", "  services: [db]\n  mtls: {mode: strict}\n"), "s");
    trip_run(&t, "2.16", false, "2.16");
    assert_string_equal(text_at(must_find(&t.t1, "Server", "default", "db"), "apiVersion"),
                        "policy.linkerd.io/v1beta1");
    trip_clear(&t);
}

/* --- what the read-back resources say --- */

static const struct mesh_resource *original(const struct trip *t, enum mesh_kind kind,
                                            const char *name)
{
    return must_find_resource(t->x.res, t->x.n, kind, NULL, name);
}

static void test_linkerd_read_examples_content(void **state)
{
    (void)state;
    struct trip t = {0};
    input_add_examples(&t.x);
    trip_run(&t, "2.20", false, "examples/");

    /* The seed's in-mesh rollout: the same resource but for its route's name, which an
     * HTTPRoute does not keep. */
    const struct mesh_virtual_service *vs =
        (const void *)must_read(&t, MESH_KIND_VIRTUAL_SERVICE, "payment");
    const struct mesh_virtual_service *ovs =
        (const void *)original(&t, MESH_KIND_VIRTUAL_SERVICE, "payment");
    assert_string_equal(mesh_resource_namespace(&vs->res), "default");
    assert_int_equal(vs->hosts.len, 1);
    assert_string_equal(vs->hosts.items[0], "payment");
    assert_int_equal(vs->n_http_routes, 1);
    assert_null(vs->http_routes[0].name);
    assert_int_equal(vs->http_routes[0].n_matches, 1);
    assert_int_equal(vs->http_routes[0].matches[0].path.kind, MESH_PATH_GLOB);
    assert_string_equal(vs->http_routes[0].matches[0].path.value, "/api/v1/*");
    assert_int_equal(vs->http_routes[0].n_destinations, 2);
    assert_string_equal(vs->http_routes[0].destinations[0].host, "payment-v1");
    assert_int_equal(vs->http_routes[0].destinations[0].weight, 90);
    assert_string_equal(vs->http_routes[0].destinations[1].host, "payment-v2");
    assert_int_equal(vs->http_routes[0].destinations[1].weight, 10);
    struct mesh_virtual_service *named = (void *)mesh_resource_clone(&vs->res);
    named->http_routes[0].name = strdup("primary");
    assert_true(mesh_model_same_content(&named->res, &ovs->res));
    mesh_resource_free(&named->res);

    /* The seed's security policy: strict for the namespace, orders may POST to payment. The
     * certificate authority is Linkerd's issuer, chosen at install, and the spellings are the
     * shortest (orders.default for orders.default.svc, payment for payment.default.svc). */
    const struct mesh_security_policy *sp =
        (const void *)must_read(&t, MESH_KIND_SECURITY_POLICY, "payment-security");
    assert_string_equal(mesh_resource_namespace(&sp->res), "default");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_null(sp->mtls.certificate_authority);
    assert_int_equal(sp->services.len, 0);
    assert_int_equal(sp->n_authorization, 1);
    const struct mesh_authorization_rule *rule = &sp->authorization[0];
    assert_int_equal(rule->from.len, 1);
    assert_string_equal(rule->from.items[0], "orders.default");
    assert_int_equal(rule->to.len, 1);
    assert_string_equal(rule->to.items[0], "payment");
    assert_int_equal(rule->methods.len, 1);
    assert_string_equal(rule->methods.items[0], "POST");
    assert_int_equal(rule->paths.len, 1);
    assert_string_equal(rule->paths.items[0], "/api/v1/process");

    /* The seed's breaker: the outlier detection Linkerd has; the limits and the interval it
     * refused are gone. It guarded a gateway's VirtualService whose routes Linkerd never had:
     * a stand-in of that name names the Services it annotated. */
    const struct mesh_circuit_breaker *cb =
        (const void *)must_read(&t, MESH_KIND_CIRCUIT_BREAKER, "payment-service");
    assert_string_equal(mesh_resource_namespace(&cb->res), "default");
    assert_string_equal(cb->service, "payment-service");
    assert_int_equal(cb->config.detection.consecutive_errors, 5);
    assert_int_equal(cb->config.detection.base_ejection_time_ms, 30000);
    assert_int_equal(cb->config.detection.interval_ms, 0);
    assert_int_equal(cb->config.max_connections, 0);
    const struct mesh_virtual_service *stand_in =
        (const void *)must_read(&t, MESH_KIND_VIRTUAL_SERVICE, "payment-service");
    assert_int_equal(stand_in->gateways.len, 1);
    assert_string_equal(stand_in->gateways.items[0], "unknown");
    assert_int_equal(stand_in->hosts.len, 2);
    assert_warned(&t.warnings, "CircuitBreaker default/payment-service guards the Services "
                               "payment-v1, payment-v2");

    /* The seed's MeshConfig: its proxy resources, and the version read for. */
    const struct mesh_mesh_config *mc =
        (const void *)must_read(&t, MESH_KIND_MESH_CONFIG, "linkerd");
    assert_string_equal(mc->provider, "linkerd");
    assert_string_equal(mc->version, "2.20");
    assert_string_equal(mc->proxy.resources.cpu, "100m");
    assert_string_equal(mc->proxy.resources.memory, "128Mi");

    /* The Services, as Kubernetes holds them, with the port the translation named. */
    const struct mesh_service *svc = (const void *)must_read(&t, MESH_KIND_SERVICE, "payment-v1");
    assert_string_equal(svc->protocol, "http");
    assert_int_equal(svc->n_endpoints, 1);
    assert_string_equal(svc->endpoints[0].address, "payment-v1.default.svc.cluster.local:18081");
    svc = (const void *)must_read(&t, MESH_KIND_SERVICE, "orders");
    assert_int_equal(svc->n_endpoints, 0); /* no route or Server names its port */
    assert_null(found(&t, MESH_KIND_FAULT_INJECTION, "web-service")); /* no route: no fault */
    trip_clear(&t);

    /* The seed's fault alone names a Service web-service: its own route, read back exactly but
     * for the delay, which Linkerd cannot hold. */
    t = (struct trip){0};
    input_add_file(&t.x, "examples/services.yaml");
    input_add_file(&t.x, "examples/web-fault-injection.yaml");
    trip_run(&t, "2.20", false, "web-fault-injection");
    const struct mesh_fault_injection *fi =
        (const void *)must_read(&t, MESH_KIND_FAULT_INJECTION, "web-service");
    const struct mesh_fault_injection *ofi =
        (const void *)original(&t, MESH_KIND_FAULT_INJECTION, "web-service");
    assert_string_equal(mesh_resource_namespace(&fi->res), "default");
    assert_string_equal(fi->service, "web-service");
    assert_null(fi->route);
    assert_int_equal(fi->fault.abort.http_status, 503);
    assert_true(fi->fault.abort.percentage == 10);
    assert_int_equal(fi->fault.delay_ms, 0);
    struct mesh_fault_injection *delayed = (void *)mesh_resource_clone(&fi->res);
    delayed->fault.delay_ms = ofi->fault.delay_ms;
    assert_true(mesh_model_same_content(&delayed->res, &ofi->res));
    mesh_resource_free(&delayed->res);
    /* The fault route is the fault's, not a VirtualService. */
    assert_null(found(&t, MESH_KIND_VIRTUAL_SERVICE, "web-service-fault"));
    trip_clear(&t);

    /* The seed's breaker alone names a Service: exactly what Linkerd keeps of it. */
    t = (struct trip){0};
    input_add_file(&t.x, "examples/payment-circuit-breaker.yaml");
    trip_run(&t, "2.20", false, "payment-circuit-breaker");
    cb = (const void *)must_read(&t, MESH_KIND_CIRCUIT_BREAKER, "payment-service");
    assert_string_equal(cb->service, "payment-service");
    assert_null(found(&t, MESH_KIND_VIRTUAL_SERVICE, "payment-service"));
    trip_clear(&t);
}

/* Faults on a VirtualService and on a Service, read back as they were written. */
static void test_linkerd_read_faults(void **state)
{
    (void)state;
    struct trip t = {0};
    input_add_text(&t.x, fault_vs_yaml, "vs");
    input_add_text(&t.x,
                   HDR "kind: FaultInjection\nmetadata: {name: whole}\n"
                       "spec: {service: web, abort: {http_status: 503, percentage: 10}}\n"
                       "---\n" HDR "kind: FaultInjection\nmetadata: {name: v2}\n"
                       "spec: {service: web-v2, abort: {http_status: 502, percentage: 25}}\n",
                   "faults");
    trip_run(&t, "2.20", false, "faults");
    /* In every rule: the whole route set's. */
    const struct mesh_fault_injection *whole =
        (const void *)must_read(&t, MESH_KIND_FAULT_INJECTION, "whole");
    assert_string_equal(whole->service, "web");
    assert_null(whole->route);
    assert_int_equal(whole->fault.abort.http_status, 503);
    assert_true(whole->fault.abort.percentage == 10);
    /* Beside a backend: that Service's. */
    const struct mesh_fault_injection *v2 =
        (const void *)must_read(&t, MESH_KIND_FAULT_INJECTION, "v2");
    assert_string_equal(v2->service, "web-v2");
    assert_null(v2->route);
    assert_int_equal(v2->fault.abort.http_status, 502);
    assert_true(v2->fault.abort.percentage == 25);
    /* The weights without the faults' shares. */
    const struct mesh_virtual_service *vs =
        (const void *)must_read(&t, MESH_KIND_VIRTUAL_SERVICE, "web");
    assert_int_equal(vs->n_http_routes, 2);
    assert_null(vs->http_routes[0].name);
    assert_int_equal(vs->http_routes[0].destinations[0].weight, 80);
    assert_int_equal(vs->http_routes[0].destinations[1].weight, 20);
    assert_int_equal(vs->http_routes[1].n_destinations, 1);
    assert_int_equal(vs->http_routes[1].destinations[0].weight, MESH_UNSET);
    trip_clear(&t);

    /* In one rule: that route's, which takes the fault's name; all requests when unset. */
    t = (struct trip){0};
    input_add_text(&t.x, fault_vs_yaml, "vs");
    input_add_text(&t.x, route_fault_yaml, "web-rest");
    trip_run(&t, "2.20", false, "route fault");
    const struct mesh_fault_injection *fi =
        (const void *)must_read(&t, MESH_KIND_FAULT_INJECTION, "web-rest");
    assert_string_equal(fi->service, "web");
    assert_string_equal(fi->route, "web-rest");
    assert_int_equal(fi->fault.abort.http_status, 500);
    assert_true(fi->fault.abort.percentage == MESH_UNSET);
    vs = (const void *)must_read(&t, MESH_KIND_VIRTUAL_SERVICE, "web");
    assert_null(vs->http_routes[0].name);
    assert_string_equal(vs->http_routes[1].name, "web-rest");
    trip_clear(&t);

    /* Three on one route: each comes back, with its status. */
    t = (struct trip){0};
    input_add_text(&t.x, fault_vs_yaml, "vs");
    input_add_text(&t.x, three_faults_yaml, "three");
    trip_run(&t, "2.20", false, "three faults");
    int statuses = 0;
    for (size_t i = 0; i < t.ny; i++)
        if (t.y[i]->kind == MESH_KIND_FAULT_INJECTION)
            statuses += (int)((const struct mesh_fault_injection *)t.y[i])->fault.abort.http_status;
    assert_int_equal(statuses, 503 + 500 + 502);
    trip_clear(&t);
}

/* The header prefix the translator writes as a regular expression comes back as a prefix. */
static void test_linkerd_read_header_prefix(void **state)
{
    (void)state;
    struct trip t = {0};
    input_add_text(&t.x,
                   VS("pay", "  hosts: [pay]\n"
                             "  http_routes:\n"
                             "    - matches:\n"
                             "        - headers: {x-user: {prefix: \"a.b*(c)\"}, x-re: {regex: "
                             "\"^a.*\"}, x-all: {prefix: \"\"}}\n"
                             "      destinations: [{host: pay-v1}]\n"),
                   "pay");
    trip_run(&t, "2.20", false, "header prefix");
    const struct mesh_node *o = must_find(&t.t1, "HTTPRoute", "default", "pay");
    assert_string_equal(text_at(o, "spec.rules[0].matches[0].headers[0].value"),
                        "^a\\.b\\*\\(c\\).*");
    const struct mesh_virtual_service *vs =
        (const void *)must_read(&t, MESH_KIND_VIRTUAL_SERVICE, "pay");
    const struct mesh_route_match *m = &vs->http_routes[0].matches[0];
    assert_int_equal(m->n_headers, 3);
    assert_int_equal(m->headers[0].kind, MESH_HEADER_PREFIX);
    assert_string_equal(m->headers[0].value, "a.b*(c)");
    assert_int_equal(m->headers[1].kind, MESH_HEADER_REGEX); /* "^a.*$": not a prefix's form */
    assert_string_equal(m->headers[1].value, "a.*");
    assert_int_equal(m->headers[2].kind, MESH_HEADER_PREFIX);
    assert_string_equal(m->headers[2].value, "");
    trip_clear(&t);
}

/* Spellings: identities and hosts in their shortest form that means the same. */
static void test_linkerd_read_authorization(void **state)
{
    (void)state;
    struct trip t = {0};
    input_add_text(&t.x, services_yaml, "services");
    input_add_text(&t.x, authz_yaml, "p");
    trip_run(&t, "2.20", false, "authorization");
    const struct mesh_security_policy *sp =
        (const void *)must_read(&t, MESH_KIND_SECURITY_POLICY, "p");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_UNSET);
    assert_int_equal(sp->n_authorization, 3);
    /* payment.default.svc named the app payment: payment.default again, not its Services. */
    const struct mesh_authorization_rule *r0 = &sp->authorization[0];
    assert_int_equal(r0->from.len, 3);
    assert_string_equal(r0->from.items[0], "spiffe://example.org/ns/ops/sa/admin");
    assert_string_equal(r0->from.items[1], "orders.default");
    assert_string_equal(r0->from.items[2], "payment.default");
    assert_string_equal(r0->to.items[0], "payment-v1");
    assert_int_equal(r0->methods.len, 2);
    assert_string_equal(r0->methods.items[1], "POST");
    assert_int_equal(r0->paths.len, 2);
    assert_string_equal(r0->paths.items[0], "/items");
    assert_string_equal(r0->paths.items[1], "/items/*");
    assert_int_equal(sp->authorization[1].from.len, 0); /* anyone */
    assert_int_equal(sp->authorization[1].methods.len, 0);
    assert_string_equal(sp->authorization[2].methods.items[0], "DELETE");
    trip_clear(&t);

    /* A strict mode that only the authentication of a rule for anyone shows comes back. */
    t = (struct trip){0};
    input_add_text(&t.x, strict_rules_yaml, "q");
    trip_run(&t, "2.20", false, "strict under rules");
    sp = (const void *)must_read(&t, MESH_KIND_SECURITY_POLICY, "q");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_int_equal(sp->services.len, 1);
    assert_string_equal(sp->services.items[0], "db");
    trip_clear(&t);

    /* A policy of per-service modes, the Services of the app payment: the app. */
    t = (struct trip){0};
    input_add_text(&t.x, services_yaml, "services");
    input_add_text(&t.x, modes_yaml, "modes");
    trip_run(&t, "2.20", false, "modes");
    sp = (const void *)must_read(&t, MESH_KIND_SECURITY_POLICY, "pay-strict");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_int_equal(sp->services.len, 1);
    assert_string_equal(sp->services.items[0], "payment");
    sp = (const void *)must_read(&t, MESH_KIND_SECURITY_POLICY, "orders-perm");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_PERMISSIVE);
    /* The Servers' ports and protocols are their Services'. */
    const struct mesh_service *svc = (const void *)must_read(&t, MESH_KIND_SERVICE, "payment-v2");
    assert_string_equal(svc->protocol, "http2");
    assert_string_equal(svc->endpoints[0].address, "payment-v2.default.svc.cluster.local:8082");
    svc = (const void *)must_read(&t, MESH_KIND_SERVICE, "orders");
    assert_int_equal(svc->n_endpoints, 0); /* its Server's port is the one named http */
    assert_null(svc->protocol);            /* no protocol given: Linkerd detects it */
    trip_clear(&t);
}

/* --- objects written by hand --- */

static struct mesh_node *yaml_node(const char *text)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags d = {0};
    assert_int_equal(mesh_yaml_read(text, strlen(text), "hand", &docs, &d), MESH_OK);
    assert_int_equal(docs.len, 1);
    struct mesh_node *root = docs.items[0].root;
    docs.items[0].root = NULL;
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&d);
    return root;
}

/* Reads the YAML documents of texts (NULL-terminated) as objects. */
struct hand {
    struct mesh_node *objs[16];
    size_t n;
    struct mesh_resource **res;
    size_t n_res;
    struct mesh_diags warnings;
};

static void hand_read(struct hand *h, const char *const *texts)
{
    for (h->n = 0; texts[h->n]; h->n++)
        h->objs[h->n] = yaml_node(texts[h->n]);
    read_back(h->objs, h->n, NULL, &h->res, &h->n_res, &h->warnings);
}

static void hand_clear(struct hand *h)
{
    for (size_t i = 0; i < h->n; i++)
        mesh_node_free(h->objs[i]);
    mesh_resource_list_free(h->res, h->n_res);
    mesh_diags_clear(&h->warnings);
    memset(h, 0, sizeof(*h));
}

static const struct mesh_resource *hand_find(const struct hand *h, enum mesh_kind kind,
                                             const char *name)
{
    for (size_t i = 0; i < h->n_res; i++)
        if (h->res[i]->kind == kind && !strcmp(h->res[i]->name, name))
            return h->res[i];
    fail_msg("no %s %s read", mesh_kind_name(kind), name);
    return NULL;
}

static void test_linkerd_read_hand_written_route(void **state)
{
    (void)state;
    const char *const texts[] = {
        "apiVersion: gateway.networking.k8s.io/v1\n"
        "kind: HTTPRoute\n"
        "metadata: {name: books, namespace: shop}\n"
        "spec:\n"
        "  parentRefs: [{group: core, kind: Service, name: books, port: 8080}]\n"
        "  rules:\n"
        "    - matches:\n"
        "        - path: {type: PathPrefix, value: /v1/}\n"
        "          headers: [{name: x-tier, value: gold}]\n"
        "      filters:\n"
        "        - type: URLRewrite\n"
        "          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}\n"
        "        - type: RequestMirror\n"
        "          requestMirror: {backendRef: {name: books-shadow, port: 80}}\n"
        "      backendRefs: [{name: books-v1, port: 8080, weight: 3}, {name: books-v2, port: "
        "8080, weight: 1}]\n"
        "      timeouts: {request: 2s, backendRequest: 1s}\n"
        "    - matches: [{queryParams: [{name: debug, value: \"1\"}]}]\n"
        "      backendRefs: [{name: books-debug, port: 8080}]\n"
        "    - backendRefs: [{name: books-v1, port: 8080}]\n",
        NULL,
    };
    struct hand h = {0};
    hand_read(&h, texts);
    /* Named after the object; what ours has is read, the rest named in warnings. */
    const struct mesh_virtual_service *vs =
        (const void *)hand_find(&h, MESH_KIND_VIRTUAL_SERVICE, "books");
    assert_string_equal(mesh_resource_namespace(&vs->res), "shop");
    assert_string_equal(vs->hosts.items[0], "books");
    /* The rule on a query parameter is left out rather than made to match everything. */
    assert_int_equal(vs->n_http_routes, 2);
    const struct mesh_http_route *r = &vs->http_routes[0];
    assert_int_equal(r->matches[0].path.kind, MESH_PATH_REGEX); /* whole segments under /v1 */
    assert_string_equal(r->matches[0].path.value, "/v1(/.*)?");
    assert_string_equal(r->matches[0].headers[0].value, "gold");
    assert_int_equal(r->destinations[0].weight, 75);
    assert_int_equal(r->destinations[1].weight, 25);
    assert_int_equal(r->timeout_ms, 2000);
    assert_int_equal(vs->http_routes[1].destinations[0].weight, MESH_UNSET);
    assert_warned(&h.warnings,
                  "HTTPRoute shop/books spec.rules[0].filters[0]: not read: our routes have no "
                  "URLRewrite filter");
    assert_warned(&h.warnings,
                  "HTTPRoute shop/books spec.rules[0].filters[1]: not read: our routes have no "
                  "RequestMirror filter");
    assert_warned(&h.warnings, "HTTPRoute shop/books spec.rules[0].timeouts.backendRequest: not "
                               "read: ");
    assert_warned(&h.warnings, "HTTPRoute shop/books spec.rules[1].matches[0].queryParams: not "
                               "read: our routes match no query parameters");
    assert_warned(&h.warnings, "HTTPRoute shop/books spec.parentRefs[0]: not read: our routes "
                               "cover every port of the Service");
    /* A port named on a Service that was not given cannot be kept. */
    assert_warned(&h.warnings, "port 8080 of Service shop/books-v1");
    hand_clear(&h);

    /* Hand-written policy objects: a policy named after the AuthorizationPolicy, a breaker after
     * the Service, a namespace's default inbound policy after the Namespace. */
    const char *const policy[] = {
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\n"
        "metadata: {name: api, namespace: prod}\n"
        "spec: {podSelector: {matchLabels: {app: api}}, port: http, accessPolicy: deny}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\n"
        "metadata: {name: clients, namespace: prod}\n"
        "spec:\n  identities: [web.prod.serviceaccount.identity.linkerd.cluster.local, "
        "\"*.prod.serviceaccount.identity.linkerd.cluster.local\"]\n"
        "  identityRefs: [{kind: ServiceAccount, name: cron}]\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\n"
        "metadata: {name: api-clients, namespace: prod}\n"
        "spec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: api}\n"
        "  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, "
        "name: clients}]\n",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  namespace: prod\n"
        "  annotations:\n    balancer.linkerd.io/failure-accrual: consecutive\n"
        "    balancer.linkerd.io/failure-accrual-consecutive-max-failures: \"4\"\n"
        "    balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio: \"0.5\"\n"
        "    retry.linkerd.io/http: 5xx\n"
        "spec: {ports: [{name: http, port: 80}]}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  annotations:\n"
        "    config.linkerd.io/default-inbound-policy: all-authenticated\n"
        "    config.linkerd.io/proxy-cpu-request: 200m\n",
        NULL,
    };
    h = (struct hand){0};
    hand_read(&h, policy);
    const struct mesh_security_policy *sp =
        (const void *)hand_find(&h, MESH_KIND_SECURITY_POLICY, "api-clients");
    assert_int_equal(sp->n_authorization, 1);
    assert_int_equal(sp->authorization[0].from.len, 2); /* not the wildcard: never wider */
    assert_string_equal(sp->authorization[0].from.items[0], "web.prod");
    assert_string_equal(sp->authorization[0].from.items[1], "cron.prod");
    assert_string_equal(sp->authorization[0].to.items[0], "api");
    assert_warned(&h.warnings, "MeshTLSAuthentication prod/clients spec.identities[1]: not read");
    sp = (const void *)hand_find(&h, MESH_KIND_SECURITY_POLICY, "prod");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    const struct mesh_circuit_breaker *cb =
        (const void *)hand_find(&h, MESH_KIND_CIRCUIT_BREAKER, "api");
    assert_string_equal(cb->service, "api");
    assert_int_equal(cb->config.detection.consecutive_errors, 4);
    assert_int_equal(cb->config.detection.base_ejection_time_ms, 1000); /* Linkerd's default */
    assert_warned(&h.warnings, "-consecutive-jitter-ratio\"]: not read: our ejection time has no "
                               "jitter");
    assert_warned(&h.warnings, "Service prod/api metadata.annotations[\"retry.linkerd.io/http\"]: "
                               "not read");
    assert_warned(&h.warnings, "Namespace default/prod metadata.annotations[\"config.linkerd.io/"
                               "proxy-cpu-request\"]: not read: the proxy's resources of one "
                               "namespace");
    hand_clear(&h);
    /* Never wider than written: an identity whose short form would also admit the Services of
     * its app is spelled as a SPIFFE ID; a Server of an app's pods, which our host of that name
     * would widen to each of its Services, leaves its rule out. */
    const char *const narrow[] = {
        "apiVersion: v1\nkind: Service\n"
        "metadata: {name: payment-v1, labels: {app: payment, version: v1}}\n"
        "spec: {ports: [{name: http, port: 80}]}\n",
        "apiVersion: v1\nkind: Service\n"
        "metadata: {name: payment-v2, labels: {app: payment, version: v2}}\n"
        "spec: {ports: [{name: http, port: 80}]}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: payment-v1}\n"
        "spec: {podSelector: {matchLabels: {app: payment, version: v1}}, port: http}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: payment}\n"
        "spec: {podSelector: {matchLabels: {app: payment}}, port: http}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\n"
        "metadata: {name: app}\n"
        "spec: {identities: [payment.default.serviceaccount.identity.linkerd.cluster.local]}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
        "spec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: payment-v1}\n"
        "  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: "
        "MeshTLSAuthentication, name: app}]\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: b}\n"
        "spec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: payment}\n",
        NULL,
    };
    h = (struct hand){0};
    hand_read(&h, narrow);
    sp = (const void *)hand_find(&h, MESH_KIND_SECURITY_POLICY, "a");
    assert_int_equal(sp->authorization[0].from.len, 1);
    assert_string_equal(sp->authorization[0].from.items[0],
                        "spiffe://cluster.local/ns/default/sa/payment");
    assert_string_equal(sp->authorization[0].to.items[0], "payment-v1");
    assert_warned(&h.warnings, "AuthorizationPolicy default/b spec.targetRef: not read: Service "
                               "default/payment alone");
    for (size_t i = 0; i < h.n_res; i++)
        assert_false(h.res[i]->kind == MESH_KIND_SECURITY_POLICY && !strcmp(h.res[i]->name, "b"));
    hand_clear(&h);

    /* A route written by hand with the name of one of ours: one VirtualService, the first. */
    const char *const twice[] = {
        "apiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata:\n  name: web\n"
        "  annotations: {mesh.clusterdb.io/source: VirtualService/default/web}\n"
        "spec: {parentRefs: [{group: core, kind: Service, name: web}], rules: [{backendRefs: "
        "[{name: web-v1, port: 80}]}]}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\n"
        "spec: {parentRefs: [{group: \"\", kind: Service, name: web}], rules: [{backendRefs: "
        "[{name: web-v2, port: 80}]}]}\n",
        NULL,
    };
    h = (struct hand){0};
    hand_read(&h, twice);
    assert_int_equal(h.n_res, 1);
    const struct mesh_virtual_service *web =
        (const void *)hand_find(&h, MESH_KIND_VIRTUAL_SERVICE, "web");
    assert_string_equal(web->http_routes[0].destinations[0].host, "web-v1");
    assert_warned(&h.warnings, "HTTPRoute default/web metadata: not read: VirtualService "
                               "default/web was read from HTTPRoute default/web already");
    hand_clear(&h);
}

/* --- malformed objects: warnings, never a crash --- */

static void test_linkerd_read_malformed(void **state)
{
    (void)state;
    const char *const texts[] = {
        "just a string\n",
        "[1, 2, 3]\n",
        "kind: HTTPRoute\nmetadata: {name: x}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {namespace: a}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {name: r1}\n"
        "spec: {parentRefs: scalar, rules: {a: b}}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {name: r2}\n"
        "spec:\n  parentRefs: [{kind: Service, name: s}, 7, {kind: Gateway, name: g}]\n"
        "  rules:\n    - 5\n    - matches: notalist\n"
        "    - matches: [{path: {type: RegularExpression, value: \"(?i)x\"}}]\n"
        "      backendRefs: [{name: a}]\n"
        "    - matches: [{path: {type: Exact, value: relative}, method: 42}]\n"
        "      backendRefs: [{name: a}]\n"
        "    - matches: [{headers: [{name: x}, {name: \"bad header\", value: v}]}]\n"
        "      backendRefs: [{name: a}]\n"
        "    - backendRefs: [{name: a, weight: lots}, {name: b, port: -1}]\n"
        "    - backendRefs: [{name: a, weight: 0}, {name: b, weight: 0}]\n"
        "    - backendRefs: [{kind: ConfigMap, name: c}, {}]\n"
        "    - backendRefs: [{name: a, weight: 0}]\n"
        "      timeouts: {request: soon}\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata:\n  name: r3\n"
        "  annotations: {mesh.clusterdb.io/source: \"nonsense,VirtualService/a\", "
        "retry.linkerd.io/http: \"5xx,429\", retry.linkerd.io/limit: \"1000\"}\n"
        "spec: {parentRefs: [{group: core, kind: Service, name: s, namespace: other}]}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: z1}\n"
        "spec: {targetRef: {kind: Server, name: missing}}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: z2}\n"
        "spec: {targetRef: {kind: HTTPRoute, name: r2}, requiredAuthenticationRefs: 3}\n",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: z3}\n"
        "spec:\n  targetRef: {kind: Server, name: srv}\n"
        "  requiredAuthenticationRefs: [{kind: NetworkAuthentication, name: lan}, {kind: Foo}]\n",
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: srv}\n"
        "spec: {podSelector: {matchExpressions: []}, port: [1]}\n",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\n"
        "    balancer.linkerd.io/failure-accrual: sometimes\n"
        "spec: 12\n",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: t\n  labels: {\"bad label!\": x}\n"
        "  annotations:\n    balancer.linkerd.io/failure-accrual-consecutive-max-failures: x\n"
        "spec: {ports: 3}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  annotations:\n"
        "    config.linkerd.io/default-inbound-policy: audit\n"
        "    mesh.clusterdb.io/source: MeshConfig/n/bad_name!\n"
        "    config.linkerd.io/proxy-memory-request: lots\n"
        "    config.linkerd.io/proxy-memory-limit: 1Gi\n",
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {name: sp}\n",
        NULL,
    };
    struct hand h = {0};
    hand_read(&h, texts);
    assert_true(h.warnings.len >= 20);
    assert_warned(&h.warnings, "object default/(unnamed): not read: not a mapping");
    assert_warned(&h.warnings, "HTTPRoute default/x: not read: no apiVersion or kind");
    assert_warned(&h.warnings, "HTTPRoute a/(unnamed) metadata.name: not read: no name");
    assert_warned(&h.warnings, "HTTPRoute default/r2 spec.rules[0]: not read: not a mapping");
    assert_warned(&h.warnings, "HTTPRoute default/r2 spec.rules[2].matches[0].path: not read: a "
                               "regular expression that is not POSIX extended syntax");
    assert_warned(&h.warnings, "spec.parentRefs[2]: not read: our routes are attached to "
                               "Services");
    assert_warned(&h.warnings, "AuthorizationPolicy default/z1 spec.targetRef: not read: no Server "
                               "default/missing was given");
    assert_warned(&h.warnings, "ServiceProfile default/sp: not read: our model has no counterpart");
    assert_warned(&h.warnings, "\"sometimes\": our outlier detection counts consecutive failures");
    assert_warned(&h.warnings, "\"audit\": our namespace-wide mTLS");
    assert_warned(&h.warnings, "condition \"429\"");
    /* Only what survived is read, and it is valid: r2's one sound rule. */
    for (size_t i = 0; i < h.n_res; i++) {
        struct mesh_diags d = {0};
        assert_int_equal(mesh_validate_resource(h.res[i], &d), MESH_OK);
        mesh_diags_clear(&d);
    }
    hand_clear(&h);

    /* No objects at all, and NULL among them. */
    struct mesh_node *none[2] = {NULL, NULL};
    struct mesh_resource **res = NULL;
    size_t n = 5;
    struct mesh_diags w = {0};
    read_back(none, 2, NULL, &res, &n, &w);
    assert_int_equal(n, 0);
    assert_int_equal(w.len, 0);
    mesh_resource_list_free(res, n);
    read_back(NULL, 0, NULL, &res, &n, &w);
    assert_int_equal(n, 0);
    mesh_resource_list_free(res, n);
}

/* Every node of the objects the translator writes, in turn, replaced by a node of another type
 * or by nothing: the reader warns and goes on, never crashes, and what it reads is valid. */
static size_t count_nodes(const struct mesh_node *n)
{
    size_t k = 1;
    for (size_t i = 0; n->type != MESH_NODE_SCALAR && i < n->len; i++)
        k += count_nodes(n->type == MESH_NODE_SEQ ? n->items[i] : n->pairs[i].value);
    return k;
}

/* Replaces the node at pre-order index *k below *slot (counting down) by a new one of kind
 * variant: 0 a scalar, 1 an empty map, 2 an empty sequence, 3 null. */
static bool replace_nth(struct mesh_node **slot, size_t *k, int variant)
{
    struct mesh_node *n = *slot;
    if (*k == 0) {
        mesh_node_free(n);
        *slot = variant == 0   ? mesh_node_str("7")
                : variant == 1 ? mesh_node_map()
                : variant == 2 ? mesh_node_seq()
                               : mesh_node_scalar(MESH_SCALAR_NULL, "null");
        return true;
    }
    (*k)--;
    for (size_t i = 0; n->type != MESH_NODE_SCALAR && i < n->len; i++)
        if (replace_nth(n->type == MESH_NODE_SEQ ? &n->items[i] : &n->pairs[i].value, k, variant))
            return true;
    return false;
}

static void test_linkerd_read_every_field_broken(void **state)
{
    (void)state;
    struct trip t = {0};
    input_add_examples(&t.x);
    input_add_text(&t.x, fault_vs_yaml, "vs");
    input_add_text(&t.x, three_faults_yaml, "faults");
    input_add_text(&t.x, authz_yaml, "authz");
    input_add_text(&t.x, strict_rules_yaml, "strict");
    trip_run(&t, "2.20", false, "everything");
    size_t n = t.t1.n_objects + t.n_svc, tried = 0;
    struct mesh_node **objs = calloc(n + 1, sizeof(*objs));
    assert_non_null(objs);
    for (size_t o = 0; o < n; o++) {
        const struct mesh_node *victim =
            o < t.t1.n_objects ? t.t1.objects[o] : t.svc_objs[o - t.t1.n_objects];
        size_t nodes = count_nodes(victim);
        for (size_t k = 0; k < nodes; k++) {
            for (int variant = 0; variant < 4; variant++) {
                for (size_t i = 0; i < n; i++)
                    objs[i] = i < t.t1.n_objects ? t.t1.objects[i] : t.svc_objs[i - t.t1.n_objects];
                struct mesh_node *broken = mesh_read_copy(victim);
                size_t at_k = k;
                assert_true(replace_nth(&broken, &at_k, variant));
                objs[o] = broken;
                struct mesh_resource **res = NULL;
                size_t nres = 0;
                struct mesh_diags w = {0};
                read_back(objs, n, "2.20", &res, &nres, &w);
                for (size_t r = 0; r < nres; r++) {
                    struct mesh_diags d = {0};
                    assert_int_equal(mesh_validate_resource(res[r], &d), MESH_OK);
                    mesh_diags_clear(&d);
                }
                mesh_resource_list_free(res, nres);
                mesh_diags_clear(&w);
                mesh_node_free(broken);
                tried++;
            }
        }
    }
    assert_true(tried > 1000);
    free(objs);
    trip_clear(&t);
}

/* --- objects as the API server returns them --- */

static void set_default(struct mesh_node *map, const char *key, struct mesh_node *value)
{
    if (map && map->type == MESH_NODE_MAP && !mesh_node_map_get(map, key))
        mesh_node_map_set(map, key, value);
    else
        mesh_node_free(value);
}

static struct mesh_node *prefix_root(void)
{
    struct mesh_node *p = mesh_node_map();
    mesh_node_map_set(p, "type", mesh_node_str("PathPrefix"));
    mesh_node_map_set(p, "value", mesh_node_str("/"));
    return p;
}

/* The defaults of the CRD schemas (../shared/schemas) and the fields the API server adds. */
static void api_server_defaults(struct mesh_node *obj)
{
    struct mesh_node *meta = mesh_node_map_get(obj, "metadata");
    set_default(meta, "uid", mesh_node_str("0b7c7e8e-3f6d-4a57-9d0e-2f1f5b8a9c11"));
    set_default(meta, "resourceVersion", mesh_node_str("4711"));
    set_default(meta, "creationTimestamp", mesh_node_str("2026-01-01T00:00:00Z"));
    const char *kind = text_at(obj, "kind");
    struct mesh_node *spec = mesh_node_map_get(obj, "spec");
    if (!strcmp(kind, "Server")) {
        set_default(spec, "proxyProtocol", mesh_node_str("unknown"));
        if (!strcmp(text_at(obj, "apiVersion"), "policy.linkerd.io/v1beta3"))
            set_default(spec, "accessPolicy", mesh_node_str("deny"));
    }
    if (strcmp(kind, "HTTPRoute"))
        return;
    set_default(obj, "status", mesh_node_map());
    struct mesh_node *rules = mesh_node_map_get(spec, "rules");
    for (size_t i = 0; rules && i < rules->len; i++) {
        struct mesh_node *rule = rules->items[i];
        if (!mesh_node_map_get(rule, "matches")) {
            struct mesh_node *ms = mesh_node_seq();
            struct mesh_node *m = mesh_node_map();
            mesh_node_map_set(m, "path", prefix_root());
            mesh_node_seq_append(ms, m);
            mesh_node_map_set(rule, "matches", ms);
        }
        struct mesh_node *ms = mesh_node_map_get(rule, "matches");
        for (size_t k = 0; k < ms->len; k++)
            set_default(ms->items[k], "path", prefix_root());
        struct mesh_node *bs = mesh_node_map_get(rule, "backendRefs");
        for (size_t k = 0; bs && k < bs->len; k++) {
            set_default(bs->items[k], "group", mesh_node_str(""));
            set_default(bs->items[k], "kind", mesh_node_str("Service"));
            set_default(bs->items[k], "weight", mesh_node_int(1));
        }
    }
}

static int compare_pairs(const void *a, const void *b)
{
    return strcmp(((const struct mesh_node_pair *)a)->key->text,
                  ((const struct mesh_node_pair *)b)->key->text);
}

static void sort_keys(struct mesh_node *n)
{
    if (n->type == MESH_NODE_MAP && n->len > 1)
        qsort(n->pairs, n->len, sizeof(*n->pairs), compare_pairs);
    for (size_t i = 0; n->type != MESH_NODE_SCALAR && i < n->len; i++)
        sort_keys(n->type == MESH_NODE_SEQ ? n->items[i] : n->pairs[i].value);
}

/* t's objects as the cluster would store them, keys sorted, printed. */
static char *stored(const struct mesh_translation *t)
{
    struct mesh_translation copy = {0};
    for (size_t i = 0; i < t->n_objects; i++) {
        struct mesh_node *o = mesh_read_copy(t->objects[i]);
        api_server_defaults(o);
        sort_keys(o);
        copy.objects = realloc(copy.objects, (copy.n_objects + 1) * sizeof(*copy.objects));
        assert_non_null(copy.objects);
        copy.objects[copy.n_objects++] = o;
    }
    char *out = translation_yaml(&copy);
    mesh_translation_clear(&copy);
    return out;
}

/* Read from the cluster (defaults filled in, status and server fields added), translated again:
 * what the cluster would then store is what it stores. */
static void test_linkerd_read_as_the_api_server_returns_them(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    for (size_t c = 0; c <= sizeof(cases) / sizeof(cases[0]); c++) {
        struct trip t = {0};
        input_add_text(&t.x, services_yaml, "services");
        if (c == sizeof(cases) / sizeof(cases[0])) {
            for (size_t i = 0; i < g.gl_pathc; i++)
                input_add_file(&t.x, g.gl_pathv[i]);
        } else {
            if (strstr(cases[c], "kind: FaultInjection") && !strstr(cases[c], "name: w}"))
                input_add_text(&t.x, fault_vs_yaml, "fault-vs");
            input_add_text(&t.x, cases[c], "case");
        }
        translate((const struct mesh_resource *const *)t.x.res, t.x.n, "2.20", &t.t1, "case");
        size_t n = t.t1.n_objects;
        struct mesh_node **objs = calloc(n + t.x.n + 1, sizeof(*objs));
        assert_non_null(objs);
        for (size_t i = 0; i < n; i++) {
            objs[i] = mesh_read_copy(t.t1.objects[i]);
            api_server_defaults(objs[i]);
        }
        for (size_t i = 0; i < t.x.n; i++)
            if (t.x.res[i]->kind == MESH_KIND_SERVICE)
                objs[n++] = mesh_kube_service_object((const struct mesh_service *)t.x.res[i]);
        read_back(objs, n, "2.20", &t.y, &t.ny, &t.warnings);
        translate((const struct mesh_resource *const *)t.y, t.ny, "2.20", &t.t2, "case");
        t.p1 = stored(&t.t1);
        t.p2 = stored(&t.t2);
        if (strcmp(t.p1, t.p2))
            fail_msg("case %zu: the cluster would store\n%s\ninstead of\n%s", c, t.p2, t.p1);
        for (size_t i = 0; i < n; i++)
            mesh_node_free(objs[i]);
        free(objs);
        trip_clear(&t);
    }
    globfree(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linkerd_read_examples_round_trip),
        cmocka_unit_test(test_linkerd_read_translator_cases_round_trip),
        cmocka_unit_test(test_linkerd_read_examples_content),
        cmocka_unit_test(test_linkerd_read_faults),
        cmocka_unit_test(test_linkerd_read_header_prefix),
        cmocka_unit_test(test_linkerd_read_authorization),
        cmocka_unit_test(test_linkerd_read_hand_written_route),
        cmocka_unit_test(test_linkerd_read_malformed),
        cmocka_unit_test(test_linkerd_read_every_field_broken),
        cmocka_unit_test(test_linkerd_read_as_the_api_server_returns_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
