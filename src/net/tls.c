/* SPDX-License-Identifier: Apache-2.0 */
/* TLS contexts and non-blocking connections of tls.h, on OpenSSL 3. */
#include "net/tls.h"
#include "net/tls_adopt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ERR_TEXT     384
#define WHY_TEXT     200
#define COALESCE_MAX (16u * 1024) /* one TLS record's worth of plaintext */
#define PEM_FILE_MAX (1u << 20)   /* a bundle larger than this is not a bundle */
#define PEER_KEY_MAX (256 + INET6_ADDRSTRLEN + 16)
#define SNIFF_BYTES  MESH_TLS_SNIFF_BYTES
#define TIME_TEXT    24

struct session_slot {
    char key[PEER_KEY_MAX]; /* "server name|address:port" */
    SSL_SESSION *sess;      /* one reference, owned by the slot */
    uint64_t used;          /* ctx->tick when last stored or taken */
};

struct mesh_tls_ctx {
    SSL_CTX *ssl;
    bool server;
    mesh_tls_peer_check check_peer;
    void *check_data;
    unsigned char *alpn; /* wire format: length-prefixed names */
    size_t alpn_len;
    char *subject;
    time_t not_after;
    bool resume;
    pthread_mutex_t lock; /* the session cache */
    uint64_t tick;
    struct session_slot sessions[MESH_TLS_SESSION_CACHE];
};

/* What the socket BIO needs: the fd, and whether recv() saw the end (OpenSSL asks, to tell an
 * EOF from an error). */
struct sock_io {
    int fd;
    bool eof;
    bool drained; /* the last recv() emptied the socket (got less than asked, or EAGAIN) */
};

/* The peer's certificate in our terms, with the strings it owns. */
struct peer_info {
    struct mesh_tls_peer peer;
    char *strings[1 + 2 * MESH_TLS_MAX_SANS];
    size_t n_strings;
};

struct mesh_tls_conn {
    SSL *ssl;
    struct mesh_tls_ctx *ctx;
    struct sock_io io;
    bool server;
    bool handshake_done;
    bool sniffed; /* a server looked at the first bytes */
    bool failed;  /* a fatal error: no more SSL calls but free */
    bool shut;    /* close_notify went out */
    bool truncated;
    bool checked; /* the peer check ran */
    char *server_name;
    char *expect_uri; /* mesh_tls_conn_new_expecting: the server's SPIFFE ID */
    enum mesh_tls_failure failure;
    char peer_key[PEER_KEY_MAX]; /* "" = no session caching for this connection */

    /* The first certificate problem the verify callback met. */
    int verify_err;
    char verify_subject[WHY_TEXT];
    time_t verify_not_after;
    char check_why[WHY_TEXT];

    bool peer_loaded;
    struct peer_info peer;
    char alpn[256];
    char err[ERR_TEXT];
};

/* --- small pieces --- */

