/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl get`: show one resource or list resources, as a table, YAML, JSON or kind/name. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kube_apply.h"
#include "core/xalloc.h"
#include "model/model.h"
#include "model/node.h"
#include "table.h"

static int run_get(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_get = {
    .name = "get",
    .summary = "List resources or show one",
    .usage =
        "List resources or show one.\n"
        "\n"
        "KIND is a kind name in any case (VirtualService, virtualservice), its plural\n"
        "(virtualservices), its alias (vs, sp, cb, fi, svc, mc, oc, kc), several of those\n"
        "joined with commas (vs,svc), or \"all\" for every kind.\n"
        "\n"
        "Usage:\n"
        "  meshctl get KIND [NAME] [-n NAMESPACE | -A] [-o table|yaml|json|name]\n"
        "\n"
        "Flags:\n"
        "  -n, --namespace NS       the namespace to look in (default \"default\")\n"
        "  -A, --all-namespaces     list across every namespace (adds a NAMESPACE column)\n"
        "  -o, --output FORMAT      table (default), yaml, json (an array when listing) or\n"
        "                           name (kind/name, one per line)\n"
        "      --store DIR          embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL         meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE         meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "      --provider NAME      istio or linkerd: read the cluster's objects back as our\n"
        "                           resources (the cluster's Services among them)\n"
        "      --context NAME       kubeconfig context (default: its current-context)\n"
        "      --kubeconfig FILE    kubeconfig (default $KUBECONFIG, else ~/.kube/config)\n"
        "      --version V          the provider's release, for MeshConfig.version\n"
        "  -h, --help               show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl get vs\n"
        "  meshctl get vs -A --provider istio --context production\n"
        "  meshctl get all -A\n"
        "  meshctl get virtualservice payment-service -n default -o yaml\n"
        "  meshctl get svc,cb -o json\n",
    .run = run_get,
};

enum output {
    OUT_TABLE,
    OUT_YAML,
    OUT_JSON,
    OUT_NAME,
};

/* What was found, per kind, in the order kinds were asked for. */
struct group {
    enum mesh_kind kind;
    struct mesh_resource **items;
    size_t n;
};

static bool parse_output(const char *text, enum output *out)
{
    static const struct {
        const char *name;
        enum output value;
    } names[] = {{"table", OUT_TABLE}, {"yaml", OUT_YAML}, {"json", OUT_JSON}, {"name", OUT_NAME}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].value;
            return true;
        }
    return false;
}

/* Fills kinds from "all" or "vs,svc,..."; each kind at most once. Prints an error on failure. */
static bool parse_kinds(const char *text, enum mesh_kind *kinds, size_t *n)
{
    *n = 0;
    if (strcmp(text, "all") == 0) {
        for (int k = 0; k < MESH_KIND_COUNT; k++)
            kinds[(*n)++] = (enum mesh_kind)k;
        return true;
    }
    char *copy = xstrdup(text), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        enum mesh_kind k;
        ok = cli_kind_parse(tok, &k);
        if (!ok)
            break;
        bool seen = false;
        for (size_t i = 0; i < *n; i++)
            seen = seen || kinds[i] == k;
        if (!seen)
            kinds[(*n)++] = k;
    }
    if (ok && *n == 0)
        ok = cli_kind_parse(text, &kinds[0]);
    free(copy);
    return ok;
}

/* JSON listings are always an array, even of one or zero resources, so scripts need not care. */
static int print_json_array(struct mesh_resource *const *res, size_t n)
{
    struct mesh_node *seq = mesh_node_seq();
    char *text = NULL;
    for (size_t i = 0; i < n; i++)
        mesh_node_seq_append(seq, mesh_model_to_node(res[i]));
    enum mesh_err err = mesh_json_write(seq, &text);
    mesh_node_free(seq);
    if (err != MESH_OK) {
        free(text);
        return cli_error("cannot print JSON: %s", mesh_strerror(err));
    }
    cli_put_text(text, stdout);
    free(text);
    return CLI_EXIT_OK;
}

static int print_documents(struct mesh_resource *const *res, size_t n, enum mesh_format format)
{
    char *text = NULL;
    enum mesh_err err =
        mesh_print_documents((const struct mesh_resource *const *)res, n, format, &text);
    if (err != MESH_OK) {
        free(text);
        return cli_error("cannot print resources: %s", mesh_strerror(err));
    }
    cli_put_text(text, stdout);
    free(text);
    return CLI_EXIT_OK;
}

static int print_groups(const struct group *groups, size_t n_groups, enum output output,
                        bool all_ns, bool single)
{
    size_t total = 0;
    for (size_t g = 0; g < n_groups; g++)
        total += groups[g].n;
    struct mesh_resource **flat = xcalloc(total + 1, sizeof(*flat));
    size_t k = 0;
    for (size_t g = 0; g < n_groups; g++)
        for (size_t i = 0; i < groups[g].n; i++)
            flat[k++] = groups[g].items[i];

    int rc = CLI_EXIT_OK;
    switch (output) {
    case OUT_TABLE: {
        bool first = true;
        for (size_t g = 0; g < n_groups; g++) {
            if (groups[g].n == 0)
                continue;
            struct cli_table t;
            cli_columns_table(groups[g].kind, groups[g].items, groups[g].n, all_ns, n_groups > 1,
                              &t);
            if (!first)
                putchar('\n');
            cli_table_print(&t, stdout);
            cli_table_free(&t);
            first = false;
        }
        break;
    }
    case OUT_YAML:
        if (total)
            rc = print_documents(flat, total, MESH_FORMAT_YAML);
        break;
    case OUT_JSON:
        rc =
            single ? print_documents(flat, total, MESH_FORMAT_JSON) : print_json_array(flat, total);
        break;
    case OUT_NAME:
        for (size_t i = 0; i < total; i++)
            printf("%s/%s\n", cli_kind_lower(flat[i]->kind), flat[i]->name);
        break;
    }
    free(flat);
    return rc;
}

static int run_get(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"all-namespaces", no_argument, NULL, 'A'},
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        CLI_KUBE_PROVIDER_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_get;
    const char *ns = NULL;
    bool all_ns = false;
    enum output output = OUT_TABLE;
    enum mesh_kind kinds[MESH_KIND_COUNT];
    struct group groups[MESH_KIND_COUNT];
    size_t n_kinds = 0;
    struct mesh *mesh = NULL;
    struct cli_kube_opts kube = {0};
    int rc = CLI_EXIT_OK, c;

    memset(groups, 0, sizeof(groups));
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:Ao:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!*optarg)
                return cli_usage_error(cmd, "--namespace needs a name");
            ns = optarg;
            break;
        case 'A':
            all_ns = true;
            break;
        case 'o':
            if (!parse_output(optarg, &output))
                return cli_usage_error(
                    cmd, "unknown output format \"%s\" (use table, yaml, json or name)", optarg);
            break;
        default:
            if (cli_kube_option(&kube, cmd, c, optarg) == CLI_EXIT_OK)
                break;
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    rc = cli_kube_select_provider(&kube, cmd, ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (optind >= argc)
        return cli_usage_error(cmd, "get needs a KIND (or \"all\")");
    if (argc - optind > 2)
        return cli_usage_error(cmd, "get takes one KIND and at most one NAME");
    const char *kind_text = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (ns && all_ns)
        return cli_usage_error(cmd, "-n and -A cannot be used together");
    if (name && all_ns)
        return cli_usage_error(cmd, "a NAME is looked up in one namespace; drop -A");
    if (!parse_kinds(kind_text, kinds, &n_kinds))
        return CLI_EXIT_ERROR;
    if (name && n_kinds != 1)
        return cli_usage_error(cmd, "a NAME needs exactly one KIND");

    if (cli_open(ctx, &mesh) != MESH_OK)
        return CLI_EXIT_ERROR;

    if (name) {
        struct mesh_resource *res = NULL;
        enum mesh_err err = mesh_get(mesh, kinds[0], name, ns, &res);
        if (err != MESH_OK) {
            const char *msg = mesh_last_error(mesh);
            rc = cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
            goto out;
        }
        groups[0].kind = kinds[0];
        groups[0].items = xcalloc(1, sizeof(*groups[0].items));
        groups[0].items[0] = res;
        groups[0].n = 1;
        rc = print_groups(groups, 1, output, false, true);
        goto out;
    }

    size_t total = 0;
    for (size_t i = 0; i < n_kinds; i++) {
        groups[i].kind = kinds[i];
        enum mesh_err err = mesh_list(mesh, kinds[i],
                                      all_ns ? NULL
                                      : ns   ? ns
                                             : MESH_DEFAULT_NAMESPACE,
                                      &groups[i].items, &groups[i].n);
        if (err != MESH_OK) {
            const char *msg = mesh_last_error(mesh);
            rc = cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
            goto out;
        }
        total += groups[i].n;
    }
    rc = print_groups(groups, n_kinds, output, all_ns, false);
    if (total == 0) {
        if (all_ns)
            fputs("No resources found.\n", stderr);
        else
            fprintf(stderr, "No resources found in %s namespace.\n",
                    ns ? ns : MESH_DEFAULT_NAMESPACE);
    }
out:
    for (size_t i = 0; i < MESH_KIND_COUNT; i++)
        mesh_resource_list_free(groups[i].items, groups[i].n);
    mesh_free(mesh);
    return rc;
}
