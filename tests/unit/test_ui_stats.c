/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the dashboard's stats reading (src/control/ui_stats.c): a /stats answer read
 * into per-(service, route) traffic and authorization counts, the same from the proxy's own
 * renderer, figures over two readings (rate, success, percentiles), restarts, and refusals of
 * what is not a meshproxy /stats answer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/ui_stats.h"
#include "core/strbuf.h"
#include "proxy/stats.h"

/* Cumulative buckets with every count at or above bound index `from`: n requests that all took
 * between bound from-1 and bound from. */
static char *buckets_json(unsigned from, unsigned n)
{
    static const char *const le[MESH_STATS_BUCKETS] = {
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
        "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf",
    };
    char *out = calloc(1, 1024);
    strcat(out, "{");
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++) {
        char item[64];
        snprintf(item, sizeof(item), "%s\"%s\":%u", i ? "," : "", le[i], i >= from ? n : 0);
        strcat(out, item);
    }
    strcat(out, "}");
    return out;
}

/* A /stats answer: payment-v1 via route primary on two endpoints with n200 answers 200, n503
 * answers 503 and n000 unanswered, all within (0.5 ms, 1 ms]; an inbound series; authz counts. */
static char *stats_doc(unsigned n200, unsigned n503, unsigned n000, unsigned allowed,
                       unsigned denied)
{
    unsigned total = n200 + n503 + n000;
    char *b = buckets_json(1, total), *bi = buckets_json(0, 4);
    char *doc = malloc(8192);
    snprintf(doc, 8192,
             "{\"requests\":["
             "{\"service\":\"payment-v1\",\"route\":\"primary\",\"endpoint\":\"127.0.0.1:1\","
             "\"code\":\"200\",\"value\":%u},"
             "{\"service\":\"payment-v1\",\"route\":\"primary\",\"endpoint\":\"127.0.0.1:2\","
             "\"code\":\"503\",\"value\":%u},"
             "{\"service\":\"payment-v1\",\"route\":\"primary\",\"endpoint\":\"\","
             "\"code\":\"000\",\"value\":%u},"
             "{\"service\":\"inbound|orders\",\"route\":\"inbound\",\"endpoint\":\"127.0.0.1:3\","
             "\"code\":\"404\",\"value\":4}],"
             "\"request_duration_seconds\":["
             "{\"service\":\"payment-v1\",\"route\":\"primary\",\"count\":%u,\"sum\":%g,"
             "\"p50\":null,\"p95\":null,\"p99\":null,\"buckets\":%s},"
             "{\"service\":\"inbound|orders\",\"route\":\"inbound\",\"count\":4,\"sum\":0.001,"
             "\"p50\":null,\"p95\":null,\"p99\":null,\"buckets\":%s}],"
             "\"authz_requests\":["
             "{\"source\":\"orders.default\",\"rule\":\"default/payment-security#0\","
             "\"result\":\"allow\",\"value\":%u},"
             "{\"source\":\"web.default\",\"rule\":\"default-deny\",\"result\":\"deny\","
             "\"value\":%u},"
             "{\"source\":\"web.default\",\"rule\":\"default-deny\",\"result\":\"allow\","
             "\"value\":0}],"
             "\"downstream_connections_accepted\":12}",
             n200, n503, n000, total, 0.00075 * total, b, bi, allowed, denied);
    free(b);
    free(bi);
    return doc;
}

static void parse_ok(const char *doc, uint64_t at_ms, struct mesh_ui_reading *r)
{
    char *why = NULL;
    enum mesh_err err = mesh_ui_reading_parse(doc, strlen(doc), at_ms, r, &why);
    if (err != MESH_OK)
        fail_msg("parse failed: %s", why ? why : "?");
    assert_null(why);
}

static void test_reads_traffic_and_authz(void **state)
{
    (void)state;
    struct mesh_ui_reading r = {0};
    char *doc = stats_doc(90, 7, 3, 40, 5);
    parse_ok(doc, 1234, &r);
    assert_int_equal(r.at_ms, 1234);
    assert_int_equal(r.n_traffic, 2);
    /* sorted by (service, route): "inbound|..." before "payment-v1" */
    assert_string_equal(r.traffic[0].service, "inbound|orders");
    const struct mesh_ui_traffic *t = mesh_ui_reading_find(&r, "payment-v1", "primary");
    assert_non_null(t);
    assert_int_equal(t->requests, 100);
    assert_int_equal(t->failures, 10); /* the 503s and the unanswered */
    assert_int_equal(t->buckets[0], 0);
    assert_int_equal(t->buckets[1], 100); /* per bucket, no longer cumulative */
    for (unsigned i = 2; i < MESH_STATS_BUCKETS; i++)
        assert_int_equal(t->buckets[i], 0);
    assert_true(fabs(t->sum_s - 0.075) < 1e-9);
    const struct mesh_ui_traffic *in = mesh_ui_reading_find(&r, "inbound|orders", "inbound");
    assert_non_null(in);
    assert_int_equal(in->requests, 4);
    assert_int_equal(in->failures, 0); /* a 404 is an answer */
    assert_null(mesh_ui_reading_find(&r, "payment-v1", "other"));

    assert_int_equal(r.n_authz, 2);
    const struct mesh_ui_authz *a =
        mesh_ui_reading_find_authz(&r, "orders.default", "default/payment-security#0");
    assert_non_null(a);
    assert_int_equal(a->allowed, 40);
    assert_int_equal(a->denied, 0);
    a = mesh_ui_reading_find_authz(&r, "web.default", "default-deny");
    assert_non_null(a);
    assert_int_equal(a->denied, 5);
    assert_int_equal(a->allowed, 0);
    mesh_ui_reading_clear(&r);
    free(doc);
}

