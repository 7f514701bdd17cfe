/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Linkerd translator (src/provider/linkerd.c): the capability table, the seed's
 * examples in both modes, routes, matches, timeouts, retries, faults, breakers, mTLS,
 * authorization, API versions by Linkerd version, refusals and their warnings, bad references and
 * a stable output, asserted on the manifests' node trees. */
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
#include "model/node.h"
#include "provider/translate.h"

#include "translation_check.h"

#define HDR "apiVersion: mesh.clusterdb.io/v1\n"

/* payment-v1/v2 are versions of the app payment; orders stands alone; cart lives in shop. */
static const char services_yaml[] = HDR
    "kind: Service\nmetadata: {name: payment-v1, labels: {app: payment, version: v1}}\n"
    "spec: {endpoints: [\"10.0.0.1:8081\", \"10.0.0.2:8081\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: payment-v2, labels: {app: payment, version: v2}}\n"
    "spec: {protocol: http2, endpoints: [\"10.0.0.3:8082\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: orders}\n"
    "spec: {endpoints: [\"10.0.0.4:8083\", \"10.0.0.5:9999\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: cart, namespace: shop, labels: {app: cart}}\n"
    "spec: {endpoints: [\"10.0.1.1:8080\"]}\n";

/* --- input and translation --- */

struct run {
    enum mesh_err err;
    char *errmsg;
    struct mesh_translation t;
    struct input in;
};

static void run_translate(struct run *r, const char *version, bool partial)
{
    struct mesh_translate_options opt = {.version = version, .allow_partial = partial};
    mesh_translation_clear(&r->t);
    free(r->errmsg);
    r->errmsg = NULL;
    r->err = mesh_translator_linkerd.translate((const struct mesh_resource *const *)r->in.res,
                                               r->in.n, &opt, &r->t, &r->errmsg);
    if (r->err != MESH_OK)
        assert_int_equal(r->t.n_objects, 0); /* on error the translation holds nothing */
}

static void run_clear(struct run *r)
{
    mesh_translation_clear(&r->t);
    input_free(&r->in);
    free(r->errmsg);
    memset(r, 0, sizeof(*r));
}

/* Translates text (newest Linkerd unless version), expecting MESH_OK. */
static struct run ok(const char *text, const char *version, bool partial)
{
    struct run r = {0};
    input_add_text(&r.in, text, NULL);
    run_translate(&r, version, partial);
    if (r.err != MESH_OK)
        fail_msg("translate: %s: %s", mesh_err_name(r.err), r.errmsg ? r.errmsg : "");
    return r;
}

/* Translates text strictly, expecting err; returns the message (caller frees). */
static char *refused(const char *text, const char *version, enum mesh_err err)
{
    struct run r = {0};
    input_add_text(&r.in, text, NULL);
    run_translate(&r, version, false);
    assert_int_equal(r.err, err);
    assert_non_null(r.errmsg);
    char *msg = r.errmsg;
    r.errmsg = NULL;
    run_clear(&r);
    return msg;
}

/* --- looking into the manifests --- */

#define assert_at(root, path, want)                                                                \
    do {                                                                                           \
        const char *got_ = text_at((root), (path));                                                \
        if (!got_ || strcmp(got_, (want)) != 0)                                                    \
            fail_msg("%s: got %s, want %s", (path), got_ ? got_ : "(absent)", (want));             \
    } while (0)

/* Every object of ours has the label and the source annotation. */
static void assert_ours(const struct mesh_node *o, const char *source)
{
    assert_at(o, "metadata.labels[\"app.kubernetes.io/managed-by\"]", "clusterdb-mesh");
    assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]", source);
}

/* --- the capability table --- */

static void test_linkerd_caps_cover_every_feature_in_order(void **state)
{
    (void)state;
    const struct mesh_translator *tr = &mesh_translator_linkerd;
    assert_string_equal(tr->name, "linkerd");
    assert_ptr_equal(mesh_translator_find("linkerd"), tr);
    assert_int_equal(tr->n_caps, MESH_FEAT_COUNT);
    for (size_t i = 0; i < tr->n_caps; i++) {
        assert_int_equal(tr->caps[i].feature, (enum mesh_feature)i);
        assert_non_null(tr->caps[i].note);
        assert_true(strlen(tr->caps[i].note) > 10);
        /* A note completes a sentence: no capital start, no final period. */
        assert_true(tr->caps[i].note[strlen(tr->caps[i].note) - 1] != '.');
    }
    /* What PROVIDERS.md lists as inexpressible in Linkerd. */
    const enum mesh_feature none[] = {
        MESH_FEAT_FAULT_DELAY,      MESH_FEAT_MAX_CONNECTIONS,  MESH_FEAT_MAX_PENDING,
        MESH_FEAT_MAX_REQUESTS,     MESH_FEAT_OUTLIER_INTERVAL, MESH_FEAT_MTLS_DISABLE,
        MESH_FEAT_TRACING_SAMPLING, MESH_FEAT_GATEWAYS,
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        assert_int_equal(tr->caps[none[i]].support, MESH_SUPPORT_NONE);
    const enum mesh_feature full[] = {MESH_FEAT_MATCH_PATH,     MESH_FEAT_MATCH_HEADER_PREFIX,
                                      MESH_FEAT_MATCH_METHOD,   MESH_FEAT_WEIGHTED_SPLIT,
                                      MESH_FEAT_TIMEOUT,        MESH_FEAT_MTLS_STRICT,
                                      MESH_FEAT_PROXY_RESOURCES};
    for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++)
        assert_int_equal(tr->caps[full[i]].support, MESH_SUPPORT_FULL);
    char *matrix = NULL;
    assert_int_equal(mesh_capability_matrix(&matrix), MESH_OK);
    assert_non_null(strstr(matrix, "| header prefix match | yes | "));
    assert_non_null(strstr(matrix, "| yes: HTTPRoute header matches have no prefix type: a "
                                   "prefix becomes the RegularExpression ^PREFIX.*"));
    free(matrix);
}

/* --- routes --- */

#define VS(name, body) HDR "kind: VirtualService\nmetadata: {name: " name "}\nspec:\n" body

static void test_linkerd_seed_split_90_10(void **state)
{
    (void)state;
    struct run r = {0};
    input_add_file(&r.in, "examples/payment-mesh-route.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    assert_int_equal(r.t.n_objects, 1);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "payment");
    assert_at(o, "apiVersion", "policy.linkerd.io/v1beta3");
    assert_ours(o, "VirtualService/default/payment");
    assert_int_equal(len_at(o, "spec.parentRefs"), 1);
    assert_at(o, "spec.parentRefs[0].group", "core");
    assert_at(o, "spec.parentRefs[0].kind", "Service");
    assert_at(o, "spec.parentRefs[0].name", "payment");
    assert_null(at(o, "spec.parentRefs[0].port"));
    assert_int_equal(len_at(o, "spec.rules"), 1);
    assert_at(o, "spec.rules[0].matches[0].path.type", "RegularExpression");
    assert_at(o, "spec.rules[0].matches[0].path.value", "^/api/v1/.*$");
    assert_at(o, "spec.rules[0].backendRefs[0].name", "payment-v1");
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "90");
    assert_at(o, "spec.rules[0].backendRefs[0].port", "80"); /* no Service in the input */
    assert_at(o, "spec.rules[0].backendRefs[1].name", "payment-v2");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "10");
    assert_null(at(o, "spec.rules[0].timeouts"));
    assert_null(at(o, "metadata.annotations[\"retry.linkerd.io/http\"]"));

    /* With the Services declared, each backend takes the port its endpoints share. */
    mesh_translation_clear(&r.t);
    input_add_text(&r.in, services_yaml, "services");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    o = must_find(&r.t, "HTTPRoute", "default", "payment");
    assert_at(o, "spec.rules[0].backendRefs[0].port", "8081");
    assert_at(o, "spec.rules[0].backendRefs[1].port", "8082");
    run_clear(&r);
}

