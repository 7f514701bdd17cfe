/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/http_client against a tiny scripted HTTP server on a loopback thread,
 * and of https:// (net/http_client_tls.c) against meshd's own server (http/server.c) serving
 * TLS on another thread, with certificates made in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/server.h"
#include "net/http_client.h"
#include "net/http_client_tls.h"
#include "net/loop.h"
#include "net/tls.h"
#include "tls_test_certs.h"

/* How the server answers each request. */
enum mode {
    MODE_OK,           /* 200, two wanted headers, body "hello" */
    MODE_ERROR_JSON,   /* 409 with a docs/api.md error body */
    MODE_BIG,          /* 200 with a 100000-byte body */
    MODE_SILENT,       /* reads the request, never answers */
    MODE_CLOSE,        /* reads the request, closes the connection */
    MODE_CONTINUE,     /* a 100 Continue block carrying x-mesh-version, then 200 without it */
    MODE_CHUNKED,      /* 200, chunked "hello, world" in pieces, with an extension and a trailer */
    MODE_CHUNKED_BIG,  /* 200, chunked: 100 chunks of 1000 bytes */
    MODE_UNTIL_CLOSE,  /* 200 without Content-Length: the body ends when the server closes */
    MODE_IDLE_CLOSE,   /* MODE_OK, then the server closes the connection at once */
    MODE_SECOND_DROP,  /* answers a connection's first request; closes on its second */
    MODE_SECOND_LATE,  /* same, but closes 1.2 s after reading the second request */
    MODE_CLOSE_HEADER, /* MODE_OK plus "Connection: close", then waits for the client to close */
    MODE_SHORT_BODY,   /* Content-Length: 10, three bytes, close */
    MODE_BAD_CHUNKED,  /* a chunked body whose first size line is not hex */
    MODE_NOT_HTTP,     /* a line that is not an HTTP status line */
    MODE_CANCEL_FIRST, /* sets *cancel_flag, then answers as MODE_OK */
};

struct server {
    int fd;
    int port;
    pthread_t thread;
    _Atomic enum mode mode;
    atomic_int stop;
    pthread_mutex_t lock;
    int accepts;             /* connections accepted */
    int requests;            /* requests read */
    char head[4096];         /* the last request's head */
    char body[4096];         /* the last request's body */
    atomic_int *cancel_flag; /* MODE_CANCEL_FIRST */
};

