/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/tls.c: both ends of loopback TCP connections driven non-blockingly by a
 * small pump, with certificates made in memory: handshakes in TLS 1.3 and 1.2, data both ways,
 * mutual authentication and the peer check, every refusal with its message, plaintext told
 * apart, ALPN, 1 MiB writes with partial progress, session resumption, close_notify. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/tls.h"
#include "tls_test_certs.h"

#define SPIFFE_WEB "spiffe://example.org/ns/default/sa/web"

struct certs {
    struct test_cert ca, other_ca, server, expired, client;
};

static struct certs C;

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    C.ca = test_cert_make("Test CA", true, -3600, 86400, NULL, NULL);
    C.other_ca = test_cert_make("Other CA", true, -3600, 86400, NULL, NULL);
    C.server = test_cert_make("meshd", false, -3600, 86400, "DNS:localhost,IP:127.0.0.1", &C.ca);
    C.expired = test_cert_make("meshd", false, -7200, -3600, "DNS:localhost,IP:127.0.0.1", &C.ca);
    C.client = test_cert_make("web", false, -3600, 86400, "URI:" SPIFFE_WEB, &C.ca);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_cert_free(&C.ca);
    test_cert_free(&C.other_ca);
    test_cert_free(&C.server);
    test_cert_free(&C.expired);
    test_cert_free(&C.client);
    return 0;
}

/* --- plumbing --- */

static int listener = -1;

