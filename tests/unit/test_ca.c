/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of meshd's CAs (src/control/ca.c): the root made private and reloaded the same,
 * broken roots refused with their reason, workload certificates that verify with OpenSSL and
 * carry exactly the identity meshd chose, bad CSRs refused, --ca CAs and the trust bundle. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ca.h"

#define TD  "example.org"
#define TTL 3600

struct fixture {
    char dir[64]; /* a fresh temporary directory, removed after the test */
    char ca_dir[96];
};

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[512];
                snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mesh-test-ca-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->ca_dir, sizeof(fx->ca_dir), "%s/ca", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* --- helpers: OpenSSL objects made by the test itself --- */

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static time_t asn1_time(const ASN1_TIME *a)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(a, &tm), 1);
    return timegm(&tm);
}

static bool ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static char *req_pem(X509_REQ *req)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *out = strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

/* A CSR for key, signed with signer (key itself for a good one), claiming an identity of its own
 * (CN=evil, URI SAN spiffe://evil/...) that meshd must ignore. */
static char *make_csr(EVP_PKEY *key, EVP_PKEY *signer)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"evil", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    X509_NAME_free(name);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name,
                                               "URI:spiffe://evil/ns/kube-system/sa/admin");
    assert_non_null(san);
    sk_X509_EXTENSION_push(exts, san);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_int_equal(X509_REQ_set_pubkey(req, signer), 1);
    assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
    if (key != signer) /* a request whose signature is not its key's */
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    char *pem = req_pem(req);
    X509_REQ_free(req);
    return pem;
}

static void set_serial(X509 *x, long v)
{
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), v), 1);
}

/* A self-signed certificate for key: a CA (CA:TRUE, keyCertSign) or not, valid [nb, na]. */
static X509 *make_self_signed(EVP_PKEY *key, const char *cn, bool ca, time_t nb, time_t na)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    set_serial(x, 42);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509_NAME_free(name);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {
        {"basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
        {"keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"},
        {"subjectKeyIdentifier", "hash"},
    };
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* Writes a CA pair for key into dir as NAME-cert.pem / NAME-key.pem. */
static void write_pair(const char *dir, const char *name, X509 *cert, EVP_PKEY *key,
                       char *cert_path, char *key_path, size_t len)
{
    snprintf(cert_path, len, "%s/%s-cert.pem", dir, name);
    snprintf(key_path, len, "%s/%s-key.pem", dir, name);
    write_cert(cert_path, cert);
    write_key(key_path, key);
}

static struct mesh_ca *open_root(const char *dir, bool *created)
{
    struct mesh_ca *ca = NULL;
    char *msg = NULL;
    bool c = false;
    enum mesh_err err = mesh_ca_open_root(dir, TD, time(NULL), &ca, &c, &msg);
    if (err != MESH_OK)
        fail_msg("mesh_ca_open_root: %s", msg);
    if (created)
        *created = c;
    return ca;
}

/* Opens dir expecting it refused; returns the message (caller frees). */
static char *open_root_error(const char *dir, enum mesh_err want)
{
    struct mesh_ca *ca = NULL;
    char *msg = NULL;
    bool created = true;
    assert_int_equal(mesh_ca_open_root(dir, TD, time(NULL), &ca, &created, &msg), want);
    assert_null(ca);
    assert_false(created);
    assert_non_null(msg);
    assert_null(strstr(msg, "PRIVATE KEY"));
    return msg;
}

/* X509_verify_cert of leaf against the PEM bundle, for purpose. */
static int verify(const char *bundle, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    BIO *b = BIO_new_mem_buf(bundle, -1);
    X509 *x;
    int n = 0;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        assert_int_equal(X509_STORE_add_cert(store, x), 1);
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    BIO_free(b);
    assert_true(n > 0);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    int ok = X509_verify_cert(ctx);
    int code = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return code;
}

static int count_certs(const char *bundle)
{
    int n = 0;
    for (const char *p = bundle; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
        n++;
    return n;
}

/* The one URI SAN of x (and no other SAN). */
static void assert_only_uri_san(X509 *x, const char *want)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    assert_int_equal(gn->type, GEN_URI);
    const ASN1_IA5STRING *uri = gn->d.uniformResourceIdentifier;
    assert_int_equal((size_t)ASN1_STRING_length(uri), strlen(want));
    assert_memory_equal(ASN1_STRING_get0_data(uri), want, strlen(want));
    GENERAL_NAMES_free(names);
}

static void assert_cn(X509 *x, const char *want)
{
    char cn[128] = "";
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, want);
}

