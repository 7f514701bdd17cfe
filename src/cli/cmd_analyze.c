/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl analyze`: the mesh's configuration problems that no single document shows, in the
 * store, in meshd (with its live registry), or in files before they are applied. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "control/analyze.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "input.h"
#include "model/node.h"
#include "net/http_client.h"

static int run_analyze(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_analyze = {
    .name = "analyze",
    .summary = "Find configuration problems across resources, before or after applying",
    .usage =
        "Find configuration problems that validating one document cannot see: a destination\n"
        "without endpoints, two VirtualServices claiming one host, a route an earlier route\n"
        "hides, a gateway no gateway proxy serves, a policy naming an unknown service.\n"
        "\n"
        "Without -f, analyzes every stored resource: the embedded store, or meshd (--server or\n"
        "$MESH_SERVER), where the live registry also tells which services have registered\n"
        "endpoints and which gateways run. With -f, analyzes the files as they would be once\n"
        "applied: over the stored resources when a store or meshd is named (--store,\n"
        "$MESH_STORE, --server, $MESH_SERVER), alone otherwise or with --local.\n"
        "\n"
        "Each finding reads SEVERITY [CODE] (KIND NAMESPACE/NAME FILE:LINE:COL) FIELD: message.\n"
        "Exits 1 when an Error is found (or a file is invalid), 0 otherwise.\n"
        "\n"
        "Usage:\n"
        "  meshctl analyze [-f FILE|DIR|- ...] [-R] [--local] [-o text|json]\n"
        "\n"
        "Flags:\n"
        "  -f, --filename PATH   a file, a directory (its .yaml, .yml and .json files) or -\n"
        "                        for stdin; repeatable\n"
        "  -R, --recursive       also read the subdirectories of a directory\n"
        "      --local           analyze the files alone, without the stored resources\n"
        "  -o, --output FORMAT   text (default) or json\n"
        "      --store DIR       embedded store directory (default $MESH_STORE, else ./.mesh)\n"
        "      --server URL      meshd to use instead (default $MESH_SERVER)\n"
        "      --token FILE      meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Findings:\n"
        "  MESH0101 Error    ServiceNotFound: a destination's Service has no endpoints\n"
        "  MESH0102 Error    HostConflict: two VirtualServices claim one host for one proxy\n"
        "  MESH0103 Warning  UnreachableRoute: an earlier route matches all a route matches\n"
        "  MESH0104 Error    GatewayNotFound: no registered gateway proxy serves the gateway\n"
        "  MESH0105 Warning  PolicyTargetNotFound: a policy names an unknown service or route\n"
        "  MESH0106 Warning  CertificateAuthorityNotFound: a SecurityPolicy names a CA meshd\n"
        "                   does not have (meshd's own root signs instead)\n"
        "\n"
        "Examples:\n"
        "  meshctl analyze\n"
        "  meshctl analyze -f payment-virtual-service.yaml --local\n"
        "  meshctl analyze --server http://127.0.0.1:15010 -o json\n",
    .run = run_analyze,
};

enum output {
    OUT_TEXT,
    OUT_JSON,
};

/* Where one analysed resource came from: a file (with its document tree when the file could be
 * read again for positions) or the store. */
struct origin {
    const char *file; /* NULL: stored */
    const struct mesh_node *root;
    size_t doc; /* 1-based document number within the file */
};

struct analyze_run {
    struct cli_input in;
    struct mesh_resource **stored;
    size_t n_stored, cap_stored;
    struct mesh_node_docs *docs; /* per input file; empty when its positions are unknown */
    /* What is analysed, borrowed from in and stored. */
    const struct mesh_resource **res;
    struct origin *origin;
    size_t n, cap;
    struct mesh_registry *reg; /* NULL: not known */
    char **ca_names;           /* meshd's CAs, NULL-terminated; NULL: not known */
};

static void add_resource(struct analyze_run *r, const struct mesh_resource *res,
                         struct origin origin)
{
    xgrow((void **)&r->res, &r->cap, r->n + 1, sizeof(*r->res));
    r->origin = xrealloc(r->origin, r->cap * sizeof(*r->origin)); /* grows with res */
    r->res[r->n] = res;
    r->origin[r->n] = origin;
    r->n++;
}

static bool same_key(const struct mesh_resource *a, const struct mesh_resource *b)
{
    return a->kind == b->kind &&
           strcmp(mesh_resource_namespace(a), mesh_resource_namespace(b)) == 0 &&
           strcmp(a->name, b->name) == 0;
}

/* Every stored resource of every kind. */
static enum mesh_err load_stored(struct analyze_run *r, struct mesh *mesh)
{
    for (int k = 0; k < MESH_KIND_COUNT; k++) {
        struct mesh_resource **list = NULL;
        size_t n = 0;
        enum mesh_err err = mesh_list(mesh, (enum mesh_kind)k, NULL, &list, &n);
        if (err != MESH_OK) {
            cli_error("cannot list %s resources: %s", mesh_kind_name((enum mesh_kind)k),
                      *mesh_last_error(mesh) ? mesh_last_error(mesh) : mesh_strerror(err));
            return err;
        }
        if (n) { /* an empty kind has no list, and r->stored none yet */
            xgrow((void **)&r->stored, &r->cap_stored, r->n_stored + n, sizeof(*r->stored));
            memcpy(r->stored + r->n_stored, list, n * sizeof(*list));
            r->n_stored += n;
        }
        free(list); /* the resources now belong to r->stored */
    }
    return MESH_OK;
}

static const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The live registry, rebuilt from meshd's GET /v1/proxies. */
static enum mesh_err load_registry(struct analyze_run *r, const struct cli_ctx *ctx)
{
    struct mesh_http_response resp;
    enum mesh_err err = cli_meshd_request(ctx, "GET", "/v1/proxies", NULL, &resp);
    json_t *root = NULL;
    if (err != MESH_OK)
        return err;
    if (resp.status != 200) {
        char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        cli_error("cannot list meshd's proxies: %s", msg ? msg : "failed");
        free(msg);
        err = mesh_http_status_err(resp.status);
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(resp.body, resp.body_len, 0, &jerr);
    json_t *items = json_object_get(root, "items");
    if (!json_is_array(items)) {
        cli_error("meshd's proxy list is not {\"items\": [...]}: %s",
                  root ? "no items" : jerr.text);
        err = MESH_E_INVALID;
        goto out;
    }
    r->reg = mesh_registry_new(UINT64_MAX);
    size_t i;
    json_t *p;
    json_array_foreach(items, i, p)
    {
        struct mesh_labels labels = {0};
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(p, "labels"), key, v)
        {
            if (json_is_string(v))
                mesh_labels_set(&labels, key, json_string_value(v));
        }
        const char *role = json_str(p, "role");
        struct mesh_proxy_registration reg = {
            .id = json_str(p, "id"),
            .role = role && strcmp(role, "gateway") == 0 ? MESH_PROXY_GATEWAY : MESH_PROXY_SIDECAR,
            .service = json_str(p, "service"),
            .ns = json_str(p, "namespace"),
            .gateway = json_str(p, "gateway"),
            .address = json_str(p, "address"),
            .labels = &labels,
        };
        bool created;
        char *why = NULL;
        if (mesh_registry_register(r->reg, &reg, 0, 0, &created, &why) != MESH_OK)
            fprintf(stderr, "warning: ignoring proxy %s from meshd: %s\n",
                    reg.id ? reg.id : "(no id)", why);
        free(why);
        mesh_labels_clear(&labels);
    }
out:
    json_decref(root);
    mesh_http_response_clear(&resp);
    return err;
}

/* The names of meshd's CAs, from GET /v1/ca. A meshd without that route leaves them unknown. */
static enum mesh_err load_ca_names(struct analyze_run *r, const struct cli_ctx *ctx)
{
    struct mesh_http_response resp;
    enum mesh_err err = cli_meshd_request(ctx, "GET", "/v1/ca", NULL, &resp);
    json_t *root = NULL;
    if (err != MESH_OK)
        return err;
    if (resp.status == 404)
        goto out;
    if (resp.status != 200) {
        char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        cli_error("cannot read meshd's CAs: %s", msg ? msg : "failed");
        free(msg);
        err = mesh_http_status_err(resp.status);
        goto out;
    }
    root = json_loadb(resp.body, resp.body_len, 0, NULL);
    json_t *roots = json_object_get(root, "roots");
    if (!json_is_array(roots)) {
        cli_error("meshd's CA list is not {\"roots\": [...]}");
        err = MESH_E_INVALID;
        goto out;
    }
    r->ca_names = xcalloc(json_array_size(roots) + 1, sizeof(*r->ca_names));
    size_t i, n = 0;
    json_t *ca;
    json_array_foreach(roots, i, ca)
    {
        const char *name = json_str(ca, "name");
        if (name)
            r->ca_names[n++] = xstrdup(name);
    }
out:
    json_decref(root);
    mesh_http_response_clear(&resp);
    return err;
}

static bool looks_like_json(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

/* Reads a named file again as document trees, for the positions of findings; f's resources
 * came from the same documents, in order, so the n-th non-empty tree is f->res[n]. Leaves docs
 * empty when that cannot be (stdin, a file changed meanwhile). */
static void read_positions(const struct cli_input_file *f, struct mesh_node_docs *docs)
{
    if (strcmp(f->name, "<stdin>") == 0)
        return;
    FILE *fp = fopen(f->name, "rb");
    if (!fp)
        return;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, CLI_INPUT_MAX_BYTES);
    char chunk[65536];
    size_t got;
    enum mesh_err err = MESH_OK;
    while (err == MESH_OK && (got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        err = mesh_strbuf_append(&sb, chunk, got);
    fclose(fp);
    struct mesh_diags diags = {0};
    if (err == MESH_OK) {
        const char *text = sb.data ? sb.data : "";
        err = looks_like_json(text, sb.len) ? mesh_json_read(text, sb.len, f->name, docs, &diags)
                                            : mesh_yaml_read(text, sb.len, f->name, docs, &diags);
    }
    mesh_diags_clear(&diags);
    mesh_strbuf_free(&sb);
    size_t roots = 0;
    for (size_t i = 0; err == MESH_OK && i < docs->len; i++)
        roots += docs->items[i].root != NULL;
    if (err != MESH_OK || roots != f->n)
        mesh_node_docs_free(docs);
}

/* The files' resources, each replacing a stored one of the same kind, namespace and name. */
static void merge(struct analyze_run *r)
{
    for (size_t i = 0; i < r->n_stored; i++) {
        bool replaced = false;
        for (size_t j = 0; j < r->in.n_all && !replaced; j++)
            replaced = same_key(r->stored[i], r->in.all[j]);
        if (!replaced)
            add_resource(r, r->stored[i], (struct origin){0});
    }
    for (size_t fi = 0; fi < r->in.n_files; fi++) {
        const struct cli_input_file *f = &r->in.files[fi];
        const struct mesh_node_docs *docs = &r->docs[fi];
        size_t d = 0;
        for (size_t k = 0; k < f->n; k++) {
            while (d < docs->len && !docs->items[d].root)
                d++;
            struct origin o = {.file = f->name, .doc = k + 1};
            if (d < docs->len)
                o.root = docs->items[d++].root;
            add_resource(r, f->res[k], o);
        }
    }
}

/* "bad.yaml:14:9", "bad.yaml (document 2)" or NULL for a stored resource. Caller frees. */
static char *location(const struct origin *o, const char *path, unsigned *line, unsigned *col)
{
    *line = *col = 0;
    if (!o->file)
        return NULL;
    if (o->root && mesh_analyze_locate(o->root, path, line, col))
        return xasprintf("%s:%u:%u", o->file, *line, *col);
    return xasprintf("%s (document %zu)", o->file, o->doc);
}

static void print_text(const struct analyze_run *r, const struct mesh_findings *f)
{
    for (size_t i = 0; i < f->len; i++) {
        const struct mesh_finding *x = &f->items[i];
        const struct mesh_resource *res = r->res[x->resource];
        unsigned line, col;
        char *where = location(&r->origin[x->resource], x->path, &line, &col);
        printf("%s [%s] (%s %s/%s%s%s) %s%s%s\n", mesh_severity_name(x->severity),
               mesh_finding_code_id(x->code), mesh_kind_name(res->kind),
               mesh_resource_namespace(res), res->name, where ? " " : "", where ? where : "",
               x->path, *x->path ? ": " : "", x->message);
        free(where);
    }
    size_t errors = mesh_findings_count(f, MESH_SEVERITY_ERROR);
    size_t warnings = mesh_findings_count(f, MESH_SEVERITY_WARNING);
    if (f->len == 0)
        printf("No problems found in %zu resource%s.\n", r->n, r->n == 1 ? "" : "s");
    else
        printf("%zu error%s and %zu warning%s in %zu resource%s.\n", errors, errors == 1 ? "" : "s",
               warnings, warnings == 1 ? "" : "s", r->n, r->n == 1 ? "" : "s");
}

static int print_json(const struct analyze_run *r, const struct mesh_findings *f)
{
    json_t *items = json_array();
    for (size_t i = 0; i < f->len; i++) {
        const struct mesh_finding *x = &f->items[i];
        const struct mesh_resource *res = r->res[x->resource];
        unsigned line, col;
        char *where = location(&r->origin[x->resource], x->path, &line, &col);
        free(where);
        json_t *item =
            json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s}", "code",
                      mesh_finding_code_id(x->code), "title", mesh_finding_code_name(x->code),
                      "severity", mesh_severity_name(x->severity), "resource", "kind",
                      mesh_kind_name(res->kind), "namespace", mesh_resource_namespace(res), "name",
                      res->name, "path", x->path, "message", x->message);
        const struct origin *o = &r->origin[x->resource];
        if (o->file) {
            json_object_set_new(item, "file", json_string(o->file));
            json_object_set_new(item, "document", json_integer((json_int_t)o->doc));
            if (line) {
                json_object_set_new(item, "line", json_integer(line));
                json_object_set_new(item, "column", json_integer(col));
            }
        }
        json_array_append_new(items, item);
    }
    json_t *root = json_pack("{s:o, s:I, s:I, s:I, s:b}", "findings", items, "errors",
                             (json_int_t)mesh_findings_count(f, MESH_SEVERITY_ERROR), "warnings",
                             (json_int_t)mesh_findings_count(f, MESH_SEVERITY_WARNING), "resources",
                             (json_int_t)r->n, "registry", r->reg != NULL);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text)
        return cli_error("cannot print the findings as JSON");
    cli_put_text(text, stdout);
    free(text);
    return CLI_EXIT_OK;
}

static void run_free(struct analyze_run *r)
{
    for (size_t i = 0; r->docs && i < r->in.n_files; i++)
        mesh_node_docs_free(&r->docs[i]);
    free(r->docs);
    cli_input_free(&r->in);
    mesh_resource_list_free(r->stored, r->n_stored);
    free(r->res);
    free(r->origin);
    mesh_registry_free(r->reg);
    for (size_t i = 0; r->ca_names && r->ca_names[i]; i++)
        free(r->ca_names[i]);
    free(r->ca_names);
}

static bool store_named(const struct cli_ctx *ctx)
{
    const char *env = getenv("MESH_STORE");
    return ctx->store_dir || cli_server(ctx) || (env && *env);
}

static int run_analyze(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"local", no_argument, NULL, 'L'},
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_analyze;
    struct analyze_run r = {0};
    struct mesh_findings findings = {0};
    struct mesh *mesh = NULL;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    bool recursive = false, local = false;
    enum output output = OUT_TEXT;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Ro:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            files[n_files++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case 'L':
            local = true;
            break;
        case 'o':
            if (strcmp(optarg, "json") == 0) {
                output = OUT_JSON;
            } else if (strcmp(optarg, "text") == 0) {
                output = OUT_TEXT;
            } else {
                rc =
                    cli_usage_error(cmd, "unknown output format \"%s\" (use text or json)", optarg);
                goto out;
            }
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error(cmd, "unexpected argument \"%s\" (files are given with -f)",
                             argv[optind]);
        goto out;
    }
    if (local && n_files == 0) {
        rc = cli_usage_error(cmd, "--local analyzes files: give them with -f");
        goto out;
    }
    if (recursive && n_files == 0) {
        rc = cli_usage_error(cmd, "-R reads directories given with -f");
        goto out;
    }
    if (n_files) {
        rc = cli_input_read(cmd, &r.in, files, n_files, recursive, argc, argv);
        if (rc != CLI_EXIT_OK)
            goto out;
        if (!cli_input_valid(&r.in)) {
            cli_input_print_problems(&r.in, stderr);
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        r.docs = xcalloc(r.in.n_files ? r.in.n_files : 1, sizeof(*r.docs));
        for (size_t i = 0; i < r.in.n_files; i++)
            read_positions(&r.in.files[i], &r.docs[i]);
    }
    if (n_files == 0 || (!local && store_named(ctx))) {
        if (cli_open(ctx, &mesh) != MESH_OK || load_stored(&r, mesh) != MESH_OK) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        if (cli_server(ctx) &&
            (load_registry(&r, ctx) != MESH_OK || load_ca_names(&r, ctx) != MESH_OK)) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
    }
    merge(&r);
    struct mesh_analyze_live live = {.reg = r.reg, .ca_names = (const char *const *)r.ca_names};
    if (mesh_analyze(r.res, r.n, &live, &findings) != MESH_OK) {
        rc = cli_error("out of memory analyzing %zu resources", r.n);
        goto out;
    }
    rc = output == OUT_JSON ? print_json(&r, &findings) : (print_text(&r, &findings), CLI_EXIT_OK);
    if (rc == CLI_EXIT_OK && mesh_findings_count(&findings, MESH_SEVERITY_ERROR) > 0)
        rc = CLI_EXIT_ERROR;
out:
    mesh_findings_clear(&findings);
    mesh_free(mesh);
    run_free(&r);
    free(files);
    return rc;
}