static ssize_t read_some(int fd, char *buf, size_t n)
{
    ssize_t r;
    do {
        r = read(fd, buf, n);
    } while (r < 0 && errno == EINTR);
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one request (head + content-length body) from fd. 0 on success, -1 on EOF or error. */
static int read_request(struct server *s, int fd)
{
    char buf[8192] = "";
    size_t len = 0;
    char *end = NULL;

    while (!(end = strstr(buf, "\r\n\r\n"))) {
        if (len + 1 >= sizeof(buf))
            return -1;
        ssize_t r = read_some(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
    size_t head_len = (size_t)(end - buf) + 4;
    size_t body_len = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2)
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            body_len = strtoul(p + 15, NULL, 10);
    while (len < head_len + body_len && len + 1 < sizeof(buf)) {
        ssize_t r = read_some(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
    pthread_mutex_lock(&s->lock);
    s->requests++;
    snprintf(s->head, sizeof(s->head), "%.*s", (int)head_len, buf);
    snprintf(s->body, sizeof(s->body), "%.*s", (int)body_len, buf + head_len);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Waits until the client closes fd or the test stops the server. */
static void wait_for_close(struct server *s, int fd)
{
    char c;
    for (int i = 0; i < 100 && !atomic_load(&s->stop); i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0 && read_some(fd, &c, 1) <= 0)
            return;
    }
}

/* Serves requests on one connection until the client closes it. */
static void serve_connection(struct server *s, int fd)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\n"
                             "X-Mesh-Version: 9f1c0a7e3b2d4c11\r\n"
                             "retry-after:  7 \r\n"
                             "Content-Length: 5\r\n"
                             "\r\n"
                             "hello";
    static const char err_body[] = "{\"error\": {\"status\": 409, \"reason\": \"Conflict\", "
                                   "\"message\": \"VirtualService default/a: stale\"}}";
    static const char cont[] = "HTTP/1.1 100 Continue\r\n"
                               "X-Mesh-Version: old\r\n"
                               "\r\n"
                               "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 2\r\n"
                               "\r\n"
                               "ok";
    static const char *const chunked[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Mesh-Version: "
        "chunky\r\n\r\n5;n=v\r\nhel",
        "lo\r\n7\r",
        "\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
    };
    char head[256];
    int served = 0; /* requests read on this connection */

    while (!atomic_load(&s->stop) && read_request(s, fd) == 0) {
        served++;
        switch ((enum mode)atomic_load(&s->mode)) {
        case MODE_OK:
            /* A HEAD answer has the GET answer's head and no body. */
            write_all(fd, ok, strncmp(s->head, "HEAD ", 5) == 0 ? sizeof(ok) - 6 : sizeof(ok) - 1);
            break;
        case MODE_CHUNKED:
            /* In pieces, so that the client sees the head and the framing split anywhere. */
            for (size_t i = 0; i < sizeof(chunked) / sizeof(chunked[0]); i++) {
                write_all(fd, chunked[i], strlen(chunked[i]));
                sleep_ms(5);
            }
            break;
        case MODE_CHUNKED_BIG: {
            static char chunk[1000 + 16];
            static const char top[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            write_all(fd, top, sizeof(top) - 1);
            for (int i = 0; i < 100; i++) {
                int n = snprintf(chunk, sizeof(chunk), "%s\r\n", i % 2 ? "3E8" : "3e8");
                memset(chunk + n, 'a' + i % 26, 1000);
                memcpy(chunk + n + 1000, "\r\n", 2);
                write_all(fd, chunk, (size_t)n + 1002);
            }
            write_all(fd, "0\r\n\r\n", 5);
            break;
        }
        case MODE_UNTIL_CLOSE: {
            static const char until_close[] = "HTTP/1.1 200 OK\r\nX-Mesh-Version: eof\r\n\r\n"
                                              "read until close";
            write_all(fd, until_close, sizeof(until_close) - 1);
            return;
        }
        case MODE_IDLE_CLOSE:
            write_all(fd, ok, sizeof(ok) - 1);
            return;
        case MODE_SECOND_DROP:
            if (served > 1)
                return;
            write_all(fd, ok, sizeof(ok) - 1);
            break;
        case MODE_SECOND_LATE:
            if (served > 1) {
                sleep_ms(1200);
                return;
            }
            write_all(fd, ok, sizeof(ok) - 1);
            break;
        case MODE_CLOSE_HEADER: {
            static const char closing[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                          "Content-Length: 5\r\n\r\nhello";
            write_all(fd, closing, sizeof(closing) - 1);
            wait_for_close(s, fd);
            return;
        }
        case MODE_SHORT_BODY: {
            static const char short_body[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
            write_all(fd, short_body, sizeof(short_body) - 1);
            return;
        }
        case MODE_BAD_CHUNKED: {
            static const char bad[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "zz\r\nhello\r\n0\r\n\r\n";
            write_all(fd, bad, sizeof(bad) - 1);
            return;
        }
        case MODE_CANCEL_FIRST:
            atomic_store(s->cancel_flag, 1);
            write_all(fd, ok, sizeof(ok) - 1);
            break;
        case MODE_NOT_HTTP: {
            static const char ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
            write_all(fd, ssh, sizeof(ssh) - 1);
            return;
        }
        case MODE_ERROR_JSON:
            snprintf(head, sizeof(head),
                     "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     sizeof(err_body) - 1);
            write_all(fd, head, strlen(head));
            write_all(fd, err_body, sizeof(err_body) - 1);
            break;
        case MODE_BIG: {
            static char big[100000];
            memset(big, 'x', sizeof(big));
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                     sizeof(big));
            write_all(fd, head, strlen(head));
            write_all(fd, big, sizeof(big));
            break;
        }
        case MODE_SILENT:
            wait_for_close(s, fd);
            return;
        case MODE_CLOSE:
            return;
        case MODE_CONTINUE:
            write_all(fd, cont, sizeof(cont) - 1);
            break;
        }
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        pthread_mutex_lock(&s->lock);
        s->accepts++;
        pthread_mutex_unlock(&s->lock);
        serve_connection(s, fd);
        close(fd);
    }
    return NULL;
}

/* A free loopback port: bind to 0, read it back. */
static int listen_loopback(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int server_setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    pthread_mutex_init(&s->lock, NULL);
    s->fd = listen_loopback(&s->port);
    if (pthread_create(&s->thread, NULL, server_main, s) != 0)
        return -1;
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    struct server *s = *state;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return 0;
}

static void url_of(const struct server *s, const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "http://127.0.0.1:%d%s", s->port, path);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void counts(struct server *s, int *accepts, int *requests)
{
    pthread_mutex_lock(&s->lock);
    *accepts = s->accepts;
    *requests = s->requests;
    pthread_mutex_unlock(&s->lock);
}

/* Checks how many connections and requests the server saw since the counts a0/r0. */
static void assert_counts_since(struct server *s, int a0, int r0, int accepts, int requests)
{
    int a, r;
    counts(s, &a, &r);
    assert_int_equal(a - a0, accepts);
    assert_int_equal(r - r0, requests);
}

static void test_http_sends_method_token_body_and_reads_wanted_headers(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    const char *extra[] = {"X-Trace: abc", NULL};
    char url[128], *msg = NULL;

    s->mode = MODE_OK;
    url_of(s, "/v1/apply?dry=1", url, sizeof(url));
    struct mesh_http_request req = {
        .method = "POST",
        .url = url,
        .peer_name = "meshd",
        .token = "s3cret",
        .body = "kind: Service\n",
        .body_len = 14,
        .content_type = "application/yaml",
        .headers = extra,
        .want_headers = {"x-mesh-version", "Retry-After", "X-Absent"},
    };
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_OK);
    assert_null(msg);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(resp.body_len, 5);
    assert_string_equal(resp.header_values[0], "9f1c0a7e3b2d4c11");
    assert_string_equal(resp.header_values[1], "7"); /* trimmed */
    assert_null(resp.header_values[2]);
    assert_string_equal(mesh_http_response_header(&req, &resp, "RETRY-AFTER"), "7");
    assert_null(mesh_http_response_header(&req, &resp, "content-length"));

    pthread_mutex_lock(&s->lock);
    assert_non_null(strstr(s->head, "POST /v1/apply?dry=1 HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s->port);
    assert_non_null(strstr(s->head, host));
    assert_non_null(strstr(s->head, "\r\nUser-Agent: libmesh/"));
    assert_non_null(strstr(s->head, "Content-Length: 14\r\n"));
    assert_non_null(strstr(s->head, "Authorization: Bearer s3cret\r\n"));
    assert_non_null(strstr(s->head, "Content-Type: application/yaml\r\n"));
    assert_non_null(strstr(s->head, "X-Trace: abc\r\n"));
    assert_null(strstr(s->head, "Expect:"));
    assert_string_equal(s->body, "kind: Service\n");
    pthread_mutex_unlock(&s->lock);
    mesh_http_response_clear(&resp);
    mesh_http_response_clear(&resp); /* twice is fine */
}

static void test_http_get_and_bodyless_writes(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128];

    s->mode = MODE_OK;
    url_of(s, "/v1/version", url, sizeof(url));
    struct mesh_http_request req = {.url = url};
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    mesh_http_response_clear(&resp);
    pthread_mutex_lock(&s->lock);
    assert_non_null(strstr(s->head, "GET /v1/version HTTP/1.1\r\n"));
    assert_null(strstr(s->head, "Authorization"));
    assert_null(strstr(s->head, "Content-Length"));
    pthread_mutex_unlock(&s->lock);

    /* A heartbeat: POST with no body still says how long its (empty) body is. */
    req.method = "POST";
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    mesh_http_response_clear(&resp);
    pthread_mutex_lock(&s->lock);
    assert_non_null(strstr(s->head, "POST /v1/version HTTP/1.1\r\n"));
    assert_non_null(strstr(s->head, "Content-Length: 0\r\n"));
    pthread_mutex_unlock(&s->lock);

    req.method = "DELETE";
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    mesh_http_response_clear(&resp);
    pthread_mutex_lock(&s->lock);
    assert_non_null(strstr(s->head, "DELETE /v1/version HTTP/1.1\r\n"));
    pthread_mutex_unlock(&s->lock);
}

static void test_http_client_reuses_its_connection(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];

    s->mode = MODE_OK;
    url_of(s, "/v1/health", url, sizeof(url));
    pthread_mutex_lock(&s->lock);
    int accepts = s->accepts, requests = s->requests;
    pthread_mutex_unlock(&s->lock);

    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 3; i++) {
        struct mesh_http_request req = {.url = url, .token = i == 1 ? "t" : NULL};
        assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
        assert_int_equal(resp.status, 200);
        mesh_http_response_clear(&resp);
    }
    /* The second request's token must not leak into the third (options are reset). */
    pthread_mutex_lock(&s->lock);
    assert_null(strstr(s->head, "Authorization"));
    assert_int_equal(s->requests - requests, 3);
    assert_int_equal(s->accepts - accepts, 1);
    pthread_mutex_unlock(&s->lock);
    mesh_http_client_free(client);
    mesh_http_client_free(NULL);
}

static void test_http_error_status_is_an_answer_and_its_message_parses(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128];

    s->mode = MODE_ERROR_JSON;
    url_of(s, "/v1/apply", url, sizeof(url));
    struct mesh_http_request req = {.method = "PUT", .url = url, .body = "{}", .body_len = 2};
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    assert_int_equal(resp.status, 409);
    assert_int_equal(mesh_http_status_err(resp.status), MESH_E_CONFLICT);
    char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
    assert_string_equal(msg, "VirtualService default/a: stale");
    free(msg);
    mesh_http_response_clear(&resp);
}

static void test_http_error_message_falls_back_to_the_first_line(void **state)
{
    (void)state;
    char *msg = mesh_http_error_message(502, "\n  <html>bad gateway</html>\nmore", 32);
    assert_string_equal(msg, "HTTP 502: <html>bad gateway</html>");
    free(msg);
    msg = mesh_http_error_message(500, "", 0);
    assert_string_equal(msg, "HTTP 500");
    free(msg);
    msg = mesh_http_error_message(400, "{\"error\": \"short form\"}", 23);
    assert_string_equal(msg, "short form");
    free(msg);
    msg = mesh_http_error_message(400, "{\"error\": {\"status\": 400}}", 26);
    assert_string_equal(msg, "HTTP 400: {\"error\": {\"status\": 400}}");
    free(msg);
    char long_line[400];
    memset(long_line, 'a', sizeof(long_line));
    msg = mesh_http_error_message(503, long_line, sizeof(long_line));
    assert_int_equal(strlen(msg), strlen("HTTP 503: ") + 200);
    free(msg);
}

static void test_http_status_maps_to_errors(void **state)
{
    (void)state;
    assert_int_equal(mesh_http_status_err(200), MESH_OK);
    assert_int_equal(mesh_http_status_err(201), MESH_OK);
    assert_int_equal(mesh_http_status_err(204), MESH_OK);
    assert_int_equal(mesh_http_status_err(304), MESH_OK);
    assert_int_equal(mesh_http_status_err(400), MESH_E_INVALID);
    assert_int_equal(mesh_http_status_err(401), MESH_E_INVALID);
    assert_int_equal(mesh_http_status_err(413), MESH_E_INVALID);
    assert_int_equal(mesh_http_status_err(404), MESH_E_NOTFOUND);
    assert_int_equal(mesh_http_status_err(409), MESH_E_CONFLICT);
    assert_int_equal(mesh_http_status_err(405), MESH_E_UNSUPPORTED);
    assert_int_equal(mesh_http_status_err(429), MESH_E_UNAVAILABLE);
    assert_int_equal(mesh_http_status_err(503), MESH_E_UNAVAILABLE);
    assert_int_equal(mesh_http_status_err(500), MESH_E_INTERNAL);
}

static void test_http_refused_connection_names_the_url(void **state)
{
    (void)state;
    struct mesh_http_response resp;
    char url[128], want[128], *msg = NULL;
    int port;

    /* A port that was free a moment ago and has no listener now. */
    int fd = listen_loopback(&port);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/apply", port);
    struct mesh_http_request req = {.url = url, .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_UNAVAILABLE);
    snprintf(want, sizeof(want), "cannot reach meshd at http://127.0.0.1:%d: connection refused",
             port);
    assert_string_equal(msg, want);
    assert_null(resp.body);
    free(msg);
}

static void test_http_silent_server_times_out(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    struct timespec t0;
    char url[128], *msg = NULL;

    s->mode = MODE_SILENT;
    url_of(s, "/v1/proxies/a/config?after=1", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .peer_name = "meshd", .timeout_ms = 300};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_UNAVAILABLE);
    long ms = elapsed_ms(&t0);
    assert_true(ms >= 250 && ms < 3000);
    assert_non_null(strstr(msg, "did not answer GET /v1/proxies/a/config?after=1 within 300 ms"));
    assert_non_null(strstr(msg, "meshd at http://127.0.0.1:"));
    free(msg);
}

static void test_http_closed_without_answer(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    s->mode = MODE_CLOSE;
    url_of(s, "/v1/health", url, sizeof(url));
    struct mesh_http_request req = {.url = url};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(msg, "server at http://127.0.0.1:"));
    assert_non_null(strstr(msg, "closed the connection without answering GET /v1/health"));
    free(msg);
}

static void test_http_body_over_the_limit_fails(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    s->mode = MODE_BIG;
    url_of(s, "/v1/virtualservices", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .max_body = 65536};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_IO);
    assert_non_null(strstr(msg, "is over 65536 bytes"));
    assert_null(resp.body);
    free(msg);

    req.max_body = 100000; /* exactly the size: fine */
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    assert_int_equal(resp.body_len, 100000);
    assert_int_equal(resp.body[100000], '\0');
    mesh_http_response_clear(&resp);
}

static void test_http_interim_response_headers_are_forgotten(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128];

    s->mode = MODE_CONTINUE;
    url_of(s, "/v1/health", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .want_headers = {"x-mesh-version"}};
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "ok");
    assert_null(resp.header_values[0]);
    mesh_http_response_clear(&resp);
}

