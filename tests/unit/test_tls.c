/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/tls.c: both ends of loopback TCP connections driven non-blockingly by a
 * small pump, with certificates made in memory: handshakes in TLS 1.3 and 1.2, data both ways,
 * mutual authentication and the peer check, every refusal with its message, plaintext told
 * apart, ALPN, 1 MiB writes with partial progress, session resumption, close_notify; clients that
 * expect a SPIFFE ID, the cause of each failure, the first-bytes sniffer, and contexts adopted
 * from an SSL_CTX built by the caller. */
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
#include "net/tls_adopt.h"
#include "tls_test_certs.h"

#define SPIFFE_WEB    "spiffe://example.org/ns/default/sa/web"
#define SPIFFE_ORDERS "spiffe://example.org/ns/default/sa/orders"
#define SPIFFE_PAY    "spiffe://example.org/ns/default/sa/payments"

struct certs {
    struct test_cert ca, other_ca, server, expired, client;
    struct test_cert orders;         /* a workload server: URI SAN only */
    struct test_cert orders_pay;     /* one certificate, two SPIFFE IDs */
    struct test_cert foreign_client; /* web's SPIFFE ID, from a CA nobody here trusts */
    struct test_cert expired_client;
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
    C.orders = test_cert_make("orders", false, -3600, 86400, "URI:" SPIFFE_ORDERS, &C.ca);
    C.orders_pay = test_cert_make("orders-pay", false, -3600, 86400,
                                  "URI:" SPIFFE_ORDERS ",URI:" SPIFFE_PAY, &C.ca);
    C.foreign_client =
        test_cert_make("intruder", false, -3600, 86400, "URI:" SPIFFE_WEB, &C.other_ca);
    C.expired_client = test_cert_make("web", false, -7200, -3600, "URI:" SPIFFE_WEB, &C.ca);
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
    test_cert_free(&C.orders);
    test_cert_free(&C.orders_pay);
    test_cert_free(&C.foreign_client);
    test_cert_free(&C.expired_client);
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

/* The sockets and the server end; the caller makes the client end. */
static void pair_start(struct pair *p, struct mesh_tls_ctx *sctx)
{
    memset(p, 0, sizeof(*p));
    tcp_pair(&p->cfd, &p->sfd);
    assert_int_equal(mesh_tls_conn_new(sctx, p->sfd, NULL, &p->server), MESH_OK);
    p->cst = p->sst = MESH_TLS_WANT_READ;
}

static void pair_open(struct pair *p, struct mesh_tls_ctx *cctx, struct mesh_tls_ctx *sctx,
                      const char *server_name)
{
    pair_start(p, sctx);
    assert_int_equal(mesh_tls_conn_new(cctx, p->cfd, server_name, &p->client), MESH_OK);
}

/* A client that accepts only the server peer_uri (mesh mTLS). */
static void pair_open_expecting(struct pair *p, struct mesh_tls_ctx *cctx,
                                struct mesh_tls_ctx *sctx, const char *peer_uri)
{
    pair_start(p, sctx);
    assert_int_equal(mesh_tls_conn_new_expecting(cctx, p->cfd, peer_uri, &p->client), MESH_OK);
    assert_non_null(p->client);
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

/* conn failed for the cause want (by name too, so that a mismatch reads as words). */
static void assert_failure(const struct mesh_tls_conn *conn, enum mesh_tls_failure want)
{
    assert_string_equal(mesh_tls_failure_str(mesh_tls_conn_failure(conn)),
                        mesh_tls_failure_str(want));
    assert_int_equal(mesh_tls_conn_failure(conn), want);
}

/* A handshake that must fail on the client side for the cause want_failure, with a message
 * containing want. */
static void expect_client_failure(struct mesh_tls_ctx *cctx, struct mesh_tls_ctx *sctx,
                                  const char *name, const char *want,
                                  enum mesh_tls_failure want_failure)
{
    struct pair p;
    pair_open(&p, cctx, sctx, name);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    if (!strstr(mesh_tls_conn_error(p.client), want))
        fail_msg("client error \"%s\" lacks \"%s\"", mesh_tls_conn_error(p.client), want);
    assert_failure(p.client, want_failure);
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
    assert_failure(p.client, MESH_TLS_FAIL_NONE); /* nothing happened yet */
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    assert_failure(p.client, MESH_TLS_FAIL_NONE);
    assert_failure(p.server, MESH_TLS_FAIL_NONE);
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
                          "example.com (CN=meshd)",
                          MESH_TLS_FAIL_WRONG_IDENTITY);
    expect_client_failure(cctx, sctx, "127.0.0.2",
                          "certificate verify failed (wrong host): the certificate is not for "
                          "127.0.0.2",
                          MESH_TLS_FAIL_WRONG_IDENTITY);
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
    assert_failure(p.client, MESH_TLS_FAIL_UNKNOWN_CA);
    /* The client told the server why, with an alert. */
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.server),
                        "the client does not trust our certificate (unknown CA)");
    assert_failure(p.server, MESH_TLS_FAIL_UNKNOWN_CA);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_expired_certificate_is_named(void **state)
{
    (void)state;
    struct mesh_tls_options sopt = {.cert_pem = C.expired.cert_pem, .key_pem = C.expired.key_pem};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(NULL);
    struct pair p;
    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    if (!strstr(mesh_tls_conn_error(p.client),
                "certificate verify failed (expired): certificate has expired (notAfter "))
        fail_msg("client error \"%s\"", mesh_tls_conn_error(p.client));
    assert_failure(p.client, MESH_TLS_FAIL_EXPIRED);
    /* The server heard of it from the client's alert. */
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.server),
                        "the client says our certificate has expired");
    assert_failure(p.server, MESH_TLS_FAIL_EXPIRED);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void mutual_without_client_cert(enum mesh_tls_version max, const char *client_says,
                                       enum mesh_tls_failure client_failure)
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
    assert_failure(p.server, MESH_TLS_FAIL_NO_CERTIFICATE);
    /* In TLS 1.3 the client finishes its side first and hears of it on its first read. */
    if (p.cst == MESH_TLS_DONE)
        p.cst = read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client), client_says);
    assert_failure(p.client, client_failure);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_mutual_auth_required_and_no_client_cert(void **state)
{
    (void)state;
    mutual_without_client_cert(MESH_TLS_VERSION_DEFAULT,
                               "the server requires a client certificate, and none was sent",
                               MESH_TLS_FAIL_NO_CERTIFICATE);
    /* TLS 1.2's alert does not say what the server missed. */
    mutual_without_client_cert(MESH_TLS_VERSION_1_2,
                               "the server ended the handshake (handshake failure: no version or "
                               "cipher in common, or it wants a client certificate)",
                               MESH_TLS_FAIL_OTHER);
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
    assert_failure(p.server, MESH_TLS_FAIL_WRONG_IDENTITY);
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
        "certificate verify failed (wrong identity): (no URI SAN) is not " SPIFFE_WEB,
        MESH_TLS_FAIL_WRONG_IDENTITY);
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
        assert_failure(conn, MESH_TLS_FAIL_PLAINTEXT);
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
    assert_failure(conn, MESH_TLS_FAIL_PLAINTEXT);
    mesh_tls_conn_free(conn);
    close(cfd);
    close(sfd);
    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(sctx, sfd, NULL, &conn), MESH_OK);
    close(cfd);
    nap(sfd, sfd);
    assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_CLOSED);
    /* A health check or port scan: no handshake failed. */
    assert_failure(conn, MESH_TLS_FAIL_NONE);
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
    assert_failure(conn, MESH_TLS_FAIL_PLAINTEXT);
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

