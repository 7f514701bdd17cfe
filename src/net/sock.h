/* SPDX-License-Identifier: Apache-2.0 */
/* Sockets for the data plane: address parsing and printing, listen, accept, non-blocking connect.
 */
#ifndef MESH_NET_SOCK_H
#define MESH_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "mesh/err.h"

/* Longest text mesh_sock_format_addr writes, NUL included: "[v6-address]:65535". */
#define MESH_SOCK_ADDR_STRLEN 56

#define MESH_SOCK_LISTEN_BACKLOG 4096

/* Flags of mesh_sock_parse_addr. */
#define MESH_SOCK_F_RESOLVE 0x1u /* host may be a name (getaddrinfo): config time only */

/* Flags of mesh_sock_listen. */
#define MESH_SOCK_F_REUSEPORT 0x1u /* SO_REUSEPORT: one listener per worker on the same address */

/* Every function here is thread-safe. Error messages go to msg (msg_size bytes, NUL-terminated,
 * may be NULL) and name the address and the system's reason, as in
 * `connect 127.0.0.1:9: Connection refused`. Functions that fail on a syscall leave errno set. */

/* Parses "host:port", "[v6]:port" or ":port" (the IPv4 wildcard 0.0.0.0) into out/out_len. The
 * host is numeric unless flags has MESH_SOCK_F_RESOLVE, which lets it be a name resolved with
 * getaddrinfo (first answer; blocking, so never on the request path). The port is decimal,
 * 0-65535. MESH_E_INVALID for bad text, MESH_E_NOTFOUND for a name that does not resolve. */
enum mesh_err mesh_sock_parse_addr(const char *text, unsigned flags, struct sockaddr_storage *out,
                                   socklen_t *out_len, char *msg, size_t msg_size);

/* Writes "1.2.3.4:80" or "[::1]:80" into buf (at least MESH_SOCK_ADDR_STRLEN bytes for any
 * address). MESH_E_INVALID for a family other than IPv4/IPv6 or a too-short buffer (buf then
 * holds "?" when it has room). */
enum mesh_err mesh_sock_format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
                                    size_t size);

/* Opens a non-blocking, close-on-exec listening TCP socket bound to sa with SO_REUSEADDR (and
 * SO_REUSEPORT when flags has MESH_SOCK_F_REUSEPORT), backlog MESH_SOCK_LISTEN_BACKLOG. On
 * MESH_OK the caller owns *out_fd; on MESH_E_IO *out_fd is -1. */
enum mesh_err mesh_sock_listen(const struct sockaddr *sa, socklen_t len, unsigned flags,
                               int *out_fd, char *msg, size_t msg_size);

/* The address fd is bound to (the real port of a listener bound to port 0). MESH_E_IO on
 * failure. */
enum mesh_err mesh_sock_local_addr(int fd, struct sockaddr_storage *out, socklen_t *out_len);

/* Accepts one connection from listener lfd: non-blocking, close-on-exec, TCP_NODELAY; peer and
 * peer_len may be NULL. MESH_OK: the caller owns *out_fd. MESH_E_AGAIN: nothing to accept now
 * (also for a connection the peer aborted before it was accepted). MESH_E_IO: accept failed
 * (errno kept; EMFILE/ENFILE/ENOBUFS/ENOMEM mean resources ran out). */
enum mesh_err mesh_sock_accept(int lfd, int *out_fd, struct sockaddr_storage *peer,
                               socklen_t *peer_len);

/* Starts a non-blocking TCP connect to sa (close-on-exec, TCP_NODELAY). MESH_OK: connected
 * already. MESH_E_AGAIN: in progress; wait for MESH_IO_WRITE, then mesh_sock_connect_finish.
 * In both cases the caller owns *out_fd. MESH_E_UNAVAILABLE (refused, unreachable, no route) or
 * MESH_E_IO (anything else): failed at once; *out_fd is -1 and nothing is left open. */
enum mesh_err mesh_sock_connect(const struct sockaddr *sa, socklen_t len, int *out_fd, char *msg,
                                size_t msg_size);

/* Finishes a connect that answered MESH_E_AGAIN once fd turned writable (or reported an error):
 * reads SO_ERROR. sa/len name the address in the message (sa may be NULL). MESH_OK: connected.
 * MESH_E_AGAIN: still in progress. MESH_E_UNAVAILABLE: refused, unreachable or timed out;
 * MESH_E_IO: anything else. On failure errno holds the socket's error; the caller still owns and
 * closes fd. */
enum mesh_err mesh_sock_connect_finish(int fd, const struct sockaddr *sa, socklen_t len, char *msg,
                                       size_t msg_size);

#endif
