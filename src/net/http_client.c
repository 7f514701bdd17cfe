/* SPDX-License-Identifier: Apache-2.0 */
/* The blocking HTTP client of http_client.h on libcurl's easy interface. */
#include "http_client.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mesh/mesh.h"

struct mesh_http_client {
    CURL *easy;
};

/* What the libcurl callbacks fill in during one transfer. */
struct transfer {
    const struct mesh_http_request *req;
    char *body;
    size_t len;
    size_t cap;
    size_t max;
    bool too_big;
    bool nomem;
    char *values[MESH_HTTP_MAX_WANT];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    /* Never cleaned up: other threads may still hold handles at exit, and the process ends. */
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* *errmsg = a new formatted message, when errmsg is non-NULL; returns err. */
static enum mesh_err fail(char **errmsg, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err fail(char **errmsg, enum mesh_err err, const char *fmt, ...)
{
    if (!errmsg)
        return err;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *errmsg = NULL;
    if (n < 0)
        return err;
    char *msg = malloc((size_t)n + 1);
    if (!msg)
        return err;
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *errmsg = msg;
    return err;
}

enum mesh_err mesh_http_client_new(struct mesh_http_client **out)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return MESH_E_INTERNAL;
    struct mesh_http_client *client = calloc(1, sizeof(*client));
    if (!client)
        return MESH_E_NOMEM;
    client->easy = curl_easy_init();
    if (!client->easy) {
        free(client);
        return MESH_E_NOMEM;
    }
    *out = client;
    return MESH_OK;
}

void mesh_http_client_free(struct mesh_http_client *client)
{
    if (!client)
        return;
    curl_easy_cleanup(client->easy);
    free(client);
}

void mesh_http_response_clear(struct mesh_http_response *resp)
{
    free(resp->body);
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++)
        free(resp->header_values[i]);
    memset(resp, 0, sizeof(*resp));
}

const char *mesh_http_response_header(const struct mesh_http_request *req,
                                      const struct mesh_http_response *resp, const char *name)
{
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++)
        if (req->want_headers[i] && strcasecmp(req->want_headers[i], name) == 0)
            return resp->header_values[i];
    return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;

    if (n > t->max - t->len) {
        t->too_big = true;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->body, cap);
        if (!p) {
            t->nomem = true;
            return 0;
        }
        t->body = p;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nitems;

    /* A status line starts a new header block (after a 1xx): forget the previous block. */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
            free(t->values[i]);
            t->values[i] = NULL;
        }
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
        const char *want = t->req->want_headers[i];
        if (!want || strlen(want) != name_len || strncasecmp(want, line, name_len) != 0)
            continue;
        const char *v = colon + 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && isspace((unsigned char)end[-1]))
            end--;
        char *value = malloc((size_t)(end - v) + 1);
        if (!value) {
            t->nomem = true;
            return 0;
        }
        memcpy(value, v, (size_t)(end - v));
        value[end - v] = '\0';
        free(t->values[i]); /* a repeated header: the last one wins */
        t->values[i] = value;
    }
    return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const atomic_int *cancel = arg;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(cancel) ? 1 : 0; /* non-zero aborts the transfer */
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* "http://host:port" of url: what could not be reached. Copied into buf. */
static const char *url_origin(const char *url, char *buf, size_t size)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t len = strcspn(host, "/?#");
    snprintf(buf, size, "%.*s", (int)((size_t)(host - url) + len), url);
    return buf;
}

/* The path and query of url, for messages ("/v1/apply"); "/" when it has none. */
static const char *url_path(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    return *path ? path : "/";
}

