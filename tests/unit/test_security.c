/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the proxy's security policies: mTLS mode precedence and defaults, outbound mTLS,
 * authorization matching by identity, method and path, the metrics source label, and allocation
 * failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/document.h"
#include "proxy/security.h"

#include "translation_check.h"

#define HDR     "apiVersion: mesh.clusterdb.io/v1\n"
#define ORDERS  "spiffe://cluster.local/ns/default/sa/orders"
#define WEB     "spiffe://cluster.local/ns/default/sa/web"
#define PAY_V1  "spiffe://cluster.local/ns/default/sa/payment-v1"
#define PROCESS "/api/v1/process"

/* payment-v1 and payment-v2 are the versions of the app payment; orders and web stand alone. */
static const char services_yaml[] = HDR
    "kind: Service\nmetadata: {name: payment-v1, labels: {app: payment, version: v1}}\n"
    "spec: {endpoints: [\"127.0.0.1:18081\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: payment-v2, labels: {app: payment, version: v2}}\n"
    "spec: {endpoints: [\"127.0.0.1:18082\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: orders, labels: {app: orders}}\n"
    "spec: {endpoints: [\"127.0.0.1:18084\"]}\n"
    "---\n" HDR "kind: Service\nmetadata: {name: web}\n"
    "spec: {endpoints: [\"127.0.0.1:18083\"]}\n";

/* Allocation failures, injected by replacing glibc's malloc family in this test program (glibc
 * supports that; it forwards to glibc's own heap, so memory from either side frees on the
 * other). Not under ASan, whose runtime owns malloc: there the test is skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_INJECTION 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_INJECTION 0
#endif
#endif
#ifndef ALLOC_INJECTION
#define ALLOC_INJECTION 1
#endif

#if ALLOC_INJECTION
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

/* While armed: every allocation call is counted, the one numbered fail_at (from 0) fails, and
 * live counts the blocks allocated and not yet freed (what was built inside the window, so a
 * leak shows). One failure, then success again: an error that is swallowed shows too. */
static struct {
    bool armed;
    long fail_at;
    long calls;
    long live;
} alloc;

static bool alloc_may(void)
{
    if (!alloc.armed)
        return true;
    if (alloc.calls++ == alloc.fail_at) {
        errno = ENOMEM;
        return false;
    }
    return true;
}

void *malloc(size_t size)
{
    void *p = alloc_may() ? __libc_malloc(size) : NULL;
    if (p && alloc.armed)
        alloc.live++;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = alloc_may() ? __libc_calloc(n, size) : NULL;
    if (p && alloc.armed)
        alloc.live++;
    return p;
}

void *realloc(void *old, size_t size)
{
    void *p = alloc_may() ? __libc_realloc(old, size) : NULL;
    if (p && !old && alloc.armed)
        alloc.live++;
    return p;
}

void free(void *p)
{
    if (p && alloc.armed)
        alloc.live--;
    __libc_free(p);
}

static void alloc_arm(long fail_at)
{
    alloc.calls = 0;
    alloc.live = 0;
    alloc.fail_at = fail_at;
    alloc.armed = true;
}
#endif

struct docs {
    struct mesh_resource **res;
    size_t n;
};

static struct docs parse(const char *yaml)
{
    struct docs d = {0};
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_parse_documents(yaml, strlen(yaml), "t.yaml", &d.res, &d.n, &diags);
    for (size_t i = 0; i < diags.len; i++) {
        char *line = mesh_diag_format(&diags.items[i]);
        fprintf(stderr, "%s\n", line);
        free(line);
    }
    mesh_diags_clear(&diags);
    assert_int_equal(err, MESH_OK);
    return d;
}

/* The Services above, then extra. */
static struct docs parse_with_services(const char *extra)
{
    size_t len = strlen(services_yaml) + strlen(extra) + 8;
    char *yaml = malloc(len);
    assert_non_null(yaml);
    snprintf(yaml, len, "%s---\n%s", services_yaml, extra);
    struct docs d = parse(yaml);
    free(yaml);
    return d;
}

static void docs_free(struct docs *d)
{
    mesh_resource_list_free(d->res, d->n);
    d->res = NULL;
    d->n = 0;
}

static void reverse(struct docs *d)
{
    for (size_t i = 0; i < d->n / 2; i++) {
        struct mesh_resource *t = d->res[i];
        d->res[i] = d->res[d->n - 1 - i];
        d->res[d->n - 1 - i] = t;
    }
}

static struct mesh_inbound_policy inbound(const struct docs *d, const char *service, const char *ns)
{
    struct mesh_inbound_policy p;
    assert_int_equal(mesh_inbound_policy_build(d->res, d->n, service, ns, &p), MESH_OK);
    assert_int_not_equal(p.mode, MESH_MTLS_UNSET);
    assert_non_null(p.mode_source);
    return p;
}

