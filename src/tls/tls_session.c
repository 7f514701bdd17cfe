/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin's per-connection TLS entries that are more than net/tls.c's functions as they are:
 * a server context from the gateway's certificate and key files, a server connection, the
 * identity's contexts, and the peer's SPIFFE ID. */
#include "tls_internal.h"

enum mesh_err mesh_tls_server_ctx_new(const char *cert_file, const char *key_file,
                                      struct mesh_tls_ctx **out, char **why)
{
    /* http/1.1 by ALPN, so that a client that offers h2 first (curl does) is told plainly what
     * it gets rather than guessing from no answer. */
    struct mesh_tls_options opt = {
        .server = true,
        .cert_file = cert_file,
        .key_file = key_file,
        .verify_clients = MESH_TLS_VERIFY_NONE,
        .alpn = "http/1.1",
    };
    *why = NULL;
    return mesh_tls_ctx_new(&opt, out, why);
}

enum mesh_err mesh_tls_server_conn_new(struct mesh_tls_ctx *ctx, int fd, struct mesh_tls_conn **out)
{
    return mesh_tls_conn_new(ctx, fd, NULL, out);
}

struct mesh_tls_ctx *mesh_tls_identity_server_ctx(struct mesh_tls_identity *id)
{
    return id->server_ctx;
}

struct mesh_tls_ctx *mesh_tls_identity_client_ctx(struct mesh_tls_identity *id)
{
    return id->client_ctx;
}

const char *mesh_tls_conn_peer_id(struct mesh_tls_conn *conn)
{
    struct mesh_tls_peer peer;
    if (mesh_tls_conn_peer(conn, &peer) != MESH_OK || peer.n_uri_sans == 0)
        return NULL;
    return peer.uri_sans[0];
}
