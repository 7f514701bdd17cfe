/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy-tls.so's one exported symbol: the table of its functions (proxy/tls_plugin.h).
 * Everything else in the plugin is built with hidden visibility, src/net/tls.c included (the
 * per-connection entries are its functions). */
#include <openssl/crypto.h>

#include "net/http_client_tls.h"
#include "tls_internal.h"

static const char *library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

__attribute__((visibility("default"))) const struct mesh_tls_ops mesh_tls_plugin_table = {
    .abi = MESH_TLS_ABI,
    .size = sizeof(struct mesh_tls_ops),
    .library_version = library_version,
    .key_new = mesh_tls_key_new,
    .key_free = mesh_tls_key_free,
    .csr_pem = mesh_tls_csr_pem,
    .identity_build = mesh_tls_identity_build,
    .identity_ref = mesh_tls_identity_ref,
    .identity_unref = mesh_tls_identity_unref,
    .identity_facts = mesh_tls_identity_facts,
    .server_ctx_new = mesh_tls_server_ctx_new,
    .ctx_free = mesh_tls_ctx_free,
    .conn_new = mesh_tls_server_conn_new,
    .handshake = mesh_tls_handshake,
    .read = mesh_tls_read,
    .writev = mesh_tls_writev,
    .shutdown = mesh_tls_shutdown,
    .conn_free = mesh_tls_conn_free,
    .conn_error = mesh_tls_conn_error,
    .conn_alpn = mesh_tls_conn_alpn,
    .identity_server_ctx = mesh_tls_identity_server_ctx,
    .identity_client_ctx = mesh_tls_identity_client_ctx,
    .client_conn_new = mesh_tls_conn_new_expecting,
    .conn_peer_id = mesh_tls_conn_peer_id,
    .conn_failure = mesh_tls_conn_failure,
    .conn_resumed = mesh_tls_conn_resumed,
    .conn_version = mesh_tls_conn_version,
    .http_tls = &mesh_http_tls_openssl,
    .http_tls_set_default_ca = mesh_http_client_tls_set_default_ca,
    .conn_drained = mesh_tls_conn_drained,
};