static void test_linkerd_matches(void **state)
{
    (void)state;
    struct run r = ok(VS("shop", "  hosts: [shop, shop.default.svc.cluster.local]\n"
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
                                 "          method: POST\n"
                                 "      destinations: [{host: cart.shop}]\n"),
                      NULL, false);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "shop");
    /* Two spellings of one Service: one parent. */
    assert_int_equal(len_at(o, "spec.parentRefs"), 1);
    /* Eight matches to a rule: the ninth goes to a second rule with the same backends. */
    assert_int_equal(len_at(o, "spec.rules"), 1);
    assert_int_equal(len_at(o, "spec.rules[0].matches"), 8);
    const char *want[][2] = {
        {"Exact", "/exact"},
        {"RegularExpression", "^/pre\\.fix.*$"},
        {"RegularExpression", "^/a/.*/b$"},
        {"RegularExpression", "^/v[0-9]+/(x|y)$"},
        {"RegularExpression", "^(?:/a|/b)$"},
        {"PathPrefix", "/"},
        {"Exact", "/no-star-glob"},
    };
    for (size_t i = 0; i < 7; i++) {
        char p[64];
        snprintf(p, sizeof(p), "spec.rules[0].matches[%zu].path.type", i);
        assert_at(o, p, want[i][0]);
        snprintf(p, sizeof(p), "spec.rules[0].matches[%zu].path.value", i);
        assert_at(o, p, want[i][1]);
    }
    const struct mesh_node *m = at(o, "spec.rules[0].matches[7]");
    assert_null(at(m, "path"));
    assert_at(m, "method", "POST");
    assert_int_equal(len_at(m, "headers"), 4);
    assert_at(m, "headers[0].name", "x-exact");
    assert_at(m, "headers[0].type", "Exact");
    assert_at(m, "headers[0].value", "yes");
    assert_at(m, "headers[1].type", "RegularExpression");
    assert_at(m, "headers[1].value", "^(?:a|b)$");
    assert_at(m, "headers[2].type", "RegularExpression");
    assert_at(m, "headers[2].value", ".*");
    assert_at(m, "headers[3].type", "RegularExpression");
    assert_at(m, "headers[3].value", "^$");
    /* A backend in another namespace names it. */
    assert_at(o, "spec.rules[0].backendRefs[0].name", "cart");
    assert_at(o, "spec.rules[0].backendRefs[0].namespace", "shop");
    /* A lone destination without a weight takes everything: no weight written. */
    assert_null(at(o, "spec.rules[0].backendRefs[0].weight"));
    run_clear(&r);

    /* More than 8 matches: more rules, in order, each with the route's backends. */
    char big[4096];
    int len = snprintf(big, sizeof(big), "%s",
                       VS("many", "  hosts: [many]\n  http_routes:\n    - matches:\n"));
    for (int i = 0; i < 10; i++)
        len += snprintf(big + len, sizeof(big) - (size_t)len, "        - path: /p%d\n", i);
    snprintf(big + len, sizeof(big) - (size_t)len,
             "      destinations: [{host: a, weight: 50}, {host: b, weight: 50}]\n");
    r = ok(big, NULL, false);
    o = must_find(&r.t, "HTTPRoute", "default", "many");
    assert_int_equal(len_at(o, "spec.rules"), 2);
    assert_int_equal(len_at(o, "spec.rules[0].matches"), 8);
    assert_int_equal(len_at(o, "spec.rules[1].matches"), 2);
    assert_at(o, "spec.rules[1].matches[1].path.value", "/p9");
    assert_at(o, "spec.rules[1].backendRefs[1].name", "b");
    assert_at(o, "spec.rules[1].backendRefs[1].weight", "50");
    run_clear(&r);
}

static const char header_prefix_yaml[] =
    VS("pay", "  hosts: [pay]\n"
              "  http_routes:\n"
              "    - matches:\n"
              "        - path: /x\n"
              "          headers:\n"
              "            x-user: {prefix: adm}\n"
              "            x-env: {exact: prod}\n"
              "            x-meta: {prefix: \"a.b*(c)+?|[d]{2}^$\\\\e\"}\n"
              "            x-any: {prefix: \"\"}\n"
              "      destinations: [{host: pay-v1}]\n");

/* Gateway API has no prefix header match: an anchored regular expression says the same, each
 * metacharacter of the prefix escaped so that it matches itself. */
static void test_linkerd_header_prefix_as_regex(void **state)
{
    (void)state;
    struct run r = ok(header_prefix_yaml, NULL, false);
    assert_int_equal(r.t.warnings.len, 0);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "pay");
    const struct mesh_node *m = at(o, "spec.rules[0].matches[0]");
    assert_at(m, "path.value", "/x");
    assert_int_equal(len_at(m, "headers"), 4);
    assert_at(m, "headers[0].name", "x-user");
    assert_at(m, "headers[0].type", "RegularExpression");
    assert_at(m, "headers[0].value", "^adm.*");
    assert_at(m, "headers[1].type", "Exact");
    assert_at(m, "headers[1].value", "prod");
    assert_at(m, "headers[2].type", "RegularExpression");
    assert_at(m, "headers[2].value", "^a\\.b\\*\\(c\\)\\+\\?\\|\\[d\\]\\{2\\}\\^\\$\\\\e.*");
    /* The empty prefix: any value, as long as the header is there. */
    assert_at(m, "headers[3].value", "^.*");
    run_clear(&r);
    /* Before HTTPRoute (2.14) the route itself is refused, not the match. */
    char *msg = refused(header_prefix_yaml, "2.13", MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "VirtualService default/pay spec.http_routes: linkerd 2.13"));
    free(msg);
}

static void test_linkerd_timeouts(void **state)
{
    (void)state;
    struct run r = ok(VS("t", "  hosts: [t]\n"
                              "  http_routes:\n"
                              "    - matches: [{path: /a}]\n"
                              "      timeout: 1500ms\n"
                              "      destinations: [{host: t1}]\n"
                              "    - matches: [{path: /b}]\n"
                              "      timeout: 2h30m\n"
                              "      destinations: [{host: t1}]\n"
                              "    - matches: [{path: /c}]\n"
                              "      timeout: 10s\n"
                              "      retries: {per_try_timeout: 250ms}\n"
                              "      destinations: [{host: t1}]\n"
                              "    - destinations: [{host: t1}]\n"),
                      NULL, false);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "t");
    assert_int_equal(len_at(o, "spec.rules"), 4);
    assert_at(o, "spec.rules[0].timeouts.request", "1s500ms"); /* GEP-2257: no fractions */
    assert_at(o, "spec.rules[1].timeouts.request", "2h30m");
    /* Without retries a per-try timeout bounds the one attempt. */
    assert_at(o, "spec.rules[2].timeouts.request", "250ms");
    assert_null(at(o, "spec.rules[3].timeouts"));
    assert_null(at(o, "spec.rules[3].matches"));
    assert_null(at(o, "metadata.annotations[\"retry.linkerd.io/limit\"]"));
    run_clear(&r);
}

