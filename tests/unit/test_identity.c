/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the proxy's workload identity: the TLS plugin's side (src/tls: key and CSR
 * generation, checking meshd's answer against a CA the test makes with OpenSSL, the TLS contexts
 * with a real mutual handshake between two identities) through meshproxy's side
 * (src/proxy/identity.c: reference counting, publication, what the config dumps show), and the
 * plugin's loader (src/proxy/tls_load.c: the ABI check, the built meshproxy-tls.so, the errors).
 *
 * The plugin's objects are linked in (build/libmeshtls.a) rather than dlopen()ed, so that the
 * test can look inside an identity (its SSL_CTXs, leaf and trust store), which meshproxy only
 * sees as opaque; the loader's tests dlopen() the built plugin as meshproxy does. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "proxy/identity.h"
#include "proxy/proxy.h"
#include "proxy/tls_load.h"
#include "net/tls_adopt.h"
#include "tls/tls_internal.h"

#define TD       "cluster.local"
#define PAYMENT  "spiffe://" TD "/ns/default/sa/payment-v1"
#define ORDERS   "spiffe://" TD "/ns/default/sa/orders"
#define WORKLOAD "default/payment-v1"

/* --- a CA of the test's own --- */

struct ca {
    EVP_PKEY *key;
    X509 *cert;
    char *pem;
};

/* The plugin's keys are OpenSSL's (tls_internal.h): the test makes CA keys with the same
 * call and hands its EVP_PKEYs to the plugin as they are. */
static EVP_PKEY *new_key(void)
{
    struct mesh_tls_key *k = NULL;
    assert_int_equal(mesh_identity_key_new(&k), MESH_OK);
    return mesh_tls_pkey(k);
}

static struct mesh_tls_key *tkey(EVP_PKEY *k)
{
    return (struct mesh_tls_key *)k;
}

static void time_text(int64_t t, char buf[MESH_IDENTITY_TIME_LEN])
{
    mesh_identity_format_time(t, buf, MESH_IDENTITY_TIME_LEN);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_true(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* A certificate for key: a CA (self-signed when issuer is NULL) or a workload leaf with uri
 * (NULL: no SAN). Valid from a minute ago for lifetime_s. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const struct ca *issuer, bool ca,
                       const char *uri, long serial, long lifetime_s)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), lifetime_s));
    assert_true(X509_set_pubkey(x, key));
    X509_NAME *name = X509_get_subject_name(x);
    assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                           (const unsigned char *)"ClusterDB Mesh", -1, -1, 0));
    assert_true(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    X509 *signer = issuer ? issuer->cert : x;
    assert_true(X509_set_issuer_name(x, X509_get_subject_name(signer)));
    add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (!ca) {
        add_ext(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
    }
    if (uri) {
        char san[256];
        snprintf(san, sizeof(san), "URI:%s", uri);
        add_ext(x, signer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(x, issuer ? issuer->key : key, EVP_sha256()) > 0);
    return x;
}

static char *cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio_X509(bio, x));
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(bio);
    return s;
}

static void ca_init(struct ca *ca, const char *cn)
{
    ca->key = new_key();
    ca->cert = make_cert(ca->key, cn, NULL, true, NULL, 1, 3600L * 24 * 365);
    ca->pem = cert_pem(ca->cert);
}

static void ca_clear(struct ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->pem);
}

/* A leaf PEM from ca for key, naming uri. */
static char *issue(const struct ca *ca, EVP_PKEY *key, const char *uri, long serial)
{
    X509 *x = make_cert(key, "payment-v1", ca, false, uri, serial, 3600);
    char *pem = cert_pem(x);
    X509_free(x);
    return pem;
}

/* Builds from these parts; *why checked by the caller. */
static enum mesh_err build(EVP_PKEY *key, const char *leaf, const char *chain, const char *bundle,
                           const char *spiffe_id, const char *serial, const char *workload,
                           struct mesh_tls_identity **out, char **why)
{
    struct mesh_tls_material m = {
        .certificate = leaf,
        .chain = chain,
        .trust_bundle = bundle,
        .spiffe_id = spiffe_id,
        .serial = serial,
        .ca = "mesh-root",
    };
    *why = NULL;
    return mesh_identity_build(tkey(key), &m, workload, out, why);
}

