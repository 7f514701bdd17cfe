/* SPDX-License-Identifier: Apache-2.0 */
/* Tap events: the /tap query's filter, the JSON line of an event, and the per-worker SPSC ring
 * that carries events from a worker to the admin worker. */
#include "tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hex.h"
#include "model/schema.h"

/* ---- the filter ---- */

/* Percent-decodes v into out (size bytes with the NUL). False for a bad escape, a NUL byte, or
 * a value that does not fit. */
static bool decode(struct mesh_slice v, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c == '%') {
            if (i + 2 >= v.len)
                return false;
            int hi = mesh_hex_value(v.p[i + 1]), lo = mesh_hex_value(v.p[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= size)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static enum mesh_err bad(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return MESH_E_INVALID;
}

static bool parse_count(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 1)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* One name=value pair of the query. */
static enum mesh_err filter_param(struct mesh_tap_filter *f, struct mesh_slice name,
                                  struct mesh_slice value, char *why, size_t why_len)
{
    char text[256];
    if (mesh_slice_eq_cstr(name, "path")) {
        if (!decode(value, f->path, sizeof(f->path)))
            return bad(why, why_len,
                       "path: a bad %%-escape, or longer than 255 bytes once decoded");
        if (f->path[0] && f->path[0] != '/')
            return bad(why, why_len, "path \"%s\": a path prefix starts with '/'", f->path);
        return MESH_OK;
    }
    if (mesh_slice_eq_cstr(name, "method")) {
        if (!decode(value, f->method, sizeof(f->method)))
            return bad(why, why_len, "method: a bad %%-escape, or longer than 15 characters");
        for (const char *c = f->method; *c; c++)
            if (!is_tchar(*c))
                return bad(why, why_len, "method \"%s\" is not an HTTP method token", f->method);
        return MESH_OK;
    }
    bool is_max = mesh_slice_eq_cstr(name, "max");
    if (is_max || mesh_slice_eq_cstr(name, "timeout")) {
        if (!decode(value, text, sizeof(text)))
            return bad(why, why_len, "%s: a bad %%-escape", is_max ? "max" : "timeout");
        if (is_max) {
            if (!parse_count(text, &f->max_events) || f->max_events < 1 ||
                f->max_events > MESH_TAP_MAX_EVENTS)
                return bad(why, why_len, "max \"%s\": a count of events from 1 to %u", text,
                           MESH_TAP_MAX_EVENTS);
            return MESH_OK;
        }
        unsigned long long ms = 0;
        char dwhy[160];
        if (!mesh_duration_parse(text, &ms, dwhy, sizeof(dwhy)))
            return bad(why, why_len, "timeout: %s", dwhy);
        if (ms < 1 || ms > MESH_TAP_MAX_TIMEOUT_MS)
            return bad(why, why_len, "timeout \"%s\": from 1ms to 1h", text);
        f->timeout_ms = ms;
        return MESH_OK;
    }
    return bad(why, why_len, "unknown parameter \"%.*s\" (known: path, method, max, timeout)",
               (int)(name.len > 40 ? 40 : name.len), name.p);
}

enum mesh_err mesh_tap_filter_parse(struct mesh_slice query, struct mesh_tap_filter *f, char *why,
                                    size_t why_len)
{
    memset(f, 0, sizeof(*f));
    f->max_events = MESH_TAP_MAX_EVENTS;
    f->timeout_ms = MESH_TAP_DEFAULT_TIMEOUT_MS;
    size_t i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.p[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && query.p[eq] != '=')
                eq++;
            struct mesh_slice name = mesh_slice_make(query.p + i, eq - i);
            struct mesh_slice value =
                eq < end ? mesh_slice_make(query.p + eq + 1, end - eq - 1) : mesh_slice_make("", 0);
            enum mesh_err err = filter_param(f, name, value, why, why_len);
            if (err != MESH_OK)
                return err;
        }
        i = end + 1;
    }
    return MESH_OK;
}

