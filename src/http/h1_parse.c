/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 head parser and chunked framing tracker: a line at a time, resumable, table-driven. */
#include "h1_parse.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Character classes, one table so that every class test is one load. */
enum {
    C_TCHAR = 0x01,  /* token character (RFC 9110 5.6.2) */
    C_STOP = 0x02,   /* control character other than HTAB, or DEL: ends the fast line scan */
    C_TARGET = 0x04, /* request-target: VCHAR except '#' (fragments are never sent) */
    C_HOST = 0x08,   /* authority: unreserved, sub-delims, ':', '[', ']', '%' (no '@') */
    C_QDTEXT = 0x10, /* quoted-string text (HTAB, SP, VCHAR but '"' and '\', obs-text) */
    C_HEX = 0x20,
};

/* clang-format off */
static const uint8_t ctype[256] = {
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x10, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x10, 0x1d, 0x04, 0x11, 0x1d, 0x1d, 0x1d, 0x1d, 0x1c, 0x1c, 0x1d, 0x1d, 0x1c, 0x1d, 0x1d, 0x14,
    0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x1c, 0x1c, 0x14, 0x1c, 0x14, 0x14,
    0x14, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d,
    0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1c, 0x04, 0x1c, 0x15, 0x1d,
    0x15, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x3d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d,
    0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x1d, 0x14, 0x15, 0x14, 0x1d, 0x02,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
};
/* clang-format on */

/* Parser states. */
enum { ST_START = 0, ST_HEADERS, ST_DONE, ST_ERROR };

/* What the header lines said so far (struct mesh_h1_parser.flags). */
enum {
    F_HAVE_CL = 1u << 0,
    F_TE = 1u << 1,
    F_TE_FINAL_CHUNKED = 1u << 2,
    F_CONN_CLOSE = 1u << 3,
    F_CONN_KEEP_ALIVE = 1u << 4,
    F_CONN_UPGRADE = 1u << 5,
    F_UPGRADE = 1u << 6,
    F_EXPECT_CONTINUE = 1u << 7,
};

static const struct {
    const char *name;
    int status;
} error_info[MESH_H1_E_COUNT] = {
    [MESH_H1_E_NONE] = {"none", 0},
    [MESH_H1_E_CL_TE_CONFLICT] = {"cl_te_conflict", 400},
    [MESH_H1_E_CL_CONFLICT] = {"cl_conflict", 400},
    [MESH_H1_E_CL_INVALID] = {"cl_invalid", 400},
    [MESH_H1_E_TE_NOT_CHUNKED] = {"te_not_chunked", 400},
    [MESH_H1_E_TE_INVALID] = {"te_invalid", 400},
    [MESH_H1_E_OBS_FOLD] = {"obs_fold", 400},
    [MESH_H1_E_NUL] = {"nul_char", 400},
    [MESH_H1_E_BARE_CR] = {"bare_cr", 400},
    [MESH_H1_E_BARE_LF] = {"bare_lf", 400},
    [MESH_H1_E_CTL_CHAR] = {"ctl_char", 400},
    [MESH_H1_E_WS_BEFORE_COLON] = {"ws_before_colon", 400},
    [MESH_H1_E_INVALID_HEADER_NAME] = {"invalid_header_name", 400},
    [MESH_H1_E_REQUEST_LINE_TOO_LONG] = {"request_line_too_long", 414},
    [MESH_H1_E_HEADERS_TOO_LARGE] = {"headers_too_large", 431},
    [MESH_H1_E_TOO_MANY_HEADERS] = {"too_many_headers", 431},
    [MESH_H1_E_INVALID_METHOD] = {"invalid_method", 400},
    [MESH_H1_E_INVALID_VERSION] = {"invalid_version", 400},
    [MESH_H1_E_UNSUPPORTED_VERSION] = {"unsupported_version", 505},
    [MESH_H1_E_MISSING_HOST] = {"missing_host", 400},
    [MESH_H1_E_DUPLICATE_HOST] = {"duplicate_host", 400},
    [MESH_H1_E_INVALID_HOST] = {"invalid_host", 400},
    [MESH_H1_E_INVALID_TARGET] = {"invalid_target", 400},
    [MESH_H1_E_INVALID_STATUS] = {"invalid_status", 502},
    [MESH_H1_E_CHUNK_SIZE] = {"bad_chunk_size", 400},
    [MESH_H1_E_CHUNK_EXT] = {"bad_chunk_ext", 400},
    [MESH_H1_E_CHUNK_LINE_TOO_LONG] = {"chunk_line_too_long", 400},
    [MESH_H1_E_CHUNK_MISSING_CRLF] = {"chunk_missing_crlf", 400},
    [MESH_H1_E_TRAILER_INVALID] = {"bad_trailer", 400},
    [MESH_H1_E_TRAILER_TOO_LARGE] = {"trailer_too_large", 400},
};

