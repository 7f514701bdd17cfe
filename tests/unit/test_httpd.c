/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/http/server: a real server on a loopback port, driven by the test's loop,
 * and a blocking client in a second thread. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/server.h"
#include "net/loop.h"

/* --- the server under test --- */

struct fixture {
    struct mesh_loop loop;
    struct mesh_httpd *srv;
    int port;
    struct mesh_httpd_req *held; /* a deferred request waiting for late_timer */
    struct mesh_timer late_timer;
    int gone_calls;
    int handled;
};

static struct fixture fx;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_gone(struct mesh_httpd_req *req, void *data)
{
    (void)data;
    if (fx.held == req) {
        fx.held = NULL;
        mesh_timer_stop(&fx.loop, &fx.late_timer);
    }
    fx.gone_calls++;
}

static void on_late(struct mesh_timer *t, void *data)
{
    (void)t;
    (void)data;
    struct mesh_httpd_req *req = fx.held;
    fx.held = NULL;
    if (req)
        assert_int_equal(mesh_httpd_respond(req, 200, NULL, "late", 4), MESH_OK);
}

/* /echo answers "METHOD PATH BODY"; /defer answers "late" 50 ms later from a timer; /hold is
 * kept until its client goes away; /none gets no answer from the handler. */
static void handler(struct mesh_httpd_req *req, void *data)
{
    (void)data;
    fx.handled++;
    const struct mesh_h1_message *m = req->head;
    if (mesh_slice_eq_cstr(m->path, "/defer") || mesh_slice_eq_cstr(m->path, "/hold")) {
        assert_null(fx.held);
        fx.held = req;
        mesh_httpd_defer(req, on_gone, NULL);
        if (mesh_slice_eq_cstr(m->path, "/defer"))
            mesh_timer_start(&fx.loop, &fx.late_timer, 50);
        return;
    }
    if (mesh_slice_eq_cstr(m->path, "/none"))
        return;
    if (mesh_slice_eq_cstr(m->path, "/big")) {
        size_t len = 8u << 20; /* more than the socket buffers hold */
        char *big = calloc(1, len);
        assert_non_null(big);
        assert_int_equal(mesh_httpd_respond(req, 200, NULL, big, len), MESH_OK);
        free(big);
        return;
    }
    size_t cap = m->method.len + m->path.len + req->body_len + 3;
    char *text = malloc(cap);
    assert_non_null(text);
    int n = snprintf(text, cap, "%.*s %.*s ", (int)m->method.len, m->method.p, (int)m->path.len,
                     m->path.p);
    memcpy(text + n, req->body, req->body_len);
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "x-peer: %s%s\r\n", req->peer, req->peer_loopback ? " loop" : "");
    assert_int_equal(mesh_httpd_respond(req, 200, hdr, text, (size_t)n + req->body_len), MESH_OK);
    assert_int_equal(mesh_httpd_respond(req, 200, NULL, "x", 1), MESH_E_INVALID);
    free(text);
}

static char *json_error(int status, const char *message, const char **ctype, void *data)
{
    (void)data;
    *ctype = "application/json";
    char *out = malloc(256);
    assert_non_null(out);
    snprintf(out, 256, "{\"status\":%d,\"message\":\"%s\"}", status, message);
    return out;
}

static void start(const struct mesh_httpd_options *extra)
{
    memset(&fx, 0, sizeof(fx));
    assert_int_equal(mesh_loop_init(&fx.loop), MESH_OK);
    mesh_timer_init(&fx.late_timer, on_late, NULL);
    struct mesh_httpd_options opt = {0};
    if (extra)
        opt = *extra;
    opt.handler = handler;
    assert_int_equal(mesh_httpd_new(&fx.loop, &opt, &fx.srv), MESH_OK);
    char bound[64], msg[256];
    assert_int_equal(
        mesh_httpd_listen(fx.srv, "127.0.0.1:0", bound, sizeof(bound), msg, sizeof(msg)), MESH_OK);
    assert_true(strncmp(bound, "127.0.0.1:", 10) == 0);
    fx.port = atoi(bound + 10);
    assert_true(fx.port > 0);
}

static void stop(void)
{
    mesh_timer_stop(&fx.loop, &fx.late_timer);
    mesh_httpd_free(fx.srv);
    mesh_loop_close(&fx.loop);
}

/* --- the client thread --- */

/* cmocka's assertions jump out of the test: only the main thread may use them. A client
 * thread records its first failure here instead; with_client checks it. */
static char client_error[256];

