/* SPDX-License-Identifier: Apache-2.0 */
/* Resumable, zero-copy HTTP/1.1 head parser (requests and responses) and a chunked-body framing
 * tracker, strict enough to stop request smuggling at the proxy. Never allocates.
 *
 * Choices a proxy has to make, and ours (RFC 9112 leaves them open):
 * - Lines must end in CRLF. A bare LF is refused (MESH_H1_E_BARE_LF): accepting it is common,
 *   but a proxy that accepts what the next hop splits differently is how smuggling starts.
 * - Empty lines (CRLF) before the start line are skipped and counted in head_len.
 * - The request line has exactly one SP between its three parts; the target is ASCII
 *   (0x21..0x7e, no '#'); absolute-form sets host from the target's authority (RFC 9112 3.2.2
 *   makes the origin ignore Host then, so routing must too) and userinfo ('@') is refused.
 * - Content-Length: 1*DIGIT, at most INT64_MAX; a comma list is refused; repeated lines with the
 *   same value count as one, different values are a conflict.
 * - Transfer-Encoding: any list of codings whose final one is "chunked" (once) frames a chunked
 *   body. In a request, a final coding other than chunked is refused with 400 (RFC 9112 6.3: the
 *   length cannot be determined), not 501: the proxy relays codings without decoding them, so
 *   it never needs to understand them. Transfer-Encoding in an HTTP/1.0 message is refused
 *   (its framing is faulty by RFC 9112 6.1). Transfer-Encoding with Content-Length is refused
 *   in requests and responses alike.
 */
#ifndef MESH_HTTP_H1_PARSE_H
#define MESH_HTTP_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "mesh/err.h"

/* Limits; a field left 0 takes its default. */
struct mesh_h1_limits {
    size_t max_request_line;  /* start line without CRLF; default 8 KiB; over it: 414 */
    size_t max_header_bytes;  /* whole head incl. start line and final CRLFCRLF; 64 KiB; 431 */
    size_t max_headers;       /* header lines; default 100; over it: 431 */
    size_t max_chunk_line;    /* chunk-size line incl. extensions, without CRLF; default 4 KiB */
    size_t max_trailer_bytes; /* trailer section of a chunked body incl. CRLFs; default 16 KiB */
};

#define MESH_H1_DEFAULT_MAX_REQUEST_LINE  (8u * 1024)
#define MESH_H1_DEFAULT_MAX_HEADER_BYTES  (64u * 1024)
#define MESH_H1_DEFAULT_MAX_HEADERS       100u
#define MESH_H1_DEFAULT_MAX_CHUNK_LINE    (4u * 1024)
#define MESH_H1_DEFAULT_MAX_TRAILER_BYTES (16u * 1024)

/* Why a message was refused. Each has a short snake_case name (metrics label) and the status
 * to answer a client with. Errors found in an upstream's response are answered with 502 by the
 * proxy whatever their kind; the status below is for requests. */