struct canceller {
    atomic_int *flag;
};

static void *cancel_soon(void *arg)
{
    struct canceller *c = arg;
    struct timespec ts = {.tv_nsec = 100 * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(c->flag, 1);
    return NULL;
}

static void test_http_cancel_stops_a_long_poll(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    struct timespec t0;
    atomic_int flag = 0;
    struct canceller c = {.flag = &flag};
    pthread_t th;
    char url[128], *msg = NULL;

    s->mode = MODE_SILENT;
    url_of(s, "/v1/proxies/a/config", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .timeout_ms = 10000, .cancel = &flag};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pthread_create(&th, NULL, cancel_soon, &c), 0);
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_AGAIN);
    pthread_join(th, NULL);
    assert_true(elapsed_ms(&t0) < 3000);
    assert_non_null(strstr(msg, "cancelled"));
    free(msg);
}

static void test_http_answer_after_cancel_is_not_taken(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    atomic_int flag = 0;
    char url[128], *msg = NULL;
    int a0, r0;

    /* The cancel comes first, the answer right after it (a draining proxy deregisters and meshd
     * then ends its watch): the caller asked to stop, so the answer is dropped. */
    s->cancel_flag = &flag;
    s->mode = MODE_CANCEL_FIRST;
    url_of(s, "/v1/proxies/a/config", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .timeout_ms = 10000, .cancel = &flag};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_AGAIN);
    assert_non_null(strstr(msg, "cancelled"));
    assert_null(resp.body);
    free(msg);

    /* Already cancelled: no connection is even made. */
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_AGAIN);
    free(msg);
    sleep_ms(50);
    assert_counts_since(s, a0, r0, 0, 0);
}

