/* SPDX-License-Identifier: Apache-2.0 */
/* Inside meshproxy-tls.so: the workload identity with OpenSSL 3 — key and CSR generation,
 * checking meshd's answer, building the TLS contexts from it, and reference counting. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/tls_adopt.h"
#include "tls_internal.h"

/* --- memory: the renewal thread's work, which aborts when out of memory, as xalloc.h does on
 * meshproxy's control side (the plugin links nothing of meshproxy's) --- */

static void *zalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static char *str_dup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *str_vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *str_vfmt(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = zalloc((size_t)(n > 0 ? n : 0) + 1);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, again);
    va_end(again);
    return s;
}

static char *str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = str_vfmt(fmt, ap);
    va_end(ap);
    return s;
}

/* --- errors --- */

/* *why = "what: OpenSSL's first queued error", and the thread's queue emptied. */
static enum mesh_err tls_fail(char **why, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    *why = buf[0] ? str_fmt("%s: %s", what, buf) : str_dup(what);
    return MESH_E_TLS;
}

static enum mesh_err fail(char **why, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err fail(char **why, enum mesh_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *why = str_vfmt(fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return err;
}

/* --- key and request --- */

enum mesh_err mesh_tls_key_new(struct mesh_tls_key **out)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    *out = (struct mesh_tls_key *)key;
    if (!key) {
        ERR_clear_error();
        return MESH_E_TLS;
    }
    return MESH_OK;
}

void mesh_tls_key_free(struct mesh_tls_key *key)
{
    EVP_PKEY_free(mesh_tls_pkey(key));
}

/* The contents of a memory BIO as a new string. */
static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = zalloc((size_t)(n > 0 ? n : 0) + 1);
    if (n > 0)
        memcpy(s, data, (size_t)n);
    return s;
}

/* A subjectAltName extension holding one URI. */
static X509_EXTENSION *uri_san(const char *uri)
{
    X509_EXTENSION *ext = NULL;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (!names || !gn || !ia5 || !ASN1_STRING_set(ia5, uri, (int)strlen(uri)))
        goto out;
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    ia5 = NULL; /* gn owns it */
    if (!sk_GENERAL_NAME_push(names, gn))
        goto out;
    gn = NULL; /* names owns it */
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
out:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(names);
    return ext;
}

enum mesh_err mesh_tls_csr_pem(struct mesh_tls_key *tkey, const char *cn, const char *spiffe_id,
                               char **out)
{
    enum mesh_err err = MESH_E_TLS;
    EVP_PKEY *key = mesh_tls_pkey(tkey);
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *san = NULL;
    BIO *bio = NULL;
    *out = NULL;
    if (!cn || !*cn)
        return MESH_E_INVALID;
    ERR_clear_error();
    req = X509_REQ_new();
    name = X509_NAME_new();
    if (!req || !name || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
        goto out;
    if (spiffe_id) {
        exts = sk_X509_EXTENSION_new_null();
        san = uri_san(spiffe_id);
        if (!exts || !san || !sk_X509_EXTENSION_push(exts, san))
            goto out;
        san = NULL; /* exts owns it */
        if (!X509_REQ_add_extensions(req, exts))
            goto out;
    }
    bio = BIO_new(BIO_s_mem());
    if (!X509_REQ_sign(req, key, EVP_sha256()) || !bio || !PEM_write_bio_X509_REQ(bio, req))
        goto out;
    *out = bio_text(bio);
    err = MESH_OK;
out:
    ERR_clear_error();
    BIO_free(bio);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return err;
}

/* --- reading the answer --- */

/* Certificates are never encrypted: refuse any pass phrase prompt. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* Every CERTIFICATE block of pem, in order (other blocks are skipped). MESH_E_INVALID with *why
 * naming the field when there is none or one does not parse. */
static enum mesh_err read_certs(const char *pem, const char *field, STACK_OF(X509) * *out,
                                char **why)
{
    enum mesh_err err = MESH_OK;
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    *out = NULL;
    ERR_clear_error();
    if (!pem || !*pem) {
        err = fail(why, MESH_E_INVALID, "answer has no \"%s\"", field);
        goto out;
    }
    if (!certs || !bio) {
        err = fail(why, MESH_E_NOMEM, "out of memory");
        goto out;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            err = fail(why, MESH_E_NOMEM, "out of memory");
            goto out;
        }
    }
    /* The loop ends at the end of the text (no start line) or at a block that did not parse. */
    unsigned long e = ERR_peek_last_error();
    bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (sk_X509_num(certs) == 0 || (e && !at_end)) {
        err = fail(why, MESH_E_INVALID, "\"%s\" is not PEM certificates", field);
        goto out;
    }
    *out = certs;
    certs = NULL;
out:
    ERR_clear_error();
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return err;
}

