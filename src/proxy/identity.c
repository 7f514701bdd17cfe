/* SPDX-License-Identifier: Apache-2.0 */
/* The workload identity: key and CSR generation, checking meshd's answer and building the TLS
 * contexts from it, reference counting, and publication to the workers. */
#include "identity.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"

#define RETIRE_WAIT_MS 5000 /* as for snapshots: a worker stuck longer is not waited for */

/* --- errors --- */

/* *why = "what: OpenSSL's first queued error", and the thread's queue emptied. */
static enum mesh_err tls_fail(char **why, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    *why = buf[0] ? xasprintf("%s: %s", what, buf) : xstrdup(what);
    return MESH_E_TLS;
}

static enum mesh_err fail(char **why, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err fail(char **why, enum mesh_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    *why = s;
    return err;
}

/* --- key and request --- */

enum mesh_err mesh_identity_key_new(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!*out) {
        ERR_clear_error();
        return MESH_E_TLS;
    }
    return MESH_OK;
}

/* The contents of a memory BIO as a new string. */
static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = xmalloc((size_t)(n > 0 ? n : 0) + 1);
    if (n > 0)
        memcpy(s, data, (size_t)n);
    s[n > 0 ? n : 0] = '\0';
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

enum mesh_err mesh_identity_csr_pem(EVP_PKEY *key, const char *cn, const char *spiffe_id,
                                    char **out)
{
    enum mesh_err err = MESH_E_TLS;
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

void mesh_identity_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

/* A name in RFC 2253 form, as a new string. */
static char *name_text(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
        s = bio_text(bio);
    BIO_free(bio);
    return s ? s : xstrdup("?");
}

/* The SHA-256 of x's DER as "AB:CD:...". */
static void fingerprint(X509 *x, char *buf, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    buf[0] = '\0';
    if (!X509_digest(x, EVP_sha256(), md, &n))
        return;
    size_t off = 0;
    for (unsigned i = 0; i < n && off + 3 < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%02X", i ? ":" : "", md[i]);
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
    char *want = xasprintf("/ns/%.*s/sa/%s", (int)(slash - workload), workload, slash + 1);
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

static enum mesh_err verify_leaf(struct mesh_identity *id, char **why)
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

/* A TLS context for one side, from id's key, leaf, chain and trust. */
static enum mesh_err build_ctx(struct mesh_identity *id, bool server, SSL_CTX **out, char **why)
{
    enum mesh_err err = MESH_OK;
    SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, server ? TLS_server_method() : TLS_client_method());
    const char *side = server ? "server" : "client";
    char what[96];
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
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Resumed sessions must stay bound to this verification setting. */
    if (server && !SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"meshproxy", 9)) {
        err = tls_fail(why, "cannot set the session context");
        goto out;
    }
    *out = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    return err;
}

static void identity_free(struct mesh_identity *id)
{
    SSL_CTX_free(id->server_ctx);
    SSL_CTX_free(id->client_ctx);
    X509_STORE_free(id->trust);
    sk_X509_pop_free(id->roots, X509_free);
    sk_X509_pop_free(id->chain, X509_free);
    X509_free(id->leaf);
    EVP_PKEY_free(id->key);
    for (size_t i = 0; i < id->n_roots; i++)
        free(id->root_info[i].subject);
    free(id->root_info);
    free(id->spiffe_id);
    free(id->serial);
    free(id->ca);
    free(id->issuer);
    free(id);
}

enum mesh_err mesh_identity_build(EVP_PKEY *key, const struct mesh_identity_material *m,
                                  const char *workload, struct mesh_identity **out, char **why)
{
    enum mesh_err err;
    STACK_OF(X509) *leaves = NULL;
    struct mesh_identity *id = xcalloc(1, sizeof(*id));
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
        (m->serial && (err = check_serial(id->leaf, m->serial, why)) != MESH_OK))
        goto out;
    if (!asn1_time_unix(X509_get0_notBefore(id->leaf), &id->not_before) ||
        !asn1_time_unix(X509_get0_notAfter(id->leaf), &id->not_after)) {
        err = fail(why, MESH_E_TLS, "certificate has unreadable validity dates");
        goto out;
    }
    mesh_identity_format_time(id->not_before, id->not_before_text, sizeof(id->not_before_text));
    mesh_identity_format_time(id->not_after, id->not_after_text, sizeof(id->not_after_text));
    id->spiffe_id = xstrdup(m->spiffe_id);
    if (m->serial) {
        id->serial = xstrdup(m->serial);
    } else {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(id->leaf), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        id->serial = xstrdup(hex ? hex : "?");
        OPENSSL_free(hex);
        BN_free(bn);
    }
    id->ca = xstrdup(m->ca ? m->ca : "");
    id->issuer = name_text(X509_get_issuer_name(id->leaf));
    id->n_roots = (size_t)sk_X509_num(id->roots);
    id->root_info = xcalloc(id->n_roots, sizeof(*id->root_info));
    for (size_t i = 0; i < id->n_roots; i++) {
        X509 *root = sk_X509_value(id->roots, (int)i);
        struct mesh_identity_root *ri = &id->root_info[i];
        int64_t t = 0;
        ri->subject = name_text(X509_get_subject_name(root));
        if (asn1_time_unix(X509_get0_notAfter(root), &t))
            mesh_identity_format_time(t, ri->not_after, sizeof(ri->not_after));
        fingerprint(root, ri->sha256, sizeof(ri->sha256));
    }
    if ((err = build_ctx(id, true, &id->server_ctx, why)) != MESH_OK ||
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

static const char *json_str(const json_t *root, const char *key)
{
    return json_string_value(json_object_get(root, key));
}

enum mesh_err mesh_identity_from_answer(EVP_PKEY *key, const char *body, size_t len,
                                        const char *workload, struct mesh_identity **out,
                                        char **why)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    *out = NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(why, MESH_E_INVALID, "answer is not a JSON object: %s",
                    root ? "another JSON value" : jerr.text);
    }
    struct mesh_identity_material m = {
        .certificate = json_str(root, "certificate"),
        .chain = json_str(root, "chain"),
        .trust_bundle = json_str(root, "trust_bundle"),
        .spiffe_id = json_str(root, "spiffe_id"),
        .serial = json_str(root, "serial"),
        .ca = json_str(root, "ca"),
    };
    enum mesh_err err = mesh_identity_build(key, &m, workload, out, why);
    json_decref(root);
    return err;
}

