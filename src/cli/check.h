/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl check`'s checklist: one line per check, and the checks of the live mesh's TLS that
 * live in their own file (check_tls.c). */
#ifndef MESH_CLI_CHECK_H
#define MESH_CLI_CHECK_H

#include <stddef.h>

#include "proxies.h"

enum verdict {
    CHECK_OK,
    CHECK_WARN,
    CHECK_FAIL,
};

struct checklist {
    unsigned failed, warned, passed;
};

/* Prints "[ok]  ", "[warn]" or "[FAIL]", then the line; counts it. */
void check_report(struct checklist *cl, enum verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Workload certificates and mTLS handshakes, from every proxy's admin /stats: a proxy without a
 * certificate or with an expired one fails; handshake failures since the proxy started are
 * warnings, one per (proxy, direction, cause), each with its cause and fix in words. */
void check_tls(struct checklist *cl, const struct cli_proxy *proxies, size_t n);

#endif