/* A connected pair of non-blocking loopback TCP sockets. */
static void tcp_pair(int *client, int *server)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (listener < 0) {
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(listener >= 0);
        assert_int_equal(bind(listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(listen(listener, 16), 0);
    }
    assert_int_equal(getsockname(listener, (struct sockaddr *)&sin, &len), 0);
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(*client, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *server = accept(listener, NULL, NULL);
    assert_true(*server >= 0);
    fcntl(*client, F_SETFL, O_NONBLOCK);
    fcntl(*server, F_SETFL, O_NONBLOCK);
}

static bool final(enum mesh_tls_status st)
{
    return st == MESH_TLS_DONE || st == MESH_TLS_ERROR || st == MESH_TLS_CLOSED;
}

/* Waits a little for either socket to have something to do. */
static void nap(int a, int b)
{
    struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    poll(p, 2, 5);
}

/* Both ends of one connection. */
struct pair {
    int cfd, sfd;
    struct mesh_tls_conn *client, *server;
    enum mesh_tls_status cst, sst;
};

static void pair_open(struct pair *p, struct mesh_tls_ctx *cctx, struct mesh_tls_ctx *sctx,
                      const char *server_name)
{
    memset(p, 0, sizeof(*p));
    tcp_pair(&p->cfd, &p->sfd);
    assert_int_equal(mesh_tls_conn_new(cctx, p->cfd, server_name, &p->client), MESH_OK);
    assert_int_equal(mesh_tls_conn_new(sctx, p->sfd, NULL, &p->server), MESH_OK);
    p->cst = p->sst = MESH_TLS_WANT_READ;
}

/* Drives both handshakes until each is done or failed (or 2 s pass: a side still waiting). */
static void pair_handshake(struct pair *p)
{
    for (int i = 0; i < 400 && !(final(p->cst) && final(p->sst)); i++) {
        if (!final(p->cst))
            p->cst = mesh_tls_handshake(p->client);
        if (!final(p->sst))
            p->sst = mesh_tls_handshake(p->server);
        if (!(final(p->cst) && final(p->sst)))
            nap(p->cfd, p->sfd);
    }
}

static void pair_close(struct pair *p)
{
    mesh_tls_conn_free(p->client);
    mesh_tls_conn_free(p->server);
    close(p->cfd);
    close(p->sfd);
}

/* Reads from conn until want bytes came (other drives the far end meanwhile, so that large
 * transfers progress). Returns the last status. */
static enum mesh_tls_status read_exactly(struct mesh_tls_conn *conn, int fd, int other_fd,
                                         char *buf, size_t want)
{
    size_t have = 0;
    enum mesh_tls_status st = MESH_TLS_WANT_READ;
    for (int i = 0; i < 400 && have < want; i++) {
        size_t got = 0;
        st = mesh_tls_read(conn, buf + have, want - have, &got);
        have += got;
        if (st == MESH_TLS_ERROR || st == MESH_TLS_CLOSED)
            return st;
        if (st != MESH_TLS_DONE)
            nap(fd, other_fd);
    }
    assert_int_equal(have, want);
    return st;
}

static void write_all(struct mesh_tls_conn *conn, const char *text)
{
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    size_t written = 0;
    assert_int_equal(mesh_tls_writev(conn, &iov, 1, &written), MESH_TLS_DONE);
    assert_int_equal(written, strlen(text));
}

static struct mesh_tls_ctx *server_ctx(const struct mesh_tls_options *extra)
{
    struct mesh_tls_options opt = extra ? *extra : (struct mesh_tls_options){0};
    struct mesh_tls_ctx *ctx = NULL;
    char *msg = NULL;
    opt.server = true;
    if (!opt.cert_pem && !opt.cert_file) {
        opt.cert_pem = C.server.cert_pem;
        opt.key_pem = C.server.key_pem;
    }
    enum mesh_err err = mesh_tls_ctx_new(&opt, &ctx, &msg);
    if (err != MESH_OK)
        fail_msg("server ctx: %s", msg);
    return ctx;
}

static struct mesh_tls_ctx *client_ctx(const struct mesh_tls_options *extra)
{
    struct mesh_tls_options opt = extra ? *extra : (struct mesh_tls_options){0};
    struct mesh_tls_ctx *ctx = NULL;
    char *msg = NULL;
    if (!opt.ca_pem && !opt.ca_file)
        opt.ca_pem = C.ca.cert_pem;
    enum mesh_err err = mesh_tls_ctx_new(&opt, &ctx, &msg);
    if (err != MESH_OK)
        fail_msg("client ctx: %s", msg);
    return ctx;
}

/* A handshake that must fail on the client side with a message containing want. */
static void expect_client_failure(struct mesh_tls_ctx *cctx, struct mesh_tls_ctx *sctx,
                                  const char *name, const char *want)
{
    struct pair p;
    pair_open(&p, cctx, sctx, name);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    if (!strstr(mesh_tls_conn_error(p.client), want))
        fail_msg("client error \"%s\" lacks \"%s\"", mesh_tls_conn_error(p.client), want);
    pair_close(&p);
}

/* --- tests --- */

static void exchange_both_ways(const char *version, enum mesh_tls_version max)
{
    struct mesh_tls_options sopt = {.max_version = max};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(NULL);
    struct pair p;
    char buf[64] = "";

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    assert_string_equal(mesh_tls_conn_version(p.client), version);
    assert_string_equal(mesh_tls_conn_version(p.server), version);

    write_all(p.client, "GET / HTTP/1.1\r\n\r\n");
    read_exactly(p.server, p.sfd, p.cfd, buf, 18);
    assert_memory_equal(buf, "GET / HTTP/1.1\r\n\r\n", 18);

    /* Two small pieces go out as one record and arrive as one read. */
    struct iovec iov[2] = {{.iov_base = "HTTP/1.1 200 OK\r\n", .iov_len = 17},
                           {.iov_base = "hello", .iov_len = 5}};
    size_t written = 0;
    assert_int_equal(mesh_tls_writev(p.server, iov, 2, &written), MESH_TLS_DONE);
    assert_int_equal(written, 22);
    memset(buf, 0, sizeof(buf));
    read_exactly(p.client, p.cfd, p.sfd, buf, 22);
    assert_string_equal(buf, "HTTP/1.1 200 OK\r\nhello");

    /* No client certificate was asked for. */
    struct mesh_tls_peer peer;
    assert_int_equal(mesh_tls_conn_peer(p.server, &peer), MESH_E_NOTFOUND);
    assert_int_equal(mesh_tls_conn_peer(p.client, &peer), MESH_OK);
    assert_string_equal(peer.subject, "CN=meshd");
    assert_int_equal(peer.n_dns_sans, 1);
    assert_string_equal(peer.dns_sans[0], "localhost");
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_tls13_handshake_and_data_both_ways(void **state)
{
    (void)state;
    exchange_both_ways("TLSv1.3", MESH_TLS_VERSION_DEFAULT);
}

static void test_tls12_forced_handshake_and_data_both_ways(void **state)
{
    (void)state;
    exchange_both_ways("TLSv1.2", MESH_TLS_VERSION_1_2);
}

static void test_server_name_and_ip_are_verified(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(NULL);
    struct pair p;
    static const char *const good[] = {"localhost", "127.0.0.1"};
    for (size_t i = 0; i < 2; i++) {
        pair_open(&p, cctx, sctx, good[i]);
        pair_handshake(&p);
        assert_int_equal(p.cst, MESH_TLS_DONE);
        pair_close(&p);
    }
    expect_client_failure(cctx, sctx, "example.com",
                          "certificate verify failed (wrong host): the certificate is not for "
                          "example.com (CN=meshd)");
    expect_client_failure(cctx, sctx, "127.0.0.2",
                          "certificate verify failed (wrong host): the certificate is not for "
                          "127.0.0.2");
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_unknown_ca_is_named(void **state)
{
    (void)state;
    struct mesh_tls_options copt = {.ca_pem = C.other_ca.cert_pem};
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(&copt);
    struct pair p;
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client),
                        "certificate verify failed (unknown CA): unable to get local issuer "
                        "certificate (CN=meshd)");
    /* The client told the server why, with an alert. */
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.server),
                        "the client does not trust our certificate (unknown CA)");
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_expired_certificate_is_named(void **state)
{
    (void)state;
    struct mesh_tls_options sopt = {.cert_pem = C.expired.cert_pem, .key_pem = C.expired.key_pem};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(NULL);
    expect_client_failure(
        cctx, sctx, "localhost",
        "certificate verify failed (expired): certificate has expired (notAfter ");
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void mutual_without_client_cert(enum mesh_tls_version max, const char *client_says)
{
    struct mesh_tls_options sopt = {
        .ca_pem = C.ca.cert_pem, .verify_clients = MESH_TLS_VERIFY_REQUIRED, .max_version = max};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(NULL);
    struct pair p;
    char buf[8];

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.server),
                        "the client sent no certificate, and this server requires one");
    /* In TLS 1.3 the client finishes its side first and hears of it on its first read. */
    if (p.cst == MESH_TLS_DONE)
        p.cst = read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client), client_says);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_mutual_auth_required_and_no_client_cert(void **state)
{
    (void)state;
    mutual_without_client_cert(MESH_TLS_VERSION_DEFAULT,
                               "the server requires a client certificate, and none was sent");
    mutual_without_client_cert(MESH_TLS_VERSION_1_2,
                               "the server ended the handshake (handshake failure: no version or "
                               "cipher in common, or it wants a client certificate)");
}

