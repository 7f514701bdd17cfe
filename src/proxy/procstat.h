/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy process's own resource use (resident memory, CPU time, open descriptors), read from
 * the kernel when the admin listener renders /metrics or /stats: what a dashboard shows per
 * proxy beside its connections. */
#ifndef MESH_PROXY_PROCSTAT_H
#define MESH_PROXY_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mesh/err.h"

struct mesh_procstat {
    bool has_rss, has_cpu, has_fds; /* false: the kernel did not say (no /proc, no memory) */
    uint64_t rss_bytes;             /* resident set size */
    uint64_t cpu_us;                /* user + system CPU time, microseconds */
    uint64_t open_fds;              /* file descriptors open now */
};

/* Reads the calling process's figures. Never allocates through malloc (opendir aside, whose
 * failure only clears has_fds), never fails: what cannot be read is left out. Any thread. */
void mesh_procstat_read(struct mesh_procstat *ps);

/* Appends the mesh_process_* families in the Prometheus text format: # HELP and # TYPE for each,
 * and a sample when the figure is known. MESH_E_NOMEM when out hit its limit. */
enum mesh_err mesh_procstat_render_prometheus(const struct mesh_procstat *ps,
                                              struct mesh_strbuf *out);

/* obj holds one JSON object ending in "}" (and maybe a newline), as mesh_stats_render_json
 * leaves it: adds the process_* members before that brace ("process_resident_memory_bytes",
 * "process_cpu_seconds", "process_open_fds"; null when unknown). MESH_E_INVALID when obj does
 * not end in '}'; MESH_E_NOMEM when out hit its limit. */
enum mesh_err mesh_procstat_append_json(const struct mesh_procstat *ps, struct mesh_strbuf *obj);

#endif
