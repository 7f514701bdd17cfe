/* SPDX-License-Identifier: Apache-2.0 */
/* The checks on a string's text (names, hosts, methods, URLs, addresses, identities), each with
 * a message that says what a valid value looks like. */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define LABEL_MAX     63
#define SUBDOMAIN_MAX 253

static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_label_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* An RFC 1123 label of n bytes at s. */
static bool label_ok(const char *s, size_t n)
{
    if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_label_char((unsigned char)s[i]))
            return false;
    return true;
}

static bool subdomain_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > SUBDOMAIN_MAX)
        return false;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool check_label(const char *t, char *why, size_t len)
{
    if (label_ok(t, strlen(t)))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid name: use at most 63 lower-case letters, digits and '-', "
                "starting and ending with a letter or digit (RFC 1123)",
                t);
}

/* Istio's spelling: a gateway in the VirtualService's namespace by NAME, in another one as
 * NAMESPACE/NAME; "mesh" (a plain label) names the sidecars. */
static bool check_gateway_ref(const char *t, char *why, size_t len)
{
    const char *slash = strchr(t, '/');
    if (slash ? label_ok(t, (size_t)(slash - t)) && label_ok(slash + 1, strlen(slash + 1))
              : label_ok(t, strlen(t)))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid gateway: use NAME or NAMESPACE/NAME, each an RFC 1123 "
                "label (lower-case letters, digits and '-')",
                t);
}

static bool check_host(const char *t, char *why, size_t len)
{
    const char *rest = strncmp(t, "*.", 2) == 0 ? t + 2 : t;
    if (strcmp(t, "*") == 0 || subdomain_ok(rest))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid host: use a DNS name like payment.example.com, "
                "optionally starting with \"*.\"",
                t);
}

static bool check_service_host(const char *t, char *why, size_t len)
{
    if (subdomain_ok(t))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid service host: use name, name.namespace or "
                "name.namespace.svc",
                t);
}

static const char *const http_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static bool check_method(const char *t, char *why, size_t len)
{
    size_t n = sizeof(http_methods) / sizeof(http_methods[0]);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t, http_methods[i]) == 0)
            return true;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(t, http_methods[i]) == 0) {
            snprintf(why, len, "unknown HTTP method \"%s\" (did you mean \"%s\"?)", t,
                     http_methods[i]);
            return false;
        }
    }
    return fail(why, len,
                "unknown HTTP method \"%s\", must be one of GET, HEAD, POST, PUT, DELETE, "
                "CONNECT, OPTIONS, TRACE, PATCH",
                t);
}

static bool port_ok(const char *p)
{
    if (!*p || strlen(p) > 5)
        return false;
    for (const char *c = p; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* host[:port], where host is a DNS name, an IPv4 address or a bracketed IPv6 address. */
static bool hostport_ok(const char *t, bool need_port)
{
    char host[SUBDOMAIN_MAX + 1];
    const char *port = NULL;
    if (t[0] == '[') {
        const char *end = strchr(t, ']');
        if (!end || end == t + 1 || (size_t)(end - t) > 46)
            return false;
        for (const char *c = t + 1; c < end; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                return false;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return false;
    } else {
        const char *colon = strrchr(t, ':');
        size_t n = colon ? (size_t)(colon - t) : strlen(t);
        if (n == 0 || n > SUBDOMAIN_MAX)
            return false;
        memcpy(host, t, n);
        host[n] = '\0';
        for (char *c = host; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (!subdomain_ok(host))
            return false;
        port = colon ? colon + 1 : NULL;
    }
    if (!port)
        return !need_port;
    return port_ok(port);
}

static bool check_address(const char *t, char *why, size_t len)
{
    if (hostport_ok(t, true))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid address: use host:port, like 127.0.0.1:8080 or "
                "[::1]:8080",
                t);
}

static bool check_url(const char *t, char *why, size_t len)
{
    const char *rest = NULL;
    if (strncmp(t, "http://", 7) == 0)
        rest = t + 7;
    else if (strncmp(t, "https://", 8) == 0)
        rest = t + 8;
    if (rest) {
        char hp[SUBDOMAIN_MAX + 16];
        size_t n = strcspn(rest, "/?#");
        if (n > 0 && n < sizeof(hp)) {
            memcpy(hp, rest, n);
            hp[n] = '\0';
            if (hostport_ok(hp, false))
                return true;
        }
    }
    return fail(why, len, "\"%s\" is not a valid URL: use http://host:port or https://host:port",
                t);
}

static bool check_authz_path(const char *t, char *why, size_t len)
{
    const char *star = strchr(t, '*');
    if (strcmp(t, "*") == 0 || (t[0] == '/' && (!star || star[1] == '\0')))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid path: use an exact path (/api/v1/process), a prefix "
                "ending in '*' (/api/*), or \"*\"",
                t);
}

static bool spiffe_ok(const char *t)
{
    /* spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> */
    const char *td = t + strlen("spiffe://");
    const char *slash = strchr(td, '/');
    if (!slash || slash == td)
        return false;
    char ns[LABEL_MAX + 2], sa[LABEL_MAX + 2];
    int end = 0;
    if (sscanf(slash, "/ns/%64[^/]/sa/%64[^/]%n", ns, sa, &end) != 2 || slash[end] != '\0')
        return false;
    return label_ok(ns, strlen(ns)) && label_ok(sa, strlen(sa));
}

static bool check_identity(const char *t, char *why, size_t len)
{
    if (strcmp(t, "*") == 0)
        return true;
    if (strncmp(t, "spiffe://", 9) == 0 ? spiffe_ok(t) : subdomain_ok(t) && strchr(t, '.'))
        return true;
    return fail(why, len,
                "\"%s\" is not a valid identity: use service.namespace, "
                "service.namespace.svc, spiffe://trust-domain/ns/NAMESPACE/sa/SERVICE, or \"*\"",
                t);
}

static bool check_in_set(const char *t, const char *const *set, size_t n, const char *what,
                         char *why, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t, set[i]) == 0)
            return true;
    char list[200] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", set[i]);
    const char *hint = mesh_did_you_mean(t, set, n);
    if (hint)
        snprintf(why, len, "unknown %s \"%s\" (did you mean \"%s\"?), must be one of %s", what, t,
                 hint, list);
    else
        snprintf(why, len, "unknown %s \"%s\", must be one of %s", what, t, list);
    return false;
}