static bool check(const struct mesh_inbound_policy *p, const char *peer, const char *method,
                  const char *path, const char **rule)
{
    *rule = NULL;
    bool ok = mesh_authz_check(p, peer, mesh_slice_cstr(method), mesh_slice_cstr(path), rule);
    assert_non_null(*rule);
    return ok;
}

static void assert_allowed(const struct mesh_inbound_policy *p, const char *peer,
                           const char *method, const char *path, const char *want_rule)
{
    const char *rule;
    if (!check(p, peer, method, path, &rule))
        fail_msg("%s %s from %s denied, expected rule %s", method, path, peer ? peer : "(none)",
                 want_rule);
    assert_string_equal(rule, want_rule);
}

static void assert_denied(const struct mesh_inbound_policy *p, const char *peer, const char *method,
                          const char *path)
{
    const char *rule;
    if (check(p, peer, method, path, &rule))
        fail_msg("%s %s from %s allowed by %s", method, path, peer ? peer : "(none)", rule);
    assert_string_equal(rule, "default-deny");
}

static bool has_from(const struct mesh_authz_rule_rt *r, const char *who)
{
    for (size_t i = 0; i < r->n_from; i++)
        if (strcmp(r->from[i], who) == 0)
            return true;
    return false;
}

/* --- the seed's policy --- */

static void test_seed_policy_lets_only_orders_post_process(void **state)
{
    (void)state;
    char *seed = read_file("examples/payment-security.yaml");
    struct docs d = parse_with_services(seed);
    free(seed);
    const char *versions[] = {"payment-v1", "payment-v2"};
    for (size_t v = 0; v < 2; v++) {
        struct mesh_inbound_policy p = inbound(&d, versions[v], "default");
        assert_int_equal(p.mode, MESH_MTLS_STRICT);
        assert_string_equal(p.mode_source, "default/payment-security");
        assert_true(p.authz);
        assert_int_equal(p.n_rules, 1);
        assert_string_equal(p.rules[0].name, "default/payment-security#0");
        assert_true(has_from(&p.rules[0], "default/orders"));
        const char *rule = "default/payment-security#0";
        assert_allowed(&p, ORDERS, "POST", PROCESS, rule);
        assert_allowed(&p, ORDERS, "POST", PROCESS "?x=1", rule);
        assert_allowed(&p, ORDERS, "POST", PROCESS "?", rule);
        /* The short form names orders in any trust domain the proxy trusts. */
        assert_allowed(&p, "spiffe://example.org/ns/default/sa/orders", "POST", PROCESS, rule);
        assert_denied(&p, ORDERS, "GET", PROCESS);
        assert_denied(&p, ORDERS, "post", PROCESS);
        assert_denied(&p, ORDERS, "POST", PROCESS "X");
        assert_denied(&p, ORDERS, "POST", PROCESS "/");
        assert_denied(&p, ORDERS, "POST", "/api/v1/proces");
        assert_denied(&p, ORDERS, "POST", "/api/v1/proces?s");
        assert_denied(&p, ORDERS, "POST", "");
        assert_denied(&p, WEB, "POST", PROCESS);
        assert_denied(&p, "spiffe://cluster.local/ns/shop/sa/orders", "POST", PROCESS);
        assert_denied(&p, NULL, "POST", PROCESS);
        mesh_inbound_policy_clear(&p);
    }
    /* No rule names orders: strict (the policy covers the whole namespace), no authorization. */
    struct mesh_inbound_policy p = inbound(&d, "orders", "default");
    assert_int_equal(p.mode, MESH_MTLS_STRICT);
    assert_false(p.authz);
    assert_int_equal(p.n_rules, 0);
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

static void test_from_short_forms_and_spiffe_id_name_orders(void **state)
{
    (void)state;
    const char *spellings[] = {"orders.default", "orders.default.svc",
                               "orders.default.svc.cluster.local", ORDERS};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  authorization:\n"
                     "    - {from: [\"%s\"], to: [payment], methods: [POST], paths: [%s]}\n",
                 spellings[i], PROCESS);
        struct docs d = parse_with_services(yaml);
        struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
        assert_int_equal(p.mode, MESH_MTLS_PERMISSIVE);
        assert_string_equal(p.mode_source, "mesh default");
        assert_allowed(&p, ORDERS, "POST", PROCESS, "default/p#0");
        assert_denied(&p, WEB, "POST", PROCESS);
        assert_denied(&p, NULL, "POST", PROCESS);
        assert_denied(&p, "spiffe://cluster.local/ns/default/sa/orders-v1", "POST", PROCESS);
        assert_denied(&p, "spiffe://cluster.local/ns/defaultx/sa/orders", "POST", PROCESS);
        assert_denied(&p, "spiffe://cluster.local/ns/default/sa/order", "POST", PROCESS);
        /* A SPIFFE ID names exactly itself; a short form, any trust domain. */
        bool exact = strncmp(spellings[i], "spiffe://", 9) == 0;
        const char *rule;
        assert_int_equal(
            check(&p, "spiffe://example.org/ns/default/sa/orders", "POST", PROCESS, &rule), !exact);
        mesh_inbound_policy_clear(&p);
        docs_free(&d);
    }
}

