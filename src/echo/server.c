/* SPDX-License-Identifier: Apache-2.0 */
/* mesh-echo's worker: an HTTP/1.1 server on the mesh loop that describes each request back. */
#include "echo/echo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bufpool.h"
#include "core/slice.h"
#include "http/h1_parse.h"
#include "net/loop.h"
#include "net/sock.h"

/* One buffer holds a whole request head (the parser refuses heads over MAX_HEAD first) and the
 * response head, which echoes the request's x- headers, path and query: at most MAX_HEAD plus
 * "x-echo-header-" per header plus the fixed lines, well under BUF_SIZE. */
#define BUF_SIZE         (96u * 1024u)
#define MAX_HEAD         (80u * 1024u)
#define MAX_REQUEST_LINE (16u * 1024u)
#define MAX_HEADERS      128u
#define MAX_BUFS         8192u /* per worker: 768 MiB at most, far beyond any test */
#define MAX_IDLE_BUFS    64u
#define ACCEPT_BATCH     64
#define ACCEPT_RETRY_MS  100u
#define LINGER_MS        2000u          /* how long a closing connection drains its input */
#define MAX_DELAY_MS     (3600u * 1000) /* ?delay= is capped at an hour */
#define PATTERN_PERIOD   26u            /* ?size= bodies are "abc...xyzabc..." */
#define PATTERN_CHUNK    (64u * 1024u)
#define MIN_READ_SPACE   4096u

static char pattern[PATTERN_CHUNK + PATTERN_PERIOD];

enum conn_state {
    ST_HEAD,     /* waiting for / parsing a request head */
    ST_BODY,     /* reading and discarding the request body */
    ST_DELAY,    /* body read; the ?delay= timer runs */
    ST_RESPOND,  /* ready to write the response head */
    ST_BODY_OUT, /* streaming a large ?size= body */
    ST_TUNNEL,   /* after 101: echo every byte */
    ST_LINGER,   /* flush what is queued, then shut down writing */
    ST_DRAIN,    /* written side shut; discard input until EOF or the timer */
};

enum step {
    STEP_CONTINUE,   /* the state changed: step again */
    STEP_NEED_READ,  /* needs bytes from the socket */
    STEP_NEED_WRITE, /* output is blocked: wait for the socket */
    STEP_WAIT,       /* waiting for a timer */
    STEP_CLOSE,      /* done with this connection */
};

struct conn;

struct mesh_echo_worker {
    const struct mesh_echo_config *cfg;
    struct mesh_loop loop;
    struct mesh_io listener;
    struct mesh_io wake; /* eventfd: mesh_echo_worker_stop writes it */
    struct mesh_timer accept_retry;
    struct mesh_bufpool pool;
    struct mesh_h1_limits limits;
    struct conn *conns; /* every open connection, to close them at exit */
    bool loop_ready, listening;
};

struct conn {
    struct mesh_io io;
    struct mesh_echo_worker *w;
    struct conn *prev, *next;
    struct mesh_buf *in, *out;
    struct mesh_timer timer;
    enum conn_state state;
    bool can_read, can_write, eof;

    /* the request being served; its head stays at the front of `in` until answered */
    size_t head_len;
    enum mesh_h1_body body_kind;
    uint64_t body_left; /* Content-Length bytes still to come */
    uint64_t body_bytes;
    struct mesh_h1_chunked chunked;
    int status;
    uint64_t delay_ms;
    int64_t size; /* ?size=, -1 when absent */
    bool keep_alive, http10_keep_alive, no_body;
    uint64_t body_out_left, body_out_pos;

    struct mesh_h1_parser parser;
    struct mesh_h1_header headers[MAX_HEADERS];
};

static void log_error(const char *what, const char *detail)
{
    fprintf(stderr, "lvl=error msg=\"%s\" reason=\"%s\"\n", what, detail);
}

static void fill_pattern(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char)('a' + i % PATTERN_PERIOD);
}