static void set_err(struct mesh_tls_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct mesh_tls_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static enum mesh_err fail_msg(char **errmsg, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* *errmsg = a new message (NULL when out of memory); returns err. */
static enum mesh_err fail_msg(char **errmsg, enum mesh_err err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (errmsg)
        *errmsg = strdup(buf);
    return err;
}

/* The reason OpenSSL gave for its latest failure; empties the error queue. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

static void format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

static time_t asn1_time(const ASN1_TIME *a)
{
    struct tm tm;
    if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* The RFC 2253 text of name, malloc'd; NULL without memory. */
static char *name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p = NULL;
    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        long n = BIO_get_mem_data(b, &p);
        out = malloc(n > 0 ? (size_t)n + 1 : 1);
        if (out) {
            if (n > 0)
                memcpy(out, p, (size_t)n);
            out[n > 0 ? n : 0] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

const char *mesh_tls_status_str(enum mesh_tls_status st)
{
    switch (st) {
    case MESH_TLS_DONE:
        return "done";
    case MESH_TLS_WANT_READ:
        return "want-read";
    case MESH_TLS_WANT_WRITE:
        return "want-write";
    case MESH_TLS_CLOSED:
        return "closed";
    case MESH_TLS_ERROR:
        return "error";
    }
    return "unknown";
}

/* --- the socket BIO: send() with MSG_NOSIGNAL, so that a peer gone away is an error to
 * report rather than a SIGPIPE to die of (a library cannot ignore SIGPIPE for its caller) --- */

static int bio_write_ex(BIO *b, const char *data, size_t len, size_t *written)
{
    struct sock_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(io->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0) {
            *written = (size_t)n;
            return 1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return 0;
    }
}

static int bio_read_ex(BIO *b, char *data, size_t len, size_t *got)
{
    struct sock_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = recv(io->fd, data, len, 0);
        if (n > 0) {
            *got = (size_t)n;
            io->drained = (size_t)n < len;
            return 1;
        }
        if (n == 0) {
            io->eof = true;
            *got = 0;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            io->drained = true;
            BIO_set_retry_read(b);
        }
        return 0;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct sock_io *io = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_EOF:
        return io && io->eof;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *sock_method;
static pthread_once_t sock_method_once = PTHREAD_ONCE_INIT;

static void sock_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mesh socket");
    if (m && BIO_meth_set_write_ex(m, bio_write_ex) == 1 &&
        BIO_meth_set_read_ex(m, bio_read_ex) == 1 && BIO_meth_set_ctrl(m, bio_ctrl) == 1) {
        sock_method = m;
        return;
    }
    BIO_meth_free(m);
}

/* --- the peer's certificate --- */

static void peer_clear(struct peer_info *pi)
{
    for (size_t i = 0; i < pi->n_strings; i++)
        free(pi->strings[i]);
    memset(pi, 0, sizeof(*pi));
}

static char *keep(struct peer_info *pi, char *s)
{
    if (s)
        pi->strings[pi->n_strings++] = s;
    return s;
}

/* Reads x's subject, URI and DNS SANs and expiry into pi. false without memory. */
static bool peer_fill(struct peer_info *pi, X509 *x)
{
    memset(pi, 0, sizeof(*pi));
    pi->peer.subject = keep(pi, name_text(X509_get_subject_name(x)));
    if (!pi->peer.subject)
        return false;
    pi->peer.not_after = asn1_time(X509_get0_notAfter(x));
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool ok = true;
    for (int i = 0; ok && names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const ASN1_IA5STRING *s = NULL;
        const char **slot = NULL;
        size_t *count = NULL;
        if (g->type == GEN_URI) {
            s = g->d.uniformResourceIdentifier;
            slot = pi->peer.uri_sans;
            count = &pi->peer.n_uri_sans;
        } else if (g->type == GEN_DNS) {
            s = g->d.dNSName;
            slot = pi->peer.dns_sans;
            count = &pi->peer.n_dns_sans;
        }
        if (!s || *count >= MESH_TLS_MAX_SANS)
            continue;
        int len = ASN1_STRING_length(s);
        const unsigned char *data = ASN1_STRING_get0_data(s);
        /* A name with a NUL inside would read as a different, shorter name: leave it out. */
        if (len <= 0 || memchr(data, '\0', (size_t)len))
            continue;
        char *copy = malloc((size_t)len + 1);
        if (!copy) {
            ok = false;
            break;
        }
        memcpy(copy, data, (size_t)len);
        copy[len] = '\0';
        slot[(*count)++] = keep(pi, copy);
    }
    GENERAL_NAMES_free(names);
    return ok;
}

/* OpenSSL calls this for each certificate of the chain, the leaf (depth 0) last, with ok saying
 * whether it passed so far. The first problem is kept for the message; a verified leaf goes
 * through the context's peer check. */
static int verify_cb(int ok, X509_STORE_CTX *sc)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct mesh_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(sc);

    if (!c)
        return ok;
    if (!ok) {
        if (!c->verify_err) {
            c->verify_err = X509_STORE_CTX_get_error(sc);
            char *subject = cert ? name_text(X509_get_subject_name(cert)) : NULL;
            snprintf(c->verify_subject, sizeof(c->verify_subject), "%s", subject ? subject : "");
            free(subject);
            c->verify_not_after = cert ? asn1_time(X509_get0_notAfter(cert)) : 0;
        }
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(sc) != 0 || !c->ctx->check_peer || c->checked || !cert)
        return ok;
    c->checked = true;
    struct peer_info pi;
    char why[WHY_TEXT] = "";
    bool accepted = false;
    if (peer_fill(&pi, cert))
        accepted = c->ctx->check_peer(&pi.peer, c->ctx->check_data, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "out of memory reading the certificate");
    if (!accepted) {
        c->verify_err = X509_V_ERR_APPLICATION_VERIFICATION;
        snprintf(c->check_why, sizeof(c->check_why), "%s",
                 why[0] ? why : "the identity check refused the certificate");
        snprintf(c->verify_subject, sizeof(c->verify_subject), "%s",
                 pi.peer.subject ? pi.peer.subject : "");
        X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
    }
    peer_clear(&pi);
    return accepted ? 1 : 0;
}

/* "certificate verify failed (unknown CA): unable to get local issuer certificate (CN=x)". */
static void verify_text(struct mesh_tls_conn *c)
{
    long code = c->verify_err ? c->verify_err : SSL_get_verify_result(c->ssl);
    const char *kind = NULL;
    char detail[WHY_TEXT + 64], when[TIME_TEXT];

    snprintf(detail, sizeof(detail), "%s", X509_verify_cert_error_string(code));
    switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        kind = "unknown CA";
        c->failure = MESH_TLS_FAIL_UNKNOWN_CA;
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        kind = "expired";
        c->failure = MESH_TLS_FAIL_EXPIRED;
        format_time(c->verify_not_after, when, sizeof(when));
        snprintf(detail, sizeof(detail), "certificate has expired (notAfter %s)", when);
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        kind = "not yet valid";
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        kind = "wrong host";
        c->failure = MESH_TLS_FAIL_WRONG_IDENTITY;
        snprintf(detail, sizeof(detail), "the certificate is not for %s",
                 c->server_name ? c->server_name : "this server");
        break;
    case X509_V_ERR_APPLICATION_VERIFICATION:
        kind = "wrong identity";
        c->failure = MESH_TLS_FAIL_WRONG_IDENTITY;
        snprintf(detail, sizeof(detail), "%s", c->check_why);
        break;
    case X509_V_ERR_CERT_REVOKED:
        kind = "revoked";
        break;
    case X509_V_ERR_INVALID_PURPOSE:
        kind = "wrong purpose";
        break;
    default:
        break;
    }
    if (kind)
        set_err(c, "certificate verify failed (%s): %s%s%s%s", kind, detail,
                c->verify_subject[0] ? " (" : "", c->verify_subject,
                c->verify_subject[0] ? ")" : "");
    else
        set_err(c, "certificate verify failed: %s%s%s%s", detail, c->verify_subject[0] ? " (" : "",
                c->verify_subject, c->verify_subject[0] ? ")" : "");
}

/* --- failures --- */

/* The reason code of the first SSL-library error queued (else of the first error), and empties
 * the queue. 0 when it is empty. */
static unsigned long take_ssl_error(void)
{
    unsigned long first = 0, ssl = 0, e;
    while ((e = ERR_get_error()) != 0) {
        if (!first)
            first = e;
        if (!ssl && ERR_GET_LIB(e) == ERR_LIB_SSL)
            ssl = e;
    }
    return ssl ? ssl : first;
}

/* Words for an OpenSSL failure, from our side's point of view. */
static void ssl_error_text(struct mesh_tls_conn *c, unsigned long e, bool in_handshake)
{
    int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    const char *peer = c->server ? "the client" : "the server";

    switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        verify_text(c);
        return;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        c->failure = MESH_TLS_FAIL_PLAINTEXT;
        set_err(c, "the peer does not speak TLS (it sent plaintext HTTP?)");
        return;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
        c->failure = MESH_TLS_FAIL_PLAINTEXT;
        if (c->server)
            set_err(c, "the peer does not speak TLS (its first bytes are not a TLS handshake)");
        else
            set_err(c, "the server does not speak TLS (is it plain http://?)");
        return;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        c->failure = MESH_TLS_FAIL_NO_CERTIFICATE;
        set_err(c, "the client sent no certificate, and this server requires one");
        return;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        c->failure = MESH_TLS_FAIL_NO_CERTIFICATE;
        set_err(c, "%s requires a client certificate, and none was sent", peer);
        return;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        c->failure = MESH_TLS_FAIL_UNKNOWN_CA;
        set_err(c, "%s does not trust our certificate (unknown CA)", peer);
        return;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        c->failure = MESH_TLS_FAIL_EXPIRED;
        set_err(c, "%s says our certificate has expired", peer);
        return;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        set_err(c, "%s refused our certificate (%s)", peer, ERR_reason_error_string(e));
        return;
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        set_err(c,
                "%s ended the handshake (handshake failure: no version or cipher in common, or "
                "it wants a client certificate)",
                peer);
        return;
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
        set_err(c, "no TLS version in common with %s (TLS 1.2 or later is needed)", peer);
        return;
    case SSL_R_NO_SHARED_CIPHER:
        set_err(c, "no cipher in common with %s", peer);
        return;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        set_err(c, "%s closed the connection %s", peer,
                in_handshake ? "during the TLS handshake" : "without a TLS close_notify");
        return;
    default:
        break;
    }
    const char *text = e ? ERR_reason_error_string(e) : NULL;
    set_err(c, "TLS error%s: %s", in_handshake ? " during the handshake" : "",
            text ? text : "unknown OpenSSL error");
}

