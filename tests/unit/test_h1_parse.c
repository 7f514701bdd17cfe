/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/http/h1_parse: heads, every smuggling defence, splits, chunked framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_parse.h"

#define MAXH   128
#define S(lit) (lit), (sizeof(lit) - 1)

/* One parse of a whole input, kept with the buffer and header storage its slices borrow. */
struct run {
    enum mesh_err err;
    enum mesh_h1_error kind;
    struct mesh_h1_parser p;
    struct mesh_h1_message msg;
    struct mesh_h1_header headers[MAXH];
    char *buf;
    size_t len;
};

static char *copy(const char *in, size_t len)
{
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    if (len)
        memcpy(b, in, len);
    return b;
}

static void assert_slice(struct mesh_slice s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || (n && memcmp(s.p, want, n) != 0))
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.len, s.p ? s.p : "", want);
}

static void assert_same_slice(struct mesh_slice a, struct mesh_slice b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.p, b.p, a.len);
}

/* The outcome of a parse at the end of some input must match the one-call parse. */
static void assert_same_outcome(const struct run *w, enum mesh_err err,
                                const struct mesh_h1_parser *p, const struct mesh_h1_message *m)
{
    assert_int_equal(err, w->err);
    if (err == MESH_E_INVALID)
        assert_int_equal(p->error, w->kind);
    if (err != MESH_OK)
        return;
    const struct mesh_h1_message *a = &w->msg;
    assert_int_equal(m->head_len, a->head_len);
    assert_int_equal(m->n_headers, a->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        assert_same_slice(m->headers[i].name, a->headers[i].name);
        assert_same_slice(m->headers[i].value, a->headers[i].value);
    }
    assert_same_slice(m->method, a->method);
    assert_same_slice(m->target, a->target);
    assert_same_slice(m->path, a->path);
    assert_same_slice(m->query, a->query);
    assert_same_slice(m->host, a->host);
    assert_same_slice(m->reason, a->reason);
    assert_int_equal(m->status, a->status);
    assert_int_equal(m->version_minor, a->version_minor);
    assert_int_equal(m->content_length, a->content_length);
    assert_int_equal(m->chunked, a->chunked);
    assert_int_equal(m->keep_alive, a->keep_alive);
    assert_int_equal(m->upgrade, a->upgrade);
    assert_int_equal(m->expect_continue, a->expect_continue);
}

/* Splits the input in two at every point, and feeds it one byte at a time, each call with a
 * fresh exact-size copy of the bytes so far (the old one freed first: the parser must neither
 * read past len nor keep pointers into an old buffer). Every way must end like the whole. */
static void check_splits(const struct run *w, int kind, const struct mesh_h1_limits *lim)
{
    struct mesh_h1_header hs[MAXH];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    for (size_t k = 0; k <= w->len; k++) {
        mesh_h1_parser_init(&p, kind, lim, hs, MAXH);
        char *a = copy(w->buf, k);
        enum mesh_err err = mesh_h1_parse(&p, a, k, &m);
        if (err != MESH_E_AGAIN) {
            assert_same_outcome(w, err, &p, &m);
            free(a);
            continue;
        }
        free(a);
        char *b = copy(w->buf, w->len);
        err = mesh_h1_parse(&p, b, w->len, &m);
        assert_same_outcome(w, err, &p, &m);
        free(b);
    }
    mesh_h1_parser_init(&p, kind, lim, hs, MAXH);
    char *prev = NULL;
    enum mesh_err err = MESH_E_AGAIN;
    for (size_t n = 0; n <= w->len && err == MESH_E_AGAIN; n++) {
        char *cur = copy(w->buf, n);
        free(prev);
        prev = cur;
        err = mesh_h1_parse(&p, cur, n, &m);
    }
    assert_same_outcome(w, err, &p, &m);
    free(prev);
}

static struct run *parse_with(int kind, const struct mesh_h1_limits *lim, const char *in,
                              size_t len)
{
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->buf = copy(in, len);
    r->len = len;
    mesh_h1_parser_init(&r->p, kind, lim, r->headers, MAXH);
    r->err = mesh_h1_parse(&r->p, r->buf, len, &r->msg);
    r->kind = r->p.error;
    check_splits(r, kind, lim);
    return r;
}

static void run_free(struct run *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r);
}

static struct run *request_ok(const char *in, size_t len)
{
    struct run *r = parse_with(MESH_H1_REQUEST, NULL, in, len);
    if (r->err != MESH_OK)
        fail_msg("request refused: %s", mesh_h1_error_name(r->kind));
    return r;
}

static struct run *response_ok(const char *in, size_t len)
{
    struct run *r = parse_with(MESH_H1_RESPONSE, NULL, in, len);
    if (r->err != MESH_OK)
        fail_msg("response refused: %s", mesh_h1_error_name(r->kind));
    return r;
}

static void expect_error_with(int kind, const struct mesh_h1_limits *lim, const char *in,
                              size_t len, enum mesh_h1_error want, int status)
{
    struct run *r = parse_with(kind, lim, in, len);
    if (r->err != MESH_E_INVALID || r->kind != want)
        fail_msg("\"%.*s\": got %s/%s, want %s", (int)len, in, mesh_err_name(r->err),
                 mesh_h1_error_name(r->kind), mesh_h1_error_name(want));
    assert_int_equal(mesh_h1_error_status(r->kind), status);
    run_free(r);
}

static void expect_request_error(const char *in, size_t len, enum mesh_h1_error want, int status)
{
    expect_error_with(MESH_H1_REQUEST, NULL, in, len, want, status);
}

static void expect_response_error(const char *in, size_t len, enum mesh_h1_error want)
{
    expect_error_with(MESH_H1_RESPONSE, NULL, in, len, want, mesh_h1_error_status(want));
}

/* ---- valid requests ---- */