/* Reads until the first bytes come; the status of that read. */
static enum mesh_tls_status read_some(struct pair *p, char *buf, size_t len, size_t *got)
{
    enum mesh_tls_status st = MESH_TLS_WANT_READ;
    for (int i = 0; i < 400 && st == MESH_TLS_WANT_READ; i++) {
        st = mesh_tls_read(p->client, buf, len, got);
        if (st == MESH_TLS_WANT_READ)
            nap(p->cfd, p->sfd);
    }
    return st;
}

/* drained: a read that took everything says so; one that left bytes in the library (or that was
 * answered from the library's buffer, with no recv() of its own) does not. */
static void test_drained_says_when_a_read_took_everything(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(NULL);
    struct pair p;
    char buf[64];
    size_t got = 0;

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    write_all(p.server, "hello");
    assert_int_equal(read_some(&p, buf, sizeof(buf), &got), MESH_TLS_DONE);
    assert_int_equal(got, 5);
    assert_true(mesh_tls_conn_drained(p.client));

    /* Two records at once, read a byte at a time: the library holds the rest. */
    write_all(p.server, "ab");
    write_all(p.server, "cd");
    nap(p.cfd, p.cfd);
    usleep(20000); /* both records in the socket before the read */
    assert_int_equal(read_some(&p, buf, 1, &got), MESH_TLS_DONE);
    assert_false(mesh_tls_conn_drained(p.client));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mesh_tls_read(p.client, buf, 1, &got), MESH_TLS_DONE);
        assert_int_equal(got, 1);
        /* Served from the buffer, no recv() of its own: it cannot know the socket is empty. */
        assert_false(mesh_tls_conn_drained(p.client));
    }
    /* The last byte, from the buffer too: an older recv() was short, but bytes may have come
     * since; only a recv() of this very read could tell. */
    assert_int_equal(mesh_tls_read(p.client, buf, sizeof(buf), &got), MESH_TLS_DONE);
    assert_int_equal(got, 1);
    assert_false(mesh_tls_conn_drained(p.client));
    assert_int_equal(mesh_tls_read(p.client, buf, sizeof(buf), &got), MESH_TLS_WANT_READ);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
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

