/* SPDX-License-Identifier: Apache-2.0 */
/* Grafana's HTTP API, the one call the mesh needs: create or replace a dashboard. */
#include "grafana.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "net/curl_body.h"

#define MAX_ANSWER (1u << 20) /* Grafana answers a push with a few hundred bytes */

/* Where the authority of an http(s) URL starts (just past "://"); NULL for another scheme. */
static const char *authority(const char *url)
{
    if (strncasecmp(url, "http://", 7) == 0)
        return url + 7;
    if (strncasecmp(url, "https://", 8) == 0)
        return url + 8;
    return NULL;
}

char *mesh_grafana_redact(const char *base_url)
{
    const char *auth = authority(base_url);
    if (!auth)
        return xstrdup(base_url);
    size_t host_len = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', host_len);
    if (!at)
        return xstrdup(base_url);
    /* A '@' may appear in the password itself: the host starts after the last one. */
    while (memchr(at + 1, '@', host_len - (size_t)(at + 1 - auth)))
        at = memchr(at + 1, '@', host_len - (size_t)(at + 1 - auth));
    return xasprintf("%.*s%s", (int)(auth - base_url), base_url, at + 1);
}

static bool has_userinfo(const char *url)
{
    const char *auth = authority(url);
    return auth && memchr(auth, '@', strcspn(auth, "/?#")) != NULL;
}

/* scheme://host[:port] of a redacted URL, for the absolute address of a pushed dashboard. */
static char *origin(const char *redacted)
{
    const char *auth = authority(redacted);
    size_t len = (size_t)(auth - redacted) + strcspn(auth, "/?#");
    return xstrndup(redacted, len);
}

static enum mesh_err transport_error(CURLcode rc, const char *errbuf, const char *where,
                                     char **errmsg)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        *errmsg = xasprintf("Grafana at %s: TLS failed: %s (its certificate must chain to the "
                            "system trust store)",
                            where, detail);
        return MESH_E_TLS;
    case CURLE_OPERATION_TIMEDOUT:
        *errmsg =
            xasprintf("Grafana at %s did not answer within %d ms", where, MESH_GRAFANA_TIMEOUT_MS);
        return MESH_E_UNAVAILABLE;
    default:
        *errmsg = xasprintf("cannot reach Grafana at %s: %s", where, detail);
        return MESH_E_UNAVAILABLE;
    }
}

/* Grafana's reason from an error answer ({"message": ...}), else the body's start. */
static char *answer_message(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *msg = json_string_value(json_object_get(doc, "message"));
    char *out = msg ? xstrdup(msg) : xasprintf("%.*s", len > 200 ? 200 : (int)len, body);
    json_decref(doc);
    return out;
}

/* What an answer status means: MESH_OK for 2xx; else *errmsg. */
static enum mesh_err status_error(long status, const char *body, size_t len, const char *where,
                                  const char *uid, char **errmsg)
{
    if (status >= 200 && status < 300)
        return MESH_OK;
    char *why = answer_message(body, len);
    enum mesh_err err = status >= 500 ? MESH_E_UNAVAILABLE : MESH_E_INVALID;
    if (status == 401 || status == 403)
        *errmsg = xasprintf("Grafana at %s refused the credentials (%ld: %s): set $%s to a "
                            "service account token with the Editor role, or $%s and $%s",
                            where, status, why, MESH_GRAFANA_TOKEN_ENV, MESH_GRAFANA_USER_ENV,
                            MESH_GRAFANA_PASSWORD_ENV);
    else
        *errmsg =
            xasprintf("Grafana at %s refused dashboard %s (%ld): %s", where, uid, status, why);
    free(why);
    return err;
}

enum mesh_err mesh_grafana_push(const char *base_url, const char *token, const json_t *dashboard,
                                char **url, char **errmsg)
{
    struct mesh_curl_body sink = {0};
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *where = NULL, *endpoint = NULL, *auth = NULL, *body = NULL;
    json_t *req = NULL, *answer = NULL;
    enum mesh_err err = MESH_OK;
    CURL *h = NULL;
    CURLcode rc;
    long status = 0;

    *url = NULL;
    *errmsg = NULL;
    mesh_curl_body_init(&sink, MAX_ANSWER);
    if (!base_url || !authority(base_url) || !*authority(base_url)) {
        *errmsg = xasprintf("grafana endpoint \"%s\": must be an http:// or https:// URL",
                            base_url ? base_url : "");
        return MESH_E_INVALID;
    }
    const char *uid = json_string_value(json_object_get(dashboard, "uid"));
    where = mesh_grafana_redact(base_url);
    CURLcode init_rc = mesh_curl_global_init();
    if (init_rc != CURLE_OK || !(h = curl_easy_init())) {
        *errmsg = xasprintf("libcurl cannot start: %s", curl_easy_strerror(init_rc));
        err = MESH_E_INTERNAL;
        goto out;
    }
    size_t base_len = strlen(base_url);
    while (base_len > 0 && base_url[base_len - 1] == '/')
        base_len--;
    endpoint = xasprintf("%.*s/api/dashboards/db", (int)base_len, base_url);
    /* json_pack's "O" takes a new reference: the caller keeps its dashboard. */
    req = json_pack("{s:O,s:b}", "dashboard", dashboard, "overwrite", 1);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!body) {
        *errmsg = xstrdup("out of memory");
        err = MESH_E_NOMEM;
        goto out;
    }
    if (!token || !*token)
        token = getenv(MESH_GRAFANA_TOKEN_ENV);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    /* A header libcurl would make itself (basic auth from the URL) is replaced by ours. */
    if (token && *token) {
        auth = xasprintf("Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    rc = headers ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    /* Basic auth from the environment only when neither a token nor the URL says otherwise:
     * a stored grafana_endpoint never holds a password (resources are no place for one). */
    const char *user = getenv(MESH_GRAFANA_USER_ENV);
    if (rc == CURLE_OK && !auth && !has_userinfo(base_url) && user && *user) {
        const char *password = getenv(MESH_GRAFANA_PASSWORD_ENV);
        rc = curl_easy_setopt(h, CURLOPT_USERNAME, user);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "");
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_URL, endpoint);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)MESH_GRAFANA_TIMEOUT_MS);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_USERAGENT, "clusterdb-mesh");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mesh_curl_body_write);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (rc == CURLE_WRITE_ERROR && sink.too_big) {
        *errmsg =
            xasprintf("Grafana at %s: its answer is larger than %u KiB", where, MAX_ANSWER >> 10);
        err = MESH_E_IO;
        goto out;
    }
    if (rc != CURLE_OK) {
        err = transport_error(rc, errbuf, where, errmsg);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    err = status_error(status, sink.sb.data ? sink.sb.data : "", sink.sb.len, where,
                       uid ? uid : "(no uid)", errmsg);
    if (err != MESH_OK)
        goto out;
    answer = json_loadb(sink.sb.data ? sink.sb.data : "", sink.sb.len, 0, NULL);
    const char *path = json_string_value(json_object_get(answer, "url"));
    if (path && path[0] == '/') {
        char *o = origin(where);
        *url = xasprintf("%s%s", o, path);
        free(o);
    } else if (path) {
        *url = xstrdup(path);
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    if (auth)
        memset(auth, 0, strlen(auth));
    free(auth);
    free(body);
    free(endpoint);
    free(where);
    json_decref(req);
    json_decref(answer);
    mesh_strbuf_free(&sink.sb);
    return err;
}
