/* SPDX-License-Identifier: Apache-2.0 */
/* The boundary between meshproxy and its TLS plugin, meshproxy-tls.so: the one table of
 * functions the plugin exports, and the types that cross it. No OpenSSL type appears here.
 *
 * Why a plugin: libcrypto is built BIND_NOW and carries ~300 KB of relocations and ~370 KB of
 * .data.rel.ro, all processed when it is mapped; linked into meshproxy it raised the idle RSS of
 * a static-mode proxy (which never uses TLS) from 2.6 to 4.3 MiB. Every OpenSSL call is in the
 * plugin (src/tls), which meshproxy dlopen()s in sidecar and gateway modes only (tls_load.h).
 *
 * Compatibility: MESH_TLS_ABI changes when an entry changes meaning or signature, or when a type
 * below changes layout; meshproxy then refuses the plugin. New entries are only ever appended
 * to struct mesh_tls_ops, without changing MESH_TLS_ABI: the table's size says which it has, and
 * meshproxy refuses a plugin whose table is shorter than its own (tls_load.c).
 *
 * Per-connection TLS crosses as net/tls.h's opaque struct mesh_tls_ctx and mesh_tls_conn (the
 * plugin compiles src/net/tls.c; meshproxy never calls that file's functions, only the table's
 * entries) and its enums mesh_tls_status and mesh_tls_failure, whose values are therefore part of
 * this ABI. */
#ifndef MESH_PROXY_TLS_PLUGIN_H
#define MESH_PROXY_TLS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"
#include "net/tls.h" /* enum mesh_tls_status; struct mesh_tls_ctx and mesh_tls_conn, opaque here */

struct mesh_http_tls_ops; /* net/http_client.h */

#define MESH_TLS_ABI           1
#define MESH_TLS_PLUGIN_FILE   "meshproxy-tls.so"
#define MESH_TLS_PLUGIN_SYMBOL "mesh_tls_plugin_table" /* a const struct mesh_tls_ops */

/* A private key (ECDSA P-256), in memory only. Opaque. */
struct mesh_tls_key;

/* One workload certificate and everything built from it: the key, the leaf, the chain, the trust
 * bundle and the TLS contexts (server and client) made from them. Opaque, immutable once built,
 * reference-counted: a renewal builds a new one, and whoever took a reference (a /config_dump,
 * a TLS connection in the next slice) keeps its own until it drops it. */
struct mesh_tls_identity;

/* What meshd answered to POST /v1/proxies/{id}/certificate (docs/api.md). Borrowed strings;
 * NULL for a field it left out. */
struct mesh_tls_material {
    const char *certificate;  /* the leaf, PEM: required */
    const char *chain;        /* the issuing CA, PEM */
    const char *trust_bundle; /* every root, PEM: required */
    const char *spiffe_id;    /* required */
    const char *serial;       /* hex; when given, must be the leaf's */
    const char *ca;           /* the issuing CA's name */
};

/* A root of the trust bundle, as /config_dump shows it. */
struct mesh_tls_root_facts {
    const char *subject;      /* RFC 2253: "CN=...,O=..." */
    int64_t not_after;        /* unix seconds; 0 when unreadable */
    unsigned char sha256[32]; /* of the DER */
};

/* The read-only facts of an identity, as the proxy shows and schedules them. Every pointer is
 * owned by the identity and lives as long as it does. Never any key material. */
struct mesh_tls_facts {
    const char *spiffe_id; /* spiffe://TD/ns/NS/sa/NAME, the leaf's one URI SAN */
    const char *serial;    /* as meshd spelled it (upper-case hex), equal to the leaf's */
    const char *ca;        /* meshd's name for the issuing CA; "" when it gave none */
    const char *issuer;    /* the leaf's issuer, RFC 2253 */
    int64_t not_before;    /* unix seconds, from the leaf itself */
    int64_t not_after;
    const struct mesh_tls_root_facts *roots; /* the trust bundle, in meshd's order */
    size_t n_roots;
};

/*
 * The plugin's functions. Every string a function hands out (*out, *why) is malloc()ed by the
 * plugin and freed by the caller with free(): both share the process's C library. Every entry
 * may be called from any thread.
 */
struct mesh_tls_ops {
    uint32_t abi;  /* MESH_TLS_ABI as the plugin was built */
    uint32_t size; /* sizeof(struct mesh_tls_ops) as the plugin was built */

    /* The TLS library the plugin runs on, e.g. "OpenSSL 3.0.15 3 Sep 2024". Static. */
    const char *(*library_version)(void);

    /* A new ECDSA P-256 key in memory (*out: the caller's, key_free). MESH_E_TLS when the
     * library fails. */
    enum mesh_err (*key_new)(struct mesh_tls_key **out);
    /* NULL is a no-op. An identity built from key keeps its own reference. */
    void (*key_free)(struct mesh_tls_key *key);

    /* A PEM certificate request signed by key (borrowed): subject CN=cn, and when spiffe_id is
     * not NULL a URI SAN with it (informational: meshd decides the identity from the
     * registration). *out: the caller's. MESH_E_INVALID for an empty cn, MESH_E_TLS when the
     * library fails. */
    enum mesh_err (*csr_pem)(struct mesh_tls_key *key, const char *cn, const char *spiffe_id,
                             char **out);

