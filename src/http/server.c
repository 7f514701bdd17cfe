/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP/1.1 server of server.h: listeners, connections, request framing, answers. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/sock.h"
#include "net/tls.h"

#define READ_CHUNK          (16u * 1024)
#define MAX_HEADERS         100u
#define LINGER_MS           2000u /* how long a closing connection drains what the client sends */
#define ACCEPT_BATCH        64    /* connections accepted per listener event, for fairness */
#define ACCEPT_PAUSE_MS     100u  /* out of descriptors: stop accepting this long */
#define SHRINK_ABOVE        (64u * 1024) /* buffers larger than this are freed between requests */
#define CHUNKED_SLACK       (64u * 1024)
#define ANSWER_HEAD_RESERVE 256u

enum conn_state {
    C_HANDSHAKE, /* TLS: the handshake is under way (within header_timeout_ms) */
    C_HEAD,      /* waiting for or parsing a request head */
    C_BODY,      /* reading the request body */
    C_HANDLER,   /* the handler has the request */
    C_DEFERRED,  /* the handler kept the request */
    C_ANSWERED,  /* the answer is queued: flush it, then the next request */
    C_LINGER,    /* the last answer went out and writing is shut: drain input until EOF */
};

struct listener {
    struct mesh_io io;
    struct mesh_httpd *srv;
    struct mesh_timer pause;
    struct listener *next;
};

struct mesh_httpd_conn {
    struct mesh_io io;
    struct mesh_httpd *srv;
    struct mesh_httpd_conn *prev, *next;
    struct mesh_timer timer;
    enum conn_state state;
    uint64_t id;
    char peer[INET6_ADDRSTRLEN];
    unsigned peer_port;
    bool loopback;
    struct mesh_tls_conn *tls; /* NULL on a plaintext server */

    /* Input: the current message starts at in + in_off; bytes up to in_len have arrived. */
    char *in;
    size_t in_off, in_len, in_cap;
    struct mesh_h1_parser parser;
    struct mesh_h1_header headers[MAX_HEADERS];
    struct mesh_h1_message msg;
    enum mesh_h1_body framing;
    size_t head_len;  /* of the current request, once parsed */
    size_t body_raw;  /* body bytes (as framed) consumed after the head */
    size_t body_len;  /* decoded body bytes, once complete */
    size_t raw_limit; /* most framed body bytes accepted */
    struct mesh_h1_chunked chunked;
    bool req_started; /* a byte of the current request has arrived */

    /* Output: bytes [out_off, out_len) of out are still to be written. */
    char *out;
    size_t out_off, out_len, out_cap;

    bool eof;            /* the client shut its writing side (read returned 0) */
    bool hup;            /* the loop reported a hang-up */
    bool broken;         /* a read or write failed: close as soon as possible */
    bool close_after;    /* close once the queued answer is written */
    bool resume_pending; /* the timer is armed to resume after a deferred answer */
    bool gone_called;
    struct mesh_httpd_req req;
    mesh_httpd_gone_cb gone;
    void *gone_data;
};

struct mesh_httpd {
    struct mesh_loop *loop;
    struct mesh_httpd_options opt;
    struct listener *listeners;
    struct mesh_httpd_conn *conns;
    size_t n_conns;
    uint64_t next_id;
    struct mesh_httpd_tls_stats tls_stats;
};

static void conn_run(struct mesh_httpd_conn *c);
static void conn_close(struct mesh_httpd_conn *c);

/* --- small helpers --- */

const char *mesh_httpd_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return status < 200   ? "Informational"
           : status < 300 ? "OK"
           : status < 400 ? "Redirection"
           : status < 500 ? "Client Error"
                          : "Server Error";
}

struct mesh_slice mesh_httpd_header(const struct mesh_httpd_req *req, const char *name)
{
    const struct mesh_h1_header *h = mesh_h1_find_header(req->head, mesh_slice_cstr(name));
    return h ? h->value : mesh_slice_make(NULL, 0);
}

