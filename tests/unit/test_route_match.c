/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/route_match: path, header and method conditions, host patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/route_match.h"

#define S(lit) MESH_SLICE_LIT(lit)
#define H(n, v)                                                                                    \
    (struct mesh_h1_header)                                                                        \
    {                                                                                              \
        S(n), S(v)                                                                                 \
    }

/* Compiles a matcher with only a path condition; fails the test if it does not compile. */
static void compile_path(struct mesh_route_matcher *m, enum mesh_path_kind kind, const char *v)
{
    struct mesh_route_match src = {.path = {.kind = kind, .value = (char *)v}};
    char err[256] = "";
    assert_int_equal(mesh_route_matcher_compile(&src, m, err, sizeof(err)), MESH_OK);
    assert_string_equal(err, "");
}

static bool path_ok(const struct mesh_route_matcher *m, const char *path)
{
    return mesh_route_matcher_match(m, S("GET"), mesh_slice_cstr(path), NULL, 0);
}

static void test_match_any_path(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_ANY, NULL);
    assert_true(path_ok(&m, "/"));
    assert_true(path_ok(&m, ""));
    assert_true(path_ok(&m, "/anything/at/all?x=1"));
    mesh_route_matcher_free(&m);
}

static void test_match_exact_path(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_EXACT, "/a");
    assert_true(path_ok(&m, "/a"));
    assert_true(path_ok(&m, "/a?x=1")); /* the query is not part of the path */
    assert_false(path_ok(&m, "/a/"));
    assert_false(path_ok(&m, "/ab"));
    assert_false(path_ok(&m, "/A"));
    assert_false(path_ok(&m, "/"));
    assert_false(path_ok(&m, ""));
    mesh_route_matcher_free(&m);
}

static void test_match_prefix_path(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_PREFIX, "/api/");
    assert_true(path_ok(&m, "/api/"));
    assert_true(path_ok(&m, "/api/v1/users"));
    assert_true(path_ok(&m, "/api/?q"));
    assert_false(path_ok(&m, "/api"));
    assert_false(path_ok(&m, "/api?/"));
    assert_false(path_ok(&m, "/API/"));
    assert_false(path_ok(&m, "/v1/api/"));
    mesh_route_matcher_free(&m);
}

static void test_match_glob_path(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_GLOB, "/api/v1/*");
    assert_true(path_ok(&m, "/api/v1/"));
    assert_true(path_ok(&m, "/api/v1/users"));
    assert_true(path_ok(&m, "/api/v1/a/b/c")); /* '*' crosses '/' */
    assert_true(path_ok(&m, "/api/v1/users?page=2"));
    assert_false(path_ok(&m, "/api/v1"));
    assert_false(path_ok(&m, "/api/v2/users"));
    assert_false(path_ok(&m, "/x/api/v1/users"));
    mesh_route_matcher_free(&m);

    compile_path(&m, MESH_PATH_GLOB, "/a/*/c");
    assert_true(path_ok(&m, "/a/b/c"));
    assert_true(path_ok(&m, "/a/b/x/c"));
    assert_true(path_ok(&m, "/a//c"));
    assert_true(path_ok(&m, "/a/c/c"));
    assert_false(path_ok(&m, "/a/c"));
    assert_false(path_ok(&m, "/a/b/c/d"));
    mesh_route_matcher_free(&m);

    compile_path(&m, MESH_PATH_GLOB, "*.json");
    assert_true(path_ok(&m, "/x/y.json"));
    assert_true(path_ok(&m, ".json"));
    assert_false(path_ok(&m, "/x/y.json5"));
    mesh_route_matcher_free(&m);
}

