/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/stats: series lookup, merging, histograms, both renderings, and
 * writers racing a renderer. */
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
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <unistd.h>

#include "proxy/stats.h"

/* ---- helpers ---- */

static struct mesh_stats_shard *new_shard(size_t max)
{
    struct mesh_stats_shard *sh = NULL;
    assert_int_equal(mesh_stats_shard_new(max, &sh), MESH_OK);
    assert_non_null(sh);
    return sh;
}

static char *render_prom(struct mesh_stats_shard *const *shards, size_t n)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    if (mesh_stats_render_prometheus(shards, n, &sb) != MESH_OK) {
        mesh_strbuf_free(&sb);
        return NULL;
    }
    return mesh_strbuf_take(&sb);
}

static char *render_json(struct mesh_stats_shard *const *shards, size_t n)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    if (mesh_stats_render_json(shards, n, &sb) != MESH_OK) {
        mesh_strbuf_free(&sb);
        return NULL;
    }
    return mesh_strbuf_take(&sb);
}

/* The value of the sample whose text before the value is exactly `series`; -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    }
    return -1;
}

static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return true;
    }
    return false;
}

/* ---- an exposition-format checker: every line by regex, plus the family structure ---- */

#define NAME_RE  "[a-zA-Z_:][a-zA-Z0-9_:]*"
#define LNAME_RE "[a-zA-Z_][a-zA-Z0-9_]*"
#define LVAL_RE  "\"([^\"\\\\]|\\\\[\\\\\"n])*\""
#define VALUE_RE "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)"

struct format_checker {
    regex_t help, type, sample, le;
};

static void checker_init(struct format_checker *c)
{
    assert_int_equal(regcomp(&c->help, "^# HELP " NAME_RE " [^\\]*$", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regcomp(&c->type, "^# TYPE " NAME_RE " (counter|gauge|histogram)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&c->sample,
                             "^" NAME_RE "(\\{" LNAME_RE "=" LVAL_RE "(," LNAME_RE "=" LVAL_RE
                             ")*\\})? " VALUE_RE "$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&c->le, "[{,]le=\"([0-9.]+|\\+Inf)\"\\} ", REG_EXTENDED | REG_NOSUB),
                     0);
}

static void checker_free(struct format_checker *c)
{
    regfree(&c->help);
    regfree(&c->type);
    regfree(&c->sample);
    regfree(&c->le);
}

/* NULL when text is valid exposition format 0.0.4 with HELP then TYPE exactly once per family
 * and every sample under its own family; else a description of the first problem (static). */
static const char *check_format(struct format_checker *c, const char *text)
{
    static _Thread_local char why[512];
    char family[128] = "", type[16] = "";
    char seen[64][128];
    size_t nseen = 0;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return "text does not end with a newline";
    char *copy = strdup(text);
    const char *problem = NULL;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && !problem;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0) {
            if (regexec(&c->help, line, 0, NULL, 0) != 0)
                problem = "bad HELP";
            sscanf(line + 7, "%127s", name);
            for (size_t i = 0; i < nseen && !problem; i++)
                if (strcmp(seen[i], name) == 0)
                    problem = "family described twice";
            if (!problem && nseen < 64)
                snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
            snprintf(family, sizeof(family), "%s", name);
            type[0] = '\0';
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            if (regexec(&c->type, line, 0, NULL, 0) != 0)
                problem = "bad TYPE";
            else if (sscanf(line + 7, "%127s %15s", name, type) != 2 || strcmp(name, family))
                problem = "TYPE does not follow its HELP";
        } else {
            if (regexec(&c->sample, line, 0, NULL, 0) != 0) {
                problem = "bad sample";
            } else if (!type[0]) {
                problem = "sample before TYPE";
            } else {
                size_t n = strcspn(line, "{ ");
                size_t fl = strlen(family);
                bool ok = n == fl && strncmp(line, family, fl) == 0;
                if (strcmp(type, "histogram") == 0 && strncmp(line, family, fl) == 0) {
                    const char *suffix = line + fl;
                    size_t sl = n - fl;
                    bool bucket = sl == 7 && strncmp(suffix, "_bucket", 7) == 0;
                    ok = bucket || (sl == 4 && strncmp(suffix, "_sum", 4) == 0) ||
                         (sl == 6 && strncmp(suffix, "_count", 6) == 0);
                    if (bucket && regexec(&c->le, line, 0, NULL, 0) != 0)
                        ok = false;
                }
                if (!ok)
                    problem = "sample outside its family";
            }
        }
        if (problem)
            snprintf(why, sizeof(why), "%s: %.400s", problem, line);
    }
    free(copy);
    return problem ? why : NULL;
}

static void assert_valid_format(const char *text)
{
    struct format_checker c;
    checker_init(&c);
    const char *why = check_format(&c, text);
    if (why)
        fail_msg("%s", why);
    checker_free(&c);
}

static void populate_everything(struct mesh_stats_shard *sh);

/* ---- requests ---- */

static void test_stats_counts_requests_by_code(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(0);
    struct mesh_stats_requests *rs, *again;
    assert_int_equal(mesh_stats_requests_get(sh, "payment-v1", "primary", "127.0.0.1:18081", &rs),
                     MESH_OK);
    assert_int_equal(
        mesh_stats_requests_get(sh, "payment-v1", "primary", "127.0.0.1:18081", &again), MESH_OK);
    assert_ptr_equal(rs, again); /* re-resolving after a reload costs nothing */
    for (int i = 0; i < 3; i++)
        mesh_stats_requests_count(rs, 200);
    mesh_stats_requests_count(rs, 503);
    char *text = render_prom(&sh, 1);
    assert_non_null(text);
    assert_true(has_line(text, "mesh_requests_total{service=\"payment-v1\",route=\"primary\","
                               "endpoint=\"127.0.0.1:18081\",code=\"200\"} 3"));
    assert_true(has_line(text, "mesh_requests_total{service=\"payment-v1\",route=\"primary\","
                               "endpoint=\"127.0.0.1:18081\",code=\"503\"} 1"));
    assert_true(has_line(text, "# TYPE mesh_requests_total counter"));
    assert_valid_format(text);
    free(text);
    mesh_stats_shard_free(sh);
}