/* A good identity for spiffe_id from ca. */
static struct mesh_tls_identity *good_identity(const struct ca *ca, const char *spiffe_id,
                                               long serial)
{
    EVP_PKEY *key = new_key();
    char *leaf = issue(ca, key, spiffe_id, serial);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    char hex[32];
    snprintf(hex, sizeof(hex), "%02lX", serial);
    enum mesh_err err = build(key, leaf, ca->pem, ca->pem, spiffe_id, hex, NULL, &id, &why);
    if (err != MESH_OK)
        fail_msg("build: %s", why ? why : "?");
    EVP_PKEY_free(key); /* the identity holds its own reference */
    free(leaf);
    return id;
}

/* --- key and CSR --- */

static void test_identity_key_is_p256_and_csr_verifies(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key();
    assert_true(EVP_PKEY_is_a(key, "EC"));
    char group[64] = "";
    size_t glen = 0;
    assert_true(EVP_PKEY_get_group_name(key, group, sizeof(group), &glen));
    assert_string_equal(group, "prime256v1"); /* = P-256 */
    assert_int_equal(EVP_PKEY_get_bits(key), 256);

    char *pem = NULL;
    assert_int_equal(mesh_identity_csr_pem(tkey(key), "payment-v1", PAYMENT, &pem), MESH_OK);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
    assert_null(strstr(pem, "PRIVATE KEY"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    /* Its self-signature verifies with its own key, which is ours. */
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    assert_int_equal(EVP_PKEY_eq(pub, key), 1);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "payment-v1");
    /* The informational URI SAN. */
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int at = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    assert_true(at >= 0);
    GENERAL_NAMES *names = X509V3_EXT_d2i(X509v3_get_ext(exts, at));
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    assert_int_equal(gn->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                        PAYMENT);
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    BIO_free(bio);
    free(pem);

    /* Without a SPIFFE ID: no extension at all. */
    assert_int_equal(mesh_identity_csr_pem(tkey(key), "payment-v1", NULL, &pem), MESH_OK);
    bio = BIO_new_mem_buf(pem, -1);
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    exts = X509_REQ_get_extensions(req);
    assert_int_equal(X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1), -1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    BIO_free(bio);
    free(pem);

    assert_int_equal(mesh_identity_csr_pem(tkey(key), "", NULL, &pem), MESH_E_INVALID);
    assert_null(pem);

    /* Two keys are two keys. */
    EVP_PKEY *other = new_key();
    assert_int_not_equal(EVP_PKEY_eq(key, other), 1);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}

/* --- building from meshd's answer --- */

static void test_identity_accepts_good_material(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    EVP_PKEY *key = new_key();
    char *leaf = issue(&ca, key, PAYMENT, 0x1234abcd);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    assert_int_equal(build(key, leaf, ca.pem, ca.pem, PAYMENT, "1234ABCD", WORKLOAD, &id, &why),
                     MESH_OK);
    assert_null(why);
    assert_non_null(id);
    assert_int_equal(atomic_load(&id->refs), 1);
    /* The facts, as meshproxy reads them through the table. */
    const struct mesh_tls_facts *f = mesh_identity_facts(id);
    assert_ptr_equal(f, &id->facts);
    assert_string_equal(f->spiffe_id, PAYMENT);
    assert_string_equal(f->serial, "1234ABCD");
    assert_string_equal(f->ca, "mesh-root");
    assert_string_equal(f->issuer, "CN=ClusterDB Mesh Root CA,O=ClusterDB Mesh");
    time_t now = time(NULL);
    assert_true(f->not_before <= now - 59 && f->not_before >= now - 62);
    assert_true(f->not_after >= now + 3598 && f->not_after <= now + 3601);
    assert_int_equal(f->n_roots, 1);
    assert_string_equal(f->roots[0].subject, "CN=ClusterDB Mesh Root CA,O=ClusterDB Mesh");
    assert_true(f->roots[0].not_after >= now + 3600L * 24 * 365 - 2);
    unsigned char md[32];
    unsigned n = 0;
    assert_true(X509_digest(ca.cert, EVP_sha256(), md, &n));
    assert_int_equal(n, 32);
    assert_memory_equal(f->roots[0].sha256, md, 32);
    /* The identity holds the key (a reference of its own): the caller may drop its own. */
    EVP_PKEY_free(key);

    /* Both TLS contexts exist, hold the certificate and its key, and verify peers: the
     * server requires a client certificate. */
    SSL_CTX *ctxs[] = {mesh_tls_ctx_ssl(id->server_ctx), mesh_tls_ctx_ssl(id->client_ctx)};
    for (int i = 0; i < 2; i++) {
        assert_non_null(ctxs[i]);
        assert_int_equal(SSL_CTX_check_private_key(ctxs[i]), 1);
        assert_int_equal(SSL_CTX_get_min_proto_version(ctxs[i]), TLS1_2_VERSION);
        assert_int_equal(SSL_CTX_get_verify_mode(ctxs[i]),
                         i == 0 ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                : SSL_VERIFY_PEER);
        assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(ctxs[i]), id->leaf), 0);
        assert_ptr_equal(SSL_CTX_get_cert_store(ctxs[i]), id->trust);
    }

    /* What the dump shows, and never the key. */
    json_t *o = mesh_identity_json(id);
    assert_string_equal(json_string_value(json_object_get(o, "spiffe_id")), PAYMENT);
    assert_string_equal(json_string_value(json_object_get(o, "serial")), "1234ABCD");
    char when[MESH_IDENTITY_TIME_LEN];
    time_text(f->not_after, when);
    assert_int_equal(strlen(when), 20);
    assert_int_equal(when[19], 'Z');
    assert_string_equal(json_string_value(json_object_get(o, "not_after")), when);
    time_text(f->not_before, when);
    assert_string_equal(json_string_value(json_object_get(o, "not_before")), when);
    assert_string_equal(json_string_value(json_object_get(o, "issuer")), f->issuer);
    assert_string_equal(json_string_value(json_object_get(o, "ca")), "mesh-root");
    json_t *root0 = json_array_get(json_object_get(o, "trust_bundle"), 0);
    assert_string_equal(json_string_value(json_object_get(root0, "subject")), f->roots[0].subject);
    time_text(f->roots[0].not_after, when);
    assert_string_equal(json_string_value(json_object_get(root0, "not_after")), when);
    /* The fingerprint as "AB:CD:...": 32 pairs and 31 colons. */
    char hex[96];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 3 * i, sizeof(hex) - 3 * (size_t)i, "%02X:", md[i]);
    hex[95] = '\0'; /* the last colon */
    assert_string_equal(json_string_value(json_object_get(root0, "sha256")), hex);
    char *text = json_dumps(o, 0);
    assert_null(strstr(text, "PRIVATE"));
    assert_null(strstr(text, "BEGIN"));
    free(text);
    json_decref(o);

    mesh_identity_unref(id);
    free(leaf);
    ca_clear(&ca);
}

