/* SPDX-License-Identifier: Apache-2.0 */
/* The blocking HTTP/1.1 client of http_client.h: plain sockets (TLS through the ops a program
 * installs), answers read with our parser. */
#include "http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "http/h1_parse.h"
#include "mesh/mesh.h"
#include "net/sock.h"

/* The longest wait between two looks at req->cancel: a cancelled call ends within about this. */
#define POLL_SLICE_MS 200
/* Bytes asked of recv() at a time; the read buffer grows by this much. */
#define READ_CHUNK (16u * 1024)
/* A reused connection that ends without a byte of answer within this long after the request
 * went out was closed by the server while idle (it answers such a close at once, within a round
 * trip): the request is sent again on a new connection. Later, the server may have acted on it. */
#define STALE_WINDOW_MS 1000
/* Longest host name in a URL (DNS allows 253). */
#define MAX_HOST 255

/* The TLS ops in effect (mesh_http_client_set_tls); NULL: https:// is refused. */
static _Atomic(const struct mesh_http_tls_ops *) tls_ops;

struct mesh_http_client {
    int fd;    /* the kept-alive connection; -1 when there is none */
    void *tls; /* its TLS session (https://), else NULL */
    /* Where fd goes: "host port" as the URL said it; reused only for the same text. */
    char peer[MAX_HOST + 16];
    /* Header storage for the parser: kept here rather than on the caller's stack. */
    struct mesh_h1_header headers[MESH_H1_DEFAULT_MAX_HEADERS];
};

/* A URL taken apart; the slices borrow req->url. */
struct url {
    char host[MAX_HOST + 1]; /* without the brackets of an IPv6 literal */
    bool ipv6_literal;
    bool tls; /* https:// */
    char port[6];
    const char *authority; /* host[:port] as written: the Host header */
    size_t authority_len;
    const char *target; /* path and query up to '#'; "" or "?..." get a leading "/" */
    size_t target_len;
};

/* One call in progress: what it sends, its limits, and what it read so far. */
struct exchange {
    const struct mesh_http_request *req;
    const char *method;
    const char *peer;                    /* req->peer_name or "server" */
    char origin[300];                    /* "http://host:port" of the URL, for messages */
    const struct mesh_http_tls_ops *ops; /* https:// only */
    void *tls;                           /* the connection's TLS session, when https:// */
    bool tls_failed;                     /* the last socket error is ops->error's */
    bool is_head;
    long connect_ms, total_ms;
    int64_t deadline, connect_deadline; /* CLOCK_MONOTONIC milliseconds */
    char *head;                         /* the request head, malloc'd */
    size_t head_len;
    const char *body; /* borrowed from req; NULL when none is sent */
    size_t body_len;

    /* the answer */
    long status;
    char *out; /* the decoded body, malloc'd, NUL-terminated when non-NULL */
    size_t out_len, out_cap, max_body;
    char *values[MESH_HTTP_MAX_WANT];
    bool keep_alive; /* the connection may carry the next call */
};

/* What a wait on the socket came to. */
enum wait_result { WAIT_READY, WAIT_TIMEOUT, WAIT_CANCEL };

/* What one recv came to. */
enum recv_result { RECV_DATA, RECV_EOF, RECV_ERROR, RECV_TIMEOUT, RECV_CANCEL };

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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum mesh_err mesh_http_client_new(struct mesh_http_client **out)
{
    *out = NULL;
    struct mesh_http_client *client = calloc(1, sizeof(*client));
    if (!client)
        return MESH_E_NOMEM;
    client->fd = -1;
    *out = client;
    return MESH_OK;
}

void mesh_http_client_set_tls(const struct mesh_http_tls_ops *ops)
{
    atomic_store(&tls_ops, ops);
}

/* Ends a connection: TLS session (when there is one, with the ops that made it), then fd. */
static void close_connection(const struct mesh_http_tls_ops *ops, int fd, void *tls)
{
    if (tls && ops)
        ops->close(tls);
    if (fd >= 0)
        close(fd);
}

/* Closes the kept connection, if any. */
static void drop_connection(struct mesh_http_client *client)
{
    close_connection(atomic_load(&tls_ops), client->fd, client->tls);
    client->fd = -1;
    client->tls = NULL;
    client->peer[0] = '\0';
}

