/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Istio reader (src/provider/istio_read.c): the round trip translate → read →
 * translate for every example and for the translator's own cases, the read-back resources, what
 * is left out with a warning, and malformed objects. */
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
#include "provider/translate.h"

#include "translation_check.h"

#define HDR "apiVersion: mesh.clusterdb.io/v1\n"

/* As test_istio.c's: payment-v1/v2 are versions of the app payment; orders and orders-canary
 * both run app orders; web stands alone and balances round robin; cart lives in namespace shop. */
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

static const char *const versions[] = {"1.14", "1.30"};

/* --- reading --- */

struct read_back {
    struct mesh_resource **res;
    size_t n;
    struct mesh_diags warnings;
};

static void read_back_free(struct read_back *rb)
{
    mesh_resource_list_free(rb->res, rb->n);
    mesh_diags_clear(&rb->warnings);
    memset(rb, 0, sizeof(*rb));
}

static void read_objects(struct mesh_node *const *objs, size_t n,
                         const struct mesh_translate_options *opt, struct read_back *rb)
{
    memset(rb, 0, sizeof(*rb));
    assert_non_null(mesh_translator_istio.read);
    assert_int_equal(mesh_translator_istio.read(objs, n, opt, &rb->res, &rb->n, &rb->warnings),
                     MESH_OK);
    /* Sorted by kind, namespace, name. */
    for (size_t i = 1; i < rb->n; i++) {
        const struct mesh_resource *a = rb->res[i - 1], *b = rb->res[i];
        int c = strcmp(mesh_resource_namespace(a), mesh_resource_namespace(b));
        assert_true(a->kind < b->kind ||
                    (a->kind == b->kind && (c < 0 || (!c && strcmp(a->name, b->name) < 0))));
    }
}

/* Objects parsed from YAML text (a cluster's objects, written by hand). */
struct objects {
    struct mesh_node_docs docs;
    struct mesh_node **items;
    size_t n;
};

static void objects_parse(struct objects *o, const char *yaml)
{
    struct mesh_diags diags = {0};
    memset(o, 0, sizeof(*o));
    if (mesh_yaml_read(yaml, strlen(yaml), "objects.yaml", &o->docs, &diags) != MESH_OK)
        fail_msg("objects do not parse: %s", diags.len ? diags.items[0].message : "?");
    o->items = calloc(o->docs.len + 1, sizeof(*o->items));
    assert_non_null(o->items);
    for (size_t i = 0; i < o->docs.len; i++)
        if (o->docs.items[i].root)
            o->items[o->n++] = o->docs.items[i].root;
}

/* Appends other's objects to o's list, borrowed (other still owns them), with room for one
 * more item after them. */
static void objects_borrow(struct objects *o, const struct objects *other)
{
    o->items = realloc(o->items, (o->n + other->n + 1) * sizeof(*o->items));
    assert_non_null(o->items);
    for (size_t i = 0; i < other->n; i++)
        o->items[o->n++] = other->items[i];
}

static void objects_free(struct objects *o)
{
    mesh_node_docs_free(&o->docs);
    free(o->items);
    memset(o, 0, sizeof(*o));
}

static const struct mesh_resource *find_res(const struct read_back *rb, enum mesh_kind kind,
                                            const char *ns, const char *name)
{
    return find_resource(rb->res, rb->n, kind, ns, name);
}

static const void *must_res(const struct read_back *rb, enum mesh_kind kind, const char *ns,
                            const char *name)
{
    return must_find_resource(rb->res, rb->n, kind, ns, name);
}

static size_t count_res(const struct read_back *rb, enum mesh_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < rb->n; i++)
        n += rb->res[i]->kind == kind;
    return n;
}

/* rb holds n resources; else the test fails listing them. */
static void assert_read_count(const struct read_back *rb, size_t n)
{
    if (rb->n == n)
        return;
    for (size_t i = 0; i < rb->n; i++)
        print_error("  read: %s %s/%s\n", mesh_kind_name(rb->res[i]->kind),
                    mesh_resource_namespace(rb->res[i]), rb->res[i]->name);
    for (size_t i = 0; i < rb->warnings.len; i++)
        print_error("  warning: %s\n", rb->warnings.items[i].message);
    fail_msg("%zu resources read back, want %zu", rb->n, n);
}

#define assert_read_warning(rb, text)                                                              \
    do {                                                                                           \
        if (!diags_has(&(rb)->warnings, (text))) {                                                 \
            for (size_t i_ = 0; i_ < (rb)->warnings.len; i_++)                                     \
                print_error("  have: %s\n", (rb)->warnings.items[i_].message);                     \
            fail_msg("no warning \"%s\"", (text));                                                 \
        }                                                                                          \
    } while (0)

static const char *label(const struct mesh_resource *r, const char *key)
{
    for (size_t i = 0; i < r->labels.len; i++)
        if (!strcmp(r->labels.items[i].key, key))
            return r->labels.items[i].value;
    return NULL;
}

/* --- the round trip --- */

static void translate_list(struct mesh_resource *const *res, size_t n,
                           const struct mesh_translate_options *opt, struct mesh_translation *t,
                           const char *what)
{
    char *err = NULL;
    memset(t, 0, sizeof(*t));
    enum mesh_err rc =
        mesh_translator_istio.translate((const struct mesh_resource *const *)res, n, opt, t, &err);
    if (rc != MESH_OK)
        fail_msg("%s: translate: %s: %s", what, mesh_strerror(rc), err ? err : "?");
}

/* What the cluster holds after applying t over res: t's objects, and for each of res's Services
 * the v1 Service Kubernetes has. *objs: t's objects borrowed, the Services' owned from *n_t on. */
static struct mesh_node **cluster(const struct mesh_translation *t,
                                  struct mesh_resource *const *res, size_t n, size_t *n_objs)
{
    struct mesh_node **objs = calloc(t->n_objects + n + 1, sizeof(*objs));
    assert_non_null(objs);
    size_t k = 0;
    for (size_t i = 0; i < t->n_objects; i++)
        objs[k++] = t->objects[i];
    for (size_t i = 0; i < n; i++)
        if (res[i]->kind == MESH_KIND_SERVICE)
            objs[k++] = mesh_kube_service_object((const struct mesh_service *)res[i]);
    *n_objs = k;
    return objs;
}

static void cluster_free(struct mesh_node **objs, const struct mesh_translation *t, size_t n_objs)
{
    for (size_t i = t->n_objects; i < n_objs; i++)
        mesh_node_free(objs[i]);
    free(objs);
}

/* t1 = translate(x); y = read(t1 + x's Services); t2 = translate(y): t2 prints as t1, byte for
 * byte, and the reading has nothing to warn about. Then the reading is a fixpoint too: y read
 * again from t2 (+ y's Services) is y. */