/* --- clients that expect a SPIFFE ID --- */

static void expecting_case(enum mesh_tls_version max)
{
    struct mesh_tls_options orders = {
        .cert_pem = C.orders.cert_pem, .key_pem = C.orders.key_pem, .max_version = max};
    struct mesh_tls_options both = {
        .cert_pem = C.orders_pay.cert_pem, .key_pem = C.orders_pay.key_pem, .max_version = max};
    struct mesh_tls_options plain = {.max_version = max};
    struct mesh_tls_options wary = {.ca_pem = C.other_ca.cert_pem};
    struct mesh_tls_ctx *sctx = server_ctx(&orders), *cctx = client_ctx(NULL);
    struct mesh_tls_peer peer;
    struct pair p;
    char buf[8];
    size_t got = 7;

    /* The right SPIFFE ID: on, and bytes go both ways. */
    pair_open_expecting(&p, cctx, sctx, SPIFFE_ORDERS);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    assert_failure(p.client, MESH_TLS_FAIL_NONE);
    assert_failure(p.server, MESH_TLS_FAIL_NONE);
    assert_int_equal(mesh_tls_conn_peer(p.client, &peer), MESH_OK);
    assert_int_equal(peer.n_uri_sans, 1);
    assert_string_equal(peer.uri_sans[0], SPIFFE_ORDERS);
    write_all(p.client, "ping");
    read_exactly(p.server, p.sfd, p.cfd, buf, 4);
    assert_memory_equal(buf, "ping", 4);
    write_all(p.server, "pong");
    read_exactly(p.client, p.cfd, p.sfd, buf, 4);
    assert_memory_equal(buf, "pong", 4);
    pair_close(&p);

    /* Another SPIFFE ID: the chain verified, but the server is not the one wanted. */
    pair_open_expecting(&p, cctx, sctx, SPIFFE_WEB);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client),
                        "certificate verify failed (wrong identity): the server is " SPIFFE_ORDERS
                        ", not the expected " SPIFFE_WEB " (CN=orders)");
    assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
    /* Asking again does not turn it into a handshake that succeeded. */
    assert_int_equal(mesh_tls_handshake(p.client), MESH_TLS_ERROR);
    /* Nothing goes over it afterwards: the request never reaches the wrong workload. */
    struct iovec iov = {.iov_base = "GET / HTTP/1.1\r\n\r\n", .iov_len = 18};
    size_t written = 5;
    assert_int_equal(mesh_tls_writev(p.client, &iov, 1, &written), MESH_TLS_ERROR);
    assert_int_equal(written, 0);
    assert_int_equal(mesh_tls_read(p.client, buf, sizeof(buf), &got), MESH_TLS_ERROR);
    assert_int_equal(got, 0);
    assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
    if (p.sst == MESH_TLS_DONE) {
        nap(p.sfd, p.sfd);
        assert_int_equal(mesh_tls_read(p.server, buf, sizeof(buf), &got), MESH_TLS_WANT_READ);
    }
    pair_close(&p);
    mesh_tls_ctx_free(sctx);

    /* A server certificate without a URI SAN (meshd's: DNS and IP) is no workload. */
    sctx = server_ctx(&plain);
    pair_open_expecting(&p, cctx, sctx, SPIFFE_ORDERS);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client),
                        "certificate verify failed (wrong identity): the server is a certificate "
                        "without a URI SAN, not the expected " SPIFFE_ORDERS " (CN=meshd)");
    assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
    pair_close(&p);
    mesh_tls_ctx_free(sctx);

    /* Any of the server's SPIFFE IDs will do; a prefix of one will not. */
    sctx = server_ctx(&both);
    static const char *const ids[] = {SPIFFE_ORDERS, SPIFFE_PAY};
    for (size_t i = 0; i < 2; i++) {
        pair_open_expecting(&p, cctx, sctx, ids[i]);
        pair_handshake(&p);
        assert_int_equal(p.cst, MESH_TLS_DONE);
        assert_int_equal(p.sst, MESH_TLS_DONE);
        pair_close(&p);
    }
    pair_open_expecting(&p, cctx, sctx, "spiffe://example.org/ns/default/sa/order");
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
    pair_close(&p);
    mesh_tls_ctx_free(sctx);
    mesh_tls_ctx_free(cctx);

    /* The chain comes first: the right SPIFFE ID from a CA the client does not trust. */
    sctx = server_ctx(&orders);
    cctx = client_ctx(&wary);
    pair_open_expecting(&p, cctx, sctx, SPIFFE_ORDERS);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client),
                        "certificate verify failed (unknown CA): unable to get local issuer "
                        "certificate (CN=orders)");
    assert_failure(p.client, MESH_TLS_FAIL_UNKNOWN_CA);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_expecting_accepts_only_that_spiffe_id(void **state)
{
    (void)state;
    expecting_case(MESH_TLS_VERSION_DEFAULT);
    expecting_case(MESH_TLS_VERSION_1_2);
}

