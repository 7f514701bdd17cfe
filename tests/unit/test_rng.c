/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/rng: seeding, bounded draws and percentage draws. */
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/rng.h"

static void test_rng_same_seed_same_sequence(void **state)
{
    (void)state;
    struct mesh_rng a, b, c;
    mesh_rng_seed(&a, 42);
    mesh_rng_seed(&b, 42);
    mesh_rng_seed(&c, 43);
    int differs = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = mesh_rng_next(&a);
        assert_true(x == mesh_rng_next(&b));
        differs += x != mesh_rng_next(&c);
    }
    assert_true(differs > 90);
}

static void test_rng_seed_zero_is_valid(void **state)
{
    (void)state;
    struct mesh_rng r;
    mesh_rng_seed(&r, 0);
    uint64_t seen_or = 0;
    for (int i = 0; i < 10; i++)
        seen_or |= mesh_rng_next(&r);
    assert_true(seen_or != 0);
}

static void test_rng_init_from_kernel_differs(void **state)
{
    (void)state;
    struct mesh_rng a, b;
    assert_int_equal(mesh_rng_init(&a), MESH_OK);
    assert_int_equal(mesh_rng_init(&b), MESH_OK);
    assert_false(memcmp(a.s, b.s, sizeof(a.s)) == 0);
    assert_true(mesh_rng_next(&a) != mesh_rng_next(&b));
}

static void test_rng_below_stays_in_range_and_covers_it(void **state)
{
    (void)state;
    struct mesh_rng r;
    mesh_rng_seed(&r, 7);
    assert_int_equal(mesh_rng_below(&r, 0), 0);
    assert_int_equal(mesh_rng_below(&r, 1), 0);
    unsigned counts[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint32_t v = mesh_rng_below(&r, 7);
        assert_true(v < 7);
        counts[v]++;
    }
    for (int i = 0; i < 7; i++) /* 10000 expected each; 5 sigma is about 460 */
        assert_true(counts[i] > 9500 && counts[i] < 10500);
    for (int i = 0; i < 1000; i++)
        assert_true(mesh_rng_below(&r, UINT32_MAX) < UINT32_MAX);
}

/* A bound just above 2^31 rejects almost half of the raw draws: still uniform. */
static void test_rng_below_large_bound_is_uniform(void **state)
{
    (void)state;
    struct mesh_rng r;
    mesh_rng_seed(&r, 11);
    uint32_t n = 0x80000001u;
    unsigned low_half = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t v = mesh_rng_below(&r, n);
        assert_true(v < n);
        low_half += v < n / 2;
    }
    assert_true(low_half > 9500 && low_half < 10500);
}

static unsigned count_percent(struct mesh_rng *r, double pct, unsigned trials)
{
    unsigned hits = 0;
    for (unsigned i = 0; i < trials; i++)
        hits += mesh_rng_percent(r, pct);
    return hits;
}

static void test_rng_percent_edges(void **state)
{
    (void)state;
    struct mesh_rng r;
    mesh_rng_seed(&r, 3);
    assert_int_equal(count_percent(&r, 0.0, 10000), 0);
    assert_int_equal(count_percent(&r, -5.0, 1000), 0);
    assert_int_equal(count_percent(&r, NAN, 1000), 0);
    assert_int_equal(count_percent(&r, 100.0, 10000), 10000);
    assert_int_equal(count_percent(&r, 250.0, 1000), 1000);
    /* Below half a hundredth rounds to never. */
    assert_int_equal(count_percent(&r, 0.004, 100000), 0);
}

static void test_rng_percent_rates(void **state)
{
    (void)state;
    struct mesh_rng r;
    mesh_rng_seed(&r, 5);
    unsigned hits = count_percent(&r, 10.0, 100000); /* sigma ~95 */
    assert_true(hits > 9500 && hits < 10500);
    hits = count_percent(&r, 50.0, 100000);
    assert_true(hits > 49300 && hits < 50700);
    /* Hundredths are honoured: 0.01% of 10 million is 1000 (sigma ~32). */
    hits = count_percent(&r, 0.01, 10000000);
    assert_true(hits > 850 && hits < 1150);
    hits = count_percent(&r, 99.99, 1000000);
    assert_true(hits > 999850 && hits < 999950);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_same_seed_same_sequence),
        cmocka_unit_test(test_rng_seed_zero_is_valid),
        cmocka_unit_test(test_rng_init_from_kernel_differs),
        cmocka_unit_test(test_rng_below_stays_in_range_and_covers_it),
        cmocka_unit_test(test_rng_below_large_bound_is_uniform),
        cmocka_unit_test(test_rng_percent_edges),
        cmocka_unit_test(test_rng_percent_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
