/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the proxy's trace context (src/proxy/trace_context): reading and writing
 * traceparent, tracestate passing through, b3 single and multi, malformed headers ignored (a new
 * trace starts), sampling decisions honoured both ways; the tracing settings read from the
 * documents (trace_config); the OTLP JSON encoding (trace_otlp); and the span rings' bound
 * (trace). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh.h"
#include "model/model.h"
#include "proxy/proxy.h"
#include "proxy/trace.h"
#include "proxy/trace_config.h"
#include "proxy/trace_context.h"

#define TRACE_HEX "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_HEX  "00f067aa0ba902b7"
#define TP(flags) "00-" TRACE_HEX "-" SPAN_HEX "-" flags

static struct mesh_slice S(const char *s) {
    return mesh_slice_cstr(s);
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
    mesh_trace_hex(b, n, out);
    out[2 * n] = '\0';
}

/* Headers as a request would bring them: name, value pairs, NULL-terminated. */
static void headers_of(struct mesh_trace_headers *h, const char *const *nv)
{
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; nv[i]; i += 2)
        assert_true(mesh_trace_headers_add(h, S(nv[i]), S(nv[i + 1])));
}

/* The span a request with these headers gets at rate percent, and the headers sent upstream
 * (NUL-terminated, caller frees). */
static char *begin(const char *const *nv, double rate, struct mesh_trace_span *span)
{
    struct mesh_trace_headers h;
    struct mesh_rng rng;
    struct mesh_wbuf out = {0};
    headers_of(&h, nv);
    mesh_rng_seed(&rng, 99);
    mesh_trace_begin(&h, rate, &rng, span);
    assert_true(span->on);
    assert_true(mesh_trace_put_headers(&out, span, &h));
    assert_true(mesh_wbuf_append(&out, "", 1));
    char *text = strdup(out.p);
    mesh_wbuf_free(&out);
    return text;
}

/* The value of header name in a block of "name: value\r\n" lines, copied; NULL when absent. */
static char *header_in(const char *block, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = block; *line;) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - line) > n + 2 && strncmp(line, name, n) == 0 && line[n] == ':')
            return strndup(line + n + 2, (size_t)(eol - line) - n - 2);
        line = eol + 2;
    }
    return NULL;
}

static int count_header(const char *block, const char *name)
{
    int count = 0;
    size_t n = strlen(name);
    for (const char *line = block; *line;) {
        const char *eol = strstr(line, "\r\n");
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            count++;
        line = eol + 2;
    }
    return count;
}

static void assert_header(const char *block, const char *name, const char *want)
{
    char *v = header_in(block, name);
    if (!want) {
        if (v)
            fail_msg("%s: want no header, got \"%s\" in\n%s", name, v, block);
        return;
    }
    if (!v)
        fail_msg("%s: missing in\n%s", name, block);
    assert_string_equal(v, want);
    free(v);
}

/* --- header names --- */

static void test_trace_header_kinds(void **state)
{
    (void)state;
    assert_int_equal(mesh_trace_header_kind(S("traceparent")), MESH_TRACE_H_TRACEPARENT);
    assert_int_equal(mesh_trace_header_kind(S("TraceParent")), MESH_TRACE_H_TRACEPARENT);
    assert_int_equal(mesh_trace_header_kind(S("tracestate")), MESH_TRACE_H_TRACESTATE);
    assert_int_equal(mesh_trace_header_kind(S("B3")), MESH_TRACE_H_B3);
    assert_int_equal(mesh_trace_header_kind(S("X-B3-TraceId")), MESH_TRACE_H_B3_TRACEID);
    assert_int_equal(mesh_trace_header_kind(S("x-b3-spanid")), MESH_TRACE_H_B3_SPANID);
    assert_int_equal(mesh_trace_header_kind(S("x-b3-parentspanid")), MESH_TRACE_H_B3_PARENTSPANID);
    assert_int_equal(mesh_trace_header_kind(S("x-b3-sampled")), MESH_TRACE_H_B3_SAMPLED);
    assert_int_equal(mesh_trace_header_kind(S("x-b3-flags")), MESH_TRACE_H_B3_FLAGS);
    assert_int_equal(mesh_trace_header_kind(S("traceparents")), MESH_TRACE_H_NONE);
    assert_int_equal(mesh_trace_header_kind(S("b4")), MESH_TRACE_H_NONE);
    assert_int_equal(mesh_trace_header_kind(S("content-type")), MESH_TRACE_H_NONE);
    assert_int_equal(mesh_trace_header_kind(S("x-request-id")), MESH_TRACE_H_NONE);
    struct mesh_trace_headers h = {0};
    assert_false(mesh_trace_headers_add(&h, S("host"), S("x")));
}