static void test_h1_parses_get_with_query(void **state)
{
    (void)state;
    struct run *r = request_ok(S("GET /api/v1/items?id=7&x=y HTTP/1.1\r\n"
                                 "Host: example.com:8080\r\n"
                                 "User-Agent: unit\r\n"
                                 "Accept: \t */* \t\r\n"
                                 "X-Empty:\r\n"
                                 "\r\n"));
    const struct mesh_h1_message *m = &r->msg;
    assert_true(m->is_request);
    assert_slice(m->method, "GET");
    assert_int_equal(m->method_id, MESH_H1_M_GET);
    assert_slice(m->target, "/api/v1/items?id=7&x=y");
    assert_int_equal(m->target_form, MESH_H1_T_ORIGIN);
    assert_slice(m->path, "/api/v1/items");
    assert_slice(m->query, "id=7&x=y");
    assert_slice(m->host, "example.com:8080");
    assert_int_equal(m->version_minor, 1);
    assert_int_equal(m->n_headers, 4);
    assert_slice(m->headers[0].name, "Host");
    assert_slice(m->headers[2].name, "Accept");
    assert_slice(m->headers[2].value, "*/*");
    assert_slice(m->headers[3].value, "");
    assert_int_equal(m->head_len, r->len);
    assert_int_equal(m->content_length, -1);
    assert_false(m->chunked);
    assert_true(m->keep_alive);
    assert_false(m->upgrade);
    assert_false(m->expect_continue);
    assert_int_equal(mesh_h1_request_body(m), MESH_H1_BODY_NONE);
    /* slices borrow the buffer itself */
    assert_ptr_equal(m->method.p, r->buf);
    assert_ptr_equal(m->headers[0].value.p, r->buf + strlen("GET /api/v1/items?id=7&x=y HTTP/1.1"
                                                            "\r\nHost: "));
    run_free(r);
}

static void test_h1_parses_post_with_content_length(void **state)
{
    (void)state;
    const char in[] = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    struct run *r = request_ok(S(in));
    assert_int_equal(r->msg.method_id, MESH_H1_M_POST);
    assert_int_equal(r->msg.content_length, 5);
    assert_int_equal(r->msg.head_len, sizeof(in) - 1 - 5);
    assert_memory_equal(r->buf + r->msg.head_len, "hello", 5);
    assert_int_equal(mesh_h1_request_body(&r->msg), MESH_H1_BODY_LENGTH);
    run_free(r);

    r = request_ok(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
    assert_int_equal(r->msg.content_length, 0);
    assert_int_equal(mesh_h1_request_body(&r->msg), MESH_H1_BODY_NONE);
    run_free(r);

    r = request_ok(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"));
    assert_int_equal(r->msg.content_length, INT64_MAX);
    run_free(r);
}

static void test_h1_parses_chunked_request(void **state)
{
    (void)state;
    struct run *r = request_ok(S("POST /up HTTP/1.1\r\nHost: a\r\n"
                                 "Transfer-Encoding: gzip, chunked\r\n\r\n"));
    assert_true(r->msg.chunked);
    assert_int_equal(r->msg.content_length, -1);
    assert_int_equal(mesh_h1_request_body(&r->msg), MESH_H1_BODY_CHUNKED);
    run_free(r);

    /* several lines make one list; case and empty list elements do not matter */
    r = request_ok(S("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=\"a,b\"\r\n"
                     "transfer-encoding: , CHUNKED\r\n\r\n"));
    assert_true(r->msg.chunked);
    run_free(r);
}

static void test_h1_accepts_identical_duplicate_content_length(void **state)
{
    (void)state;
    struct run *r = request_ok(S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                                 "content-length: 012\r\n\r\n"));
    assert_int_equal(r->msg.content_length, 12);
    run_free(r);
}

static void test_h1_parses_pipelined_requests(void **state)
{
    (void)state;
    const char in[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                      "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nxyz\r\n0\r\n\r\n"
                      "\r\n" /* a stray CRLF after a body is skipped */
                      "GET /four HTTP/1.0\r\n\r\n";
    const char *want[] = {"/one", "/two", "/three", "/four"};
    struct mesh_h1_header hs[MAXH];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, MAXH);
    size_t off = 0, len = sizeof(in) - 1;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mesh_h1_parse(&p, in + off, len - off, &m), MESH_OK);
        assert_slice(m.path, want[i]);
        off += m.head_len;
        switch (mesh_h1_request_body(&m)) {
        case MESH_H1_BODY_LENGTH:
            off += (size_t)m.content_length;
            break;
        case MESH_H1_BODY_CHUNKED: {
            struct mesh_h1_chunked c;
            size_t used = 0;
            mesh_h1_chunked_init(&c);
            assert_int_equal(mesh_h1_chunked_feed(&c, in + off, len - off, &used), MESH_OK);
            off += used;
            break;
        }
        default:
            break;
        }
        mesh_h1_parser_reset(&p);
    }
    assert_int_equal(off, len);
    assert_int_equal(mesh_h1_parse(&p, in + off, 0, &m), MESH_E_AGAIN);
}

