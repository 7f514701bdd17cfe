/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/tap: the /tap query filter, the JSON line of an event, and the
 * per-worker ring with a producer and a consumer thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>

#include "proxy/tap.h"

/* ---- the filter ---- */

static enum mesh_err parse(const char *query, struct mesh_tap_filter *f, char *why, size_t len)
{
    return mesh_tap_filter_parse(mesh_slice_make(query, strlen(query)), f, why, len);
}

static void test_tap_filter_defaults(void **state)
{
    (void)state;
    struct mesh_tap_filter f;
    char why[200] = "";
    assert_int_equal(parse("", &f, why, sizeof(why)), MESH_OK);
    assert_string_equal(f.path, "");
    assert_string_equal(f.method, "");
    assert_int_equal(f.max_events, MESH_TAP_MAX_EVENTS);
    assert_int_equal(f.timeout_ms, MESH_TAP_DEFAULT_TIMEOUT_MS);
    /* Empty pairs and empty values are fine: "path=" is every path. */
    assert_int_equal(parse("&&path=&", &f, why, sizeof(why)), MESH_OK);
    assert_string_equal(f.path, "");
}

static void test_tap_filter_reads_every_parameter(void **state)
{
    (void)state;
    struct mesh_tap_filter f;
    char why[200] = "";
    assert_int_equal(
        parse("path=%2Fapi%2fv1%20x&method=POST&max=5&timeout=2s", &f, why, sizeof(why)), MESH_OK);
    assert_string_equal(f.path, "/api/v1 x");
    assert_string_equal(f.method, "POST");
    assert_int_equal(f.max_events, 5);
    assert_int_equal(f.timeout_ms, 2000);
    /* '+' is a plus in a path, not a space; the last value of a repeated parameter wins. */
    assert_int_equal(parse("path=/a&path=/a+b&max=100000&timeout=1h", &f, why, sizeof(why)),
                     MESH_OK);
    assert_string_equal(f.path, "/a+b");
    assert_int_equal(f.max_events, MESH_TAP_MAX_EVENTS);
    assert_int_equal(f.timeout_ms, 3600000);
}

static void expect_refused(const char *query, const char *says)
{
    struct mesh_tap_filter f;
    char why[300] = "";
    assert_int_equal(parse(query, &f, why, sizeof(why)), MESH_E_INVALID);
    if (!strstr(why, says))
        fail_msg("%s: \"%s\" does not say \"%s\"", query, why, says);
}

static void test_tap_filter_refuses_bad_values(void **state)
{
    (void)state;
    expect_refused("path=api", "starts with '/'");
    expect_refused("path=%zz", "path: a bad %-escape");
    expect_refused("path=/%2", "path: a bad %-escape");
    expect_refused("path=/a%00b", "path: a bad %-escape");
    char longpath[400] = "path=/";
    memset(longpath + 6, 'x', 300);
    expect_refused(longpath, "longer than 255 bytes");
    expect_refused("method=GE%20T", "not an HTTP method token");
    expect_refused("method=ABCDEFGHIJKLMNOPQ", "longer than 15 characters");
    expect_refused("max=0", "max \"0\": a count of events from 1 to 100000");
    expect_refused("max=100001", "max \"100001\"");
    expect_refused("max=-1", "max \"-1\"");
    expect_refused("max=99999999999999999999999", "max \"");
    expect_refused("max=", "max \"\"");
    expect_refused("timeout=2h", "from 1ms to 1h");
    expect_refused("timeout=soon", "timeout: invalid duration \"soon\"");
    expect_refused("host=x", "unknown parameter \"host\" (known: path, method, max, timeout)");
}

static struct mesh_tap_event event(const char *method, const char *path)
{
    struct mesh_tap_event ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.method, sizeof(ev.method), "%s", method);
    snprintf(ev.path, sizeof(ev.path), "%s", path);
    return ev;
}

