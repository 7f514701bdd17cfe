/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of meshd's proxy registry: register, replace, heartbeat, expiry, removal, acks,
 * the generation that only meaningful changes bump, and refusals that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/registry.h"

static struct mesh_proxy_registration sidecar(const char *id, const char *service,
                                              const char *address)
{
    struct mesh_proxy_registration r = {
        .id = id,
        .role = MESH_PROXY_SIDECAR,
        .service = service,
        .address = address,
        .admin = "127.0.0.1:16000",
    };
    return r;
}

static struct mesh_proxy_registration gateway(const char *id, const char *name)
{
    struct mesh_proxy_registration r = {.id = id, .role = MESH_PROXY_GATEWAY, .gateway = name};
    return r;
}

static void reg_ok(struct mesh_registry *reg, const struct mesh_proxy_registration *r, uint64_t now,
                   bool want_created)
{
    bool created = !want_created;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(reg, r, now, 1700000000000ULL + now, &created, &why),
                     MESH_OK);
    assert_null(why);
    assert_int_equal(created, want_created);
}

/* The message of a refused registration; asserts it was refused and nothing changed. */
static char *refused(struct mesh_registry *reg, const struct mesh_proxy_registration *r)
{
    uint64_t gen = mesh_registry_generation(reg);
    size_t before = 0;
    mesh_registry_list(reg, &before);
    bool created = false;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(reg, r, 1, 1, &created, &why), MESH_E_INVALID);
    assert_non_null(why);
    size_t after = 0;
    mesh_registry_list(reg, &after);
    assert_int_equal(after, before);
    assert_int_equal(mesh_registry_generation(reg), gen);
    return why;
}

static void test_register_sidecar_and_gateway(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_labels labels = {0};
    mesh_labels_set(&labels, "version", "v1");
    struct mesh_proxy_registration r =
        sidecar("payment-v1.default-42", "payment-v1", "127.0.0.1:16006");
    r.labels = &labels;
    reg_ok(reg, &r, 10, true);
    struct mesh_proxy_registration g = gateway("external-gateway-7", "external-gateway");
    g.ns = "edge";
    reg_ok(reg, &g, 11, true);

    const struct mesh_proxy_entry *e = mesh_registry_find(reg, "payment-v1.default-42");
    assert_non_null(e);
    assert_int_equal(e->role, MESH_PROXY_SIDECAR);
    assert_string_equal(e->service, "payment-v1");
    assert_string_equal(e->ns, "default"); /* NULL reads as default */
    assert_string_equal(e->address, "127.0.0.1:16006");
    assert_string_equal(e->admin, "127.0.0.1:16000");
    assert_null(e->gateway);
    assert_int_equal(e->labels.len, 1);
    assert_string_equal(e->labels.items[0].key, "version");
    assert_string_equal(e->labels.items[0].value, "v1");
    assert_int_equal(e->seen_ms, 10);
    assert_int_equal(e->registered_ms, 1700000000010ULL);
    assert_int_equal(e->last_heartbeat_ms, 1700000000010ULL);
    assert_string_equal(e->acked, "");

    /* The registry copied the strings: the caller's may go away. */
    mesh_labels_clear(&labels);
    assert_string_equal(mesh_registry_find(reg, "payment-v1.default-42")->labels.items[0].value,
                        "v1");

    e = mesh_registry_find(reg, "external-gateway-7");
    assert_non_null(e);
    assert_int_equal(e->role, MESH_PROXY_GATEWAY);
    assert_string_equal(e->gateway, "external-gateway");
    assert_string_equal(e->ns, "edge");
    assert_null(e->service);
    assert_null(e->address);
    assert_null(mesh_registry_find(reg, "nobody"));
    assert_null(mesh_registry_find(reg, NULL));
    mesh_registry_free(reg);
}

