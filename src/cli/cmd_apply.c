/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl apply`: validate every input document, then store them all in one transaction; or,
 * for the istio and linkerd providers, render them and apply them to a cluster (kube_apply.h). */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"
#include "input.h"
#include "kube_apply.h"

static int run_apply(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_apply = {
    .name = "apply",
    .summary = "Create or update resources from files, directories or stdin",
    .usage =
        "Create or update resources from files, directories or stdin.\n"
        "\n"
        "Every document is parsed and validated first; if any is invalid, every problem is\n"
        "printed and nothing is written. Otherwise all documents are applied in one\n"
        "transaction (all or none) and one line per resource says what happened:\n"
        "created, configured or unchanged.\n"
        "\n"
        "With --provider istio|linkerd, a cluster flag (--context, --kubeconfig, --namespace,\n"
        "--force, --prune, ...), or MeshConfigs in the input naming one of istio and linkerd\n"
        "(and not both), the resources go to a Kubernetes cluster instead: rendered as\n"
        "`meshctl render` does, the cluster checked as `meshctl cluster register` does, then\n"
        "every object server-side applied with field manager meshctl, one line each:\n"
        "Kind/namespace/name created, configured or unchanged. The cluster is the flags', else\n"
        "the input's KubernetesConfig (context, namespace), else the kubeconfig's current\n"
        "context. --provider native always means the store.\n"
        "\n"
        "Usage:\n"
        "  meshctl apply -f FILE|DIR|- [-f ...] [-R]\n"
        "  meshctl apply --provider istio|linkerd -f ... [--context NAME] [-n NS]\n"
        "                [--kubeconfig FILE] [--version V] [--allow-partial] [--force] [--prune]\n"
        "\n"
        "Flags:\n"
        "  -f, --filename PATH   a file, a directory (its .yaml, .yml and .json files, in name\n"
        "                        order) or - for stdin; repeatable\n"
        "  -R, --recursive       also read the subdirectories of a directory\n"
        "      --provider NAME   istio or linkerd (a cluster), native (the store)\n"
        "      --context NAME    kubeconfig context (default: KubernetesConfig's, else current)\n"
        "  -n, --namespace NS    target namespace (default: KubernetesConfig's, else the\n"
        "                        context's, else default); pruned besides the objects' own\n"
        "      --kubeconfig FILE one kubeconfig file instead of $KUBECONFIG\n"
        "      --version V       the provider's version, e.g. 1.22 or 2.14\n"
        "      --allow-partial   leave out what the provider cannot express, with a warning\n"
        "      --force           take over fields another field manager owns (else a 409)\n"
        "      --prune           then delete the objects labelled\n"
        "                        app.kubernetes.io/managed-by=clusterdb-mesh in those\n"
        "                        namespaces that the input no longer renders (never a\n"
        "                        Service or Namespace: those we only annotate)\n"
        "      --timeout SECONDS for each request to the API server (default 30)\n"
        "      --store DIR       embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL      meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE      meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl apply -f examples/\n"
        "  meshctl apply -f payment-virtual-service.yaml -f services.yaml\n"
        "  cat vs.yaml | meshctl apply -f -\n"
        "  meshctl apply --provider istio --context production -f examples/services.yaml \\\n"
        "      -f examples/payment-virtual-service.yaml --prune\n",
    .run = run_apply,
};

static const char *outcome_word(enum mesh_apply_outcome o)
{
    switch (o) {
    case MESH_APPLY_CREATED:
        return "created";
    case MESH_APPLY_CONFIGURED:
        return "configured";
    case MESH_APPLY_UNCHANGED:
        return "unchanged";
    }
    return "applied";
}

static int run_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        CLI_KUBE_OPTIONS,
        {"force", no_argument, NULL, CLI_KUBE_OPT_FORCE},
        {"prune", no_argument, NULL, CLI_KUBE_OPT_PRUNE},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_apply;
    struct cli_input in = {0};
    struct mesh *mesh = NULL;
    struct mesh_apply_result *results = NULL;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    struct cli_kube_opts kube = {0};
    bool recursive = false;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Rn:h", opts, NULL)) != -1) {
        int krc = cli_kube_option(&kube, cmd, c, optarg);
        if (krc == CLI_EXIT_USAGE) {
            rc = krc;
            goto out;
        }
        if (krc == CLI_EXIT_OK)
            continue;
        switch (c) {
        case 'f':
            files[n_files++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    if ((rc = cli_kube_check_flags(&kube, cmd)) != CLI_EXIT_OK)
        goto out;
    rc = cli_input_read(cmd, &in, files, n_files, recursive, argc, argv);
    if (rc != CLI_EXIT_OK)
        goto out;
    if (!cli_input_valid(&in)) {
        cli_input_print_problems(&in, stderr);
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (in.n_all == 0) {
        rc = cli_error("no resources found in the input");
        goto out;
    }
    if (cli_kube_wanted(&in, &kube)) {
        rc = cli_kube_apply(&in, &kube);
        goto out;
    }

    if (cli_open(ctx, &mesh) != MESH_OK) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    results = xcalloc(in.n_all, sizeof(*results));
    enum mesh_err err =
        mesh_apply(mesh, (const struct mesh_resource *const *)in.all, in.n_all, results);
    if (err != MESH_OK) {
        const char *msg = mesh_last_error(mesh);
        rc = cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
        goto out;
    }
    for (size_t i = 0; i < in.n_all; i++)
        printf("%s/%s %s\n", cli_kind_lower(in.all[i]->kind), in.all[i]->name,
               outcome_word(results[i].outcome));
out:
    free(results);
    mesh_free(mesh);
    cli_input_free(&in);
    free(files);
    return rc;
}
