/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's CAs with OpenSSL 3: the root made once in DATA_DIR/ca and loaded at every later
 * start, the --ca CAs read from PEM files, workload certificates signed from CSRs, and the trust
 * bundle. Keys are only ever written to their own 0600 file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "core/xalloc.h"
#include "model/schema.h"

#define ROOT_ORG     "ClusterDB Mesh"
#define ROOT_CN      "ClusterDB Mesh root CA"
#define CN_MAX       64 /* RFC 5280's upper bound on a commonName */
#define SERIAL_BITS  128
#define RSA_MIN_BITS 2048
#define KEY_ADVICE   "use EC P-256 or P-384, or RSA of at least 2048 bits"

struct mesh_ca {
    char *name;
    X509 *cert;
    EVP_PKEY *key;
    char *cert_pem;
    char *subject;
    char fingerprint[MESH_CA_FINGERPRINT_LEN + 1];
    time_t not_before, not_after;
};

/* --- small pieces --- */

/* The reason OpenSSL gave for its latest failure ("no start line"); empties its error queue so
 * that no stale error is blamed on a later call. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* The PEM password callback: meshd runs unattended, so an encrypted key is refused rather than
 * prompted for on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *data)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)data;
    return -1;
}

void mesh_ca_format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

static bool asn1_time_get(const ASN1_TIME *a, time_t *out)
{
    struct tm tm;
    if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
        return false;
    *out = timegm(&tm);
    return true;
}

bool mesh_ca_trust_domain_valid(const char *td, char *why, size_t why_len)
{
    char ignored[256];
    /* A Service host's check is exactly an RFC 1123 subdomain. */
    if (mesh_text_ok(MESH_CHECK_SERVICE_HOST, td, ignored, sizeof(ignored)))
        return true;
    snprintf(why, why_len,
             "\"%s\" is not a DNS name: use dot-separated labels of lower-case letters, digits "
             "and '-' (at most 63 characters each, 253 in all), like cluster.local",
             td);
    return false;
}

static char *bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    return n > 0 && p ? xstrndup(p, (size_t)n) : NULL;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = b && PEM_write_bio_X509(b, x) == 1 ? bio_text(b) : NULL;
    BIO_free(b);
    return out;
}

static char *name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 ? bio_text(b) : NULL;
    BIO_free(b);
    return out ? out : xstrdup("");
}

static bool fingerprint(X509 *x, char *buf, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n * 3 > len)
        return false;
    for (unsigned int i = 0; i < n; i++)
        snprintf(buf + 3 * i, len - 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "");
    return true;
}

/* A random positive serial of exactly SERIAL_BITS bits (top bit set: never zero, always the
 * same length). */
static bool set_random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    bool ok = bn && BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* Adds the extension nid written as in openssl.cnf ("critical,CA:FALSE"). */
static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    bool ok = ext && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* --- loading --- */

void mesh_ca_free(struct mesh_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca->name);
    free(ca->cert_pem);
    free(ca->subject);
    free(ca);
}

/* A CA from cert and key (both taken, freed on error), checked: a CA certificate, a key that
 * can sign here and is the certificate's, valid at now. advice ends the messages of a pair
 * that does not fit (what to do about it). */
static enum mesh_err ca_new(const char *name, X509 *cert, EVP_PKEY *key, const char *cert_path,
                            const char *key_path, const char *advice, time_t now,
                            struct mesh_ca **out, char **errmsg)
{
    enum mesh_err err = MESH_E_INVALID;
    struct mesh_ca *ca = xcalloc(1, sizeof(*ca));
    char when[MESH_CA_TIME_LEN];
    ca->name = xstrdup(name);
    ca->cert = cert;
    ca->key = key;

