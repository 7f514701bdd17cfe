/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/picker: smooth weighted round robin is exact and spread out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/picker.h"

#define MAX_DESTS 8

/* Picks `picks` times from fresh state; counts per index in counts[0..n] (counts[n]: "none").
 * Returns the longest run of one index. */
static size_t run_picks(const int *weights, size_t n, unsigned picks, unsigned *counts)
{
    int current[MAX_DESTS];
    mesh_swrr_reset(current, n);
    for (size_t i = 0; i <= n; i++)
        counts[i] = 0;
    size_t prev = n + 1, run = 0, longest = 0;
    for (unsigned k = 0; k < picks; k++) {
        size_t i = mesh_swrr_pick(current, weights, n);
        assert_true(i <= n);
        counts[i]++;
        run = i == prev ? run + 1 : 1;
        prev = i;
        if (run > longest)
            longest = run;
    }
    return longest;
}

static void test_swrr_90_10_is_exact(void **state)
{
    (void)state;
    const int w[] = {90, 10};
    unsigned c[3];
    size_t longest = run_picks(w, 2, 1000, c);
    assert_int_equal(c[0], 900);
    assert_int_equal(c[1], 100);
    assert_int_equal(c[2], 0);
    /* The 10% pick comes once every ten, not in a burst. */
    assert_true(longest <= 9);
}

static void test_swrr_80_20_is_exact(void **state)
{
    (void)state;
    const int w[] = {80, 20};
    unsigned c[3];
    run_picks(w, 2, 1000, c);
    assert_int_equal(c[0], 800);
    assert_int_equal(c[1], 200);
}

static void test_swrr_three_way_is_exact(void **state)
{
    (void)state;
    const int w[] = {33, 33, 34};
    unsigned c[4];
    size_t longest = run_picks(w, 3, 1000, c);
    assert_int_equal(c[0], 330);
    assert_int_equal(c[1], 330);
    assert_int_equal(c[2], 340);
    assert_true(longest <= 2);
}

static void test_swrr_exact_over_every_full_cycle(void **state)
{
    (void)state;
    const int w[] = {5, 1, 3};
    int current[3];
    mesh_swrr_reset(current, 3);
    for (int cycle = 0; cycle < 50; cycle++) {
        unsigned c[3] = {0};
        for (int k = 0; k < 9; k++)
            c[mesh_swrr_pick(current, w, 3)]++;
        assert_int_equal(c[0], 5);
        assert_int_equal(c[1], 1);
        assert_int_equal(c[2], 3);
    }
}

static void test_swrr_100_0_never_picks_zero_weight(void **state)
{
    (void)state;
    const int w[] = {100, 0};
    unsigned c[3];
    run_picks(w, 2, 1000, c);
    assert_int_equal(c[0], 1000);
    assert_int_equal(c[1], 0);

    const int w2[] = {0, 100, 0};
    unsigned c2[4];
    run_picks(w2, 3, 500, c2);
    assert_int_equal(c2[1], 500);
}

static void test_swrr_all_zero_returns_n(void **state)
{
    (void)state;
    const int w[] = {0, 0};
    int current[2] = {0, 0};
    assert_int_equal(mesh_swrr_pick(current, w, 2), 2);
    assert_int_equal(mesh_swrr_pick(current, w, 0), 0);
    const int neg[] = {-5, 0};
    assert_int_equal(mesh_swrr_pick(current, neg, 2), 2);
}

static void test_swrr_50_50_alternates(void **state)
{
    (void)state;
    const int w[] = {50, 50};
    unsigned c[3];
    size_t longest = run_picks(w, 2, 1000, c);
    assert_int_equal(c[0], 500);
    assert_int_equal(c[1], 500);
    assert_int_equal(longest, 1);
}

static void test_swrr_single_destination(void **state)
{
    (void)state;
    const int w[] = {100};
    unsigned c[2];
    run_picks(w, 1, 100, c);
    assert_int_equal(c[0], 100);
}

static void test_swrr_reset_restarts_the_sequence(void **state)
{
    (void)state;
    const int w[] = {2, 1};
    int current[2];
    mesh_swrr_reset(current, 2);
    size_t first[6];
    for (int k = 0; k < 6; k++)
        first[k] = mesh_swrr_pick(current, w, 2);
    mesh_swrr_pick(current, w, 2);
    mesh_swrr_reset(current, 2);
    for (int k = 0; k < 6; k++)
        assert_int_equal(mesh_swrr_pick(current, w, 2), first[k]);
    /* nginx's sequence for 2/1: a b a, a b a. */
    assert_int_equal(first[0], 0);
    assert_int_equal(first[1], 1);
    assert_int_equal(first[2], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swrr_90_10_is_exact),
        cmocka_unit_test(test_swrr_80_20_is_exact),
        cmocka_unit_test(test_swrr_three_way_is_exact),
        cmocka_unit_test(test_swrr_exact_over_every_full_cycle),
        cmocka_unit_test(test_swrr_100_0_never_picks_zero_weight),
        cmocka_unit_test(test_swrr_all_zero_returns_n),
        cmocka_unit_test(test_swrr_50_50_alternates),
        cmocka_unit_test(test_swrr_single_destination),
        cmocka_unit_test(test_swrr_reset_restarts_the_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