#define CLIENT_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!client_error[0])                                                                  \
                snprintf(client_error, sizeof(client_error), "%s:%d: %s", __FILE__, __LINE__,      \
                         #cond);                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

typedef void (*client_fn)(void *arg);

struct client_run {
    client_fn fn;
    void *arg;
    atomic_bool done;
};

static void *client_main(void *p)
{
    struct client_run *r = p;
    r->fn(r->arg);
    atomic_store(&r->done, true);
    return NULL;
}

/* Runs fn in a thread while the loop turns; fails after 10 s. */
static void with_client(client_fn fn, void *arg)
{
    struct client_run r = {fn, arg, false};
    pthread_t t;
    client_error[0] = '\0';
    assert_int_equal(pthread_create(&t, NULL, client_main, &r), 0);
    uint64_t deadline = now_ms() + 10000;
    while (!atomic_load(&r.done) && now_ms() < deadline)
        mesh_loop_run_once(&fx.loop, 5);
    assert_true(atomic_load(&r.done));
    pthread_join(t, NULL);
    if (client_error[0])
        fail_msg("client: %s", client_error);
}

/* Turns the loop until cond holds or ms pass. */
static bool pump_until(bool (*cond)(void), uint64_t ms)
{
    uint64_t deadline = now_ms() + ms;
    while (!cond() && now_ms() < deadline)
        mesh_loop_run_once(&fx.loop, 5);
    return cond();
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

struct response {
    int status;
    char headers[1024];
    char body[512];
    size_t body_len;
};

/* What the client saw: the responses in order and whether the server closed. */
struct exchange {
    struct response resp[8];
    int n;
    bool closed;
    char raw[65536];
    size_t raw_len;
};

/* Reads until want responses are complete, or the server closes, or 5 s pass. */
static void read_responses(int fd, struct exchange *ex, int want, bool until_close)
{
    size_t pos = 0;
    for (;;) {
        /* Parse every complete response from pos on. */
        for (;;) {
            size_t head_len = 0;
            for (size_t i = pos; i + 4 <= ex->raw_len && !head_len; i++)
                if (memcmp(ex->raw + i, "\r\n\r\n", 4) == 0)
                    head_len = i + 4 - pos;
            if (!head_len || ex->n >= 8)
                break;
            struct response *r = &ex->resp[ex->n];
            memset(r, 0, sizeof(*r));
            r->status = atoi(ex->raw + pos + 9);
            size_t hl = head_len < sizeof(r->headers) - 1 ? head_len : sizeof(r->headers) - 1;
            memcpy(r->headers, ex->raw + pos, hl);
            size_t clen = 0;
            const char *cl = strstr(r->headers, "content-length: ");
            if (cl)
                clen = (size_t)atoi(cl + 16);
            if (ex->raw_len - pos < head_len + clen)
                break;
            r->body_len = clen < sizeof(r->body) - 1 ? clen : sizeof(r->body) - 1;
            memcpy(r->body, ex->raw + pos + head_len, r->body_len);
            pos += head_len + clen;
            ex->n++;
        }
        if (ex->n >= want && !until_close)
            return;
        if (ex->raw_len >= sizeof(ex->raw))
            return;
        ssize_t n = recv(fd, ex->raw + ex->raw_len, sizeof(ex->raw) - ex->raw_len, 0);
        if (n <= 0) {
            ex->closed = n == 0 || errno == ECONNRESET;
            return;
        }
        ex->raw_len += (size_t)n;
    }
}

struct script {
    const char *send; /* sent at once */
    int want;         /* responses to wait for */
    bool until_close;
    struct exchange ex;
    bool keep_open; /* leave the socket open: fd is returned */
    int fd;
};

static void run_script(void *arg)
{
    struct script *s = arg;
    s->fd = connect_port(fx.port);
    CLIENT_CHECK(s->fd >= 0);
    if (s->send)
        CLIENT_CHECK(send_all(s->fd, s->send, strlen(s->send)));
    read_responses(s->fd, &s->ex, s->want, s->until_close);
    if (!s->keep_open)
        close(s->fd);
}

/* --- tests --- */

static void test_httpd_keeps_alive_and_reports_peer(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                       .want = 2};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 2);
    assert_int_equal(s.ex.resp[0].status, 200);
    assert_string_equal(s.ex.resp[0].body, "GET /a ");
    assert_string_equal(s.ex.resp[1].body, "GET /b ");
    assert_non_null(strstr(s.ex.resp[0].headers, "x-peer: 127.0.0.1 loop\r\n"));
    assert_null(strstr(s.ex.resp[1].headers, "connection: close"));
    assert_false(s.ex.closed);
    stop();
}