static void test_http_rejects_bad_requests_without_sending(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    s->mode = MODE_OK;
    url_of(s, "/v1/health", url, sizeof(url));
    pthread_mutex_lock(&s->lock);
    int requests = s->requests;
    pthread_mutex_unlock(&s->lock);

    struct mesh_http_request req = {.url = url, .token = "abc\r\nX-Evil: 1"};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_INVALID);
    assert_non_null(strstr(msg, "token"));
    assert_null(strstr(msg, "abc")); /* a token never appears in a message */
    free(msg);

    const char *bad_header[] = {"no colon here", NULL};
    struct mesh_http_request req2 = {.url = url, .headers = bad_header};
    assert_int_equal(mesh_http_do(&req2, &resp, &msg), MESH_E_INVALID);
    free(msg);

    struct mesh_http_request req3 = {.url = "ftp://127.0.0.1/x", .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&req3, &resp, &msg), MESH_E_INVALID);
    assert_non_null(strstr(msg, "bad meshd URL \"ftp://127.0.0.1/x\""));
    free(msg);

    struct mesh_http_request req4 = {.url = NULL};
    assert_int_equal(mesh_http_do(&req4, &resp, &msg), MESH_E_INVALID);
    free(msg);

    /* URLs the client cannot use: each named in the message. */
    static const char *const bad_urls[] = {
        "http://[::1/x",        "http://127.0.0.1:99999/x", "http://127.0.0.1:0/x",
        "http://127.0.0.1:8a/", "http:///v1/health",        "http://a b/x",
        "http://u:p@host/x",    "http://host/a b",          "127.0.0.1:15010/x",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        struct mesh_http_request r = {.url = bad_urls[i], .peer_name = "meshd"};
        char want[128];
        snprintf(want, sizeof(want), "bad meshd URL \"%s\": ", bad_urls[i]);
        assert_int_equal(mesh_http_do(&r, &resp, &msg), MESH_E_INVALID);
        assert_non_null(strstr(msg, want));
        free(msg);
    }

    /* The body's framing is the client's: a caller's Content-Length would contradict it. */
    const char *framing[] = {"content-length : 3", NULL};
    struct mesh_http_request req5 = {.url = url, .headers = framing};
    assert_int_equal(mesh_http_do(&req5, &resp, &msg), MESH_E_INVALID);
    free(msg);

    const char *bad_method[] = {"GET X", "", "G\tT"};
    for (size_t i = 0; i < 3; i++) {
        struct mesh_http_request r = {.url = url, .method = bad_method[i]};
        assert_int_equal(mesh_http_do(&r, &resp, &msg), MESH_E_INVALID);
        assert_non_null(strstr(msg, "bad method"));
        free(msg);
    }

    pthread_mutex_lock(&s->lock);
    assert_int_equal(s->requests, requests);
    pthread_mutex_unlock(&s->lock);
}