/* The peer check of a proxy: only the workload "web" may connect. */
static bool only_web(const struct mesh_tls_peer *peer, void *data, char *why, size_t size)
{
    const char *want = data;
    for (size_t i = 0; i < peer->n_uri_sans; i++)
        if (strcmp(peer->uri_sans[i], want) == 0)
            return true;
    snprintf(why, size, "%s is not %s", peer->n_uri_sans ? peer->uri_sans[0] : "(no URI SAN)",
             want);
    return false;
}

static void test_mutual_auth_with_peer_identity(void **state)
{
    (void)state;
    struct mesh_tls_options sopt = {.ca_pem = C.ca.cert_pem,
                                    .verify_clients = MESH_TLS_VERIFY_REQUIRED,
                                    .check_peer = only_web,
                                    .check_data = SPIFFE_WEB};
    struct mesh_tls_options copt = {.cert_pem = C.client.cert_pem, .key_pem = C.client.key_pem};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(&copt);
    struct mesh_tls_peer peer;
    struct pair p;
    char buf[4];

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    assert_int_equal(mesh_tls_conn_peer(p.server, &peer), MESH_OK);
    assert_string_equal(peer.subject, "CN=web");
    assert_int_equal(peer.n_uri_sans, 1);
    assert_string_equal(peer.uri_sans[0], SPIFFE_WEB);
    assert_true(peer.not_after > time(NULL));
    pair_close(&p);
    mesh_tls_ctx_free(sctx);

    /* A server that wants another identity refuses the same certificate, with the reason. */
    sopt.check_data = "spiffe://example.org/ns/default/sa/orders";
    sctx = server_ctx(&sopt);
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.server),
                        "certificate verify failed (wrong identity): " SPIFFE_WEB
                        " is not spiffe://example.org/ns/default/sa/orders (CN=web)");
    if (p.cst == MESH_TLS_DONE)
        p.cst = read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);

    /* The client side checks the server the same way. */
    struct mesh_tls_options copt2 = {.check_peer = only_web, .check_data = SPIFFE_WEB};
    cctx = client_ctx(&copt2);
    sctx = server_ctx(NULL);
    expect_client_failure(
        cctx, sctx, NULL,
        "certificate verify failed (wrong identity): (no URI SAN) is not " SPIFFE_WEB);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_plaintext_to_a_tls_server_is_named(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL);
    struct mesh_tls_conn *conn = NULL;
    int cfd, sfd;
    static const char *const inputs[] = {"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                                         "DELETE /v1/vs/a HTTP/1.1\r\n\r\n", "GE"};

    for (size_t i = 0; i < 3; i++) {
        tcp_pair(&cfd, &sfd);
        assert_int_equal(mesh_tls_conn_new(sctx, sfd, NULL, &conn), MESH_OK);
        assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_WANT_READ);
        assert_int_equal(send(cfd, inputs[i], strlen(inputs[i]), 0), (ssize_t)strlen(inputs[i]));
        enum mesh_tls_status st = MESH_TLS_WANT_READ;
        for (int k = 0; k < 100 && st == MESH_TLS_WANT_READ; k++) {
            nap(sfd, sfd);
            st = mesh_tls_handshake(conn);
        }
        assert_int_equal(st, MESH_TLS_ERROR);
        assert_string_equal(mesh_tls_conn_error(conn),
                            "the peer does not speak TLS (it sent plaintext HTTP?)");
        mesh_tls_conn_free(conn);
        close(cfd);
        close(sfd);
    }

    /* Something else entirely, and a client that closes at once. */
    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(sctx, sfd, NULL, &conn), MESH_OK);
    assert_int_equal(send(cfd, "\x01\x02\x03", 3, 0), 3);
    nap(sfd, sfd);
    assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(conn),
                        "the peer does not speak TLS (its first bytes are not a TLS handshake)");
    mesh_tls_conn_free(conn);
    close(cfd);
    close(sfd);
    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(sctx, sfd, NULL, &conn), MESH_OK);
    close(cfd);
    nap(sfd, sfd);
    assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_CLOSED);
    mesh_tls_conn_free(conn);
    close(sfd);
    mesh_tls_ctx_free(sctx);
}