/* --- output composition ------------------------------------------------------------------ */

/* A bounded writer over the output buffer's free space; `full` records an overflow. */
struct writer {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct writer *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct writer *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_slice(struct writer *o, struct mesh_slice s)
{
    put(o, s.p, s.len);
}

static void put_u64(struct writer *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, tmp + i, sizeof(tmp) - i);
}

static void put_lower(struct writer *o, struct mesh_slice s)
{
    if (o->full || s.len > o->cap - o->len) {
        o->full = true;
        return;
    }
    for (size_t i = 0; i < s.len; i++)
        o->p[o->len + i] = (char)mesh_ascii_lower((unsigned char)s.p[i]);
    o->len += s.len;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
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
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Status";
}

static void put_status_line(struct writer *o, int status)
{
    put_str(o, "HTTP/1.1 ");
    put_u64(o, (uint64_t)status);
    put_str(o, " ");
    put_str(o, reason_phrase(status));
    put_str(o, "\r\n");
}

/* The x-echo-* lines describing the request msg. */
static void put_echo_headers(struct conn *c, struct writer *o, const struct mesh_h1_message *msg)
{
    put_str(o, "x-echo-name: ");
    put(o, c->w->cfg->name, c->w->cfg->name_len);
    put_str(o, "\r\nx-echo-method: ");
    put_slice(o, msg->method);
    put_str(o, "\r\nx-echo-path: ");
    put_slice(o, msg->path);
    put_str(o, "\r\n");
    if (msg->query.len > 0) {
        put_str(o, "x-echo-query: ");
        put_slice(o, msg->query);
        put_str(o, "\r\n");
    }
    if (msg->host.len > 0) {
        put_str(o, "x-echo-host: ");
        put_slice(o, msg->host);
        put_str(o, "\r\n");
    }
    put_str(o, "x-echo-body-bytes: ");
    put_u64(o, c->body_bytes);
    put_str(o, "\r\n");
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct mesh_h1_header *h = &msg->headers[i];
        if (h->name.len < 2 || mesh_ascii_lower((unsigned char)h->name.p[0]) != 'x' ||
            h->name.p[1] != '-')
            continue;
        put_str(o, "x-echo-header-");
        put_lower(o, h->name);
        put_str(o, ": ");
        put_slice(o, h->value);
        put_str(o, "\r\n");
    }
}

static bool ensure_out(struct conn *c)
{
    if (c->out == NULL)
        c->out = mesh_bufpool_get(&c->w->pool);
    if (c->out == NULL)
        return false;
    mesh_buf_compact(c->out);
    return true;
}

static struct writer out_writer(struct conn *c)
{
    return (struct writer){.p = mesh_buf_wptr(c->out), .cap = mesh_buf_writable(c->out)};
}

/* --- socket I/O ------------------------------------------------------------------------- */

enum io_result { IO_DONE, IO_AGAIN, IO_ERROR };

/* Sends n bytes of p; *sent says how many went. */
static enum io_result send_some(struct conn *c, const char *p, size_t n, size_t *sent)
{
    *sent = 0;
    if (!c->can_write)
        return IO_AGAIN;
    while (*sent < n) {
        ssize_t r = send(c->io.fd, p + *sent, n - *sent, MSG_NOSIGNAL);
        if (r > 0) {
            *sent += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->can_write = false;
            return IO_AGAIN;
        } else {
            return IO_ERROR;
        }
    }
    return IO_DONE;
}

/* Sends everything queued in out; an emptied buffer goes back to the pool. */
static enum io_result flush(struct conn *c)
{
    if (c->out == NULL)
        return IO_DONE;
    size_t sent;
    enum io_result r = send_some(c, mesh_buf_rptr(c->out), mesh_buf_readable(c->out), &sent);
    mesh_buf_consume(c->out, (uint32_t)sent);
    if (r == IO_DONE) {
        mesh_bufpool_put(&c->w->pool, c->out);
        c->out = NULL;
    }
    return r;
}