    if (X509_check_ca(cert) != 1) {
        *errmsg = xasprintf("%s is not a CA certificate: it needs basicConstraints CA:TRUE (and "
                            "keyCertSign, if it has a keyUsage)%s",
                            cert_path, advice);
        goto out;
    }
    if (!EVP_PKEY_is_a(key, "EC") && !EVP_PKEY_is_a(key, "RSA")) {
        const char *type = EVP_PKEY_get0_type_name(key);
        *errmsg = xasprintf("%s holds a %s key: a CA key must be EC or RSA%s", key_path,
                            type ? type : "(unknown)", advice);
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        *errmsg = xasprintf("%s is not the private key of %s%s", key_path, cert_path, advice);
        goto out;
    }
    if (!asn1_time_get(X509_get0_notBefore(cert), &ca->not_before) ||
        !asn1_time_get(X509_get0_notAfter(cert), &ca->not_after)) {
        ERR_clear_error();
        *errmsg = xasprintf("%s: its validity dates cannot be read%s", cert_path, advice);
        goto out;
    }
    if (ca->not_after <= now) {
        mesh_ca_format_time(ca->not_after, when, sizeof(when));
        *errmsg = xasprintf("%s expired on %s%s", cert_path, when, advice);
        goto out;
    }
    if (ca->not_before > now + MESH_CA_CLOCK_SKEW_S) {
        mesh_ca_format_time(ca->not_before, when, sizeof(when));
        *errmsg = xasprintf("%s is not valid before %s (is this machine's clock right?)", cert_path,
                            when);
        goto out;
    }
    err = MESH_E_TLS;
    ca->cert_pem = cert_pem(cert);
    ca->subject = name_text(X509_get_subject_name(cert));
    if (!ca->cert_pem || !fingerprint(cert, ca->fingerprint, sizeof(ca->fingerprint))) {
        char why[128];
        *errmsg = xasprintf("%s: cannot encode the certificate: %s", cert_path,
                            ssl_reason(why, sizeof(why)));
        goto out;
    }
    err = MESH_OK;
    *out = ca;
    ca = NULL;
out:
    mesh_ca_free(ca);
    return err;
}

/* Opens a PEM file for reading. A private key must be a regular file no one but its owner can
 * read or write. */
static enum mesh_err open_pem(const char *path, bool private_key, BIO **out, char **errmsg)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *errmsg = xasprintf("cannot read %s: %s", path, strerror(errno));
        return MESH_E_IO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *errmsg = xasprintf("%s is not a regular file", path);
        return MESH_E_INVALID;
    }
    if (private_key && (sb.st_mode & 077)) {
        close(fd);
        *errmsg = xasprintf("%s is accessible to other users (mode %04o): a CA key must be private "
                            "to its owner; run chmod 600 %s",
                            path, (unsigned)(sb.st_mode & 07777), path);
        return MESH_E_INVALID;
    }
    *out = BIO_new_fd(fd, BIO_CLOSE);
    if (!*out) {
        close(fd);
        *errmsg = xasprintf("cannot read %s: out of memory", path);
        return MESH_E_NOMEM;
    }
    return MESH_OK;
}

static enum mesh_err read_cert(const char *path, X509 **out, char **errmsg)
{
    BIO *b = NULL;
    char why[128];
    enum mesh_err err = open_pem(path, false, &b, errmsg);
    if (err != MESH_OK)
        return err;
    *out = PEM_read_bio_X509(b, NULL, no_password, NULL);
    BIO_free(b);
    if (!*out) {
        *errmsg = xasprintf("%s holds no PEM certificate (%s)", path, ssl_reason(why, sizeof(why)));
        return MESH_E_INVALID;
    }
    return MESH_OK;
}

static enum mesh_err read_key(const char *path, EVP_PKEY **out, char **errmsg)
{
    BIO *b = NULL;
    char why[128];
    enum mesh_err err = open_pem(path, true, &b, errmsg);
    if (err != MESH_OK)
        return err;
    *out = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    if (!*out) {
        *errmsg = xasprintf("%s holds no unencrypted PEM private key (%s); an encrypted key must "
                            "be decrypted first (openssl pkey -in KEY -out PLAIN)",
                            path, ssl_reason(why, sizeof(why)));
        return MESH_E_INVALID;
    }
    return MESH_OK;
}

enum mesh_err mesh_ca_load(const char *name, const char *cert_path, const char *key_path,
                           time_t now, struct mesh_ca **out, char **errmsg)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    *out = NULL;
    *errmsg = NULL;
    enum mesh_err err = read_cert(cert_path, &cert, errmsg);
    if (err == MESH_OK)
        err = read_key(key_path, &key, errmsg);
    if (err != MESH_OK) {
        X509_free(cert);
        return err;
    }
    return ca_new(name, cert, key, cert_path, key_path, "", now, out, errmsg);
}

/* --- the root --- */

/* The root's CN: "ClusterDB Mesh root CA (TD)" for the first root, "... root CA 2 (TD)" for the
 * one a rotation makes next, so that the roots of one bundle never share a subject. */
