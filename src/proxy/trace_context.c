/* SPDX-License-Identifier: Apache-2.0 */
/* W3C Trace Context and B3 headers: reading, deciding this hop's span, writing them upstream. */
#include "trace_context.h"

#include <string.h>

#include "proxy.h"

static const char hex_digits[] = "0123456789abcdef";

enum mesh_trace_header mesh_trace_header_kind(struct mesh_slice name)
{
    switch (name.len) {
    case 2:
        return mesh_slice_eq_cstr_nocase(name, "b3") ? MESH_TRACE_H_B3 : MESH_TRACE_H_NONE;
    case 10:
        if (mesh_slice_eq_cstr_nocase(name, "tracestate"))
            return MESH_TRACE_H_TRACESTATE;
        return mesh_slice_eq_cstr_nocase(name, "x-b3-flags") ? MESH_TRACE_H_B3_FLAGS
                                                             : MESH_TRACE_H_NONE;
    case 11:
        if (mesh_slice_eq_cstr_nocase(name, "traceparent"))
            return MESH_TRACE_H_TRACEPARENT;
        return mesh_slice_eq_cstr_nocase(name, "x-b3-spanid") ? MESH_TRACE_H_B3_SPANID
                                                              : MESH_TRACE_H_NONE;
    case 12:
        if (mesh_slice_eq_cstr_nocase(name, "x-b3-traceid"))
            return MESH_TRACE_H_B3_TRACEID;
        return mesh_slice_eq_cstr_nocase(name, "x-b3-sampled") ? MESH_TRACE_H_B3_SAMPLED
                                                               : MESH_TRACE_H_NONE;
    case 17:
        return mesh_slice_eq_cstr_nocase(name, "x-b3-parentspanid") ? MESH_TRACE_H_B3_PARENTSPANID
                                                                    : MESH_TRACE_H_NONE;
    default:
        return MESH_TRACE_H_NONE;
    }
}

/* Keeps the first value of a single-valued header; a repeat is noted (and makes the header
 * ambiguous, so that it is not trusted). */
static void note_single(struct mesh_trace_headers *h, struct mesh_slice *slot,
                        enum mesh_trace_header kind, struct mesh_slice value)
{
    if (slot->p)
        h->repeated |= 1u << kind;
    else
        *slot = value.p ? value : mesh_slice_make("", 0);
}

bool mesh_trace_headers_add(struct mesh_trace_headers *h, struct mesh_slice name,
                            struct mesh_slice value)
{
    enum mesh_trace_header kind = mesh_trace_header_kind(name);
    switch (kind) {
    case MESH_TRACE_H_NONE:
        return false;
    case MESH_TRACE_H_TRACEPARENT:
        note_single(h, &h->traceparent, kind, value);
        break;
    case MESH_TRACE_H_TRACESTATE:
        if (h->n_tracestate < MESH_TRACE_MAX_TRACESTATE)
            h->tracestate[h->n_tracestate++] = value;
        break;
    case MESH_TRACE_H_B3:
        note_single(h, &h->b3, kind, value);
        break;
    case MESH_TRACE_H_B3_TRACEID:
        note_single(h, &h->b3_traceid, kind, value);
        break;
    case MESH_TRACE_H_B3_SPANID:
        note_single(h, &h->b3_spanid, kind, value);
        break;
    case MESH_TRACE_H_B3_PARENTSPANID:
        break; /* the caller's parent is not ours: we write our own */
    case MESH_TRACE_H_B3_SAMPLED:
        note_single(h, &h->b3_sampled, kind, value);
        break;
    case MESH_TRACE_H_B3_FLAGS:
        note_single(h, &h->b3_flags, kind, value);
        break;
    }
    return true;
}

/* --- parsing --- */