/* --- traceparent --- */

static void test_traceparent_parse_and_format_round_trip(void **state)
{
    (void)state;
    struct mesh_trace_ctx ctx;
    char t[33], sp[17], out[MESH_TRACE_TRACEPARENT_LEN + 1];
    assert_int_equal(mesh_trace_parse_traceparent(S(TP("01")), &ctx), MESH_OK);
    hex(ctx.trace_id, 16, t);
    hex(ctx.span_id, 8, sp);
    assert_string_equal(t, TRACE_HEX);
    assert_string_equal(sp, SPAN_HEX);
    assert_int_equal(ctx.sampled, 1);
    assert_true(ctx.has_ids);
    mesh_trace_format_traceparent(ctx.trace_id, ctx.span_id, true, out);
    out[MESH_TRACE_TRACEPARENT_LEN] = '\0';
    assert_string_equal(out, TP("01"));

    assert_int_equal(mesh_trace_parse_traceparent(S(TP("00")), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 0);
    /* Other flag bits do not make it sampled; the sampled bit alone does. */
    assert_int_equal(mesh_trace_parse_traceparent(S(TP("02")), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 0);
    assert_int_equal(mesh_trace_parse_traceparent(S(TP("03")), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 1);
    /* A later version may add fields after a dash. */
    assert_int_equal(
        mesh_trace_parse_traceparent(S("01-" TRACE_HEX "-" SPAN_HEX "-01-what-comes-next"), &ctx),
        MESH_OK);
    assert_int_equal(ctx.sampled, 1);
}

static void test_traceparent_malformed_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        TP("1"),                            /* short */
        TP("011"),                          /* version 00 is exactly 55 characters */
        TP("01") "-x",                      /* ... even with a dash */
        "ff-" TRACE_HEX "-" SPAN_HEX "-01", /* version ff is invalid */
        "0x-" TRACE_HEX "-" SPAN_HEX "-01", /* not hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SPAN_HEX "-01", /* upper case */
        "00-00000000000000000000000000000000-" SPAN_HEX "-01", /* zero trace id */
        "00-" TRACE_HEX "-0000000000000000-01",                /* zero parent id */
        "00_" TRACE_HEX "-" SPAN_HEX "-01",                    /* wrong separator */
        "00-" TRACE_HEX "-" SPAN_HEX "-0g",                    /* flags not hex */
        "01-" TRACE_HEX "-" SPAN_HEX "-01x",                   /* later version, no dash */
        "00-" TRACE_HEX "a-" SPAN_HEX "-01",                   /* long trace id */
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        struct mesh_trace_ctx ctx;
        if (mesh_trace_parse_traceparent(S(bad[i]), &ctx) != MESH_E_INVALID)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* --- b3 --- */

static void test_b3_single_forms(void **state)
{
    (void)state;
    struct mesh_trace_ctx ctx;
    char t[33], sp[17];
    assert_int_equal(mesh_trace_parse_b3(S(TRACE_HEX "-" SPAN_HEX "-1-" SPAN_HEX), &ctx), MESH_OK);
    hex(ctx.trace_id, 16, t);
    hex(ctx.span_id, 8, sp);
    assert_string_equal(t, TRACE_HEX);
    assert_string_equal(sp, SPAN_HEX);
    assert_int_equal(ctx.sampled, 1);
    assert_false(ctx.short_id);

    assert_int_equal(mesh_trace_parse_b3(S(TRACE_HEX "-" SPAN_HEX), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, -1); /* deferred: the receiver decides */
    assert_int_equal(mesh_trace_parse_b3(S(TRACE_HEX "-" SPAN_HEX "-0"), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 0);
    assert_int_equal(mesh_trace_parse_b3(S(TRACE_HEX "-" SPAN_HEX "-d"), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 1);
    assert_true(ctx.debug);

    /* A 64-bit trace id sits in the low half. */
    assert_int_equal(mesh_trace_parse_b3(S("A3CE929D0E0E4736-" SPAN_HEX "-1"), &ctx), MESH_OK);
    hex(ctx.trace_id, 16, t);
    assert_string_equal(t, "0000000000000000a3ce929d0e0e4736");
    assert_true(ctx.short_id);

    /* A bare decision has no ids. */
    assert_int_equal(mesh_trace_parse_b3(S("0"), &ctx), MESH_OK);
    assert_false(ctx.has_ids);
    assert_int_equal(ctx.sampled, 0);
    assert_int_equal(mesh_trace_parse_b3(S("1"), &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 1);

    static const char *const bad[] = {
        "",
        "2",
        TRACE_HEX,
        TRACE_HEX "-",
        TRACE_HEX "-" SPAN_HEX "-x",
        TRACE_HEX "-" SPAN_HEX "-1-",
        TRACE_HEX "-" SPAN_HEX "-1-" SPAN_HEX "-extra",
        TRACE_HEX "-00f067aa0ba902",
        "4bf92f3577b34da6a3ce929d0e0e473-" SPAN_HEX, /* 31 digits */
        "00000000000000000000000000000000-" SPAN_HEX,
        TRACE_HEX "-0000000000000000",
        TRACE_HEX "-" SPAN_HEX "-1-zz",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++)
        if (mesh_trace_parse_b3(S(bad[i]), &ctx) != MESH_E_INVALID)
            fail_msg("accepted b3 \"%s\"", bad[i]);
}

static void test_b3_multi_forms(void **state)
{
    (void)state;
    struct mesh_trace_headers h;
    struct mesh_trace_ctx ctx;
    const char *full[] = {
        "x-b3-traceid", TRACE_HEX,      "x-b3-spanid", SPAN_HEX, "x-b3-parentspanid",
        SPAN_HEX,       "x-b3-sampled", "1",           NULL};
    headers_of(&h, full);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_OK);
    assert_true(ctx.has_ids);
    assert_int_equal(ctx.sampled, 1);

    const char *deferred[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX, NULL};
    headers_of(&h, deferred);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, -1);

    const char *legacy[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX,
                            "x-b3-sampled", "false",   NULL};
    headers_of(&h, legacy);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 0);

    const char *debug[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX,
                           "x-b3-flags",   "1",       NULL};
    headers_of(&h, debug);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_OK);
    assert_int_equal(ctx.sampled, 1);
    assert_true(ctx.debug);

    const char *only_decision[] = {"x-b3-sampled", "0", NULL};
    headers_of(&h, only_decision);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_OK);
    assert_false(ctx.has_ids);
    assert_int_equal(ctx.sampled, 0);

    const char *no_span[] = {"x-b3-traceid", TRACE_HEX, NULL};
    headers_of(&h, no_span);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_E_INVALID);
    const char *bad_sampled[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX,
                                 "x-b3-sampled", "yes",     NULL};
    headers_of(&h, bad_sampled);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_E_INVALID);
    const char *none[] = {NULL};
    headers_of(&h, none);
    assert_int_equal(mesh_trace_parse_b3_multi(&h, &ctx), MESH_E_INVALID);
}

