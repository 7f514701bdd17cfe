/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl version`: the CLI's version and that of the libmesh it was built with. */
#include <getopt.h>

#include "cli.h"

static int run_version(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_version = {
    .name = "version",
    .summary = "Print the meshctl and libmesh versions",
    .usage = "Print the meshctl and libmesh versions.\n"
             "\n"
             "Usage:\n"
             "  meshctl version\n",
    .run = run_version,
};

static int run_version(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, CLI_OPT_STORE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_STORE:
            ctx->store_dir = optarg;
            break;
        case 'h':
            return cli_help(&cli_cmd_version);
        default:
            return cli_bad_option(&cli_cmd_version, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(&cli_cmd_version, "unexpected argument \"%s\"", argv[optind]);
    printf("meshctl %s\n", CLI_VERSION);
    printf("libmesh %s (API %s)\n", MESH_VERSION, MESH_API_VERSION);
    return CLI_EXIT_OK;
}