static void test_http_reads_a_chunked_body_and_keeps_the_connection(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    s->mode = MODE_CHUNKED;
    url_of(s, "/v1/proxies/a/config", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 2; i++) {
        struct mesh_http_request req = {.url = url,
                                        .want_headers = {"x-mesh-version", "x-trailer"}};
        assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
        assert_int_equal(resp.status, 200);
        assert_string_equal(resp.body, "hello, world");
        assert_int_equal(resp.body_len, 12);
        assert_string_equal(resp.header_values[0], "chunky");
        assert_null(resp.header_values[1]); /* trailers are not headers */
        mesh_http_response_clear(&resp);
    }
    assert_counts_since(s, a0, r0, 1, 2); /* the chunked end left the connection usable */
    mesh_http_client_free(client);
}

static void test_http_chunked_body_counts_against_the_limit(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    s->mode = MODE_CHUNKED_BIG;
    url_of(s, "/v1/virtualservices", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .max_body = 100000}; /* exactly the size */
    assert_int_equal(mesh_http_do(&req, &resp, NULL), MESH_OK);
    assert_int_equal(resp.body_len, 100000);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(resp.body[i * 1000], 'a' + (int)(i % 26));
        assert_int_equal(resp.body[i * 1000 + 999], 'a' + (int)(i % 26));
    }
    assert_int_equal(resp.body[100000], '\0');
    mesh_http_response_clear(&resp);

    req.max_body = 99999;
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_IO);
    assert_non_null(strstr(msg, "the answer to GET /v1/virtualservices is over 99999 bytes"));
    assert_null(resp.body);
    free(msg);
}

static void test_http_reads_a_body_until_close_and_reconnects(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    s->mode = MODE_UNTIL_CLOSE;
    url_of(s, "/v1/health", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 2; i++) {
        struct mesh_http_request req = {.url = url, .want_headers = {"x-mesh-version"}};
        assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
        assert_int_equal(resp.status, 200);
        assert_string_equal(resp.body, "read until close");
        assert_string_equal(resp.header_values[0], "eof");
        mesh_http_response_clear(&resp);
    }
    assert_counts_since(s, a0, r0, 2, 2);

    /* Over the limit when the close comes too late. */
    struct mesh_http_request small = {.url = url, .max_body = 4};
    char *msg = NULL;
    assert_int_equal(mesh_http_client_do(client, &small, &resp, &msg), MESH_E_IO);
    assert_non_null(strstr(msg, "is over 4 bytes"));
    free(msg);
    mesh_http_client_free(client);
}

static void test_http_reconnects_after_an_idle_close(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    s->mode = MODE_IDLE_CLOSE;
    url_of(s, "/v1/health", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 3; i++) {
        struct mesh_http_request req = {.url = url};
        assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
        assert_string_equal(resp.body, "hello");
        mesh_http_response_clear(&resp);
        sleep_ms(20); /* the server's close arrives while the connection is idle */
    }
    assert_counts_since(s, a0, r0, 3, 3);
    mesh_http_client_free(client);
}