static void test_list_is_sorted_by_id(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    const char *ids[] = {"m", "c", "x", "a", "b9", "b10", "z.1"};
    for (size_t i = 0; i < 7; i++) {
        struct mesh_proxy_registration r = sidecar(ids[i], "svc", "127.0.0.1:1");
        reg_ok(reg, &r, 1, true);
    }
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(reg, &n);
    assert_int_equal(n, 7);
    const char *want[] = {"a", "b10", "b9", "c", "m", "x", "z.1"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i]->id, want[i]);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(mesh_registry_find(reg, ids[i])->id, ids[i]);
    mesh_registry_free(reg);
}

static void test_empty_registry(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    size_t n = 99;
    mesh_registry_list(reg, &n);
    assert_int_equal(n, 0);
    assert_int_equal(mesh_registry_expire(reg, 1000000), 0);
    assert_int_equal(mesh_registry_generation(reg), 0);
    mesh_registry_free(reg);
    mesh_registry_free(NULL);
}

static void test_replace_bumps_generation_only_when_changed(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration r = sidecar("p1", "payment-v1", "127.0.0.1:16006");
    reg_ok(reg, &r, 1, true);
    uint64_t g0 = mesh_registry_generation(reg);
    assert_true(g0 > 0);
    assert_int_equal(mesh_registry_ack(reg, "p1", "0123456789abcdef"), MESH_OK);

    /* Identical again: no new config, the ack is kept, the times move. */
    reg_ok(reg, &r, 50, false);
    assert_int_equal(mesh_registry_generation(reg), g0);
    assert_string_equal(mesh_registry_find(reg, "p1")->acked, "0123456789abcdef");
    assert_int_equal(mesh_registry_find(reg, "p1")->seen_ms, 50);

    /* Only the admin address changed: no compiled config changes either. */
    r.admin = "127.0.0.1:17000";
    reg_ok(reg, &r, 60, false);
    assert_int_equal(mesh_registry_generation(reg), g0);
    assert_string_equal(mesh_registry_find(reg, "p1")->admin, "127.0.0.1:17000");

    /* Each field a config depends on bumps it, and drops the ack. */
    r.address = "127.0.0.1:16007";
    reg_ok(reg, &r, 70, false);
    uint64_t g1 = mesh_registry_generation(reg);
    assert_true(g1 > g0);
    assert_string_equal(mesh_registry_find(reg, "p1")->acked, "");
    assert_string_equal(mesh_registry_find(reg, "p1")->address, "127.0.0.1:16007");

    struct mesh_labels labels = {0};
    mesh_labels_set(&labels, "version", "v2");
    r.labels = &labels;
    reg_ok(reg, &r, 80, false);
    uint64_t g2 = mesh_registry_generation(reg);
    assert_true(g2 > g1);
    reg_ok(reg, &r, 81, false);
    assert_int_equal(mesh_registry_generation(reg), g2);
    mesh_labels_set(&labels, "version", "v3");
    reg_ok(reg, &r, 82, false);
    uint64_t g3 = mesh_registry_generation(reg);
    assert_true(g3 > g2);
    mesh_labels_clear(&labels);

    r.service = "payment-v2";
    reg_ok(reg, &r, 90, false);
    uint64_t g4 = mesh_registry_generation(reg);
    assert_true(g4 > g3);
    r.ns = "shop";
    reg_ok(reg, &r, 91, false);
    uint64_t g5 = mesh_registry_generation(reg);
    assert_true(g5 > g4);
    r.ns = "default"; /* explicit default equals NULL, which was stored as "default" */
    reg_ok(reg, &r, 92, false);
    uint64_t g6 = mesh_registry_generation(reg);
    assert_true(g6 > g5);
    r.ns = NULL;
    reg_ok(reg, &r, 93, false);
    assert_int_equal(mesh_registry_generation(reg), g6);

    /* Same id, now a gateway: a role change. */
    struct mesh_proxy_registration g = gateway("p1", "edge");
    reg_ok(reg, &g, 100, false);
    uint64_t g7 = mesh_registry_generation(reg);
    assert_true(g7 > g6);
    g.gateway = "edge2";
    reg_ok(reg, &g, 101, false);
    assert_true(mesh_registry_generation(reg) > g7);
    size_t n = 0;
    mesh_registry_list(reg, &n);
    assert_int_equal(n, 1);
    mesh_registry_free(reg);
}

