/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Kubernetes client's pure parts: URLs of every kind the translators emit,
 * API server errors turned into messages, and mesh_register_with_kubernetes' own refusals.
 * Requests themselves are tested against a server in tests/e2e/test_kube.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/client.h"
#include "kube/cluster.h"
#include "mesh/mesh.h"

static void path_is(const char *api, const char *kind, const char *ns, const char *name,
                    const char *want)
{
    char *path = NULL, *why = NULL;
    assert_int_equal(mesh_kube_path(api, kind, ns, name, &path, &why), MESH_OK);
    assert_string_equal(path, want);
    free(path);
}

static void test_paths_of_every_emitted_kind(void **state)
{
    (void)state;
    path_is("networking.istio.io/v1", "VirtualService", "default", "payment",
            "/apis/networking.istio.io/v1/namespaces/default/virtualservices/payment");
    path_is("networking.istio.io/v1beta1", "DestinationRule", "shop", NULL,
            "/apis/networking.istio.io/v1beta1/namespaces/shop/destinationrules");
    path_is("security.istio.io/v1", "PeerAuthentication", "istio-system", "default",
            "/apis/security.istio.io/v1/namespaces/istio-system/peerauthentications/default");
    path_is("security.istio.io/v1", "AuthorizationPolicy", NULL, NULL,
            "/apis/security.istio.io/v1/authorizationpolicies");
    path_is("telemetry.istio.io/v1", "Telemetry", "istio-system", "mesh-default",
            "/apis/telemetry.istio.io/v1/namespaces/istio-system/telemetries/mesh-default");
    path_is("networking.istio.io/v1", "Gateway", "default", "gw",
            "/apis/networking.istio.io/v1/namespaces/default/gateways/gw");
    path_is("policy.linkerd.io/v1beta3", "HTTPRoute", "default", "r",
            "/apis/policy.linkerd.io/v1beta3/namespaces/default/httproutes/r");
    path_is("policy.linkerd.io/v1beta3", "Server", "default", "s",
            "/apis/policy.linkerd.io/v1beta3/namespaces/default/servers/s");
    path_is("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "default", "m",
            "/apis/policy.linkerd.io/v1alpha1/namespaces/default/meshtlsauthentications/m");
    path_is("policy.linkerd.io/v1alpha1", "NetworkAuthentication", "default", "n",
            "/apis/policy.linkerd.io/v1alpha1/namespaces/default/networkauthentications/n");
    path_is("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "default", "a",
            "/apis/policy.linkerd.io/v1alpha1/namespaces/default/authorizationpolicies/a");
    path_is("v1", "Service", "default", "payment", "/api/v1/namespaces/default/services/payment");
    /* Namespaces are cluster-scoped: a namespace given for them is not part of the URL. */
    path_is("v1", "Namespace", "ignored", "payments", "/api/v1/namespaces/payments");
    char *path = NULL, *why = NULL;
    assert_int_equal(mesh_kube_path("apps/v1", "Deployment", "default", "x", &path, &why),
                     MESH_E_UNSUPPORTED);
    assert_null(path);
    assert_string_equal(why, "kind Deployment of apps/v1 is not one meshctl knows how to address");
    free(why);
    /* The same kind name in two groups is two entries. */
    assert_string_equal(mesh_kube_kind_find("security.istio.io", "AuthorizationPolicy")->plural,
                        "authorizationpolicies");
    assert_null(mesh_kube_kind_find("", "VirtualService"));
}