static void test_identity_from_answer_reads_meshd_json(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    EVP_PKEY *key = new_key();
    char *leaf = issue(&ca, key, PAYMENT, 77);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "certificate", leaf, "chain", ca.pem,
                  "trust_bundle", ca.pem, "spiffe_id", PAYMENT, "serial", "4D", "not_before",
                  "2025-01-01T00:00:00Z", "not_after", "2025-01-01T01:00:00Z", "ca", "mesh-root");
    char *body = json_dumps(o, 0);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    assert_int_equal(mesh_identity_from_answer(tkey(key), body, strlen(body), WORKLOAD, &id, &why),
                     MESH_OK);
    assert_string_equal(mesh_identity_facts(id)->serial, "4D");
    assert_string_equal(mesh_identity_facts(id)->ca, "mesh-root");
    /* The dates are the certificate's own, not what the answer's text says. */
    char when[MESH_IDENTITY_TIME_LEN];
    time_text(mesh_identity_facts(id)->not_after, when);
    assert_string_not_equal(when, "2025-01-01T01:00:00Z");
    assert_true(mesh_identity_facts(id)->not_after > time(NULL));
    mesh_identity_unref(id);

    const char *bad = "{\"certificate\": ";
    assert_int_equal(mesh_identity_from_answer(tkey(key), bad, strlen(bad), WORKLOAD, &id, &why),
                     MESH_E_INVALID);
    assert_null(id);
    assert_non_null(strstr(why, "not a JSON object"));
    free(why);
    assert_int_equal(mesh_identity_from_answer(tkey(key), "[]", 2, WORKLOAD, &id, &why),
                     MESH_E_INVALID);
    free(why);
    free(body);
    json_decref(o);
    free(leaf);
    EVP_PKEY_free(key);
    ca_clear(&ca);
}

/* The refusal must be err with a message containing want. */
static void assert_refused(enum mesh_err got, enum mesh_err want_err, struct mesh_tls_identity *id,
                           char *why, const char *want)
{
    assert_null(id);
    assert_non_null(why);
    if (got != want_err || !strstr(why, want))
        fail_msg("expected %s containing \"%s\", got %s: %s", mesh_err_name(want_err), want,
                 mesh_err_name(got), why);
    free(why);
}