static void test_http_resends_once_on_a_stale_connection(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    /* The server takes the second request on a connection and closes without a word: to the
     * client that is a kept-alive connection found dead. */
    s->mode = MODE_SECOND_DROP;
    url_of(s, "/v1/proxies/a/heartbeat", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    struct mesh_http_request req = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
    assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
    mesh_http_response_clear(&resp);
    assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    mesh_http_response_clear(&resp);
    /* Calls 1 and 2 on the first connection, call 2 again on a second one. */
    assert_counts_since(s, a0, r0, 2, 3);
    pthread_mutex_lock(&s->lock);
    assert_string_equal(s->body, "{}");
    pthread_mutex_unlock(&s->lock);
    mesh_http_client_free(client);
}

static void test_http_does_not_resend_after_a_late_close(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;
    int a0, r0;

    /* A server that kept the request a while before dying may have acted on it: no resend. */
    s->mode = MODE_SECOND_LATE;
    url_of(s, "/v1/apply", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    struct mesh_http_request req = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
    assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
    mesh_http_response_clear(&resp);
    assert_int_equal(mesh_http_client_do(client, &req, &resp, &msg), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(msg, "closed the connection without answering POST /v1/apply"));
    free(msg);
    assert_counts_since(s, a0, r0, 1, 2);
    mesh_http_client_free(client);
}

static void test_http_head_reads_no_body(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    s->mode = MODE_OK;
    url_of(s, "/v1/health", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    /* Content-Length: 5 on a HEAD answer announces the GET body; none follows. */
    struct mesh_http_request head = {.method = "HEAD", .url = url, .timeout_ms = 2000};
    assert_int_equal(mesh_http_client_do(client, &head, &resp, NULL), MESH_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "");
    assert_int_equal(resp.body_len, 0);
    mesh_http_response_clear(&resp);
    /* The connection is still in step: the next answer is read whole. */
    struct mesh_http_request get = {.url = url};
    assert_int_equal(mesh_http_client_do(client, &get, &resp, NULL), MESH_OK);
    assert_string_equal(resp.body, "hello");
    mesh_http_response_clear(&resp);
    assert_counts_since(s, a0, r0, 1, 2);
    mesh_http_client_free(client);
}

static void test_http_connection_close_is_honoured(void **state)
{
    struct server *s = *state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128];
    int a0, r0;

    s->mode = MODE_CLOSE_HEADER;
    url_of(s, "/v1/health", url, sizeof(url));
    counts(s, &a0, &r0);
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 2; i++) {
        struct mesh_http_request req = {.url = url, .timeout_ms = 2000};
        assert_int_equal(mesh_http_client_do(client, &req, &resp, NULL), MESH_OK);
        assert_string_equal(resp.body, "hello");
        mesh_http_response_clear(&resp);
    }
    assert_counts_since(s, a0, r0, 2, 2);
    mesh_http_client_free(client);
}

static void test_http_broken_answers_are_named(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    url_of(s, "/v1/health", url, sizeof(url));
    struct mesh_http_request req = {.url = url, .peer_name = "meshd"};

    s->mode = MODE_SHORT_BODY;
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(msg, "meshd at http://127.0.0.1:"));
    assert_non_null(strstr(msg, ": connection lost during GET /v1/health: the connection closed "
                                "with 7 bytes of the body still to come"));
    assert_null(resp.body);
    free(msg);

    s->mode = MODE_BAD_CHUNKED;
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_IO);
    assert_non_null(strstr(msg, "did not answer GET /v1/health in HTTP: bad chunked body"));
    free(msg);

    s->mode = MODE_NOT_HTTP;
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_IO);
    assert_non_null(strstr(msg, "did not answer GET /v1/health in HTTP: "));
    free(msg);
}

static void test_http_refuses_https(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], want[192], *msg = NULL;
    int a0, r0;

    mesh_http_client_set_tls(NULL); /* a program without TLS ops, as meshproxy */
    counts(s, &a0, &r0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", s->port);
    struct mesh_http_request req = {.url = url, .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_INVALID);
    snprintf(want, sizeof(want), "bad meshd URL \"%s\": only http:// is supported", url);
    assert_string_equal(msg, want);
    assert_null(resp.body);
    free(msg);
    assert_counts_since(s, a0, r0, 0, 0);
}

static void test_http_resolves_a_host_name(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], host[64], *msg = NULL;

    s->mode = MODE_OK;
    /* localhost may resolve to ::1 first; the server listens on 127.0.0.1 only. */
    snprintf(url, sizeof(url), "http://localhost:%d/v1/health", s->port);
    struct mesh_http_request req = {.url = url};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_OK);
    assert_null(msg);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    mesh_http_response_clear(&resp);
    snprintf(host, sizeof(host), "\r\nHost: localhost:%d\r\n", s->port);
    pthread_mutex_lock(&s->lock);
    assert_non_null(strstr(s->head, host));
    pthread_mutex_unlock(&s->lock);

    struct mesh_http_request nowhere = {.url = "http://no-such-host.invalid:80/x",
                                        .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&nowhere, &resp, &msg), MESH_E_UNAVAILABLE);
    assert_string_equal(msg, "cannot reach meshd at http://no-such-host.invalid:80: unknown host "
                             "name");
    free(msg);
}

static void test_http_ipv6_literal(void **state)
{
    (void)state;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof(sa);
    struct mesh_http_response resp;
    char url[128], want[160], *msg = NULL;

    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        skip(); /* no IPv6 loopback here */
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    int port = ntohs(sa.sin6_port);
    close(fd); /* bound, never listening: nothing answers there now */
    snprintf(url, sizeof(url), "http://[::1]:%d/v1/health", port);
    struct mesh_http_request req = {.url = url, .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_UNAVAILABLE);
    snprintf(want, sizeof(want), "cannot reach meshd at http://[::1]:%d: connection refused", port);
    assert_string_equal(msg, want);
    free(msg);
}

struct worker {
    const char *url;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;