enum mesh_h1_error {
    MESH_H1_E_NONE = 0,
    MESH_H1_E_CL_TE_CONFLICT,        /* cl_te_conflict: both framings present (400) */
    MESH_H1_E_CL_CONFLICT,           /* cl_conflict: differing Content-Length values (400) */
    MESH_H1_E_CL_INVALID,            /* cl_invalid: empty, sign, non-digit, list, overflow (400) */
    MESH_H1_E_TE_NOT_CHUNKED,        /* te_not_chunked: final coding not chunked, request (400) */
    MESH_H1_E_TE_INVALID,            /* te_invalid: bad list, chunked twice, TE in 1.0 (400) */
    MESH_H1_E_OBS_FOLD,              /* obs_fold: header line starting with SP/HTAB (400) */
    MESH_H1_E_NUL,                   /* nul_char: NUL in the head (400) */
    MESH_H1_E_BARE_CR,               /* bare_cr: CR not followed by LF (400) */
    MESH_H1_E_BARE_LF,               /* bare_lf: LF without CR (400) */
    MESH_H1_E_CTL_CHAR,              /* ctl_char: other control character or DEL (400) */
    MESH_H1_E_WS_BEFORE_COLON,       /* ws_before_colon: "Name : value" (400) */
    MESH_H1_E_INVALID_HEADER_NAME,   /* invalid_header_name: empty, non-token, no colon (400) */
    MESH_H1_E_REQUEST_LINE_TOO_LONG, /* request_line_too_long: also the status line (414) */
    MESH_H1_E_HEADERS_TOO_LARGE,     /* headers_too_large: head over max_header_bytes (431) */
    MESH_H1_E_TOO_MANY_HEADERS,      /* too_many_headers: over max_headers (431) */
    MESH_H1_E_INVALID_METHOD,        /* invalid_method: empty or non-token method (400) */
    MESH_H1_E_INVALID_VERSION,       /* invalid_version: not "HTTP/d.d" (400) */
    MESH_H1_E_UNSUPPORTED_VERSION,   /* unsupported_version: not 1.0 or 1.1 (505) */
    MESH_H1_E_MISSING_HOST,          /* missing_host: HTTP/1.1 request without Host (400) */
    MESH_H1_E_DUPLICATE_HOST,        /* duplicate_host: several Host lines (400) */
    MESH_H1_E_INVALID_HOST,          /* invalid_host: Host value with non-authority chars (400) */
    MESH_H1_E_INVALID_TARGET,        /* invalid_target: empty, bad chars or form (400) */
    MESH_H1_E_INVALID_STATUS,        /* invalid_status: response status not 3 digits 100..999 */
    MESH_H1_E_CHUNK_SIZE,            /* bad_chunk_size: non-hex, empty, over 2^62 (400) */
    MESH_H1_E_CHUNK_EXT,             /* bad_chunk_ext: malformed chunk extension (400) */
    MESH_H1_E_CHUNK_LINE_TOO_LONG,   /* chunk_line_too_long: over max_chunk_line (400) */
    MESH_H1_E_CHUNK_MISSING_CRLF,    /* chunk_missing_crlf: chunk data not followed by CRLF */
    MESH_H1_E_TRAILER_INVALID,       /* bad_trailer: malformed trailer field line (400) */
    MESH_H1_E_TRAILER_TOO_LARGE,     /* trailer_too_large: over max_trailer_bytes (400) */
    MESH_H1_E_COUNT
};

/* "cl_te_conflict", ...; "unknown" for values out of range. Static; never NULL; any thread. */
const char *mesh_h1_error_name(enum mesh_h1_error e);
/* The status code to answer a request refused for e: 400, 414, 431, 505; 502 for
 * MESH_H1_E_INVALID_STATUS (only responses have a status); 0 for MESH_H1_E_NONE. */
int mesh_h1_error_status(enum mesh_h1_error e);

/* One header line. Both slices point into the parsed buffer; value has no surrounding OWS. */
struct mesh_h1_header {
    struct mesh_slice name, value;
};

enum mesh_h1_method {
    MESH_H1_M_OTHER = 0, /* any other token: relayed as is */
    MESH_H1_M_GET,
    MESH_H1_M_HEAD,
    MESH_H1_M_POST,
    MESH_H1_M_PUT,
    MESH_H1_M_DELETE,
    MESH_H1_M_CONNECT,
    MESH_H1_M_OPTIONS,
    MESH_H1_M_TRACE,
    MESH_H1_M_PATCH,
};

enum mesh_h1_target_form {
    MESH_H1_T_ORIGIN = 0, /* /path?query */
    MESH_H1_T_ABSOLUTE,   /* http://authority/path?query */
    MESH_H1_T_AUTHORITY,  /* host:port, CONNECT only */
    MESH_H1_T_ASTERISK,   /* *, OPTIONS only */
};

/* A parsed head. Every slice borrows from the buffer given to mesh_h1_parse and from the
 * parser's header storage: valid while both are unchanged. */
