/* SPDX-License-Identifier: Apache-2.0 */
/* Sockets for the data plane: address text <-> sockaddr, listen, accept4, non-blocking connect. */
#define _GNU_SOURCE /* accept4 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_MAX 256

__attribute__((format(printf, 3, 4))) static void set_msg(char *msg, size_t size, const char *fmt,
                                                          ...)
{
    if (msg == NULL || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

/* "1.2.3.4:80" for messages, or "?" for what cannot be printed. */
static void addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    if (sa == NULL || mesh_sock_format_addr(sa, len, buf, size) != MESH_OK)
        snprintf(buf, size, "?");
}

static bool parse_port(const char *s, in_port_t *out)
{
    unsigned long v = 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 5)
            return false;
        v = v * 10 + (unsigned long)(s[n] - '0');
    }
    if (n == 0 || v > 65535)
        return false;
    *out = htons((in_port_t)v);
    return true;
}

static enum mesh_err resolve_host(const char *text, const char *host, in_port_t port,
                                  struct sockaddr_storage *out, socklen_t *out_len, char *msg,
                                  size_t msg_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        set_msg(msg, msg_size, "address \"%s\": cannot resolve \"%s\": %s", text, host,
                rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return MESH_E_NOTFOUND;
    }
    enum mesh_err err = MESH_OK;
    memset(out, 0, sizeof(*out));
    if (res->ai_family == AF_INET && res->ai_addrlen == sizeof(struct sockaddr_in)) {
        memcpy(out, res->ai_addr, sizeof(struct sockaddr_in));
        ((struct sockaddr_in *)out)->sin_port = port;
        *out_len = sizeof(struct sockaddr_in);
    } else if (res->ai_family == AF_INET6 && res->ai_addrlen == sizeof(struct sockaddr_in6)) {
        memcpy(out, res->ai_addr, sizeof(struct sockaddr_in6));
        ((struct sockaddr_in6 *)out)->sin6_port = port;
        *out_len = sizeof(struct sockaddr_in6);
    } else {
        set_msg(msg, msg_size, "address \"%s\": \"%s\" resolves to an unsupported family", text,
                host);
        err = MESH_E_UNSUPPORTED;
    }
    freeaddrinfo(res);
    return err;
}

enum mesh_err mesh_sock_parse_addr(const char *text, unsigned flags, struct sockaddr_storage *out,
                                   socklen_t *out_len, char *msg, size_t msg_size)
{
    char host[HOST_MAX];
    const char *port_text;
    bool bracketed = false;

    if (text == NULL || text[0] == '\0') {
        set_msg(msg, msg_size, "address is empty: expected host:port");
        return MESH_E_INVALID;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL) {
            set_msg(msg, msg_size, "address \"%s\": missing ']' after the IPv6 address", text);
            return MESH_E_INVALID;
        }
        if (close[1] != ':') {
            set_msg(msg, msg_size, "address \"%s\": expected ':port' after ']'", text);
            return MESH_E_INVALID;
        }
        size_t n = (size_t)(close - (text + 1));
        if (n == 0 || n >= sizeof(host)) {
            set_msg(msg, msg_size, "address \"%s\": bad IPv6 address", text);
            return MESH_E_INVALID;
        }
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port_text = close + 2;
        bracketed = true;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL) {
            set_msg(msg, msg_size, "address \"%s\": missing ':port'", text);
            return MESH_E_INVALID;
        }
        size_t n = (size_t)(colon - text);
        if (n >= sizeof(host)) {
            set_msg(msg, msg_size, "address \"%s\": host is too long", text);
            return MESH_E_INVALID;
        }
        memcpy(host, text, n);
        host[n] = '\0';
        if (memchr(host, ':', n) != NULL) {
            set_msg(msg, msg_size, "address \"%s\": write IPv6 addresses as [address]:port", text);
            return MESH_E_INVALID;
        }
        port_text = colon + 1;
    }

    in_port_t port;
    if (!parse_port(port_text, &port)) {
        set_msg(msg, msg_size, "address \"%s\": port \"%s\" is not a number from 0 to 65535", text,
                port_text);
        return MESH_E_INVALID;
    }

    memset(out, 0, sizeof(*out));
    if (bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            set_msg(msg, msg_size, "address \"%s\": \"%s\" is not an IPv6 address", text, host);
            return MESH_E_INVALID;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = port;
        *out_len = sizeof(*sin6);
        return MESH_OK;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    if (host[0] == '\0' || inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        if (host[0] == '\0')
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_family = AF_INET;
        sin->sin_port = port;
        *out_len = sizeof(*sin);
        return MESH_OK;
    }
    if (!(flags & MESH_SOCK_F_RESOLVE)) {
        set_msg(msg, msg_size, "address \"%s\": \"%s\" is not a numeric IPv4 address", text, host);
        return MESH_E_INVALID;
    }
    return resolve_host(text, host, port, out, out_len, msg, msg_size);
}