/* Lower-cases the first letter of an strerror() text so that it reads inside a sentence. */
static void os_error_text(long os_errno, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror((int)os_errno));
    if (buf[0] && isupper((unsigned char)buf[0]) && !(buf[1] && isupper((unsigned char)buf[1])))
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* Turns a failed transfer into an error code and a message naming the URL. */
static enum mesh_err transfer_failed(CURL *easy, const struct mesh_http_request *req,
                                     const struct transfer *t, CURLcode rc, const char *errbuf,
                                     long connect_ms, long total_ms, char **errmsg)
{
    const char *peer = req->peer_name ? req->peer_name : "server";
    const char *method = req->method ? req->method : "GET";
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    char origin[256], why[128];
    long os_errno = 0;
    curl_off_t connected_at = 0;

    url_origin(req->url, origin, sizeof(origin));
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno) {
            os_error_text(os_errno, why, sizeof(why));
            detail = why;
        }
        return fail(errmsg, MESH_E_UNAVAILABLE, "cannot reach %s at %s: %s", peer, origin, detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return fail(errmsg, MESH_E_UNAVAILABLE, "cannot reach %s at %s: unknown host name", peer,
                    origin);
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected_at);
        if (connected_at == 0)
            return fail(errmsg, MESH_E_UNAVAILABLE,
                        "cannot reach %s at %s: no connection within %ld ms", peer, origin,
                        connect_ms);
        return fail(errmsg, MESH_E_UNAVAILABLE, "%s at %s did not answer %s %s within %ld ms", peer,
                    origin, method, url_path(req->url), total_ms);
    case CURLE_GOT_NOTHING:
        return fail(errmsg, MESH_E_UNAVAILABLE,
                    "%s at %s closed the connection without answering %s %s", peer, origin, method,
                    url_path(req->url));
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return fail(errmsg, MESH_E_UNAVAILABLE, "%s at %s: connection lost during %s %s: %s", peer,
                    origin, method, url_path(req->url), detail);
    case CURLE_WRITE_ERROR:
        if (t->nomem)
            return fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
        if (t->too_big)
            return fail(errmsg, MESH_E_IO, "%s at %s: the answer to %s %s is over %zu bytes", peer,
                        origin, method, url_path(req->url), t->max);
        return fail(errmsg, MESH_E_IO, "%s %s: %s", method, req->url, detail);
    case CURLE_ABORTED_BY_CALLBACK:
        return fail(errmsg, MESH_E_AGAIN, "%s %s: cancelled", method, req->url);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return fail(errmsg, MESH_E_INVALID, "bad %s URL \"%s\": %s", peer, req->url, detail);
    case CURLE_WEIRD_SERVER_REPLY:
        return fail(errmsg, MESH_E_IO, "%s at %s did not answer %s %s in HTTP: %s", peer, origin,
                    method, url_path(req->url), detail);
    case CURLE_OUT_OF_MEMORY:
        return fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return fail(errmsg, MESH_E_TLS, "%s at %s: TLS: %s", peer, origin, detail);
    default:
        if (t->nomem)
            return fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
        return fail(errmsg, MESH_E_UNAVAILABLE, "%s at %s: %s %s failed: %s", peer, origin, method,
                    url_path(req->url), detail);
    }
}

static bool method_sends_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* The request's header lines; NULL with *err set when out of memory or a header is bad. */
static struct curl_slist *request_headers(const struct mesh_http_request *req, const char *method,
                                          enum mesh_err *err, char **errmsg)
{
    struct curl_slist *list = NULL, *next;
    char line[512];

    /* Without this libcurl waits up to a second for "100 Continue" before sending a body over
     * 1 KiB; meshd reads the body anyway. */
    next = curl_slist_append(list, "Expect:");
    if (!next)
        goto nomem;
    list = next;
    if (req->body || method_sends_body(method)) {
        const char *type = req->content_type ? req->content_type : "application/json";
        if (has_crlf(type)) {
            *err = fail(errmsg, MESH_E_INVALID, "%s %s: the content type holds a line break",
                        method, req->url);
            goto bad;
        }
        snprintf(line, sizeof(line), "Content-Type: %s", type);
        next = curl_slist_append(list, line);
        if (!next)
            goto nomem;
        list = next;
    }
    if (req->token) {
        /* The token is a secret: messages never repeat it. */
        if (has_crlf(req->token) || !req->token[0]) {
            *err = fail(errmsg, MESH_E_INVALID, "%s %s: the token is empty or holds a line break",
                        method, req->url);
            goto bad;
        }
        size_t n = strlen("Authorization: Bearer ") + strlen(req->token) + 1;
        char *auth = malloc(n);
        if (!auth)
            goto nomem;
        snprintf(auth, n, "Authorization: Bearer %s", req->token);
        next = curl_slist_append(list, auth);
        free(auth);
        if (!next)
            goto nomem;
        list = next;
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        if (has_crlf(req->headers[i]) || !strchr(req->headers[i], ':')) {
            *err = fail(errmsg, MESH_E_INVALID, "%s %s: bad header line \"%s\"", method, req->url,
                        req->headers[i]);
            goto bad;
        }
        next = curl_slist_append(list, req->headers[i]);
        if (!next)
            goto nomem;
        list = next;
    }
    *err = MESH_OK;
    return list;
nomem:
    *err = fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
bad:
    curl_slist_free_all(list);
    return NULL;
}

