/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/outlier: ejection threshold, growth, cap, sweep and races. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mesh/resource.h"
#include "proxy/outlier.h"

static struct mesh_outlier_config cfg_with(uint32_t errors, uint64_t base_ms, uint32_t max_pct)
{
    struct mesh_outlier_config cfg;
    mesh_outlier_config_from_detection(&cfg, NULL);
    cfg.consecutive_errors = errors;
    cfg.base_ejection_time_ms = base_ms;
    cfg.max_ejection_percent = max_pct;
    return cfg;
}

/* Reports `k` failures; returns how many of them ejected. */
static int fail_times(struct mesh_outlier_cluster *c, const struct mesh_outlier_config *cfg,
                      size_t i, int k, uint64_t now)
{
    int ejected = 0;
    for (int j = 0; j < k; j++)
        ejected += mesh_outlier_report(c, cfg, i, true, now);
    return ejected;
}

static void test_outlier_config_defaults_and_overrides(void **state)
{
    (void)state;
    struct mesh_outlier_config cfg;
    mesh_outlier_config_from_detection(&cfg, NULL);
    assert_int_equal(cfg.consecutive_errors, 5);
    assert_int_equal(cfg.interval_ms, 10000);
    assert_int_equal(cfg.base_ejection_time_ms, 30000);
    assert_int_equal(cfg.max_ejection_percent, 50);

    struct mesh_outlier_detection d = {.max_ejection_percent = MESH_UNSET};
    mesh_outlier_config_from_detection(&cfg, &d);
    assert_int_equal(cfg.consecutive_errors, 5);
    assert_int_equal(cfg.max_ejection_percent, 50);

    d = (struct mesh_outlier_detection){.consecutive_errors = 3,
                                        .interval_ms = 1000,
                                        .base_ejection_time_ms = 2000,
                                        .max_ejection_percent = 100};
    mesh_outlier_config_from_detection(&cfg, &d);
    assert_int_equal(cfg.consecutive_errors, 3);
    assert_int_equal(cfg.interval_ms, 1000);
    assert_int_equal(cfg.base_ejection_time_ms, 2000);
    assert_int_equal(cfg.max_ejection_percent, 100);

    d.max_ejection_percent = 0; /* explicit: never eject */
    mesh_outlier_config_from_detection(&cfg, &d);
    assert_int_equal(cfg.max_ejection_percent, 0);
}

static void test_outlier_ejects_at_threshold(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 4), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(3, 1000, 50);
    assert_int_equal(fail_times(&c, &cfg, 2, 2, 100), 0);
    assert_false(mesh_outlier_ejected(&c, 2));
    assert_true(mesh_outlier_report(&c, &cfg, 2, true, 100));
    assert_true(mesh_outlier_ejected(&c, 2));
    assert_false(mesh_outlier_ejected(&c, 1));
    assert_int_equal(mesh_outlier_ejected_count(&c), 1);
    assert_int_equal(mesh_outlier_times_ejected(&c, 2), 1);
    /* More failures (requests that were in flight) do not eject it again. */
    assert_int_equal(fail_times(&c, &cfg, 2, 10, 200), 0);
    assert_int_equal(mesh_outlier_ejected_count(&c), 1);
    assert_int_equal(mesh_outlier_times_ejected(&c, 2), 1);
    /* Out-of-range indexes are harmless. */
    assert_false(mesh_outlier_report(&c, &cfg, 4, true, 100));
    assert_false(mesh_outlier_ejected(&c, 99));
    assert_int_equal(mesh_outlier_times_ejected(&c, 99), 0);
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_success_resets_the_run(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 2), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(3, 1000, 50);
    for (int k = 0; k < 100; k++) {
        assert_int_equal(fail_times(&c, &cfg, 0, 2, 10), 0);
        assert_false(mesh_outlier_report(&c, &cfg, 0, false, 10));
    }
    assert_false(mesh_outlier_ejected(&c, 0));
    assert_int_equal(fail_times(&c, &cfg, 0, 3, 10), 1);
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_sweep_returns_expired_only(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 4), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(1, 1000, 50);
    assert_true(mesh_outlier_report(&c, &cfg, 0, true, 0));
    assert_true(mesh_outlier_report(&c, &cfg, 1, true, 500));
    assert_int_equal(mesh_outlier_sweep(&c, 999), 0);
    assert_true(mesh_outlier_ejected(&c, 0));
    assert_int_equal(mesh_outlier_sweep(&c, 1000), 1);
    assert_false(mesh_outlier_ejected(&c, 0));
    assert_true(mesh_outlier_ejected(&c, 1));
    assert_int_equal(mesh_outlier_ejected_count(&c), 1);
    assert_int_equal(mesh_outlier_sweep(&c, 1499), 0);
    assert_int_equal(mesh_outlier_sweep(&c, 1500), 1);
    assert_int_equal(mesh_outlier_ejected_count(&c), 0);
    assert_int_equal(mesh_outlier_sweep(&c, 100000), 0);
    mesh_outlier_cluster_destroy(&c);
}