bool mesh_tap_filter_match(const struct mesh_tap_filter *f, const struct mesh_tap_event *ev)
{
    if (f->method[0] && strcmp(f->method, ev->method) != 0)
        return false;
    return strncmp(ev->path, f->path, strlen(f->path)) == 0;
}

/* ---- the JSON line ---- */

struct out {
    char *p;
    size_t len, size;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || o->size - o->len <= n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len)
        o->full = true;
    else
        o->len += (size_t)n;
}

/* The length of the valid UTF-8 sequence at s (up to end), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t extra;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        extra = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        extra = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        extra = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - s) <= extra)
        return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return extra + 1;
}

static void put_string(struct out *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    put(o, "\"", 1);
    while (p < end) {
        size_t n = utf8_len(p, end);
        if (n == 0) {
            put(o, "\\ufffd", 6);
            p++;
        } else if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            put(o, esc, 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            putf(o, "\\u%04x", *p);
            p++;
        } else {
            put(o, (const char *)p, n);
            p += n;
        }
    }
    put(o, "\"", 1);
}

/* "key":"value", or "key":null for an empty value. */
static void put_field(struct out *o, const char *key, const char *value, bool null_when_empty)
{
    putf(o, ",\"%s\":", key);
    if (null_when_empty && !*value)
        put(o, "null", 4);
    else
        put_string(o, value);
}

size_t mesh_tap_event_json(const struct mesh_tap_event *ev, char *buf, size_t size)
{
    struct out o = {buf, 0, size, false};
    time_t secs = (time_t)(ev->unix_ms / 1000);
    struct tm tm;
    char when[40] = "1970-01-01T00:00:00";
    if (gmtime_r(&secs, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    putf(&o, "{\"time\":\"%s.%03" PRIu64 "Z\",\"direction\":\"%s\"", when, ev->unix_ms % 1000,
         ev->inbound ? "inbound" : "outbound");
    put_field(&o, "method", ev->method, false);
    put_field(&o, "authority", ev->authority, false);
    put_field(&o, "path", ev->path, false);
    putf(&o, ",\"status\":%u,\"latency_ms\":%" PRIu64 ".%03" PRIu64, ev->status,
         ev->latency_us / 1000, ev->latency_us % 1000);
    put_field(&o, "source", ev->source, false);
    put_field(&o, "source_identity", ev->source_identity, true);
    putf(&o, ",\"tls\":%s", ev->tls ? "true" : "false");
    put_field(&o, "destination", ev->service, true);
    put_field(&o, "endpoint", ev->endpoint, true);
    put_field(&o, "route", ev->route, true);
    put_field(&o, "request_id", ev->request_id, true);
    put(&o, "}\n", 2);
    if (o.full)
        return 0;
    buf[o.len] = '\0';
    return o.len;
}

/* ---- the ring ---- */

enum mesh_err mesh_tap_ring_new(struct mesh_tap_ring **out)
{
    struct mesh_tap_ring *r = malloc(sizeof(*r));
    *out = r;
    if (!r)
        return MESH_E_NOMEM;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return MESH_OK;
}

struct mesh_tap_event *mesh_tap_ring_reserve(struct mesh_tap_ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* Acquire: the consumer is done reading the slot it released. */
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail >= MESH_TAP_RING_SLOTS)
        return NULL;
    return &r->slots[head & (MESH_TAP_RING_SLOTS - 1)];
}

void mesh_tap_ring_commit(struct mesh_tap_ring *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* Release: the consumer that sees the new head sees the slot filled. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

const struct mesh_tap_event *mesh_tap_ring_peek(struct mesh_tap_ring *r)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (head == tail)
        return NULL;
    return &r->slots[tail & (MESH_TAP_RING_SLOTS - 1)];
}

void mesh_tap_ring_pop(struct mesh_tap_ring *r)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}
