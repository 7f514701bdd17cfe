/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl version`: the CLI's version and that of the libmesh it was built with. */
#include <getopt.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli.h"
#include "net/http_client.h"

static int run_version(struct cli_ctx *ctx, int argc, char **argv);
static int print_meshd_version(const struct cli_ctx *ctx);

const struct cli_command cli_cmd_version = {
    .name = "version",
    .summary = "Print the meshctl and libmesh versions",
    .usage = "Print the meshctl and libmesh versions.\n"
             "\n"
             "With --server URL (or $MESH_SERVER), also asks meshd for its version and store\n"
             "version, and exits 1 when meshd cannot be reached.\n"
             "\n"
             "Usage:\n"
             "  meshctl version\n",
    .run = run_version,
};

static int run_version(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        default:
            rc = cli_common_option(ctx, &cli_cmd_version, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_version, "unexpected argument \"%s\"", argv[optind]);
    printf("meshctl %s\n", CLI_VERSION);
    printf("libmesh %s (API %s)\n", MESH_VERSION, MESH_API_VERSION);
    if (cli_server(ctx))
        return print_meshd_version(ctx);
    return CLI_EXIT_OK;
}

/* "meshd 0.1.0 at URL (store version N)", from GET /v1/version. */
static int print_meshd_version(const struct cli_ctx *ctx)
{
    struct mesh_http_response resp = {0};
    json_t *root = NULL;
    int rc = CLI_EXIT_OK;

    if (cli_meshd_request(ctx, "GET", "/v1/version", NULL, &resp) != MESH_OK)
        return CLI_EXIT_ERROR;
    if (resp.status != 200) {
        char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        rc = cli_error("meshd at %s: GET /v1/version: %s", cli_server(ctx), msg ? msg : "");
        free(msg);
        goto out;
    }
    root = json_loadb(resp.body, resp.body_len, 0, NULL);
    const char *version = json_string_value(json_object_get(root, "version"));
    json_t *store = json_object_get(root, "store_version");
    if (!version) {
        rc = cli_error("meshd at %s: GET /v1/version: no version in the answer", cli_server(ctx));
        goto out;
    }
    if (json_is_integer(store))
        printf("meshd %s at %s (store version %lld)\n", version, cli_server(ctx),
               (long long)json_integer_value(store));
    else
        printf("meshd %s at %s\n", version, cli_server(ctx));
out:
    json_decref(root);
    mesh_http_response_clear(&resp);
    return rc;
}