enum fill_result { FILL_GOT, FILL_AGAIN, FILL_EOF, FILL_ERROR };

/* Reads once into the free space of in. */
static enum fill_result fill(struct conn *c)
{
    if (!c->can_read)
        return FILL_AGAIN;
    if (c->in == NULL && (c->in = mesh_bufpool_get(&c->w->pool)) == NULL)
        return FILL_ERROR;
    if (c->state == ST_DRAIN)
        mesh_buf_reset(c->in);
    if (mesh_buf_writable(c->in) < MIN_READ_SPACE && c->in->start > 0) {
        /* Moves a head being parsed or kept too: mesh_h1_parse re-bases on the next call. */
        mesh_buf_compact(c->in);
    }
    if (mesh_buf_writable(c->in) == 0)
        return FILL_ERROR; /* cannot happen: the parser refuses heads before they fill it */
    for (;;) {
        ssize_t r = read(c->io.fd, mesh_buf_wptr(c->in), mesh_buf_writable(c->in));
        if (r > 0) {
            mesh_buf_commit(c->in, (uint32_t)r);
            return FILL_GOT;
        }
        if (r == 0) {
            c->eof = true;
            c->can_read = false;
            return FILL_EOF;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->can_read = false;
            return FILL_AGAIN;
        }
        return FILL_ERROR;
    }
}

/* --- request handling ------------------------------------------------------------------- */

static bool parse_u64(struct mesh_slice s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 19)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* "250ms", "1s", "1.5s", "2m" or a bare number of milliseconds. */
static bool parse_duration_ms(struct mesh_slice s, uint64_t *out)
{
    size_t i = 0;
    uint64_t whole = 0, frac = 0, frac_div = 1;
    while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && i < 12)
        whole = whole * 10 + (uint64_t)(s.p[i++] - '0');
    if (i == 0)
        return false;
    if (i < s.len && s.p[i] == '.') {
        i++;
        size_t start = i;
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && i - start < 6) {
            frac = frac * 10 + (uint64_t)(s.p[i++] - '0');
            frac_div *= 10;
        }
        if (i == start)
            return false;
    }
    struct mesh_slice unit = mesh_slice_make(s.p + i, s.len - i);
    uint64_t scale;
    if (unit.len == 0 || mesh_slice_eq_cstr(unit, "ms"))
        scale = 1;
    else if (mesh_slice_eq_cstr(unit, "s"))
        scale = 1000;
    else if (mesh_slice_eq_cstr(unit, "m"))
        scale = 60000;
    else
        return false;
    uint64_t ms = whole * scale + frac * scale / frac_div;
    if (ms > MAX_DELAY_MS)
        return false;
    *out = ms;
    return true;
}

/* Reads ?status=, ?delay=, ?size=, ?close= into c; false for a bad value. */
static bool apply_query(struct conn *c, struct mesh_slice q, bool *close_after)
{
    while (q.len > 0) {
        const char *amp = memchr(q.p, '&', q.len);
        size_t n = amp != NULL ? (size_t)(amp - q.p) : q.len;
        struct mesh_slice kv = mesh_slice_make(q.p, n);
        const char *eq = memchr(kv.p, '=', kv.len);
        struct mesh_slice k = mesh_slice_make(kv.p, eq != NULL ? (size_t)(eq - kv.p) : kv.len);
        struct mesh_slice v = eq != NULL ? mesh_slice_make(eq + 1, kv.len - k.len - 1)
                                         : mesh_slice_make(kv.p + kv.len, 0);
        uint64_t num;
        if (mesh_slice_eq_cstr(k, "status")) {
            if (!parse_u64(v, 599, &num) || num < 200)
                return false;
            c->status = (int)num;
        } else if (mesh_slice_eq_cstr(k, "delay")) {
            if (!parse_duration_ms(v, &c->delay_ms))
                return false;
        } else if (mesh_slice_eq_cstr(k, "size")) {
            if (!parse_u64(v, (uint64_t)INT64_MAX, &num))
                return false;
            c->size = (int64_t)num;
        } else if (mesh_slice_eq_cstr(k, "close")) {
            *close_after = !(v.len == 1 && v.p[0] == '0');
        }
        q.p += n;
        q.len -= n;
        if (q.len > 0) {
            q.p++; /* the '&' */
            q.len--;
        }
    }
    return true;
}