static void test_identity_refuses_leaf_for_another_key(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    EVP_PKEY *ours = new_key(), *theirs = new_key();
    char *leaf = issue(&ca, theirs, PAYMENT, 5);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    enum mesh_err err = build(ours, leaf, ca.pem, ca.pem, PAYMENT, NULL, WORKLOAD, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why, "certificate does not match our key");
    free(leaf);
    EVP_PKEY_free(ours);
    EVP_PKEY_free(theirs);
    ca_clear(&ca);
}

static void test_identity_refuses_leaf_not_verifying_against_bundle(void **state)
{
    (void)state;
    struct ca ca, other;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    ca_init(&other, "Somebody Else's CA");
    EVP_PKEY *key = new_key();
    char *leaf = issue(&ca, key, PAYMENT, 6);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    /* Signed by ca, but the bundle trusts only other. */
    enum mesh_err err = build(key, leaf, ca.pem, other.pem, PAYMENT, NULL, WORKLOAD, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why,
                   "certificate does not verify against the trust bundle");
    /* An expired leaf does not verify either. */
    X509 *old = make_cert(key, "payment-v1", &ca, false, PAYMENT, 7, -30);
    char *old_pem = cert_pem(old);
    err = build(key, old_pem, ca.pem, ca.pem, PAYMENT, NULL, WORKLOAD, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why, "certificate has expired");
    X509_free(old);
    free(old_pem);
    free(leaf);
    EVP_PKEY_free(key);
    ca_clear(&ca);
    ca_clear(&other);
}

static void test_identity_refuses_spiffe_id_mismatch(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    EVP_PKEY *key = new_key();
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;

    /* meshd says payment-v1, the certificate names orders. */
    char *leaf = issue(&ca, key, ORDERS, 8);
    enum mesh_err err = build(key, leaf, ca.pem, ca.pem, PAYMENT, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why, "SPIFFE ID mismatch");
    /* Consistent with each other, but not this proxy's workload. */
    err = build(key, leaf, ca.pem, ca.pem, ORDERS, NULL, WORKLOAD, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why,
                   "SPIFFE ID mismatch: meshd issued " ORDERS ", this proxy is " PAYMENT);
    free(leaf);

    /* No URI SAN at all. */
    leaf = issue(&ca, key, NULL, 9);
    err = build(key, leaf, ca.pem, ca.pem, PAYMENT, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why, "SPIFFE ID mismatch");
    free(leaf);
    EVP_PKEY_free(key);
    ca_clear(&ca);
}

static void test_identity_refuses_missing_or_broken_material(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    EVP_PKEY *key = new_key();
    char *leaf = issue(&ca, key, PAYMENT, 10);
    struct mesh_tls_identity *id = NULL;
    char *why = NULL;
    enum mesh_err err = build(key, NULL, ca.pem, ca.pem, PAYMENT, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_INVALID, id, why, "no \"certificate\"");
    err = build(key, leaf, ca.pem, "not pem", PAYMENT, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_INVALID, id, why, "\"trust_bundle\" is not PEM certificates");
    err = build(key, leaf, ca.pem, ca.pem, NULL, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_INVALID, id, why, "no \"spiffe_id\"");
    /* A truncated block is not silently dropped. */
    char *cut = strdup(leaf);
    cut[strlen(cut) / 2] = '\0';
    err = build(key, cut, ca.pem, ca.pem, PAYMENT, NULL, NULL, &id, &why);
    assert_refused(err, MESH_E_INVALID, id, why, "\"certificate\" is not PEM");
    free(cut);
    /* The serial meshd names must be the certificate's. */
    err = build(key, leaf, ca.pem, ca.pem, PAYMENT, "0B", NULL, &id, &why);
    assert_refused(err, MESH_E_TLS, id, why, "serial mismatch");
    err = build(key, leaf, ca.pem, ca.pem, PAYMENT, "0a", NULL, &id, &why);
    assert_int_equal(err, MESH_OK); /* 10, in another spelling */
    mesh_identity_unref(id);
    free(leaf);
    EVP_PKEY_free(key);
    ca_clear(&ca);
}

/* --- the contexts work: a mutual TLS handshake in memory --- */

/* Runs a handshake between a server and a client context over a BIO pair. true when both
 * sides completed it. */