    /* Builds an identity for key (a reference is taken; the caller keeps its own) from m,
     * checking that the leaf's public key is key's, that the leaf verifies against the bundle
     * (with the chain as intermediates, at the current time), that its one URI SAN equals
     * m->spiffe_id, that m->serial (when given) is its serial, and, when workload is not NULL,
     * that the SPIFFE ID's path is "/ns/NS/sa/NAME" for workload "NS/NAME"; then builds both TLS
     * contexts (TLS 1.2 minimum, peers' certificates required and verified against the bundle).
     * MESH_OK: *out (one reference) is the caller's. Otherwise *out is NULL and *why (the
     * caller's) says which check failed in words ("certificate does not match our key",
     * "certificate does not verify against the trust bundle: ...", "SPIFFE ID mismatch: ..."):
     * MESH_E_INVALID for material that is missing or not PEM, MESH_E_TLS for a failed check or a
     * library failure, MESH_E_NOMEM. */
    enum mesh_err (*identity_build)(struct mesh_tls_key *key, const struct mesh_tls_material *m,
                                    const char *workload, struct mesh_tls_identity **out,
                                    char **why);

    /* References. The last unref frees the identity. Neither accepts NULL: the caller filters
     * it (meshproxy's mesh_identity_ref/unref do). */
    void (*identity_ref)(struct mesh_tls_identity *id);
    void (*identity_unref)(struct mesh_tls_identity *id);

    /* id's facts, borrowed for as long as the caller holds its reference. Never NULL. */
    const struct mesh_tls_facts *(*identity_facts)(const struct mesh_tls_identity *id);

    /* --- Appended: per-connection TLS on non-blocking sockets (net/tls.h says what each call
     * answers; the entries below are its functions, with the same contracts). --- */

    /* A server context from a certificate file (leaf first, then intermediates) and its key
     * file (unencrypted, private to its owner: no group or other permission bits), TLS 1.2
     * minimum, no client certificates asked for, ALPN "http/1.1" offered. *out: the caller's
     * (ctx_free). Otherwise *why (the caller's) names the file and the problem: MESH_E_IO (a file
     * cannot be read), MESH_E_INVALID (not PEM, a key others may read, a key that is not the
     * certificate's), MESH_E_TLS, MESH_E_NOMEM. */
    enum mesh_err (*server_ctx_new)(const char *cert_file, const char *key_file,
                                    struct mesh_tls_ctx **out, char **why);
    /* NULL is a no-op. Every connection made from ctx must be freed first. */
    void (*ctx_free)(struct mesh_tls_ctx *ctx);

    /* A server-side connection on fd, an accepted non-blocking socket (borrowed: conn_free does
     * not close it). MESH_E_NOMEM, MESH_E_TLS. */
    enum mesh_err (*conn_new)(struct mesh_tls_ctx *ctx, int fd, struct mesh_tls_conn **out);
    /* As mesh_tls_handshake, mesh_tls_read, mesh_tls_writev and mesh_tls_shutdown. */
    enum mesh_tls_status (*handshake)(struct mesh_tls_conn *conn);
    enum mesh_tls_status (*read)(struct mesh_tls_conn *conn, void *buf, size_t len, size_t *got);
    enum mesh_tls_status (*writev)(struct mesh_tls_conn *conn, const struct iovec *iov, int n,
                                   size_t *written);
    enum mesh_tls_status (*shutdown)(struct mesh_tls_conn *conn);
    /* Sends nothing; fd stays open. NULL is a no-op. */
    void (*conn_free)(struct mesh_tls_conn *conn);
    /* Why the last call failed, in words ("" when none did). Borrowed until the next call. */
    const char *(*conn_error)(const struct mesh_tls_conn *conn);
    /* The ALPN protocol agreed on ("http/1.1"), or NULL. Borrowed. */
    const char *(*conn_alpn)(struct mesh_tls_conn *conn);

    /* --- Appended: mesh mTLS with the workload identity. --- */

    /* id's contexts, borrowed while the caller holds a reference on id (a connection made from
     * one must keep such a reference until it is freed). Server: client certificates required
     * and verified against the trust bundle. Client: the same bundle; sessions resumed per
     * (peer identity, address). Both: TLS 1.2 minimum, ALPN "http/1.1". Never NULL. */
    struct mesh_tls_ctx *(*identity_server_ctx)(struct mesh_tls_identity *id);
    struct mesh_tls_ctx *(*identity_client_ctx)(struct mesh_tls_identity *id);
    /* As mesh_tls_conn_new_expecting: a client connection on fd (connected, non-blocking,
     * borrowed) that accepts only a server whose certificate carries the SPIFFE ID peer_id. */
    enum mesh_err (*client_conn_new)(struct mesh_tls_ctx *ctx, int fd, const char *peer_id,
                                     struct mesh_tls_conn **out);
    /* The peer's SPIFFE ID (the first URI SAN of its verified certificate) after the handshake;
     * NULL when it sent none. Borrowed from conn. */
    const char *(*conn_peer_id)(struct mesh_tls_conn *conn);
    /* As mesh_tls_conn_failure (enum mesh_tls_failure's values are part of this ABI),
     * mesh_tls_conn_resumed and mesh_tls_conn_version. */
    enum mesh_tls_failure (*conn_failure)(const struct mesh_tls_conn *conn);
    bool (*conn_resumed)(const struct mesh_tls_conn *conn);
    const char *(*conn_version)(const struct mesh_tls_conn *conn);

    /* --- Appended: https:// to meshd. --- */

    /* The HTTP client's TLS ops (net/http_client.h) on this library, for
     * mesh_http_client_set_tls: meshproxy's requests to an https:// meshd. Static. */
    const struct mesh_http_tls_ops *http_tls;
    /* The CA bundle those requests verify meshd's certificate with; NULL: the system trust
     * store. As mesh_http_client_tls_set_default_ca. */
    void (*http_tls_set_default_ca)(const char *ca_file);

    /* --- Appended: reads without the last, empty one. --- */

    /* As mesh_tls_conn_drained. */
    bool (*conn_drained)(const struct mesh_tls_conn *conn);
};

#endif