static void test_stats_codes_beyond_the_slots_stay_exact(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(0);
    struct mesh_stats_requests *rs;
    assert_int_equal(mesh_stats_requests_get(sh, "s", "r", "e:1", &rs), MESH_OK);
    /* 12 distinct codes: 8 take the slots, 4 go through the hashed path every time. */
    for (unsigned round = 1; round <= 5; round++)
        for (unsigned code = 200; code < 212; code++)
            for (unsigned k = 0; k < code - 199; k++)
                mesh_stats_requests_count(rs, code);
    assert_int_equal(rs->used, MESH_STATS_CODE_SLOTS);
    mesh_stats_requests_count(rs, 0);    /* no response */
    mesh_stats_requests_count(rs, 1000); /* nonsense counts as no response too */
    mesh_stats_requests_count(rs, 99);
    char *text = render_prom(&sh, 1);
    for (unsigned code = 200; code < 212; code++) {
        char series[128];
        snprintf(series, sizeof(series),
                 "mesh_requests_total{service=\"s\",route=\"r\",endpoint=\"e:1\",code=\"%u\"}",
                 code);
        assert_true(sample(text, series) == 5.0 * (code - 199));
    }
    assert_true(sample(text, "mesh_requests_total{service=\"s\",route=\"r\",endpoint=\"e:1\","
                             "code=\"000\"}") == 3.0);
    free(text);
    mesh_stats_shard_free(sh);
}

/* ---- merging and ordering ---- */

static void test_stats_merges_shards_and_sorts(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    struct mesh_stats_counter *c;
    const char *b[] = {"svc-b"}, *a[] = {"svc-a"}, *cc[] = {"svc-c"};
    assert_int_equal(mesh_stats_counter_get(sh[0], MESH_STATS_RETRIES, b, &c), MESH_OK);
    mesh_stats_counter_add(c, 4);
    assert_int_equal(mesh_stats_counter_get(sh[1], MESH_STATS_RETRIES, cc, &c), MESH_OK);
    mesh_stats_counter_add(c, 1);
    assert_int_equal(mesh_stats_counter_get(sh[1], MESH_STATS_RETRIES, b, &c), MESH_OK);
    mesh_stats_counter_add(c, 6);
    assert_int_equal(mesh_stats_counter_get(sh[0], MESH_STATS_RETRIES, a, &c), MESH_OK);
    mesh_stats_counter_inc(c);
    struct mesh_stats_counter *acc;
    assert_int_equal(mesh_stats_counter_get(sh[0], MESH_STATS_DOWNSTREAM_CX_ACCEPTED, NULL, &acc),
                     MESH_OK);
    mesh_stats_counter_add(acc, 2);
    assert_int_equal(mesh_stats_counter_get(sh[1], MESH_STATS_DOWNSTREAM_CX_ACCEPTED, NULL, &acc),
                     MESH_OK);
    mesh_stats_counter_add(acc, 5);

    char *text = render_prom(sh, 2);
    const char *want = "# HELP mesh_retries_total Request attempts retried on another endpoint, "
                       "by destination service.\n"
                       "# TYPE mesh_retries_total counter\n"
                       "mesh_retries_total{service=\"svc-a\"} 1\n"
                       "mesh_retries_total{service=\"svc-b\"} 10\n"
                       "mesh_retries_total{service=\"svc-c\"} 1\n";
    assert_non_null(strstr(text, want));
    assert_true(has_line(text, "mesh_downstream_connections_accepted_total 7"));
    assert_valid_format(text);
    /* The same state renders the same bytes whichever order the shards come in. */
    struct mesh_stats_shard *swapped[2] = {sh[1], sh[0]};
    char *text2 = render_prom(swapped, 2);
    assert_string_equal(text, text2);
    free(text2);
    free(text);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

static void test_stats_gauges_sum_signed_across_shards(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    const char *labels[] = {"payment-v1", "127.0.0.1:18081"};
    struct mesh_stats_gauge *g0, *g1, *active;
    assert_int_equal(mesh_stats_gauge_get(sh[0], MESH_STATS_UPSTREAM_CX_OPEN, labels, &g0),
                     MESH_OK);
    assert_int_equal(mesh_stats_gauge_get(sh[1], MESH_STATS_UPSTREAM_CX_OPEN, labels, &g1),
                     MESH_OK);
    mesh_stats_gauge_add(g0, 3);
    mesh_stats_gauge_add(g1, 2);
    mesh_stats_gauge_add(g1, -1);
    assert_int_equal(mesh_stats_gauge_value(g1), 1);
    assert_int_equal(mesh_stats_gauge_get(sh[0], MESH_STATS_DOWNSTREAM_CX_ACTIVE, NULL, &active),
                     MESH_OK);
    mesh_stats_gauge_set(active, -2);
    assert_int_equal(mesh_stats_gauge_value(active), -2);
    char *text = render_prom(sh, 2);
    assert_true(has_line(text, "mesh_upstream_connections_open{service=\"payment-v1\","
                               "endpoint=\"127.0.0.1:18081\"} 4"));
    assert_true(has_line(text, "mesh_downstream_connections_active -2"));
    assert_true(has_line(text, "# TYPE mesh_upstream_connections_open gauge"));
    free(text);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

/* ---- escaping ---- */

static void test_stats_escapes_label_values(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(0);
    const char *nasty = "a\\b\"c\nd\te-\xc3\xa9";
    const char *labels[] = {"svc", nasty};
    struct mesh_stats_counter *c;
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_FAULTS, labels, &c), MESH_OK);
    mesh_stats_counter_add(c, 9);
    char *text = render_prom(&sh, 1);
    assert_true(has_line(text, "mesh_faults_injected_total{service=\"svc\","
                               "kind=\"a\\\\b\\\"c\\nd\te-\xc3\xa9\"} 9"));
    assert_valid_format(text);
    free(text);

    char *js = render_json(&sh, 1);
    json_error_t jerr;
    json_t *root = json_loads(js, 0, &jerr);
    if (!root)
        fail_msg("invalid JSON: %s: %s", jerr.text, js);
    json_t *row = json_array_get(json_object_get(root, "faults_injected"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "kind")), nasty);
    assert_int_equal(json_integer_value(json_object_get(row, "value")), 9);
    json_decref(root);
    free(js);
    mesh_stats_shard_free(sh);
}

