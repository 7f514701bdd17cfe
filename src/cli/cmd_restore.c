/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl restore`: put a `meshctl backup` stream back in one transaction: exactly, versions
 * included, into a new store; as an idempotent apply into a store with history. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"
#include "input.h"

static int run_restore(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_restore = {
    .name = "restore",
    .summary = "Put a meshctl backup back (versions kept in a new store)",
    .usage =
        "Put a meshctl backup back into the store or into meshd.\n"
        "\n"
        "Every document is parsed and validated first; if any is invalid, every problem is\n"
        "printed and nothing is written. Otherwise all documents are written in one\n"
        "transaction (all or none), one of two ways:\n"
        "\n"
        "- Into a new store (no resources, never written: a new --store directory or a meshd on\n"
        "  a new data directory), when every document carries its resource_version and\n"
        "  generation, as backups do: each resource comes back with its own versions, so that\n"
        "  `get -o yaml` prints exactly what it printed where the backup was taken. Prints\n"
        "  \"restored N resources into an empty store, with their versions\".\n"
        "- Into a store with history, or from a backup without versions (an older meshctl's):\n"
        "  an apply whatever resource_version the documents carry. The backup's content wins,\n"
        "  the store assigns new versions (they never go back: watchers and conditional writes\n"
        "  rely on that), and resources absent from the backup are left alone. Prints how many\n"
        "  were created, configured (changed) and unchanged; restoring the same backup again\n"
        "  reports them all unchanged.\n"
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
        "  meshctl --store /tmp/new-store restore -f mesh-backup.yaml\n"
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
    enum mesh_restore_mode mode = MESH_RESTORE_APPLIED;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0, counts[3] = {0, 0, 0};
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            files[n_files++] = optarg;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
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
        /* The documents keep their versions: mesh_restore decides whether the store can take
         * them (a new store) or must go on from its own (an apply that ignores them). */
        results = xcalloc(in.n_all, sizeof(*results));
        enum mesh_err err = mesh_restore(mesh, (const struct mesh_resource *const *)in.all,
                                         in.n_all, results, &mode);
        if (err != MESH_OK) {
            rc = cli_error("restore: nothing was restored: %s", mesh_last_error(mesh));
            goto out;
        }
    }
    if (mode == MESH_RESTORE_VERSIONS_KEPT) {
        printf("restored %zu resource%s into an empty store, with their versions\n", in.n_all,
               in.n_all == 1 ? "" : "s");
        goto out;
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
