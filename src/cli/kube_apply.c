/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl apply / diff against a Kubernetes cluster (kube_apply.h). */
#include "kube_apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "diff.h"
#include "kube/client.h"
#include "kube/cluster.h"
#include "kube/fields.h"
#include "kube/sync.h"
#include "provider_input.h"

/* --- flags --- */

int cli_kube_option(struct cli_kube_opts *o, const struct cli_command *cmd, int c, const char *arg)
{
    switch (c) {
    case CLI_KUBE_OPT_PROVIDER:
        o->provider = arg;
        return CLI_EXIT_OK;
    case CLI_KUBE_OPT_VERSION:
        o->version = arg;
        break;
    case CLI_KUBE_OPT_ALLOW_PARTIAL:
        o->allow_partial = true;
        break;
    case CLI_KUBE_OPT_CONTEXT:
        o->context = arg;
        break;
    case CLI_KUBE_OPT_KUBECONFIG:
        o->kubeconfig = arg;
        break;
    case 'n':
    case CLI_KUBE_OPT_NAMESPACE:
        o->ns = arg;
        break;
    case CLI_KUBE_OPT_TIMEOUT: {
        char *end = NULL;
        double s = strtod(arg, &end);
        if (!end || *end || !(s > 0) || s > 3600)
            return cli_usage_error(cmd, "--timeout takes seconds, from 0.001 to 3600");
        o->timeout_ms = (long)(s * 1000 + 0.5) ? (long)(s * 1000 + 0.5) : 1;
        break;
    }
    case CLI_KUBE_OPT_FORCE:
        o->force = true;
        break;
    case CLI_KUBE_OPT_PRUNE:
        o->prune = true;
        break;
    default:
        return -1;
    }
    o->any = true;
    return CLI_EXIT_OK;
}

int cli_kube_check_flags(const struct cli_kube_opts *o, const struct cli_command *cmd)
{
    if (!o->provider)
        return CLI_EXIT_OK;
    if (strcmp(o->provider, "native") == 0) {
        if (o->any)
            return cli_usage_error(cmd, "--provider native applies to the store: --version, "
                                        "--allow-partial, --context, --kubeconfig, --namespace, "
                                        "--timeout, --force and --prune are for a cluster "
                                        "(istio, linkerd)");
        return CLI_EXIT_OK;
    }
    if (!mesh_translator_find(o->provider))
        return cli_usage_error(cmd, "unknown provider \"%s\" (use istio, linkerd or native)",
                               o->provider);
    return CLI_EXIT_OK;
}

int cli_kube_select_provider(const struct cli_kube_opts *o, const struct cli_command *cmd,
                             struct cli_ctx *ctx)
{
    int rc = cli_kube_check_flags(o, cmd);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!o->provider && o->any)
        return cli_usage_error(cmd, "--version, --context and --kubeconfig name a cluster: give "
                                    "--provider istio or linkerd too");
    ctx->provider = o->provider;
    ctx->kubeconfig = o->kubeconfig;
    ctx->context = o->context;
    ctx->version = o->version;
    return CLI_EXIT_OK;
}

bool cli_kube_wanted(const struct cli_input *in, const struct cli_kube_opts *o)
{
    if (o->provider)
        return strcmp(o->provider, "native") != 0;
    return o->any || cli_provider_named(in) != NULL;
}

/* --- the cluster --- */

/* What apply and diff start with: the translation, and the cluster checked for its provider. */
struct session {
    struct mesh_translation t;
    const char *provider;
    struct mesh_kube_cluster cluster;
};

static void session_close(struct session *s)
{
    mesh_translation_clear(&s->t);
    mesh_kube_cluster_close(&s->cluster);
}

static int session_open(const struct cli_input *in, const struct cli_kube_opts *o,
                        struct session *s)
{
    const struct mesh_kubernetes_config *kc = cli_provider_kube_config(in);
    /* The flags win over the input's KubernetesConfig, field by field. */
    struct mesh_kube_target target = {
        .kubeconfig = o->kubeconfig ? o->kubeconfig
                      : kc          ? kc->kubeconfig
                                    : NULL,
        .context = o->context ? o->context
                   : kc       ? kc->context
                              : NULL,
        .ns = o->ns ? o->ns
              : kc  ? kc->target_namespace
                    : NULL,
        .timeout_ms = o->timeout_ms,
    };
    char *errmsg = NULL, *version = NULL;
    int rc =
        cli_provider_translate(in, o->provider, o->version, o->allow_partial, &s->t, &s->provider);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_provider_print_warnings(&s->t);
    enum mesh_err err = mesh_kube_cluster_open(&target, &s->cluster, &errmsg);
    if (err == MESH_OK)
        err = mesh_kube_precheck(&s->cluster, s->provider, &version, &errmsg);
    if (err != MESH_OK)
        rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
    free(version);
    free(errmsg);
    return rc;
}

