/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/balancer: least-request P2C, round robin and random pickers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/balancer.h"

#define N_MAX 16

struct usable_set {
    bool ok[N_MAX];
    unsigned calls;
};

static bool usable_cb(void *ctx, size_t i)
{
    struct usable_set *u = ctx;
    u->calls++;
    assert_true(i < N_MAX);
    return u->ok[i];
}

static void all_usable(struct usable_set *u)
{
    for (size_t i = 0; i < N_MAX; i++)
        u->ok[i] = true;
    u->calls = 0;
}

static void count_picks(enum mesh_lb_policy p, struct mesh_lb_state *st, const uint32_t *active,
                        size_t n, struct usable_set *u, unsigned picks, unsigned *counts)
{
    for (size_t i = 0; i < n; i++)
        counts[i] = 0;
    for (unsigned k = 0; k < picks; k++) {
        int i = mesh_lb_pick(p, st, active, n, u ? usable_cb : NULL, u);
        assert_true(i >= 0 && (size_t)i < n);
        counts[i]++;
    }
}

static void test_lb_policy_names(void **state)
{
    (void)state;
    assert_string_equal(mesh_lb_policy_str(MESH_LB_LEAST_REQUEST), "least_request");
    assert_string_equal(mesh_lb_policy_str(MESH_LB_ROUND_ROBIN), "round_robin");
    assert_string_equal(mesh_lb_policy_str(MESH_LB_RANDOM), "random");
    assert_string_equal(mesh_lb_policy_str((enum mesh_lb_policy)42), "unknown");
}

static void test_lb_round_robin_cycles_evenly(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 1);
    int prev = mesh_lb_pick(MESH_LB_ROUND_ROBIN, &st, NULL, 4, NULL, NULL);
    for (int k = 0; k < 20; k++) {
        int i = mesh_lb_pick(MESH_LB_ROUND_ROBIN, &st, NULL, 4, NULL, NULL);
        assert_int_equal(i, (prev + 1) % 4);
        prev = i;
    }
    unsigned c[4];
    count_picks(MESH_LB_ROUND_ROBIN, &st, NULL, 4, NULL, 400, c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i], 100);
}

static void test_lb_round_robin_skips_unusable(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 2);
    struct usable_set u;
    all_usable(&u);
    u.ok[1] = false;
    u.ok[2] = false;
    unsigned c[5];
    count_picks(MESH_LB_ROUND_ROBIN, &st, NULL, 5, &u, 300, c);
    assert_int_equal(c[1], 0);
    assert_int_equal(c[2], 0);
    assert_int_equal(c[0], 100);
    assert_int_equal(c[3], 100);
    assert_int_equal(c[4], 100);
}

static void test_lb_round_robin_starts_at_different_places(void **state)
{
    (void)state;
    bool seen[8] = {false};
    for (uint64_t seed = 0; seed < 64; seed++) {
        struct mesh_lb_state st;
        mesh_lb_state_init(&st, seed);
        seen[mesh_lb_pick(MESH_LB_ROUND_ROBIN, &st, NULL, 8, NULL, NULL)] = true;
    }
    int distinct = 0;
    for (int i = 0; i < 8; i++)
        distinct += seen[i];
    assert_true(distinct >= 4);
}

static void test_lb_random_is_uniform(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 3);
    unsigned c[4];
    count_picks(MESH_LB_RANDOM, &st, NULL, 4, NULL, 40000, c);
    for (int i = 0; i < 4; i++) /* 10000 each, sigma ~87 */
        assert_true(c[i] > 9500 && c[i] < 10500);
}

/* With endpoint 1 out, its neighbour 2 must not inherit its share. */
static void test_lb_random_skips_unusable_uniformly(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 4);
    struct usable_set u;
    all_usable(&u);
    u.ok[1] = false;
    unsigned c[4];
    count_picks(MESH_LB_RANDOM, &st, NULL, 4, &u, 30000, c);
    assert_int_equal(c[1], 0);
    for (int i = 0; i < 4; i++)
        if (i != 1) /* 10000 each, sigma ~82 */
            assert_true(c[i] > 9500 && c[i] < 10500);
}

static void test_lb_least_request_all_idle_spreads(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 5);
    const uint32_t active[4] = {0, 0, 0, 0};
    unsigned c[4];
    count_picks(MESH_LB_LEAST_REQUEST, &st, active, 4, NULL, 40000, c);
    for (int i = 0; i < 4; i++)
        assert_true(c[i] > 9500 && c[i] < 10500);
}