static void test_paths_prefix_star_and_any(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  authorization:\n"
            "    - {from: [orders.default], to: [payment-v1], paths: [\"/api/*\"]}\n"
            "    - {from: [web.default], to: [payment-v1], methods: [GET], paths: [\"*\"]}\n"
            "    - {from: [payment-v2.default], to: [payment-v1]}\n"
            "    - {from: [orders.default], to: [payment-v1], paths: [\"/v2*\"]}\n");
    struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
    assert_int_equal(p.n_rules, 4);
    assert_allowed(&p, ORDERS, "GET", "/api/", "default/p#0");
    assert_allowed(&p, ORDERS, "DELETE", "/api/v1/x?y=/z", "default/p#0");
    assert_denied(&p, ORDERS, "GET", "/api");
    assert_denied(&p, ORDERS, "GET", "/apix");
    assert_denied(&p, ORDERS, "GET", "/x/api/");
    assert_denied(&p, ORDERS, "GET", "/a?/api/");
    assert_allowed(&p, ORDERS, "GET", "/v2", "default/p#3");
    assert_allowed(&p, ORDERS, "GET", "/v2beta/x", "default/p#3");
    assert_allowed(&p, WEB, "GET", "/anything/at/all", "default/p#1");
    assert_allowed(&p, WEB, "GET", "", "default/p#1");
    assert_denied(&p, WEB, "POST", "/anything");
    assert_allowed(&p, "spiffe://cluster.local/ns/default/sa/payment-v2", "PATCH", "/x",
                   "default/p#2");
    assert_denied(&p, NULL, "GET", "/api/x");
    /* An empty path slice with a NULL pointer is a valid (empty) slice. */
    const char *rule;
    assert_true(mesh_authz_check(&p, WEB, mesh_slice_cstr("GET"), mesh_slice_make(NULL, 0), &rule));
    assert_false(
        mesh_authz_check(&p, ORDERS, mesh_slice_cstr("GET"), mesh_slice_make(NULL, 0), &rule));
    assert_string_equal(rule, "default-deny");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

/* A path an app could read as another one passes only rules that allow any path. */
static void test_unnormalised_paths_pass_only_any_path_rules(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  authorization:\n"
            "    - {from: [orders.default], to: [payment-v1], paths: [\"/api/*\", /admin]}\n"
            "    - {from: [web.default], to: [payment-v1], paths: [\"*\"]}\n"
            "    - {from: [payment-v2.default], to: [payment-v1]}\n");
    struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
    const char *odd[] = {"/api/../admin", "/api/./x", "/api//x", "/api/%2e%2e/admin",
                         "/api/x/..",     "/api/x/.", "/%61dmin"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_denied(&p, ORDERS, "GET", odd[i]);
        assert_allowed(&p, WEB, "GET", odd[i], "default/p#1");
        assert_allowed(&p, "spiffe://cluster.local/ns/default/sa/payment-v2", "GET", odd[i],
                       "default/p#2");
    }
    /* Dots inside a segment are ordinary. */
    assert_allowed(&p, ORDERS, "GET", "/api/v1.2/x..y/.z", "default/p#0");
    assert_allowed(&p, ORDERS, "GET", "/api/", "default/p#0");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

