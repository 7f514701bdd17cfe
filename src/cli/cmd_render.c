/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl render`: resource files as Istio or Linkerd manifests (provider/translate.h), without
 * a cluster; and the capability matrix the translators are built from. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/xalloc.h"
#include "input.h"
#include "provider_input.h"

static int run_render(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_render = {
    .name = "render",
    .summary = "Print resources as Istio or Linkerd manifests",
    .usage =
        "Print resources as the Kubernetes manifests of Istio or Linkerd, without a cluster.\n"
        "\n"
        "The provider is --provider, else the one the input's MeshConfig names (istio or\n"
        "linkerd); its version is --version, else that MeshConfig's (the seed's 1.14, 2.11),\n"
        "else the newest known. A MeshConfig for another provider is ignored. What the\n"
        "provider cannot express is refused, naming the resource, the field and the reason\n"
        "(exit 1), unless --allow-partial: then it is left out with a warning on stderr.\n"
        "Every object carries the label app.kubernetes.io/managed-by: clusterdb-mesh and the\n"
        "annotation mesh.clusterdb.io/source naming the resource it came from.\n"
        "\n"
        "Usage:\n"
        "  meshctl render [--provider istio|linkerd] -f FILE|DIR|- [-f ...] [-R] [-o yaml|json]\n"
        "                 [--version V] [--allow-partial]\n"
        "  meshctl render --capabilities\n"
        "\n"
        "Flags:\n"
        "      --provider NAME   istio or linkerd\n"
        "  -f, --filename PATH   a file, a directory (its .yaml, .yml and .json files) or -\n"
        "                        for stdin; repeatable\n"
        "  -R, --recursive       also read the subdirectories of a directory\n"
        "  -o, --output FORMAT   yaml (documents separated by ---, the default) or json (a\n"
        "                        v1 List)\n"
        "      --version V       the provider's version, e.g. 1.22 or 2.14\n"
        "      --allow-partial   leave out what the provider cannot express, with a warning\n"
        "      --capabilities    print the feature x provider matrix (Markdown) and exit\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl render --provider istio -f examples/\n"
        "  meshctl render --provider linkerd -f examples/ --allow-partial -o json\n",
    .run = run_render,
};

enum {
    OPT_PROVIDER = 300,
    OPT_VERSION,
    OPT_ALLOW_PARTIAL,
    OPT_CAPABILITIES,
};

static int print_matrix(void)
{
    char *text = NULL;
    if (mesh_capability_matrix(&text) != MESH_OK)
        return cli_error("cannot build the capability matrix (out of memory)");
    fputs(text, stdout);
    free(text);
    return CLI_EXIT_OK;
}

static int render(const struct cli_input *in, const char *provider, const char *version,
                  bool allow_partial, enum mesh_format format)
{
    struct mesh_translation t = {0};
    char *text = NULL;
    int rc = cli_provider_translate(in, provider, version, allow_partial, &t, NULL);
    if (rc != CLI_EXIT_OK)
        goto out;
    if (mesh_translation_print(&t, format, &text) != MESH_OK) {
        rc = cli_error("cannot print the manifests (out of memory)");
        goto out;
    }
    fputs(text, stdout);
    fflush(stdout);
    cli_provider_print_warnings(&t);
out:
    free(text);
    mesh_translation_clear(&t);
    return rc;
}

static int run_render(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"provider", required_argument, NULL, OPT_PROVIDER},
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"output", required_argument, NULL, 'o'},
        {"version", required_argument, NULL, OPT_VERSION},
        {"allow-partial", no_argument, NULL, OPT_ALLOW_PARTIAL},
        {"capabilities", no_argument, NULL, OPT_CAPABILITIES},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_render;
    struct cli_input in = {0};
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    const char *provider = NULL, *version = NULL;
    bool recursive = false, allow_partial = false, capabilities = false;
    enum mesh_format format = MESH_FORMAT_YAML;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Ro:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PROVIDER:
            provider = optarg;
            break;
        case 'f':
            files[n_files++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case 'o':
            if (strcmp(optarg, "yaml") == 0) {
                format = MESH_FORMAT_YAML;
            } else if (strcmp(optarg, "json") == 0) {
                format = MESH_FORMAT_JSON;
            } else {
                rc =
                    cli_usage_error(cmd, "unknown output format \"%s\" (use yaml or json)", optarg);
                goto out;
            }
            break;
        case OPT_VERSION:
            version = optarg;
            break;
        case OPT_ALLOW_PARTIAL:
            allow_partial = true;
            break;
        case OPT_CAPABILITIES:
            capabilities = true;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    if (capabilities) {
        rc = n_files || optind < argc
                 ? cli_usage_error(cmd, "--capabilities takes no files or arguments")
                 : print_matrix();
        goto out;
    }
    if (provider && !mesh_translator_find(provider)) {
        rc = cli_usage_error(cmd, "unknown provider \"%s\" (use istio or linkerd)", provider);
        goto out;
    }
    rc = cli_input_read(cmd, &in, files, n_files, recursive, argc, argv);
    if (rc != CLI_EXIT_OK)
        goto out;
    if (!cli_input_valid(&in)) {
        cli_input_print_problems(&in, stderr);
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    rc = render(&in, provider, version, allow_partial, format);
out:
    cli_input_free(&in);
    free(files);
    return rc;
}
