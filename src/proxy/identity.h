/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy's workload identity: its private key, the certificate meshd's CA issued for it, the
 * trust bundle, and the TLS contexts built from them; published to the workers like a config
 * snapshot. Also the renewal thread's interface (cert_renew.c). OpenSSL 3. */
#ifndef MESH_PROXY_IDENTITY_H
#define MESH_PROXY_IDENTITY_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "mesh/err.h"
#include "proxy.h"

#define MESH_IDENTITY_TIME_LEN 21 /* "2036-01-02T03:04:05Z" and its NUL */

/* A root of the trust bundle, as /config_dump shows it. */
struct mesh_identity_root {
    char *subject;                          /* RFC 2253: "CN=...,O=..." */
    char not_after[MESH_IDENTITY_TIME_LEN]; /* RFC 3339 UTC */
    char sha256[96];                        /* of the DER: "AB:CD:...", 32 pairs */
};

/*
 * One certificate and everything built from it. Immutable once built and reference-counted: a
 * renewal builds a new one and publishes it (mesh_identity_publish), and each user (a TLS
 * connection in the next slice, a /config_dump) keeps the one it took until it is done, so a
 * renewal never disturbs what is open. Never holds the key in any printable form: no function
 * here writes it anywhere.
 */
struct mesh_identity {
    atomic_uint refs;
    EVP_PKEY *key;          /* ours, ECDSA P-256, generated in memory */
    X509 *leaf;             /* the certificate meshd issued for key */
    STACK_OF(X509) * chain; /* the issuing CA (meshd's "chain"), for peers to build the path */
    STACK_OF(X509) * roots; /* the trust bundle, in meshd's order */
    X509_STORE *trust;      /* roots, for verifying peers; shared by both contexts */
    char *spiffe_id;        /* spiffe://TD/ns/NS/sa/NAME, the leaf's one URI SAN */
    char *serial;           /* as meshd spells it (upper-case hex), equal to the leaf's */
    char *ca;               /* meshd's name for the issuing CA; "" when it gave none */
    char *issuer;           /* the leaf's issuer, RFC 2253 */
    int64_t not_before, not_after; /* unix seconds, from the leaf itself */
    char not_before_text[MESH_IDENTITY_TIME_LEN], not_after_text[MESH_IDENTITY_TIME_LEN];
    struct mesh_identity_root *root_info; /* one per roots entry */
    size_t n_roots;
    /* TLS 1.2 minimum (1.3 when the peer has it), our certificate, key and chain loaded and
     * checked, peer certificates required and verified against trust. */
    SSL_CTX *server_ctx; /* for accepting (inbound mTLS) */
    SSL_CTX *client_ctx; /* for originating (outbound mTLS) */
};

/* What meshd answered to POST /v1/proxies/{id}/certificate (docs/api.md). Borrowed strings;
 * NULL for a field it left out. */
struct mesh_identity_material {
    const char *certificate;  /* the leaf, PEM: required */
    const char *chain;        /* the issuing CA, PEM */
    const char *trust_bundle; /* every root, PEM: required */
    const char *spiffe_id;    /* required */
    const char *serial;       /* hex; when given, must be the leaf's */
    const char *ca;           /* the issuing CA's name */
};

/* A new ECDSA P-256 key in memory (*out: the caller owns it, EVP_PKEY_free). MESH_E_TLS when
 * OpenSSL fails. Any thread. */
enum mesh_err mesh_identity_key_new(EVP_PKEY **out);

/* A PEM certificate request signed by key (borrowed): subject CN=cn, and when spiffe_id is not
 * NULL a URI SAN with it (informational: meshd decides the identity from the registration).
 * *out: the caller frees it. MESH_E_INVALID for an empty cn, MESH_E_TLS when OpenSSL fails. */
enum mesh_err mesh_identity_csr_pem(EVP_PKEY *key, const char *cn, const char *spiffe_id,
                                    char **out);