const char *mesh_h1_error_name(enum mesh_h1_error e)
{
    if ((unsigned)e >= MESH_H1_E_COUNT)
        return "unknown";
    return error_info[e].name;
}

int mesh_h1_error_status(enum mesh_h1_error e)
{
    if ((unsigned)e >= MESH_H1_E_COUNT)
        return 400;
    return error_info[e].status;
}

static size_t or_default(size_t v, size_t def)
{
    return v ? v : def;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static unsigned hex_value(uint8_t c)
{
    return is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* Compares a header name (token characters only) with a lower-case literal made of letters and
 * '-'. OR-ing 0x20 folds case exactly here: among token characters, c | 0x20 is a given letter
 * only for that letter in either case, and is '-' only for '-'. */
static bool name_is(const char *name, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((uint8_t)name[i] | 0x20) != (uint8_t)lit[i])
            return false;
    return true;
}

/* Case-insensitive compare of arbitrary field-value bytes with a lower-case literal. */
static bool value_is(const char *v, size_t n, const char *lit, size_t lit_len)
{
    if (n != lit_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (mesh_ascii_lower((uint8_t)v[i]) != (uint8_t)lit[i])
            return false;
    return true;
}

/* Index of the first byte in buf[i..end) that is a control character (HTAB aside) or DEL, or
 * end. This is where a head spends its time, so it looks at 16 bytes per step when it can. */
static size_t find_stop(const char *buf, size_t i, size_t end)
{
#if defined(__SSE2__)
    const __m128i max_ctl = _mm_set1_epi8(0x1f);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, max_ctl), v); /* v <= 0x1f, unsigned */
        ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl);
        ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, del));
        unsigned mask = (unsigned)_mm_movemask_epi8(ctl);
        if (mask)
            return i + (unsigned)__builtin_ctz(mask);
        i += 16;
    }
#endif
    while (end - i >= 4) {
        if (ctype[(uint8_t)buf[i]] & C_STOP)
            return i;
        if (ctype[(uint8_t)buf[i + 1]] & C_STOP)
            return i + 1;
        if (ctype[(uint8_t)buf[i + 2]] & C_STOP)
            return i + 2;
        if (ctype[(uint8_t)buf[i + 3]] & C_STOP)
            return i + 3;
        i += 4;
    }
    while (i < end && !(ctype[(uint8_t)buf[i]] & C_STOP))
        i++;
    return i;
}

/* True when every byte of s[0..n) has class cls. */
static bool all_of(const char *s, size_t n, uint8_t cls)
{
    for (size_t i = 0; i < n; i++)
        if (!(ctype[(uint8_t)s[i]] & cls))
            return false;
    return true;
}

void mesh_h1_parser_init(struct mesh_h1_parser *p, int kind, const struct mesh_h1_limits *limits,
                         struct mesh_h1_header *headers, size_t max_headers)
{
    struct mesh_h1_limits l = {0};
    if (limits)
        l = *limits;
    p->limits.max_request_line = or_default(l.max_request_line, MESH_H1_DEFAULT_MAX_REQUEST_LINE);
    p->limits.max_header_bytes = or_default(l.max_header_bytes, MESH_H1_DEFAULT_MAX_HEADER_BYTES);
    p->limits.max_headers = or_default(l.max_headers, MESH_H1_DEFAULT_MAX_HEADERS);
    p->limits.max_chunk_line = or_default(l.max_chunk_line, MESH_H1_DEFAULT_MAX_CHUNK_LINE);
    p->limits.max_trailer_bytes =
        or_default(l.max_trailer_bytes, MESH_H1_DEFAULT_MAX_TRAILER_BYTES);
    p->headers = headers;
    p->max_headers = max_headers < p->limits.max_headers ? max_headers : p->limits.max_headers;
    p->kind = kind == MESH_H1_RESPONSE ? MESH_H1_RESPONSE : MESH_H1_REQUEST;
    mesh_h1_parser_reset(p);
}

void mesh_h1_parser_reset(struct mesh_h1_parser *p)
{
    p->error = MESH_H1_E_NONE;
    p->state = ST_START;
    p->version_minor = 0;
    p->flags = 0;
    p->base = 0;
    p->pos = 0;
    p->scan = 0;
    p->n_headers = 0;
    p->start_off = 0;
    p->method_len = 0;
    p->target_off = 0;
    p->target_len = 0;
    p->path_off = 0;
    p->path_len = 0;
    p->query_off = 0;
    p->query_len = 0;
    p->authority_off = 0;
    p->authority_len = 0;
    p->target_form = MESH_H1_T_ORIGIN;
    p->status = 0;
    p->host_idx = -1;
    p->content_length = -1;
    p->method_id = MESH_H1_M_OTHER;
    p->n_chunked = 0;
}