size_t mesh_httpd_connections(const struct mesh_httpd *srv)
{
    return srv->n_conns;
}

struct mesh_httpd_tls_stats mesh_httpd_tls_stats(const struct mesh_httpd *srv)
{
    return srv->tls_stats;
}

static void set_timer(struct mesh_httpd_conn *c, uint64_t ms)
{
    mesh_timer_start(c->srv->loop, &c->timer, ms);
}

/* Makes buf hold at least want bytes; false (buf unchanged) without memory. */
static bool reserve(char **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return true;
    size_t n = *cap ? *cap : 1024;
    while (n < want)
        n = n > SIZE_MAX / 2 ? want : n * 2;
    char *p = realloc(*buf, n);
    if (!p)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

static bool out_append(struct mesh_httpd_conn *c, const char *p, size_t n)
{
    if (!reserve(&c->out, &c->out_cap, c->out_len + n))
        return false;
    if (n)
        memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

static bool out_printf(struct mesh_httpd_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool out_printf(struct mesh_httpd_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(&c->out, &c->out_cap, c->out_len + (size_t)n + 1))
        return false;
    va_start(ap, fmt);
    vsnprintf(c->out + c->out_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->out_len += (size_t)n;
    return true;
}

/* Writes what is queued. True when everything went out. */
static bool conn_flush(struct mesh_httpd_conn *c)
{
    bool progress = false;
    while (c->out_off < c->out_len && !c->broken) {
        if (c->tls) {
            struct iovec iov = {c->out + c->out_off, c->out_len - c->out_off};
            size_t written = 0;
            enum mesh_tls_status st = mesh_tls_writev(c->tls, &iov, 1, &written);
            c->out_off += written;
            progress = progress || written > 0;
            if (st == MESH_TLS_WANT_READ || st == MESH_TLS_WANT_WRITE)
                break;
            if (st != MESH_TLS_DONE)
                c->broken = true;
            continue;
        }
        ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            progress = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->broken = true;
    }
    if (c->out_off < c->out_len) {
        /* A client that stops reading gets idle_timeout_ms of no progress, then is closed. */
        if (progress || !mesh_timer_armed(&c->timer))
            set_timer(c, c->srv->opt.idle_timeout_ms);
        return false;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > SHRINK_ABOVE) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return true;
}

/* conn_read's TLS half: decrypted bytes into the buffer past have. */
static ssize_t conn_read_tls(struct mesh_httpd_conn *c, size_t have)
{
    size_t got = 0;
    enum mesh_tls_status st = mesh_tls_read(c->tls, c->in + have, c->in_cap - have, &got);
    if (st == MESH_TLS_DONE) {
        c->in_len += got;
        return (ssize_t)got;
    }
    if (st == MESH_TLS_WANT_READ || st == MESH_TLS_WANT_WRITE)
        return 0;
    if (st == MESH_TLS_CLOSED)
        c->eof = true;
    else
        c->broken = true;
    return -1;
}

/* Reads once into the input buffer, growing it up to limit bytes of the current message.
 * Returns bytes read, 0 when nothing more can be read now, -1 on EOF or error. */
static ssize_t conn_read(struct mesh_httpd_conn *c, size_t limit)
{
    if (c->in_off > 0) {
        /* The parser re-bases on a moved buffer, and the handler only sees the request once
         * the head has been parsed again where it finally lies. */
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    size_t have = c->in_len;
    if (have >= limit)
        return 0;
    size_t want = have + READ_CHUNK;
    if (want > limit)
        want = limit;
    if (!reserve(&c->in, &c->in_cap, want)) {
        c->broken = true;
        return -1;
    }
    if (c->tls)
        return conn_read_tls(c, have);
    for (;;) {
        ssize_t n = recv(c->io.fd, c->in + have, c->in_cap - have, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            c->eof = true;
        else
            c->broken = true;
        return -1;
    }
}

/* Forgets consumed input; frees the buffer when it is empty and the connection is idle (an
 * idle keep-alive connection holds no buffer) or when it grew large for one request. */
static void conn_release_input(struct mesh_httpd_conn *c, bool idle)
{
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        if (idle || c->in_cap > SHRINK_ABOVE) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
}

/* --- answers --- */

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* Queues an answer. head_only: leave the body out (HEAD requests). */
static bool queue_answer(struct mesh_httpd_conn *c, int status, const char *headers,
                         const char *body, size_t len, bool head_only, bool http10_keep_alive)
{
    bool ok = reserve(&c->out, &c->out_cap, c->out_len + ANSWER_HEAD_RESERVE + len) &&
              out_printf(c, "HTTP/1.1 %d %s\r\n", status, mesh_httpd_reason(status)) &&
              (!status_has_body(status) || out_printf(c, "content-length: %zu\r\n", len)) &&
              out_printf(c, "%s%s\r\n", headers ? headers : "",
                         c->close_after      ? "connection: close\r\n"
                         : http10_keep_alive ? "connection: keep-alive\r\n"
                                             : "");
    if (ok && status_has_body(status) && !head_only)
        ok = out_append(c, body, len);
    return ok;
}

/* An answer the server gives itself; the connection closes after it. */
static void answer_error(struct mesh_httpd_conn *c, int status, const char *message)
{
    const struct mesh_httpd_options *opt = &c->srv->opt;
    const char *ctype = NULL;
    char *body = opt->error_body ? opt->error_body(status, message, &ctype, opt->data) : NULL;
    char hdr[128];
    char text[256];
    size_t len;
    if (body) {
        len = strlen(body);
    } else {
        ctype = "text/plain";
        len = (size_t)snprintf(text, sizeof(text), "%s\n", message);
        if (len >= sizeof(text))
            len = sizeof(text) - 1;
    }
    snprintf(hdr, sizeof(hdr), "content-type: %s\r\n", ctype ? ctype : "text/plain");
    c->close_after = true;
    c->state = C_ANSWERED;
    mesh_timer_stop(c->srv->loop, &c->timer);
    if (!queue_answer(c, status, hdr, body ? body : text, len, false, false))
        c->broken = true;
    free(body);
}

enum mesh_err mesh_httpd_respond(struct mesh_httpd_req *req, int status, const char *headers,
                                 const char *body, size_t len)
{
    struct mesh_httpd_conn *c = req->conn;
    bool deferred = c->state == C_DEFERRED;
    enum mesh_err err = MESH_OK;

    if (c->state != C_HANDLER && !deferred)
        return MESH_E_INVALID; /* answered already */
    if (!c->msg.keep_alive)
        c->close_after = true;
    bool ka10 = !c->close_after && c->msg.version_minor == 0;
    c->state = C_ANSWERED;
    c->gone = NULL;
    if (!queue_answer(c, status, headers, body, len, c->msg.method_id == MESH_H1_M_HEAD, ka10)) {
        c->broken = true;
        err = MESH_E_NOMEM;
    }
    if (deferred) {
        /* Out at once (a config push is waiting on it), the rest on a later turn: the caller
         * may be going through a list of requests and must not see this connection go. */
        if (!c->broken)
            conn_flush(c);
        c->resume_pending = true;
        set_timer(c, 0);
    }
    return err;
}

void mesh_httpd_defer(struct mesh_httpd_req *req, mesh_httpd_gone_cb gone, void *data)
{
    struct mesh_httpd_conn *c = req->conn;
    c->state = C_DEFERRED;
    c->gone = gone;
    c->gone_data = data;
    c->gone_called = false;
}

/* --- requests --- */

/* The head is complete: decide how the body is framed. */
static void head_done(struct mesh_httpd_conn *c)
{
    const struct mesh_httpd_options *opt = &c->srv->opt;
    c->head_len = c->msg.head_len;
    c->body_raw = 0;
    c->body_len = 0;
    c->framing = mesh_h1_request_body(&c->msg);
    if (c->framing == MESH_H1_BODY_LENGTH && (uint64_t)c->msg.content_length > opt->max_body) {
        char why[128];
        snprintf(why, sizeof(why), "request body of %lld bytes is over the limit of %zu bytes",
                 (long long)c->msg.content_length, opt->max_body);
        answer_error(c, 413, why);
        return;
    }
    if (c->framing == MESH_H1_BODY_CHUNKED) {
        mesh_h1_chunked_init_limits(&c->chunked, &opt->limits);
        /* Framing costs bytes too: bound them, generously, beside the decoded size. */
        c->raw_limit = opt->max_body * 2 + CHUNKED_SLACK;
    } else if (c->framing == MESH_H1_BODY_LENGTH) {
        c->raw_limit = (size_t)c->msg.content_length;
    } else {
        c->raw_limit = 0;
    }
    c->state = C_BODY;
    if (c->framing != MESH_H1_BODY_NONE && c->msg.expect_continue &&
        c->in_len - c->in_off == c->head_len) {
        if (!out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n"))
            c->broken = true;
        else
            conn_flush(c);
    }
}

/* Decodes a complete, validated chunked body in place; returns its length. */
static size_t dechunk(char *p, size_t len)
{
    size_t r = 0, w = 0;
    while (r < len) {
        uint64_t size = 0;
        for (; r < len; r++) {
            char ch = p[r];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                break;
            size = size * 16 + (uint64_t)d;
        }
        const char *nl = memchr(p + r, '\n', len - r); /* past extensions and CRLF */
        if (!nl || size == 0)
            break;
        r = (size_t)(nl - p) + 1;
        if (size > len - r)
            break; /* cannot happen: the tracker saw the whole chunk */
        memmove(p + w, p + r, (size_t)size);
        w += (size_t)size;
        r += (size_t)size + 2;
    }
    return w;
}

/* Consumes body bytes already read. True when the body is complete (or an error answer was
 * queued: the state says which). */
static bool body_progress(struct mesh_httpd_conn *c)
{
    const struct mesh_httpd_options *opt = &c->srv->opt;
    char *body = c->in + c->in_off + c->head_len;
    size_t avail = c->in_len - c->in_off - c->head_len - c->body_raw;

    switch (c->framing) {
    case MESH_H1_BODY_NONE:
    case MESH_H1_BODY_UNTIL_CLOSE:
        c->body_len = 0;
        return true;
    case MESH_H1_BODY_LENGTH: {
        size_t want = (size_t)c->msg.content_length - c->body_raw;
        c->body_raw += avail < want ? avail : want;
        if (c->body_raw < (size_t)c->msg.content_length)
            return false;
        c->body_len = c->body_raw;
        return true;
    }
    case MESH_H1_BODY_CHUNKED: {
        size_t used = 0;
        enum mesh_err err = mesh_h1_chunked_feed(&c->chunked, body + c->body_raw, avail, &used);
        c->body_raw += used;
        if (err == MESH_E_INVALID) {
            answer_error(c, 400, mesh_h1_error_name(c->chunked.error));
            return true;
        }
        if (c->chunked.body_bytes > opt->max_body || c->body_raw > c->raw_limit) {
            char why[128];
            snprintf(why, sizeof(why), "request body is over the limit of %zu bytes",
                     opt->max_body);
            answer_error(c, 413, why);
            return true;
        }
        if (err != MESH_OK)
            return false;
        c->body_len = dechunk(body, c->body_raw);
        return true;
    }
    }
    return false;
}

/* Hands a complete request to the handler. */
static void dispatch(struct mesh_httpd_conn *c)
{
    struct mesh_httpd *srv = c->srv;
    struct mesh_h1_message msg;

    /* The buffer may have moved since the head was parsed: parse it again in place (the
     * parser answers a complete head again without rescanning) so the slices point here. */
    if (mesh_h1_parse(&c->parser, c->in + c->in_off, c->head_len, &msg) != MESH_OK) {
        answer_error(c, 500, "request head lost");
        return;
    }
    c->msg = msg;
    mesh_timer_stop(srv->loop, &c->timer);
    c->state = C_HANDLER;
    c->req = (struct mesh_httpd_req){
        .head = &c->msg,
        .body = c->body_len ? c->in + c->in_off + c->head_len : "",
        .body_len = c->body_len,
        .peer = c->peer,
        .peer_loopback = c->loopback,
        .conn_id = c->id,
        .conn = c,
    };
    srv->opt.handler(&c->req, srv->opt.data);
    if (c->state == C_HANDLER) {
        static const char msg500[] = "the handler gave no answer\n";
        mesh_httpd_respond(&c->req, 500, "content-type: text/plain\r\n", msg500,
                           sizeof(msg500) - 1);
    }
}

/* The answer is out: move past the request, to the next one. */
static void request_done(struct mesh_httpd_conn *c)
{
    c->in_off += c->head_len + c->body_raw;
    c->head_len = c->body_raw = c->body_len = 0;
    c->req_started = false;
    c->state = C_HEAD;
    mesh_h1_parser_reset(&c->parser);
    conn_release_input(c, false);
    memset(&c->req, 0, sizeof(c->req));
    set_timer(c, c->srv->opt.idle_timeout_ms);
}

static void start_linger(struct mesh_httpd_conn *c)
{
    if (c->eof || c->broken) {
        conn_close(c);
        return;
    }
    if (c->tls)
        mesh_tls_shutdown(c->tls); /* best effort: the close that follows is the real end */
    shutdown(c->io.fd, SHUT_WR);
    c->state = C_LINGER;
    free(c->in);
    c->in = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
    set_timer(c, LINGER_MS);
    conn_run(c);
}

/* Calls a deferred request's gone callback, once. */
static void call_gone(struct mesh_httpd_conn *c)
{
    if (c->state == C_DEFERRED && c->gone && !c->gone_called) {
        c->gone_called = true;
        c->gone(&c->req, c->gone_data);
    }
}

/* Counts and logs a TLS connection that failed before its first request, then closes it: a
 * client that sent plaintext HTTP gets no answer, since it could not read ours anyway. */
static void start_linger(struct mesh_httpd_conn *c);

static void tls_failed(struct mesh_httpd_conn *c, const char *reason)
{
    struct mesh_httpd_tls_stats *st = &c->srv->tls_stats;
    st->failed++;
    if (strstr(reason, "does not speak TLS"))
        st->plaintext++;
    fprintf(stderr,
            "lvl=warn msg=\"tls handshake failed\" conn=%llu peer=%s%s%s:%u reason=\"%s\"\n",
            (unsigned long long)c->id, strchr(c->peer, ':') ? "[" : "", c->peer,
            strchr(c->peer, ':') ? "]" : "", c->peer_port, reason);
    /* A lingering close: the client reads our alert, or an end, rather than a reset. */
    start_linger(c);
}

/* C_HANDSHAKE: true once it is done (the connection is in C_HEAD); false to wait, or after
 * the connection was closed. */
static bool conn_handshake(struct mesh_httpd_conn *c)
{
    switch (mesh_tls_handshake(c->tls)) {
    case MESH_TLS_DONE:
        c->srv->tls_stats.handshakes++;
        c->state = C_HEAD;
        return true;
    case MESH_TLS_WANT_READ:
    case MESH_TLS_WANT_WRITE:
        if (c->broken || c->eof) {
            conn_close(c);
            return false;
        }
        return false;
    case MESH_TLS_CLOSED:
        conn_close(c); /* gone before a byte: a port check, not a failure */
        return false;
    case MESH_TLS_ERROR:
        break;
    }
    tls_failed(c, mesh_tls_conn_error(c->tls));
    return false;
}

/* Drives the connection as far as it can go without waiting. */
static void conn_run(struct mesh_httpd_conn *c)
{
    const struct mesh_httpd_options *opt = &c->srv->opt;
    for (;;) {
        switch (c->state) {
        case C_HANDSHAKE:
            if (!conn_handshake(c))
                return;
            continue;
        case C_HANDLER:
            return; /* cannot happen: the handler runs inside dispatch */
        case C_DEFERRED:
            if (c->eof || c->hup || c->broken) {
                call_gone(c);
                conn_close(c);
            }
            return;
        case C_ANSWERED:
            if (c->resume_pending)
                return; /* the timer picks it up */
            if (!conn_flush(c)) {
                if (c->broken)
                    conn_close(c);
                return;
            }
            if (c->broken) {
                conn_close(c);
                return;
            }
            if (c->close_after) {
                start_linger(c);
                return;
            }
            request_done(c);
            continue;
        case C_LINGER: {
            char sink[4096];
            for (;;) {
                ssize_t n = recv(c->io.fd, sink, sizeof(sink), 0);
                if (n > 0)
                    continue;
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    return;
                conn_close(c);
                return;
            }
        }
        case C_HEAD: {
            if (c->broken) {
                conn_close(c);
                return;
            }
            size_t have = c->in_len - c->in_off;
            if (have > 0) {
                if (!c->req_started) {
                    c->req_started = true;
                    set_timer(c, opt->header_timeout_ms);
                }
                enum mesh_err err = mesh_h1_parse(&c->parser, c->in + c->in_off, have, &c->msg);
                if (err == MESH_OK) {
                    head_done(c);
                    continue;
                }
                if (err == MESH_E_INVALID) {
                    int status = mesh_h1_error_status(c->parser.error);
                    answer_error(c, status ? status : 400, mesh_h1_error_name(c->parser.error));
                    continue;
                }
            }
            if (c->eof) {
                conn_close(c);
                return;
            }
            ssize_t n = conn_read(c, opt->limits.max_header_bytes + READ_CHUNK);
            if (n > 0)
                continue;
            if (n < 0 && c->in_len == c->in_off) {
                conn_close(c);
                return;
            }
            if (n < 0)
                continue; /* EOF after part of a request: parse what there is, then close */
            conn_release_input(c, true);
            return;
        }
        case C_BODY: {
            if (body_progress(c)) {
                if (c->state == C_BODY)
                    dispatch(c);
                continue;
            }
            if (c->eof || c->broken) {
                conn_close(c);
                return;
            }
            ssize_t n = conn_read(c, c->head_len + c->raw_limit + READ_CHUNK);
            if (n > 0 || (n < 0 && !c->broken && !c->eof))
                continue;
            if (n < 0) {
                conn_close(c);
                return;
            }
            return;
        }
        }
    }
}

static void conn_on_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct mesh_httpd_conn *c = io->data;
    (void)loop;
    if (events & MESH_IO_HUP)
        c->hup = true;
    if (events & MESH_IO_ERROR)
        c->broken = true;
    if (c->state == C_ANSWERED && c->resume_pending)
        return; /* the timer resumes it */
    conn_run(c);
}

static void conn_on_timer(struct mesh_timer *t, void *data)
{
    struct mesh_httpd_conn *c = data;
    (void)t;
    switch (c->state) {
    case C_HANDSHAKE: {
        char why[96];
        snprintf(why, sizeof(why), "no TLS handshake within %llu ms",
                 (unsigned long long)c->srv->opt.header_timeout_ms);
        tls_failed(c, why);
        return;
    }
    case C_ANSWERED:
        if (c->resume_pending) {
            c->resume_pending = false;
            conn_run(c);
        } else {
            conn_close(c); /* the client stopped reading its answer */
        }
        return;
    case C_HEAD:
    case C_BODY:
        if (c->req_started) {
            answer_error(c, 408, "the request did not arrive in time");
            conn_run(c);
        } else {
            conn_close(c); /* idle */
        }
        return;
    case C_LINGER:
        conn_close(c);
        return;
    case C_HANDLER:
    case C_DEFERRED:
        return;
    }
}

static void conn_close(struct mesh_httpd_conn *c)
{
    struct mesh_httpd *srv = c->srv;
    call_gone(c);
    mesh_timer_stop(srv->loop, &c->timer);
    mesh_loop_del(srv->loop, &c->io);
    if (c->tls && !c->broken && c->state != C_LINGER)
        mesh_tls_shutdown(c->tls); /* a close_notify, when it goes out at once */
    mesh_tls_conn_free(c->tls);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    free(c->in);
    free(c->out);
    free(c);
}

/* --- listeners --- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t size, unsigned *port)
{
    const void *addr = NULL;
    if (ss->ss_family == AF_INET) {
        addr = &((const struct sockaddr_in *)ss)->sin_addr;
        *port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        *port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    }
    if (!addr || !inet_ntop(ss->ss_family, addr, out, (socklen_t)size))
        snprintf(out, size, "unknown");
}

/* Over max_connections: a best-effort 503 (the client may not even be reading yet), then
 * close. */
static void refuse(struct mesh_httpd *srv, int fd)
{
    const struct mesh_httpd_options *opt = &srv->opt;
    static const char message[] = "too many connections";
    if (opt->tls) {
        close(fd); /* a plaintext 503 would only be garbage to a TLS client */
        return;
    }
    const char *ctype = NULL;
    char *body = opt->error_body ? opt->error_body(503, message, &ctype, opt->data) : NULL;
    char head[160];
    const char *text = body ? body : message;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 503 Service Unavailable\r\ncontent-type: %s\r\n"
                     "content-length: %zu\r\nconnection: close\r\n\r\n",
                     body && ctype ? ctype : "text/plain", strlen(text));
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)text, strlen(text)}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t sent = sendmsg(fd, &mh, MSG_NOSIGNAL);
    (void)sent;
    free(body);
    close(fd);
}

static void conn_new(struct mesh_httpd *srv, int fd, const struct sockaddr_storage *peer)
{
    struct mesh_httpd_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->id = ++srv->next_id;
    c->io.fd = fd;
    c->io.cb = conn_on_io;
    c->io.data = c;
    c->state = C_HEAD;
    peer_text(peer, c->peer, sizeof(c->peer), &c->peer_port);
    c->loopback = is_loopback(peer);
    mesh_h1_parser_init(&c->parser, MESH_H1_REQUEST, &srv->opt.limits, c->headers, MAX_HEADERS);
    mesh_timer_init(&c->timer, conn_on_timer, c);
    if (srv->opt.tls) {
        if (mesh_tls_conn_new(srv->opt.tls, fd, NULL, &c->tls) != MESH_OK) {
            close(fd);
            free(c);
            return;
        }
        c->state = C_HANDSHAKE;
    }
    if (mesh_loop_add(srv->loop, &c->io) != MESH_OK) {
        mesh_tls_conn_free(c->tls);
        close(fd);
        free(c);
        return;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    /* A connection must bring its first request within the header timeout, not sit idle. */
    set_timer(c, srv->opt.header_timeout_ms);
    conn_run(c);
}

static void listener_resume(struct mesh_timer *t, void *data)
{
    struct listener *l = data;
    (void)t;
    if (mesh_loop_add_listener(l->srv->loop, &l->io) != MESH_OK)
        mesh_timer_start(l->srv->loop, &l->pause, ACCEPT_PAUSE_MS);
}

static void listener_on_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct listener *l = io->data;
    struct mesh_httpd *srv = l->srv;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd;
        enum mesh_err err = mesh_sock_accept(io->fd, &fd, &peer, &plen);
        if (err == MESH_E_AGAIN)
            return;
        if (err != MESH_OK) {
            /* Out of descriptors or memory: a level-triggered listener would spin; pause. */
            mesh_loop_del(loop, io);
            mesh_timer_start(loop, &l->pause, ACCEPT_PAUSE_MS);
            return;
        }
        if (srv->n_conns >= srv->opt.max_connections) {
            refuse(srv, fd);
            continue;
        }
        conn_new(srv, fd, &peer);
    }
}

enum mesh_err mesh_httpd_listen(struct mesh_httpd *srv, const char *addr, char *bound,
                                size_t bound_size, char *msg, size_t msg_size)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int fd = -1;

    enum mesh_err err = mesh_sock_parse_addr(addr, 0, &ss, &len, msg, msg_size);
    if (err != MESH_OK)
        return err;
    err = mesh_sock_listen((struct sockaddr *)&ss, len, 0, &fd, msg, msg_size);
    if (err != MESH_OK)
        return err;
    if (bound) {
        struct sockaddr_storage local;
        socklen_t llen = sizeof(local);
        if (mesh_sock_local_addr(fd, &local, &llen) != MESH_OK ||
            mesh_sock_format_addr((struct sockaddr *)&local, llen, bound, bound_size) != MESH_OK)
            snprintf(bound, bound_size, "%s", addr);
    }
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        if (msg)
            snprintf(msg, msg_size, "listen %s: out of memory", addr);
        return MESH_E_NOMEM;
    }
    l->srv = srv;
    l->io.fd = fd;
    l->io.cb = listener_on_io;
    l->io.data = l;
    mesh_timer_init(&l->pause, listener_resume, l);
    if (mesh_loop_add_listener(srv->loop, &l->io) != MESH_OK) {
        if (msg)
            snprintf(msg, msg_size, "listen %s: epoll: %s", addr, strerror(errno));
        close(fd);
        free(l);
        return MESH_E_IO;
    }
    l->next = srv->listeners;
    srv->listeners = l;
    return MESH_OK;
}