static const char retries_yaml[] = VS(
    "r", "  hosts: [r]\n"
         "  http_routes:\n"
         "    - matches: [{path: /a}]\n"
         "      retries: {attempts: 3, per_try_timeout: 1500ms, retry_on: [5xx, gateway-error]}\n"
         "      destinations: [{host: r1}]\n"
         "    - retries: {attempts: 3, per_try_timeout: 1500ms, retry_on: [5xx, gateway-error]}\n"
         "      destinations: [{host: r1}]\n");

static void test_linkerd_retries(void **state)
{
    (void)state;
    struct run r = ok(retries_yaml, NULL, false);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "r");
    assert_at(o, "metadata.annotations[\"retry.linkerd.io/http\"]", "5xx,gateway-error");
    assert_at(o, "metadata.annotations[\"retry.linkerd.io/limit\"]", "3");
    /* Linkerd's annotations read one number and one unit. */
    assert_at(o, "metadata.annotations[\"retry.linkerd.io/timeout\"]", "1500ms");
    run_clear(&r);

    /* No retry_on: our default's status part. */
    r = ok(VS("d", "  hosts: [d]\n  http_routes:\n"
                   "    - retries: {attempts: 2}\n      destinations: [{host: d1}]\n"),
           NULL, false);
    o = must_find(&r.t, "HTTPRoute", "default", "d");
    assert_at(o, "metadata.annotations[\"retry.linkerd.io/http\"]", "gateway-error");
    assert_at(o, "metadata.annotations[\"retry.linkerd.io/limit\"]", "2");
    assert_null(at(o, "metadata.annotations[\"retry.linkerd.io/timeout\"]"));
    run_clear(&r);

    const char *note = "linkerd cannot express retries: retries are HTTPRoute annotations "
                       "retry.linkerd.io/http, /limit and /timeout";
    /* Conditions Linkerd has no counterpart for. */
    const char reset_yaml[] = VS("x", "  hosts: [x]\n  http_routes:\n"
                                      "    - retries: {attempts: 2, retry_on: [5xx, reset]}\n"
                                      "      destinations: [{host: x1}]\n");
    char *msg = refused(reset_yaml, NULL, MESH_E_UNSUPPORTED);
    assert_non_null(
        strstr(msg, "VirtualService default/x spec.http_routes[0].retries.retry_on[1]: "));
    assert_non_null(strstr(msg, note));
    assert_non_null(strstr(msg, "not on reset or connect-failure"));
    r = ok(reset_yaml, NULL, true);
    assert_true(has_warning(&r.t, msg));
    assert_at(must_find(&r.t, "HTTPRoute", "default", "x"),
              "metadata.annotations[\"retry.linkerd.io/http\"]", "5xx");
    run_clear(&r);
    free(msg);
    /* Every condition refused: no retries at all, rather than Linkerd's default of 5xx. */
    r = ok(VS("z", "  hosts: [z]\n  http_routes:\n"
                   "    - retries: {attempts: 2, retry_on: [reset]}\n"
                   "      destinations: [{host: z1}]\n"),
           NULL, true);
    o = must_find(&r.t, "HTTPRoute", "default", "z");
    assert_null(at(o, "metadata.annotations[\"retry.linkerd.io/http\"]"));
    assert_null(at(o, "metadata.annotations[\"retry.linkerd.io/limit\"]"));
    run_clear(&r);

    /* Annotations cover the whole route: two routes, two policies. */
    const char two_yaml[] = VS("y", "  hosts: [y]\n  http_routes:\n"
                                    "    - matches: [{path: /a}]\n"
                                    "      retries: {attempts: 2}\n"
                                    "      destinations: [{host: y1}]\n"
                                    "    - destinations: [{host: y1}]\n");
    msg = refused(two_yaml, NULL, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "VirtualService default/y spec.http_routes[1].retries: "));
    assert_non_null(strstr(msg, "must share one retry policy"));
    free(msg);

    /* Retry annotations came with Linkerd 2.16. */
    msg = refused(retries_yaml, "2.15", MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "VirtualService default/r spec.http_routes[0].retries: linkerd 2.15 "
                             "cannot express retries (retry.linkerd.io annotations): it needs "
                             "Linkerd 2.16 or later");
    free(msg);
}

/* --- faults --- */

static const char fault_vs_yaml[] =
    VS("web", "  hosts: [web]\n"
              "  http_routes:\n"
              "    - name: api\n"
              "      matches: [{path: /api}]\n"
              "      destinations: [{host: web-v1, weight: 80}, {host: web-v2, weight: 20}]\n"
              "    - name: rest\n"
              "      destinations: [{host: web-v1}]\n");

