/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin's per-connection TLS entries that are more than net/tls.c's functions as they are:
 * a server context from the gateway's certificate and key files, and a server connection. */
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