/* --- this hop's span and what goes upstream --- */

static void test_new_trace_without_headers(void **state)
{
    (void)state;
    struct mesh_trace_span sp;
    const char *none[] = {NULL};
    char *out = begin(none, 100, &sp);
    assert_true(sp.sampled);
    assert_false(sp.has_parent);
    char t[33], s[17], want[80];
    hex(sp.trace_id, 16, t);
    hex(sp.span_id, 8, s);
    assert_string_not_equal(t, "00000000000000000000000000000000");
    snprintf(want, sizeof(want), "00-%s-%s-01", t, s);
    assert_header(out, "traceparent", want);
    /* A new trace also speaks B3, for apps that only know it. */
    assert_header(out, "x-b3-traceid", t);
    assert_header(out, "x-b3-spanid", s);
    assert_header(out, "x-b3-sampled", "1");
    assert_header(out, "x-b3-parentspanid", NULL);
    assert_header(out, "b3", NULL);
    assert_header(out, "tracestate", NULL);
    free(out);

    out = begin(none, 0, &sp);
    assert_false(sp.sampled);
    hex(sp.trace_id, 16, t);
    hex(sp.span_id, 8, s);
    snprintf(want, sizeof(want), "00-%s-%s-00", t, s);
    assert_header(out, "traceparent", want);
    assert_header(out, "x-b3-sampled", "0");
    free(out);
}