static bool handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, SSL **server_out, SSL **client_out)
{
    SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
    BIO *sb = NULL, *cb = NULL;
    assert_true(BIO_new_bio_pair(&sb, 0, &cb, 0));
    SSL_set_bio(server, sb, sb);
    SSL_set_bio(client, cb, cb);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    int s_done = 0, c_done = 0;
    for (int i = 0; i < 50 && (s_done != 1 || c_done != 1); i++) {
        if (c_done != 1)
            c_done = SSL_do_handshake(client);
        if (s_done != 1)
            s_done = SSL_do_handshake(server);
        int ce = SSL_get_error(client, c_done), se = SSL_get_error(server, s_done);
        if ((c_done != 1 && ce != SSL_ERROR_WANT_READ && ce != SSL_ERROR_WANT_WRITE) ||
            (s_done != 1 && se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE))
            break;
    }
    ERR_clear_error();
    *server_out = server;
    *client_out = client;
    return s_done == 1 && c_done == 1;
}

static void test_identity_contexts_do_mutual_tls(void **state)
{
    (void)state;
    struct ca ca, other;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    ca_init(&other, "Somebody Else's CA");
    struct mesh_tls_identity *payment = good_identity(&ca, PAYMENT, 21);
    struct mesh_tls_identity *orders = good_identity(&ca, ORDERS, 22);
    SSL *server = NULL, *client = NULL;
    assert_true(handshake(mesh_tls_ctx_ssl(payment->server_ctx),
                          mesh_tls_ctx_ssl(orders->client_ctx), &server, &client));
    assert_int_equal(SSL_version(client), TLS1_3_VERSION); /* preferred when both have it */
    assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
    assert_int_equal(SSL_get_verify_result(server), X509_V_OK);
    /* Each side has the other's certificate. */
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(server), orders->leaf), 0);
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(client), payment->leaf), 0);
    SSL_free(server);
    SSL_free(client);

    /* A client whose certificate comes from another CA is refused: verification is on. */
    struct mesh_tls_identity *stranger = good_identity(&other, ORDERS, 23);
    assert_false(handshake(mesh_tls_ctx_ssl(payment->server_ctx),
                           mesh_tls_ctx_ssl(stranger->client_ctx), &server, &client));
    SSL_free(server);
    SSL_free(client);
    mesh_identity_unref(stranger);
    mesh_identity_unref(payment);
    mesh_identity_unref(orders);
    ca_clear(&ca);
    ca_clear(&other);
}

/* --- references and publication --- */

static void proxy_init(struct mesh_proxy *p)
{
    memset(p, 0, sizeof(*p));
    p->opt.mode = MESH_PROXY_SIDECAR;
    pthread_mutex_init(&p->publish_lock, NULL);
    atomic_init(&p->identity, NULL);
}

static void test_identity_old_stays_valid_while_referenced(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    struct mesh_proxy p;
    proxy_init(&p);
    assert_null(mesh_identity_acquire(&p)); /* none yet */

    struct mesh_tls_identity *first = good_identity(&ca, PAYMENT, 31);
    mesh_identity_publish(&p, first); /* the publication owns the build's reference */
    struct mesh_tls_identity *held = mesh_identity_acquire(&p);
    assert_ptr_equal(held, first);
    assert_int_equal(atomic_load(&first->refs), 2);

    /* A renewal: the old one stays whole for whoever holds it. */
    struct mesh_tls_identity *second = good_identity(&ca, PAYMENT, 32);
    mesh_identity_publish(&p, second);
    assert_int_equal(atomic_load(&held->refs), 1); /* only ours now */
    assert_string_equal(mesh_identity_facts(held)->serial, "1F");
    assert_int_equal(SSL_CTX_check_private_key(mesh_tls_ctx_ssl(held->server_ctx)), 1);
    struct mesh_tls_identity *now = mesh_identity_acquire(&p);
    assert_ptr_equal(now, second);
    assert_string_equal(mesh_identity_facts(now)->serial, "20");
    /* The old one still works for a handshake against the new one's trust. */
    SSL *server = NULL, *client = NULL;
    assert_true(handshake(mesh_tls_ctx_ssl(held->server_ctx), mesh_tls_ctx_ssl(now->client_ctx),
                          &server, &client));
    SSL_free(server);
    SSL_free(client);
    mesh_identity_unref(held); /* freed here (ASan would see a later use) */
    mesh_identity_unref(now);
    assert_int_equal(atomic_load(&second->refs), 1);
    mesh_identity_publish(&p, NULL); /* shutdown: the published one goes */
    assert_null(mesh_identity_acquire(&p));
    pthread_mutex_destroy(&p.publish_lock);
    ca_clear(&ca);
}

