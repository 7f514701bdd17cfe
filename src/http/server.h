/* SPDX-License-Identifier: Apache-2.0 */
/* A small single-threaded HTTP/1.1 server on the event loop and the h1 parser: keep-alive,
 * pipelining (answers in order), buffered request bodies (Content-Length or chunked) under a
 * size limit, header and idle timeouts, a connection limit, and deferred answers (long polls).
 *
 * One request of a connection is handled at a time: the next pipelined request is parsed only
 * once the answer to the previous one is queued, so answers always leave in request order.
 * The handler sees a request only when its whole body has arrived. It then either answers at
 * once (mesh_httpd_respond) or keeps the request (mesh_httpd_defer) and answers later from any
 * other event of the same loop; a deferred request whose client goes away first is handed to
 * its gone callback instead.
 *
 * The server answers some requests itself, closing the connection afterwards: a malformed head
 * (mesh_h1_error_status: 400, 414, 431, 505), a body over max_body (413, before reading it when
 * Content-Length says so) or with bad chunked framing (400), a request that does not arrive
 * within header_timeout_ms (408), and a connection over max_connections (503). After such an
 * answer the socket is shut for writing and what the client still sends is read and dropped
 * for a short while (a lingering close), so that the client reads the answer rather than a
 * reset.
 *
 * With a TLS context in the options the server speaks HTTPS: each accepted connection first
 * completes a TLS handshake (within header_timeout_ms, which then covers the handshake and the
 * first request), and everything above is unchanged. A connection whose handshake fails (a
 * client that sent plaintext HTTP, or distrusts our certificate) is closed without an answer,
 * counted (mesh_httpd_tls_stats) and logged on stderr with the peer and the reason; one over
 * max_connections is closed without the 503.
 *
 * Everything runs on the loop's thread. Allocation failures fail the one connection, never
 * the process. */
#ifndef MESH_HTTP_SERVER_H
#define MESH_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1_parse.h"
#include "mesh/err.h"
#include "net/loop.h"

struct mesh_tls_ctx;

struct mesh_httpd;
struct mesh_httpd_conn;

/* A request handed to the handler. Every field is read-only for the handler and stays valid
 * until the request is answered (or, deferred, until its gone callback returns). */
struct mesh_httpd_req {
    const struct mesh_h1_message *head; /* method, path, query, headers (mesh_h1_find_header) */
    const char *body;                   /* the whole body, dechunked; never NULL */
    size_t body_len;
    const char *peer;             /* the client's IP address, without port ("127.0.0.1", "::1") */
    bool peer_loopback;           /* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
    uint64_t conn_id;             /* the connection's number, for logs */
    struct mesh_httpd_conn *conn; /* private */
};

/* Called for each complete request; must answer it (mesh_httpd_respond) or keep it
 * (mesh_httpd_defer) before returning. One that does neither is answered 500. */
typedef void (*mesh_httpd_handler)(struct mesh_httpd_req *req, void *data);

/* Called once when the client of a deferred request closed or reset its connection before the
 * answer. req is freed when it returns: forget it, do not answer it. */
typedef void (*mesh_httpd_gone_cb)(struct mesh_httpd_req *req, void *data);

/* Formats the body of an answer the server gives itself (see above): message says what was
 * wrong in words. Returns a malloc'ed body and sets *content_type (static); NULL gives a
 * text/plain body holding message. */
typedef char *(*mesh_httpd_error_body)(int status, const char *message, const char **content_type,
                                       void *data);

/* A field left 0 takes its default. */
struct mesh_httpd_options {
    size_t max_body;            /* decoded body bytes; default 4 MiB; over it: 413 */
    size_t max_connections;     /* open connections; default 4096; more get 503 and close */
    uint64_t header_timeout_ms; /* a request (head and body) must arrive within; default 10 s */
    uint64_t idle_timeout_ms;   /* keep-alive between requests, and a stalled answer; 60 s */
    struct mesh_h1_limits limits;
    mesh_httpd_handler handler; /* required */
    mesh_httpd_error_body error_body;
    void *data; /* handed to handler and error_body */
    /* Serve HTTPS: a server-side context (net/tls.h), borrowed; it must outlive the server.
     * NULL = plaintext, exactly as without this field. */
    struct mesh_tls_ctx *tls;
};

#define MESH_HTTPD_DEFAULT_MAX_BODY        (4u * 1024 * 1024)
#define MESH_HTTPD_DEFAULT_MAX_CONNECTIONS 4096u
#define MESH_HTTPD_DEFAULT_HEADER_TIMEOUT  10000u
#define MESH_HTTPD_DEFAULT_IDLE_TIMEOUT    60000u

/* A server on loop (borrowed; it must outlive the server). opt is copied. MESH_E_INVALID
 * without a handler, MESH_E_NOMEM. */
enum mesh_err mesh_httpd_new(struct mesh_loop *loop, const struct mesh_httpd_options *opt,
                             struct mesh_httpd **out);

/* Listens on addr ("127.0.0.1:15010", "[::1]:0"; port 0 picks a free port). The address really
 * bound is written to bound (at least MESH_SOCK_ADDR_STRLEN bytes; may be NULL). On failure
 * msg says why, naming the address. A server may listen on several addresses. */
enum mesh_err mesh_httpd_listen(struct mesh_httpd *srv, const char *addr, char *bound,
                                size_t bound_size, char *msg, size_t msg_size);

/* Closes every listener and connection (deferred requests get their gone callback first) and
 * frees the server. NULL is a no-op. */
void mesh_httpd_free(struct mesh_httpd *srv);

/* Open client connections. */
size_t mesh_httpd_connections(const struct mesh_httpd *srv);

/* A TLS server's handshakes so far. */
struct mesh_httpd_tls_stats {
    uint64_t handshakes; /* completed */
    uint64_t failed;     /* failed or timed out (each logged with the peer and the reason) */
    uint64_t plaintext;  /* of those, peers that did not speak TLS (plaintext HTTP) */
};
struct mesh_httpd_tls_stats mesh_httpd_tls_stats(const struct mesh_httpd *srv);

/* Answers req: status, extra header lines (each "name: value\r\n"; may be NULL) and body
 * (len bytes, copied; may be NULL when len is 0). Content-Length is added (the body is left
 * out for HEAD, 1xx, 204 and 304), and "connection: close" when the connection ends after it.
 * req must not be used afterwards. Callable from the handler or, for a deferred request, from
 * any later event: then the answer is written at once and the connection picks up its next
 * request on a later turn of the loop, never inside this call. MESH_E_NOMEM when the answer
 * could not be queued: the connection is closed instead (still never inside this call).
 * MESH_E_INVALID for a request answered already. */
enum mesh_err mesh_httpd_respond(struct mesh_httpd_req *req, int status, const char *headers,
                                 const char *body, size_t len);

/* Keeps req open after the handler returns; it is answered later with mesh_httpd_respond, or
 * handed to gone (with data) when its client goes away first (possibly right after the
 * handler returns, when the client had already closed). Only from the handler. */
void mesh_httpd_defer(struct mesh_httpd_req *req, mesh_httpd_gone_cb gone, void *data);

/* The first header named name (case-insensitive), or an empty slice with p NULL. */
struct mesh_slice mesh_httpd_header(const struct mesh_httpd_req *req, const char *name);

/* The reason phrase of a status ("Not Found"); static, never NULL. */
const char *mesh_httpd_reason(int status);

#endif
