/* SPDX-License-Identifier: Apache-2.0 */
/* TLS over a non-blocking socket, for event loops and poll()-driven clients: contexts (server
 * or client side, PEM files or PEM text, peer verification, ALPN, client session resumption)
 * and connections whose every call says what it needs next (done, want read, want write,
 * closed, error), with failures in words a user can act on.
 *
 * OpenSSL 3 does the work; this header keeps its types out of the callers, so that a program
 * links OpenSSL only when it calls these functions (meshproxy must not: its TLS comes later as a
 * dlopen'ed plugin built on this file).
 *
 * Threads: a context is immutable once made and may be shared by any number of threads (its
 * client session cache takes a lock); a connection belongs to one thread at a time.
 *
 * Timeouts are the caller's: nothing here waits. */
#ifndef MESH_NET_TLS_H
#define MESH_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <time.h>

#include "mesh/err.h"

struct mesh_tls_ctx;
struct mesh_tls_conn;

/* What one call on a connection came to. */
enum mesh_tls_status {
    MESH_TLS_DONE = 0,   /* the call did what it was asked (read: *got > 0 bytes) */
    MESH_TLS_WANT_READ,  /* call again once the socket is readable */
    MESH_TLS_WANT_WRITE, /* call again once the socket is writable */
    MESH_TLS_CLOSED,     /* the peer closed the connection (reads: no more data will come) */
    MESH_TLS_ERROR,      /* the connection is unusable; mesh_tls_conn_error() says why */
};

/* "done", "want-read", ...: for logs. Static. */
const char *mesh_tls_status_str(enum mesh_tls_status st);

/* Whether a server asks for and checks client certificates. */
enum mesh_tls_verify {
    MESH_TLS_VERIFY_NONE = 0, /* no client certificate asked for */
    MESH_TLS_VERIFY_OPTIONAL, /* asked for; one that is sent must verify */
    MESH_TLS_VERIFY_REQUIRED, /* a client without a verified certificate fails the handshake */
};

enum mesh_tls_version {
    MESH_TLS_VERSION_DEFAULT = 0, /* min: TLS 1.2, max: the newest OpenSSL has (1.3) */
    MESH_TLS_VERSION_1_2,
    MESH_TLS_VERSION_1_3,
};

/* The peer's leaf certificate, as far as authorization needs it. Strings are borrowed from the
 * connection (valid until it is freed) or, inside a peer check, for the check's duration. */
#define MESH_TLS_MAX_SANS 16 /* SANs of one kind kept; more are left out */
struct mesh_tls_peer {
    const char *subject;                     /* RFC 2253: "CN=meshd,O=Example" */
    const char *uri_sans[MESH_TLS_MAX_SANS]; /* "spiffe://cluster.local/ns/default/sa/web" */
    size_t n_uri_sans;
    const char *dns_sans[MESH_TLS_MAX_SANS];
    size_t n_dns_sans;
    time_t not_after;
};

/* Checks a peer whose certificate chain verified (a proxy checks SPIFFE IDs here). Called
 * during the handshake, on the connection's thread. Return true to accept; false fails the
 * handshake with "certificate verify failed (wrong identity): WHY", why being what the check
 * wrote into why[0..why_size) (a sentence; may be left empty). */
typedef bool (*mesh_tls_peer_check)(const struct mesh_tls_peer *peer, void *data, char *why,
                                    size_t why_size);

/* A context. Each PEM item comes from a file (…_file) or from text (…_pem); give one or the
 * other. A private key file must be a regular file private to its owner (no group or other
 * permission bits), as meshd's CA keys; keys must be unencrypted. */
struct mesh_tls_options {
    bool server; /* true: accepts connections; false: makes them */

    /* Our certificate (leaf first, then intermediates) and its key: required for a server,
     * optional for a client (its client certificate). */
    const char *cert_file, *cert_pem;
    const char *key_file, *key_pem;

    /* CA certificates (a PEM bundle) to verify the peer with. Client: the server's CAs; none
     * given = the system trust store. Server: the CAs of client certificates (needed unless
     * verify_clients is MESH_TLS_VERIFY_NONE). */
    const char *ca_file, *ca_pem;
    enum mesh_tls_verify verify_clients; /* server only */

    /* An extra check of the verified peer certificate (both sides); NULL = none. */
    mesh_tls_peer_check check_peer;
    void *check_data;

