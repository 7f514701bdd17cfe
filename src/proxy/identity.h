/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy's workload identity: its private key, the certificate meshd's CA issued for it, the
 * trust bundle, and the TLS contexts built from them; published to the workers like a config
 * snapshot. Also the renewal thread's interface (cert_renew.c). Every OpenSSL call is in the TLS
 * plugin (tls_plugin.h); this side keeps publication, reference handling and what is shown. */
#ifndef MESH_PROXY_IDENTITY_H
#define MESH_PROXY_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "mesh/err.h"
#include "proxy.h"
#include "tls_plugin.h"

#define MESH_IDENTITY_TIME_LEN 21 /* "2036-01-02T03:04:05Z" and its NUL */

/*
 * The identity itself is the plugin's struct mesh_tls_identity (tls_plugin.h): immutable once
 * built and reference-counted, so that a renewal builds a new one and publishes it
 * (mesh_identity_publish) while each user (a TLS connection in the next slice, a /config_dump)
 * keeps the one it took until it is done. Never holds the key in any printable form: nothing
 * writes it anywhere.
 *
 * The functions below that build or read identities call through the plugin's table
 * (tls_load.h): they need it loaded, which sidecar and gateway modes do at start. Without it
 * they fail with MESH_E_UNSUPPORTED; ref/unref of NULL, acquire and publish need nothing.
 */

/* A new ECDSA P-256 key in memory (*out: the caller's, mesh_identity_key_free). MESH_E_TLS when
 * OpenSSL fails. Any thread. */
enum mesh_err mesh_identity_key_new(struct mesh_tls_key **out);
/* NULL is a no-op. */
void mesh_identity_key_free(struct mesh_tls_key *key);

/* A PEM certificate request signed by key (borrowed): subject CN=cn, and when spiffe_id is not
 * NULL a URI SAN with it (informational: meshd decides the identity from the registration).
 * *out: the caller frees it. MESH_E_INVALID for an empty cn, MESH_E_TLS when OpenSSL fails. */
enum mesh_err mesh_identity_csr_pem(struct mesh_tls_key *key, const char *cn, const char *spiffe_id,
                                    char **out);

/* Builds an identity for key from m with every check of the plugin's identity_build
 * (tls_plugin.h): the leaf is key's, verifies against the bundle, names m->spiffe_id (and, when
 * workload "NS/NAME" is not NULL, spiffe://TD/ns/NS/sa/NAME), has m->serial when given.
 * MESH_OK: *out (refs = 1) is the caller's. Otherwise *why (caller frees) says which check
 * failed in words: MESH_E_INVALID for material that is missing or not PEM, MESH_E_TLS for a
 * failed check or OpenSSL failure, MESH_E_NOMEM. Any thread. */
enum mesh_err mesh_identity_build(struct mesh_tls_key *key, const struct mesh_tls_material *m,
                                  const char *workload, struct mesh_tls_identity **out, char **why);

/* mesh_identity_build on meshd's JSON answer body[0..len). Errors as above; a body that is not
 * such JSON is MESH_E_INVALID ("answer is not a JSON object: ..."). */
enum mesh_err mesh_identity_from_answer(struct mesh_tls_key *key, const char *body, size_t len,
                                        const char *workload, struct mesh_tls_identity **out,
                                        char **why);

/* References. NULL is a no-op for both; the last unref frees everything. Any thread. */
void mesh_identity_ref(struct mesh_tls_identity *id);
void mesh_identity_unref(struct mesh_tls_identity *id);

/* id's facts (spiffe_id, serial, dates, issuer, ca, roots), borrowed while the caller holds its
 * reference. Any thread. */
const struct mesh_tls_facts *mesh_identity_facts(const struct mesh_tls_identity *id);

/* The published identity with a reference taken (drop it with mesh_identity_unref), or NULL
 * when there is none yet (static mode, or before meshd's first certificate). On a worker thread
 * while it handles an event (the publisher waits for every worker's next loop turn before
 * dropping the old one, as for snapshots), or on the publisher's own thread. */
struct mesh_tls_identity *mesh_identity_acquire(struct mesh_proxy *p);

/* Makes id (the caller's reference is taken over) the published identity: one atomic exchange,
 * a wake-up of every worker, and the old one's published reference is dropped once every worker
 * has moved past the swap; users that took it keep it until they drop it. One publisher at a
 * time (p->publish_lock). Not on a worker thread. NULL unpublishes (shutdown). */
void mesh_identity_publish(struct mesh_proxy *p, struct mesh_tls_identity *id);

/* /config_dump's "identity" object: spiffe_id, serial, not_before, not_after, issuer, ca and
 * trust_bundle[] {subject, not_after, sha256}. Never any key material. NULL when out of memory.
 * The caller owns the result. */
json_t *mesh_identity_json(const struct mesh_tls_identity *id);

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