static void test_star_and_empty_from_admit_plaintext(void **state)
{
    (void)state;
    struct docs d =
        parse_with_services(HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n"
                                "  authorization:\n"
                                "    - {from: [\"*\"], to: [payment-v1], methods: [GET]}\n"
                                "    - {to: [payment-v1], methods: [PUT]}\n");
    struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
    assert_true(has_from(&p.rules[0], "*"));
    assert_int_equal(p.rules[1].n_from, 0);
    assert_allowed(&p, NULL, "GET", "/", "default/p#0");
    assert_allowed(&p, WEB, "GET", "/", "default/p#0");
    assert_allowed(&p, "spiffe://x", "GET", "/", "default/p#0");
    assert_allowed(&p, NULL, "PUT", "/", "default/p#1");
    assert_allowed(&p, ORDERS, "PUT", "/z", "default/p#1");
    assert_denied(&p, NULL, "POST", "/");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

/* `payment` names the Services labelled app: payment, as a target and as an identity. */
static void test_app_name_as_identity_and_target(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: p, namespace: default}\nspec:\n"
            "  authorization:\n"
            "    - {from: [payment.default], to: [orders.default.svc], methods: [POST]}\n"
            "    - {from: [orders.default.svc], to: [payment], methods: [GET]}\n");
    struct mesh_inbound_policy p = inbound(&d, "orders", "default");
    assert_int_equal(p.n_rules, 1);
    assert_true(has_from(&p.rules[0], "default/payment"));
    assert_true(has_from(&p.rules[0], "default/payment-v1"));
    assert_true(has_from(&p.rules[0], "default/payment-v2"));
    assert_int_equal(p.rules[0].n_from, 3);
    assert_allowed(&p, PAY_V1, "POST", "/", "default/p#0");
    assert_allowed(&p, "spiffe://cluster.local/ns/default/sa/payment-v2", "POST", "/",
                   "default/p#0");
    assert_allowed(&p, "spiffe://cluster.local/ns/default/sa/payment", "POST", "/", "default/p#0");
    assert_denied(&p, ORDERS, "POST", "/");
    assert_denied(&p, WEB, "POST", "/");
    assert_denied(&p, "spiffe://cluster.local/ns/other/sa/payment-v1", "POST", "/");
    mesh_inbound_policy_clear(&p);

    /* Both versions carry the rule whose `to` names the app; so would a sidecar registered
     * under the app's own name. */
    const char *targets[] = {"payment-v1", "payment-v2", "payment"};
    for (size_t i = 0; i < 3; i++) {
        p = inbound(&d, targets[i], "default");
        assert_int_equal(p.n_rules, 1);
        assert_string_equal(p.rules[0].name, "default/p#1");
        assert_allowed(&p, ORDERS, "GET", "/", "default/p#1");
        assert_denied(&p, PAY_V1, "GET", "/");
        mesh_inbound_policy_clear(&p);
    }
    p = inbound(&d, "payment-v1", "other");
    assert_false(p.authz);
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

static void test_service_no_rule_names_allows_everything(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  mtls: {mode: strict}\n"
            "  authorization:\n    - {from: [orders.default], to: [payment], methods: [POST]}\n");
    struct mesh_inbound_policy p = inbound(&d, "web", "default");
    assert_int_equal(p.mode, MESH_MTLS_STRICT);
    assert_false(p.authz);
    assert_int_equal(p.n_rules, 0);
    const char *rule = NULL;
    assert_true(
        mesh_authz_check(&p, NULL, mesh_slice_cstr("DELETE"), mesh_slice_cstr("/x"), &rule));
    assert_string_equal(rule, "none");
    assert_true(mesh_authz_check(&p, WEB, mesh_slice_cstr("GET"), mesh_slice_cstr("/"), &rule));
    assert_string_equal(rule, "none");
    assert_true(mesh_authz_check(&p, "", mesh_slice_cstr("GET"), mesh_slice_cstr("/"), NULL));
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

/* A rule whose identities name nobody (a document built in code, never validated) matches no
 * request: it must not read as "from anyone". */
static void test_rule_naming_nobody_matches_nothing(void **state)
{
    (void)state;
    struct mesh_security_policy *sp = mesh_security_policy_new("p", "default");
    assert_non_null(sp);
    struct mesh_authorization_rule *r = mesh_security_policy_add_rule(sp);
    assert_non_null(r);
    assert_int_equal(mesh_string_list_add(&r->from, "orders"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&r->from, "a.b.c.d"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&r->to, "web"), MESH_OK);
    r = mesh_security_policy_add_rule(sp);
    assert_non_null(r);
    assert_int_equal(mesh_string_list_add(&r->from, ".default"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&r->to, "nope.a.b.c"), MESH_OK);
    struct mesh_resource *res[] = {&sp->res};
    struct mesh_inbound_policy p;
    assert_int_equal(mesh_inbound_policy_build(res, 1, "web", "default", &p), MESH_OK);
    assert_true(p.authz);
    assert_int_equal(p.n_rules, 0);
    assert_denied(&p, NULL, "GET", "/");
    assert_denied(&p, "spiffe://cluster.local/ns/default/sa/orders", "GET", "/");
    mesh_inbound_policy_clear(&p);
    /* Cleared twice, and a zeroed struct: both fine. */
    mesh_inbound_policy_clear(&p);
    struct mesh_inbound_policy zero = {0};
    mesh_inbound_policy_clear(&zero);
    mesh_inbound_policy_clear(NULL);
    mesh_security_policy_free(sp);
}

/* --- mTLS mode --- */

