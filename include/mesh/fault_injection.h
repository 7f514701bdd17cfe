/* SPDX-License-Identifier: Apache-2.0 */
/* FaultInjection: a fixed delay and/or an abort with a status for a share of requests. */
#ifndef MESH_FAULT_INJECTION_H
#define MESH_FAULT_INJECTION_H

#include <stdint.h>

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh_http_abort {
    uint32_t http_status; /* 200..599; 0 = no abort */
    double percentage;    /* 0..100, or MESH_UNSET (= 100) */
};

struct mesh_fault {
    uint64_t delay_ms;       /* 0 = no delay */
    double delay_percentage; /* 0..100, or MESH_UNSET (= 100) */
    struct mesh_http_abort abort;
};

/* Start a struct mesh_fault from this, so that unset percentages read as unset (100%), not 0%. */
#define MESH_FAULT_INIT                                                                            \
    {                                                                                              \
        .delay_percentage = MESH_UNSET, .abort = {.percentage = MESH_UNSET }                       \
    }

struct mesh_fault_injection {
    struct mesh_resource res; /* kind MESH_KIND_FAULT_INJECTION */
    char *service;            /* the Service or VirtualService it applies to */
    char *route;              /* with a VirtualService: only this named route; NULL = all */
    struct mesh_fault fault;
};

struct mesh_fault_injection *mesh_fault_injection_new(const char *name, const char *ns);
void mesh_fault_injection_free(struct mesh_fault_injection *fi);

#ifdef __cplusplus
}
#endif
#endif
