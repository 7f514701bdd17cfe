/* SPDX-License-Identifier: Apache-2.0 */
/* SecurityPolicy: field tables (mtls, authorization rules), rules, constructors. */
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "mesh/security_policy.h"

static const char *const mtls_modes[] = {"", "strict", "permissive", "disable", NULL};

const char *mesh_mtls_mode_name(enum mesh_mtls_mode mode)
{
    if (mode <= MESH_MTLS_UNSET || mode > MESH_MTLS_DISABLE)
        return NULL;
    return mtls_modes[mode];
}

static const struct mesh_field mtls_fields[] = {
    {.name = "mode",
     .type = MESH_F_ENUM,
     .offset = offsetof(struct mesh_mtls, mode),
     .names = mtls_modes},
    {.name = "certificate_authority",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_mtls, certificate_authority),
     .check = MESH_CHECK_DNS_LABEL},
};

static const struct mesh_schema mtls_schema = {sizeof(struct mesh_mtls), MESH_FIELDS(mtls_fields),
                                               -1, NULL};

static void rule_validate(struct mesh_decoder *d, const void *obj, const struct mesh_node *node,
                          const char *path)
{
    const struct mesh_authorization_rule *r = obj;
    if (r->to.len == 0)
        mesh_decoder_error(d, node, path, "needs at least one service in \"to\"");
}

static const struct mesh_field rule_fields[] = {
    {.name = "from",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_authorization_rule, from),
     .check = MESH_CHECK_IDENTITY},
    {.name = "to",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_authorization_rule, to),
     .check = MESH_CHECK_SERVICE_HOST},
    {.name = "methods",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_authorization_rule, methods),
     .check = MESH_CHECK_METHOD},
    {.name = "paths",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_authorization_rule, paths),
     .check = MESH_CHECK_AUTHZ_PATH},
};

static const struct mesh_schema rule_schema = {sizeof(struct mesh_authorization_rule),
                                               MESH_FIELDS(rule_fields), -1, rule_validate};

static void security_policy_validate(struct mesh_decoder *d, const void *obj,
                                     const struct mesh_node *node, const char *path)
{
    const struct mesh_security_policy *sp = obj;
    if (sp->mtls.mode == MESH_MTLS_UNSET && sp->n_authorization == 0)
        mesh_decoder_error(d, node, path, "needs mtls.mode or at least one authorization rule");
}

static const struct mesh_field security_policy_fields[] = {
    {.name = "services",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_security_policy, services),
     .check = MESH_CHECK_SERVICE_HOST},
    {.name = "mtls",
     .type = MESH_F_OBJECT,
     .offset = offsetof(struct mesh_security_policy, mtls),
     .schema = &mtls_schema},
    {.name = "authorization",
     .type = MESH_F_OBJECTS,
     .offset = offsetof(struct mesh_security_policy, authorization),
     .count_offset = offsetof(struct mesh_security_policy, n_authorization),
     .schema = &rule_schema},
};

const struct mesh_schema mesh_security_policy_schema = {sizeof(struct mesh_security_policy),
                                                        MESH_FIELDS(security_policy_fields), -1,
                                                        security_policy_validate};

struct mesh_security_policy *mesh_security_policy_new(const char *name, const char *ns)
{
    return (struct mesh_security_policy *)mesh_resource_new(MESH_KIND_SECURITY_POLICY, name, ns);
}

void mesh_security_policy_free(struct mesh_security_policy *sp)
{
    mesh_resource_free(sp ? &sp->res : NULL);
}

struct mesh_authorization_rule *mesh_security_policy_add_rule(struct mesh_security_policy *sp)
{
    return mesh_schema_append((void **)&sp->authorization, &sp->n_authorization, &rule_schema);
}
