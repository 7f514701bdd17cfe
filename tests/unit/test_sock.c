/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/sock: address text both ways, listen/accept/connect, connect errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/sock.h"

/* Parses text and prints it back. */
static void round_trip(const char *text, const char *want, int family)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char msg[256] = "";
    char out[MESH_SOCK_ADDR_STRLEN];
    assert_int_equal(mesh_sock_parse_addr(text, 0, &ss, &len, msg, sizeof(msg)), MESH_OK);
    assert_int_equal(ss.ss_family, family);
    assert_int_equal(len,
                     family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&ss, len, out, sizeof(out)), MESH_OK);
    assert_string_equal(out, want);
}

static void test_sock_parses_and_formats_addresses(void **state)
{
    (void)state;
    round_trip("127.0.0.1:8080", "127.0.0.1:8080", AF_INET);
    round_trip("10.1.2.3:0", "10.1.2.3:0", AF_INET);
    round_trip(":80", "0.0.0.0:80", AF_INET);
    round_trip("0.0.0.0:65535", "0.0.0.0:65535", AF_INET);
    round_trip("[::1]:443", "[::1]:443", AF_INET6);
    round_trip("[::]:9000", "[::]:9000", AF_INET6);
    round_trip("[2001:db8:0:0:0:0:0:1]:1", "[2001:db8::1]:1", AF_INET6);
    round_trip("[::ffff:192.0.2.1]:7", "[::ffff:192.0.2.1]:7", AF_INET6);
}

static void bad(const char *text, const char *needle)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char msg[256] = "";
    assert_int_equal(mesh_sock_parse_addr(text, 0, &ss, &len, msg, sizeof(msg)), MESH_E_INVALID);
    if (strstr(msg, needle) == NULL)
        fail_msg("address \"%s\": message \"%s\" lacks \"%s\"", text, msg, needle);
}

static void test_sock_rejects_bad_addresses(void **state)
{
    (void)state;
    bad("", "empty");
    bad(NULL, "empty");
    bad("127.0.0.1", "\"127.0.0.1\": missing ':port'");
    bad("127.0.0.1:", "port \"\"");
    bad("127.0.0.1:65536", "port \"65536\"");
    bad("127.0.0.1:123456", "port");
    bad("127.0.0.1:80x", "port \"80x\"");
    bad("127.0.0.1:-1", "port");
    bad("256.1.1.1:80", "\"256.1.1.1\" is not a numeric IPv4 address");
    bad("example.com:80", "\"example.com\" is not a numeric IPv4 address");
    bad("::1:80", "[address]:port");
    bad("[::1]80", "expected ':port' after ']'");
    bad("[::1", "missing ']'");
    bad("[]:80", "bad IPv6 address");
    bad("[1.2.3.4]:80", "not an IPv6 address");
    bad("[::1]:", "port");
    /* The message buffer is optional, and a short one is truncated, not overrun. */
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(mesh_sock_parse_addr("x", 0, &ss, &len, NULL, 0), MESH_E_INVALID);
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    assert_int_equal(mesh_sock_parse_addr("x", 0, &ss, &len, tiny, sizeof(tiny)), MESH_E_INVALID);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static void test_sock_resolves_names_only_when_asked(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char msg[256];
    assert_int_equal(mesh_sock_parse_addr("localhost:81", 0, &ss, &len, msg, sizeof(msg)),
                     MESH_E_INVALID);
    assert_int_equal(
        mesh_sock_parse_addr("localhost:81", MESH_SOCK_F_RESOLVE, &ss, &len, msg, sizeof(msg)),
        MESH_OK);
    char out[MESH_SOCK_ADDR_STRLEN];
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&ss, len, out, sizeof(out)), MESH_OK);
    assert_true(strcmp(out, "127.0.0.1:81") == 0 || strcmp(out, "[::1]:81") == 0);
    assert_int_equal(mesh_sock_parse_addr("no-such-host.invalid:80", MESH_SOCK_F_RESOLVE, &ss, &len,
                                          msg, sizeof(msg)),
                     MESH_E_NOTFOUND);
    assert_non_null(strstr(msg, "no-such-host.invalid"));
}

static void test_sock_format_refuses_short_buffers_and_other_families(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(mesh_sock_parse_addr("[2001:db8::1]:65535", 0, &ss, &len, NULL, 0), MESH_OK);
    char small[10];
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&ss, len, small, sizeof(small)),
                     MESH_E_INVALID);
    assert_string_equal(small, "?");
    struct sockaddr_storage un = {.ss_family = AF_UNIX};
    char out[MESH_SOCK_ADDR_STRLEN];
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&un, sizeof(un), out, sizeof(out)),
                     MESH_E_INVALID);
    /* The longest IPv6 text fits MESH_SOCK_ADDR_STRLEN. */
    assert_int_equal(mesh_sock_parse_addr("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
                                          0, &ss, &len, NULL, 0),
                     MESH_OK);
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&ss, len, out, sizeof(out)), MESH_OK);
}

static int wait_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 5000);
}