/* "HTTP/d.d": 1.0 and 1.1 are ours, other well-formed versions are 505, the rest 400. */
static enum mesh_h1_error parse_version(const char *s, size_t n, uint8_t *minor)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || !is_digit((uint8_t)s[5]) || s[6] != '.' ||
        !is_digit((uint8_t)s[7]))
        return MESH_H1_E_INVALID_VERSION;
    if (s[5] != '1' || s[7] > '1')
        return MESH_H1_E_UNSUPPORTED_VERSION;
    *minor = (uint8_t)(s[7] - '0');
    return MESH_H1_E_NONE;
}

static uint8_t method_id(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return MESH_H1_M_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return MESH_H1_M_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0)
            return MESH_H1_M_POST;
        if (memcmp(m, "HEAD", 4) == 0)
            return MESH_H1_M_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return MESH_H1_M_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return MESH_H1_M_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return MESH_H1_M_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return MESH_H1_M_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0)
            return MESH_H1_M_CONNECT;
        break;
    }
    return MESH_H1_M_OTHER;
}

/* Absolute-form "scheme://authority[/path][?query]": finds the authority t[*a..*e). */
static bool split_absolute(const char *t, size_t n, size_t *a, size_t *e)
{
    if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
        return false;
    size_t i = 1;
    while (i < n && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') || is_digit((uint8_t)t[i]) ||
                     t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return false;
    size_t start = i + 3, end = start;
    while (end < n && t[end] != '/' && t[end] != '?')
        end++;
    if (end == start || !all_of(t + start, end - start, C_HOST))
        return false;
    *a = start;
    *e = end;
    return true;
}

/* method SP request-target SP HTTP-version, in buf[ls..le); buf[le] is the CR. */
static enum mesh_h1_error parse_request_line(struct mesh_h1_parser *p, const char *buf, size_t ls,
                                             size_t le)
{
    size_t i = ls;
    while (ctype[(uint8_t)buf[i]] & C_TCHAR) /* stops at the CR at the latest */
        i++;
    if (i == ls || buf[i] != ' ')
        return MESH_H1_E_INVALID_METHOD;
    size_t ts = i + 1;
    /* The version is the last 8 bytes, after the last SP. */
    if (le - ts < 9 || buf[le - 9] != ' ')
        return MESH_H1_E_INVALID_VERSION;
    enum mesh_h1_error e = parse_version(buf + le - 8, 8, &p->version_minor);
    if (e != MESH_H1_E_NONE)
        return e;
    size_t te = le - 9;
    if (te == ts)
        return MESH_H1_E_INVALID_TARGET;
    /* One pass validates the target and finds where its query starts. */
    size_t j = ts;
    while (j < te && (ctype[(uint8_t)buf[j]] & C_TARGET) && buf[j] != '?')
        j++;
    size_t q = j;
    while (j < te && (ctype[(uint8_t)buf[j]] & C_TARGET))
        j++;
    if (j != te)
        return MESH_H1_E_INVALID_TARGET;
    uint8_t mid = method_id(buf + ls, i - ls);
    size_t path = ts; /* where the path starts */
    if (buf[ts] == '/') {
        if (mid == MESH_H1_M_CONNECT)
            return MESH_H1_E_INVALID_TARGET;
        p->target_form = MESH_H1_T_ORIGIN;
    } else if (te - ts == 1 && buf[ts] == '*') {
        if (mid != MESH_H1_M_OPTIONS)
            return MESH_H1_E_INVALID_TARGET;
        p->target_form = MESH_H1_T_ASTERISK;
        q = te;
    } else if (mid == MESH_H1_M_CONNECT) {
        if (!all_of(buf + ts, te - ts, C_HOST))
            return MESH_H1_E_INVALID_TARGET;
        p->target_form = MESH_H1_T_AUTHORITY;
        p->authority_off = ts;
        p->authority_len = te - ts;
        path = q = te;
    } else {
        size_t auth_start, auth_end;
        if (!split_absolute(buf + ts, te - ts, &auth_start, &auth_end))
            return MESH_H1_E_INVALID_TARGET;
        p->target_form = MESH_H1_T_ABSOLUTE;
        p->authority_off = ts + auth_start;
        p->authority_len = auth_end - auth_start;
        path = ts + auth_end;
    }
    p->method_id = mid;
    p->start_off = ls;
    p->method_len = i - ls;
    p->target_off = ts;
    p->target_len = te - ts;
    p->path_off = path;
    p->path_len = q - path;
    p->query_off = q < te ? q + 1 : te;
    p->query_len = q < te ? te - q - 1 : 0;
    return MESH_H1_E_NONE;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase]. A missing SP before an empty reason is accepted:
 * servers do send "HTTP/1.1 200\r\n", and it is unambiguous. */
static enum mesh_h1_error parse_status_line(struct mesh_h1_parser *p, const char *buf, size_t ls,
                                            size_t le)
{
    size_t n = le - ls;
    const char *s = buf + ls;
    enum mesh_h1_error e = parse_version(s, n < 8 ? n : 8, &p->version_minor);
    if (e != MESH_H1_E_NONE)
        return e;
    if (n > 8 && s[8] != ' ')
        return MESH_H1_E_INVALID_VERSION;
    if (n < 12 || !is_digit((uint8_t)s[9]) || !is_digit((uint8_t)s[10]) ||
        !is_digit((uint8_t)s[11]) || s[9] == '0' || (n > 12 && s[12] != ' '))
        return MESH_H1_E_INVALID_STATUS;
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    p->start_off = ls;
    p->target_off = n > 12 ? ls + 13 : le; /* the reason */
    p->target_len = n > 12 ? n - 13 : 0;
    return MESH_H1_E_NONE;
}

/* 1*DIGIT, at most INT64_MAX. Equal repeats are one value; different ones conflict. */
static enum mesh_h1_error content_length(struct mesh_h1_parser *p, const char *v, size_t n)
{
    if (n == 0)
        return MESH_H1_E_CL_INVALID;
    int64_t cl = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((uint8_t)v[i]))
            return MESH_H1_E_CL_INVALID;
        int d = v[i] - '0';
        if (cl > (INT64_MAX - d) / 10)
            return MESH_H1_E_CL_INVALID;
        cl = cl * 10 + d;
    }
    if ((p->flags & F_HAVE_CL) && p->content_length != cl)
        return MESH_H1_E_CL_CONFLICT;
    p->flags |= F_HAVE_CL;
    p->content_length = cl;
    return MESH_H1_E_NONE;
}