/* ---- histograms ---- */

static void test_stats_bucket_bounds_are_inclusive(void **state)
{
    (void)state;
    assert_int_equal(mesh_stats_bucket_index(0), 0);
    assert_int_equal(mesh_stats_bucket_index(500), 0);
    assert_int_equal(mesh_stats_bucket_index(501), 1);
    assert_int_equal(mesh_stats_bucket_index(1000), 1);
    assert_int_equal(mesh_stats_bucket_index(2500), 2);
    assert_int_equal(mesh_stats_bucket_index(1000000), 10);
    assert_int_equal(mesh_stats_bucket_index(10000000), 13);
    assert_int_equal(mesh_stats_bucket_index(10000001), 14);
    assert_int_equal(mesh_stats_bucket_index(UINT64_MAX), 14);
    for (unsigned i = 0; i + 1 < MESH_STATS_BUCKETS; i++) {
        assert_int_equal(mesh_stats_bucket_index(mesh_stats_bucket_bound_us(i)), i);
        assert_int_equal(mesh_stats_bucket_index(mesh_stats_bucket_bound_us(i) + 1), i + 1);
    }
    assert_true(mesh_stats_bucket_bound_us(MESH_STATS_BUCKETS - 1) == UINT64_MAX);
}

static void test_stats_histogram_renders_cumulative_buckets(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    const char *labels[] = {"payment-v1", "primary"};
    struct mesh_stats_histogram *h0, *h1;
    assert_int_equal(mesh_stats_histogram_get(sh[0], MESH_STATS_REQUEST_DURATION, labels, &h0),
                     MESH_OK);
    assert_int_equal(mesh_stats_histogram_get(sh[1], MESH_STATS_REQUEST_DURATION, labels, &h1),
                     MESH_OK);
    mesh_stats_histogram_observe(h0, 300);      /* le 0.0005 */
    mesh_stats_histogram_observe(h1, 500);      /* le 0.0005, on the bound */
    mesh_stats_histogram_observe(h0, 700);      /* le 0.001 */
    mesh_stats_histogram_observe(h1, 42000);    /* le 0.05 */
    mesh_stats_histogram_observe(h0, 12000000); /* +Inf only */
    char *text = render_prom(sh, 2);
    const char *want =
        "# TYPE mesh_request_duration_seconds histogram\n"
        "mesh_request_duration_seconds_bucket{service=\"payment-v1\",route=\"primary\","
        "le=\"0.0005\"} 2\n"
        "mesh_request_duration_seconds_bucket{service=\"payment-v1\",route=\"primary\","
        "le=\"0.001\"} 3\n"
        "mesh_request_duration_seconds_bucket{service=\"payment-v1\",route=\"primary\","
        "le=\"0.0025\"} 3\n";
    assert_non_null(strstr(text, want));
    const char *p =
        "mesh_request_duration_seconds_bucket{service=\"payment-v1\",route=\"primary\",";
    char series[256];
    snprintf(series, sizeof(series), "%sle=\"0.025\"}", p);
    assert_true(sample(text, series) == 3);
    snprintf(series, sizeof(series), "%sle=\"0.05\"}", p);
    assert_true(sample(text, series) == 4);
    snprintf(series, sizeof(series), "%sle=\"10\"}", p);
    assert_true(sample(text, series) == 4);
    snprintf(series, sizeof(series), "%sle=\"+Inf\"}", p);
    assert_true(sample(text, series) == 5);
    assert_true(has_line(text, "mesh_request_duration_seconds_sum{service=\"payment-v1\","
                               "route=\"primary\"} 12.043500"));
    assert_true(has_line(text, "mesh_request_duration_seconds_count{service=\"payment-v1\","
                               "route=\"primary\"} 5"));
    assert_valid_format(text);
    free(text);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

static void test_stats_quantiles_interpolate_within_a_bucket(void **state)
{
    (void)state;
    uint64_t c[MESH_STATS_BUCKETS] = {0};
    assert_true(isnan(mesh_stats_quantile(c, 0.5)));
    c[1] = 100; /* all in (0.5 ms, 1 ms] */
    assert_float_equal(mesh_stats_quantile(c, 0.5), 0.00075, 1e-12);
    assert_float_equal(mesh_stats_quantile(c, 0.99), 0.0005 + 0.0005 * 0.99, 1e-12);
    assert_float_equal(mesh_stats_quantile(c, 1.0), 0.001, 1e-12);
    /* Prometheus' edges (mesh_quantile): q = 0 over an empty first bucket divides 0 by 0, and a
     * q outside 0..1 answers an infinity of its sign. */
    assert_true(isnan(mesh_stats_quantile(c, 0.0)));
    assert_true(isinf(mesh_stats_quantile(c, 1.5)) && mesh_stats_quantile(c, 1.5) > 0);
    assert_true(isinf(mesh_stats_quantile(c, -0.1)) && mesh_stats_quantile(c, -0.1) < 0);

    memset(c, 0, sizeof(c));
    c[0] = 50; /* (0, 0.5 ms] */
    c[3] = 40; /* (2.5 ms, 5 ms] */
    c[7] = 10; /* (50 ms, 100 ms] */
    assert_float_equal(mesh_stats_quantile(c, 0.25), 0.00025, 1e-12);
    /* rank 70: 20 of the 40 in (2.5, 5] ms */
    assert_float_equal(mesh_stats_quantile(c, 0.70), 0.00375, 1e-12);
    /* rank 95: 5 of the 10 in (50, 100] ms */
    assert_float_equal(mesh_stats_quantile(c, 0.95), 0.075, 1e-12);

    memset(c, 0, sizeof(c));
    c[0] = 1;
    c[MESH_STATS_BUCKETS - 1] = 9; /* a rank in +Inf answers the highest finite bound */
    assert_float_equal(mesh_stats_quantile(c, 0.99), 10.0, 1e-12);
}

static void test_stats_json_carries_percentiles_and_scalars(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    const char *labels[] = {"payment-v1", "primary"};
    struct mesh_stats_histogram *h;
    for (int s = 0; s < 2; s++) {
        assert_int_equal(mesh_stats_histogram_get(sh[s], MESH_STATS_REQUEST_DURATION, labels, &h),
                         MESH_OK);
        for (int i = 0; i < 50; i++)
            mesh_stats_histogram_observe(h, 600 + (uint64_t)i); /* bucket (0.5, 1] ms */
    }
    const char *empty[] = {"idle", "none"};
    assert_int_equal(mesh_stats_histogram_get(sh[0], MESH_STATS_REQUEST_DURATION, empty, &h),
                     MESH_OK);
    struct mesh_stats_counter *rx;
    assert_int_equal(mesh_stats_counter_get(sh[1], MESH_STATS_DOWNSTREAM_RX_BYTES, NULL, &rx),
                     MESH_OK);
    mesh_stats_counter_add(rx, 1234);
    struct mesh_stats_requests *rs;
    assert_int_equal(mesh_stats_requests_get(sh[0], "payment-v1", "primary", "10.0.0.1:80", &rs),
                     MESH_OK);
    mesh_stats_requests_count(rs, 204);

    char *js = render_json(sh, 2);
    json_error_t jerr;
    json_t *root = json_loads(js, 0, &jerr);
    if (!root)
        fail_msg("invalid JSON: %s: %s", jerr.text, js);
    assert_int_equal(json_integer_value(json_object_get(root, "downstream_received_bytes")), 1234);
    assert_int_equal(json_integer_value(json_object_get(root, "stats_series_dropped")), 0);
    json_t *req = json_array_get(json_object_get(root, "requests"), 0);
    assert_string_equal(json_string_value(json_object_get(req, "code")), "204");
    assert_string_equal(json_string_value(json_object_get(req, "endpoint")), "10.0.0.1:80");
    assert_int_equal(json_integer_value(json_object_get(req, "value")), 1);

    json_t *hist = json_object_get(root, "request_duration_seconds");
    assert_int_equal(json_array_size(hist), 2);
    json_t *idle = json_array_get(hist, 0); /* sorted: "idle" < "payment-v1" */
    assert_string_equal(json_string_value(json_object_get(idle, "service")), "idle");
    assert_true(json_is_null(json_object_get(idle, "p50")));
    json_t *pay = json_array_get(hist, 1);
    assert_int_equal(json_integer_value(json_object_get(pay, "count")), 100);
    assert_float_equal(json_real_value(json_object_get(pay, "p50")), 0.00075, 1e-9);
    assert_float_equal(json_real_value(json_object_get(pay, "p95")), 0.000975, 1e-9);
    assert_float_equal(json_real_value(json_object_get(pay, "p99")), 0.000995, 1e-9);
    /* sum = 2 * (600 + ... + 649) us */
    assert_float_equal(json_real_value(json_object_get(pay, "sum")), 0.06245, 1e-9);
    json_t *buckets = json_object_get(pay, "buckets");
    assert_int_equal(json_object_size(buckets), MESH_STATS_BUCKETS);
    assert_int_equal(json_integer_value(json_object_get(buckets, "0.0005")), 0);
    assert_int_equal(json_integer_value(json_object_get(buckets, "0.001")), 100);
    assert_int_equal(json_integer_value(json_object_get(buckets, "+Inf")), 100);
    /* every family is there, labelled ones as arrays */
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++) {
        const char *name = mesh_stats_family_name(f) + strlen("mesh_");
        char key[128];
        size_t len = strlen(name);
        if (len > 6 && strcmp(name + len - 6, "_total") == 0)
            len -= 6;
        snprintf(key, sizeof(key), "%.*s", (int)len, name);
        json_t *v = json_object_get(root, key);
        assert_non_null(v);
        assert_true(mesh_stats_family_labels(f)[0] ? json_is_array(v) : json_is_integer(v));
    }
    json_decref(root);
    free(js);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

static void test_stats_renders_without_shards(void **state)
{
    (void)state;
    struct mesh_stats_shard *none[2] = {NULL, NULL};
    char *text = render_prom(none, 2);
    assert_valid_format(text);
    assert_true(has_line(text, "mesh_downstream_connections_active 0"));
    assert_null(strstr(text, "mesh_requests_total{"));
    free(text);
    char *js = render_json(none, 0);
    json_t *root = json_loads(js, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "downstream_sent_bytes")), 0);
    assert_int_equal(json_array_size(json_object_get(root, "requests")), 0);
    json_decref(root);
    free(js);
}