static bool asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

/* A name in RFC 2253 form, as a new string. */
static char *name_text(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
        s = bio_text(bio);
    BIO_free(bio);
    return s ? s : str_dup("?");
}

/* The leaf's one URI SAN must be spiffe_id. */
static enum mesh_err check_san(X509 *leaf, const char *spiffe_id, char **why)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    const ASN1_IA5STRING *uri = NULL;
    int uris = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_URI) {
            uris++;
            uri = gn->d.uniformResourceIdentifier;
        }
    }
    enum mesh_err err = MESH_OK;
    if (uris != 1) {
        err = fail(why, MESH_E_TLS,
                   "SPIFFE ID mismatch: the certificate has %d URI SANs, meshd said %s (one "
                   "expected)",
                   uris, spiffe_id);
    } else {
        const char *u = (const char *)ASN1_STRING_get0_data(uri);
        size_t ulen = (size_t)ASN1_STRING_length(uri);
        if (ulen != strlen(spiffe_id) || memcmp(u, spiffe_id, ulen) != 0)
            err = fail(why, MESH_E_TLS,
                       "SPIFFE ID mismatch: the certificate names %.*s, meshd "
                       "said %s",
                       (int)(ulen > 300 ? 300 : ulen), u, spiffe_id);
    }
    GENERAL_NAMES_free(names);
    return err;
}

/* spiffe_id must be spiffe://TD/ns/NS/sa/NAME for workload "NS/NAME". */
static enum mesh_err check_workload(const char *spiffe_id, const char *workload, char **why)
{
    const char *slash = strchr(workload, '/');
    const char *td = strncmp(spiffe_id, "spiffe://", 9) == 0 ? spiffe_id + 9 : NULL;
    const char *path = td ? strchr(td, '/') : NULL;
    if (!slash || !path || path == td)
        return fail(why, MESH_E_TLS, "SPIFFE ID mismatch: %s is not spiffe://TRUST-DOMAIN/...",
                    spiffe_id);
    char *want = str_fmt("/ns/%.*s/sa/%s", (int)(slash - workload), workload, slash + 1);
    enum mesh_err err = MESH_OK;
    if (strcmp(path, want) != 0)
        err = fail(why, MESH_E_TLS,
                   "SPIFFE ID mismatch: meshd issued %s, this proxy is spiffe://%.*s%s", spiffe_id,
                   (int)(path - td), td, want);
    free(want);
    return err;
}

/* m->serial, when given, must be the leaf's serial (hex, any case or leading zeros). */
static enum mesh_err check_serial(X509 *leaf, const char *serial, char **why)
{
    BIGNUM *ours = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    BIGNUM *said = NULL;
    enum mesh_err err = MESH_OK;
    size_t len = strlen(serial);
    if (!ours || len == 0 || len > 64 || BN_hex2bn(&said, serial) != (int)len)
        err = fail(why, MESH_E_INVALID, "answer's \"serial\" %.80s is not hex", serial);
    else if (BN_cmp(ours, said) != 0)
        err = fail(why, MESH_E_TLS, "serial mismatch: meshd said %s, the certificate has another",
                   serial);
    BN_free(ours);
    BN_free(said);
    return err;
}