enum mesh_err mesh_sock_format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
                                    size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
    } else {
        if (size >= 2)
            snprintf(buf, size, "?");
        return MESH_E_INVALID;
    }
    if (n < 0 || (size_t)n >= size) {
        if (size >= 2)
            snprintf(buf, size, "?");
        return MESH_E_INVALID;
    }
    return MESH_OK;
}

/* Reports a failed step: names the address and the reason, closes fd, keeps errno. */
static enum mesh_err step_failed(const char *what, const char *step, const struct sockaddr *sa,
                                 socklen_t len, int fd, char *msg, size_t msg_size)
{
    int saved = errno;
    char at[MESH_SOCK_ADDR_STRLEN];
    addr_text(sa, len, at, sizeof(at));
    if (step != NULL)
        set_msg(msg, msg_size, "%s %s: %s: %s", what, at, step, strerror(saved));
    else
        set_msg(msg, msg_size, "%s %s: %s", what, at, strerror(saved));
    if (fd >= 0)
        close(fd);
    errno = saved;
    return MESH_E_IO;
}

enum mesh_err mesh_sock_listen(const struct sockaddr *sa, socklen_t len, unsigned flags,
                               int *out_fd, char *msg, size_t msg_size)
{
    const char *step = NULL;
    int one = 1;

    *out_fd = -1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        step = "socket";
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        step = "SO_REUSEADDR";
    else if ((flags & MESH_SOCK_F_REUSEPORT) &&
             setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        step = "SO_REUSEPORT";
    else if (bind(fd, sa, len) < 0)
        step = "bind";
    else if (listen(fd, MESH_SOCK_LISTEN_BACKLOG) < 0)
        step = "listen";
    if (step != NULL)
        return step_failed("listen", step, sa, len, fd, msg, msg_size);
    *out_fd = fd;
    return MESH_OK;
}

enum mesh_err mesh_sock_local_addr(int fd, struct sockaddr_storage *out, socklen_t *out_len)
{
    socklen_t len = sizeof(*out);
    if (getsockname(fd, (struct sockaddr *)out, &len) < 0)
        return MESH_E_IO;
    *out_len = len;
    return MESH_OK;
}

static void set_nodelay(int fd)
{
    int one = 1;
    /* Best effort: a socket that refuses it still works, only with Nagle's delays. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

enum mesh_err mesh_sock_accept(int lfd, int *out_fd, struct sockaddr_storage *peer,
                               socklen_t *peer_len)
{
    socklen_t len = sizeof(*peer);
    int fd = accept4(lfd, (struct sockaddr *)peer, peer != NULL ? &len : NULL,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        *out_fd = -1;
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        /* accept(2): Linux passes pending network errors of the new connection to accept;
         * they concern that connection only, so the listener carries on. */
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            return MESH_E_AGAIN;
        default:
            return MESH_E_IO;
        }
    }
    set_nodelay(fd);
    if (peer_len != NULL)
        *peer_len = peer != NULL ? len : 0;
    *out_fd = fd;
    return MESH_OK;
}

/* Errors that say the destination is not there (retry elsewhere), not that we are broken. */
static bool unreachable(int e)
{
    switch (e) {
    case ECONNREFUSED:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ETIMEDOUT:
    case ECONNRESET:
        return true;
    default:
        return false;
    }
}

enum mesh_err mesh_sock_connect(const struct sockaddr *sa, socklen_t len, int *out_fd, char *msg,
                                size_t msg_size)
{
    *out_fd = -1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return step_failed("connect", "socket", sa, len, -1, msg, msg_size);
    set_nodelay(fd);
    if (connect(fd, sa, len) == 0) {
        *out_fd = fd;
        return MESH_OK;
    }
    /* EINTR: a non-blocking connect carries on in the background, same as EINPROGRESS. */
    if (errno == EINPROGRESS || errno == EINTR) {
        *out_fd = fd;
        return MESH_E_AGAIN;
    }
    bool down = unreachable(errno);
    step_failed("connect", NULL, sa, len, fd, msg, msg_size);
    return down ? MESH_E_UNAVAILABLE : MESH_E_IO;
}

enum mesh_err mesh_sock_connect_finish(int fd, const struct sockaddr *sa, socklen_t len, char *msg,
                                       size_t msg_size)
{
    int soerr = 0;
    socklen_t optlen = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &optlen) < 0)
        soerr = errno;
    if (soerr == 0) {
        /* SO_ERROR is also 0 while the handshake is still running: ask whether there is a
         * peer yet. */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
            return MESH_OK;
        if (errno != ENOTCONN)
            soerr = errno;
        else
            return MESH_E_AGAIN;
    }
    if (soerr == EINPROGRESS || soerr == EALREADY)
        return MESH_E_AGAIN;
    errno = soerr;
    step_failed("connect", NULL, sa, len, -1, msg, msg_size);
    return unreachable(soerr) ? MESH_E_UNAVAILABLE : MESH_E_IO;
}