static void test_heartbeat_keeps_generation_and_defers_expiry(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration a = sidecar("a", "svc", "127.0.0.1:1");
    struct mesh_proxy_registration b = sidecar("b", "svc", "127.0.0.1:2");
    reg_ok(reg, &a, 1000, true);
    reg_ok(reg, &b, 1000, true);
    uint64_t gen = mesh_registry_generation(reg);

    assert_int_equal(mesh_registry_heartbeat(reg, "a", 3500, 1700000003500ULL), MESH_OK);
    assert_int_equal(mesh_registry_generation(reg), gen);
    assert_int_equal(mesh_registry_find(reg, "a")->seen_ms, 3500);
    assert_int_equal(mesh_registry_find(reg, "a")->last_heartbeat_ms, 1700000003500ULL);
    assert_int_equal(mesh_registry_find(reg, "a")->registered_ms, 1700000001000ULL);
    assert_int_equal(mesh_registry_heartbeat(reg, "nobody", 3500, 0), MESH_E_NOTFOUND);
    assert_int_equal(mesh_registry_heartbeat(reg, NULL, 3500, 0), MESH_E_NOTFOUND);

    /* Exactly ttl old is still alive; a millisecond more is not. */
    assert_int_equal(mesh_registry_expire(reg, 4000), 0);
    assert_int_equal(mesh_registry_generation(reg), gen);
    assert_int_equal(mesh_registry_expire(reg, 4001), 1);
    assert_true(mesh_registry_generation(reg) > gen);
    assert_null(mesh_registry_find(reg, "b"));
    assert_non_null(mesh_registry_find(reg, "a"));
    /* A lapsed proxy's heartbeat is refused, so it registers again. */
    assert_int_equal(mesh_registry_heartbeat(reg, "b", 4002, 0), MESH_E_NOTFOUND);

    gen = mesh_registry_generation(reg);
    assert_int_equal(mesh_registry_expire(reg, 6500), 0);
    assert_int_equal(mesh_registry_generation(reg), gen);
    assert_int_equal(mesh_registry_expire(reg, 6501), 1);
    size_t n = 9;
    mesh_registry_list(reg, &n);
    assert_int_equal(n, 0);
    /* A clock read taken before the last heartbeat never expires anything. */
    reg_ok(reg, &a, 10000, true);
    assert_int_equal(mesh_registry_expire(reg, 9000), 0);
    mesh_registry_free(reg);
}

static void test_expire_many_keeps_order(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(100);
    char ids[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(ids[i], sizeof(ids[i]), "p%02d", i);
        struct mesh_proxy_registration r = sidecar(ids[i], "svc", "127.0.0.1:1");
        reg_ok(reg, &r, (uint64_t)(i % 2 ? 1000 : 0), true);
    }
    assert_int_equal(mesh_registry_expire(reg, 1050), 10);
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(reg, &n);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i]->id, ids[2 * i + 1]);
    mesh_registry_free(reg);
}

