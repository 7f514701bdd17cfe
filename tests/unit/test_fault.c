/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/fault: compiled faults and percentage decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mesh/fault_injection.h"
#include "proxy/fault.h"

struct tally {
    unsigned delayed, aborted, both, any;
};

static struct tally decide_many(const struct mesh_fault_rt *rt, uint64_t seed, unsigned n)
{
    struct mesh_rng rng;
    mesh_rng_seed(&rng, seed);
    struct tally t = {0};
    for (unsigned k = 0; k < n; k++) {
        struct mesh_fault_decision d = {.delay_ms = 99, .abort_status = 99};
        bool any = mesh_fault_decide(rt, &rng, &d);
        assert_true(d.delay_ms == 0 || d.delay_ms == rt->delay_ms);
        assert_true(d.abort_status == 0 || d.abort_status == rt->abort_status);
        assert_int_equal(any, d.delay_ms > 0 || d.abort_status > 0);
        t.delayed += d.delay_ms > 0;
        t.aborted += d.abort_status > 0;
        t.both += d.delay_ms > 0 && d.abort_status > 0;
        t.any += any;
    }
    return t;
}

static void test_fault_unset_percentages_mean_100(void **state)
{
    (void)state;
    struct mesh_fault f = MESH_FAULT_INIT;
    f.delay_ms = 250;
    f.abort.http_status = 503;
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    assert_int_equal(rt.delay_ms, 250);
    assert_true(rt.delay_pct == 100.0);
    assert_int_equal(rt.abort_status, 503);
    assert_true(rt.abort_pct == 100.0);
    assert_true(mesh_fault_rt_active(&rt));
    struct tally t = decide_many(&rt, 1, 1000);
    assert_int_equal(t.both, 1000);
}

static void test_fault_off_parts_never_fire(void **state)
{
    (void)state;
    struct mesh_fault f = MESH_FAULT_INIT; /* no delay, no status: nothing, even at "100%" */
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    assert_true(rt.delay_pct == 0.0);
    assert_true(rt.abort_pct == 0.0);
    assert_false(mesh_fault_rt_active(&rt));
    assert_int_equal(decide_many(&rt, 2, 1000).any, 0);
}

static void test_fault_zero_percent_never(void **state)
{
    (void)state;
    struct mesh_fault f = {
        .delay_ms = 10, .delay_percentage = 0, .abort = {.http_status = 500, .percentage = 0}};
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    assert_false(mesh_fault_rt_active(&rt));
    assert_int_equal(decide_many(&rt, 3, 10000).any, 0);
}

static void test_fault_hundred_percent_always(void **state)
{
    (void)state;
    struct mesh_fault f = {.delay_ms = 0, .abort = {.http_status = 418, .percentage = 100}};
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    struct tally t = decide_many(&rt, 4, 10000);
    assert_int_equal(t.aborted, 10000);
    assert_int_equal(t.delayed, 0);

    f = (struct mesh_fault){.delay_ms = 5, .delay_percentage = 100, .abort = {.percentage = 30}};
    mesh_fault_rt_from_model(&rt, &f);
    t = decide_many(&rt, 5, 10000);
    assert_int_equal(t.delayed, 10000);
    assert_int_equal(t.aborted, 0);
}

/* The figure: within 2 points over 10,000 requests, for several seeds. */
static void test_fault_ten_percent_within_two_points(void **state)
{
    (void)state;
    struct mesh_fault f = {
        .delay_ms = 100, .delay_percentage = 10, .abort = {.http_status = 503, .percentage = 10}};
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    for (uint64_t seed = 10; seed < 20; seed++) {
        struct tally t = decide_many(&rt, seed, 10000);
        assert_true(t.delayed >= 800 && t.delayed <= 1200);
        assert_true(t.aborted >= 800 && t.aborted <= 1200);
        /* Independent draws: both in about 1% of requests. */
        assert_true(t.both >= 50 && t.both <= 150);
    }
}

static void test_fault_fractional_and_out_of_range_percentages(void **state)
{
    (void)state;
    struct mesh_fault f = {
        .delay_ms = 1, .delay_percentage = 0.5, .abort = {.http_status = 500, .percentage = 250}};
    struct mesh_fault_rt rt;
    mesh_fault_rt_from_model(&rt, &f);
    assert_true(rt.abort_pct == 100.0);
    struct tally t = decide_many(&rt, 21, 200000); /* 1000 expected, sigma ~32 */
    assert_true(t.delayed > 850 && t.delayed < 1150);
    assert_int_equal(t.aborted, 200000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_unset_percentages_mean_100),
        cmocka_unit_test(test_fault_off_parts_never_fire),
        cmocka_unit_test(test_fault_zero_percent_never),
        cmocka_unit_test(test_fault_hundred_percent_always),
        cmocka_unit_test(test_fault_ten_percent_within_two_points),
        cmocka_unit_test(test_fault_fractional_and_out_of_range_percentages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