static void test_httpd_answers_pipelined_requests_in_order_around_a_deferred_one(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
                               "POST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                       .want = 3};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 3);
    assert_string_equal(s.ex.resp[0].body, "GET /one ");
    assert_string_equal(s.ex.resp[1].body, "late");
    assert_string_equal(s.ex.resp[2].body, "POST /three abc");
    stop();
}

static void test_httpd_decodes_chunked_bodies(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: t\r\n\r\n"
                               "GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
                       .want = 2};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 2);
    assert_string_equal(s.ex.resp[0].body, "PUT /c Wikipedia");
    assert_string_equal(s.ex.resp[1].body, "GET /after ");
    stop();
}

/* A body sent in pieces, slowly, arrives whole. */
static void slow_body(void *arg)
{
    struct script *s = arg;
    static const char digits[] = "0123456789";
    s->fd = connect_port(fx.port);
    CLIENT_CHECK(s->fd >= 0);
    const char *head = "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
    CLIENT_CHECK(send_all(s->fd, head, strlen(head)));
    for (int i = 0; i < 10; i++) {
        usleep(5000);
        CLIENT_CHECK(send_all(s->fd, digits + i, 1));
    }
    read_responses(s->fd, &s->ex, 1, false);
    close(s->fd);
}

/* A pipelined request whose large body arrives later: the input buffer is compacted and grown
 * under a parsed head, which must still read right when the handler sees it. */
static void growing_body(void *arg)
{
    struct script *s = arg;
    static char chunk[10000];
    memset(chunk, 'b', sizeof(chunk));
    s->fd = connect_port(fx.port);
    CLIENT_CHECK(s->fd >= 0);
    const char *head = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /grow HTTP/1.1\r\nHost: x\r\nX-Pad: 0123456789\r\n"
                       "Content-Length: 40000\r\n\r\n";
    CLIENT_CHECK(send_all(s->fd, head, strlen(head)));
    for (int i = 0; i < 4; i++) {
        usleep(10000);
        CLIENT_CHECK(send_all(s->fd, chunk, sizeof(chunk)));
    }
    read_responses(s->fd, &s->ex, 2, false);
    close(s->fd);
}

static void test_httpd_keeps_the_head_right_while_the_buffer_moves(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {0};
    with_client(growing_body, &s);
    assert_int_equal(s.ex.n, 2);
    assert_string_equal(s.ex.resp[0].body, "GET /first ");
    assert_int_equal(s.ex.resp[1].status, 200);
    assert_non_null(strstr(s.ex.resp[1].headers, "content-length: 40011\r\n"));
    assert_true(strncmp(s.ex.resp[1].body, "POST /grow bbbb", 15) == 0);
    stop();
}

static void test_httpd_reads_a_body_sent_in_pieces(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {0};
    with_client(slow_body, &s);
    assert_int_equal(s.ex.n, 1);
    assert_string_equal(s.ex.resp[0].body, "POST /slow 0123456789");
    stop();
}

static void test_httpd_refuses_a_declared_oversize_body_with_413_and_closes(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.max_body = 16, .error_body = json_error};
    start(&opt);
    struct script s = {.send = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n"
                               "01234567890123456",
                       .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 413);
    assert_non_null(strstr(s.ex.resp[0].headers, "content-type: application/json\r\n"));
    assert_non_null(strstr(s.ex.resp[0].headers, "connection: close\r\n"));
    assert_non_null(strstr(s.ex.resp[0].body, "\"status\":413"));
    assert_true(s.ex.closed);
    assert_int_equal(fx.handled, 0);
    stop();
}

static void test_httpd_refuses_an_oversize_chunked_body_with_413(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.max_body = 8};
    start(&opt);
    struct script s = {.send = "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n",
                       .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 413);
    assert_true(s.ex.closed);
    assert_int_equal(fx.handled, 0);
    stop();
}

static void test_httpd_answers_bad_chunked_framing_with_400(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "zz\r\nabc\r\n",
                       .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 400);
    assert_non_null(strstr(s.ex.resp[0].body, "bad_chunk_size"));
    assert_true(s.ex.closed);
    stop();
}

static void test_httpd_answers_a_malformed_head_with_its_status_and_closes(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n",
                       .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 400);
    assert_non_null(strstr(s.ex.resp[0].body, "cl_te_conflict"));
    assert_true(s.ex.closed);

    struct script v = {.send = "GET / HTTP/2.0\r\nHost: x\r\n\r\n", .until_close = true};
    with_client(run_script, &v);
    assert_int_equal(v.ex.n, 1);
    assert_int_equal(v.ex.resp[0].status, 505);
    assert_int_equal(fx.handled, 0);
    stop();
}

