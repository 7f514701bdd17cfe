/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl cluster register`: checks that a Kubernetes cluster is ready for the istio or linkerd
 * provider (the API server answers with the kubeconfig's credentials; the provider's CRDs are
 * installed), as `istioctl x precheck` and `linkerd check` do. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/xalloc.h"
#include "kube/cluster.h"

static int run_cluster(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_cluster = {
    .name = "cluster",
    .summary = "Check that a Kubernetes cluster is ready for istio or linkerd",
    .usage =
        "Check that a Kubernetes cluster is ready for the istio or linkerd provider.\n"
        "\n"
        "register reads the kubeconfig ($KUBECONFIG, ':'-separated files merged as kubectl\n"
        "does, else ~/.kube/config), connects to the context's API server with its\n"
        "credentials (client certificate, token, token file or exec plugin), prints the\n"
        "server's version, and checks that every CRD the provider's objects need is\n"
        "installed. Nothing is written to the cluster. Exit 1 with what to do when not.\n"
        "\n"
        "The provider is --provider, else the one a stored MeshConfig names.\n"
        "\n"
        "Usage:\n"
        "  meshctl cluster register [--context NAME] [--namespace NS] [--kubeconfig FILE]\n"
        "                           [--provider istio|linkerd] [--timeout SECONDS]\n"
        "\n"
        "Flags:\n"
        "      --context NAME     kubeconfig context (default: its current-context)\n"
        "  -n, --namespace NS     namespace (default: the context's, else default)\n"
        "      --kubeconfig FILE  one kubeconfig file instead of $KUBECONFIG\n"
        "      --provider NAME    istio or linkerd\n"
        "      --timeout SECONDS  for each request to the API server (default 30)\n"
        "  -h, --help             show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl cluster register --context production --namespace default --provider istio\n",
    .run = run_cluster,
};

enum {
    OPT_CONTEXT = 300,
    OPT_KUBECONFIG,
    OPT_PROVIDER,
    OPT_TIMEOUT,
};

/* The provider of the first stored MeshConfig naming istio or linkerd (caller frees), or NULL. */
static char *stored_provider(const struct cli_ctx *ctx)
{
    struct mesh *mesh = NULL;
    struct mesh_resource **list = NULL;
    size_t n = 0;
    char *provider = NULL;
    if (cli_open(ctx, &mesh) != MESH_OK)
        return NULL;
    if (mesh_list(mesh, MESH_KIND_MESH_CONFIG, NULL, &list, &n) == MESH_OK)
        for (size_t i = 0; i < n && !provider; i++) {
            const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)list[i];
            if (mesh_kube_provider_crds(mc->provider))
                provider = xstrdup(mc->provider);
        }
    mesh_resource_list_free(list, n);
    mesh_free(mesh);
    return provider;
}

static int do_register(const struct mesh_kube_target *t, const char *provider)
{
    struct mesh_kube_cluster cluster = {0};
    char *errmsg = NULL, *version = NULL;
    int rc = CLI_EXIT_OK;
    enum mesh_err err = mesh_kube_cluster_open(t, &cluster, &errmsg);
    if (err == MESH_OK)
        err = mesh_kube_precheck(&cluster, provider, &version, &errmsg);
    if (err != MESH_OK) {
        rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
        goto out;
    }
    printf("Kubernetes %s at %s (context %s, namespace %s)\n", version, cluster.server,
           cluster.context, cluster.ns);
    const char *const *crds = mesh_kube_provider_crds(provider);
    for (size_t i = 0; crds[i]; i++)
        printf("CRD %s installed\n", crds[i]);
    printf("cluster ready for %s\n", provider);
out:
    free(version);
    free(errmsg);
    mesh_kube_cluster_close(&cluster);
    return rc;
}

static int run_cluster(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"namespace", required_argument, NULL, 'n'},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"provider", required_argument, NULL, OPT_PROVIDER},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_cluster;
    struct mesh_kube_target t = {0};
    const char *provider = NULL;
    char *stored = NULL;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONTEXT:
            t.context = optarg;
            break;
        case 'n':
            t.ns = optarg;
            break;
        case OPT_KUBECONFIG:
            t.kubeconfig = optarg;
            break;
        case OPT_PROVIDER:
            provider = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end = NULL;
            double s = strtod(optarg, &end);
            if (!end || *end || !(s > 0) || s > 3600)
                return cli_usage_error(cmd, "--timeout takes seconds, from 0.001 to 3600");
            t.timeout_ms = (long)(s * 1000 + 0.5) ? (long)(s * 1000 + 0.5) : 1;
            break;
        }
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (optind >= argc)
        return cli_usage_error(cmd, "missing subcommand (register)");
    if (strcmp(argv[optind], "register") != 0)
        return cli_usage_error(cmd, "unknown subcommand \"%s\" (use register)", argv[optind]);
    if (optind + 1 < argc)
        return cli_usage_error(cmd, "register takes no arguments, only flags");
    if (provider && !mesh_kube_provider_crds(provider))
        return cli_usage_error(cmd, "unknown provider \"%s\" (use istio or linkerd)", provider);
    if (!provider)
        provider = stored = stored_provider(ctx);
    if (!provider)
        return cli_usage_error(cmd, "no provider: give --provider istio|linkerd, or store a "
                                    "MeshConfig naming one");
    rc = do_register(&t, provider);
    free(stored);
    return rc;
}