struct bumper {
    struct mesh_worker *w;
    uint64_t after_ms;
};

static void *bump_epoch(void *arg)
{
    struct bumper *b = arg;
    nanosleep(&(struct timespec){0, (long)b->after_ms * 1000000L}, NULL);
    atomic_fetch_add(&b->w->epoch, 1);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_identity_publish_waits_for_every_worker(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    struct mesh_proxy p;
    proxy_init(&p);
    struct mesh_worker workers[2];
    memset(workers, 0, sizeof(workers));
    for (int i = 0; i < 2; i++) {
        workers[i].wake.fd = -1; /* nothing to wake: the test moves the epochs */
        atomic_init(&workers[i].epoch, 5);
    }
    p.workers = workers;
    p.n_workers = 2;
    struct mesh_tls_identity *first = good_identity(&ca, PAYMENT, 41);
    mesh_identity_ref(first); /* ours, to watch the publication's reference go */
    struct bumper b0 = {&workers[0], 30}, b1 = {&workers[1], 120};
    pthread_t t0, t1;
    pthread_create(&t0, NULL, bump_epoch, &b0);
    pthread_create(&t1, NULL, bump_epoch, &b1);
    double t = now_s();
    mesh_identity_publish(&p, first);
    double took = now_s() - t;
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    /* Until the slower worker turned its loop, nothing was released. */
    assert_true(took >= 0.1);
    assert_true(took < 4.0);
    /* The second publication retires the first once both workers moved on. */
    pthread_create(&t0, NULL, bump_epoch, &b0);
    pthread_create(&t1, NULL, bump_epoch, &b1);
    mesh_identity_publish(&p, good_identity(&ca, PAYMENT, 42));
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    assert_int_equal(atomic_load(&first->refs), 1);
    mesh_identity_unref(first);
    p.workers = NULL; /* the last one goes without waiting */
    mesh_identity_publish(&p, NULL);
    pthread_mutex_destroy(&p.publish_lock);
    ca_clear(&ca);
}

/* --- the config dumps --- */

static bool yaml_parses(const char *text)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    bool ok = true, done = false;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    while (ok && !done) {
        ok = yaml_parser_parse(&parser, &ev) == 1;
        if (ok) {
            done = ev.type == YAML_STREAM_END_EVENT;
            yaml_event_delete(&ev);
        }
    }
    yaml_parser_delete(&parser);
    return ok;
}

static void test_identity_in_config_dumps(void **state)
{
    (void)state;
    struct ca ca;
    ca_init(&ca, "ClusterDB Mesh Root CA");
    struct mesh_proxy p;
    proxy_init(&p);
    p.opt.id = "payment-v1.default-1";
    p.opt.service = "payment-v1";
    p.opt.ns = "default";
    struct mesh_snapshot *s = NULL;
    char *why = NULL;
    assert_int_equal(mesh_snapshot_build(NULL, 0, 1, &s, &why), MESH_OK);

    /* Before the first certificate: the section is there, empty. */
    struct mesh_strbuf out;
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_config_dump_json(&p, s, &out), MESH_OK);
    json_t *root = json_loads(out.data, 0, NULL);
    json_t *ident = json_object_get(root, "identity");
    assert_true(json_is_object(ident));
    assert_true(json_is_null(json_object_get(ident, "spiffe_id")));
    assert_int_equal(json_array_size(json_object_get(ident, "trust_bundle")), 0);
    json_decref(root);
    mesh_strbuf_free(&out);

    mesh_identity_publish(&p, good_identity(&ca, PAYMENT, 0x51));
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_config_dump_json(&p, s, &out), MESH_OK);
    assert_null(strstr(out.data, "PRIVATE KEY"));
    assert_null(strstr(out.data, "BEGIN"));
    root = json_loads(out.data, 0, NULL);
    ident = json_object_get(root, "identity");
    assert_string_equal(json_string_value(json_object_get(ident, "spiffe_id")), PAYMENT);
    assert_string_equal(json_string_value(json_object_get(ident, "serial")), "51");
    assert_string_equal(json_string_value(json_object_get(ident, "issuer")),
                        "CN=ClusterDB Mesh Root CA,O=ClusterDB Mesh");
    assert_int_equal(json_array_size(json_object_get(ident, "trust_bundle")), 1);
    assert_true(json_is_object(json_object_get(ident, "renewal")));
    json_decref(root);
    mesh_strbuf_free(&out);

    /* The YAML dump's last document says the same, and is YAML. */
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_strbuf_puts(&out, "apiVersion: mesh.clusterdb.io/v1\nkind: Service\n"),
                     MESH_OK);
    assert_int_equal(mesh_config_dump_identity_yaml(&p, &out), MESH_OK);
    assert_non_null(strstr(out.data, "\n---\n"));
    assert_non_null(strstr(out.data, "\nidentity:\n  spiffe_id: \"" PAYMENT "\"\n"));
    assert_non_null(strstr(out.data, "  trust_bundle:\n    - subject: \"CN=ClusterDB"));
    assert_null(strstr(out.data, "PRIVATE KEY"));
    assert_true(yaml_parses(out.data));
    mesh_strbuf_free(&out);

    /* Static mode has no identity: null, and nothing in the YAML. */
    p.opt.mode = MESH_PROXY_STATIC;
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_config_dump_json(&p, s, &out), MESH_OK);
    root = json_loads(out.data, 0, NULL);
    assert_true(json_is_null(json_object_get(root, "identity")));
    json_decref(root);
    mesh_strbuf_free(&out);
    mesh_strbuf_init(&out, 0);
    assert_int_equal(mesh_config_dump_identity_yaml(&p, &out), MESH_OK);
    assert_int_equal(out.len, 0);
    mesh_strbuf_free(&out);

    mesh_identity_publish(&p, NULL);
    mesh_snapshot_unref(s);
    pthread_mutex_destroy(&p.publish_lock);
    ca_clear(&ca);
}