static int hex_value(unsigned char c, bool upper_ok)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (upper_ok && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* n bytes from 2n hex digits at p. */
static bool parse_hex(const char *p, size_t n, uint8_t *out, bool upper_ok)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value((unsigned char)p[2 * i], upper_ok);
        int lo = hex_value((unsigned char)p[2 * i + 1], upper_ok);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

enum mesh_err mesh_trace_parse_traceparent(struct mesh_slice v, struct mesh_trace_ctx *out)
{
    uint8_t version, flags;
    memset(out, 0, sizeof(*out));
    if (v.len < MESH_TRACE_TRACEPARENT_LEN || !parse_hex(v.p, 1, &version, false) ||
        version == 0xff || v.p[2] != '-' || v.p[35] != '-' || v.p[52] != '-')
        return MESH_E_INVALID;
    /* Version 00 is exactly this long; a later one may only add "-" fields. */
    if (v.len > MESH_TRACE_TRACEPARENT_LEN &&
        (version == 0 || v.p[MESH_TRACE_TRACEPARENT_LEN] != '-'))
        return MESH_E_INVALID;
    if (!parse_hex(v.p + 3, 16, out->trace_id, false) ||
        !parse_hex(v.p + 36, 8, out->span_id, false) || !parse_hex(v.p + 53, 1, &flags, false) ||
        all_zero(out->trace_id, 16) || all_zero(out->span_id, 8))
        return MESH_E_INVALID;
    out->has_ids = true;
    out->sampled = flags & 0x01;
    return MESH_OK;
}

/* A B3 trace id: 32 hex digits, or 16 (a 64-bit id, kept in the low half). */
static bool parse_b3_trace_id(const char *p, size_t len, struct mesh_trace_ctx *out)
{
    memset(out->trace_id, 0, sizeof(out->trace_id));
    out->short_id = len == 16;
    if (len == 32)
        return parse_hex(p, 16, out->trace_id, true) && !all_zero(out->trace_id, 16);
    return len == 16 && parse_hex(p, 8, out->trace_id + 8, true) && !all_zero(out->trace_id, 16);
}

static bool parse_b3_span_id(const char *p, size_t len, uint8_t out[8])
{
    return len == 16 && parse_hex(p, 8, out, true) && !all_zero(out, 8);
}

/* The b3 header's sampling state: "1", "0" or "d" (debug). */
static bool parse_b3_sampling(struct mesh_slice s, struct mesh_trace_ctx *out)
{
    if (s.len != 1)
        return false;
    switch (s.p[0]) {
    case '0':
        out->sampled = 0;
        return true;
    case '1':
        out->sampled = 1;
        return true;
    case 'd':
        out->sampled = 1;
        out->debug = true;
        return true;
    default:
        return false;
    }
}

enum mesh_err mesh_trace_parse_b3(struct mesh_slice v, struct mesh_trace_ctx *out)
{
    memset(out, 0, sizeof(*out));
    out->sampled = -1;
    if (v.len == 1) /* a bare decision */
        return parse_b3_sampling(v, out) ? MESH_OK : MESH_E_INVALID;
    /* Up to four fields: trace id, span id, sampling state, parent span id. */
    struct mesh_slice f[4];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= v.len; i++) {
        if (i < v.len && v.p[i] != '-')
            continue;
        if (nf == 4)
            return MESH_E_INVALID;
        f[nf++] = mesh_slice_make(v.p + start, i - start);
        start = i + 1;
    }
    if (nf < 2 || !parse_b3_trace_id(f[0].p, f[0].len, out) ||
        !parse_b3_span_id(f[1].p, f[1].len, out->span_id))
        return MESH_E_INVALID;
    if (nf >= 3 && !parse_b3_sampling(f[2], out))
        return MESH_E_INVALID;
    uint8_t parent[8];
    if (nf == 4 && !parse_b3_span_id(f[3].p, f[3].len, parent))
        return MESH_E_INVALID;
    out->has_ids = true;
    return MESH_OK;
}