static enum mesh_err verify_leaf(struct mesh_tls_identity *id, char **why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    enum mesh_err err = MESH_OK;
    if (!ctx || !X509_STORE_CTX_init(ctx, id->trust, id->leaf, id->chain)) {
        err = tls_fail(why, "cannot set up verification");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        int code = X509_STORE_CTX_get_error(ctx);
        err = fail(why, MESH_E_TLS, "certificate does not verify against the trust bundle: %s",
                   X509_verify_cert_error_string(code));
    }
out:
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

/* A TLS context for one side, from id's key, leaf, chain and trust: net/tls.h's, so that
 * connections made from it have that file's non-blocking calls, messages and causes. Peers'
 * certificates are required both ways; the client resumes sessions. */
static enum mesh_err build_ctx(struct mesh_tls_identity *id, bool server, struct mesh_tls_ctx **out,
                               char **why)
{
    enum mesh_err err = MESH_OK;
    SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, server ? TLS_server_method() : TLS_client_method());
    const char *side = server ? "server" : "client";
    char what[96];
    char *msg = NULL;
    *out = NULL;
    if (!ctx) {
        snprintf(what, sizeof(what), "cannot create the TLS %s context", side);
        return tls_fail(why, what);
    }
    /* TLS 1.3 is negotiated whenever the peer has it; 1.2 only with forward-secret AEAD
     * suites. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20")) {
        snprintf(what, sizeof(what), "cannot set the TLS %s context's versions", side);
        err = tls_fail(why, what);
        goto out;
    }
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    if (SSL_CTX_use_certificate(ctx, id->leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, id->key) != 1) {
        snprintf(what, sizeof(what), "cannot load the certificate into the TLS %s context", side);
        err = tls_fail(why, what);
        goto out;
    }
    /* Peers have the roots: send the intermediates only. */
    for (int i = 0; i < sk_X509_num(id->chain); i++) {
        X509 *c = sk_X509_value(id->chain, i);
        if ((X509_get_extension_flags(c) & EXFLAG_SS) == 0 && !SSL_CTX_add1_chain_cert(ctx, c)) {
            err = tls_fail(why, "cannot add the chain to a TLS context");
            goto out;
        }
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "certificate does not match our key (TLS %s context)", side);
        err = tls_fail(why, what);
        goto out;
    }
    SSL_CTX_set1_cert_store(ctx, id->trust); /* takes its own reference */
    /* ALPN http/1.1 only until the proxy speaks HTTP/2 between sidecars; then "h2,http/1.1". */
    struct mesh_tls_adopt opt = {
        .server = server,
        .verify_clients = MESH_TLS_VERIFY_REQUIRED,
        .alpn = "http/1.1",
        .resume_sessions = true,
    };
    err = mesh_tls_ctx_adopt(ctx, &opt, out, &msg);
    if (err != MESH_OK)
        err = fail(why, err, "TLS %s context: %s", side, msg ? msg : "out of memory");
out:
    free(msg);
    SSL_CTX_free(ctx); /* the adopted context holds its own reference */
    return err;
}

static void identity_free(struct mesh_tls_identity *id)
{
    mesh_tls_ctx_free(id->server_ctx);
    mesh_tls_ctx_free(id->client_ctx);
    X509_STORE_free(id->trust);
    sk_X509_pop_free(id->roots, X509_free);
    sk_X509_pop_free(id->chain, X509_free);
    X509_free(id->leaf);
    EVP_PKEY_free(id->key);
    for (size_t i = 0; i < id->facts.n_roots; i++)
        free((char *)id->root_facts[i].subject);
    free(id->root_facts);
    free((char *)id->facts.spiffe_id);
    free((char *)id->facts.serial);
    free((char *)id->facts.ca);
    free((char *)id->facts.issuer);
    free(id);
}

/* The facts /config_dump shows, read from the checked certificates. */
static enum mesh_err read_facts(struct mesh_tls_identity *id, const struct mesh_tls_material *m,
                                char **why)
{
    struct mesh_tls_facts *f = &id->facts;
    if (!asn1_time_unix(X509_get0_notBefore(id->leaf), &f->not_before) ||
        !asn1_time_unix(X509_get0_notAfter(id->leaf), &f->not_after))
        return fail(why, MESH_E_TLS, "certificate has unreadable validity dates");
    f->spiffe_id = str_dup(m->spiffe_id);
    if (m->serial) {
        f->serial = str_dup(m->serial);
    } else {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id->leaf), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        f->serial = str_dup(hex ? hex : "?");
        OPENSSL_free(hex);
        BN_free(bn);
    }
    f->ca = str_dup(m->ca ? m->ca : "");
    f->issuer = name_text(X509_get_issuer_name(id->leaf));
    size_t n = (size_t)sk_X509_num(id->roots);
    id->root_facts = zalloc(n * sizeof(*id->root_facts));
    f->roots = id->root_facts;
    for (size_t i = 0; i < n; i++) {
        X509 *root = sk_X509_value(id->roots, (int)i);
        struct mesh_tls_root_facts *rf = &id->root_facts[i];
        unsigned int len = 0;
        rf->subject = name_text(X509_get_subject_name(root));
        f->n_roots = i + 1; /* identity_free frees the subjects up to here */
        if (!asn1_time_unix(X509_get0_notAfter(root), &rf->not_after))
            rf->not_after = 0;
        if (!X509_digest(root, EVP_sha256(), rf->sha256, &len) || len != sizeof(rf->sha256))
            return tls_fail(why, "cannot take a root's fingerprint");
    }
    return MESH_OK;
}

