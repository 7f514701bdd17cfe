/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl entry point: global flags, then dispatch to one command of the table below. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run_help(struct cli_ctx *ctx, int argc, char **argv);

static const struct cli_command cmd_help = {
    .name = "help",
    .summary = "Show help for meshctl or one of its commands",
    .usage = "Show help for meshctl or one of its commands.\n"
             "\n"
             "Usage:\n"
             "  meshctl help [COMMAND]\n",
    .run = run_help,
};

/* One command per line, so that adding one is a one-line change. */
/* clang-format off */
static const struct cli_command *const commands[] = {
    &cli_cmd_apply,
    &cli_cmd_get,
    &cli_cmd_delete,
    &cli_cmd_validate,
    &cli_cmd_render,
    &cli_cmd_diff,
    &cli_cmd_backup,
    &cli_cmd_restore,
    &cli_cmd_explain,
    &cli_cmd_proxy_status,
    &cli_cmd_proxy_config,
    &cli_cmd_prometheus_config,
    &cli_cmd_dashboards,
    &cli_cmd_check,
    &cli_cmd_stat,
    &cli_cmd_tap,
    &cli_cmd_analyze,
    &cli_cmd_ca,
    &cli_cmd_cluster,
    &cli_cmd_version,
    &cmd_help,
};
/* clang-format on */

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static void print_global_help(FILE *out)
{
    fputs("meshctl manages ClusterDB Mesh resources: apply, inspect, diff and delete them.\n"
          "\n"
          "Usage:\n"
          "  meshctl [--store DIR | --server URL [--token FILE]] COMMAND [ARGS...]\n"
          "\n"
          "Commands:\n",
          out);
    /* The summaries line up after the longest name. */
    int width = 12;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if ((int)strlen(commands[i]->name) > width)
            width = (int)strlen(commands[i]->name);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-*s  %s\n", width, commands[i]->name, commands[i]->summary);
    fputs("\n"
          "Global flags (also accepted after the command):\n"
          "  --store DIR    embedded store directory (default $MESH_STORE, else ./.mesh)\n"
          "  --server URL   talk to meshd at URL instead (default $MESH_SERVER; an explicit\n"
          "                 --store wins over $MESH_SERVER)\n"
          "  --token FILE   meshd's bearer token, first line of FILE (meshd's DATA_DIR/token;\n"
          "                 default $MESH_TOKEN_FILE, else the token in $MESH_TOKEN)\n"
          "  --cacert FILE  with an https:// --server: the PEM CA bundle meshd's certificate\n"
          "                 must chain to (default $MESH_CACERT, else the system trust store)\n"
          "  -h, --help     show help\n"
          "  --version      print the meshctl and libmesh versions\n"
          "\n"
          "Run 'meshctl help COMMAND' for a command's usage.\n",
          out);
}

static int run_help(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return cli_help(&cmd_help);
    if (argc > 2)
        return cli_usage_error(&cmd_help, "help takes at most one COMMAND");
    if (argc < 2) {
        print_global_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(argv[1]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command \"%s\" for \"meshctl\"", argv[1]);
    return cli_help(cmd);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CLI_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct cli_ctx ctx = {.store_dir = NULL, .server = NULL, .token_file = NULL};
    int c;

    /* '+' stops at the command name: everything after it belongs to the command. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_STORE:
        case CLI_OPT_SERVER:
        case CLI_OPT_TOKEN:
        case CLI_OPT_CACERT:
            if (cli_global_option(&ctx, NULL, c, optarg) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            print_global_help(stdout);
            return CLI_EXIT_OK;
        case CLI_OPT_VERSION:
            optind = 0;
            return cli_cmd_version.run(&ctx, 1, (char *[]){"version", NULL});
        default:
            return cli_bad_option(NULL, c, argv);
        }
    }
    if (optind >= argc) {
        print_global_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const struct cli_command *cmd = find_command(argv[optind]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command \"%s\" for \"meshctl\"", argv[optind]);

    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    /* 0, not 1: glibc then re-initialises getopt fully, dropping the '+' mode used above. */
    optind = 0;
    int rc = cmd->run(&ctx, sub_argc, sub_argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("error: writing output");
        rc = CLI_EXIT_ERROR;
    }
    return rc;
}
