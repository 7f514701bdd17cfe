/* SPDX-License-Identifier: Apache-2.0 */
/* The OpenSSL-backed TLS ops of the HTTP client (http_client_tls.h), on net/tls.h. */
#include "net/http_client_tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"

#define MAX_CTXS 8 /* CA bundles a process talks with; more: the oldest context is not cached */
#define ERR_TEXT 640

/* One context per CA bundle ("" = the system trust store). Never freed: sessions outlive a
 * call, and clients on other threads may hold connections made from them. */
struct ctx_slot {
    char *ca_file;
    struct mesh_tls_ctx *ctx;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctx_slot slots[MAX_CTXS];
static char *default_ca;

struct session {
    struct mesh_tls_conn *conn;
    struct mesh_tls_ctx *own_ctx; /* a context that found no slot: freed with the session */
    bool custom_ca;               /* a CA bundle was named (for the hint) */
    char ca_file[256];
    char err[ERR_TEXT];
};

void mesh_http_client_tls_set_default_ca(const char *ca_file)
{
    char *copy = ca_file && ca_file[0] ? strdup(ca_file) : NULL;
    pthread_mutex_lock(&lock);
    free(default_ca);
    default_ca = copy;
    pthread_mutex_unlock(&lock);
}

/* The context for ca_file (NULL = system store): the cached one, else a new one, cached when a
 * slot is free (else *own says the caller frees it). */
static enum mesh_err get_ctx(const char *ca_file, struct mesh_tls_ctx **out, bool *own, char **why)
{
    const char *key = ca_file ? ca_file : "";
    enum mesh_err err = MESH_OK;

    *own = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_CTXS && slots[i].ctx; i++) {
        if (strcmp(slots[i].ca_file, key) == 0) {
            *out = slots[i].ctx;
            goto out;
        }
    }
    struct mesh_tls_options opt = {
        .ca_file = ca_file,
        .alpn = "http/1.1",
        .resume_sessions = true,
    };
    err = mesh_tls_ctx_new(&opt, out, why);
    if (err != MESH_OK)
        goto out;
    for (size_t i = 0; i < MAX_CTXS; i++) {
        if (!slots[i].ctx) {
            slots[i].ca_file = strdup(key);
            if (!slots[i].ca_file)
                break;
            slots[i].ctx = *out;
            goto out;
        }
    }
    *own = true;
out:
    pthread_mutex_unlock(&lock);
    return err;
}

static void ops_close(void *session)
{
    struct session *s = session;
    if (!s)
        return;
    if (s->conn)
        mesh_tls_shutdown(s->conn); /* once, without waiting: the server may be gone */
    mesh_tls_conn_free(s->conn);
    mesh_tls_ctx_free(s->own_ctx);
    free(s);
}

static enum mesh_err ops_start(int fd, const char *host, const char *ca_file, void **out,
                               char **why)
{
    struct mesh_tls_ctx *ctx = NULL;
    bool own = false;
    char *dflt = NULL;
    enum mesh_err err;

    *out = NULL;
    *why = NULL;
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return MESH_E_NOMEM;
    if (!ca_file) {
        pthread_mutex_lock(&lock);
        dflt = default_ca ? strdup(default_ca) : NULL;
        pthread_mutex_unlock(&lock);
        ca_file = dflt;
    }
    s->custom_ca = ca_file != NULL;
    snprintf(s->ca_file, sizeof(s->ca_file), "%s", ca_file ? ca_file : "");
    err = get_ctx(ca_file, &ctx, &own, why);
    if (err != MESH_OK)
        goto out;
    if (own)
        s->own_ctx = ctx;
    err = mesh_tls_conn_new(ctx, fd, host, &s->conn);
    if (err != MESH_OK) {
        char text[300];
        snprintf(text, sizeof(text), "cannot start a TLS connection to %s: %s", host,
                 err == MESH_E_NOMEM ? "out of memory" : "not a usable server name");
        *why = strdup(text);
        goto out;
    }
    *out = s;
    s = NULL; /* the caller's now */
out:
    ops_close(s);
    free(dflt);
    return err;
}

static enum mesh_tls_status ops_handshake(void *session)
{
    struct session *s = session;
    return mesh_tls_handshake(s->conn);
}

static enum mesh_tls_status ops_read(void *session, void *buf, size_t len, size_t *got)
{
    struct session *s = session;
    return mesh_tls_read(s->conn, buf, len, got);
}

static enum mesh_tls_status ops_writev(void *session, const struct iovec *iov, int n,
                                       size_t *written)
{
    struct session *s = session;
    return mesh_tls_writev(s->conn, iov, n, written);
}

/* The TLS layer's words and what to do about them. */
static const char *ops_error(void *session)
{
    struct session *s = session;
    const char *text = mesh_tls_conn_error(s->conn);
    const char *hint = "";
    char extra[400] = "";

    if (strstr(text, "(unknown CA)") && strncmp(text, "certificate verify failed", 25) == 0) {
        if (s->custom_ca)
            snprintf(extra, sizeof(extra),
                     ": %s does not hold the CA that signed the server's certificate", s->ca_file);
        else
            hint = ": pass --cacert FILE (or set $MESH_CACERT) naming the CA bundle that signed "
                   "the server's certificate";
    } else if (strstr(text, "(wrong host)")) {
        hint = ": use a host name or address the certificate names (openssl x509 -noout -ext "
               "subjectAltName -in CERT shows them)";
    }
    snprintf(s->err, sizeof(s->err), "%s%s%s", text[0] ? text : "the connection failed", hint,
             extra);
    return s->err;
}

const struct mesh_http_tls_ops mesh_http_tls_openssl = {
    .start = ops_start,
    .handshake = ops_handshake,
    .read = ops_read,
    .writev = ops_writev,
    .error = ops_error,
    .close = ops_close,
};
