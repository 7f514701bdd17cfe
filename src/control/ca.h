/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's certificate authorities (docs/security.md): the mesh root it creates in DATA_DIR/ca,
 * the named CAs of `meshd --ca NAME=CERT,KEY`, workload certificates signed from CSRs with an
 * identity meshd chooses, and the trust bundle. OpenSSL 3. A CA is read-only once loaded; meshd
 * uses them from its one loop thread. Private keys never leave this file: no function hands
 * one out, prints one or puts one in a message. */
#ifndef MESH_CONTROL_CA_H
#define MESH_CONTROL_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mesh/err.h"

#define MESH_CA_ROOT_NAME            "mesh-root" /* the name of meshd's own root in answers */
#define MESH_CA_DEFAULT_TRUST_DOMAIN "cluster.local"
#define MESH_CA_ROOT_CERT_FILE       "root-cert.pem"
#define MESH_CA_ROOT_KEY_FILE        "root-key.pem"
#define MESH_CA_NEXT_ROOT_NAME       "mesh-root-next" /* the incoming root while a rotation runs */
#define MESH_CA_NEXT_CERT_FILE       "next-root-cert.pem"
#define MESH_CA_NEXT_KEY_FILE        "next-root-key.pem"
#define MESH_CA_ROTATION_FILE        "rotation.json" /* ca_rotation.h */
#define MESH_CA_RETIRED_DIR          "retired"       /* where rotated-out roots are moved */
#define MESH_CA_CLOCK_SKEW_S         60   /* a leaf's notBefore is this far in the past */
#define MESH_CA_ROOT_DAYS            3652 /* ten years */
#define MESH_CA_FINGERPRINT_LEN      95   /* "AB:CD:...": 32 bytes as hex pairs with colons */
#define MESH_CA_SERIAL_LEN           40   /* hex digits of a serial, at most (20 bytes) */
#define MESH_CA_TIME_LEN             21   /* "2036-01-02T03:04:05Z" and its NUL */

struct mesh_ca;

/* Whether td can be a trust domain: a DNS name (RFC 1123 labels of lower-case letters, digits
 * and '-', separated by dots, at most 253 characters). false with why (a sentence naming td). */
bool mesh_ca_trust_domain_valid(const char *td, char *why, size_t why_len);

/* Opens meshd's root CA in dir (DATA_DIR/ca), creating it when dir holds neither file: an ECDSA
 * P-256 key (MESH_CA_ROOT_KEY_FILE, mode 0600, written to a temporary file opened O_EXCL then
 * renamed) and a self-signed ten-year certificate (MESH_CA_ROOT_CERT_FILE, 0644) whose CN names
 * trust_domain; dir is created mode 0700 when absent. An existing root is loaded and checked:
 * both files present and readable, the key private to its owner (no group or other bits), the
 * key the certificate's, the certificate a CA valid at now. *created tells which happened.
 * Errors, each with *errmsg (caller frees) naming the file and the fix: MESH_E_IO (a file or
 * the directory cannot be read or written), MESH_E_INVALID (a file is not what it must be),
 * MESH_E_TLS (OpenSSL failed). *out (free with mesh_ca_free) is named MESH_CA_ROOT_NAME. */
enum mesh_err mesh_ca_open_root(const char *dir, const char *trust_domain, time_t now,
                                struct mesh_ca **out, bool *created, char **errmsg);

/* mesh_ca_open_root for another pair of files of dir (cert_file, key_file: names inside dir),
 * the CA named ca_name. When neither file exists: made (create) with the CN "ClusterDB Mesh root
 * CA N (TD)" (N left out when number <= 1), else MESH_E_NOTFOUND with *errmsg. Otherwise as
 * mesh_ca_open_root. */
enum mesh_err mesh_ca_open_root_files(const char *dir, const char *cert_file, const char *key_file,
                                      const char *ca_name, unsigned number, bool create,
                                      const char *trust_domain, time_t now, struct mesh_ca **out,
                                      bool *created, char **errmsg);

/* Loads a CA named name from PEM files: cert_path's first certificate must be a CA certificate
 * (basicConstraints CA:TRUE) valid at now with an EC or RSA key, key_path its unencrypted
 * private key, private to its owner. Errors as mesh_ca_open_root's. Copies name. */
enum mesh_err mesh_ca_load(const char *name, const char *cert_path, const char *key_path,
                           time_t now, struct mesh_ca **out, char **errmsg);

/* NULL is a no-op. */
void mesh_ca_free(struct mesh_ca *ca);