void mesh_http_client_free(struct mesh_http_client *client)
{
    if (!client)
        return;
    drop_connection(client);
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
static void os_error_text(int os_errno, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(os_errno));
    if (buf[0] && isupper((unsigned char)buf[0]) && !(buf[1] && isupper((unsigned char)buf[1])))
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* --- the URL --- */

static bool is_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Takes req->url apart: http://host[:port][/path][?query][#fragment], host an IPv4 literal, an
 * [IPv6] literal or a name. MESH_E_INVALID with a message naming the URL otherwise. */
static enum mesh_err parse_url(const struct exchange *ex, struct url *u, char **errmsg)
{
    const char *url = ex->req->url;
    const char *why = NULL;

    memset(u, 0, sizeof(*u));
    /* https:// needs the TLS ops a program installs: meshproxy links no TLS library. */
    if (strncasecmp(url, "https://", 8) == 0 && ex->ops) {
        u->tls = true;
    } else if (strncasecmp(url, "http://", 7) != 0) {
        why = "only http:// is supported";
        goto bad;
    }
    const char *auth = url + (u->tls ? 8 : 7);
    size_t auth_len = strcspn(auth, "/?#");
    const char *auth_end = auth + auth_len;
    const char *port = NULL;
    if (memchr(auth, '@', auth_len)) {
        why = "user names and passwords in the URL are not supported";
        goto bad;
    }
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', auth_len);
        size_t len = close ? (size_t)(close - auth - 1) : 0;
        struct in6_addr a6;
        if (!close || len == 0 || len > MAX_HOST) {
            why = "bad [IPv6] address";
            goto bad;
        }
        memcpy(u->host, auth + 1, len);
        u->host[len] = '\0';
        if (inet_pton(AF_INET6, u->host, &a6) != 1) {
            why = "bad [IPv6] address";
            goto bad;
        }
        u->ipv6_literal = true;
        if (close + 1 < auth_end && close[1] != ':') {
            why = "bad authority";
            goto bad;
        }
        port = close + 1 < auth_end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        const char *host_end = colon ? colon : auth_end;
        size_t len = (size_t)(host_end - auth);
        if (len == 0 || len > MAX_HOST) {
            why = len ? "the host name is too long" : "no host";
            goto bad;
        }
        for (size_t i = 0; i < len; i++) {
            if (!is_host_char(auth[i])) {
                why = "bad host name";
                goto bad;
            }
        }
        memcpy(u->host, auth, len);
        u->host[len] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    /* "host:" is the default port, as in RFC 3986's authority. */
    unsigned long number = u->tls ? 443 : 80;
    if (port && port < auth_end) {
        number = 0;
        for (const char *p = port; p < auth_end; p++) {
            if (!isdigit((unsigned char)*p) || p - port >= 5) {
                why = "bad port";
                goto bad;
            }
            number = number * 10 + (unsigned long)(*p - '0');
        }
    }
    if (number == 0 || number > 65535) {
        why = "bad port";
        goto bad;
    }
    snprintf(u->port, sizeof(u->port), "%lu", number);
    u->authority = auth;
    u->authority_len = auth_len;
    u->target = auth_end;
    u->target_len = strcspn(auth_end, "#");
    for (size_t i = 0; i < u->target_len; i++) {
        unsigned char c = (unsigned char)u->target[i];
        /* The target goes into the request line as is: a space would split it. */
        if (c <= ' ' || c >= 0x7f) {
            why = "the path holds a space, a control character or a non-ASCII byte";
            goto bad;
        }
    }
    return MESH_OK;
bad:
    return fail(errmsg, MESH_E_INVALID, "bad %s URL \"%s\": %s", ex->peer, url, why);
}

/* --- the request --- */

/* A growable text that remembers running out of memory instead of failing each append. */
struct text {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->nomem)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 512;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->nomem = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static bool method_sends_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* The name of a "Name: value" line, without the whitespace before its colon. */
static size_t header_name_len(const char *line)
{
    size_t n = strcspn(line, ":");
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return n;
}

/* True when one of the caller's extra headers is named name: it then replaces ours. */
static bool extra_has(const struct mesh_http_request *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        if (header_name_len(req->headers[i]) == len && strncasecmp(req->headers[i], name, len) == 0)
            return true;
    return false;
}

/* Writes the request head into ex->head and picks the body to send. MESH_E_INVALID for a bad
 * content type, token or header line; MESH_E_NOMEM. */
static enum mesh_err build_request(struct exchange *ex, const struct url *u, char **errmsg)
{
    const struct mesh_http_request *req = ex->req;
    const char *method = ex->method;
    bool with_body = !ex->is_head && (req->body || method_sends_body(method));
    struct text t = {0};
    char number[32];

    if (with_body) {
        const char *type = req->content_type ? req->content_type : "application/json";
        if (has_crlf(type))
            return fail(errmsg, MESH_E_INVALID, "%s %s: the content type holds a line break",
                        method, req->url);
    }
    /* The token is a secret: messages never repeat it. */
    if (req->token && (has_crlf(req->token) || !req->token[0]))
        return fail(errmsg, MESH_E_INVALID, "%s %s: the token is empty or holds a line break",
                    method, req->url);
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        const char *line = req->headers[i];
        if (has_crlf(line) || !strchr(line, ':') || header_name_len(line) == 0)
            return fail(errmsg, MESH_E_INVALID, "%s %s: bad header line \"%s\"", method, req->url,
                        line);
        /* The body's framing is this client's to write: a second one would desynchronise. */
        size_t n = header_name_len(line);
        if ((n == 14 && strncasecmp(line, "Content-Length", n) == 0) ||
            (n == 17 && strncasecmp(line, "Transfer-Encoding", n) == 0))
            return fail(errmsg, MESH_E_INVALID,
                        "%s %s: header line \"%s\": the client frames the body itself", method,
                        req->url, line);
    }

    text_puts(&t, method);
    text_puts(&t, " ");
    if (u->target_len == 0 || u->target[0] != '/')
        text_puts(&t, "/");
    text_add(&t, u->target, u->target_len);
    text_puts(&t, " HTTP/1.1\r\n");
    /* An extra header of the same name replaces each of ours, as the caller asked. */
    if (!extra_has(req, "Host")) {
        text_puts(&t, "Host: ");
        text_add(&t, u->authority, u->authority_len);
        text_puts(&t, "\r\n");
    }
    if (!extra_has(req, "User-Agent"))
        text_puts(&t, "User-Agent: libmesh/" MESH_VERSION "\r\n");
    if (!extra_has(req, "Accept"))
        text_puts(&t, "Accept: */*\r\n");
    if (req->token) {
        text_puts(&t, "Authorization: Bearer ");
        text_puts(&t, req->token);
        text_puts(&t, "\r\n");
    }
    if (with_body) {
        if (!extra_has(req, "Content-Type")) {
            text_puts(&t, "Content-Type: ");
            text_puts(&t, req->content_type ? req->content_type : "application/json");
            text_puts(&t, "\r\n");
        }
        ex->body = req->body ? req->body : "";
        ex->body_len = req->body ? req->body_len : 0;
        snprintf(number, sizeof(number), "Content-Length: %zu\r\n", ex->body_len);
        text_puts(&t, number);
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        text_puts(&t, req->headers[i]);
        text_puts(&t, "\r\n");
    }
    text_puts(&t, "\r\n");
    if (t.nomem) {
        free(t.p);
        return fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", method, req->url);
    }
    ex->head = t.p;
    ex->head_len = t.len;
    return MESH_OK;
}