static void test_expecting_refuses_what_it_cannot_check(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL), *cctx = client_ctx(NULL);
    char dummy;
    struct mesh_tls_conn *poison = (struct mesh_tls_conn *)(void *)&dummy, *conn = poison;
    int cfd, sfd;

    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new_expecting(cctx, cfd, NULL, &conn), MESH_E_INVALID);
    assert_null(conn);
    conn = poison;
    assert_int_equal(mesh_tls_conn_new_expecting(cctx, cfd, "", &conn), MESH_E_INVALID);
    assert_null(conn);
    /* Only a client expects a server. */
    conn = poison;
    assert_int_equal(mesh_tls_conn_new_expecting(sctx, sfd, SPIFFE_WEB, &conn), MESH_E_INVALID);
    assert_null(conn);
    close(cfd);
    close(sfd);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

/* One connection expecting peer_uri: its handshake must come to client_st, and both ends must
 * say whether it resumed. */
static void expecting_round(struct mesh_tls_ctx *cctx, struct mesh_tls_ctx *sctx,
                            const char *peer_uri, enum mesh_tls_status client_st, bool resumed)
{
    struct pair p;
    char buf[2];
    pair_open_expecting(&p, cctx, sctx, peer_uri);
    pair_handshake(&p);
    assert_int_equal(p.cst, client_st);
    assert_int_equal(p.sst, MESH_TLS_DONE);
    assert_int_equal(mesh_tls_conn_resumed(p.server), resumed);
    if (client_st == MESH_TLS_DONE) {
        assert_int_equal(mesh_tls_conn_resumed(p.client), resumed);
        /* The resumed session still names the server. */
        struct mesh_tls_peer peer;
        assert_int_equal(mesh_tls_conn_peer(p.client, &peer), MESH_OK);
        assert_true(peer.n_uri_sans > 0);
        assert_string_equal(peer.uri_sans[0], SPIFFE_ORDERS);
        /* TLS 1.3 tickets come after the handshake: the client takes them with a read. */
        write_all(p.server, "x");
        read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    } else {
        assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
        if (!strstr(mesh_tls_conn_error(p.client),
                    "(wrong identity): the server is " SPIFFE_ORDERS ", not the expected "))
            fail_msg("client error \"%s\"", mesh_tls_conn_error(p.client));
    }
    pair_close(&p);
}

static void sessions_per_identity(enum mesh_tls_version max)
{
    struct mesh_tls_options both = {
        .cert_pem = C.orders_pay.cert_pem, .key_pem = C.orders_pay.key_pem, .max_version = max};
    struct mesh_tls_options orders = {
        .cert_pem = C.orders.cert_pem, .key_pem = C.orders.key_pem, .max_version = max};
    struct mesh_tls_options copt = {.resume_sessions = true};
    struct mesh_tls_ctx *sctx = server_ctx(&both), *cctx = client_ctx(&copt);

    /* One server at one address that is two identities: a session made for one of them is
     * never offered for the other (the server would have taken it), each gets its own. */
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, false);
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, true);
    expecting_round(cctx, sctx, SPIFFE_PAY, MESH_TLS_DONE, false);
    expecting_round(cctx, sctx, SPIFFE_PAY, MESH_TLS_DONE, true);
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, true);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);

    /* A server that is orders only: a client expecting web there is not offered orders'
     * session, and the identity check refuses the full handshake it gets instead. */
    sctx = server_ctx(&orders);
    cctx = client_ctx(&copt);
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, false);
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, true);
    expecting_round(cctx, sctx, SPIFFE_WEB, MESH_TLS_ERROR, false);
    /* The refused server's session (TLS 1.2 stores it during the handshake) is not kept for
     * web either: the next try is a full handshake again. */
    expecting_round(cctx, sctx, SPIFFE_WEB, MESH_TLS_ERROR, false);
    expecting_round(cctx, sctx, SPIFFE_ORDERS, MESH_TLS_DONE, true);
    /* A client that checks host names keeps its sessions apart from the identities'. */
    struct pair p;
    pair_open(&p, cctx, sctx, NULL);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_DONE);
    assert_false(mesh_tls_conn_resumed(p.server));
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_expecting_sessions_are_cached_per_identity(void **state)
{
    (void)state;
    sessions_per_identity(MESH_TLS_VERSION_DEFAULT);
    sessions_per_identity(MESH_TLS_VERSION_1_2);
}