/* Turns a failed SSL call (ret, errno as it left it) into a status, with the message. */
static enum mesh_tls_status io_failed(struct mesh_tls_conn *c, int ret, int os_errno,
                                      bool in_handshake)
{
    int e = SSL_get_error(c->ssl, ret);
    unsigned long queued;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return MESH_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return MESH_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        if (!in_handshake)
            return MESH_TLS_CLOSED;
        set_err(c, "%s closed the connection during the TLS handshake",
                c->server ? "the client" : "the server");
        break;
    case SSL_ERROR_SYSCALL:
        queued = take_ssl_error();
        if (queued)
            ssl_error_text(c, queued, in_handshake);
        else if (os_errno)
            set_err(c, "%s", strerror(os_errno));
        else
            set_err(c, "the connection broke");
        break;
    case SSL_ERROR_SSL:
        queued = take_ssl_error();
        if (!in_handshake && ERR_GET_LIB(queued) == ERR_LIB_SSL &&
            ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            /* The peer closed without close_notify: the end of the data, which framing with
             * its own lengths (HTTP's) checks anyway. Nothing more can be sent either. */
            c->truncated = true;
            c->failed = true;
            return MESH_TLS_CLOSED;
        }
        ssl_error_text(c, queued, in_handshake);
        break;
    default:
        set_err(c, "TLS error %d", e);
        break;
    }
    ERR_clear_error();
    if (c->failure == MESH_TLS_FAIL_NONE)
        c->failure = MESH_TLS_FAIL_OTHER;
    c->failed = true;
    return MESH_TLS_ERROR;
}

/* --- contexts --- */

/* Reads a PEM file (at most PEM_FILE_MAX bytes) into a memory BIO. A private key must be a
 * regular file no one but its owner may read or write. */
static enum mesh_err read_pem_file(const char *path, bool private_key, BIO **out, char **errmsg)
{
    struct stat sb;
    enum mesh_err err = MESH_OK;
    char *buf = NULL;
    BIO *b = NULL;

    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_msg(errmsg, MESH_E_IO, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        err = fail_msg(errmsg, MESH_E_INVALID, "%s is not a regular file", path);
        goto out;
    }
    if (private_key && (sb.st_mode & 077)) {
        err = fail_msg(errmsg, MESH_E_INVALID,
                       "%s is accessible to other users (mode %04o): a private key must be "
                       "private to its owner; run chmod 600 %s",
                       path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    if (sb.st_size > (off_t)PEM_FILE_MAX) {
        err = fail_msg(errmsg, MESH_E_INVALID, "%s is over %u bytes: not a PEM file", path,
                       PEM_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    b = BIO_new(BIO_s_mem());
    if (!buf || !b) {
        err = fail_msg(errmsg, MESH_E_NOMEM, "reading %s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = fail_msg(errmsg, MESH_E_IO, "cannot read %s: %s", path,
                           n < 0 ? strerror(errno) : "the file got shorter");
            goto out;
        }
        got += (size_t)n;
    }
    if (got && BIO_write(b, buf, (int)got) != (int)got) {
        err = fail_msg(errmsg, MESH_E_NOMEM, "reading %s: out of memory", path);
        goto out;
    }
    *out = b;
    b = NULL; /* the caller's now */
out:
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)sb.st_size); /* a key's bytes do not linger in the heap */
        free(buf);
    }
    BIO_free(b);
    close(fd);
    return err;
}