/* Answers a refused request with status and closes after it. */
static enum step respond_error(struct conn *c, int status, const char *why)
{
    if (!ensure_out(c))
        return STEP_CLOSE;
    struct writer o = out_writer(c);
    size_t body = strlen(why) + 1;
    put_status_line(&o, status);
    put_str(&o, "content-type: text/plain\r\ncontent-length: ");
    put_u64(&o, body);
    put_str(&o, "\r\nconnection: close\r\nx-echo-name: ");
    put(&o, c->w->cfg->name, c->w->cfg->name_len);
    put_str(&o, "\r\nx-echo-error: ");
    put_str(&o, why);
    put_str(&o, "\r\n\r\n");
    put_str(&o, why);
    put_str(&o, "\n");
    if (o.full)
        return STEP_CLOSE;
    mesh_buf_commit(c->out, (uint32_t)o.len);
    c->state = ST_LINGER;
    return STEP_CONTINUE;
}

static bool upgrade_to_websocket(const struct mesh_h1_message *msg)
{
    if (!msg->upgrade)
        return false;
    const struct mesh_h1_header *h = mesh_h1_find_header(msg, MESH_SLICE_LIT("upgrade"));
    if (h == NULL)
        return false;
    /* A token list: look for "websocket" (case-insensitive) as one of its tokens. */
    struct mesh_slice v = h->value;
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t start = i;
        while (i < v.len && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t' && v.p[i] != '/')
            i++;
        if (mesh_slice_eq_cstr_nocase(mesh_slice_make(v.p + start, i - start), "websocket"))
            return true;
        while (i < v.len && v.p[i] != ',')
            i++;
    }
    return false;
}

static void drop_head(struct conn *c)
{
    mesh_buf_consume(c->in, (uint32_t)c->head_len);
    c->head_len = 0;
    mesh_h1_parser_reset(&c->parser);
}

static enum step start_tunnel(struct conn *c, const struct mesh_h1_message *msg)
{
    if (!ensure_out(c))
        return STEP_CLOSE;
    struct writer o = out_writer(c);
    put_status_line(&o, 101);
    put_str(&o, "connection: upgrade\r\nupgrade: websocket\r\n");
    put_echo_headers(c, &o, msg);
    put_str(&o, "\r\n");
    if (o.full)
        return STEP_CLOSE;
    mesh_buf_commit(c->out, (uint32_t)o.len);
    drop_head(c);
    c->state = ST_TUNNEL;
    return STEP_CONTINUE;
}

/* A complete head: decide what to answer and how to read the body. */
static enum step begin_request(struct conn *c, const struct mesh_h1_message *msg)
{
    bool close_after = false;
    c->head_len = msg->head_len;
    c->body_bytes = 0;
    c->status = 200;
    c->delay_ms = 0;
    c->size = -1;
    c->keep_alive = msg->keep_alive;
    c->http10_keep_alive = msg->keep_alive && msg->version_minor == 0;
    if (!apply_query(c, msg->query, &close_after)) {
        drop_head(c);
        return respond_error(c, 400, "bad query parameter");
    }
    if (close_after)
        c->keep_alive = false;
    c->no_body = msg->method_id == MESH_H1_M_HEAD;
    if (upgrade_to_websocket(msg))
        return start_tunnel(c, msg);