/* --- messages --- */

static enum mesh_err failed_timeout(const struct exchange *ex, char **errmsg)
{
    return fail(errmsg, MESH_E_UNAVAILABLE, "%s at %s did not answer %s %s within %ld ms", ex->peer,
                ex->origin, ex->method, url_path(ex->req->url), ex->total_ms);
}

static enum mesh_err failed_cancel(const struct exchange *ex, char **errmsg)
{
    return fail(errmsg, MESH_E_AGAIN, "%s %s: cancelled", ex->method, ex->req->url);
}

static enum mesh_err failed_lost(const struct exchange *ex, const char *detail, char **errmsg)
{
    return fail(errmsg, MESH_E_UNAVAILABLE, "%s at %s: connection lost during %s %s: %s", ex->peer,
                ex->origin, ex->method, url_path(ex->req->url), detail);
}

/* Why a socket call failed: the OS error, or the TLS layer's words when it was TLS that failed. */
static void io_error_text(const struct exchange *ex, int os_errno, char *buf, size_t size)
{
    if (ex->tls_failed && ex->tls)
        snprintf(buf, size, "TLS: %s", ex->ops->error(ex->tls));
    else
        os_error_text(os_errno, buf, size);
}

static enum mesh_err failed_lost_errno(const struct exchange *ex, int os_errno, char **errmsg)
{
    char why[640];
    io_error_text(ex, os_errno, why, sizeof(why));
    return failed_lost(ex, why, errmsg);
}

static enum mesh_err failed_not_http(const struct exchange *ex, const char *detail, char **errmsg)
{
    return fail(errmsg, MESH_E_IO, "%s at %s did not answer %s %s in HTTP: %s", ex->peer,
                ex->origin, ex->method, url_path(ex->req->url), detail);
}

static enum mesh_err failed_too_big(const struct exchange *ex, char **errmsg)
{
    return fail(errmsg, MESH_E_IO, "%s at %s: the answer to %s %s is over %zu bytes", ex->peer,
                ex->origin, ex->method, url_path(ex->req->url), ex->max_body);
}

static enum mesh_err failed_nomem(const struct exchange *ex, char **errmsg)
{
    return fail(errmsg, MESH_E_NOMEM, "%s %s: out of memory", ex->method, ex->req->url);
}

/* --- the socket --- */

/* True once *req->cancel turned non-zero. Looked at before every socket call too: an answer
 * that comes after the cancel (meshd ends a proxy's watch when the draining proxy deregisters)
 * is not one the caller still wants. */
static bool cancelled(const struct exchange *ex)
{
    return ex->req->cancel && atomic_load(ex->req->cancel);
}

/* Waits until fd reports one of events (or an error), the deadline passes or *cancel turns
 * non-zero, looking at cancel at least every POLL_SLICE_MS. */
static enum wait_result wait_fd(const struct exchange *ex, int fd, short events, int64_t deadline,
                                short *revents)
{
    for (;;) {
        if (cancelled(ex))
            return WAIT_CANCEL;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return WAIT_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
        if (n > 0) {
            *revents = p.revents;
            return WAIT_READY;
        }
        if (n < 0 && errno != EINTR) {
            /* Let the next socket call say what is wrong. */
            *revents = POLLERR;
            return WAIT_READY;
        }
    }
}

/* Connects to one address before the connect deadline. MESH_OK: *fd is connected. Otherwise
 * *os_errno says why (ETIMEDOUT for the deadline); MESH_E_AGAIN is a cancel. */
static enum mesh_err connect_one(const struct exchange *ex, const struct sockaddr *sa,
                                 socklen_t len, int *fd, int *os_errno)
{
    int s = -1;
    short revents = 0;
    enum mesh_err err = mesh_sock_connect(sa, len, &s, NULL, 0);

    while (err == MESH_E_AGAIN) {
        enum wait_result w = wait_fd(ex, s, POLLOUT, ex->connect_deadline, &revents);
        if (w != WAIT_READY) {
            close(s);
            *os_errno = ETIMEDOUT;
            return w == WAIT_CANCEL ? MESH_E_AGAIN : MESH_E_UNAVAILABLE;
        }
        err = mesh_sock_connect_finish(s, sa, len, NULL, 0);
        if (err != MESH_OK && err != MESH_E_AGAIN) {
            *os_errno = errno;
            close(s);
            return MESH_E_UNAVAILABLE;
        }
    }
    if (err != MESH_OK) {
        *os_errno = errno; /* mesh_sock_connect closed the socket */
        return MESH_E_UNAVAILABLE;
    }
    *fd = s;
    return MESH_OK;
}