static void test_linkerd_fault_abort_backend(void **state)
{
    (void)state;
    /* The seed's fault, on a VirtualService the mesh routes: delay refused, abort a backend. */
    char text[4096];
    snprintf(text, sizeof(text), "%s---\n%s", fault_vs_yaml,
             HDR "kind: FaultInjection\nmetadata: {name: web}\n"
                 "spec: {service: web, delay: 100ms, abort: {http_status: 503, percentage: 10}}\n");
    char *msg = refused(text, NULL, MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "FaultInjection default/web spec.delay: linkerd cannot express fault "
                             "injection: delay: Linkerd has no fault injection, and its documented "
                             "substitute, a weighted backend that fails, can answer an error but "
                             "not delay a request");
    struct run r = ok(text, NULL, true);
    assert_int_equal(r.t.warnings.len, 1);
    assert_string_equal(r.t.warnings.items[0].message, msg);
    free(msg);
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "web");
    assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
              "FaultInjection/default/web,VirtualService/default/web");
    /* 10% of every request of each route to the failing backend: 80/20 becomes 72/18/10,
     * written in the smallest integers. */
    assert_int_equal(len_at(o, "spec.rules[0].backendRefs"), 3);
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "36");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "9");
    assert_at(o, "spec.rules[0].backendRefs[2].name", "web-fault-503");
    assert_at(o, "spec.rules[0].backendRefs[2].port", "80");
    assert_at(o, "spec.rules[0].backendRefs[2].weight", "5");
    assert_at(o, "spec.rules[1].backendRefs[0].weight", "9");
    assert_at(o, "spec.rules[1].backendRefs[1].name", "web-fault-503");
    assert_at(o, "spec.rules[1].backendRefs[1].weight", "1");
    run_clear(&r);

    /* A fault for one named route; an unset percentage is all requests. */
    snprintf(text, sizeof(text), "%s---\n%s", fault_vs_yaml,
             HDR "kind: FaultInjection\nmetadata: {name: web-rest}\n"
                 "spec: {service: web, route: rest, abort: {http_status: 500}}\n");
    r = ok(text, NULL, false);
    o = must_find(&r.t, "HTTPRoute", "default", "web");
    assert_int_equal(len_at(o, "spec.rules[0].backendRefs"), 2);
    assert_at(o, "spec.rules[1].backendRefs[0].weight", "0");
    assert_at(o, "spec.rules[1].backendRefs[1].name", "web-fault-500");
    assert_at(o, "spec.rules[1].backendRefs[1].weight", "1");
    run_clear(&r);

    /* A fault on a Service: its share of every rule that routes to it (12.5% of web-v1's 80
     * is 10 of 100), and a route of its own for callers that address it directly. */
    snprintf(text, sizeof(text), "%s---\n%s", fault_vs_yaml,
             HDR "kind: FaultInjection\nmetadata: {name: v1}\n"
                 "spec: {service: web-v1, abort: {http_status: 500, percentage: 12.5}}\n");
    r = ok(text, NULL, false);
    o = must_find(&r.t, "HTTPRoute", "default", "web");
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "7");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "2");
    assert_at(o, "spec.rules[0].backendRefs[2].name", "web-v1-fault-500");
    assert_at(o, "spec.rules[0].backendRefs[2].weight", "1");
    o = must_find(&r.t, "HTTPRoute", "default", "web-v1-fault");
    assert_ours(o, "FaultInjection/default/v1");
    assert_at(o, "spec.parentRefs[0].name", "web-v1");
    assert_at(o, "spec.rules[0].backendRefs[0].name", "web-v1");
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "7");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "1");
    run_clear(&r);

    /* The failing backend stands beside the Service it replaces, in its namespace. */
    r = ok(VS("w", "  hosts: [w]\n  http_routes:\n"
                   "    - destinations: [{host: cart.shop, weight: 50}, {host: w1, weight: 50}]\n"
                   "---\n" HDR "kind: FaultInjection\nmetadata: {name: cart, namespace: shop}\n"
                   "spec: {service: cart, abort: {http_status: 500, percentage: 50}}\n"),
           NULL, false);
    o = must_find(&r.t, "HTTPRoute", "default", "w");
    assert_at(o, "spec.rules[0].backendRefs[0].name", "cart");
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "1");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "2");
    assert_at(o, "spec.rules[0].backendRefs[2].name", "cart-fault-500");
    assert_at(o, "spec.rules[0].backendRefs[2].namespace", "shop");
    assert_at(o, "spec.rules[0].backendRefs[2].weight", "1");
    assert_at(must_find(&r.t, "HTTPRoute", "shop", "cart-fault"), "spec.parentRefs[0].name",
              "cart");
    run_clear(&r);

    /* The seed's FaultInjection alone names a Service web-service: a route of its own. */
    r = (struct run){0};
    input_add_file(&r.in, "examples/web-fault-injection.yaml");
    run_translate(&r, NULL, true);
    assert_int_equal(r.err, MESH_OK);
    o = must_find(&r.t, "HTTPRoute", "default", "web-service-fault");
    assert_at(o, "spec.rules[0].backendRefs[0].name", "web-service");
    assert_at(o, "spec.rules[0].backendRefs[0].weight", "9");
    assert_at(o, "spec.rules[0].backendRefs[1].name", "web-service-fault-503");
    assert_at(o, "spec.rules[0].backendRefs[1].weight", "1");
    run_clear(&r);

    /* A route name the VirtualService lacks is a bad reference. */
    snprintf(text, sizeof(text), "%s---\n%s", fault_vs_yaml,
             HDR "kind: FaultInjection\nmetadata: {name: f}\n"
                 "spec: {service: web, route: nope, abort: {http_status: 500}}\n");
    msg = refused(text, NULL, MESH_E_INVALID);
    assert_string_equal(msg, "FaultInjection default/f spec.route: VirtualService default/web has "
                             "no route named nope");
    free(msg);
}

/* --- circuit breakers --- */

static void test_linkerd_breaker(void **state)
{
    (void)state;
    char *msg = NULL;
    struct run r = {0};
    input_add_file(&r.in, "examples/payment-circuit-breaker.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_E_UNSUPPORTED);
    assert_string_equal(r.errmsg, "CircuitBreaker default/payment-service spec.max_connections: "
                                  "linkerd cannot express circuit breaker: max_connections: "
                                  "Linkerd has no per-service connection limit "
                                  "(HTTPLocalRateLimitPolicy limits the request rate, not "
                                  "concurrency)");
    msg = r.errmsg;
    r.errmsg = NULL;
    run_translate(&r, NULL, true);
    assert_int_equal(r.err, MESH_OK);
    assert_true(has_warning(&r.t, msg));
    const char *paths[] = {"spec.max_connections", "spec.max_pending_requests", "spec.max_requests",
                           "spec.max_retries", "spec.detection.interval"};
    assert_int_equal(r.t.warnings.len, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(r.t.warnings.items[i].path, paths[i]);
    assert_non_null(strstr(r.t.warnings.items[4].message,
                           "linkerd cannot express outlier detection: interval: "));
    /* Alone, payment-service is a Service: its annotations, and nothing else of it. */
    assert_int_equal(r.t.n_objects, 1);
    const struct mesh_node *o = must_find(&r.t, "Service", "default", "payment-service");
    assert_at(o, "apiVersion", "v1");
    assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
              "CircuitBreaker/default/payment-service");
    assert_at(o, "metadata.annotations[\"balancer.linkerd.io/failure-accrual\"]", "consecutive");
    assert_at(o,
              "metadata.annotations[\"balancer.linkerd.io/failure-accrual-consecutive-max-"
              "failures\"]",
              "5");
    assert_at(o,
              "metadata.annotations[\"balancer.linkerd.io/failure-accrual-consecutive-min-"
              "penalty\"]",
              "30s");
    /* Not our object: no managed-by label (prune must never take it), no spec. */
    assert_null(at(o, "metadata.labels"));
    assert_null(at(o, "spec"));
    run_clear(&r);
    free(msg);

    /* A breaker on a VirtualService: the Services its callers address and its destinations; a
     * penalty above Linkerd's default maximum raises the maximum too. */
    r = ok(VS("pay",
              "  hosts: [pay]\n  http_routes:\n"
              "    - destinations: [{host: pay-v1, weight: 50}, {host: pay-v2, weight: 50}]\n"
              "---\n" HDR "kind: CircuitBreaker\nmetadata: {name: cb}\n"
              "spec: {service: pay, detection: {consecutive_errors: 3, "
              "base_ejection_time: 2m}}\n"),
           NULL, false);
    const char *targets[] = {"pay", "pay-v1", "pay-v2"};
    for (size_t i = 0; i < 3; i++) {
        o = must_find(&r.t, "Service", "default", targets[i]);
        assert_at(o,
                  "metadata.annotations[\"balancer.linkerd.io/failure-accrual-consecutive-max-"
                  "failures\"]",
                  "3");
        assert_at(o,
                  "metadata.annotations[\"balancer.linkerd.io/failure-accrual-consecutive-min-"
                  "penalty\"]",
                  "2m");
        assert_at(o,
                  "metadata.annotations[\"balancer.linkerd.io/failure-accrual-consecutive-max-"
                  "penalty\"]",
                  "2m");
    }
    run_clear(&r);

    /* max_ejection_percent has no counterpart; failure accrual came with 2.13. */
    const char pct_yaml[] = HDR "kind: CircuitBreaker\nmetadata: {name: cb}\n"
                                "spec: {service: pay, detection: {consecutive_errors: 3, "
                                "max_ejection_percent: 20}}\n";
    msg = refused(pct_yaml, NULL, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "CircuitBreaker default/cb spec.detection.max_ejection_percent: "
                                "linkerd cannot express outlier detection: consecutive errors, "
                                "ejection time: "));
    assert_non_null(strstr(msg, "max_ejection_percent has no counterpart"));
    free(msg);
    msg = refused(HDR "kind: CircuitBreaker\nmetadata: {name: cb}\n"
                      "spec: {service: pay, detection: {consecutive_errors: 3}}\n",
                  "2.12", MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "CircuitBreaker default/cb spec.detection.consecutive_errors: linkerd "
                             "2.12 cannot express outlier detection "
                             "(balancer.linkerd.io/failure-accrual annotations): it needs Linkerd "
                             "2.13 or later");
    free(msg);
}