static struct mesh_ca_leaf sign_ok(const struct mesh_ca *ca, const char *csr, const char *ns,
                                   const char *name, uint64_t ttl, time_t now)
{
    struct mesh_ca_identity id = {.trust_domain = TD, .ns = ns, .name = name};
    struct mesh_ca_leaf leaf = {0};
    char *msg = NULL;
    enum mesh_err err = mesh_ca_sign(ca, csr, strlen(csr), &id, ttl, now, &leaf, &msg);
    if (err != MESH_OK)
        fail_msg("mesh_ca_sign: %s", msg);
    assert_null(msg);
    return leaf;
}

/* Signs expecting a refusal; returns the message (caller frees). */
static char *sign_error(const struct mesh_ca *ca, const char *csr, enum mesh_err want)
{
    struct mesh_ca_identity id = {.trust_domain = TD, .ns = "default", .name = "payment"};
    struct mesh_ca_leaf leaf = {0};
    char *msg = NULL;
    assert_int_equal(mesh_ca_sign(ca, csr, strlen(csr), &id, TTL, time(NULL), &leaf, &msg), want);
    assert_null(leaf.cert_pem);
    assert_non_null(msg);
    return msg;
}

/* --- the root --- */

static void test_ca_root_created_private_and_reloaded_identically(void **state)
{
    struct fixture *fx = *state;
    struct stat sb;
    char path[256];
    bool created = false;
    time_t now = time(NULL);

    struct mesh_ca *root = open_root(fx->ca_dir, &created);
    assert_true(created);
    assert_string_equal(mesh_ca_name(root), MESH_CA_ROOT_NAME);

    assert_int_equal(stat(fx->ca_dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, MESH_CA_ROOT_KEY_FILE);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, MESH_CA_ROOT_CERT_FILE);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    DIR *d = opendir(fx->ca_dir); /* no temporary file left behind */
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 2);

    /* The certificate: self-signed v3 CA, ten years, the subject of docs/security.md. */
    X509 *x = pem_cert(mesh_ca_cert_pem(root));
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    assert_int_equal(X509_check_ca(x), 1);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_true(ext_critical(x, NID_key_usage));
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_string_equal(mesh_ca_subject(root),
                        "CN=ClusterDB Mesh root CA (" TD "),O=ClusterDB Mesh");
    assert_cn(x, "ClusterDB Mesh root CA (" TD ")");
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    char group[64];
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen), 1);
    assert_string_equal(group, "prime256v1");
    time_t na = asn1_time(X509_get0_notAfter(x));
    assert_true(na >= now + 3650L * 86400 && na <= now + 3653L * 86400);
    assert_int_equal(mesh_ca_not_after(root), na);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_int_equal(BN_num_bits(serial), 128);
    assert_false(BN_is_negative(serial));
    BN_free(serial);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    unsigned char md[32];
    unsigned int mdlen = 0;
    char fp[MESH_CA_FINGERPRINT_LEN + 1];
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    assert_string_equal(mesh_ca_fingerprint(root), fp);
    X509_free(x);

    /* A second open loads the same root. */
    struct mesh_ca *again = open_root(fx->ca_dir, &created);
    assert_false(created);
    assert_string_equal(mesh_ca_fingerprint(again), mesh_ca_fingerprint(root));
    assert_string_equal(mesh_ca_cert_pem(again), mesh_ca_cert_pem(root));
    /* and it signs what the first one's bundle verifies */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    char *csr = make_csr(key, key);
    struct mesh_ca_leaf leaf = sign_ok(again, csr, "default", "payment", TTL, time(NULL));
    X509 *lx = pem_cert(leaf.cert_pem);
    assert_int_equal(verify(mesh_ca_cert_pem(root), lx, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    X509_free(lx);
    mesh_ca_leaf_clear(&leaf);
    free(csr);
    EVP_PKEY_free(key);
    mesh_ca_free(again);
    mesh_ca_free(root);
}

static void test_ca_root_refuses_a_key_that_is_not_the_certificates(void **state)
{
    struct fixture *fx = *state;
    char other[128], src[256], dst[256];
    mesh_ca_free(open_root(fx->ca_dir, NULL));
    snprintf(other, sizeof(other), "%s/other", fx->dir);
    mesh_ca_free(open_root(other, NULL));
    snprintf(src, sizeof(src), "%s/%s", other, MESH_CA_ROOT_KEY_FILE);
    snprintf(dst, sizeof(dst), "%s/%s", fx->ca_dir, MESH_CA_ROOT_KEY_FILE);
    assert_int_equal(rename(src, dst), 0); /* 0600 still */

    char *msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    char want[512];
    snprintf(want, sizeof(want), "%s is not the private key of %s/%s", dst, fx->ca_dir,
             MESH_CA_ROOT_CERT_FILE);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "restore the pair from a backup"));
    free(msg);
}