/* Skips transfer-parameters (";" name "=" value, value maybe quoted) up to the next top-level
 * comma or the end; false on an unterminated quoted string or a control character. */
static bool skip_params(const char *v, size_t n, size_t *i)
{
    size_t j = *i;
    while (j < n && v[j] != ',') {
        if (v[j] == '"') {
            for (j++; j < n && v[j] != '"'; j++)
                if (v[j] == '\\' && ++j == n)
                    return false;
            if (j == n)
                return false;
        }
        j++;
    }
    *i = j;
    return true;
}

/* Transfer-Encoding: #transfer-coding. Several lines are one list, in order. */
static enum mesh_h1_error transfer_encoding(struct mesh_h1_parser *p, const char *v, size_t n)
{
    bool any = false;
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows((uint8_t)v[i]) || v[i] == ',')) /* empty elements are allowed */
            i++;
        if (i == n)
            break;
        size_t s = i;
        while (i < n && (ctype[(uint8_t)v[i]] & C_TCHAR))
            i++;
        if (i == s)
            return MESH_H1_E_TE_INVALID;
        bool chunked = value_is(v + s, i - s, "chunked", 7);
        while (i < n && is_ows((uint8_t)v[i]))
            i++;
        if (i < n && v[i] == ';') {
            if (chunked) /* chunked takes no parameters */
                return MESH_H1_E_TE_INVALID;
            if (!skip_params(v, n, &i))
                return MESH_H1_E_TE_INVALID;
        } else if (i < n && v[i] != ',') {
            return MESH_H1_E_TE_INVALID;
        }
        any = true;
        if (chunked && ++p->n_chunked > 1) /* chunked applied twice */
            return MESH_H1_E_TE_INVALID;
        if (chunked)
            p->flags |= F_TE_FINAL_CHUNKED;
        else
            p->flags &= (uint16_t)~F_TE_FINAL_CHUNKED;
    }
    if (!any)
        return MESH_H1_E_TE_INVALID;
    p->flags |= F_TE;
    return MESH_H1_E_NONE;
}

/* Connection: #connection-option; only close, keep-alive and upgrade matter here. */
static void connection(struct mesh_h1_parser *p, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows((uint8_t)v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows((uint8_t)v[e - 1]))
            e--;
        if (value_is(v + s, e - s, "close", 5))
            p->flags |= F_CONN_CLOSE;
        else if (value_is(v + s, e - s, "keep-alive", 10))
            p->flags |= F_CONN_KEEP_ALIVE;
        else if (value_is(v + s, e - s, "upgrade", 7))
            p->flags |= F_CONN_UPGRADE;
    }
}

/* Folds one header line into what the message means. The switch on the name's length keeps
 * the common, uninteresting headers to one comparison. */