/* --- the plugin's loader --- */

static void test_tls_install_checks_abi_and_size(void **state)
{
    (void)state;
    struct mesh_tls_ops other = mesh_tls_plugin_table;
    char *why = NULL;
    other.abi = MESH_TLS_ABI + 1;
    assert_int_equal(mesh_tls_install(&other, "/x/meshproxy-tls.so", &why), MESH_E_UNSUPPORTED);
    assert_non_null(strstr(why, "/x/meshproxy-tls.so is built for TLS plugin ABI 2, this "
                                "meshproxy needs ABI 1"));
    free(why);
    /* A plugin from before the last appended entry. */
    other = mesh_tls_plugin_table;
    other.size -= (uint32_t)sizeof(void *);
    assert_int_equal(mesh_tls_install(&other, "/x/meshproxy-tls.so", &why), MESH_E_UNSUPPORTED);
    assert_non_null(strstr(why, "is older than this meshproxy"));
    free(why);
    /* Refused tables are not installed; a longer one (a newer plugin) is fine. */
    assert_ptr_equal(mesh_tls_ops(), &mesh_tls_plugin_table);
    assert_int_equal(mesh_tls_plugin_table.abi, MESH_TLS_ABI);
    assert_int_equal(mesh_tls_plugin_table.size, sizeof(struct mesh_tls_ops));
}

/* The appended per-connection entries are all there, and a server context's start errors name
 * the file (the handshakes themselves: tests/e2e/test_gateway_tls.py). */
static void test_tls_table_has_the_server_entries(void **state)
{
    (void)state;
    const struct mesh_tls_ops *t = &mesh_tls_plugin_table;
    assert_non_null(t->server_ctx_new);
    assert_non_null(t->ctx_free);
    assert_non_null(t->conn_new);
    assert_non_null(t->handshake);
    assert_non_null(t->read);
    assert_non_null(t->writev);
    assert_non_null(t->shutdown);
    assert_non_null(t->conn_free);
    assert_non_null(t->conn_error);
    assert_non_null(t->conn_alpn);
    struct mesh_tls_ctx *ctx = NULL;
    char *why = NULL;
    assert_int_equal(
        t->server_ctx_new("/nonexistent/gw-cert.pem", "/nonexistent/gw-key.pem", &ctx, &why),
        MESH_E_IO);
    assert_null(ctx);
    assert_non_null(why);
    assert_non_null(strstr(why, "/nonexistent/gw-cert.pem"));
    free(why);
    t->ctx_free(NULL);
    t->conn_free(NULL);
}

/* $BUILD/name, beside the directory this test runs from ($BUILD/tests). */
static char *build_file(const char *name)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0'; /* $BUILD/tests */
    *strrchr(exe, '/') = '\0'; /* $BUILD */
    char *path = malloc(strlen(exe) + strlen(name) + 2);
    sprintf(path, "%s/%s", exe, name);
    return path;
}