static void test_tap_filter_matches_path_prefix_and_exact_method(void **state)
{
    (void)state;
    struct mesh_tap_filter f;
    char why[200];
    assert_int_equal(parse("path=/tapped", &f, why, sizeof(why)), MESH_OK);
    struct mesh_tap_event a = event("GET", "/tapped"), b = event("POST", "/tapped/x/y"),
                          c = event("GET", "/other/tapped"), d = event("GET", "/tappe"),
                          e = event("GET", "/");
    assert_true(mesh_tap_filter_match(&f, &a));
    assert_true(mesh_tap_filter_match(&f, &b));
    assert_false(mesh_tap_filter_match(&f, &c));
    assert_false(mesh_tap_filter_match(&f, &d));
    assert_false(mesh_tap_filter_match(&f, &e));

    assert_int_equal(parse("method=POST", &f, why, sizeof(why)), MESH_OK);
    assert_false(mesh_tap_filter_match(&f, &a));
    assert_true(mesh_tap_filter_match(&f, &b));
    struct mesh_tap_event lower = event("post", "/tapped");
    assert_false(mesh_tap_filter_match(&f, &lower)); /* methods are case-sensitive */

    assert_int_equal(parse("method=GET&path=/tapped/", &f, why, sizeof(why)), MESH_OK);
    assert_false(mesh_tap_filter_match(&f, &a));
    assert_false(mesh_tap_filter_match(&f, &b));
    struct mesh_tap_event g = event("GET", "/tapped/1");
    assert_true(mesh_tap_filter_match(&f, &g));

    assert_int_equal(parse("", &f, why, sizeof(why)), MESH_OK);
    assert_true(mesh_tap_filter_match(&f, &a) && mesh_tap_filter_match(&f, &c) &&
                mesh_tap_filter_match(&f, &e));
}

/* ---- the JSON line ---- */

static json_t *to_json(const struct mesh_tap_event *ev, size_t *len_out)
{
    char buf[MESH_TAP_EVENT_JSON_MAX];
    size_t len = mesh_tap_event_json(ev, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(strlen(buf), len);
    assert_int_equal(buf[len - 1], '\n');
    assert_null(memchr(buf, '\n', len - 1)); /* one line */
    json_error_t err;
    json_t *j = json_loadb(buf, len, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %s", err.text, buf);
    if (len_out)
        *len_out = len;
    return j;
}

static void test_tap_event_json_has_every_field(void **state)
{
    (void)state;
    struct mesh_tap_event ev = event("GET", "/api/v1/pay");
    ev.unix_ms = 1767225600123ull; /* 2026-01-01T00:00:00.123Z */
    ev.latency_us = 12345;
    ev.status = 503;
    ev.inbound = true;
    ev.tls = true;
    snprintf(ev.authority, sizeof(ev.authority), "payment.default");
    snprintf(ev.service, sizeof(ev.service), "inbound|payment-v1");
    snprintf(ev.route, sizeof(ev.route), "primary");
    snprintf(ev.endpoint, sizeof(ev.endpoint), "127.0.0.1:18081");
    snprintf(ev.source, sizeof(ev.source), "127.0.0.1:40404");
    snprintf(ev.source_identity, sizeof(ev.source_identity),
             "spiffe://cluster.local/ns/default/sa/orders");
    snprintf(ev.request_id, sizeof(ev.request_id), "abc123");
    json_t *j = to_json(&ev, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-01-01T00:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "direction")), "inbound");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "authority")), "payment.default");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/v1/pay");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 503);
    assert_float_equal(json_real_value(json_object_get(j, "latency_ms")), 12.345, 1e-9);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "127.0.0.1:40404");
    assert_string_equal(json_string_value(json_object_get(j, "source_identity")),
                        "spiffe://cluster.local/ns/default/sa/orders");
    assert_true(json_is_true(json_object_get(j, "tls")));
    assert_string_equal(json_string_value(json_object_get(j, "destination")), "inbound|payment-v1");
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), "127.0.0.1:18081");
    assert_string_equal(json_string_value(json_object_get(j, "route")), "primary");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "abc123");
    assert_int_equal(json_object_size(j), 14);
    json_decref(j);

    /* What a request that never reached a service leaves empty is null. */
    struct mesh_tap_event bare = event("GET", "/");
    bare.status = 404;
    j = to_json(&bare, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "direction")), "outbound");
    assert_true(json_is_false(json_object_get(j, "tls")));
    const char *nulls[] = {"source_identity", "destination", "endpoint", "route", "request_id"};
    for (size_t i = 0; i < 5; i++)
        assert_true(json_is_null(json_object_get(j, nulls[i])));
    assert_string_equal(json_string_value(json_object_get(j, "authority")), "");
    json_decref(j);
}

static void test_tap_event_json_escapes_what_clients_send(void **state)
{
    (void)state;
    struct mesh_tap_event ev = event("GET", "/a\"b\\c\x01\x7f\xff\xc3(\xe2\x82\xac/\xc3\xa9");
    snprintf(ev.authority, sizeof(ev.authority), "h\tost");
    json_t *j = to_json(&ev, NULL);
    /* The quote, backslash and control characters survive; bytes that are not UTF-8 become
     * U+FFFD; valid multi-byte sequences (a euro sign, an e acute) stay. */
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/a\"b\\c\x01\x7f\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac/\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(j, "authority")), "h\tost");
    json_decref(j);
}

