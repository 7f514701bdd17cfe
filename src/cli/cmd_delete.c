/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl delete`: remove resources by kind and name, or every resource named in files. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "kube_apply.h"
#include "core/xalloc.h"
#include "input.h"

static int run_delete(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_delete = {
    .name = "delete",
    .summary = "Delete resources by kind and name, or those named in files",
    .usage =
        "Delete resources by kind and name, or every resource named in files.\n"
        "\n"
        "A resource that does not exist is an error (exit 1) unless --ignore-not-found is\n"
        "given; the others are still deleted.\n"
        "\n"
        "Usage:\n"
        "  meshctl delete KIND NAME [NAME...] [-n NAMESPACE]\n"
        "  meshctl delete -f FILE|DIR|- [-f ...] [-R]\n"
        "\n"
        "Flags:\n"
        "  -n, --namespace NS       the namespace of the named resources (default \"default\")\n"
        "  -f, --filename PATH      delete the resources a file, directory or stdin (-) names\n"
        "  -R, --recursive          also read the subdirectories of a directory\n"
        "      --ignore-not-found   treat a missing resource as already deleted\n"
        "      --store DIR          embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL         meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE         meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "      --provider NAME      istio or linkerd: delete from the cluster (what was made\n"
        "                           from the resource is removed; the rest is rendered again)\n"
        "      --context NAME       kubeconfig context (default: its current-context)\n"
        "      --kubeconfig FILE    kubeconfig (default $KUBECONFIG, else ~/.kube/config)\n"
        "      --version V          the provider's release to write for (default: the\n"
        "                           release the objects were written for, else the newest)\n"
        "  -h, --help               show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl delete vs payment-service\n"
        "  meshctl delete vs web-service --provider istio --context production\n"
        "  meshctl delete svc web-v1 web-v2 -n default\n"
        "  meshctl delete -f examples/\n",
    .run = run_delete,
};

/* Deletes one resource and says so. Returns false when it failed (and was not ignorable). */
static bool delete_one(struct mesh *mesh, enum mesh_kind kind, const char *name, const char *ns,
                       bool ignore_not_found)
{
    enum mesh_err err = mesh_delete(mesh, kind, name, ns);
    if (err == MESH_OK) {
        printf("%s/%s deleted\n", cli_kind_lower(kind), name);
        return true;
    }
    if (err == MESH_E_NOTFOUND && ignore_not_found)
        return true;
    const char *msg = mesh_last_error(mesh);
    cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
    return false;
}

static int run_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"ignore-not-found", no_argument, NULL, CLI_OPT_IGNORE_NOT_FOUND},
        CLI_GLOBAL_OPTIONS,
        CLI_KUBE_PROVIDER_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_delete;
    struct cli_input in = {0};
    struct mesh *mesh = NULL;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    const char *ns = NULL;
    bool recursive = false, ignore_not_found = false;
    struct cli_kube_opts kube = {0};
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:f:Rh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!*optarg) {
                rc = cli_usage_error(cmd, "--namespace needs a name");
                goto out;
            }
            ns = optarg;
            break;
        case 'f':
            files[n_files++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case CLI_OPT_IGNORE_NOT_FOUND:
            ignore_not_found = true;
            break;
        default:
            if (cli_kube_option(&kube, cmd, c, optarg) == CLI_EXIT_OK)
                break;
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    rc = cli_kube_select_provider(&kube, cmd, ctx);
    if (rc != CLI_EXIT_OK)
        goto out;

    if (n_files > 0) {
        if (optind < argc) {
            rc = cli_usage_error(cmd, "give either -f or KIND NAME, not both");
            goto out;
        }
        if (ns) {
            /* each document names its own namespace; -n would silently disagree with it */
            rc = cli_usage_error(cmd, "-n cannot be used with -f");
            goto out;
        }
        if (cli_input_load(&in, files, n_files, recursive) != MESH_OK) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        if (!cli_input_valid(&in)) {
            cli_input_print_problems(&in, stderr);
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        if (in.n_all == 0) {
            rc = cli_error("no resources found in the input");
            goto out;
        }
        if (cli_open(ctx, &mesh) != MESH_OK) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        for (size_t i = 0; i < in.n_all; i++) {
            const struct mesh_resource *res = in.all[i];
            if (!delete_one(mesh, res->kind, res->name, mesh_resource_namespace(res),
                            ignore_not_found))
                rc = CLI_EXIT_ERROR;
        }
        goto out;
    }

    if (optind >= argc) {
        rc = cli_usage_error(cmd, "delete needs KIND NAME or -f FILE|DIR|-");
        goto out;
    }
    if (recursive) {
        rc = cli_usage_error(cmd, "-R only applies to -f");
        goto out;
    }
    enum mesh_kind kind;
    if (!cli_kind_parse(argv[optind], &kind)) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (optind + 1 >= argc) {
        rc = cli_usage_error(cmd, "delete %s needs a NAME", argv[optind]);
        goto out;
    }
    if (cli_open(ctx, &mesh) != MESH_OK) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    for (int i = optind + 1; i < argc; i++)
        if (!delete_one(mesh, kind, argv[i], ns ? ns : MESH_DEFAULT_NAMESPACE, ignore_not_found))
            rc = CLI_EXIT_ERROR;
out:
    mesh_free(mesh);
    cli_input_free(&in);
    free(files);
    return rc;
}
