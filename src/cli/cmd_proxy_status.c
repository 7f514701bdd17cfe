/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl proxy-status`: every proxy registered with meshd, the config version it acknowledged
 * against the latest meshd has for it, and how long ago it last heartbeated. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/xalloc.h"
#include "proxies.h"
#include "table.h"

static int run_proxy_status(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_proxy_status = {
    .name = "proxy-status",
    .summary = "Show every proxy registered with meshd and whether its config is current",
    .usage =
        "Show every proxy registered with meshd and whether its config is current.\n"
        "\n"
        "For each sidecar and gateway: its role, the service (sidecar) or gateway name it\n"
        "serves, its namespace and address, the config version it acknowledged (ACKED) and the\n"
        "one meshd has compiled for it (LATEST), SYNCED when they are the same or STALE when\n"
        "not, and its last heartbeat. Ages are measured on meshd's clock. Needs meshd:\n"
        "--server URL, else $MESH_SERVER, else " CLI_DEFAULT_SERVER ".\n"
        "\n"
        "Usage:\n"
        "  meshctl proxy-status [PROXY] [-o table|json]\n"
        "\n"
        "Flags:\n"
        "  -o, --output FORMAT   table (default) or json (meshd's proxy statuses, each with\n"
        "                        \"status\" and \"heartbeat_age_ms\" added)\n"
        "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE      meshd's token, when reads need one (default $MESH_TOKEN_FILE,\n"
        "                        else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl proxy-status\n"
        "  meshctl --server http://127.0.0.1:15010 proxy-status payment-v1.default-4242 -o json\n",
    .run = run_proxy_status,
};

/* "needs meshd" help added to a failure to reach it. */
static int fail_unreachable(const char *why)
{
    cli_error("%s", why);
    fputs("proxy-status needs meshd: start it (meshd --data-dir DIR) or point --server or "
          "$MESH_SERVER at it\n",
          stderr);
    return CLI_EXIT_ERROR;
}

/* meshd's clock, from GET /v1/health, so that heartbeat ages do not depend on ours; our own
 * when meshd does not say. */
static uint64_t meshd_now_ms(const struct cli_ctx *ctx)
{
    json_t *health = NULL;
    char *why = NULL;
    uint64_t now = 0;
    if (cli_meshd_get_json(ctx, "/v1/health", &health, &why) == MESH_OK) {
        json_t *t = json_object_get(health, "time_ms");
        if (json_is_integer(t) && json_integer_value(t) > 0)
            now = (uint64_t)json_integer_value(t);
    }
    json_decref(health);
    free(why);
    return now ? now : cli_now_ms();
}

static const char *status_word(const struct cli_proxy *p)
{
    return p->synced ? "SYNCED" : "STALE";
}

static void print_table(const struct cli_proxy *list, size_t n, uint64_t now)
{
    struct cli_table t;
    cli_table_init(&t, 9);
    const char *head[] = {"ID",    "ROLE",   "SERVICE/GATEWAY", "NAMESPACE",     "ADDRESS",
                          "ACKED", "LATEST", "STATUS",          "LAST HEARTBEAT"};
    for (size_t i = 0; i < 9; i++)
        cli_table_add(&t, head[i]);
    for (size_t i = 0; i < n; i++) {
        const struct cli_proxy *p = &list[i];
        char age[32] = "-";
        if (p->last_heartbeat_ms)
            cli_format_age((int64_t)(now - p->last_heartbeat_ms), age, sizeof(age));
        cli_table_add(&t, p->id);
        cli_table_add(&t, p->role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar");
        cli_table_add(&t, p->role == MESH_PROXY_GATEWAY ? p->gateway : p->service);
        cli_table_add(&t, p->ns ? p->ns : MESH_DEFAULT_NAMESPACE);
        cli_table_add(&t, p->address && *p->address ? p->address : "-");
        cli_table_add(&t, *p->acked ? p->acked : "-");
        cli_table_add(&t, p->latest && *p->latest ? p->latest : "-");
        cli_table_add(&t, status_word(p));
        cli_table_add(&t, age);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* meshd's statuses as they came, each with what the table derives from them. */
static int print_json(json_t *items, const struct cli_proxy *list, size_t n, uint64_t now)
{
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(items) && i < n; i++) {
        json_t *o = json_deep_copy(json_array_get(items, i));
        const char *id = json_string_value(json_object_get(o, "id"));
        const struct cli_proxy *p = NULL;
        for (size_t k = 0; id && k < n && !p; k++)
            if (strcmp(list[k].id, id) == 0)
                p = &list[k];
        if (p) {
            json_object_set_new(o, "status", json_string(status_word(p)));
            json_object_set_new(o, "heartbeat_age_ms",
                                p->last_heartbeat_ms && now >= p->last_heartbeat_ms
                                    ? json_integer((json_int_t)(now - p->last_heartbeat_ms))
                                    : json_integer(0));
        }
        json_array_append_new(out, o);
    }
    json_t *root = json_pack("{s:o}", "items", out);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return cli_error("out of memory");
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* The proxies of meshd's answer: GET /v1/proxies, or GET /v1/proxies/{id} for one. *items is
 * the raw list (for -o json). */
static int fetch(const struct cli_ctx *ctx, const char *id, json_t **items, struct cli_proxy **list,
                 size_t *n)
{
    json_t *root = NULL;
    char *why = NULL, *path = id ? xasprintf("/v1/proxies/%s", id) : xstrdup("/v1/proxies");
    int rc = CLI_EXIT_OK;
    enum mesh_err err = cli_meshd_get_json(ctx, path, &root, &why);
    if (err == MESH_E_NOTFOUND && id) {
        rc = cli_error("no proxy \"%s\" is registered with meshd (meshctl proxy-status lists "
                       "them)",
                       id);
        goto out;
    }
    if (err != MESH_OK) {
        rc = err == MESH_E_UNAVAILABLE ? fail_unreachable(why) : cli_error("%s", why);
        goto out;
    }
    if (id) {
        *items = json_array();
        json_array_append(*items, root);
    } else {
        *items = json_incref(json_object_get(root, "items"));
        if (!json_is_array(*items)) {
            rc = cli_error("meshd's answer to GET /v1/proxies has no \"items\" list");
            goto out;
        }
    }
    *list = xcalloc(json_array_size(*items) + 1, sizeof(**list));
    for (size_t i = 0; i < json_array_size(*items); i++) {
        if (!cli_proxy_from_json(json_array_get(*items, i), &(*list)[*n], &why)) {
            cli_proxy_clear(&(*list)[*n]);
            rc = cli_error("meshd's answer to GET %s: %s", path, why);
            goto out;
        }
        (*n)++;
    }
out:
    json_decref(root);
    free(why);
    free(path);
    return rc;
}

static int run_proxy_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_proxy_status;
    bool json = false;
    json_t *items = NULL;
    struct cli_proxy *list = NULL;
    size_t n = 0;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            rc = cli_output_json(cmd, optarg, &json);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (argc - optind > 1)
        return cli_usage_error(cmd, "proxy-status takes at most one PROXY");
    if (!cli_server(ctx) && ctx->store_dir)
        return cli_usage_error(cmd, "proxy-status needs meshd (--server URL): an embedded store "
                                    "has no proxies");
    const char *id = optind < argc ? argv[optind] : NULL;
    rc = fetch(ctx, id, &items, &list, &n);
    if (rc != CLI_EXIT_OK)
        goto out;
    uint64_t now = meshd_now_ms(ctx);
    if (json) {
        rc = print_json(items, list, n, now);
    } else if (n == 0) {
        char *url = cli_meshd_url(ctx);
        fprintf(stderr, "No proxies are registered with meshd at %s.\n", url);
        free(url);
    } else {
        print_table(list, n, now);
    }
out:
    json_decref(items);
    cli_proxies_free(list, n);
    return rc;
}
