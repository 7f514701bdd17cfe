/* SPDX-License-Identifier: Apache-2.0 */
/* Service hosts read as a Service's name and namespace (service_host.h). */
#include "service_host.h"

#include <string.h>

bool mesh_service_host_split(const char *host, const char *default_ns, struct mesh_service_ref *out)
{
    if (!host || !*host)
        return false;
    const char *dot = strchr(host, '.');
    if (!dot) {
        if (!default_ns || !*default_ns)
            return false;
        *out = (struct mesh_service_ref){host, strlen(host), default_ns, strlen(default_ns)};
        return true;
    }
    const char *ns = dot + 1;
    const char *rest = strchr(ns, '.');
    if (rest && strcmp(rest, ".svc") != 0 && strcmp(rest, ".svc.cluster.local") != 0)
        return false;
    size_t ns_len = rest ? (size_t)(rest - ns) : strlen(ns);
    if (dot == host || ns_len == 0)
        return false;
    *out = (struct mesh_service_ref){host, (size_t)(dot - host), ns, ns_len};
    return true;
}

bool mesh_service_ref_is(const struct mesh_service_ref *ref, const char *name, const char *ns)
{
    return strncmp(ref->name, name, ref->name_len) == 0 && name[ref->name_len] == '\0' &&
           strncmp(ref->ns, ns, ref->ns_len) == 0 && ns[ref->ns_len] == '\0';
}