    for (int i = 0; i < 10; i++) {
        struct mesh_http_request req = {.url = w->url};
        /* Half one-shot calls, half on the thread's own client (closed after each call so the
         * one-connection-at-a-time test server can move on). */
        if (i % 2 == 0) {
            if (mesh_http_do(&req, &resp, NULL) == MESH_OK && resp.status == 200)
                w->ok++;
        } else {
            if (mesh_http_client_new(&client) != MESH_OK)
                continue;
            if (mesh_http_client_do(client, &req, &resp, NULL) == MESH_OK && resp.status == 200)
                w->ok++;
            mesh_http_client_free(client);
        }
        mesh_http_response_clear(&resp);
    }
    return NULL;
}

static void test_http_works_from_several_threads(void **state)
{
    struct server *s = *state;
    struct worker w[4];
    pthread_t th[4];
    char url[128];

    s->mode = MODE_OK;
    url_of(s, "/v1/version", url, sizeof(url));
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.url = url};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 10);
    }
}

/* --- https:// --- */

/* meshd's HTTP server with TLS on its own loop thread. */
struct tls_server {
    struct test_cert ca, other_ca, cert;
    char ca_file[64], other_ca_file[64];
    struct mesh_tls_ctx *tls;
    struct mesh_loop loop;
    struct mesh_httpd *httpd;
    int port;
    pthread_t thread;
    atomic_int stop;
};

static struct tls_server TS;

/* GET: "hello tls"; POST: the body's length. */
static void tls_handler(struct mesh_httpd_req *req, void *data)
{
    char text[64];
    (void)data;
    int n = req->head->method_id == MESH_H1_M_POST
                ? snprintf(text, sizeof(text), "got %zu bytes", req->body_len)
                : snprintf(text, sizeof(text), "hello tls");
    mesh_httpd_respond(req, 200, "content-type: text/plain\r\n", text, (size_t)n);
}

static void *tls_server_main(void *arg)
{
    struct tls_server *t = arg;
    while (!atomic_load(&t->stop))
        mesh_loop_run_once(&t->loop, 20);
    return NULL;
}