    c->body_kind = mesh_h1_request_body(msg);
    c->body_left = 0;
    if (c->body_kind == MESH_H1_BODY_LENGTH)
        c->body_left = (uint64_t)msg->content_length;
    else if (c->body_kind == MESH_H1_BODY_CHUNKED)
        mesh_h1_chunked_init(&c->chunked);
    if (msg->expect_continue && c->body_kind != MESH_H1_BODY_NONE) {
        if (!ensure_out(c))
            return STEP_CLOSE;
        struct writer o = out_writer(c);
        put_str(&o, "HTTP/1.1 100 Continue\r\n\r\n");
        if (o.full)
            return STEP_NEED_WRITE; /* the queue is full: send it first, then come back */
        mesh_buf_commit(c->out, (uint32_t)o.len);
    }
    c->state = ST_BODY;
    return STEP_CONTINUE;
}

static enum step step_head(struct conn *c)
{
    if (c->in == NULL || mesh_buf_readable(c->in) == 0) {
        if (c->in != NULL) {
            /* An idle connection holds no buffer. */
            mesh_bufpool_put(&c->w->pool, c->in);
            c->in = NULL;
        }
        return c->eof ? STEP_CLOSE : STEP_NEED_READ;
    }
    struct mesh_h1_message msg;
    enum mesh_err err =
        mesh_h1_parse(&c->parser, mesh_buf_rptr(c->in), mesh_buf_readable(c->in), &msg);
    if (err == MESH_E_AGAIN)
        return c->eof ? STEP_CLOSE : STEP_NEED_READ;
    if (err != MESH_OK) {
        int status = mesh_h1_error_status(c->parser.error);
        const char *why = mesh_h1_error_name(c->parser.error);
        mesh_buf_reset(c->in);
        mesh_h1_parser_reset(&c->parser);
        return respond_error(c, status > 0 ? status : 400, why);
    }
    if (c->out != NULL && mesh_buf_readable(c->out) > BUF_SIZE / 2) {
        /* Pipelined answers pile up: send them before taking on another request. */
        enum io_result r = flush(c);
        if (r == IO_ERROR)
            return STEP_CLOSE;
        if (r == IO_AGAIN)
            return STEP_NEED_WRITE;
    }
    return begin_request(c, &msg);
}

/* Removes n body bytes that follow the kept head; what follows them (a pipelined request)
 * slides down to take their place. */
static void drop_body_bytes(struct conn *c, size_t n)
{
    char *body = mesh_buf_rptr(c->in) + c->head_len;
    size_t avail = mesh_buf_readable(c->in) - c->head_len;
    if (n < avail)
        memmove(body, body + n, avail - n);
    c->in->end -= (uint32_t)n;
}

static enum step step_body(struct conn *c)
{
    size_t avail = mesh_buf_readable(c->in) - c->head_len;
    bool done = true;
    if (c->body_kind == MESH_H1_BODY_LENGTH) {
        size_t n = c->body_left < avail ? (size_t)c->body_left : avail;
        drop_body_bytes(c, n);
        c->body_left -= n;
        c->body_bytes += n;
        done = c->body_left == 0;
    } else if (c->body_kind == MESH_H1_BODY_CHUNKED) {
        size_t used = 0;
        enum mesh_err err =
            mesh_h1_chunked_feed(&c->chunked, mesh_buf_rptr(c->in) + c->head_len, avail, &used);
        drop_body_bytes(c, used);
        c->body_bytes = c->chunked.body_bytes;
        if (err == MESH_E_INVALID) {
            drop_head(c);
            mesh_buf_reset(c->in);
            return respond_error(c, 400, mesh_h1_error_name(c->chunked.error));
        }
        done = err == MESH_OK;
    }
    if (!done)
        return c->eof ? STEP_CLOSE : STEP_NEED_READ;
    if (c->delay_ms > 0) {
        c->state = ST_DELAY;
        mesh_timer_start(&c->w->loop, &c->timer, c->delay_ms);
        return STEP_WAIT;
    }
    c->state = ST_RESPOND;
    return STEP_CONTINUE;
}

