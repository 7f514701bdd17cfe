/* SPDX-License-Identifier: Apache-2.0 */
/* Spans as OTLP/HTTP JSON: an ExportTraceServiceRequest (resourceSpans, scopeSpans, spans) in
 * the protobuf JSON mapping OTLP specifies (hex ids, 64-bit integers as strings, enums as
 * numbers). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh.h"
#include "trace.h"
#include "trace_context.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one. Strict:
 * no overlongs, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string: quotes, backslashes and control characters escaped; a byte that starts no
 * valid UTF-8 sequence becomes U+FFFD (request paths and ids come from clients). */
static enum mesh_err put_string(struct mesh_strbuf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    enum mesh_err err = mesh_strbuf_puts(out, "\"");
    size_t run = 0; /* start of the bytes that need no escaping */
    size_t i = 0;
    while (err == MESH_OK && i < n) {
        unsigned char c = p[i];
        size_t len = c >= 0x20 && c != '"' && c != '\\' ? utf8_seq(p + i, n - i) : 0;
        if (len) {
            i += len;
            continue;
        }
        err = mesh_strbuf_append(out, s + run, i - run);
        if (err != MESH_OK)
            break;
        if (c == '"' || c == '\\')
            err = mesh_strbuf_printf(out, "\\%c", c);
        else if (c < 0x20)
            err = mesh_strbuf_printf(out, "\\u%04x", c);
        else
            err = mesh_strbuf_puts(out, "\\ufffd");
        i++;
        run = i;
    }
    if (err == MESH_OK)
        err = mesh_strbuf_append(out, s + run, n - run);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "\"");
    return err;
}

static enum mesh_err put_hex_id(struct mesh_strbuf *out, const char *key, const uint8_t *id,
                                size_t n)
{
    char hex[32];
    mesh_trace_hex(id, n, hex);
    return mesh_strbuf_printf(out, ",\"%s\":\"%.*s\"", key, (int)(2 * n), hex);
}

/* {"key":"K","value":{"stringValue":"V"}}, preceded by a comma unless first. */
static enum mesh_err put_str_attr(struct mesh_strbuf *out, const char *key, const char *value,
                                  bool first)
{
    enum mesh_err err = mesh_strbuf_printf(
        out, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":", first ? "" : ",", key);
    if (err == MESH_OK)
        err = put_string(out, value);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "}}");
    return err;
}

static enum mesh_err put_int_attr(struct mesh_strbuf *out, const char *key, uint64_t value)
{
    return mesh_strbuf_printf(out, ",{\"key\":\"%s\",\"value\":{\"intValue\":\"%" PRIu64 "\"}}",
                              key, value);
}

enum mesh_err mesh_trace_otlp_begin(struct mesh_strbuf *out, const struct mesh_trace_resource *res)
{
    enum mesh_err err =
        mesh_strbuf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    if (err == MESH_OK)
        err = put_str_attr(out, "service.name", res->service ? res->service : "meshproxy", true);
    if (err == MESH_OK && res->ns)
        err = put_str_attr(out, "service.namespace", res->ns, false);
    if (err == MESH_OK && res->instance)
        err = put_str_attr(out, "service.instance.id", res->instance, false);
    if (err == MESH_OK && res->mode)
        err = put_str_attr(out, "mesh.proxy.mode", res->mode, false);
    if (err == MESH_OK)
        err = put_str_attr(out, "telemetry.sdk.name", "clusterdb-mesh", false);
    if (err == MESH_OK)
        err = mesh_strbuf_printf(out,
                                 "]},\"scopeSpans\":[{\"scope\":{\"name\":\"meshproxy\","
                                 "\"version\":\"%s\"},\"spans\":[",
                                 MESH_VERSION);
    return err;
}

enum mesh_err mesh_trace_otlp_span(struct mesh_strbuf *out, const struct mesh_span_record *sp,
                                   bool first)
{
    enum mesh_err err = mesh_strbuf_puts(out, first ? "{" : ",{");
    /* The first key without a comma: the helpers below all lead with one. */
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "\"kind\":");
    if (err == MESH_OK)
        err = mesh_strbuf_printf(out, "%u", (unsigned)sp->kind);
    if (err == MESH_OK)
        err = put_hex_id(out, "traceId", sp->trace_id, 16);
    if (err == MESH_OK)
        err = put_hex_id(out, "spanId", sp->span_id, 8);
    if (err == MESH_OK && sp->has_parent)
        err = put_hex_id(out, "parentSpanId", sp->parent_id, 8);
    /* The name: low-cardinality, as OTLP asks: the method and the destination Service. */
    char name[sizeof(sp->method) + sizeof(sp->destination) + 1];
    snprintf(name, sizeof(name), "%s%s%s", sp->method, sp->destination[0] ? " " : "",
             sp->destination);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, ",\"name\":");
    if (err == MESH_OK)
        err = put_string(out, name);
    if (err == MESH_OK)
        err = mesh_strbuf_printf(out,
                                 ",\"startTimeUnixNano\":\"%" PRIu64
                                 "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
                                 sp->start_ns, sp->end_ns);
    if (err == MESH_OK)
        err = put_str_attr(out, "mesh.direction",
                           sp->kind == MESH_SPAN_KIND_CLIENT ? "outbound" : "inbound", true);
    if (err == MESH_OK)
        err = put_str_attr(out, "mesh.destination.service", sp->destination, false);
    if (err == MESH_OK)
        err = put_str_attr(out, "mesh.route", sp->route, false);
    if (err == MESH_OK && sp->endpoint[0])
        err = put_str_attr(out, "mesh.upstream.endpoint", sp->endpoint, false);
    if (err == MESH_OK)
        err = put_int_attr(out, "mesh.retries", sp->retries);
    if (err == MESH_OK && sp->request_id[0])
        err = put_str_attr(out, "mesh.request_id", sp->request_id, false);
    if (err == MESH_OK)
        err = put_str_attr(out, "http.request.method", sp->method, false);
    if (err == MESH_OK)
        err = put_str_attr(out, "url.path", sp->path, false);
    if (err == MESH_OK)
        err = put_str_attr(out, "server.address", sp->authority, false);
    if (err == MESH_OK && sp->status)
        err = put_int_attr(out, "http.response.status_code", sp->status);
    if (err == MESH_OK)
        err = put_str_attr(out, "network.peer.address", sp->peer, false);
    if (err == MESH_OK)
        err = put_int_attr(out, "network.peer.port", sp->peer_port);
    if (err != MESH_OK)
        return err;
    /* Server spans fail on 5xx only (the client's 4xx is not the server's error); a client
     * span fails on any 4xx or 5xx, as OpenTelemetry's HTTP conventions say. */
    bool error = sp->status >= 500 || (sp->kind == MESH_SPAN_KIND_CLIENT && sp->status >= 400);
    if (error)
        return mesh_strbuf_printf(out, "],\"status\":{\"code\":2,\"message\":\"HTTP %u\"}}",
                                  (unsigned)sp->status);
    return mesh_strbuf_puts(out, "],\"status\":{\"code\":0}}");
}

enum mesh_err mesh_trace_otlp_end(struct mesh_strbuf *out)
{
    return mesh_strbuf_puts(out, "]}]}]}");
}