enum mesh_err mesh_trace_parse_b3_multi(const struct mesh_trace_headers *h,
                                        struct mesh_trace_ctx *out)
{
    memset(out, 0, sizeof(*out));
    out->sampled = -1;
    bool ids = h->b3_traceid.p || h->b3_spanid.p;
    if (!ids && !h->b3_sampled.p && !h->b3_flags.p)
        return MESH_E_INVALID;
    if (ids && (!h->b3_traceid.p || !h->b3_spanid.p ||
                !parse_b3_trace_id(h->b3_traceid.p, h->b3_traceid.len, out) ||
                !parse_b3_span_id(h->b3_spanid.p, h->b3_spanid.len, out->span_id)))
        return MESH_E_INVALID;
    out->has_ids = ids;
    struct mesh_slice s = h->b3_sampled;
    if (s.p) {
        if (mesh_slice_eq_cstr(s, "1") || mesh_slice_eq_cstr_nocase(s, "true"))
            out->sampled = 1;
        else if (mesh_slice_eq_cstr(s, "0") || mesh_slice_eq_cstr_nocase(s, "false"))
            out->sampled = 0;
        else
            return MESH_E_INVALID;
    }
    if (h->b3_flags.p) {
        if (mesh_slice_eq_cstr(h->b3_flags, "1")) {
            out->debug = true;
            out->sampled = 1; /* debug implies an accept decision */
        } else if (!mesh_slice_eq_cstr(h->b3_flags, "0")) {
            return MESH_E_INVALID;
        }
    }
    return MESH_OK;
}

/* --- this hop's span --- */

#define B3_MULTI_KINDS                                                                             \
    (1u << MESH_TRACE_H_B3_TRACEID | 1u << MESH_TRACE_H_B3_SPANID |                                \
     1u << MESH_TRACE_H_B3_SAMPLED | 1u << MESH_TRACE_H_B3_FLAGS)

static void random_bytes(struct mesh_rng *rng, uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = mesh_rng_next(rng);
            size_t k = n - i < 8 ? n - i : 8;
            memcpy(out + i, &v, k);
        }
    } while (all_zero(out, n)); /* all zeros means "invalid" on the wire */
}

void mesh_trace_begin(const struct mesh_trace_headers *h, double rate_pct, struct mesh_rng *rng,
                      struct mesh_trace_span *out)
{
    struct mesh_trace_ctx ctx = {.sampled = -1};
    bool found = false;
    memset(out, 0, sizeof(*out));
    out->on = true;
    out->formats = MESH_TRACE_FMT_W3C;
    if (h->traceparent.p && !(h->repeated & (1u << MESH_TRACE_H_TRACEPARENT)) &&
        mesh_trace_parse_traceparent(h->traceparent, &ctx) == MESH_OK) {
        found = true;
        out->pass_tracestate = true;
    }
    /* B3 forms are read even after a valid traceparent: the caller expects them back. */
    struct mesh_trace_ctx b3;
    if (h->b3.p && !(h->repeated & (1u << MESH_TRACE_H_B3)) &&
        mesh_trace_parse_b3(h->b3, &b3) == MESH_OK) {
        if (b3.has_ids)
            out->formats |= MESH_TRACE_FMT_B3;
        if (!found && (b3.has_ids || ctx.sampled < 0)) {
            ctx = b3;
            found = b3.has_ids;
        }
    }
    struct mesh_trace_ctx multi;
    if (!(h->repeated & B3_MULTI_KINDS) && mesh_trace_parse_b3_multi(h, &multi) == MESH_OK) {
        if (multi.has_ids)
            out->formats |= MESH_TRACE_FMT_B3_MULTI;
        if (!found && (multi.has_ids || ctx.sampled < 0)) {
            ctx = multi;
            found = multi.has_ids;
        }
    }
    if (!(out->formats & (MESH_TRACE_FMT_B3 | MESH_TRACE_FMT_B3_MULTI)) && !found)
        out->formats |= MESH_TRACE_FMT_B3_MULTI; /* a new trace: for apps of either kind */
    if (found) {
        memcpy(out->trace_id, ctx.trace_id, sizeof(out->trace_id));
        memcpy(out->parent_id, ctx.span_id, sizeof(out->parent_id));
        out->has_parent = true;
        out->short_id = ctx.short_id;
    } else {
        random_bytes(rng, out->trace_id, sizeof(out->trace_id));
    }
    random_bytes(rng, out->span_id, sizeof(out->span_id));
    out->debug = ctx.debug;
    out->sampled = ctx.sampled >= 0 ? ctx.sampled == 1 : mesh_rng_percent(rng, rate_pct);
}

