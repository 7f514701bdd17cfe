/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates for the TLS unit tests (test_tls.c, test_http_client.c), made with OpenSSL in
 * memory: a CA, leaves it signs with chosen SANs and validity, as PEM text. Header-only: each
 * test program includes it once. */
#ifndef MESH_TESTS_TLS_TEST_CERTS_H
#define MESH_TESTS_TLS_TEST_CERTS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A certificate, its key, and both as PEM text (malloc'd). */
struct test_cert {
    X509 *x;
    EVP_PKEY *key;
    char *cert_pem;
    char *key_pem;
};

static char *test_bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (out && n > 0)
        memcpy(out, p, (size_t)n);
    return out;
}

static void test_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

/* A certificate for cn (a CA when ca), valid from now + from_s to now + to_s, with san (e.g.
 * "DNS:localhost,IP:127.0.0.1,URI:spiffe://td/ns/default/sa/web"; NULL = none), signed by
 * issuer (NULL = self-signed). */
static struct test_cert test_cert_make(const char *cn, bool ca, long from_s, long to_s,
                                       const char *san, const struct test_cert *issuer)
{
    struct test_cert c = {0};
    static long serial = 1;
    c.key = EVP_EC_gen("P-256");
    c.x = X509_new();
    X509_set_version(c.x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c.x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(c.x), to_s);
    X509_NAME *name = X509_get_subject_name(c.x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : name);
    X509_set_pubkey(c.x, c.key);
    X509 *signer = issuer ? issuer->x : NULL;
    if (ca) {
        test_add_ext(c.x, signer, NID_basic_constraints, "critical,CA:TRUE");
        test_add_ext(c.x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        test_add_ext(c.x, signer, NID_basic_constraints, "critical,CA:FALSE");
        test_add_ext(c.x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    test_add_ext(c.x, signer, NID_subject_key_identifier, "hash");
    if (issuer)
        test_add_ext(c.x, signer, NID_authority_key_identifier, "keyid");
    if (san)
        test_add_ext(c.x, signer, NID_subject_alt_name, san);
    X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256());

    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, c.x);
    c.cert_pem = test_bio_text(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, c.key, NULL, NULL, 0, NULL, NULL);
    c.key_pem = test_bio_text(b);
    BIO_free(b);
    return c;
}

static void test_cert_free(struct test_cert *c)
{
    X509_free(c->x);
    EVP_PKEY_free(c->key);
    free(c->cert_pem);
    free(c->key_pem);
    memset(c, 0, sizeof(*c));
}

#endif
