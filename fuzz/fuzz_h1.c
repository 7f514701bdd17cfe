/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for the HTTP/1.1 parser: the input is read as pipelined requests, as
 * pipelined responses and as a chunked body. Every parse is repeated byte by byte and in pieces
 * held in fresh exact-size buffers; all ways must agree, and what is accepted must be sane. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

#define MAXH         16
#define MAX_MESSAGES 8

/* Small limits, so that short inputs reach them. */
static const struct mesh_h1_limits limits = {
    .max_request_line = 200,
    .max_header_bytes = 1024,
    .max_headers = 12,
    .max_chunk_line = 48,
    .max_trailer_bytes = 200,
};

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static char *copy(const char *in, size_t n)
{
    char *b = malloc(n ? n : 1);
    check(b != NULL);
    if (n)
        memcpy(b, in, n);
    return b;
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int inside(struct mesh_slice s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

/* What an accepted head must look like. */
static void check_message(const struct mesh_h1_message *m, const char *buf, size_t len, int kind)
{
    check(m->head_len >= 4 && m->head_len <= len && m->head_len <= limits.max_header_bytes);
    check(memcmp(buf + m->head_len - 4, "\r\n\r\n", 4) == 0);
    check(m->n_headers <= limits.max_headers);
    check(m->version_minor == 0 || m->version_minor == 1);
    check(m->content_length >= -1);
    check(!(m->chunked && m->content_length >= 0));
    check(!m->upgrade || m->version_minor == 1);
    for (size_t i = 0; i < m->n_headers; i++) {
        struct mesh_slice n = m->headers[i].name, v = m->headers[i].value;
        check(n.len > 0 && inside(n, buf, m->head_len) && inside(v, buf, m->head_len));
        for (size_t j = 0; j < n.len; j++)
            check(is_tchar((unsigned char)n.p[j]));
        for (size_t j = 0; j < v.len; j++)
            check(v.p[j] != '\r' && v.p[j] != '\n' && v.p[j] != '\0');
        if (v.len)
            check(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.len - 1] != ' ' &&
                  v.p[v.len - 1] != '\t');
    }
    if (kind == MESH_H1_REQUEST) {
        check(m->is_request && m->method.len > 0 && m->target.len > 0);
        check(inside(m->method, buf, len) && inside(m->target, buf, len));
        check(inside(m->host, buf, len) && inside(m->query, buf, len));
        check(m->target_form == MESH_H1_T_AUTHORITY || m->path.len > 0);
        check(!m->expect_continue || m->version_minor == 1);
        check(m->version_minor == 0 || m->host.p != NULL);
        check(mesh_h1_request_body(m) != MESH_H1_BODY_UNTIL_CLOSE);
    } else {
        check(!m->is_request && m->status >= 100 && m->status <= 999);
        check(inside(m->reason, buf, len));
    }
}

struct outcome {
    enum mesh_err err;
    enum mesh_h1_error kind;
    struct mesh_h1_message msg;
    const char *buf; /* what msg's slices point into */
};

static int same_slice(struct mesh_slice a, const char *abuf, struct mesh_slice b, const char *bbuf)
{
    if (a.len != b.len)
        return 0;
    if (a.len == 0)
        return 1;
    if (memcmp(a.p, b.p, a.len) != 0)
        return 0;
    /* a slice into the buffer must be at the same place in both; others (the static "/") are
       compared by content only */
    int ain = a.p >= abuf && a.p < abuf + limits.max_header_bytes;
    int bin = b.p >= bbuf && b.p < bbuf + limits.max_header_bytes;
    return ain == bin && (!ain || a.p - abuf == b.p - bbuf);
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    check(a->err == b->err);
    check(a->kind == b->kind);
    if (a->err != MESH_OK)
        return;
    const struct mesh_h1_message *x = &a->msg, *y = &b->msg;
    check(x->head_len == y->head_len && x->n_headers == y->n_headers);
    for (size_t i = 0; i < x->n_headers; i++) {
        check(same_slice(x->headers[i].name, a->buf, y->headers[i].name, b->buf));
        check(same_slice(x->headers[i].value, a->buf, y->headers[i].value, b->buf));
    }
    check(same_slice(x->method, a->buf, y->method, b->buf));
    check(same_slice(x->target, a->buf, y->target, b->buf));
    check(same_slice(x->path, a->buf, y->path, b->buf));
    check(same_slice(x->query, a->buf, y->query, b->buf));
    check(same_slice(x->host, a->buf, y->host, b->buf));
    check(same_slice(x->reason, a->buf, y->reason, b->buf));
    check(x->method_id == y->method_id && x->target_form == y->target_form);
    check(x->status == y->status && x->version_minor == y->version_minor);
    check(x->content_length == y->content_length && x->chunked == y->chunked);
    check(x->keep_alive == y->keep_alive && x->upgrade == y->upgrade);
    check(x->expect_continue == y->expect_continue);
}

/* Parses one head from in[0..len) three ways; returns the one-call outcome in *whole (its
 * slices borrow in and hs). */
static void parse_three_ways(int kind, const char *in, size_t len, struct mesh_h1_header *hs,
                             struct outcome *whole)
{
    struct mesh_h1_parser p;
    struct mesh_h1_header hs2[MAXH];
    struct outcome o = {0};

    mesh_h1_parser_init(&p, kind, &limits, hs, MAXH);
    whole->err = mesh_h1_parse(&p, in, len, &whole->msg);
    whole->kind = p.error;
    whole->buf = in;
    check((whole->err == MESH_E_INVALID) == (whole->kind != MESH_H1_E_NONE));
    if (whole->err == MESH_E_AGAIN) /* a head is refused as soon as it passes the limit */
        check(len <= limits.max_header_bytes);
    if (whole->err == MESH_E_INVALID) {
        int st = mesh_h1_error_status(whole->kind);
        check(st == 400 || st == 414 || st == 431 || st == 505 || st == 502);
    }
    if (whole->err == MESH_OK)
        check_message(&whole->msg, in, len, kind);

    /* byte by byte, in the same buffer */
    mesh_h1_parser_init(&p, kind, &limits, hs2, MAXH);
    o.err = MESH_E_AGAIN;
    for (size_t n = 0; n <= len && o.err == MESH_E_AGAIN; n++)
        o.err = mesh_h1_parse(&p, in, n, &o.msg);
    o.kind = p.error;
    o.buf = in;
    check_same(whole, &o);

    /* growing pieces, each call in a fresh exact-size copy, the previous one freed */
    mesh_h1_parser_init(&p, kind, &limits, hs2, MAXH);
    char *prev = NULL;
    o.err = MESH_E_AGAIN;
    size_t n = 0, step = 1;
    while (o.err == MESH_E_AGAIN) {
        n = n + step > len ? len : n + step;
        step++;
        char *cur = copy(in, n);
        free(prev);
        prev = cur;
        o.err = mesh_h1_parse(&p, cur, n, &o.msg);
        if (n == len)
            break;
    }
    o.kind = p.error;
    o.buf = prev;
    check_same(whole, &o);
    free(prev);
}

struct chunked_outcome {
    enum mesh_err err;
    enum mesh_h1_error kind;
    size_t used;
    uint64_t body_bytes;
};

static struct chunked_outcome chunked_feed(const char *in, size_t len, size_t step)
{
    struct mesh_h1_chunked c;
    struct chunked_outcome o = {MESH_E_AGAIN, MESH_H1_E_NONE, 0, 0};
    size_t off = 0;
    mesh_h1_chunked_init_limits(&c, &limits);
    do {
        size_t n = step == 0 || len - off < step ? len - off : step;
        size_t used = SIZE_MAX;
        o.err = mesh_h1_chunked_feed(&c, in + off, n, &used);
        check(used <= n);
        check(o.err != MESH_E_AGAIN || used == n);
        o.used += used;
        off += n;
    } while (o.err == MESH_E_AGAIN && off < len);
    o.kind = c.error;
    o.body_bytes = c.body_bytes;
    return o;
}

/* Runs the tracker whole and byte by byte; returns the whole outcome. */
static struct chunked_outcome chunked_two_ways(const char *in, size_t len)
{
    struct chunked_outcome a = chunked_feed(in, len, 0);
    struct chunked_outcome b = chunked_feed(in, len, 1);
    check(a.err == b.err && a.kind == b.kind && a.used == b.used);
    check(a.body_bytes == b.body_bytes && a.body_bytes <= a.used);
    check((a.err == MESH_E_INVALID) == (a.kind != MESH_H1_E_NONE));
    if (a.err == MESH_OK)
        check(a.used >= 5 && memcmp(in + a.used - 2, "\r\n", 2) == 0);
    return a;
}

/* Reads pipelined messages of one kind, following their bodies. */
static void run_messages(int kind, const char *data, size_t size)
{
    struct mesh_h1_header hs[MAXH];
    size_t off = 0;
    for (int i = 0; i < MAX_MESSAGES && off < size; i++) {
        struct outcome o;
        parse_three_ways(kind, data + off, size - off, hs, &o);
        if (o.err != MESH_OK)
            return;
        off += o.msg.head_len;
        enum mesh_h1_body body = kind == MESH_H1_REQUEST ? mesh_h1_request_body(&o.msg)
                                                         : mesh_h1_response_body(&o.msg, false);
        if (o.msg.upgrade || body == MESH_H1_BODY_UNTIL_CLOSE)
            return;
        if (body == MESH_H1_BODY_LENGTH) {
            if ((uint64_t)o.msg.content_length > size - off)
                return;
            off += (size_t)o.msg.content_length;
        } else if (body == MESH_H1_BODY_CHUNKED) {
            struct chunked_outcome c = chunked_two_ways(data + off, size - off);
            if (c.err != MESH_OK)
                return;
            off += c.used;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    run_messages(MESH_H1_REQUEST, in, size);
    run_messages(MESH_H1_RESPONSE, in, size);
    chunked_two_ways(in, size);
    return 0;
}