static void test_match_glob_several_stars(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_GLOB, "/a*b*c");
    assert_true(path_ok(&m, "/abc"));
    assert_true(path_ok(&m, "/aXbYbZc"));
    assert_true(path_ok(&m, "/abbbc"));
    assert_false(path_ok(&m, "/acb"));
    assert_false(path_ok(&m, "/abcd"));
    mesh_route_matcher_free(&m);

    /* The middle piece must fit between head and tail without overlapping them. */
    compile_path(&m, MESH_PATH_GLOB, "/x*yy*yz");
    assert_true(path_ok(&m, "/xyyyz"));
    assert_false(path_ok(&m, "/xyyz"));
    assert_true(path_ok(&m, "/xayybyz"));
    mesh_route_matcher_free(&m);

    /* Each middle piece consumes what it matched: two pieces need two occurrences. */
    compile_path(&m, MESH_PATH_GLOB, "/x*ab*ab*y");
    assert_false(path_ok(&m, "/xaby"));
    assert_true(path_ok(&m, "/xababy"));
    assert_true(path_ok(&m, "/xabqaby"));
    mesh_route_matcher_free(&m);

    compile_path(&m, MESH_PATH_GLOB, "/**/end");
    assert_true(path_ok(&m, "/a/b/end"));
    assert_true(path_ok(&m, "//end"));
    assert_false(path_ok(&m, "/end"));
    mesh_route_matcher_free(&m);

    compile_path(&m, MESH_PATH_GLOB, "*");
    assert_true(path_ok(&m, ""));
    assert_true(path_ok(&m, "/whatever"));
    mesh_route_matcher_free(&m);

    /* A "glob" without '*' is an exact path. */
    compile_path(&m, MESH_PATH_GLOB, "/plain");
    assert_true(path_ok(&m, "/plain"));
    assert_false(path_ok(&m, "/plain/x"));
    mesh_route_matcher_free(&m);
}

/* A pattern that makes naive backtracking explode: many stars against a long near-miss. */
static void test_match_glob_pathological_is_fast(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_GLOB, "/*a*a*a*a*a*a*a*a*a*a*a*a*b");
    char path[4001];
    path[0] = '/';
    memset(path + 1, 'a', sizeof(path) - 2);
    path[sizeof(path) - 1] = '\0';
    for (int k = 0; k < 2000; k++)
        assert_false(path_ok(&m, path));
    path[sizeof(path) - 2] = 'b';
    assert_true(path_ok(&m, path));
    mesh_route_matcher_free(&m);
}

static void test_match_regex_path_is_anchored(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_REGEX, "/v[0-9]+/.*");
    assert_true(path_ok(&m, "/v1/x"));
    assert_true(path_ok(&m, "/v12/"));
    assert_true(path_ok(&m, "/v12/?q=1"));
    assert_false(path_ok(&m, "/v/x"));
    assert_false(path_ok(&m, "/api/v1/x")); /* anchored at the start */
    mesh_route_matcher_free(&m);

    compile_path(&m, MESH_PATH_REGEX, "/v[0-9]+");
    assert_true(path_ok(&m, "/v7"));
    assert_false(path_ok(&m, "/v7/x")); /* anchored at the end */
    mesh_route_matcher_free(&m);

    /* Alternation stays inside the anchors. */
    compile_path(&m, MESH_PATH_REGEX, "/a|/b");
    assert_true(path_ok(&m, "/a"));
    assert_true(path_ok(&m, "/b"));
    assert_false(path_ok(&m, "/ab"));
    assert_false(path_ok(&m, "/b/c"));
    mesh_route_matcher_free(&m);

    /* Explicit anchors are harmless. */
    compile_path(&m, MESH_PATH_REGEX, "^/v[0-9]+/$");
    assert_true(path_ok(&m, "/v2/"));
    assert_false(path_ok(&m, "/v2/x"));
    mesh_route_matcher_free(&m);
}

static void test_match_regex_subject_too_long(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_path(&m, MESH_PATH_REGEX, "/.*");
    size_t n = MESH_ROUTE_REGEX_MAX_SUBJECT + 1;
    char *path = malloc(n + 1);
    assert_non_null(path);
    path[0] = '/';
    memset(path + 1, 'x', n - 1);
    path[n] = '\0';
    assert_false(path_ok(&m, path));
    path[n - 1] = '\0'; /* exactly at the limit */
    assert_true(path_ok(&m, path));
    free(path);
    /* Embedded NUL: the parser refuses it, the matcher does not guess. */
    const char nul[] = "/a\0b";
    assert_false(mesh_route_matcher_match(&m, S("GET"), mesh_slice_make(nul, 4), NULL, 0));
    mesh_route_matcher_free(&m);
}

