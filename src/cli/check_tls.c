/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl check`'s TLS checks: every proxy's workload certificate, and the mTLS handshakes that
 * failed, read from each proxy's admin /stats (docs/metrics.md), with the seed's "TLS handshake
 * failed" cause and solution for each kind of failure. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

#define ADMIN_TIMEOUT_MS 2000

/* What each cause of mesh_mtls_handshakes_total means, seen from the proxy that counted it. */
struct tls_cause {
    const char *result;
    const char *cause_inbound, *cause_outbound;
    const char *solution;
};

static const struct tls_cause causes[] = {
    {"expired", "a client presented an expired certificate",
     "the server presented an expired certificate",
     "the peer's proxy is not renewing: meshctl proxy-config PEER secret shows its certificate, "
     "meshctl proxy-status whether it reaches meshd, its log why renewals fail"},
    {"unknown_ca", "a client's certificate is not signed by a root of this proxy's trust bundle",
     "the server's certificate is not signed by a root of this proxy's trust bundle",
     "the peer belongs to another mesh or CA, or one side kept an old trust bundle: compare "
     "meshctl ca status (GET /v1/ca) with meshctl proxy-config PROXY secret on both sides"},
    {"wrong_identity", "a client is not the identity it claims",
     "the server at the destination's address is not the destination service",
     "an address registered for one service is served by another: meshctl proxy-config PROXY "
     "endpoints, and the --inbound and --service flags of the sidecars on that address"},
    {"plaintext", "a client sent plaintext to a strict mTLS port",
     "the destination does not speak TLS though it is registered as a sidecar",
     "call through the sidecar's outbound listener (not the inbound port directly), or set "
     "mtls.mode: permissive for the service while its clients move into the mesh"},
    {"no_certificate", "a TLS client without a certificate called an mTLS port",
     "the server asked for a client certificate this proxy did not have",
     "only sidecars and gateways may call an inbound port: send external clients through a "
     "gateway"},
    {"other", "another handshake failure", "another handshake failure",
     "the proxy's log says more: msg=\"TLS handshake failed\" with the peer and the error"},
};

static const struct tls_cause *cause_of(const char *result)
{
    size_t n = sizeof(causes) / sizeof(causes[0]);
    for (size_t i = 0; i < n - 1; i++)
        if (strcmp(causes[i].result, result) == 0)
            return &causes[i];
    return &causes[n - 1];
}

/* The proxy's /stats, or NULL after noting why in *unreachable. */
static json_t *proxy_stats(const struct cli_proxy *p, struct mesh_strbuf *unreachable)
{
    if (!p->admin || !*p->admin)
        return NULL;
    char *url = xasprintf("http://%s/stats", p->admin);
    json_t *stats = NULL;
    char *why = NULL;
    if (cli_http_get_json(url, "the proxy's admin listener", NULL, ADMIN_TIMEOUT_MS, &stats,
                          &why) != MESH_OK)
        mesh_strbuf_printf(unreachable, "%s%s (%s)", unreachable->len ? ", " : "", p->id,
                           why ? why : "no answer");
    free(why);
    free(url);
    return stats;
}

/* Certificates: none yet or expired fails; the earliest expiry otherwise. */
static void check_certificates(struct checklist *cl, const struct cli_proxy *proxies,
                               json_t *const *stats, size_t n)
{
    struct mesh_strbuf bad;
    mesh_strbuf_init(&bad, 0);
    time_t now = time(NULL), earliest = 0;
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        if (!stats[i])
            continue;
        json_t *exp = json_object_get(stats[i], "certificate_expiry_timestamp_seconds");
        time_t not_after = json_is_number(exp) ? (time_t)json_number_value(exp) : 0;
        if (not_after == 0)
            mesh_strbuf_printf(&bad, "%s%s has none yet", bad.len ? "; " : "", proxies[i].id);
        else if (not_after <= now)
            mesh_strbuf_printf(&bad, "%s%s's expired %lld s ago", bad.len ? "; " : "",
                               proxies[i].id, (long long)(now - not_after));
        else {
            have++;
            if (!earliest || not_after < earliest)
                earliest = not_after;
        }
    }
    if (bad.len)
        check_report(cl, CHECK_FAIL,
                     "workload certificates: %s (its renewals are failing: meshctl proxy-config "
                     "PROXY secret, meshctl proxy-status, and the proxy's log say why)",
                     bad.data);
    else if (have)
        check_report(cl, CHECK_OK,
                     "workload certificates: %zu prox%s with a valid one (the first to expire in "
                     "%lld min; proxies renew at half-life)",
                     have, have == 1 ? "y" : "ies", (long long)(earliest - now) / 60);
    mesh_strbuf_free(&bad);
}

/* One warning per (proxy, direction, cause) with a count; true when there was any. */
static bool report_failures(struct checklist *cl, const struct cli_proxy *p, json_t *stats,
                            unsigned long long *ok)
{
    bool any = false;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(stats, "mtls_handshakes"), i, row)
    {
        const char *dir = json_string_value(json_object_get(row, "direction"));
        const char *result = json_string_value(json_object_get(row, "result"));
        json_t *v = json_object_get(row, "value");
        unsigned long long count = json_is_number(v) ? (unsigned long long)json_number_value(v) : 0;
        if (!dir || !result || count == 0)
            continue;
        if (strcmp(result, "success") == 0) {
            *ok += count;
            continue;
        }
        const struct tls_cause *c = cause_of(result);
        bool inbound = strcmp(dir, "inbound") == 0;
        check_report(cl, CHECK_WARN,
                     "TLS handshake failed: %s, %s, %llu time%s since it started: %s\n"
                     "       Cause: %s\n"
                     "       Solution: %s",
                     p->id, dir, count, count == 1 ? "" : "s", result,
                     inbound ? c->cause_inbound : c->cause_outbound, c->solution);
        any = true;
    }
    return any;
}

void check_tls(struct checklist *cl, const struct cli_proxy *proxies, size_t n)
{
    if (n == 0)
        return;
    json_t **stats = xcalloc(n, sizeof(*stats));
    struct mesh_strbuf unreachable;
    mesh_strbuf_init(&unreachable, 0);
    for (size_t i = 0; i < n; i++)
        stats[i] = proxy_stats(&proxies[i], &unreachable);
    if (unreachable.len)
        check_report(cl, CHECK_WARN, "proxies' admin listeners: cannot read %s", unreachable.data);
    check_certificates(cl, proxies, stats, n);
    bool failures = false;
    unsigned long long ok = 0;
    for (size_t i = 0; i < n; i++)
        if (stats[i] && report_failures(cl, &proxies[i], stats[i], &ok))
            failures = true;
    if (!failures)
        check_report(cl, CHECK_OK, "mTLS handshakes: none failed (%llu succeeded)", ok);
    for (size_t i = 0; i < n; i++)
        json_decref(stats[i]);
    free(stats);
    mesh_strbuf_free(&unreachable);
}
