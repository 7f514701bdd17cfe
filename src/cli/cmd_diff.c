/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl diff`: show, as a unified diff of YAML, what applying files would change, in the store
 * or, for the istio and linkerd providers, in a cluster (kube_apply.h). */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"
#include "diff.h"
#include "input.h"
#include "kube_apply.h"
#include "model/model.h"

static int run_diff(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_diff = {
    .name = "diff",
    .summary = "Show how files differ from the stored resources",
    .usage =
        "Show how files differ from the stored resources, as a unified diff of their YAML\n"
        "(resource_version and generation left out). A resource that is not stored yet is\n"
        "shown as all added lines. Nothing is written.\n"
        "\n"
        "Exits 0 whether or not there are differences, unless --exit-code is given: then 1\n"
        "means \"differences found\", like git diff --exit-code. Errors always exit 1.\n"
        "\n"
        "For a cluster (chosen as meshctl apply chooses it: --provider istio|linkerd, a cluster\n"
        "flag, or the input's MeshConfig), the input is rendered and each object compared with\n"
        "the live one, of which only the fields the rendered object sets are shown (so that\n"
        "what the API server adds is not a difference); an object not in the cluster is all\n"
        "added lines. Nothing is written.\n"
        "\n"
        "Usage:\n"
        "  meshctl diff -f FILE|DIR|- [-f ...] [-R] [--exit-code]\n"
        "  meshctl diff --provider istio|linkerd -f ... [--context NAME] [-n NS]\n"
        "               [--kubeconfig FILE] [--version V] [--allow-partial] [--exit-code]\n"
        "\n"
        "Flags:\n"
        "  -f, --filename PATH   a file, a directory (its .yaml, .yml and .json files) or -\n"
        "                        for stdin; repeatable\n"
        "  -R, --recursive       also read the subdirectories of a directory\n"
        "      --exit-code       exit 1 when there are differences\n"
        "      --provider NAME   istio or linkerd (a cluster), native (the store)\n"
        "      --context NAME    kubeconfig context (default: KubernetesConfig's, else current)\n"
        "  -n, --namespace NS    target namespace (default: KubernetesConfig's, else the\n"
        "                        context's, else default)\n"
        "      --kubeconfig FILE one kubeconfig file instead of $KUBECONFIG\n"
        "      --version V       the provider's version, e.g. 1.22 or 2.14\n"
        "      --allow-partial   leave out what the provider cannot express, with a warning\n"
        "      --timeout SECONDS for each request to the API server (default 30)\n"
        "      --store DIR       embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL      meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE      meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl diff -f examples/\n"
        "  meshctl diff --exit-code -f payment-virtual-service.yaml || meshctl apply -f ...\n",
    .run = run_diff,
};

/* The YAML of res without its versions, which differ between a file and the store by nature. */
static enum mesh_err yaml_without_versions(const struct mesh_resource *res, char **out)
{
    struct mesh_resource *copy = mesh_resource_clone(res);
    if (!copy)
        return MESH_E_NOMEM;
    copy->resource_version = 0;
    copy->generation = 0;
    const struct mesh_resource *one[1] = {copy};
    enum mesh_err err = mesh_print_documents(one, 1, MESH_FORMAT_YAML, out);
    mesh_resource_free(copy);
    return err;
}

/* Compares one input resource with the store; sets *differs. Prints an error on failure. */
static enum mesh_err diff_one(struct mesh *mesh, const struct mesh_resource *res, bool *differs)
{
    struct mesh_resource *live = NULL;
    char *live_yaml = NULL, *file_yaml = NULL, *live_label = NULL, *file_label = NULL;
    const char *ns = mesh_resource_namespace(res);

    *differs = false;
    enum mesh_err err = mesh_get(mesh, res->kind, res->name, ns, &live);
    if (err == MESH_E_NOTFOUND) {
        live = NULL;
        err = MESH_OK;
    } else if (err != MESH_OK) {
        const char *msg = mesh_last_error(mesh);
        cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
        goto out;
    }
    if (live && mesh_model_same_content(live, res))
        goto out;

    *differs = true;
    err = yaml_without_versions(res, &file_yaml);
    if (err == MESH_OK && live)
        err = yaml_without_versions(live, &live_yaml);
    if (err != MESH_OK) {
        cli_error("cannot print %s/%s: %s", cli_kind_lower(res->kind), res->name,
                  mesh_strerror(err));
        goto out;
    }
    live_label = xasprintf("live/%s/%s/%s", mesh_kind_name(res->kind), ns, res->name);
    file_label = xasprintf("file/%s/%s/%s", mesh_kind_name(res->kind), ns, res->name);
    cli_diff_unified(live_yaml ? live_yaml : "", file_yaml, live_label, file_label, stdout);
out:
    free(live_label);
    free(file_label);
    free(live_yaml);
    free(file_yaml);
    mesh_resource_free(live);
    return err;
}

static int run_diff(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"exit-code", no_argument, NULL, CLI_OPT_EXIT_CODE},
        CLI_KUBE_OPTIONS,
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_diff;
    struct cli_input in = {0};
    struct mesh *mesh = NULL;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    struct cli_kube_opts kube = {0};
    bool recursive = false, exit_code = false, any_differs = false;
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
        case CLI_OPT_EXIT_CODE:
            exit_code = true;
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
    if (cli_kube_wanted(&in, &kube)) {
        rc = cli_kube_diff(&in, &kube, &any_differs);
        if (rc == CLI_EXIT_OK && exit_code && any_differs)
            rc = CLI_EXIT_ERROR;
        goto out;
    }
    if (cli_open(ctx, &mesh) != MESH_OK) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    for (size_t i = 0; i < in.n_all; i++) {
        bool differs = false;
        if (diff_one(mesh, in.all[i], &differs) != MESH_OK) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        any_differs = any_differs || differs;
    }
    if (exit_code && any_differs)
        rc = CLI_EXIT_ERROR;
out:
    mesh_free(mesh);
    cli_input_free(&in);
    free(files);
    return rc;
}
