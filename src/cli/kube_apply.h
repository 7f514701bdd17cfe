/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl apply` and `meshctl diff` against a Kubernetes cluster: the input rendered for Istio or
 * Linkerd (provider_input.h), then server-side applied (and pruned), or compared with the live
 * objects, through src/kube. */
#ifndef MESH_CLI_KUBE_APPLY_H
#define MESH_CLI_KUBE_APPLY_H

#include <stdbool.h>

#include "cli.h"
#include "input.h"

/* The flags apply and diff share for a cluster; long-only, numbered past cli_long_opt. */
enum cli_kube_opt {
    CLI_KUBE_OPT_PROVIDER = 400,
    CLI_KUBE_OPT_VERSION,
    CLI_KUBE_OPT_ALLOW_PARTIAL,
    CLI_KUBE_OPT_CONTEXT,
    CLI_KUBE_OPT_KUBECONFIG,
    CLI_KUBE_OPT_NAMESPACE,
    CLI_KUBE_OPT_TIMEOUT,
    CLI_KUBE_OPT_FORCE,
    CLI_KUBE_OPT_PRUNE,
};

/* clang-format off */
#define CLI_KUBE_OPTIONS                                                   \
    {"provider", required_argument, NULL, CLI_KUBE_OPT_PROVIDER},          \
    {"version", required_argument, NULL, CLI_KUBE_OPT_VERSION},            \
    {"allow-partial", no_argument, NULL, CLI_KUBE_OPT_ALLOW_PARTIAL},      \
    {"context", required_argument, NULL, CLI_KUBE_OPT_CONTEXT},            \
    {"kubeconfig", required_argument, NULL, CLI_KUBE_OPT_KUBECONFIG},      \
    {"namespace", required_argument, NULL, CLI_KUBE_OPT_NAMESPACE},        \
    {"timeout", required_argument, NULL, CLI_KUBE_OPT_TIMEOUT}
/* What get and delete take to read or write a cluster through libmesh's istio and linkerd
 * providers (-n is their own namespace flag there). */
#define CLI_KUBE_PROVIDER_OPTIONS                                          \
    {"provider", required_argument, NULL, CLI_KUBE_OPT_PROVIDER},          \
    {"version", required_argument, NULL, CLI_KUBE_OPT_VERSION},            \
    {"context", required_argument, NULL, CLI_KUBE_OPT_CONTEXT},            \
    {"kubeconfig", required_argument, NULL, CLI_KUBE_OPT_KUBECONFIG}
/* clang-format on */

/* What the flags asked for. All strings borrowed from argv. */
struct cli_kube_opts {
    const char *provider; /* --provider: istio, linkerd, or native (the store) */
    const char *version;
    bool allow_partial;
    const char *context, *kubeconfig, *ns;
    long timeout_ms;
    bool force, prune; /* apply only */
    bool any;          /* a flag other than --provider that only means something for a cluster */
};

/* Records one of the flags above (c, arg as getopt_long gave them). Returns CLI_EXIT_OK,
 * CLI_EXIT_USAGE after printing why (a bad --timeout), or -1 when c is not one of them. */
int cli_kube_option(struct cli_kube_opts *o, const struct cli_command *cmd, int c, const char *arg);

/* For get and delete: checks the flags (cli_kube_check_flags), then hands the provider and
 * cluster they name to ctx for cli_open. CLI_EXIT_OK, or CLI_EXIT_USAGE after printing why. */
int cli_kube_select_provider(const struct cli_kube_opts *o, const struct cli_command *cmd,
                             struct cli_ctx *ctx);

/* Checks the flags before the input is read: CLI_EXIT_OK, or CLI_EXIT_USAGE after printing why
 * (an unknown provider; cluster flags with --provider native). */
int cli_kube_check_flags(const struct cli_kube_opts *o, const struct cli_command *cmd);

/* Whether the (valid) input goes to a cluster rather than the store: --provider istio|linkerd,
 * a cluster-only flag, or else MeshConfigs in the input naming exactly one of istio and linkerd.
 * --provider native always means the store. */
bool cli_kube_wanted(const struct cli_input *in, const struct cli_kube_opts *o);

/* Renders in for the provider, checks the cluster (API server, CRDs), then server-side applies
 * every object with field manager meshctl (o->force: taking over other managers' fields), one
 * "Kind/ns/name created|configured|unchanged" line each; with o->prune, then deletes what carries
 * our managed-by label anywhere in the cluster and is no longer rendered ("... pruned"): the
 * input is then the whole of what we manage there. Returns an enum cli_exit value; errors are
 * printed. */
int cli_kube_apply(const struct cli_input *in, const struct cli_kube_opts *o);

/* Renders in and prints, per object, the unified diff from the live object (only the fields the
 * rendered one sets; an absent object is all added lines) to the rendered one. *differs: whether
 * any object differs. Returns an enum cli_exit value; errors are printed. */
int cli_kube_diff(const struct cli_input *in, const struct cli_kube_opts *o, bool *differs);

#endif