static enum mesh_h1_error apply_header(struct mesh_h1_parser *p, const struct mesh_h1_header *h)
{
    const char *name = h->name.p, *v = h->value.p;
    size_t n = h->value.len;
    bool request = p->kind == MESH_H1_REQUEST;
    switch (h->name.len) {
    case 4:
        if (request && name_is(name, "host", 4)) {
            if (p->host_idx >= 0)
                return MESH_H1_E_DUPLICATE_HOST;
            if (!all_of(v, n, C_HOST))
                return MESH_H1_E_INVALID_HOST;
            p->host_idx = (int)p->n_headers;
        }
        break;
    case 6:
        if (request && name_is(name, "expect", 6) && value_is(v, n, "100-continue", 12))
            p->flags |= F_EXPECT_CONTINUE;
        break;
    case 7:
        if (name_is(name, "upgrade", 7))
            p->flags |= F_UPGRADE;
        break;
    case 10:
        if (name_is(name, "connection", 10))
            connection(p, v, n);
        break;
    case 14:
        if (name_is(name, "content-length", 14))
            return content_length(p, v, n);
        break;
    case 17:
        if (name_is(name, "transfer-encoding", 17))
            return transfer_encoding(p, v, n);
        break;
    }
    return MESH_H1_E_NONE;
}

/* field-name ":" OWS field-value OWS, in buf[ls..le); buf[le] is the CR. */
static enum mesh_h1_error parse_header_line(struct mesh_h1_parser *p, const char *buf, size_t ls,
                                            size_t le)
{
    if (is_ows((uint8_t)buf[ls]))
        return MESH_H1_E_OBS_FOLD;
    size_t i = ls;
    while (ctype[(uint8_t)buf[i]] & C_TCHAR) /* stops at the CR at the latest */
        i++;
    if (buf[i] != ':') {
        if (i == ls || !is_ows((uint8_t)buf[i]))
            return MESH_H1_E_INVALID_HEADER_NAME;
        while (is_ows((uint8_t)buf[i]))
            i++;
        return buf[i] == ':' ? MESH_H1_E_WS_BEFORE_COLON : MESH_H1_E_INVALID_HEADER_NAME;
    }
    if (i == ls)
        return MESH_H1_E_INVALID_HEADER_NAME;
    if (p->n_headers >= p->max_headers)
        return MESH_H1_E_TOO_MANY_HEADERS;
    size_t vs = i + 1;
    while (is_ows((uint8_t)buf[vs]))
        vs++;
    size_t ve = le;
    while (ve > vs && is_ows((uint8_t)buf[ve - 1]))
        ve--;
    struct mesh_h1_header *h = &p->headers[p->n_headers];
    h->name = mesh_slice_make(buf + ls, i - ls);
    h->value = mesh_slice_make(buf + vs, ve - vs);
    enum mesh_h1_error e = apply_header(p, h);
    if (e != MESH_H1_E_NONE)
        return e;
    p->n_headers++;
    return MESH_H1_E_NONE;
}

/* Rules that need the whole head. */
static enum mesh_h1_error finish_head(const struct mesh_h1_parser *p)
{
    if ((p->flags & F_HAVE_CL) && (p->flags & F_TE))
        return MESH_H1_E_CL_TE_CONFLICT;
    if (p->flags & F_TE) {
        if (p->version_minor == 0)
            return MESH_H1_E_TE_INVALID;
        if (!(p->flags & F_TE_FINAL_CHUNKED) && p->kind == MESH_H1_REQUEST)
            return MESH_H1_E_TE_NOT_CHUNKED;
    }
    if (p->kind == MESH_H1_REQUEST && p->version_minor == 1 && p->host_idx < 0)
        return MESH_H1_E_MISSING_HOST;
    return MESH_H1_E_NONE;
}

/* The header slices hold addresses in the buffer of the previous call: move them to buf. The
 * old address is only used as a number, never dereferenced. */
static void rebase(struct mesh_h1_parser *p, const char *buf)
{
    for (size_t i = 0; i < p->n_headers; i++) {
        struct mesh_h1_header *h = &p->headers[i];
        h->name.p = buf + ((uintptr_t)h->name.p - p->base);
        h->value.p = buf + ((uintptr_t)h->value.p - p->base);
    }
    p->base = (uintptr_t)buf;
}

static const char slash[] = "/";