static void round_trip(struct mesh_resource *const *x, size_t n,
                       const struct mesh_translate_options *opt, const char *what)
{
    struct mesh_translation t1, t2, t3;
    translate_list(x, n, opt, &t1, what);
    char *p1 = translation_yaml(&t1);
    size_t n_objs = 0;
    struct mesh_node **objs = cluster(&t1, x, n, &n_objs);
    struct read_back y, y2;
    read_objects(objs, n_objs, opt, &y);
    for (size_t i = 0; i < y.warnings.len; i++)
        print_error("%s: read warns: %s\n", what, y.warnings.items[i].message);
    assert_int_equal(y.warnings.len, 0);
    translate_list(y.res, y.n, opt, &t2, what);
    char *p2 = translation_yaml(&t2);
    if (strcmp(p1, p2) != 0) {
        print_error("--- %s: translate(x)\n%s\n--- translate(read(translate(x)))\n%s\n", what, p1,
                    p2);
        fail_msg("%s: the round trip changed the translation", what);
    }
    /* Warnings of the two translations agree too, but for what Istio cannot hold anyway. */
    assert_true(t2.warnings.len <= t1.warnings.len);

    size_t n_objs2 = 0;
    struct mesh_node **objs2 = cluster(&t2, y.res, y.n, &n_objs2);
    read_objects(objs2, n_objs2, opt, &y2);
    assert_int_equal(y2.n, y.n);
    for (size_t i = 0; i < y.n; i++)
        if (!mesh_model_same_content(y.res[i], y2.res[i]))
            fail_msg("%s: %s %s/%s reads back otherwise the second time", what,
                     mesh_kind_name(y.res[i]->kind), mesh_resource_namespace(y.res[i]),
                     y.res[i]->name);
    translate_list(y2.res, y2.n, opt, &t3, what);
    char *p3 = translation_yaml(&t3);
    assert_string_equal(p1, p3);

    free(p1);
    free(p2);
    free(p3);
    cluster_free(objs, &t1, n_objs);
    cluster_free(objs2, &t2, n_objs2);
    read_back_free(&y);
    read_back_free(&y2);
    mesh_translation_clear(&t1);
    mesh_translation_clear(&t2);
    mesh_translation_clear(&t3);
}

static void round_trip_input(const struct input *in, const struct mesh_translate_options *opt,
                             const char *what)
{
    round_trip(in->res, in->n, opt, what);
}

/* --- (a) every example, alone and together --- */

static void test_each_example_round_trips(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 11);
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        struct mesh_translate_options opt = {.version = versions[v]};
        for (size_t i = 0; i < g.gl_pathc; i++) {
            /* As the golden files render it (the istio MeshConfig, the Services, what it
             * names), and with the Services alone. */
            for (int with_mesh = 0; with_mesh < 2; with_mesh++) {
                struct input in = {0};
                char what[256];
                snprintf(what, sizeof(what), "%s at istio %s%s", g.gl_pathv[i], versions[v],
                         with_mesh ? " with mesh-istio.yaml" : "");
                if (with_mesh)
                    input_add_file(&in, "examples/mesh-istio.yaml");
                input_add_file(&in, "examples/services.yaml");
                if (example_context(g.gl_pathv[i]))
                    input_add_file(&in, example_context(g.gl_pathv[i]));
                if (strcmp(g.gl_pathv[i], "examples/services.yaml") != 0)
                    input_add_file(&in, g.gl_pathv[i]);
                round_trip_input(&in, &opt, what);
                input_free(&in);
            }
        }
    }
    globfree(&g);
}

static void test_examples_round_trip_together(void **state)
{
    (void)state;
    struct input in = {0};
    input_add_examples(&in);
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        struct mesh_translate_options opt = {.version = versions[v]};
        char what[64];
        snprintf(what, sizeof(what), "examples/ at istio %s", versions[v]);
        round_trip_input(&in, &opt, what);
    }
    /* No version asked for: the MeshConfig's (1.14), and the newest when none is read. */
    round_trip_input(&in, NULL, "examples/ at the MeshConfig's version");
    input_free(&in);
}

/* --- (b) what the examples read back as --- */

static const struct mesh_resource *original(const struct input *in, enum mesh_kind kind,
                                            const char *name)
{
    for (size_t i = 0; i < in->n; i++)
        if (in->res[i]->kind == kind && !strcmp(in->res[i]->name, name))
            return in->res[i];
    fail_msg("no %s %s in the examples", mesh_kind_name(kind), name);
    return NULL;
}

static void test_examples_read_back_as_written(void **state)
{
    (void)state;
    struct input in = {0};
    input_add_examples(&in);
    struct mesh_translate_options opt = {.version = "1.14"};
    struct mesh_translation t;
    translate_list(in.res, in.n, &opt, &t, "examples");
    size_t n_objs = 0;
    struct mesh_node **objs = cluster(&t, in.res, in.n, &n_objs);
    struct read_back rb;
    read_objects(objs, n_objs, &opt, &rb);
    assert_int_equal(rb.warnings.len, 0);

    /* The routes: exactly as written (the seed's glob "/api/v1/" + "*" came back from the prefix
     * /api/v1/, payment-v1 from subset v1 of payment.default.svc.cluster.local). */
    const struct mesh_virtual_service *vs =
        must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "payment-service");
    assert_true(mesh_model_same_content(
        &vs->res, original(&in, MESH_KIND_VIRTUAL_SERVICE, "payment-service")));
    assert_string_equal(vs->hosts.items[0], "payment.example.com");
    assert_string_equal(vs->gateways.items[0], "external-gateway");
    assert_int_equal(vs->n_http_routes, 1);
    assert_string_equal(vs->http_routes[0].name, "primary");
    assert_int_equal(vs->http_routes[0].matches[0].path.kind, MESH_PATH_GLOB);
    assert_string_equal(vs->http_routes[0].matches[0].path.value, "/api/v1/*");
    assert_string_equal(vs->http_routes[0].destinations[0].host, "payment-v1");
    assert_int_equal(vs->http_routes[0].destinations[0].weight, 90);
    assert_string_equal(vs->http_routes[0].destinations[1].host, "payment-v2");
    assert_int_equal(vs->http_routes[0].destinations[1].weight, 10);
    assert_int_equal(vs->http_routes[0].retries.attempts, 0);
    /* The mesh route's host payment.default.svc.cluster.local is "payment" again. */
    vs = must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "payment");
    assert_true(
        mesh_model_same_content(&vs->res, original(&in, MESH_KIND_VIRTUAL_SERVICE, "payment")));
    assert_string_equal(vs->hosts.items[0], "payment");
    vs = must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "web-service");
    assert_true(
        mesh_model_same_content(&vs->res, original(&in, MESH_KIND_VIRTUAL_SERVICE, "web-service")));

    /* The breaker: one, from three DestinationRules (the app's and the two versions' own),
     * naming the VirtualService again; maxEjectionPercent 50 is ours unset. */
    const struct mesh_circuit_breaker *cb =
        must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "payment-service");
    assert_int_equal(count_res(&rb, MESH_KIND_CIRCUIT_BREAKER), 1);
    assert_true(mesh_model_same_content(
        &cb->res, original(&in, MESH_KIND_CIRCUIT_BREAKER, "payment-service")));
    assert_string_equal(cb->service, "payment-service");
    assert_int_equal(cb->config.max_connections, 100);
    assert_int_equal(cb->config.max_pending_requests, 100);
    assert_int_equal(cb->config.max_requests, 1000);
    assert_int_equal(cb->config.max_retries, 3);
    assert_int_equal(cb->config.detection.consecutive_errors, 5);
    assert_int_equal(cb->config.detection.interval_ms, 10000);
    assert_int_equal(cb->config.detection.base_ejection_time_ms, 30000);
    assert_int_equal(cb->config.detection.max_ejection_percent, MESH_UNSET);

    /* The fault, named after the VirtualService it is on; 100% is ours unset. */
    const struct mesh_fault_injection *fi =
        must_res(&rb, MESH_KIND_FAULT_INJECTION, "default", "web-service");
    assert_int_equal(count_res(&rb, MESH_KIND_FAULT_INJECTION), 1);
    assert_true(
        mesh_model_same_content(&fi->res, original(&in, MESH_KIND_FAULT_INJECTION, "web-service")));
    assert_string_equal(fi->service, "web-service");
    assert_null(fi->route);
    assert_int_equal(fi->fault.delay_ms, 100);
    assert_true(fi->fault.delay_percentage == MESH_UNSET);
    assert_int_equal(fi->fault.abort.http_status, 503);
    assert_true(fi->fault.abort.percentage == 10);

    /* The policy, from its PeerAuthentication and AuthorizationPolicy. Not exact: Istio has one
     * CA, so certificate_authority (a warning when translating) cannot come back. */
    const struct mesh_security_policy *sp =
        must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "payment-security");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_null(sp->mtls.certificate_authority);
    assert_int_equal(sp->services.len, 0);
    assert_int_equal(sp->n_authorization, 1);
    assert_int_equal(sp->authorization[0].from.len, 1);
    assert_string_equal(sp->authorization[0].from.items[0], "orders.default.svc");
    assert_string_equal(sp->authorization[0].to.items[0], "payment.default.svc");
    assert_string_equal(sp->authorization[0].methods.items[0], "POST");
    assert_string_equal(sp->authorization[0].paths.items[0], "/api/v1/process");
    struct mesh_security_policy *want = (struct mesh_security_policy *)mesh_resource_clone(
        original(&in, MESH_KIND_SECURITY_POLICY, "payment-security"));
    assert_non_null(want);
    free(want->mtls.certificate_authority);
    want->mtls.certificate_authority = NULL;
    assert_true(mesh_model_same_content(&sp->res, &want->res));
    mesh_resource_free(&want->res);

    /* The MeshConfig, from the Telemetry and the Gateway. Not exact: mtls (enabled and
     * auto_upgrade true are Istio's defaults, written nowhere) and ingress.gateway_class (the
     * classic Gateway has none) cannot come back. */
    const struct mesh_mesh_config *mc = must_res(&rb, MESH_KIND_MESH_CONFIG, "default", "istio");
    assert_int_equal(count_res(&rb, MESH_KIND_MESH_CONFIG), 1); /* not the linkerd one */
    assert_string_equal(mc->provider, "istio");
    assert_string_equal(mc->version, "1.14");
    assert_int_equal(mc->telemetry.enabled, MESH_TRI_TRUE);
    assert_true(mc->telemetry.sampling_rate == 100);
    assert_int_equal(mc->ingress.enabled, MESH_TRI_TRUE);
    assert_int_equal(mc->mtls.enabled, MESH_TRI_UNSET);
    assert_null(mc->ingress.gateway_class);

    /* The Services: names, labels, protocol. Not exact: their endpoints are Kubernetes'. */
    assert_int_equal(count_res(&rb, MESH_KIND_SERVICE), 5);
    const struct mesh_service *svc = must_res(&rb, MESH_KIND_SERVICE, "default", "payment-v2");
    assert_string_equal(label(&svc->res, "app"), "payment");
    assert_string_equal(label(&svc->res, "version"), "v2");
    assert_string_equal(svc->protocol, "http");
    assert_int_equal(svc->n_endpoints, 0);
    /* What Istio's translation never writes is not read. */
    assert_int_equal(count_res(&rb, MESH_KIND_OBSERVABILITY_CONFIG), 0);
    assert_int_equal(count_res(&rb, MESH_KIND_KUBERNETES_CONFIG), 0);
    assert_read_count(&rb, 12);

    read_back_free(&rb);
    cluster_free(objs, &t, n_objs);
    mesh_translation_clear(&t);
    input_free(&in);
}