    /* ALPN protocols in preference order, comma-separated ("h2,http/1.1"); NULL = no ALPN. A
     * server picks its first protocol the client offers, and goes on without ALPN when none
     * matches (the client sees mesh_tls_conn_alpn() NULL). */
    const char *alpn;

    enum mesh_tls_version min_version, max_version; /* never below TLS 1.2 */

    /* Client: keep the last session of each peer (server name + address) in a small cache of
     * the context (MESH_TLS_SESSION_CACHE entries, least recently used replaced) and offer it
     * on the next connection to that peer, which then skips the full handshake. OpenSSL's own
     * client-side cache is not used: it never looks sessions up for clients. A server always
     * resumes (stateless tickets). */
    bool resume_sessions;
};

#define MESH_TLS_SESSION_CACHE 16

/* Makes a context. Errors with *errmsg (caller frees) naming the file and the problem:
 * MESH_E_IO (a file cannot be read), MESH_E_INVALID (no certificate or key where one must be, a
 * key readable by others, a key that is not the certificate's, a bad ALPN list, options that do
 * not go together), MESH_E_TLS (OpenSSL failed), MESH_E_NOMEM. *out is freed with
 * mesh_tls_ctx_free. Any thread. */
enum mesh_err mesh_tls_ctx_new(const struct mesh_tls_options *opt, struct mesh_tls_ctx **out,
                               char **errmsg);
/* NULL is a no-op. Every connection made from ctx must be freed first. */
void mesh_tls_ctx_free(struct mesh_tls_ctx *ctx);

/* Our own certificate's subject (RFC 2253) and expiry, for logs; "" and 0 without one.
 * Borrowed from ctx. */
const char *mesh_tls_ctx_subject(const struct mesh_tls_ctx *ctx);
time_t mesh_tls_ctx_not_after(const struct mesh_tls_ctx *ctx);

/* A connection on fd, a connected non-blocking socket (borrowed: mesh_tls_conn_free does not
 * close it). server_name (client side; NULL = none) is the name the server's certificate must
 * carry: an IP literal ("127.0.0.1", "::1") is matched against the IP SANs, anything else is a
 * DNS name matched against the DNS SANs (wildcards allowed) and also sent as SNI. A client with
 * neither server_name nor a check_peer only checks the chain. MESH_E_NOMEM, MESH_E_INVALID (an
 * unusable server name), MESH_E_TLS. */
enum mesh_err mesh_tls_conn_new(struct mesh_tls_ctx *ctx, int fd, const char *server_name,
                                struct mesh_tls_conn **out);
/* Frees the connection without sending anything; fd stays open. NULL is a no-op. */
void mesh_tls_conn_free(struct mesh_tls_conn *conn);

/* Drives the handshake. DONE once it completed (a server then knows the verified client
 * certificate, if any); WANT_READ / WANT_WRITE; ERROR with the reason, among them:
 *   "certificate verify failed (unknown CA): unable to get local issuer certificate (CN=...)"
 *   "certificate verify failed (expired): certificate has expired (CN=..., notAfter ...)"
 *   "certificate verify failed (wrong host): the certificate is not for 127.0.0.2 (CN=...)"
 *   "the peer does not speak TLS (it sent plaintext HTTP?)"
 *   "the client sent no certificate, and this server requires one"
 * CLOSED: the peer closed before the handshake began (a server's health check, a port scan).
 * A server looks at the first bytes before OpenSSL does, so that plaintext is told apart. */
enum mesh_tls_status mesh_tls_handshake(struct mesh_tls_conn *conn);

/* Reads up to len decrypted bytes (the handshake first, when not done). DONE with *got > 0;
 * WANT_READ / WANT_WRITE with *got 0; CLOSED at the peer's close_notify or at EOF (see
 * mesh_tls_conn_truncated); ERROR. Call again after DONE until it wants to wait: OpenSSL may
 * hold decrypted bytes the socket no longer announces. */
enum mesh_tls_status mesh_tls_read(struct mesh_tls_conn *conn, void *buf, size_t len, size_t *got);

/* Writes iov[0..n). *written: bytes taken, whatever the answer (advance the caller's queue by
 * it). DONE: all of them; WANT_WRITE / WANT_READ: some or none, call again with the rest when
 * the socket is ready, starting with the same bytes (more may follow them); ERROR. Small pieces
 * are copied into one record of up to 16 KiB; larger ones are sent from the caller's memory,
 * a record at a time (partial writes, moving buffer: the retry may come from another address). */
enum mesh_tls_status mesh_tls_writev(struct mesh_tls_conn *conn, const struct iovec *iov, int n,
                                     size_t *written);