/* --- mTLS and authorization --- */

#define SP(name, body) HDR "kind: SecurityPolicy\nmetadata: {name: " name "}\nspec:\n" body

static void test_linkerd_mtls_modes(void **state)
{
    (void)state;
    /* Namespace-wide: the Namespace's default inbound policy. */
    struct run r = ok(SP("ns-strict", "  mtls: {mode: strict}\n"), NULL, false);
    assert_int_equal(r.t.n_objects, 1);
    const struct mesh_node *o = must_find(&r.t, "Namespace", NULL, "default");
    assert_at(o, "metadata.annotations[\"config.linkerd.io/default-inbound-policy\"]",
              "all-authenticated");
    assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
              "SecurityPolicy/default/ns-strict");
    assert_null(at(o, "metadata.labels"));
    assert_null(at(o, "metadata.namespace")); /* cluster-scoped */
    run_clear(&r);
    r = ok(SP("ns-perm", "  mtls: {mode: permissive}\n"), NULL, false);
    assert_at(must_find(&r.t, "Namespace", NULL, "default"),
              "metadata.annotations[\"config.linkerd.io/default-inbound-policy\"]",
              "all-unauthenticated");
    run_clear(&r);

    /* Per service: a Server and an authorization of every meshed client, or of anyone. */
    char text[4096];
    snprintf(text, sizeof(text), "%s---\n%s---\n%s", services_yaml,
             SP("pay-strict", "  services: [payment]\n  mtls: {mode: strict}\n"),
             SP("orders-perm", "  services: [orders]\n  mtls: {mode: permissive}\n"));
    r = ok(text, NULL, false);
    assert_int_equal(count_kind(&r.t, "Server"), 3);
    o = must_find(&r.t, "Server", "default", "payment-v1");
    assert_at(o, "apiVersion", "policy.linkerd.io/v1beta3");
    assert_ours(o, "SecurityPolicy/default/pay-strict");
    assert_at(o, "spec.podSelector.matchLabels.app", "payment");
    assert_at(o, "spec.podSelector.matchLabels.version", "v1");
    assert_at(o, "spec.port", "8081");
    assert_at(o, "spec.accessPolicy", "deny");
    assert_null(at(o, "spec.proxyProtocol"));
    o = must_find(&r.t, "Server", "default", "payment-v2");
    assert_at(o, "spec.proxyProtocol", "HTTP/2");
    /* Endpoints on two ports: the port named http. */
    o = must_find(&r.t, "Server", "default", "orders");
    assert_at(o, "spec.port", "http");
    assert_at(o, "spec.podSelector.matchLabels.app", "orders");
    o = must_find(&r.t, "AuthorizationPolicy", "default", "payment-v1-strict");
    assert_at(o, "spec.targetRef.group", "policy.linkerd.io");
    assert_at(o, "spec.targetRef.kind", "Server");
    assert_at(o, "spec.targetRef.name", "payment-v1");
    assert_at(o, "spec.requiredAuthenticationRefs[0].kind", "MeshTLSAuthentication");
    assert_at(o, "spec.requiredAuthenticationRefs[0].name", "pay-strict-meshed");
    o = must_find(&r.t, "MeshTLSAuthentication", "default", "pay-strict-meshed");
    assert_at(o, "apiVersion", "policy.linkerd.io/v1alpha1");
    assert_int_equal(len_at(o, "spec.identities"), 1);
    assert_at(o, "spec.identities[0]", "*");
    o = must_find(&r.t, "AuthorizationPolicy", "default", "orders-permissive");
    assert_at(o, "spec.requiredAuthenticationRefs[0].kind", "NetworkAuthentication");
    o = must_find(&r.t, "NetworkAuthentication", "default", "orders-perm-anyone");
    assert_at(o, "spec.networks[0].cidr", "0.0.0.0/0");
    assert_at(o, "spec.networks[1].cidr", "::/0");
    run_clear(&r);

    /* Before 2.17 a Server has no accessPolicy (v1beta1; deny is implied). */
    r = ok(SP("s", "  services: [db]\n  mtls: {mode: strict}\n"), "2.16", false);
    o = must_find(&r.t, "Server", "default", "db");
    assert_at(o, "apiVersion", "policy.linkerd.io/v1beta1");
    assert_null(at(o, "spec.accessPolicy"));
    assert_at(o, "spec.port", "http");
    assert_at(o, "spec.podSelector.matchLabels.app", "db");
    run_clear(&r);

    /* Disable: refused, and with allow_partial a warning and nothing. */
    const char disable_yaml[] = SP("off", "  services: [db]\n  mtls: {mode: disable}\n");
    char *msg = refused(disable_yaml, NULL, MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "SecurityPolicy default/off spec.mtls.mode: linkerd cannot express "
                             "mTLS disable: Linkerd always uses mTLS between meshed pods and "
                             "cannot turn it off");
    r = ok(disable_yaml, NULL, true);
    assert_int_equal(r.t.n_objects, 0);
    assert_int_equal(r.t.warnings.len, 1);
    assert_string_equal(r.t.warnings.items[0].message, msg);
    run_clear(&r);
    free(msg);
}

