/* SPDX-License-Identifier: Apache-2.0 */
/* Example: the seed's payment-security policy (strict mTLS, orders may POST to payment). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mesh/mesh.h>

/* mTLS strict with the internal CA; orders.default.svc may POST /api/v1/process on payment. */
static struct mesh_security_policy *payment_security(void)
{
    struct mesh_security_policy *sp = mesh_security_policy_new("payment-security", "default");
    struct mesh_authorization_rule *rule = sp ? mesh_security_policy_add_rule(sp) : NULL;

    if (!rule || mesh_string_list_add(&rule->from, "orders.default.svc") != MESH_OK ||
        mesh_string_list_add(&rule->to, "payment.default.svc") != MESH_OK ||
        mesh_string_list_add(&rule->methods, "POST") != MESH_OK ||
        mesh_string_list_add(&rule->paths, "/api/v1/process") != MESH_OK)
        goto fail;
    sp->mtls.mode = MESH_MTLS_STRICT;
    sp->mtls.certificate_authority = strdup("internal-ca");
    if (!sp->mtls.certificate_authority)
        goto fail;
    return sp;
fail:
    mesh_security_policy_free(sp);
    return NULL;
}

static void print_list(const char *label, const struct mesh_string_list *list)
{
    printf("    %s", label);
    for (size_t i = 0; i < list->len; i++)
        printf("%s %s", i ? "," : "", list->items[i]);
    printf("\n");
}

static void print_security_policy(const struct mesh_security_policy *sp)
{
    printf("SecurityPolicy %s/%s (resource_version %llu)\n", mesh_resource_namespace(&sp->res),
           sp->res.name, (unsigned long long)sp->res.resource_version);
    printf("  mtls %s, certificate_authority %s\n", mesh_mtls_mode_name(sp->mtls.mode),
           sp->mtls.certificate_authority ? sp->mtls.certificate_authority : "(mesh CA)");
    for (size_t i = 0; i < sp->n_authorization; i++) {
        printf("  rule %zu\n", i);
        print_list("from", &sp->authorization[i].from);
        print_list("to", &sp->authorization[i].to);
        print_list("methods", &sp->authorization[i].methods);
        print_list("paths", &sp->authorization[i].paths);
    }
}

int main(int argc, char **argv)
{
    /* NULL store_dir: libmesh falls back to $MESH_STORE, then ./.mesh. */
    struct mesh_config cfg = {.provider = "native", .store_dir = argc > 1 ? argv[1] : NULL};
    struct mesh *mesh = NULL;
    struct mesh_security_policy *sp = NULL, *stored = NULL;
    char *why = NULL;
    int rc = 1;

    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK) {
        fprintf(stderr, "security_policy: %s\n", why ? why : "cannot open the mesh");
        goto out;
    }
    sp = payment_security();
    if (!sp) {
        fprintf(stderr, "security_policy: out of memory\n");
        goto out;
    }
    if (mesh_apply_security_policy(mesh, sp) != MESH_OK ||
        mesh_get_security_policy(mesh, "payment-security", "default", &stored) != MESH_OK) {
        fprintf(stderr, "security_policy: %s\n", mesh_last_error(mesh));
        goto out;
    }
    print_security_policy(stored);
    rc = 0;
out:
    mesh_security_policy_free(stored);
    mesh_security_policy_free(sp);
    mesh_free(mesh);
    free(why);
    return rc;
}