/* Sends close_notify, once; does not wait for the peer's. DONE (sent, or nothing to send
 * because the connection failed or never completed a handshake), WANT_WRITE, ERROR. */
enum mesh_tls_status mesh_tls_shutdown(struct mesh_tls_conn *conn);

/* Why the last call failed ("" when none did). Borrowed until the next call on conn. */
const char *mesh_tls_conn_error(const struct mesh_tls_conn *conn);
/* The read that answered CLOSED saw an EOF without close_notify (the data may be cut short;
 * framing that has its own length, as HTTP's, does not care). */
bool mesh_tls_conn_truncated(const struct mesh_tls_conn *conn);

/* A client connection that accepts only a server whose certificate carries the URI SAN
 * peer_uri (a SPIFFE ID: mesh mTLS, where names are identities, not hosts). Checked after every
 * handshake, resumed ones included; sessions are cached per (peer_uri, address). Otherwise as
 * mesh_tls_conn_new with no server name. MESH_E_INVALID for an empty peer_uri. */
enum mesh_err mesh_tls_conn_new_expecting(struct mesh_tls_ctx *ctx, int fd, const char *peer_uri,
                                          struct mesh_tls_conn **out);

/* After a read that answered DONE: neither the library nor the socket holds more bytes now (the
 * library's last recv() got less than it asked for, and nothing decrypted or undecrypted is
 * buffered). An edge-triggered caller may then wait for the next read event instead of reading
 * again only to hear WANT_READ: the bytes that come next raise a new edge. */
bool mesh_tls_conn_drained(const struct mesh_tls_conn *conn);

/* Why a handshake failed, as the cause a user acts on (metrics label, log field). */
enum mesh_tls_failure {
    MESH_TLS_FAIL_NONE = 0,
    MESH_TLS_FAIL_EXPIRED,        /* a certificate (the peer's, or ours as the peer says) expired */
    MESH_TLS_FAIL_UNKNOWN_CA,     /* not signed by a CA of the trust bundle (either side) */
    MESH_TLS_FAIL_WRONG_IDENTITY, /* the peer is not who was expected (SPIFFE ID, host) */
    MESH_TLS_FAIL_PLAINTEXT,      /* the peer does not speak TLS */
    MESH_TLS_FAIL_NO_CERTIFICATE, /* a client certificate was required and none was sent */
    MESH_TLS_FAIL_OTHER,
};
/* The cause of the failure the connection's error describes; NONE when it did not fail. */
enum mesh_tls_failure mesh_tls_conn_failure(const struct mesh_tls_conn *conn);
/* "expired", "unknown_ca", "wrong_identity", "plaintext", "no_certificate", "other"; "none".
 * Static. In tls_sniff.c (no OpenSSL needed). */
const char *mesh_tls_failure_str(enum mesh_tls_failure f);

/* After the handshake: the peer's leaf certificate. MESH_E_NOTFOUND when the peer sent none (a
 * server that did not ask, a client without one). *peer borrows from conn. */
enum mesh_err mesh_tls_conn_peer(struct mesh_tls_conn *conn, struct mesh_tls_peer *peer);
/* The ALPN protocol agreed on ("http/1.1"), or NULL. Borrowed. */
const char *mesh_tls_conn_alpn(struct mesh_tls_conn *conn);
/* "TLSv1.3", "TLSv1.2"; "" before the handshake. Static. */
const char *mesh_tls_conn_version(const struct mesh_tls_conn *conn);
/* The handshake resumed an earlier session. */
bool mesh_tls_conn_resumed(const struct mesh_tls_conn *conn);

/* What the first bytes of a connection are, for a port that takes TLS and plaintext
 * ("permissive" mTLS). Looks at most at the first MESH_TLS_SNIFF_BYTES bytes. In
 * tls_sniff.c, which needs no OpenSSL. */
#define MESH_TLS_SNIFF_BYTES 16
enum mesh_tls_sniff {
    MESH_TLS_SNIFF_NEED_MORE = 0, /* too few bytes to tell; read (peek) more */
    MESH_TLS_SNIFF_TLS,           /* a TLS handshake record starting a ClientHello */
    MESH_TLS_SNIFF_HTTP,          /* a plaintext HTTP request line ("GET ", "PRI * HTTP/2.0") */
    MESH_TLS_SNIFF_OTHER,         /* neither */
};
enum mesh_tls_sniff mesh_tls_sniff(const void *buf, size_t len);

#endif
