/* SPDX-License-Identifier: Apache-2.0 */
/* Trace context on the wire: W3C Trace Context (traceparent, tracestate) and B3 (the x-b3-*
 * headers and the single b3 header) read from a request head, the decision of this hop's span
 * (continue the caller's trace or start one, sampled or not), and the headers sent upstream.
 *
 * Pure request-path code: nothing here allocates, locks or keeps a pointer past the call,
 * except the slices of struct mesh_trace_headers, which borrow the request head being rendered.
 *
 * Reading (docs/tracing.md):
 *  - traceparent wins when it is valid ("00-" 32 lower-case hex "-" 16 hex "-" 2 hex, neither id
 *    all zeros; a later version may append "-..." fields; version ff is invalid); a second
 *    traceparent header makes it invalid. tracestate passes on unchanged, only with a valid
 *    traceparent, as the W3C spec requires.
 *  - then the single b3 header: "TRACEID-SPANID[-SAMPLING[-PARENT]]" (TRACEID 16 or 32 hex
 *    digits, SAMPLING 0, 1 or d) or a bare SAMPLING;
 *  - then x-b3-traceid + x-b3-spanid, with x-b3-sampled (1/0, true/false) and x-b3-flags (1:
 *    debug, which means sampled); x-b3-sampled alone is a decision without a context.
 *  Anything malformed is ignored (not forwarded): the hop then starts a new trace. */
#ifndef MESH_PROXY_TRACE_CONTEXT_H
#define MESH_PROXY_TRACE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "mesh/err.h"
#include "rng.h"

struct mesh_wbuf;

/* tracestate headers passed on; more are dropped (the spec allows splitting one list over
 * several headers, never dozens). */
#define MESH_TRACE_MAX_TRACESTATE 8

/* Propagation formats, as bits. */
#define MESH_TRACE_FMT_W3C      0x1u
#define MESH_TRACE_FMT_B3_MULTI 0x2u
#define MESH_TRACE_FMT_B3       0x4u /* the single b3 header */

/* The characters of a traceparent value of version 00, without NUL. */
#define MESH_TRACE_TRACEPARENT_LEN 55

enum mesh_trace_header {
    MESH_TRACE_H_NONE = 0,
    MESH_TRACE_H_TRACEPARENT,
    MESH_TRACE_H_TRACESTATE,
    MESH_TRACE_H_B3,
    MESH_TRACE_H_B3_TRACEID,
    MESH_TRACE_H_B3_SPANID,
    MESH_TRACE_H_B3_PARENTSPANID,
    MESH_TRACE_H_B3_SAMPLED,
    MESH_TRACE_H_B3_FLAGS,
};

/* The trace headers of one request, borrowed from its head (valid while the head is). Zero it
 * before the first mesh_trace_headers_add. */
struct mesh_trace_headers {
    struct mesh_slice traceparent, b3, b3_traceid, b3_spanid, b3_sampled, b3_flags;
    struct mesh_slice tracestate[MESH_TRACE_MAX_TRACESTATE];
    unsigned n_tracestate;
    unsigned repeated; /* bit (1 << kind) of every kind seen more than once */
};

/* A caller's context as one format carries it. */
struct mesh_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the caller's span: the parent of ours */
    bool has_ids;       /* false: a bare sampling decision (b3 "0", x-b3-sampled alone) */
    int sampled;        /* 1, 0, or -1 when the caller left the decision to us */
    bool debug;         /* B3 debug (x-b3-flags: 1, b3 "d") */
    bool short_id;      /* a 64-bit B3 trace id (the high half is zero); answered in kind */
};

/* This hop's span: what the request path keeps per stream, and what goes upstream. */
struct mesh_trace_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool on;         /* tracing applied to the stream (a collector is configured) */
    bool sampled;    /* record and export this span; also what the headers upstream say */
    bool has_parent; /* the request came with a valid context */
    bool debug;
    bool short_id;
    bool pass_tracestate;
    uint8_t formats; /* MESH_TRACE_FMT_* written upstream */
};

/* Which trace header name is (case-insensitive), or MESH_TRACE_H_NONE; by length first, since
 * it runs for every header of a traced request. */
enum mesh_trace_header mesh_trace_header_kind(struct mesh_slice name);

/* Notes one request header in h when it is a trace header. True: it is one, and the caller
 * must not copy it upstream (mesh_trace_put_headers writes what goes). */
bool mesh_trace_headers_add(struct mesh_trace_headers *h, struct mesh_slice name,
                            struct mesh_slice value);

/* The parsers. MESH_OK with *out filled, or MESH_E_INVALID (then *out is unspecified). */
enum mesh_err mesh_trace_parse_traceparent(struct mesh_slice value, struct mesh_trace_ctx *out);
enum mesh_err mesh_trace_parse_b3(struct mesh_slice value, struct mesh_trace_ctx *out);
/* x-b3-*: ids (both or neither), sampled and flags from h. MESH_E_INVALID when no header is
 * there or one is malformed. */
enum mesh_err mesh_trace_parse_b3_multi(const struct mesh_trace_headers *h,
                                        struct mesh_trace_ctx *out);

/* Decides this hop's span from the request's trace headers: with a valid incoming context
 * (precedence above) the same trace, the caller's span as parent and the caller's sampling
 * decision when it made one; otherwise a new trace. An undecided span is sampled with
 * probability rate_pct/100. Ids come from rng (never all zeros). Formats upstream: traceparent
 * always, plus each B3 form the valid context came in, or x-b3-* when it came in none. */
void mesh_trace_begin(const struct mesh_trace_headers *h, double rate_pct, struct mesh_rng *rng,
                      struct mesh_trace_span *out);

/* Appends the span's trace headers ("name: value\r\n" lines) to out: traceparent with the span
 * as parent, tracestate as it came (when it may pass), b3 or x-b3-* per formats. False when
 * out cannot grow (MESH_E_NOMEM for the caller). */
bool mesh_trace_put_headers(struct mesh_wbuf *out, const struct mesh_trace_span *span,
                            const struct mesh_trace_headers *h);

/* Lower-case hex of n bytes into out (2n characters, no NUL). */
void mesh_trace_hex(const uint8_t *bytes, size_t n, char *out);

/* "00-TRACE-SPAN-FLAGS" into out (MESH_TRACE_TRACEPARENT_LEN characters, no NUL). */
void mesh_trace_format_traceparent(const uint8_t trace_id[16], const uint8_t span_id[8],
                                   bool sampled, char *out);

#endif