static void test_httpd_times_out_a_slow_head_with_408(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.header_timeout_ms = 100};
    start(&opt);
    uint64_t t0 = now_ms();
    struct script s = {.send = "GET / HTTP/1.1\r\nHo", .until_close = true};
    with_client(run_script, &s);
    uint64_t took = now_ms() - t0;
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 408);
    assert_true(s.ex.closed);
    assert_true(took >= 100 && took < 3000);
    stop();
}

static void test_httpd_closes_idle_keep_alive_connections(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.idle_timeout_ms = 100};
    start(&opt);
    uint64_t t0 = now_ms();
    struct script s = {.send = "GET / HTTP/1.1\r\nHost: x\r\n\r\n", .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 200);
    assert_true(s.ex.closed);
    assert_true(now_ms() - t0 >= 100);
    assert_int_equal(mesh_httpd_connections(fx.srv), 0);
    stop();
}

static void test_httpd_closes_after_an_http10_request(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /old HTTP/1.0\r\n\r\n", .until_close = true};
    with_client(run_script, &s);
    assert_int_equal(s.ex.n, 1);
    assert_string_equal(s.ex.resp[0].body, "GET /old ");
    assert_true(s.ex.closed);

    struct script k = {.send = "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .want = 1};
    with_client(run_script, &k);
    assert_non_null(strstr(k.ex.resp[0].headers, "connection: keep-alive\r\n"));
    stop();
}

static void test_httpd_leaves_the_body_out_of_head_answers(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       .until_close = true};
    with_client(run_script, &s);
    /* The HEAD answer says content-length 8 but carries no body: the GET answer follows. */
    assert_non_null(strstr(s.ex.raw, "content-length: 8\r\n"));
    assert_non_null(strstr(s.ex.raw, "\r\n\r\nHTTP/1.1 200 OK\r\n"));
    assert_null(strstr(s.ex.raw, "HEAD /h"));
    assert_non_null(strstr(s.ex.raw, "GET /g "));
    stop();
}

static void test_httpd_answers_500_when_the_handler_gives_no_answer(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /none HTTP/1.1\r\nHost: x\r\n\r\n", .want = 1};
    with_client(run_script, &s);
    assert_int_equal(s.ex.resp[0].status, 500);
    stop();
}

/* Expect: 100-continue gets its interim answer before the body is sent. */
static void expect_continue(void *arg)
{
    struct script *s = arg;
    s->fd = connect_port(fx.port);
    CLIENT_CHECK(s->fd >= 0);
    const char *head = "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       "Expect: 100-continue\r\n\r\n";
    CLIENT_CHECK(send_all(s->fd, head, strlen(head)));
    char buf[64] = {0};
    ssize_t n = recv(s->fd, buf, sizeof(buf) - 1, 0);
    CLIENT_CHECK(n > 0);
    CLIENT_CHECK(strcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    CLIENT_CHECK(send_all(s->fd, "xyz", 3));
    read_responses(s->fd, &s->ex, 1, false);
    close(s->fd);
}

static void test_httpd_sends_100_continue(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {0};
    with_client(expect_continue, &s);
    assert_int_equal(s.ex.n, 1);
    assert_string_equal(s.ex.resp[0].body, "PUT /e xyz");
    stop();
}

/* Asks for a large answer and never reads it. */
static void stalled_reader(void *arg)
{
    struct script *s = arg;
    s->fd = connect_port(fx.port);
    CLIENT_CHECK(s->fd >= 0);
    const char *req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    CLIENT_CHECK(send_all(s->fd, req, strlen(req)));
}

static bool no_connections(void)
{
    return mesh_httpd_connections(fx.srv) == 0;
}

static void test_httpd_closes_a_connection_whose_client_stops_reading(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.idle_timeout_ms = 150};
    start(&opt);
    struct script s = {0};
    with_client(stalled_reader, &s);
    assert_true(pump_until(no_connections, 5000));
    close(s.fd);
    stop();
}

static bool one_gone(void)
{
    return fx.gone_calls == 1;
}

/* The client thread is done once its bytes are sent; the server may not
 * have read them yet. */
static bool request_held(void)
{
    return fx.held != NULL;
}