static void test_traceparent_continued_with_tracestate_passed_through(void **state)
{
    (void)state;
    struct mesh_trace_span sp;
    const char *in[] = {
        "traceparent",       TP("01"), "tracestate", "rojo=00f067aa0ba902b7", "tracestate",
        "congo=t61rcWkgMzE", NULL};
    /* The caller sampled it: recorded even at rate 0. */
    char *out = begin(in, 0, &sp);
    assert_true(sp.sampled);
    assert_true(sp.has_parent);
    char t[33], p[17], s[17], want[80];
    hex(sp.trace_id, 16, t);
    hex(sp.parent_id, 8, p);
    hex(sp.span_id, 8, s);
    assert_string_equal(t, TRACE_HEX);
    assert_string_equal(p, SPAN_HEX);
    assert_string_not_equal(s, SPAN_HEX);
    snprintf(want, sizeof(want), "00-" TRACE_HEX "-%s-01", s);
    assert_header(out, "traceparent", want);
    assert_int_equal(count_header(out, "traceparent"), 1);
    /* tracestate goes on exactly as it came, both headers in order. */
    assert_int_equal(count_header(out, "tracestate"), 2);
    assert_non_null(strstr(out, "tracestate: rojo=00f067aa0ba902b7\r\n"
                                "tracestate: congo=t61rcWkgMzE\r\n"));
    /* W3C in, W3C out: no B3 invented. */
    assert_header(out, "x-b3-traceid", NULL);
    assert_header(out, "b3", NULL);
    free(out);

    /* Not sampled by the caller: not recorded even at rate 100, and said so upstream. */
    const char *unsampled[] = {"traceparent", TP("00"), NULL};
    out = begin(unsampled, 100, &sp);
    assert_false(sp.sampled);
    hex(sp.span_id, 8, s);
    snprintf(want, sizeof(want), "00-" TRACE_HEX "-%s-00", s);
    assert_header(out, "traceparent", want);
    free(out);
}

static void test_malformed_traceparent_starts_a_new_trace(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "00-" TRACE_HEX "-" SPAN_HEX "-1",
        "00-00000000000000000000000000000000-" SPAN_HEX "-01",
        "garbage",
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        struct mesh_trace_span sp;
        const char *in[] = {"traceparent", bad[i], "tracestate", "rojo=1", NULL};
        char *out = begin(in, 100, &sp);
        char t[33];
        hex(sp.trace_id, 16, t);
        assert_false(sp.has_parent);
        assert_string_not_equal(t, TRACE_HEX);
        assert_int_equal(count_header(out, "traceparent"), 1);
        assert_null(strstr(out, bad[i])); /* the bad value is not forwarded */
        /* Without a valid traceparent, tracestate means nothing: dropped. */
        assert_header(out, "tracestate", NULL);
        free(out);
    }
    /* Two traceparent headers: ambiguous, so neither is trusted. */
    struct mesh_trace_span sp;
    const char *twice[] = {"traceparent", TP("01"), "traceparent", TP("01"), NULL};
    char *out = begin(twice, 0, &sp);
    assert_false(sp.has_parent);
    assert_false(sp.sampled);
    free(out);
}