/* Builds an identity for key (a reference is taken; the caller keeps its own) from m, checking
 * that the leaf's public key is key's, that the leaf verifies against the bundle (with the chain
 * as intermediates, at the current time), that its one URI SAN equals m->spiffe_id, that
 * m->serial (when given) is its serial, and, when workload is not NULL, that the SPIFFE ID's
 * path is "/ns/NS/sa/NAME" for workload "NS/NAME"; then builds both TLS contexts.
 * MESH_OK: *out (refs = 1) is the caller's. Otherwise *why (caller frees) says which check failed
 * in words ("certificate does not match our key", "certificate does not verify against the
 * trust bundle: ...", "SPIFFE ID mismatch: ..."): MESH_E_INVALID for material that is missing or
 * not PEM, MESH_E_TLS for a failed check or OpenSSL failure, MESH_E_NOMEM. Any thread. */
enum mesh_err mesh_identity_build(EVP_PKEY *key, const struct mesh_identity_material *m,
                                  const char *workload, struct mesh_identity **out, char **why);

/* mesh_identity_build on meshd's JSON answer body[0..len). Errors as above; a body that is not
 * such JSON is MESH_E_INVALID ("answer is not JSON: ..."). */
enum mesh_err mesh_identity_from_answer(EVP_PKEY *key, const char *body, size_t len,
                                        const char *workload, struct mesh_identity **out,
                                        char **why);

/* References. NULL is a no-op for both; the last unref frees everything. Any thread. */
void mesh_identity_ref(struct mesh_identity *id);
void mesh_identity_unref(struct mesh_identity *id);

/* The published identity with a reference taken (drop it with mesh_identity_unref), or NULL
 * when there is none yet (static mode, or before meshd's first certificate). On a worker thread
 * while it handles an event (the publisher waits for every worker's next loop turn before
 * dropping the old one, as for snapshots), or on the publisher's own thread. */
struct mesh_identity *mesh_identity_acquire(struct mesh_proxy *p);

/* Makes id (the caller's reference is taken over) the published identity: one atomic exchange,
 * a wake-up of every worker, and the old one's published reference is dropped once every worker
 * has moved past the swap; users that took it keep it until they drop it. One publisher at a
 * time (p->publish_lock). Not on a worker thread. NULL unpublishes (shutdown). */
void mesh_identity_publish(struct mesh_proxy *p, struct mesh_identity *id);

/* /config_dump's "identity" object: spiffe_id, serial, not_before, not_after, issuer, ca and
 * trust_bundle[] {subject, not_after, sha256}. Never any key material. NULL when out of memory.
 * The caller owns the result. */
json_t *mesh_identity_json(const struct mesh_identity *id);

/* t (unix seconds) as RFC 3339 UTC into buf (MESH_IDENTITY_TIME_LEN bytes). */
void mesh_identity_format_time(int64_t t, char *buf, size_t len);

/* --- renewal (cert_renew.c) --- */

#define MESH_CERT_BACKOFF_MIN_MS 1000u  /* the first retry after a failed renewal */
#define MESH_CERT_BACKOFF_MAX_MS 30000u /* retries never wait longer */

struct mesh_cert_renewer;

/* Starts the thread that keeps p's workload certificate: once c has registered the proxy it
 * requests one, then renews it at half its lifetime, publishing each with mesh_identity_publish
 * and counting into stats (a shard the caller created for this thread and keeps until the
 * workers are gone: the renewer is its only writer). workload is "NS/NAME", the identity meshd
 * must give (copied). It stops when c stops: the caller stops c first (mesh_control_stop calls
 * mesh_cert_renewer_stop). *out: the caller's. MESH_E_NOMEM when the thread cannot start. */
enum mesh_err mesh_cert_renewer_start(struct mesh_proxy *p, struct mesh_control *c,
                                      const char *workload, struct mesh_stats_shard *stats,
                                      struct mesh_cert_renewer **out);

/* Joins the thread (which ends within about a second once c is stopping) and frees r. The
 * published identity stays published. NULL is a no-op. */
void mesh_cert_renewer_stop(struct mesh_cert_renewer *r);

/* A consistent copy of the renewals' state. Any thread. */
void mesh_cert_renewer_status(struct mesh_cert_renewer *r, struct mesh_cert_status *out);

#endif