/* What a CA is, for answers and logs; borrowed for the CA's life. */
const char *mesh_ca_name(const struct mesh_ca *ca);
const char *mesh_ca_subject(const struct mesh_ca *ca);     /* RFC 2253: "CN=...,O=..." */
const char *mesh_ca_fingerprint(const struct mesh_ca *ca); /* SHA-256 of the DER, "AB:CD:..." */
const char *mesh_ca_cert_pem(const struct mesh_ca *ca);    /* its certificate, PEM */
time_t mesh_ca_not_after(const struct mesh_ca *ca);

/* Who a workload certificate is for. meshd decides it from its registry, never from the CSR. */
struct mesh_ca_identity {
    const char *trust_domain;
    const char *ns;   /* namespace: an RFC 1123 label */
    const char *name; /* service account: the sidecar's service, or the gateway's name */
};

/* A signed workload certificate; strings owned (mesh_ca_leaf_clear). */
struct mesh_ca_leaf {
    char *cert_pem;
    char *spiffe_id;                     /* spiffe://TD/ns/NS/sa/NAME */
    char serial[MESH_CA_SERIAL_LEN + 1]; /* upper-case hex, as `openssl x509 -serial` */
    time_t not_before, not_after;
};

/* Signs the first certificate request in csr_pem[0..csr_len) with ca: its self-signature must
 * verify and its key be EC P-256 or P-384, or RSA of at least 2048 bits. Nothing but the public
 * key is taken from the request: the leaf has subject CN=id->name, the one URI SAN
 * spiffe://TD/ns/NS/sa/NAME, notBefore now - MESH_CA_CLOCK_SKEW_S and notAfter now + ttl_s
 * (both kept inside the CA's own validity), a random 128-bit serial, basicConstraints critical
 * CA:FALSE, keyUsage critical digitalSignature (+ keyEncipherment for RSA), extendedKeyUsage
 * serverAuth and clientAuth, subject and authority key identifiers; signed with SHA-256.
 * MESH_E_INVALID: not a request, or its signature does not verify; MESH_E_UNSUPPORTED: its key;
 * MESH_E_TLS: the CA has expired, or OpenSSL failed. Every error sets *errmsg (caller frees),
 * which starts with "csr: " when the request is at fault. *out is filled only on MESH_OK. */
enum mesh_err mesh_ca_sign(const struct mesh_ca *ca, const char *csr_pem, size_t csr_len,
                           const struct mesh_ca_identity *id, uint64_t ttl_s, time_t now,
                           struct mesh_ca_leaf *out, char **errmsg);
void mesh_ca_leaf_clear(struct mesh_ca_leaf *leaf);

/* Every CA meshd holds. items[0] is the mesh root, then the --ca CAs in flag order. While a root
 * rotation runs (ca_rotation.h) next is the incoming root, trusted beside items[0]; it signs
 * instead of items[0] once issue_from_next is set. */
struct mesh_ca_set {
    struct mesh_ca **items; /* owned */
    size_t len;
    char *bundle_pem;     /* the trust bundle: every trusted CA's certificate, once each, PEM */
    struct mesh_ca *next; /* owned; NULL when no rotation runs */
    bool issue_from_next;
};

/* Adds ca and takes ownership of it in every case (it is freed on error). MESH_E_CONFLICT with
 * *errmsg (caller frees) when a CA of that name is there already. */
enum mesh_err mesh_ca_set_add(struct mesh_ca_set *set, struct mesh_ca *ca, char **errmsg);
/* The CA named name, or NULL. Borrowed. */
const struct mesh_ca *mesh_ca_set_find(const struct mesh_ca_set *set, const char *name);
/* The CA that signs for proxies no SecurityPolicy sends to a --ca CA: items[0], or next once a
 * rotation switched to it. NULL for an empty set. Borrowed. */
const struct mesh_ca *mesh_ca_set_issuer(const struct mesh_ca_set *set);
/* The CAs of the trust bundle, in its order: the root, the incoming root, the --ca CAs; each
 * once. *n of them; the array is the caller's (free), the CAs are borrowed. */
const struct mesh_ca **mesh_ca_set_trusted(const struct mesh_ca_set *set, size_t *n);
/* Sets the rotation's part of the set and rebuilds the bundle: next (taken; NULL frees the one
 * held), and whether it signs. */
void mesh_ca_set_stage(struct mesh_ca_set *set, struct mesh_ca *next, bool issue_from_next);
/* Retires the root: next becomes items[0], named MESH_CA_ROOT_NAME, the only root of the bundle;
 * the old root is freed. No-op without next. */
void mesh_ca_set_promote_next(struct mesh_ca_set *set);
/* Frees every CA and the bundle; the set is empty afterwards. */
void mesh_ca_set_clear(struct mesh_ca_set *set);

/* t as RFC 3339 UTC, "2036-01-02T03:04:05Z"; buf holds MESH_CA_TIME_LEN bytes. */
void mesh_ca_format_time(time_t t, char *buf, size_t len);

#endif