/* --- failure causes --- */

/* A server that requires client certificates, and a client whose certificate it refuses. */
static void client_cert_refused(const struct test_cert *cert, enum mesh_tls_version max,
                                const char *server_says, const char *client_says,
                                enum mesh_tls_failure cause)
{
    struct mesh_tls_options sopt = {
        .ca_pem = C.ca.cert_pem, .verify_clients = MESH_TLS_VERIFY_REQUIRED, .max_version = max};
    struct mesh_tls_options copt = {.cert_pem = cert->cert_pem, .key_pem = cert->key_pem};
    struct mesh_tls_ctx *sctx = server_ctx(&sopt), *cctx = client_ctx(&copt);
    struct pair p;
    char buf[4];

    pair_open(&p, cctx, sctx, "localhost");
    pair_handshake(&p);
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    if (!strstr(mesh_tls_conn_error(p.server), server_says))
        fail_msg("server error \"%s\" lacks \"%s\"", mesh_tls_conn_error(p.server), server_says);
    assert_failure(p.server, cause);
    /* In TLS 1.3 the client finishes its side first and hears of it on its first read. */
    if (p.cst == MESH_TLS_DONE)
        p.cst = read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_string_equal(mesh_tls_conn_error(p.client), client_says);
    assert_failure(p.client, cause);
    pair_close(&p);
    mesh_tls_ctx_free(cctx);
    mesh_tls_ctx_free(sctx);
}

static void test_client_certificate_refusals_have_their_cause(void **state)
{
    (void)state;
    static const enum mesh_tls_version versions[] = {MESH_TLS_VERSION_DEFAULT,
                                                     MESH_TLS_VERSION_1_2};
    for (size_t i = 0; i < 2; i++) {
        client_cert_refused(&C.foreign_client, versions[i],
                            "certificate verify failed (unknown CA): unable to get local issuer "
                            "certificate (CN=intruder)",
                            "the server does not trust our certificate (unknown CA)",
                            MESH_TLS_FAIL_UNKNOWN_CA);
        client_cert_refused(&C.expired_client, versions[i],
                            "certificate verify failed (expired): certificate has expired "
                            "(notAfter ",
                            "the server says our certificate has expired", MESH_TLS_FAIL_EXPIRED);
    }
}

static void test_broken_handshake_is_other(void **state)
{
    (void)state;
    struct mesh_tls_ctx *sctx = server_ctx(NULL);
    struct mesh_tls_conn *conn = NULL;
    int cfd, sfd;
    /* A handshake record (so not plaintext) that holds no ClientHello. */
    static const char junk[] = "\x16\x03\x01\x00\x05hello";

    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(sctx, sfd, NULL, &conn), MESH_OK);
    assert_int_equal(send(cfd, junk, sizeof(junk) - 1, 0), (ssize_t)sizeof(junk) - 1);
    enum mesh_tls_status st = MESH_TLS_WANT_READ;
    for (int k = 0; k < 100 && st == MESH_TLS_WANT_READ; k++) {
        nap(sfd, sfd);
        st = mesh_tls_handshake(conn);
    }
    assert_int_equal(st, MESH_TLS_ERROR);
    if (strncmp(mesh_tls_conn_error(conn), "TLS error during the handshake: ", 32) != 0)
        fail_msg("server error \"%s\"", mesh_tls_conn_error(conn));
    assert_failure(conn, MESH_TLS_FAIL_OTHER);
    mesh_tls_conn_free(conn);
    close(cfd);
    close(sfd);
    mesh_tls_ctx_free(sctx);
}

static void test_failure_names(void **state)
{
    (void)state;
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_NONE), "none");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_EXPIRED), "expired");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_UNKNOWN_CA), "unknown_ca");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_WRONG_IDENTITY), "wrong_identity");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_PLAINTEXT), "plaintext");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_NO_CERTIFICATE), "no_certificate");
    assert_string_equal(mesh_tls_failure_str(MESH_TLS_FAIL_OTHER), "other");
    assert_string_equal(mesh_tls_failure_str((enum mesh_tls_failure)99), "other");
}

/* --- the sniffer --- */