static enum step step_respond(struct conn *c)
{
    struct mesh_h1_message msg;
    /* Same bytes again: the parser answers OK at once, re-basing onto the buffer's address. */
    if (mesh_h1_parse(&c->parser, mesh_buf_rptr(c->in), c->head_len, &msg) != MESH_OK)
        return STEP_CLOSE;
    bool bodiless = c->status == 204 || c->status == 304;
    uint64_t body_len = c->size >= 0 ? (uint64_t)c->size : c->w->cfg->name_len + 1;
    if (!ensure_out(c))
        return STEP_CLOSE;
    struct writer o = out_writer(c);
    put_status_line(&o, c->status);
    if (!bodiless) {
        put_str(&o, "content-type: text/plain\r\ncontent-length: ");
        put_u64(&o, body_len);
        put_str(&o, "\r\n");
    }
    if (!c->keep_alive)
        put_str(&o, "connection: close\r\n");
    else if (c->http10_keep_alive)
        put_str(&o, "connection: keep-alive\r\n");
    put_echo_headers(c, &o, &msg);
    put_str(&o, "\r\n");
    bool send_body = !bodiless && !c->no_body;
    c->body_out_left = 0;
    c->body_out_pos = 0;
    if (send_body) {
        if (c->size < 0) {
            put(&o, c->w->cfg->name, c->w->cfg->name_len);
            put_str(&o, "\n");
        } else if (body_len <= o.cap - o.len && body_len <= PATTERN_CHUNK) {
            put(&o, pattern, (size_t)body_len); /* small: queued with the head */
        } else {
            c->body_out_left = body_len; /* large: streamed once the head is out */
        }
    }
    if (o.full) {
        if (mesh_buf_readable(c->out) > 0) {
            /* Not enough room behind earlier answers: send those first. */
            enum io_result r = flush(c);
            if (r == IO_ERROR)
                return STEP_CLOSE;
            return r == IO_AGAIN ? STEP_NEED_WRITE : STEP_CONTINUE;
        }
        return STEP_CLOSE; /* cannot happen with BUF_SIZE above the largest head */
    }
    mesh_buf_commit(c->out, (uint32_t)o.len);
    drop_head(c);
    if (c->body_out_left > 0)
        c->state = ST_BODY_OUT;
    else
        c->state = c->keep_alive ? ST_HEAD : ST_LINGER;
    return STEP_CONTINUE;
}

static enum step step_body_out(struct conn *c)
{
    enum io_result r = flush(c);
    if (r == IO_ERROR)
        return STEP_CLOSE;
    if (r == IO_AGAIN)
        return STEP_NEED_WRITE;
    while (c->body_out_left > 0) {
        size_t off = (size_t)(c->body_out_pos % PATTERN_PERIOD);
        size_t n = c->body_out_left < PATTERN_CHUNK ? (size_t)c->body_out_left : PATTERN_CHUNK;
        size_t sent;
        r = send_some(c, pattern + off, n, &sent);
        c->body_out_left -= sent;
        c->body_out_pos += sent;
        if (r == IO_ERROR)
            return STEP_CLOSE;
        if (r == IO_AGAIN)
            return STEP_NEED_WRITE;
    }
    c->state = c->keep_alive ? ST_HEAD : ST_LINGER;
    return STEP_CONTINUE;
}

static enum step step_tunnel(struct conn *c)
{
    enum io_result r = flush(c); /* the 101 goes first */
    if (r == IO_ERROR)
        return STEP_CLOSE;
    if (r == IO_AGAIN)
        return STEP_NEED_WRITE;
    if (c->in != NULL && mesh_buf_readable(c->in) > 0) {
        size_t sent;
        r = send_some(c, mesh_buf_rptr(c->in), mesh_buf_readable(c->in), &sent);
        mesh_buf_consume(c->in, (uint32_t)sent);
        if (r == IO_ERROR)
            return STEP_CLOSE;
        if (r == IO_AGAIN)
            return STEP_NEED_WRITE;
    }
    if (c->eof) {
        c->state = ST_LINGER; /* the peer finished sending: finish ours too */
        return STEP_CONTINUE;
    }
    return STEP_NEED_READ;
}