static void test_tap_event_json_fits_the_worst_event(void **state)
{
    (void)state;
    /* Every string field full of bytes that each become a six-character escape. */
    struct mesh_tap_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.unix_ms = UINT64_MAX / 4;
    ev.latency_us = UINT64_MAX;
    ev.status = 999;
    char *fields[] = {ev.method,   ev.path,   ev.authority,       ev.service,   ev.route,
                      ev.endpoint, ev.source, ev.source_identity, ev.request_id};
    size_t sizes[] = {
        sizeof(ev.method),    sizeof(ev.path),     sizeof(ev.authority), sizeof(ev.service),
        sizeof(ev.route),     sizeof(ev.endpoint), sizeof(ev.source),    sizeof(ev.source_identity),
        sizeof(ev.request_id)};
    for (size_t i = 0; i < 9; i++) {
        memset(fields[i], 0x01, sizes[i] - 1);
        fields[i][sizes[i] - 1] = '\0';
    }
    size_t len = 0;
    json_t *j = to_json(&ev, &len);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "path"))), 255);
    json_decref(j);
    /* A buffer too small gets nothing, never a cut line. */
    char small[64];
    assert_int_equal(mesh_tap_event_json(&ev, small, sizeof(small)), 0);
    char exact[MESH_TAP_EVENT_JSON_MAX];
    assert_int_equal(mesh_tap_event_json(&ev, exact, len), 0); /* no room for the NUL */
    assert_int_equal(mesh_tap_event_json(&ev, exact, len + 1), len);
}

/* ---- the ring ---- */

static void test_tap_ring_fills_drops_and_wraps(void **state)
{
    (void)state;
    struct mesh_tap_ring *r = NULL;
    assert_int_equal(mesh_tap_ring_new(&r), MESH_OK);
    assert_null(mesh_tap_ring_peek(r));
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < MESH_TAP_RING_SLOTS; i++) {
            struct mesh_tap_event *ev = mesh_tap_ring_reserve(r);
            assert_non_null(ev);
            ev->latency_us = round * 1000000u + i;
            mesh_tap_ring_commit(r);
        }
        assert_null(mesh_tap_ring_reserve(r)); /* full: the producer drops */
        for (unsigned i = 0; i < MESH_TAP_RING_SLOTS; i++) {
            const struct mesh_tap_event *ev = mesh_tap_ring_peek(r);
            assert_non_null(ev);
            assert_int_equal(ev->latency_us, round * 1000000u + i);
            mesh_tap_ring_pop(r);
            if (i == 0)
                assert_non_null(mesh_tap_ring_reserve(r)); /* one slot free again */
        }
        assert_null(mesh_tap_ring_peek(r));
    }
    free(r);
}

#define RACE_EVENTS 100000u

static void *producer(void *arg)
{
    struct mesh_tap_ring *r = arg;
    for (uint64_t i = 0; i < RACE_EVENTS;) {
        struct mesh_tap_event *ev = mesh_tap_ring_reserve(r);
        if (!ev)
            continue; /* full: in the proxy a drop, here a retry so that the count is exact */
        ev->latency_us = i;
        snprintf(ev->path, sizeof(ev->path), "/%llu", (unsigned long long)i);
        mesh_tap_ring_commit(r);
        i++;
    }
    return NULL;
}

static void test_tap_ring_carries_every_event_in_order_across_threads(void **state)
{
    (void)state;
    struct mesh_tap_ring *r = NULL;
    assert_int_equal(mesh_tap_ring_new(&r), MESH_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, r), 0);
    uint64_t next = 0;
    char want[32];
    while (next < RACE_EVENTS) {
        const struct mesh_tap_event *ev = mesh_tap_ring_peek(r);
        if (!ev)
            continue;
        if (ev->latency_us != next)
            fail_msg("event %llu came as %llu", (unsigned long long)next,
                     (unsigned long long)ev->latency_us);
        snprintf(want, sizeof(want), "/%llu", (unsigned long long)next);
        assert_string_equal(ev->path, want); /* the slot was filled before it was seen */
        mesh_tap_ring_pop(r);
        next++;
    }
    pthread_join(t, NULL);
    assert_null(mesh_tap_ring_peek(r));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tap_filter_defaults),
        cmocka_unit_test(test_tap_filter_reads_every_parameter),
        cmocka_unit_test(test_tap_filter_refuses_bad_values),
        cmocka_unit_test(test_tap_filter_matches_path_prefix_and_exact_method),
        cmocka_unit_test(test_tap_event_json_has_every_field),
        cmocka_unit_test(test_tap_event_json_escapes_what_clients_send),
        cmocka_unit_test(test_tap_event_json_fits_the_worst_event),
        cmocka_unit_test(test_tap_ring_fills_drops_and_wraps),
        cmocka_unit_test(test_tap_ring_carries_every_event_in_order_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
