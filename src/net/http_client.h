/* SPDX-License-Identifier: Apache-2.0 */
/* A small blocking HTTP/1.1 client for talking to meshd: one request in, status + body + a few
 * response headers out, errors in words that name the URL. Plain TCP, answers read with our own
 * parser (http/h1_parse.h); no library beyond libc, so that linking it costs a proxy nothing.
 * https:// works once a program installed TLS ops (mesh_http_client_set_tls; meshctl and
 * libmesh's meshd client install those of net/http_client_tls.h, on OpenSSL); without them it
 * is refused. Never on a proxy's request path.
 *
 * Thread use: a struct mesh_http_client belongs to one thread at a time (it keeps that thread's
 * keep-alive connection); mesh_http_do() needs no client and may be called from any thread. */
#ifndef MESH_NET_HTTP_CLIENT_H
#define MESH_NET_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/uio.h>

#include "mesh/err.h"
#include "net/tls.h" /* enum mesh_tls_status only: nothing here calls OpenSSL */

/* How many response headers one request may ask for (want_headers). */
#define MESH_HTTP_MAX_WANT 8

#define MESH_HTTP_CONNECT_TIMEOUT_MS 2000        /* default connect timeout */
#define MESH_HTTP_TIMEOUT_MS         30000       /* default total timeout */
#define MESH_HTTP_MAX_BODY           (16u << 20) /* default response body limit: 16 MiB */

struct mesh_http_request {
    const char *method; /* "GET" when NULL; "HEAD" is sent without reading a body */
    const char *url;    /* absolute: http://127.0.0.1:15010/v1/apply */
    /* Who answers at url, for messages ("meshd" → "cannot reach meshd at URL: ..."); NULL =
     * "server". */
    const char *peer_name;
    const char *token; /* sent as "Authorization: Bearer TOKEN"; NULL = none. No CR/LF. */
    /* The request body (not NUL-terminated: body_len counts). NULL = none; a POST, PUT or PATCH
     * without a body still sends "Content-Length: 0". */
    const char *body;
    size_t body_len;
    const char *content_type;   /* of body; NULL = "application/json" */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; NULL = none */
    long connect_timeout_ms;    /* 0 = MESH_HTTP_CONNECT_TIMEOUT_MS */
    long timeout_ms;            /* the whole exchange; 0 = MESH_HTTP_TIMEOUT_MS */
    size_t max_body;            /* a longer response body fails the call; 0 = MESH_HTTP_MAX_BODY */
    /* Response headers to capture (case-insensitive names, e.g. "x-mesh-version",
     * "Retry-After"); unused slots NULL. Their values land in the same slots of
     * mesh_http_response.header_values. */
    const char *want_headers[MESH_HTTP_MAX_WANT];
    /* When non-NULL and it becomes non-zero (from any thread), the transfer stops within about a
     * second and the call fails with MESH_E_AGAIN: a draining proxy's long poll. */
    const atomic_int *cancel;
    /* https://: the PEM CA bundle the server's certificate must chain to; NULL = the default of
     * the installed ops (the system trust store unless the program set another). */
    const char *ca_file;
};

struct mesh_http_response {
    long status; /* 200, 404, ...: any status is a successful exchange */
    char *body;  /* malloc'd, NUL-terminated ("" when empty); owned by the response */
    size_t body_len;
    /* Values of req->want_headers[i] (the last one when repeated), trimmed; NULL when absent. */
    char *header_values[MESH_HTTP_MAX_WANT];
};

struct mesh_http_client; /* opaque: its keep-alive connection */

/* TLS for https:// URLs, as a table so that this file links no TLS library. Each call works on
 * a non-blocking socket and says what it needs next (net/tls.h); the client does the waiting,
 * within the request's timeouts. */
