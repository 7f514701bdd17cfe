/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl tap's connections to proxies' GET /tap: connect, send, read the head, and cut the
 * chunked body into JSON lines, without blocking, so that one poll() serves every proxy. */
#include "tap_stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/xalloc.h"
#include "http/h1_parse.h"
#include "net/sock.h"

#define MAX_HEAD       (64u * 1024u)
#define MAX_LINE       (1u << 20) /* a proxy's lines are at most 8 KiB: anything longer is wrong */
#define MAX_ERROR_BODY 4096u

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits until fd is ready for events or the deadline passes; false on timeout. */
static bool wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

static const char *name_of(const struct cli_tap_stream *s)
{
    return *s->proxy ? s->proxy : s->admin;
}

/* Reads what there is into s->in. >0 bytes, 0 nothing now, -1 EOF or error (errno kept). */
static ssize_t fill(struct cli_tap_stream *s)
{
    char buf[16384];
    ssize_t n = read(s->fd, buf, sizeof(buf));
    if (n > 0) {
        if (mesh_strbuf_append(&s->in, buf, (size_t)n) != MESH_OK)
            return -1;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n == 0)
        errno = 0;
    return -1;
}

static void consume(struct mesh_strbuf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->data)
        b->data[b->len] = '\0';
}

/* The body of a refused request, read until the proxy closes (it was asked to), for the
 * message. */
static char *error_body(struct cli_tap_stream *s, size_t head_len, uint64_t deadline)
{
    while (s->in.len - head_len < MAX_ERROR_BODY && wait_fd(s->fd, POLLIN, deadline))
        if (fill(s) < 0)
            break;
    size_t n = s->in.len - head_len;
    if (n > MAX_ERROR_BODY)
        n = MAX_ERROR_BODY;
    while (n && (s->in.data[head_len + n - 1] == '\n' || s->in.data[head_len + n - 1] == '\r'))
        n--;
    return xstrndup(s->in.data + head_len, n);
}

enum mesh_err cli_tap_stream_open(struct cli_tap_stream *s, const char *proxy, const char *admin,
                                  const char *target, long timeout_ms, char **errmsg)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->proxy = xstrdup(proxy ? proxy : "");
    if (strncmp(admin, "http://", 7) == 0)
        admin += 7;
    s->admin = xstrndup(admin, strcspn(admin, "/"));
    mesh_strbuf_init(&s->in, MAX_HEAD + MAX_LINE);
    mesh_strbuf_init(&s->line, MAX_LINE);
    *errmsg = NULL;

    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
    struct sockaddr_storage addr;
    socklen_t len;
    char why[256];
    if (mesh_sock_parse_addr(s->admin, 0, &addr, &len, why, sizeof(why)) != MESH_OK) {
        *errmsg = xasprintf("proxy %s: admin address \"%s\": %s", name_of(s), s->admin, why);
        return MESH_E_INVALID;
    }
    enum mesh_err err = mesh_sock_connect((struct sockaddr *)&addr, len, &s->fd, why, sizeof(why));
    while (err == MESH_E_AGAIN) {
        if (!wait_fd(s->fd, POLLOUT, deadline)) {
            *errmsg = xasprintf("proxy %s: cannot reach its admin listener at %s: timed out",
                                name_of(s), s->admin);
            return MESH_E_UNAVAILABLE;
        }
        err = mesh_sock_connect_finish(s->fd, (struct sockaddr *)&addr, len, why, sizeof(why));
    }
    if (err != MESH_OK) {
        *errmsg = xasprintf("proxy %s: cannot reach its admin listener: %s", name_of(s), why);
        return MESH_E_UNAVAILABLE;
    }
    char *req = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: meshctl\r\n"
                          "Accept: application/x-ndjson\r\nConnection: close\r\n\r\n",
                          target, s->admin);
    size_t sent = 0, total = strlen(req);
    while (sent < total) {
        ssize_t n = send(s->fd, req + sent, total - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(s->fd, POLLOUT, deadline))
                break;
        } else {
            break;
        }
    }
    free(req);
    if (sent < total) {
        *errmsg = xasprintf("proxy %s: cannot send the tap request to %s: %s", name_of(s), s->admin,
                            errno ? strerror(errno) : "timed out");
        return MESH_E_UNAVAILABLE;
    }

    struct mesh_h1_header headers[64];
    struct mesh_h1_parser parser;
    struct mesh_h1_message msg;
    mesh_h1_parser_init(&parser, MESH_H1_RESPONSE, NULL, headers, 64);
    for (;;) {
        err = s->in.len ? mesh_h1_parse(&parser, s->in.data, s->in.len, &msg) : MESH_E_AGAIN;
        if (err == MESH_OK)
            break;
        if (err != MESH_E_AGAIN) {
            *errmsg = xasprintf("proxy %s: its admin listener %s answered something that is not "
                                "HTTP (%s)",
                                name_of(s), s->admin, mesh_h1_error_name(parser.error));
            return MESH_E_INVALID;
        }
        ssize_t n = wait_fd(s->fd, POLLIN, deadline) ? fill(s) : -2;
        if (n == -2 || n < 0) {
            *errmsg = xasprintf("proxy %s: no answer to the tap request from %s (%s)", name_of(s),
                                s->admin,
                                n == -2 ? "timed out"
                                : errno ? strerror(errno)
                                        : "it closed");
            return MESH_E_UNAVAILABLE;
        }
    }
    s->status = msg.status;
    if (msg.status != 200 || !msg.chunked) {
        char *body = error_body(s, msg.head_len, deadline);
        *errmsg = xasprintf("proxy %s refused the tap (%d): %s", name_of(s), msg.status,
                            *body ? body : "(no reason given)");
        free(body);
        return MESH_E_INVALID;
    }
    consume(&s->in, msg.head_len);
    s->state = CLI_TAP_SIZE;
    return MESH_OK;
}