/* Starts TLS on the new connection fd and completes the handshake before the connect timeout
 * (counted from now). MESH_OK: ex->tls is set. Otherwise the message names the URL; ex->tls,
 * when set, is closed by the caller with fd. */
static enum mesh_err tls_start(struct exchange *ex, const struct url *u, int fd, char **errmsg)
{
    char *why = NULL;
    short revents = 0;
    enum mesh_err err = ex->ops->start(fd, u->host, ex->req->ca_file, &ex->tls, &why);

    if (err != MESH_OK) {
        err = fail(errmsg, err == MESH_E_NOMEM ? err : MESH_E_TLS, "cannot reach %s at %s: TLS: %s",
                   ex->peer, ex->origin, why ? why : mesh_strerror(err));
        free(why);
        return err;
    }
    int64_t deadline = now_ms() + ex->connect_ms;
    if (deadline > ex->deadline)
        deadline = ex->deadline;
    for (;;) {
        enum mesh_tls_status st = ex->ops->handshake(ex->tls);
        if (st == MESH_TLS_DONE)
            return MESH_OK;
        if (st != MESH_TLS_WANT_READ && st != MESH_TLS_WANT_WRITE)
            return fail(errmsg, MESH_E_TLS, "cannot reach %s at %s: TLS: %s", ex->peer, ex->origin,
                        ex->ops->error(ex->tls));
        enum wait_result w =
            wait_fd(ex, fd, st == MESH_TLS_WANT_READ ? POLLIN : POLLOUT, deadline, &revents);
        if (w == WAIT_CANCEL)
            return failed_cancel(ex, errmsg);
        if (w == WAIT_TIMEOUT)
            return fail(errmsg, MESH_E_UNAVAILABLE,
                        "cannot reach %s at %s: TLS: no handshake within %ld ms", ex->peer,
                        ex->origin, ex->connect_ms);
    }
}

/* Resolves u's host and connects to the first address that answers. MESH_OK: *fd is connected.
 * MESH_E_UNAVAILABLE, MESH_E_AGAIN (cancelled), MESH_E_NOMEM, with the message. */
static enum mesh_err connect_peer(struct exchange *ex, const struct url *u, int *fd, char **errmsg)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    struct addrinfo *list = NULL;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int os_errno = ECONNREFUSED;
    enum mesh_err err = MESH_E_UNAVAILABLE;
    char why[128];

    *fd = -1;
    /* The connect timeout, unless the whole exchange has less time left than that. */
    int64_t now = now_ms();
    long connect_ms = ex->connect_ms;
    ex->connect_deadline = now + ex->connect_ms;
    if (ex->connect_deadline > ex->deadline) {
        ex->connect_deadline = ex->deadline;
        connect_ms = ex->total_ms;
    }
    /* Literals never reach getaddrinfo: no resolver (and its NSS modules) for the common case. */
    if (!u->ipv6_literal && inet_pton(AF_INET, u->host, &sin.sin_addr) == 1) {
        sin.sin_port = htons((uint16_t)atoi(u->port));
        err = connect_one(ex, (const struct sockaddr *)&sin, sizeof(sin), fd, &os_errno);
    } else {
        hints.ai_flags = AI_NUMERICSERV | (u->ipv6_literal ? AI_NUMERICHOST : 0);
        int rc = getaddrinfo(u->host, u->port, &hints, &list);
        if (rc == EAI_MEMORY)
            return failed_nomem(ex, errmsg);
        if (rc != 0 || !list)
            return fail(errmsg, MESH_E_UNAVAILABLE, "cannot reach %s at %s: unknown host name",
                        ex->peer, ex->origin);
        /* "localhost" may name ::1 first while the server listens on 127.0.0.1 only. */
        for (const struct addrinfo *a = list; a; a = a->ai_next) {
            if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
                continue;
            err = connect_one(ex, a->ai_addr, a->ai_addrlen, fd, &os_errno);
            if (err == MESH_OK || err == MESH_E_AGAIN || os_errno == ETIMEDOUT)
                break;
        }
        freeaddrinfo(list);
    }
    if (err == MESH_OK)
        return u->tls ? tls_start(ex, u, *fd, errmsg) : MESH_OK;
    if (err == MESH_E_AGAIN)
        return failed_cancel(ex, errmsg);
    if (os_errno == ETIMEDOUT)
        return fail(errmsg, MESH_E_UNAVAILABLE,
                    "cannot reach %s at %s: no connection within %ld ms", ex->peer, ex->origin,
                    connect_ms);
    os_error_text(os_errno, why, sizeof(why));
    return fail(errmsg, MESH_E_UNAVAILABLE, "cannot reach %s at %s: %s", ex->peer, ex->origin, why);
}

/* What sending the request came to. */
enum send_result {
    SEND_DONE,    /* all of it went out */
    SEND_ANSWER,  /* the server spoke (or closed) before it all went out: read that */
    SEND_ERROR,   /* send failed; *os_errno */
    SEND_TIMEOUT, /* the total deadline passed */
    SEND_CANCEL,
};

/* send_request over TLS. A TLS connection is not watched for an early answer while it waits to
 * write (what is readable may be the server's session tickets): meshd reads and drops the rest
 * of a request it refused, so the write completes and the answer is read after it. */
static enum send_result send_request_tls(struct exchange *ex, int fd, int *os_errno)
{
    size_t total = ex->head_len + ex->body_len, sent = 0;
    short revents = 0;