static void test_h1_http10_keep_alive_semantics(void **state)
{
    (void)state;
    struct run *r = request_ok(S("GET / HTTP/1.0\r\n\r\n")); /* no Host needed in 1.0 */
    assert_int_equal(r->msg.version_minor, 0);
    assert_false(r->msg.keep_alive);
    assert_int_equal(r->msg.host.len, 0);
    run_free(r);

    r = request_ok(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert_true(r->msg.keep_alive);
    run_free(r);

    r = request_ok(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
    assert_false(r->msg.keep_alive);
    run_free(r);

    r = request_ok(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_true(r->msg.keep_alive);
    run_free(r);

    r = request_ok(
        S("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: bar ,CLOSE\r\n\r\n"));
    assert_false(r->msg.keep_alive);
    run_free(r);
}

static void test_h1_detects_upgrade_and_expect(void **state)
{
    (void)state;
    struct run *r =
        request_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\n"));
    assert_true(r->msg.upgrade);
    assert_true(r->msg.keep_alive);
    run_free(r);

    /* both halves are needed */
    r = request_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
    assert_false(r->msg.upgrade);
    run_free(r);
    r = request_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"));
    assert_false(r->msg.upgrade);
    run_free(r);
    /* HTTP/1.0 has no upgrade */
    r = request_ok(S("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"));
    assert_false(r->msg.upgrade);
    run_free(r);

    r = request_ok(S("PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                     "Expect: 100-Continue\r\n\r\n"));
    assert_true(r->msg.expect_continue);
    run_free(r);
    r = request_ok(S("PUT /big HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n"));
    assert_false(r->msg.expect_continue);
    run_free(r);
    /* a 1.0 server must ignore it (RFC 9110 10.1.1) */
    r = request_ok(S("PUT /big HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
    assert_false(r->msg.expect_continue);
    run_free(r);
}

static void test_h1_skips_empty_lines_before_the_request_line(void **state)
{
    (void)state;
    struct run *r = request_ok(S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_slice(r->msg.method, "GET");
    assert_int_equal(r->msg.head_len, r->len);
    run_free(r);
}

static void test_h1_understands_target_forms(void **state)
{
    (void)state;
    /* absolute-form: the authority wins over Host, as the origin will do */
    struct run *r =
        request_ok(S("GET http://Inner.example:81?q=1 HTTP/1.1\r\nHost: outer\r\n\r\n"));
    assert_int_equal(r->msg.target_form, MESH_H1_T_ABSOLUTE);
    assert_slice(r->msg.host, "Inner.example:81");
    assert_slice(r->msg.path, "/");
    assert_slice(r->msg.query, "q=1");
    run_free(r);

    r = request_ok(S("GET https://h/a/b?c HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_slice(r->msg.host, "h");
    assert_slice(r->msg.path, "/a/b");
    assert_slice(r->msg.query, "c");
    run_free(r);

    r = request_ok(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_int_equal(r->msg.target_form, MESH_H1_T_ASTERISK);
    assert_slice(r->msg.path, "*");
    run_free(r);

    r = request_ok(S("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"));
    assert_int_equal(r->msg.target_form, MESH_H1_T_AUTHORITY);
    assert_int_equal(r->msg.method_id, MESH_H1_M_CONNECT);
    assert_slice(r->msg.host, "db.internal:5432");
    assert_slice(r->msg.path, "");
    run_free(r);

    r = request_ok(S("GET /a?b?c HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"));
    assert_slice(r->msg.path, "/a");
    assert_slice(r->msg.query, "b?c");
    assert_slice(r->msg.host, "[::1]:8080");
    run_free(r);

    r = request_ok(S("PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_int_equal(r->msg.method_id, MESH_H1_M_OTHER);
    assert_slice(r->msg.method, "PURGE");
    run_free(r);
}

static void test_h1_accepts_heads_exactly_at_the_limits(void **state)
{
    (void)state;
    const struct mesh_h1_limits lim = {
        .max_request_line = 20, .max_header_bytes = 64, .max_headers = 2};
    /* a 20-byte request line; a 64-byte head with 2 headers */
    const char in[] = "GET /abcdef HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345\r\n\r\n";
    assert_int_equal(strlen("GET /abcdef HTTP/1.1"), 20);
    assert_int_equal(sizeof(in) - 1, 64);
    struct run *r = parse_with(MESH_H1_REQUEST, &lim, S(in));
    assert_int_equal(r->err, MESH_OK);
    assert_int_equal(r->msg.head_len, 64);
    run_free(r);
}

static void test_h1_find_header_ignores_case(void **state)
{
    (void)state;
    struct run *r =
        request_ok(S("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: 42\r\nx-request-id: 43\r\n\r\n"));
    const struct mesh_h1_header *h = mesh_h1_find_header(&r->msg, MESH_SLICE_LIT("X-REQUEST-ID"));
    assert_non_null(h);
    assert_slice(h->value, "42");
    assert_null(mesh_h1_find_header(&r->msg, MESH_SLICE_LIT("x-missing")));
    run_free(r);
}

static void test_h1_follows_a_moved_buffer(void **state)
{
    (void)state;
    const char in[] = "GET / HTTP/1.1\r\nHost: moved\r\nA: 1\r\nB: 2\r\n\r\n";
    size_t len = sizeof(in) - 1, half = 30;
    struct mesh_h1_header hs[8];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, 8);
    char *a = copy(in, len);
    assert_int_equal(mesh_h1_parse(&p, a, half, &m), MESH_E_AGAIN);
    assert_int_equal(p.n_headers, 1);
    char *b = copy(in, len);
    free(a);
    assert_int_equal(mesh_h1_parse(&p, b, len, &m), MESH_OK);
    for (size_t i = 0; i < m.n_headers; i++) {
        assert_true(m.headers[i].name.p >= b && m.headers[i].name.p < b + len);
        assert_true(m.headers[i].value.p >= b && m.headers[i].value.p < b + len);
    }
    assert_ptr_equal(m.host.p, b + strlen("GET / HTTP/1.1\r\nHost: "));
    assert_slice(m.host, "moved");
    free(b);
}

static void test_h1_outcomes_are_sticky_until_reset(void **state)
{
    (void)state;
    const char ok[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const char bad[] = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
    struct mesh_h1_header hs[8];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, 8);
    assert_int_equal(mesh_h1_parse(&p, S(ok), &m), MESH_OK);
    assert_int_equal(mesh_h1_parse(&p, S(ok), &m), MESH_OK);
    assert_int_equal(m.head_len, sizeof(ok) - 1);
    mesh_h1_parser_reset(&p);
    assert_int_equal(mesh_h1_parse(&p, S(bad), &m), MESH_E_INVALID);
    assert_int_equal(mesh_h1_parse(&p, S(ok), &m), MESH_E_INVALID);
    assert_int_equal(p.error, MESH_H1_E_WS_BEFORE_COLON);
    mesh_h1_parser_reset(&p);
    assert_int_equal(p.error, MESH_H1_E_NONE);
    assert_int_equal(mesh_h1_parse(&p, S(ok), &m), MESH_OK);
}

static void test_h1_never_reads_past_the_head(void **state)
{
    (void)state;
    /* garbage after the head is the body's or the next message's business */
    struct run *r = request_ok(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n\x00\x01\r\r\n junk"));
    assert_int_equal(r->msg.head_len, strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    run_free(r);
}

/* ---- request-side defences ---- */

static void test_h1_rejects_cl_te_conflict(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"),
                         MESH_H1_E_CL_TE_CONFLICT, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Length: 0\r\n\r\n"),
                         MESH_H1_E_CL_TE_CONFLICT, 400);
}

static void test_h1_rejects_conflicting_content_lengths(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                           "Content-Length: 6\r\n\r\n"),
                         MESH_H1_E_CL_CONFLICT, 400);
}

static void test_h1_rejects_invalid_content_length(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length: 9223372036854775808\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length: 99999999999999999999999\r\n\r\n"),
                         MESH_H1_E_CL_INVALID, 400);
}

static void test_h1_rejects_request_te_not_ending_in_chunked(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
                         MESH_H1_E_TE_NOT_CHUNKED, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: identity\r\n\r\n"),
                         MESH_H1_E_TE_NOT_CHUNKED, 400);
}

static void test_h1_rejects_invalid_transfer_encoding(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n"
                           "\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x;a=\"b\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
    /* HTTP/1.0 has no transfer codings: its framing would be guesswork */
    expect_request_error(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
                         MESH_H1_E_TE_INVALID, 400);
}

static void test_h1_rejects_obs_fold(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"), MESH_H1_E_OBS_FOLD,
                         400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"),
                         MESH_H1_E_OBS_FOLD, 400);
    /* whitespace between the request line and the first header (RFC 9112 2.2) */
    expect_request_error(S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), MESH_H1_E_OBS_FOLD, 400);
}

static void test_h1_rejects_nul(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n"), MESH_H1_E_NUL, 400);
    expect_request_error(S("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_NUL, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n"), MESH_H1_E_NUL, 400);
}

static void test_h1_rejects_bare_cr(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"), MESH_H1_E_BARE_CR,
                         400);
    expect_request_error(S("GET / HTTP/1.1\rHost: a\r\n\r\n"), MESH_H1_E_BARE_CR, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), MESH_H1_E_BARE_CR, 400);
}

static void test_h1_rejects_bare_lf(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\nHost: a\n\n"), MESH_H1_E_BARE_LF, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), MESH_H1_E_BARE_LF, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\n\n"), MESH_H1_E_BARE_LF, 400);
}

static void test_h1_rejects_control_characters(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n"), MESH_H1_E_CTL_CHAR,
                         400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n"), MESH_H1_E_CTL_CHAR,
                         400);
    expect_request_error(S("GET /\x1b[0m HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_CTL_CHAR, 400);
    /* HTAB and obs-text are legal in a value */
    struct run *r = request_ok(S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\tc\xe2\x82\xac\r\n\r\n"));
    assert_slice(r->msg.headers[1].value, "b\tc\xe2\x82\xac");
    run_free(r);
}

static void test_h1_rejects_whitespace_before_colon(void **state)
{
    (void)state;
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"),
                         MESH_H1_E_WS_BEFORE_COLON, 400);
    expect_request_error(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n"),
                         MESH_H1_E_WS_BEFORE_COLON, 400);
}

static void test_h1_rejects_invalid_header_names(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"),
                         MESH_H1_E_INVALID_HEADER_NAME, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX(a): b\r\n\r\n"),
                         MESH_H1_E_INVALID_HEADER_NAME, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"),
                         MESH_H1_E_INVALID_HEADER_NAME, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n"),
                         MESH_H1_E_INVALID_HEADER_NAME, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nTwo Words: b\r\n\r\n"),
                         MESH_H1_E_INVALID_HEADER_NAME, 400);
}

static void test_h1_rejects_request_line_over_limit(void **state)
{
    (void)state;
    const struct mesh_h1_limits lim = {.max_request_line = 20};
    expect_error_with(MESH_H1_REQUEST, &lim, S("GET /abcdefg HTTP/1.1\r\nHost: a\r\n\r\n"),
                      MESH_H1_E_REQUEST_LINE_TOO_LONG, 414);
    /* refused while it is still arriving, as soon as it passes the limit */
    struct mesh_h1_header hs[4];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, &lim, hs, 4);
    const char partial[] = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(mesh_h1_parse(&p, partial, 20, &m), MESH_E_AGAIN);
    assert_int_equal(mesh_h1_parse(&p, partial, 21, &m), MESH_E_INVALID);
    assert_int_equal(p.error, MESH_H1_E_REQUEST_LINE_TOO_LONG);
    /* the default is 8 KiB */
    size_t n = 8 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', n - 5);
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, 4);
    assert_int_equal(mesh_h1_parse(&p, big, n - 1, &m), MESH_E_AGAIN);
    assert_int_equal(mesh_h1_parse(&p, big, n, &m), MESH_E_INVALID);
    assert_int_equal(p.error, MESH_H1_E_REQUEST_LINE_TOO_LONG);
    free(big);
}

static void test_h1_rejects_head_over_limit(void **state)
{
    (void)state;
    const struct mesh_h1_limits lim = {.max_header_bytes = 63};
    expect_error_with(MESH_H1_REQUEST, &lim,
                      S("GET /abcdef HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345\r\n\r\n"),
                      MESH_H1_E_HEADERS_TOO_LARGE, 431);
    /* a header section that never ends is refused once it passes the limit (default 64 KiB) */
    struct mesh_h1_header hs[MAXH];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    size_t n = 64 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX-Long: ", 33);
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, MAXH);
    for (size_t len = 40; len < n; len += 1000)
        assert_int_equal(mesh_h1_parse(&p, big, len, &m), MESH_E_AGAIN);
    assert_int_equal(mesh_h1_parse(&p, big, n - 1, &m), MESH_E_AGAIN);
    assert_int_equal(mesh_h1_parse(&p, big, n, &m), MESH_E_INVALID);
    assert_int_equal(p.error, MESH_H1_E_HEADERS_TOO_LARGE);
    assert_int_equal(mesh_h1_error_status(p.error), 431);
    free(big);
}