/* --- references and publication --- */

void mesh_identity_ref(struct mesh_identity *id)
{
    if (id)
        atomic_fetch_add_explicit(&id->refs, 1, memory_order_relaxed);
}

void mesh_identity_unref(struct mesh_identity *id)
{
    if (id && atomic_fetch_sub_explicit(&id->refs, 1, memory_order_acq_rel) == 1)
        identity_free(id);
}

struct mesh_identity *mesh_identity_acquire(struct mesh_proxy *p)
{
    /* Safe on a worker without moving its epoch, as mesh_worker_wsnap is: the publisher drops
     * nothing before this worker's next loop turn, by which time this reference exists. */
    struct mesh_identity *id = atomic_load_explicit(&p->identity, memory_order_acquire);
    mesh_identity_ref(id);
    return id;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mesh_identity_publish(struct mesh_proxy *p, struct mesh_identity *id)
{
    uint64_t seen[MESH_PROXY_MAX_WORKERS];
    pthread_mutex_lock(&p->publish_lock);
    unsigned n = p->workers ? p->n_workers : 0;
    for (unsigned i = 0; i < n; i++)
        seen[i] = atomic_load(&p->workers[i].epoch);
    struct mesh_identity *old = atomic_exchange(&p->identity, id);
    /* The snapshot's protocol (publish.c): a worker that loaded the old pointer while handling
     * an event has taken its reference by the time its epoch passes what was seen before the
     * swap. */
    for (unsigned i = 0; i < n; i++)
        mesh_worker_wake(&p->workers[i]);
    for (unsigned i = 0; i < n; i++) {
        uint64_t deadline = monotonic_ms() + RETIRE_WAIT_MS;
        while (atomic_load(&p->workers[i].epoch) <= seen[i] && monotonic_ms() < deadline)
            nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    pthread_mutex_unlock(&p->publish_lock);
    mesh_identity_unref(old);
}

/* --- /config_dump --- */

#define SET(obj, key, val) json_object_set_new((obj), (key), (val))

json_t *mesh_identity_json(const struct mesh_identity *id)
{
    json_t *o = json_object();
    SET(o, "spiffe_id", json_string(id->spiffe_id));
    SET(o, "serial", json_string(id->serial));
    SET(o, "not_before", json_string(id->not_before_text));
    SET(o, "not_after", json_string(id->not_after_text));
    SET(o, "issuer", json_string(id->issuer));
    SET(o, "ca", id->ca[0] ? json_string(id->ca) : json_null());
    json_t *roots = json_array();
    for (size_t i = 0; i < id->n_roots; i++) {
        const struct mesh_identity_root *ri = &id->root_info[i];
        json_t *r = json_object();
        SET(r, "subject", json_string(ri->subject));
        SET(r, "not_after", json_string(ri->not_after));
        SET(r, "sha256", json_string(ri->sha256));
        json_array_append_new(roots, r);
    }
    SET(o, "trust_bundle", roots);
    return o;
}
