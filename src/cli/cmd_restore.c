/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl restore`: apply a `meshctl backup` stream back, in one transaction, idempotently. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"
#include "input.h"

static int run_restore(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_restore = {
    .name = "restore",
    .summary = "Apply a meshctl backup back (idempotent)",
    .usage =
        "Apply a meshctl backup back to the store or to meshd.\n"
        "\n"
        "Every document is parsed and validated first; if any is invalid, every problem is\n"
        "printed and nothing is written. Otherwise all documents are applied in one\n"
        "transaction (all or none), whatever resource_version they carry: the backup's\n"
        "content wins. Resources absent from the backup are left alone. Prints how many\n"
        "resources were created, configured (changed) and unchanged; restoring the same\n"
        "backup again reports them all unchanged.\n"
        "\n"
        "Usage:\n"
        "  meshctl restore -f FILE|- [-f ...]\n"
        "\n"
        "Flags:\n"
        "  -f, --filename PATH   a backup file, a directory of them, or - for stdin; repeatable\n"
        "      --store DIR       embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL      meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE      meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl restore -f mesh-backup.yaml\n"
        "  meshctl --server http://127.0.0.1:15010 restore -f mesh-backup.yaml\n",
    .run = run_restore,
};

static int run_restore(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_restore;
    struct cli_input in = {0};
    struct mesh *mesh = NULL;
    struct mesh_apply_result *results = NULL;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0, counts[3] = {0, 0, 0};
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            files[n_files++] = optarg;
            break;
        case CLI_OPT_STORE:
        case CLI_OPT_SERVER:
        case CLI_OPT_TOKEN:
            rc = cli_global_option(ctx, cmd, c, optarg);
            if (rc != CLI_EXIT_OK)
                goto out;
            break;
        case 'h':
            rc = cli_help(cmd);
            goto out;
        default:
            rc = cli_bad_option(cmd, c, argv);
            goto out;
        }
    }
    rc = cli_input_read(cmd, &in, files, n_files, false, argc, argv);
    if (rc != CLI_EXIT_OK)
        goto out;
    if (!cli_input_valid(&in)) {
        cli_input_print_problems(&in, stderr);
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (cli_open(ctx, &mesh) != MESH_OK) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (in.n_all > 0) {
        /* A backup of an older meshctl, or a hand-edited one, may carry versions; a restore puts
         * the content back whatever the store's versions are now. */
        for (size_t i = 0; i < in.n_all; i++) {
            in.all[i]->resource_version = 0;
            in.all[i]->generation = 0;
        }
        results = xcalloc(in.n_all, sizeof(*results));
        enum mesh_err err =
            mesh_apply(mesh, (const struct mesh_resource *const *)in.all, in.n_all, results);
        if (err != MESH_OK) {
            rc = cli_error("restore: nothing was restored: %s", mesh_last_error(mesh));
            goto out;
        }
    }
    for (size_t i = 0; i < in.n_all; i++)
        if ((unsigned)results[i].outcome < 3)
            counts[results[i].outcome]++;
    printf("restored %zu resource%s: %zu created, %zu configured, %zu unchanged\n", in.n_all,
           in.n_all == 1 ? "" : "s", counts[MESH_APPLY_CREATED], counts[MESH_APPLY_CONFIGURED],
           counts[MESH_APPLY_UNCHANGED]);
out:
    free(results);
    mesh_free(mesh);
    cli_input_free(&in);
    free(files);
    return rc;
}
