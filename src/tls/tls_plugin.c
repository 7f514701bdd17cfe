/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy-tls.so's one exported symbol: the table of its functions (proxy/tls_plugin.h).
 * Everything else in the plugin is built with hidden visibility. */
#include <openssl/crypto.h>

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
};