/* --- apply --- */

/* Applies one object; prints its line, or its error. *failed set on error. */
static void apply_one(struct mesh_kube_client *c, const struct mesh_node *obj, bool force,
                      bool *failed)
{
    static const char *const words[] = {
        [MESH_KUBE_CREATED] = "created",
        [MESH_KUBE_CONFIGURED] = "configured",
        [MESH_KUBE_UNCHANGED] = "unchanged",
    };
    enum mesh_kube_outcome outcome = MESH_KUBE_CREATED;
    char *errmsg = NULL, *label = mesh_kube_object_label(obj);
    enum mesh_err err = mesh_kube_sync_apply(c, obj, force, &outcome, &errmsg);

    if (err == MESH_E_CONFLICT)
        cli_error("%s (another field manager owns these fields: --force takes them over for "
                  "meshctl)",
                  errmsg);
    else if (err != MESH_OK)
        cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
    else
        printf("%s %s\n", label, words[outcome]);
    fflush(stdout);
    if (err != MESH_OK)
        *failed = true;
    free(errmsg);
    free(label);
}

static void print_pruned(void *arg, const char *label)
{
    (void)arg;
    printf("%s pruned\n", label);
    fflush(stdout);
}

int cli_kube_apply(const struct cli_input *in, const struct cli_kube_opts *o)
{
    struct session s = {0};
    bool failed = false;
    int rc = session_open(in, o, &s);
    if (rc != CLI_EXIT_OK)
        goto out;
    /* Every object is tried, as kubectl does, so that one refusal shows all the others too. */
    for (size_t i = 0; i < s.t.n_objects; i++)
        apply_one(s.cluster.client, s.t.objects[i], o->force, &failed);
    if (failed) {
        rc = CLI_EXIT_ERROR;
        if (o->prune)
            fprintf(stderr, "nothing pruned: not every object was applied\n");
        goto out;
    }
    if (o->prune) {
        char *errmsg = NULL;
        const struct mesh_kube_prune_hooks hooks = {.pruned = print_pruned};
        enum mesh_err err = mesh_kube_prune(s.cluster.client, s.provider, s.t.objects,
                                            s.t.n_objects, &hooks, &errmsg);
        if (err != MESH_OK)
            rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
        free(errmsg);
    }
out:
    session_close(&s);
    return rc;
}

/* --- diff --- */

static enum mesh_err yaml_of(const struct mesh_node *n, char **out)
{
    *out = NULL;
    if (!n) {
        *out = xstrdup("");
        return MESH_OK;
    }
    return mesh_yaml_write(n, out);
}

int cli_kube_diff(const struct cli_input *in, const struct cli_kube_opts *o, bool *differs)
{
    struct session s = {0};
    int rc = session_open(in, o, &s);

    *differs = false;
    for (size_t i = 0; rc == CLI_EXIT_OK && i < s.t.n_objects; i++) {
        const struct mesh_node *obj = s.t.objects[i];
        struct mesh_node *live = NULL, *kept = NULL;
        char *errmsg = NULL, *live_yaml = NULL, *file_yaml = NULL;
        char *label = mesh_kube_object_label(obj), *live_label = NULL, *file_label = NULL;
        const char *ns = mesh_read_str(obj, "metadata.namespace");
        enum mesh_err err = mesh_kube_get(s.cluster.client, mesh_read_str(obj, "apiVersion"),
                                          mesh_read_str(obj, "kind"), ns && *ns ? ns : NULL,
                                          mesh_read_name(obj), &live, &errmsg);
        if (err == MESH_E_NOTFOUND)
            err = MESH_OK;
        if (err != MESH_OK) {
            rc = cli_error("%s", errmsg ? errmsg : mesh_strerror(err));
            goto next;
        }
        kept = mesh_kube_fields_kept(live, obj);
        if (yaml_of(kept, &live_yaml) != MESH_OK || yaml_of(obj, &file_yaml) != MESH_OK) {
            rc = cli_error("cannot print %s (out of memory)", label);
            goto next;
        }
        live_label = xasprintf("live/%s", label);
        file_label = xasprintf("rendered/%s", label);
        if (cli_diff_unified(live_yaml, file_yaml, live_label, file_label, stdout))
            *differs = true;
    next:
        mesh_node_free(live);
        mesh_node_free(kept);
        free(errmsg);
        free(live_yaml);
        free(file_yaml);
        free(live_label);
        free(file_label);
        free(label);
    }
    session_close(&s);
    return rc;
}