/* mesh_tls_sniff on a heap copy of exactly len bytes, so that ASan sees any read past them. */
static enum mesh_tls_sniff sniff_exact(const void *bytes, size_t len)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, bytes, len);
    enum mesh_tls_sniff kind = mesh_tls_sniff(len ? copy : NULL, len);
    free(copy);
    return kind;
}

/* Every prefix of text shorter than need is NEED_MORE; need bytes and more are want. */
static void sniff_prefixes(const void *text, size_t len, size_t need, enum mesh_tls_sniff want)
{
    for (size_t n = 0; n <= len; n++) {
        enum mesh_tls_sniff kind = sniff_exact(text, n);
        enum mesh_tls_sniff expected = n < need ? MESH_TLS_SNIFF_NEED_MORE : want;
        if (kind != expected)
            fail_msg("sniff of %zu bytes: %d, want %d", n, (int)kind, (int)expected);
    }
}

static void test_sniff_reads_prefixes_up_to_its_limit(void **state)
{
    (void)state;
    struct mesh_tls_ctx *cctx = client_ctx(NULL);
    struct mesh_tls_conn *conn = NULL;
    unsigned char hello[2048];
    int cfd, sfd;

    /* A real ClientHello, as this library's client sends it: TLS from its sixth byte on. */
    tcp_pair(&cfd, &sfd);
    assert_int_equal(mesh_tls_conn_new(cctx, cfd, "localhost", &conn), MESH_OK);
    assert_int_equal(mesh_tls_handshake(conn), MESH_TLS_WANT_READ);
    nap(sfd, sfd);
    ssize_t n = recv(sfd, hello, sizeof(hello), 0);
    assert_true(n > 6);
    sniff_prefixes(hello, (size_t)n, 6, MESH_TLS_SNIFF_TLS);
    mesh_tls_conn_free(conn);
    close(cfd);
    close(sfd);
    mesh_tls_ctx_free(cctx);

    /* Request lines: HTTP once the method's space came. */
    static const char *const requests[] = {
        "GET /index.html HTTP/1.1\r\n", "OPTIONS * HTTP/1.1\r\n",   "CONNECT db:5432 HTTP/1.1\r\n",
        "M-SEARCH * HTTP/1.1\r\n",      "PRI * HTTP/2.0\r\n\r\nSM", "X_PURGE /cache HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
        sniff_prefixes(requests[i], strlen(requests[i]), strcspn(requests[i], " ") + 1,
                       MESH_TLS_SNIFF_HTTP);

    /* The limit: a method of 15 letters is still one; one of 16 is not, whatever follows,
     * and the bytes past MESH_TLS_SNIFF_BYTES are not looked at. */
    assert_int_equal(MESH_TLS_SNIFF_BYTES, 16);
    sniff_prefixes("ABCDEFGHIJKLMNO / HTTP/1.1", 26, 16, MESH_TLS_SNIFF_HTTP);
    sniff_prefixes("ABCDEFGHIJKLMNOP / HTTP/1.1", 27, 16, MESH_TLS_SNIFF_OTHER);
    char big[4096];
    memset(big, 'A', sizeof(big));
    big[20] = ' ';
    assert_int_equal(sniff_exact(big, sizeof(big)), MESH_TLS_SNIFF_OTHER);

    /* Handshake records that are no ClientHello, told at the byte that shows it. */
    static const unsigned char server_hello[] = {0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00};
    sniff_prefixes(server_hello, sizeof(server_hello), 6, MESH_TLS_SNIFF_OTHER);
    assert_int_equal(sniff_exact("\x16\x03\x05", 3), MESH_TLS_SNIFF_OTHER);
    assert_int_equal(sniff_exact("\x16\x03\x05", 2), MESH_TLS_SNIFF_NEED_MORE);
    assert_int_equal(sniff_exact("\x16\x04", 2), MESH_TLS_SNIFF_OTHER);
    static const unsigned char ssl3[] = {0x16, 0x03, 0x00, 0x00, 0x30, 0x01};
    assert_int_equal(sniff_exact(ssl3, 6), MESH_TLS_SNIFF_TLS);

    /* Other records and protocols, and garbage: OTHER at the first byte that cannot start
     * either. */
    static const struct {
        const char *bytes;
        size_t len;
    } other[] = {
        {"\x17\x03\x03\x00\x10", 5}, /* TLS application data */
        {"\x15\x03\x03\x00\x02", 5}, /* a TLS alert */
        {"\0\0\0\0", 4},
        {"\r\n\r\n", 4},
        {"\xff\xfe", 2},
        {"GET\t/", 5},
        {"Get /", 5},
        {"1GET /", 6},
        {" ", 1},
        {"SSH-2.0-OpenSSH_9.2\r\n", 21},
        {"\x05\x01\x00", 3}, /* SOCKS 5 */
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        if (sniff_exact(other[i].bytes, other[i].len) != MESH_TLS_SNIFF_OTHER)
            fail_msg("case %zu is not OTHER", i);
}

/* --- contexts adopted from the caller's SSL_CTX --- */

static int ssl_ctx_frees_index = -1;

/* Counts an SSL_CTX's last free, through the int its ex_data points at. */
static void count_ssl_ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                               void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr)
        (*(int *)ptr)++;
}