/* Every field is assigned (no memset): this runs once per request. */
static void fill(const struct mesh_h1_parser *p, const char *buf, struct mesh_h1_message *m)
{
    bool v11 = p->version_minor == 1, request = p->kind == MESH_H1_REQUEST;
    m->is_request = request;
    m->version_minor = p->version_minor;
    m->headers = p->headers;
    m->n_headers = p->n_headers;
    m->head_len = p->pos;
    m->content_length = p->content_length;
    m->chunked = (p->flags & F_TE) && (p->flags & F_TE_FINAL_CHUNKED);
    m->keep_alive = !(p->flags & F_CONN_CLOSE) && (v11 || (p->flags & F_CONN_KEEP_ALIVE));
    m->upgrade = v11 && (p->flags & F_CONN_UPGRADE) && (p->flags & F_UPGRADE);
    m->expect_continue = request && v11 && (p->flags & F_EXPECT_CONTINUE);
    m->method = mesh_slice_make(buf + p->start_off, p->method_len);
    m->method_id = (enum mesh_h1_method)p->method_id;
    m->target_form = (enum mesh_h1_target_form)p->target_form;
    m->query = mesh_slice_make(buf + p->query_off, p->query_len);
    m->path = mesh_slice_make(buf + p->path_off, p->path_len);
    if (request && p->path_len == 0 && p->target_form == MESH_H1_T_ABSOLUTE)
        m->path = mesh_slice_make(slash, 1);
    if (p->authority_len)
        m->host = mesh_slice_make(buf + p->authority_off, p->authority_len);
    else if (p->host_idx >= 0)
        m->host = p->headers[p->host_idx].value;
    else
        m->host = mesh_slice_make(NULL, 0);
    if (request) {
        m->target = mesh_slice_make(buf + p->target_off, p->target_len);
        m->status = 0;
        m->reason = mesh_slice_make(NULL, 0);
    } else {
        m->target = mesh_slice_make(NULL, 0);
        m->status = p->status;
        m->reason = mesh_slice_make(buf + p->target_off, p->target_len);
    }
}

enum mesh_err mesh_h1_parse(struct mesh_h1_parser *p, const char *buf, size_t len,
                            struct mesh_h1_message *msg)
{
    enum mesh_h1_error e;
    if ((uintptr_t)buf != p->base)
        rebase(p, buf);
    if (p->state == ST_DONE)
        goto done;
    if (p->state == ST_ERROR)
        return MESH_E_INVALID;
    /* Bytes past the head limit are never parsed: needing one of them is the 431. */
    size_t avail = len < p->limits.max_header_bytes ? len : p->limits.max_header_bytes;
    if (avail < p->scan) /* a caller that shrank the buffer: nothing new to look at */
        goto more;
    for (;;) {
        size_t ls = p->pos, end = avail, cap = SIZE_MAX;
        if (p->state == ST_START) {
            cap = ls + p->limits.max_request_line; /* first byte past the longest start line */
            if (end > cap)
                end = cap;
        }
        size_t s = find_stop(buf, p->scan, end);
        if (s == end) {
            if (end == cap && cap < avail) {
                if (buf[cap] != '\r') {
                    e = MESH_H1_E_REQUEST_LINE_TOO_LONG;
                    goto fail;
                }
            } else {
                p->scan = end;
                goto more;
            }
        }
        if (buf[s] != '\r') {
            e = buf[s] == '\n' ? MESH_H1_E_BARE_LF
                : buf[s] == 0  ? MESH_H1_E_NUL
                               : MESH_H1_E_CTL_CHAR;
            goto fail;
        }
        if (s + 1 == avail) {
            p->scan = s; /* look at this CR again when its LF may be there */
            goto more;
        }
        if (buf[s + 1] != '\n') {
            e = MESH_H1_E_BARE_CR;
            goto fail;
        }
        p->pos = p->scan = s + 2;
        if (p->state == ST_START) {
            if (s == ls) /* an empty line before the start line is skipped (RFC 9112 2.2) */
                continue;
            e = p->kind == MESH_H1_REQUEST ? parse_request_line(p, buf, ls, s)
                                           : parse_status_line(p, buf, ls, s);
            if (e != MESH_H1_E_NONE)
                goto fail;
            p->state = ST_HEADERS;
        } else if (s == ls) {
            e = finish_head(p);
            if (e != MESH_H1_E_NONE)
                goto fail;
            p->state = ST_DONE;
            goto done;
        } else {
            e = parse_header_line(p, buf, ls, s);
            if (e != MESH_H1_E_NONE)
                goto fail;
        }
    }
done:
    fill(p, buf, msg);
    return MESH_OK;
more:
    if (len > avail) {
        e = MESH_H1_E_HEADERS_TOO_LARGE;
        goto fail;
    }
    return MESH_E_AGAIN;
fail:
    p->error = e;
    p->state = ST_ERROR;
    return MESH_E_INVALID;
}

const struct mesh_h1_header *mesh_h1_find_header(const struct mesh_h1_message *msg,
                                                 struct mesh_slice name)
{
    for (size_t i = 0; i < msg->n_headers; i++)
        if (mesh_slice_eq_nocase(msg->headers[i].name, name))
            return &msg->headers[i];
    return NULL;
}

