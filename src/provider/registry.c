/* SPDX-License-Identifier: Apache-2.0 */
/* The process-wide provider table: the built-in providers plus those registered at run time. */
#include "registry.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "kube.h"
#include "native.h"

/* Providers compiled into this build. */
static const struct mesh_provider_ops *const builtin[] = {
    &mesh_native_provider,
    &mesh_istio_provider,
    &mesh_linkerd_provider,
};

#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

/* Registered providers (borrowed ops), guarded by lock. The array is never freed: a registered
 * provider stays registered for the life of the process. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const struct mesh_provider_ops **registered;
static size_t n_registered;
static size_t cap_registered;

static const struct mesh_provider_ops *find_builtin(const char *name)
{
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    return NULL;
}

/* Caller holds lock. */
static const struct mesh_provider_ops *find_registered(const char *name)
{
    for (size_t i = 0; i < n_registered; i++)
        if (strcmp(registered[i]->name, name) == 0)
            return registered[i];
    return NULL;
}

static bool ops_complete(const struct mesh_provider_ops *ops)
{
    return ops && ops->name && ops->name[0] && ops->open && ops->close && ops->apply && ops->get &&
           ops->list && ops->remove;
}

/* Caller holds lock. */
static enum mesh_err append_registered(const struct mesh_provider_ops *ops)
{
    if (n_registered == cap_registered) {
        size_t cap = cap_registered ? 2 * cap_registered : 8;
        void *p = realloc(registered, cap * sizeof(*registered));
        if (!p)
            return MESH_E_NOMEM;
        registered = p;
        cap_registered = cap;
    }
    registered[n_registered++] = ops;
    return MESH_OK;
}

enum mesh_err mesh_register_provider(const struct mesh_provider_ops *ops)
{
    if (!ops_complete(ops))
        return MESH_E_INVALID;
    if (find_builtin(ops->name))
        return MESH_E_CONFLICT;

    enum mesh_err err = MESH_E_CONFLICT;
    pthread_mutex_lock(&lock);
    if (!find_registered(ops->name))
        err = append_registered(ops);
    pthread_mutex_unlock(&lock);
    return err;
}

/* "unknown provider "x" (known: native, istio, linkerd, custom…)". Caller holds lock. */
static char *unknown_message(const char *name)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb, "unknown provider \"%s\" (known: ", name);
    for (size_t i = 0; i < N_BUILTIN; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? ", " : "", builtin[i]->name);
    for (size_t i = 0; i < n_registered; i++)
        mesh_strbuf_printf(&sb, ", %s", registered[i]->name);
    mesh_strbuf_puts(&sb, ")");
    return mesh_strbuf_take(&sb);
}

enum mesh_err mesh_registry_lookup(const char *name, const struct mesh_provider_ops **out,
                                   char **errmsg)
{
    enum mesh_err err = MESH_OK;
    char *msg = NULL;

    *out = find_builtin(name);
    if (*out)
        return MESH_OK;
    pthread_mutex_lock(&lock);
    *out = find_registered(name);
    if (!*out) {
        err = MESH_E_NOTFOUND;
        msg = unknown_message(name);
    }
    pthread_mutex_unlock(&lock);
    if (errmsg && msg) {
        *errmsg = msg;
        msg = NULL;
    }
    free(msg);
    return err;
}
