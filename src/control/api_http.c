/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's answers (JSON documents, the JSON error of docs/api.md) and the parts of a request
 * it reads: path segments and query parameters, percent-decoded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "core/hex.h"
#include "core/xalloc.h"

const char *mesh_api_reason(int status)
{
    switch (status) {
    case 400:
    case 411:
    case 414:
    case 505:
        return "Invalid";
    case 401:
        return "Unauthorized";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 408:
        return "Timeout";
    case 409:
        return "Conflict";
    case 413:
    case 431:
        return "TooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 429:
        return "TooManyRequests";
    case 503:
        return "Unavailable";
    default:
        return status >= 500 ? "Internal" : "Invalid";
    }
}

char *mesh_api_error_json(int status, const char *message)
{
    json_t *doc = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "reason",
                            mesh_api_reason(status), "message", message ? message : "");
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    char *out = xasprintf("%s\n", text);
    free(text);
    return out;
}

char *mesh_api_error_body(int status, const char *message, const char **content_type, void *data)
{
    (void)data;
    *content_type = "application/json";
    return mesh_api_error_json(status, message);
}

void mesh_api_send(struct mesh_httpd_req *req, int status, const char *content_type,
                   const char *extra_headers, const char *text)
{
    char *headers =
        xasprintf("content-type: %s\r\n%s", content_type, extra_headers ? extra_headers : "");
    mesh_httpd_respond(req, status, headers, text, text ? strlen(text) : 0);
    free(headers);
}

void mesh_api_error(struct mesh_httpd_req *req, int status, const char *extra_headers,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = xmalloc(n > 0 ? (size_t)n + 1 : 1);
    msg[0] = '\0';
    va_start(ap, fmt);
    if (n > 0)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    char *body = mesh_api_error_json(status, msg);
    mesh_api_send(req, status, "application/json", extra_headers, body);
    free(body);
    free(msg);
}

void mesh_api_method_not_allowed(struct mesh_httpd_req *req, const char *allow)
{
    char hdr[96];
    snprintf(hdr, sizeof(hdr), "allow: %s\r\n", allow);
    mesh_api_error(req, 405, hdr, "%.*s is not allowed on %.*s (allowed: %s)",
                   (int)req->head->method.len, req->head->method.p, (int)req->head->path.len,
                   req->head->path.p, allow);
}

/* Percent-decodes p[0..len) into a new string; plus_space: '+' means ' ' (query strings).
 * NULL for a malformed escape or an encoded NUL. */
static char *decode(const char *p, size_t len, bool plus_space)
{
    char *out = xmalloc(len + 1), *w = out;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            int hi = i + 1 < len ? mesh_hex_value(p[i + 1]) : -1;
            int lo = i + 2 < len ? mesh_hex_value(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            *w++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus_space && p[i] == '+') {
            *w++ = ' ';
        } else {
            *w++ = p[i];
        }
    }
    *w = '\0';
    return out;
}

void mesh_api_segments_free(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(segs[i]);
        segs[i] = NULL;
    }
}

bool mesh_api_split_path(struct mesh_slice path, char **segs, size_t max, size_t *n)
{
    static const char prefix[] = "/v1/";
    *n = 0;
    if (path.len < sizeof(prefix) - 1 || memcmp(path.p, prefix, sizeof(prefix) - 1) != 0)
        return false;
    size_t i = sizeof(prefix) - 1;
    while (i <= path.len) {
        size_t start = i;
        while (i < path.len && path.p[i] != '/')
            i++;
        if (i == start) {
            /* an empty segment: "/v1/", "/v1//x", "/v1/x/" name nothing */
            mesh_api_segments_free(segs, *n < max ? *n : max);
            *n = 0;
            return false;
        }
        if (*n < max) {
            segs[*n] = decode(path.p + start, i - start, false);
            if (!segs[*n]) {
                mesh_api_segments_free(segs, *n);
                *n = 0;
                return false;
            }
        }
        (*n)++;
        if (*n > max)
            break;
        i++; /* past the '/' (or past the end) */
    }
    return true;
}

char *mesh_api_query(const struct mesh_httpd_req *req, const char *name, bool *bad)
{
    struct mesh_slice q = req->head->query;
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i < q.len) {
        size_t start = i;
        while (i < q.len && q.p[i] != '&')
            i++;
        const char *item = q.p + start;
        size_t len = i - start;
        i++;
        const char *eq = memchr(item, '=', len);
        size_t key_len = eq ? (size_t)(eq - item) : len;
        if (key_len != name_len || memcmp(item, name, name_len) != 0)
            continue;
        const char *value = eq ? eq + 1 : item + len;
        size_t value_len = (size_t)(item + len - value);
        char *out = decode(value, value_len, true);
        if (!out)
            *bad = true;
        return out;
    }
    return NULL;
}

json_t *mesh_api_body_object(struct mesh_httpd_req *req, const char *const *keys, const char *shape)
{
    json_error_t jerr;
    const char *key;
    json_t *value;
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        mesh_api_error(req, 400, NULL, "request body:%d:%d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        mesh_api_error(req, 400, NULL, "request body: must be a JSON object %s", shape);
        json_decref(root);
        return NULL;
    }
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; keys[i] && !known; i++)
            known = strcmp(key, keys[i]) == 0;
        if (!known) {
            mesh_api_error(req, 400, NULL, "request body: unknown field \"%s\"", key);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}