struct mesh_h1_message {
    bool is_request;
    int version_minor; /* 0 or 1 (HTTP/1.0, HTTP/1.1) */

    /* requests */
    struct mesh_slice method;
    enum mesh_h1_method method_id;
    struct mesh_slice target; /* as sent */
    enum mesh_h1_target_form target_form;
    struct mesh_slice path;  /* origin/absolute-form: path up to '?' (a static "/" when the
                                absolute form has none); asterisk-form: "*"; authority: empty */
    struct mesh_slice query; /* after '?', without it; empty when none */
    struct mesh_slice host;  /* Host value, or the authority of an absolute-form target; may be
                                empty (HTTP/1.0 without Host); port not stripped */

    /* responses */
    int status;               /* 100..999 */
    struct mesh_slice reason; /* may be empty */

    struct mesh_h1_header *headers; /* the parser's storage, in arrival order */
    size_t n_headers;
    size_t head_len; /* bytes of the head from the start of the buffer, incl. CRLFCRLF: the body
                        or the next message starts at buf + head_len */

    /* framing and connection semantics derived from the headers */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding whose final coding is chunked */
    bool keep_alive;        /* 1.1: unless Connection: close; 1.0: only with keep-alive */
    bool upgrade;           /* HTTP/1.1, Connection has the "upgrade" token and Upgrade present */
    bool expect_continue;   /* HTTP/1.1 request with Expect: 100-continue */
};

#define MESH_H1_REQUEST  1
#define MESH_H1_RESPONSE 2

/* Parser state. Holds offsets, never pointers into the buffer except the caller's header
 * storage, which it re-bases when the buffer moved between calls. Embed it; no free needed. */
struct mesh_h1_parser {
    /* configuration (kept by mesh_h1_parser_reset) */
    struct mesh_h1_limits limits; /* defaults filled in */
    struct mesh_h1_header *headers;
    size_t max_headers; /* min(limits.max_headers, storage entries) */
    int kind;           /* MESH_H1_REQUEST or MESH_H1_RESPONSE */

    /* progress */
    enum mesh_h1_error error; /* set when mesh_h1_parse returned MESH_E_INVALID */
    uint8_t state;
    uint8_t version_minor;
    uint16_t flags;
    uintptr_t base; /* address of the buffer at the last call, only to re-base headers */
    size_t pos;     /* start of the first line not parsed yet */
    size_t scan;    /* bytes of that line already checked */
    size_t n_headers;

    /* start line, as offsets into the buffer */
    size_t start_off, method_len;
    size_t target_off, target_len; /* a response's reason */
    size_t path_off, path_len;     /* path_len 0: no path ("/" in absolute-form) */
    size_t query_off, query_len;
    size_t authority_off, authority_len; /* absolute- and authority-form targets */
    uint8_t target_form;
    int status;
    int host_idx; /* index of the Host header, -1 when none */
    int64_t content_length;
    uint8_t method_id;
    uint8_t n_chunked; /* "chunked" codings seen in Transfer-Encoding */
};

/* Sets p up to parse one message of kind MESH_H1_REQUEST or MESH_H1_RESPONSE. limits may be
 * NULL (all defaults); it is copied. headers is caller storage of max_headers entries, borrowed
 * for as long as p is used; the effective header limit is the smaller of max_headers and
 * limits->max_headers. Any thread; p is then used by one thread at a time. */
void mesh_h1_parser_init(struct mesh_h1_parser *p, int kind, const struct mesh_h1_limits *limits,
                         struct mesh_h1_header *headers, size_t max_headers);

/* Forgets the message, keeps the configuration: call before parsing the next (pipelined) head,
 * with a buffer that starts where that head starts. */
void mesh_h1_parser_reset(struct mesh_h1_parser *p);