static enum step step_linger(struct conn *c)
{
    enum io_result r = flush(c);
    if (r == IO_ERROR)
        return STEP_CLOSE;
    if (r == IO_AGAIN)
        return STEP_NEED_WRITE;
    /* Shut our side and read until the peer closes: closing with unread input would send a
     * reset that can destroy the answer before the client read it. */
    shutdown(c->io.fd, SHUT_WR);
    if (c->eof)
        return STEP_CLOSE;
    c->state = ST_DRAIN;
    mesh_timer_start(&c->w->loop, &c->timer, LINGER_MS);
    return STEP_CONTINUE;
}

static enum step step(struct conn *c)
{
    switch (c->state) {
    case ST_HEAD:
        return step_head(c);
    case ST_BODY:
        return step_body(c);
    case ST_DELAY:
        return STEP_WAIT;
    case ST_RESPOND:
        return step_respond(c);
    case ST_BODY_OUT:
        return step_body_out(c);
    case ST_TUNNEL:
        return step_tunnel(c);
    case ST_LINGER:
        return step_linger(c);
    case ST_DRAIN:
        if (c->in != NULL)
            mesh_buf_reset(c->in);
        return c->eof ? STEP_CLOSE : STEP_NEED_READ;
    }
    return STEP_CLOSE;
}