static void test_compile_rejects_bad_regex(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    struct mesh_route_match src = {.path = {.kind = MESH_PATH_REGEX, .value = "/a("}};
    char err[256] = "";
    assert_int_equal(mesh_route_matcher_compile(&src, &m, err, sizeof(err)), MESH_E_INVALID);
    assert_non_null(strstr(err, "path regex \"/a(\" does not compile"));
    mesh_route_matcher_free(&m); /* nothing to free, but allowed */

    /* Compiles only once wrapped: refused, not given another meaning. */
    src.path.value = "a)|(b";
    assert_int_equal(mesh_route_matcher_compile(&src, &m, err, sizeof(err)), MESH_E_INVALID);

    struct mesh_header_match hm = {.name = "x-v", .kind = MESH_HEADER_REGEX, .value = "[a-"};
    struct mesh_route_match hsrc = {.headers = &hm, .n_headers = 1, .method = "GET"};
    assert_int_equal(mesh_route_matcher_compile(&hsrc, &m, err, sizeof(err)), MESH_E_INVALID);
    assert_non_null(strstr(err, "header x-v regex \"[a-\""));
    /* errbuf may be NULL. */
    assert_int_equal(mesh_route_matcher_compile(&hsrc, &m, NULL, 0), MESH_E_INVALID);
}

static void test_compile_rejects_missing_values(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    char err[256];
    struct mesh_route_match src = {.path = {.kind = MESH_PATH_PREFIX, .value = NULL}};
    assert_int_equal(mesh_route_matcher_compile(&src, &m, err, sizeof(err)), MESH_E_INVALID);
    assert_string_equal(err, "path condition without a value");

    struct mesh_header_match hms[2] = {
        {.name = "x-ok", .kind = MESH_HEADER_EXACT, .value = "1"},
        {.name = "x-bad", .kind = MESH_HEADER_PREFIX, .value = NULL},
    };
    struct mesh_route_match hsrc = {.headers = hms, .n_headers = 2};
    assert_int_equal(mesh_route_matcher_compile(&hsrc, &m, err, sizeof(err)), MESH_E_INVALID);
    assert_string_equal(err, "header x-bad: condition without a value");

    hms[1] = (struct mesh_header_match){.name = NULL, .kind = MESH_HEADER_PRESENT};
    assert_int_equal(mesh_route_matcher_compile(&hsrc, &m, err, sizeof(err)), MESH_E_INVALID);
    assert_string_equal(err, "header condition without a name");
}

static bool hdr_ok(const struct mesh_route_matcher *m, const struct mesh_h1_header *h, size_t n)
{
    return mesh_route_matcher_match(m, S("GET"), S("/"), h, n);
}

static void compile_header(struct mesh_route_matcher *m, const char *name,
                           enum mesh_header_match_kind kind, const char *value)
{
    struct mesh_header_match hm = {.name = (char *)name, .kind = kind, .value = (char *)value};
    struct mesh_route_match src = {.headers = &hm, .n_headers = 1};
    assert_int_equal(mesh_route_matcher_compile(&src, m, NULL, 0), MESH_OK);
}

static void test_match_header_exact(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_header(&m, "x-user", MESH_HEADER_EXACT, "alice");
    const struct mesh_h1_header a[] = {H("Host", "h"), H("X-User", "alice")};
    const struct mesh_h1_header b[] = {H("X-USER", "Alice")};
    const struct mesh_h1_header c[] = {H("x-user", "alice2")};
    const struct mesh_h1_header d[] = {H("x-users", "alice")};
    assert_true(hdr_ok(&m, a, 2));  /* name case-insensitive */
    assert_false(hdr_ok(&m, b, 1)); /* value case-sensitive */
    assert_false(hdr_ok(&m, c, 1));
    assert_false(hdr_ok(&m, d, 1));
    assert_false(hdr_ok(&m, NULL, 0));
    mesh_route_matcher_free(&m);
}

static void test_match_header_prefix(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_header(&m, "Authorization", MESH_HEADER_PREFIX, "Bearer ");
    const struct mesh_h1_header yes[] = {H("authorization", "Bearer abc")};
    const struct mesh_h1_header exact[] = {H("authorization", "Bearer ")};
    const struct mesh_h1_header no[] = {H("authorization", "Basic abc")};
    const struct mesh_h1_header shorter[] = {H("authorization", "Bear")};
    assert_true(hdr_ok(&m, yes, 1));
    assert_true(hdr_ok(&m, exact, 1));
    assert_false(hdr_ok(&m, no, 1));
    assert_false(hdr_ok(&m, shorter, 1));
    mesh_route_matcher_free(&m);
}

