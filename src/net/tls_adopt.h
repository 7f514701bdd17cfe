/* SPDX-License-Identifier: Apache-2.0 */
/* For code that builds its own OpenSSL context (the TLS plugin's workload identity, whose key
 * never leaves memory as PEM): a tls.h context around it, with tls.h's peer verification,
 * messages, ALPN and session cache. The one place an OpenSSL type meets tls.h; include it only
 * where OpenSSL is linked. */
#ifndef MESH_NET_TLS_ADOPT_H
#define MESH_NET_TLS_ADOPT_H

#include <openssl/ssl.h>

#include "net/tls.h"

struct mesh_tls_adopt {
    bool server;
    enum mesh_tls_verify verify_clients; /* server only */
    const char *alpn;                    /* as mesh_tls_options.alpn */
    bool resume_sessions;                /* client only */
};

/* A context around ssl, which already holds the certificate, key, chain and trust store it
 * needs (a server: its certificate). Takes its own reference on ssl and sets its verification,
 * ALPN, mode and session cache: configure nothing of those on ssl after this. Errors as
 * mesh_tls_ctx_new. Free with mesh_tls_ctx_free. */
enum mesh_err mesh_tls_ctx_adopt(SSL_CTX *ssl, const struct mesh_tls_adopt *opt,
                                 struct mesh_tls_ctx **out, char **errmsg);

/* The OpenSSL context inside ctx, borrowed (white-box tests look at it). */
SSL_CTX *mesh_tls_ctx_ssl(struct mesh_tls_ctx *ctx);

#endif