/* --- the translator's own cases --- */

static const char fault_routes_yaml[] =
    HDR "kind: VirtualService\nmetadata: {name: shop}\n"
        "spec:\n  hosts: [shop.example.com]\n  http_routes:\n"
        "    - name: checkout\n      destinations: [{host: orders}]\n"
        "    - name: browse\n      destinations: [{host: web}]\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: a-whole}\n"
        "spec: {service: shop, delay: 2s, delay_percentage: 12.5}\n"
        "---\n" HDR "kind: FaultInjection\nmetadata: {name: b-checkout}\n"
        "spec: {service: shop, route: checkout, abort: {http_status: 500}}\n";

static const struct {
    const char *name;
    const char *yaml;
    struct mesh_translate_options opt;
} cases[] = {
    {"subsets",
     HDR "kind: VirtualService\nmetadata: {name: pay}\n"
         "spec:\n  hosts: [payment]\n  http_routes:\n"
         "    - destinations: [{host: payment-v1, weight: 90}, "
         "{host: payment-v2.default.svc, weight: 10}]\n"
         "    - destinations: [{host: orders}]\n"
         "    - destinations: [{host: cart.shop.svc, weight: 100}]\n",
     {0}},
    {"matches",
     HDR "kind: VirtualService\nmetadata: {name: m}\n"
         "spec:\n  hosts: [api.example.com, \"*.example.org\", web.default]\n"
         "  http_routes:\n"
         "    - matches:\n"
         "        - path: /exact\n"
         "        - path: {prefix: /pre/}\n"
         "        - path: {prefix: \"/st*r/\"}\n"
         "        - path: {exact: \"/a*b\"}\n"
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
     {0}},
    {"retries",
     HDR "kind: VirtualService\nmetadata: {name: r}\n"
         "spec:\n  hosts: [orders]\n  http_routes:\n"
         "    - name: full\n      timeout: 2500ms\n"
         "      retries: {attempts: 3, per_try_timeout: 500ms, retry_on: [5xx, reset]}\n"
         "      destinations: [{host: orders}]\n"
         "    - name: bare\n      timeout: 1m\n      retries: {attempts: 2}\n"
         "      destinations: [{host: orders}]\n"
         "    - name: none\n      destinations: [{host: orders}]\n",
     {0}},
    {"faults on routes", fault_routes_yaml, {0}},
    {"fault on a Service",
     HDR "kind: VirtualService\nmetadata: {name: shop}\n"
         "spec:\n  hosts: [shop.example.com]\n  http_routes:\n"
         "    - destinations: [{host: web}]\n"
         "    - destinations: [{host: orders}]\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: slow-web}\n"
         "spec: {service: web, delay: 300ms}\n",
     {0}},
    {"fault on a Service named like a VirtualService",
     HDR "kind: VirtualService\nmetadata: {name: slow-web}\n"
         "spec:\n  hosts: [x.example.com]\n  http_routes:\n"
         "    - destinations: [{host: orders}]\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: slow-web}\n"
         "spec: {service: web, abort: {http_status: 502, percentage: 0.5}}\n",
     {0}},
    {"fault on a routed Service",
     HDR "kind: VirtualService\nmetadata: {name: web-route}\n"
         "spec:\n  hosts: [web.default.svc]\n  http_routes:\n"
         "    - destinations: [{host: web}]\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: web}\n"
         "spec: {service: web, abort: {http_status: 503, "
         "percentage: 5}}\n",
     {0}},
    {"fault on one destination of a split",
     HDR "kind: VirtualService\nmetadata: {name: pay}\n"
         "spec:\n  hosts: [payment]\n  http_routes:\n"
         "    - destinations: [{host: payment-v1, weight: 90}, {host: payment-v2, weight: 10}]\n"
         "    - name: v2-only\n      matches: [{path: /v2/*}]\n"
         "      destinations: [{host: payment-v2}]\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: v2-slow}\n"
         "spec: {service: payment-v2, delay: 1s}\n",
     {.allow_partial = true}},
    {"breakers",
     HDR "kind: VirtualService\nmetadata: {name: pay}\n"
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
     {0}},
    /* A breaker naming a VirtualService one of whose destinations another breaker names
     * outright; one naming a VirtualService of another name; one across namespaces. */
    {"breakers through VirtualServices",
     HDR "kind: VirtualService\nmetadata: {name: front}\n"
         "spec:\n  hosts: [front.example.com]\n  http_routes:\n"
         "    - destinations: [{host: payment-v1, weight: 50}, {host: payment-v2, weight: 50}]\n"
         "    - destinations: [{host: web}]\n"
         "---\n" HDR "kind: VirtualService\nmetadata: {name: back}\n"
         "spec:\n  hosts: [back.example.com]\n  http_routes:\n"
         "    - destinations: [{host: orders, weight: 30}, {host: orders-canary, weight: 70}]\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: front-limits}\n"
         "spec: {service: front, max_requests: 50}\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: web-limits}\n"
         "spec: {service: web, max_requests: 7}\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: back-limits}\n"
         "spec: {service: back, max_connections: 9, detection: {consecutive_errors: 2}}\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: cart-limits}\n"
         "spec: {service: cart.shop, max_retries: 1}\n",
     {0}},
    {"peer authentication",
     HDR "kind: SecurityPolicy\nmetadata: {name: ns-strict}\n"
         "spec: {mtls: {mode: strict}}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: a-ns-permissive}\n"
         "spec: {mtls: {mode: permissive}}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: legacy}\n"
         "spec: {services: [orders, payment-v1, cart.shop], mtls: {mode: "
         "disable}}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: orders-permissive}\n"
         "spec: {services: [orders.default.svc], mtls: {mode: permissive}}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: pay-app}\n"
         "spec: {services: [payment], mtls: {mode: strict}}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: v2-loose}\n"
         "spec: {services: [payment-v2, web], mtls: {mode: permissive}}\n",
     {0}},
    {"auto mTLS off",
     MESH_ISTIO(", mtls: {enabled: false, auto_upgrade: false}") "---\n" HDR
                                                                 "kind: SecurityPolicy\nmetadata: "
                                                                 "{name: pay-strict}\n"
                                                                 "spec: {services: [payment], "
                                                                 "mtls: {mode: strict}}\n"
                                                                 "---\n" HDR
                                                                 "kind: VirtualService\nmetadata: "
                                                                 "{name: pay}\n"
                                                                 "spec:\n  hosts: [payment]\n  "
                                                                 "http_routes:\n"
                                                                 "    - destinations: [{host: "
                                                                 "payment-v1, weight: 50}, {host: "
                                                                 "payment-v2, weight: 50}]\n",
     {0}},
    {"authorization",
     HDR "kind: SecurityPolicy\nmetadata: {name: access}\nspec:\n  authorization:\n"
         "    - from: [orders.default.svc, spiffe://example.org/ns/ops/sa/admin]\n"
         "      to: [payment, web]\n"
         "      methods: [GET, POST]\n"
         "      paths: [/api/*, /health]\n"
         "    - from: [\"*\"]\n      to: [web]\n      paths: [\"*\"]\n"
         "    - from: [nobody.default.example]\n      to: [cart.shop]\n"
         "    - from: [orders-canary.default]\n      to: [payment-v2, orders]\n"
         "    - from: [orders.default.svc, spiffe://example.org/ns/ops/sa/admin]\n"
         "      to: [orders-canary]\n"
         "      methods: [GET, POST]\n"
         "      paths: [/api/*, /health]\n",
     {0}},
    {"trust domain",
     HDR "kind: SecurityPolicy\nmetadata: {name: one}\nspec:\n  authorization:\n"
         "    - {from: [web.default, orders.default], to: [payment-v2]}\n"
         "---\n" HDR "kind: VirtualService\nmetadata: {name: v}\n"
         "spec: {hosts: [orders, cart.shop.svc], http_routes: "
         "[{destinations: [{host: orders}]}]}\n",
     {.cluster_domain = "corp.example"}},
    {"telemetry and balancers",
     MESH_ISTIO(
         ", telemetry: {sampling_rate: 12.5}") "---\n" HDR
                                               "kind: VirtualService\nmetadata: {name: v}\n"
                                               "spec: {hosts: [orders], http_routes: "
                                               "[{destinations: [{host: orders}]}]}\n"
                                               "---\n" HDR
                                               "kind: SecurityPolicy\nmetadata: {name: s}\n"
                                               "spec: {mtls: {mode: strict}, authorization: "
                                               "[{to: [orders]}]}\n"
                                               "---\n" HDR "kind: Service\nmetadata: {name: lr}\n"
                                               "spec: {load_balancer: least_request, "
                                               "endpoints: [\"127.0.0.1:1\"]}\n"
                                               "---\n" HDR "kind: Service\nmetadata: {name: rnd, "
                                               "labels: {app: payment, version: \"V3.0\"}}\n"
                                               "spec: {load_balancer: random, endpoints: "
                                               "[\"127.0.0.1:2\"]}\n",
     {0}},
    /* The app's own Service and one version with breakers of their own (the app's rule says
     * the first at the top, the second on the subset); a fault on one named route; a route
     * from another namespace. */
    {"own and version breakers",
     HDR "kind: Service\nmetadata: {name: payment, labels: {app: payment}}\n"
         "spec: {load_balancer: random, endpoints: [\"127.0.0.1:1\"]}\n"
         "---\n" HDR "kind: VirtualService\nmetadata: {name: pay}\n"
         "spec:\n  hosts: [payment]\n  http_routes:\n"
         "    - name: a\n"
         "      destinations: [{host: payment-v1, weight: 50}, {host: payment-v2, weight: 50}]\n"
         "    - name: b\n      matches: [{path: /b}]\n      destinations: [{host: payment}]\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: own}\n"
         "spec: {service: payment, max_connections: 3}\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: v2}\n"
         "spec: {service: payment-v2, max_connections: 4}\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: fb}\n"
         "spec: {service: pay, route: b, delay: 1s, delay_percentage: 50}\n"
         "---\n" HDR "kind: VirtualService\nmetadata: {name: cross, namespace: shop}\n"
         "spec:\n  hosts: [cart, payment.default.svc]\n  http_routes:\n"
         "    - destinations: [{host: payment-v1.default, weight: 100}]\n"
         "      retries: {attempts: 1, retry_on: [gateway-error]}\n",
     {0}},
    /* Versions sharing a balancer; two versions one subset name would confuse (V1, v1), so
     * each by its own host; a Service's fault on a named route; auto-mTLS off in a MeshConfig
     * that writes nothing else. */
    {"shared balancers and clashing versions",
     HDR "kind: Service\nmetadata: {name: web-v1, labels: {app: web2, version: v1}}\n"
         "spec: {load_balancer: round_robin, endpoints: [\"127.0.0.1:1\"]}\n"
         "---\n" HDR "kind: Service\nmetadata: {name: web-v2, labels: {app: web2, version: v2}}\n"
         "spec: {load_balancer: round_robin, endpoints: [\"127.0.0.1:1\"]}\n"
         "---\n" HDR "kind: Service\nmetadata: {name: dup-a, labels: {app: dup, version: V1}}\n"
         "spec: {endpoints: [\"127.0.0.1:1\"]}\n"
         "---\n" HDR "kind: Service\nmetadata: {name: dup-b, labels: {app: dup, version: v1}}\n"
         "spec: {endpoints: [\"127.0.0.1:1\"]}\n"
         "---\n" HDR "kind: VirtualService\nmetadata: {name: w}\n"
         "spec:\n  hosts: [web2, orders.default.svc.cluster.local]\n  http_routes:\n"
         "    - name: split\n"
         "      destinations: [{host: web-v1, weight: 50}, {host: web-v2, weight: 50}]\n"
         "    - name: dup\n      matches: [{path: /dup, headers: {x-a: {present: true}}}]\n"
         "      destinations: [{host: dup-a, weight: 60}, {host: dup-b, weight: 40}]\n"
         "    - name: ord\n      matches: [{path: /o}]\n      destinations: [{host: orders}]\n"
         "---\n" HDR "kind: FaultInjection\nmetadata: {name: slow-orders}\n"
         "spec: {service: orders, delay: 20ms}\n"
         "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: w-limits}\n"
         "spec: {service: w, max_pending_requests: 11}\n"
         "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: strict}\n"
         "spec: {mtls: {mode: strict}}\n"
         "---\n" HDR "kind: MeshConfig\nmetadata: {name: zz-istio, namespace: mesh}\n"
         "spec: {provider: istio, mtls: {auto_upgrade: false}}\n",
     {0}},
    {"tracing off and ingress",
     MESH_ISTIO(", telemetry: {enabled: false}, ingress: {enabled: "
                "true}") "---\n" HDR "kind: VirtualService\nmetadata: {name: edge}\n"
                         "spec: {hosts: [a.example.com, b.example.com], gateways: [edge-gw, "
                         "istio-system/shared, "
                         "mesh], http_routes: [{destinations: [{host: web}]}]}\n",
     {0}},
};

