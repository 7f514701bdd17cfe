/* SPDX-License-Identifier: Apache-2.0 */
/* Inside meshproxy-tls.so: the identity as the plugin holds it, and the functions behind the
 * table (tls_plugin.c). Only the plugin's files and its white-box unit test include this;
 * meshproxy sees the identity as opaque (proxy/tls_plugin.h). */
#ifndef MESH_TLS_INTERNAL_H
#define MESH_TLS_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>

#include "proxy/tls_plugin.h"

/* The plugin's key is OpenSSL's: struct mesh_tls_key is never defined, only cast. */
static inline EVP_PKEY *mesh_tls_pkey(struct mesh_tls_key *key)
{
    return (EVP_PKEY *)key;
}

struct mesh_tls_identity {
    atomic_uint refs;
    EVP_PKEY *key;          /* ours, ECDSA P-256, generated in memory */
    X509 *leaf;             /* the certificate meshd issued for key */
    STACK_OF(X509) * chain; /* the issuing CA (meshd's "chain"), for peers to build the path */
    STACK_OF(X509) * roots; /* the trust bundle, in meshd's order */
    X509_STORE *trust;      /* roots, for verifying peers; shared by both contexts */
    /* TLS 1.2 minimum (1.3 when the peer has it), our certificate, key and chain loaded and
     * checked, peer certificates required and verified against trust. */
    struct mesh_tls_ctx *server_ctx;        /* for accepting (inbound mTLS) */
    struct mesh_tls_ctx *client_ctx;        /* for originating (outbound mTLS) */
    struct mesh_tls_facts facts;            /* its strings and roots are owned here */
    struct mesh_tls_root_facts *root_facts; /* facts.roots */
};

/* tls_plugin.c: the table, exported as MESH_TLS_PLUGIN_SYMBOL (the one symbol the plugin
 * exports; a unit test links it directly). */
extern const struct mesh_tls_ops mesh_tls_plugin_table;

/* tls_identity.c: the entries of the table, as documented in proxy/tls_plugin.h. */
enum mesh_err mesh_tls_key_new(struct mesh_tls_key **out);
void mesh_tls_key_free(struct mesh_tls_key *key);
enum mesh_err mesh_tls_csr_pem(struct mesh_tls_key *key, const char *cn, const char *spiffe_id,
                               char **out);
enum mesh_err mesh_tls_identity_build(struct mesh_tls_key *key, const struct mesh_tls_material *m,
                                      const char *workload, struct mesh_tls_identity **out,
                                      char **why);
void mesh_tls_identity_ref(struct mesh_tls_identity *id);
void mesh_tls_identity_unref(struct mesh_tls_identity *id);
const struct mesh_tls_facts *mesh_tls_identity_facts(const struct mesh_tls_identity *id);

/* tls_session.c: the per-connection entries that wrap net/tls.c (the others are its functions
 * themselves). */
enum mesh_err mesh_tls_server_ctx_new(const char *cert_file, const char *key_file,
                                      struct mesh_tls_ctx **out, char **why);
enum mesh_err mesh_tls_server_conn_new(struct mesh_tls_ctx *ctx, int fd,
                                       struct mesh_tls_conn **out);
struct mesh_tls_ctx *mesh_tls_identity_server_ctx(struct mesh_tls_identity *id);
struct mesh_tls_ctx *mesh_tls_identity_client_ctx(struct mesh_tls_identity *id);
const char *mesh_tls_conn_peer_id(struct mesh_tls_conn *conn);

#endif