static void test_h1_rejects_too_many_headers(void **state)
{
    (void)state;
    const struct mesh_h1_limits lim = {.max_headers = 2};
    expect_error_with(MESH_H1_REQUEST, &lim, S("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n"),
                      MESH_H1_E_TOO_MANY_HEADERS, 431);
    /* the storage size limits too */
    struct mesh_h1_header hs[1];
    struct mesh_h1_parser p;
    struct mesh_h1_message m;
    mesh_h1_parser_init(&p, MESH_H1_REQUEST, NULL, hs, 1);
    assert_int_equal(mesh_h1_parse(&p, S("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\n\r\n"), &m),
                     MESH_E_INVALID);
    assert_int_equal(p.error, MESH_H1_E_TOO_MANY_HEADERS);
}

static void test_h1_rejects_invalid_method(void **state)
{
    (void)state;
    expect_request_error(S("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_METHOD, 400);
    expect_request_error(S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_METHOD, 400);
    expect_request_error(S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_METHOD, 400);
    expect_request_error(S("GET\r\n\r\n"), MESH_H1_E_INVALID_METHOD, 400);
}

static void test_h1_rejects_malformed_version(void **state)
{
    (void)state;
    expect_request_error(S("GET / http/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_VERSION, 400);
    expect_request_error(S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_VERSION, 400);
    expect_request_error(S("GET / HTTP/1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_VERSION, 400);
    expect_request_error(S("GET /\r\n\r\n"), MESH_H1_E_INVALID_VERSION, 400);
    expect_request_error(S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_VERSION, 400);
}

static void test_h1_rejects_unsupported_version(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), MESH_H1_E_UNSUPPORTED_VERSION,
                         505);
    expect_request_error(S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), MESH_H1_E_UNSUPPORTED_VERSION,
                         505);
    expect_request_error(S("GET / HTTP/0.9\r\n\r\n"), MESH_H1_E_UNSUPPORTED_VERSION, 505);
}

static void test_h1_rejects_missing_or_duplicate_host(void **state)
{
    (void)state;
    expect_request_error(S("GET / HTTP/1.1\r\n\r\n"), MESH_H1_E_MISSING_HOST, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
                         MESH_H1_E_DUPLICATE_HOST, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n"),
                         MESH_H1_E_DUPLICATE_HOST, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), MESH_H1_E_INVALID_HOST, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), MESH_H1_E_INVALID_HOST, 400);
    expect_request_error(S("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), MESH_H1_E_INVALID_HOST, 400);
}

static void test_h1_rejects_invalid_target(void **state)
{
    (void)state;
    expect_request_error(S("GET  HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET,
                         400);
    expect_request_error(S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
                         MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET,
                         400);
    expect_request_error(S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
                         MESH_H1_E_INVALID_TARGET, 400);
    expect_request_error(S("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), MESH_H1_E_INVALID_TARGET,
                         400);
}

static void test_h1_error_names_and_statuses(void **state)
{
    (void)state;
    assert_string_equal(mesh_h1_error_name(MESH_H1_E_CL_TE_CONFLICT), "cl_te_conflict");
    assert_string_equal(mesh_h1_error_name(MESH_H1_E_HEADERS_TOO_LARGE), "headers_too_large");
    assert_string_equal(mesh_h1_error_name((enum mesh_h1_error)999), "unknown");
    assert_int_equal(mesh_h1_error_status(MESH_H1_E_REQUEST_LINE_TOO_LONG), 414);
    assert_int_equal(mesh_h1_error_status(MESH_H1_E_TOO_MANY_HEADERS), 431);
    assert_int_equal(mesh_h1_error_status(MESH_H1_E_UNSUPPORTED_VERSION), 505);
    assert_int_equal(mesh_h1_error_status(MESH_H1_E_NONE), 0);
    for (int a = 1; a < MESH_H1_E_COUNT; a++) {
        const char *name = mesh_h1_error_name((enum mesh_h1_error)a);
        assert_non_null(name);
        assert_true(strspn(name, "abcdefghijklmnopqrstuvwxyz_") == strlen(name));
        int st = mesh_h1_error_status((enum mesh_h1_error)a);
        assert_true(st == 400 || st == 414 || st == 431 || st == 505 || st == 502);
        for (int b = 1; b < a; b++)
            assert_string_not_equal(name, mesh_h1_error_name((enum mesh_h1_error)b));
    }
}

/* ---- responses ---- */

static void test_h1_parses_responses_and_their_framing(void **state)
{
    (void)state;
    struct run *r = response_ok(S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    assert_false(r->msg.is_request);
    assert_int_equal(r->msg.status, 200);
    assert_slice(r->msg.reason, "OK");
    assert_int_equal(r->msg.head_len, r->len - 2);
    assert_true(r->msg.keep_alive);
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_LENGTH);
    assert_int_equal(mesh_h1_response_body(&r->msg, true), MESH_H1_BODY_NONE);
    run_free(r);

    r = response_ok(S("HTTP/1.1 404 Not   Found \r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert_int_equal(r->msg.status, 404);
    assert_slice(r->msg.reason, "Not   Found ");
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_CHUNKED);
    run_free(r);

    /* no length: until close; a final coding other than chunked also means until close */
    r = response_ok(S("HTTP/1.0 200 OK\r\n\r\n"));
    assert_false(r->msg.keep_alive);
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_UNTIL_CLOSE);
    run_free(r);
    r = response_ok(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"));
    assert_false(r->msg.chunked);
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_UNTIL_CLOSE);
    run_free(r);

    /* servers that leave out the reason, with or without its SP */
    r = response_ok(S("HTTP/1.1 204\r\n\r\n"));
    assert_int_equal(r->msg.status, 204);
    assert_slice(r->msg.reason, "");
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_NONE);
    run_free(r);
    r = response_ok(S("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"));
    assert_slice(r->msg.reason, "");
    assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_NONE);
    run_free(r);
}

static void test_h1_responses_without_body(void **state)
{
    (void)state;
    const char *heads[] = {
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct run *r = response_ok(heads[i], strlen(heads[i]));
        assert_int_equal(mesh_h1_response_body(&r->msg, false), MESH_H1_BODY_NONE);
        if (r->msg.status == 101)
            assert_true(r->msg.upgrade);
        run_free(r);
    }
    struct run *r = response_ok(S("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
    assert_int_equal(mesh_h1_response_body(&r->msg, true), MESH_H1_BODY_NONE);
    run_free(r);
}

static void test_h1_rejects_bad_responses(void **state)
{
    (void)state;
    expect_response_error(S("HTTP/1.1 20 OK\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1 099 Low\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1 2000 OK\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1 abc OK\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1  200 OK\r\n\r\n"), MESH_H1_E_INVALID_STATUS);
    expect_response_error(S("HTTP/1.1x200 OK\r\n\r\n"), MESH_H1_E_INVALID_VERSION);
    expect_response_error(S("HTTP/3.0 200 OK\r\n\r\n"), MESH_H1_E_UNSUPPORTED_VERSION);
    expect_response_error(S("ICY 200 OK\r\n\r\n"), MESH_H1_E_INVALID_VERSION);
    expect_response_error(S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
                            "\r\n\r\n"),
                          MESH_H1_E_CL_TE_CONFLICT);
    expect_response_error(S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
                          MESH_H1_E_CL_CONFLICT);
    expect_response_error(S("HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n"),
                          MESH_H1_E_WS_BEFORE_COLON);
    expect_response_error(S("HTTP/1.1 200 OK\nContent-Length: 1\n\n"), MESH_H1_E_BARE_LF);
    expect_response_error(S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), MESH_H1_E_OBS_FOLD);
    expect_response_error(S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                          MESH_H1_E_TE_INVALID);
    assert_int_equal(mesh_h1_error_status(MESH_H1_E_INVALID_STATUS), 502);
    /* Host means nothing in a response */
    struct run *r = response_ok(S("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\n\r\n"));
    run_free(r);
}

/* ---- chunked framing ---- */

struct chunked_outcome {
    enum mesh_err err;
    enum mesh_h1_error kind;
    size_t used;
    uint64_t body_bytes;
};

/* Feeds in[0..len) in pieces of step bytes (0: all at once), each piece in its own exact-size
 * buffer, until the tracker stops asking for more. */
static struct chunked_outcome chunked_run(const struct mesh_h1_limits *lim, const char *in,
                                          size_t len, size_t step)
{
    struct mesh_h1_chunked c;
    struct chunked_outcome o = {MESH_E_AGAIN, MESH_H1_E_NONE, 0, 0};
    mesh_h1_chunked_init_limits(&c, lim);
    size_t off = 0;
    do {
        size_t n = step == 0 || len - off < step ? len - off : step;
        char *piece = copy(in + off, n);
        size_t used = 0;
        o.err = mesh_h1_chunked_feed(&c, piece, n, &used);
        free(piece);
        assert_true(used <= n);
        if (o.err == MESH_E_AGAIN)
            assert_int_equal(used, n);
        o.used += used;
        off += n;
    } while (o.err == MESH_E_AGAIN && off < len);
    o.kind = c.error;
    o.body_bytes = c.body_bytes;
    /* outcomes are sticky */
    size_t again = 99;
    if (o.err != MESH_E_AGAIN) {
        assert_int_equal(mesh_h1_chunked_feed(&c, "0\r\n\r\n", 5, &again), o.err);
        assert_int_equal(again, 0);
    }
    return o;
}

/* The whole, byte-at-a-time and every two-piece split must agree. */
static struct chunked_outcome chunked_check(const struct mesh_h1_limits *lim, const char *in,
                                            size_t len)
{
    struct chunked_outcome whole = chunked_run(lim, in, len, 0);
    for (size_t step = 1; step <= len; step++) {
        struct chunked_outcome o = chunked_run(lim, in, len, step);
        assert_int_equal(o.err, whole.err);
        assert_int_equal(o.kind, whole.kind);
        assert_int_equal(o.used, whole.used);
        assert_int_equal(o.body_bytes, whole.body_bytes);
    }
    for (size_t k = 1; k < len; k++) {
        struct mesh_h1_chunked c;
        size_t u1 = 0, u2 = 0;
        mesh_h1_chunked_init_limits(&c, lim);
        enum mesh_err err = mesh_h1_chunked_feed(&c, in, k, &u1);
        if (err == MESH_E_AGAIN)
            err = mesh_h1_chunked_feed(&c, in + k, len - k, &u2);
        assert_int_equal(err, whole.err);
        assert_int_equal(c.error, whole.kind);
        assert_int_equal(u1 + u2, whole.used);
    }
    return whole;
}

static void expect_chunked_ok(const char *in, size_t len, size_t body_len, uint64_t data)
{
    struct chunked_outcome o = chunked_check(NULL, in, len);
    if (o.err != MESH_OK)
        fail_msg("\"%.*s\": %s/%s", (int)len, in, mesh_err_name(o.err), mesh_h1_error_name(o.kind));
    assert_int_equal(o.used, body_len);
    assert_int_equal(o.body_bytes, data);
}

static void expect_chunked_error_with(const struct mesh_h1_limits *lim, const char *in, size_t len,
                                      enum mesh_h1_error want, size_t at)
{
    struct chunked_outcome o = chunked_check(lim, in, len);
    if (o.err != MESH_E_INVALID || o.kind != want)
        fail_msg("\"%.*s\": %s/%s, want %s", (int)len, in, mesh_err_name(o.err),
                 mesh_h1_error_name(o.kind), mesh_h1_error_name(want));
    assert_int_equal(o.used, at);
}

static void expect_chunked_error(const char *in, size_t len, enum mesh_h1_error want, size_t at)
{
    expect_chunked_error_with(NULL, in, len, want, at);
}

static void test_chunked_finds_the_end_of_the_body(void **state)
{
    (void)state;
    expect_chunked_ok(S("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 15, 5);
    expect_chunked_ok(S("1a\r\nabcdefghijklmnopqrstuvwxyz\r\nA\r\n0123456789\r\n000\r\n\r\n"), 54,
                      36);
    expect_chunked_ok(S("0\r\n\r\n"), 5, 0);
    /* an incomplete body asks for more and uses everything */
    struct chunked_outcome o = chunked_check(NULL, S("5\r\nhel"));
    assert_int_equal(o.err, MESH_E_AGAIN);
    assert_int_equal(o.used, 6);
    o = chunked_check(NULL, S("5\r\nhello\r\n0\r\n\r"));
    assert_int_equal(o.err, MESH_E_AGAIN);
}

static void test_chunked_accepts_extensions_and_trailers(void **state)
{
    (void)state;
    expect_chunked_ok(S("5;name=value\r\nhello\r\n0\r\n\r\n"), 26, 5);
    expect_chunked_ok(S("5 ; a ; b = \"q\\\"x;y\" ;c=d\r\nhello\r\n0;last\r\n\r\n"), 44, 5);
    expect_chunked_ok(S("0\r\nX-Checksum: abc\r\nX-Other:\t v \r\n\r\nnext"), 36, 0);
}

static void test_chunked_rejects_bad_sizes(void **state)
{
    (void)state;
    expect_chunked_error(S("g\r\n"), MESH_H1_E_CHUNK_SIZE, 0);
    expect_chunked_error(S("\r\n"), MESH_H1_E_CHUNK_SIZE, 0);
    expect_chunked_error(S("-5\r\n"), MESH_H1_E_CHUNK_SIZE, 0);
    expect_chunked_error(S("+5\r\n"), MESH_H1_E_CHUNK_SIZE, 0);
    expect_chunked_error(S("0x5\r\n"), MESH_H1_E_CHUNK_SIZE, 1);
    expect_chunked_error(S("5 \r\nhello\r\n"), MESH_H1_E_CHUNK_SIZE, 2);
    expect_chunked_error(S("5\r\nhello\r\n 0\r\n\r\n"), MESH_H1_E_CHUNK_SIZE, 10);
    /* 2^62 is the largest size; one more is refused before it can overflow */
    struct chunked_outcome o = chunked_check(NULL, S("4000000000000000\r\n"));
    assert_int_equal(o.err, MESH_E_AGAIN);
    expect_chunked_error(S("4000000000000001\r\n"), MESH_H1_E_CHUNK_SIZE, 15);
    expect_chunked_error(S("ffffffffffffffffffff\r\n"), MESH_H1_E_CHUNK_SIZE, 15);
    /* leading zeros are digits, until the line limit */
    expect_chunked_ok(S("00000000000000000000005\r\nhello\r\n0\r\n\r\n"), 37, 5);
}

static void test_chunked_rejects_bad_line_ends(void **state)
{
    (void)state;
    expect_chunked_error(S("5\nhello\r\n0\r\n\r\n"), MESH_H1_E_BARE_LF, 1);
    expect_chunked_error(S("5\rhello\r\n0\r\n\r\n"), MESH_H1_E_BARE_CR, 2);
    expect_chunked_error(S("5;a\nhello\r\n"), MESH_H1_E_BARE_LF, 3);
    expect_chunked_error(S("5\r\nhelloX\r\n0\r\n\r\n"), MESH_H1_E_CHUNK_MISSING_CRLF, 8);
    expect_chunked_error(S("5\r\nhello\rX0\r\n\r\n"), MESH_H1_E_CHUNK_MISSING_CRLF, 9);
    expect_chunked_error(S("5\r\nhello\n0\r\n\r\n"), MESH_H1_E_CHUNK_MISSING_CRLF, 8);
    expect_chunked_error(S("0\r\n\rX"), MESH_H1_E_BARE_CR, 4);
    expect_chunked_error(S("0\r\n\n"), MESH_H1_E_BARE_LF, 3);
}

static void test_chunked_rejects_bad_extensions(void **state)
{
    (void)state;
    expect_chunked_error(S("5;\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 2);
    expect_chunked_error(S("5;a=\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 4);
    expect_chunked_error(S("5;a b\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 4);
    expect_chunked_error(S("5;a \r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 4);
    expect_chunked_error(S("5;a=b \r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 6);
    expect_chunked_error(S("5;a=\"b\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 6);
    expect_chunked_error(S("5;a=\"b\"c\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 7);
    expect_chunked_error(S("5;a=b\x01\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 5);
    expect_chunked_error(S("5;a\0\r\nhello\r\n"), MESH_H1_E_CHUNK_EXT, 3);
}

static void test_chunked_rejects_bad_trailers(void **state)
{
    (void)state;
    expect_chunked_error(S("0\r\n X: a\r\n\r\n"), MESH_H1_E_TRAILER_INVALID, 3);
    expect_chunked_error(S("0\r\nX : a\r\n\r\n"), MESH_H1_E_TRAILER_INVALID, 4);
    expect_chunked_error(S("0\r\nNoColon\r\n\r\n"), MESH_H1_E_TRAILER_INVALID, 10);
    expect_chunked_error(S("0\r\nX: a\0\r\n\r\n"), MESH_H1_E_TRAILER_INVALID, 7);
    expect_chunked_error(S("0\r\nX: a\nY: b\r\n\r\n"), MESH_H1_E_BARE_LF, 7);
    expect_chunked_error(S("0\r\nX: a\rY: b\r\n\r\n"), MESH_H1_E_BARE_CR, 8);
}

static void test_chunked_enforces_its_limits(void **state)
{
    (void)state;
    const struct mesh_h1_limits lim = {.max_chunk_line = 8, .max_trailer_bytes = 12};
    /* 8 bytes of size line pass, 9 do not */
    struct chunked_outcome o = chunked_check(&lim, S("5;abcdef\r\nhello\r\n0\r\n\r\n"));
    assert_int_equal(o.err, MESH_OK);
    expect_chunked_error_with(&lim, S("5;abcdefg\r\nhello\r\n"), MESH_H1_E_CHUNK_LINE_TOO_LONG, 8);
    expect_chunked_error_with(&lim, S("000000005\r\nhello\r\n"), MESH_H1_E_CHUNK_LINE_TOO_LONG, 8);
    /* a trailer section of 12 bytes (CRLFs included) passes, 13 do not */
    o = chunked_check(&lim, S("0\r\nX: 12345\r\n\r\n"));
    assert_int_equal(o.err, MESH_OK);
    expect_chunked_error_with(&lim, S("0\r\nX: 123456\r\n\r\n"), MESH_H1_E_TRAILER_TOO_LARGE, 15);
    /* refused while still arriving */
    expect_chunked_error_with(&lim, S("0\r\nX-Never-Ending: aaaaaaa"), MESH_H1_E_TRAILER_TOO_LARGE,
                              15);
}

static void test_chunked_skips_large_data_in_bulk(void **state)
{
    (void)state;
    struct mesh_h1_chunked c;
    size_t used = 0;
    static char data[70000];
    memset(data, 'x', sizeof(data));
    mesh_h1_chunked_init(&c);
    assert_int_equal(mesh_h1_chunked_feed(&c, S("10000\r\n"), &used), MESH_E_AGAIN);
    assert_int_equal(mesh_h1_chunked_feed(&c, data, 40000, &used), MESH_E_AGAIN);
    assert_int_equal(used, 40000);
    memcpy(data + 25536, "\r\n0\r\n\r\n", 7);
    assert_int_equal(mesh_h1_chunked_feed(&c, data, 25536 + 7 + 10, &used), MESH_OK);
    assert_int_equal(used, 25536 + 7);
    assert_int_equal(c.body_bytes, 0x10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h1_parses_get_with_query),
        cmocka_unit_test(test_h1_parses_post_with_content_length),
        cmocka_unit_test(test_h1_parses_chunked_request),
        cmocka_unit_test(test_h1_accepts_identical_duplicate_content_length),
        cmocka_unit_test(test_h1_parses_pipelined_requests),
        cmocka_unit_test(test_h1_http10_keep_alive_semantics),
        cmocka_unit_test(test_h1_detects_upgrade_and_expect),
        cmocka_unit_test(test_h1_skips_empty_lines_before_the_request_line),
        cmocka_unit_test(test_h1_understands_target_forms),
        cmocka_unit_test(test_h1_accepts_heads_exactly_at_the_limits),
        cmocka_unit_test(test_h1_find_header_ignores_case),
        cmocka_unit_test(test_h1_follows_a_moved_buffer),
        cmocka_unit_test(test_h1_outcomes_are_sticky_until_reset),
        cmocka_unit_test(test_h1_never_reads_past_the_head),
        cmocka_unit_test(test_h1_rejects_cl_te_conflict),
        cmocka_unit_test(test_h1_rejects_conflicting_content_lengths),
        cmocka_unit_test(test_h1_rejects_invalid_content_length),
        cmocka_unit_test(test_h1_rejects_request_te_not_ending_in_chunked),
        cmocka_unit_test(test_h1_rejects_invalid_transfer_encoding),
        cmocka_unit_test(test_h1_rejects_obs_fold),
        cmocka_unit_test(test_h1_rejects_nul),
        cmocka_unit_test(test_h1_rejects_bare_cr),
        cmocka_unit_test(test_h1_rejects_bare_lf),
        cmocka_unit_test(test_h1_rejects_control_characters),
        cmocka_unit_test(test_h1_rejects_whitespace_before_colon),
        cmocka_unit_test(test_h1_rejects_invalid_header_names),
        cmocka_unit_test(test_h1_rejects_request_line_over_limit),
        cmocka_unit_test(test_h1_rejects_head_over_limit),
        cmocka_unit_test(test_h1_rejects_too_many_headers),
        cmocka_unit_test(test_h1_rejects_invalid_method),
        cmocka_unit_test(test_h1_rejects_malformed_version),
        cmocka_unit_test(test_h1_rejects_unsupported_version),
        cmocka_unit_test(test_h1_rejects_missing_or_duplicate_host),
        cmocka_unit_test(test_h1_rejects_invalid_target),
        cmocka_unit_test(test_h1_error_names_and_statuses),
        cmocka_unit_test(test_h1_parses_responses_and_their_framing),
        cmocka_unit_test(test_h1_responses_without_body),
        cmocka_unit_test(test_h1_rejects_bad_responses),
        cmocka_unit_test(test_chunked_finds_the_end_of_the_body),
        cmocka_unit_test(test_chunked_accepts_extensions_and_trailers),
        cmocka_unit_test(test_chunked_rejects_bad_sizes),
        cmocka_unit_test(test_chunked_rejects_bad_line_ends),
        cmocka_unit_test(test_chunked_rejects_bad_extensions),
        cmocka_unit_test(test_chunked_rejects_bad_trailers),
        cmocka_unit_test(test_chunked_enforces_its_limits),
        cmocka_unit_test(test_chunked_skips_large_data_in_bulk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