static void test_translator_cases_round_trip(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
            struct input in = {0};
            input_add_text(&in, services_yaml, "services.yaml");
            input_add_text(&in, cases[c].yaml, cases[c].name);
            struct mesh_translate_options opt = cases[c].opt;
            opt.version = versions[v];
            char what[128];
            snprintf(what, sizeof(what), "%s at istio %s", cases[c].name, versions[v]);
            round_trip_input(&in, &opt, what);
            input_free(&in);
        }
    }
}

/* Reads what x translates to (with its Services); for the assertions below. */
static void read_translation(const char *yaml, const struct mesh_translate_options *opt,
                             struct read_back *rb)
{
    struct input in = {0};
    input_add_text(&in, services_yaml, "services.yaml");
    input_add_text(&in, yaml, "t.yaml");
    struct mesh_translation t;
    translate_list(in.res, in.n, opt, &t, "t.yaml");
    size_t n_objs = 0;
    struct mesh_node **objs = cluster(&t, in.res, in.n, &n_objs);
    read_objects(objs, n_objs, opt, rb);
    cluster_free(objs, &t, n_objs);
    mesh_translation_clear(&t);
    input_free(&in);
}

static void test_conventions_where_istio_lost_information(void **state)
{
    (void)state;
    struct read_back rb;
    /* Faults: the whole VirtualService's and a route's become one per named route. */
    read_translation(fault_routes_yaml, NULL, &rb);
    const struct mesh_fault_injection *fi =
        must_res(&rb, MESH_KIND_FAULT_INJECTION, "default", "shop-checkout");
    assert_string_equal(fi->service, "shop");
    assert_string_equal(fi->route, "checkout");
    assert_int_equal(fi->fault.abort.http_status, 500);
    fi = must_res(&rb, MESH_KIND_FAULT_INJECTION, "default", "shop-browse");
    assert_string_equal(fi->route, "browse");
    assert_int_equal(fi->fault.delay_ms, 2000);
    assert_true(fi->fault.delay_percentage == 12.5);
    assert_int_equal(count_res(&rb, MESH_KIND_FAULT_INJECTION), 2);
    read_back_free(&rb);

    /* A Service's own fault comes back from its VirtualService, named as it was, and is not
     * read a second time from the route going there. */
    read_translation(HDR "kind: VirtualService\nmetadata: {name: shop}\n"
                         "spec:\n  hosts: [shop.example.com]\n  http_routes:\n"
                         "    - destinations: [{host: web}]\n"
                         "---\n" HDR "kind: FaultInjection\nmetadata: {name: slow-web}\n"
                         "spec: {service: web, delay: 300ms}\n",
                     NULL, &rb);
    fi = must_res(&rb, MESH_KIND_FAULT_INJECTION, "default", "slow-web");
    assert_string_equal(fi->service, "web");
    assert_int_equal(count_res(&rb, MESH_KIND_FAULT_INJECTION), 1);
    assert_int_equal(count_res(&rb, MESH_KIND_VIRTUAL_SERVICE), 1);
    read_back_free(&rb);

    /* Paths and headers as the seed writes them: a prefix is the glob that made it, a regex of
     * literals and .* the glob it was, a header regex .* presence; a Service's host its name. */
    read_translation(cases[1].yaml, NULL, &rb);
    const struct mesh_virtual_service *vs =
        must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "m");
    assert_int_equal(vs->hosts.len, 3);
    assert_string_equal(vs->hosts.items[0], "api.example.com");
    assert_string_equal(vs->hosts.items[1], "*.example.org");
    assert_string_equal(vs->hosts.items[2], "web");
    static const struct {
        enum mesh_path_kind kind;
        const char *value;
    } paths[] = {
        {MESH_PATH_EXACT, "/exact"},           {MESH_PATH_GLOB, "/pre/*"},
        {MESH_PATH_PREFIX, "/st*r/"},          {MESH_PATH_EXACT, "/a*b"},
        {MESH_PATH_REGEX, "^/v[0-9]+/items$"}, {MESH_PATH_GLOB, "/a/*/b.json"},
        {MESH_PATH_GLOB, "/files*"},
    };
    const struct mesh_http_route *route = &vs->http_routes[0];
    assert_int_equal(route->n_matches, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(route->matches[i].path.kind, paths[i].kind);
        assert_string_equal(route->matches[i].path.value, paths[i].value);
    }
    const struct mesh_route_match *m = &route->matches[6];
    assert_string_equal(m->method, "GET");
    assert_int_equal(m->n_headers, 4);
    assert_string_equal(m->headers[3].name, "x-debug");
    assert_int_equal(m->headers[3].kind, MESH_HEADER_PRESENT);
    assert_int_equal(m->headers[1].kind, MESH_HEADER_PREFIX);
    assert_int_equal(m->headers[2].kind, MESH_HEADER_REGEX);
    assert_int_equal(vs->http_routes[1].n_matches, 0);
    read_back_free(&rb);

    /* Breakers: a Service's own, and one per VirtualService; the load balancer on its Service. */
    read_translation(cases[9].yaml, NULL, &rb);
    const struct mesh_circuit_breaker *cb =
        must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "front-limits");
    assert_string_equal(cb->service, "front");
    cb = must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "back-limits");
    assert_string_equal(cb->service, "back");
    assert_int_equal(cb->config.detection.consecutive_errors, 2);
    cb = must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "web-limits");
    assert_string_equal(cb->service, "web");
    cb = must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "cart-limits");
    assert_string_equal(cb->service, "cart.shop.svc");
    const struct mesh_service *web = must_res(&rb, MESH_KIND_SERVICE, "default", "web");
    assert_string_equal(web->load_balancer, "round_robin");
    read_back_free(&rb);

    /* Principals: orders names orders' and orders-canary's accounts, so that pair is orders;
     * the SPIFFE ID stays one; a rule from nobody (an ALLOW policy without rules) stays one. */
    read_translation(cases[12].yaml, NULL, &rb);
    const struct mesh_security_policy *sp =
        must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "access");
    /* orders-canary is selected as orders is (app: orders): its rules sit with orders'. */
    assert_int_equal(sp->n_authorization, 4);
    const struct mesh_authorization_rule *wide = NULL, *anyone = NULL, *nobody = NULL;
    for (size_t i = 0; i < sp->n_authorization; i++) {
        const struct mesh_authorization_rule *rule = &sp->authorization[i];
        if (rule->from.len == 2)
            wide = rule;
        else if (rule->from.len == 0)
            anyone = rule;
        else if (!strcmp(rule->from.items[0], "nobody.nowhere.invalid"))
            nobody = rule;
    }
    assert_non_null(wide);
    assert_string_equal(wide->from.items[0], "orders.default.svc");
    assert_string_equal(wide->from.items[1], "spiffe://example.org/ns/ops/sa/admin");
    assert_int_equal(wide->to.len, 3); /* orders(-canary), payment, web: one body */
    assert_string_equal(wide->methods.items[1], "POST");
    assert_string_equal(wide->paths.items[0], "/api/*");
    assert_non_null(anyone); /* "*": anyone, any path */
    assert_string_equal(anyone->to.items[0], "web.default.svc");
    assert_int_equal(anyone->paths.len, 0);
    assert_non_null(nobody); /* from names nobody: an ALLOW policy without rules */
    assert_string_equal(nobody->to.items[0], "cart.shop.svc");
    read_back_free(&rb);

    /* mTLS: a version's PeerAuthentication raised by its app's is the weaker again. */
    read_translation(cases[10].yaml, NULL, &rb);
    sp = must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "v2-loose");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_PERMISSIVE);
    assert_int_equal(sp->services.len, 2);
    assert_null(find_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "a-ns-permissive"));
    read_back_free(&rb);

    /* Auto-mTLS off comes back from the clients' ISTIO_MUTUAL. */
    read_translation(cases[11].yaml, NULL, &rb);
    const struct mesh_mesh_config *mc = must_res(&rb, MESH_KIND_MESH_CONFIG, "default", "istio");
    assert_int_equal(mc->mtls.enabled, MESH_TRI_FALSE);
    assert_int_equal(mc->mtls.auto_upgrade, MESH_TRI_FALSE);
    /* No version asked for: the objects' v1beta1 say a release before 1.22, read as 1.14. */
    assert_string_equal(mc->version, "1.14");
    read_back_free(&rb);

    /* Written for 1.30 (v1 objects), read without a version: none, i.e. the newest. */
    struct input in = {0};
    input_add_text(&in, services_yaml, "services.yaml");
    input_add_text(&in, cases[11].yaml, "t.yaml");
    struct mesh_translate_options v130 = {.version = "1.30"};
    struct mesh_translation t;
    translate_list(in.res, in.n, &v130, &t, "t.yaml");
    size_t n_objs = 0;
    struct mesh_node **objs = cluster(&t, in.res, in.n, &n_objs);
    read_objects(objs, n_objs, NULL, &rb);
    mc = must_res(&rb, MESH_KIND_MESH_CONFIG, "default", "istio");
    assert_null(mc->version);
    read_back_free(&rb);
    /* Asked for one: that one. */
    read_objects(objs, n_objs, &v130, &rb);
    mc = must_res(&rb, MESH_KIND_MESH_CONFIG, "default", "istio");
    assert_string_equal(mc->version, "1.30");
    read_back_free(&rb);
    cluster_free(objs, &t, n_objs);
    mesh_translation_clear(&t);
    input_free(&in);
}

