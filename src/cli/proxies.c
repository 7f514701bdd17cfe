/* SPDX-License-Identifier: Apache-2.0 */
/* JSON over HTTP for meshctl's debugging commands, and meshd's list of registered proxies. */
#include "proxies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"
#include "net/http_client.h"

/* Debugging commands ask small questions: an answer that takes longer means trouble. */
#define DEBUG_TIMEOUT_MS 10000

char *cli_meshd_url(const struct cli_ctx *ctx)
{
    const char *server = cli_server(ctx);
    if (!server)
        server = CLI_DEFAULT_SERVER;
    size_t len = strlen(server);
    while (len > 0 && server[len - 1] == '/')
        len--;
    /* As cli_meshd_request reads it: a bare host:port means http. */
    return strstr(server, "://") ? xasprintf("%.*s", (int)len, server)
                                 : xasprintf("http://%.*s", (int)len, server);
}

enum mesh_err cli_http_get_json(const char *url, const char *peer, const char *token,
                                long timeout_ms, json_t **out, char **errmsg)
{
    struct mesh_http_request req = {
        .method = "GET",
        .url = url,
        .peer_name = peer,
        .token = token,
        .connect_timeout_ms = 3000,
        .timeout_ms = timeout_ms ? timeout_ms : DEBUG_TIMEOUT_MS,
    };
    struct mesh_http_response resp = {0};
    json_error_t jerr;
    char *why = NULL;

    *out = NULL;
    *errmsg = NULL;
    enum mesh_err err = mesh_http_do(&req, &resp, &why);
    if (err != MESH_OK) {
        *errmsg = why ? why : xasprintf("GET %s: %s", url, mesh_strerror(err));
        return err;
    }
    err = mesh_http_status_err(resp.status);
    if (err != MESH_OK || resp.status >= 300) {
        char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        *errmsg =
            xasprintf("%s answered GET %s with %ld: %s", peer, url, resp.status, msg ? msg : "");
        free(msg);
        if (err == MESH_OK)
            err = MESH_E_INTERNAL;
        goto out;
    }
    *out = json_loadb(resp.body, resp.body_len, 0, &jerr);
    if (!*out) {
        *errmsg = xasprintf("%s answered GET %s with something that is not JSON: %s", peer, url,
                            jerr.text);
        err = MESH_E_INVALID;
    }
out:
    mesh_http_response_clear(&resp);
    return err;
}

enum mesh_err cli_meshd_get_json(const struct cli_ctx *ctx, const char *path, json_t **out,
                                 char **errmsg)
{
    char *token = NULL;
    *out = NULL;
    *errmsg = NULL;
    if (!cli_token(ctx, &token)) {
        *errmsg = xstrdup("no usable token (see above)");
        return MESH_E_IO;
    }
    char *base = cli_meshd_url(ctx);
    char *url = xasprintf("%s%s", base, path);
    enum mesh_err err = cli_http_get_json(url, "meshd", token, 0, out, errmsg);
    free(url);
    free(base);
    free(token);
    return err;
}

static char *dup_string(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? xstrdup(s) : NULL;
}

static uint64_t get_ms(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0)
        return (uint64_t)json_real_value(v);
    return 0;
}

bool cli_proxy_from_json(const json_t *obj, struct cli_proxy *p, char **errmsg)
{
    memset(p, 0, sizeof(*p));
    *errmsg = NULL;
    if (!json_is_object(obj)) {
        *errmsg = xstrdup("a proxy status that is not a JSON object");
        return false;
    }
    p->id = dup_string(obj, "id");
    if (!p->id) {
        *errmsg = xstrdup("a proxy status without an id");
        return false;
    }
    const char *role = json_string_value(json_object_get(obj, "role"));
    if (role && strcmp(role, "gateway") == 0) {
        p->role = MESH_PROXY_GATEWAY;
    } else if (role && strcmp(role, "sidecar") == 0) {
        p->role = MESH_PROXY_SIDECAR;
    } else {
        *errmsg = xasprintf("proxy %s: unknown role \"%s\"", p->id, role ? role : "");
        return false;
    }
    p->service = dup_string(obj, "service");
    p->ns = dup_string(obj, "namespace");
    p->gateway = dup_string(obj, "gateway");
    p->address = dup_string(obj, "address");
    p->admin = dup_string(obj, "admin");
    p->acked = dup_string(obj, "acked_version");
    if (!p->acked)
        p->acked = xstrdup("");
    p->latest = dup_string(obj, "latest_version");
    p->synced = json_is_true(json_object_get(obj, "synced"));
    p->registered_ms = get_ms(obj, "registered_ms");
    p->last_heartbeat_ms = get_ms(obj, "last_heartbeat_ms");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)json_object_get(obj, "labels"), key, value)
    {
        if (json_is_string(value))
            mesh_labels_set(&p->labels, key, json_string_value(value));
    }
    return true;
}