    while (sent < total) {
        if (cancelled(ex))
            return SEND_CANCEL;
        struct iovec iov[2];
        int n = 0;
        if (sent < ex->head_len) {
            iov[n++] = (struct iovec){.iov_base = ex->head + sent, .iov_len = ex->head_len - sent};
            if (ex->body_len)
                iov[n++] = (struct iovec){.iov_base = (void *)ex->body, .iov_len = ex->body_len};
        } else {
            size_t off = sent - ex->head_len;
            iov[n++] =
                (struct iovec){.iov_base = (void *)(ex->body + off), .iov_len = ex->body_len - off};
        }
        size_t w = 0;
        enum mesh_tls_status st = ex->ops->writev(ex->tls, iov, n, &w);
        sent += w;
        if (st == MESH_TLS_DONE)
            continue;
        if (st == MESH_TLS_WANT_READ || st == MESH_TLS_WANT_WRITE) {
            enum wait_result r = wait_fd(ex, fd, st == MESH_TLS_WANT_READ ? POLLIN : POLLOUT,
                                         ex->deadline, &revents);
            if (r == WAIT_TIMEOUT)
                return SEND_TIMEOUT;
            if (r == WAIT_CANCEL)
                return SEND_CANCEL;
            continue;
        }
        ex->tls_failed = true;
        *os_errno = EPROTO;
        return SEND_ERROR;
    }
    return SEND_DONE;
}

static enum send_result send_request(struct exchange *ex, int fd, int *os_errno)
{
    if (ex->tls)
        return send_request_tls(ex, fd, os_errno);
    size_t total = ex->head_len + ex->body_len, sent = 0;
    short revents = 0;

    while (sent < total) {
        if (cancelled(ex))
            return SEND_CANCEL;
        struct iovec iov[2];
        struct msghdr msg = {.msg_iov = iov};
        if (sent < ex->head_len) {
            iov[msg.msg_iovlen++] =
                (struct iovec){.iov_base = ex->head + sent, .iov_len = ex->head_len - sent};
            if (ex->body_len)
                iov[msg.msg_iovlen++] =
                    (struct iovec){.iov_base = (void *)ex->body, .iov_len = ex->body_len};
        } else {
            size_t off = sent - ex->head_len;
            iov[msg.msg_iovlen++] =
                (struct iovec){.iov_base = (void *)(ex->body + off), .iov_len = ex->body_len - off};
        }
        /* MSG_NOSIGNAL: a peer gone away is an error to report, not a SIGPIPE to die of. */
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A server may answer (413) or close before reading a long body: watch for that. */
            enum wait_result w = wait_fd(ex, fd, POLLOUT | POLLIN, ex->deadline, &revents);
            if (w == WAIT_TIMEOUT)
                return SEND_TIMEOUT;
            if (w == WAIT_CANCEL)
                return SEND_CANCEL;
            if (revents & POLLIN)
                return SEND_ANSWER;
            continue;
        }
        *os_errno = n < 0 ? errno : EPIPE;
        return SEND_ERROR;
    }
    return SEND_DONE;
}

/* Reads what is there, waiting for it until the deadline. */
static enum recv_result recv_some(struct exchange *ex, int fd, char *buf, size_t size, size_t *got,
                                  int *os_errno)
{
    short revents = 0;
    for (;;) {
        if (cancelled(ex))
            return RECV_CANCEL;
        if (ex->tls) {
            enum mesh_tls_status st = ex->ops->read(ex->tls, buf, size, got);
            if (st == MESH_TLS_DONE)
                return RECV_DATA;
            if (st == MESH_TLS_CLOSED)
                return RECV_EOF;
            if (st == MESH_TLS_ERROR) {
                ex->tls_failed = true;
                *os_errno = EPROTO;
                return RECV_ERROR;
            }
            enum wait_result w = wait_fd(ex, fd, st == MESH_TLS_WANT_READ ? POLLIN : POLLOUT,
                                         ex->deadline, &revents);
            if (w == WAIT_TIMEOUT)
                return RECV_TIMEOUT;
            if (w == WAIT_CANCEL)
                return RECV_CANCEL;
            continue;
        }
        ssize_t n = recv(fd, buf, size, 0);
        if (n > 0) {
            *got = (size_t)n;
            return RECV_DATA;
        }
        if (n == 0)
            return RECV_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *os_errno = errno;
            return RECV_ERROR;
        }
        enum wait_result w = wait_fd(ex, fd, POLLIN, ex->deadline, &revents);
        if (w == WAIT_TIMEOUT)
            return RECV_TIMEOUT;
        if (w == WAIT_CANCEL)
            return RECV_CANCEL;
    }
}

/* --- the answer --- */

/* Appends decoded body bytes, within max_body. MESH_E_IO when over it; MESH_E_NOMEM. */
static enum mesh_err body_add(struct exchange *ex, const char *p, size_t n)
{
    if (n > ex->max_body - ex->out_len)
        return MESH_E_IO;
    if (ex->out_len + n + 1 > ex->out_cap) {
        size_t cap = ex->out_cap ? ex->out_cap : 1024;
        while (cap < ex->out_len + n + 1)
            cap *= 2;
        if (cap > ex->max_body + 1)
            cap = ex->max_body + 1;
        char *q = realloc(ex->out, cap);
        if (!q)
            return MESH_E_NOMEM;
        ex->out = q;
        ex->out_cap = cap;
    }
    memcpy(ex->out + ex->out_len, p, n);
    ex->out_len += n;
    ex->out[ex->out_len] = '\0';
    return MESH_OK;
}