/* An SSL_CTX as the TLS plugin builds one: our certificate and key (cert NULL: none), the CAs
 * to trust, nothing else. *frees counts its final free. */
static SSL_CTX *caller_ssl_ctx(const struct test_cert *cert, const struct test_cert *trust,
                               int *frees)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_method());
    assert_non_null(ssl);
    if (cert) {
        assert_int_equal(SSL_CTX_use_certificate(ssl, cert->x), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ssl, cert->key), 1);
    }
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ssl), trust->x), 1);
    if (ssl_ctx_frees_index < 0)
        ssl_ctx_frees_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, count_ssl_ctx_free);
    assert_true(ssl_ctx_frees_index >= 0);
    assert_int_equal(SSL_CTX_set_ex_data(ssl, ssl_ctx_frees_index, frees), 1);
    return ssl;
}

/* Adopts ssl, then lets go of the caller's reference, as the plugin does. */
static struct mesh_tls_ctx *adopt(SSL_CTX *ssl, const struct mesh_tls_adopt *opt)
{
    struct mesh_tls_ctx *ctx = NULL;
    char *msg = NULL;
    if (mesh_tls_ctx_adopt(ssl, opt, &ctx, &msg) != MESH_OK)
        fail_msg("adopt: %s", msg ? msg : "(no message)");
    assert_null(msg);
    assert_ptr_equal(mesh_tls_ctx_ssl(ctx), ssl);
    SSL_CTX_free(ssl);
    return ctx;
}

static void test_adopted_contexts_do_mutual_tls(void **state)
{
    (void)state;
    int server_frees = 0, client_frees = 0, bare_frees = 0, wary_frees = 0;
    struct mesh_tls_adopt sopt = {
        .server = true, .verify_clients = MESH_TLS_VERIFY_REQUIRED, .alpn = "h2,http/1.1"};
    struct mesh_tls_adopt copt = {.alpn = "http/1.1", .resume_sessions = true};
    struct mesh_tls_adopt bare_opt = {.alpn = "http/1.1"};
    struct mesh_tls_ctx *sctx = adopt(caller_ssl_ctx(&C.orders, &C.ca, &server_frees), &sopt);
    struct mesh_tls_ctx *cctx = adopt(caller_ssl_ctx(&C.client, &C.ca, &client_frees), &copt);
    struct mesh_tls_peer peer;
    struct pair p;
    char buf[2];

    /* The contexts hold their own references: the caller's free freed nothing. */
    assert_int_equal(server_frees, 0);
    assert_int_equal(client_frees, 0);
    assert_string_equal(mesh_tls_ctx_subject(sctx), "CN=orders");
    assert_true(mesh_tls_ctx_not_after(sctx) > time(NULL));
    assert_string_equal(mesh_tls_ctx_subject(cctx), "CN=web");

    /* Mutual TLS; the second connection resumes, and the server still knows the client. */
    for (int round = 0; round < 3; round++) {
        pair_open_expecting(&p, cctx, sctx, SPIFFE_ORDERS);
        pair_handshake(&p);
        assert_int_equal(p.cst, MESH_TLS_DONE);
        assert_int_equal(p.sst, MESH_TLS_DONE);
        assert_int_equal(mesh_tls_conn_resumed(p.client), round > 0);
        assert_int_equal(mesh_tls_conn_resumed(p.server), round > 0);
        assert_string_equal(mesh_tls_conn_alpn(p.client), "http/1.1");
        assert_string_equal(mesh_tls_conn_alpn(p.server), "http/1.1");
        assert_int_equal(mesh_tls_conn_peer(p.server, &peer), MESH_OK);
        assert_string_equal(peer.subject, "CN=web");
        assert_int_equal(peer.n_uri_sans, 1);
        assert_string_equal(peer.uri_sans[0], SPIFFE_WEB);
        write_all(p.server, "x");
        read_exactly(p.client, p.cfd, p.sfd, buf, 1);
        pair_close(&p);
    }
    /* An adopted client checks identities too. */
    pair_open_expecting(&p, cctx, sctx, SPIFFE_PAY);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_failure(p.client, MESH_TLS_FAIL_WRONG_IDENTITY);
    pair_close(&p);

    /* The server was made to require client certificates. */
    struct mesh_tls_ctx *bare = adopt(caller_ssl_ctx(NULL, &C.ca, &bare_frees), &bare_opt);
    pair_open_expecting(&p, bare, sctx, SPIFFE_ORDERS);
    pair_handshake(&p);
    assert_int_equal(p.sst, MESH_TLS_ERROR);
    assert_failure(p.server, MESH_TLS_FAIL_NO_CERTIFICATE);
    if (p.cst == MESH_TLS_DONE)
        p.cst = read_exactly(p.client, p.cfd, p.sfd, buf, 1);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    assert_failure(p.client, MESH_TLS_FAIL_NO_CERTIFICATE);
    pair_close(&p);

    /* An adopted client verifies the chain with its SSL_CTX's trust store, in tls.h's words. */
    struct mesh_tls_ctx *wary = adopt(caller_ssl_ctx(NULL, &C.other_ca, &wary_frees), &bare_opt);
    pair_open_expecting(&p, wary, sctx, SPIFFE_ORDERS);
    pair_handshake(&p);
    assert_int_equal(p.cst, MESH_TLS_ERROR);
    /* (OpenSSL's automatic chain sends the server's root along: which certificate is named
     * depends on that.) */
    if (!strstr(mesh_tls_conn_error(p.client), "certificate verify failed (unknown CA): "))
        fail_msg("client error \"%s\"", mesh_tls_conn_error(p.client));
    assert_failure(p.client, MESH_TLS_FAIL_UNKNOWN_CA);
    pair_close(&p);

    /* Each SSL_CTX goes with the last context holding it, once. */
    mesh_tls_ctx_free(wary);
    mesh_tls_ctx_free(bare);
    mesh_tls_ctx_free(cctx);
    assert_int_equal(client_frees, 1);
    assert_int_equal(server_frees, 0);
    mesh_tls_ctx_free(sctx);
    assert_int_equal(server_frees, 1);
    assert_int_equal(bare_frees, 1);
    assert_int_equal(wary_frees, 1);
}