void cli_proxy_clear(struct cli_proxy *p)
{
    free(p->id);
    free(p->service);
    free(p->ns);
    free(p->gateway);
    free(p->address);
    free(p->admin);
    free(p->acked);
    free(p->latest);
    mesh_labels_clear(&p->labels);
    memset(p, 0, sizeof(*p));
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct cli_proxy *)a)->id, ((const struct cli_proxy *)b)->id);
}

enum mesh_err cli_proxies_fetch(const struct cli_ctx *ctx, struct cli_proxy **out, size_t *n,
                                char **errmsg)
{
    json_t *root = NULL;
    struct cli_proxy *list = NULL;
    size_t count = 0;
    enum mesh_err err = cli_meshd_get_json(ctx, "/v1/proxies", &root, errmsg);

    *out = NULL;
    *n = 0;
    if (err != MESH_OK)
        return err;
    const json_t *items = json_object_get(root, "items");
    if (!json_is_array(items)) {
        *errmsg = xstrdup("meshd's GET /v1/proxies answer has no \"items\" list");
        err = MESH_E_INVALID;
        goto out;
    }
    list = xcalloc(json_array_size(items) + 1, sizeof(*list));
    for (size_t i = 0; i < json_array_size(items); i++) {
        if (!cli_proxy_from_json(json_array_get(items, i), &list[count], errmsg)) {
            char *why = *errmsg;
            *errmsg = xasprintf("meshd's GET /v1/proxies answer: %s", why);
            free(why);
            cli_proxy_clear(&list[count]);
            err = MESH_E_INVALID;
            goto out;
        }
        count++;
    }
    qsort(list, count, sizeof(*list), by_id);
    *out = list;
    *n = count;
    list = NULL;
    count = 0;
out:
    cli_proxies_free(list, count);
    json_decref(root);
    return err;
}

int cli_proxies_fetch_or_explain(const struct cli_ctx *ctx, const char *command, const char *verb,
                                 struct cli_proxy **out, size_t *n)
{
    char *why = NULL;
    enum mesh_err err = cli_proxies_fetch(ctx, out, n, &why);
    if (err == MESH_OK)
        return CLI_EXIT_OK;
    int rc = cli_error("%s", why);
    free(why);
    /* meshd down is the usual cause: say how to point at it, or how to do without it. */
    if (err == MESH_E_UNAVAILABLE)
        fprintf(stderr,
                "%s needs meshd to find the proxies: start it or point --server or $MESH_SERVER "
                "at it (or %s one proxy with --admin ADDR)\n",
                command, verb);
    return rc;
}

void cli_proxies_free(struct cli_proxy *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        cli_proxy_clear(&p[i]);
    free(p);
}

void cli_format_age(int64_t age_ms, char *buf, size_t size)
{
    int64_t s = age_ms > 0 ? age_ms / 1000 : 0;
    if (s < 120)
        snprintf(buf, size, "%llds ago", (long long)s);
    else if (s < 2 * 3600)
        snprintf(buf, size, "%lldm ago", (long long)(s / 60));
    else if (s < 2 * 86400)
        snprintf(buf, size, "%lldh ago", (long long)(s / 3600));
    else
        snprintf(buf, size, "%lldd ago", (long long)(s / 86400));
}

uint64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