/* How the body is coming, and how far it got. */
struct body_reader {
    enum mesh_h1_body framing;
    uint64_t remaining; /* MESH_H1_BODY_LENGTH: bytes still to come */
    struct mesh_h1_chunked chunked;
    bool in_data; /* chunked: the last byte fed was chunk data */
};

/* Feeds n received body bytes. MESH_OK: the body is complete and *used of the bytes belong to it.
 * MESH_E_AGAIN: all were body, more is to come. MESH_E_INVALID: bad chunked framing. MESH_E_IO:
 * over max_body. MESH_E_NOMEM. */
static enum mesh_err body_feed(struct exchange *ex, struct body_reader *b, const char *in, size_t n,
                               size_t *used)
{
    enum mesh_err err;
    size_t i = 0;

    *used = 0;
    switch (b->framing) {
    case MESH_H1_BODY_NONE:
        return MESH_OK;
    case MESH_H1_BODY_UNTIL_CLOSE:
        *used = n;
        err = body_add(ex, in, n);
        return err != MESH_OK ? err : MESH_E_AGAIN;
    case MESH_H1_BODY_LENGTH: {
        size_t take = (uint64_t)n < b->remaining ? n : (size_t)b->remaining;
        err = body_add(ex, in, take);
        if (err != MESH_OK)
            return err;
        b->remaining -= take;
        *used = take;
        return b->remaining == 0 ? MESH_OK : MESH_E_AGAIN;
    }
    case MESH_H1_BODY_CHUNKED:
        break;
    }
    /* The tracker validates the framing but does not say which bytes are data. It counts them
     * in body_bytes, though: feed framing bytes one at a time and the rest of a chunk's data in
     * one piece (remaining says how much), and the count tells the two apart. */
    while (i < n) {
        size_t step = 1, took = 0;
        if (b->in_data && b->chunked.remaining > 0)
            step = b->chunked.remaining < n - i ? (size_t)b->chunked.remaining : n - i;
        uint64_t before = b->chunked.body_bytes;
        enum mesh_err fed = mesh_h1_chunked_feed(&b->chunked, in + i, step, &took);
        size_t data = (size_t)(b->chunked.body_bytes - before);
        if (data) {
            err = body_add(ex, in + i, data);
            if (err != MESH_OK)
                return err;
        }
        b->in_data = data > 0;
        i += took;
        if (fed == MESH_OK) {
            *used = i;
            return MESH_OK;
        }
        if (fed == MESH_E_INVALID)
            return MESH_E_INVALID;
    }
    *used = n;
    return MESH_E_AGAIN;
}

/* Keeps the values of the wanted headers of the final head; a repeated header: the last wins. */
static enum mesh_err capture_headers(struct exchange *ex, const struct mesh_h1_message *msg)
{
    for (size_t h = 0; h < msg->n_headers; h++) {
        const struct mesh_h1_header *hd = &msg->headers[h];
        for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
            const char *want = ex->req->want_headers[i];
            if (!want || !mesh_slice_eq_nocase(hd->name, mesh_slice_cstr(want)))
                continue;
            char *value = malloc(hd->value.len + 1);
            if (!value)
                return MESH_E_NOMEM;
            if (hd->value.len)
                memcpy(value, hd->value.p, hd->value.len);
            value[hd->value.len] = '\0';
            free(ex->values[i]);
            ex->values[i] = value;
        }
    }
    return MESH_OK;
}

static void parse_error_text(const struct mesh_h1_parser *p, const char *buf, size_t len, char *out,
                             size_t size)
{
    if (len >= 5 && strncmp(buf, "HTTP/", 5) != 0)
        snprintf(out, size, "the answer does not start with an HTTP/1.x status line");
    else
        snprintf(out, size, "bad response head (%s)", mesh_h1_error_name(p->error));
}

/* Why the connection ended early, in words for "connection lost during ...". */
static void early_end_text(const struct exchange *ex, enum recv_result r, int os_errno,
                           bool head_done, const struct body_reader *body, char *out, size_t size)
{
    if (r == RECV_ERROR)
        io_error_text(ex, os_errno, out, size);
    else if (!head_done)
        snprintf(out, size, "the connection closed in the middle of the answer's head");
    else if (body->framing == MESH_H1_BODY_LENGTH)
        snprintf(out, size, "the connection closed with %llu bytes of the body still to come",
                 (unsigned long long)body->remaining);
    else
        snprintf(out, size, "the connection closed in the middle of the chunked body");
}

static bool is_interim(int status)
{
    return status < 200 && status != 101;
}

/* Reads the answer on fd into ex. *stale: the connection was reused (stale_until non-zero) and
 * turned out dead before that time, before a byte came (no message then: the caller reconnects
 * and sends again). send_errno: why sending failed, 0 when it did not; the answer is read
 * anyway, since a server may answer and close before reading the whole request. */