/* --- (c) written by hand --- */

static const char reviews_service[] = "apiVersion: v1\nkind: Service\n"
                                      "metadata: {name: reviews-v2, namespace: default, "
                                      "labels: {app: reviews, version: v2}}\n"
                                      "spec: {ports: [{name: http-web, port: 9080}]}\n";

static void test_hand_written_virtual_service_with_rewrite_and_mirror(void **state)
{
    (void)state;
    struct objects o;
    objects_parse(&o, "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: reviews, namespace: default}\n"
                      "spec:\n"
                      "  hosts: [reviews.default.svc.cluster.local]\n"
                      "  http:\n"
                      "    - match: [{uri: {prefix: /v1/}, headers: {x-tier: {exact: gold}}}]\n"
                      "      rewrite: {uri: /}\n"
                      "      mirror: {host: reviews-shadow}\n"
                      "      route:\n"
                      "        - destination: {host: reviews, subset: v2}\n"
                      "          weight: 100\n"
                      "      timeout: 3s\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                      "metadata: {name: reviews, namespace: default}\n"
                      "spec: {host: reviews, subsets: [{name: v2, labels: {version: v2}}]}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: tcp-only, namespace: default}\n"
                      "spec: {hosts: [db], tcp: [{route: [{destination: {host: db}}]}]}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: narrow, namespace: default}\n"
                      "spec:\n  hosts: [n.example.com]\n  http:\n"
                      "    - match: [{queryParams: {debug: {exact: \"1\"}}}]\n"
                      "      route: [{destination: {host: reviews-v2}}]\n"
                      "    - redirect: {uri: /elsewhere}\n"
                      "    - route: [{destination: {host: reviews-v2}}]\n"
                      "      retries: {attempts: 1, retryOn: \"5xx,retriable-4xx\"}\n"
                      "---\n"
                      "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                      "metadata: {name: ext}\nspec: {hosts: [ext.example.com]}\n"
                      "---\n");
    struct objects svc;
    objects_parse(&svc, reviews_service);
    objects_borrow(&o, &svc);
    struct read_back rb;
    read_objects(o.items, o.n, NULL, &rb);

    /* Read, named after itself, as ours would say it. */
    const struct mesh_virtual_service *vs =
        must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "reviews");
    assert_string_equal(vs->hosts.items[0], "reviews");
    assert_int_equal(vs->n_http_routes, 1);
    const struct mesh_http_route *route = &vs->http_routes[0];
    assert_int_equal(route->matches[0].path.kind, MESH_PATH_GLOB);
    assert_string_equal(route->matches[0].path.value, "/v1/*");
    assert_string_equal(route->matches[0].headers[0].name, "x-tier");
    assert_int_equal(route->matches[0].headers[0].kind, MESH_HEADER_EXACT);
    /* Subset v2 of reviews (by the DestinationRule's version label): Service reviews-v2. */
    assert_string_equal(route->destinations[0].host, "reviews-v2");
    assert_int_equal(route->destinations[0].weight, 100);
    assert_int_equal(route->timeout_ms, 3000);
    /* No retries said: Istio's two. */
    assert_int_equal(route->retries.attempts, 2);
    /* What ours cannot do is named, field by field. */
    assert_read_warning(&rb, "VirtualService default/reviews spec.http[0].rewrite: not read: our "
                             "routes do not rewrite the path or the authority");
    assert_read_warning(&rb, "VirtualService default/reviews spec.http[0].mirror: not read: our "
                             "routes do not mirror traffic");
    /* TCP routes only: nothing to read, said so. */
    assert_null(find_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "tcp-only"));
    assert_read_warning(&rb, "VirtualService default/tcp-only spec.tcp: not read: our "
                             "VirtualServices route HTTP only");
    assert_read_warning(&rb, "VirtualService default/tcp-only spec.http: not read: no HTTP route "
                             "could be read");
    /* Never wider: a route on a query parameter and a redirect are left out, not read as
     * routes that take every request. */
    vs = must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "narrow");
    assert_int_equal(vs->n_http_routes, 1);
    assert_int_equal(vs->http_routes[0].n_matches, 0);
    assert_int_equal(vs->http_routes[0].retries.attempts, 1);
    assert_int_equal(vs->http_routes[0].retries.retry_on.len, 1);
    assert_string_equal(vs->http_routes[0].retries.retry_on.items[0], "5xx");
    assert_true(diags_has_part(&rb.warnings, "VirtualService default/narrow "
                                             "spec.http[0].match[0].queryParams: not read:"));
    assert_read_warning(&rb, "VirtualService default/narrow spec.http[0]: not read: none of its "
                             "matches could be read, and without one it would take every request");
    assert_read_warning(&rb, "VirtualService default/narrow spec.http[1].redirect: not read: our "
                             "routes do not redirect");
    assert_read_warning(&rb, "VirtualService default/narrow spec.http[2].retries.retryOn: not "
                             "read: \"retriable-4xx\" is not one of our retry conditions (5xx, "
                             "gateway-error, reset, connect-failure)");
    /* The subsets alone make nothing; the Namespace and the ServiceEntry are not Istio objects
     * the translation writes: skipped without a word. */
    assert_int_equal(count_res(&rb, MESH_KIND_CIRCUIT_BREAKER), 0);
    assert_false(diags_has_part(&rb.warnings, "ServiceEntry"));
    assert_false(diags_has_part(&rb.warnings, "Namespace"));
    assert_int_equal(count_res(&rb, MESH_KIND_SERVICE), 1);
    assert_read_count(&rb, 3);
    read_back_free(&rb);
    o.n--; /* svc owns that one */
    objects_free(&svc);
    objects_free(&o);
}