/* Parses the head in buf[0..len): the bytes received so far for this message (buf borrowed for
 * the call). Call again with the same bytes plus more appended; the buffer may have moved (the
 * header slices stored so far are re-based, the old buffer is never read). Parsing resumes at
 * the line it stopped in, never rescans. Bytes beyond the head are not looked at. The thread
 * that owns p calls it. Returns:
 *   MESH_OK        the head is complete; *msg is filled, its slices borrow buf and p's header
 *                  storage. Calling again with the same bytes returns MESH_OK again.
 *   MESH_E_AGAIN   need more bytes; no limit is passed yet (a never-ending line or head is
 *                  refused as soon as it passes its limit). *msg is not touched.
 *   MESH_E_INVALID the message is refused; p->error says why (mesh_h1_error_status() gives the
 *                  status to answer). Sticky until mesh_h1_parser_reset.
 * The outcome does not depend on how the bytes were split across calls. */
enum mesh_err mesh_h1_parse(struct mesh_h1_parser *p, const char *buf, size_t len,
                            struct mesh_h1_message *msg);

/* The first header named name (case-insensitive), or NULL. */
const struct mesh_h1_header *mesh_h1_find_header(const struct mesh_h1_message *msg,
                                                 struct mesh_slice name);

enum mesh_h1_body {
    MESH_H1_BODY_NONE = 0,    /* no body bytes follow the head */
    MESH_H1_BODY_LENGTH,      /* exactly msg->content_length (> 0) bytes */
    MESH_H1_BODY_CHUNKED,     /* chunked: run a mesh_h1_chunked tracker over it */
    MESH_H1_BODY_UNTIL_CLOSE, /* responses only: until the server closes (no keep-alive) */
};

/* How the body of a parsed request is framed: NONE, LENGTH or CHUNKED. */
enum mesh_h1_body mesh_h1_request_body(const struct mesh_h1_message *msg);
/* How the body of a parsed response is framed: 1xx, 204, 304 and answers to HEAD have none;
 * then chunked, then Content-Length, else until close. A 101 ends the HTTP exchange: what
 * follows is the tunnel. */
enum mesh_h1_body mesh_h1_response_body(const struct mesh_h1_message *msg, bool request_was_head);

/* Chunked framing tracker: follows a chunked body passing through (the proxy relays its bytes
 * unchanged) to find where it ends, and validates it: chunk-size lines with extensions, data,
 * CRLFs, the last chunk and the trailer section. Embed it; no free needed. */
struct mesh_h1_chunked {
    uint64_t remaining;       /* chunk size while reading the size; data bytes left after */
    size_t line_len;          /* bytes of the current chunk-size line */
    size_t trailer_bytes;     /* bytes of the trailer section so far */
    size_t max_chunk_line;    /* limit, default filled in */
    size_t max_trailer_bytes; /* limit, default filled in */
    uint64_t body_bytes;      /* chunk data bytes seen, for stats */
    enum mesh_h1_error error; /* set when feed returned MESH_E_INVALID */
    uint8_t state;
};

/* Starts tracking a body with default limits. The tracker holds no pointers: one thread at a
 * time uses it. */
void mesh_h1_chunked_init(struct mesh_h1_chunked *c);
/* The same with limits->max_chunk_line and limits->max_trailer_bytes (NULL: defaults). */
void mesh_h1_chunked_init_limits(struct mesh_h1_chunked *c, const struct mesh_h1_limits *limits);

/* Feeds the next len body bytes (in is borrowed for the call only). *used is set to how many
 * of them belong to the body. Returns:
 *   MESH_OK        the body ended; in[*used..len) belongs to the next message.
 *   MESH_E_AGAIN   all len bytes were body (*used == len); more follows.
 *   MESH_E_INVALID bad framing; c->error says why; *used counts the bytes before the bad one.
 *                  Sticky, as is MESH_OK (further calls use no bytes).
 * Byte-at-a-time feeding gives the same outcome as feeding everything at once. */
enum mesh_err mesh_h1_chunked_feed(struct mesh_h1_chunked *c, const char *in, size_t len,
                                   size_t *used);

#endif