static enum mesh_err read_response(struct mesh_http_client *client, struct exchange *ex, int fd,
                                   int64_t stale_until, int send_errno, bool *stale, char **errmsg)
{
    struct mesh_h1_parser parser;
    struct mesh_h1_message msg;
    struct body_reader body = {0};
    char *buf = NULL;
    size_t len = 0, cap = 0, got = 0, used = 0, offered = 0;
    bool any = false, head_done = false;
    int os_errno = 0;
    enum mesh_err err = MESH_OK;
    char why[640];

    *stale = false;
    mesh_h1_parser_init(&parser, MESH_H1_RESPONSE, NULL, client->headers,
                        MESH_H1_DEFAULT_MAX_HEADERS);
    for (;;) {
        /* The head grows the buffer until the parser's head limit refuses it; body bytes are
         * consumed as they land, so the buffer stays as it is then. */
        if (cap - len < READ_CHUNK) {
            char *p = realloc(buf, cap + READ_CHUNK);
            if (!p) {
                err = failed_nomem(ex, errmsg);
                goto out;
            }
            buf = p;
            cap += READ_CHUNK;
        }
        enum recv_result r = recv_some(ex, fd, buf + len, cap - len, &got, &os_errno);
        if (r == RECV_TIMEOUT) {
            err = failed_timeout(ex, errmsg);
            goto out;
        }
        if (r == RECV_CANCEL) {
            err = failed_cancel(ex, errmsg);
            goto out;
        }
        if (r == RECV_EOF && head_done && body.framing == MESH_H1_BODY_UNTIL_CLOSE) {
            err = MESH_OK; /* the end of the body */
            break;
        }
        if (r == RECV_EOF || r == RECV_ERROR) {
            bool reset = r == RECV_ERROR && (os_errno == ECONNRESET || os_errno == EPIPE);
            if (!any && (r == RECV_EOF || reset) && stale_until && now_ms() <= stale_until) {
                /* A kept-alive connection the server closed while it was idle. A server that
                 * took the request and died on it later is not this case: no second try. */
                *stale = true;
                err = MESH_E_UNAVAILABLE;
                goto out;
            }
            if (!any && r == RECV_EOF && !send_errno) {
                /* What a TLS server does with plaintext: worth saying where https:// exists. */
                err = fail(errmsg, MESH_E_UNAVAILABLE,
                           "%s at %s closed the connection without answering %s %s%s", ex->peer,
                           ex->origin, ex->method, url_path(ex->req->url),
                           ex->ops && !ex->tls ? " (if it serves HTTPS, use an https:// URL)" : "");
            } else if (!any) {
                err = failed_lost_errno(ex, r == RECV_ERROR ? os_errno : send_errno, errmsg);
            } else {
                early_end_text(ex, r, os_errno, head_done, &body, why, sizeof(why));
                err = failed_lost(ex, why, errmsg);
            }
            goto out;
        }
        any = true;
        len += got;
        if (head_done) {
            offered = len;
            len = 0; /* consumed (or refused) whatever body_feed says */
            err = body_feed(ex, &body, buf, offered, &used);
            if (err == MESH_E_AGAIN)
                continue;
            break;
        }
        /* Interim answers (100 Continue, 103 Early Hints) come before the real one: their
         * headers are not the answer's. What follows one starts the next head. */
        while ((err = mesh_h1_parse(&parser, buf, len, &msg)) == MESH_OK &&
               is_interim(msg.status)) {
            len -= msg.head_len;
            memmove(buf, buf + msg.head_len, len);
            mesh_h1_parser_reset(&parser);
            if (len == 0) {
                err = MESH_E_AGAIN;
                break;
            }
        }
        if (err == MESH_E_AGAIN)
            continue;
        if (err != MESH_OK) {
            parse_error_text(&parser, buf, len, why, sizeof(why));
            err = failed_not_http(ex, why, errmsg);
            goto out;
        }
        head_done = true;
        ex->status = msg.status;
        if (capture_headers(ex, &msg) != MESH_OK) {
            err = failed_nomem(ex, errmsg);
            goto out;
        }
        /* A 101 switches protocols: nothing after it is ours to read. */
        body.framing =
            msg.status == 101 ? MESH_H1_BODY_NONE : mesh_h1_response_body(&msg, ex->is_head);
        ex->keep_alive =
            msg.keep_alive && msg.status != 101 && body.framing != MESH_H1_BODY_UNTIL_CLOSE;
        if (body.framing == MESH_H1_BODY_LENGTH) {
            body.remaining = (uint64_t)msg.content_length;
            if (body.remaining > ex->max_body) {
                err = failed_too_big(ex, errmsg);
                goto out;
            }
        } else if (body.framing == MESH_H1_BODY_CHUNKED) {
            mesh_h1_chunked_init(&body.chunked);
        }
        offered = len - msg.head_len;
        len = 0;
        err = body_feed(ex, &body, buf + msg.head_len, offered, &used);
        if (err != MESH_E_AGAIN)
            break;
    }
    switch (err) {
    case MESH_E_INVALID:
        snprintf(why, sizeof(why), "bad chunked body (%s)", mesh_h1_error_name(body.chunked.error));
        err = failed_not_http(ex, why, errmsg);
        goto out;
    case MESH_E_IO:
        err = failed_too_big(ex, errmsg);
        goto out;
    case MESH_E_NOMEM:
        err = failed_nomem(ex, errmsg);
        goto out;
    default:
        err = MESH_OK;
        break;
    }
    /* Bytes past the answer were never asked for, and a request not sent whole leaves the
     * server reading a body that never comes: neither connection carries another call. */
    if (used < offered || send_errno)
        ex->keep_alive = false;
out:
    free(buf);
    return err;
}