static void test_linkerd_seed_authorization(void **state)
{
    (void)state;
    struct run r = {0};
    input_add_text(&r.in, services_yaml, "services");
    input_add_file(&r.in, "examples/payment-security.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    /* strict for the whole namespace */
    assert_at(must_find(&r.t, "Namespace", NULL, "default"),
              "metadata.annotations[\"config.linkerd.io/default-inbound-policy\"]",
              "all-authenticated");
    /* payment is the app of payment-v1 and payment-v2: a Server each, and each its route. */
    for (int v = 1; v <= 2; v++) {
        char name[64];
        snprintf(name, sizeof(name), "payment-v%d", v);
        const struct mesh_node *srv = must_find(&r.t, "Server", "default", name);
        assert_ours(srv, "SecurityPolicy/default/payment-security");
        snprintf(name, sizeof(name), "payment-security-rule0-payment-v%d", v);
        const struct mesh_node *route = must_find(&r.t, "HTTPRoute", "default", name);
        assert_at(route, "spec.parentRefs[0].group", "policy.linkerd.io");
        assert_at(route, "spec.parentRefs[0].kind", "Server");
        assert_at(route, "spec.parentRefs[0].name", text_at(srv, "metadata.name"));
        assert_int_equal(len_at(route, "spec.rules"), 1);
        assert_int_equal(len_at(route, "spec.rules[0].matches"), 1);
        assert_at(route, "spec.rules[0].matches[0].path.type", "Exact");
        assert_at(route, "spec.rules[0].matches[0].path.value", "/api/v1/process");
        assert_at(route, "spec.rules[0].matches[0].method", "POST");
        assert_null(at(route, "spec.rules[0].backendRefs"));
        const struct mesh_node *authz = must_find(&r.t, "AuthorizationPolicy", "default", name);
        assert_at(authz, "spec.targetRef.kind", "HTTPRoute");
        assert_at(authz, "spec.targetRef.name", name);
        assert_at(authz, "spec.requiredAuthenticationRefs[0].kind", "MeshTLSAuthentication");
        assert_at(authz, "spec.requiredAuthenticationRefs[0].name", "payment-security-rule0");
    }
    const struct mesh_node *authn =
        must_find(&r.t, "MeshTLSAuthentication", "default", "payment-security-rule0");
    assert_int_equal(len_at(authn, "spec.identities"), 1);
    assert_at(authn, "spec.identities[0]",
              "orders.default.serviceaccount.identity.linkerd.cluster.local");
    /* Only orders may POST there: no authorization of anyone, at the Server or elsewhere. */
    assert_int_equal(count_kind(&r.t, "NetworkAuthentication"), 0);
    assert_int_equal(count_kind(&r.t, "AuthorizationPolicy"), 2);
    run_clear(&r);

    /* Without the Services: one Server for app payment, on the port named http. */
    r = (struct run){0};
    input_add_file(&r.in, "examples/payment-security.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    const struct mesh_node *srv = must_find(&r.t, "Server", "default", "payment");
    assert_at(srv, "spec.podSelector.matchLabels.app", "payment");
    assert_at(srv, "spec.port", "http");
    must_find(&r.t, "HTTPRoute", "default", "payment-security-rule0-payment");
    run_clear(&r);
}

static void test_linkerd_authorization_rules(void **state)
{
    (void)state;
    char text[8192];
    snprintf(text, sizeof(text), "%s---\n%s", services_yaml,
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
                     "      paths: [\"/items/*\"]\n"));
    struct run r = ok(text, NULL, false);
    /* Identities: a service's ServiceAccount has its name, an app its Services' too, a SPIFFE
     * ID its own trust domain; sorted. */
    const struct mesh_node *o = must_find(&r.t, "MeshTLSAuthentication", "default", "p-rule0");
    assert_int_equal(len_at(o, "spec.identities"), 5);
    assert_at(o, "spec.identities[0]", "admin.ops.serviceaccount.identity.linkerd.example.org");
    assert_at(o, "spec.identities[1]",
              "orders.default.serviceaccount.identity.linkerd.cluster.local");
    assert_at(o, "spec.identities[2]",
              "payment-v1.default.serviceaccount.identity.linkerd.cluster.local");
    assert_at(o, "spec.identities[3]",
              "payment-v2.default.serviceaccount.identity.linkerd.cluster.local");
    assert_at(o, "spec.identities[4]",
              "payment.default.serviceaccount.identity.linkerd.cluster.local");
    /* methods x paths, prefixes as anchored regular expressions */
    o = must_find(&r.t, "HTTPRoute", "default", "p-rule0-payment-v1");
    assert_int_equal(len_at(o, "spec.rules[0].matches"), 4);
    assert_at(o, "spec.rules[0].matches[1].path.type", "RegularExpression");
    assert_at(o, "spec.rules[0].matches[1].path.value", "^/items/.*$");
    assert_at(o, "spec.rules[0].matches[1].method", "GET");
    assert_at(o, "spec.rules[0].matches[2].method", "POST");
    /* Anyone, without mTLS strict: every address; for every request: at the Server. */
    o = must_find(&r.t, "AuthorizationPolicy", "default", "p-rule1-payment-v1");
    assert_at(o, "spec.targetRef.kind", "Server");
    assert_at(o, "spec.requiredAuthenticationRefs[0].kind", "NetworkAuthentication");
    must_find(&r.t, "NetworkAuthentication", "default", "p-rule1");
    /* With routes on the Server, a route for every other request so that rule 1 admits it. */
    o = must_find(&r.t, "HTTPRoute", "default", "payment-v1-all");
    assert_at(o, "spec.rules[0].matches[0].path.type", "PathPrefix");
    assert_at(o, "spec.rules[0].matches[0].path.value", "/");
    assert_null(find(&r.t, "AuthorizationPolicy", "default", "payment-v1-all"));
    o = must_find(&r.t, "AuthorizationPolicy", "default", "p-rule2-payment-v1");
    assert_at(o, "spec.targetRef.kind", "HTTPRoute");
    assert_at(o, "spec.targetRef.name", "p-rule2-payment-v1");
    run_clear(&r);

    /* Under strict mTLS, anyone is every meshed client. */
    snprintf(text, sizeof(text), "%s",
             SP("q", "  services: [db]\n  mtls: {mode: strict}\n"
                     "  authorization:\n    - to: [db]\n      methods: [GET]\n"));
    r = ok(text, NULL, false);
    o = must_find(&r.t, "MeshTLSAuthentication", "default", "q-rule0");
    assert_at(o, "spec.identities[0]", "*");
    /* The rule decides who calls db: no Server-wide authorization of every meshed client. */
    assert_null(find(&r.t, "AuthorizationPolicy", "default", "db-strict"));
    assert_int_equal(count_kind(&r.t, "AuthorizationPolicy"), 1);
    run_clear(&r);

    /* Two rules whose conditions overlap, admitting different callers: refused. */
    const char overlap_yaml[] = SP("o", "  authorization:\n"
                                        "    - from: [a.default]\n"
                                        "      to: [db]\n"
                                        "      paths: [\"/api/*\"]\n"
                                        "    - from: [b.default]\n"
                                        "      to: [db]\n"
                                        "      methods: [GET]\n"
                                        "      paths: [/api/x]\n"
                                        "    - from: [c.default]\n"
                                        "      to: [db]\n"
                                        "      methods: [POST]\n"
                                        "      paths: [/other]\n");
    char *msg = refused(overlap_yaml, NULL, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "SecurityPolicy default/o spec.authorization[1]: linkerd cannot "
                                "express authorization (from, to, methods, paths): "));
    assert_non_null(strstr(msg, "rules for one service whose methods and paths overlap cannot "
                                "admit different callers"));
    r = ok(overlap_yaml, NULL, true);
    assert_int_equal(r.t.warnings.len, 1);
    assert_string_equal(r.t.warnings.items[0].message, msg);
    must_find(&r.t, "HTTPRoute", "default", "o-rule0-db");
    assert_null(find(&r.t, "HTTPRoute", "default", "o-rule1-db"));
    must_find(&r.t, "HTTPRoute", "default", "o-rule2-db");
    run_clear(&r);
    free(msg);

    /* Two resources making one HTTPRoute name: a bad input, not a merge. */
    msg = refused(
        SP("s",
           "  authorization:\n"
           "    - to: [db]\n"
           "    - to: [db]\n      methods: [GET]\n") "---\n" VS("db-all",
                                                                "  hosts: [db]\n  http_routes:\n"
                                                                "    - destinations: [{host: "
                                                                "db}]\n"),
        NULL, MESH_E_INVALID);
    assert_string_equal(msg, "HTTPRoute default/db-all would be made from "
                             "VirtualService/default/db-all and from SecurityPolicy/default/s: "
                             "rename one of them");
    free(msg);

    /* Inbound routes are policy.linkerd.io/v1beta3 HTTPRoutes (2.14); Servers and their
     * authorizations came with 2.12. */
    msg = refused(overlap_yaml, "2.13", MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "SecurityPolicy default/o spec.authorization[0].to[0]: linkerd 2.13 "
                             "cannot express methods and paths (an inbound HTTPRoute "
                             "policy.linkerd.io/v1beta3): it needs Linkerd 2.14 or later");
    free(msg);
    msg = refused(overlap_yaml, "2.11", MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "SecurityPolicy default/o spec.authorization[0].to[0]: linkerd 2.11 "
                             "cannot express a service's policy (Server, AuthorizationPolicy, "
                             "MeshTLSAuthentication): it needs Linkerd 2.12 or later");
    free(msg);
}