static void test_status_bodies_become_messages(void **state)
{
    (void)state;
    enum mesh_err err = MESH_OK;
    const char *conflict =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"Apply failed with 1 conflict: conflict with \\\"kubectl\\\" using "
        "networking.istio.io/v1: .spec.http\",\"reason\":\"Conflict\",\"code\":409}";
    char *msg = mesh_kube_status_message(409, conflict, strlen(conflict),
                                         "cannot apply VirtualService default/payment", &err);
    assert_int_equal(err, MESH_E_CONFLICT);
    assert_string_equal(msg, "cannot apply VirtualService default/payment: the API server "
                             "answered 409 Conflict: Apply failed with 1 conflict: conflict "
                             "with \"kubectl\" using networking.istio.io/v1: .spec.http");
    free(msg);
    const char *invalid = "{\"kind\":\"Status\",\"message\":\"VirtualService.networking.istio.io "
                          "\\\"x\\\" is invalid: spec.hosts: Required value\",\"reason\":"
                          "\"Invalid\",\"code\":422}";
    msg = mesh_kube_status_message(422, invalid, strlen(invalid), "cannot apply X", &err);
    assert_int_equal(err, MESH_E_INVALID);
    assert_string_equal(msg, "cannot apply X: the API server answered 422 Invalid: "
                             "VirtualService.networking.istio.io \"x\" is invalid: spec.hosts: "
                             "Required value");
    free(msg);
    const char *nf = "{\"kind\":\"Status\",\"message\":\"x not found\",\"reason\":\"NotFound\"}";
    msg = mesh_kube_status_message(404, nf, strlen(nf), "cannot read Y", &err);
    assert_int_equal(err, MESH_E_NOTFOUND);
    free(msg);
    const char *forbidden = "{\"kind\":\"Status\",\"message\":\"virtualservices is forbidden: "
                            "User \\\"dev\\\" cannot patch\",\"reason\":\"Forbidden\"}";
    msg = mesh_kube_status_message(403, forbidden, strlen(forbidden), "cannot apply Z", &err);
    assert_int_equal(err, MESH_E_UNAVAILABLE);
    assert_non_null(strstr(msg, "403 Forbidden: virtualservices is forbidden: User \"dev\""));
    assert_non_null(strstr(msg, "lacks the RBAC permission"));
    free(msg);
    /* Not a Status (a proxy's page): its first line, made printable. */
    const char *html = "<html>bad\x01gateway</html>\nmore";
    msg = mesh_kube_status_message(502, html, strlen(html), "cannot read V", &err);
    assert_int_equal(err, MESH_E_UNAVAILABLE);
    assert_string_equal(msg, "cannot read V: the API server answered 502 error: "
                             "<html>bad?gateway</html>");
    free(msg);
}

static void test_register_needs_a_kubernetes_provider(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_kube_client.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct mesh *mesh = NULL;
    assert_int_equal(mesh_new(&(struct mesh_config){.store_dir = dir}, &mesh), MESH_OK);
    assert_int_equal(mesh_register_with_kubernetes(mesh, &(struct mesh_kube_config){0}),
                     MESH_E_INVALID);
    assert_string_equal(mesh_last_error(mesh), "no provider to check the cluster for: set "
                                               "provider (istio or linkerd), or store a "
                                               "MeshConfig naming one");
    assert_int_equal(
        mesh_register_with_kubernetes(mesh, &(struct mesh_kube_config){.provider = "native"}),
        MESH_E_INVALID);
    /* A context that is not in the kubeconfig: the kubeconfig's message. */
    char kc[96];
    snprintf(kc, sizeof(kc), "%s/kc", dir);
    FILE *f = fopen(kc, "w");
    fputs("contexts: [{name: a, context: {cluster: c}}]\n", f);
    fclose(f);
    assert_int_equal(
        mesh_register_with_kubernetes(mesh, &(struct mesh_kube_config){.context = "production",
                                                                       .kubeconfig = kc,
                                                                       .provider = "istio"}),
        MESH_E_NOTFOUND);
    char want[160];
    snprintf(want, sizeof(want), "context \"production\" is not in %s (contexts: a)", kc);
    assert_string_equal(mesh_last_error(mesh), want);
    mesh_free(mesh);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_of_every_emitted_kind),
        cmocka_unit_test(test_status_bodies_become_messages),
        cmocka_unit_test(test_register_needs_a_kubernetes_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