enum mesh_h1_body mesh_h1_request_body(const struct mesh_h1_message *msg)
{
    if (msg->chunked)
        return MESH_H1_BODY_CHUNKED;
    return msg->content_length > 0 ? MESH_H1_BODY_LENGTH : MESH_H1_BODY_NONE;
}

enum mesh_h1_body mesh_h1_response_body(const struct mesh_h1_message *msg, bool request_was_head)
{
    if (request_was_head || msg->status < 200 || msg->status == 204 || msg->status == 304)
        return MESH_H1_BODY_NONE;
    if (msg->chunked)
        return MESH_H1_BODY_CHUNKED;
    if (msg->content_length >= 0)
        return msg->content_length > 0 ? MESH_H1_BODY_LENGTH : MESH_H1_BODY_NONE;
    return MESH_H1_BODY_UNTIL_CLOSE;
}

/* Chunked tracker states, in the order a chunk goes through them. The size line comes first
 * (everything before CH_SIZE_LF counts against max_chunk_line), the trailer last (everything
 * from CH_TRAILER_START counts against max_trailer_bytes). */
enum {
    CH_SIZE_START = 0, /* first hex digit */
    CH_SIZE,           /* more hex digits */
    CH_SIZE_WS,        /* BWS after the size: only before ';' */
    CH_EXT_PRE_NAME,   /* after ';': BWS, then the extension name */
    CH_EXT_NAME,
    CH_EXT_NAME_WS, /* BWS after the name: only before '=' or ';' */
    CH_EXT_PRE_VAL, /* after '=': BWS, then a token or a quoted string */
    CH_EXT_VAL,
    CH_EXT_QS,
    CH_EXT_QS_ESC,
    CH_EXT_QS_END, /* after the closing quote */
    CH_EXT_VAL_WS, /* BWS after a value: only before ';' */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

#define CHUNK_SIZE_MAX ((uint64_t)1 << 62)

void mesh_h1_chunked_init_limits(struct mesh_h1_chunked *c, const struct mesh_h1_limits *limits)
{
    struct mesh_h1_limits l = {0};
    if (limits)
        l = *limits;
    *c = (struct mesh_h1_chunked){0};
    c->max_chunk_line = or_default(l.max_chunk_line, MESH_H1_DEFAULT_MAX_CHUNK_LINE);
    c->max_trailer_bytes = or_default(l.max_trailer_bytes, MESH_H1_DEFAULT_MAX_TRAILER_BYTES);
    c->state = CH_SIZE_START;
}

void mesh_h1_chunked_init(struct mesh_h1_chunked *c)
{
    mesh_h1_chunked_init_limits(c, NULL);
}

/* What a byte that no rule of the size line accepts is called. */
static enum mesh_h1_error size_line_error(uint8_t ch, enum mesh_h1_error otherwise)
{
    return ch == '\n' ? MESH_H1_E_BARE_LF : otherwise;
}

/* What may follow an extension value, token or quoted string: ';', BWS before one, or CR. */
static enum mesh_h1_error after_ext_value(struct mesh_h1_chunked *c, uint8_t ch)
{
    if (ch == ';')
        c->state = CH_EXT_PRE_NAME;
    else if (is_ows(ch))
        c->state = CH_EXT_VAL_WS;
    else if (ch == '\r')
        c->state = CH_SIZE_LF;
    else
        return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
    return MESH_H1_E_NONE;
}

/* One byte of everything but chunk data. Returns MESH_H1_E_NONE or why ch is wrong. */
static enum mesh_h1_error chunked_step(struct mesh_h1_chunked *c, uint8_t ch)
{
    uint8_t cls = ctype[ch];
    switch (c->state) {
    case CH_SIZE_START:
        if (!(cls & C_HEX))
            return size_line_error(ch, MESH_H1_E_CHUNK_SIZE);
        c->remaining = hex_value(ch);
        c->state = CH_SIZE;
        break;
    case CH_SIZE:
        if (cls & C_HEX) {
            unsigned d = hex_value(ch);
            if (c->remaining > (CHUNK_SIZE_MAX - d) / 16)
                return MESH_H1_E_CHUNK_SIZE;
            c->remaining = c->remaining * 16 + d;
        } else if (ch == '\r') {
            c->state = CH_SIZE_LF;
        } else if (ch == ';') {
            c->state = CH_EXT_PRE_NAME;
        } else if (is_ows(ch)) {
            c->state = CH_SIZE_WS;
        } else {
            return size_line_error(ch, MESH_H1_E_CHUNK_SIZE);
        }
        break;
    case CH_SIZE_WS:
        if (ch == ';')
            c->state = CH_EXT_PRE_NAME;
        else if (!is_ows(ch))
            return size_line_error(ch, MESH_H1_E_CHUNK_SIZE);
        break;
    case CH_EXT_PRE_NAME:
        if (cls & C_TCHAR)
            c->state = CH_EXT_NAME;
        else if (!is_ows(ch))
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_EXT_NAME:
        if (cls & C_TCHAR)
            break;
        if (ch == '=')
            c->state = CH_EXT_PRE_VAL;
        else if (ch == ';')
            c->state = CH_EXT_PRE_NAME;
        else if (is_ows(ch))
            c->state = CH_EXT_NAME_WS;
        else if (ch == '\r')
            c->state = CH_SIZE_LF;
        else
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_EXT_NAME_WS:
        if (ch == '=')
            c->state = CH_EXT_PRE_VAL;
        else if (ch == ';')
            c->state = CH_EXT_PRE_NAME;
        else if (!is_ows(ch))
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_EXT_PRE_VAL:
        if (cls & C_TCHAR)
            c->state = CH_EXT_VAL;
        else if (ch == '"')
            c->state = CH_EXT_QS;
        else if (!is_ows(ch))
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_EXT_VAL:
        if (cls & C_TCHAR)
            break;
        return after_ext_value(c, ch);
    case CH_EXT_QS_END:
        return after_ext_value(c, ch);
    case CH_EXT_QS:
        if (ch == '"')
            c->state = CH_EXT_QS_END;
        else if (ch == '\\')
            c->state = CH_EXT_QS_ESC;
        else if (!(cls & C_QDTEXT))
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_EXT_QS_ESC:
        if (cls & C_STOP)
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        c->state = CH_EXT_QS;
        break;
    case CH_EXT_VAL_WS:
        if (ch == ';')
            c->state = CH_EXT_PRE_NAME;
        else if (!is_ows(ch))
            return size_line_error(ch, MESH_H1_E_CHUNK_EXT);
        break;
    case CH_SIZE_LF:
        if (ch != '\n')
            return MESH_H1_E_BARE_CR;
        c->line_len = 0;
        c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
        break;
    case CH_DATA_CR:
        if (ch != '\r')
            return MESH_H1_E_CHUNK_MISSING_CRLF;
        c->state = CH_DATA_LF;
        break;
    case CH_DATA_LF:
        if (ch != '\n')
            return MESH_H1_E_CHUNK_MISSING_CRLF;
        c->state = CH_SIZE_START;
        break;
    case CH_TRAILER_START:
        if (ch == '\r')
            c->state = CH_FINAL_LF;
        else if (cls & C_TCHAR)
            c->state = CH_TRAILER_NAME;
        else
            return ch == '\n' ? MESH_H1_E_BARE_LF : MESH_H1_E_TRAILER_INVALID;
        break;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!(cls & C_TCHAR))
            return ch == '\n' ? MESH_H1_E_BARE_LF : MESH_H1_E_TRAILER_INVALID;
        break;
    case CH_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (cls & C_STOP)
            return ch == '\n' ? MESH_H1_E_BARE_LF : MESH_H1_E_TRAILER_INVALID;
        break;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return MESH_H1_E_BARE_CR;
        c->state = CH_TRAILER_START;
        break;
    case CH_FINAL_LF:
        if (ch != '\n')
            return MESH_H1_E_BARE_CR;
        c->state = CH_DONE;
        break;
    }
    return MESH_H1_E_NONE;
}