/* ---- limits and bad input ---- */

static void test_stats_render_stops_at_the_buffer_limit(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(0);
    populate_everything(sh);
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 512);
    assert_int_equal(mesh_stats_render_prometheus(&sh, 1, &sb), MESH_E_NOMEM);
    assert_true(sb.len <= 512);
    mesh_strbuf_free(&sb);
    mesh_strbuf_init(&sb, 512);
    assert_int_equal(mesh_stats_render_json(&sh, 1, &sb), MESH_E_NOMEM);
    mesh_strbuf_free(&sb);
    mesh_stats_shard_free(sh);
}

static void test_stats_cap_sends_new_series_to_the_sink(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(2);
    struct mesh_stats_counter *c1, *c2, *c3, *again;
    const char *l1[] = {"one"}, *l2[] = {"two"}, *l3[] = {"three"};
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_RETRIES, l1, &c1), MESH_OK);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_RETRIES, l2, &c2), MESH_OK);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_RETRIES, l3, &c3), MESH_E_NOMEM);
    assert_non_null(c3);
    mesh_stats_counter_add(c3, 100); /* harmless, never shown */
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_RETRIES, l1, &again), MESH_OK);
    assert_ptr_equal(again, c1); /* existing series still resolve when full */
    struct mesh_stats_requests *rs;
    assert_int_equal(mesh_stats_requests_get(sh, "s", "r", "e", &rs), MESH_E_NOMEM);
    mesh_stats_requests_count(rs, 200); /* the sink set: counted nowhere, no crash */
    mesh_stats_counter_inc(c1);
    char *text = render_prom(&sh, 1);
    assert_true(has_line(text, "mesh_retries_total{service=\"one\"} 1"));
    assert_true(has_line(text, "mesh_retries_total{service=\"two\"} 0"));
    assert_null(strstr(text, "three"));
    assert_null(strstr(text, "mesh_requests_total{"));
    assert_true(has_line(text, "mesh_stats_series_dropped_total 2"));
    free(text);
    mesh_stats_shard_free(sh);
}