static X509 *make_root(EVP_PKEY *key, const char *trust_domain, unsigned number, time_t now)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    char cn[CN_MAX + 1], base[CN_MAX + 1];
    if (number > 1)
        snprintf(base, sizeof(base), ROOT_CN " %u", number);
    else
        snprintf(base, sizeof(base), ROOT_CN);
    int n = snprintf(cn, sizeof(cn), "%s (%s)", base, trust_domain);
    if (n < 0 || (size_t)n >= sizeof(cn))
        snprintf(cn, sizeof(cn), "%s", base); /* a trust domain too long for a CN is left out */

    bool ok = x && name && X509_set_version(x, X509_VERSION_3) == 1 && set_random_serial(x) &&
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)ROOT_ORG,
                                         -1, -1, 0) == 1 &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0) == 1 &&
              X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
              ASN1_TIME_set(X509_getm_notBefore(x), now - MESH_CA_CLOCK_SKEW_S) &&
              X509_time_adj_ex(X509_getm_notAfter(x), MESH_CA_ROOT_DAYS, 0, &now) &&
              X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* Writes key (or else cert) as PEM to a new file tmp of exactly mode: O_EXCL, so that the file
 * is ours from the first byte and no one could have opened it before its mode was set. */
static enum mesh_err write_temp(const char *tmp, mode_t mode, EVP_PKEY *key, X509 *cert,
                                char **errmsg)
{
    unlink(tmp); /* left by a crash of an earlier meshd with the same pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        *errmsg = xasprintf("cannot create %s: %s", tmp, strerror(errno));
        return MESH_E_IO;
    }
    BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
    bool ok = fchmod(fd, mode) == 0 && b &&
              (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                   : PEM_write_bio_X509(b, cert)) == 1 &&
              BIO_flush(b) == 1 && fsync(fd) == 0;
    int saved = errno;
    BIO_free(b);
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        char why[128];
        if (ERR_peek_last_error())
            ssl_reason(why, sizeof(why));
        else
            snprintf(why, sizeof(why), "%s", strerror(saved));
        *errmsg = xasprintf("cannot write %s: %s", tmp, why);
        unlink(tmp);
        return MESH_E_IO;
    }
    return MESH_OK;
}

/* Makes a new root in dir: both files are written whole under temporary names, then renamed
 * into place, the key first. */
static enum mesh_err create_root(const char *dir, const char *cert_file, const char *key_file,
                                 const char *cert_path, const char *key_path, const char *ca_name,
                                 unsigned number, const char *trust_domain, time_t now,
                                 struct mesh_ca **out, char **errmsg)
{
    enum mesh_err err = MESH_E_TLS;
    char why[128];
    char *key_tmp = xasprintf("%s/.%s.%ld.tmp", dir, key_file, (long)getpid());
    char *cert_tmp = xasprintf("%s/.%s.%ld.tmp", dir, cert_file, (long)getpid());
    X509 *cert = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) {
        *errmsg = xasprintf("cannot make the root key: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    cert = make_root(key, trust_domain, number, now);
    if (!cert) {
        *errmsg = xasprintf("cannot make the root certificate: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    err = write_temp(key_tmp, 0600, key, NULL, errmsg);
    if (err == MESH_OK)
        err = write_temp(cert_tmp, 0644, NULL, cert, errmsg);
    if (err != MESH_OK)
        goto out;
    if (rename(key_tmp, key_path) != 0 || rename(cert_tmp, cert_path) != 0) {
        *errmsg = xasprintf("cannot create the root in %s: %s", dir, strerror(errno));
        err = MESH_E_IO;
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the new names survive a crash too */
        close(dfd);
    }
    err = ca_new(ca_name, cert, key, cert_path, key_path, "", now, out, errmsg);
    cert = NULL; /* ca_new took both */
    key = NULL;
out:
    unlink(key_tmp);
    unlink(cert_tmp);
    free(key_tmp);
    free(cert_tmp);
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

static bool path_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 || errno != ENOENT;
}

enum mesh_err mesh_ca_open_root_files(const char *dir, const char *cert_file, const char *key_file,
                                      const char *ca_name, unsigned number, bool create,
                                      const char *trust_domain, time_t now, struct mesh_ca **out,
                                      bool *created, char **errmsg)
{
    enum mesh_err err = MESH_E_IO;
    char *cert_path = xasprintf("%s/%s", dir, cert_file);
    char *key_path = xasprintf("%s/%s", dir, key_file);
    char *advice =
        strcmp(cert_file, MESH_CA_ROOT_CERT_FILE) == 0
            ? xasprintf("; restore the pair from a backup, or move %s away to have meshd make a "
                        "new root (certificates from the old one then stop verifying)",
                        dir)
            : xasprintf("; restore the pair from a backup: a root rotation in progress (%s/%s) "
                        "needs it",
                        dir, MESH_CA_ROTATION_FILE);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    struct stat sb;
    *out = NULL;
    *created = false;
    *errmsg = NULL;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        *errmsg = xasprintf("cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        *errmsg = xasprintf("%s is not a directory", dir);
        goto out;
    }
    bool have_cert = path_exists(cert_path), have_key = path_exists(key_path);
    if (!have_cert && !have_key && create) {
        err = create_root(dir, cert_file, key_file, cert_path, key_path, ca_name, number,
                          trust_domain, now, out, errmsg);
        *created = err == MESH_OK;
        goto out;
    }
    if (!have_cert && !have_key) {
        err = MESH_E_NOTFOUND;
        *errmsg = xasprintf("%s and %s are missing%s", cert_path, key_path, advice);
        goto out;
    }
    if (!have_cert || !have_key) {
        err = MESH_E_INVALID;
        *errmsg = xasprintf("%s exists but %s does not%s", have_cert ? cert_path : key_path,
                            have_cert ? key_path : cert_path, advice);
        goto out;
    }
    err = read_cert(cert_path, &cert, errmsg);
    if (err == MESH_OK)
        err = read_key(key_path, &key, errmsg);
    if (err != MESH_OK)
        goto out;
    err = ca_new(ca_name, cert, key, cert_path, key_path, advice, now, out, errmsg);
    cert = NULL; /* ca_new took both */
    key = NULL;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    free(cert_path);
    free(key_path);
    free(advice);
    return err;
}

enum mesh_err mesh_ca_open_root(const char *dir, const char *trust_domain, time_t now,
                                struct mesh_ca **out, bool *created, char **errmsg)
{
    return mesh_ca_open_root_files(dir, MESH_CA_ROOT_CERT_FILE, MESH_CA_ROOT_KEY_FILE,
                                   MESH_CA_ROOT_NAME, 1, true, trust_domain, now, out, created,
                                   errmsg);
}

const char *mesh_ca_name(const struct mesh_ca *ca)
{
    return ca->name;
}

const char *mesh_ca_subject(const struct mesh_ca *ca)
{
    return ca->subject;
}

const char *mesh_ca_fingerprint(const struct mesh_ca *ca)
{
    return ca->fingerprint;
}

const char *mesh_ca_cert_pem(const struct mesh_ca *ca)
{
    return ca->cert_pem;
}

time_t mesh_ca_not_after(const struct mesh_ca *ca)
{
    return ca->not_after;
}

/* --- signing --- */

/* Whether a CSR's key is one workloads may use; *rsa tells which kind it is. */
static enum mesh_err key_supported(EVP_PKEY *pub, bool *rsa, char **errmsg)
{
    *rsa = false;
    if (EVP_PKEY_is_a(pub, "EC")) {
        char group[80] = "";
        size_t len = 0;
        if (EVP_PKEY_get_group_name(pub, group, sizeof(group), &len) != 1) {
            ERR_clear_error();
            snprintf(group, sizeof(group), "explicit curve parameters");
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0)
            return MESH_OK;
        *errmsg = xasprintf("csr: unsupported key: EC with %s; " KEY_ADVICE, group);
        return MESH_E_UNSUPPORTED;
    }
    if (EVP_PKEY_is_a(pub, "RSA")) {
        int bits = EVP_PKEY_get_bits(pub);
        *rsa = true;
        if (bits >= RSA_MIN_BITS)
            return MESH_OK;
        *errmsg = xasprintf("csr: unsupported key: RSA of %d bits; " KEY_ADVICE, bits);
        return MESH_E_UNSUPPORTED;
    }
    const char *type = EVP_PKEY_get0_type_name(pub);
    *errmsg = xasprintf("csr: unsupported key type %s; " KEY_ADVICE, type ? type : "(unknown)");
    return MESH_E_UNSUPPORTED;
}

static bool add_spiffe_san(X509 *x, const char *uri)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    bool ok = names && gn && ia5 && ASN1_STRING_set(ia5, uri, -1) == 1;
    if (ok) {
        GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
        ia5 = NULL; /* gn owns it */
        ok = sk_GENERAL_NAME_push(names, gn) > 0;
    }
    if (ok) {
        gn = NULL; /* names owns it */
        /* Not critical: the subject is not empty (CN=NAME), as RFC 5280 allows then. */
        ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    }
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(names);
    return ok;
}

/* The leaf for pub, all of it decided here (see mesh_ca_sign). */
static X509 *make_leaf(const struct mesh_ca *ca, EVP_PKEY *pub, bool rsa, const char *name,
                       const char *spiffe_id, time_t not_before, time_t not_after)
{
    X509 *x = X509_new();
    X509_NAME *subject = X509_NAME_new();
    X509V3_CTX ctx;
    bool ok = x && subject && X509_set_version(x, X509_VERSION_3) == 1 && set_random_serial(x) &&
              X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)name,
                                         -1, -1, 0) == 1 &&
              X509_set_subject_name(x, subject) == 1 &&
              X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) == 1 &&
              ASN1_TIME_set(X509_getm_notBefore(x), not_before) &&
              ASN1_TIME_set(X509_getm_notAfter(x), not_after) && X509_set_pubkey(x, pub) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
        ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, &ctx, NID_key_usage,
                     rsa ? "critical,digitalSignature,keyEncipherment"
                         : "critical,digitalSignature") &&
             add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             /* keyid when the CA has one, else its issuer and serial: any CA can sign */
             add_ext(x, &ctx, NID_authority_key_identifier, "keyid,issuer") &&
             add_spiffe_san(x, spiffe_id) && X509_sign(x, ca->key, EVP_sha256()) > 0;
    }
    X509_NAME_free(subject);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static bool serial_hex(X509 *x, char *buf, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    bool ok = hex && strlen(hex) < len;
    if (ok)
        snprintf(buf, len, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return ok;
}

enum mesh_err mesh_ca_sign(const struct mesh_ca *ca, const char *csr_pem, size_t csr_len,
                           const struct mesh_ca_identity *id, uint64_t ttl_s, time_t now,
                           struct mesh_ca_leaf *out, char **errmsg)
{
    enum mesh_err err = MESH_E_INVALID;
    char why[128], when[MESH_CA_TIME_LEN];
    BIO *in = NULL;
    X509_REQ *req = NULL;
    X509 *leaf = NULL;
    char *spiffe_id = NULL, *pem = NULL;
    bool rsa = false;
    *errmsg = NULL;
    ERR_clear_error();

    if (csr_len > INT_MAX) {
        *errmsg = xstrdup("csr: too large");
        goto out;
    }
    in = BIO_new_mem_buf(csr_pem, (int)csr_len);
    req = in ? PEM_read_bio_X509_REQ(in, NULL, no_password, NULL) : NULL;
    if (!req) {
        *errmsg = xasprintf("csr: not a PEM certificate request (a \"-----BEGIN CERTIFICATE "
                            "REQUEST-----\" block): %s",
                            ssl_reason(why, sizeof(why)));
        goto out;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (!pub) {
        *errmsg = xasprintf("csr: its public key cannot be read: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    err = key_supported(pub, &rsa, errmsg);
    if (err != MESH_OK)
        goto out;
    if (X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        err = MESH_E_INVALID;
        *errmsg = xstrdup("csr: its signature does not verify: the request was altered, or was "
                          "not signed with the key it holds");
        goto out;
    }
    err = MESH_E_TLS;
    if (ca->not_after <= now) {
        mesh_ca_format_time(ca->not_after, when, sizeof(when));
        *errmsg = xasprintf("the CA %s expired on %s: give meshd a new one", ca->name, when);
        goto out;
    }
    /* The leaf lives inside its CA's validity: no verifier has to decide about the rest. */
    time_t not_before = now - MESH_CA_CLOCK_SKEW_S, not_after = ca->not_after;
    if (not_before < ca->not_before)
        not_before = ca->not_before;
    if (ttl_s < (uint64_t)(ca->not_after - now))
        not_after = now + (time_t)ttl_s;
    spiffe_id = xasprintf("spiffe://%s/ns/%s/sa/%s", id->trust_domain, id->ns, id->name);
    leaf = make_leaf(ca, pub, rsa, id->name, spiffe_id, not_before, not_after);
    pem = leaf ? cert_pem(leaf) : NULL;
    if (!pem || !serial_hex(leaf, out->serial, sizeof(out->serial))) {
        *errmsg = xasprintf("cannot sign the certificate: %s", ssl_reason(why, sizeof(why)));
        goto out;
    }
    err = MESH_OK;
    out->cert_pem = pem;
    pem = NULL;
    out->spiffe_id = spiffe_id;
    spiffe_id = NULL;
    out->not_before = not_before;
    out->not_after = not_after;
out:
    free(pem);
    free(spiffe_id);
    X509_free(leaf);
    X509_REQ_free(req);
    BIO_free(in);
    return err;
}

void mesh_ca_leaf_clear(struct mesh_ca_leaf *leaf)
{
    free(leaf->cert_pem);
    free(leaf->spiffe_id);
    memset(leaf, 0, sizeof(*leaf));
}

/* --- the set and its trust bundle --- */

/* The trusted CAs in bundle order, each once (one CA given twice, as --ca of meshd's own root,
 * is one root): the root, the incoming root while a rotation runs, then the --ca CAs. *n of
 * them; caller frees the array. */
static const struct mesh_ca **trusted(const struct mesh_ca_set *set, size_t *n)
{
    const struct mesh_ca **list = xcalloc(set->len + 2, sizeof(*list));
    size_t len = 0;
    /* Slot 0 is the root, slot 1 the incoming root, then the --ca CAs (items[1..]). */
    for (size_t i = 0; i <= set->len; i++) {
        const struct mesh_ca *ca;
        if (i == 0)
            ca = set->len ? set->items[0] : NULL;
        else if (i == 1)
            ca = set->next;
        else
            ca = set->items[i - 1];
        if (!ca)
            continue;
        bool seen = false;
        for (size_t j = 0; j < len && !seen; j++)
            seen = strcmp(list[j]->fingerprint, ca->fingerprint) == 0;
        if (!seen)
            list[len++] = ca;
    }
    *n = len;
    return list;
}

static void rebuild_bundle(struct mesh_ca_set *set)
{
    size_t n = 0, len = 0;
    const struct mesh_ca **list = trusted(set, &n);
    for (size_t i = 0; i < n; i++)
        len += strlen(list[i]->cert_pem);
    char *b = xmalloc(len + 1), *w = b;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(list[i]->cert_pem);
        memcpy(w, list[i]->cert_pem, k);
        w += k;
    }
    *w = '\0';
    free(list);
    free(set->bundle_pem);
    set->bundle_pem = b;
}

const struct mesh_ca **mesh_ca_set_trusted(const struct mesh_ca_set *set, size_t *n)
{
    return trusted(set, n);
}

const struct mesh_ca *mesh_ca_set_issuer(const struct mesh_ca_set *set)
{
    if (set->next && set->issue_from_next)
        return set->next;
    return set->len ? set->items[0] : NULL;
}

void mesh_ca_set_stage(struct mesh_ca_set *set, struct mesh_ca *next, bool issue_from_next)
{
    if (set->next != next)
        mesh_ca_free(set->next);
    set->next = next;
    set->issue_from_next = next && issue_from_next;
    rebuild_bundle(set);
}

void mesh_ca_set_promote_next(struct mesh_ca_set *set)
{
    if (!set->next || !set->len)
        return;
    struct mesh_ca *old = set->items[0];
    set->items[0] = set->next;
    set->next = NULL;
    free(set->items[0]->name);
    set->items[0]->name = xstrdup(MESH_CA_ROOT_NAME);
    mesh_ca_free(old);
    set->issue_from_next = false;
    rebuild_bundle(set);
}

enum mesh_err mesh_ca_set_add(struct mesh_ca_set *set, struct mesh_ca *ca, char **errmsg)
{
    *errmsg = NULL;
    if (mesh_ca_set_find(set, ca->name)) {
        *errmsg = xasprintf("a CA named %s is there already", ca->name);
        mesh_ca_free(ca);
        return MESH_E_CONFLICT;
    }
    set->items = xrealloc(set->items, (set->len + 1) * sizeof(*set->items));
    set->items[set->len++] = ca;
    rebuild_bundle(set);
    return MESH_OK;
}

const struct mesh_ca *mesh_ca_set_find(const struct mesh_ca_set *set, const char *name)
{
    for (size_t i = 0; i < set->len; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

void mesh_ca_set_clear(struct mesh_ca_set *set)
{
    for (size_t i = 0; i < set->len; i++)
        mesh_ca_free(set->items[i]);
    mesh_ca_free(set->next);
    free(set->items);
    free(set->bundle_pem);
    memset(set, 0, sizeof(*set));
}