/* What the proxy's own renderer prints is read back exactly. */
static void test_reads_the_proxy_renderer(void **state)
{
    (void)state;
    struct mesh_stats_shard *shard = NULL;
    assert_int_equal(mesh_stats_shard_new(0, &shard), MESH_OK);
    struct mesh_stats_requests *rs = NULL;
    assert_int_equal(mesh_stats_requests_get(shard, "payment-v2", "route-0", "127.0.0.1:9", &rs),
                     MESH_OK);
    struct mesh_stats_histogram *h = NULL;
    const char *labels[2] = {"payment-v2", "route-0"};
    assert_int_equal(mesh_stats_histogram_get(shard, MESH_STATS_REQUEST_DURATION, labels, &h),
                     MESH_OK);
    for (unsigned i = 0; i < 30; i++) {
        mesh_stats_requests_count(rs, i < 27 ? 200 : 502);
        mesh_stats_histogram_observe(h, i < 15 ? 300 : 20000); /* 0.3 ms or 20 ms */
    }
    struct mesh_stats_counter *c = NULL;
    const char *authz[3] = {"orders.default", "default-deny", "deny"};
    assert_int_equal(mesh_stats_counter_get(shard, MESH_STATS_AUTHZ, authz, &c), MESH_OK);
    mesh_stats_counter_add(c, 6);

    struct mesh_strbuf out;
    mesh_strbuf_init(&out, 1u << 20);
    struct mesh_stats_shard *shards[1] = {shard};
    assert_int_equal(mesh_stats_render_json(shards, 1, &out), MESH_OK);
    struct mesh_ui_reading r = {0};
    char *why = NULL;
    assert_int_equal(mesh_ui_reading_parse(out.data, out.len, 7, &r, &why), MESH_OK);
    const struct mesh_ui_traffic *t = mesh_ui_reading_find(&r, "payment-v2", "route-0");
    assert_non_null(t);
    assert_int_equal(t->requests, 30);
    assert_int_equal(t->failures, 3);
    assert_int_equal(t->buckets[0], 15); /* le 0.0005 */
    assert_int_equal(t->buckets[5], 15); /* le 0.025 */
    const struct mesh_ui_authz *a =
        mesh_ui_reading_find_authz(&r, "orders.default", "default-deny");
    assert_non_null(a);
    assert_int_equal(a->denied, 6);

    /* The figures' percentiles are the proxy's own estimate of the same histogram. */
    struct mesh_ui_figures f = {0};
    mesh_ui_figures_add(&f, t, NULL, 0);
    assert_true(fabs(mesh_ui_figures_quantile(&f, 0.5) - mesh_stats_quantile(t->buckets, 0.5)) <
                1e-12);
    mesh_ui_reading_clear(&r);
    mesh_strbuf_free(&out);
    mesh_stats_shard_free(shard);
}

static void test_figures_over_two_readings(void **state)
{
    (void)state;
    struct mesh_ui_reading before = {0}, after = {0}, other_before = {0}, other_after = {0};
    char *d1 = stats_doc(10, 0, 0, 1, 1), *d2 = stats_doc(100, 10, 0, 50, 4);
    parse_ok(d1, 1000, &before);
    parse_ok(d2, 3000, &after);
    assert_false(mesh_ui_reading_restarted(&after, &before));

    struct mesh_ui_figures f = {0};
    const char *svc = "payment-v1", *route = "primary";
    mesh_ui_figures_add(&f, mesh_ui_reading_find(&after, svc, route),
                        mesh_ui_reading_find(&before, svc, route), after.at_ms - before.at_ms);
    assert_int_equal(f.requests, 100); /* 110 - 10 */
    assert_int_equal(f.failures, 10);
    assert_true(f.has_rate);
    assert_true(fabs(f.rps - 50.0) < 1e-9); /* 100 requests in 2 s */
    assert_true(fabs(mesh_ui_figures_success_rate(&f) - 0.9) < 1e-12);
    /* Every request in (0.5 ms, 1 ms]: linear inside the bucket. */
    assert_true(fabs(mesh_ui_figures_quantile(&f, 0.50) - 0.00075) < 1e-12);
    assert_true(fabs(mesh_ui_figures_quantile(&f, 0.99) - 0.000995) < 1e-12);

    /* A second proxy over another span: rates add up, each over its own span. */
    char *d3 = stats_doc(0, 0, 0, 0, 0), *d4 = stats_doc(40, 0, 0, 0, 0);
    parse_ok(d3, 0, &other_before);
    parse_ok(d4, 4000, &other_after);
    mesh_ui_figures_add(&f, mesh_ui_reading_find(&other_after, svc, route),
                        mesh_ui_reading_find(&other_before, svc, route), 4000);
    assert_int_equal(f.requests, 140);
    assert_true(fabs(f.rps - 60.0) < 1e-9); /* 50 + 40 / 4 s */

    /* Since start (no earlier reading): counts from zero, no rate. */
    struct mesh_ui_figures total = {0};
    mesh_ui_figures_add(&total, mesh_ui_reading_find(&after, svc, route), NULL, 0);
    assert_int_equal(total.requests, 110);
    assert_false(total.has_rate);
    /* A series that appeared after the earlier reading counts from zero over the span. */
    struct mesh_ui_figures fresh = {0};
    mesh_ui_figures_add(&fresh, mesh_ui_reading_find(&after, svc, route), NULL, 2000);
    assert_true(fresh.has_rate);
    assert_true(fabs(fresh.rps - 55.0) < 1e-9);

    struct mesh_ui_figures none = {0};
    assert_true(isnan(mesh_ui_figures_success_rate(&none)));
    assert_true(isnan(mesh_ui_figures_quantile(&none, 0.5)));

    mesh_ui_reading_clear(&before);
    mesh_ui_reading_clear(&after);
    mesh_ui_reading_clear(&other_before);
    mesh_ui_reading_clear(&other_after);
    free(d1);
    free(d2);
    free(d3);
    free(d4);
}