/* Sends the request on fd and reads the answer. *stale as for read_response. */
static enum mesh_err run_exchange(struct mesh_http_client *client, struct exchange *ex, int fd,
                                  bool reused, bool *stale, char **errmsg)
{
    int64_t stale_until = reused ? now_ms() + STALE_WINDOW_MS : 0;
    int os_errno = 0;

    *stale = false;
    switch (send_request(ex, fd, &os_errno)) {
    case SEND_DONE:
        break;
    case SEND_ANSWER:
        /* Read what the server said; the connection is not reused after a partial request. */
        os_errno = EPIPE;
        break;
    case SEND_ERROR:
        if (reused && (os_errno == EPIPE || os_errno == ECONNRESET)) {
            *stale = true;
            return MESH_E_UNAVAILABLE;
        }
        break;
    case SEND_TIMEOUT:
        return failed_timeout(ex, errmsg);
    case SEND_CANCEL:
        return failed_cancel(ex, errmsg);
    }
    return read_response(client, ex, fd, stale_until, os_errno, stale, errmsg);
}

/* The kept connection, when it goes to peer and the server has not closed it meanwhile (an idle
 * connection is never readable: anything there is an EOF, a reset or bytes no one asked for). */
static int take_connection(struct mesh_http_client *client, const char *peer,
                           const struct mesh_http_tls_ops *ops, void **tls)
{
    int fd = client->fd;
    *tls = NULL;
    if (fd < 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    bool same = strcmp(client->peer, peer) == 0;
    void *session = client->tls;
    client->fd = -1; /* the call owns it now; it comes back only when it stays good */
    client->tls = NULL;
    client->peer[0] = '\0';
    if (!same || poll(&p, 1, 0) != 0) {
        close_connection(ops, fd, session);
        return -1;
    }
    *tls = session;
    return fd;
}

enum mesh_err mesh_http_client_do(struct mesh_http_client *client,
                                  const struct mesh_http_request *req,
                                  struct mesh_http_response *resp, char **errmsg)
{
    struct exchange ex = {
        .req = req,
        .ops = atomic_load(&tls_ops),
        .method = req->method ? req->method : "GET",
        .peer = req->peer_name ? req->peer_name : "server",
        .connect_ms =
            req->connect_timeout_ms > 0 ? req->connect_timeout_ms : MESH_HTTP_CONNECT_TIMEOUT_MS,
        .total_ms = req->timeout_ms > 0 ? req->timeout_ms : MESH_HTTP_TIMEOUT_MS,
        .max_body = req->max_body ? req->max_body : MESH_HTTP_MAX_BODY,
    };
    struct url u;
    char peer[sizeof(client->peer)];
    enum mesh_err err = MESH_OK;
    int fd = -1;

    memset(resp, 0, sizeof(*resp));
    if (errmsg)
        *errmsg = NULL;
    if (!req->url || !req->url[0] || has_crlf(req->url)) {
        err = fail(errmsg, MESH_E_INVALID, "%s: no URL, or a URL with a line break", ex.method);
        goto out;
    }
    bool bad_method = !ex.method[0];
    for (const char *m = ex.method; *m; m++)
        bad_method = bad_method || (unsigned char)*m <= ' ' || (unsigned char)*m >= 0x7f;
    if (bad_method) {
        err = fail(errmsg, MESH_E_INVALID, "%s: bad method", req->url);
        goto out;
    }
    ex.is_head = strcmp(ex.method, "HEAD") == 0;
    url_origin(req->url, ex.origin, sizeof(ex.origin));
    err = parse_url(&ex, &u, errmsg);
    if (err != MESH_OK)
        goto out;
    err = build_request(&ex, &u, errmsg);
    if (err != MESH_OK)
        goto out;

    if (cancelled(&ex)) {
        err = failed_cancel(&ex, errmsg);
        goto out;
    }
    ex.deadline = now_ms() + ex.total_ms;
    snprintf(peer, sizeof(peer), "%s%s %s", u.tls ? "https " : "", u.host, u.port);
    fd = take_connection(client, peer, ex.ops, &ex.tls);
    /* A reused connection the server closed while idle fails before any answer byte: then
     * (once) connect again and resend, which is safe since the server took nothing from it. */
    for (int attempt = 0;; attempt++) {
        bool reused = fd >= 0, stale = false;
        if (!reused) {
            err = connect_peer(&ex, &u, &fd, errmsg);
            if (err != MESH_OK)
                goto out;
        }
        err = run_exchange(client, &ex, fd, reused, &stale, errmsg);
        if (!stale || attempt > 0)
            break;
        close_connection(ex.ops, fd, ex.tls);
        fd = -1;
        ex.tls = NULL;
        ex.tls_failed = false;
        for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
            free(ex.values[i]);
            ex.values[i] = NULL;
        }
    }
    if (err != MESH_OK)
        goto out;
    if (!ex.out) {
        ex.out = malloc(1);
        if (!ex.out) {
            err = failed_nomem(&ex, errmsg);
            goto out;
        }
        ex.out[0] = '\0';
    }
    if (ex.keep_alive) {
        client->fd = fd;
        client->tls = ex.tls;
        memcpy(client->peer, peer, sizeof(peer));
        fd = -1; /* the client keeps it for the next call */
        ex.tls = NULL;
    }
    resp->status = ex.status;
    resp->body = ex.out;
    resp->body_len = ex.out_len;
    ex.out = NULL; /* the response owns it now */
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++) {
        resp->header_values[i] = ex.values[i];
        ex.values[i] = NULL;
    }
out:
    close_connection(ex.ops, fd, ex.tls);
    free(ex.head);
    free(ex.out);
    for (size_t i = 0; i < MESH_HTTP_MAX_WANT; i++)
        free(ex.values[i]);
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