static void test_hand_written_policies_and_rules(void **state)
{
    (void)state;
    struct objects o;
    objects_parse(
        &o, "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
            "metadata: {name: reviews-limits, namespace: default}\n"
            "spec:\n  host: reviews-v2\n  trafficPolicy:\n"
            "    connectionPool: {tcp: {maxConnections: 3, connectTimeout: 1s}, "
            "http: {maxRetries: 2, idleTimeout: 5s}}\n"
            "    outlierDetection: {interval: 20s}\n"
            "    loadBalancer: {simple: RANDOM}\n"
            "---\n"
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            "metadata: {name: strict-reviews, namespace: default}\n"
            "spec: {selector: {matchLabels: {app: reviews, version: v2}}, mtls: {mode: STRICT}}\n"
            "---\n"
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: reviews-access, namespace: default}\n"
            "spec:\n  selector: {matchLabels: {app: reviews}}\n  rules:\n"
            "    - from: [{source: {principals: [cluster.local/ns/shop/sa/cart]}}]\n"
            "      to: [{operation: {methods: [GET]}}, {operation: {paths: [/health]}}]\n"
            "    - from: [{source: {namespaces: [shop]}}]\n"
            "    - when: [{key: \"request.headers[x]\", values: [y]}]\n"
            "---\n"
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: deny-all, namespace: default}\n"
            "spec: {action: DENY, selector: {matchLabels: {app: reviews}}}\n"
            "---\n"
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: locked, namespace: default}\n"
            "spec:\n  selector: {matchLabels: {app: reviews, version: v2}}\n  rules:\n"
            "    - to: [{operation: {notPaths: [/admin]}}]\n"
            "---\n"
            "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
            "metadata: {name: mesh-default, namespace: istio-system}\n"
            "spec: {tracing: [{randomSamplingPercentage: 1.5}], accessLogging: [{}]}\n"
            "---\n"
            "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
            "metadata: {name: public, namespace: default}\n"
            "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 443, name: "
            "https, protocol: HTTPS}, hosts: [\"*\"], tls: {mode: SIMPLE}}]}\n");
    struct objects svc;
    objects_parse(&svc, reviews_service);
    objects_borrow(&o, &svc);
    struct read_back rb;
    read_objects(o.items, o.n, NULL, &rb);

    /* The rule by hand: a breaker named after it on its host's Service, Istio's defaults for
     * what its outlier detection leaves unsaid; the balancer on the Service. */
    const struct mesh_circuit_breaker *cb =
        must_res(&rb, MESH_KIND_CIRCUIT_BREAKER, "default", "reviews-limits");
    assert_string_equal(cb->service, "reviews-v2");
    assert_int_equal(cb->config.max_connections, 3);
    assert_int_equal(cb->config.max_retries, 2);
    assert_int_equal(cb->config.detection.consecutive_errors, 5);
    assert_int_equal(cb->config.detection.interval_ms, 20000);
    assert_int_equal(cb->config.detection.max_ejection_percent, 10);
    assert_read_warning(&rb, "DestinationRule default/reviews-limits "
                             "spec.trafficPolicy.connectionPool.tcp.connectTimeout: not read: our "
                             "model has no such field");
    const struct mesh_service *s = must_res(&rb, MESH_KIND_SERVICE, "default", "reviews-v2");
    assert_string_equal(s->load_balancer, "random");
    assert_string_equal(s->protocol, "http");

    /* Each policy by hand is a SecurityPolicy of its own name. */
    const struct mesh_security_policy *sp =
        must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "strict-reviews");
    assert_int_equal(sp->mtls.mode, MESH_MTLS_STRICT);
    assert_string_equal(sp->services.items[0], "reviews-v2.default.svc");
    sp = must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "reviews-access");
    /* Two operations are two rules; a rule on namespaces or conditions is left out (never
     * wider), with a warning. */
    assert_int_equal(sp->n_authorization, 2);
    assert_string_equal(sp->authorization[0].from.items[0], "cart.shop.svc");
    assert_string_equal(sp->authorization[0].methods.items[0], "GET");
    assert_string_equal(sp->authorization[1].paths.items[0], "/health");
    assert_string_equal(sp->authorization[0].to.items[0], "reviews.default.svc");
    assert_read_warning(&rb, "AuthorizationPolicy default/reviews-access spec.rules[1].from[0]: "
                             "not read: our rules name callers by their principals only; the "
                             "rule is left out");
    assert_true(diags_has_part(&rb.warnings, "AuthorizationPolicy default/reviews-access "
                                             "spec.rules[2].when: not read:"));
    assert_null(find_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "deny-all"));
    assert_read_warning(&rb, "AuthorizationPolicy default/deny-all spec.action: not read: our "
                             "rules allow, and DENY is not allowing");
    /* A policy whose only rule cannot be read lets nobody in rather than everyone. */
    sp = must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "locked");
    assert_int_equal(sp->n_authorization, 1);
    assert_string_equal(sp->authorization[0].from.items[0], "nobody.nowhere.invalid");

    /* Mesh-wide Telemetry and a Gateway by hand: the seed's MeshConfig default/istio. */
    const struct mesh_mesh_config *mc = must_res(&rb, MESH_KIND_MESH_CONFIG, "default", "istio");
    assert_string_equal(mc->provider, "istio");
    assert_true(mc->telemetry.sampling_rate == 1.5);
    assert_int_equal(mc->ingress.enabled, MESH_TRI_TRUE);
    assert_read_warning(&rb, "Telemetry istio-system/mesh-default spec.accessLogging: not read: "
                             "our model has no such field");
    assert_read_warning(&rb, "Gateway default/public spec.servers: not read: our Gateways serve "
                             "plain HTTP on port 80 for the hosts of the VirtualServices naming "
                             "them");
    read_back_free(&rb);
    o.n--;
    objects_free(&svc);
    objects_free(&o);
}