static void assert_mode(struct docs *d, const char *service, const char *ns,
                        enum mesh_mtls_mode want, const char *want_source)
{
    for (int pass = 0; pass < 2; pass++) {
        struct mesh_inbound_policy p = inbound(d, service, ns);
        if (p.mode != want || strcmp(p.mode_source, want_source) != 0)
            fail_msg("%s/%s: mode %s from %s, want %s from %s (documents %s)", ns, service,
                     mesh_mtls_mode_name(p.mode), p.mode_source, mesh_mtls_mode_name(want),
                     want_source, pass ? "reversed" : "in order");
        assert_int_equal(mesh_security_mode(d->res, d->n, service, ns), want);
        mesh_inbound_policy_clear(&p);
        reverse(d); /* the answer must not depend on document order */
    }
}

static void test_specific_policy_beats_namespace_wide(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: wide}\nspec: {mtls: {mode: strict}}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: pay}\n"
            "spec: {services: [payment], mtls: {mode: disable}}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: web}\n"
            "spec: {services: [web.default.svc], mtls: {mode: permissive}}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: authz-only}\n"
            "spec: {services: [orders], authorization: [{to: [orders]}]}\n");
    assert_mode(&d, "payment-v1", "default", MESH_MTLS_DISABLE, "default/pay");
    assert_mode(&d, "payment-v2", "default", MESH_MTLS_DISABLE, "default/pay");
    assert_mode(&d, "web", "default", MESH_MTLS_PERMISSIVE, "default/web");
    /* A policy without mtls.mode decides nothing, even when it names the service. */
    assert_mode(&d, "orders", "default", MESH_MTLS_STRICT, "default/wide");
    assert_mode(&d, "unknown", "default", MESH_MTLS_STRICT, "default/wide");
    docs_free(&d);
}

static void test_strictest_of_equals_wins(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: b-perm}\nspec: {mtls: {mode: permissive}}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: a-off}\n"
            "spec: {mtls: {mode: disable}}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: z-perm}\n"
            "spec: {mtls: {mode: permissive}}\n");
    /* Permissive beats disable; of the two permissive ones the first by name is the source. */
    assert_mode(&d, "web", "default", MESH_MTLS_PERMISSIVE, "default/b-perm");
    docs_free(&d);

    d = parse_with_services(HDR "kind: SecurityPolicy\nmetadata: {name: perm}\n"
                                "spec: {services: [web, orders], mtls: {mode: permissive}}\n"
                                "---\n" HDR
                                "kind: SecurityPolicy\nmetadata: {name: strict, namespace: shop}\n"
                                "spec: {services: [web.default], mtls: {mode: strict}}\n"
                                "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: off}\n"
                                "spec: {mtls: {mode: disable}}\n");
    assert_mode(&d, "web", "default", MESH_MTLS_STRICT, "shop/strict");
    assert_mode(&d, "orders", "default", MESH_MTLS_PERMISSIVE, "default/perm");
    assert_mode(&d, "payment-v1", "default", MESH_MTLS_DISABLE, "default/off");
    docs_free(&d);
}

static void test_default_is_permissive_unless_mesh_disables_mtls(void **state)
{
    (void)state;
    struct docs d = parse(services_yaml);
    assert_mode(&d, "web", "default", MESH_MTLS_PERMISSIVE, "mesh default");
    docs_free(&d);

    d = parse_with_services("mesh:\n  provider: native\n  mtls: {enabled: false}\n");
    assert_mode(&d, "web", "default", MESH_MTLS_DISABLE, "mesh default");
    assert_false(mesh_security_outbound_mtls(d.res, d.n, "web", "default"));
    docs_free(&d);

    /* No provider written: native. */
    d = parse_with_services("mesh:\n  mtls: {enabled: false, auto_upgrade: true}\n");
    assert_mode(&d, "web", "default", MESH_MTLS_DISABLE, "mesh default");
    docs_free(&d);

    /* Another provider's MeshConfig is not the proxy's. */
    d = parse_with_services("mesh:\n  provider: istio\n  mtls: {enabled: false}\n");
    assert_mode(&d, "web", "default", MESH_MTLS_PERMISSIVE, "mesh default");
    docs_free(&d);

    /* The first native one counts. */
    struct docs first = parse("mesh:\n  provider: native\n  mtls: {enabled: true}\n"
                              "---\nmesh:\n  provider: other\n  mtls: {enabled: false}\n");
    assert_int_equal(mesh_security_mode(first.res, first.n, "web", "default"),
                     MESH_MTLS_PERMISSIVE);
    docs_free(&first);

    /* A policy still decides where it applies. */
    d = parse_with_services("mesh:\n  provider: native\n  mtls: {enabled: false}\n---\n" HDR
                            "kind: SecurityPolicy\nmetadata: {name: p}\n"
                            "spec: {services: [payment], mtls: {mode: strict}}\n");
    assert_mode(&d, "payment-v1", "default", MESH_MTLS_STRICT, "default/p");
    assert_mode(&d, "web", "default", MESH_MTLS_DISABLE, "mesh default");
    docs_free(&d);
}