enum mesh_err mesh_http_client_do(struct mesh_http_client *client,
                                  const struct mesh_http_request *req,
                                  struct mesh_http_response *resp, char **errmsg)
{
    const char *method = req->method ? req->method : "GET";
    long connect_ms =
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : MESH_HTTP_CONNECT_TIMEOUT_MS;
    long total_ms = req->timeout_ms > 0 ? req->timeout_ms : MESH_HTTP_TIMEOUT_MS;
    struct transfer t = {.req = req, .max = req->max_body ? req->max_body : MESH_HTTP_MAX_BODY};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    CURL *easy = client->easy;
    enum mesh_err err = MESH_OK;

    memset(resp, 0, sizeof(*resp));
    if (errmsg)
        *errmsg = NULL;
    if (!req->url || !req->url[0] || has_crlf(req->url)) {
        err = fail(errmsg, MESH_E_INVALID, "%s: no URL, or a URL with a line break", method);
        goto out;
    }
    if (has_crlf(method) || !method[0]) {
        err = fail(errmsg, MESH_E_INVALID, "%s: bad method", req->url);
        goto out;
    }
    headers = request_headers(req, method, &err, errmsg);
    if (!headers)
        goto out;

    /* reset forgets the previous request's options but keeps the connection cache. */
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: threads */
    /* meshd lives on loopback or a known address: an http_proxy in the environment must not
     * capture our calls. */
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "libmesh/" MESH_VERSION);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
    if (req->cancel) {
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, (void *)req->cancel);
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (req->body || method_sends_body(method)) {
        /* Borrowed: libcurl reads it during curl_easy_perform below. */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(easy);
    if (rc != CURLE_OK) {
        err = transfer_failed(easy, req, &t, rc, errbuf, connect_ms, total_ms, errmsg);
        goto out;
    }
    if (t.nomem) {
        err = fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
        goto out;
    }
    if (!t.body) {
        t.body = malloc(1);
        if (!t.body) {
            err = fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
            goto out;
        }
        t.body[0] = '\0';
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = t.body;
    resp->body_len = t.len;
    t.body = NULL; /* the response owns it now */
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
        resp->header_values[i] = t.values[i];
        t.values[i] = NULL;
    }
out:
    /* The handle must not keep pointers into this call's stack and lists. */
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    free(t.body);
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++)
        free(t.values[i]);
    return err;
}

enum mesh_err mesh_http_do(const struct mesh_http_request *req, struct mesh_http_response *resp,
                           char **errmsg)
{
    struct mesh_http_client *client = NULL;

    memset(resp, 0, sizeof(*resp));
    if (errmsg)
        *errmsg = NULL;
    enum mesh_err err = mesh_http_client_new(&client);
    if (err != MESH_OK)
        return fail(errmsg, err, "%s: cannot start an HTTP client: %s",
                    req->url ? req->url : "(no URL)", mesh_strerror(err));
    err = mesh_http_client_do(client, req, resp, errmsg);
    mesh_http_client_free(client);
    return err;
}

char *mesh_http_error_message(long status, const char *body, size_t body_len)
{
    json_t *root = body && body_len ? json_loadb(body, body_len, 0, NULL) : NULL;
    const char *msg = NULL;
    char *out = NULL;

    if (root) {
        json_t *error = json_object_get(root, "error");
        msg = json_string_value(json_object_get(error, "message"));
        if (!msg)
            msg = json_string_value(error); /* {"error": "text"}, the common short form */
    }
    if (msg && msg[0]) {
        out = strdup(msg);
        goto out;
    }
    /* Not our JSON (a proxy in between, a different server): the first line of what came. */
    size_t skip = 0, line = 0;
    while (body && skip < body_len && isspace((unsigned char)body[skip]))
        skip++;
    while (body && skip + line < body_len && body[skip + line] != '\n' &&
           body[skip + line] != '\r' && line < 200)
        line++;
    size_t n = 32 + line;
    out = malloc(n);
    if (!out)
        goto out;
    if (line)
        snprintf(out, n, "HTTP %ld: %.*s", status, (int)line, body + skip);
    else
        snprintf(out, n, "HTTP %ld", status);
out:
    json_decref(root);
    return out;
}

enum mesh_err mesh_http_status_err(long status)
{
    if (status >= 200 && status < 400)
        return MESH_OK;
    switch (status) {
    case 400:
    case 401:
    case 403:
    case 411:
    case 413:
    case 415:
    case 422:
        return MESH_E_INVALID;
    case 404:
        return MESH_E_NOTFOUND;
    case 405:
        return MESH_E_UNSUPPORTED;
    case 409:
        return MESH_E_CONFLICT;
    case 429:
    case 502:
    case 503:
    case 504:
        return MESH_E_UNAVAILABLE;
    default:
        return MESH_E_INTERNAL;
    }
}