/* --- (d) malformed objects --- */

static void test_malformed_objects_are_warnings(void **state)
{
    (void)state;
    struct objects o;
    objects_parse(&o, "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {namespace: default}\n"
                      "spec: {hosts: [a], http: [{route: [{destination: {host: web}}]}]}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                      "metadata: {name: flat}\nspec: oops\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                      "metadata: {name: nospec}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: words}\n"
                      "spec:\n  hosts: [w.example.com]\n  http:\n"
                      "    - route:\n"
                      "        - {destination: {host: web}, weight: ninety}\n"
                      "        - {destination: {host: web}, weight: 10}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: fraction}\n"
                      "spec:\n  hosts: [f.example.com]\n  http:\n"
                      "    - route: [{destination: {host: web}, weight: 90.5}]\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: shapes}\n"
                      "spec: {hosts: {a: b}, http: 7}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: bad-routes}\n"
                      "spec: {hosts: [b.example.com], http: [7, {route: [{destination: "
                      "{host: web}}], retries: {attempts: lots}}]}\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: weights}\n"
                      "spec:\n  hosts: [s.example.com]\n  http:\n"
                      "    - route: [{destination: {host: web}, weight: 60}, "
                      "{destination: {host: orders}, weight: 60}]\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                      "metadata: {name: many}\n"
                      "spec: {host: web, trafficPolicy: {connectionPool: {tcp: {maxConnections: "
                      "many}}}}\n"
                      "---\n"
                      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                      "metadata: {name: rules}\n"
                      "spec: {selector: {matchLabels: {app: web}}, rules: x}\n"
                      "---\n"
                      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                      "metadata: {name: scalar-from}\n"
                      "spec: {selector: {matchLabels: {app: web}}, rules: [{from: oops}]}\n"
                      "---\n"
                      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                      "metadata: {name: modes}\nspec: {mtls: {mode: 5}}\n"
                      "---\n"
                      "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
                      "metadata: {name: t, namespace: istio-system}\nspec: {tracing: x}\n"
                      "---\n"
                      "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n"
                      "---\n"
                      "just a scalar\n"
                      "---\n"
                      "[1, 2]\n"
                      "---\n"
                      "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                      "metadata: {name: fine}\n"
                      "spec: {hosts: [ok.example.com], http: [{route: [{destination: "
                      "{host: web}}]}]}\n");
    struct objects svc;
    objects_parse(&svc, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                        "---\napiVersion: v1\nkind: Service\nmetadata: {name: orders}\n");
    objects_borrow(&o, &svc);
    o.items[o.n++] = NULL; /* a hole in the list: nothing (objects_borrow leaves room for one) */
    struct read_back rb;
    read_objects(o.items, o.n, NULL, &rb);

    assert_read_warning(&rb, "VirtualService default/(unnamed) metadata.name: not read: the "
                             "object has no name");
    assert_read_warning(&rb, "DestinationRule default/flat spec: not read: the spec is not a "
                             "mapping");
    assert_read_warning(&rb, "DestinationRule default/nospec spec: not read: the object has no "
                             "spec");
    assert_read_warning(&rb, "VirtualService default/words spec.http[0].route[0].weight: not "
                             "read: ninety is not an integer");
    assert_read_warning(&rb, "VirtualService default/fraction spec.http[0].route[0].weight: not "
                             "read: 90.5 is not an integer");
    assert_read_warning(&rb, "VirtualService default/shapes spec: not read: hosts and gateways "
                             "are lists of names, http a list of routes");
    assert_read_warning(&rb, "VirtualService default/bad-routes spec.http[0]: not read: a route "
                             "is a mapping");
    /* Weights that do not add up: the model's own validation says why. */
    assert_true(diags_has_part(&rb.warnings, "VirtualService default/weights: not read: "));
    assert_true(diags_has_part(&rb.warnings, "weights sum to 120, must be 100"));
    assert_read_warning(&rb, "DestinationRule default/many "
                             "spec.trafficPolicy.connectionPool.tcp.maxConnections: not read: "
                             "many is not an integer");
    assert_read_warning(&rb, "AuthorizationPolicy default/rules spec.rules: not read: rules is a "
                             "list");
    assert_true(diags_has_part(&rb.warnings, "PeerAuthentication default/modes spec.mtls.mode: not "
                                             "read:"));
    assert_true(diags_has_part(&rb.warnings, "Service default/Bad_Name: not read:"));
    assert_read_warning(&rb, "object default/(unnamed): not read: an object is a mapping");
    /* A rule whose from is no list is left out; the policy then lets nobody in (not anyone). */
    assert_read_warning(&rb, "AuthorizationPolicy default/scalar-from spec.rules[0].from: not "
                             "read: from is a list; the rule is left out");
    const struct mesh_security_policy *sp =
        must_res(&rb, MESH_KIND_SECURITY_POLICY, "default", "scalar-from");
    assert_int_equal(sp->n_authorization, 1);
    assert_string_equal(sp->authorization[0].from.items[0], "nobody.nowhere.invalid");
    assert_string_equal(sp->authorization[0].to.items[0], "web.default.svc");
    /* The good ones among them are read, and only they (with their Services). */
    must_res(&rb, MESH_KIND_VIRTUAL_SERVICE, "default", "fine");
    assert_int_equal(count_res(&rb, MESH_KIND_VIRTUAL_SERVICE), 1);
    assert_int_equal(count_res(&rb, MESH_KIND_SERVICE), 2);
    assert_read_count(&rb, 4);
    read_back_free(&rb);

    /* Without a place for warnings, and with nothing at all: still no crash. */
    struct mesh_resource **res = NULL;
    size_t n = 0;
    assert_int_equal(mesh_istio_read(o.items, o.n, NULL, &res, &n, NULL), MESH_OK);
    assert_int_equal(n, 4);
    mesh_resource_list_free(res, n);
    assert_int_equal(mesh_istio_read(NULL, 0, NULL, &res, &n, NULL), MESH_OK);
    assert_int_equal(n, 0);
    mesh_resource_list_free(res, n);

    o.n -= 3;
    objects_free(&svc);
    objects_free(&o);
}