/* Failures of requests in flight during the ejection do not count after the return. */
static void test_outlier_returned_endpoint_starts_a_fresh_run(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 2), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(3, 1000, 50);
    assert_int_equal(fail_times(&c, &cfg, 0, 3, 0), 1);
    assert_int_equal(fail_times(&c, &cfg, 0, 2, 10), 0);
    assert_int_equal(mesh_outlier_sweep(&c, 1000), 1);
    assert_int_equal(fail_times(&c, &cfg, 0, 2, 1001), 0);
    assert_false(mesh_outlier_ejected(&c, 0));
    assert_int_equal(fail_times(&c, &cfg, 0, 1, 1002), 1);
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_ejection_time_grows_with_times_ejected(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 2), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(2, 1000, 50);
    uint64_t now = 0;
    for (uint32_t times = 1; times <= 4; times++) {
        assert_int_equal(fail_times(&c, &cfg, 0, 2, now), 1);
        assert_int_equal(mesh_outlier_times_ejected(&c, 0), times);
        uint64_t until = now + 1000u * times;
        assert_int_equal(mesh_outlier_sweep(&c, until - 1), 0);
        assert_true(mesh_outlier_ejected(&c, 0));
        assert_int_equal(mesh_outlier_sweep(&c, until), 1);
        assert_false(mesh_outlier_ejected(&c, 0));
        now = until + 7;
    }
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_huge_ejection_saturates(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 2), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(1, UINT64_MAX / 2 + 1, 50);
    const uint64_t base = UINT64_MAX / 2 + 1;
    assert_true(mesh_outlier_report(&c, &cfg, 0, true, 5));
    assert_int_equal(mesh_outlier_sweep(&c, base + 4), 0);
    assert_int_equal(mesh_outlier_sweep(&c, base + 5), 1);
    /* The second ejection, 2x a huge base, would wrap to a short one without saturation. */
    assert_true(mesh_outlier_report(&c, &cfg, 0, true, 10));
    assert_int_equal(mesh_outlier_sweep(&c, 11), 0);
    assert_int_equal(mesh_outlier_sweep(&c, UINT64_MAX - 1), 0);
    assert_int_equal(mesh_outlier_sweep(&c, UINT64_MAX), 1);
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_never_more_than_max_share(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 4), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(1, 1000, 50);
    int ejected = 0;
    for (size_t i = 0; i < 4; i++)
        ejected += fail_times(&c, &cfg, i, 5, 0);
    assert_int_equal(ejected, 2);
    assert_int_equal(mesh_outlier_ejected_count(&c), 2);
    assert_true(mesh_outlier_ejected(&c, 0));
    assert_true(mesh_outlier_ejected(&c, 1));
    assert_false(mesh_outlier_ejected(&c, 2));
    assert_false(mesh_outlier_ejected(&c, 3));
    assert_int_equal(mesh_outlier_times_ejected(&c, 2), 0);
    /* Once one returns, the next failure of a refused endpoint ejects it. */
    assert_int_equal(mesh_outlier_sweep(&c, 1000), 2);
    assert_true(mesh_outlier_report(&c, &cfg, 2, true, 1000));
    mesh_outlier_cluster_destroy(&c);

    /* 3 endpoints at 50%: one may go (2/3 would be over half). */
    assert_int_equal(mesh_outlier_cluster_init(&c, 3), MESH_OK);
    ejected = 0;
    for (size_t i = 0; i < 3; i++)
        ejected += fail_times(&c, &cfg, i, 3, 0);
    assert_int_equal(ejected, 1);
    mesh_outlier_cluster_destroy(&c);

    /* 0% never ejects. */
    const struct mesh_outlier_config none = cfg_with(1, 1000, 0);
    assert_int_equal(mesh_outlier_cluster_init(&c, 10), MESH_OK);
    assert_int_equal(fail_times(&c, &none, 0, 10, 0), 0);
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_single_endpoint_needs_100_percent(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 1), MESH_OK);
    const struct mesh_outlier_config half = cfg_with(1, 1000, 50);
    const struct mesh_outlier_config almost = cfg_with(1, 1000, 99);
    const struct mesh_outlier_config all = cfg_with(1, 1000, 100);
    assert_int_equal(fail_times(&c, &half, 0, 10, 0), 0);
    assert_int_equal(fail_times(&c, &almost, 0, 10, 0), 0);
    assert_false(mesh_outlier_ejected(&c, 0));
    assert_true(mesh_outlier_report(&c, &all, 0, true, 0));
    assert_true(mesh_outlier_ejected(&c, 0));
    mesh_outlier_cluster_destroy(&c);
}