enum mesh_err mesh_tls_identity_build(struct mesh_tls_key *tkey, const struct mesh_tls_material *m,
                                      const char *workload, struct mesh_tls_identity **out,
                                      char **why)
{
    enum mesh_err err;
    EVP_PKEY *key = mesh_tls_pkey(tkey);
    STACK_OF(X509) *leaves = NULL;
    struct mesh_tls_identity *id = zalloc(sizeof(*id));
    atomic_init(&id->refs, 1);
    *out = NULL;
    *why = NULL;
    ERR_clear_error();
    if (!m->spiffe_id || !*m->spiffe_id) {
        err = fail(why, MESH_E_INVALID, "answer has no \"spiffe_id\"");
        goto out;
    }
    if ((err = read_certs(m->certificate, "certificate", &leaves, why)) != MESH_OK ||
        (err = read_certs(m->trust_bundle, "trust_bundle", &id->roots, why)) != MESH_OK)
        goto out;
    if (m->chain && *m->chain) {
        if ((err = read_certs(m->chain, "chain", &id->chain, why)) != MESH_OK)
            goto out;
    } else if (!(id->chain = sk_X509_new_null())) {
        err = fail(why, MESH_E_NOMEM, "out of memory");
        goto out;
    }
    id->leaf = sk_X509_shift(leaves); /* the first; a meshd that appends more is not wrong */
    if (!EVP_PKEY_up_ref(key)) {
        err = tls_fail(why, "cannot reference the key");
        goto out;
    }
    id->key = key;
    const EVP_PKEY *pub = X509_get0_pubkey(id->leaf);
    if (!pub || EVP_PKEY_eq(pub, key) != 1) {
        err = fail(why, MESH_E_TLS, "certificate does not match our key");
        goto out;
    }
    id->trust = X509_STORE_new();
    if (!id->trust) {
        err = tls_fail(why, "cannot create the trust store");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(id->roots); i++) {
        if (!X509_STORE_add_cert(id->trust, sk_X509_value(id->roots, i))) {
            err = tls_fail(why, "cannot add a root of the trust bundle");
            goto out;
        }
    }
    if ((err = verify_leaf(id, why)) != MESH_OK ||
        (err = check_san(id->leaf, m->spiffe_id, why)) != MESH_OK ||
        (workload && (err = check_workload(m->spiffe_id, workload, why)) != MESH_OK) ||
        (m->serial && (err = check_serial(id->leaf, m->serial, why)) != MESH_OK) ||
        (err = read_facts(id, m, why)) != MESH_OK ||
        (err = build_ctx(id, true, &id->server_ctx, why)) != MESH_OK ||
        (err = build_ctx(id, false, &id->client_ctx, why)) != MESH_OK)
        goto out;
    *out = id;
    id = NULL;
out:
    ERR_clear_error();
    sk_X509_pop_free(leaves, X509_free);
    if (id)
        identity_free(id);
    return err;
}

/* --- references and facts --- */

void mesh_tls_identity_ref(struct mesh_tls_identity *id)
{
    atomic_fetch_add_explicit(&id->refs, 1, memory_order_relaxed);
}

void mesh_tls_identity_unref(struct mesh_tls_identity *id)
{
    if (atomic_fetch_sub_explicit(&id->refs, 1, memory_order_acq_rel) == 1)
        identity_free(id);
}

const struct mesh_tls_facts *mesh_tls_identity_facts(const struct mesh_tls_identity *id)
{
    return &id->facts;
}
