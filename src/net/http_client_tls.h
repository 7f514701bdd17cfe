/* SPDX-License-Identifier: Apache-2.0 */
/* https:// for the HTTP client (http_client.h), on net/tls.h and so on OpenSSL: the ops that
 * meshctl and libmesh's meshd client install. Kept apart from http_client.c so that a program
 * that never installs them (meshproxy) links no TLS library. */
#ifndef MESH_NET_HTTP_CLIENT_TLS_H
#define MESH_NET_HTTP_CLIENT_TLS_H

#include "net/http_client.h"

/* The ops: TLS 1.2 or later, ALPN http/1.1, the server's certificate verified against the
 * request's CA bundle (else the default below, else the system trust store) and the URL's host,
 * sessions resumed per CA bundle and server. One OpenSSL context per CA bundle, made at its
 * first use and kept for the life of the process (shared by every thread). */
extern const struct mesh_http_tls_ops mesh_http_tls_openssl;

/* mesh_http_client_set_tls(&mesh_http_tls_openssl), once; any thread, any number of times.
 * Inline, so that this file's object (compiled into meshproxy's TLS plugin too) needs nothing
 * of http_client.c. */
static inline void mesh_http_client_tls_install(void)
{
    mesh_http_client_set_tls(&mesh_http_tls_openssl);
}

/* The CA bundle of requests that name none (meshctl --cacert for every call it makes); NULL =
 * the system trust store. Copied. */
void mesh_http_client_tls_set_default_ca(const char *ca_file);

#endif