static void test_lb_least_request_prefers_less_loaded(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 6);
    /* Two endpoints: both are always compared, so the idle one always wins. */
    const uint32_t two[2] = {7, 3};
    unsigned c[2];
    count_picks(MESH_LB_LEAST_REQUEST, &st, two, 2, NULL, 1000, c);
    assert_int_equal(c[1], 1000);

    /* Four: the most loaded can only win against itself, which P2C never draws; the least
     * loaded wins whenever drawn (half the pairs). */
    const uint32_t four[4] = {10, 1, 5, 20};
    unsigned c4[4];
    count_picks(MESH_LB_LEAST_REQUEST, &st, four, 4, NULL, 60000, c4);
    assert_int_equal(c4[3], 0);
    assert_true(c4[1] > 29000 && c4[1] < 31000); /* 1/2 */
    assert_true(c4[2] > 19000 && c4[2] < 21000); /* 1/3 */
    assert_true(c4[0] > 9300 && c4[0] < 10700);  /* 1/6 */
}

static void test_lb_least_request_breaks_ties_randomly(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 7);
    const uint32_t active[2] = {4, 4};
    unsigned c[2];
    count_picks(MESH_LB_LEAST_REQUEST, &st, active, 2, NULL, 10000, c);
    assert_true(c[0] > 4700 && c[0] < 5300);
}

static void test_lb_least_request_skips_unusable(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 8);
    struct usable_set u;
    all_usable(&u);
    u.ok[0] = false; /* the idle one is ejected */
    const uint32_t active[3] = {0, 9, 2};
    unsigned c[3];
    count_picks(MESH_LB_LEAST_REQUEST, &st, active, 3, &u, 1000, c);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[2], 1000);

    u.ok[2] = false; /* one usable left: it is taken whatever its load */
    count_picks(MESH_LB_LEAST_REQUEST, &st, active, 3, &u, 100, c);
    assert_int_equal(c[1], 100);
}

static void test_lb_single_endpoint(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 9);
    const uint32_t active[1] = {100};
    for (int p = MESH_LB_LEAST_REQUEST; p <= MESH_LB_RANDOM; p++)
        for (int k = 0; k < 10; k++)
            assert_int_equal(mesh_lb_pick((enum mesh_lb_policy)p, &st, active, 1, NULL, NULL), 0);
}

static void test_lb_none_usable_returns_minus_one(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 10);
    struct usable_set u;
    all_usable(&u);
    for (size_t i = 0; i < N_MAX; i++)
        u.ok[i] = false;
    const uint32_t active[5] = {0};
    for (int p = MESH_LB_LEAST_REQUEST; p <= MESH_LB_RANDOM; p++) {
        assert_int_equal(mesh_lb_pick((enum mesh_lb_policy)p, &st, active, 5, usable_cb, &u), -1);
        assert_int_equal(mesh_lb_pick((enum mesh_lb_policy)p, &st, active, 1, usable_cb, &u), -1);
        assert_int_equal(mesh_lb_pick((enum mesh_lb_policy)p, &st, active, 0, NULL, NULL), -1);
    }
}

/* The common case must stay cheap: with everything usable, a pick asks at most twice. */
static void test_lb_usable_is_asked_sparingly(void **state)
{
    (void)state;
    struct mesh_lb_state st;
    mesh_lb_state_init(&st, 11);
    struct usable_set u;
    all_usable(&u);
    const uint32_t active[N_MAX] = {0};
    for (int k = 0; k < 100; k++)
        mesh_lb_pick(MESH_LB_LEAST_REQUEST, &st, active, N_MAX, usable_cb, &u);
    assert_int_equal(u.calls, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lb_policy_names),
        cmocka_unit_test(test_lb_round_robin_cycles_evenly),
        cmocka_unit_test(test_lb_round_robin_skips_unusable),
        cmocka_unit_test(test_lb_round_robin_starts_at_different_places),
        cmocka_unit_test(test_lb_random_is_uniform),
        cmocka_unit_test(test_lb_random_skips_unusable_uniformly),
        cmocka_unit_test(test_lb_least_request_all_idle_spreads),
        cmocka_unit_test(test_lb_least_request_prefers_less_loaded),
        cmocka_unit_test(test_lb_least_request_breaks_ties_randomly),
        cmocka_unit_test(test_lb_least_request_skips_unusable),
        cmocka_unit_test(test_lb_single_endpoint),
        cmocka_unit_test(test_lb_none_usable_returns_minus_one),
        cmocka_unit_test(test_lb_usable_is_asked_sparingly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