static void test_adopt_refusals_leave_the_ssl_ctx_to_its_caller(void **state)
{
    (void)state;
    int frees = 0;
    SSL_CTX *ssl = caller_ssl_ctx(NULL, &C.ca, &frees);
    char dummy;
    struct mesh_tls_ctx *poison = (struct mesh_tls_ctx *)(void *)&dummy, *ctx = poison;
    char *msg = NULL;

    struct mesh_tls_adopt server = {.server = true};
    assert_int_equal(mesh_tls_ctx_adopt(ssl, &server, &ctx, &msg), MESH_E_INVALID);
    assert_null(ctx);
    assert_non_null(msg);
    assert_string_equal(msg, "a TLS server needs a certificate and its key");
    free(msg);
    msg = NULL;
    ctx = poison;
    assert_int_equal(mesh_tls_ctx_adopt(ssl, &server, &ctx, NULL), MESH_E_INVALID);
    assert_null(ctx);

    /* Refused after the context took its reference: it gives the reference back. */
    struct mesh_tls_adopt bad_alpn = {.alpn = "h2,,http/1.1"};
    ctx = poison;
    assert_int_equal(mesh_tls_ctx_adopt(ssl, &bad_alpn, &ctx, &msg), MESH_E_INVALID);
    assert_null(ctx);
    assert_non_null(msg);
    if (!strstr(msg, "ALPN list \"h2,,http/1.1\""))
        fail_msg("\"%s\"", msg);
    free(msg);

    assert_int_equal(frees, 0);
    SSL_CTX_free(ssl); /* the caller's reference was the only one left */
    assert_int_equal(frees, 1);
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
        cmocka_unit_test(test_drained_says_when_a_read_took_everything),
        cmocka_unit_test(test_close_notify_and_truncation),
        cmocka_unit_test(test_sniff_tells_tls_from_plaintext),
        cmocka_unit_test(test_context_refusals_are_named),
        cmocka_unit_test(test_expecting_accepts_only_that_spiffe_id),
        cmocka_unit_test(test_expecting_refuses_what_it_cannot_check),
        cmocka_unit_test(test_expecting_sessions_are_cached_per_identity),
        cmocka_unit_test(test_client_certificate_refusals_have_their_cause),
        cmocka_unit_test(test_broken_handshake_is_other),
        cmocka_unit_test(test_failure_names),
        cmocka_unit_test(test_sniff_reads_prefixes_up_to_its_limit),
        cmocka_unit_test(test_adopted_contexts_do_mutual_tls),
        cmocka_unit_test(test_adopt_refusals_leave_the_ssl_ctx_to_its_caller),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (listener >= 0)
        close(listener);
    return rc;
}