static void test_remove(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration a = sidecar("a", "svc", "127.0.0.1:1");
    struct mesh_proxy_registration b = sidecar("b", "svc", "127.0.0.1:2");
    struct mesh_proxy_registration c = sidecar("c", "svc", "127.0.0.1:3");
    reg_ok(reg, &a, 1, true);
    reg_ok(reg, &b, 1, true);
    reg_ok(reg, &c, 1, true);
    uint64_t gen = mesh_registry_generation(reg);
    assert_int_equal(mesh_registry_remove(reg, "b"), MESH_OK);
    assert_true(mesh_registry_generation(reg) > gen);
    assert_null(mesh_registry_find(reg, "b"));
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(reg, &n);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->id, "a");
    assert_string_equal(list[1]->id, "c");
    gen = mesh_registry_generation(reg);
    assert_int_equal(mesh_registry_remove(reg, "b"), MESH_E_NOTFOUND);
    assert_int_equal(mesh_registry_remove(reg, NULL), MESH_E_NOTFOUND);
    assert_int_equal(mesh_registry_generation(reg), gen);
    /* Registering again after a removal is a new registration. */
    reg_ok(reg, &b, 2, true);
    mesh_registry_free(reg);
}

static void test_ack(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration a = sidecar("a", "svc", "127.0.0.1:1");
    reg_ok(reg, &a, 1, true);
    uint64_t gen = mesh_registry_generation(reg);
    assert_int_equal(mesh_registry_ack(reg, "a", "9f1c0a7e3b2d4c11"), MESH_OK);
    assert_string_equal(mesh_registry_find(reg, "a")->acked, "9f1c0a7e3b2d4c11");
    assert_int_equal(mesh_registry_ack(reg, "a", "00000000000000ff"), MESH_OK);
    assert_string_equal(mesh_registry_find(reg, "a")->acked, "00000000000000ff");
    assert_int_equal(mesh_registry_generation(reg), gen);
    assert_int_equal(mesh_registry_ack(reg, "zz", "9f1c0a7e3b2d4c11"), MESH_E_NOTFOUND);
    /* Too long to be a version: refused, the last ack stays. */
    assert_int_equal(mesh_registry_ack(reg, "a", "9f1c0a7e3b2d4c1100"), MESH_E_INVALID);
    assert_string_equal(mesh_registry_find(reg, "a")->acked, "00000000000000ff");
    assert_int_equal(mesh_registry_ack(reg, "a", ""), MESH_OK);
    assert_string_equal(mesh_registry_find(reg, "a")->acked, "");
    mesh_registry_free(reg);
}

