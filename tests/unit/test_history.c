/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/history: readings of the request counters and latency buckets, and the
 * traffic of a window as /stats/window answers it (meshctl stat's numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proxy/history.h"
#include "proxy/stats.h"

static struct mesh_stats_shard *new_shard(void)
{
    struct mesh_stats_shard *sh = NULL;
    assert_int_equal(mesh_stats_shard_new(0, &sh), MESH_OK);
    return sh;
}

/* n requests to service answered code, each taking us microseconds, counted as a worker does. */
static void traffic(struct mesh_stats_shard *sh, const char *service, unsigned code, unsigned n,
                    uint64_t us)
{
    struct mesh_stats_requests *rs = NULL;
    struct mesh_stats_histogram *h = NULL;
    const char *labels[2] = {service, "route"};
    assert_int_equal(mesh_stats_requests_get(sh, service, "route", "127.0.0.1:1", &rs), MESH_OK);
    assert_int_equal(mesh_stats_histogram_get(sh, MESH_STATS_REQUEST_DURATION, labels, &h),
                     MESH_OK);
    for (unsigned i = 0; i < n; i++) {
        mesh_stats_requests_count(rs, code);
        mesh_stats_histogram_observe(h, us);
    }
}

static const char *ns_of(void *ctx, const char *service)
{
    (void)ctx;
    if (strcmp(service, "inbound|pay") == 0)
        return "shop";
    return strcmp(service, "unknown") == 0 ? NULL : "default";
}

/* The window's answer, decoded. */
static json_t *window(struct mesh_history *h, struct mesh_stats_shard **shards, size_t n,
                      uint64_t now, uint64_t window_ms)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_history_render_window(h, shards, n, now, window_ms, ns_of, NULL, &sb),
                     MESH_OK);
    json_error_t err;
    json_t *j = json_loads(sb.data, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %s", err.text, sb.data);
    mesh_strbuf_free(&sb);
    return j;
}

static json_t *service(json_t *answer, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(answer, "services"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "service")), name) == 0)
            return s;
    }
    fail_msg("no service %s in the answer", name);
    return NULL;
}

static long long num(json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

static double seconds(json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

static long long bucket(json_t *svc, const char *le)
{
    return (long long)json_integer_value(json_object_get(json_object_get(svc, "buckets"), le));
}

static void test_history_window_is_the_difference_since_the_closest_reading(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[1] = {new_shard()};
    struct mesh_history *h = NULL;
    assert_int_equal(mesh_history_new(1000, &h), MESH_OK);

    traffic(sh[0], "pay", 200, 7, 30000);
    traffic(sh[0], "pay", 503, 3, 30000);
    mesh_history_sample(h, sh, 1, 2000);
    traffic(sh[0], "pay", 200, 5, 700);
    mesh_history_sample(h, sh, 1, 3000);
    assert_int_equal(mesh_history_samples(h), 2);

    /* 1s back from 3400 is 2400: the reading at 2000 is closest. Since then: the 5 fast ones. */
    json_t *j = window(h, sh, 1, 3400, 1000);
    assert_float_equal(seconds(j, "window_seconds"), 1.0, 1e-9);
    assert_float_equal(seconds(j, "span_seconds"), 1.4, 1e-9);
    assert_float_equal(seconds(j, "uptime_seconds"), 2.4, 1e-9);
    assert_true(json_is_false(json_object_get(j, "from_start")));
    assert_int_equal(num(j, "sample_interval_seconds"), 1);
    assert_int_equal(num(j, "services_dropped"), 0);
    json_t *s = service(j, "pay");
    assert_int_equal(num(s, "requests"), 5);
    assert_int_equal(num(s, "failures"), 0);
    assert_string_equal(json_string_value(json_object_get(s, "direction")), "outbound");
    assert_string_equal(json_string_value(json_object_get(s, "namespace")), "default");
    assert_int_equal(bucket(s, "0.0005"), 0);
    assert_int_equal(bucket(s, "0.001"), 5);
    assert_int_equal(bucket(s, "+Inf"), 5);
    assert_int_equal(json_object_size(json_object_get(s, "buckets")), MESH_STATS_BUCKETS);
    json_decref(j);

    /* A window past the uptime starts at the process start, when every counter was zero. */
    j = window(h, sh, 1, 3400, 60000);
    assert_true(json_is_true(json_object_get(j, "from_start")));
    assert_float_equal(seconds(j, "span_seconds"), 2.4, 1e-9);
    s = service(j, "pay");
    assert_int_equal(num(s, "requests"), 15);
    assert_int_equal(num(s, "failures"), 3);
    assert_int_equal(bucket(s, "0.001"), 5);
    assert_int_equal(bucket(s, "0.025"), 5);
    assert_int_equal(bucket(s, "0.05"), 15);
    assert_int_equal(bucket(s, "10"), 15);
    json_decref(j);

    /* Nothing since the last reading: a window that starts there has no traffic. */
    j = window(h, sh, 1, 3800, 1000);
    s = service(j, "pay");
    assert_float_equal(seconds(j, "span_seconds"), 0.8, 1e-9);
    assert_int_equal(num(s, "requests"), 0);
    assert_int_equal(bucket(s, "+Inf"), 0);
    json_decref(j);

    /* Out of range windows are refused, with nothing written. */
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_history_render_window(h, sh, 1, 3400, 0, NULL, NULL, &sb),
                     MESH_E_INVALID);
    assert_int_equal(
        mesh_history_render_window(h, sh, 1, 3400, MESH_HISTORY_MAX_WINDOW_MS + 1, NULL, NULL, &sb),
        MESH_E_INVALID);
    assert_int_equal(sb.len, 0);
    mesh_history_free(h);
    mesh_stats_shard_free(sh[0]);
}

static void test_history_sums_shards_and_counts_failures_by_code(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[3] = {new_shard(), NULL, new_shard()};
    struct mesh_history *h = NULL;
    assert_int_equal(mesh_history_new(0, &h), MESH_OK);
    traffic(sh[0], "inbound|pay", 200, 4, 100);
    traffic(sh[2], "inbound|pay", 500, 2, 100);
    traffic(sh[2], "inbound|pay", 404, 3, 100); /* a client's error, not the service's */
    traffic(sh[2], "inbound|pay", 499, 1, 100);
    traffic(sh[0], "inbound|pay", 0, 2, 100); /* no response at all ("000") */
    traffic(sh[0], "unknown", 200, 1, 100);
    json_t *j = window(h, sh, 3, 500, 60000);
    json_t *s = service(j, "inbound|pay");
    assert_int_equal(num(s, "requests"), 12);
    assert_int_equal(num(s, "failures"), 4);
    assert_string_equal(json_string_value(json_object_get(s, "direction")), "inbound");
    assert_string_equal(json_string_value(json_object_get(s, "namespace")), "shop");
    assert_true(json_is_null(json_object_get(service(j, "unknown"), "namespace")));
    /* Sorted by name. */
    json_t *list = json_object_get(j, "services");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "service")),
                        "inbound|pay");
    json_decref(j);
    mesh_history_free(h);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[2]);
}

