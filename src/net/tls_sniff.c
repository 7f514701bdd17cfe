/* SPDX-License-Identifier: Apache-2.0 */
/* Telling a TLS ClientHello from a plaintext HTTP request by its first bytes, and the names of
 * handshake failure causes (tls.h): pure logic, in a file of its own so that meshproxy's
 * permissive inbound port uses it without linking OpenSSL. */
#include "net/tls.h"

enum mesh_tls_sniff mesh_tls_sniff(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len == 0)
        return MESH_TLS_SNIFF_NEED_MORE;
    if (p[0] == 0x16) {
        /* A handshake record (22), version 3.x (TLS 1.0-1.3 all say 3.1 to 3.4 here), a
         * two-byte length, then handshake type 1: ClientHello. */
        if (len >= 2 && p[1] != 0x03)
            return MESH_TLS_SNIFF_OTHER;
        if (len >= 3 && p[2] > 0x04)
            return MESH_TLS_SNIFF_OTHER;
        if (len >= 6 && p[5] != 0x01)
            return MESH_TLS_SNIFF_OTHER;
        return len >= 6 ? MESH_TLS_SNIFF_TLS : MESH_TLS_SNIFF_NEED_MORE;
    }
    /* A request line starts with a method token (upper-case in practice) and a space. */
    size_t n = len < MESH_TLS_SNIFF_BYTES ? len : MESH_TLS_SNIFF_BYTES;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ')
            return i > 0 ? MESH_TLS_SNIFF_HTTP : MESH_TLS_SNIFF_OTHER;
        if (!(p[i] >= 'A' && p[i] <= 'Z') && p[i] != '-' && p[i] != '_')
            return MESH_TLS_SNIFF_OTHER;
    }
    return len >= MESH_TLS_SNIFF_BYTES ? MESH_TLS_SNIFF_OTHER : MESH_TLS_SNIFF_NEED_MORE;
}

const char *mesh_tls_failure_str(enum mesh_tls_failure f)
{
    switch (f) {
    case MESH_TLS_FAIL_NONE:
        return "none";
    case MESH_TLS_FAIL_EXPIRED:
        return "expired";
    case MESH_TLS_FAIL_UNKNOWN_CA:
        return "unknown_ca";
    case MESH_TLS_FAIL_WRONG_IDENTITY:
        return "wrong_identity";
    case MESH_TLS_FAIL_PLAINTEXT:
        return "plaintext";
    case MESH_TLS_FAIL_NO_CERTIFICATE:
        return "no_certificate";
    case MESH_TLS_FAIL_OTHER:
        break;
    }
    return "other";
}
