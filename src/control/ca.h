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

/* Every CA meshd holds. items[0] is the mesh root, then the --ca CAs in flag order. */
struct mesh_ca_set {
    struct mesh_ca **items; /* owned */
    size_t len;
    char *bundle_pem; /* the trust bundle: every item's certificate, once each, PEM */
};

/* Adds ca and takes ownership of it in every case (it is freed on error). MESH_E_CONFLICT with
 * *errmsg (caller frees) when a CA of that name is there already. */
enum mesh_err mesh_ca_set_add(struct mesh_ca_set *set, struct mesh_ca *ca, char **errmsg);
/* The CA named name, or NULL. Borrowed. */
const struct mesh_ca *mesh_ca_set_find(const struct mesh_ca_set *set, const char *name);
/* Frees every CA and the bundle; the set is empty afterwards. */
void mesh_ca_set_clear(struct mesh_ca_set *set);

/* t as RFC 3339 UTC, "2036-01-02T03:04:05Z"; buf holds MESH_CA_TIME_LEN bytes. */
void mesh_ca_format_time(time_t t, char *buf, size_t len);

#endif
