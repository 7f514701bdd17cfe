/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl backup`: every stored resource, with its versions, as one multi-document YAML stream
 * that `meshctl restore` puts back. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"

static int run_backup(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_backup = {
    .name = "backup",
    .summary = "Print every resource as YAML, for meshctl restore",
    .usage =
        "Print every stored resource as one multi-document YAML stream, for meshctl restore.\n"
        "\n"
        "Resources come in a stable order (MeshConfig, ObservabilityConfig, KubernetesConfig,\n"
        "Service, VirtualService, SecurityPolicy, CircuitBreaker, FaultInjection; then by\n"
        "namespace and name), each with its resource_version and generation: restored into a\n"
        "new store, the backup reads back exactly as it was, versions included. Nothing is\n"
        "printed unless every resource could be read.\n"
        "\n"
        "Usage:\n"
        "  meshctl backup [-n NAMESPACE] > FILE\n"
        "\n"
        "Flags:\n"
        "  -n, --namespace NS    only this namespace (default: every namespace)\n"
        "      --store DIR       embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL      meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE      meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl backup > mesh-backup.yaml\n"
        "  meshctl --server http://127.0.0.1:15010 backup -n default > default.yaml\n",
    .run = run_backup,
};

/* Mesh-wide settings first, then services, then what refers to them: the order a reader expects,
 * and the order in which a restore applies them. */
static const enum mesh_kind backup_order[MESH_KIND_COUNT] = {
    MESH_KIND_MESH_CONFIG,     MESH_KIND_OBSERVABILITY_CONFIG, MESH_KIND_KUBERNETES_CONFIG,
    MESH_KIND_SERVICE,         MESH_KIND_VIRTUAL_SERVICE,      MESH_KIND_SECURITY_POLICY,
    MESH_KIND_CIRCUIT_BREAKER, MESH_KIND_FAULT_INJECTION,
};

static int run_backup(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_backup;
    struct mesh *mesh = NULL;
    struct mesh_resource **all = NULL;
    size_t n_all = 0, cap_all = 0;
    const char *ns = NULL;
    char *text = NULL;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!*optarg)
                return cli_usage_error(cmd, "--namespace needs a name");
            ns = optarg;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    rc = CLI_EXIT_OK; /* a global flag left CLI_CONTINUE in rc */
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\" (backup writes to stdout)",
                               argv[optind]);
    if (cli_open(ctx, &mesh) != MESH_OK)
        return CLI_EXIT_ERROR;

    for (size_t k = 0; k < MESH_KIND_COUNT; k++) {
        struct mesh_resource **list = NULL;
        size_t n = 0;
        enum mesh_err err = mesh_list(mesh, backup_order[k], ns, &list, &n);
        if (err != MESH_OK) {
            rc = cli_error("backup: %s", mesh_last_error(mesh));
            goto out;
        }
        xgrow((void **)&all, &cap_all, n_all + n + 1, sizeof(*all));
        /* With their versions: a restore into a new store gives them back as they are, so that
         * `get -o yaml` reads the same before and after. */
        for (size_t i = 0; i < n; i++)
            all[n_all++] = list[i];
        free(list); /* the resources now belong to all */
    }

    enum mesh_err err = MESH_OK;
    if (n_all > 0)
        err = mesh_print_documents((const struct mesh_resource *const *)all, n_all,
                                   MESH_FORMAT_YAML, &text);
    if (err != MESH_OK) {
        rc = cli_error("backup: cannot print the resources: %s", mesh_strerror(err));
        goto out;
    }
    /* No date and no source in the header: two backups of the same store are byte-equal. */
    printf("# ClusterDB Mesh backup: %zu resource%s%s%s, with resource_version and generation. "
           "Restore with: meshctl restore -f FILE\n",
           n_all, n_all == 1 ? "" : "s", ns ? " in namespace " : "", ns ? ns : "");
    if (text)
        cli_put_text(text, stdout);
out:
    free(text);
    mesh_resource_list_free(all, n_all);
    mesh_free(mesh);
    return rc;
}