static void test_tls_load_takes_the_built_plugin_from_env(void **state)
{
    (void)state;
    char *want = build_file(MESH_TLS_PLUGIN_FILE);
    char *path = NULL, *why = NULL;
    setenv(MESH_TLS_PLUGIN_ENV, want, 1);
    enum mesh_err err = mesh_tls_load(&path, &why);
    if (err != MESH_OK)
        fail_msg("%s", why);
    assert_string_equal(path, want);
    /* The dlopen()ed plugin's table, not the one linked into this test, and it works. */
    const struct mesh_tls_ops *tls = mesh_tls_ops();
    assert_ptr_not_equal(tls, &mesh_tls_plugin_table);
    assert_int_equal(tls->abi, MESH_TLS_ABI);
    assert_non_null(strstr(tls->library_version(), "OpenSSL 3"));
    struct mesh_tls_key *key = NULL;
    char *pem = NULL;
    assert_int_equal(mesh_identity_key_new(&key), MESH_OK);
    assert_int_equal(mesh_identity_csr_pem(key, "payment-v1", PAYMENT, &pem), MESH_OK);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
    free(pem);
    mesh_identity_key_free(key);
    /* Back to the linked table for the other tests. */
    assert_int_equal(mesh_tls_install(&mesh_tls_plugin_table, "linked", &why), MESH_OK);
    unsetenv(MESH_TLS_PLUGIN_ENV);
    free(path);
    free(want);
}

static void test_tls_load_explains_what_failed(void **state)
{
    (void)state;
    char *path = NULL, *why = NULL;
    /* No such file: the path, dlerror()'s words, and what to do. */
    setenv(MESH_TLS_PLUGIN_ENV, "/nonexistent/meshproxy-tls.so", 1);
    assert_int_equal(mesh_tls_load(&path, &why), MESH_E_UNAVAILABLE);
    assert_null(path);
    assert_non_null(strstr(why, "cannot load the TLS plugin named by $MESHPROXY_TLS_PLUGIN: "
                                "/nonexistent/meshproxy-tls.so: "));
    assert_non_null(strstr(why, "No such file or directory"));
    assert_non_null(strstr(why, "Point MESHPROXY_TLS_PLUGIN at the meshproxy-tls.so built with "
                                "this meshproxy"));
    free(why);
    /* A shared object that is not a plugin (libmesh.so loads, but has no table). */
    char *lib = build_file("libmesh.so");
    setenv(MESH_TLS_PLUGIN_ENV, lib, 1);
    assert_int_equal(mesh_tls_load(&path, &why), MESH_E_UNSUPPORTED);
    assert_non_null(strstr(why, "not a meshproxy TLS plugin"));
    assert_non_null(strstr(why, lib));
    free(why);
    free(lib);
    unsetenv(MESH_TLS_PLUGIN_ENV);
    assert_ptr_equal(mesh_tls_ops(), &mesh_tls_plugin_table); /* nothing else installed */
}

/* Every test but the loader's uses the plugin's objects linked into this binary. */
static int install_linked_plugin(void **state)
{
    (void)state;
    char *why = NULL;
    if (mesh_tls_install(&mesh_tls_plugin_table, "linked", &why) != MESH_OK) {
        fprintf(stderr, "%s\n", why);
        free(why);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_key_is_p256_and_csr_verifies),
        cmocka_unit_test(test_identity_accepts_good_material),
        cmocka_unit_test(test_identity_from_answer_reads_meshd_json),
        cmocka_unit_test(test_identity_refuses_leaf_for_another_key),
        cmocka_unit_test(test_identity_refuses_leaf_not_verifying_against_bundle),
        cmocka_unit_test(test_identity_refuses_spiffe_id_mismatch),
        cmocka_unit_test(test_identity_refuses_missing_or_broken_material),
        cmocka_unit_test(test_identity_contexts_do_mutual_tls),
        cmocka_unit_test(test_identity_old_stays_valid_while_referenced),
        cmocka_unit_test(test_identity_publish_waits_for_every_worker),
        cmocka_unit_test(test_identity_in_config_dumps),
        cmocka_unit_test(test_tls_install_checks_abi_and_size),
        cmocka_unit_test(test_tls_table_has_the_server_entries),
        cmocka_unit_test(test_tls_load_takes_the_built_plugin_from_env),
        cmocka_unit_test(test_tls_load_explains_what_failed),
    };
    return cmocka_run_group_tests(tests, install_linked_plugin, NULL);
}