static void test_b3_single_continued(void **state)
{
    (void)state;
    struct mesh_trace_span sp;
    const char *in[] = {"b3", TRACE_HEX "-" SPAN_HEX "-1", NULL};
    char *out = begin(in, 0, &sp);
    assert_true(sp.sampled);
    assert_true(sp.has_parent);
    char t[33], p[17], s[17], want[80];
    hex(sp.trace_id, 16, t);
    hex(sp.parent_id, 8, p);
    hex(sp.span_id, 8, s);
    assert_string_equal(t, TRACE_HEX);
    assert_string_equal(p, SPAN_HEX);
    snprintf(want, sizeof(want), TRACE_HEX "-%s-1", s);
    assert_header(out, "b3", want);
    snprintf(want, sizeof(want), "00-" TRACE_HEX "-%s-01", s);
    assert_header(out, "traceparent", want);
    assert_header(out, "x-b3-traceid", NULL);
    free(out);

    /* Deferred: we decide, at our rate. */
    const char *deferred[] = {"b3", TRACE_HEX "-" SPAN_HEX, NULL};
    out = begin(deferred, 0, &sp);
    assert_true(sp.has_parent);
    assert_false(sp.sampled);
    free(out);
    out = begin(deferred, 100, &sp);
    assert_true(sp.sampled);
    free(out);

    /* A bare "0": not sampled, new ids. */
    const char *deny[] = {"b3", "0", NULL};
    out = begin(deny, 100, &sp);
    assert_false(sp.sampled);
    assert_false(sp.has_parent);
    free(out);

    /* Malformed: a new trace, and no b3 echoed back. */
    const char *bad[] = {"b3", TRACE_HEX "-zz", NULL};
    out = begin(bad, 100, &sp);
    assert_false(sp.has_parent);
    assert_true(sp.sampled);
    assert_header(out, "b3", NULL);
    assert_null(strstr(out, "-zz"));
    free(out);
}

static void test_b3_multi_continued(void **state)
{
    (void)state;
    struct mesh_trace_span sp;
    const char *in[] = {
        "X-B3-TraceId",     TRACE_HEX,      "X-B3-SpanId", SPAN_HEX, "X-B3-ParentSpanId",
        "1111111111111111", "X-B3-Sampled", "1",           NULL};
    char *out = begin(in, 0, &sp);
    assert_true(sp.sampled);
    assert_true(sp.has_parent);
    char s[17];
    hex(sp.span_id, 8, s);
    assert_header(out, "x-b3-traceid", TRACE_HEX);
    assert_header(out, "x-b3-spanid", s);
    /* Our parent is the caller's span, not the caller's parent. */
    assert_header(out, "x-b3-parentspanid", SPAN_HEX);
    assert_header(out, "x-b3-sampled", "1");
    assert_int_equal(count_header(out, "x-b3-parentspanid"), 1);
    assert_null(strstr(out, "1111111111111111"));
    free(out);

    const char *unsampled[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX,
                               "x-b3-sampled", "0",       NULL};
    out = begin(unsampled, 100, &sp);
    assert_false(sp.sampled);
    assert_header(out, "x-b3-sampled", "0");
    free(out);

    /* A 64-bit trace id goes back as 16 digits; traceparent carries it padded. */
    const char *short_id[] = {"x-b3-traceid", "a3ce929d0e0e4736", "x-b3-spanid", SPAN_HEX, NULL};
    out = begin(short_id, 100, &sp);
    assert_header(out, "x-b3-traceid", "a3ce929d0e0e4736");
    hex(sp.span_id, 8, s);
    char want[80];
    snprintf(want, sizeof(want), "00-0000000000000000a3ce929d0e0e4736-%s-01", s);
    assert_header(out, "traceparent", want);
    free(out);

    /* Debug: flags, not sampled. */
    const char *debug[] = {"x-b3-traceid", TRACE_HEX, "x-b3-spanid", SPAN_HEX,
                           "x-b3-flags",   "1",       NULL};
    out = begin(debug, 0, &sp);
    assert_true(sp.sampled);
    assert_header(out, "x-b3-flags", "1");
    assert_header(out, "x-b3-sampled", NULL);
    free(out);

    /* x-b3-sampled alone: the decision, on a new trace. */
    const char *only[] = {"x-b3-sampled", "1", NULL};
    out = begin(only, 0, &sp);
    assert_true(sp.sampled);
    assert_false(sp.has_parent);
    free(out);

    /* Malformed ids: a new trace. */
    const char *bad[] = {"x-b3-traceid", "xyz", "x-b3-spanid", SPAN_HEX, NULL};
    out = begin(bad, 100, &sp);
    assert_false(sp.has_parent);
    assert_null(strstr(out, "xyz"));
    free(out);
}