static void test_stats_refuses_bad_labels_and_wrong_types(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh = new_shard(0);
    struct mesh_stats_counter *c;
    struct mesh_stats_gauge *g;
    struct mesh_stats_histogram *h;
    const char *null_label[] = {"svc", NULL};
    const char *bad_utf8[] = {"svc", "\xff\xfe"};
    const char *overlong[] = {"svc", "\xc0\xaf"};
    const char *truncated[] = {"svc", "ok\xe2\x82"};
    char big[MESH_STATS_LABEL_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *too_long[] = {"svc", big};
    const char *two[] = {"svc", "ep"};
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, null_label, &c),
                     MESH_E_INVALID);
    assert_non_null(c);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, bad_utf8, &c),
                     MESH_E_INVALID);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, overlong, &c),
                     MESH_E_INVALID);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, truncated, &c),
                     MESH_E_INVALID);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, too_long, &c),
                     MESH_E_INVALID);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, NULL, &c), MESH_E_INVALID);
    assert_int_equal(mesh_stats_gauge_get(sh, MESH_STATS_EJECTIONS, two, &g), MESH_E_INVALID);
    assert_non_null(g);
    mesh_stats_gauge_add(g, 1);
    assert_int_equal(mesh_stats_histogram_get(sh, MESH_STATS_REQUESTS, two, &h), MESH_E_INVALID);
    assert_non_null(h);
    mesh_stats_histogram_observe(h, 10);
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_FAMILY_COUNT, two, &c), MESH_E_INVALID);
    big[MESH_STATS_LABEL_MAX] = '\0'; /* exactly at the limit is fine */
    assert_int_equal(mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, too_long, &c), MESH_OK);
    char *text = render_prom(&sh, 1);
    assert_true(has_line(text, "mesh_stats_series_dropped_total 9"));
    assert_valid_format(text);
    free(text);
    mesh_stats_shard_free(sh);
}

/* How many series a new shard holds: one per family without labels, created up front. */
static size_t unlabelled_families(void)
{
    size_t n = 0;
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++)
        n += mesh_stats_family_labels(f)[0] == NULL;
    return n;
}

static void test_stats_many_series_resolve_to_stable_handles(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct mesh_stats_shard *sh = new_shard(0);
    struct mesh_stats_gauge **handles = calloc(N, sizeof(*handles));
    char ep[32];
    const char *labels[] = {"svc", ep};
    for (int i = 0; i < N; i++) {
        snprintf(ep, sizeof(ep), "10.0.%d.%d:80", i / 256, i % 256);
        assert_int_equal(
            mesh_stats_gauge_get(sh, MESH_STATS_UPSTREAM_CX_PENDING, labels, &handles[i]), MESH_OK);
        mesh_stats_gauge_add(handles[i], i);
    }
    assert_int_equal(mesh_stats_shard_size(sh), N + unlabelled_families());
    for (int i = 0; i < N; i++) {
        struct mesh_stats_gauge *g;
        snprintf(ep, sizeof(ep), "10.0.%d.%d:80", i / 256, i % 256);
        assert_int_equal(mesh_stats_gauge_get(sh, MESH_STATS_UPSTREAM_CX_PENDING, labels, &g),
                         MESH_OK);
        assert_ptr_equal(g, handles[i]);
        assert_int_equal(mesh_stats_gauge_value(g), i);
    }
    /* same label values in another family are another series */
    struct mesh_stats_gauge *other;
    assert_int_equal(mesh_stats_gauge_get(sh, MESH_STATS_UPSTREAM_CX_OPEN, labels, &other),
                     MESH_OK);
    assert_ptr_not_equal(other, handles[N - 1]);
    char *text = render_prom(&sh, 1);
    assert_true(has_line(text, "mesh_upstream_connections_pending{service=\"svc\","
                               "endpoint=\"10.0.19.135:80\"} 4999"));
    assert_valid_format(text);
    free(text);
    free(handles);
    mesh_stats_shard_free(sh);
}