static void conn_free(struct conn *c)
{
    struct mesh_echo_worker *w = c->w;
    mesh_loop_del(&w->loop, &c->io);
    close(c->io.fd);
    mesh_timer_stop(&w->loop, &c->timer);
    mesh_bufpool_put(&w->pool, c->in);
    mesh_bufpool_put(&w->pool, c->out);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

/* Moves the connection forward as far as the socket and the timers allow. */
static void conn_run(struct conn *c)
{
    for (;;) {
        enum step s = step(c);
        if (s == STEP_CONTINUE)
            continue;
        if (s == STEP_CLOSE)
            break;
        if (s == STEP_NEED_READ) {
            enum fill_result f = fill(c);
            if (f == FILL_GOT || f == FILL_EOF)
                continue;
            if (f == FILL_ERROR)
                break;
        }
        /* Blocked on input, output or a timer: send whatever answers are queued. */
        if (flush(c) == IO_ERROR)
            break;
        if (s == STEP_NEED_WRITE && c->can_write)
            continue; /* the flush made room */
        return;
    }
    conn_free(c);
}

static void conn_io(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    (void)loop;
    struct conn *c = io->data;
    if (events & MESH_IO_ERROR) {
        conn_free(c);
        return;
    }
    if (events & MESH_IO_READ)
        c->can_read = true;
    if (events & MESH_IO_WRITE)
        c->can_write = true;
    conn_run(c);
}

static void conn_timer(struct mesh_timer *t, void *data)
{
    (void)t;
    struct conn *c = data;
    if (c->state == ST_DELAY) {
        c->state = ST_RESPOND;
        conn_run(c);
    } else if (c->state == ST_DRAIN) {
        conn_free(c); /* the peer never closed */
    }
}

static void conn_open(struct mesh_echo_worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->io.fd = fd;
    c->io.cb = conn_io;
    c->io.data = c;
    c->state = ST_HEAD;
    c->can_read = true;
    c->can_write = true;
    mesh_timer_init(&c->timer, conn_timer, c);
    mesh_h1_parser_init(&c->parser, MESH_H1_REQUEST, &w->limits, c->headers, MAX_HEADERS);
    if (mesh_loop_add(&w->loop, &c->io) != MESH_OK) {
        close(fd);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
}

/* --- worker ------------------------------------------------------------------------------ */

static void accept_resume(struct mesh_timer *t, void *data)
{
    (void)t;
    struct mesh_echo_worker *w = data;
    if (!w->listening && mesh_loop_add_listener(&w->loop, &w->listener) == MESH_OK)
        w->listening = true;
}

static void on_accept(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    (void)events;
    struct mesh_echo_worker *w = io->data;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd;
        enum mesh_err err = mesh_sock_accept(io->fd, &fd, NULL, NULL);
        if (err == MESH_E_AGAIN)
            return;
        if (err != MESH_OK) {
            /* Out of fds or memory: a level-triggered listener would spin, so pause it. */
            log_error("accept failed", strerror(errno));
            mesh_loop_del(loop, io);
            w->listening = false;
            mesh_timer_start(loop, &w->accept_retry, ACCEPT_RETRY_MS);
            return;
        }
        conn_open(w, fd);
    }
}

static void on_wake(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    (void)events;
    uint64_t v;
    if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_error("eventfd read failed", strerror(errno));
    loop->stop = true;
}

enum mesh_err mesh_echo_worker_create(const struct mesh_echo_config *cfg, int listen_fd,
                                      struct mesh_echo_worker **out, char *msg, size_t msg_size)
{
    enum mesh_err err = MESH_OK;
    *out = NULL;
    struct mesh_echo_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        close(listen_fd);
        snprintf(msg, msg_size, "worker: out of memory");
        return MESH_E_NOMEM;
    }
    if (pattern[0] == '\0')
        fill_pattern(); /* main thread, before any worker runs */
    w->cfg = cfg;
    w->listener.fd = listen_fd;
    w->listener.cb = on_accept;
    w->listener.data = w;
    w->wake.fd = -1;
    w->wake.cb = on_wake;
    w->wake.data = w;
    w->limits = (struct mesh_h1_limits){.max_request_line = MAX_REQUEST_LINE,
                                        .max_header_bytes = MAX_HEAD,
                                        .max_headers = MAX_HEADERS};
    mesh_timer_init(&w->accept_retry, accept_resume, w);
    mesh_bufpool_init(&w->pool, BUF_SIZE, MAX_BUFS, MAX_IDLE_BUFS);
    if (mesh_loop_init(&w->loop) != MESH_OK) {
        snprintf(msg, msg_size, "epoll: %s", strerror(errno));
        err = MESH_E_IO;
        goto out;
    }
    w->loop_ready = true;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake.fd < 0 || mesh_loop_add_listener(&w->loop, &w->wake) != MESH_OK ||
        mesh_loop_add_listener(&w->loop, &w->listener) != MESH_OK) {
        snprintf(msg, msg_size, "worker setup: %s", strerror(errno));
        err = MESH_E_IO;
        goto out;
    }
    w->listening = true;
    *out = w;
    w = NULL;
out:
    mesh_echo_worker_free(w);
    return err;
}

void *mesh_echo_worker_run(void *arg)
{
    struct mesh_echo_worker *w = arg;
    while (!w->loop.stop) {
        if (mesh_loop_run_once(&w->loop, -1) < 0) {
            log_error("epoll_wait failed", strerror(errno));
            break;
        }
    }
    return NULL;
}

void mesh_echo_worker_stop(struct mesh_echo_worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->wake.fd, &one, sizeof(one));
    (void)r; /* a full counter already means "wake up" */
}

void mesh_echo_worker_free(struct mesh_echo_worker *w)
{
    if (w == NULL)
        return;
    while (w->conns != NULL)
        conn_free(w->conns);
    if (w->loop_ready) {
        if (w->listening)
            mesh_loop_del(&w->loop, &w->listener);
        if (w->wake.fd >= 0)
            mesh_loop_del(&w->loop, &w->wake);
        mesh_loop_close(&w->loop);
    }
    if (w->listener.fd >= 0)
        close(w->listener.fd);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    mesh_bufpool_destroy(&w->pool);
    free(w);
}