/* --- the server --- */

enum mesh_err mesh_httpd_new(struct mesh_loop *loop, const struct mesh_httpd_options *opt,
                             struct mesh_httpd **out)
{
    *out = NULL;
    if (!opt || !opt->handler)
        return MESH_E_INVALID;
    struct mesh_httpd *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return MESH_E_NOMEM;
    srv->loop = loop;
    srv->opt = *opt;
    if (!srv->opt.max_body)
        srv->opt.max_body = MESH_HTTPD_DEFAULT_MAX_BODY;
    if (!srv->opt.max_connections)
        srv->opt.max_connections = MESH_HTTPD_DEFAULT_MAX_CONNECTIONS;
    if (!srv->opt.header_timeout_ms)
        srv->opt.header_timeout_ms = MESH_HTTPD_DEFAULT_HEADER_TIMEOUT;
    if (!srv->opt.idle_timeout_ms)
        srv->opt.idle_timeout_ms = MESH_HTTPD_DEFAULT_IDLE_TIMEOUT;
    if (!srv->opt.limits.max_header_bytes)
        srv->opt.limits.max_header_bytes = MESH_H1_DEFAULT_MAX_HEADER_BYTES;
    *out = srv;
    return MESH_OK;
}

void mesh_httpd_free(struct mesh_httpd *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        conn_close(srv->conns);
    while (srv->listeners) {
        struct listener *l = srv->listeners;
        srv->listeners = l->next;
        mesh_timer_stop(srv->loop, &l->pause);
        mesh_loop_del(srv->loop, &l->io);
        close(l->io.fd);
        free(l);
    }
    free(srv);
}