static void test_match_header_regex(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_header(&m, "x-version", MESH_HEADER_REGEX, "v[0-9]+");
    const struct mesh_h1_header yes[] = {H("X-Version", "v42")};
    const struct mesh_h1_header partial[] = {H("X-Version", "v42-beta")};
    const struct mesh_h1_header no[] = {H("X-Version", "version")};
    assert_true(hdr_ok(&m, yes, 1));
    assert_false(hdr_ok(&m, partial, 1)); /* anchored */
    assert_false(hdr_ok(&m, no, 1));
    mesh_route_matcher_free(&m);
}

static void test_match_header_present(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_header(&m, "x-debug", MESH_HEADER_PRESENT, NULL);
    const struct mesh_h1_header empty[] = {H("Host", "h"), H("X-Debug", "")};
    const struct mesh_h1_header other[] = {H("Host", "h"), H("X-Debugger", "1")};
    assert_true(hdr_ok(&m, empty, 2));
    assert_false(hdr_ok(&m, other, 2));
    assert_false(hdr_ok(&m, NULL, 0));
    mesh_route_matcher_free(&m);
}

static void test_match_header_repeated_any_value(void **state)
{
    (void)state;
    struct mesh_route_matcher m;
    compile_header(&m, "x-env", MESH_HEADER_EXACT, "canary");
    const struct mesh_h1_header h[] = {H("x-env", "prod"), H("Host", "h"), H("X-Env", "canary")};
    assert_true(hdr_ok(&m, h, 3));
    assert_false(hdr_ok(&m, h, 2)); /* without the second x-env */
    mesh_route_matcher_free(&m);
}

static void test_match_every_header_must_match(void **state)
{
    (void)state;
    struct mesh_header_match hms[2] = {
        {.name = "x-a", .kind = MESH_HEADER_EXACT, .value = "1"},
        {.name = "x-b", .kind = MESH_HEADER_PRESENT},
    };
    struct mesh_route_match src = {.headers = hms, .n_headers = 2};
    struct mesh_route_matcher m;
    assert_int_equal(mesh_route_matcher_compile(&src, &m, NULL, 0), MESH_OK);
    const struct mesh_h1_header both[] = {H("x-b", "z"), H("x-a", "1")};
    const struct mesh_h1_header only_a[] = {H("x-a", "1")};
    const struct mesh_h1_header only_b[] = {H("x-b", "1")};
    assert_true(hdr_ok(&m, both, 2));
    assert_false(hdr_ok(&m, only_a, 1));
    assert_false(hdr_ok(&m, only_b, 1));
    mesh_route_matcher_free(&m);
}

static void test_match_method(void **state)
{
    (void)state;
    struct mesh_route_match src = {.method = "POST"};
    struct mesh_route_matcher m;
    assert_int_equal(mesh_route_matcher_compile(&src, &m, NULL, 0), MESH_OK);
    assert_true(mesh_route_matcher_match(&m, S("POST"), S("/"), NULL, 0));
    assert_false(mesh_route_matcher_match(&m, S("post"), S("/"), NULL, 0));
    assert_false(mesh_route_matcher_match(&m, S("GET"), S("/"), NULL, 0));
    assert_false(mesh_route_matcher_match(&m, S("POSTS"), S("/"), NULL, 0));
    mesh_route_matcher_free(&m);

    struct mesh_route_match any = {0};
    assert_int_equal(mesh_route_matcher_compile(&any, &m, NULL, 0), MESH_OK);
    assert_true(mesh_route_matcher_match(&m, S("DELETE"), S("/x"), NULL, 0));
    mesh_route_matcher_free(&m);
}