static void test_traceparent_wins_over_b3(void **state)
{
    (void)state;
    struct mesh_trace_span sp;
    const char *in[] = {
        "traceparent", TP("00"),           "x-b3-traceid", "11111111111111111111111111111111",
        "x-b3-spanid", "2222222222222222", "x-b3-sampled", "1",
        NULL};
    char *out = begin(in, 100, &sp);
    char t[33];
    hex(sp.trace_id, 16, t);
    assert_string_equal(t, TRACE_HEX);
    assert_false(sp.sampled); /* traceparent's decision */
    /* Both formats came in, both go out, with one context. */
    assert_header(out, "x-b3-traceid", TRACE_HEX);
    assert_header(out, "x-b3-sampled", "0");
    free(out);
}

static void test_sampling_rate_is_honoured(void **state)
{
    (void)state;
    struct mesh_trace_headers h = {0};
    struct mesh_rng rng;
    mesh_rng_seed(&rng, 7);
    unsigned sampled = 0;
    for (int i = 0; i < 100000; i++) {
        struct mesh_trace_span sp;
        mesh_trace_begin(&h, 10, &rng, &sp);
        sampled += sp.sampled;
    }
    /* 10% of 100,000: the binomial's standard deviation is under 100. */
    assert_in_range(sampled, 9500, 10500);
}

/* --- settings from the documents --- */

static void config_of(const char *yaml, struct mesh_trace_config *cfg)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    if (mesh_parse_documents(yaml, strlen(yaml), "t.yaml", &res, &n, &diags) != MESH_OK)
        fail_msg("does not parse: %s", mesh_model_diags_text(&diags));
    mesh_trace_config_build(res, n, cfg);
    mesh_resource_list_free(res, n);
}

#define DOC "apiVersion: mesh.clusterdb.io/v1\n"
#define OBS(ep)                                                                                    \
    DOC "kind: ObservabilityConfig\nmetadata: {name: obs}\nspec: {jaeger_endpoint: \"" ep "\"}\n"

static void test_trace_config_from_documents(void **state)
{
    (void)state;
    struct mesh_trace_config cfg;
    config_of(OBS("http://127.0.0.1:4318"), &cfg);
    assert_true(cfg.enabled);
    assert_string_equal(cfg.url, "http://127.0.0.1:4318/v1/traces");
    assert_string_equal(cfg.source, "default/obs");
    assert_true(cfg.sampling_rate == MESH_TRACE_DEFAULT_SAMPLING);

    config_of(OBS("http://collector:4318/v1/traces/"), &cfg);
    assert_string_equal(cfg.url, "http://collector:4318/v1/traces");
    config_of(OBS("http://collector:4318/otlp/"), &cfg);
    assert_string_equal(cfg.url, "http://collector:4318/otlp/v1/traces");

    config_of(
        "mesh: {telemetry: {enabled: true, sampling_rate: 10}}\n---\n" OBS("http://127.0.0.1:4318"),
        &cfg);
    assert_true(cfg.enabled);
    assert_true(cfg.sampling_rate == 10);

    /* Telemetry off: nothing, whatever the collector. */
    config_of("mesh: {telemetry: {enabled: false, sampling_rate: 10}}\n---\n" OBS(
                  "http://127.0.0.1:4318"),
              &cfg);
    assert_false(cfg.enabled);
    assert_string_equal(cfg.url, "");

    /* Only the native mesh's MeshConfig counts. */
    config_of(
        "mesh: {provider: istio, telemetry: {enabled: false}}\n---\n" OBS("http://127.0.0.1:4318"),
        &cfg);
    assert_true(cfg.enabled);

    /* No collector: off. */
    config_of("mesh: {telemetry: {sampling_rate: 50}}\n---\n" DOC
              "kind: ObservabilityConfig\nmetadata: {name: obs}\n"
              "spec: {prometheus_endpoint: \"http://127.0.0.1:9090\"}\n",
              &cfg);
    assert_false(cfg.enabled);
    assert_true(cfg.sampling_rate == 50);
    config_of(DOC "kind: Service\nmetadata: {name: a}\nspec: {}\n", &cfg);
    assert_false(cfg.enabled);
}

/* --- OTLP JSON --- */