static void write_temp(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/test_http_tls.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void tls_server_start(void)
{
    char bound[64], msg[256], *err = NULL;
    TS.ca = test_cert_make("Test CA", true, -3600, 86400, NULL, NULL);
    TS.other_ca = test_cert_make("Other CA", true, -3600, 86400, NULL, NULL);
    TS.cert = test_cert_make("meshd", false, -3600, 86400, "DNS:localhost,IP:127.0.0.1", &TS.ca);
    write_temp(TS.ca_file, sizeof(TS.ca_file), TS.ca.cert_pem);
    write_temp(TS.other_ca_file, sizeof(TS.other_ca_file), TS.other_ca.cert_pem);
    struct mesh_tls_options topt = {
        .server = true, .cert_pem = TS.cert.cert_pem, .key_pem = TS.cert.key_pem};
    assert_int_equal(mesh_tls_ctx_new(&topt, &TS.tls, &err), MESH_OK);
    assert_int_equal(mesh_loop_init(&TS.loop), MESH_OK);
    struct mesh_httpd_options hopt = {.handler = tls_handler, .tls = TS.tls};
    assert_int_equal(mesh_httpd_new(&TS.loop, &hopt, &TS.httpd), MESH_OK);
    assert_int_equal(
        mesh_httpd_listen(TS.httpd, "127.0.0.1:0", bound, sizeof(bound), msg, sizeof(msg)),
        MESH_OK);
    TS.port = atoi(strrchr(bound, ':') + 1);
    atomic_store(&TS.stop, 0);
    assert_int_equal(pthread_create(&TS.thread, NULL, tls_server_main, &TS), 0);
}

static void tls_server_stop(void)
{
    atomic_store(&TS.stop, 1);
    pthread_join(TS.thread, NULL);
    mesh_httpd_free(TS.httpd);
    mesh_loop_close(&TS.loop);
    mesh_tls_ctx_free(TS.tls);
    unlink(TS.ca_file);
    unlink(TS.other_ca_file);
    test_cert_free(&TS.ca);
    test_cert_free(&TS.other_ca);
    test_cert_free(&TS.cert);
}

static void test_https_get_post_and_keep_alive(void **state)
{
    (void)state;
    struct mesh_http_client *client = NULL;
    struct mesh_http_response resp;
    char url[128], *msg = NULL;

    mesh_http_client_tls_install();
    tls_server_start();
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", TS.port);
    struct mesh_http_request req = {.url = url, .peer_name = "meshd", .ca_file = TS.ca_file};
    assert_int_equal(mesh_http_client_new(&client), MESH_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mesh_http_client_do(client, &req, &resp, &msg), MESH_OK);
        assert_null(msg);
        assert_int_equal(resp.status, 200);
        assert_string_equal(resp.body, "hello tls");
        mesh_http_response_clear(&resp);
    }
    /* One connection, one handshake, for the three. */
    assert_int_equal(mesh_httpd_tls_stats(TS.httpd).handshakes, 1);

    /* A 1 MiB body goes out in many records; a DNS name is verified as well as an address. */
    size_t big = 1u << 20;
    char *body = malloc(big);
    memset(body, 'x', big);
    snprintf(url, sizeof(url), "https://localhost:%d/v1/apply", TS.port);
    struct mesh_http_request post = {
        .method = "POST", .url = url, .body = body, .body_len = big, .ca_file = TS.ca_file};
    assert_int_equal(mesh_http_client_do(client, &post, &resp, &msg), MESH_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "got 1048576 bytes");
    mesh_http_response_clear(&resp);
    free(body);
    mesh_http_client_free(client);

    /* The default CA bundle serves requests that name none. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", TS.port);
    struct mesh_http_request plain_req = {.url = url};
    mesh_http_client_tls_set_default_ca(TS.ca_file);
    assert_int_equal(mesh_http_do(&plain_req, &resp, &msg), MESH_OK);
    assert_string_equal(resp.body, "hello tls");
    mesh_http_response_clear(&resp);
    mesh_http_client_tls_set_default_ca(NULL);
    tls_server_stop();
}

static void test_https_refusals_are_named(void **state)
{
    struct server *s = *state;
    struct mesh_http_response resp;
    char url[128], want[512], *msg = NULL;

    mesh_http_client_tls_install();
    tls_server_start();
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", TS.port);

    /* The system trust store does not know the test CA. */
    struct mesh_http_request req = {.url = url, .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_TLS);
    snprintf(want, sizeof(want),
             "cannot reach meshd at https://127.0.0.1:%d: TLS: certificate verify failed (unknown "
             "CA): unable to get local issuer certificate (CN=meshd): pass --cacert FILE (or set "
             "$MESH_CACERT) naming the CA bundle that signed the server's certificate",
             TS.port);
    assert_string_equal(msg, want);
    assert_null(resp.body);
    free(msg);

    /* A bundle without the CA is named. */
    req.ca_file = TS.other_ca_file;
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_TLS);
    snprintf(want, sizeof(want), "(CN=meshd): %s does not hold the CA that signed the server's",
             TS.other_ca_file);
    assert_non_null(strstr(msg, want));
    free(msg);

    /* A bundle that cannot be read. */
    req.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(mesh_http_do(&req, &resp, &msg), MESH_E_TLS);
    snprintf(want, sizeof(want),
             "cannot reach meshd at https://127.0.0.1:%d: TLS: cannot read /nonexistent/ca.pem: "
             "No such file or directory",
             TS.port);
    assert_string_equal(msg, want);
    free(msg);

    /* Plaintext to the TLS port: closed without an answer, counted by the server. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/health", TS.port);
    struct mesh_http_request plain = {.url = url, .peer_name = "meshd"};
    assert_int_equal(mesh_http_do(&plain, &resp, &msg), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(msg, "closed the connection without answering GET /v1/health (if it "
                                "serves HTTPS, use an https:// URL)"));
    free(msg);
    assert_int_equal(mesh_httpd_tls_stats(TS.httpd).plaintext, 1);
    tls_server_stop();

    /* https:// to a server that waits for a plaintext request: the handshake times out. */
    s->mode = MODE_OK;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", s->port);
    struct mesh_http_request to_plain = {
        .url = url, .peer_name = "meshd", .connect_timeout_ms = 300};
    assert_int_equal(mesh_http_do(&to_plain, &resp, &msg), MESH_E_UNAVAILABLE);
    snprintf(want, sizeof(want),
             "cannot reach meshd at https://127.0.0.1:%d: TLS: no handshake within 300 ms",
             s->port);
    assert_string_equal(msg, want);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_sends_method_token_body_and_reads_wanted_headers),
        cmocka_unit_test(test_http_get_and_bodyless_writes),
        cmocka_unit_test(test_http_client_reuses_its_connection),
        cmocka_unit_test(test_http_error_status_is_an_answer_and_its_message_parses),
        cmocka_unit_test(test_http_error_message_falls_back_to_the_first_line),
        cmocka_unit_test(test_http_status_maps_to_errors),
        cmocka_unit_test(test_http_refused_connection_names_the_url),
        cmocka_unit_test(test_http_silent_server_times_out),
        cmocka_unit_test(test_http_closed_without_answer),
        cmocka_unit_test(test_http_body_over_the_limit_fails),
        cmocka_unit_test(test_http_interim_response_headers_are_forgotten),
        cmocka_unit_test(test_http_cancel_stops_a_long_poll),
        cmocka_unit_test(test_http_answer_after_cancel_is_not_taken),
        cmocka_unit_test(test_http_rejects_bad_requests_without_sending),
        cmocka_unit_test(test_http_works_from_several_threads),
        cmocka_unit_test(test_http_reads_a_chunked_body_and_keeps_the_connection),
        cmocka_unit_test(test_http_chunked_body_counts_against_the_limit),
        cmocka_unit_test(test_http_reads_a_body_until_close_and_reconnects),
        cmocka_unit_test(test_http_reconnects_after_an_idle_close),
        cmocka_unit_test(test_http_resends_once_on_a_stale_connection),
        cmocka_unit_test(test_http_does_not_resend_after_a_late_close),
        cmocka_unit_test(test_http_head_reads_no_body),
        cmocka_unit_test(test_http_connection_close_is_honoured),
        cmocka_unit_test(test_http_broken_answers_are_named),
        cmocka_unit_test(test_http_refuses_https),
        cmocka_unit_test(test_https_get_post_and_keep_alive),
        cmocka_unit_test(test_https_refusals_are_named),
        cmocka_unit_test(test_http_resolves_a_host_name),
        cmocka_unit_test(test_http_ipv6_literal),
    };
    /* One server for the whole suite; each test sets its mode first. */
    return cmocka_run_group_tests(tests, server_setup, server_teardown);
}