static void test_ca_root_refuses_a_key_others_can_read(void **state)
{
    struct fixture *fx = *state;
    char key[256];
    mesh_ca_free(open_root(fx->ca_dir, NULL));
    snprintf(key, sizeof(key), "%s/%s", fx->ca_dir, MESH_CA_ROOT_KEY_FILE);

    assert_int_equal(chmod(key, 0644), 0);
    char *msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    assert_non_null(strstr(msg, key));
    assert_non_null(strstr(msg, "accessible to other users (mode 0644)"));
    assert_non_null(strstr(msg, "chmod 600"));
    free(msg);

    assert_int_equal(chmod(key, 0640), 0); /* group-readable is refused too */
    msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    assert_non_null(strstr(msg, "(mode 0640)"));
    free(msg);

    assert_int_equal(chmod(key, 0600), 0);
    mesh_ca_free(open_root(fx->ca_dir, NULL));
}

static void test_ca_root_refuses_a_half_pair_and_garbage(void **state)
{
    struct fixture *fx = *state;
    char cert[256], key[256];
    mesh_ca_free(open_root(fx->ca_dir, NULL));
    snprintf(cert, sizeof(cert), "%s/%s", fx->ca_dir, MESH_CA_ROOT_CERT_FILE);
    snprintf(key, sizeof(key), "%s/%s", fx->ca_dir, MESH_CA_ROOT_KEY_FILE);

    FILE *f = fopen(cert, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    char *msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    assert_non_null(strstr(msg, "holds no PEM certificate"));
    free(msg);

    unlink(cert);
    msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    assert_non_null(strstr(msg, "exists but"));
    assert_non_null(strstr(msg, cert));
    free(msg);

    /* an unreadable file says why */
    mkdir(cert, 0700);
    msg = open_root_error(fx->ca_dir, MESH_E_INVALID);
    assert_non_null(strstr(msg, "is not a regular file"));
    free(msg);
}

/* --- signing --- */

static void test_ca_signs_a_leaf_that_verifies_with_meshds_identity(void **state)
{
    struct fixture *fx = *state;
    struct mesh_ca *root = open_root(fx->ca_dir, NULL);
    struct mesh_ca_set set = {0};
    char *msg = NULL;
    assert_int_equal(mesh_ca_set_add(&set, root, &msg), MESH_OK);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    char *csr = make_csr(key, key);
    time_t now = time(NULL);

    struct mesh_ca_leaf a = sign_ok(root, csr, "prod", "payment", TTL, now);
    struct mesh_ca_leaf b = sign_ok(root, csr, "prod", "payment", TTL, now);
    assert_string_equal(a.spiffe_id, "spiffe://" TD "/ns/prod/sa/payment");
    assert_string_not_equal(a.serial, b.serial);
    assert_int_equal(strlen(a.serial), 32);

    X509 *x = pem_cert(a.cert_pem);
    assert_int_equal(verify(set.bundle_pem, x, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_int_equal(verify(set.bundle_pem, x, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    /* the identity is meshd's, not the CSR's (CN=evil, spiffe://evil/...) */
    assert_only_uri_san(x, "spiffe://" TD "/ns/prod/sa/payment");
    assert_cn(x, "payment");
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_true(ext_critical(x, NID_key_usage));
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(x));
    X509 *rx = pem_cert(mesh_ca_cert_pem(root));
    assert_int_equal(X509_check_issued(rx, x), X509_V_OK);
    assert_non_null(X509_get0_authority_key_id(x));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(rx)), 0);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    /* lifetime: ttl from now, valid from a minute ago for clocks that lag */
    assert_int_equal(asn1_time(X509_get0_notBefore(x)), now - MESH_CA_CLOCK_SKEW_S);
    assert_int_equal(asn1_time(X509_get0_notAfter(x)), now + TTL);
    assert_int_equal(a.not_before, now - MESH_CA_CLOCK_SKEW_S);
    assert_int_equal(a.not_after, now + TTL);
    /* the serial string is the certificate's */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = BN_bn2hex(bn);
    assert_string_equal(a.serial, hex);
    assert_int_equal(BN_num_bits(bn), 128);
    OPENSSL_free(hex);
    BN_free(bn);
    assert_true(EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1);

    X509_free(rx);
    X509_free(x);
    mesh_ca_leaf_clear(&a);
    mesh_ca_leaf_clear(&b);
    free(csr);
    EVP_PKEY_free(key);
    mesh_ca_set_clear(&set);
}

static void test_ca_accepts_p384_and_rsa_refuses_weak_keys(void **state)
{
    struct fixture *fx = *state;
    struct mesh_ca *root = open_root(fx->ca_dir, NULL);

    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    char *csr = make_csr(p384, p384);
    struct mesh_ca_leaf leaf = sign_ok(root, csr, "default", "orders", TTL, time(NULL));
    X509 *x = pem_cert(leaf.cert_pem);
    assert_int_equal(verify(mesh_ca_cert_pem(root), x, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    X509_free(x);
    mesh_ca_leaf_clear(&leaf);
    free(csr);

    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    csr = make_csr(rsa, rsa);
    leaf = sign_ok(root, csr, "default", "orders", TTL, time(NULL));
    x = pem_cert(leaf.cert_pem);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(verify(mesh_ca_cert_pem(root), x, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    X509_free(x);
    mesh_ca_leaf_clear(&leaf);
    free(csr);

    EVP_PKEY *weak = EVP_RSA_gen(1024);
    csr = make_csr(weak, weak);
    char *msg = sign_error(root, csr, MESH_E_UNSUPPORTED);
    assert_string_equal(msg, "csr: unsupported key: RSA of 1024 bits; use EC P-256 or P-384, or "
                             "RSA of at least 2048 bits");
    free(msg);
    free(csr);

    EVP_PKEY *p521 = EVP_EC_gen("P-521");
    csr = make_csr(p521, p521);
    msg = sign_error(root, csr, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "csr: unsupported key: EC with secp521r1"));
    free(msg);
    free(csr);

    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509_REQ *req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_pubkey(req, ed), 1);
    assert_true(X509_REQ_sign(req, ed, NULL) > 0);
    csr = req_pem(req);
    msg = sign_error(root, csr, MESH_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "csr: unsupported key type ED25519"));
    free(msg);
    free(csr);
    X509_REQ_free(req);

    EVP_PKEY_free(ed);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    mesh_ca_free(root);
}

static void test_ca_refuses_a_csr_with_a_bad_signature_or_none(void **state)
{
    struct fixture *fx = *state;
    struct mesh_ca *root = open_root(fx->ca_dir, NULL);
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");

    /* holds key but was signed with other: whoever sent it does not hold key */
    char *csr = make_csr(key, other);
    char *msg = sign_error(root, csr, MESH_E_INVALID);
    assert_non_null(strstr(msg, "csr: its signature does not verify"));
    free(msg);
    free(csr);

    msg = sign_error(root, "hello", MESH_E_INVALID);
    assert_non_null(strstr(msg, "csr: not a PEM certificate request"));
    free(msg);
    /* a certificate is not a request */
    msg = sign_error(root, mesh_ca_cert_pem(root), MESH_E_INVALID);
    assert_non_null(strstr(msg, "csr: not a PEM certificate request"));
    free(msg);
    /* nor is a request whose base64 was damaged */
    csr = make_csr(key, key);
    char *body = strchr(csr, '\n') + 10;
    *body = *body == 'A' ? 'B' : 'A';
    struct mesh_ca_identity id = {.trust_domain = TD, .ns = "default", .name = "payment"};
    struct mesh_ca_leaf leaf = {0};
    msg = NULL;
    assert_int_not_equal(mesh_ca_sign(root, csr, strlen(csr), &id, TTL, time(NULL), &leaf, &msg),
                         MESH_OK);
    assert_non_null(msg);
    assert_true(strncmp(msg, "csr: ", 5) == 0);
    assert_null(leaf.cert_pem);
    free(msg);
    free(csr);

    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
    mesh_ca_free(root);
}

/* --- named CAs and the bundle --- */

static void test_ca_named_ca_signs_and_the_bundle_holds_both_roots(void **state)
{
    struct fixture *fx = *state;
    char cert_path[256], key_path[256], *msg = NULL;
    time_t now = time(NULL);
    struct mesh_ca_set set = {0};
    assert_int_equal(mesh_ca_set_add(&set, open_root(fx->ca_dir, NULL), &msg), MESH_OK);

    EVP_PKEY *ca_key = EVP_EC_gen("P-384");
    X509 *ca_cert = make_self_signed(ca_key, "Internal CA", true, now - 3600, now + 86400 * 365);
    write_pair(fx->dir, "internal", ca_cert, ca_key, cert_path, key_path, sizeof(cert_path));
    struct mesh_ca *internal = NULL;
    enum mesh_err err = mesh_ca_load("internal-ca", cert_path, key_path, now, &internal, &msg);
    if (err != MESH_OK)
        fail_msg("mesh_ca_load: %s", msg);
    assert_string_equal(mesh_ca_name(internal), "internal-ca");
    assert_string_equal(mesh_ca_subject(internal), "CN=Internal CA");
    assert_int_equal(mesh_ca_set_add(&set, internal, &msg), MESH_OK);
    assert_ptr_equal(mesh_ca_set_find(&set, "internal-ca"), internal);
    assert_ptr_equal(mesh_ca_set_find(&set, MESH_CA_ROOT_NAME), set.items[0]);
    assert_null(mesh_ca_set_find(&set, "nope"));

    assert_int_equal(count_certs(set.bundle_pem), 2);
    assert_non_null(strstr(set.bundle_pem, mesh_ca_cert_pem(set.items[0])));
    assert_non_null(strstr(set.bundle_pem, mesh_ca_cert_pem(internal)));

    EVP_PKEY *key = EVP_EC_gen("P-256");
    char *csr = make_csr(key, key);
    struct mesh_ca_leaf from_internal = sign_ok(internal, csr, "default", "payment", TTL, now);
    struct mesh_ca_leaf from_root = sign_ok(set.items[0], csr, "default", "orders", TTL, now);
    X509 *xi = pem_cert(from_internal.cert_pem), *xr = pem_cert(from_root.cert_pem);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(xi), X509_get_subject_name(ca_cert)), 0);
    assert_int_equal(X509_check_issued(ca_cert, xi), X509_V_OK);
    /* both verify with the one bundle: proxies under different CAs still trust each other */
    assert_int_equal(verify(set.bundle_pem, xi, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    assert_int_equal(verify(set.bundle_pem, xi, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    assert_int_equal(verify(set.bundle_pem, xr, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    /* and not with the other CA alone */
    assert_int_not_equal(verify(mesh_ca_cert_pem(set.items[0]), xi, X509_PURPOSE_SSL_CLIENT),
                         X509_V_OK);
    assert_only_uri_san(xi, "spiffe://" TD "/ns/default/sa/payment");

    /* a second CA of the same name is refused (and freed) */
    struct mesh_ca *dup = NULL;
    assert_int_equal(mesh_ca_load("internal-ca", cert_path, key_path, now, &dup, &msg), MESH_OK);
    assert_int_equal(mesh_ca_set_add(&set, dup, &msg), MESH_E_CONFLICT);
    assert_non_null(strstr(msg, "internal-ca"));
    free(msg);
    assert_int_equal(set.len, 2);

    X509_free(xi);
    X509_free(xr);
    mesh_ca_leaf_clear(&from_internal);
    mesh_ca_leaf_clear(&from_root);
    free(csr);
    EVP_PKEY_free(key);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    mesh_ca_set_clear(&set);
    assert_int_equal(set.len, 0);
    assert_null(set.bundle_pem);
}

static char *load_error(const char *cert_path, const char *key_path, time_t now)
{
    struct mesh_ca *ca = NULL;
    char *msg = NULL;
    assert_int_not_equal(mesh_ca_load("x", cert_path, key_path, now, &ca, &msg), MESH_OK);
    assert_null(ca);
    assert_non_null(msg);
    assert_null(strstr(msg, "PRIVATE KEY"));
    return msg;
}

static void test_ca_load_refuses_what_cannot_be_a_ca(void **state)
{
    struct fixture *fx = *state;
    char cert_path[256], key_path[256], other_cert[256], other_key[256];
    time_t now = time(NULL);
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");

    X509 *leaf = make_self_signed(key, "not a CA", false, now - 60, now + 86400);
    write_pair(fx->dir, "leaf", leaf, key, cert_path, key_path, sizeof(cert_path));
    char *msg = load_error(cert_path, key_path, now);
    assert_non_null(strstr(msg, "is not a CA certificate"));
    free(msg);

    X509 *expired = make_self_signed(key, "old", true, now - 7200, now - 3600);
    write_pair(fx->dir, "expired", expired, key, cert_path, key_path, sizeof(cert_path));
    msg = load_error(cert_path, key_path, now);
    assert_non_null(strstr(msg, "expired on"));
    free(msg);

    X509 *good = make_self_signed(key, "good", true, now - 60, now + 7200);
    X509 *other_ca = make_self_signed(other, "other", true, now - 60, now + 7200);
    write_pair(fx->dir, "good", good, key, cert_path, key_path, sizeof(cert_path));
    write_pair(fx->dir, "other", other_ca, other, other_cert, other_key, sizeof(other_cert));
    msg = load_error(cert_path, other_key, now);
    char want[600];
    snprintf(want, sizeof(want), "%s is not the private key of %s", other_key, cert_path);
    assert_non_null(strstr(msg, want));
    free(msg);

    assert_int_equal(chmod(key_path, 0604), 0);
    msg = load_error(cert_path, key_path, now);
    assert_non_null(strstr(msg, "accessible to other users"));
    free(msg);
    assert_int_equal(chmod(key_path, 0600), 0);

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/missing.pem", fx->dir);
    msg = load_error(missing, key_path, now);
    assert_non_null(strstr(msg, "cannot read"));
    assert_non_null(strstr(msg, "No such file"));
    free(msg);
    char not_key[300]; /* a certificate where the key should be */
    snprintf(not_key, sizeof(not_key), "%s/not-a-key.pem", fx->dir);
    write_cert(not_key, good);
    assert_int_equal(chmod(not_key, 0600), 0);
    msg = load_error(cert_path, not_key, now);
    assert_non_null(strstr(msg, "holds no unencrypted PEM private key"));
    free(msg);
    /* an encrypted key is refused, not prompted for */
    FILE *f = fopen(not_key, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), NULL, 0, NULL, "secret"), 1);
    fclose(f);
    msg = load_error(cert_path, not_key, now);
    assert_non_null(strstr(msg, "holds no unencrypted PEM private key"));
    free(msg);

    /* A CA that ends in two hours signs leaves that end with it, whatever the ttl. */
    struct mesh_ca *ca = NULL;
    assert_int_equal(mesh_ca_load("short", cert_path, key_path, now, &ca, &msg), MESH_OK);
    char *csr = make_csr(other, other);
    struct mesh_ca_leaf l = sign_ok(ca, csr, "default", "payment", 86400, now);
    assert_int_equal(l.not_after, now + 7200);
    mesh_ca_leaf_clear(&l);
    /* and refuses once it has expired */
    struct mesh_ca_identity id = {.trust_domain = TD, .ns = "default", .name = "payment"};
    assert_int_equal(mesh_ca_sign(ca, csr, strlen(csr), &id, TTL, now + 7200, &l, &msg),
                     MESH_E_TLS);
    assert_non_null(strstr(msg, "the CA short expired on"));
    free(msg);
    free(csr);
    mesh_ca_free(ca);

    X509_free(leaf);
    X509_free(expired);
    X509_free(good);
    X509_free(other_ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_ca_trust_domain_must_be_a_dns_name(void **state)
{
    char why[256];
    (void)state;
    assert_true(mesh_ca_trust_domain_valid("cluster.local", why, sizeof(why)));
    assert_true(mesh_ca_trust_domain_valid("prod-1.example.org", why, sizeof(why)));
    assert_true(mesh_ca_trust_domain_valid("mesh", why, sizeof(why)));
    const char *bad[] = {"",           "Cluster.local", "a..b",   "-x.org",         "x-.org",
                         "spiffe://x", "a b",           "x.org.", "under_score.org"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_false(mesh_ca_trust_domain_valid(bad[i], why, sizeof(why)));
        assert_non_null(strstr(why, "is not a DNS name"));
    }
}

static void test_ca_long_trust_domain_keeps_the_root_cn_short(void **state)
{
    struct fixture *fx = *state;
    const char *td = "a-rather-long-trust-domain-name.example.org"; /* CN would pass 64 */
    struct mesh_ca *ca = NULL;
    char *msg = NULL;
    bool created = false;
    assert_int_equal(mesh_ca_open_root(fx->ca_dir, td, time(NULL), &ca, &created, &msg), MESH_OK);
    assert_true(created);
    assert_string_equal(mesh_ca_subject(ca), "CN=ClusterDB Mesh root CA,O=ClusterDB Mesh");
    mesh_ca_free(ca);
}

static void test_ca_format_time_is_rfc3339_utc(void **state)
{
    char buf[MESH_CA_TIME_LEN];
    (void)state;
    mesh_ca_format_time(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    mesh_ca_format_time(2082762245, buf, sizeof(buf));
    assert_string_equal(buf, "2036-01-01T01:04:05Z");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ca_root_created_private_and_reloaded_identically),
        T(test_ca_root_refuses_a_key_that_is_not_the_certificates),
        T(test_ca_root_refuses_a_key_others_can_read),
        T(test_ca_root_refuses_a_half_pair_and_garbage),
        T(test_ca_signs_a_leaf_that_verifies_with_meshds_identity),
        T(test_ca_accepts_p384_and_rsa_refuses_weak_keys),
        T(test_ca_refuses_a_csr_with_a_bad_signature_or_none),
        T(test_ca_named_ca_signs_and_the_bundle_holds_both_roots),
        T(test_ca_load_refuses_what_cannot_be_a_ca),
        cmocka_unit_test(test_ca_trust_domain_must_be_a_dns_name),
        T(test_ca_long_trust_domain_keeps_the_root_cn_short),
        cmocka_unit_test(test_ca_format_time_is_rfc3339_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
