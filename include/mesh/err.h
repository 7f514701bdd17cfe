/* SPDX-License-Identifier: Apache-2.0 */
/* The one error enum of the project, shared by libmesh, meshctl and the daemons. */
#ifndef MESH_ERR_H
#define MESH_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

enum mesh_err {
    MESH_OK = 0,
    MESH_E_AGAIN,       /* not ready yet; try again (parsers, non-blocking I/O) */
    MESH_E_NOMEM,       /* allocation failed */
    MESH_E_INVALID,     /* the input breaks a validation rule */
    MESH_E_NOTFOUND,    /* the named resource does not exist ("Service not found") */
    MESH_E_CONFLICT,    /* stale resource_version, or a concurrent change */
    MESH_E_UNSUPPORTED, /* the provider cannot express or do this */
    MESH_E_UNAVAILABLE, /* a backend (store, server, cluster) cannot be reached */
    MESH_E_TLS,         /* TLS handshake or certificate problem */
    MESH_E_IO,          /* file or socket error */
    MESH_E_INTERNAL,    /* a bug or a corrupted store */
};

/* A short, static, human description of err ("Service not found" for MESH_E_NOTFOUND).
 * Never NULL; thread-safe. */
const char *mesh_strerror(enum mesh_err err);

/* The enum's name ("MESH_E_NOTFOUND"), for logs and tests. Never NULL. */
const char *mesh_err_name(enum mesh_err err);

#ifdef __cplusplus
}
#endif
#endif