static void test_restart_is_detected(void **state)
{
    (void)state;
    struct mesh_ui_reading a = {0}, b = {0}, c = {0}, d = {0};
    char *d1 = stats_doc(100, 0, 0, 10, 3), *d2 = stats_doc(5, 0, 0, 10, 3);
    char *d3 = stats_doc(100, 0, 0, 10, 1);
    const char *empty = "{\"requests\":[]}";
    parse_ok(d1, 1, &a);
    parse_ok(d2, 2, &b);
    parse_ok(d3, 3, &c);
    parse_ok(empty, 4, &d);
    assert_true(mesh_ui_reading_restarted(&b, &a));  /* requests went down */
    assert_true(mesh_ui_reading_restarted(&c, &a));  /* a denial count went down */
    assert_true(mesh_ui_reading_restarted(&d, &a));  /* series vanished */
    assert_false(mesh_ui_reading_restarted(&a, &d)); /* new series are growth */
    assert_false(mesh_ui_reading_restarted(&a, &a));
    mesh_ui_reading_clear(&a);
    mesh_ui_reading_clear(&b);
    mesh_ui_reading_clear(&c);
    mesh_ui_reading_clear(&d);
    free(d1);
    free(d2);
    free(d3);
}

static void refused(const char *doc, const char *want)
{
    struct mesh_ui_reading r = {0};
    char *why = NULL;
    assert_int_equal(mesh_ui_reading_parse(doc, strlen(doc), 0, &r, &why), MESH_E_INVALID);
    assert_non_null(why);
    if (!strstr(why, want))
        fail_msg("message \"%s\" does not say \"%s\"", why, want);
    assert_int_equal(r.n_traffic, 0);
    assert_null(r.traffic);
    free(why);
}

static void test_refuses_what_is_not_proxy_stats(void **state)
{
    (void)state;
    refused("<html>", "not JSON");
    refused("{\"status\":\"ok\"}", "no \"requests\" array");
    refused("{\"requests\":[{\"service\":\"a\",\"route\":\"r\",\"value\":1}]}",
            "requests[0]: needs service, route, code");
    refused("{\"requests\":[{\"service\":\"a\",\"route\":\"r\",\"code\":\"200\",\"value\":-1}]}",
            "requests[0]");
    char *b = buckets_json(0, 1);
    char doc[2048];
    /* a bound meshproxy does not have */
    snprintf(doc, sizeof(doc),
             "{\"requests\":[],\"request_duration_seconds\":[{\"service\":\"a\",\"route\":\"r\","
             "\"sum\":0,\"buckets\":{\"0.3\":1}}]}");
    refused(doc, "request_duration_seconds[0]: buckets: not meshproxy's");
    /* counts that go down are not cumulative */
    snprintf(doc, sizeof(doc),
             "{\"requests\":[],\"request_duration_seconds\":[{\"service\":\"a\",\"route\":\"r\","
             "\"sum\":0,\"buckets\":%s}]}",
             b);
    char *p = strstr(doc, "\"+Inf\":1");
    assert_non_null(p);
    p[7] = '0';
    refused(doc, "not meshproxy's cumulative buckets");
    refused("{\"requests\":[],\"authz_requests\":[{\"source\":\"x\",\"value\":1}]}",
            "authz_requests[0]: needs source, rule, result and value");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_traffic_and_authz),
        cmocka_unit_test(test_reads_the_proxy_renderer),
        cmocka_unit_test(test_figures_over_two_readings),
        cmocka_unit_test(test_restart_is_detected),
        cmocka_unit_test(test_refuses_what_is_not_proxy_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