static void test_sock_listen_connect_accept(void **state)
{
    (void)state;
    struct sockaddr_storage ss, bound, peer;
    socklen_t len, blen, plen;
    char msg[256] = "";
    int lfd, cfd, sfd;
    assert_int_equal(mesh_sock_parse_addr("127.0.0.1:0", 0, &ss, &len, NULL, 0), MESH_OK);
    assert_int_equal(mesh_sock_listen((struct sockaddr *)&ss, len, MESH_SOCK_F_REUSEPORT, &lfd, msg,
                                      sizeof(msg)),
                     MESH_OK);
    /* Nothing pending yet. */
    assert_int_equal(mesh_sock_accept(lfd, &sfd, &peer, &plen), MESH_E_AGAIN);
    assert_int_equal(sfd, -1);

    assert_int_equal(mesh_sock_local_addr(lfd, &bound, &blen), MESH_OK);
    assert_int_not_equal(((struct sockaddr_in *)&bound)->sin_port, 0);
    enum mesh_err err = mesh_sock_connect((struct sockaddr *)&bound, blen, &cfd, msg, sizeof(msg));
    assert_true(err == MESH_OK || err == MESH_E_AGAIN);
    assert_true(cfd >= 0);
    assert_int_equal(wait_writable(cfd), 1);
    assert_int_equal(
        mesh_sock_connect_finish(cfd, (struct sockaddr *)&bound, blen, msg, sizeof(msg)), MESH_OK);

    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(mesh_sock_accept(lfd, &sfd, &peer, &plen), MESH_OK);
    char text[MESH_SOCK_ADDR_STRLEN];
    assert_int_equal(mesh_sock_format_addr((struct sockaddr *)&peer, plen, text, sizeof(text)),
                     MESH_OK);
    assert_memory_equal(text, "127.0.0.1:", 10);
    assert_int_equal(write(cfd, "hi", 2), 2);
    char buf[4];
    assert_int_equal(poll(&(struct pollfd){.fd = sfd, .events = POLLIN}, 1, 5000), 1);
    assert_int_equal(read(sfd, buf, sizeof(buf)), 2);
    /* Accepted sockets are non-blocking. */
    assert_int_equal(read(sfd, buf, sizeof(buf)), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

    /* A second listener on the same port: refused without SO_REUSEPORT on both... */
    int lfd2;
    assert_int_equal(mesh_sock_listen((struct sockaddr *)&bound, blen, 0, &lfd2, msg, sizeof(msg)),
                     MESH_E_IO);
    assert_int_equal(lfd2, -1);
    char want[128];
    mesh_sock_format_addr((struct sockaddr *)&bound, blen, text, sizeof(text));
    snprintf(want, sizeof(want), "listen %s: bind: %s", text, strerror(EADDRINUSE));
    assert_string_equal(msg, want);
    /* ...accepted with it. */
    assert_int_equal(mesh_sock_listen((struct sockaddr *)&bound, blen, MESH_SOCK_F_REUSEPORT, &lfd2,
                                      msg, sizeof(msg)),
                     MESH_OK);
    close(lfd2);
    close(sfd);
    close(cfd);
    close(lfd);
}

static void test_sock_connect_to_closed_port_fails(void **state)
{
    (void)state;
    struct sockaddr_storage ss, bound;
    socklen_t len, blen;
    int lfd, cfd;
    char msg[256] = "";
    /* Take a free port, then close it so nobody listens there. */
    assert_int_equal(mesh_sock_parse_addr("127.0.0.1:0", 0, &ss, &len, NULL, 0), MESH_OK);
    assert_int_equal(mesh_sock_listen((struct sockaddr *)&ss, len, 0, &lfd, NULL, 0), MESH_OK);
    assert_int_equal(mesh_sock_local_addr(lfd, &bound, &blen), MESH_OK);
    close(lfd);

    char at[MESH_SOCK_ADDR_STRLEN];
    mesh_sock_format_addr((struct sockaddr *)&bound, blen, at, sizeof(at));
    enum mesh_err err = mesh_sock_connect((struct sockaddr *)&bound, blen, &cfd, msg, sizeof(msg));
    if (err == MESH_E_AGAIN) {
        assert_int_equal(wait_writable(cfd), 1);
        err = mesh_sock_connect_finish(cfd, (struct sockaddr *)&bound, blen, msg, sizeof(msg));
        assert_int_equal(errno, ECONNREFUSED);
        close(cfd);
    } else {
        assert_int_equal(cfd, -1);
    }
    assert_int_equal(err, MESH_E_UNAVAILABLE);
    char want[128];
    snprintf(want, sizeof(want), "connect %s: %s", at, strerror(ECONNREFUSED));
    assert_string_equal(msg, want);
}

static void test_sock_connect_finish_before_completion_is_again(void **state)
{
    (void)state;
    /* A listener whose backlog is full would do; simpler: a socket that never connected. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(mesh_sock_connect_finish(fd, NULL, 0, NULL, 0), MESH_E_AGAIN);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sock_parses_and_formats_addresses),
        cmocka_unit_test(test_sock_rejects_bad_addresses),
        cmocka_unit_test(test_sock_resolves_names_only_when_asked),
        cmocka_unit_test(test_sock_format_refuses_short_buffers_and_other_families),
        cmocka_unit_test(test_sock_listen_connect_accept),
        cmocka_unit_test(test_sock_connect_to_closed_port_fails),
        cmocka_unit_test(test_sock_connect_finish_before_completion_is_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