static void test_tls_client_to_a_plaintext_server_is_named(void **state)
{
    (void)state;
    struct mesh_tls_ctx *cctx = client_ctx(NULL);
    struct mesh_tls_conn *conn = NULL;
    char buf[4096];
    int cfd, sfd;

    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(cctx, cfd, "localhost", &conn), MESH_OK);
    assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_WANT_READ);
    nap(sfd, sfd);
    assert_true(recv(sfd, buf, sizeof(buf), 0) > 0); /* the ClientHello */
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(send(sfd, answer, sizeof(answer) - 1, 0), (ssize_t)sizeof(answer) - 1);
    enum mesh_tls_status st = MESH_TLS_WANT_READ;
    for (int k = 0; k < 100 && st == MESH_TLS_WANT_READ; k++) {
        nap(cfd, cfd);
        st = mesh_tls_handshake(conn);
    }
    assert_int_equal(st, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(conn),
                        "the server does not speak TLS (is it plain http://?)");
    mesh_tls_conn_free(conn);
    close(cfd);
    close(sfd);
    mesh_tls_ctx_free(cctx);
}

static void alpn_case(const char *server_list, const char *client_list, const char *want)
{
    struct mesh_tls_options sopt = {.alpn = server_list}, copt = {.alpn = client_list};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(&copt);
    struct pair p;
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    if (want) {
        assert_string_equal(mesh_tls_conn_alpn(p.client), want);
        assert_string_equal(mesh_tls_conn_alpn(p.server), want);
    } else {
        assert_null(mesh_tls_conn_alpn(p.client));
        assert_null(mesh_tls_conn_alpn(p.server));
    }
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_alpn_is_negotiated(void **state)
{
    (void)state;
    alpn_case("http/1.1", "http/1.1", "http/1.1");
    alpn_case("h2,http/1.1", "http/1.1,h2", "h2"); /* the server's preference */
    alpn_case("http/1.1", "h2,http/1.1", "http/1.1");
    alpn_case("h2", "http/1.1", NULL); /* no overlap: on without ALPN */
    alpn_case(NULL, "http/1.1", NULL);
}

static void test_large_writes_progress_in_parts(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(NULL);
    struct pair p;
    const size_t body_len = 1u << 20;
    char *body = malloc(body_len), *got = malloc(body_len + 32);
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)('a' + i % 26);
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    /* Small socket buffers, so that 1 MiB cannot go out in one call. */
    int small = 16 * 1024;
    setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

    struct iovec all[3] = {{.iov_base = "head:", .iov_len = 5},
                           {.iov_base = body, .iov_len = body_len},
                           {.iov_base = ":tail", .iov_len = 5}};
    const size_t total = body_len + 10;
    size_t sent = 0, have = 0;
    int partial = 0;
    for (int round = 0; round < 5000 && (sent < total || have < total); round++) {
        if (sent < total) {
            /* The rest of the queue, as an event loop would pass it. */
            struct iovec iov[3];
            int n = 0;
            size_t skip = sent;
            for (int k = 0; k < 3; k++) {
                if (skip >= all[k].iov_len) {
                    skip -= all[k].iov_len;
                    continue;
                }
                iov[n].iov_base = (char *)all[k].iov_base + skip;
                iov[n++].iov_len = all[k].iov_len - skip;
                skip = 0;
            }
            size_t w = 0;
            enum mesh_tls_status st = mesh_tls_writev(p.server, iov, n, &w);
            sent += w;
            if (st == MESH_TLS_WANT_WRITE)
                partial++;
            else
                assert_int_equal(st, MESH_TLS_DONE);
        }
        size_t r = 0, before = have + sent;
        enum mesh_tls_status rs;
        do {
            rs = mesh_tls_read(p.client, got + have, total + 32 - have, &r);
            have += r;
        } while (rs == MESH_TLS_DONE);
        assert_int_equal(rs, MESH_TLS_WANT_READ);
        if (have + sent == before)
            nap(p.cfd, p.sfd); /* the kernel moves the bytes meanwhile */
    }
    assert_int_equal(sent, total);
    assert_int_equal(have, total);
    assert_true(partial > 0); /* the socket filled up at least once */
    assert_memory_equal(got, "head:", 5);
    assert_memory_equal(got + 5, body, body_len);
    assert_memory_equal(got + 5 + body_len, ":tail", 5);
    pair_close(&p);
    free(body);
    free(got);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void resumption(enum mesh_tls_version max)
{
    struct mesh_tls_options sopt = {.max_version = max}, copt = {.resume_sessions = true};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(&copt);
    struct pair p;
    char buf[2];

    for (int round = 0; round < 3; round++) {
        pair_open(&p, cctx, sctx, "localhost");
        pair_handshake(&p);
        assert_int_equal(p.cst, MESH_TLS_DONE);
        assert_int_equal(p.sst, MESH_TLS_DONE);
        assert_int_equal(mesh_tls_conn_resumed(p.client), round > 0);
        assert_int_equal(mesh_tls_conn_resumed(p.server), round > 0);
        /* TLS 1.3 tickets come after the handshake: the client takes them with a read. */
        write_all(p.server, "x");
        read_exactly(p.client, p.cfd, p.sfd, buf, 1);
        pair_close(&p);
    }
    mesh_tls_ctx_free(cctx);

    /* Another context has its own cache: a full handshake. */
    cctx = client_ctx(&copt);
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_false(mesh_tls_conn_resumed(p.client));
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_session_resumption_on_the_next_connection(void **state)
{
    (void)state;
    resumption(MESH_TLS_VERSION_DEFAULT);
    resumption(MESH_TLS_VERSION_1_2);
}

static void test_close_notify_and_truncation(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(NULL);
    struct pair p;
    char buf[8];
    size_t got = 0;

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(mesh_tls_shutdown(p.client), MESH_TLS_DONE);
    nap(p.sfd, p.sfd);
    assert_int_equal(mesh_tls_read(p.server, buf, sizeof(buf), &got), MESH_TLS_CLOSED);
    assert_false(mesh_tls_conn_truncated(p.server));
    pair_close(&p);

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    write_all(p.server, "ab");
    read_exactly(p.client, p.cfd, p.sfd, buf, 2);
    close(p.sfd); /* no close_notify */
    p.sfd = -1;
    nap(p.cfd, p.cfd);
    assert_int_equal(mesh_tls_read(p.client, buf, sizeof(buf), &got), MESH_TLS_CLOSED);
    assert_true(mesh_tls_conn_truncated(p.client));
    /* Nothing can be sent on it any more, and no SIGPIPE either way. */
    assert_int_equal(mesh_tls_shutdown(p.client), MESH_TLS_DONE);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_sniff_tells_tls_from_plaintext(void **state)
{
    (void)state;
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    assert_int_equal(mesh_tls_sniff(hello, 7), MESH_TLS_SNIFF_TLS);
    assert_int_equal(mesh_tls_sniff(hello, 3), MESH_TLS_SNIFF_NEED_MORE);
    assert_int_equal(mesh_tls_sniff(hello, 0), MESH_TLS_SNIFF_NEED_MORE);
    static const unsigned char alert[] = {0x16, 0x03, 0x03, 0x00, 0x02, 0x02};
    assert_int_equal(mesh_tls_sniff(alert, 6), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(mesh_tls_sniff("\x16\x02", 2), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(mesh_tls_sniff("GET / HTTP/1.1\r\n", 16), MESH_TLS_SNIFF_HTTP);
    assert_int_equal(mesh_tls_sniff("PRI * HTTP/2.0", 14), MESH_TLS_SNIFF_HTTP);
    assert_int_equal(mesh_tls_sniff("POS", 3), MESH_TLS_SNIFF_NEED_MORE);
    assert_int_equal(mesh_tls_sniff(" GET", 4), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(mesh_tls_sniff("get /", 5), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(mesh_tls_sniff("ABCDEFGHIJKLMNOPQ", 17), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(mesh_tls_sniff("SSH-2.0-OpenSSH", 15), MESH_TLS_SNIFF_OTHER);
}

/* Writes text to a new file in /tmp with mode; the path is written to path. */
static void temp_file(char *path, size_t size, const char *text, mode_t mode)
{
    snprintf(path, size, "/tmp/test_tls.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static void expect_ctx_error(const struct mesh_tls_options *opt, enum mesh_err want_err,
                             const char *want)
{
    struct mesh_tls_ctx *ctx = NULL;
    char *msg = NULL;
    assert_int_equal(mesh_tls_ctx_new(opt, &ctx, &msg), want_err);
    assert_null(ctx);
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("\"%s\" lacks \"%s\"", msg, want);
    free(msg);
}

static void test_context_refusals_are_named(void **state)
{
    (void)state;
    char cert[64], key[64], want[256];
    temp_file(cert, sizeof(cert), C.server.cert_pem, 0644);
    temp_file(key, sizeof(key), C.server.key_pem, 0644);

    struct mesh_tls_options opt = {.server = true, .cert_file = cert, .key_file = key};
    snprintf(want, sizeof(want),
             "%s is accessible to other users (mode 0644): a private key must be private to its "
             "owner; run chmod 600 %s",
             key, key);
    expect_ctx_error(&opt, MESH_E_INVALID, want);

    chmod(key, 0600);
    struct mesh_tls_ctx *ctx = NULL;
    char *msg = NULL;
    assert_int_equal(mesh_tls_ctx_new(&opt, &ctx, &msg), MESH_OK);
    assert_string_equal(mesh_tls_ctx_subject(ctx), "CN=meshd");
    assert_true(mesh_tls_ctx_not_after(ctx) > time(NULL));
    mesh_tls_ctx_free(ctx);

    struct mesh_tls_options mismatch = {
        .server = true, .cert_file = cert, .key_pem = C.client.key_pem};
    snprintf(want, sizeof(want),
             "the key in the key (PEM text) does not belong to the certificate in %s", cert);
    expect_ctx_error(&mismatch, MESH_E_INVALID, want);

    struct mesh_tls_options swapped = {.server = true, .cert_file = key, .key_file = key};
    snprintf(want, sizeof(want), "%s holds no PEM certificate", key);
    expect_ctx_error(&swapped, MESH_E_INVALID, want);

    struct mesh_tls_options missing = {
        .server = true, .cert_file = "/nonexistent/cert.pem", .key_file = key};
    expect_ctx_error(&missing, MESH_E_IO, "cannot read /nonexistent/cert.pem: No such file");

    struct mesh_tls_options bare = {.server = true};
    expect_ctx_error(&bare, MESH_E_INVALID, "a TLS server needs a certificate and its key");

    struct mesh_tls_options no_ca = {.server = true,
                                     .cert_file = cert,
                                     .key_file = key,
                                     .verify_clients = MESH_TLS_VERIFY_OPTIONAL};
    expect_ctx_error(&no_ca, MESH_E_INVALID, "checking client certificates needs the CAs");

    struct mesh_tls_options bad_alpn = {.alpn = "h2,,http/1.1"};
    expect_ctx_error(&bad_alpn, MESH_E_INVALID, "ALPN list \"h2,,http/1.1\"");

    struct mesh_tls_options bad_ca = {.ca_file = key};
    snprintf(want, sizeof(want), "%s holds no PEM certificate", key);
    expect_ctx_error(&bad_ca, MESH_E_INVALID, want);

    unlink(cert);
    unlink(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls13_handshake_and_data_both_ways),
        cmocka_unit_test(test_tls12_forced_handshake_and_data_both_ways),
        cmocka_unit_test(test_server_name_and_ip_are_verified),
        cmocka_unit_test(test_unknown_ca_is_named),
        cmocka_unit_test(test_expired_certificate_is_named),
        cmocka_unit_test(test_mutual_auth_required_and_no_client_cert),
        cmocka_unit_test(test_mutual_auth_with_peer_identity),
        cmocka_unit_test(test_plaintext_to_a_tls_server_is_named),
        cmocka_unit_test(test_tls_client_to_a_plaintext_server_is_named),
        cmocka_unit_test(test_alpn_is_negotiated),
        cmocka_unit_test(test_large_writes_progress_in_parts),
        cmocka_unit_test(test_session_resumption_on_the_next_connection),
        cmocka_unit_test(test_close_notify_and_truncation),
        cmocka_unit_test(test_sniff_tells_tls_from_plaintext),
        cmocka_unit_test(test_context_refusals_are_named),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (listener >= 0)
        close(listener);
    return rc;
}