/* --- writing --- */

void mesh_trace_hex(const uint8_t *bytes, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[bytes[i] >> 4];
        out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
    }
}

void mesh_trace_format_traceparent(const uint8_t trace_id[16], const uint8_t span_id[8],
                                   bool sampled, char *out)
{
    memcpy(out, "00-", 3);
    mesh_trace_hex(trace_id, 16, out + 3);
    out[35] = '-';
    mesh_trace_hex(span_id, 8, out + 36);
    out[52] = '-';
    out[53] = '0';
    out[54] = sampled ? '1' : '0';
}

/* "NAME: " + the hex of n bytes + CRLF */
static bool put_hex_header(struct mesh_wbuf *out, const char *name, const uint8_t *bytes, size_t n)
{
    char hex[32];
    mesh_trace_hex(bytes, n, hex);
    return mesh_wbuf_puts(out, name) && mesh_wbuf_append(out, hex, 2 * n) &&
           mesh_wbuf_puts(out, "\r\n");
}

bool mesh_trace_put_headers(struct mesh_wbuf *out, const struct mesh_trace_span *span,
                            const struct mesh_trace_headers *h)
{
    char tp[MESH_TRACE_TRACEPARENT_LEN];
    mesh_trace_format_traceparent(span->trace_id, span->span_id, span->sampled, tp);
    bool ok = mesh_wbuf_puts(out, "traceparent: ") && mesh_wbuf_append(out, tp, sizeof(tp)) &&
              mesh_wbuf_puts(out, "\r\n");
    for (unsigned i = 0; ok && span->pass_tracestate && i < h->n_tracestate; i++)
        ok = mesh_wbuf_put_header(out, MESH_SLICE_LIT("tracestate"), h->tracestate[i]);
    /* A 64-bit B3 trace id goes back as 16 digits, as the caller wrote it. */
    const uint8_t *tid = span->short_id ? span->trace_id + 8 : span->trace_id;
    size_t tlen = span->short_id ? 8 : 16;
    if (ok && (span->formats & MESH_TRACE_FMT_B3_MULTI)) {
        ok =
            put_hex_header(out, "x-b3-traceid: ", tid, tlen) &&
            put_hex_header(out, "x-b3-spanid: ", span->span_id, 8) &&
            (!span->has_parent || put_hex_header(out, "x-b3-parentspanid: ", span->parent_id, 8)) &&
            mesh_wbuf_puts(out, span->debug     ? "x-b3-flags: 1\r\n"
                                : span->sampled ? "x-b3-sampled: 1\r\n"
                                                : "x-b3-sampled: 0\r\n");
    }
    if (ok && (span->formats & MESH_TRACE_FMT_B3)) {
        char b3[32 + 1 + 16 + 2];
        mesh_trace_hex(tid, tlen, b3);
        b3[2 * tlen] = '-';
        mesh_trace_hex(span->span_id, 8, b3 + 2 * tlen + 1);
        b3[2 * tlen + 17] = '-';
        b3[2 * tlen + 18] = span->debug ? 'd' : span->sampled ? '1' : '0';
        ok = mesh_wbuf_puts(out, "b3: ") && mesh_wbuf_append(out, b3, 2 * tlen + 19) &&
             mesh_wbuf_puts(out, "\r\n");
    }
    return ok;
}