/* --- hosts, gateways, MeshConfig --- */

static void test_linkerd_hosts_and_gateways(void **state)
{
    (void)state;
    struct run r = {0};
    input_add_file(&r.in, "examples/payment-virtual-service.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_E_UNSUPPORTED);
    assert_string_equal(r.errmsg, "VirtualService default/payment-service spec.gateways[0]: "
                                  "linkerd cannot express gateways and ingress: Linkerd has no "
                                  "ingress gateway of its own: routes bound to a gateway, and "
                                  "MeshConfig ingress, need a separate Gateway API controller, "
                                  "which this translation does not configure");
    char *msg = r.errmsg;
    r.errmsg = NULL;
    /* A gateway-only VirtualService reaches no sidecar: one warning, nothing else. */
    run_translate(&r, NULL, true);
    assert_int_equal(r.err, MESH_OK);
    assert_int_equal(r.t.n_objects, 0);
    assert_int_equal(r.t.warnings.len, 1);
    assert_string_equal(r.t.warnings.items[0].message, msg);
    run_clear(&r);
    free(msg);

    r = (struct run){0};
    input_add_file(&r.in, "examples/web-traffic-split.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(r.errmsg, "VirtualService default/web-service spec.hosts[0]: linkerd "
                                     "cannot express hosts: only a host that names a Kubernetes "
                                     "Service"));
    run_clear(&r);

    /* "mesh" among the gateways: the sidecars' part translates; a Service of another
     * namespace and a wildcard are no parents. */
    r = ok(VS("m", "  hosts: [m, other.shop, \"*\"]\n  gateways: [mesh, edge]\n"
                   "  http_routes:\n    - destinations: [{host: m1}]\n"),
           NULL, true);
    assert_int_equal(r.t.warnings.len, 3);
    assert_string_equal(r.t.warnings.items[0].path, "spec.gateways[1]");
    assert_string_equal(r.t.warnings.items[1].path, "spec.hosts[1]");
    assert_string_equal(r.t.warnings.items[2].path, "spec.hosts[2]");
    const struct mesh_node *o = must_find(&r.t, "HTTPRoute", "default", "m");
    assert_int_equal(len_at(o, "spec.parentRefs"), 1);
    assert_at(o, "spec.parentRefs[0].name", "m");
    run_clear(&r);

    /* A destination that names no Service is a bad reference, not a refusal. */
    msg = refused(VS("bad", "  hosts: [bad]\n  http_routes:\n"
                            "    - destinations: [{host: api.example.com}]\n"),
                  NULL, MESH_E_INVALID);
    assert_string_equal(msg, "VirtualService default/bad spec.http_routes[0].destinations[0].host: "
                             "\"api.example.com\" names no Service (write name, name.namespace or "
                             "name.namespace.svc)");
    free(msg);
}

static void test_linkerd_mesh_config(void **state)
{
    (void)state;
    struct run r = {0};
    input_add_file(&r.in, "examples/mesh-linkerd.yaml");
    input_add_text(&r.in,
                   HDR "kind: Service\nmetadata: {name: cart, namespace: shop}\n"
                       "spec: {endpoints: [\"10.0.0.1:80\"]}\n",
                   "cart");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    assert_int_equal(r.t.warnings.len, 0); /* dashboard and ha are install options */
    /* Every namespace of the input gets the proxy's resources. */
    assert_int_equal(r.t.n_objects, 2);
    const char *nss[] = {"default", "shop"};
    for (size_t i = 0; i < 2; i++) {
        const struct mesh_node *o = must_find(&r.t, "Namespace", NULL, nss[i]);
        assert_at(o, "apiVersion", "v1");
        assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
                  "MeshConfig/default/linkerd");
        assert_at(o, "metadata.annotations[\"config.linkerd.io/proxy-cpu-request\"]", "100m");
        assert_at(o, "metadata.annotations[\"config.linkerd.io/proxy-memory-request\"]", "128Mi");
        assert_null(at(o, "metadata.labels"));
        assert_null(at(o, "metadata.namespace"));
        assert_null(at(o, "spec"));
    }
    run_clear(&r);

    /* One Namespace object gathers what several resources put on it. */
    r = (struct run){0};
    input_add_file(&r.in, "examples/mesh-linkerd.yaml");
    input_add_text(&r.in, SP("ns", "  mtls: {mode: strict}\n"), "sp");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    assert_int_equal(r.t.n_objects, 1);
    const struct mesh_node *o = must_find(&r.t, "Namespace", NULL, "default");
    assert_at(o, "metadata.annotations[\"mesh.clusterdb.io/source\"]",
              "MeshConfig/default/linkerd,SecurityPolicy/default/ns");
    assert_at(o, "metadata.annotations[\"config.linkerd.io/default-inbound-policy\"]",
              "all-authenticated");
    assert_at(o, "metadata.annotations[\"config.linkerd.io/proxy-cpu-request\"]", "100m");
    run_clear(&r);

    const char cfg_yaml[] = "mesh:\n  provider: linkerd\n  version: \"2.16\"\n"
                            "  telemetry: {enabled: true, sampling_rate: 10}\n"
                            "  ingress: {enabled: true, gateway_class: linkerd}\n"
                            "  mtls: {enabled: false}\n";
    r = ok(cfg_yaml, NULL, true);
    assert_int_equal(r.t.warnings.len, 3);
    assert_string_equal(r.t.warnings.items[0].message,
                        "MeshConfig default/linkerd spec.mtls.enabled: linkerd cannot express "
                        "mTLS disable: Linkerd always uses mTLS between meshed pods and cannot "
                        "turn it off");
    assert_string_equal(r.t.warnings.items[1].message,
                        "MeshConfig default/linkerd spec.telemetry.sampling_rate: linkerd cannot "
                        "express tracing sampling rate: Linkerd follows the caller's sampling "
                        "decision and has no sampling percentage of its own");
    assert_string_equal(r.t.warnings.items[2].path, "spec.ingress");
    run_clear(&r);

    /* A MeshConfig of another provider is none of Linkerd's business. */
    r = (struct run){0};
    input_add_file(&r.in, "examples/mesh-istio.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_OK);
    assert_int_equal(r.t.n_objects, 0);
    run_clear(&r);
}

/* --- versions --- */

static void test_linkerd_versions(void **state)
{
    (void)state;
    /* The seed's version, 2.11, predates HTTPRoute. */
    struct run r = {0};
    input_add_file(&r.in, "examples/mesh-linkerd.yaml");
    input_add_file(&r.in, "examples/payment-mesh-route.yaml");
    run_translate(&r, NULL, false);
    assert_int_equal(r.err, MESH_E_UNSUPPORTED);
    assert_string_equal(r.errmsg, "VirtualService default/payment spec.http_routes: linkerd 2.11 "
                                  "cannot express routes (HTTPRoute policy.linkerd.io/v1beta3): it "
                                  "needs Linkerd 2.14 or later");
    /* The caller's version wins over the MeshConfig's. */
    run_translate(&r, "stable-2.14.10", false);
    assert_int_equal(r.err, MESH_OK);
    must_find(&r.t, "HTTPRoute", "default", "payment");
    mesh_translation_clear(&r.t);
    run_translate(&r, "2.13", false);
    assert_int_equal(r.err, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(r.errmsg, "linkerd 2.13 cannot express routes"));
    run_translate(&r, "edge-25.4.1", false);
    assert_int_equal(r.err, MESH_OK);
    mesh_translation_clear(&r.t);
    run_translate(&r, "1.7", false);
    assert_int_equal(r.err, MESH_E_INVALID);
    assert_string_equal(r.errmsg, "linkerd version \"1.7\": not a Linkerd 2.x version (write "
                                  "2.14, 2.14.10 or stable-2.14.10)");
    run_translate(&r, "2.x", false);
    assert_int_equal(r.err, MESH_E_INVALID);
    run_clear(&r);
}