/* A reading a second for ten minutes: windows up to a minute end on a one-second reading, longer
 * ones on a ten-second one; either way the span says what was covered and the count matches it
 * exactly. */
static void test_history_long_windows_use_the_coarse_readings(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[1] = {new_shard()};
    struct mesh_history *h = NULL;
    assert_int_equal(mesh_history_new(0, &h), MESH_OK);
    const unsigned n = 700;
    /* One request just before each reading: reading i (at (i + 1) s) has i + 1. */
    for (unsigned i = 0; i < n; i++) {
        traffic(sh[0], "pay", 200, 1, 100);
        mesh_history_sample(h, sh, 1, (uint64_t)(i + 1) * 1000);
    }
    uint64_t now = (uint64_t)n * 1000 + 300;
    const uint64_t windows[] = {1000, 5000, 59000, 60000, 120000, 300000, 590000};
    for (size_t k = 0; k < sizeof(windows) / sizeof(windows[0]); k++) {
        json_t *j = window(h, sh, 1, now, windows[k]);
        double span = seconds(j, "span_seconds");
        /* The reading is at a whole second; how far it may be from the target depends on the
         * readings kept: one a second for a minute, one every ten seconds before. */
        double slack = windows[k] <= 60000 ? 0.5 : 5.0 + 0.5;
        if (span < (double)windows[k] / 1000 - slack || span > (double)windows[k] / 1000 + slack)
            fail_msg("window %llu ms: span %.3f s", (unsigned long long)windows[k], span);
        uint64_t base_ms = now - (uint64_t)(span * 1000 + 0.5);
        long long want = (long long)n - (long long)(base_ms / 1000); /* readings after it */
        assert_int_equal(num(service(j, "pay"), "requests"), want);
        assert_true(json_is_false(json_object_get(j, "from_start")));
        json_decref(j);
    }
    /* Past the ten minutes kept: the oldest reading still there. */
    json_t *j = window(h, sh, 1, now, MESH_HISTORY_MAX_WINDOW_MS);
    assert_true(seconds(j, "span_seconds") <= 600.3 && seconds(j, "span_seconds") >= 590);
    json_decref(j);
    mesh_history_free(h);
    mesh_stats_shard_free(sh[0]);
}

static void test_history_keeps_a_bounded_number_of_services(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[1] = {new_shard()};
    struct mesh_history *h = NULL;
    assert_int_equal(mesh_history_new(0, &h), MESH_OK);
    char name[32];
    for (unsigned i = 0; i < MESH_HISTORY_MAX_SERVICES + 10; i++) {
        snprintf(name, sizeof(name), "svc-%04u", i);
        traffic(sh[0], name, 200, 1, 100);
    }
    mesh_history_sample(h, sh, 1, 1000);
    json_t *j = window(h, sh, 1, 1500, 60000);
    assert_int_equal(json_array_size(json_object_get(j, "services")), MESH_HISTORY_MAX_SERVICES);
    assert_true(num(j, "services_dropped") >= 10);
    json_decref(j);
    mesh_history_free(h);
    mesh_stats_shard_free(sh[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_window_is_the_difference_since_the_closest_reading),
        cmocka_unit_test(test_history_sums_shards_and_counts_failures_by_code),
        cmocka_unit_test(test_history_long_windows_use_the_coarse_readings),
        cmocka_unit_test(test_history_keeps_a_bounded_number_of_services),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