enum mesh_err mesh_h1_chunked_feed(struct mesh_h1_chunked *c, const char *in, size_t len,
                                   size_t *used)
{
    enum mesh_h1_error e = MESH_H1_E_NONE;
    size_t i = 0;
    if (c->state == CH_DONE || c->state == CH_ERROR) {
        *used = 0;
        return c->state == CH_DONE ? MESH_OK : MESH_E_INVALID;
    }
    while (i < len) {
        if (c->state == CH_DATA) {
            /* The data is relayed, not looked at: skip it whole. */
            uint64_t n = len - i;
            if (n > c->remaining)
                n = c->remaining;
            i += (size_t)n;
            c->remaining -= n;
            c->body_bytes += n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        uint8_t ch = (uint8_t)in[i];
        if (c->state < CH_SIZE_LF && ch != '\r' && ++c->line_len > c->max_chunk_line) {
            e = MESH_H1_E_CHUNK_LINE_TOO_LONG;
            goto fail;
        }
        if (c->state >= CH_TRAILER_START && ++c->trailer_bytes > c->max_trailer_bytes) {
            e = MESH_H1_E_TRAILER_TOO_LARGE;
            goto fail;
        }
        e = chunked_step(c, ch);
        if (e != MESH_H1_E_NONE)
            goto fail;
        i++;
        if (c->state == CH_DONE) {
            *used = i;
            return MESH_OK;
        }
    }
    *used = len;
    return MESH_E_AGAIN;
fail:
    *used = i;
    c->error = e;
    c->state = CH_ERROR;
    return MESH_E_INVALID;
}