struct mesh_http_tls_ops {
    /* Starts TLS on fd (connected; borrowed) to a server that must prove to be host (the URL's
     * host: an IP literal or a DNS name) with a certificate chaining to ca_file's CAs (NULL: the
     * ops' default). MESH_OK with *session; else an error with *why (caller frees; may be NULL)
     * naming what is wrong (an unreadable CA bundle). */
    enum mesh_err (*start)(int fd, const char *host, const char *ca_file, void **session,
                           char **why);
    enum mesh_tls_status (*handshake)(void *session);
    enum mesh_tls_status (*read)(void *session, void *buf, size_t len, size_t *got);
    enum mesh_tls_status (*writev)(void *session, const struct iovec *iov, int n, size_t *written);
    /* Why the last call failed, for "TLS: WHY", with a hint at the fix. Borrowed. */
    const char *(*error)(void *session);
    /* Sends close_notify if it can at once and frees the session; fd stays open. */
    void (*close)(void *session);
};

/* Installs ops (static storage; NULL uninstalls) for every client of the process: https:// URLs
 * are served with them from the next call on. Call it before the threads that use clients
 * start, or while none has a call in progress. */
void mesh_http_client_set_tls(const struct mesh_http_tls_ops *ops);

/* *out: a new client (no connection yet), freed with mesh_http_client_free(). MESH_E_NOMEM. */
enum mesh_err mesh_http_client_new(struct mesh_http_client **out);
void mesh_http_client_free(struct mesh_http_client *client);

/* Sends req and waits for the whole answer. On MESH_OK *resp holds the status, body and wanted
 * headers (clear it with mesh_http_response_clear) whatever the status is; deciding what a 4xx
 * means is the caller's job. On error *resp is empty and, when errmsg is non-NULL, *errmsg (caller
 * frees) says why, naming the URL:
 *   MESH_E_UNAVAILABLE  cannot connect, connection lost, timed out
 *                       ("cannot reach meshd at http://127.0.0.1:15010: connection refused")
 *   MESH_E_TLS          https://: the TLS handshake failed ("cannot reach meshd at
 *                       https://127.0.0.1:15443: TLS: certificate verify failed (unknown CA):
 *                       ..."), or the CA bundle cannot be used
 *   MESH_E_INVALID      bad URL or request (a scheme other than http:// and, with TLS ops,
 *                       https://; CR/LF in the token)
 *   MESH_E_IO           the response body is over max_body, or the answer is not HTTP
 *   MESH_E_AGAIN        *req->cancel became non-zero
 *   MESH_E_NOMEM
 * Reuses the client's connection when the server keeps it alive; when a reused connection turns
 * out closed by the server before any answer byte, connects again and resends once. */
enum mesh_err mesh_http_client_do(struct mesh_http_client *client,
                                  const struct mesh_http_request *req,
                                  struct mesh_http_response *resp, char **errmsg);

/* mesh_http_client_do on a client made for this one call (a fresh connection). */
enum mesh_err mesh_http_do(const struct mesh_http_request *req, struct mesh_http_response *resp,
                           char **errmsg);

/* Frees what resp holds and zeroes it; an already cleared or zeroed response is fine. */
void mesh_http_response_clear(struct mesh_http_response *resp);

/* The value of response header name, if req asked for it (case-insensitive); else NULL.
 * Borrowed from resp. */
const char *mesh_http_response_header(const struct mesh_http_request *req,
                                      const struct mesh_http_response *resp, const char *name);

/* Reads a docs/api.md error body ({"error": {"status", "reason", "message"}}) into a new string
 * (caller frees): its message, or when the body is not such JSON, "HTTP STATUS" followed by the
 * body's first line (at most 200 bytes). NULL only when out of memory. */
char *mesh_http_error_message(long status, const char *body, size_t body_len);

/* The enum mesh_err a meshd answer status stands for: 2xx/3xx MESH_OK; 400, 401, 403, 411, 413,
 * 415, 422 MESH_E_INVALID (the request was refused for what it carried, a wrong token included);
 * 404 MESH_E_NOTFOUND; 409 MESH_E_CONFLICT; 405 MESH_E_UNSUPPORTED; 429, 502, 503, 504
 * MESH_E_UNAVAILABLE; anything else MESH_E_INTERNAL. */
enum mesh_err mesh_http_status_err(long status);

#endif