static void fill_span(struct mesh_span_record *sp)
{
    memset(sp, 0, sizeof(*sp));
    for (int i = 0; i < 16; i++)
        sp->trace_id[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) {
        sp->span_id[i] = (uint8_t)(0x10 + i);
        sp->parent_id[i] = (uint8_t)(0x20 + i);
    }
    sp->has_parent = true;
    sp->kind = MESH_SPAN_KIND_CLIENT;
    sp->status = 503;
    sp->retries = 2;
    sp->peer_port = 5123;
    sp->start_ns = 1700000000000000000ull;
    sp->end_ns = 1700000000001500000ull;
    snprintf(sp->method, sizeof(sp->method), "GET");
    /* A client's path may hold anything the parser lets through: quotes, backslashes and
     * bytes that are no UTF-8. */
    snprintf(sp->path, sizeof(sp->path), "/pay/\"x\\y\"/\xff\xfe/caf\xc3\xa9");
    snprintf(sp->authority, sizeof(sp->authority), "payment");
    snprintf(sp->destination, sizeof(sp->destination), "payment-v1");
    snprintf(sp->route, sizeof(sp->route), "primary");
    snprintf(sp->endpoint, sizeof(sp->endpoint), "127.0.0.1:18081");
    snprintf(sp->peer, sizeof(sp->peer), "127.0.0.1");
    snprintf(sp->request_id, sizeof(sp->request_id), "abc");
}

static json_t *attr(json_t *attrs, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

static void test_otlp_json_shape(void **state)
{
    (void)state;
    struct mesh_span_record a, b;
    fill_span(&a);
    fill_span(&b);
    b.has_parent = false;
    b.kind = MESH_SPAN_KIND_SERVER;
    b.status = 404;
    struct mesh_trace_resource res = {
        .service = "orders", .ns = "default", .instance = "orders.default-1", .mode = "sidecar"};
    struct mesh_strbuf out;
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_trace_otlp_begin(&out, &res), MESH_OK);
    assert_int_equal(mesh_trace_otlp_span(&out, &a, true), MESH_OK);
    assert_int_equal(mesh_trace_otlp_span(&out, &b, false), MESH_OK);
    assert_int_equal(mesh_trace_otlp_end(&out), MESH_OK);
    json_error_t jerr;
    json_t *root = json_loadb(out.data, out.len, 0, &jerr);
    if (!root)
        fail_msg("not JSON: %s\n%s", jerr.text, out.data);
    json_t *rs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *rattrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    assert_string_equal(
        json_string_value(json_object_get(attr(rattrs, "service.name"), "stringValue")), "orders");
    assert_string_equal(
        json_string_value(json_object_get(attr(rattrs, "service.namespace"), "stringValue")),
        "default");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
                        "meshproxy");
    json_t *spans = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(spans), 2);
    json_t *s0 = json_array_get(spans, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "traceId")),
                        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    assert_string_equal(json_string_value(json_object_get(s0, "spanId")), "1011121314151617");
    assert_string_equal(json_string_value(json_object_get(s0, "parentSpanId")), "2021222324252627");
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "GET payment-v1");
    assert_int_equal(json_integer_value(json_object_get(s0, "kind")), 3);
    assert_string_equal(json_string_value(json_object_get(s0, "startTimeUnixNano")),
                        "1700000000000000000");
    assert_string_equal(json_string_value(json_object_get(s0, "endTimeUnixNano")),
                        "1700000000001500000");
    json_t *at = json_object_get(s0, "attributes");
    assert_string_equal(
        json_string_value(json_object_get(attr(at, "url.path"), "stringValue")),
        "/pay/\"x\\y\"/\xef\xbf\xbd\xef\xbf\xbd/caf\xc3\xa9"); /* U+FFFD for each bad byte */
    assert_string_equal(
        json_string_value(json_object_get(attr(at, "http.response.status_code"), "intValue")),
        "503");
    assert_string_equal(json_string_value(json_object_get(attr(at, "mesh.retries"), "intValue")),
                        "2");
    assert_string_equal(json_string_value(json_object_get(attr(at, "mesh.route"), "stringValue")),
                        "primary");
    assert_string_equal(
        json_string_value(json_object_get(attr(at, "mesh.upstream.endpoint"), "stringValue")),
        "127.0.0.1:18081");
    assert_string_equal(
        json_string_value(json_object_get(attr(at, "network.peer.address"), "stringValue")),
        "127.0.0.1");
    assert_string_equal(
        json_string_value(json_object_get(attr(at, "mesh.direction"), "stringValue")), "outbound");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "status"), "code")), 2);
    json_t *s1 = json_array_get(spans, 1);
    assert_null(json_object_get(s1, "parentSpanId"));
    assert_int_equal(json_integer_value(json_object_get(s1, "kind")), 2);
    /* A server's 404 is the client's mistake, not an error of the span. */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s1, "status"), "code")), 0);
    json_decref(root);
    mesh_strbuf_free(&out);
}