/* ---- the whole format ---- */

static void populate_everything(struct mesh_stats_shard *sh)
{
    struct mesh_stats_requests *rs;
    mesh_stats_requests_get(sh, "payment-v1", "primary", "127.0.0.1:18081", &rs);
    mesh_stats_requests_count(rs, 200);
    struct mesh_stats_histogram *h;
    const char *svc_route[] = {"payment-v1", "primary"};
    mesh_stats_histogram_get(sh, MESH_STATS_REQUEST_DURATION, svc_route, &h);
    mesh_stats_histogram_observe(h, 1234);
    struct mesh_stats_gauge *g;
    const char *svc_ep[] = {"payment-v1", "127.0.0.1:18081"};
    mesh_stats_gauge_get(sh, MESH_STATS_UPSTREAM_CX_OPEN, svc_ep, &g);
    mesh_stats_gauge_add(g, 2);
    mesh_stats_gauge_get(sh, MESH_STATS_UPSTREAM_CX_PENDING, svc_ep, &g);
    mesh_stats_gauge_add(g, 1);
    struct mesh_stats_counter *c;
    const char *svc[] = {"payment-v1"};
    mesh_stats_counter_get(sh, MESH_STATS_RETRIES, svc, &c);
    mesh_stats_counter_inc(c);
    static const char *const resources[] = {"connections", "pending", "requests", "retries"};
    for (int i = 0; i < 4; i++) {
        const char *l[] = {"payment-v1", resources[i]};
        mesh_stats_counter_get(sh, MESH_STATS_OVERFLOWS, l, &c);
        mesh_stats_counter_add(c, (uint64_t)i);
    }
    mesh_stats_counter_get(sh, MESH_STATS_EJECTIONS, svc_ep, &c);
    mesh_stats_counter_inc(c);
    const char *delay[] = {"payment-v1", "delay"}, *abort_[] = {"payment-v1", "abort"};
    mesh_stats_counter_get(sh, MESH_STATS_FAULTS, delay, &c);
    mesh_stats_counter_inc(c);
    mesh_stats_counter_get(sh, MESH_STATS_FAULTS, abort_, &c);
    mesh_stats_counter_inc(c);
    const char *kind[] = {"cl_te_conflict"}, *odd[] = {"we\"ird\\kind\nx"};
    mesh_stats_counter_get(sh, MESH_STATS_PARSE_ERRORS, kind, &c);
    mesh_stats_counter_inc(c);
    mesh_stats_counter_get(sh, MESH_STATS_PARSE_ERRORS, odd, &c);
    mesh_stats_counter_inc(c);
    mesh_stats_counter_get(sh, MESH_STATS_DOWNSTREAM_CX_ACCEPTED, NULL, &c);
    mesh_stats_counter_inc(c);
    mesh_stats_gauge_get(sh, MESH_STATS_DOWNSTREAM_CX_ACTIVE, NULL, &g);
    mesh_stats_gauge_add(g, 1);
    mesh_stats_counter_get(sh, MESH_STATS_DOWNSTREAM_RX_BYTES, NULL, &c);
    mesh_stats_counter_add(c, 100);
    mesh_stats_counter_get(sh, MESH_STATS_DOWNSTREAM_TX_BYTES, NULL, &c);
    mesh_stats_counter_add(c, 200);
}

static void test_stats_exposition_format_is_valid(void **state)
{
    (void)state;
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    populate_everything(sh[0]);
    populate_everything(sh[1]);
    char *text = render_prom(sh, 2);
    assert_valid_format(text);
    for (unsigned f = 0; f < MESH_STATS_FAMILY_COUNT; f++) {
        char line[256];
        snprintf(line, sizeof(line), "# TYPE %s %s", mesh_stats_family_name(f),
                 mesh_stats_family_type(f) == MESH_STATS_COUNTER ? "counter"
                 : mesh_stats_family_type(f) == MESH_STATS_GAUGE ? "gauge"
                                                                 : "histogram");
        assert_true(has_line(text, line));
    }
    assert_true(has_line(text, "mesh_circuit_breaker_overflows_total{service=\"payment-v1\","
                               "resource=\"retries\"} 6"));
    assert_true(has_line(text, "mesh_parse_errors_total{kind=\"cl_te_conflict\"} 2"));
    assert_true(has_line(text, "mesh_parse_errors_total{kind=\"we\\\"ird\\\\kind\\nx\"} 2"));
    assert_true(has_line(text, "mesh_downstream_sent_bytes_total 400"));

    /* The checker itself must catch what it is there to catch. */
    struct format_checker c;
    checker_init(&c);
    assert_non_null(check_format(&c, "# HELP a b\n# TYPE a counter\na{x=\"1\"} 1\n"
                                     "# HELP a b\n# TYPE a counter\n"));
    assert_non_null(check_format(&c, "# HELP a b\n# TYPE a counter\na{x=\"\"\"} 1\n"));
    assert_non_null(check_format(&c, "# HELP a b\n# TYPE a counter\nb 1\n"));
    assert_non_null(check_format(&c, "# HELP a b\n# TYPE a histogram\na_bucket{x=\"1\"} 1\n"));
    assert_null(check_format(&c, "# HELP a b\n# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\n"
                                 "a_sum 0.5\na_count 1\n"));
    checker_free(&c);

    free(text);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

/* promtool (Debian's prometheus package) has the last word when it is installed. */
static void test_stats_promtool_accepts_the_output(void **state)
{
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0)
        skip();
    struct mesh_stats_shard *sh[2] = {new_shard(0), new_shard(0)};
    populate_everything(sh[0]);
    populate_everything(sh[1]);
    char *text = render_prom(sh, 2);
    char path[] = "/tmp/mesh-stats-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
    free(text);
    mesh_stats_shard_free(sh[0]);
    mesh_stats_shard_free(sh[1]);
}