static void test_outbound_mtls_follows_mode_and_auto_upgrade(void **state)
{
    (void)state;
    static const char policies[] = HDR "kind: SecurityPolicy\nmetadata: {name: s}\n"
                                       "spec: {services: [payment], mtls: {mode: strict}}\n"
                                       "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: p}\n"
                                       "spec: {services: [orders], mtls: {mode: permissive}}\n"
                                       "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: d}\n"
                                       "spec: {services: [web], mtls: {mode: disable}}\n";
    static const struct {
        const char *mesh; /* MeshConfig, or "" */
        bool permissive;  /* expected for the permissive service (orders) */
    } cases[] = {
        {"", true},
        {"mesh:\n  provider: native\n", true},
        {"mesh:\n  provider: native\n  mtls: {auto_upgrade: true}\n", true},
        {"mesh:\n  provider: native\n  mtls: {enabled: true, auto_upgrade: true}\n", true},
        {"mesh:\n  provider: native\n  mtls: {auto_upgrade: false}\n", false},
        {"mesh:\n  provider: native\n  mtls: {enabled: false}\n", false},
        {"mesh:\n  provider: istio\n  mtls: {auto_upgrade: false}\n", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%s%s", policies, *cases[i].mesh ? "---\n" : "",
                 cases[i].mesh);
        struct docs d = parse_with_services(yaml);
        assert_true(mesh_security_outbound_mtls(d.res, d.n, "payment-v1", "default"));
        assert_true(mesh_security_outbound_mtls(d.res, d.n, "payment-v2", "default"));
        if (mesh_security_outbound_mtls(d.res, d.n, "orders", "default") != cases[i].permissive)
            fail_msg("case %zu: permissive outbound should be %d", i, cases[i].permissive);
        assert_false(mesh_security_outbound_mtls(d.res, d.n, "web", "default"));
        /* No policy for a service of another namespace: the mesh default. */
        assert_int_equal(mesh_security_outbound_mtls(d.res, d.n, "payment-v1", "other"),
                         cases[i].permissive);
        docs_free(&d);
    }
}

/* --- namespaces --- */

static void test_policy_of_another_namespace_does_not_cover(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: wide, namespace: shop}\n"
            "spec:\n  mtls: {mode: strict}\n"
            "  authorization: [{from: [orders.shop], to: [payment], methods: [GET]}]\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: named, namespace: shop}\n"
            "spec: {services: [payment-v1, web.shop], mtls: {mode: disable}}\n");
    struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
    assert_int_equal(p.mode, MESH_MTLS_PERMISSIVE);
    assert_false(p.authz);
    mesh_inbound_policy_clear(&p);
    /* In shop itself, the bare name means shop's payment-v1. */
    assert_mode(&d, "payment-v1", "shop", MESH_MTLS_DISABLE, "shop/named");
    assert_mode(&d, "web", "shop", MESH_MTLS_DISABLE, "shop/named");
    assert_mode(&d, "orders", "shop", MESH_MTLS_STRICT, "shop/wide");
    p = inbound(&d, "payment", "shop");
    assert_true(p.authz);
    assert_allowed(&p, "spiffe://cluster.local/ns/shop/sa/orders", "GET", "/", "shop/wide#0");
    assert_denied(&p, ORDERS, "GET", "/");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

static void test_service_hosts_cross_namespaces(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: Service\nmetadata: {name: orders, namespace: shop}\n"
            "spec: {endpoints: [\"127.0.0.1:18090\"]}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: x, namespace: shop}\n"
            "spec:\n  services: [payment.default.svc, web.default.svc.cluster.local]\n"
            "  mtls: {mode: strict}\n  authorization:\n"
            "    - {from: [orders.shop.svc], to: [payment-v1.default], methods: [POST]}\n"
            "    - {from: [orders.default], to: [orders], methods: [GET]}\n"
            "    - {from: [orders.default], to: [payment.default.svc.cluster.local]}\n"
            "    - {from: [orders.default], to: [payment.default.svc.elsewhere]}\n");
    assert_mode(&d, "payment-v1", "default", MESH_MTLS_STRICT, "shop/x");
    assert_mode(&d, "payment-v2", "default", MESH_MTLS_STRICT, "shop/x");
    assert_mode(&d, "web", "default", MESH_MTLS_STRICT, "shop/x");
    assert_mode(&d, "orders", "default", MESH_MTLS_PERMISSIVE, "mesh default");
    assert_mode(&d, "payment-v1", "shop", MESH_MTLS_PERMISSIVE, "mesh default");

    struct mesh_inbound_policy p = inbound(&d, "payment-v1", "default");
    assert_int_equal(p.n_rules, 2);
    assert_string_equal(p.rules[0].name, "shop/x#0");
    assert_string_equal(p.rules[1].name, "shop/x#2");
    assert_allowed(&p, "spiffe://cluster.local/ns/shop/sa/orders", "POST", "/", "shop/x#0");
    assert_allowed(&p, ORDERS, "POST", "/", "shop/x#2");
    assert_denied(&p, "spiffe://cluster.local/ns/shop/sa/orders", "GET", "/");
    mesh_inbound_policy_clear(&p);

    p = inbound(&d, "orders", "shop");
    assert_int_equal(p.n_rules, 1);
    assert_allowed(&p, ORDERS, "GET", "/", "shop/x#1");
    mesh_inbound_policy_clear(&p);
    p = inbound(&d, "orders", "default");
    assert_false(p.authz);
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