/* --- the rings --- */

static void test_ring_is_bounded_and_counts_drops(void **state)
{
    (void)state;
    struct mesh_trace_resource res = {.service = "t"};
    struct mesh_tracer *t = NULL;
    struct mesh_stats_shard *shard = NULL;
    assert_int_equal(mesh_tracer_new(&res, 2, &t), MESH_OK);
    assert_int_equal(mesh_stats_shard_new(0, &shard), MESH_OK);
    /* Before tracing is on there is no ring: counted, never a crash. */
    assert_null(mesh_tracer_reserve(t, 0, shard));
    struct mesh_trace_config cfg = {.enabled = true, .sampling_rate = 100};
    snprintf(cfg.url, sizeof(cfg.url), "http://127.0.0.1:9/v1/traces");
    mesh_tracer_configure(t, &cfg);
    /* The exporter is not running: the ring fills up to its bound, then drops. */
    for (unsigned i = 0; i < MESH_TRACE_RING_SLOTS; i++) {
        struct mesh_span_record *sp = mesh_tracer_reserve(t, 0, shard);
        assert_non_null(sp);
        sp->status = 200;
        mesh_tracer_commit(t, 0);
    }
    for (int i = 0; i < 5; i++)
        assert_null(mesh_tracer_reserve(t, 0, shard));
    /* The other worker's ring is its own. */
    assert_non_null(mesh_tracer_reserve(t, 1, shard));
    mesh_tracer_commit(t, 1);

    struct mesh_strbuf text;
    mesh_strbuf_init(&text, 0);
    struct mesh_stats_shard *all[2] = {shard, mesh_tracer_stats(t)};
    assert_int_equal(mesh_stats_render_prometheus(all, 2, &text), MESH_OK);
    char line[128];
    snprintf(line, sizeof(line), "\nmesh_trace_spans_sampled_total %u\n",
             MESH_TRACE_RING_SLOTS + 5 + 1 + 1);
    assert_non_null(strstr(text.data, line));
    assert_non_null(
        strstr(text.data, "\nmesh_trace_spans_dropped_total{reason=\"buffer_full\"} 5\n"));
    assert_non_null(
        strstr(text.data, "\nmesh_trace_spans_dropped_total{reason=\"no_memory\"} 1\n"));
    assert_non_null(strstr(text.data, "\nmesh_trace_spans_exported_total 0\n"));
    mesh_strbuf_free(&text);
    mesh_tracer_stop(t); /* never started: a no-op */
    mesh_tracer_free(t);
    mesh_stats_shard_free(shard);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_header_kinds),
        cmocka_unit_test(test_traceparent_parse_and_format_round_trip),
        cmocka_unit_test(test_traceparent_malformed_refused),
        cmocka_unit_test(test_b3_single_forms),
        cmocka_unit_test(test_b3_multi_forms),
        cmocka_unit_test(test_new_trace_without_headers),
        cmocka_unit_test(test_traceparent_continued_with_tracestate_passed_through),
        cmocka_unit_test(test_malformed_traceparent_starts_a_new_trace),
        cmocka_unit_test(test_b3_single_continued),
        cmocka_unit_test(test_b3_multi_continued),
        cmocka_unit_test(test_traceparent_wins_over_b3),
        cmocka_unit_test(test_sampling_rate_is_honoured),
        cmocka_unit_test(test_trace_config_from_documents),
        cmocka_unit_test(test_otlp_json_shape),
        cmocka_unit_test(test_ring_is_bounded_and_counts_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