static void test_httpd_tells_a_deferred_request_its_client_went_away(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", .keep_open = true};
    with_client(run_script, &s);
    assert_true(pump_until(request_held, 3000));
    assert_int_equal(fx.gone_calls, 0);
    close(s.fd);
    assert_true(pump_until(one_gone, 3000));
    assert_null(fx.held);
    assert_int_equal(mesh_httpd_connections(fx.srv), 0);
    stop();
}

static void test_httpd_free_calls_gone_for_deferred_requests(void **state)
{
    (void)state;
    start(NULL);
    struct script s = {.send = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", .keep_open = true};
    with_client(run_script, &s);
    assert_true(pump_until(request_held, 3000));
    stop();
    assert_int_equal(fx.gone_calls, 1);
    close(s.fd);
}

/* Two connections are held open; the third is refused with 503. */
static void connection_limit(void *arg)
{
    struct script *s = arg;
    int a = connect_port(fx.port), b = connect_port(fx.port);
    struct exchange ea = {0}, eb = {0};
    const char *req = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    CLIENT_CHECK(a >= 0 && b >= 0);
    CLIENT_CHECK(send_all(a, req, strlen(req)));
    read_responses(a, &ea, 1, false);
    CLIENT_CHECK(send_all(b, req, strlen(req)));
    read_responses(b, &eb, 1, false);
    CLIENT_CHECK(ea.resp[0].status == 200);
    CLIENT_CHECK(eb.resp[0].status == 200);
    int c = connect_port(fx.port);
    CLIENT_CHECK(c >= 0);
    read_responses(c, &s->ex, 1, true);
    close(c);
    close(a);
    close(b);
}

static void test_httpd_refuses_connections_over_the_limit(void **state)
{
    (void)state;
    struct mesh_httpd_options opt = {.max_connections = 2, .error_body = json_error};
    start(&opt);
    struct script s = {0};
    with_client(connection_limit, &s);
    assert_true(s.ex.closed);
    assert_int_equal(s.ex.n, 1);
    assert_int_equal(s.ex.resp[0].status, 503);
    assert_non_null(strstr(s.ex.resp[0].headers, "content-type: application/json\r\n"));
    assert_non_null(strstr(s.ex.resp[0].body, "too many connections"));
    stop();
}

static void test_httpd_listen_reports_a_bad_address(void **state)
{
    (void)state;
    start(NULL);
    char msg[256] = "";
    assert_int_not_equal(mesh_httpd_listen(fx.srv, "127.0.0.1:99999", NULL, 0, msg, sizeof(msg)),
                         MESH_OK);
    assert_non_null(strstr(msg, "127.0.0.1:99999"));
    char bound[64];
    char taken[64];
    snprintf(taken, sizeof(taken), "127.0.0.1:%d", fx.port);
    assert_int_equal(mesh_httpd_listen(fx.srv, taken, bound, sizeof(bound), msg, sizeof(msg)),
                     MESH_E_IO);
    assert_non_null(strstr(msg, "in use"));
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpd_keeps_alive_and_reports_peer),
        cmocka_unit_test(test_httpd_answers_pipelined_requests_in_order_around_a_deferred_one),
        cmocka_unit_test(test_httpd_decodes_chunked_bodies),
        cmocka_unit_test(test_httpd_reads_a_body_sent_in_pieces),
        cmocka_unit_test(test_httpd_keeps_the_head_right_while_the_buffer_moves),
        cmocka_unit_test(test_httpd_refuses_a_declared_oversize_body_with_413_and_closes),
        cmocka_unit_test(test_httpd_refuses_an_oversize_chunked_body_with_413),
        cmocka_unit_test(test_httpd_answers_bad_chunked_framing_with_400),
        cmocka_unit_test(test_httpd_answers_a_malformed_head_with_its_status_and_closes),
        cmocka_unit_test(test_httpd_times_out_a_slow_head_with_408),
        cmocka_unit_test(test_httpd_closes_idle_keep_alive_connections),
        cmocka_unit_test(test_httpd_closes_after_an_http10_request),
        cmocka_unit_test(test_httpd_leaves_the_body_out_of_head_answers),
        cmocka_unit_test(test_httpd_answers_500_when_the_handler_gives_no_answer),
        cmocka_unit_test(test_httpd_sends_100_continue),
        cmocka_unit_test(test_httpd_closes_a_connection_whose_client_stops_reading),
        cmocka_unit_test(test_httpd_tells_a_deferred_request_its_client_went_away),
        cmocka_unit_test(test_httpd_free_calls_gone_for_deferred_requests),
        cmocka_unit_test(test_httpd_refuses_connections_over_the_limit),
        cmocka_unit_test(test_httpd_listen_reports_a_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