static const char *const retry_conditions[] = {"5xx", "gateway-error", "reset", "connect-failure"};
static const char *const protocols[] = {"http", "http2", "grpc", "tcp"};
static const char *const lb_policies[] = {"least_request", "round_robin", "random"};

static bool check_quantity(const char *t, char *why, size_t len)
{
    regex_t re;
    if (regcomp(&re, "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$", REG_EXTENDED | REG_NOSUB))
        return fail(why, len, "cannot check quantity \"%s\"", t);
    bool ok = regexec(&re, t, 0, NULL, 0) == 0;
    regfree(&re);
    if (ok)
        return true;
    return fail(why, len,
                "\"%s\" is not a valid quantity: use a number with an optional unit, like 100m, "
                "0.5, 128Mi or 1Gi",
                t);
}

static bool check_header_name(const char *t, char *why, size_t len)
{
    static const char token_extra[] = "!#$%&'*+-.^_`|~";
    bool ok = *t != '\0';
    for (const char *c = t; *c && ok; c++)
        ok = isalnum((unsigned char)*c) || strchr(token_extra, *c);
    if (ok)
        return true;
    return fail(why, len, "\"%s\" is not a valid header name", t);
}

bool mesh_text_ok(enum mesh_text_check check, const char *t, char *why, size_t len)
{
    switch (check) {
    case MESH_CHECK_NONE:
        return true;
    case MESH_CHECK_DNS_LABEL:
        return check_label(t, why, len);
    case MESH_CHECK_HOST:
        return check_host(t, why, len);
    case MESH_CHECK_SERVICE_HOST:
        return check_service_host(t, why, len);
    case MESH_CHECK_METHOD:
        return check_method(t, why, len);
    case MESH_CHECK_URL:
        return check_url(t, why, len);
    case MESH_CHECK_ADDRESS:
        return check_address(t, why, len);
    case MESH_CHECK_AUTHZ_PATH:
        return check_authz_path(t, why, len);
    case MESH_CHECK_IDENTITY:
        return check_identity(t, why, len);
    case MESH_CHECK_RETRY_ON:
        return check_in_set(t, retry_conditions, 4, "retry condition", why, len);
    case MESH_CHECK_QUANTITY:
        return check_quantity(t, why, len);
    case MESH_CHECK_PROTOCOL:
        return check_in_set(t, protocols, 4, "protocol", why, len);
    case MESH_CHECK_HEADER_NAME:
        return check_header_name(t, why, len);
    case MESH_CHECK_LB_POLICY:
        return check_in_set(t, lb_policies, 3, "load balancer", why, len);
    case MESH_CHECK_GATEWAY_REF:
        return check_gateway_ref(t, why, len);
    }
    return true;
}

/* Levenshtein distance, bounded to short words (field names, kinds, enum values). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *mesh_did_you_mean(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t limit = strlen(word) / 3 > 2 ? strlen(word) / 3 : 2;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

bool mesh_regex_ok(const char *re, char *why, size_t len)
{
    regex_t compiled;
    int rc = regcomp(&compiled, re, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&compiled);
        return true;
    }
    char err[160];
    regerror(rc, &compiled, err, sizeof(err));
    snprintf(why, len, "regex \"%s\" does not compile: %s", re, err);
    return false;
}