/* --- order does not matter --- */

static void test_input_order_does_not_matter(void **state)
{
    (void)state;
    struct input in = {0};
    input_add_text(&in, services_yaml, "services.yaml");
    input_add_file(&in, "examples/mesh-istio.yaml");
    input_add_file(&in, "examples/payment-virtual-service.yaml");
    input_add_file(&in, "examples/payment-circuit-breaker.yaml");
    input_add_file(&in, "examples/payment-security.yaml");
    input_add_text(&in, fault_routes_yaml, "faults.yaml");
    input_add_text(&in, cases[9].yaml, "breakers.yaml");
    input_add_text(&in, cases[12].yaml, "authorization.yaml");
    struct mesh_translation t;
    translate_list(in.res, in.n, NULL, &t, "examples");
    size_t n_objs = 0;
    struct mesh_node **objs = cluster(&t, in.res, in.n, &n_objs);
    struct read_back a, b;
    read_objects(objs, n_objs, NULL, &a);
    for (size_t i = 0; i < n_objs / 2; i++) {
        struct mesh_node *tmp = objs[i];
        objs[i] = objs[n_objs - 1 - i];
        objs[n_objs - 1 - i] = tmp;
    }
    read_objects(objs, n_objs, NULL, &b);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        assert_true(mesh_model_same_content(a.res[i], b.res[i]));
    read_back_free(&a);
    read_back_free(&b);
    /* cluster() put t's objects first; reversed, the owned ones are at the front now. */
    for (size_t i = 0; i < n_objs / 2; i++) {
        struct mesh_node *tmp = objs[i];
        objs[i] = objs[n_objs - 1 - i];
        objs[n_objs - 1 - i] = tmp;
    }
    cluster_free(objs, &t, n_objs);
    mesh_translation_clear(&t);
    input_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_example_round_trips),
        cmocka_unit_test(test_examples_round_trip_together),
        cmocka_unit_test(test_examples_read_back_as_written),
        cmocka_unit_test(test_translator_cases_round_trip),
        cmocka_unit_test(test_conventions_where_istio_lost_information),
        cmocka_unit_test(test_hand_written_virtual_service_with_rewrite_and_mirror),
        cmocka_unit_test(test_hand_written_policies_and_rules),
        cmocka_unit_test(test_malformed_objects_are_warnings),
        cmocka_unit_test(test_input_order_does_not_matter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