/* A BIO over the file or the text; *what names it for messages. */
static enum mesh_err open_pem(const char *file, const char *pem, bool private_key,
                              const char *text_name, BIO **out, const char **what, char **errmsg)
{
    *what = file ? file : text_name;
    if (file)
        return read_pem_file(file, private_key, out, errmsg);
    *out = BIO_new_mem_buf(pem, -1);
    return *out ? MESH_OK : fail_msg(errmsg, MESH_E_NOMEM, "%s: out of memory", text_name);
}

/* The password callback: an encrypted key is refused rather than prompted for. */
static int no_password(char *buf, int size, int rwflag, void *data)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)data;
    return -1;
}

/* Our certificate chain (leaf first) and key. */
static enum mesh_err load_identity(struct mesh_tls_ctx *ctx, const struct mesh_tls_options *opt,
                                   char **errmsg)
{
    const char *what = NULL;
    char why[160];
    BIO *b = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    enum mesh_err err;

    err = open_pem(opt->cert_file, opt->cert_pem, false, "the certificate (PEM text)", &b, &what,
                   errmsg);
    if (err != MESH_OK)
        return err;
    x = PEM_read_bio_X509(b, NULL, no_password, NULL);
    if (!x) {
        err = fail_msg(errmsg, MESH_E_INVALID, "%s holds no PEM certificate (%s)", what,
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx->ssl, x) != 1) {
        err = fail_msg(errmsg, MESH_E_INVALID, "%s: the certificate cannot be used (%s)", what,
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    ctx->subject = name_text(X509_get_subject_name(x));
    ctx->not_after = asn1_time(X509_get0_notAfter(x));
    if (!ctx->subject) {
        err = fail_msg(errmsg, MESH_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    /* The rest of the file is the chain up to (not always including) the root. */
    X509 *extra;
    while ((extra = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx->ssl, extra) != 1) {
            X509_free(extra);
            err = fail_msg(errmsg, MESH_E_INVALID, "%s: a chain certificate cannot be used (%s)",
                           what, ssl_reason(why, sizeof(why)));
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    BIO_free(b);
    b = NULL;

    const char *cert_what = what;
    err = open_pem(opt->key_file, opt->key_pem, true, "the key (PEM text)", &b, &what, errmsg);
    if (err != MESH_OK)
        goto out;
    key = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    if (!key) {
        err = fail_msg(errmsg, MESH_E_INVALID,
                       "%s holds no unencrypted PEM private key (%s); an encrypted key must be "
                       "decrypted first (openssl pkey -in KEY -out PLAIN)",
                       what, ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx->ssl, key) != 1 || SSL_CTX_check_private_key(ctx->ssl) != 1) {
        ERR_clear_error();
        err = fail_msg(errmsg, MESH_E_INVALID,
                       "the key in %s does not belong to the certificate in %s", what, cert_what);
        goto out;
    }
out:
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(b);
    return err;
}

/* The CA certificates to verify peers with; a server also names them to its clients. */
static enum mesh_err load_cas(struct mesh_tls_ctx *ctx, const struct mesh_tls_options *opt,
                              char **errmsg)
{
    const char *what = NULL;
    char why[160];
    BIO *b = NULL;
    X509 *x;
    int n = 0;
    enum mesh_err err =
        open_pem(opt->ca_file, opt->ca_pem, false, "the CA bundle (PEM text)", &b, &what, errmsg);
    if (err != MESH_OK)
        return err;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx->ssl);
    while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        bool ok = X509_STORE_add_cert(store, x) == 1 &&
                  (!opt->server || SSL_CTX_add_client_CA(ctx->ssl, x) == 1);
        X509_free(x);
        if (!ok) {
            err = fail_msg(errmsg, MESH_E_TLS, "%s: cannot use certificate %d (%s)", what, n + 1,
                           ssl_reason(why, sizeof(why)));
            goto out;
        }
        n++;
    }
    if (n == 0) {
        err = fail_msg(errmsg, MESH_E_INVALID, "%s holds no PEM certificate (%s)", what,
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    ERR_clear_error();
out:
    BIO_free(b);
    return err;
}

/* "h2,http/1.1" into ALPN's wire format. */
static enum mesh_err parse_alpn(struct mesh_tls_ctx *ctx, const char *list, char **errmsg)
{
    size_t len = strlen(list);
    unsigned char *wire = malloc(len + 1);
    size_t w = 0;
    if (!wire)
        return fail_msg(errmsg, MESH_E_NOMEM, "ALPN: out of memory");
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 255) {
            free(wire);
            return fail_msg(errmsg, MESH_E_INVALID,
                            "ALPN list \"%s\": names must be 1 to 255 bytes, separated by commas",
                            list);
        }
        wire[w++] = (unsigned char)n;
        memcpy(wire + w, p, n);
        w += n;
        if (!p[n])
            break;
        p += n + 1;
    }
    ctx->alpn = wire;
    ctx->alpn_len = w;
    return MESH_OK;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    struct mesh_tls_ctx *ctx = arg;
    unsigned char *sel = NULL, sel_len = 0;
    (void)ssl;
    /* Our preference first; no overlap goes on without ALPN rather than failing a client. */
    if (SSL_select_next_proto(&sel, &sel_len, ctx->alpn, (unsigned int)ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

/* Client: keeps the newest session of the connection's peer (TLS 1.3 tickets arrive after the
 * handshake, with the first read). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct mesh_tls_conn *c = SSL_get_app_data(ssl);
    if (!c || !c->peer_key[0])
        return 0;
    struct mesh_tls_ctx *ctx = c->ctx;
    struct session_slot *slot = NULL;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < MESH_TLS_SESSION_CACHE && !slot; i++)
        if (ctx->sessions[i].sess && strcmp(ctx->sessions[i].key, c->peer_key) == 0)
            slot = &ctx->sessions[i];
    for (size_t i = 0; i < MESH_TLS_SESSION_CACHE && !slot; i++)
        if (!ctx->sessions[i].sess)
            slot = &ctx->sessions[i];
    if (!slot) {
        slot = &ctx->sessions[0];
        for (size_t i = 1; i < MESH_TLS_SESSION_CACHE; i++)
            if (ctx->sessions[i].used < slot->used)
                slot = &ctx->sessions[i];
    }
    /* A copy: OpenSSL marks the connection's own session unusable when that connection is
     * freed without a close_notify (a possibly truncated one), which must not spoil the
     * cache. */
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy) {
        SSL_SESSION_free(slot->sess);
        slot->sess = copy;
        snprintf(slot->key, sizeof(slot->key), "%s", c->peer_key);
        slot->used = ++ctx->tick;
    }
    pthread_mutex_unlock(&ctx->lock);
    return 0; /* OpenSSL keeps its reference to sess */
}

static int proto_version(enum mesh_tls_version v, int dflt)
{
    switch (v) {
    case MESH_TLS_VERSION_1_2:
        return TLS1_2_VERSION;
    case MESH_TLS_VERSION_1_3:
        return TLS1_3_VERSION;
    case MESH_TLS_VERSION_DEFAULT:
        break;
    }
    return dflt;
}

/* What every context gets once its SSL_CTX has its certificate and trust: peer verification
 * through verify_cb, ALPN, the client session cache. */
static enum mesh_err ctx_setup(struct mesh_tls_ctx *ctx, enum mesh_tls_verify verify,
                               const char *alpn, char **errmsg)
{
    char why[160];
    int mode = SSL_VERIFY_PEER;
    /* Read ahead: one recv() takes whatever the socket has (several records, or a record's
     * header and body together) instead of two per record. */
    SSL_CTX_set_read_ahead(ctx->ssl, 1);
    if (ctx->server) {
        if (verify == MESH_TLS_VERIFY_NONE)
            mode = SSL_VERIFY_NONE;
        else if (verify == MESH_TLS_VERIFY_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        /* Resumption with client verification on needs a session id context. */
        static const unsigned char sid_ctx[] = "mesh";
        SSL_CTX_set_session_id_context(ctx->ssl, sid_ctx, sizeof(sid_ctx) - 1);
        /* One TLS 1.3 ticket per connection, not OpenSSL's two: clients keep one session per
         * peer, and each ticket costs the server a copy of the session (with the client's
         * certificate re-parsed), a quarter of a full handshake's CPU in OpenSSL 3.0. */
        SSL_CTX_set_num_tickets(ctx->ssl, 1);
    }
    SSL_CTX_set_verify(ctx->ssl, mode, verify_cb);
    if (alpn) {
        enum mesh_err err = parse_alpn(ctx, alpn, errmsg);
        if (err != MESH_OK)
            return err;
        if (ctx->server)
            SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
        else if (SSL_CTX_set_alpn_protos(ctx->ssl, ctx->alpn, (unsigned int)ctx->alpn_len) != 0)
            return fail_msg(errmsg, MESH_E_TLS, "TLS: cannot set ALPN (%s)",
                            ssl_reason(why, sizeof(why)));
    }
    if (!ctx->server) {
        SSL_CTX_set_session_cache_mode(ctx->ssl, ctx->resume ? SSL_SESS_CACHE_CLIENT |
                                                                   SSL_SESS_CACHE_NO_INTERNAL_STORE
                                                             : SSL_SESS_CACHE_OFF);
        if (ctx->resume)
            SSL_CTX_sess_set_new_cb(ctx->ssl, new_session_cb);
    }
    return MESH_OK;
}

enum mesh_err mesh_tls_ctx_new(const struct mesh_tls_options *opt, struct mesh_tls_ctx **out,
                               char **errmsg)
{
    struct mesh_tls_ctx *ctx = NULL;
    enum mesh_err err = MESH_OK;
    char why[160];

    *out = NULL;
    if (errmsg)
        *errmsg = NULL;
    bool has_cert = opt->cert_file || opt->cert_pem;
    bool has_key = opt->key_file || opt->key_pem;
    bool has_ca = opt->ca_file || opt->ca_pem;
    if ((opt->cert_file && opt->cert_pem) || (opt->key_file && opt->key_pem) ||
        (opt->ca_file && opt->ca_pem))
        return fail_msg(errmsg, MESH_E_INVALID,
                        "give each PEM item as a file or as text, not both");
    if (has_cert != has_key)
        return fail_msg(errmsg, MESH_E_INVALID,
                        "a certificate needs its key, and a key its certificate");
    if (opt->server && !has_cert)
        return fail_msg(errmsg, MESH_E_INVALID, "a TLS server needs a certificate and its key");
    if (opt->server && opt->verify_clients != MESH_TLS_VERIFY_NONE && !has_ca)
        return fail_msg(errmsg, MESH_E_INVALID,
                        "checking client certificates needs the CAs that sign them");

    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return fail_msg(errmsg, MESH_E_NOMEM, "TLS: out of memory");
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->server = opt->server;
    ctx->check_peer = opt->check_peer;
    ctx->check_data = opt->check_data;
    ctx->resume = !opt->server && opt->resume_sessions;
    pthread_once(&sock_method_once, sock_method_init);
    ctx->ssl =
        sock_method ? SSL_CTX_new(opt->server ? TLS_server_method() : TLS_client_method()) : NULL;
    if (!ctx->ssl) {
        err = fail_msg(errmsg, MESH_E_TLS, "TLS: cannot make a context (%s)",
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx->ssl, proto_version(opt->min_version, TLS1_2_VERSION)) !=
            1 ||
        SSL_CTX_set_max_proto_version(ctx->ssl, proto_version(opt->max_version, 0)) != 1) {
        err = fail_msg(errmsg, MESH_E_TLS, "TLS: cannot set the versions (%s)",
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                      (opt->server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    /* Partial writes and a moving buffer let writev hand over the caller's memory as it is;
     * released buffers keep an idle connection (a long poll) small. */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
    if (has_cert) {
        err = load_identity(ctx, opt, errmsg);
        if (err != MESH_OK)
            goto out;
    }
    if (has_ca) {
        err = load_cas(ctx, opt, errmsg);
        if (err != MESH_OK)
            goto out;
    } else if (!opt->server && SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
        err = fail_msg(errmsg, MESH_E_TLS, "TLS: cannot load the system trust store (%s)",
                       ssl_reason(why, sizeof(why)));
        goto out;
    }
    err = ctx_setup(ctx, opt->verify_clients, opt->alpn, errmsg);
    if (err != MESH_OK)
        goto out;
    *out = ctx;
    ctx = NULL; /* the caller's now */
out:
    mesh_tls_ctx_free(ctx);
    return err;
}

enum mesh_err mesh_tls_ctx_adopt(SSL_CTX *ssl, const struct mesh_tls_adopt *opt,
                                 struct mesh_tls_ctx **out, char **errmsg)
{
    *out = NULL;
    if (errmsg)
        *errmsg = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ssl);
    if (opt->server && !leaf)
        return fail_msg(errmsg, MESH_E_INVALID, "a TLS server needs a certificate and its key");
    struct mesh_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return fail_msg(errmsg, MESH_E_NOMEM, "TLS: out of memory");
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_once(&sock_method_once, sock_method_init);
    ctx->server = opt->server;
    ctx->resume = !opt->server && opt->resume_sessions;
    SSL_CTX_up_ref(ssl);
    ctx->ssl = ssl;
    enum mesh_err err = MESH_OK;
    if (!sock_method) {
        err = fail_msg(errmsg, MESH_E_NOMEM, "TLS: out of memory");
        goto out;
    }
    SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (leaf) {
        ctx->subject = name_text(X509_get_subject_name(leaf));
        ctx->not_after = asn1_time(X509_get0_notAfter(leaf));
        if (!ctx->subject) {
            err = fail_msg(errmsg, MESH_E_NOMEM, "TLS: out of memory");
            goto out;
        }
    }
    err = ctx_setup(ctx, opt->verify_clients, opt->alpn, errmsg);
    if (err != MESH_OK)
        goto out;
    *out = ctx;
    ctx = NULL;
out:
    mesh_tls_ctx_free(ctx);
    return err;
}

SSL_CTX *mesh_tls_ctx_ssl(struct mesh_tls_ctx *ctx)
{
    return ctx->ssl;
}

void mesh_tls_ctx_free(struct mesh_tls_ctx *ctx)
{
    if (!ctx)
        return;
    for (size_t i = 0; i < MESH_TLS_SESSION_CACHE; i++)
        SSL_SESSION_free(ctx->sessions[i].sess);
    SSL_CTX_free(ctx->ssl);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx->alpn);
    free(ctx->subject);
    free(ctx);
}

const char *mesh_tls_ctx_subject(const struct mesh_tls_ctx *ctx)
{
    return ctx->subject ? ctx->subject : "";
}

time_t mesh_tls_ctx_not_after(const struct mesh_tls_ctx *ctx)
{
    return ctx->not_after;
}

/* --- connections --- */

/* "name|address:port" of the socket's peer; "" when it has none. */
static void peer_key(int fd, const char *name, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;

    out[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        port = ntohs(sin6->sin6_port);
    } else {
        return;
    }
    snprintf(out, size, "%s|%s:%u", name ? name : "", addr, port);
}

/* The cached session of the connection's peer, if any: offered in the ClientHello. */
static void offer_session(struct mesh_tls_conn *c)
{
    struct mesh_tls_ctx *ctx = c->ctx;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < MESH_TLS_SESSION_CACHE; i++) {
        struct session_slot *s = &ctx->sessions[i];
        if (s->sess && strcmp(s->key, c->peer_key) == 0) {
            /* A copy again, for the same reason: this connection may end without one. */
            SSL_SESSION *copy = SSL_SESSION_is_resumable(s->sess) ? SSL_SESSION_dup(s->sess) : NULL;
            if (copy) {
                SSL_set_session(c->ssl, copy);
                SSL_SESSION_free(copy); /* the SSL holds its own reference */
            }
            s->used = ++ctx->tick;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
}

static enum mesh_err conn_new(struct mesh_tls_ctx *ctx, int fd, const char *server_name,
                              const char *expect_uri, struct mesh_tls_conn **out)
{
    struct mesh_tls_conn *c = NULL;
    enum mesh_err err = MESH_OK;
    BIO *b = NULL;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return MESH_E_NOMEM;
    c->ctx = ctx;
    c->server = ctx->server;
    c->io.fd = fd;
    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl);
    b = BIO_new(sock_method);
    if (!c->ssl || !b) {
        err = MESH_E_NOMEM;
        goto out;
    }
    BIO_set_data(b, &c->io);
    BIO_set_init(b, 1);
    SSL_set_bio(c->ssl, b, b);
    b = NULL; /* the SSL owns it now */
    SSL_set_app_data(c->ssl, c);
    if (c->server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
        if (server_name && server_name[0]) {
            unsigned char ip[16];
            bool literal = inet_pton(AF_INET, server_name, ip) == 1 ||
                           inet_pton(AF_INET6, server_name, ip) == 1;
            c->server_name = strdup(server_name);
            if (!c->server_name) {
                err = MESH_E_NOMEM;
                goto out;
            }
            /* An IP literal is matched against IP SANs and never sent as SNI (RFC 6066). */
            if (literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), server_name) != 1
                        : SSL_set1_host(c->ssl, server_name) != 1 ||
                              SSL_set_tlsext_host_name(c->ssl, server_name) != 1) {
                err = MESH_E_INVALID;
                goto out;
            }
            if (!literal)
                SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        if (expect_uri && !(c->expect_uri = strdup(expect_uri))) {
            err = MESH_E_NOMEM;
            goto out;
        }
        if (ctx->resume) {
            /* A session is offered only to the identity it was made with. */
            peer_key(fd, c->expect_uri ? c->expect_uri : c->server_name, c->peer_key,
                     sizeof(c->peer_key));
            if (c->peer_key[0])
                offer_session(c);
        }
    }
    *out = c;
    c = NULL; /* the caller's now */
out:
    ERR_clear_error();
    BIO_free(b);
    mesh_tls_conn_free(c);
    return err;
}

enum mesh_err mesh_tls_conn_new(struct mesh_tls_ctx *ctx, int fd, const char *server_name,
                                struct mesh_tls_conn **out)
{
    return conn_new(ctx, fd, server_name, NULL, out);
}

enum mesh_err mesh_tls_conn_new_expecting(struct mesh_tls_ctx *ctx, int fd, const char *peer_uri,
                                          struct mesh_tls_conn **out)
{
    *out = NULL;
    if (ctx->server || !peer_uri || !peer_uri[0])
        return MESH_E_INVALID;
    return conn_new(ctx, fd, NULL, peer_uri, out);
}

void mesh_tls_conn_free(struct mesh_tls_conn *conn)
{
    if (!conn)
        return;
    SSL_free(conn->ssl);
    peer_clear(&conn->peer);
    free(conn->server_name);
    free(conn->expect_uri);
    free(conn);
}

/* A server's look at the first bytes, before OpenSSL reads them: plaintext told apart from a
 * broken handshake. DONE to go on with the handshake. */
static enum mesh_tls_status sniff_first_bytes(struct mesh_tls_conn *c)
{
    unsigned char buf[SNIFF_BYTES];
    ssize_t n;
    do
        n = recv(c->io.fd, buf, sizeof(buf), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return MESH_TLS_WANT_READ;
    if (n < 0) {
        set_err(c, "%s", strerror(errno));
        c->failure = MESH_TLS_FAIL_OTHER;
        c->failed = true;
        return MESH_TLS_ERROR;
    }
    if (n == 0) {
        set_err(c, "the client closed the connection before the TLS handshake");
        c->failed = true;
        return MESH_TLS_CLOSED;
    }
    c->sniffed = true;
    if (buf[0] == 0x16)
        return MESH_TLS_DONE; /* OpenSSL judges the rest */
    enum mesh_tls_sniff kind = mesh_tls_sniff(buf, (size_t)n);
    c->failure = MESH_TLS_FAIL_PLAINTEXT;
    if (kind == MESH_TLS_SNIFF_HTTP || kind == MESH_TLS_SNIFF_NEED_MORE)
        set_err(c, "the peer does not speak TLS (it sent plaintext HTTP?)");
    else
        set_err(c, "the peer does not speak TLS (its first bytes are not a TLS handshake)");
    c->failed = true;
    return MESH_TLS_ERROR;
}

/* Drops the cached session of c's peer, if any, and caches none for c from now on. */
static void forget_session(struct mesh_tls_conn *c)
{
    struct mesh_tls_ctx *ctx = c->ctx;
    if (!c->peer_key[0])
        return;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < MESH_TLS_SESSION_CACHE; i++) {
        struct session_slot *s = &ctx->sessions[i];
        if (s->sess && strcmp(s->key, c->peer_key) == 0) {
            SSL_SESSION_free(s->sess);
            s->sess = NULL;
            s->key[0] = '\0';
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    c->peer_key[0] = '\0'; /* nor store a later one (a TLS 1.3 ticket) */
}

/* A client of mesh_tls_conn_new_expecting, after its handshake: is the server the identity it
 * wanted? After rather than during verification, so that a resumed session (no verification)
 * is checked the same way. */
static enum mesh_tls_status check_expected_peer(struct mesh_tls_conn *c)
{
    struct mesh_tls_peer peer;
    enum mesh_err err = mesh_tls_conn_peer(c, &peer);
    for (size_t i = 0; err == MESH_OK && i < peer.n_uri_sans; i++)
        if (strcmp(peer.uri_sans[i], c->expect_uri) == 0)
            return MESH_TLS_DONE;
    c->failure = MESH_TLS_FAIL_WRONG_IDENTITY;
    forget_session(c); /* TLS 1.2 stored it during the handshake: never offer it again */
    if (err != MESH_OK)
        set_err(c,
                "certificate verify failed (wrong identity): the server sent no certificate, "
                "and %s was expected",
                c->expect_uri);
    else
        set_err(c,
                "certificate verify failed (wrong identity): the server is %s, not the expected "
                "%s%s%s%s",
                peer.n_uri_sans ? peer.uri_sans[0] : "a certificate without a URI SAN",
                c->expect_uri, peer.subject ? " (" : "", peer.subject ? peer.subject : "",
                peer.subject ? ")" : "");
    c->failed = true;
    return MESH_TLS_ERROR;
}

enum mesh_tls_status mesh_tls_handshake(struct mesh_tls_conn *c)
{
    if (c->failed) /* first: a handshake that completed with the wrong peer is no handshake */
        return MESH_TLS_ERROR;
    if (c->handshake_done)
        return MESH_TLS_DONE;
    c->err[0] = '\0';
    if (c->server && !c->sniffed) {
        enum mesh_tls_status st = sniff_first_bytes(c);
        if (st != MESH_TLS_DONE)
            return st;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    int os_errno = errno;
    if (r == 1) {
        c->handshake_done = true;
        return c->expect_uri ? check_expected_peer(c) : MESH_TLS_DONE;
    }
    return io_failed(c, r, os_errno, true);
}

enum mesh_tls_status mesh_tls_read(struct mesh_tls_conn *c, void *buf, size_t len, size_t *got)
{
    *got = 0;
    if (!c->handshake_done) {
        enum mesh_tls_status st = mesh_tls_handshake(c);
        if (st != MESH_TLS_DONE)
            return st;
    }
    if (c->failed)
        return c->truncated ? MESH_TLS_CLOSED : MESH_TLS_ERROR;
    if (len == 0)
        return MESH_TLS_DONE;
    c->err[0] = '\0';
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    /* Only a recv() of this call may say the socket is empty: bytes that came since an older
     * one are waiting, and their edge was spent on the event that brought us here. */
    c->io.drained = false;
    int r = SSL_read_ex(c->ssl, buf, len, &n);
    int os_errno = errno;
    if (r == 1) {
        *got = n;
        return MESH_TLS_DONE;
    }
    return io_failed(c, r, os_errno, false);
}

enum mesh_tls_status mesh_tls_writev(struct mesh_tls_conn *c, const struct iovec *iov, int n,
                                     size_t *written)
{
    unsigned char block[COALESCE_MAX];
    int i = 0;
    size_t off = 0; /* into iov[i] */

    *written = 0;
    if (!c->handshake_done) {
        enum mesh_tls_status st = mesh_tls_handshake(c);
        if (st != MESH_TLS_DONE)
            return st;
    }
    if (c->failed)
        return MESH_TLS_ERROR;
    c->err[0] = '\0';
    for (;;) {
        while (i < n && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (i >= n)
            return MESH_TLS_DONE;
        const unsigned char *p = (const unsigned char *)iov[i].iov_base + off;
        size_t len = iov[i].iov_len - off;
        if (len < COALESCE_MAX && i + 1 < n) {
            /* Small pieces (an answer head and its body) go out as one record. The copy is
             * made the same way on a retry, from the same bytes, as OpenSSL requires. */
            size_t fill = 0;
            for (int j = i; j < n && fill < COALESCE_MAX; j++) {
                size_t from = j == i ? off : 0;
                size_t take = iov[j].iov_len - from;
                if (take > COALESCE_MAX - fill)
                    take = COALESCE_MAX - fill;
                if (take) /* an empty piece may have no base */
                    memcpy(block + fill, (const unsigned char *)iov[j].iov_base + from, take);
                fill += take;
            }
            p = block;
            len = fill;
        }
        size_t w = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_write_ex(c->ssl, p, len, &w);
        int os_errno = errno;
        if (r != 1)
            return io_failed(c, r, os_errno, false);
        *written += w;
        while (w > 0) {
            size_t step = iov[i].iov_len - off < w ? iov[i].iov_len - off : w;
            off += step;
            w -= step;
            if (off == iov[i].iov_len) {
                i++;
                off = 0;
            }
        }
    }
}

enum mesh_tls_status mesh_tls_shutdown(struct mesh_tls_conn *c)
{
    if (c->failed || !c->handshake_done || c->shut)
        return MESH_TLS_DONE;
    ERR_clear_error();
    errno = 0;
    int r = SSL_shutdown(c->ssl);
    int os_errno = errno;
    if (r >= 0) {
        /* 0: ours went out, the peer's is not read: we do not wait for it. */
        c->shut = true;
        return MESH_TLS_DONE;
    }
    enum mesh_tls_status st = io_failed(c, r, os_errno, false);
    return st == MESH_TLS_CLOSED ? MESH_TLS_DONE : st;
}

const char *mesh_tls_conn_error(const struct mesh_tls_conn *conn)
{
    return conn->err;
}

bool mesh_tls_conn_drained(const struct mesh_tls_conn *conn)
{
    return conn->io.drained && !SSL_has_pending(conn->ssl);
}

enum mesh_tls_failure mesh_tls_conn_failure(const struct mesh_tls_conn *conn)
{
    return conn->failed ? conn->failure : MESH_TLS_FAIL_NONE;
}

bool mesh_tls_conn_truncated(const struct mesh_tls_conn *conn)
{
    return conn->truncated;
}

enum mesh_err mesh_tls_conn_peer(struct mesh_tls_conn *c, struct mesh_tls_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    if (!c->handshake_done)
        return MESH_E_NOTFOUND;
    if (!c->peer_loaded) {
        X509 *x = SSL_get0_peer_certificate(c->ssl);
        if (!x)
            return MESH_E_NOTFOUND;
        if (!peer_fill(&c->peer, x)) {
            peer_clear(&c->peer);
            return MESH_E_NOMEM;
        }
        c->peer_loaded = true;
    }
    *peer = c->peer.peer;
    return MESH_OK;
}

const char *mesh_tls_conn_alpn(struct mesh_tls_conn *c)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    if (!c->handshake_done)
        return NULL;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    if (!p || len == 0)
        return NULL;
    memcpy(c->alpn, p, len); /* at most 255 bytes */
    c->alpn[len] = '\0';
    return c->alpn;
}

const char *mesh_tls_conn_version(const struct mesh_tls_conn *conn)
{
    return conn->handshake_done ? SSL_get_version(conn->ssl) : "";
}

bool mesh_tls_conn_resumed(const struct mesh_tls_conn *conn)
{
    return conn->handshake_done && SSL_session_reused(conn->ssl) == 1;
}
