/* SPDX-License-Identifier: Apache-2.0 */
/* Names and descriptions of enum mesh_err. */
#include "mesh/err.h"

const char *mesh_strerror(enum mesh_err err)
{
    switch (err) {
    case MESH_OK:
        return "ok";
    case MESH_E_AGAIN:
        return "try again";
    case MESH_E_NOMEM:
        return "out of memory";
    case MESH_E_INVALID:
        return "invalid";
    case MESH_E_NOTFOUND:
        return "Service not found";
    case MESH_E_CONFLICT:
        return "conflict";
    case MESH_E_UNSUPPORTED:
        return "unsupported";
    case MESH_E_UNAVAILABLE:
        return "unavailable";
    case MESH_E_TLS:
        return "TLS handshake failed";
    case MESH_E_IO:
        return "input/output error";
    case MESH_E_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

const char *mesh_err_name(enum mesh_err err)
{
    switch (err) {
    case MESH_OK:
        return "MESH_OK";
    case MESH_E_AGAIN:
        return "MESH_E_AGAIN";
    case MESH_E_NOMEM:
        return "MESH_E_NOMEM";
    case MESH_E_INVALID:
        return "MESH_E_INVALID";
    case MESH_E_NOTFOUND:
        return "MESH_E_NOTFOUND";
    case MESH_E_CONFLICT:
        return "MESH_E_CONFLICT";
    case MESH_E_UNSUPPORTED:
        return "MESH_E_UNSUPPORTED";
    case MESH_E_UNAVAILABLE:
        return "MESH_E_UNAVAILABLE";
    case MESH_E_TLS:
        return "MESH_E_TLS";
    case MESH_E_IO:
        return "MESH_E_IO";
    case MESH_E_INTERNAL:
        return "MESH_E_INTERNAL";
    }
    return "MESH_E_UNKNOWN";
}