/* --- rules and order --- */

static void test_rules_keep_snapshot_order_and_policy_index(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: second}\nspec:\n  authorization:\n"
            "    - {from: [web.default], to: [orders]}\n"
            "    - {from: [orders.default], to: [payment], paths: [\"/a/*\"]}\n"
            "---\n" HDR "kind: SecurityPolicy\nmetadata: {name: first}\nspec:\n"
            "  authorization:\n"
            "    - {from: [orders.default], to: [payment]}\n");
    struct mesh_inbound_policy p = inbound(&d, "payment-v2", "default");
    assert_int_equal(p.n_rules, 2);
    assert_string_equal(p.rules[0].name, "default/second#1");
    assert_string_equal(p.rules[1].name, "default/first#0");
    assert_int_equal(p.rules[0].n_paths, 1);
    assert_string_equal(p.rules[0].paths[0], "/a/*");
    assert_allowed(&p, ORDERS, "GET", "/a/b", "default/second#1");
    assert_allowed(&p, ORDERS, "GET", "/b", "default/first#0");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

/* --- peers --- */

static void test_malformed_peer_ids_match_no_short_form(void **state)
{
    (void)state;
    struct docs d = parse_with_services(
        HDR "kind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  authorization:\n"
            "    - {from: [orders.default, a.default], to: [web]}\n");
    struct mesh_inbound_policy p = inbound(&d, "web", "default");
    assert_allowed(&p, ORDERS, "GET", "/", "default/p#0");
    assert_allowed(&p, "spiffe://td/ns/default/sa/a", "GET", "/", "default/p#0");
    const char *bad[] = {"spiffe://x",
                         "",
                         "spiffe://td/ns/a/sa/",
                         "spiffe://td/ns/default/sa/",
                         "spiffe://td/ns/default/sa/orders/",
                         "spiffe://td/ns/default/sa/orders/x",
                         "spiffe:///ns/default/sa/orders",
                         "spiffe://td/ns//sa/orders",
                         "spiffe://td/ns/default/orders",
                         "spiffe://td/x/ns/default/sa/orders",
                         "spiffe://td/ns/default/sa",
                         "spiffe://td/ns/default",
                         "spiffe://",
                         "SPIFFE://td/ns/default/sa/orders",
                         "http://td/ns/default/sa/orders",
                         "default/orders",
                         "orders.default",
                         "*",
                         "spiffe://td/ns/default/sa/orders.default",
                         "spiffe://td/ns/default/sa/a/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_denied(&p, bad[i], "GET", "/");
    mesh_inbound_policy_clear(&p);
    docs_free(&d);
}

static void test_authz_source_labels(void **state)
{
    (void)state;
    char out[64];
    mesh_authz_source(ORDERS, out, sizeof(out));
    assert_string_equal(out, "orders.default");
    mesh_authz_source("spiffe://example.org/ns/shop/sa/payment-v1", out, sizeof(out));
    assert_string_equal(out, "payment-v1.shop");
    mesh_authz_source(NULL, out, sizeof(out));
    assert_string_equal(out, "unauthenticated");
    mesh_authz_source("spiffe://x", out, sizeof(out));
    assert_string_equal(out, "spiffe://x");
    mesh_authz_source("spiffe://td/ns/a/sa/", out, sizeof(out));
    assert_string_equal(out, "spiffe://td/ns/a/sa/");
    mesh_authz_source("", out, sizeof(out));
    assert_string_equal(out, "");
    char small[7];
    mesh_authz_source(ORDERS, small, sizeof(small));
    assert_string_equal(small, "orders");
    mesh_authz_source(NULL, small, sizeof(small));
    assert_string_equal(small, "unauth");
    char one[1] = {'x'};
    mesh_authz_source(ORDERS, one, sizeof(one));
    assert_int_equal(one[0], '\0');
    char none[1] = {'x'};
    mesh_authz_source(ORDERS, none, 0);
    assert_int_equal(none[0], 'x');
}

/* Every allocation of a build may fail: MESH_E_NOMEM, *out cleared, nothing leaked; the
 * request-time calls allocate nothing. */
static void test_allocation_failures_leave_policy_cleared(void **state)
{
    (void)state;
#if ALLOC_INJECTION
    char *seed = read_file("examples/payment-security.yaml");
    size_t len = strlen(seed) + 1024;
    char *yaml = malloc(len);
    assert_non_null(yaml);
    snprintf(yaml, len,
             "%s---\n" HDR "kind: SecurityPolicy\nmetadata: {name: more}\nspec:\n"
             "  services: [payment]\n  mtls: {mode: permissive}\n  authorization:\n"
             "    - {from: [payment.default, \"*\", orders.default.svc], to: [payment],\n"
             "       methods: [GET, PUT], paths: [\"/api/*\", /x, \"*\"]}\n"
             "    - {to: [payment-v1.default.svc]}\n",
             seed);
    free(seed);
    struct docs d = parse_with_services(yaml);
    free(yaml);
    struct mesh_inbound_policy zero, p;
    memset(&zero, 0, sizeof(zero));
    long fail_at = 0;
    for (;; fail_at++) {
        memset(&p, 0xa5, sizeof(p));
        alloc_arm(fail_at);
        enum mesh_err err = mesh_inbound_policy_build(d.res, d.n, "payment-v1", "default", &p);
        alloc.armed = false;
        if (alloc.calls <= fail_at) { /* no allocation failed: the build is complete */
            assert_int_equal(err, MESH_OK);
            break;
        }
        if (err != MESH_E_NOMEM)
            fail_msg("allocation %ld failed, yet the build said %s", fail_at, mesh_err_name(err));
        assert_memory_equal(&p, &zero, sizeof(p));
        if (alloc.live != 0)
            fail_msg("allocation %ld failed: %ld blocks leaked", fail_at, alloc.live);
        mesh_inbound_policy_clear(&p);
    }
    assert_true(fail_at > 5); /* every one of those failure points was exercised */
    long held = alloc.live;   /* blocks the built policy owns */
    assert_int_equal(p.n_rules, 3);
    /* The request path and the mode lookups, with no allocation allowed (asserted after the
     * window, since a failing assertion's message allocates). */
    const char *r1, *r2, *r3, *r4;
    alloc_arm(0); /* the first allocation, if any, would fail */
    bool ok1 = check(&p, ORDERS, "POST", PROCESS "?q", &r1);
    bool ok2 = check(&p, NULL, "GET", "/api/v1", &r2);
    bool ok3 = check(&p, NULL, "DELETE", "/", &r3);
    bool ok4 = check(&p, NULL, "PUT", "/x", &r4);
    enum mesh_mtls_mode mode = mesh_security_mode(d.res, d.n, "payment-v1", "default");
    bool outbound = mesh_security_outbound_mtls(d.res, d.n, "payment-v2", "default");
    alloc.armed = false;
    assert_int_equal(alloc.calls, 0);
    assert_true(ok1 && ok2 && ok3 && ok4);
    assert_string_equal(r1, "default/payment-security#0");
    assert_string_equal(r2, "default/more#0");
    assert_string_equal(r3, "default/more#1");
    assert_string_equal(r4, "default/more#0");
    assert_int_equal(mode, MESH_MTLS_PERMISSIVE);
    assert_true(outbound);
    alloc_arm(-1);
    alloc.live = held;
    mesh_inbound_policy_clear(&p);
    alloc.armed = false;
    assert_int_equal(alloc.live, 0);
    docs_free(&d);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_policy_lets_only_orders_post_process),
        cmocka_unit_test(test_from_short_forms_and_spiffe_id_name_orders),
        cmocka_unit_test(test_paths_prefix_star_and_any),
        cmocka_unit_test(test_unnormalised_paths_pass_only_any_path_rules),
        cmocka_unit_test(test_star_and_empty_from_admit_plaintext),
        cmocka_unit_test(test_app_name_as_identity_and_target),
        cmocka_unit_test(test_service_no_rule_names_allows_everything),
        cmocka_unit_test(test_rule_naming_nobody_matches_nothing),
        cmocka_unit_test(test_specific_policy_beats_namespace_wide),
        cmocka_unit_test(test_strictest_of_equals_wins),
        cmocka_unit_test(test_default_is_permissive_unless_mesh_disables_mtls),
        cmocka_unit_test(test_outbound_mtls_follows_mode_and_auto_upgrade),
        cmocka_unit_test(test_policy_of_another_namespace_does_not_cover),
        cmocka_unit_test(test_service_hosts_cross_namespaces),
        cmocka_unit_test(test_rules_keep_snapshot_order_and_policy_index),
        cmocka_unit_test(test_malformed_peer_ids_match_no_short_form),
        cmocka_unit_test(test_authz_source_labels),
        cmocka_unit_test(test_allocation_failures_leave_policy_cleared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
