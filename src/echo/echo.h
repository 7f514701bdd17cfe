/* SPDX-License-Identifier: Apache-2.0 */
/* mesh-echo internals: the settings the workers share and the worker lifecycle. */
#ifndef MESH_ECHO_ECHO_H
#define MESH_ECHO_ECHO_H

#include <stddef.h>
#include <sys/socket.h>

#include "mesh/err.h"

#define MESH_ECHO_NAME_MAX 128

/* Read-only once the workers run. */
struct mesh_echo_config {
    char name[MESH_ECHO_NAME_MAX + 1]; /* printable ASCII, no CR/LF: safe in a header value */
    size_t name_len;
};

struct mesh_echo_worker;

/* Creates a worker serving connections accepted on listen_fd (non-blocking; the worker takes
 * ownership of it, also on failure). cfg is borrowed for the worker's lifetime. MESH_E_IO or
 * MESH_E_NOMEM with a message in msg. Main thread. */
enum mesh_err mesh_echo_worker_create(const struct mesh_echo_config *cfg, int listen_fd,
                                      struct mesh_echo_worker **out, char *msg, size_t msg_size);
/* Runs the worker's loop until mesh_echo_worker_stop; a pthread start routine (arg: worker). */
void *mesh_echo_worker_run(void *arg);
/* Asks the worker to stop (its loop wakes at once). Any thread, async-signal-safe. */
void mesh_echo_worker_stop(struct mesh_echo_worker *w);
/* Closes every connection and frees the worker; call after its thread ended. NULL is a no-op. */
void mesh_echo_worker_free(struct mesh_echo_worker *w);

#endif