/* ---- concurrency: two owners write while a third thread renders ---- */

/* Each writer runs at least WRITER_ITERS iterations, and on until the renderer has rendered
 * MIN_RENDERS times, so that renders really overlap the writes. */
enum { WRITER_ITERS = 200000, WRITER_SETS = 400, MIN_RENDERS = 50 };

struct writer {
    struct mesh_stats_shard *shard;
    const char *service;
    int id;
    size_t series;  /* series and request sets this writer made its shard create */
    unsigned iters; /* set before the writer says it is done */
};

static atomic_int writers_done;
static atomic_uint renders_done;
static atomic_bool render_failed;

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct mesh_stats_requests *sets[WRITER_SETS];
    unsigned nsets = 0;
    struct mesh_stats_histogram *h;
    struct mesh_stats_gauge *open;
    struct mesh_stats_counter *rx, *retries;
    const char *svc_route[] = {w->service, "primary"};
    const char *svc_ep[] = {w->service, "10.0.0.1:80"};
    const char *svc[] = {w->service};
    static const unsigned codes[] = {200, 200, 200, 404, 503};
    static _Thread_local bool seen[WRITER_SETS][3];
    memset(seen, 0, sizeof(seen));
    if (mesh_stats_histogram_get(w->shard, MESH_STATS_REQUEST_DURATION, svc_route, &h) ||
        mesh_stats_gauge_get(w->shard, MESH_STATS_UPSTREAM_CX_OPEN, svc_ep, &open) ||
        mesh_stats_counter_get(w->shard, MESH_STATS_DOWNSTREAM_RX_BYTES, NULL, &rx))
        return "lookup failed";
    w->series = 3; /* the histogram, the gauge and the retries counter */
    unsigned i;
    for (i = 0; i < WRITER_ITERS ||
                (atomic_load(&renders_done) < MIN_RENDERS && !atomic_load(&render_failed));
         i++) {
        /* New series keep appearing while the renderer walks the lists. */
        if (i % (WRITER_ITERS / WRITER_SETS) == 0 && nsets < WRITER_SETS) {
            char ep[32];
            snprintf(ep, sizeof(ep), "10.%d.%u.%u:80", w->id, nsets / 256, nsets % 256);
            if (mesh_stats_requests_get(w->shard, w->service, "primary", ep, &sets[nsets]))
                return "requests_get failed";
            nsets++;
            w->series++;
        }
        unsigned set = i % nsets, code = (i / 3) % 5;
        mesh_stats_requests_count(sets[set], codes[code]);
        if (!seen[set][code < 3 ? 0 : code - 2]) {
            seen[set][code < 3 ? 0 : code - 2] = true;
            w->series++;
        }
        mesh_stats_histogram_observe(h, (i * 7919u) % 3000000u);
        mesh_stats_gauge_add(open, 1);
        mesh_stats_counter_add(rx, 3);
        mesh_stats_gauge_add(open, -1);
        if (i % 1000 == 0) {
            if (mesh_stats_counter_get(w->shard, MESH_STATS_RETRIES, svc, &retries))
                return "counter_get failed";
            mesh_stats_counter_inc(retries);
        }
    }
    w->iters = i;
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

struct render_result {
    struct mesh_stats_shard **shards;
    struct writer *writers;
    unsigned renders;
    char problem[600];
};

/* Sums the requests samples and checks each one is a complete series of ours. */
static bool sum_requests(const char *text, regex_t *series_re, uint64_t *total)
{
    *total = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "mesh_requests_total{", 20) != 0)
            continue;
        size_t len = strcspn(p, "\n");
        char line[256];
        if (len >= sizeof(line))
            return false;
        memcpy(line, p, len);
        line[len] = '\0';
        if (regexec(series_re, line, 0, NULL, 0) != 0)
            return false;
        *total += strtoull(strrchr(line, ' ') + 1, NULL, 10);
    }
    return true;
}