static void test_match_all_conditions_together(void **state)
{
    (void)state;
    struct mesh_header_match hm = {.name = "x-canary", .kind = MESH_HEADER_EXACT, .value = "1"};
    struct mesh_route_match src = {.path = {.kind = MESH_PATH_GLOB, .value = "/api/v1/*"},
                                   .headers = &hm,
                                   .n_headers = 1,
                                   .method = "GET"};
    struct mesh_route_matcher m;
    assert_int_equal(mesh_route_matcher_compile(&src, &m, NULL, 0), MESH_OK);
    const struct mesh_h1_header h[] = {H("X-Canary", "1")};
    assert_true(mesh_route_matcher_match(&m, S("GET"), S("/api/v1/pay"), h, 1));
    assert_false(mesh_route_matcher_match(&m, S("PUT"), S("/api/v1/pay"), h, 1));
    assert_false(mesh_route_matcher_match(&m, S("GET"), S("/api/v2/pay"), h, 1));
    assert_false(mesh_route_matcher_match(&m, S("GET"), S("/api/v1/pay"), h, 0));
    mesh_route_matcher_free(&m);
    mesh_route_matcher_free(&m); /* freed matchers are zeroed: twice is fine */
    mesh_route_matcher_free(NULL);
}

static bool host_ok(const char *pattern, const char *host)
{
    return mesh_host_matches(pattern, mesh_slice_cstr(host));
}

static void test_host_patterns(void **state)
{
    (void)state;
    assert_true(host_ok("*", "anything.example"));
    assert_true(host_ok("*", ""));
    assert_true(host_ok("*.example.com", "a.example.com"));
    assert_true(host_ok("*.example.com", "A.Example.COM"));
    assert_true(host_ok("*.example.com", "a.b.example.com"));
    assert_false(host_ok("*.example.com", "example.com"));  /* not the apex */
    assert_false(host_ok("*.example.com", ".example.com")); /* nothing before the dot */
    assert_false(host_ok("*.example.com", "badexample.com"));
    assert_false(host_ok("*.example.com", "a.example.com.evil"));
    assert_true(host_ok("payment.default.svc", "Payment.Default.SVC"));
    assert_false(host_ok("payment.default.svc", "payment.default.svc.cluster"));
    assert_false(host_ok("payment.default.svc", "payment.default.sv"));
    assert_false(host_ok("payment", ""));
    /* A slice need not be NUL-terminated. */
    assert_true(mesh_host_matches("a.com", mesh_slice_make("a.com:80", 5)));
}

static void assert_stripped(const char *in, const char *want)
{
    struct mesh_slice s = mesh_host_strip_port(mesh_slice_cstr(in));
    assert_int_equal(s.len, strlen(want));
    assert_true(s.len == 0 || memcmp(s.p, want, s.len) == 0);
    assert_ptr_equal(s.p, in); /* borrows the input */
}

static void test_host_strip_port(void **state)
{
    (void)state;
    assert_stripped("a.example.com:8080", "a.example.com");
    assert_stripped("a.example.com", "a.example.com");
    assert_stripped("a.example.com:", "a.example.com");
    assert_stripped("a.example.com:80x", "a.example.com:80x");
    assert_stripped("[::1]:8080", "[::1]");
    assert_stripped("[::1]", "[::1]");
    assert_stripped("[fe80::1%25eth0]:80", "[fe80::1%25eth0]");
    assert_stripped("[::1]junk", "[::1]junk");
    assert_stripped("[::1]80", "[::1]80");
    assert_stripped("[::1", "[::1");
    assert_stripped("::1", "::1");
    assert_stripped("2001:db8::1", "2001:db8::1");
    assert_stripped("127.0.0.1:15001", "127.0.0.1");
    assert_stripped("", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_any_path),
        cmocka_unit_test(test_match_exact_path),
        cmocka_unit_test(test_match_prefix_path),
        cmocka_unit_test(test_match_glob_path),
        cmocka_unit_test(test_match_glob_several_stars),
        cmocka_unit_test(test_match_glob_pathological_is_fast),
        cmocka_unit_test(test_match_regex_path_is_anchored),
        cmocka_unit_test(test_match_regex_subject_too_long),
        cmocka_unit_test(test_compile_rejects_bad_regex),
        cmocka_unit_test(test_compile_rejects_missing_values),
        cmocka_unit_test(test_match_header_exact),
        cmocka_unit_test(test_match_header_prefix),
        cmocka_unit_test(test_match_header_regex),
        cmocka_unit_test(test_match_header_present),
        cmocka_unit_test(test_match_header_repeated_any_value),
        cmocka_unit_test(test_match_every_header_must_match),
        cmocka_unit_test(test_match_method),
        cmocka_unit_test(test_match_all_conditions_together),
        cmocka_unit_test(test_host_patterns),
        cmocka_unit_test(test_host_strip_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