/* Hands every complete line of s->line to fn. */
static void emit_lines(struct cli_tap_stream *s, cli_tap_line_fn fn, void *ctx)
{
    char *nl;
    while (s->line.len && (nl = memchr(s->line.data, '\n', s->line.len))) {
        *nl = '\0';
        fn(ctx, s, s->line.data);
        consume(&s->line, (size_t)(nl - s->line.data) + 1);
    }
}

static enum mesh_err broken(struct cli_tap_stream *s, char **errmsg, const char *what)
{
    *errmsg = xasprintf("proxy %s: broken tap stream: %s", name_of(s), what);
    return MESH_E_INVALID;
}

/* Runs the chunked decoder over s->in. */
static enum mesh_err decode(struct cli_tap_stream *s, cli_tap_line_fn fn, void *ctx, char **errmsg)
{
    size_t pos = 0;
    enum mesh_err err = MESH_OK;
    while (pos < s->in.len && s->state != CLI_TAP_DONE) {
        const char *p = s->in.data + pos;
        size_t avail = s->in.len - pos;
        if (s->state == CLI_TAP_SIZE || s->state == CLI_TAP_TRAILER) {
            const char *nl = memchr(p, '\n', avail);
            if (!nl) {
                if (avail > 4096)
                    err = broken(s, errmsg, "a chunk-size or trailer line over 4 KiB");
                break;
            }
            size_t n = (size_t)(nl - p);
            if (n == 0 || p[n - 1] != '\r') {
                err = broken(s, errmsg, "a line without CRLF");
                break;
            }
            pos += n + 1;
            if (s->state == CLI_TAP_TRAILER) {
                if (n == 1)
                    s->state = CLI_TAP_DONE; /* the empty line ends the message */
                continue;
            }
            uint64_t size = 0;
            size_t digits = 0;
            for (; digits < n - 1 && p[digits] != ';'; digits++) {
                char c = p[digits];
                int v = mesh_hex_value(c);
                if (v < 0 || size > (UINT64_MAX >> 4)) {
                    err = broken(s, errmsg, "a bad chunk size");
                    break;
                }
                size = size << 4 | (uint64_t)v;
            }
            if (err != MESH_OK)
                break;
            if (digits == 0) {
                err = broken(s, errmsg, "an empty chunk size");
                break;
            }
            s->chunk_left = size;
            s->state = size ? CLI_TAP_DATA : CLI_TAP_TRAILER;
        } else if (s->state == CLI_TAP_DATA) {
            size_t n = avail < s->chunk_left ? avail : (size_t)s->chunk_left;
            if (mesh_strbuf_append(&s->line, p, n) != MESH_OK) {
                err = broken(s, errmsg, "a line over 1 MiB");
                break;
            }
            pos += n;
            s->chunk_left -= n;
            if (!s->chunk_left)
                s->state = CLI_TAP_DATA_CRLF;
            emit_lines(s, fn, ctx);
        } else { /* CLI_TAP_DATA_CRLF */
            if (avail < 2)
                break;
            if (p[0] != '\r' || p[1] != '\n') {
                err = broken(s, errmsg, "chunk data not followed by CRLF");
                break;
            }
            pos += 2;
            s->state = CLI_TAP_SIZE;
        }
    }
    consume(&s->in, pos);
    return err;
}

enum mesh_err cli_tap_stream_read(struct cli_tap_stream *s, cli_tap_line_fn fn, void *ctx,
                                  char **errmsg)
{
    *errmsg = NULL;
    for (;;) {
        ssize_t n = fill(s);
        enum mesh_err err = decode(s, fn, ctx, errmsg);
        if (err != MESH_OK)
            return err;
        if (s->state == CLI_TAP_DONE)
            return MESH_OK;
        if (n == 0)
            return MESH_OK; /* nothing more for now */
        if (n < 0) {
            *errmsg = xasprintf("proxy %s closed the tap before its end (%s)", name_of(s),
                                errno ? strerror(errno) : "connection closed");
            return MESH_E_UNAVAILABLE;
        }
    }
}

void cli_tap_stream_close(struct cli_tap_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->proxy);
    free(s->admin);
    s->proxy = s->admin = NULL;
    mesh_strbuf_free(&s->in);
    mesh_strbuf_free(&s->line);
}