/* --- the seed's examples, both modes --- */

static void test_linkerd_examples_both_modes(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 10);
    size_t refusals = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        /* Each example with the seed's Linkerd MeshConfig (2.11), and with the newest. */
        for (int newest = 0; newest < 2; newest++) {
            struct run r = {0};
            input_add_file(&r.in, "examples/mesh-linkerd.yaml");
            input_add_file(&r.in, g.gl_pathv[i]);
            run_translate(&r, newest ? "2.20" : NULL, false);
            if (r.err != MESH_OK) {
                if (r.err != MESH_E_UNSUPPORTED)
                    fail_msg("%s: %s: %s", g.gl_pathv[i], mesh_err_name(r.err), r.errmsg);
                /* "KIND NS/NAME PATH: linkerd[ VERSION] cannot express ...: why" */
                assert_non_null(strstr(r.errmsg, " cannot express "));
                assert_non_null(strstr(r.errmsg, ": linkerd"));
                assert_non_null(strstr(r.errmsg, " spec."));
                refusals++;
            }
            char *strict_msg = r.errmsg;
            r.errmsg = NULL;
            run_translate(&r, newest ? "2.20" : NULL, true);
            if (r.err != MESH_OK)
                fail_msg("%s partial: %s: %s", g.gl_pathv[i], mesh_err_name(r.err), r.errmsg);
            /* The strict refusal is among the warnings, word for word. */
            if (strict_msg && !has_warning(&r.t, strict_msg))
                fail_msg("%s: refusal not among the warnings: %s", g.gl_pathv[i], strict_msg);
            free(strict_msg);
            /* The proxy's resources always make it. */
            must_find(&r.t, "Namespace", NULL, "default");
            run_clear(&r);
        }
    }
    assert_true(refusals >= 6);

    /* The whole set at once. */
    for (int partial = 0; partial < 2; partial++) {
        struct run r = {0};
        for (size_t i = 0; i < g.gl_pathc; i++)
            input_add_file(&r.in, g.gl_pathv[i]);
        run_translate(&r, NULL, partial);
        if (!partial) {
            assert_int_equal(r.err, MESH_E_UNSUPPORTED);
        } else {
            assert_int_equal(r.err, MESH_OK);
            assert_true(r.t.warnings.len >= 10);
            const struct mesh_node *ns = must_find(&r.t, "Namespace", NULL, "default");
            assert_at(ns, "metadata.annotations[\"config.linkerd.io/default-inbound-policy\"]",
                      "all-authenticated");
        }
        run_clear(&r);
    }
    /* The whole set for the newest Linkerd, partially: the mesh's own routes, policies and
     * breakers. */
    struct run r = {0};
    for (size_t i = 0; i < g.gl_pathc; i++)
        input_add_file(&r.in, g.gl_pathv[i]);
    run_translate(&r, "2.20", true);
    assert_int_equal(r.err, MESH_OK);
    must_find(&r.t, "HTTPRoute", "default", "payment");
    must_find(&r.t, "HTTPRoute", "default", "payment-security-rule0-payment-v1");
    must_find(&r.t, "Server", "default", "payment-v2");
    must_find(&r.t, "Service", "default", "payment-v1");
    assert_at(must_find(&r.t, "HTTPRoute", "default", "payment"),
              "spec.rules[0].backendRefs[0].port", "18081");
    run_clear(&r);
    globfree(&g);
}

/* --- stable output --- */

static char *render(struct run *r, enum mesh_format f)
{
    char *out = NULL;
    assert_int_equal(mesh_translation_print(&r->t, f, &out), MESH_OK);
    return out;
}

static void test_linkerd_output_is_deterministic(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    struct run a = {0}, b = {0};
    for (size_t i = 0; i < g.gl_pathc; i++)
        input_add_file(&a.in, g.gl_pathv[i]);
    input_add_text(&a.in, fault_vs_yaml, "fault-vs");
    input_add_text(&a.in, retries_yaml, "retries");
    /* The same resources, in reverse order. */
    for (size_t i = g.gl_pathc; i-- > 0;)
        input_add_file(&b.in, g.gl_pathv[i]);
    input_add_text(&b.in, retries_yaml, "retries");
    input_add_text(&b.in, fault_vs_yaml, "fault-vs");
    globfree(&g);
    run_translate(&a, "2.20", true);
    run_translate(&b, "2.20", true);
    assert_int_equal(a.err, MESH_OK);
    assert_int_equal(b.err, MESH_OK);
    char *ya = render(&a, MESH_FORMAT_YAML), *yb = render(&b, MESH_FORMAT_YAML);
    assert_string_equal(ya, yb);
    char *ja = render(&a, MESH_FORMAT_JSON), *jb = render(&b, MESH_FORMAT_JSON);
    assert_string_equal(ja, jb);
    /* And again from the same input: the same bytes. */
    mesh_translation_clear(&a.t);
    run_translate(&a, "2.20", true);
    char *ya2 = render(&a, MESH_FORMAT_YAML);
    assert_string_equal(ya, ya2);
    /* Sorted by kind, namespace, name. */
    for (size_t i = 1; i < a.t.n_objects; i++) {
        const struct mesh_node *p = a.t.objects[i - 1], *q = a.t.objects[i];
        int c = strcmp(text_at(p, "kind"), text_at(q, "kind"));
        if (!c) {
            const char *pn = text_at(p, "metadata.namespace"),
                       *qn = text_at(q, "metadata.namespace");
            c = strcmp(pn ? pn : "", qn ? qn : "");
        }
        if (!c)
            c = strcmp(text_at(p, "metadata.name"), text_at(q, "metadata.name"));
        assert_true(c < 0); /* and no object twice */
    }
    free(ya);
    free(yb);
    free(ja);
    free(jb);
    free(ya2);
    run_clear(&a);
    run_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linkerd_caps_cover_every_feature_in_order),
        cmocka_unit_test(test_linkerd_seed_split_90_10),
        cmocka_unit_test(test_linkerd_matches),
        cmocka_unit_test(test_linkerd_header_prefix_as_regex),
        cmocka_unit_test(test_linkerd_timeouts),
        cmocka_unit_test(test_linkerd_retries),
        cmocka_unit_test(test_linkerd_fault_abort_backend),
        cmocka_unit_test(test_linkerd_breaker),
        cmocka_unit_test(test_linkerd_mtls_modes),
        cmocka_unit_test(test_linkerd_seed_authorization),
        cmocka_unit_test(test_linkerd_authorization_rules),
        cmocka_unit_test(test_linkerd_hosts_and_gateways),
        cmocka_unit_test(test_linkerd_mesh_config),
        cmocka_unit_test(test_linkerd_versions),
        cmocka_unit_test(test_linkerd_examples_both_modes),
        cmocka_unit_test(test_linkerd_output_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