static void test_outlier_empty_cluster(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 0), MESH_OK);
    assert_int_equal(mesh_outlier_sweep(&c, 1), 0);
    assert_false(mesh_outlier_ejected(&c, 0));
    mesh_outlier_cluster_destroy(&c);
    mesh_outlier_cluster_destroy(&c); /* twice is fine */
}

#define N_REPORTERS 4
#define REPORTS     20000

struct reporter {
    struct mesh_outlier_cluster *c;
    const struct mesh_outlier_config *cfg;
    size_t endpoint;
    atomic_bool *go;
    unsigned ejections;
};

static void *reporter_main(void *arg)
{
    struct reporter *r = arg;
    while (!atomic_load(r->go))
        ;
    for (int k = 0; k < REPORTS; k++)
        r->ejections += mesh_outlier_report(r->c, r->cfg, r->endpoint, true, 1);
    return NULL;
}

static unsigned race_reporters(struct mesh_outlier_cluster *c,
                               const struct mesh_outlier_config *cfg, const size_t *endpoints)
{
    atomic_bool go = false;
    struct reporter r[N_REPORTERS];
    pthread_t t[N_REPORTERS];
    for (int i = 0; i < N_REPORTERS; i++) {
        r[i] = (struct reporter){.c = c, .cfg = cfg, .endpoint = endpoints[i], .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, reporter_main, &r[i]), 0);
    }
    atomic_store(&go, true);
    unsigned ejections = 0;
    for (int i = 0; i < N_REPORTERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        ejections += r[i].ejections;
    }
    return ejections;
}

static void test_outlier_concurrent_reports_eject_once(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 4), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(5, 1000, 50);
    const size_t same[N_REPORTERS] = {3, 3, 3, 3};
    assert_int_equal(race_reporters(&c, &cfg, same), 1);
    assert_int_equal(mesh_outlier_times_ejected(&c, 3), 1);
    assert_int_equal(mesh_outlier_ejected_count(&c), 1);
    mesh_outlier_cluster_destroy(&c);
}

/* Four endpoints failing at once in a cluster of four: exactly two may go. */
static void test_outlier_concurrent_ejections_respect_the_cap(void **state)
{
    (void)state;
    struct mesh_outlier_cluster c;
    assert_int_equal(mesh_outlier_cluster_init(&c, 4), MESH_OK);
    const struct mesh_outlier_config cfg = cfg_with(1, 1000, 50);
    const size_t each[N_REPORTERS] = {0, 1, 2, 3};
    assert_int_equal(race_reporters(&c, &cfg, each), 2);
    assert_int_equal(mesh_outlier_ejected_count(&c), 2);
    int out = 0;
    for (size_t i = 0; i < 4; i++)
        out += mesh_outlier_ejected(&c, i);
    assert_int_equal(out, 2);
    mesh_outlier_cluster_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outlier_config_defaults_and_overrides),
        cmocka_unit_test(test_outlier_ejects_at_threshold),
        cmocka_unit_test(test_outlier_success_resets_the_run),
        cmocka_unit_test(test_outlier_sweep_returns_expired_only),
        cmocka_unit_test(test_outlier_returned_endpoint_starts_a_fresh_run),
        cmocka_unit_test(test_outlier_ejection_time_grows_with_times_ejected),
        cmocka_unit_test(test_outlier_huge_ejection_saturates),
        cmocka_unit_test(test_outlier_never_more_than_max_share),
        cmocka_unit_test(test_outlier_single_endpoint_needs_100_percent),
        cmocka_unit_test(test_outlier_empty_cluster),
        cmocka_unit_test(test_outlier_concurrent_reports_eject_once),
        cmocka_unit_test(test_outlier_concurrent_ejections_respect_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
