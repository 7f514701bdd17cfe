/* SPDX-License-Identifier: Apache-2.0 */
/* What meshctl's debugging commands (proxy-status, proxy-config, check, explain) read from meshd
 * and from a proxy's admin listener: JSON over HTTP, and meshd's list of registered proxies. */
#ifndef MESH_CLI_PROXIES_H
#define MESH_CLI_PROXIES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "control/registry.h"
#include "mesh/mesh.h"

/* One proxy as GET /v1/proxies shows it (docs/api.md, "Proxy status"). Strings are owned; a
 * field meshd left out or null is NULL ("" for acked, which is "" until the first ack). */
struct cli_proxy {
    char *id;
    enum mesh_proxy_role role;
    char *service, *ns, *gateway, *address, *admin;
    struct mesh_labels labels;
    char *acked, *latest;
    bool synced;
    uint64_t registered_ms, last_heartbeat_ms;
};

/* meshd's base URL as the flags and environment select it (cli_server), or CLI_DEFAULT_SERVER;
 * without a trailing '/'. Caller frees. */
char *cli_meshd_url(const struct cli_ctx *ctx);

/* GET url (any HTTP server: meshd, a proxy's admin listener) and parse its JSON body. peer names
 * the server in messages ("meshd", "the proxy's admin listener"); token may be NULL. On MESH_OK
 * *out is the body (json_decref it). Otherwise *errmsg (caller frees) says why in words that
 * name the URL: MESH_E_UNAVAILABLE cannot connect or timed out; the status's error for an
 * answer other than 2xx (with meshd's error message); MESH_E_INVALID a body that is not JSON.
 * Prints nothing. */
enum mesh_err cli_http_get_json(const char *url, const char *peer, const char *token,
                                long timeout_ms, json_t **out, char **errmsg);

/* cli_http_get_json on meshd's path ("/v1/proxies"), with the token of cli_token (which prints
 * why when a token file cannot be read: MESH_E_IO then). */
enum mesh_err cli_meshd_get_json(const struct cli_ctx *ctx, const char *path, json_t **out,
                                 char **errmsg);

/* Reads one proxy status object. False (with *errmsg, caller frees) when it lacks an id or has
 * an unknown role. p is overwritten; free it with cli_proxy_clear whatever the answer. */
bool cli_proxy_from_json(const json_t *obj, struct cli_proxy *p, char **errmsg);
void cli_proxy_clear(struct cli_proxy *p);

/* GET /v1/proxies, read. On MESH_OK *out holds *n proxies sorted by id (free with
 * cli_proxies_free); otherwise *errmsg (caller frees) says why. */
enum mesh_err cli_proxies_fetch(const struct cli_ctx *ctx, struct cli_proxy **out, size_t *n,
                                char **errmsg);
void cli_proxies_free(struct cli_proxy *p, size_t n);

/* cli_proxies_fetch for a command that finds proxies through meshd or reads one --admin ADDR
 * (stat, tap). On failure prints the error and, when meshd is down, "COMMAND needs meshd to find
 * the proxies: ... (or VERB one proxy with --admin ADDR)"; returns CLI_EXIT_OK or
 * CLI_EXIT_ERROR. */
int cli_proxies_fetch_or_explain(const struct cli_ctx *ctx, const char *command, const char *verb,
                                 struct cli_proxy **out, size_t *n);

/* "2s ago", "5m ago", "3h ago", "4d ago" for an age in milliseconds (negative reads as 0). */
void cli_format_age(int64_t age_ms, char *buf, size_t size);

/* The current wall clock in unix milliseconds. */
uint64_t cli_now_ms(void);

#endif