static void *renderer_main(void *arg)
{
    struct render_result *r = arg;
    struct format_checker c;
    regex_t series_re;
    checker_init(&c);
    regcomp(&series_re,
            "^mesh_requests_total\\{service=\"svc-[ab]\",route=\"primary\","
            "endpoint=\"10\\.[12]\\.[0-9]+\\.[0-9]+:80\",code=\"(200|404|503)\"\\} [0-9]+$",
            REG_EXTENDED | REG_NOSUB);
    uint64_t last_total = 0;
    double last_rx = 0;
    for (bool last = false; !last;) {
        last = atomic_load(&writers_done) == 2; /* one more render after the writers finished */
        char *text = render_prom(r->shards, 2);
        char *js = render_json(r->shards, 2);
        const char *why = text ? check_format(&c, text) : "render failed";
        uint64_t total = 0;
        if (!why && !sum_requests(text, &series_re, &total))
            why = "a requests series is torn or foreign";
        double rx = text ? sample(text, "mesh_downstream_received_bytes_total") : 0;
        if (!why && (total < last_total || rx < last_rx))
            why = "a counter went backwards";
        double cnt = text ? sample(text, "mesh_request_duration_seconds_count{service=\"svc-a\","
                                         "route=\"primary\"}")
                          : 0;
        double inf = text ? sample(text, "mesh_request_duration_seconds_bucket{service=\"svc-a\","
                                         "route=\"primary\",le=\"+Inf\"}")
                          : 0;
        if (!why && cnt != inf)
            why = "histogram _count differs from its +Inf bucket";
        json_t *root = js ? json_loads(js, 0, NULL) : NULL;
        if (!why && !root)
            why = "invalid JSON";
        json_decref(root);
        if (!why && last) {
            uint64_t a = r->writers[0].iters, b = r->writers[1].iters;
            char retries[64];
            snprintf(retries, sizeof(retries), "mesh_retries_total{service=\"svc-a\"} %" PRIu64,
                     (a + 999) / 1000);
            if (total != a + b)
                why = "final requests total is not exact";
            else if (rx != 3.0 * (double)(a + b))
                why = "final rx bytes are not exact";
            else if (cnt != (double)a)
                why = "final histogram count is not exact";
            else if (!has_line(text, "mesh_upstream_connections_open{service=\"svc-b\","
                                     "endpoint=\"10.0.0.1:80\"} 0"))
                why = "final gauge is not zero";
            else if (!has_line(text, retries))
                why = "final retries are not exact";
        }
        if (why && !r->problem[0])
            snprintf(r->problem, sizeof(r->problem), "render %u: %s", r->renders, why);
        last_total = total;
        last_rx = rx;
        free(text);
        free(js);
        r->renders++;
        atomic_fetch_add(&renders_done, 1);
        if (r->problem[0]) {
            atomic_store(&render_failed, true);
            break;
        }
    }
    regfree(&series_re);
    checker_free(&c);
    return NULL;
}

static void test_stats_renders_while_two_workers_write(void **state)
{
    (void)state;
    struct mesh_stats_shard *shards[2] = {new_shard(0), new_shard(0)};
    struct writer w[2] = {{.shard = shards[0], .service = "svc-a", .id = 1},
                          {.shard = shards[1], .service = "svc-b", .id = 2}};
    struct render_result r = {.shards = shards, .writers = w};
    atomic_store(&writers_done, 0);
    atomic_store(&renders_done, 0);
    atomic_store(&render_failed, false);
    pthread_t tw[2], tr;
    assert_int_equal(pthread_create(&tr, NULL, renderer_main, &r), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tw[i], NULL, writer_main, &w[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *res;
        assert_int_equal(pthread_join(tw[i], &res), 0);
        if (res)
            fail_msg("writer %d: %s", i, (const char *)res);
    }
    assert_int_equal(pthread_join(tr, NULL), 0);
    if (r.problem[0])
        fail_msg("%s", r.problem);
    assert_true(r.renders > MIN_RENDERS);
    /* every series each writer created is there, per shard */
    for (int i = 0; i < 2; i++)
        assert_int_equal(mesh_stats_shard_size(shards[i]), unlabelled_families() + w[i].series);
    assert_true(w[0].series > 3 + WRITER_SETS * 2); /* most sets saw several codes */
    mesh_stats_shard_free(shards[0]);
    mesh_stats_shard_free(shards[1]);
}

/* ---- docs/metrics.md documents every family ---- */

static void test_stats_docs_list_every_family(void **state)
{
    (void)state;
    FILE *f = fopen("docs/metrics.md", "r");
    if (!f)
        skip(); /* not run from the repository root */
    char *doc = calloc(1, 1 << 20);
    size_t n = fread(doc, 1, (1 << 20) - 1, f);
    fclose(f);
    doc[n] = '\0';
    for (unsigned fam = 0; fam < MESH_STATS_FAMILY_COUNT; fam++) {
        char want[160];
        snprintf(want, sizeof(want), "`%s`", mesh_stats_family_name(fam));
        if (!strstr(doc, want))
            fail_msg("docs/metrics.md does not document %s", want);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_counts_requests_by_code),
        cmocka_unit_test(test_stats_codes_beyond_the_slots_stay_exact),
        cmocka_unit_test(test_stats_merges_shards_and_sorts),
        cmocka_unit_test(test_stats_gauges_sum_signed_across_shards),
        cmocka_unit_test(test_stats_escapes_label_values),
        cmocka_unit_test(test_stats_bucket_bounds_are_inclusive),
        cmocka_unit_test(test_stats_histogram_renders_cumulative_buckets),
        cmocka_unit_test(test_stats_quantiles_interpolate_within_a_bucket),
        cmocka_unit_test(test_stats_json_carries_percentiles_and_scalars),
        cmocka_unit_test(test_stats_renders_without_shards),
        cmocka_unit_test(test_stats_render_stops_at_the_buffer_limit),
        cmocka_unit_test(test_stats_cap_sends_new_series_to_the_sink),
        cmocka_unit_test(test_stats_refuses_bad_labels_and_wrong_types),
        cmocka_unit_test(test_stats_many_series_resolve_to_stable_handles),
        cmocka_unit_test(test_stats_exposition_format_is_valid),
        cmocka_unit_test(test_stats_promtool_accepts_the_output),
        cmocka_unit_test(test_stats_renders_while_two_workers_write),
        cmocka_unit_test(test_stats_docs_list_every_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
