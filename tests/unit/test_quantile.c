/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/quantile: histogram_quantile() as Prometheus computes it, which
 * meshctl stat uses for its p50/p95/p99. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "proxy/quantile.h"
#include "proxy/stats.h"

#define B(le, n)                                                                                   \
    {                                                                                              \
        (le), (n)                                                                                  \
    }

static double q_of(double q, const struct mesh_quantile_bucket *in, size_t n)
{
    struct mesh_quantile_bucket copy[32];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        copy[i] = in[i];
    return mesh_quantile(q, copy, n);
}

static void test_quantile_interpolates_linearly_inside_the_bucket(void **state)
{
    (void)state;
    const struct mesh_quantile_bucket b[] = {B(0.1, 10), B(0.2, 20), B(0.4, 40), B(INFINITY, 40)};
    /* rank 20 reaches the 0.2 bucket exactly at its top: 0.1 + 0.1 * 10/10 */
    assert_float_equal(q_of(0.5, b, 4), 0.2, 1e-12);
    /* rank 10 in the first bucket, interpolated from 0 */
    assert_float_equal(q_of(0.25, b, 4), 0.1, 1e-12);
    assert_float_equal(q_of(0.1, b, 4), 0.04, 1e-12);
    /* rank 30: 10 of the 20 in (0.2, 0.4] */
    assert_float_equal(q_of(0.75, b, 4), 0.3, 1e-12);
    assert_float_equal(q_of(1.0, b, 4), 0.4, 1e-12);
    assert_float_equal(q_of(0.99, b, 4), 0.2 + 0.2 * (39.6 - 20) / 20, 1e-12);
}

static void test_quantile_in_the_inf_bucket_is_the_highest_finite_bound(void **state)
{
    (void)state;
    const struct mesh_quantile_bucket b[] = {B(0.1, 0), B(1, 5), B(INFINITY, 10)};
    assert_float_equal(q_of(0.9, b, 3), 1.0, 1e-12);
    assert_float_equal(q_of(0.5, b, 3), 1.0, 1e-12); /* rank 5 reaches le=1 at its top */
    assert_float_equal(q_of(0.4, b, 3), 0.1 + 0.9 * 4 / 5, 1e-12);
}

static void test_quantile_sorts_and_merges_equal_bounds(void **state)
{
    (void)state;
    /* Two sources' buckets in no order: 0.1 holds 2, 0.2 holds 4, +Inf 6. */
    const struct mesh_quantile_bucket b[] = {B(INFINITY, 6), B(0.2, 4), B(0.1, 1), B(0.1, 1)};
    assert_float_equal(q_of(0.5, b, 4), 0.15, 1e-12);
}

static void test_quantile_forces_counts_monotonic(void **state)
{
    (void)state;
    /* 0.2's count went down (a racing scrape): it is raised to 5, as Prometheus does. */
    const struct mesh_quantile_bucket b[] = {B(0.1, 5), B(0.2, 3), B(INFINITY, 6)};
    assert_float_equal(q_of(0.5, b, 3), 0.1 * 3 / 5, 1e-12);
    assert_float_equal(q_of(0.9, b, 3), 0.2, 1e-12); /* rank 5.4: only +Inf reaches it */
}

static void test_quantile_edge_answers(void **state)
{
    (void)state;
    const struct mesh_quantile_bucket ok[] = {B(0.1, 10), B(INFINITY, 10)};
    assert_true(isnan(q_of(NAN, ok, 2)));
    assert_true(isinf(q_of(-0.1, ok, 2)) && q_of(-0.1, ok, 2) < 0);
    assert_true(isinf(q_of(1.1, ok, 2)) && q_of(1.1, ok, 2) > 0);
    /* q = 0 is the lower end of the first bucket that has anything */
    assert_float_equal(q_of(0.0, ok, 2), 0.0, 1e-12);

    const struct mesh_quantile_bucket no_inf[] = {B(0.1, 1), B(0.2, 2)};
    assert_true(isnan(q_of(0.5, no_inf, 2)));
    const struct mesh_quantile_bucket only_inf[] = {B(INFINITY, 3)};
    assert_true(isnan(q_of(0.5, only_inf, 1)));
    const struct mesh_quantile_bucket empty[] = {B(0.1, 0), B(INFINITY, 0)};
    assert_true(isnan(q_of(0.5, empty, 2)));
    assert_true(isnan(mesh_quantile(0.5, NULL, 0)));
    /* Prometheus' own quirk, kept: q = 0 over an empty first bucket divides 0 by 0. */
    const struct mesh_quantile_bucket later[] = {B(0.1, 0), B(0.2, 4), B(INFINITY, 4)};
    assert_true(isnan(q_of(0.0, later, 3)));
    /* A first bound at or below zero answers that bound, not an interpolation from 0. */
    const struct mesh_quantile_bucket neg[] = {B(-1, 2), B(0, 4), B(INFINITY, 4)};
    assert_float_equal(q_of(0.25, neg, 3), -1.0, 1e-12);
    assert_float_equal(q_of(0.75, neg, 3), -0.5, 1e-12);
}

/* The proxy's own estimate (/stats p50..p99) and this one agree on the proxy's buckets. */
static void test_quantile_agrees_with_the_proxy_stats_estimate(void **state)
{
    (void)state;
    uint64_t counts[MESH_STATS_BUCKETS] = {0};
    counts[2] = 7;  /* (1ms, 2.5ms] */
    counts[5] = 30; /* (10ms, 25ms] */
    counts[6] = 60; /* (25ms, 50ms] */
    counts[9] = 3;  /* (250ms, 500ms] */
    struct mesh_quantile_bucket b[MESH_STATS_BUCKETS];
    uint64_t cum = 0;
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++) {
        cum += counts[i];
        uint64_t us = mesh_stats_bucket_bound_us(i);
        b[i].upper_bound = us == UINT64_MAX ? INFINITY : (double)us / 1e6;
        b[i].count = (double)cum;
    }
    const double qs[] = {0.5, 0.9, 0.95, 0.99};
    for (size_t i = 0; i < 4; i++)
        assert_float_equal(q_of(qs[i], b, MESH_STATS_BUCKETS), mesh_stats_quantile(counts, qs[i]),
                           1e-12);
    /* p50: rank 50, 13 into the 60 of (25ms, 50ms] */
    assert_float_equal(q_of(0.5, b, MESH_STATS_BUCKETS), 0.025 + 0.025 * 13 / 60, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_interpolates_linearly_inside_the_bucket),
        cmocka_unit_test(test_quantile_in_the_inf_bucket_is_the_highest_finite_bound),
        cmocka_unit_test(test_quantile_sorts_and_merges_equal_bounds),
        cmocka_unit_test(test_quantile_forces_counts_monotonic),
        cmocka_unit_test(test_quantile_edge_answers),
        cmocka_unit_test(test_quantile_agrees_with_the_proxy_stats_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