static void test_proxy_id_valid(void **state)
{
    (void)state;
    char max[MESH_PROXY_ID_MAX + 2];
    memset(max, 'a', sizeof(max));
    max[MESH_PROXY_ID_MAX] = '\0';
    assert_true(mesh_proxy_id_valid(max));
    max[MESH_PROXY_ID_MAX] = 'a';
    max[MESH_PROXY_ID_MAX + 1] = '\0';
    assert_false(mesh_proxy_id_valid(max));

    const char *good[] = {"a", "0", "payment-v1.default-4242", "gw-1", "a.b.c", "9a-", "x."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(mesh_proxy_id_valid(good[i]));
    const char *bad[] = {"", "-a", ".a", "A", "payment_v1", "a/b", "a b", "é", "a:1", "aB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(mesh_proxy_id_valid(bad[i]));
    assert_false(mesh_proxy_id_valid(NULL));
}

static void expect_refusal(struct mesh_registry *reg, const struct mesh_proxy_registration *r,
                           const char *field_prefix, const char *fragment)
{
    char *why = refused(reg, r);
    if (strncmp(why, field_prefix, strlen(field_prefix)) != 0 || !strstr(why, fragment))
        fail_msg("message \"%s\" should start with \"%s\" and mention \"%s\"", why, field_prefix,
                 fragment);
    free(why);
}

static void test_invalid_registrations_name_the_field(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration ok = sidecar("ok", "svc", "127.0.0.1:1");
    reg_ok(reg, &ok, 1, true);

    struct mesh_proxy_registration r = sidecar("Bad_Id", "svc", "127.0.0.1:1");
    expect_refusal(reg, &r, "id: ", "Bad_Id");
    r = sidecar(NULL, "svc", "127.0.0.1:1");
    expect_refusal(reg, &r, "id: ", "not a valid proxy id");

    r = sidecar("s", NULL, "127.0.0.1:1");
    expect_refusal(reg, &r, "service: ", "required for a sidecar");
    r = sidecar("s", "", "127.0.0.1:1");
    expect_refusal(reg, &r, "service: ", "required");
    r = sidecar("s", "Payment_V1", "127.0.0.1:1");
    expect_refusal(reg, &r, "service: ", "Payment_V1");

    r = sidecar("s", "svc", NULL);
    expect_refusal(reg, &r, "address: ", "required for a sidecar");
    r = sidecar("s", "svc", "127.0.0.1");
    expect_refusal(reg, &r, "address: ", "127.0.0.1");
    r = sidecar("s", "svc", "127.0.0.1:99999");
    expect_refusal(reg, &r, "address: ", "99999");
    /* A name would make every proxy resolve it when it compiles its config. */
    r = sidecar("s", "svc", "payment.internal:8080");
    expect_refusal(reg, &r, "address: ", "numeric IP address");

    r = sidecar("s", "svc", "127.0.0.1:1");
    r.ns = "Not A Namespace";
    expect_refusal(reg, &r, "namespace: ", "Not A Namespace");
    r.ns = NULL;
    r.admin = "nowhere";
    expect_refusal(reg, &r, "admin: ", "nowhere");
    r.admin = NULL;
    r.gateway = "edge";
    expect_refusal(reg, &r, "gateway: ", "only a gateway");
    r.gateway = NULL;
    struct mesh_labels labels = {0};
    mesh_labels_set(&labels, "", "v1");
    r.labels = &labels;
    expect_refusal(reg, &r, "labels: ", "1 to 253");
    mesh_labels_clear(&labels);
    r.labels = NULL;
    r.role = (enum mesh_proxy_role)7;
    expect_refusal(reg, &r, "role: ", "sidecar or gateway");

    struct mesh_proxy_registration g = gateway("g", NULL);
    expect_refusal(reg, &g, "gateway: ", "required for a gateway");
    g = gateway("g", "Edge!");
    expect_refusal(reg, &g, "gateway: ", "Edge!");
    g = gateway("g", "mesh");
    expect_refusal(reg, &g, "gateway: ", "reserved");
    g = gateway("g", "edge");
    g.address = "127.0.0.1:1";
    expect_refusal(reg, &g, "address: ", "only a sidecar");
    g = gateway("g", "edge");
    g.service = "svc";
    expect_refusal(reg, &g, "service: ", "only a sidecar");

    /* The refusals left the earlier registration alone. */
    size_t n = 0;
    mesh_registry_list(reg, &n);
    assert_int_equal(n, 1);
    assert_non_null(mesh_registry_find(reg, "ok"));
    /* Refusing a replacement keeps the old registration as it was. */
    struct mesh_proxy_registration bad = sidecar("ok", "svc", "nope");
    expect_refusal(reg, &bad, "address: ", "nope");
    assert_string_equal(mesh_registry_find(reg, "ok")->address, "127.0.0.1:1");
    mesh_registry_free(reg);
}

static void test_ipv6_address(void **state)
{
    (void)state;
    struct mesh_registry *reg = mesh_registry_new(3000);
    struct mesh_proxy_registration r = sidecar("v6", "svc", "[::1]:16006");
    reg_ok(reg, &r, 1, true);
    assert_string_equal(mesh_registry_find(reg, "v6")->address, "[::1]:16006");
    mesh_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_sidecar_and_gateway),
        cmocka_unit_test(test_list_is_sorted_by_id),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_replace_bumps_generation_only_when_changed),
        cmocka_unit_test(test_heartbeat_keeps_generation_and_defers_expiry),
        cmocka_unit_test(test_expire_many_keeps_order),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_proxy_id_valid),
        cmocka_unit_test(test_invalid_registrations_name_the_field),
        cmocka_unit_test(test_ipv6_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
